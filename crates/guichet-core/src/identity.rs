//! Personal identifiers, parsed once at the edge ("parse, don't validate")
//! and never printed in full: their `Debug` and `Display` are masked, so a
//! log line cannot leak them. The store encrypts them at rest.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("a social insurance number has 9 digits")]
    SinLength,
    #[error("this social insurance number fails its check digit (a typo?)")]
    SinCheck,
    #[error("social insurance numbers starting with {0} are not issued to persons")]
    SinNotIssued(char),
    #[error("`{0}` is not a Canadian postal code like H2X 1Y4")]
    PostalCode(String),
    #[error("bank details are an institution (3 digits), a transit (5 digits) and an account (7 to 12 digits)")]
    Bank,
    #[error("`{0}` is not an e-mail address")]
    Email(String),
}

/// A Canadian social insurance number, checked with the Luhn algorithm.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sin(String);

impl Sin {
    pub fn parse(s: &str) -> Result<Sin, IdentityError> {
        let digits: String = s.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if digits.len() != 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdentityError::SinLength);
        }
        let first = digits.chars().next().unwrap_or('0');
        if first == '0' || first == '8' {
            return Err(IdentityError::SinNotIssued(first));
        }
        let sum: u32 = digits
            .bytes()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0');
                if i % 2 == 1 {
                    let x = d * 2;
                    if x > 9 { x - 9 } else { x }
                } else {
                    d
                }
            })
            .sum();
        if sum % 10 != 0 {
            return Err(IdentityError::SinCheck);
        }
        Ok(Sin(digits))
    }

    /// The digits, for encryption and duplicate detection only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Sin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sin({self})")
    }
}

/// `*** *** 046`: the last three digits, as letters to citizens do.
impl fmt::Display for Sin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "*** *** {}", &self.0[6..])
    }
}

/// A Canadian postal code in its canonical form, `H2X 1Y4`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PostalCode(String);

impl PostalCode {
    pub fn parse(s: &str) -> Result<PostalCode, IdentityError> {
        let c: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).map(|c| c.to_ascii_uppercase()).collect();
        let ok = c.len() == 6
            && c.iter()
                .enumerate()
                .all(|(i, ch)| if i % 2 == 0 { ch.is_ascii_uppercase() } else { ch.is_ascii_digit() })
            && !matches!(c[0], 'D' | 'F' | 'I' | 'O' | 'Q' | 'U' | 'W' | 'Z');
        if !ok {
            return Err(IdentityError::PostalCode(s.to_owned()));
        }
        Ok(PostalCode(format!("{}{}{} {}{}{}", c[0], c[1], c[2], c[3], c[4], c[5])))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Canadian bank details for a deposit.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BankAccount {
    institution: String,
    transit: String,
    account: String,
}

impl BankAccount {
    pub fn parse(institution: &str, transit: &str, account: &str) -> Result<BankAccount, IdentityError> {
        let digits = |s: &str, min: usize, max: usize| {
            let s = s.trim();
            ((min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.to_owned())
        };
        Ok(BankAccount {
            institution: digits(institution, 3, 3).ok_or(IdentityError::Bank)?,
            transit: digits(transit, 5, 5).ok_or(IdentityError::Bank)?,
            account: digits(account, 7, 12).ok_or(IdentityError::Bank)?,
        })
    }
    /// (institution, transit, account), for payment files and encryption.
    pub fn expose(&self) -> (&str, &str, &str) {
        (&self.institution, &self.transit, &self.account)
    }
}

impl fmt::Debug for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BankAccount({self})")
    }
}

/// `815-12345-****567`.
impl fmt::Display for BankAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tail = &self.account[self.account.len().saturating_sub(3)..];
        write!(f, "{}-{}-****{tail}", self.institution, self.transit)
    }
}

/// An e-mail address (the shape only; the service verifies it by a link).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Email, IdentityError> {
        let t = s.trim();
        let bad = || IdentityError::Email(s.to_owned());
        let (local, domain) = t.split_once('@').ok_or_else(bad)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && t.len() <= 254
            && !t.chars().any(|c| c.is_whitespace() || c == '<' || c == '>' || c == ',')
            && !domain.contains('@');
        if !ok {
            return Err(bad());
        }
        // Domains are case-insensitive; local parts are kept as written.
        Ok(Email(format!("{local}@{}", domain.to_ascii_lowercase())))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sins_are_checked_and_masked() {
        // 046 454 286 is the example SIN the Government of Canada publishes.
        let s = Sin::parse("046 454 286");
        assert_eq!(s, Err(IdentityError::SinNotIssued('0')));
        let s = Sin::parse("130-692-544").expect("valid");
        assert_eq!(s.to_string(), "*** *** 544");
        assert_eq!(format!("{s:?}"), "Sin(*** *** 544)");
        assert_eq!(s.expose(), "130692544");
        assert_eq!(Sin::parse("130 692 545"), Err(IdentityError::SinCheck));
        assert_eq!(Sin::parse("12345"), Err(IdentityError::SinLength));
        assert_eq!(Sin::parse("13069254a"), Err(IdentityError::SinLength));
    }

    #[test]
    fn postal_codes_bank_accounts_and_emails() {
        assert_eq!(PostalCode::parse("h2x1y4").map(|p| p.as_str().to_owned()), Ok("H2X 1Y4".into()));
        assert!(PostalCode::parse("D2X 1Y4").is_err());
        assert!(PostalCode::parse("H2X 1Y").is_err());
        let b = BankAccount::parse("815", "12345", "1234567").expect("valid");
        assert_eq!(b.to_string(), "815-12345-****567");
        assert_eq!(format!("{b:?}"), "BankAccount(815-12345-****567)");
        assert_eq!(BankAccount::parse("81", "12345", "1234567"), Err(IdentityError::Bank));
        assert_eq!(BankAccount::parse("815", "12345", "12345"), Err(IdentityError::Bank));
        assert_eq!(Email::parse(" Alice@Example.ORG ").map(|e| e.as_str().to_owned()), Ok("Alice@example.org".into()));
        for bad in ["alice", "@example.org", "a@b", "a@.org", "a b@example.org", "a@example.org."] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }
}
