//! The bank's answer to a payment file: which payments were paid, which
//! came back (closed account, wrong transit…) and why.
//!
//! Banks send this in many shapes; guichet reads two:
//!
//! - a CSV with a header line and the columns `reference`, `status`
//!   (`paid`, `returned` or `rejected`; French `payé`, `retourné`, `rejeté`
//!   too) and `reason` (required unless paid), in any order, other columns
//!   ignored;
//! - an ISO 20022 payment status report, **pain.002.001.03**, the answer
//!   to a pain.001: each `TxInfAndSts` names the payment by its
//!   `OrgnlEndToEndId` (guichet's reference) and gives its `TxSts`:
//!   `ACSC` (settled) is paid, `RJCT` rejected with its reason code
//!   (`StsRsnInf/Rsn/Cd`, and `AddtlInf` when given). Interim statuses
//!   (`ACCP`, `ACSP`, `ACTC`, `ACWC`, `PDNG`, `RCVD`) change nothing and
//!   are counted apart. A whole file or payment group rejected without
//!   transaction details is an error: which payments it names is not
//!   said, so none is marked.
//!
//! Every line is read: the good ones and a precise complaint for each bad
//! one (with its line), so an operator can fix the file; nothing is
//! silently skipped.

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Paid,
    /// The money came back after settlement.
    Returned,
    /// The bank refused the item before settlement.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLine {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    pub reference: String,
    pub status: Status,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

/// A returns file as read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    pub lines: Vec<ReturnLine>,
    pub errors: Vec<LineError>,
    /// Payments the bank gave an interim status (accepted, pending):
    /// nothing to apply yet.
    pub pending: usize,
    /// Those of them named one by one: (line, reference), to check they
    /// are payments that went to the bank.
    pub pending_references: Vec<(u64, String)>,
}

/// Reads a whole returns file: a pain.002 when it is XML, else a CSV.
pub fn parse(data: &[u8]) -> Parsed {
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
    if data.trim_ascii_start().starts_with(b"<") {
        return parse_pain002(data);
    }
    let (lines, errors) = parse_csv(data);
    Parsed { lines, errors, ..Parsed::default() }
}

/// Reads a pain.002.001.03 status report.
pub fn parse_pain002(data: &[u8]) -> Parsed {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut interim = 0;
    let mut pending_references = Vec::new();
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(e) => {
            errors.push(LineError { line: 1, message: format!("the status report is not UTF-8: {e}") });
            return Parsed { lines, errors, pending: interim, pending_references };
        }
    };
    let doc = match roxmltree::Document::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let pos = e.pos();
            errors.push(LineError {
                line: u64::from(pos.row),
                message: format!("unreadable XML at column {}: {e}", pos.col),
            });
            return Parsed { lines, errors, pending: interim, pending_references };
        }
    };
    let line_of = |n: roxmltree::Node| u64::from(doc.text_pos_at(n.range().start).row);
    let root = doc.root_element();
    let Some(report) = child(root, "CstmrPmtStsRpt").filter(|_| root.has_tag_name("Document")) else {
        errors.push(LineError {
            line: line_of(root),
            message: "not a payment status report (pain.002: Document/CstmrPmtStsRpt)".into(),
        });
        return Parsed { lines, errors, pending: interim, pending_references };
    };
    // Why a status came: reason code, then the bank's words.
    let reason_of = |n: roxmltree::Node| {
        let info = n.children().filter(|c| c.has_tag_name("StsRsnInf")).collect::<Vec<_>>();
        let mut parts = Vec::new();
        for i in info {
            let code = text_of(child(i, "Rsn").and_then(|r| child(r, "Cd").or_else(|| child(r, "Prtry"))));
            let words: Vec<String> =
                i.children().filter(|c| c.has_tag_name("AddtlInf")).map(|c| text_of(Some(c))).collect();
            let part = [code, words.join(" ")].into_iter().filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ");
            if !part.is_empty() {
                parts.push(part);
            }
        }
        parts.join("; ")
    };
    const INTERIM: [&str; 6] = ["ACCP", "ACSP", "ACTC", "ACWC", "PDNG", "RCVD"];
    // A status given for a whole file or payment group without its
    // payments named: interim is news (pending), anything else cannot be
    // applied to payments nobody named.
    let whole = |n: roxmltree::Node, status: &str, what: &str, errors: &mut Vec<LineError>, interim: &mut usize| {
        let st = text_of(child(n, status));
        if st.is_empty() {
            return;
        }
        if INTERIM.contains(&st.as_str()) {
            let count = text_of(child(n, "OrgnlNbOfTxs")).parse::<usize>().unwrap_or(1);
            *interim += count.max(1);
            return;
        }
        let reason = reason_of(n);
        let said = if reason.is_empty() { st.clone() } else { format!("{st} {reason}") };
        errors.push(LineError {
            line: line_of(n),
            message: format!(
                "the bank gave the whole {what} the status {said} without naming its payments: nothing is \
                 marked; ask the bank for a report per payment"
            ),
        });
    };
    let groups: Vec<_> = report.children().filter(|c| c.has_tag_name("OrgnlPmtInfAndSts")).collect();
    let transactions: Vec<_> = report.descendants().filter(|n| n.has_tag_name("TxInfAndSts")).collect();
    if transactions.is_empty() && groups.iter().all(|g| text_of(child(*g, "PmtInfSts")).is_empty()) {
        for n in report.children().filter(|c| c.has_tag_name("OrgnlGrpInfAndSts")) {
            whole(n, "GrpSts", "file", &mut errors, &mut interim);
        }
    }
    // Each payment group that names none of its payments, whatever the
    // others do.
    for g in &groups {
        if !g.children().any(|c| c.has_tag_name("TxInfAndSts")) {
            whole(*g, "PmtInfSts", "payment group", &mut errors, &mut interim);
        }
    }
    // A transaction without its own status takes its group's, then the file's.
    let inherited = |tx: roxmltree::Node| {
        let group = tx.parent().filter(|p| p.has_tag_name("OrgnlPmtInfAndSts")).map(|p| text_of(child(p, "PmtInfSts")));
        let file = child(report, "OrgnlGrpInfAndSts").map(|g| text_of(child(g, "GrpSts")));
        [group, file].into_iter().flatten().find(|s| !s.is_empty()).unwrap_or_default()
    };
    let mut seen = std::collections::HashMap::new();
    for tx in transactions {
        let line = line_of(tx);
        let reference = text_of(child(tx, "OrgnlEndToEndId"));
        let own = text_of(child(tx, "TxSts"));
        let status = if own.is_empty() { inherited(tx) } else { own };
        if reference.is_empty() {
            errors.push(LineError { line, message: "no OrgnlEndToEndId (the payment reference)".into() });
            continue;
        }
        let status = match status.as_str() {
            "ACSC" => Status::Paid,
            "RJCT" => Status::Rejected,
            st if INTERIM.contains(&st) => {
                interim += 1;
                if let Some(first) = seen.insert(reference.clone(), line) {
                    errors.push(LineError { line, message: format!("{reference} is already on line {first}") });
                } else {
                    pending_references.push((line, reference));
                }
                continue;
            }
            "" => {
                errors.push(LineError { line, message: format!("{reference}: no TxSts (its status)") });
                continue;
            }
            other => {
                errors.push(LineError {
                    line,
                    message: format!("{reference}: unknown status {other:?} (ACSC, RJCT or an interim one)"),
                });
                continue;
            }
        };
        let mut reason = reason_of(tx);
        if reason.is_empty() {
            // A status inherited from the group comes with the group's reason.
            reason = tx.parent().map(reason_of).unwrap_or_default();
        }
        accept(ReturnLine { line, reference, status, reason }, &mut seen, &mut lines, &mut errors);
    }
    Parsed { lines, errors, pending: interim, pending_references }
}

/// Keeps a line, unless a payment that did not go through has no reason,
/// or its reference was on an earlier line (`seen`: reference → line).
fn accept(
    l: ReturnLine,
    seen: &mut std::collections::HashMap<String, u64>,
    lines: &mut Vec<ReturnLine>,
    errors: &mut Vec<LineError>,
) {
    if l.status != Status::Paid && l.reason.is_empty() {
        let what = if l.status == Status::Rejected { "rejected" } else { "returned" };
        errors.push(LineError { line: l.line, message: format!("{}: a {what} payment needs its reason", l.reference) });
    } else if let Some(first) = seen.insert(l.reference.clone(), l.line) {
        errors.push(LineError { line: l.line, message: format!("{} is already on line {first}", l.reference) });
    } else {
        lines.push(l);
    }
}

/// The first child element named `name`.
fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name(name))
}

/// An element's text, trimmed ("" when absent).
fn text_of(n: Option<roxmltree::Node>) -> String {
    n.and_then(|n| n.text()).map(str::trim).unwrap_or("").to_owned()
}

fn parse_csv(data: &[u8]) -> (Vec<ReturnLine>, Vec<LineError>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut r = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(data);
    let headers = match r.headers() {
        Ok(h) => h.iter().map(|h| h.to_lowercase()).collect::<Vec<_>>(),
        Err(e) => {
            errors.push(LineError { line: 1, message: format!("unreadable header: {e}") });
            return (lines, errors);
        }
    };
    let col = |names: &[&str]| headers.iter().position(|h| names.contains(&h.as_str()));
    let (Some(c_ref), Some(c_status)) = (col(&["reference", "référence"]), col(&["status", "statut"])) else {
        errors.push(LineError {
            line: 1,
            message: "the header must name the columns reference, status and reason".into(),
        });
        return (lines, errors);
    };
    let c_reason = col(&["reason", "raison", "motif"]);
    let mut seen = std::collections::HashMap::new();
    for rec in r.records() {
        let rec = match rec {
            Ok(rec) => rec,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(LineError { line, message: format!("unreadable line: {e}") });
                continue;
            }
        };
        let line = rec.position().map_or(0, |p| p.line());
        if rec.iter().all(|f| f.is_empty()) {
            continue;
        }
        let field = |c: usize| rec.get(c).unwrap_or("").to_owned();
        let reference = field(c_ref);
        let status = match field(c_status).to_lowercase().as_str() {
            "paid" | "payé" | "paye" => Status::Paid,
            "returned" | "retourné" | "retourne" => Status::Returned,
            "rejected" | "rejeté" | "rejete" => Status::Rejected,
            other => {
                errors.push(LineError {
                    line,
                    message: format!("unknown status {other:?} (paid, returned or rejected)"),
                });
                continue;
            }
        };
        let reason = c_reason.map(field).unwrap_or_default();
        if reference.is_empty() {
            errors.push(LineError { line, message: "no payment reference".into() });
            continue;
        }
        accept(ReturnLine { line, reference, status, reason }, &mut seen, &mut lines, &mut errors);
    }
    (lines, errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_line_is_named() {
        let f = "\u{feff}Reference,Status,Reason,Amount\n\
                 P000001,paid,,1500.00\n\
                 P000002,returned,905 compte fermé,800.00\n\
                 P000003,lost,,1.00\n\
                 P000004,rejected,,1.00\n\
                 ,paid,,\n\
                 P000001,paid,,1500.00\n\
                 \n\
                 P000005,retourné,912 transit invalide\n";
        let Parsed { lines: ok, errors: bad, pending, .. } = parse(f.as_bytes());
        assert_eq!(pending, 0);
        assert_eq!(ok.len(), 3);
        assert_eq!(
            ok[1],
            ReturnLine {
                line: 3,
                reference: "P000002".into(),
                status: Status::Returned,
                reason: "905 compte fermé".into()
            }
        );
        assert_eq!(ok[2].status, Status::Returned);
        let lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![4, 5, 6, 7], "{bad:?}");
        assert!(bad[0].message.contains("lost"));
        assert!(bad[1].message.contains("reason"));
        assert!(bad[3].message.contains("line 2"));
        assert_eq!(parse(b"a,b\n1,2\n").errors.len(), 1);
    }

    /// A status report as a bank sends it, one transaction per element.
    fn report(transactions: &str, group_status: &str) -> String {
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.03\">\n\
             <CstmrPmtStsRpt>\n\
             <GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2020-07-16T09:00:00</CreDtTm></GrpHdr>\n\
             <OrgnlGrpInfAndSts><OrgnlMsgId>LOT-1</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId>\
             {group_status}</OrgnlGrpInfAndSts>\n\
             <OrgnlPmtInfAndSts><OrgnlPmtInfId>LOT-1</OrgnlPmtInfId>\n{transactions}</OrgnlPmtInfAndSts>\n\
             </CstmrPmtStsRpt>\n\
             </Document>\n"
        )
    }

    fn tx(reference: &str, status: &str, reason: &str) -> String {
        let e2e = if reference.is_empty() {
            String::new()
        } else {
            format!("<OrgnlEndToEndId>{reference}</OrgnlEndToEndId>")
        };
        format!("<TxInfAndSts>{e2e}<TxSts>{status}</TxSts>{reason}</TxInfAndSts>\n")
    }

    #[test]
    fn a_pain002_status_report_marks_settled_and_rejected_payments() {
        let closed = "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>Compte fermé</AddtlInf></StsRsnInf>";
        let body = [
            tx("P000001", "ACSC", ""),
            tx("P000002", "RJCT", closed),
            tx("P000003", "ACSP", ""),
            tx("P000004", "XXXX", ""),
            tx("P000005", "RJCT", ""),
            tx("", "ACSC", ""),
            tx("P000001", "ACSC", ""),
            tx("P000006", "RJCT", "<StsRsnInf><Rsn><Prtry>905</Prtry></Rsn></StsRsnInf>"),
        ]
        .concat();
        let xml = report(&body, "<GrpSts>PART</GrpSts>");
        // `parse` tells XML from CSV by itself (a byte-order mark first too).
        let Parsed { lines: ok, errors: bad, pending, pending_references } = parse(format!("\u{feff}{xml}").as_bytes());
        assert_eq!(pending, 1);
        assert_eq!(pending_references, vec![(9, "P000003".to_owned())]);
        assert_eq!(ok.len(), 3, "{ok:?}");
        assert_eq!(
            ok[0],
            ReturnLine { line: 7, reference: "P000001".into(), status: Status::Paid, reason: String::new() }
        );
        assert_eq!(
            ok[1],
            ReturnLine {
                line: 8,
                reference: "P000002".into(),
                status: Status::Rejected,
                reason: "AC04 Compte fermé".into()
            }
        );
        assert_eq!((ok[2].reference.as_str(), ok[2].reason.as_str()), ("P000006", "905"));
        let lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
        assert_eq!(lines, vec![10, 11, 12, 13], "{bad:?}");
        assert!(bad[0].message.contains("XXXX"));
        assert!(bad[1].message.contains("reason"));
        assert!(bad[2].message.contains("OrgnlEndToEndId"));
        assert!(bad[3].message.contains("line 7"));
    }

    #[test]
    fn a_pain002_rejecting_the_whole_file_marks_nothing_and_says_why() {
        let xml = report(
            "",
            "<GrpSts>RJCT</GrpSts><StsRsnInf><Rsn><Cd>FF01</Cd></Rsn><AddtlInf>Invalid file format</AddtlInf></StsRsnInf>",
        );
        let Parsed { lines: ok, errors: bad, .. } = parse(xml.as_bytes());
        assert!(ok.is_empty());
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert_eq!(bad[0].line, 5);
        assert!(bad[0].message.contains("whole file") && bad[0].message.contains("RJCT FF01 Invalid file format"));
        // Accepted whole, nothing settled yet: pending, nothing wrong.
        let accepted = report("", "<OrgnlNbOfTxs>3</OrgnlNbOfTxs><GrpSts>ACTC</GrpSts>");
        assert_eq!(parse(accepted.as_bytes()), Parsed { pending: 3, ..Parsed::default() });
        // Settled whole without the payments named: which ones is not said.
        let settled = parse(report("", "<GrpSts>ACSC</GrpSts>").as_bytes());
        assert!(settled.lines.is_empty() && settled.errors.len() == 1, "{settled:?}");
        // One group rejected whole beside another that names its payments:
        // the rejected group is not skipped.
        let xml = report(&tx("P000001", "ACSC", ""), "").replace(
            "</CstmrPmtStsRpt>",
            "<OrgnlPmtInfAndSts><OrgnlPmtInfId>LOT-2</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts>\
             <StsRsnInf><Rsn><Cd>AM04</Cd></Rsn></StsRsnInf></OrgnlPmtInfAndSts>\n</CstmrPmtStsRpt>",
        );
        let both = parse(xml.as_bytes());
        assert_eq!(both.lines.len(), 1);
        assert_eq!(both.errors.len(), 1, "{both:?}");
        assert!(both.errors[0].message.contains("payment group") && both.errors[0].message.contains("AM04"));
        // A transaction without its own status takes its group's (and its reason).
        let xml = report("<TxInfAndSts><OrgnlEndToEndId>P000009</OrgnlEndToEndId></TxInfAndSts>\n", "")
            .replace("<OrgnlPmtInfId>LOT-1</OrgnlPmtInfId>", "<OrgnlPmtInfId>LOT-1</OrgnlPmtInfId><PmtInfSts>RJCT</PmtInfSts><StsRsnInf><Rsn><Cd>AC01</Cd></Rsn></StsRsnInf>");
        let inherited = parse(xml.as_bytes());
        assert_eq!(inherited.errors, vec![]);
        assert_eq!((inherited.lines[0].status, inherited.lines[0].reason.as_str()), (Status::Rejected, "AC01"));
    }

    #[test]
    fn unreadable_or_foreign_xml_is_refused_with_its_line() {
        let Parsed { lines: ok, errors: bad, .. } =
            parse(b"<?xml version=\"1.0\"?>\n<Document>\n<CstmrPmtStsRpt>\n</Document>\n");
        assert!(ok.is_empty());
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].line, 4, "{bad:?}");
        let bad = parse(b"<Document><CstmrCdtTrfInitn/></Document>").errors;
        assert!(bad[0].message.contains("pain.002"), "{bad:?}");
        // No DTD (no entity expansion from a hostile file).
        let bad = parse(b"<!DOCTYPE d [<!ENTITY a \"aaaa\">]><Document>&a;</Document>").errors;
        assert_eq!(bad.len(), 1, "{bad:?}");
        assert!(bad[0].message.contains("unreadable XML"), "{bad:?}");
    }
}
