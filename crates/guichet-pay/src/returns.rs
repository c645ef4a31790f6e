//! The bank's answer to a payment file: which payments were paid, which
//! came back (closed account, wrong transit…) and why.
//!
//! Banks send this in many shapes; guichet reads a CSV with a header line
//! and the columns `reference`, `status` (`paid`, `returned` or `rejected`;
//! French `payé`, `retourné`, `rejeté` too) and `reason` (required unless
//! paid), in any order, other columns ignored. Every line is read: the
//! good ones and a precise complaint for each bad one, so an operator can
//! fix the file; nothing is silently skipped.

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

/// Reads a whole returns file.
pub fn parse(data: &[u8]) -> (Vec<ReturnLine>, Vec<LineError>) {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let data = data.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(data);
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
        if status != Status::Paid && reason.is_empty() {
            errors.push(LineError { line, message: format!("{reference}: a returned payment needs its reason") });
            continue;
        }
        if let Some(first) = seen.insert(reference.clone(), line) {
            errors.push(LineError { line, message: format!("{reference} is already on line {first}") });
            continue;
        }
        lines.push(ReturnLine { line, reference, status, reason });
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
        let (ok, bad) = parse(f.as_bytes());
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
        let (_, no_header) = parse(b"a,b\n1,2\n");
        assert_eq!(no_header.len(), 1);
    }
}
