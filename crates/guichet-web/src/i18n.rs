//! Texts in French and English (Fluent files in `locales/`), French by
//! default; money and dates in each language's Canadian form.

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource};
use std::sync::OnceLock;

pub const FR: &str = include_str!("../locales/fr.ftl");
pub const EN: &str = include_str!("../locales/en.ftl");

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    Fr,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "fr" => Some(Lang::Fr),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    pub fn rules(self) -> guichet_rules::Lang {
        match self {
            Lang::Fr => guichet_rules::Lang::Fr,
            Lang::En => guichet_rules::Lang::En,
        }
    }
}

struct Bundles {
    fr: FluentBundle<FluentResource>,
    en: FluentBundle<FluentResource>,
}

fn bundles() -> &'static Bundles {
    static B: OnceLock<Bundles> = OnceLock::new();
    // A broken entry shows as its key, never as a crash (and a test fails).
    B.get_or_init(|| Bundles {
        fr: guichet_app::fluent_bundle("fr-CA", FR),
        en: guichet_app::fluent_bundle("en-CA", EN),
    })
}

/// The translator a page renders with.
#[derive(Debug, Clone, Copy)]
pub struct Tr {
    pub lang: Lang,
    /// The organization's time zone, for dates.
    pub tz: &'static jiff::tz::TimeZone,
}

/// A time zone by name, loaded once and kept for the process (the names an
/// organization can choose are few; an unknown one falls back to Toronto).
pub fn time_zone(name: &str) -> &'static jiff::tz::TimeZone {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static ZONES: OnceLock<Mutex<HashMap<String, &'static jiff::tz::TimeZone>>> = OnceLock::new();
    static FALLBACK: OnceLock<jiff::tz::TimeZone> = OnceLock::new();
    let fallback =
        || FALLBACK.get_or_init(|| jiff::tz::TimeZone::get("America/Toronto").unwrap_or(jiff::tz::TimeZone::UTC));
    let Ok(mut zones) = ZONES.get_or_init(|| Mutex::new(HashMap::new())).lock() else { return fallback() };
    if let Some(z) = zones.get(name) {
        return z;
    }
    match jiff::tz::TimeZone::get(name) {
        Ok(z) => {
            let z: &'static jiff::tz::TimeZone = Box::leak(Box::new(z));
            zones.insert(name.to_owned(), z);
            z
        }
        Err(_) => fallback(),
    }
}

impl Tr {
    /// French or English, in the default (Toronto) time zone.
    pub fn new(lang: Lang) -> Tr {
        Tr { lang, tz: time_zone("America/Toronto") }
    }
}

impl Tr {
    fn format(&self, key: &str, args: Option<&FluentArgs<'_>>) -> String {
        let b = match self.lang {
            Lang::Fr => &bundles().fr,
            Lang::En => &bundles().en,
        };
        let Some(pattern) = b.get_message(key).and_then(|m| m.value()) else { return key.to_owned() };
        let mut errors = Vec::new();
        b.format_pattern(pattern, args, &mut errors).into_owned()
    }

    /// The text of `key`.
    pub fn t(&self, key: &str) -> String {
        self.format(key, None)
    }

    /// The text of `key` with one argument.
    pub fn t1(&self, key: &str, name: &str, value: &str) -> String {
        let mut args = FluentArgs::new();
        args.set(name.to_owned(), value.to_owned());
        self.format(key, Some(&args))
    }

    /// The text of `key` with arguments.
    pub fn t2(&self, key: &str, args: &FluentArgs<'_>) -> String {
        self.format(key, Some(args))
    }

    /// `1 500,00 $` or `$1,500.00`.
    pub fn money(&self, cents: i64) -> String {
        let m = guichet_rules::Money(cents);
        match self.lang {
            Lang::Fr => m.to_fr(),
            Lang::En => m.to_en(),
        }
    }

    /// [`Tr::money`] of a field (templates pass fields by reference).
    pub fn money_of(&self, cents: &i64) -> String {
        self.money(*cents)
    }

    /// [`Tr::date`] of a field.
    pub fn date_of(&self, unix: &i64) -> String {
        self.date(*unix)
    }

    /// A moment as a local date: `10 mai 2020` or `May 10, 2020`.
    pub fn date(&self, unix: i64) -> String {
        let Ok(ts) = jiff::Timestamp::from_second(unix) else { return String::new() };
        self.ymd(&self.tz.to_datetime(ts).date().to_string())
    }

    /// A `YYYY-MM-DD` date in words (guichet-rules' French and English
    /// forms, the ones the explanations use).
    pub fn ymd(&self, s: &str) -> String {
        match guichet_rules::Date::parse(s) {
            Ok(d) if self.lang == Lang::Fr => d.to_fr(),
            Ok(d) => d.to_en(),
            Err(_) => s.to_owned(),
        }
    }

    /// A bilingual text from a program file.
    pub fn pick<'a>(&self, fr: &'a str, en: &'a str) -> &'a str {
        match self.lang {
            Lang::Fr => fr,
            Lang::En => en,
        }
    }
}

/// Every message id of a Fluent file (for the parity test).
pub fn message_ids(src: &str) -> Vec<String> {
    src.lines()
        .filter(|l| !l.starts_with([' ', '#', '\t', '-', '.']) && l.contains('='))
        .filter_map(|l| l.split('=').next().map(|k| k.trim().to_owned()))
        .filter(|k| !k.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_exists_in_both_languages_and_parses() {
        let (fr, en) = (message_ids(FR), message_ids(EN));
        let missing_en: Vec<_> = fr.iter().filter(|k| !en.contains(k)).collect();
        let missing_fr: Vec<_> = en.iter().filter(|k| !fr.contains(k)).collect();
        assert!(
            missing_en.is_empty() && missing_fr.is_empty(),
            "only in fr: {missing_en:?}; only in en: {missing_fr:?}"
        );
        for (name, src) in [("fr", FR), ("en", EN)] {
            if let Err((_, errors)) = FluentResource::try_new(src.to_owned()) {
                panic!("{name}.ftl: {errors:?}");
            }
        }
        assert!(fr.len() > 20);
    }

    #[test]
    fn money_and_dates_follow_the_language() {
        let fr = Tr::new(Lang::Fr);
        let en = Tr::new(Lang::En);
        assert_eq!(fr.money(150_000), "1\u{a0}500,00 $");
        assert_eq!(en.money(150_000), "$1,500.00");
        assert_eq!(fr.ymd("2020-05-01"), "1er mai 2020");
        assert_eq!(en.ymd("2020-05-10"), "May 10, 2020");
        // 2020-05-10 02:00 UTC is still the 9th in Toronto, the 10th in Paris.
        assert_eq!(fr.date(1_589_076_000), "9 mai 2020");
        assert_eq!(Tr { lang: Lang::Fr, tz: time_zone("Europe/Paris") }.date(1_589_076_000), "10 mai 2020");
        assert!(std::ptr::eq(time_zone("Europe/Paris"), time_zone("Europe/Paris")), "loaded once");
        assert_eq!(fr.t("nothing-such"), "nothing-such");
        assert_eq!(fr.t1("step-of", "n", "2"), fr.t1("step-of", "n", "2"));
    }
}
