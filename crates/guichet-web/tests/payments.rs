//! Payments end to end over the API, on each database: signed loans are
//! ready (a possible duplicate is held back), one finance officer builds a
//! batch and another approves it, the bank files are written (the pain.001
//! checked against the ISO schema, the Standard 005 read back), the
//! payees are told, the bank's returns are applied all or nothing, a
//! returned payment goes again only with bank details a second employee
//! confirmed, and the loans are repaid: by hand, then by a pre-authorized
//! debit file, with reminders before the due date.

mod common;

use common::*;
use serde_json::{Value, json};

const PASSPHRASE: &str = "correct horse battery staple";

struct People {
    worker: Client,
    officer: Client,
    fin1: Client,
    fin2: Client,
}

fn people(s: &Server) -> People {
    let mut officer = s.user("signataire@example.org", &["signing_officer"]);
    let (st, e) = officer.post("/api/v1/me/certificates", json!({"passphrase": PASSPHRASE}));
    assert_eq!(st, 201, "{e}");
    officer.login("signataire@example.org", PASSWORD);
    People {
        worker: s.user("agent@example.org", &["case_worker"]),
        officer,
        fin1: s.user("fin1@example.org", &["finance_officer"]),
        fin2: s.user("fin2@example.org", &["finance_officer"]),
    }
}

/// A rent loan applied for by `email` living at `street`, approved, its
/// agreement signed by the citizen and the officer: ready to pay.
fn signed_loan(s: &Server, p: &People, email: &str, street: &str) -> (Client, String) {
    let citizen = s.user(email, &["citizen"]);
    let mut answers = eligible_loan();
    answers["home"]["line1"] = street.into();
    let (st, d) =
        citizen.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020", "answers": answers, "submit": true}));
    assert_eq!(st, 201, "{d}");
    let dossier = d["id"].as_str().expect("id").to_owned();
    let (st, d) = p.worker.post(&format!("/api/v1/dossiers/{dossier}/decision"), json!({"outcome": "approved"}));
    assert_eq!((st, d["state"].as_str()), (200, Some("agreement_pending")), "{d}");
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let env = list[0]["id"].as_str().expect("envelope").to_owned();
    let (st, e) = citizen.post(&format!("/api/v1/envelopes/{env}/recipients/0/sign"), json!({"agree": true}));
    assert_eq!(st, 200, "{e}");
    let (st, e) = p
        .officer
        .post(&format!("/api/v1/envelopes/{env}/recipients/1/sign"), json!({"agree": true, "passphrase": PASSPHRASE}));
    assert_eq!(st, 200, "{e}");
    assert_eq!(citizen.get(&format!("/api/v1/dossiers/{dossier}")).1["state"], "agreement_signed");
    (citizen, dossier)
}

fn state(c: &Client, dossier: &str) -> String {
    c.get(&format!("/api/v1/dossiers/{dossier}")).1["state"].as_str().unwrap_or_default().to_owned()
}

fn ready_line<'a>(list: &'a Value, dossier: &str) -> &'a Value {
    list.as_array().and_then(|l| l.iter().find(|x| x["dossier"] == dossier)).expect("in the queue")
}

fn csv(c: &Client, body: &str) -> (u16, Value) {
    let (st, b) = c.bytes("POST", "/api/v1/payments/returns", Some(("text/csv", body.as_bytes().to_vec())));
    (st, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

/// The trailer's (credit value, credit count, debit value, debit count).
fn cpa005_totals(file: &[u8]) -> (i64, i64, i64, i64) {
    let text = std::str::from_utf8(file).expect("ascii");
    let records: Vec<&str> = text.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert!(records.iter().all(|r| r.len() == 1464), "every record is 1464 bytes");
    let z = records.last().expect("trailer");
    assert!(z.starts_with('Z'));
    let n = |a: usize, b: usize| z[a..b].parse::<i64>().expect("number");
    (n(46, 60), n(60, 68), n(24, 38), n(38, 46))
}

#[test]
fn signed_loans_are_paid_by_bank_files_and_repaid() {
    for backend in guichet_store::testing::backends() {
        let s = start_with(backend, payments_config());
        let p = people(&s);
        let (citizen_a, a) = signed_loan(&s, &p, "alice@example.org", "12, rue Rachel");
        let (_citizen_b, b) = signed_loan(&s, &p, "bruno@example.org", "98, avenue du Parc");
        // Same home as Alice: flagged as a possible duplicate at submission.
        let (_citizen_c, c) = signed_loan(&s, &p, "carole@example.org", "12, rue Rachel");

        // The queue: finance officers only.
        assert_eq!(p.worker.get("/api/v1/payments/ready").0, 403);
        assert_eq!(citizen_a.get("/api/v1/payments/ready").0, 403);
        let (st, ready) = p.fin1.get("/api/v1/payments/ready");
        assert_eq!(st, 200, "{ready}");
        assert_eq!(ready_line(&ready, &a)["blocked"], Value::Null, "{ready}");
        assert_eq!(ready_line(&ready, &a)["payee"], "Gestion immobilière Tremblay inc.");
        assert_eq!(ready_line(&ready, &a)["bank"], "815-12345-****567");
        assert!(ready_line(&ready, &c)["blocked"].as_str().is_some_and(|w| w.contains("duplicate")), "{ready}");
        // The queue read from the payment lines written with the dossiers
        // is the queue read from the dossiers themselves: with the lines
        // forgotten, each dossier is opened and gives the same line.
        let forgotten = s.rt.block_on(guichet_store::testing::forget_payment_lines(&s.app.store)).expect("forget");
        assert_eq!(forgotten, 3, "a line for each signed loan");
        assert_eq!(p.fin1.get("/api/v1/payments/ready").1, ready);

        // A held-back dossier cannot be forced into a batch.
        let (st, e) = p.fin1.post("/api/v1/payments/batches", json!({"dossiers": [c]}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("not_ready")), "{e}");
        // A dossier named twice is refused as such (not a conflict), and
        // nothing is built.
        let (st, e) = p.fin1.post("/api/v1/payments/batches", json!({"dossiers": [a, b, a]}));
        assert_eq!((st, e["error"]["code"].as_str()), (400, Some("invalid_request")), "{e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| m.contains("named twice")), "{e}");
        assert_eq!(state(&citizen_a, &a), "agreement_signed");
        let (st, batch) = p.fin1.post("/api/v1/payments/batches", json!({"execution_date": "2099-01-15"}));
        assert_eq!(st, 200, "{batch}");
        let id = batch["id"].as_str().expect("batch").to_owned();
        assert_eq!((batch["count"].as_i64(), batch["total"].as_i64()), (Some(2), Some(300_000)), "{batch}");
        assert_eq!(batch["state"], "created");
        // The files are written with the batch: the approver sees their digests.
        let built_sha = |format: &str| batch[format!("{format}_sha256")].as_str().unwrap_or_default().to_owned();
        assert_eq!((built_sha("pain001").len(), built_sha("cpa005").len()), (64, 64), "{batch}");
        assert_eq!(state(&citizen_a, &a), "payment_scheduled");
        let (_, ready) = p.fin1.get("/api/v1/payments/ready");
        assert!(ready.as_array().is_some_and(|l| l.iter().all(|x| x["dossier"] != a)), "scheduled: out of the queue");

        // Two people: not who built it; the file waits for the approval.
        let (st, e) = p.fin1.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{id}/file"),
            Some(("application/json", br#"{"format": "pain001"}"#.to_vec())),
        );
        assert_eq!(st, 409, "{}", String::from_utf8_lossy(&e));
        let (st, e) = p.fin1.post(&format!("/api/v1/payments/batches/{id}/approve"), json!({}));
        assert_eq!(st, 403, "{e}");
        assert_eq!(p.worker.post(&format!("/api/v1/payments/batches/{id}/approve"), json!({})).0, 403);
        let (st, e) = p.fin2.post(&format!("/api/v1/payments/batches/{id}/approve"), json!({}));
        assert_eq!((st, e["approved_by"].is_string()), (200, true), "{e}");
        assert_eq!(p.fin2.post(&format!("/api/v1/payments/batches/{id}/approve"), json!({})).0, 409);

        // The files.
        let (st, xml) = p.fin1.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{id}/file"),
            Some(("application/json", br#"{"format": "pain001"}"#.to_vec())),
        );
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&xml));
        let sha256 = |b: &[u8]| guichet_store::hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b).as_ref());
        assert_eq!(sha256(&xml), built_sha("pain001"), "the file handed out is the one approved");
        let text = String::from_utf8(xml.clone()).expect("utf-8");
        assert!(text.contains("<CtrlSum>3000.00</CtrlSum>") && text.contains("<NbOfTxs>2</NbOfTxs>"), "{text}");
        assert!(text.contains("<Nm>Gestion immobilière Tremblay inc.</Nm>"));
        assert!(text.contains("<ReqdExctnDt>2099-01-15</ReqdExctnDt>"));
        if let Some(xsd) = std::env::var_os("GUICHET_PAIN001_XSD") {
            let f = tmpdir("pain001").join("batch.xml");
            std::fs::write(&f, &xml).expect("write");
            let (ok, out) = run(std::process::Command::new("xmllint").arg("--noout").arg("--schema").arg(&xsd).arg(&f));
            assert!(ok, "xmllint: {out}");
        } else {
            assert!(!validators_required(), "GUICHET_PAIN001_XSD is not set");
        }
        let (st, again) = p.fin1.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{id}/file"),
            Some(("application/json", br#"{"format": "pain001"}"#.to_vec())),
        );
        assert_eq!((st, &again), (200, &xml), "the same bytes every time");
        let (st, aft) = p.fin2.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{id}/file"),
            Some(("application/json", br#"{"format": "cpa005"}"#.to_vec())),
        );
        assert_eq!(st, 200);
        assert_eq!(cpa005_totals(&aft), (300_000, 2, 0, 0));
        assert_eq!(sha256(&aft), built_sha("cpa005"), "the file handed out is the one approved");
        let (_, view) = p.fin1.get(&format!("/api/v1/payments/batches/{id}"));
        assert_eq!(view["batch"]["state"], "exported");
        assert_eq!(view["batch"]["pain001_sha256"].as_str().map(str::len), Some(64));
        let refs: Vec<String> = view["payments"]
            .as_array()
            .expect("payments")
            .iter()
            .map(|x| x["reference"].as_str().expect("ref").to_owned())
            .collect();
        let ref_of = |d: &str| {
            view["payments"].as_array().and_then(|l| l.iter().find(|x| x["dossier"] == d)).expect("payment")["reference"]
                .as_str()
                .expect("ref")
                .to_owned()
        };
        let (ra, rb) = (ref_of(&a), ref_of(&b));
        assert!(text.contains(&format!("<EndToEndId>{ra}</EndToEndId>")));

        // Told: the borrower (in French) and the landlord, once each however
        // many exports.
        // (queued just after the file is handed out, not before the answer)
        let mail = s.wait_mail("alice@example.org", &ra);
        assert!(mail.contains("Un paiement de 1\u{a0}500,00 $") && mail.contains(&ra), "{mail}");
        // The service's sweep, run again (the batch's notices may or may not
        // be marked queued yet): nothing queued twice either way.
        s.rt.block_on(s.app.notify_exported_batches()).expect("sweep");
        let (_, log) = citizen_a.get(&format!("/api/v1/dossiers/{a}/mails"));
        let sent: Vec<&str> = log.as_array().expect("log").iter().filter_map(|m| m["subject"].as_str()).collect();
        assert_eq!(sent.iter().filter(|s| s.starts_with("Paiement envoyé")).count(), 2, "{log}");
        assert!(sent.iter().any(|s| s.starts_with("Demande reçue")), "{log}");
        assert!(sent.iter().any(|s| s.starts_with("Demande acceptée")), "{log}");
        assert!(
            s.last_mail("loyers@tremblay.example").contains(&rb)
                || s.last_mail("loyers@tremblay.example").contains(&ra)
        );

        // Returns: all or nothing, every bad line named.
        let bad = format!("reference,status,reason\n{ra},paid,\nP000000000000000000,returned,905\n{rb},lost,\n");
        let (st, e) = csv(&p.fin1, &bad);
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_returns")), "{e}");
        let lines: Vec<i64> =
            e["error"]["details"].as_array().expect("details").iter().filter_map(|l| l["line"].as_i64()).collect();
        assert_eq!(lines, vec![3, 4], "{e}");
        assert_eq!(state(&citizen_a, &a), "payment_scheduled", "nothing applied");
        assert_eq!(p.worker.bytes("POST", "/api/v1/payments/returns", Some(("text/csv", b"x".to_vec()))).0, 403);
        // The bank's ISO 20022 status report (pain.002) for the pain.001:
        // first "accepted, not settled" (news, nothing applied), then one
        // settled and one rejected with its reason code.
        let report = |txs: &[(&str, &str, &str)]| {
            let body: String = txs
                .iter()
                .map(|(r, st, why)| {
                    format!("<TxInfAndSts><OrgnlEndToEndId>{r}</OrgnlEndToEndId><TxSts>{st}</TxSts>{why}</TxInfAndSts>")
                })
                .collect();
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.03\">\
                 <CstmrPmtStsRpt><GrpHdr><MsgId>STS-1</MsgId><CreDtTm>2020-07-16T09:00:00</CreDtTm></GrpHdr>\
                 <OrgnlGrpInfAndSts><OrgnlMsgId>{id}</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.03</OrgnlMsgNmId></OrgnlGrpInfAndSts>\
                 <OrgnlPmtInfAndSts><OrgnlPmtInfId>{id}</OrgnlPmtInfId>{body}</OrgnlPmtInfAndSts></CstmrPmtStsRpt></Document>\n"
            )
            .into_bytes()
        };
        let pain002 = |body: Vec<u8>| {
            let (st, b) = p.fin1.bytes("POST", "/api/v1/payments/returns", Some(("application/xml", body)));
            (st, serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null))
        };
        let (st, r) = pain002(report(&[(&ra, "ACSP", ""), (&rb, "ACSP", "")]));
        assert_eq!((st, r["pending"].as_i64(), r["paid"].as_i64()), (200, Some(2), Some(0)), "{r}");
        assert_eq!(state(&citizen_a, &a), "payment_scheduled", "nothing applied");
        let (st, e) = pain002(report(&[(&ra, "ACSP", ""), ("P000000000000000000", "PDNG", "")]));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_returns")), "pending, unknown: {e}");
        let closed = "<StsRsnInf><Rsn><Cd>AC04</Cd></Rsn><AddtlInf>905 compte fermé</AddtlInf></StsRsnInf>";
        let (st, r) = pain002(report(&[(&ra, "ACSC", ""), (&rb, "RJCT", closed)]));
        assert_eq!(st, 200, "{r}");
        assert_eq!((r["paid"].as_i64(), r["returned"].as_i64(), r["pending"].as_i64()), (Some(1), Some(1), Some(0)));
        let (_, view) = p.fin1.get(&format!("/api/v1/payments/batches/{id}"));
        let rejected = view["payments"].as_array().and_then(|l| l.iter().find(|x| x["reference"] == rb.as_str()));
        assert_eq!(
            rejected.map(|x| (&x["state"], &x["reason"])),
            Some((&json!("rejected"), &json!("AC04 905 compte fermé")))
        );
        assert_eq!(state(&citizen_a, &a), "paid");
        assert_eq!(state(&p.worker, &b), "payment_returned");
        let (st, e) = csv(&p.fin1, &format!("reference,status,reason\n{ra},paid,\n"));
        assert_eq!(st, 422, "applied twice: {e}");
        assert_eq!(refs.len(), 2, "{refs:?}");

        // The returned payment: new bank details, confirmed by someone else.
        let (_, ready) = p.fin1.get("/api/v1/payments/ready");
        assert!(ready_line(&ready, &b)["blocked"].as_str().is_some(), "{ready}");
        let body = json!({"institution": "006", "transit": "54321", "account": "123456789"});
        let (st, e) = p.worker.post(
            &format!("/api/v1/dossiers/{b}/bank-details"),
            json!({"institution": "6", "transit": "1", "account": "1"}),
        );
        assert_eq!(st, 422, "{e}");
        let (st, e) = p.worker.post(&format!("/api/v1/dossiers/{b}/bank-details"), body);
        assert_eq!(st, 200, "{e}");
        let (st, e) = p.worker.post(&format!("/api/v1/dossiers/{b}/bank-details/confirm"), json!({}));
        assert_eq!(st, 422, "not who proposed: {e}");
        assert_eq!(citizen_a.post(&format!("/api/v1/dossiers/{b}/bank-details/confirm"), json!({})).0, 404);
        let (st, e) = p.fin2.post(&format!("/api/v1/dossiers/{b}/bank-details/confirm"), json!({}));
        assert_eq!(st, 200, "{e}");
        let (_, ready) = p.fin1.get("/api/v1/payments/ready");
        assert_eq!(ready_line(&ready, &b)["blocked"], Value::Null, "{ready}");
        assert_eq!(ready_line(&ready, &b)["bank"], "006-54321-****789");

        // The duplicate: checked and cleared by a case worker.
        let (st, e) = p.fin1.post(&format!("/api/v1/dossiers/{c}/duplicates/clear"), json!({"note": "x"}));
        assert_eq!(st, 403, "{e}");
        let (st, e) = p.worker.post(
            &format!("/api/v1/dossiers/{c}/duplicates/clear"),
            json!({"note": "Colocataires, deux baux distincts."}),
        );
        assert_eq!(st, 200, "{e}");
        let (_, ready) = p.fin1.get("/api/v1/payments/ready");
        assert_eq!(ready_line(&ready, &c)["blocked"], Value::Null, "{ready}");

        // The loan: due 1 August 2021; repaid by hand, then by debit.
        let (st, loans) = p.fin1.get("/api/v1/loans");
        assert_eq!(st, 200, "{loans}");
        let loan = &loans[0];
        assert_eq!((loan["dossier"].as_str(), loan["balance"].as_i64()), (Some(a.as_str()), Some(150_000)), "{loans}");
        assert_eq!(loan["due"], "2021-08-01");
        let (st, e) =
            p.fin1.post(&format!("/api/v1/dossiers/{a}/repayments"), json!({"amount": 200_000, "reference": "CHQ-1"}));
        assert_eq!(st, 422, "more than owed: {e}");
        let (st, e) =
            p.fin1.post(&format!("/api/v1/dossiers/{a}/repayments"), json!({"amount": 50_000, "reference": "CHQ-1"}));
        assert_eq!(st, 200, "{e}");
        assert_eq!(p.fin1.get("/api/v1/loans").1[0]["balance"], 100_000);
        let debit = json!({"institution": "815", "transit": "11111", "account": "2222222"});
        assert_eq!(p.worker.post(&format!("/api/v1/dossiers/{a}/debit-authorization"), debit.clone()).0, 403);
        let (st, e) = citizen_a.post(&format!("/api/v1/dossiers/{a}/debit-authorization"), debit);
        assert_eq!(st, 200, "{e}");
        let (st, pad) = p.fin1.post("/api/v1/loans/debits", json!({"within": 100000, "execution_date": "2099-02-01"}));
        assert_eq!(st, 200, "{pad}");
        let pad_id = pad["id"].as_str().expect("id").to_owned();
        assert_eq!((pad["direction"].as_str(), pad["total"].as_i64()), (Some("debit"), Some(100_000)));
        assert_eq!(p.fin2.post(&format!("/api/v1/payments/batches/{pad_id}/approve"), json!({})).0, 200);
        let (st, e) = p.fin1.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{pad_id}/file"),
            Some(("application/json", br#"{"format": "pain001"}"#.to_vec())),
        );
        assert_eq!(st, 422, "debits are not credit transfers: {}", String::from_utf8_lossy(&e));
        let (st, aft) = p.fin1.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{pad_id}/file"),
            Some(("application/json", br#"{"format": "cpa005"}"#.to_vec())),
        );
        assert_eq!(st, 200);
        assert_eq!(cpa005_totals(&aft), (0, 0, 100_000, 1));
        assert_eq!(std::str::from_utf8(&aft).expect("ascii").split("\r\n").nth(1).map(|r| &r[..1]), Some("D"));
        let (_, pv) = p.fin1.get(&format!("/api/v1/payments/batches/{pad_id}"));
        let rd = pv["payments"][0]["reference"].as_str().expect("ref").to_owned();
        let (st, r) = csv(&p.fin1, &format!("reference,status,reason\n{rd},paid,\n"));
        assert_eq!((st, r["repayments"].as_i64()), (200, Some(1)), "{r}");
        let (_, loans) = p.fin1.get("/api/v1/loans");
        assert!(loans.as_array().is_some_and(|l| l.iter().all(|x| x["dossier"] != a)), "repaid: {loans}");

        // Reminders before the due date, once per stage, to the borrower
        // of a loan still owed (Bruno's, paid out now).
        let (st, batch2) =
            p.fin1.post("/api/v1/payments/batches", json!({"dossiers": [b], "execution_date": "2099-01-20"}));
        assert_eq!(st, 200, "{batch2}");
        let id2 = batch2["id"].as_str().expect("id").to_owned();
        p.fin2.post(&format!("/api/v1/payments/batches/{id2}/approve"), json!({}));
        p.fin2.bytes(
            "POST",
            &format!("/api/v1/payments/batches/{id2}/file"),
            Some(("application/json", br#"{"format": "cpa005"}"#.to_vec())),
        );
        let (_, v2) = p.fin1.get(&format!("/api/v1/payments/batches/{id2}"));
        let rb2 = v2["payments"][0]["reference"].as_str().expect("ref").to_owned();
        assert_eq!(csv(&p.fin1, &format!("reference,status,reason\n{rb2},paid,\n")).0, 200);
        let tz = jiff::tz::TimeZone::get("America/Toronto").expect("tz");
        let due = tz.to_ambiguous_timestamp(jiff::civil::date(2021, 8, 1).at(12, 0, 0, 0)).compatible().expect("due");
        let to = |days: i64| due.as_second() - days * 86_400 - s.app.now();
        s.app.shift_clock(to(40));
        assert_eq!(s.rt.block_on(s.app.repayment_reminders()).expect("sweep"), 0, "40 days before: not yet");
        s.app.shift_clock(to(20));
        assert_eq!(s.rt.block_on(s.app.repayment_reminders()).expect("sweep"), 1);
        assert_eq!(s.rt.block_on(s.app.repayment_reminders()).expect("sweep"), 0, "once");
        let mail = s.last_mail("bruno@example.org");
        assert!(mail.contains("500,00") && mail.contains("1er août 2021"), "{mail}");
        s.app.shift_clock(to(5));
        assert_eq!(s.rt.block_on(s.app.repayment_reminders()).expect("sweep"), 1, "the 7-day reminder");
        s.app.shift_clock(to(-3));
        assert_eq!(s.rt.block_on(s.app.repayment_reminders()).expect("sweep"), 0, "overdue: no 'before' reminder");

        // Every change left its events, and the chains hold.
        let audit = s.rt.block_on(s.app.store.verify_audit(None)).expect("audit");
        assert_eq!(audit.first_broken, None, "audit chains");
    }
}

/// Mail goes to a folder (the demo's mailbox); a mail claimed by a sender
/// that died before marking it sent is not sent again, and the dossier's
/// log says it is uncertain; a notice queued twice under one key is one.
#[test]
fn a_mail_interrupted_while_sending_is_never_sent_twice() {
    let s = start("sqlite");
    let citizen = s.user("lea@example.org", &["citizen"]);
    let (st, d) = citizen.post(
        "/api/v1/dossiers",
        json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    assert_eq!(st, 201, "{d}");
    let dossier = d["id"].as_str().expect("id").to_owned();
    let dir = tmpdir("mailbox");
    let mailer = guichet_app::Mailer::to_folder(dir.clone(), "guichet <no-reply@example.org>").expect("mailer");
    let files = || {
        std::fs::read_dir(&dir)
            .expect("dir")
            .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml")))
            .count()
    };
    let (sent, failed) = s.rt.block_on(s.app.deliver_mails(&mailer)).expect("deliver");
    assert_eq!((sent, failed), (1, 0), "the application received");
    assert_eq!(files(), 1);
    let eml = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| std::fs::read_to_string(e.expect("entry").path()).ok())
        .find(|t| t.contains(&dossier))
        .expect("the notice");
    assert!(eml.contains("To: lea@example.org") && eml.contains("Message-ID: <outbox-"), "{eml}");

    // A case worker asks for information: a notice is queued…
    let worker = s.user("agent@example.org", &["case_worker"]);
    let due = s.app.now() + 10 * 86_400;
    let (st, e) = worker.post(
        &format!("/api/v1/dossiers/{dossier}/information-requests"),
        json!({"message": "Le bail signé, SVP.", "due": due}),
    );
    assert_eq!(st, 200, "{e}");
    let due_mails = s.rt.block_on(s.app.store.mails_due(s.app.now(), 8, 100)).expect("due");
    assert_eq!(due_mails.len(), 1, "{due_mails:?}");
    assert!(due_mails[0].body.contains("Le bail signé, SVP."), "{}", due_mails[0].body);
    // …and a sender takes it, then dies before recording the outcome.
    assert!(s.rt.block_on(s.app.store.claim_mail(due_mails[0].id, s.app.now())).expect("claim"));
    assert_eq!(s.rt.block_on(s.app.deliver_mails(&mailer)).expect("deliver"), (0, 0), "not sent again");
    assert_eq!(files(), 1);
    let (_, log) = citizen.get(&format!("/api/v1/dossiers/{dossier}/mails"));
    let statuses: Vec<&str> = log.as_array().expect("log").iter().filter_map(|m| m["status"].as_str()).collect();
    assert_eq!(statuses, vec!["sent", "uncertain"], "{log}");

    // One key, one mail.
    let key = format!("test:{dossier}");
    assert!(
        s.rt.block_on(s.app.store.queue_mail_once(&key, Some(&dossier), "lea@example.org", "a", "b", 1))
            .expect("queue")
    );
    assert!(
        !s.rt
            .block_on(s.app.store.queue_mail_once(&key, Some(&dossier), "lea@example.org", "a", "b", 2))
            .expect("queue")
    );
    // Strangers do not read the log.
    let other = s.user("paul@example.org", &["citizen"]);
    assert_eq!(other.get(&format!("/api/v1/dossiers/{dossier}/mails")).0, 404);
}
