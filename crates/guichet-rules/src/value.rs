//! Values of the rules language: exact money, percentages, civil dates.
//!
//! Money is integer cents and a percentage integer hundredths of a percent
//! (basis points), so arithmetic is exact and rounding is explicit.

use std::fmt;

/// An amount of money in cents. Never a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

/// A percentage in hundredths of a percent: `12.5 %` is `Percent(1250)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Percent(pub i64);

/// A civil date, stored as days since 1970-01-01 so that comparisons and
/// date arithmetic are integer operations in the evaluation hot path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub i32);

/// Why a literal could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiteralError {
    #[error(
        "`{0}` is not an amount of money: write it like `1500.00 $` (a dot before the cents, at most two decimals)"
    )]
    Money(String),
    #[error("`{0}` is not a percentage: write it like `12.5 %` (at most two decimals)")]
    Percent(String),
    #[error("`{0}` is not a date: write it like `2020-05-01` (year-month-day)")]
    Date(String),
    #[error("`{0}` is out of range")]
    Range(String),
}

/// Parses a decimal with at most two decimals into hundredths.
fn parse_hundredths(s: &str) -> Option<i64> {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let (int, frac) = match digits.split_once('.') {
        Some((i, f)) => (i, f),
        None => (digits, ""),
    };
    if int.is_empty() || int.len() > 15 || frac.len() > 2 {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.contains('.') && frac.is_empty() {
        return None;
    }
    let whole: i64 = int.parse().ok()?;
    let mut cents: i64 = if frac.is_empty() { 0 } else { frac.parse().ok()? };
    if frac.len() == 1 {
        cents *= 10;
    }
    let v = whole.checked_mul(100)?.checked_add(cents)?;
    Some(if neg { -v } else { v })
}

fn fmt_hundredths(v: i64, f: &mut fmt::Formatter<'_>, sep: char) -> fmt::Result {
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    write!(f, "{sign}{}{sep}{:02}", a / 100, a % 100)
}

impl Money {
    pub const ZERO: Money = Money(0);

    /// Parses `1500`, `1500.5`, `1500.00`, `1500.00 $` or `$1500.00`.
    pub fn parse(s: &str) -> Result<Money, LiteralError> {
        let t = s.trim();
        let t = t.strip_suffix('$').or_else(|| t.strip_prefix('$')).unwrap_or(t);
        parse_hundredths(t).map(Money).ok_or_else(|| LiteralError::Money(s.to_owned()))
    }

    pub fn cents(self) -> i64 {
        self.0
    }

    /// `1 500,00 $`: the French (Canada) form.
    pub fn to_fr(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        format!("{sign}{},{:02} $", group_thousands(a / 100, '\u{a0}'), a % 100)
    }

    /// `$1,500.00`: the English (Canada) form.
    pub fn to_en(self) -> String {
        let sign = if self.0 < 0 { "-" } else { "" };
        let a = self.0.unsigned_abs();
        format!("{sign}${}.{:02}", group_thousands(a / 100, ','), a % 100)
    }
}

fn group_thousands(mut n: u64, sep: char) -> String {
    let mut groups = Vec::new();
    loop {
        groups.push(n % 1000);
        n /= 1000;
        if n == 0 {
            break;
        }
    }
    let mut out = String::new();
    for (i, g) in groups.iter().rev().enumerate() {
        if i == 0 {
            out.push_str(&g.to_string());
        } else {
            out.push(sep);
            out.push_str(&format!("{g:03}"));
        }
    }
    out
}

/// The canonical, locale-free form: `1500.00 $`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_hundredths(self.0, f, '.')?;
        f.write_str(" $")
    }
}

impl Percent {
    /// Parses `12.5 %`, `12.5%` or `12.5`.
    pub fn parse(s: &str) -> Result<Percent, LiteralError> {
        let t = s.trim();
        let t = t.strip_suffix('%').unwrap_or(t);
        parse_hundredths(t).map(Percent).ok_or_else(|| LiteralError::Percent(s.to_owned()))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = self.0.unsigned_abs();
        let sign = if self.0 < 0 { "-" } else { "" };
        if a % 100 == 0 {
            write!(f, "{sign}{} %", a / 100)
        } else {
            fmt_hundredths(self.0, f, '.')?;
            f.write_str(" %")
        }
    }
}

/// Rounds `num / den` to the nearest integer, halves away from zero.
pub(crate) fn div_round(num: i128, den: i128) -> Option<i128> {
    if den == 0 {
        return None;
    }
    let q = num / den;
    let r = num % den;
    if 2 * r.abs() >= den.abs() { Some(if (num < 0) != (den < 0) { q - 1 } else { q + 1 }) } else { Some(q) }
}

impl Date {
    fn epoch() -> jiff::civil::Date {
        jiff::civil::date(1970, 1, 1)
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(s: &str) -> Result<Date, LiteralError> {
        let t = s.trim();
        let ok_shape = t.len() == 10
            && t.bytes().enumerate().all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
        if !ok_shape {
            return Err(LiteralError::Date(s.to_owned()));
        }
        let b = t.as_bytes();
        let num = |r: std::ops::Range<usize>| b[r].iter().fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
        let (y, m, d) = (num(0..4), num(5..7), num(8..10));
        // jiff checks the day exists (leap years, month lengths).
        jiff::civil::Date::new(y as i16, m as i8, d as i8).map_err(|_| LiteralError::Date(s.to_owned()))?;
        Ok(Date(days_from_civil(y, m, d)))
    }

    pub fn from_ymd(y: i16, m: i8, d: i8) -> Result<Date, LiteralError> {
        jiff::civil::Date::new(y, m, d)
            .map(Date::from_civil)
            .map_err(|_| LiteralError::Date(format!("{y:04}-{m:02}-{d:02}")))
    }

    pub fn from_civil(d: jiff::civil::Date) -> Date {
        Date(days_from_civil(i32::from(d.year()), i32::from(d.month()), i32::from(d.day())))
    }

    pub fn to_civil(self) -> jiff::civil::Date {
        Date::epoch().checked_add(jiff::Span::new().days(i64::from(self.0))).unwrap_or(jiff::civil::Date::MAX)
    }

    pub fn add_days(self, n: i64) -> Option<Date> {
        let v = i64::from(self.0).checked_add(n)?;
        let d = Date(i32::try_from(v).ok()?);
        // Stay inside the civil calendar jiff supports.
        Date::epoch().checked_add(jiff::Span::new().days(v)).ok()?;
        Some(d)
    }

    /// Adds calendar months, clamping the day (Jan 31 + 1 month = Feb 29/28).
    pub fn add_months(self, n: i64) -> Option<Date> {
        let span = jiff::Span::new().try_months(n).ok()?;
        self.to_civil().checked_add(span).ok().map(Date::from_civil)
    }

    pub fn year(self) -> i64 {
        i64::from(self.to_civil().year())
    }

    pub fn month(self) -> i64 {
        i64::from(self.to_civil().month())
    }

    /// `1er mai 2020`, `15 juillet 2020`.
    pub fn to_fr(self) -> String {
        const MONTHS: [&str; 12] = [
            "janvier",
            "février",
            "mars",
            "avril",
            "mai",
            "juin",
            "juillet",
            "août",
            "septembre",
            "octobre",
            "novembre",
            "décembre",
        ];
        let c = self.to_civil();
        let day = if c.day() == 1 { "1er".to_owned() } else { c.day().to_string() };
        let m = MONTHS.get(usize::try_from(c.month() - 1).unwrap_or(0)).copied().unwrap_or("");
        format!("{day} {m} {}", c.year())
    }

    /// `May 1, 2020`.
    pub fn to_en(self) -> String {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let c = self.to_civil();
        let m = MONTHS.get(usize::try_from(c.month() - 1).unwrap_or(0)).copied().unwrap_or("");
        format!("{m} {}, {}", c.day(), c.year())
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_civil())
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the classic
/// era-based computation; checked against jiff in the tests).
fn days_from_civil(y: i32, m: i32, d: i32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The static type of an expression.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Type {
    Bool,
    Integer,
    Money,
    Percent,
    Date,
    Text,
    /// A choice among the options of a question or of the province list; the
    /// index identifies the option set.
    Choice(u32),
    /// An uploaded document or bank account: only `is none` applies.
    Opaque,
}

impl Type {
    pub fn name(self) -> &'static str {
        match self {
            Type::Bool => "yes/no",
            Type::Integer => "integer",
            Type::Money => "money",
            Type::Percent => "percent",
            Type::Date => "date",
            Type::Text => "text",
            Type::Choice(_) => "choice",
            Type::Opaque => "document",
        }
    }
}

/// A runtime value. Choices and text are carried as interned ids in the
/// compiled program; `Value::Text` holds free text answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Bool(bool),
    Integer(i64),
    Money(Money),
    Percent(Percent),
    Date(Date),
    Text(std::sync::Arc<str>),
    /// Option index within its option set.
    Choice(u32),
    /// Something was provided (a file, a bank account).
    Present,
}

impl Value {
    /// A lossless 64-bit lane for columnar evaluation.
    pub(crate) fn lane(&self) -> i64 {
        match self {
            Value::Bool(b) => i64::from(*b),
            Value::Integer(i) => *i,
            Value::Money(m) => m.0,
            Value::Percent(p) => p.0,
            Value::Date(d) => i64::from(d.0),
            Value::Choice(c) => i64::from(*c),
            Value::Present => 1,
            // Text is interned by the batch before it reaches a lane.
            Value::Text(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_parses_and_prints() {
        assert_eq!(Money::parse("1500.00 $"), Ok(Money(150_000)));
        assert_eq!(Money::parse("1500 $"), Ok(Money(150_000)));
        assert_eq!(Money::parse("$12.5"), Ok(Money(1250)));
        assert_eq!(Money::parse("-0.05"), Ok(Money(-5)));
        assert!(Money::parse("12.345").is_err());
        assert!(Money::parse("12.").is_err());
        assert!(Money::parse("1,500.00").is_err());
        assert!(Money::parse("").is_err());
        assert_eq!(Money(150_000).to_string(), "1500.00 $");
        assert_eq!(Money(150_000).to_fr(), "1\u{a0}500,00 $");
        assert_eq!(Money(123_456_789).to_en(), "$1,234,567.89");
        assert_eq!(Money(-5).to_string(), "-0.05 $");
    }

    #[test]
    fn percent_parses() {
        assert_eq!(Percent::parse("12.5 %"), Ok(Percent(1250)));
        assert_eq!(Percent(1250).to_string(), "12.50 %");
        assert_eq!(Percent(5000).to_string(), "50 %");
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(5, 10), Some(1));
        assert_eq!(div_round(-5, 10), Some(-1));
        assert_eq!(div_round(4, 10), Some(0));
        assert_eq!(div_round(15, -10), Some(-2));
        assert_eq!(div_round(1, 0), None);
    }

    #[test]
    fn dates_roundtrip_and_do_arithmetic() {
        let d = Date::parse("2020-05-01").expect("valid");
        assert_eq!(d.to_string(), "2020-05-01");
        assert_eq!(d.to_fr(), "1er mai 2020");
        assert_eq!(d.to_en(), "May 1, 2020");
        assert_eq!(
            Date::parse("2020-01-31").expect("valid").add_months(1).map(|d| d.to_string()).as_deref(),
            Some("2020-02-29")
        );
        assert_eq!(d.add_days(31).map(|d| d.to_string()).as_deref(), Some("2020-06-01"));
        assert!(Date::parse("2020-02-30").is_err());
        assert!(Date::parse("2020-5-1").is_err());
        assert_eq!(Date::parse("1970-01-01"), Ok(Date(0)));
        assert_eq!(Date::parse("1969-12-31"), Ok(Date(-1)));
        assert!(Date::parse("2021-02-29").is_err());
        assert!(Date::parse("2020-02-29").is_ok());
    }

    #[test]
    fn day_numbers_agree_with_jiff() {
        let epoch = jiff::civil::date(1970, 1, 1);
        let mut d = jiff::civil::date(1890, 1, 1);
        while d < jiff::civil::date(2110, 1, 1) {
            let want = epoch.until(d).map(|s| s.get_days()).expect("span");
            assert_eq!(Date::from_civil(d).0, want, "{d}");
            assert_eq!(Date(want).to_civil(), d);
            d = d.checked_add(jiff::Span::new().days(13)).expect("in range");
        }
    }
}
