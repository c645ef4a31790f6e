//! The authorization matrix: every API route × every role, on the caller's
//! own dossier (the applicant) and on someone else's. Allowed means the
//! request got past authorization (any answer but 401, 403 or 404; it may
//! still be refused for the dossier's state); denied means 403, or 404
//! when a citizen asks about someone else's dossier (they must not learn
//! it exists, nor an envelope they are not party to); anonymous callers
//! get 401 on every protected route.

mod common;

use common::*;
use serde_json::{Value, json};

const ROLES: [&str; 9] = [
    "anonymous",
    "owner",
    "other_citizen",
    "case_worker",
    "reviewer",
    "finance_officer",
    "program_manager",
    "administrator",
    "signing_officer",
];

#[test]
fn every_route_for_every_role() {
    on_each(|s| {
        let mut clients = std::collections::HashMap::new();
        clients.insert("anonymous", s.client());
        for role in &ROLES[1..] {
            let r = if role.ends_with("citizen") || *role == "owner" { "citizen" } else { role };
            clients.insert(*role, s.user(&format!("{role}@example.org"), &[r]));
        }
        let owner = &clients["owner"];
        let (st, d) =
            owner.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan()}));
        assert_eq!(st, 201, "{d}");
        let id = d["id"].as_str().expect("id").to_owned();
        let (st, d, _) = owner.raw(
            "POST",
            &format!("/api/v1/dossiers/{id}/documents?name=bail.pdf"),
            None,
            Some(("application/pdf", b"%PDF-1.7 lease".to_vec())),
        );
        assert_eq!(st, 200, "{d}");
        let sha = d["documents"][0]["sha256"].as_str().expect("sha").to_owned();
        assert_eq!(owner.post(&format!("/api/v1/dossiers/{id}/submit"), json!({})).0, 200);
        let victim = clients["other_citizen"].user_id.clone().expect("id");
        // A loan approved: its agreement (an envelope) waits for the owner.
        let (st, d) = owner.post(
            "/api/v1/dossiers",
            json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
        );
        assert_eq!(st, 201, "{d}");
        let loan = d["id"].as_str().expect("id").to_owned();
        let (st, d) =
            clients["case_worker"].post(&format!("/api/v1/dossiers/{loan}/decision"), json!({"outcome": "approved"}));
        assert_eq!(st, 200, "{d}");
        let (_, envelopes) = owner.get(&format!("/api/v1/dossiers/{loan}/envelopes"));
        let envelope = format!("/api/v1/envelopes/{}", envelopes[0]["id"].as_str().expect("envelope"));
        // A certificate the program manager holds (to be revoked).
        let (st, cert) = clients["program_manager"]
            .post("/api/v1/me/certificates", json!({"passphrase": "a long enough passphrase"}));
        assert_eq!(st, 201, "{cert}");
        let serial = cert["serial"].as_str().expect("serial").to_owned();
        let manager = clients["program_manager"].user_id.clone().expect("id");
        let (st, t) = clients["case_worker"].post(
            "/api/v1/templates",
            json!({"name": "Bail", "title": "Bail", "source": "= Bail", "fields": [],
                   "signers": [{"label": "Locataire", "kind": "external"}]}),
        );
        assert_eq!(st, 201, "{t}");
        let template = t["id"].as_str().expect("id").to_owned();

        // An (empty) payment batch built by someone else, for its routes.
        let batch =
            s.rt.block_on(s.app.store.create_batch(guichet_store::NewBatch {
                id: "LOT-TEST".into(),
                direction: "credit".into(),
                currency: "CAD".into(),
                created_local: "2020-06-01T09:00:00".into(),
                execution_date: "2020-06-03".into(),
                created_by: "u_someone_else".into(),
                at: 1,
                file_number: 1,
                payments: vec![],
                files: vec![],
            }))
            .expect("batch")
            .id;
        let dossier = format!("/api/v1/dossiers/{id}");
        let decision = json!({"outcome": "approved"});
        // (method, path, body, roles allowed; "owner" = the applicant)
        let any = &ROLES[1..];
        let staff_read = &["owner", "case_worker", "reviewer", "finance_officer", "administrator"][..];
        let table: Vec<(&str, String, Option<Value>, &[&str])> = vec![
            ("GET", "/api/v1/me".into(), None, any),
            ("POST", "/api/v1/me/tokens".into(), Some(json!({"name": "t", "days": 1})), any),
            (
                "POST",
                "/api/v1/me/totp".into(),
                Some(json!({"secret": "A".repeat(32), "code": "000000"})),
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            ("GET", "/api/v1/programs".into(), None, &ROLES),
            ("GET", "/api/v1/programs/shq-pret-loyer-2020".into(), None, &ROLES),
            ("POST", "/api/v1/programs".into(), Some(json!("not toml")), &["program_manager"]),
            ("GET", "/api/v1/dossiers".into(), None, any),
            (
                "POST",
                "/api/v1/dossiers".into(),
                Some(json!({"program": "shq-pret-loyer-2020"})),
                &["owner", "other_citizen"],
            ),
            ("GET", dossier.clone(), None, staff_read),
            ("GET", format!("{dossier}/events"), None, staff_read),
            ("GET", format!("{dossier}/evaluation"), None, staff_read),
            ("GET", format!("{dossier}/documents/{sha}"), None, staff_read),
            ("PATCH", format!("{dossier}/answers"), Some(json!({"answers": {}})), &["owner"]),
            ("POST", format!("{dossier}/documents?name=x.pdf"), None, &["owner"]),
            ("POST", format!("{dossier}/submit"), Some(json!({})), &["owner"]),
            ("POST", format!("{dossier}/information"), Some(json!({"message": "voici"})), &["owner"]),
            ("POST", format!("{dossier}/review-request"), Some(json!({"reason": "r"})), &["owner"]),
            (
                "POST",
                format!("{dossier}/information-requests"),
                Some(json!({"message": "bail?", "due": 4_000_000_000i64})),
                &["case_worker"],
            ),
            ("POST", format!("{dossier}/decision"), Some(decision.clone()), &["case_worker"]),
            ("POST", format!("{dossier}/review"), Some(decision), &["reviewer"]),
            ("POST", format!("{dossier}/assignment"), Some(json!({"take": true})), &["case_worker", "reviewer"]),
            ("POST", format!("{dossier}/withdraw"), Some(json!({"reason": "r"})), &["owner"]),
            ("GET", "/api/v1/users".into(), None, &["administrator"]),
            (
                "POST",
                "/api/v1/users".into(),
                Some(json!({"email": "new@example.org", "name": "N", "roles": ["case_worker"]})),
                &["administrator"],
            ),
            ("PATCH", format!("/api/v1/users/{victim}"), Some(json!({"roles": ["citizen"]})), &["administrator"]),
            ("GET", "/api/v1/audit/verify".into(), None, &["administrator"]),
            ("GET", "/api/v1/me/certificates".into(), None, any),
            (
                "POST",
                "/api/v1/me/certificates".into(),
                Some(json!({"passphrase": "a long enough passphrase"})),
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "POST",
                "/api/v1/me/certificates/token".into(),
                Some(json!({"certificate": "x", "token": "t", "key_label": "k", "pin": "1"})),
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "POST",
                "/api/v1/me/certificates/import".into(),
                None,
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            ("GET", format!("/api/v1/users/{manager}/certificates"), None, &["program_manager", "administrator"]),
            (
                "POST",
                format!("/api/v1/certificates/{serial}/revoke"),
                Some(json!({"reason": "key_compromise"})),
                &["program_manager", "administrator"],
            ),
            ("POST", format!("/api/v1/dossiers/{loan}/agreement"), Some(json!({})), &["case_worker", "reviewer"]),
            ("GET", format!("/api/v1/dossiers/{loan}/envelopes"), None, staff_read),
            ("GET", "/api/v1/envelopes".into(), None, any),
            (
                "POST",
                "/api/v1/templates".into(),
                Some(json!({"name": "t", "title": "t", "source": "x", "fields": [], "signers": []})),
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "GET",
                "/api/v1/templates".into(),
                None,
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "GET",
                format!("/api/v1/templates/{template}"),
                None,
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "POST",
                format!("/api/v1/templates/{template}/send"),
                Some(json!({})),
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "POST",
                format!("/api/v1/templates/{template}/bulk"),
                None,
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "POST",
                "/api/v1/envelopes".into(),
                None,
                &["case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"],
            ),
            (
                "GET",
                envelope.clone(),
                None,
                &["owner", "case_worker", "reviewer", "finance_officer", "administrator", "signing_officer"],
            ),
            (
                "GET",
                format!("{envelope}/document"),
                None,
                &["owner", "case_worker", "reviewer", "finance_officer", "administrator", "signing_officer"],
            ),
            ("POST", format!("{envelope}/recipients/0/sign"), Some(json!({"agree": true})), &["owner"]),
            ("POST", format!("{envelope}/recipients/0/decline"), Some(json!({"reason": "non"})), &["owner"]),
            // Recipient 1 is any signing officer.
            (
                "POST",
                format!("{envelope}/recipients/1/delegate"),
                Some(json!({"email": "case_worker@example.org"})),
                &["signing_officer"],
            ),
            ("POST", format!("{envelope}/void"), Some(json!({"reason": "erreur"})), &["case_worker", "administrator"]),
            ("GET", "/api/v1/payments/ready".into(), None, &["finance_officer"]),
            ("GET", "/api/v1/payments/batches".into(), None, &["finance_officer"]),
            ("POST", "/api/v1/payments/batches".into(), Some(json!({})), &["finance_officer"]),
            ("GET", format!("/api/v1/payments/batches/{batch}"), None, &["finance_officer"]),
            ("POST", format!("/api/v1/payments/batches/{batch}/approve"), Some(json!({})), &["finance_officer"]),
            (
                "POST",
                format!("/api/v1/payments/batches/{batch}/file"),
                Some(json!({"format": "cpa005"})),
                &["finance_officer"],
            ),
            ("POST", "/api/v1/payments/returns".into(), None, &["finance_officer"]),
            ("GET", "/api/v1/loans".into(), None, &["finance_officer"]),
            (
                "POST",
                "/api/v1/loans/debits".into(),
                Some(json!({"execution_date": "2099-01-01"})),
                &["finance_officer"],
            ),
            ("GET", format!("{dossier}/payments"), None, staff_read),
            ("GET", format!("{dossier}/mails"), None, staff_read),
            (
                "POST",
                format!("/api/v1/dossiers/{loan}/bank-details"),
                Some(json!({"institution": "815", "transit": "12345", "account": "7654321"})),
                &["owner", "case_worker", "finance_officer"],
            ),
            (
                "POST",
                format!("/api/v1/dossiers/{loan}/bank-details/confirm"),
                Some(json!({})),
                &["case_worker", "finance_officer"],
            ),
            (
                "POST",
                format!("{dossier}/repayments"),
                Some(json!({"amount": 100, "reference": "CHQ-1"})),
                &["finance_officer"],
            ),
            (
                "POST",
                format!("/api/v1/dossiers/{loan}/debit-authorization"),
                Some(json!({"institution": "815", "transit": "12345", "account": "7654321"})),
                &["owner"],
            ),
            ("POST", format!("{dossier}/duplicates/clear"), Some(json!({"note": "vérifié"})), &["case_worker"]),
            // Last: it ends each session.
            ("POST", "/api/v1/auth/logout".into(), Some(json!({})), any),
        ];
        let documented: std::collections::HashSet<(String, String)> = guichet_web::routes()
            .iter()
            .filter(|r| r.auth)
            .map(|r| (r.method.to_uppercase(), r.path.to_owned()))
            .collect();
        let mut covered = std::collections::HashSet::new();
        let mut failures = Vec::new();
        for (method, path, body, allowed) in &table {
            let template = guichet_web::routes()
                .into_iter()
                .find(|r| {
                    r.method.eq_ignore_ascii_case(method)
                        && r.path.split('/').count() == path.split('?').next().unwrap_or(path).split('/').count()
                        && r.path
                            .split('/')
                            .zip(path.split('?').next().unwrap_or(path).split('/'))
                            .all(|(a, b)| a == b || a.starts_with('{'))
                })
                .map(|r| (r.method.to_uppercase(), r.path.to_owned()))
                .unwrap_or_else(|| panic!("no route for {method} {path}"));
            let protected = documented.contains(&template);
            covered.insert(template);
            for role in ROLES {
                let c = &clients[role];
                let (st, resp, _) = if path.contains("/documents?") {
                    c.raw(method, path, None, Some(("application/pdf", b"%PDF-1.7 more".to_vec())))
                } else if *method == "POST" && path == "/api/v1/me/certificates/import" {
                    let (ct, form) = multipart(&[
                        ("passphrase", None, b"a long enough passphrase"),
                        ("pkcs12", Some("x.p12"), b"not a p12"),
                    ]);
                    c.raw(method, path, None, Some((&ct, form)))
                } else if *method == "POST" && path == "/api/v1/envelopes" {
                    let (ct, form) = multipart(&[
                        ("envelope", None, br#"{"title": "t", "recipients": []}"#),
                        ("document", Some("x.pdf"), b"%PDF-1.7 x"),
                    ]);
                    c.raw(method, path, None, Some((&ct, form)))
                } else {
                    c.raw(method, path, body.clone(), None)
                };
                let ok = if role == "anonymous" && protected {
                    st == 401
                } else if allowed.contains(&role) {
                    !matches!(st, 401 | 403 | 404)
                } else if role == "other_citizen" && path.starts_with("/api/v1/dossiers/") {
                    st == 404
                } else {
                    // Envelopes, like dossiers, are not shown to whoever
                    // may not see them.
                    st == 403
                        || (st == 404
                            && (path.starts_with("/api/v1/dossiers/") || path.starts_with("/api/v1/envelopes/")))
                };
                if !ok {
                    failures.push(format!("{role:>15} {method} {path} → {st} {resp}"));
                }
            }
        }
        assert!(failures.is_empty(), "authorization matrix:\n{}", failures.join("\n"));
        // Every protected route of the API is in the matrix.
        let missing: Vec<_> = documented.difference(&covered).collect();
        assert!(missing.is_empty(), "routes missing from the matrix: {missing:?}");
    });
}
