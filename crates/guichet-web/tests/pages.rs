//! The HTML screens over HTTP (no browser): languages, redirects, CSRF,
//! double submits, form errors with values kept.

mod common;

use common::*;
use serde_json::Value;

/// A form POST (urlencoded) with the client's cookie; returns (status,
/// body, Location).
fn form(c: &Client, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
    let body: String = fields.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&");
    let (st, b, h) = c.raw("POST", path, None, Some(("application/x-www-form-urlencoded", body.into_bytes())));
    (st, text(b), location(&h))
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn text(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

fn location(h: &[(String, String)]) -> Option<String> {
    h.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone())
}

fn page(c: &Client, path: &str) -> (u16, String, Option<String>) {
    let (st, b, h) = c.raw("GET", path, None, None);
    (st, text(b), location(&h))
}

/// A multipart form POST (the guided form's steps).
fn multipart(c: &Client, path: &str, fields: &[(&str, &str)]) -> (u16, String, Option<String>) {
    let boundary = "guichet-test-boundary";
    let mut body = String::new();
    for (k, v) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    let ct = format!("multipart/form-data; boundary={boundary}");
    let (st, b, h) = c.raw("POST", path, None, Some((&ct, body.into_bytes())));
    (st, text(b), location(&h))
}

#[test]
fn pages_speak_french_first_and_english_on_request() {
    let s = start("sqlite");
    let mut anon = s.client();
    let (st, body, _) = page(&anon, "/");
    assert_eq!(st, 200);
    assert!(body.contains("<html lang=\"fr\">") && body.contains("Programmes d&#39;aide offerts"), "{body}");
    let (st, _, to) = page(&anon, "/langue/en?retour=/programmes/shq-pret-loyer-2020");
    assert_eq!((st, to.as_deref()), (303, Some("/programmes/shq-pret-loyer-2020")));
    anon.cookie = Some("lang=en".into());
    let (_, body, _) = page(&anon, "/programmes/shq-pret-loyer-2020");
    assert!(body.contains("<html lang=\"en\">") && body.contains("Eligibility conditions"), "{body}");
    // Only local paths are followed.
    for evil in ["//evil.example/", "https://evil.example/", "/\\evil.example"] {
        let (_, _, to) = page(&anon, &format!("/langue/fr?retour={}", enc(evil)));
        assert_eq!(to.as_deref(), Some("/"), "{evil}");
    }
    let (st, body, _) = page(&anon, "/nulle-part");
    assert_eq!(st, 404);
    assert!(body.contains("Page not found"));
    let (st, _, to) = page(&s.client(), "/mes-demandes");
    assert_eq!((st, to.as_deref()), (303, Some("/connexion?retour=/mes-demandes")));
}

#[test]
fn a_double_click_makes_one_dossier_and_csrf_is_required() {
    let s = start("sqlite");
    let c = s.user("c@example.org", &["citizen"]);
    let csrf = c.csrf.clone().expect("csrf");
    let (st, _, first) = form(&c, "/programmes/shq-pret-loyer-2020/commencer", &[("_csrf", &csrf)]);
    assert_eq!(st, 303);
    let (_, _, second) = form(&c, "/programmes/shq-pret-loyer-2020/commencer", &[("_csrf", &csrf)]);
    assert_eq!(first, second, "the second click continues the same draft");
    assert_eq!(c.get("/api/v1/dossiers").1["items"].as_array().map(Vec::len), Some(1));
    let (st, _, _) = form(&c, "/programmes/shq-pret-loyer-2020/commencer", &[("_csrf", "forged")]);
    assert_eq!(st, 403);
    let mut other = Client::new(&s.base);
    other.cookie = c.cookie.clone();
    let (st, _, _) = form(&other, "/programmes/shq-pret-loyer-2020/commencer", &[]);
    assert_eq!(st, 403, "no token, no write");
    assert_eq!(c.get("/api/v1/dossiers").1["items"].as_array().map(Vec::len), Some(1));

    // Submitting twice: the second lands on the dossier, nothing else.
    let id = first.as_deref().and_then(|p| p.split('/').nth(2)).expect("id").to_owned();
    let (st, d) = c.call(
        "PATCH",
        &format!("/api/v1/dossiers/{id}/answers"),
        Some(serde_json::json!({"answers": eligible_loan()})),
    );
    assert_eq!(st, 200, "{d}");
    for _ in 0..2 {
        let (st, _, to) = form(&c, &format!("/demandes/{id}/soumettre"), &[("_csrf", &csrf)]);
        assert_eq!((st, to), (303, Some(format!("/demandes/{id}"))));
    }
    let (_, events) = c.get(&format!("/api/v1/dossiers/{id}/events"));
    assert_eq!(events.as_array().expect("events").iter().filter(|e| e["kind"] == "submitted").count(), 1);
}

#[test]
fn form_errors_sit_beside_their_fields_with_the_typed_values_kept() {
    let s = start("sqlite");
    let c = s.user("c@example.org", &["citizen"]);
    let csrf = c.csrf.clone().expect("csrf");
    let (_, _, to) = form(&c, "/programmes/shq-pret-loyer-2020/commencer", &[("_csrf", &csrf)]);
    let step1 = to.expect("redirect");
    let step3 = step1.replace("/etapes/1", "/etapes/3");
    let (st, body, _) = multipart(
        &c,
        &step3,
        &[("_csrf", &csrf), ("_version", "1"), ("q.monthly_rent", "huit cents"), ("q.months_covered", "both")],
    );
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("id=\"q-monthly_rent-error\"") && body.contains("Entrez un montant en dollars"), "{body}");
    assert!(body.contains("value=\"huit cents\""), "the typed value is kept");
    assert!(body.contains("aria-invalid=\"true\""));
    assert!(body.contains("value=\"both\" checked"), "the chosen option is kept");
    // Required, asked questions are named; a stale version is a clear message.
    assert!(body.contains("id=\"q-portion-error\"") && body.contains("Cette réponse est obligatoire"), "{body}");
    let (st, body, to) = multipart(
        &c,
        &step3,
        &[
            ("_csrf", &csrf),
            ("_version", "1"),
            ("q.monthly_rent", "800,00"),
            ("q.months_covered", "both"),
            ("q.portion", "all"),
        ],
    );
    assert_eq!((st, to.as_deref()), (303, Some(step1.replace("/etapes/1", "/etapes/4").as_str())), "{body}");
    let (st, body, _) = multipart(
        &c,
        &step3,
        &[
            ("_csrf", &csrf),
            ("_version", "1"),
            ("q.monthly_rent", "900,00"),
            ("q.months_covered", "may"),
            ("q.portion", "all"),
        ],
    );
    assert_eq!(st, 409, "{body}");
    assert!(body.contains("modifiée ailleurs") && body.contains("value=\"900,00\""), "{body}");
    let id = step1.split('/').nth(2).expect("id");
    assert_eq!(
        c.get(&format!("/api/v1/dossiers/{id}")).1["answers"]["monthly_rent"],
        "800.00",
        "the stale write changed nothing"
    );
}

#[test]
fn the_decision_letter_is_a_pdf_in_the_applicants_language() {
    let s = start("sqlite");
    let c = s.user("c@example.org", &["citizen"]);
    let (st, d) = c.post(
        "/api/v1/dossiers",
        serde_json::json!({"program": "shq-pret-loyer-2020", "answers": eligible_loan(), "submit": true}),
    );
    assert_eq!(st, 201, "{d}");
    let id = d["id"].as_str().expect("id").to_owned();
    let path = format!("/demandes/{id}/lettre.pdf");
    assert_eq!(page(&c, &path).0, 404, "no decision, no letter");
    let worker = s.user("w@example.org", &["case_worker"]);
    let (st, d) = worker.post(&format!("/api/v1/dossiers/{id}/decision"), serde_json::json!({"outcome": "approved"}));
    assert_eq!(st, 200, "{d}");
    let (st, _, headers) = c.raw("GET", &path, None, None);
    assert_eq!(st, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v == "application/pdf"));
    let file = std::env::temp_dir().join(format!("lettre-{id}.pdf"));
    // The body came through a lossy UTF-8 read: fetch the bytes again raw.
    let raw = {
        use std::io::Read;
        let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
        let mut r = agent
            .get(&format!("{}{path}", s.base))
            .header("cookie", c.cookie.as_deref().unwrap_or(""))
            .call()
            .expect("get");
        let mut v = Vec::new();
        r.body_mut().as_reader().read_to_end(&mut v).expect("read");
        v
    };
    assert!(raw.starts_with(b"%PDF-"));
    std::fs::write(&file, &raw).expect("write");
    let required = std::env::var("GUICHET_REQUIRE_VALIDATORS").is_ok();
    match std::process::Command::new("pdftotext").arg(&file).arg("-").output() {
        Ok(out) => {
            let text = String::from_utf8_lossy(&out.stdout);
            assert!(
                text.contains("Votre demande est acceptée") && text.contains("Tribunal administratif du Québec"),
                "{text}"
            );
            assert!(text.contains("1 500,00 $") || text.contains("1\u{a0}500,00 $"), "{text}");
        }
        Err(_) => assert!(!required, "pdftotext is required"),
    }
    match std::process::Command::new("qpdf").arg("--check").arg(&file).output() {
        Ok(out) => assert!(out.status.success(), "qpdf: {}", String::from_utf8_lossy(&out.stdout)),
        Err(_) => assert!(!required, "qpdf is required"),
    }
    // Someone else's letter stays hidden.
    let other = s.user("o@example.org", &["citizen"]);
    assert_eq!(page(&other, &path).0, 404);
}

#[test]
fn a_logo_must_be_an_image_and_only_administrators_set_it() {
    let s = start("sqlite");
    let admin = s.user("a@example.org", &["administrator"]);
    let csrf = admin.csrf.clone().expect("csrf");
    assert_eq!(page(&admin, "/logo").0, 404, "no logo yet");
    let (st, body, _) = multipart(&admin, "/admin/logo", &[("_csrf", &csrf), ("logo", "%PDF-1.4 not an image")]);
    assert_eq!(st, 422, "{body}");
    assert!(body.contains("PNG ou JPEG"), "{body}");
    let citizen = s.user("c@example.org", &["citizen"]);
    let ccsrf = citizen.csrf.clone().expect("csrf");
    let (st, _, _) = multipart(&citizen, "/admin/logo", &[("_csrf", &ccsrf), ("logo", "\u{89}PNG")]);
    assert_eq!(st, 403);
    assert_eq!(page(&admin, "/logo").0, 404, "nothing was stored");
}
