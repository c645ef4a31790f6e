//! Payments Canada Standard 005 ("AFT files"): the fixed-width format
//! Canadian banks take for batches of direct deposits (`C` records) and
//! pre-authorized debits (`D` records).
//!
//! A file is logical records of exactly [`RECORD`] bytes, each followed by
//! CR LF: one `A` header, detail records of up to six [`SEGMENT`]-byte
//! transactions after a 24-byte common part, and one `Z` trailer with the
//! counts and values of debits and credits. Numeric fields are right
//! justified and zero filled, alphanumeric ones left justified and space
//! filled; unused segments are spaces. Dates are `0YYDDD` (day of year).
//! Positions (1-based, as the standard counts them) are in the comments.

use crate::{Batch, BatchError, Direction, Originator, Totals, ascii, routing};

/// Bytes in one logical record.
pub const RECORD: usize = 1464;
/// Bytes in one transaction segment of a `C` or `D` record.
pub const SEGMENT: usize = 240;
/// Transactions in one detail record.
pub const PER_RECORD: usize = 6;
/// Bytes before the first segment (type, count, origination control data).
const COMMON: usize = 24;

/// `0YYDDD`.
pub fn julian(d: jiff::civil::Date) -> String {
    format!("0{:02}{:03}", d.year().rem_euclid(100), d.day_of_year())
}

struct Record([u8; RECORD]);

impl Record {
    fn new(kind: u8, number: u64, org: &Originator, file_number: u16) -> Result<Record, BatchError> {
        let mut r = Record([b' '; RECORD]);
        r.0[0] = kind; // 1: logical record type
        r.num(1, 9, number as i64, "record count")?; // 2-10: logical record count
        r.alpha(10, 10, &org.id); // 11-20: originator's id
        r.num(20, 4, i64::from(file_number), "file creation number")?; // 21-24
        Ok(r)
    }

    /// Zero-filled, right-justified; an error rather than a cut number.
    fn num(&mut self, at: usize, len: usize, value: i64, what: &'static str) -> Result<(), BatchError> {
        let s = format!("{value:0len$}");
        if value < 0 || s.len() > len {
            return Err(BatchError::TotalTooLarge(what));
        }
        self.0[at..at + len].copy_from_slice(s.as_bytes());
        Ok(())
    }

    /// Digits given as text (already checked to be digits).
    fn digits(&mut self, at: usize, len: usize, s: &str) {
        let pad = len.saturating_sub(s.len());
        self.0[at..at + pad].fill(b'0');
        let take = s.len().min(len);
        self.0[at + pad..at + pad + take].copy_from_slice(&s.as_bytes()[..take]);
    }

    /// Space-filled, left-justified, upper-case ASCII, cut at `len`.
    fn alpha(&mut self, at: usize, len: usize, s: &str) {
        let s = ascii(s).to_ascii_uppercase();
        let b = s.trim().as_bytes();
        let take = b.len().min(len);
        self.0[at..at + take].copy_from_slice(&b[..take]);
    }
}

/// Writes the whole file, or nothing: the batch is checked first, and the
/// trailer's totals are checked against the detail records written.
pub fn write(batch: &Batch, org: &Originator) -> Result<Vec<u8>, BatchError> {
    let totals = batch.check()?;
    org.check()?;
    let details = batch.payments.len().div_ceil(PER_RECORD);
    let mut out = Vec::with_capacity((details + 2) * (RECORD + 2));
    let mut number: u64 = 1;
    let date = julian(batch.execution);

    // A: header.
    let mut a = Record::new(b'A', number, org, batch.file_number)?;
    a.alpha(24, 6, &julian(batch.created.date())); // 25-30: creation date
    a.digits(30, 5, &org.data_centre); // 31-35: destination data centre
    // 36-55: reserved for the direct clearer (spaces).
    a.alpha(55, 3, &totals.currency); // 56-58: currency
    push(&mut out, &a);

    let (kind, code) = match batch.direction {
        Direction::Credit => (b'C', &org.credit_code),
        Direction::Debit => (b'D', &org.debit_code),
    };
    let (org_routing, (_, _, org_account)) = (routing(&org.account), org.account.expose());
    let mut written: i64 = 0;
    for chunk in batch.payments.chunks(PER_RECORD) {
        number += 1;
        let mut r = Record::new(kind, number, org, batch.file_number)?;
        for (i, p) in chunk.iter().enumerate() {
            let s = COMMON + i * SEGMENT;
            let (_, _, account) = p.account.expose();
            r.digits(s, 3, code); // 01: transaction type
            r.num(s + 3, 10, p.amount, "amount")?; // 02: amount (cents)
            r.alpha(s + 13, 6, &date); // 03: date funds available / due
            r.digits(s + 19, 9, &routing(&p.account)); // 04: institution id
            r.alpha(s + 28, 12, account); // 05: payee's or payor's account
            r.digits(s + 40, 22, "0"); // 06: item trace number (the bank's)
            r.digits(s + 62, 3, "0"); // 07: stored transaction type
            r.alpha(s + 65, 15, &org.short_name); // 08: originator's short name
            r.alpha(s + 80, 30, &p.name); // 09: payee's or payor's name
            r.alpha(s + 110, 30, &org.name); // 10: originator's long name
            r.alpha(s + 140, 10, &org.id); // 11: originating direct clearer's user id
            r.alpha(s + 150, 19, &p.reference); // 12: originator's cross reference
            r.digits(s + 169, 9, &org_routing); // 13: institution for returns
            r.alpha(s + 178, 12, org_account); // 14: account for returns
            r.alpha(s + 190, 15, &p.remittance); // 15: originator's sundry information
            // 16: filler (22), 17: settlement code (2): spaces.
            r.digits(s + 229, 11, "0"); // 18: invalid data element id
            // The control total adds what the record now says, read back.
            written += std::str::from_utf8(&r.0[s + 3..s + 13]).ok().and_then(|a| a.parse::<i64>().ok()).unwrap_or(-1);
        }
        push(&mut out, &r);
    }

    // Z: trailer.
    if written != totals.sum {
        return Err(BatchError::ControlTotals { written: written.to_string(), expected: totals.sum.to_string() });
    }
    number += 1;
    let mut z = Record::new(b'Z', number, org, batch.file_number)?;
    let (debits, credits) = match batch.direction {
        Direction::Debit => ((totals.sum, totals.count), (0, 0)),
        Direction::Credit => ((0, 0), (totals.sum, totals.count)),
    };
    z.num(24, 14, debits.0, "total value of debits")?; // 25-38
    z.num(38, 8, debits.1 as i64, "number of debits")?; // 39-46
    z.num(46, 14, credits.0, "total value of credits")?; // 47-60
    z.num(60, 8, credits.1 as i64, "number of credits")?; // 61-68
    z.digits(68, 44, "0"); // 69-112: error corrections (E and F): none
    push(&mut out, &z);
    Ok(out)
}

fn push(out: &mut Vec<u8>, r: &Record) {
    out.extend_from_slice(&r.0);
    out.extend_from_slice(b"\r\n");
}

/// The control totals a writer promised, read back from a file's trailer
/// (count and value of the batch's direction).
pub fn trailer_totals(file: &[u8], direction: Direction) -> Option<Totals> {
    let z = file.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).rfind(|l| !l.is_empty())?;
    if z.len() != RECORD || z[0] != b'Z' {
        return None;
    }
    let field = |a: usize, b: usize| std::str::from_utf8(&z[a..b]).ok()?.parse::<i64>().ok();
    let (value, count) = match direction {
        Direction::Debit => (field(24, 38)?, field(38, 46)?),
        Direction::Credit => (field(46, 60)?, field(60, 68)?),
    };
    Some(Totals { count: count as u64, sum: value, currency: String::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn julian_dates() {
        assert_eq!(julian(jiff::civil::date(2020, 6, 3)), "020155");
        assert_eq!(julian(jiff::civil::date(2021, 1, 1)), "021001");
        assert_eq!(julian(jiff::civil::date(2020, 12, 31)), "020366");
    }

    #[test]
    fn seven_payments_fill_two_detail_records() {
        let b = batch((1..=7).map(|n| payment(n, 10_000 * n as i64)).collect());
        let f = write(&b, &originator()).expect("file");
        let records: Vec<&[u8]> = f.split(|&c| c == b'\n').filter(|l| !l.is_empty()).collect();
        assert_eq!(records.len(), 4, "A, two C, Z");
        for r in &records {
            assert_eq!(r.len(), RECORD + 1, "1464 bytes and CR");
        }
        // The second detail record holds one transaction; the rest is blank.
        assert!(records[2][COMMON + SEGMENT..RECORD].iter().all(|&c| c == b' '));
        assert_eq!(
            trailer_totals(&f, Direction::Credit),
            Some(Totals { count: 7, sum: 280_000, currency: String::new() })
        );
        // Accents dropped, upper case.
        let first = std::str::from_utf8(&records[1][COMMON + 80..COMMON + 110]).expect("ascii");
        assert_eq!(first.trim_end(), "PROPRIETAIRE N  1");
    }

    #[test]
    fn a_bad_batch_writes_nothing() {
        let mut b = batch(vec![payment(1, 100), payment(2, 200)]);
        b.payments[1].currency = "USD".into();
        assert!(matches!(write(&b, &originator()), Err(BatchError::MixedCurrencies { .. })));
        let mut o = originator();
        o.data_centre = "31".into();
        assert!(matches!(write(&batch(vec![payment(1, 100)]), &o), Err(BatchError::Originator(_))));
    }
}
