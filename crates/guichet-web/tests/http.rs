//! Black-box tests of the JSON API over a real socket, on SQLite and (with
//! `GUICHET_TEST_POSTGRES`) PostgreSQL.

mod common;

use common::*;
use serde_json::{Value, json};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

#[test]
fn a_citizen_applies_and_the_dossier_goes_through_decision_and_review() {
    on_each(|s| {
        // Register, verify by the emailed link, sign in.
        let mut citizen = s.client();
        let (st, body) = citizen.post(
            "/api/v1/auth/register",
            json!({"email": "Marie@Example.org", "password": PASSWORD, "name": "Marie Tremblay"}),
        );
        assert_eq!(st, 201, "{body}");
        let mail = s.last_mail("marie@example.org");
        let token = mail.split("token=").nth(1).and_then(|t| t.split_whitespace().next()).expect("link").to_owned();
        assert_eq!(citizen.post("/api/v1/auth/verify", json!({"token": token})).0, 200);
        assert_eq!(citizen.post("/api/v1/auth/verify", json!({"token": token})).1["error"]["code"], "invalid_token");
        assert_eq!(citizen.login("marie@example.org", PASSWORD).0, 200);
        assert_eq!(citizen.get("/api/v1/me").1["verified"], true);

        // A draft, answered in two steps, evaluated leniently.
        let (st, d) = citizen.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020"}));
        assert_eq!(st, 201, "{d}");
        let dossier = id(&d);
        let path = format!("/api/v1/dossiers/{dossier}");
        let all = eligible_loan();
        let (mut first, mut rest) = (serde_json::Map::new(), serde_json::Map::new());
        for (i, (k, v)) in all.as_object().expect("object").iter().enumerate() {
            if i < 4 {
                first.insert(k.clone(), v.clone())
            } else {
                rest.insert(k.clone(), v.clone())
            };
        }
        let (st, d) = citizen.call("PATCH", &format!("{path}/answers"), Some(json!({"version": 1, "answers": first})));
        assert_eq!(st, 200, "{d}");
        let (st, ev) = citizen.get(&format!("{path}/evaluation"));
        assert_eq!(st, 200, "{ev}");
        assert_eq!(ev["status"], "undetermined");
        // Submitting now names what is missing; nothing is written.
        let (st, e) = citizen.post(&format!("{path}/submit"), json!({"version": 2}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("missing_answer")), "{e}");
        assert_eq!(citizen.get(&path).1["version"], 2);
        let (st, d) = citizen.call("PATCH", &format!("{path}/answers"), Some(json!({"version": 2, "answers": rest})));
        assert_eq!(st, 200, "{d}");
        assert_eq!(d["answers"]["monthly_rent"], "800.00 $");
        // A real PDF for the lease question.
        let (st, d, _) = citizen.raw(
            "POST",
            &format!("{path}/documents?name=bail.pdf&question=lease_copy&version=3"),
            None,
            Some(("application/pdf", b"%PDF-1.7\n%fake but PDF by content\n".to_vec())),
        );
        assert_eq!(st, 200, "{d}");
        let sha = d["documents"][0]["sha256"].as_str().expect("sha").to_owned();
        assert_eq!(d["answers"]["lease_copy"], sha.as_str());
        let (st, bytes, headers) = citizen.raw("GET", &format!("{path}/documents/{sha}"), None, None);
        assert_eq!(st, 200);
        assert!(bytes.as_str().expect("text").starts_with("%PDF-1.7"));
        assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/pdf"));
        let (st, d) = citizen.post(&format!("{path}/submit"), json!({"version": 5}));
        assert_eq!(st, 200, "{d}");
        assert_eq!(d["state"], "submitted");
        assert_eq!(d, citizen.get(&path).1, "a write answers what a read then returns");
        let (_, ev) = citizen.get(&format!("{path}/evaluation?lang=en"));
        assert_eq!((ev["status"].as_str(), ev["amount"].as_str()), (Some("eligible"), Some("1500.00 $")), "{ev}");

        // The case worker refuses against the rules: a justification is needed.
        let worker = s.user("agent@example.org", &["case_worker"]);
        let (_, queue) = worker.get("/api/v1/dossiers?state=submitted");
        assert!(queue["items"].as_array().expect("items").iter().any(|i| i["id"] == dossier.as_str()));
        let (st, e) =
            worker.post(&format!("{path}/decision"), json!({"outcome": "refused", "reasons": ["lease_in_force"]}));
        assert_eq!((st, e["error"]["code"].as_str()), (422, Some("justification_required")), "{e}");
        let (st, d) = worker.post(
            &format!("{path}/decision"),
            json!({"outcome": "refused", "reasons": ["lease_in_force"], "justification": "Bail non conforme"}),
        );
        assert_eq!(st, 200, "{d}");
        assert_eq!(d, worker.get(&path).1);
        assert_eq!(d["state"], "refused");
        assert_eq!(d["decision"]["program_version"].as_str().map(str::len), Some(64));
        assert_eq!(d["decision"]["evaluation"]["status"], "eligible");

        // Review: asked by the citizen, refused to the decider, done by a reviewer.
        let (st, d) = citizen.post(&format!("{path}/review-request"), json!({"reason": "Mon bail est valide"}));
        assert_eq!(st, 200, "{d}");
        let both = s.user("both@example.org", &["case_worker", "reviewer"]);
        let (st, d) = both.post(&format!("{path}/decision"), json!({"outcome": "approved"}));
        assert_eq!(st, 409, "a dossier under review is not decided again: {d}");
        let reviewer = s.user("revision@example.org", &["reviewer"]);
        let (st, d) = reviewer.post(&format!("{path}/review"), json!({"outcome": "approved"}));
        assert_eq!(st, 200, "{d}");
        assert_eq!(
            (d["state"].as_str(), d["amount"].as_i64(), d["reviewed"].as_bool()),
            (Some("agreement_pending"), Some(150_000), Some(true)),
            "a loan approved: its agreement is sent at once"
        );

        // The events tell the whole story, and the audit trail is intact.
        let (_, events) = citizen.get(&format!("{path}/events"));
        let kinds: Vec<&str> = events.as_array().expect("events").iter().filter_map(|e| e["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            [
                "created",
                "answered",
                "answered",
                "document_attached",
                "answered",
                "submitted",
                "decided",
                "review_requested",
                "reviewed",
                "agreement_sent"
            ]
        );
        let admin = s.user("admin@example.org", &["administrator"]);
        s.rt.block_on(s.app.checkpoint()).expect("checkpoint");
        let (st, r) = admin.get("/api/v1/audit/verify");
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["first_broken"], Value::Null, "{r}");
        assert!(r["checkpoints"].as_u64() >= Some(1));
        // Logout ends the session for good.
        assert_eq!(citizen.post("/api/v1/auth/logout", json!({})).0, 200);
        assert_eq!(citizen.get(&path).0, 401);
    });
}

#[test]
fn bad_input_gets_a_precise_error_and_writes_nothing() {
    on_each(|s| {
        let citizen = s.user("c@example.org", &["citizen"]);
        let check = |r: (u16, Value), status: u16, code: &str| {
            assert_eq!((r.0, r.1["error"]["code"].as_str()), (status, Some(code)), "{}", r.1);
        };
        // Malformed and mistyped bodies.
        let (st, b, _) =
            citizen.raw("POST", "/api/v1/dossiers", None, Some(("application/json", b"{\"program\": ".to_vec())));
        check((st, b), 400, "invalid_request");
        check(citizen.post("/api/v1/dossiers", json!({"program": 12})), 400, "invalid_request");
        let r = citizen.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020", "colour": "blue"}));
        check(r.clone(), 400, "invalid_request");
        assert!(r.1["error"]["message"].as_str().expect("msg").contains("colour"));
        let (st, b, _) = citizen.raw("POST", "/api/v1/dossiers", None, Some(("text/plain", b"{}".to_vec())));
        check((st, b), 415, "unsupported_media_type");
        let r = citizen.post("/api/v1/dossiers", json!({"program": "pret-loyer"}));
        check(r.clone(), 422, "unknown_program");
        assert_eq!(r.1["error"]["field"], "program");
        // Answers that break the program's types name the question.
        let r = citizen.post(
            "/api/v1/dossiers",
            json!({"program": "shq-pret-loyer-2020", "answers": {"monthly_rent": "beaucoup"}}),
        );
        check(r.clone(), 422, "invalid_answer");
        assert_eq!(r.1["error"]["field"], "monthly_rent");
        let r = citizen.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020", "answers": {"loyer": 800}}));
        check(r.clone(), 422, "invalid_answer");
        assert!(r.1["error"]["message"].as_str().expect("msg").contains("no question"));
        assert_eq!(citizen.get("/api/v1/dossiers").1["items"].as_array().map(Vec::len), Some(0), "nothing written");

        // Uploads: checked by content, by size.
        let (_, d) = citizen.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020"}));
        let path = format!("/api/v1/dossiers/{}", id(&d));
        let (st, b, _) = citizen.raw(
            "POST",
            &format!("{path}/documents?name=bail.pdf"),
            None,
            Some(("application/pdf", b"MZ\x90\x00 not a pdf".to_vec())),
        );
        check((st, b), 415, "unsupported_media_type");
        let big = vec![b'%'; 20 * 1024 * 1024 + 1];
        let (st, b, _) =
            citizen.raw("POST", &format!("{path}/documents?name=big.pdf"), None, Some(("application/pdf", big)));
        check((st, b), 413, "too_large");
        let (st, b, _) = citizen.raw(
            "POST",
            &format!("{path}/documents?name=x.pdf&question=monthly_rent"),
            None,
            Some(("application/pdf", b"%PDF-1.4".to_vec())),
        );
        check((st, b), 422, "invalid_answer");
        assert_eq!(citizen.get(&path).1["documents"].as_array().map(Vec::len), Some(0));

        // Optimistic concurrency: a stale version is a clear 409.
        let patch = |v: i64| {
            citizen.call(
                "PATCH",
                &format!("{path}/answers"),
                Some(json!({"version": v, "answers": {"portion": "all"}})),
            )
        };
        assert_eq!(patch(1).0, 200);
        let r = patch(1);
        check(r.clone(), 409, "version_conflict");
        assert_eq!(r.1["error"]["current_version"], 2);

        // Sessions: missing CSRF token, unknown or no session, unknown route.
        let mut no_csrf = Client::new(&s.base);
        no_csrf.cookie = citizen.cookie.clone();
        check(no_csrf.post("/api/v1/dossiers", json!({"program": "shq-pret-loyer-2020"})), 403, "forbidden");
        assert_eq!(no_csrf.get(&path).0, 200, "reading needs no CSRF token");
        let mut forged = Client::new(&s.base);
        forged.cookie = Some(format!("{}=deadbeef", guichet_app::SESSION_COOKIE));
        check(forged.get(&path), 401, "unauthenticated");
        check(s.client().get(&path), 401, "unauthenticated");
        check(citizen.get("/api/v1/nothing-here"), 404, "not_found");
        check(citizen.get("/api/v1/dossiers?state=flying"), 400, "invalid_request");

        // Wrong passwords are throttled per account.
        let mut guess = s.client();
        for _ in 0..5 {
            check(guess.login("c@example.org", "wrong password!"), 401, "bad_credentials");
        }
        check(guess.login("c@example.org", PASSWORD), 429, "throttled");
        check(
            s.client()
                .post("/api/v1/auth/register", json!({"email": "x@example.org", "password": "short", "name": "X"})),
            422,
            "weak_password",
        );
        check(
            s.client()
                .post("/api/v1/auth/register", json!({"email": "C@example.org", "password": PASSWORD, "name": "X"})),
            409,
            "taken",
        );
    });
}

#[test]
fn api_tokens_and_two_factor_codes() {
    on_each(|s| {
        let mut worker = s.user("w@example.org", &["case_worker"]);
        let (st, t) = worker.post("/api/v1/me/tokens", json!({"name": "script", "days": 30}));
        assert_eq!(st, 201, "{t}");
        let mut script = s.client();
        script.bearer = t["token"].as_str().map(str::to_owned);
        assert_eq!(script.get("/api/v1/me").1["email"], "w@example.org");
        assert_eq!(script.get("/api/v1/dossiers").0, 200);
        script.bearer = Some("0".repeat(64));
        assert_eq!(script.get("/api/v1/me").0, 401);

        let secret = guichet_app::base32(b"0123456789abcdef0123");
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("time").as_secs() as i64;
        let wrong = worker.post("/api/v1/me/totp", json!({"secret": secret, "code": "000000"}));
        assert_eq!(wrong.0, 422);
        let code = guichet_app::totp_code(b"0123456789abcdef0123", now);
        assert_eq!(worker.post("/api/v1/me/totp", json!({"secret": secret, "code": code})).0, 200);
        let mut again = s.client();
        let (st, e) = again.login("w@example.org", PASSWORD);
        assert_eq!((st, e["error"]["code"].as_str()), (401, Some("totp_required")));
        let (st, body, _) = again.raw(
            "POST",
            "/api/v1/auth/login",
            Some(json!({"email": "w@example.org", "password": PASSWORD, "totp": guichet_app::totp_code(b"0123456789abcdef0123", now)})),
            None,
        );
        assert_eq!(st, 200, "{body}");
        // Citizens do not get TOTP (their accounts are email + password).
        let citizen = s.user("c2@example.org", &["citizen"]);
        assert_eq!(citizen.post("/api/v1/me/totp", json!({"secret": secret, "code": code})).0, 403);
        worker.csrf = None;
        assert_eq!(worker.post("/api/v1/auth/logout", json!({})).0, 403, "logout needs the CSRF token too");
    });
}

#[test]
fn the_openapi_document_matches_its_snapshot_and_every_route_answers() {
    let doc = guichet_web::openapi();
    let text = serde_json::to_string_pretty(&doc).expect("json") + "\n";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/openapi.json");
    if std::env::var("UPDATE_SNAPSHOTS").is_ok() {
        std::fs::create_dir_all(path.parent().expect("dir")).expect("mkdir");
        std::fs::write(&path, &text).expect("write");
    }
    let stored = std::fs::read_to_string(&path).expect("snapshot (run with UPDATE_SNAPSHOTS=1 to create it)");
    assert!(stored == text, "the OpenAPI document changed: review and run with UPDATE_SNAPSHOTS=1");
    assert_eq!(doc["openapi"], "3.1.0");
    // Every documented route is served (never the 404 fallback or 405).
    let s = start("sqlite");
    let anon = s.client();
    for r in guichet_web::routes() {
        let path = r.path.replace("{id}", "x").replace("{sha256}", "y");
        let (st, body) =
            anon.call(&r.method.to_uppercase(), &path, if r.method == "get" { None } else { Some(json!({})) });
        assert!(st != 405, "{} {} → {st}", r.method, r.path);
        if st == 404 {
            let msg = body["error"]["message"].as_str().unwrap_or_default();
            assert!(!msg.starts_with("there is no route"), "{} {} fell through to the fallback", r.method, r.path);
        }
        assert!(doc["paths"][r.path][r.method].is_object());
    }
}

#[test]
fn an_expired_session_is_refused() {
    for b in guichet_store::testing::backends() {
        let s = start_with(
            b,
            // Two seconds (times are whole seconds: one could end at once).
            guichet_app::Config { session_ttl: 2, reference_date: Some("2020-05-10".into()), ..Default::default() },
        );
        let c = s.user("short@example.org", &["citizen"]);
        assert_eq!(c.get("/api/v1/me").0, 200);
        std::thread::sleep(std::time::Duration::from_millis(3100));
        let (st, e) = c.get("/api/v1/me");
        assert_eq!((st, e["error"]["code"].as_str()), (401, Some("unauthenticated")), "{e}");
    }
}
