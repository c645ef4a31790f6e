//! The loan agreement, end to end over the API: approved → generated →
//! signed by the citizen → countersigned by a signing officer with a
//! personal certificate → completed (B-LTA, certificate of completion) →
//! the dossier is released for payment. The final PDF is checked by our
//! own validator (the public /api/v1/verify), and by pdfsig and pyHanko
//! when installed (CI requires them).

mod common;

use common::*;
use serde_json::{Value, json};

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
        officer.login("signataire@example.org", PASSWORD);

        // Every step is in the audit chain, intact.
        let (_, report) = admin.get("/api/v1/audit/verify");
        assert!(report["first_broken"].is_null(), "{report}");
        let _ = &mut officer;
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
        let _: &Value = &v;
    });
}
