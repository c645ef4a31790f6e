//! The payment files read back by code that shares nothing with the
//! writers: a Standard 005 parser written here from the standard's field
//! table, an XML parser (roxmltree) for pain.001, and the official ISO 20022
//! schema through `xmllint` when it is installed (required in CI).

use guichet_core::BankAccount;
use guichet_pay::{Batch, Direction, Originator, Payment, cpa005, pain001};
use proptest::prelude::*;

fn originator() -> Originator {
    Originator {
        name: "Société d'habitation du Québec".into(),
        short_name: "SHQ".into(),
        id: "SHQ0000001".into(),
        data_centre: "00310".into(),
        account: BankAccount::parse("815", "30001", "987654321").expect("account"),
        credit_code: "450".into(),
        debit_code: "430".into(),
    }
}

fn payment(n: usize, amount: i64, name: &str) -> Payment {
    Payment {
        reference: format!("D{n:08}"),
        name: name.into(),
        account: BankAccount::parse("003", &format!("{:05}", 10000 + n % 90000), &format!("{:07}", 5_000_000 + n))
            .expect("account"),
        amount,
        currency: "CAD".into(),
        remittance: format!("Prêt loyer — dossier {n}"),
    }
}

fn batch(payments: Vec<Payment>, direction: Direction) -> Batch {
    Batch {
        id: "LOT-2020-06-01".into(),
        created: jiff::civil::date(2020, 6, 1).at(8, 0, 0, 0),
        execution: jiff::civil::date(2020, 6, 3),
        file_number: 42,
        direction,
        payments,
    }
}

// ---------------------------------------------------------------------------
// Standard 005, read from the published field table (1-based positions).
// ---------------------------------------------------------------------------

/// (name, first position, length) in a transaction segment.
const SEGMENT_TABLE: &[(&str, usize, usize)] = &[
    ("transaction_type", 1, 3),
    ("amount", 4, 10),
    ("due_date", 14, 6),
    ("institution", 20, 9),
    ("account", 29, 12),
    ("item_trace", 41, 22),
    ("stored_type", 63, 3),
    ("short_name", 66, 15),
    ("payee_name", 81, 30),
    ("long_name", 111, 30),
    ("user_id", 141, 10),
    ("cross_reference", 151, 19),
    ("return_institution", 170, 9),
    ("return_account", 179, 12),
    ("sundry", 191, 15),
    ("filler", 206, 22),
    ("settlement_code", 228, 2),
    ("invalid_element", 230, 11),
];

#[derive(Debug, Default)]
struct Parsed {
    header: Vec<(String, String)>,
    items: Vec<std::collections::BTreeMap<&'static str, String>>,
    kinds: Vec<char>,
    trailer_debit_value: i64,
    trailer_debit_count: i64,
    trailer_credit_value: i64,
    trailer_credit_count: i64,
}

fn text(rec: &str, first: usize, len: usize) -> String {
    rec[first - 1..first - 1 + len].to_owned()
}

fn parse_005(file: &[u8]) -> Result<Parsed, String> {
    let s = std::str::from_utf8(file).map_err(|_| "not ASCII".to_string())?;
    if !s.is_ascii() {
        return Err("not ASCII".into());
    }
    let records: Vec<&str> = s.split("\r\n").collect();
    if records.last() != Some(&"") {
        return Err("the file must end with CR LF".into());
    }
    let records = &records[..records.len() - 1];
    let mut p = Parsed::default();
    for (i, r) in records.iter().enumerate() {
        if r.len() != 1464 {
            return Err(format!("record {} is {} bytes", i + 1, r.len()));
        }
        let count: usize = text(r, 2, 9).parse().map_err(|_| format!("record {}: count", i + 1))?;
        if count != i + 1 {
            return Err(format!("record {} numbered {count}", i + 1));
        }
        let kind = r.as_bytes()[0] as char;
        p.kinds.push(kind);
        match kind {
            'A' => {
                for (name, first, len) in [
                    ("originator", 11, 10),
                    ("file_number", 21, 4),
                    ("created", 25, 6),
                    ("data_centre", 31, 5),
                    ("reserved", 36, 20),
                    ("currency", 56, 3),
                ] {
                    p.header.push((name.into(), text(r, first, len)));
                }
                if !r[58..].bytes().all(|b| b == b' ') {
                    return Err("A record: filler not blank".into());
                }
            }
            'C' | 'D' => {
                let mut blank_seen = false;
                for seg in 0..6 {
                    let seg_text = &r[24 + seg * 240..24 + (seg + 1) * 240];
                    if seg_text.bytes().all(|b| b == b' ') {
                        blank_seen = true;
                        continue;
                    }
                    if blank_seen {
                        return Err(format!("record {}: a segment after a blank one", i + 1));
                    }
                    let mut item = std::collections::BTreeMap::new();
                    for (name, first, len) in SEGMENT_TABLE {
                        item.insert(*name, text(seg_text, *first, *len));
                    }
                    item.insert("record_kind", kind.to_string());
                    item.insert("originator", text(r, 11, 10));
                    item.insert("file_number", text(r, 21, 4));
                    p.items.push(item);
                }
            }
            'Z' => {
                let num = |first, len| text(r, first, len).parse::<i64>().map_err(|_| "Z: not a number".to_string());
                p.trailer_debit_value = num(25, 14)?;
                p.trailer_debit_count = num(39, 8)?;
                p.trailer_credit_value = num(47, 14)?;
                p.trailer_credit_count = num(61, 8)?;
                for (first, len) in [(69, 14), (83, 8), (91, 14), (105, 8)] {
                    if num(first, len)? != 0 {
                        return Err("Z: error-correction totals must be zero".into());
                    }
                }
                if !r[112..].bytes().all(|b| b == b' ') {
                    return Err("Z record: filler not blank".into());
                }
            }
            other => return Err(format!("record {}: unknown type {other:?}", i + 1)),
        }
    }
    if p.kinds.first() != Some(&'A') || p.kinds.last() != Some(&'Z') {
        return Err("a file starts with A and ends with Z".into());
    }
    Ok(p)
}

#[test]
fn the_field_table_tiles_the_segment() {
    let mut next = 1;
    for (name, first, len) in SEGMENT_TABLE {
        assert_eq!(*first, next, "{name}");
        next += len;
    }
    assert_eq!(next, 241);
}

#[test]
fn standard_005_credits_read_back_field_by_field() {
    let payments = vec![
        payment(1, 150_000, "Gestion Tremblay & Fils inc."),
        payment(2, 80_000, "Éloïse Côté-Bérubé"),
        payment(3, 1, "Un nom bien trop long pour les trente caractères du champ"),
    ];
    let b = batch(payments.clone(), Direction::Credit);
    let file = cpa005::write(&b, &originator()).expect("file");
    let p = parse_005(&file).expect("parse");
    assert_eq!(p.kinds, vec!['A', 'C', 'Z']);
    let h: std::collections::HashMap<_, _> = p.header.iter().cloned().collect();
    assert_eq!(h["originator"], "SHQ0000001");
    assert_eq!(h["file_number"], "0042");
    assert_eq!(h["created"], "020153", "2020-06-01 is day 153 of a leap year");
    assert_eq!(h["data_centre"], "00310");
    assert_eq!(h["currency"], "CAD");
    assert_eq!(p.items.len(), 3);
    let first = &p.items[0];
    assert_eq!(first["transaction_type"], "450");
    assert_eq!(first["amount"], "0000150000");
    assert_eq!(first["due_date"], "020155");
    assert_eq!(first["institution"], "000310001");
    assert_eq!(first["account"], "5000001     ");
    assert_eq!(first["item_trace"], "0".repeat(22));
    assert_eq!(first["payee_name"], format!("{:<30}", "GESTION TREMBLAY & FILS INC."));
    assert_eq!(first["long_name"], format!("{:<30}", "SOCIETE D'HABITATION DU QUEBEC"));
    assert_eq!(first["cross_reference"], format!("{:<19}", "D00000001"));
    assert_eq!(first["return_institution"], "081530001");
    assert_eq!(first["return_account"], "987654321   ");
    assert_eq!(p.items[1]["payee_name"].trim_end(), "ELOISE COTE-BERUBE");
    assert_eq!(p.items[2]["payee_name"], "UN NOM BIEN TROP LONG POUR LES");
    assert_eq!((p.trailer_credit_value, p.trailer_credit_count), (230_001, 3));
    assert_eq!((p.trailer_debit_value, p.trailer_debit_count), (0, 0));
}

#[test]
fn standard_005_debits_for_loan_repayments() {
    let b = batch(vec![payment(7, 150_000, "Locataire Un"), payment(8, 75_000, "Locataire Deux")], Direction::Debit);
    let p = parse_005(&cpa005::write(&b, &originator()).expect("file")).expect("parse");
    assert_eq!(p.kinds, vec!['A', 'D', 'Z']);
    assert!(p.items.iter().all(|i| i["transaction_type"] == "430" && i["record_kind"] == "D"));
    assert_eq!((p.trailer_debit_value, p.trailer_debit_count), (225_000, 2));
    assert_eq!((p.trailer_credit_value, p.trailer_credit_count), (0, 0));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Any set of payments gives a file whose every record is 1,464 bytes,
    /// whose items are the payments in order, and whose trailer matches.
    #[test]
    fn any_batch_gives_a_consistent_standard_005_file(
        amounts in prop::collection::vec(1i64..=guichet_pay::MAX_AMOUNT, 1..40),
        names in prop::collection::vec("[ -~éèàçÉÔœ]{1,45}", 40),
        debit in any::<bool>(),
    ) {
        let payments: Vec<Payment> = amounts
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let name = if names[i].trim().is_empty() { "X".to_string() } else { names[i].clone() };
                payment(i, *a, &name)
            })
            .collect();
        let direction = if debit { Direction::Debit } else { Direction::Credit };
        let file = cpa005::write(&batch(payments.clone(), direction), &originator()).expect("file");
        let p = parse_005(&file).map_err(TestCaseError::fail)?;
        prop_assert_eq!(p.items.len(), payments.len());
        prop_assert_eq!(p.kinds.len(), 2 + payments.len().div_ceil(6));
        let mut sum = 0i64;
        for (item, pay) in p.items.iter().zip(&payments) {
            prop_assert_eq!(item["amount"].parse::<i64>().expect("amount"), pay.amount);
            prop_assert_eq!(item["cross_reference"].trim_end(), pay.reference.as_str());
            sum += pay.amount;
        }
        let (value, count) = if debit {
            (p.trailer_debit_value, p.trailer_debit_count)
        } else {
            (p.trailer_credit_value, p.trailer_credit_count)
        };
        prop_assert_eq!(value, sum);
        prop_assert_eq!(count as usize, payments.len());
    }

    /// pain.001 read back: the totals in the header equal the sum of the
    /// transactions, which are the payments.
    #[test]
    fn any_batch_gives_a_consistent_pain001(
        amounts in prop::collection::vec(1i64..=guichet_pay::MAX_AMOUNT, 1..30),
        name in "[ -~éèàçÉÔœ<>&\"']{1,200}",
    ) {
        let name = if name.trim().is_empty() { "X".to_string() } else { name };
        let payments: Vec<Payment> = amounts.iter().enumerate().map(|(i, a)| payment(i, *a, &name)).collect();
        let xml = pain001::write(&batch(payments.clone(), Direction::Credit), &originator()).expect("xml");
        let (count, ctrl, txs) = read_pain001(&xml);
        prop_assert_eq!(count, payments.len());
        prop_assert_eq!(ctrl, payments.iter().map(|p| p.amount).sum::<i64>());
        for (tx, pay) in txs.iter().zip(&payments) {
            prop_assert_eq!(&tx.0, &pay.reference);
            prop_assert_eq!(tx.1, pay.amount);
            let expected: String = pay.name.trim().chars().take(140).collect();
            prop_assert_eq!(&tx.2, &expected);
        }
    }
}

/// (NbOfTxs, CtrlSum in cents, [(EndToEndId, cents, creditor name)]),
/// checking that the group header and the payment block agree.
fn read_pain001(xml: &str) -> (usize, i64, Vec<(String, i64, String)>) {
    let doc = roxmltree::Document::parse(xml).expect("well-formed");
    let ns = pain001::NAMESPACE;
    let root = doc.root_element();
    assert_eq!(root.tag_name().namespace(), Some(ns));
    fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> roxmltree::Node<'a, 'i> {
        n.children().find(|c| c.has_tag_name((pain001::NAMESPACE, name))).unwrap_or_else(|| panic!("no {name}"))
    }
    let cents = |s: &str| {
        let (units, frac) = s.split_once('.').expect("two decimals");
        assert_eq!(frac.len(), 2, "{s}");
        units.parse::<i64>().expect("units") * 100 + frac.parse::<i64>().expect("cents")
    };
    let init = child(root, "CstmrCdtTrfInitn");
    let hdr = child(init, "GrpHdr");
    let count: usize = child(hdr, "NbOfTxs").text().expect("n").parse().expect("n");
    let ctrl = cents(child(hdr, "CtrlSum").text().expect("sum"));
    let inf = child(init, "PmtInf");
    assert_eq!(child(inf, "NbOfTxs").text(), child(hdr, "NbOfTxs").text());
    assert_eq!(child(inf, "CtrlSum").text(), child(hdr, "CtrlSum").text());
    let txs = inf
        .children()
        .filter(|c| c.has_tag_name((ns, "CdtTrfTxInf")))
        .map(|tx| {
            let id = child(child(tx, "PmtId"), "EndToEndId").text().expect("id").to_owned();
            let amt = child(child(tx, "Amt"), "InstdAmt");
            assert_eq!(amt.attribute("Ccy"), Some("CAD"));
            let name = child(child(tx, "Cdtr"), "Nm").text().expect("name").to_owned();
            (id, cents(amt.text().expect("amount")), name)
        })
        .collect::<Vec<_>>();
    assert_eq!(txs.len(), count);
    (count, ctrl, txs)
}

/// The official schema, through libxml2. `GUICHET_PAIN001_XSD` names it
/// (`.ci/run` fetches it); without it the test says so and, when
/// `GUICHET_REQUIRE_VALIDATORS` is set, fails.
#[test]
fn pain001_validates_against_the_iso20022_schema() {
    let Some(xsd) = std::env::var_os("GUICHET_PAIN001_XSD") else {
        assert!(std::env::var_os("GUICHET_REQUIRE_VALIDATORS").is_none(), "GUICHET_PAIN001_XSD is not set");
        eprintln!("skipped: GUICHET_PAIN001_XSD is not set");
        return;
    };
    let dir = std::env::temp_dir().join(format!("guichet-pay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let payments = (1..=25).map(|n| payment(n, 1234 * n as i64, "Tremblay & Fils <Gestion> «immeubles»")).collect();
    let xml = pain001::write(&batch(payments, Direction::Credit), &originator()).expect("xml");
    let good = dir.join("good.xml");
    std::fs::write(&good, &xml).expect("write");
    let run = |f: &std::path::Path| {
        std::process::Command::new("xmllint")
            .arg("--noout")
            .arg("--schema")
            .arg(&xsd)
            .arg(f)
            .output()
            .expect("xmllint runs")
    };
    let out = run(&good);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The validator can fail: a control sum that is not a number is refused.
    let bad = dir.join("bad.xml");
    std::fs::write(&bad, xml.replacen("<CtrlSum>", "<CtrlSum>x", 1)).expect("write");
    assert!(!run(&bad).status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
