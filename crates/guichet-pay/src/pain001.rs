//! ISO 20022 `pain.001.001.03`, customer credit transfer initiation: one
//! group header, one payment information block (the organization's
//! account, the execution date) and one credit transfer per payment.
//!
//! Canadian accounts have no IBAN: each agent is named by its clearing
//! system member id in the Canadian Payments Association's system (`CACPA`,
//! `0` + institution + transit) and each account by its number (`Othr`).
//! Element order follows the schema; the file validates against the
//! official XSD (tested with `xmllint --schema`).

use crate::{Batch, BatchError, Direction, Originator, decimal, routing};
use quick_xml::escape::escape;
use std::fmt::Write as _;

pub const NAMESPACE: &str = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03";

/// Writes the message, or nothing: the batch is checked first. pain.001
/// carries credits only; debits go in Standard 005 files.
pub fn write(batch: &Batch, org: &Originator) -> Result<String, BatchError> {
    let totals = batch.check()?;
    org.check()?;
    if batch.direction != Direction::Credit {
        return Err(BatchError::Originator("direction: pain.001 carries credit transfers only"));
    }
    let ctrl = decimal(totals.sum);
    let created = batch.created.strftime("%Y-%m-%dT%H:%M:%S");
    let (_, _, org_account) = org.account.expose();
    let mut x = String::with_capacity(900 + batch.payments.len() * 700);
    // `write!` into a String cannot fail.
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
<Document xmlns=\"{NAMESPACE}\">\n\
<CstmrCdtTrfInitn>\n\
<GrpHdr><MsgId>{id}</MsgId><CreDtTm>{created}</CreDtTm><NbOfTxs>{n}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum>\
<InitgPty><Nm>{name}</Nm><Id><OrgId><Othr><Id>{org_id}</Id></Othr></OrgId></Id></InitgPty></GrpHdr>\n\
<PmtInf><PmtInfId>{id}</PmtInfId><PmtMtd>TRF</PmtMtd><BtchBookg>false</BtchBookg><NbOfTxs>{n}</NbOfTxs><CtrlSum>{ctrl}</CtrlSum>\
<PmtTpInf><SvcLvl><Prtry>NORM</Prtry></SvcLvl><CtgyPurp><Cd>GOVT</Cd></CtgyPurp></PmtTpInf>\
<ReqdExctnDt>{date}</ReqdExctnDt><Dbtr><Nm>{name}</Nm></Dbtr>\
<DbtrAcct><Id><Othr><Id>{org_account}</Id></Othr></Id><Ccy>{ccy}</Ccy></DbtrAcct>\
<DbtrAgt><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CACPA</Cd></ClrSysId><MmbId>{org_routing}</MmbId></ClrSysMmbId></FinInstnId></DbtrAgt>\
<ChrgBr>SLEV</ChrgBr>\n",
        id = escape(&batch.id),
        n = totals.count,
        name = escape(cut(&org.name, 140)),
        org_id = escape(&org.id),
        date = batch.execution,
        ccy = totals.currency,
        org_routing = routing(&org.account),
    );
    for p in &batch.payments {
        let (_, _, account) = p.account.expose();
        let _ = writeln!(
            x,
            "<CdtTrfTxInf><PmtId><InstrId>{r}</InstrId><EndToEndId>{r}</EndToEndId></PmtId>\
<Amt><InstdAmt Ccy=\"{ccy}\">{amount}</InstdAmt></Amt>\
<CdtrAgt><FinInstnId><ClrSysMmbId><ClrSysId><Cd>CACPA</Cd></ClrSysId><MmbId>{routing}</MmbId></ClrSysMmbId></FinInstnId></CdtrAgt>\
<Cdtr><Nm>{name}</Nm></Cdtr><CdtrAcct><Id><Othr><Id>{account}</Id></Othr></Id></CdtrAcct>\
<RmtInf><Ustrd>{remittance}</Ustrd></RmtInf></CdtTrfTxInf>",
            r = p.reference,
            ccy = p.currency,
            amount = decimal(p.amount),
            routing = routing(&p.account),
            name = escape(cut(p.name.trim(), 140)),
            remittance =
                escape(cut(if p.remittance.trim().is_empty() { &p.reference } else { p.remittance.trim() }, 140)),
        );
    }
    x.push_str("</PmtInf>\n</CstmrCdtTrfInitn>\n</Document>\n");
    Ok(x)
}

/// At most `n` characters (the schema's Max140Text counts characters).
fn cut(s: &str, n: usize) -> &str {
    match s.char_indices().nth(n) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn names_are_escaped_and_cut() {
        let mut p = payment(1, 150_000);
        p.name = "Tremblay & Fils <gestion> \"immeubles\"".into();
        p.remittance = "é".repeat(200);
        let x = write(&batch(vec![p]), &originator()).expect("xml");
        assert!(x.contains("<Nm>Tremblay &amp; Fils &lt;gestion&gt; &quot;immeubles&quot;</Nm>"), "{x}");
        assert!(x.contains(&format!("<Ustrd>{}</Ustrd>", "é".repeat(140))));
        assert!(x.contains("<InstdAmt Ccy=\"CAD\">1500.00</InstdAmt>"));
        assert!(x.contains("<MmbId>000612345</MmbId>"));
    }

    #[test]
    fn debits_are_refused() {
        let mut b = batch(vec![payment(1, 100)]);
        b.direction = Direction::Debit;
        assert!(write(&b, &originator()).is_err());
    }
}
