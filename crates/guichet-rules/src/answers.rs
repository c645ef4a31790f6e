//! Answers to a program's questions, from TOML (tests) or JSON (API, CLI),
//! and their encoding into the lanes the evaluators read.

use crate::ir::Cell;
use crate::program::{PROVINCES, Program, Question};
use crate::raw::QuestionType;
use crate::value::{Date, Money, Value};
use crate::{ErrorCode, EvalError};
use indexmap::IndexMap;

/// One answer as it arrived, before it is checked against its question.
/// `S` is the string type: owned for stored answers, borrowed from the
/// input line on the simulation's fast path.
#[derive(Debug, Clone, PartialEq)]
pub enum AnswerValue<S = String> {
    Bool(bool),
    Int(i64),
    /// A number with decimals, kept as its shortest decimal text so money
    /// never goes through a float computation.
    Decimal(S),
    Str(S),
    Date(Date),
    /// A small table (address, bank account), fields in the order given.
    Table(Vec<(S, AnswerValue<S>)>),
    List,
}

/// Answers by question id, in the order given.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answers(pub IndexMap<String, AnswerValue>);

/// An application to evaluate: its reference date and its answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Application {
    pub id: Option<String>,
    pub submitted_on: Date,
    pub answers: Answers,
}

impl AnswerValue {
    pub fn from_toml(v: &toml::Value) -> Result<AnswerValue, String> {
        Ok(match v {
            toml::Value::Boolean(b) => AnswerValue::Bool(*b),
            toml::Value::Integer(i) => AnswerValue::Int(*i),
            toml::Value::Float(f) => AnswerValue::Decimal(format!("{f}")),
            toml::Value::String(s) => AnswerValue::Str(s.clone()),
            toml::Value::Datetime(dt) => match (dt.date, dt.time) {
                (Some(d), None) => AnswerValue::Date(
                    Date::from_ymd(i16::try_from(d.year).unwrap_or(i16::MAX), d.month as i8, d.day as i8)
                        .map_err(|e| e.to_string())?,
                ),
                _ => {
                    return Err(format!("`{dt}` has a time of day; give only a date like 2020-05-01"));
                }
            },
            toml::Value::Table(t) => {
                let mut m = Vec::with_capacity(t.len());
                for (k, v) in t {
                    m.push((k.clone(), AnswerValue::from_toml(v)?));
                }
                AnswerValue::Table(m)
            }
            toml::Value::Array(_) => AnswerValue::List,
        })
    }

    pub fn from_json(v: &serde_json::Value) -> Option<AnswerValue> {
        Some(match v {
            serde_json::Value::Null => return None,
            serde_json::Value::Bool(b) => AnswerValue::Bool(*b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => AnswerValue::Int(i),
                None => AnswerValue::Decimal(n.to_string()),
            },
            serde_json::Value::String(s) => AnswerValue::Str(s.clone()),
            serde_json::Value::Object(o) => AnswerValue::Table(
                o.iter().filter_map(|(k, v)| Some((k.clone(), AnswerValue::from_json(v)?))).collect(),
            ),
            serde_json::Value::Array(_) => AnswerValue::List,
        })
    }
}

impl<S> AnswerValue<S> {
    fn describe(&self) -> &'static str {
        match self {
            AnswerValue::Bool(_) => "true/false",
            AnswerValue::Int(_) => "a whole number",
            AnswerValue::Decimal(_) => "a decimal number",
            AnswerValue::Str(_) => "text",
            AnswerValue::Date(_) => "a date",
            AnswerValue::Table(_) => "a table",
            AnswerValue::List => "a list",
        }
    }
}

impl Application {
    /// Reads `{"id": …, "submitted_on": "YYYY-MM-DD", "answers": {…}}`.
    pub fn from_json(v: &serde_json::Value) -> Result<Application, EvalError> {
        let obj = v.as_object().ok_or_else(|| {
            EvalError::new(
                ErrorCode::InvalidAnswer,
                "an application must be a JSON object with `submitted_on` and `answers`",
            )
        })?;
        for k in obj.keys() {
            if !matches!(k.as_str(), "id" | "submitted_on" | "answers") {
                return Err(EvalError::new(
                    ErrorCode::InvalidAnswer,
                    format!("unknown key `{k}` in the application (expected `id`, `submitted_on`, `answers`)"),
                ));
            }
        }
        let id = match obj.get("id") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(other) => Some(other.to_string()),
        };
        let date = obj.get("submitted_on").and_then(|d| d.as_str()).ok_or_else(|| {
            EvalError::new(ErrorCode::InvalidAnswer, "`submitted_on` is missing: give the date as \"YYYY-MM-DD\"")
                .field("submitted_on")
        })?;
        let submitted_on = Date::parse(date)
            .map_err(|e| EvalError::new(ErrorCode::InvalidAnswer, e.to_string()).field("submitted_on"))?;
        let mut answers = Answers::default();
        match obj.get("answers") {
            None | Some(serde_json::Value::Null) => {}
            Some(serde_json::Value::Object(o)) => {
                for (k, v) in o {
                    if let Some(a) = AnswerValue::from_json(v) {
                        answers.0.insert(k.clone(), a);
                    }
                }
            }
            Some(_) => {
                return Err(EvalError::new(ErrorCode::InvalidAnswer, "`answers` must be a JSON object"));
            }
        }
        Ok(Application { id, submitted_on, answers })
    }
}

/// The encoded inputs of one application: the evaluators' only input.
#[derive(Debug, Clone, PartialEq)]
pub struct Inputs {
    pub submitted_on: Date,
    pub(crate) slots: Vec<Cell>,
}

fn is_postal_code(s: &str) -> bool {
    let c: Vec<char> = s.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
    c.len() == 6
        && c.iter().enumerate().all(|(i, ch)| if i % 2 == 0 { ch.is_ascii_uppercase() } else { ch.is_ascii_digit() })
        && !matches!(c[0], 'D' | 'F' | 'I' | 'O' | 'Q' | 'U' | 'W' | 'Z')
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

impl Program {
    /// Checks the answers against the questions and encodes them.
    pub fn prepare(&self, app: &Application) -> Result<Inputs, EvalError> {
        let mut slots = vec![Cell::UNKNOWN; self.n_slots];
        self.encode_all(app.answers.0.iter().map(|(k, v)| (k.as_str(), v)), &mut slots)?;
        Ok(Inputs { submitted_on: app.submitted_on, slots })
    }

    /// Encodes answers into `slots` (all unknown on entry).
    pub(crate) fn encode_all<'a, S: AsRef<str> + 'a>(
        &self,
        answers: impl Iterator<Item = (&'a str, &'a AnswerValue<S>)>,
        slots: &mut [Cell],
    ) -> Result<(), EvalError> {
        for (name, value) in answers {
            let q = self.question(name).ok_or_else(|| {
                let mut msg = format!("there is no question `{name}` in program `{}`", self.id);
                if let Some(best) = crate::compile::closest(name, self.questions.iter().map(|q| q.id.as_str())) {
                    msg.push_str(&format!("; did you mean `{best}`?"));
                }
                EvalError::new(ErrorCode::InvalidAnswer, msg).field(name)
            })?;
            self.encode(q, value, slots)?;
        }
        Ok(())
    }

    fn bad(q: &Question, msg: impl Into<String>) -> EvalError {
        EvalError::new(ErrorCode::InvalidAnswer, format!("answer to `{}` ({}): {}", q.id, q.label.en, msg.into()))
            .field(&q.id)
    }

    fn check_bounds(q: &Question, v: &Value, lane: i64) -> Result<(), EvalError> {
        let show = |b: &Value| match b {
            Value::Money(m) => m.to_string(),
            Value::Date(d) => d.to_string(),
            Value::Integer(i) => i.to_string(),
            _ => String::new(),
        };
        if let Some(min) = &q.min
            && lane < min.lane()
        {
            return Err(Program::bad(q, format!("{} is below the minimum {}", show(v), show(min))));
        }
        if let Some(max) = &q.max
            && lane > max.lane()
        {
            return Err(Program::bad(q, format!("{} is above the maximum {}", show(v), show(max))));
        }
        Ok(())
    }

    fn encode<S: AsRef<str>>(&self, q: &Question, a: &AnswerValue<S>, slots: &mut [Cell]) -> Result<(), EvalError> {
        let base = q.slot as usize;
        let want = |what: &str| Program::bad(q, format!("expected {what}, got {}", a.describe()));
        let lane = match (q.kind, a) {
            (QuestionType::YesNo, AnswerValue::Bool(b)) => i64::from(*b),
            (QuestionType::YesNo, _) => return Err(want("true or false")),
            (QuestionType::Integer, AnswerValue::Int(i)) => {
                Program::check_bounds(q, &Value::Integer(*i), *i)?;
                *i
            }
            (QuestionType::Integer, _) => return Err(want("a whole number")),
            (QuestionType::Money, AnswerValue::Str(s) | AnswerValue::Decimal(s)) => {
                let m = Money::parse(s.as_ref()).map_err(|e| Program::bad(q, e.to_string()))?;
                Program::check_bounds(q, &Value::Money(m), m.0)?;
                m.0
            }
            (QuestionType::Money, AnswerValue::Int(i)) => {
                let m = Money(i.checked_mul(100).ok_or_else(|| Program::bad(q, "amount out of range"))?);
                Program::check_bounds(q, &Value::Money(m), m.0)?;
                m.0
            }
            (QuestionType::Money, _) => return Err(want("an amount like \"800.00 $\"")),
            (QuestionType::Date, AnswerValue::Date(d)) => {
                Program::check_bounds(q, &Value::Date(*d), i64::from(d.0))?;
                i64::from(d.0)
            }
            (QuestionType::Date, AnswerValue::Str(s)) => {
                let d = Date::parse(s.as_ref()).map_err(|e| Program::bad(q, e.to_string()))?;
                Program::check_bounds(q, &Value::Date(d), i64::from(d.0))?;
                i64::from(d.0)
            }
            (QuestionType::Date, _) => return Err(want("a date like 2020-05-01")),
            (QuestionType::Choice, AnswerValue::Str(s)) => {
                let s = s.as_ref();
                let idx = q.options.iter().position(|o| o.value == s).ok_or_else(|| {
                    let opts: Vec<&str> = q.options.iter().map(|o| o.value.as_str()).collect();
                    Program::bad(q, format!("`{s}` is not one of the options: {}", opts.join(", ")))
                })?;
                idx as i64
            }
            (QuestionType::Choice, _) => return Err(want("one of the options, as text")),
            (QuestionType::Text, AnswerValue::Str(s)) => {
                let s = s.as_ref().trim();
                if s.is_empty() {
                    return Ok(());
                }
                self.text_id(s)
            }
            (QuestionType::Text, _) => return Err(want("text")),
            (QuestionType::File, AnswerValue::Str(s)) if !s.as_ref().trim().is_empty() => 1,
            (QuestionType::File, AnswerValue::Table(_)) => 1,
            (QuestionType::File, _) => return Err(want("a file name or reference")),
            (QuestionType::BankAccount, AnswerValue::Table(t)) => {
                let get = |k: &str| match t.iter().find(|(n, _)| n.as_ref() == k).map(|(_, v)| v) {
                    Some(AnswerValue::Str(s)) => Some(s.as_ref().trim().to_owned()),
                    Some(AnswerValue::Int(i)) => Some(i.to_string()),
                    _ => None,
                };
                for (k, _) in t {
                    let k = k.as_ref();
                    if !matches!(k, "institution" | "transit" | "account") {
                        return Err(Program::bad(
                            q,
                            format!("unknown field `{k}` (expected institution, transit, account)"),
                        ));
                    }
                }
                let inst = get("institution").unwrap_or_default();
                let transit = get("transit").unwrap_or_default();
                let account = get("account").unwrap_or_default();
                if !digits(&inst, 3, 3) {
                    return Err(Program::bad(q, "the institution number has 3 digits"));
                }
                if !digits(&transit, 5, 5) {
                    return Err(Program::bad(q, "the transit (branch) number has 5 digits"));
                }
                if !digits(&account, 7, 12) {
                    return Err(Program::bad(q, "the account number has 7 to 12 digits"));
                }
                1
            }
            (QuestionType::BankAccount, _) => {
                return Err(want("{ institution, transit, account }"));
            }
            (QuestionType::Address, AnswerValue::Table(t)) => {
                for (k, _) in t {
                    let k = k.as_ref();
                    if !matches!(k, "line1" | "city" | "province" | "postal_code") {
                        return Err(Program::bad(
                            q,
                            format!("unknown field `{k}` (expected line1, city, province, postal_code)"),
                        ));
                    }
                }
                let get = |k: &str| match t.iter().find(|(n, _)| n.as_ref() == k).map(|(_, v)| v) {
                    Some(AnswerValue::Str(s)) if !s.as_ref().trim().is_empty() => Ok(s.as_ref().trim()),
                    _ => Err(Program::bad(q, format!("the address needs `{k}`"))),
                };
                let line1 = get("line1")?;
                let city = get("city")?;
                let province = get("province")?;
                let postal = get("postal_code")?;
                let p = PROVINCES.iter().position(|p| p.eq_ignore_ascii_case(province)).ok_or_else(|| {
                    Program::bad(q, format!("`{province}` is not a Canadian province or territory code (QC, ON, …)"))
                })?;
                if !is_postal_code(postal) {
                    return Err(Program::bad(q, format!("`{postal}` is not a Canadian postal code like H2X 1Y4")));
                }
                slots[base] = Cell::known(self.text_id(line1));
                slots[base + 1] = Cell::known(self.text_id(city));
                slots[base + 2] = Cell::known(p as i64);
                // Postal codes compare in their canonical form `H2X 1Y4`;
                // built only when the program compares text at all.
                let postal_id = if self.texts.is_empty() {
                    -1
                } else {
                    let norm: String = postal.chars().filter(|c| *c != ' ').map(|c| c.to_ascii_uppercase()).collect();
                    self.text_id(&format!("{} {}", &norm[..3], &norm[3..]))
                };
                slots[base + 3] = Cell::known(postal_id);
                return Ok(());
            }
            (QuestionType::Address, _) => {
                return Err(want("an address { line1, city, province, postal_code }"));
            }
        };
        slots[base] = Cell::known(lane);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postal_codes() {
        assert!(is_postal_code("H2X 1Y4"));
        assert!(is_postal_code("h2x1y4"));
        assert!(!is_postal_code("D2X 1Y4"));
        assert!(!is_postal_code("H2X 1Y"));
        assert!(!is_postal_code("12345"));
    }
}
