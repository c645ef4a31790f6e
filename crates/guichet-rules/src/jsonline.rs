//! The simulation's fast path: one JSON line decoded straight into borrowed
//! answers, with no intermediate `serde_json::Value` and no copy of strings
//! that need no unescaping. Same accepted shape and errors as
//! `Application::from_json`.

use crate::answers::AnswerValue;
use crate::value::Date;
use crate::{ErrorCode, EvalError};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

pub(crate) type Answer<'a> = AnswerValue<Cow<'a, str>>;

/// One application line, borrowing from the input.
#[derive(Debug)]
pub(crate) struct LineApp<'a> {
    pub id: Option<Cow<'a, str>>,
    pub submitted_on: Date,
    pub answers: Vec<(Cow<'a, str>, Answer<'a>)>,
}

/// An answer that may be JSON `null` (skipped).
struct Nullable<'a>(Option<Answer<'a>>);

struct AnswerVisitor;

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = Nullable<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an answer")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
        Ok(Nullable(Some(AnswerValue::Bool(v))))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Self::Value, E> {
        Ok(Nullable(Some(AnswerValue::Int(v))))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(Nullable(Some(AnswerValue::Int(i)))),
            Err(_) => Ok(Nullable(Some(AnswerValue::Decimal(Cow::Owned(v.to_string()))))),
        }
    }
    fn visit_f64<E>(self, v: f64) -> Result<Self::Value, E> {
        // The shortest text that reads back as the same number: "800.5".
        Ok(Nullable(Some(AnswerValue::Decimal(Cow::Owned(format!("{v}"))))))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Nullable(Some(AnswerValue::Str(Cow::Borrowed(v)))))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Nullable(Some(AnswerValue::Str(Cow::Owned(v.to_owned())))))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Nullable(None))
    }
    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Nullable(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Nullable(Some(AnswerValue::List)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Sized for a whole application's answers: no reallocation on the way.
        let mut t = Vec::with_capacity(map.size_hint().unwrap_or(24));
        while let Some(k) = map.next_key::<Key<'de>>()? {
            if let Nullable(Some(v)) = map.next_value::<Nullable<'de>>()? {
                t.push((k.0, v));
            }
        }
        Ok(Nullable(Some(AnswerValue::Table(t))))
    }
}

impl<'de> de::Deserialize<'de> for Nullable<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(AnswerVisitor)
    }
}

struct Key<'a>(Cow<'a, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

struct LineVisitor;

impl<'de> Visitor<'de> for LineVisitor {
    type Value = LineApp<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with `submitted_on` and `answers`")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut id = None;
        let mut date = None;
        let mut answers = Vec::new();
        while let Some(k) = map.next_key::<Key<'de>>()? {
            match &*k.0 {
                "id" => {
                    id = match map.next_value::<Nullable<'de>>()?.0 {
                        Some(AnswerValue::Str(s)) => Some(s),
                        Some(AnswerValue::Int(i)) => Some(Cow::Owned(i.to_string())),
                        Some(AnswerValue::Decimal(s)) => Some(s),
                        _ => None,
                    }
                }
                "submitted_on" => {
                    let s = match map.next_value::<Nullable<'de>>()?.0 {
                        Some(AnswerValue::Str(s)) => s,
                        _ => {
                            return Err(de::Error::custom(
                                "`submitted_on` is missing: give the date as \"YYYY-MM-DD\"",
                            ));
                        }
                    };
                    date = Some(Date::parse(&s).map_err(de::Error::custom)?);
                }
                "answers" => match map.next_value::<Nullable<'de>>()?.0 {
                    Some(AnswerValue::Table(t)) => answers = t,
                    None => {}
                    Some(_) => return Err(de::Error::custom("`answers` must be a JSON object")),
                },
                other => {
                    return Err(de::Error::custom(format!(
                        "unknown key `{other}` in the application (expected `id`, `submitted_on`, `answers`)"
                    )));
                }
            }
        }
        let submitted_on =
            date.ok_or_else(|| de::Error::custom("`submitted_on` is missing: give the date as \"YYYY-MM-DD\""))?;
        Ok(LineApp { id, submitted_on, answers })
    }
}

/// Decodes one line.
pub(crate) fn parse(line: &str) -> Result<LineApp<'_>, EvalError> {
    let mut d = serde_json::Deserializer::from_str(line);
    let app = d
        .deserialize_map(LineVisitor)
        .map_err(|e| EvalError::new(ErrorCode::InvalidAnswer, format!("not a valid application: {e}")))?;
    d.end().map_err(|e| EvalError::new(ErrorCode::InvalidAnswer, format!("not a valid application: {e}")))?;
    Ok(app)
}
