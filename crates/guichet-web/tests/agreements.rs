//! The loan agreement, end to end over the API: approved → generated →
//! signed by the citizen → countersigned by a signing officer with a
//! personal certificate → completed (B-LTA, certificate of completion) →
//! the dossier is released for payment. The final PDF is checked by our
//! own validator (the public /api/v1/verify), and by pdfsig and pyHanko
//! when installed (CI requires them).

mod common;

use common::*;
use serde_json::{Value, json};
use std::process::Command;

const PASSPHRASE: &str = "correct horse battery staple";

fn approved_loan(s: &Server) -> (Client, Client, String) {
    let citizen = s.user("marie@example.org", &["citizen"]);
    let (st, d) = citizen.post(
        "/api/v1/dossiers",
        json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    assert_eq!(st, 201, "{d}");
    let dossier = d["id"].as_str().expect("id").to_owned();
    let worker = s.user("agent@example.org", &["case_worker"]);
    let (st, d) = worker.post(&format!("/api/v1/dossiers/{dossier}/decision"), json!({"outcome": "approved"}));
    assert_eq!(st, 200, "{d}");
    assert_eq!(d["state"], "agreement_pending", "the agreement is sent on approval: {d}");
    (citizen, worker, dossier)
}

#[test]
fn a_loan_agreement_is_signed_by_the_citizen_then_an_officer_and_releases_the_payment() {
    on_each(|s| {
        let (citizen, worker, dossier) = approved_loan(s);
        let (st, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
        assert_eq!(st, 200, "{list}");
        let env = &list[0];
        let id = env["id"].as_str().expect("envelope").to_owned();
        assert_eq!(env["state"], "sent");
        assert_eq!(env["your_turn"], json!([0]), "the citizen signs first: {env}");
        assert_eq!(env["recipients"][1]["kind"], "officer");
        let mail = s.last_mail("marie@example.org");
        assert!(mail.contains(&format!("/enveloppes/{id}")) && mail.contains("500,00"), "{mail}");
        // The document is the generated agreement, readable by the citizen.
        let (st, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
        assert_eq!(st, 200);
        assert!(pdf.starts_with(b"%PDF-"));
        // Sending it twice is refused.
        let (st, e) = worker.post(&format!("/api/v1/dossiers/{dossier}/agreement"), json!({}));
        assert_eq!((st, e["error"]["code"].as_str()), (409, Some("wrong_state")), "{e}");

        // Strangers see nothing; the officer must wait for the citizen.
        let other = s.user("paul@example.org", &["citizen"]);
        assert_eq!(other.get(&format!("/api/v1/envelopes/{id}")).0, 404);
        assert_eq!(other.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true})).0, 404);
        let mut officer = s.user("signataire@example.org", &["signing_officer"]);
        let (st, e) = officer.post(
            &format!("/api/v1/envelopes/{id}/recipients/1/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!((st, e["error"]["code"].as_str()), (409, Some("wrong_state")), "not their turn yet: {e}");

        // The citizen must agree; then signs (sealed by the organization).
        let (st, e) = citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": false}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("agreement_required")), "{e}");
        let (st, e) = citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true}));
        assert_eq!(st, 200, "{e}");
        assert_eq!(e["recipients"][0]["status"], "signed");
        assert_eq!(e["state"], "sent");
        let (st, e) = citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true}));
        assert_eq!(st, 409, "signing twice: {e}");
        assert_eq!(citizen.get(&format!("/api/v1/dossiers/{dossier}")).1["state"], "agreement_pending");

        // The officer: a certificate first (a citizen cannot get one).
        let (st, e) = citizen.post("/api/v1/me/certificates", json!({"passphrase": PASSPHRASE}));
        assert_eq!(st, 403, "{e}");
        let (st, e) = officer.post(
            &format!("/api/v1/envelopes/{id}/recipients/1/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 403, "no certificate yet: {e}");
        let (st, e) = officer.post("/api/v1/me/certificates", json!({"passphrase": "short"}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("weak_passphrase")), "{e}");
        let (st, cert) = officer.post("/api/v1/me/certificates", json!({"passphrase": PASSPHRASE}));
        assert_eq!(st, 201, "{cert}");
        assert_eq!(cert["valid"], true);
        let (_, waiting) = officer.get("/api/v1/envelopes");
        assert_eq!(waiting.as_array().map(|a| a.len()), Some(1), "{waiting}");
        let (st, e) = officer.post(
            &format!("/api/v1/envelopes/{id}/recipients/1/sign"),
            json!({"agree": true, "passphrase": "wrong horse battery staple"}),
        );
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("wrong_passphrase")), "{e}");
        let (st, e) = officer.post(
            &format!("/api/v1/envelopes/{id}/recipients/1/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 200, "{e}");
        assert_eq!(e["state"], "completed", "{e}");
        assert_eq!(e["recipients"][1]["certificate"], cert["serial"]);
        assert!(e["completion_sha256"].is_string());
        let (_, d) = worker.get(&format!("/api/v1/dossiers/{dossier}"));
        assert_eq!(d["state"], "agreement_signed", "the payment can now be scheduled: {d}");
        assert!(s.last_mail("marie@example.org").contains("Toutes les parties ont signé"));

        // The signed document: our validator, publicly, and the others.
        let (st, signed) = citizen.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
        assert_eq!(st, 200);
        let anonymous = s.client();
        let (st, v, _) = anonymous.raw("POST", "/api/v1/verify", None, Some(("application/pdf", signed.clone())));
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["valid"], true, "{v}");
        let sigs = v["signatures"].as_array().expect("signatures");
        assert_eq!(sigs.len(), 3, "citizen (sealed), officer, document timestamp: {v}");
        assert!(sigs.iter().all(|x| x["indication"] == "TOTAL-PASSED"), "{v}");
        assert_eq!(sigs[1]["signer"].as_str().map(|s| s.contains("Test Person")), Some(true), "{v}");
        assert!(sigs.iter().any(|x| x["level"] == "B-LTA"), "{v}");
        let (st, completion) = citizen.bytes("GET", &format!("/api/v1/envelopes/{id}/document?file=completion"), None);
        assert_eq!(st, 200);
        let (_, c, _) = anonymous.raw("POST", "/api/v1/verify", None, Some(("application/pdf", completion.clone())));
        assert_eq!(c["valid"], true, "the certificate of completion is signed by the organization: {c}");
        let (st, ca) = anonymous.bytes("GET", "/pki/ca.pem", None);
        assert_eq!(st, 200);
        let ca = String::from_utf8(ca).expect("pem");
        let dir = tmpdir(&format!("loop-{}", s.app.store.backend() as u8));
        let file = dir.join("convention.pdf");
        std::fs::write(&file, &signed).expect("write");
        external_validators(&dir, &ca, &file, 2);

        // The officer leaves: their certificate is revoked, they can no
        // longer sign, and what they signed before still validates.
        let admin = s.user("admin@example.org", &["administrator"]);
        let officer_id = officer.user_id.clone().expect("id");
        let (st, _) = admin.call("PATCH", &format!("/api/v1/users/{officer_id}"), Some(json!({"active": false})));
        assert_eq!(st, 200);
        let (_, certs) = admin.get(&format!("/api/v1/users/{officer_id}/certificates"));
        assert_eq!(certs[0]["revocation_reason"], "affiliationChanged", "{certs}");
        let (_, v, _) = anonymous.raw("POST", "/api/v1/verify", None, Some(("application/pdf", signed)));
        assert_eq!(v["valid"], true, "signed before the revocation: {v}");
        let (st, crl) = anonymous.bytes("GET", "/pki/crl", None);
        assert_eq!(st, 200);
        assert!(crl.len() > 100 && crl[0] == 0x30, "a DER CRL");
        assert_eq!(officer.login("signataire@example.org", PASSWORD).0, 401, "a departed officer cannot sign in");

        // Every step is in the audit chain, intact.
        let (_, report) = admin.get("/api/v1/audit/verify");
        assert!(report["first_broken"].is_null(), "{report}");
    });
}

#[test]
fn a_declined_agreement_can_be_sent_again_and_bad_input_is_refused() {
    on_each(|s| {
        let (citizen, worker, dossier) = approved_loan(s);
        let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
        let id = list[0]["id"].as_str().expect("id").to_owned();
        let (st, e) = citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/decline"), json!({"reason": " "}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_envelope")), "{e}");
        let (st, e) = citizen
            .post(&format!("/api/v1/envelopes/{id}/recipients/0/decline"), json!({"reason": "Le montant est inexact"}));
        assert_eq!(st, 200, "{e}");
        assert_eq!(e["state"], "declined");
        assert_eq!(e["recipients"][0]["reason"], "Le montant est inexact");
        let told = s.last_mail("agent@example.org");
        assert!(
            told.contains("refuse de signer") && told.contains("Le montant est inexact"),
            "the sender is told: {told}"
        );
        let (st, e) = citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true}));
        assert_eq!(st, 409, "{e}");
        // The citizen cannot resend; the case worker can.
        assert_eq!(citizen.post(&format!("/api/v1/dossiers/{dossier}/agreement"), json!({})).0, 403);
        let (st, again) = worker.post(&format!("/api/v1/dossiers/{dossier}/agreement"), json!({}));
        assert_eq!(st, 201, "{again}");
        let second = again["id"].as_str().expect("id").to_owned();
        assert_ne!(second, id);
        // The case worker voids it; only with a reason.
        assert_eq!(worker.post(&format!("/api/v1/envelopes/{second}/void"), json!({"reason": ""})).0, 422);
        let (st, e) = worker.post(&format!("/api/v1/envelopes/{second}/void"), json!({"reason": "Erreur de montant"}));
        assert_eq!((st, e["state"].as_str()), (200, Some("voided")), "{e}");
        assert_eq!(citizen.post(&format!("/api/v1/envelopes/{second}/void"), json!({"reason": "x"})).0, 403);

        // Verification refuses what is not a PDF, clearly.
        let anonymous = s.client();
        let (st, e, _) = anonymous.raw("POST", "/api/v1/verify", None, Some(("application/pdf", b"GIF89a".to_vec())));
        assert_eq!((st, e["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{e}");
        let (st, e, _) =
            anonymous.raw("POST", "/api/v1/verify", None, Some(("application/pdf", b"%PDF-1.7\ngarbage".to_vec())));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("unreadable_pdf")), "{e}");
        // An unsigned PDF is valid for nothing.
        let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{id}/document?file=original"), None);
        let (st, v, _) = anonymous.raw("POST", "/api/v1/verify", None, Some(("application/pdf", pdf)));
        assert_eq!(st, 200, "{v}");
        assert_eq!((v["valid"].as_bool(), v["signatures"].as_array().map(Vec::len)), (Some(false), Some(0)));
    });
}

/// A multipart form: a PDF `document` and an `envelope` JSON part.
fn envelope_form(pdf: &[u8], envelope: &Value) -> (String, Vec<u8>) {
    multipart(&[("envelope", None, envelope.to_string().as_bytes()), ("document", Some("contrat.pdf"), pdf)])
}

fn token_in(mail: &str) -> String {
    mail.split("/signer/").nth(1).and_then(|r| r.split_whitespace().next()).expect("signing link").to_owned()
}

fn code_in(mail: &str) -> String {
    mail.split(|c: char| !c.is_ascii_digit()).find(|w| w.len() == 6).expect("code").to_owned()
}

#[test]
fn a_contract_with_five_signers_in_two_parallel_groups_stays_valid_for_every_validator() {
    on_each(|s| {
        // Any PDF will do: the loan agreement of another dossier, as sent.
        let (citizen, _, dossier) = approved_loan(s);
        let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
        let loan = list[0]["id"].as_str().expect("id").to_owned();
        let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{loan}/document?file=original"), None);

        let sender = s.user("contrats@example.org", &["case_worker"]);
        let a = s.user("alice@example.org", &["case_worker"]);
        let d = s.user("denis@example.org", &["signing_officer"]);
        let e = s.user("emile@example.org", &["reviewer"]);
        for who in [&a, &d, &e] {
            assert_eq!(who.post("/api/v1/me/certificates", json!({"passphrase": PASSPHRASE})).0, 201);
        }
        let recipients = json!([
            {"kind": "employee", "email": "alice@example.org", "group": 1, "field": {"page": 0, "rect": [72, 300, 150, 60]}},
            {"kind": "external", "name": "Bernard Externe", "email": "bernard@partenaire.example", "group": 1},
            {"kind": "citizen", "email": "marie@example.org", "group": 1},
            {"kind": "officer", "group": 2, "field": {"page": 0, "rect": [250, 300, 150, 60]}},
            {"kind": "employee", "email": "emile@example.org", "group": 2},
        ]);
        let envelope = json!({"title": "Contrat de services", "message": "Merci de signer.", "recipients": recipients});

        // Bad input first: nothing is sent.
        let (ct, body) = envelope_form(b"GIF89a not a pdf", &envelope);
        let (st, err, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!((st, err["error"]["code"].as_str()), (415, Some("unsupported_media_type")), "{err}");
        let (ct, body) = envelope_form(b"%PDF-1.7\nnot really", &envelope);
        let (st, err, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!((st, err["error"]["code"].as_str()), (422, Some("unreadable_pdf")), "{err}");
        let mut wrong = envelope.clone();
        wrong["recipients"][2]["kind"] = json!("employee");
        let (ct, body) = envelope_form(&pdf, &wrong);
        let (st, err, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!(
            (st, err["error"]["code"].as_str()),
            (422, Some("invalid_envelope")),
            "a citizen is no employee: {err}"
        );
        let (ct, body) = envelope_form(&pdf, &envelope);
        let (st, _, _) = citizen.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!(st, 403, "citizens do not send envelopes");

        let (ct, body) = envelope_form(&pdf, &envelope);
        let (st, env, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!(st, 201, "{env}");
        let id = env["id"].as_str().expect("id").to_owned();
        assert_eq!(env["recipients"][3]["name"], "Signataire autorisé");
        // Group 1 is told at once; group 2 not yet.
        assert!(s.last_mail("alice@example.org").contains(&format!("/enveloppes/{id}")));
        let invitation = s.last_mail("bernard@partenaire.example");
        assert!(invitation.contains("Contrat de services") && invitation.contains("Merci de signer."), "{invitation}");
        assert!(s.last_mail("emile@example.org").is_empty(), "group 2 waits");

        // The external signer: link, code, signature.
        let token = token_in(&invitation);
        let outsider = s.client();
        let (st, view) = outsider.get(&format!("/api/v1/signing/{token}"));
        assert_eq!(st, 200, "{view}");
        assert_eq!((view["recipient"].as_u64(), view["may_sign"].as_bool()), (Some(1), Some(true)));
        assert_eq!(outsider.get("/api/v1/signing/not-a-token").0, 404);
        let (st, err) =
            outsider.post(&format!("/api/v1/signing/{token}/sign"), json!({"code": "000000", "agree": true}));
        assert_eq!((st, err["error"]["code"].as_str()), (422, Some("wrong_code")), "no code asked yet: {err}");
        assert_eq!(outsider.post(&format!("/api/v1/signing/{token}/code"), json!({})).0, 202);
        assert_eq!(outsider.post(&format!("/api/v1/signing/{token}/code"), json!({})).0, 429, "one code a minute");
        let code = code_in(&s.last_mail("bernard@partenaire.example"));
        let (st, signed) =
            outsider.post(&format!("/api/v1/signing/{token}/sign"), json!({"code": code, "agree": true}));
        assert_eq!(st, 200, "{signed}");
        assert_eq!(signed["recipients"][1]["status"], "signed");
        let (st, _) = outsider.post(&format!("/api/v1/signing/{token}/sign"), json!({"code": code, "agree": true}));
        assert_ne!(st, 200, "a code signs once");

        // The rest of group 1, in any order; group 2 must wait.
        let (st, err) = e.post(
            &format!("/api/v1/envelopes/{id}/recipients/4/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 409, "group 2 waits for group 1: {err}");
        assert_eq!(citizen.post(&format!("/api/v1/envelopes/{id}/recipients/2/sign"), json!({"agree": true})).0, 200);
        let (st, r) = a.post(
            &format!("/api/v1/envelopes/{id}/recipients/0/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 200, "{r}");
        assert!(s.last_mail("emile@example.org").contains(&format!("/enveloppes/{id}")), "group 2 is told");
        let (st, r) = e.post(
            &format!("/api/v1/envelopes/{id}/recipients/4/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 200, "{r}");
        let (st, r) = d.post(
            &format!("/api/v1/envelopes/{id}/recipients/3/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["state"], "completed", "{r}");

        // Five signatures and a document timestamp, every one valid.
        let (_, signed) = sender.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
        let (_, v, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", signed.clone())));
        assert_eq!(v["valid"], true, "{v}");
        assert_eq!(v["signatures"].as_array().map(Vec::len), Some(6), "{v}");
        let (_, ca) = s.client().bytes("GET", "/pki/ca.pem", None);
        let dir = tmpdir(&format!("five-{}", s.app.store.backend() as u8));
        let file = dir.join("contrat.pdf");
        std::fs::write(&file, &signed).expect("write");
        // Bernard's and Marie's signatures both carry the organization's seal.
        external_validators_with(&dir, &String::from_utf8(ca).expect("pem"), &file, 5, 1);

        // A link locks after five wrong codes, even for the right one.
        let envelope = json!({"title": "Avenant", "recipients": [{"kind": "external", "name": "Bernard", "email": "bernard@partenaire.example"}]});
        let (ct, body) = envelope_form(&pdf, &envelope);
        let (st, _, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!(st, 201);
        let token = token_in(&s.last_mail("bernard@partenaire.example"));
        assert_eq!(outsider.post(&format!("/api/v1/signing/{token}/code"), json!({})).0, 202);
        let code = code_in(&s.last_mail("bernard@partenaire.example"));
        let wrong = if code == "123456" { "654321" } else { "123456" };
        let statuses: Vec<u16> = (0..5)
            .map(|_| outsider.post(&format!("/api/v1/signing/{token}/sign"), json!({"code": wrong, "agree": true})).0)
            .collect();
        assert_eq!(statuses, [422, 422, 422, 422, 429]);
        let (st, _) = outsider.post(&format!("/api/v1/signing/{token}/sign"), json!({"code": code, "agree": true}));
        assert_eq!(st, 429, "locked");
    });
}

#[test]
fn delegation_reminders_and_expiry() {
    on_each(|s| {
        let (citizen, _, dossier) = approved_loan(s);
        let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
        let loan = list[0]["id"].as_str().expect("id").to_owned();
        let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{loan}/document?file=original"), None);
        let sender = s.user("contrats@example.org", &["case_worker"]);
        let alice = s.user("alice@example.org", &["case_worker"]);
        let emile = s.user("emile@example.org", &["reviewer"]);
        assert_eq!(emile.post("/api/v1/me/certificates", json!({"passphrase": PASSPHRASE})).0, 201);

        // Alice hands her signature to Émile, who signs in her place.
        let envelope =
            json!({"title": "Bon de commande", "recipients": [{"kind": "employee", "email": "alice@example.org"}]});
        let (ct, body) = envelope_form(&pdf, &envelope);
        let (st, env, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!(st, 201, "{env}");
        let id = env["id"].as_str().expect("id").to_owned();
        let (st, e) =
            alice.post(&format!("/api/v1/envelopes/{id}/recipients/0/delegate"), json!({"email": "marie@example.org"}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_envelope")), "not to a citizen: {e}");
        let (st, e) =
            emile.post(&format!("/api/v1/envelopes/{id}/recipients/0/delegate"), json!({"email": "emile@example.org"}));
        assert_eq!(st, 404, "only the recipient delegates (Émile does not even see it yet): {e}");
        let (st, e) =
            alice.post(&format!("/api/v1/envelopes/{id}/recipients/0/delegate"), json!({"email": "emile@example.org"}));
        assert_eq!(st, 200, "{e}");
        assert_eq!(
            (e["recipients"][0]["status"].as_str(), e["recipients"][1]["name"].as_str()),
            (Some("delegated"), Some("Test Person"))
        );
        assert!(s.last_mail("emile@example.org").contains(&format!("/enveloppes/{id}")), "Émile is told");
        let (st, e) = emile.post(
            &format!("/api/v1/envelopes/{id}/recipients/1/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!((st, e["state"].as_str()), (200, Some("completed")), "{e}");

        // A revoked certificate signs nothing more (a lost laptop).
        let (_, certs) = emile.get("/api/v1/me/certificates");
        let serial = certs[0]["serial"].as_str().expect("serial").to_owned();
        assert_eq!(
            emile.post(&format!("/api/v1/certificates/{serial}/revoke"), json!({"reason": "key_compromise"})).0,
            200
        );
        let envelope =
            json!({"title": "Avenant 2", "recipients": [{"kind": "employee", "email": "emile@example.org"}]});
        let (ct, body) = envelope_form(&pdf, &envelope);
        let (_, env, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        let again = env["id"].as_str().expect("id").to_owned();
        let (st, e) = emile.post(
            &format!("/api/v1/envelopes/{again}/recipients/0/sign"),
            json!({"agree": true, "passphrase": PASSPHRASE}),
        );
        assert_eq!(st, 403, "{e}");
        assert!(e["error"]["message"].as_str().is_some_and(|m| m.contains("no valid signing certificate")), "{e}");
        // What he signed before still validates.
        let (_, signed) = sender.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
        let (_, v, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", signed)));
        assert_eq!(v["valid"], true, "{v}");
        // He gets a new one.
        assert_eq!(emile.post("/api/v1/me/certificates", json!({"passphrase": PASSPHRASE})).0, 201);

        // An external signer who does nothing: reminded after three quiet
        // days (with a fresh link), and the envelope expires on its day.
        let envelope = json!({"title": "Avenant", "expires_in_days": 10,
            "recipients": [{"kind": "external", "name": "Bernard", "email": "bernard@partenaire.example"}]});
        let (ct, body) = envelope_form(&pdf, &envelope);
        let (st, env, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!(st, 201, "{env}");
        let id = env["id"].as_str().expect("id").to_owned();
        let first = token_in(&s.last_mail("bernard@partenaire.example"));
        assert_eq!(s.rt.block_on(s.app.sweep_envelopes()).expect("sweep"), (0, 0), "nothing due yet");
        s.app.shift_clock(3 * 86_400 + 60);
        let (expired, reminded) = s.rt.block_on(s.app.sweep_envelopes()).expect("sweep");
        assert_eq!(
            (expired, reminded),
            (0, 3),
            "Bernard, Émile (Avenant 2), and the citizen whose loan agreement waits too"
        );
        let second = token_in(&s.last_mail("bernard@partenaire.example"));
        assert_ne!(first, second, "a fresh link");
        assert_eq!(s.rt.block_on(s.app.sweep_envelopes()).expect("sweep"), (0, 0), "not twice in a row");
        s.app.shift_clock(7 * 86_400);
        assert_eq!(s.rt.block_on(s.app.sweep_envelopes()).expect("sweep").0, 1, "expired");
        // (Sessions expired with the days: sign in again.)
        let mut sender = s.client();
        sender.login("contrats@example.org", PASSWORD);
        let (_, e) = sender.get(&format!("/api/v1/envelopes/{id}"));
        assert_eq!(e["state"], "expired", "{e}");
        let outsider = s.client();
        assert_eq!(outsider.post(&format!("/api/v1/signing/{second}/code"), json!({})).0, 409);
        let admin = s.user("admin@example.org", &["administrator"]);
        let (_, report) = admin.get("/api/v1/audit/verify");
        assert!(report["first_broken"].is_null(), "{report}");

        // Two years on, Émile's certificate nears its end: he is told once.
        assert!(!s.last_mail("emile@example.org").contains("expire"));
        s.app.shift_clock(710 * 86_400);
        s.rt.block_on(s.app.sweep_envelopes()).expect("sweep");
        let mail = s.last_mail("emile@example.org");
        assert!(mail.contains("expire le") && mail.contains("/compte/certificat"), "{mail}");
        let before = s.rt.block_on(s.app.mails_to("emile@example.org")).expect("mails").len();
        s.rt.block_on(s.app.sweep_envelopes()).expect("sweep");
        assert_eq!(s.rt.block_on(s.app.mails_to("emile@example.org")).expect("mails").len(), before, "once");
    });
}

#[test]
fn encrypted_and_oversized_documents_are_refused_at_upload() {
    // A server whose upload limit is small.
    let s = start_with(
        "sqlite",
        guichet_app::Config { reference_date: Some("2020-05-10".into()), max_upload: 40_000, ..Default::default() },
    );
    let (citizen, _, dossier) = approved_loan(&s);
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let loan = list[0]["id"].as_str().expect("id").to_owned();
    let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{loan}/document?file=original"), None);
    assert!(pdf.len() < 40_000, "the agreement fits: {}", pdf.len());
    let sender = s.user("contrats@example.org", &["case_worker"]);
    let envelope =
        json!({"title": "Contrat", "recipients": [{"kind": "external", "name": "B", "email": "b@example.org"}]});
    let mut big = pdf.clone();
    big.extend(std::iter::repeat_n(b'%', 50_000));
    let (ct, body) = envelope_form(&big, &envelope);
    let (st, err, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
    assert_eq!((st, err["error"]["code"].as_str()), (413, Some("too_large")), "{err}");
    let (st, err, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", big)));
    assert_eq!((st, err["error"]["code"].as_str()), (413, Some("too_large")), "{err}");
    if tool("qpdf") {
        let dir = tmpdir("encrypted");
        let (plain, locked) = (dir.join("plain.pdf"), dir.join("locked.pdf"));
        std::fs::write(&plain, &pdf).expect("write");
        let (ok, out) =
            run(Command::new("qpdf").args(["--encrypt", "user", "owner", "256", "--"]).arg(&plain).arg(&locked));
        assert!(ok, "{out}");
        let encrypted = std::fs::read(&locked).expect("read");
        let (ct, body) = envelope_form(&encrypted, &envelope);
        let (st, err, _) = sender.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
        assert_eq!((st, err["error"]["code"].as_str()), (422, Some("encrypted_pdf")), "{err}");
        let (st, err, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", encrypted)));
        assert_eq!((st, err["error"]["code"].as_str()), (422, Some("encrypted_pdf")), "{err}");
    }
    // Nothing was sent.
    assert!(s.last_mail("b@example.org").is_empty());
}

/// A timestamp authority that does not answer.
struct Unreachable;
impl guichet_pades::TimestampClient for Unreachable {
    fn exchange(&self, _: &[u8]) -> Result<Vec<u8>, guichet_pades::Error> {
        Err(guichet_pades::Error::Timestamp("connection refused".into()))
    }
}

/// An external timestamp authority under its own CA.
struct External(guichet_pades::TimestampAuthority);
impl guichet_pades::TimestampClient for External {
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, guichet_pades::Error> {
        Ok(self.0.respond(request))
    }
}

fn config() -> guichet_app::Config {
    guichet_app::Config { reference_date: Some("2020-05-10".into()), ..Default::default() }
}

#[test]
fn an_unreachable_timestamp_authority_means_no_signature_and_nothing_stored() {
    let s = start_custom("sqlite", config(), |app| app.with_timestamp_client(std::sync::Arc::new(Unreachable)));
    let (citizen, _, dossier) = approved_loan(&s);
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let before = list[0].clone();
    let id = before["id"].as_str().expect("id").to_owned();
    let (st, e) = citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true}));
    assert_eq!((st, e["error"]["code"].as_str()), (503, Some("unavailable")), "{e}");
    assert!(e["error"]["message"].as_str().is_some_and(|m| m.contains("try again")), "{e}");
    let (_, after) = citizen.get(&format!("/api/v1/envelopes/{id}"));
    for k in ["version", "document_sha256", "state", "recipients"] {
        assert_eq!(after[k], before[k], "{k} unchanged");
    }
    assert_eq!(citizen.get(&format!("/api/v1/dossiers/{dossier}")).1["state"], "agreement_pending");
}

#[test]
fn an_external_timestamp_authority_is_used_and_trusted_when_configured() {
    let now = time::OffsetDateTime::now_utc();
    let files = guichet_pades::ca::init("Horodatage externe inc.", "CA", now).expect("CA");
    let issuing = guichet_pades::ca::IssuingCa::load("Horodatage externe inc.", "CA", &files.issuing_key).expect("CA");
    let cert = issuing.issue_tsa("Horodatage externe inc.", 77, now, 365).expect("tsa");
    let chain = vec![guichet_pades::ca::pem_to_der(&files.issuing_cert).expect("pem")];
    let tsa = guichet_pades::TimestampAuthority::new(
        Box::new(guichet_pades::SoftwareKey::from_pkcs8(cert.key_pem.as_bytes(), false).expect("key")),
        cert.cert_der.clone(),
        chain,
        "2.25.41975.1",
        Box::new(time::OffsetDateTime::now_utc),
    )
    .expect("tsa");
    let root = guichet_pades::ca::pem_to_der(&files.root_cert).expect("pem");
    let tsa = std::sync::Arc::new(External(tsa));
    // Trusted: the signature is B-T by the external authority, and valid.
    let s = start_custom("sqlite", guichet_app::Config { trust_anchors: vec![root], ..config() }, {
        let tsa = tsa.clone();
        move |app| app.with_timestamp_client(tsa)
    });
    let (citizen, _, dossier) = approved_loan(&s);
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let id = list[0]["id"].as_str().expect("id").to_owned();
    assert_eq!(citizen.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true})).0, 200);
    let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
    let (_, v, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", pdf.clone())));
    assert_eq!(v["valid"], true, "{v}");
    let details = v["signatures"][0]["details"].to_string();
    assert!(details.contains("Horodatage externe inc."), "stamped by the external authority: {details}");
    // Trusting the organization's root alone, the timestamp is not.
    let (_, ca) = s.client().bytes("GET", "/pki/ca.pem", None);
    let org_root = guichet_pades::ca::pem_to_der(&String::from_utf8(ca).expect("pem")).expect("root");
    let report = guichet_pades::verify_pdf(&pdf, &[org_root], time::OffsetDateTime::now_utc()).expect("verify");
    assert!(!report.all_passed(), "{report:?}");
    drop(tsa);
}

const LEASE_TEMPLATE: &str = r#"#let d = json("data.json")
#set page(paper: "us-letter", margin: 72pt)
= Bail de stationnement
Entre #d.organization et #d.fields.locataire, pour la place #d.fields.place, au loyer mensuel de #d.fields.loyer.

Fait le #d.date.

#for s in d.signers [ - #s.label : #s.name \ ]
"#;

#[test]
fn templates_send_one_and_a_csv_sends_one_envelope_per_row_or_none() {
    on_each(|s| {
        let sender = s.user("contrats@example.org", &["case_worker"]);
        let template = json!({
            "name": "Bail de stationnement",
            "title": "Bail — place {place}",
            "source": LEASE_TEMPLATE,
            "fields": ["locataire", "place", "loyer"],
            "signers": [
                {"label": "Locataire", "kind": "external", "group": 1},
                {"label": "Pour la Société", "kind": "officer", "group": 2}
            ]
        });
        // A template that does not render is refused, with Typst's reason.
        let mut broken = template.clone();
        broken["source"] = json!("#let x = (");
        let (st, e) = sender.post("/api/v1/templates", broken);
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_template")), "{e}");
        let mut bad_field = template.clone();
        bad_field["fields"] = json!(["Locataire!"]);
        assert_eq!(sender.post("/api/v1/templates", bad_field).0, 422);
        let citizen = s.user("marie@example.org", &["citizen"]);
        assert_eq!(citizen.post("/api/v1/templates", template.clone()).0, 403);
        let (st, t) = sender.post("/api/v1/templates", template);
        assert_eq!(st, 201, "{t}");
        let id = t["id"].as_str().expect("id").to_owned();
        assert_eq!(t["csv_header"], json!(["locataire", "place", "loyer", "signer1_email", "signer1_name"]));

        // One envelope.
        let (st, e) = sender.post(
            &format!("/api/v1/templates/{id}/send"),
            json!({"values": {"locataire": "Bernard Externe", "place": "B-12", "loyer": "95 $"},
                   "signers": [{"email": "bernard@partenaire.example", "name": "Bernard Externe"}]}),
        );
        assert_eq!(st, 201, "{e}");
        assert_eq!(e["title"], "Bail — place B-12");
        let (_, pdf) =
            sender.bytes("GET", &format!("/api/v1/envelopes/{}/document", e["id"].as_str().expect("id")), None);
        assert!(pdf.starts_with(b"%PDF-") && String::from_utf8_lossy(&pdf).contains("/StructTreeRoot"), "tagged PDF");
        assert!(s.last_mail("bernard@partenaire.example").contains("/signer/"));

        // A CSV with a bad row: nothing is sent, the line is named.
        let bad = "locataire,place,loyer,signer1_email,signer1_name\nA,P-1,90 $,a@example.org,A\nB,P-2,90 $,pas-une-adresse,B\n";
        let (st, e, _) =
            sender.raw("POST", &format!("/api/v1/templates/{id}/bulk"), None, Some(("text/csv", bad.into())));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_csv")), "{e}");
        assert!(e["error"]["details"][0].as_str().is_some_and(|d| d.starts_with("line 3:")), "{e}");
        assert!(s.last_mail("a@example.org").is_empty(), "nothing was sent");
        let (st, e, _) = sender.raw(
            "POST",
            &format!("/api/v1/templates/{id}/bulk"),
            None,
            Some(("text/csv", "place\nP-1\n".into())),
        );
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("invalid_csv")), "missing columns: {e}");
        // A good one: one envelope per row, each signer told.
        let mut csv = String::from("locataire,place,loyer,signer1_email,signer1_name\n");
        for i in 1..=12 {
            csv.push_str(&format!("Locataire {i},P-{i},\"1 000,00 $\",l{i}@example.org,Locataire {i}\n"));
        }
        let (st, r, _) =
            sender.raw("POST", &format!("/api/v1/templates/{id}/bulk"), None, Some(("text/csv", csv.into_bytes())));
        assert_eq!((st, r["sent"].as_u64()), (201, Some(12)), "{r}");
        let mail = s.last_mail("l7@example.org");
        assert!(mail.contains("Bail — place P-7") && mail.contains("/signer/"), "{mail}");
        let first = r["envelopes"][0].as_str().expect("id");
        let (_, e) = sender.get(&format!("/api/v1/envelopes/{first}"));
        assert_eq!((e["state"].as_str(), e["recipients"][0]["email"].as_str()), (Some("sent"), Some("l1@example.org")));
        let admin = s.user("admin@example.org", &["administrator"]);
        let (_, report) = admin.get("/api/v1/audit/verify");
        assert!(report["first_broken"].is_null(), "{report}");
    });
}

/// A multipart form for a PKCS#12 import.
fn p12_form(p12: &[u8], password: &str, passphrase: &str) -> (String, Vec<u8>) {
    multipart(&[
        ("password", None, password.as_bytes()),
        ("passphrase", None, passphrase.as_bytes()),
        ("pkcs12", Some("moi.p12"), p12),
    ])
}

#[test]
fn an_employee_brings_a_certificate_from_the_organizations_own_ca() {
    if !tool("openssl") {
        return;
    }
    // The organization's own CA, and a PKCS#12 file of an employee's.
    let now = time::OffsetDateTime::now_utc();
    let files = guichet_pades::ca::init("Société du Plan Nord", "CA", now).expect("CA");
    let issuing = guichet_pades::ca::IssuingCa::load("Société du Plan Nord", "CA", &files.issuing_key).expect("CA");
    let person = guichet_pades::ca::Employee {
        name: "Denise Dufour".into(),
        email: "denise@example.org".into(),
        organization: "Société du Plan Nord".into(),
        unit: None,
    };
    let issued = issuing.issue(&person, 4242, now, 365).expect("issue");
    let dir = tmpdir("p12");
    std::fs::write(dir.join("cert.pem"), &issued.cert_pem).expect("write");
    std::fs::write(dir.join("key.pem"), &issued.key_pem).expect("write");
    std::fs::write(dir.join("chain.pem"), &files.issuing_cert).expect("write");
    let (ok, out) = run(Command::new("openssl")
        .args([
            "pkcs12",
            "-export",
            "-inkey",
            "key.pem",
            "-in",
            "cert.pem",
            "-certfile",
            "chain.pem",
            "-out",
            "moi.p12",
        ])
        .args(["-passout", "pass:mot-de-passe"])
        .current_dir(&dir));
    assert!(ok, "{out}");
    let p12 = std::fs::read(dir.join("moi.p12")).expect("p12");
    let root = guichet_pades::ca::pem_to_der(&files.root_cert).expect("root");

    // A service that does not trust that CA refuses the file.
    let untrusting = start("sqlite");
    let denise = untrusting.user("denise@example.org", &["case_worker"]);
    let (ct, body) = p12_form(&p12, "mot-de-passe", PASSPHRASE);
    let (st, e, _) = denise.raw("POST", "/api/v1/me/certificates/import", None, Some((&ct, body)));
    assert_eq!((st, e["error"]["code"].as_str()), (422, Some("untrusted_certificate")), "{e}");

    // One that trusts it takes it; the employee signs with it.
    let s = start_with("sqlite", guichet_app::Config { trust_anchors: vec![root], ..config() });
    let denise = s.user("denise@example.org", &["case_worker"]);
    let (ct, body) = p12_form(&p12, "pas-le-bon", PASSPHRASE);
    let (st, e, _) = denise.raw("POST", "/api/v1/me/certificates/import", None, Some((&ct, body)));
    assert_eq!((st, e["error"]["code"].as_str()), (422, Some("bad_pkcs12")), "wrong password: {e}");
    let (ct, body) = p12_form(&p12, "mot-de-passe", PASSPHRASE);
    let (st, cert, _) = denise.raw("POST", "/api/v1/me/certificates/import", None, Some((&ct, body)));
    assert_eq!(st, 201, "{cert}");
    assert_eq!(cert["serial"], "1092", "the serial of the organization's certificate (4242)");
    let (ct, body) = p12_form(&p12, "mot-de-passe", PASSPHRASE);
    assert_eq!(denise.raw("POST", "/api/v1/me/certificates/import", None, Some((&ct, body))).0, 409, "once");

    let (citizen, _, dossier) = approved_loan(&s);
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let loan = list[0]["id"].as_str().expect("id").to_owned();
    let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{loan}/document?file=original"), None);
    let envelope = json!({"title": "Contrat", "recipients": [{"kind": "employee", "email": "denise@example.org"}]});
    let (ct, body) = envelope_form(&pdf, &envelope);
    let (_, env, _) = denise.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
    let id = env["id"].as_str().expect("id").to_owned();
    let (st, e) = denise
        .post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true, "passphrase": PASSPHRASE}));
    assert_eq!((st, e["state"].as_str()), (200, Some("completed")), "{e}");
    let (_, signed) = denise.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
    let (_, v, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", signed.clone())));
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["signatures"][0]["signer"].as_str().is_some_and(|x| x.contains("Denise Dufour")), "{v}");
    if let Some(py) = pyhanko() {
        let file = dir.join("signe.pdf");
        std::fs::write(&file, &signed).expect("write");
        std::fs::write(dir.join("root.pem"), &files.root_cert).expect("write");
        let (_, ca) = s.client().bytes("GET", "/pki/ca.pem", None);
        std::fs::write(dir.join("ours.pem"), ca).expect("write");
        let (ok, out) = run(Command::new(py)
            .args(["sign", "validate", "--pretty-print", "--trust-replace", "--trust"])
            .arg(dir.join("root.pem"))
            .arg("--trust")
            .arg(dir.join("ours.pem"))
            .arg(&file));
        assert!(ok && out.contains("judged VALID"), "{out}");
    }
}

#[test]
fn an_employee_signs_with_a_key_kept_on_the_servers_hsm() {
    let module = "/usr/lib/softhsm/libsofthsm2.so";
    if !(std::path::Path::new(module).exists() && tool("softhsm2-util")) {
        assert!(!validators_required(), "SoftHSM2 is required");
        return;
    }
    // The organization's own CA issues Denise's certificate; her key goes
    // on a token of the server's HSM (SoftHSM2, its default store).
    let now = time::OffsetDateTime::now_utc();
    let files = guichet_pades::ca::init("Société du Plan Nord", "CA", now).expect("CA");
    let issuing = guichet_pades::ca::IssuingCa::load("Société du Plan Nord", "CA", &files.issuing_key).expect("CA");
    let person = guichet_pades::ca::Employee {
        name: "Denise Dufour".into(),
        email: "denise@example.org".into(),
        organization: "Société du Plan Nord".into(),
        unit: None,
    };
    let issued = issuing.issue(&person, 5151, now, 365).expect("issue");
    let dir = tmpdir("hsm");
    std::fs::write(dir.join("key.pem"), &issued.key_pem).expect("write");
    let label = format!("guichet-test-{}", std::process::id());
    let util = |args: &[&str]| run(Command::new("softhsm2-util").args(args).current_dir(&dir));
    let (ok, out) = util(&["--init-token", "--free", "--label", &label, "--pin", "1234", "--so-pin", "5678"]);
    assert!(ok, "{out}");
    let (ok, out) =
        util(&["--import", "key.pem", "--token", &label, "--label", "denise", "--id", "0d", "--pin", "1234"]);
    assert!(ok, "{out}");

    let root = guichet_pades::ca::pem_to_der(&files.root_cert).expect("root");
    let s = start_with(
        "sqlite",
        guichet_app::Config { trust_anchors: vec![root], pkcs11_module: Some(module.into()), ..config() },
    );
    let denise = s.user("denise@example.org", &["case_worker"]);
    let pem = format!("{}{}", issued.cert_pem, files.issuing_cert);
    let register = |pin: &str| {
        denise.post(
            "/api/v1/me/certificates/token",
            json!({"certificate": pem, "token": label, "key_label": "denise", "pin": pin}),
        )
    };
    let (st, e) = register("0000");
    assert_eq!((st, e["error"]["code"].as_str()), (422, Some("wrong_passphrase")), "{e}");
    let (st, cert) = register("1234");
    assert_eq!(st, 201, "{cert}");

    // She signs a contract with it: her PIN, typed to sign.
    let (citizen, _, dossier) = approved_loan(&s);
    let (_, list) = citizen.get(&format!("/api/v1/dossiers/{dossier}/envelopes"));
    let loan = list[0]["id"].as_str().expect("id").to_owned();
    let (_, pdf) = citizen.bytes("GET", &format!("/api/v1/envelopes/{loan}/document?file=original"), None);
    let envelope = json!({"title": "Contrat", "recipients": [{"kind": "employee", "email": "denise@example.org"}]});
    let (ct, body) = envelope_form(&pdf, &envelope);
    let (_, env, _) = denise.raw("POST", "/api/v1/envelopes", None, Some((&ct, body)));
    let id = env["id"].as_str().expect("id").to_owned();
    let (st, e) =
        denise.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true, "passphrase": "9999"}));
    assert_eq!((st, e["error"]["code"].as_str()), (422, Some("wrong_passphrase")), "{e}");
    let (st, e) =
        denise.post(&format!("/api/v1/envelopes/{id}/recipients/0/sign"), json!({"agree": true, "passphrase": "1234"}));
    assert_eq!((st, e["state"].as_str()), (200, Some("completed")), "{e}");
    let (_, signed) = denise.bytes("GET", &format!("/api/v1/envelopes/{id}/document"), None);
    let (_, v, _) = s.client().raw("POST", "/api/v1/verify", None, Some(("application/pdf", signed)));
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["signatures"][0]["signer"].as_str().is_some_and(|x| x.contains("Denise Dufour")), "{v}");
    let _ = util(&["--delete-token", "--token", &label]);
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port")
}

#[test]
fn the_outbox_is_delivered_over_smtp_once_and_retried_later_when_the_server_is_down() {
    // Python's own SMTP server, printing what it receives.
    let python_has_smtpd = run(Command::new("python3").args(["-c", "import smtpd"])).0;
    if !python_has_smtpd {
        assert!(!validators_required(), "python3 with smtpd is required");
        return;
    }
    let s = start("sqlite");
    let (citizen, _, _) = approved_loan(&s);
    drop(citizen);
    // The server is down: the mails wait, with their error, for later.
    let down = guichet_app::Mailer::new(&guichet_app::SmtpSettings {
        host: "127.0.0.1".into(),
        port: free_port(),
        starttls: false,
        username: None,
        password: None,
        from: "guichet <no-reply@example.org>".into(),
    })
    .expect("mailer");
    let (sent, failed) = s.rt.block_on(s.app.deliver_mails(&down)).expect("deliver");
    assert_eq!(sent, 0);
    assert!(failed >= 1, "{failed}");
    assert_eq!(s.rt.block_on(s.app.deliver_mails(&down)).expect("deliver"), (0, 0), "not again before their time");
    // The server is up; a minute later, everything goes, once.
    let port = free_port();
    let mut server = Command::new("python3")
        .args(["-u", "-m", "smtpd", "-n", "-c", "DebuggingServer", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("smtpd");
    std::thread::sleep(std::time::Duration::from_millis(700));
    let up = guichet_app::Mailer::new(&guichet_app::SmtpSettings {
        host: "127.0.0.1".into(),
        port,
        starttls: false,
        username: None,
        password: None,
        from: "guichet <no-reply@example.org>".into(),
    })
    .expect("mailer");
    s.app.shift_clock(61);
    let (sent, failed) = s.rt.block_on(s.app.deliver_mails(&up)).expect("deliver");
    assert!(sent >= 1 && failed == 0, "{sent} {failed}");
    assert_eq!(s.rt.block_on(s.app.deliver_mails(&up)).expect("deliver"), (0, 0), "once");
    std::thread::sleep(std::time::Duration::from_millis(300));
    let _ = server.kill();
    let out = server.wait_with_output().expect("output");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("To: marie@example.org"), "{text}");
    assert!(text.contains("From: guichet <no-reply@example.org>"), "{text}");
    // Every mail once: as many messages as queued, each Message-ID once.
    let queued = s.rt.block_on(s.app.mails_to("marie@example.org")).expect("mails").len();
    assert!(queued >= 3, "received, decision, agreement: {queued}");
    assert_eq!(text.matches("To: marie@example.org").count(), queued, "once: {text}");
    let ids: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("b'Message-ID: ")).collect();
    let unique: std::collections::BTreeSet<&&str> = ids.iter().collect();
    assert_eq!((ids.len(), unique.len()), (queued, queued), "{ids:?}");
    // The notices are in the applicant's language, with their links.
    assert!(text.contains("Subject: Demande =?utf-8?b?cmXDp3Vl?="), "application received: {text}");
    assert!(text.contains("/demandes/d_"), "{text}");
}
