//! Payment files for the bank, and the bank's answers. Pure: no IO.
//!
//! A public body does not move money itself: it hands its bank a file of
//! instructions and reconciles what comes back. This crate writes the two
//! file formats Canadian banks take for direct deposits and debits:
//!
//! - **ISO 20022 `pain.001.001.03`** (customer credit transfer initiation),
//!   XML valid against the official schema, with Canadian routing numbers as
//!   clearing-system member ids (`CACPA`, `0` + institution + transit);
//! - **Payments Canada Standard 005** (AFT files): fixed 1,464-byte logical
//!   records, an `A` header, `C` (credit) or `D` (debit) records of up to six
//!   240-byte segments, and a `Z` trailer with the totals.
//!
//! and reads the bank's returns ([`returns`]). Every file is checked whole
//! before a byte is produced: a batch that mixes currencies, an amount of
//! zero or too large for the format, a reference that is not unique: an
//! error naming the payment, never a half-written file.

pub mod cpa005;
pub mod pain001;
pub mod returns;

use guichet_core::BankAccount;
use std::collections::HashSet;

/// Who pays (or collects): the organization and its own bank account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Originator {
    /// The organization's name (30 characters in Standard 005; longer is cut).
    pub name: String,
    /// Short name, as the payee's statement shows it (15 characters).
    pub short_name: String,
    /// The originator id the bank assigned (10 characters), also the
    /// initiating party's id in pain.001.
    pub id: String,
    /// Destination data centre of the bank's AFT service (5 digits).
    pub data_centre: String,
    /// The organization's account: debited by credits, credited by debits,
    /// and where returned items go.
    pub account: BankAccount,
    /// Standard 005 transaction codes (Standard 007's table): the bank
    /// tells which to use. Credits default to 450 (miscellaneous payments),
    /// debits to 430 (loan repayment by pre-authorized debit).
    pub credit_code: String,
    pub debit_code: String,
}

/// One instruction: pay `amount` cents to (or collect it from) `account`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Our reference, unique in the batch; it comes back in the bank's
    /// returns. 1 to 19 letters, digits or `-` (Standard 005's cross
    /// reference is 19 characters; pain.001's end-to-end id 35).
    pub reference: String,
    /// The payee's (or payor's) name.
    pub name: String,
    pub account: BankAccount,
    /// Cents, strictly positive.
    pub amount: i64,
    /// ISO 4217, upper case (`CAD`).
    pub currency: String,
    /// What the payee reads (the program and the dossier).
    pub remittance: String,
}

/// Credits pay people; debits collect (pre-authorized debits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Credit,
    Debit,
}

/// A batch of payments going out together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Message id (1 to 35 characters), unique per originator.
    pub id: String,
    /// When the file is made (local civil time of the organization).
    pub created: jiff::civil::DateTime,
    /// When the funds should reach the payees.
    pub execution: jiff::civil::Date,
    /// Standard 005's file creation number (1 to 9999), one more than the
    /// last file sent to this bank.
    pub file_number: u16,
    pub direction: Direction,
    pub payments: Vec<Payment>,
}

/// The control totals of a checked batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub count: u64,
    /// Cents.
    pub sum: i64,
    pub currency: String,
}

/// Why a file cannot be written. `index` is the payment's position in the
/// batch (0-based).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("the batch has no payments")]
    Empty,
    #[error("payment {index} ({reference}): the amount must be more than zero")]
    NotPositive { index: usize, reference: String },
    #[error("payment {index} ({reference}): {amount} cents is more than one payment can carry ({max})")]
    TooLarge { index: usize, reference: String, amount: i64, max: i64 },
    #[error("payment {index} ({reference}) is in {found}, the batch in {expected}: one currency per batch")]
    MixedCurrencies { index: usize, reference: String, found: String, expected: String },
    #[error("payment {index}: the currency {currency:?} is not an ISO 4217 code")]
    Currency { index: usize, currency: String },
    #[error("payment {index}: the reference {reference:?} must be 1 to 19 letters, digits or '-'")]
    Reference { index: usize, reference: String },
    #[error("payment {index}: the reference {reference:?} is used twice")]
    DuplicateReference { index: usize, reference: String },
    #[error("payment {index} ({reference}): the payee's name is empty")]
    Name { index: usize, reference: String },
    #[error("the batch id must be 1 to 35 printable characters")]
    BatchId,
    #[error("the file creation number must be 1 to 9999")]
    FileNumber,
    #[error("the originator's {0} is not valid")]
    Originator(&'static str),
    #[error("the batch total overflows the file's {0} field")]
    TotalTooLarge(&'static str),
    #[error("the file's control totals do not match the payments (written {written}, expected {expected})")]
    ControlTotals { written: String, expected: String },
}

/// The largest amount of one Standard 005 item (10 digits of cents).
pub const MAX_AMOUNT: i64 = 9_999_999_999;

impl Batch {
    /// Checks everything both formats need, and returns the control totals.
    pub fn check(&self) -> Result<Totals, BatchError> {
        if self.payments.is_empty() {
            return Err(BatchError::Empty);
        }
        if self.id.is_empty() || self.id.chars().count() > 35 || self.id.chars().any(|c| c.is_control()) {
            return Err(BatchError::BatchId);
        }
        if !(1..=9999).contains(&self.file_number) {
            return Err(BatchError::FileNumber);
        }
        let currency = self.payments[0].currency.clone();
        let mut seen = HashSet::with_capacity(self.payments.len());
        let mut sum: i64 = 0;
        for (index, p) in self.payments.iter().enumerate() {
            let reference = p.reference.clone();
            if p.reference.is_empty()
                || p.reference.len() > 19
                || !p.reference.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                return Err(BatchError::Reference { index, reference });
            }
            if !seen.insert(p.reference.as_str()) {
                return Err(BatchError::DuplicateReference { index, reference });
            }
            if p.currency.len() != 3 || !p.currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(BatchError::Currency { index, currency: p.currency.clone() });
            }
            if p.currency != currency {
                return Err(BatchError::MixedCurrencies {
                    index,
                    reference,
                    found: p.currency.clone(),
                    expected: currency,
                });
            }
            if p.amount <= 0 {
                return Err(BatchError::NotPositive { index, reference });
            }
            if p.amount > MAX_AMOUNT {
                return Err(BatchError::TooLarge { index, reference, amount: p.amount, max: MAX_AMOUNT });
            }
            if p.name.trim().is_empty() {
                return Err(BatchError::Name { index, reference });
            }
            sum = sum.checked_add(p.amount).ok_or(BatchError::TotalTooLarge("sum"))?;
        }
        Ok(Totals { count: self.payments.len() as u64, sum, currency })
    }
}

impl Originator {
    fn check(&self) -> Result<(), BatchError> {
        if self.id.is_empty() || self.id.len() > 10 || !self.id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(BatchError::Originator("id (1 to 10 letters or digits)"));
        }
        if self.data_centre.len() != 5 || !self.data_centre.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BatchError::Originator("destination data centre (5 digits)"));
        }
        if self.name.trim().is_empty() || self.short_name.trim().is_empty() {
            return Err(BatchError::Originator("name"));
        }
        for code in [&self.credit_code, &self.debit_code] {
            if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) {
                return Err(BatchError::Originator("transaction code (3 digits)"));
            }
        }
        Ok(())
    }
}

/// `1234` cents → `12.34`.
pub fn decimal(cents: i64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// A Canadian routing number as banks write it in electronic files:
/// `0` + institution (3) + transit (5).
pub fn routing(account: &BankAccount) -> String {
    let (institution, transit, _) = account.expose();
    format!("0{institution}{transit}")
}

/// The name as a fixed-width ASCII field can carry it: accents dropped
/// (`é` → `e`), anything else that is not printable ASCII becomes a space.
pub fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ' '..='~' => c,
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'À' | 'Á' | 'Â' | 'Ä' | 'Ã' | 'Å' => 'A',
            'ç' => 'c',
            'Ç' => 'C',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'È' | 'É' | 'Ê' | 'Ë' => 'E',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'Ì' | 'Í' | 'Î' | 'Ï' => 'I',
            'ñ' => 'n',
            'Ñ' => 'N',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'Ò' | 'Ó' | 'Ô' | 'Ö' | 'Õ' => 'O',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'Ù' | 'Ú' | 'Û' | 'Ü' => 'U',
            'ÿ' => 'y',
            'œ' => 'o',
            'Œ' => 'O',
            '’' | '‘' => '\'',
            _ => ' ',
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub fn originator() -> Originator {
        Originator {
            name: "Société d'habitation du Québec".into(),
            short_name: "SHQ".into(),
            id: "0123456789".into(),
            data_centre: "00310".into(),
            account: BankAccount::parse("815", "30001", "1234567").expect("account"),
            credit_code: "450".into(),
            debit_code: "430".into(),
        }
    }

    pub fn payment(n: usize, amount: i64) -> Payment {
        Payment {
            reference: format!("P{n:06}"),
            name: format!("Propriétaire nº {n}"),
            account: BankAccount::parse("006", "12345", &format!("{:07}", 1_000_000 + n)).expect("account"),
            amount,
            currency: "CAD".into(),
            remittance: format!("Prêt loyer COVID-19, dossier D{n}"),
        }
    }

    pub fn batch(payments: Vec<Payment>) -> Batch {
        Batch {
            id: "B-2020-0001".into(),
            created: jiff::civil::date(2020, 6, 1).at(9, 30, 0, 0),
            execution: jiff::civil::date(2020, 6, 3),
            file_number: 1,
            direction: Direction::Credit,
            payments,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn a_batch_is_checked_whole() {
        let ok = batch(vec![payment(1, 150_000), payment(2, 80_000)]);
        assert_eq!(ok.check(), Ok(Totals { count: 2, sum: 230_000, currency: "CAD".into() }));

        assert_eq!(batch(vec![]).check(), Err(BatchError::Empty));
        let mut zero = ok.clone();
        zero.payments[1].amount = 0;
        assert!(matches!(zero.check(), Err(BatchError::NotPositive { index: 1, .. })));
        let mut usd = ok.clone();
        usd.payments[1].currency = "USD".into();
        let e = usd.check().expect_err("mixed");
        assert!(matches!(e, BatchError::MixedCurrencies { index: 1, .. }));
        assert!(e.to_string().contains("USD") && e.to_string().contains("CAD"), "{e}");
        let mut dup = ok.clone();
        dup.payments[1].reference = dup.payments[0].reference.clone();
        assert!(matches!(dup.check(), Err(BatchError::DuplicateReference { index: 1, .. })));
        let mut big = ok.clone();
        big.payments[0].amount = MAX_AMOUNT + 1;
        assert!(matches!(big.check(), Err(BatchError::TooLarge { index: 0, .. })));
        let mut bad_ref = ok.clone();
        bad_ref.payments[0].reference = "P 1".into();
        assert!(matches!(bad_ref.check(), Err(BatchError::Reference { index: 0, .. })));
        let mut no_name = ok;
        no_name.payments[0].name = "  ".into();
        assert!(matches!(no_name.check(), Err(BatchError::Name { index: 0, .. })));
    }

    #[test]
    fn helpers() {
        assert_eq!(decimal(150_000), "1500.00");
        assert_eq!(decimal(5), "0.05");
        assert_eq!(ascii("Québec, Montréal — Œuvre"), "Quebec, Montreal   Ouvre");
        let a = BankAccount::parse("815", "30001", "1234567").expect("account");
        assert_eq!(routing(&a), "081530001");
    }
}
