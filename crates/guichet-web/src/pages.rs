//! The HTML screens: server-rendered (askama), French first, usable
//! without JavaScript. They call the same use cases as the JSON API.
//!
//! Citizen: home, program, sign in, account, the guided form (one section
//! per page, conditions applied, errors beside their fields, values kept),
//! review and submit, their applications, the dossier page with the
//! explanation and the decision. Staff: the case queue.

// Page helpers return a ready page as their error (a redirect to sign-in,
// a 404 page): a Response is larger than clippy likes, and boxing it buys
// nothing on this path.
#![allow(clippy::result_large_err)]

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use guichet_app::{AppError, Caller, DocumentUpload, DossierView, ListFilter, Published, SESSION_COOKIE};
use guichet_rules::{Application, QuestionType};
use std::collections::HashMap;

use crate::AppState;
use crate::extract::cookie;
use crate::i18n::{Lang, Tr};

/// What the page header needs.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub user: Option<String>,
    pub staff: bool,
    pub citizen: bool,
    pub manager: bool,
    pub admin: bool,
    /// Finance officers: the payment screens.
    pub finance: bool,
    /// The demo's mailbox is on.
    pub mailbox: bool,
    /// Any role but citizen: may hold a signing certificate.
    pub employee: bool,
    pub csrf: String,
    pub other_lang: &'static str,
    pub path: String,
    /// The organization's name (header).
    pub org: String,
    /// Whether English is offered.
    pub english: bool,
    pub logo: bool,
}

/// The language, the caller and the header of a request.
pub(crate) struct Ctx {
    pub(crate) t: Tr,
    pub(crate) nav: Nav,
    pub(crate) caller: Option<Caller>,
}

pub(crate) async fn ctx(s: &AppState, headers: &HeaderMap, uri: &Uri) -> Ctx {
    let org = s.app.org_settings().await.unwrap_or(guichet_app::OrgSettings {
        name: "guichet".into(),
        english: true,
        logo: None,
        time_zone: "America/Toronto".into(),
    });
    let lang = cookie(headers, "lang")
        .and_then(|l| Lang::parse(&l))
        .filter(|l| org.english || *l == Lang::Fr)
        .unwrap_or_default();
    let org_tz = org.time_zone.clone();
    let caller = match cookie(headers, SESSION_COOKIE) {
        Some(token) => s.app.caller_from_session(&token).await.ok().flatten(),
        None => None,
    };
    let nav = Nav {
        user: caller.as_ref().map(|c| c.user.name.clone()),
        // Those who read the queue (not program managers: their screens are
        // the programs').
        staff: caller.as_ref().is_some_and(|c| c.actor.may(guichet_core::Action::Read, None).is_ok()),
        citizen: caller.as_ref().is_some_and(|c| c.actor.roles.contains(&guichet_core::Role::Citizen)),
        manager: caller.as_ref().is_some_and(|c| c.actor.roles.contains(&guichet_core::Role::ProgramManager)),
        admin: caller.as_ref().is_some_and(|c| c.actor.roles.contains(&guichet_core::Role::Administrator)),
        finance: caller.as_ref().is_some_and(|c| c.actor.roles.contains(&guichet_core::Role::FinanceOfficer)),
        mailbox: caller.is_some() && s.app.config.mailbox,
        employee: caller.as_ref().is_some_and(|c| c.is_staff()),
        csrf: caller.as_ref().and_then(|c| c.csrf.clone()).unwrap_or_default(),
        other_lang: if lang == Lang::Fr { "en" } else { "fr" },
        path: uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into()),
        org: org.name,
        english: org.english,
        logo: org.logo.is_some(),
    };
    Ctx { t: Tr { lang, tz: crate::i18n::time_zone(&org_tz) }, nav, caller }
}

pub(crate) fn html<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(body) => {
            let mut r = (status, body).into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "template");
            (StatusCode::INTERNAL_SERVER_ERROR, "template error").into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    t: Tr,
    nav: Nav,
    title: String,
    text: String,
}

pub(crate) fn message(c: &Ctx, status: StatusCode, title: &str, text: &str) -> Response {
    html(status, &MessagePage { t: c.t, nav: c.nav.clone(), title: c.t.t(title), text: c.t.t(text) })
}

/// An error from a use case, as a page.
pub(crate) fn failure(c: &Ctx, e: AppError) -> Response {
    match e {
        AppError::NotFound => message(c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text"),
        AppError::Forbidden(_) => message(c, StatusCode::FORBIDDEN, "page-forbidden", "page-not-found-text"),
        AppError::Unauthenticated => to_login(&c.nav.path),
        AppError::WrongState(_) => message(c, StatusCode::CONFLICT, "page-error", "error-wrong-state"),
        other => {
            tracing::error!(error = %other, "page");
            message(c, StatusCode::INTERNAL_SERVER_ERROR, "page-error", "page-error-text")
        }
    }
}

pub(crate) fn to_login(back: &str) -> Response {
    let q: String = url_encode(back);
    Redirect::to(&format!("/connexion?retour={q}")).into_response()
}

pub(crate) fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Only local paths are followed after sign-in or a language change.
fn local_path(p: Option<&String>) -> String {
    match p {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') => p.clone(),
        _ => "/".into(),
    }
}

pub(crate) fn csrf_ok(c: &Ctx, form_token: Option<&str>) -> bool {
    let expected = c.caller.as_ref().and_then(|x| x.csrf.as_deref()).unwrap_or("");
    let sent = form_token.unwrap_or("");
    !expected.is_empty()
        && aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), expected.as_bytes()).is_ok()
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

// ---------------------------------------------------------------- home

struct ProgramCard {
    id: String,
    title: String,
    summary: Option<String>,
    window: String,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    t: Tr,
    nav: Nav,
    programs: Vec<ProgramCard>,
}

fn bi(t: &Tr, v: &serde_json::Value) -> String {
    v.get(t.lang.code()).and_then(|x| x.as_str()).unwrap_or_default().to_owned()
}

pub(crate) async fn home(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let programs = match s.app.programs().await {
        Ok(p) => p,
        Err(e) => return failure(&c, e),
    };
    let t = c.t;
    let programs = programs
        .iter()
        .map(|p| ProgramCard {
            id: p.id.clone(),
            title: bi(&t, &p.title),
            summary: p.summary.as_ref().map(|s| bi(&t, s)),
            window: window(&t, &p.opens, &p.closes),
        })
        .collect();
    html(StatusCode::OK, &HomePage { t, nav: c.nav, programs })
}

fn window(t: &Tr, opens: &str, closes: &str) -> String {
    let mut args = fluent_bundle::FluentArgs::new();
    args.set("opens", t.ymd(opens));
    args.set("closes", t.ymd(closes));
    t.t2("program-window", &args)
}

// ---------------------------------------------------------------- program

#[derive(Template)]
#[template(path = "program.html")]
struct ProgramPage {
    t: Tr,
    nav: Nav,
    id: String,
    title: String,
    summary: Option<String>,
    window: String,
    decision: String,
    rules: Vec<String>,
    questions: Vec<String>,
}

pub(crate) async fn program(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let p = match s.app.current_program(&id).await {
        Ok(p) => p,
        Err(e) => return failure(&c, e),
    };
    let t = c.t;
    let pr = &p.program;
    let page = ProgramPage {
        t,
        id: pr.id.clone(),
        title: t.pick(&pr.title.fr, &pr.title.en).to_owned(),
        summary: pr.summary.as_ref().map(|b| t.pick(&b.fr, &b.en).to_owned()),
        window: window(&t, &pr.opens.to_string(), &pr.closes.to_string()),
        decision: t.t(if pr.decision == guichet_rules::Decision::Automatic {
            "program-decision-automatic"
        } else {
            "program-decision-human"
        }),
        rules: pr.rules.iter().map(|r| t.pick(&r.label.fr, &r.label.en).to_owned()).collect(),
        questions: pr.questions.iter().map(|q| t.pick(&q.label.fr, &q.label.en).to_owned()).collect(),
        nav: c.nav,
    };
    html(StatusCode::OK, &page)
}

pub(crate) async fn start(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = &c.caller else { return to_login(&format!("/programmes/{id}")) };
    if !csrf_ok(&c, form.get("_csrf").map(String::as_str)) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    // A second click (or a second tab) continues the open draft.
    let filter =
        ListFilter { program: Some(id.clone()), state: Some("draft".into()), limit: Some(1), ..Default::default() };
    if let Ok((drafts, _)) = s.app.dossiers(caller, &filter).await {
        if let Some(d) = drafts.first() {
            return see_other(&format!("/demandes/{}/etapes/1", d.id));
        }
    }
    match s.app.create_dossier(caller, &id, None, false).await {
        Ok(d) => see_other(&format!("/demandes/{}/etapes/1", d.id)),
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- sign in

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    t: Tr,
    nav: Nav,
    error: Option<String>,
    email: String,
    next: String,
    totp: bool,
}

#[derive(serde::Deserialize)]
pub(crate) struct Back {
    retour: Option<String>,
}

pub(crate) async fn login_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(b): Query<Back>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let next = local_path(b.retour.as_ref());
    html(StatusCode::OK, &LoginPage { t: c.t, nav: c.nav, error: None, email: String::new(), next, totp: false })
}

pub(crate) async fn login(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let email = form.get("email").cloned().unwrap_or_default();
    let password = form.get("password").cloned().unwrap_or_default();
    let totp = form.get("totp").filter(|x| !x.is_empty()).cloned();
    let next = local_path(form.get("retour"));
    match s.app.login(&email, &password, totp.as_deref()).await {
        Ok(out) => {
            let mut r = see_other(&next);
            let secure = if s.secure_cookies { "; Secure" } else { "" };
            let max_age = out.expires_at - s.app.now();
            if let Ok(v) = HeaderValue::from_str(&format!(
                "{SESSION_COOKIE}={}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}",
                out.token
            )) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        }
        Err(e) => {
            let (key, totp) = match e {
                AppError::Throttled { .. } => ("login-error-throttled", false),
                AppError::TotpRequired => ("login-error-totp", true),
                _ => ("login-error-bad", totp.is_some()),
            };
            let status =
                if key == "login-error-throttled" { StatusCode::TOO_MANY_REQUESTS } else { StatusCode::UNAUTHORIZED };
            html(status, &LoginPage { t: c.t, nav: c.nav, error: Some(c.t.t(key)), email, next, totp })
        }
    }
}

pub(crate) async fn logout(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    if c.caller.is_some() && csrf_ok(&c, form.get("_csrf").map(String::as_str)) {
        if let Some(token) = cookie(&headers, SESSION_COOKIE) {
            let _ = s.app.logout(&token).await;
        }
    }
    let mut r = see_other("/");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("guichet_session=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0"),
    );
    r
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    t: Tr,
    nav: Nav,
    done: bool,
    /// (id, label, type, autocomplete, value, help)
    fields: Vec<(String, String, String, String, String, Option<String>)>,
    errors: Vec<(String, String)>,
}

impl RegisterPage {
    fn error_for(&self, id: &str) -> Option<&String> {
        self.errors.iter().find(|(f, _)| f == id).map(|(_, m)| m)
    }
}

fn register_page(c: &Ctx, form: &HashMap<String, String>, errors: Vec<(String, String)>, done: bool) -> RegisterPage {
    let t = c.t;
    let v = |k: &str| form.get(k).cloned().unwrap_or_default();
    RegisterPage {
        t,
        nav: c.nav.clone(),
        done,
        fields: vec![
            ("name".into(), t.t("register-name"), "text".into(), "name".into(), v("name"), None),
            ("email".into(), t.t("register-email"), "email".into(), "email".into(), v("email"), None),
            (
                "password".into(),
                t.t("register-password"),
                "password".into(),
                "new-password".into(),
                String::new(),
                Some(t.t("register-password-help")),
            ),
        ],
        errors,
    }
}

pub(crate) async fn register_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    html(StatusCode::OK, &register_page(&c, &HashMap::new(), vec![], false))
}

pub(crate) async fn register(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let mut errors = Vec::new();
    if get("name").trim().is_empty() {
        errors.push(("name".into(), t.t("error-required")));
    }
    if guichet_core::Email::parse(get("email")).is_err() {
        errors.push(("email".into(), t.t("error-invalid-text")));
    }
    if get("password").chars().count() < 12 {
        errors.push(("password".into(), t.t("register-password-help")));
    }
    if errors.is_empty() {
        match s.app.register(get("email"), get("password"), get("name"), t.lang.code()).await {
            Ok(_) => return html(StatusCode::CREATED, &register_page(&c, &form, vec![], true)),
            Err(AppError::Taken(_)) => errors.push(("email".into(), t.t("register-error-taken"))),
            Err(AppError::Invalid { field, .. }) => {
                errors.push((field.unwrap_or_else(|| "email".into()), t.t("error-invalid-text")))
            }
            Err(e) => return failure(&c, e),
        }
    }
    html(StatusCode::UNPROCESSABLE_ENTITY, &register_page(&c, &form, errors, false))
}

pub(crate) async fn language(Path(code): Path<String>, Query(b): Query<Back>) -> Response {
    let lang = Lang::parse(&code).unwrap_or_default();
    let mut r = see_other(&local_path(b.retour.as_ref()));
    if let Ok(v) = HeaderValue::from_str(&format!("lang={}; SameSite=Lax; Path=/; Max-Age=31536000", lang.code())) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

pub(crate) async fn script() -> Response {
    let mut r = include_str!("../static/guichet.js").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

/// Pages that do not exist: HTML for people, JSON under `/api/`.
pub(crate) async fn not_found(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        let body =
            serde_json::json!({"error": {"code": "not_found", "message": format!("there is no route {}", uri.path())}});
        return (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    }
    let c = ctx(&s, &headers, &uri).await;
    message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text")
}

pub(crate) async fn stylesheet() -> Response {
    let mut r = include_str!("../static/guichet.css").into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    r
}

// ---------------------------------------------------------------- the guided form

/// One field of a step.
pub struct Field {
    pub id: String,
    pub name: String,
    pub label: String,
    pub help: Option<String>,
    pub optional: bool,
    pub kind: &'static str,
    pub value: String,
    /// Address and bank parts: (id, name, label, value, autocomplete).
    pub parts: Vec<(String, String, String, String, String)>,
    /// (value, label, checked)
    pub options: Vec<(String, String, bool)>,
    pub error: Option<String>,
    pub file_name: Option<String>,
}

impl Field {
    pub fn first_id(&self) -> String {
        match self.kind {
            "address" | "bank" => self.parts.first().map(|p| p.0.clone()).unwrap_or_else(|| self.id.clone()),
            "yesno" | "choice" => format!("{}-1", self.id),
            _ => self.id.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "step.html")]
struct StepPage {
    t: Tr,
    nav: Nav,
    dossier: String,
    version: i64,
    step: usize,
    step_label: String,
    program_title: String,
    section_title: String,
    section_help: Option<String>,
    fields: Vec<Field>,
    has_errors: bool,
    stale: Option<String>,
}

/// The steps of a program: its sections with questions, in order; the
/// questions without a section last.
fn steps(p: &guichet_rules::Program) -> Vec<(Option<&guichet_rules::Section>, Vec<usize>)> {
    let mut out: Vec<(Option<&guichet_rules::Section>, Vec<usize>)> = p
        .sections
        .iter()
        .map(|s| {
            let qs = p
                .questions
                .iter()
                .enumerate()
                .filter(|(_, q)| q.section.as_deref() == Some(&s.id))
                .map(|(i, _)| i)
                .collect();
            (Some(s), qs)
        })
        .collect();
    let loose: Vec<usize> = p
        .questions
        .iter()
        .enumerate()
        .filter(|(_, q)| q.section.as_ref().is_none_or(|s| !p.sections.iter().any(|x| &x.id == s)))
        .map(|(i, _)| i)
        .collect();
    out.push((None, loose));
    out.retain(|(_, qs)| !qs.is_empty());
    out
}

/// Which questions are asked given the answers (all, if they cannot be read).
fn asked(p: &Published, answers: &serde_json::Value, date: &str) -> Vec<Option<bool>> {
    let app = Application::from_json(&serde_json::json!({"submitted_on": date, "answers": answers}));
    match app.and_then(|a| p.program.prepare(&a)) {
        Ok(inputs) => p.program.asked(&inputs),
        Err(_) => vec![Some(true); p.program.questions.len()],
    }
}

const PROVINCES: [&str; 13] = ["QC", "ON", "NB", "NS", "PE", "NL", "MB", "SK", "AB", "BC", "YT", "NT", "NU"];

fn text_of(v: Option<&serde_json::Value>) -> String {
    match v {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// A field from the program's question and a value (stored answers, or
/// what the user typed: `typed` wins).
fn field(
    t: &Tr,
    q: &guichet_rules::Question,
    stored: Option<&serde_json::Value>,
    typed: Option<&HashMap<String, String>>,
    documents: &[serde_json::Value],
) -> Field {
    let id = format!("q-{}", q.id);
    let name = format!("q.{}", q.id);
    let typed_val = |k: &str| typed.and_then(|m| m.get(k)).cloned();
    let kind = match q.kind {
        QuestionType::Text => "text",
        QuestionType::YesNo => "yesno",
        QuestionType::Integer => "integer",
        QuestionType::Money => "money",
        QuestionType::Date => "date",
        QuestionType::Choice => "choice",
        QuestionType::Address => "address",
        QuestionType::File => "file",
        QuestionType::BankAccount => "bank",
    };
    let mut f = Field {
        id: id.clone(),
        name: name.clone(),
        label: t.pick(&q.label.fr, &q.label.en).to_owned(),
        help: q.help.as_ref().map(|h| t.pick(&h.fr, &h.en).to_owned()),
        optional: q.optional,
        kind,
        value: String::new(),
        parts: vec![],
        options: vec![],
        error: None,
        file_name: None,
    };
    match q.kind {
        QuestionType::YesNo => {
            let cur = typed_val(&name).or_else(|| stored.and_then(|v| v.as_bool()).map(|b| b.to_string()));
            f.options = vec![
                ("true".into(), t.t("form-yes"), cur.as_deref() == Some("true")),
                ("false".into(), t.t("form-no"), cur.as_deref() == Some("false")),
            ];
        }
        QuestionType::Choice => {
            let cur = typed_val(&name).or_else(|| stored.and_then(|v| v.as_str()).map(str::to_owned));
            f.options = q
                .options
                .iter()
                .map(|o| {
                    (
                        o.value.clone(),
                        t.pick(&o.label.fr, &o.label.en).to_owned(),
                        cur.as_deref() == Some(o.value.as_str()),
                    )
                })
                .collect();
        }
        QuestionType::Address | QuestionType::BankAccount => {
            let parts: &[(&str, &str, &str)] = if q.kind == QuestionType::Address {
                &[
                    ("line1", "field-line1", "address-line1"),
                    ("city", "field-city", "address-level2"),
                    ("province", "field-province", "address-level1"),
                    ("postal_code", "field-postal-code", "postal-code"),
                ]
            } else {
                &[
                    ("institution", "field-institution", "off"),
                    ("transit", "field-transit", "off"),
                    ("account", "field-account", "off"),
                ]
            };
            f.parts = parts
                .iter()
                .map(|(k, label, auto)| {
                    let pname = format!("{name}.{k}");
                    let v = typed_val(&pname).unwrap_or_else(|| text_of(stored.and_then(|s| s.get(*k))));
                    (format!("{id}-{k}"), pname, t.t(label), v, (*auto).to_owned())
                })
                .collect();
        }
        QuestionType::File => {
            let sha = stored.and_then(|v| v.as_str()).unwrap_or_default();
            f.file_name = documents
                .iter()
                .find(|d| d["sha256"].as_str() == Some(sha))
                .and_then(|d| d["name"].as_str())
                .map(str::to_owned)
                .or_else(|| (!sha.is_empty()).then(|| sha.to_owned()));
            if f.help.is_none() {
                f.help = Some(t.t("form-upload-help"));
            }
        }
        QuestionType::Money => {
            f.value = typed_val(&name).unwrap_or_else(|| {
                let s = text_of(stored);
                let s = s.trim_end_matches('$').trim().to_owned();
                if t.lang == Lang::Fr { s.replace('.', ",") } else { s }
            });
            if f.help.is_none() {
                f.help = Some(t.t("form-money-help"));
            }
        }
        _ => {
            f.value = typed_val(&name).unwrap_or_else(|| text_of(stored));
            if q.kind == QuestionType::Date && f.help.is_none() {
                f.help = Some(t.t("form-date-help"));
            }
        }
    }
    f
}

struct Loaded {
    view: DossierView,
    program: std::sync::Arc<Published>,
}

async fn load(s: &AppState, c: &Ctx, id: &str) -> Result<Loaded, Response> {
    let Some(caller) = &c.caller else { return Err(to_login(&c.nav.path)) };
    let view = s.app.dossier(caller, id).await.map_err(|e| failure(c, e))?;
    let program = s.app.program_version(&view.program, &view.program_version, None).await.map_err(|e| failure(c, e))?;
    Ok(Loaded { view, program })
}

fn reference_date(s: &AppState) -> String {
    s.app.today().map(|d| d.to_string()).unwrap_or_else(|_| "2020-05-10".into())
}

fn step_page(
    s: &AppState,
    c: &Ctx,
    l: &Loaded,
    step: usize,
    typed: Option<&HashMap<String, String>>,
    errors: &HashMap<String, String>,
    stale: bool,
) -> Result<StepPage, Response> {
    let t = c.t;
    let pr = &l.program.program;
    let all = steps(pr);
    let Some((section, qs)) = all.get(step.wrapping_sub(1)) else {
        return Err(message(c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text"));
    };
    let shown = asked(&l.program, &l.view.answers, &reference_date(s));
    let fields = qs
        .iter()
        .filter(|i| shown.get(**i).copied().flatten() != Some(false))
        .map(|i| {
            let q = &pr.questions[*i];
            let mut f = field(&t, q, l.view.answers.get(&q.id), typed, &l.view.documents);
            f.error = errors.get(&q.id).cloned();
            f
        })
        .collect::<Vec<_>>();
    Ok(StepPage {
        t,
        nav: c.nav.clone(),
        dossier: l.view.id.clone(),
        version: l.view.version,
        step,
        step_label: {
            let mut a = fluent_bundle::FluentArgs::new();
            a.set("n", step);
            a.set("total", all.len());
            t.t2("step-of", &a)
        },
        program_title: t.pick(&pr.title.fr, &pr.title.en).to_owned(),
        section_title: section
            .map(|s| t.pick(&s.title.fr, &s.title.en).to_owned())
            .unwrap_or_else(|| t.t("program-questions-title")),
        section_help: section.and_then(|s| s.help.as_ref()).map(|h| t.pick(&h.fr, &h.en).to_owned()),
        has_errors: fields.iter().any(|f| f.error.is_some()),
        fields,
        stale: stale.then(|| t.t("error-stale")),
    })
}

pub(crate) async fn step_form(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, step)): Path<(String, usize)>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let l = match load(&s, &c, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if l.view.state != guichet_core::State::Draft {
        return see_other(&format!("/demandes/{id}"));
    }
    match step_page(&s, &c, &l, step, None, &HashMap::new(), false) {
        Ok(p) => html(StatusCode::OK, &p),
        Err(r) => r,
    }
}

/// The error message of a question's answer, checked alone.
fn check_one(t: &Tr, p: &Published, q: &guichet_rules::Question, v: &serde_json::Value, date: &str) -> Option<String> {
    let app = Application::from_json(&serde_json::json!({"submitted_on": date, "answers": {q.id.clone(): v}}));
    let err = match app.and_then(|a| p.program.prepare(&a)) {
        Ok(_) => return None,
        Err(e) => e,
    };
    let bounds = err.message.contains("at least") || err.message.contains("at most") || err.message.contains("between");
    Some(t.t(match (q.kind, bounds) {
        (_, true) => "error-out-of-bounds",
        (QuestionType::Integer, _) => "error-invalid-integer",
        (QuestionType::Money, _) => "error-invalid-money",
        (QuestionType::Date, _) => "error-invalid-date",
        (QuestionType::Choice | QuestionType::YesNo, _) => "error-invalid-choice",
        (QuestionType::Address, _) => "error-invalid-address",
        (QuestionType::BankAccount, _) => "error-invalid-bank",
        _ => "error-invalid-text",
    }))
}

/// An amount as people type it (`1 500,00 $`, `800,00`, `800.00`): the
/// plain decimal text the program files read, and the money.
fn typed_money(raw: &str) -> Option<(String, guichet_rules::Money)> {
    let n: String =
        raw.chars().filter(|c| !c.is_whitespace() && *c != '$' && *c != '\u{a0}').collect::<String>().replace(',', ".");
    let m = guichet_rules::Money::parse(&n).ok()?;
    Some((n, m))
}

/// The JSON answer of a question from the typed form values (`None`: a
/// value that cannot even be read, with its error key).
fn answer_of(q: &guichet_rules::Question, form: &HashMap<String, String>) -> Result<serde_json::Value, &'static str> {
    let name = format!("q.{}", q.id);
    let raw = form.get(&name).map(|s| s.trim().to_owned()).unwrap_or_default();
    let null = serde_json::Value::Null;
    Ok(match q.kind {
        QuestionType::Text | QuestionType::Choice | QuestionType::Date if raw.is_empty() => null,
        QuestionType::Text | QuestionType::Choice | QuestionType::Date => serde_json::Value::String(raw),
        QuestionType::YesNo => match raw.as_str() {
            "true" => true.into(),
            "false" => false.into(),
            _ => null,
        },
        QuestionType::Integer if raw.is_empty() => null,
        QuestionType::Integer => {
            raw.replace([' ', '\u{a0}'], "").parse::<i64>().map_err(|_| "error-invalid-integer")?.into()
        }
        QuestionType::Money if raw.is_empty() => null,
        QuestionType::Money => {
            let (n, _) = typed_money(&raw).ok_or("error-invalid-money")?;
            serde_json::Value::String(n)
        }
        QuestionType::Address | QuestionType::BankAccount => {
            let keys: &[&str] = if q.kind == QuestionType::Address {
                &["line1", "city", "province", "postal_code"]
            } else {
                &["institution", "transit", "account"]
            };
            let mut o = serde_json::Map::new();
            for k in keys {
                let v = form.get(&format!("{name}.{k}")).map(|s| s.trim().to_owned()).unwrap_or_default();
                if !v.is_empty() {
                    o.insert((*k).into(), v.into());
                }
            }
            if o.is_empty() {
                null
            } else if o.len() < keys.len() {
                return Err(if q.kind == QuestionType::Address {
                    "error-invalid-address"
                } else {
                    "error-invalid-bank"
                });
            } else {
                if let Some(p) = o.get_mut("province") {
                    *p = p.as_str().unwrap_or_default().to_uppercase().into();
                    if !PROVINCES.contains(&p.as_str().unwrap_or_default()) {
                        return Err("error-invalid-address");
                    }
                }
                serde_json::Value::Object(o)
            }
        }
        QuestionType::File => null,
    })
}

pub(crate) async fn step_save(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, step)): Path<(String, usize)>,
    mut multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    // Read the form: text fields, and files by question.
    let mut form = HashMap::new();
    let mut files: Vec<(String, String, Vec<u8>)> = Vec::new();
    let limit = s.app.config.max_upload;
    let mut too_large: Vec<String> = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => return message(&c, StatusCode::BAD_REQUEST, "page-error", "error-file-size"),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(file_name) = field.file_name().map(str::to_owned) {
            let bytes = match field.bytes().await {
                Ok(b) => b,
                Err(_) => return message(&c, StatusCode::PAYLOAD_TOO_LARGE, "page-error", "error-file-size"),
            };
            if bytes.len() > limit {
                too_large.push(name.trim_start_matches("q.").to_owned());
            } else if !bytes.is_empty() {
                files.push((name.trim_start_matches("q.").to_owned(), file_name, bytes.to_vec()));
            }
        } else if let Ok(text) = field.text().await {
            form.insert(name, text);
        }
    }
    if c.caller.is_none() {
        return to_login(&format!("/demandes/{id}/etapes/{step}"));
    }
    if !csrf_ok(&c, form.get("_csrf").map(String::as_str)) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let mut version = form.get("_version").and_then(|v| v.parse::<i64>().ok());
    // Files first, each checked by content: a good file is kept even when
    // another answer of the page must be corrected (a browser cannot keep
    // a chosen file across pages).
    let mut errors: HashMap<String, String> = HashMap::new();
    for name in &too_large {
        errors.insert(name.clone(), t.t("error-file-size"));
    }
    let mut uploaded: Vec<String> = Vec::new();
    for (q, name, bytes) in files {
        // The use case checks the content (PDF, JPEG, PNG) before storing.
        match s.app.upload(caller, &id, version, DocumentUpload { name, bytes, question: Some(q.clone()) }).await {
            Ok(v) => {
                version = Some(v.version);
                uploaded.push(q);
            }
            Err(AppError::UnsupportedMedia(_)) => {
                errors.insert(q, t.t("error-file-type"));
            }
            Err(AppError::Invalid { .. }) => {
                errors.insert(q, t.t("error-invalid-text"));
            }
            Err(AppError::Conflict { .. }) => {
                let fresh = match load(&s, &c, &id).await {
                    Ok(l) => l,
                    Err(r) => return r,
                };
                return match step_page(&s, &c, &fresh, step, Some(&form), &HashMap::new(), true) {
                    Ok(p) => html(StatusCode::CONFLICT, &p),
                    Err(r) => r,
                };
            }
            Err(e) => return failure(&c, e),
        }
    }
    let l = match load(&s, &c, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let pr = &l.program.program;
    let all = steps(pr);
    let Some((_, qs)) = all.get(step.wrapping_sub(1)) else {
        return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text");
    };
    let date = reference_date(&s);
    let mut answers = serde_json::Map::new();
    for i in qs {
        let q = &pr.questions[*i];
        if q.kind == QuestionType::File {
            continue;
        }
        match answer_of(q, &form) {
            Err(key) => {
                errors.insert(q.id.clone(), t.t(key));
            }
            Ok(v) => {
                if !v.is_null() {
                    if let Some(e) = check_one(&t, &l.program, q, &v, &date) {
                        errors.insert(q.id.clone(), e);
                    }
                }
                answers.insert(q.id.clone(), v);
            }
        }
    }
    // Required questions that are asked, given the new answers.
    let mut merged = l.view.answers.clone();
    if let Some(m) = merged.as_object_mut() {
        for (k, v) in &answers {
            if v.is_null() {
                m.remove(k);
            } else {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    let shown = asked(&l.program, &merged, &date);
    for i in qs {
        let q = &pr.questions[*i];
        if !q.optional && shown.get(*i).copied().flatten() == Some(true) && merged.get(&q.id).is_none() {
            errors.entry(q.id.clone()).or_insert_with(|| t.t("error-required"));
        }
    }
    // Answers to questions no longer asked are removed.
    for i in qs {
        if shown.get(*i).copied().flatten() == Some(false) {
            answers.insert(pr.questions[*i].id.clone(), serde_json::Value::Null);
        }
    }
    if !errors.is_empty() {
        return match step_page(&s, &c, &l, step, Some(&form), &errors, false) {
            Ok(p) => html(StatusCode::UNPROCESSABLE_ENTITY, &p),
            Err(r) => r,
        };
    }
    match s.app.answer(caller, &id, version, serde_json::Value::Object(answers)).await {
        Ok(_) => {}
        Err(AppError::Conflict { .. }) => {
            let fresh = match load(&s, &c, &id).await {
                Ok(l) => l,
                Err(r) => return r,
            };
            return match step_page(&s, &c, &fresh, step, Some(&form), &HashMap::new(), true) {
                Ok(p) => html(StatusCode::CONFLICT, &p),
                Err(r) => r,
            };
        }
        Err(e) => return failure(&c, e),
    }
    if step < all.len() {
        see_other(&format!("/demandes/{id}/etapes/{}", step + 1))
    } else {
        see_other(&format!("/demandes/{id}/verification"))
    }
}

// ---------------------------------------------------------------- review and submit

/// (step, title, [(question, answer)]).
type ReviewSection = (usize, String, Vec<(String, String)>);

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    t: Tr,
    nav: Nav,
    dossier: String,
    version: i64,
    program_title: String,
    sections: Vec<ReviewSection>,
    explanation: Option<String>,
    error: Option<String>,
    error_link: Option<(usize, String)>,
}

/// An answer as a person reads it.
fn shown_answer(
    t: &Tr,
    q: &guichet_rules::Question,
    v: Option<&serde_json::Value>,
    documents: &[serde_json::Value],
) -> String {
    let Some(v) = v else { return t.t("review-not-answered") };
    match q.kind {
        QuestionType::YesNo => t.t(if v.as_bool() == Some(true) { "form-yes" } else { "form-no" }),
        QuestionType::Choice => {
            let s = v.as_str().unwrap_or_default();
            q.options
                .iter()
                .find(|o| o.value == s)
                .map(|o| t.pick(&o.label.fr, &o.label.en).to_owned())
                .unwrap_or_else(|| s.to_owned())
        }
        QuestionType::Money => {
            guichet_rules::Money::parse(&text_of(Some(v))).map(|m| t.money(m.0)).unwrap_or_else(|_| text_of(Some(v)))
        }
        QuestionType::Date => t.ymd(&text_of(Some(v))),
        QuestionType::Address => ["line1", "city", "province", "postal_code"]
            .iter()
            .map(|k| text_of(v.get(*k)))
            .collect::<Vec<_>>()
            .join(", "),
        QuestionType::BankAccount => {
            let acct = text_of(v.get("account"));
            let tail: String = acct.chars().rev().take(3).collect::<Vec<_>>().into_iter().rev().collect();
            format!("{} {} •••{tail}", text_of(v.get("institution")), text_of(v.get("transit")))
        }
        QuestionType::File => {
            let sha = v.as_str().unwrap_or_default();
            documents
                .iter()
                .find(|d| d["sha256"].as_str() == Some(sha))
                .and_then(|d| d["name"].as_str())
                .unwrap_or(sha)
                .to_owned()
        }
        _ => text_of(Some(v)),
    }
}

async fn review_page(s: &AppState, c: &Ctx, l: &Loaded, error: Option<(String, Option<String>)>) -> ReviewPage {
    let t = c.t;
    let pr = &l.program.program;
    let shown = asked(&l.program, &l.view.answers, &reference_date(s));
    let all = steps(pr);
    let sections = all
        .iter()
        .enumerate()
        .map(|(n, (sec, qs))| {
            let answers = qs
                .iter()
                .filter(|i| shown.get(**i).copied().flatten() != Some(false))
                .map(|i| {
                    let q = &pr.questions[*i];
                    (
                        t.pick(&q.label.fr, &q.label.en).to_owned(),
                        shown_answer(&t, q, l.view.answers.get(&q.id), &l.view.documents),
                    )
                })
                .collect();
            (
                n + 1,
                sec.map(|s| t.pick(&s.title.fr, &s.title.en).to_owned())
                    .unwrap_or_else(|| t.t("program-questions-title")),
                answers,
            )
        })
        .collect();
    let explanation = match &c.caller {
        Some(caller) => s
            .app
            .evaluate(caller, &l.view.id, t.lang.rules())
            .await
            .ok()
            .and_then(|v| v["explanation"].as_str().map(str::to_owned)),
        None => None,
    };
    let (error, error_link) = match error {
        Some((msg, field)) => {
            let link = field.and_then(|f| {
                all.iter().position(|(_, qs)| qs.iter().any(|i| pr.questions[*i].id == f)).map(|n| {
                    let q = pr.questions.iter().find(|q| q.id == f);
                    (n + 1, q.map(|q| t.pick(&q.label.fr, &q.label.en).to_owned()).unwrap_or(f))
                })
            });
            (Some(msg), link)
        }
        None => (None, None),
    };
    ReviewPage {
        t,
        nav: c.nav.clone(),
        dossier: l.view.id.clone(),
        version: l.view.version,
        program_title: t.pick(&pr.title.fr, &pr.title.en).to_owned(),
        sections,
        explanation,
        error,
        error_link,
    }
}

pub(crate) async fn review(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let l = match load(&s, &c, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    if l.view.state != guichet_core::State::Draft {
        return see_other(&format!("/demandes/{id}"));
    }
    html(StatusCode::OK, &review_page(&s, &c, &l, None).await)
}

pub(crate) async fn submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = c.caller.as_ref() else { return to_login(&format!("/demandes/{id}/verification")) };
    if !csrf_ok(&c, form.get("_csrf").map(String::as_str)) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let version = form.get("_version").and_then(|v| v.parse::<i64>().ok());
    match s.app.submit(caller, &id, version).await {
        Ok(_) => see_other(&format!("/demandes/{id}")),
        // A second click: the application is already submitted.
        Err(AppError::WrongState(_)) => see_other(&format!("/demandes/{id}")),
        Err(AppError::Invalid { code, field, .. }) => {
            let l = match load(&s, &c, &id).await {
                Ok(l) => l,
                Err(r) => return r,
            };
            let msg = c.t.t(if code == "missing_answer" { "review-missing" } else { "error-invalid-text" });
            html(StatusCode::UNPROCESSABLE_ENTITY, &review_page(&s, &c, &l, Some((msg, field))).await)
        }
        Err(AppError::Conflict { .. }) => {
            let l = match load(&s, &c, &id).await {
                Ok(l) => l,
                Err(r) => return r,
            };
            html(StatusCode::CONFLICT, &review_page(&s, &c, &l, Some((c.t.t("error-stale"), None))).await)
        }
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- dossiers

#[derive(Template)]
#[template(path = "dossiers.html")]
struct DossiersPage {
    t: Tr,
    nav: Nav,
    items: Vec<(String, String, String, String)>,
}

fn state_text(t: &Tr, state: guichet_core::State) -> String {
    let key = serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    t.t(&format!("state-{key}"))
}

/// Program titles by id, looked up once per page.
async fn program_titles(s: &AppState, t: &Tr) -> HashMap<String, String> {
    s.app
        .programs()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let title = p.title.get(t.lang.code()).and_then(|x| x.as_str()).unwrap_or(&p.id).to_owned();
            (p.id, title)
        })
        .collect()
}

pub(crate) async fn my_dossiers(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = &c.caller else { return to_login(&c.nav.path) };
    let (list, _) = match s.app.dossiers(caller, &ListFilter { limit: Some(100), ..Default::default() }).await {
        Ok(x) => x,
        Err(e) => return failure(&c, e),
    };
    let t = c.t;
    let titles = program_titles(&s, &t).await;
    let mut items = Vec::new();
    for d in list {
        let date = match d.submitted_at {
            Some(at) => t.t1("dossier-submitted", "date", &t.date(at)),
            None => t.t1("dossier-created", "date", &t.date(d.created_at)),
        };
        let title = titles.get(&d.program).cloned().unwrap_or_else(|| d.program.clone());
        items.push((d.id, title, state_text(&t, d.state), date));
    }
    html(StatusCode::OK, &DossiersPage { t, nav: c.nav, items })
}

struct DecisionView {
    outcome: String,
    amount: Option<String>,
    automatic: bool,
    reasons: Vec<String>,
    justification: String,
}

#[derive(Template)]
#[template(path = "dossier.html")]
struct DossierPage {
    t: Tr,
    nav: Nav,
    id: String,
    short_id: String,
    version: i64,
    program_title: String,
    state: String,
    draft: bool,
    decision: Option<DecisionView>,
    explanation: Option<String>,
    documents: Vec<(String, String)>,
    timeline: Vec<(String, String)>,
    action_error: Option<String>,
    flags: Vec<(String, String)>,
    info_request: Option<(String, String)>,
    can_provide_info: bool,
    can_request_review: bool,
    decide_action: Option<&'static str>,
    eligible: bool,
    computed_amount: String,
    computed_amount_text: String,
    rules: Vec<(String, String, bool)>,
    can_request_info: bool,
    default_due: String,
    answers: Vec<(String, String)>,
    /// For staff: (taken by me, taken by someone else, may take).
    assignment: Option<(bool, bool)>,
    /// The dossier's agreements: (envelope, title, state, the caller's turn).
    agreements: Vec<(String, String, String, bool)>,
    can_send_agreement: bool,
    /// (reference, amount, state) of the dossier's payments.
    payments: Vec<(String, String, String)>,
    /// What was mailed about it: (to, subject, when, status).
    mails: Vec<(String, String, String, String)>,
    can_clear_flags: bool,
    can_propose_bank: bool,
    /// Bank details waiting: (masked, whether this caller may confirm).
    pending_bank: Option<(String, bool)>,
    return_reason: Option<String>,
}

pub(crate) async fn dossier(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    dossier_page(&s, &c, &id, None, StatusCode::OK).await
}

async fn dossier_page(s: &AppState, c: &Ctx, id: &str, action_error: Option<String>, status: StatusCode) -> Response {
    use guichet_core::{Role, State as St};
    let l = match load(s, c, id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let t = c.t;
    let pr = &l.program.program;
    let v = &l.view;
    let events = s.app.dossier_events(caller, id).await.unwrap_or_default();
    let envelopes =
        if v.agreement_required { s.app.dossier_envelopes(caller, id).await.unwrap_or_default() } else { Vec::new() };
    let evaluation = s.app.evaluate(caller, id, t.lang.rules()).await.ok();
    let explanation = evaluation.as_ref().and_then(|v| v["explanation"].as_str().map(str::to_owned));
    let own = v.applicant == caller.user.id;
    let has = |r: Role| caller.actor.roles.contains(&r);
    let decision = v.decision.as_ref().map(|d| DecisionView {
        outcome: t.t(if d.outcome == guichet_core::Outcome::Approved {
            "decision-approved"
        } else {
            "decision-refused"
        }),
        amount: d.amount.map(|a| t.t1("decision-amount", "amount", &t.money(a))),
        automatic: d.by.0 == "system",
        reasons: d
            .reasons
            .iter()
            .map(|r| {
                pr.rules
                    .iter()
                    .find(|x| &x.name == r)
                    .map(|x| t.pick(&x.fails.fr, &x.fails.en).to_owned())
                    .unwrap_or_else(|| r.clone())
            })
            .collect(),
        justification: d.justification.clone(),
    });
    let info_request = (v.state == St::InformationRequested)
        .then(|| events.iter().rev().find(|e| e.kind == "information_requested"))
        .flatten()
        .map(|e| {
            (e.event["message"].as_str().unwrap_or_default().to_owned(), t.date(e.event["due"].as_i64().unwrap_or(0)))
        });
    let decide_action = if !own && has(Role::CaseWorker) && v.state == St::Submitted {
        Some("decision")
    } else if !own
        && has(Role::Reviewer)
        && v.state == St::ReviewRequested
        && v.decided_by.as_deref() != Some(caller.id())
    {
        Some("revision")
    } else {
        None
    };
    let computed = evaluation
        .as_ref()
        .and_then(|e| e["amount"].as_str())
        .and_then(|a| guichet_rules::Money::parse(a).ok())
        .map(|m| m.0);
    let eligible = evaluation.as_ref().is_some_and(|e| e["eligible"] == true);
    let failed: Vec<String> = evaluation
        .as_ref()
        .and_then(|e| e["rules"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter(|r| r["outcome"] == "fail")
        .filter_map(|r| r["rule"].as_str().map(str::to_owned))
        .collect();
    let shown = asked(&l.program, &v.answers, &reference_date(s));
    let answers = if v.state == St::Draft && !c.nav.staff {
        Vec::new()
    } else {
        pr.questions
            .iter()
            .enumerate()
            .filter(|(i, _)| shown.get(*i).copied().flatten() != Some(false))
            .map(|(_, q)| {
                (t.pick(&q.label.fr, &q.label.en).to_owned(), shown_answer(&t, q, v.answers.get(&q.id), &v.documents))
            })
            .collect()
    };
    let decimal = |cents: i64| {
        let s = format!("{}.{:02}", cents / 100, cents % 100);
        if t.lang == Lang::Fr { s.replace('.', ",") } else { s }
    };
    let page = DossierPage {
        t,
        id: v.id.clone(),
        short_id: v.id.trim_start_matches("d_").chars().take(8).collect(),
        version: v.version,
        program_title: t.pick(&pr.title.fr, &pr.title.en).to_owned(),
        state: state_text(&t, v.state),
        draft: v.state == St::Draft && own,
        decision,
        explanation,
        documents: v
            .documents
            .iter()
            .map(|d| {
                let sha = d["sha256"].as_str().unwrap_or_default();
                (d["name"].as_str().unwrap_or(sha).to_owned(), format!("/api/v1/dossiers/{}/documents/{sha}", v.id))
            })
            .collect(),
        timeline: events.iter().map(|e| (t.t(&format!("event-{}", e.kind)), t.date(e.at))).collect(),
        action_error,
        flags: if c.nav.staff {
            v.flags
                .iter()
                .filter_map(|f| {
                    let mut parts = f.splitn(3, ':');
                    let (_, kind, other) = (parts.next()?, parts.next()?, parts.next()?);
                    Some((format!("{} ({kind})", t.t("flag-duplicate")), format!("/demandes/{other}")))
                })
                .collect()
        } else {
            Vec::new()
        },
        can_provide_info: own && v.state == St::InformationRequested,
        info_request,
        can_request_review: own && matches!(v.state, St::Approved | St::Refused | St::AgreementPending) && !v.reviewed,
        decide_action,
        eligible,
        computed_amount: computed.map(decimal).unwrap_or_default(),
        computed_amount_text: computed.map(|a| t.money(a)).unwrap_or_else(|| "—".into()),
        rules: pr
            .rules
            .iter()
            .map(|r| (r.name.clone(), t.pick(&r.label.fr, &r.label.en).to_owned(), failed.contains(&r.name)))
            .collect(),
        can_request_info: !own && has(Role::CaseWorker) && v.state == St::Submitted,
        default_due: jiff::tz::TimeZone::get(&s.app.time_zone())
            .ok()
            .map(|tz| tz.to_datetime(jiff::Timestamp::now()).date())
            .and_then(|d| d.checked_add(jiff::Span::new().days(14)).ok())
            .map(|d| d.to_string())
            .unwrap_or_default(),
        answers,
        assignment: (!own
            && (has(Role::CaseWorker) || has(Role::Reviewer))
            && matches!(v.state, St::Submitted | St::InformationRequested | St::ReviewRequested))
        .then(|| (v.assignee.as_deref() == Some(caller.id()), v.assignee.as_ref().is_some_and(|a| a != caller.id()))),
        agreements: envelopes
            .iter()
            .map(|e| {
                (e.id.clone(), e.title.clone(), t.t(&format!("envelope-state-{}", e.state)), !e.your_turn.is_empty())
            })
            .collect(),
        can_send_agreement: !own
            && (has(Role::CaseWorker) || has(Role::Reviewer))
            && v.agreement_required
            && matches!(v.state, St::Approved | St::AgreementPending)
            && !envelopes.iter().any(|e| e.state == "sent" || e.state == "completed"),
        payments: s
            .app
            .dossier_payments(caller, id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|p| (p.reference, t.money(p.amount), t.t(&format!("payment-state-{}", p.state))))
            .collect(),
        mails: s
            .app
            .dossier_mails(caller, id)
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|m| (m.to, m.subject, t.date(m.queued_at), t.t(&format!("mail-status-{}", m.status))))
            .collect(),
        can_clear_flags: !own && has(Role::CaseWorker) && !v.flags.is_empty(),
        can_propose_bank: (has(Role::CaseWorker) || has(Role::FinanceOfficer) || own)
            && matches!(v.state, St::Approved | St::AgreementPending | St::AgreementSigned | St::PaymentReturned),
        pending_bank: v.pending_bank.as_ref().map(|(b, by)| {
            (b.clone(), !own && by != caller.id() && (has(Role::CaseWorker) || has(Role::FinanceOfficer)))
        }),
        return_reason: (v.state == St::PaymentReturned).then(|| v.return_reason.clone()).flatten(),
        nav: c.nav.clone(),
    };
    html(status, &page)
}

/// A dossier action's outcome: back to the dossier, or the page again
/// with the reason, in the user's language.
async fn after_action(s: &AppState, c: &Ctx, id: &str, r: Result<DossierView, AppError>) -> Response {
    let t = c.t;
    let (status, key) = match r {
        Ok(_) => return see_other(&format!("/demandes/{id}")),
        Err(AppError::Invalid { code: "justification_required", .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "error-justification")
        }
        Err(AppError::Invalid { code: "invalid_command", .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "error-message-required")
        }
        Err(AppError::Invalid { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "error-invalid-text"),
        Err(AppError::Forbidden(m)) if m.contains("review") => (StatusCode::FORBIDDEN, "error-same-reviewer"),
        Err(AppError::Conflict { .. }) => (StatusCode::CONFLICT, "error-stale"),
        Err(AppError::WrongState(_)) => (StatusCode::CONFLICT, "error-wrong-state"),
        Err(e) => return failure(c, e),
    };
    dossier_page(s, c, id, Some(t.t(key)), status).await
}

pub(crate) type Pairs = Vec<(String, String)>;

pub(crate) fn first<'a>(f: &'a Pairs, k: &str) -> Option<&'a str> {
    f.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
}

fn version_of(f: &Pairs) -> Option<i64> {
    first(f, "_version").and_then(|v| v.parse().ok())
}

/// Checks sign-in and the CSRF token of an action form.
pub(crate) fn action_guard(c: &Ctx, f: &Pairs, back: &str) -> Result<Caller, Response> {
    let Some(caller) = c.caller.clone() else { return Err(to_login(back)) };
    if !csrf_ok(c, first(f, "_csrf")) {
        return Err(message(c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale"));
    }
    Ok(caller)
}

pub(crate) async fn decide(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, action)): Path<(String, String)>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, &format!("/demandes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let amount = match first(&f, "amount").map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => match typed_money(a) {
            Some((_, m)) => Some(m.0),
            None => {
                return dossier_page(&s, &c, &id, Some(c.t.t("error-invalid-money")), StatusCode::UNPROCESSABLE_ENTITY)
                    .await;
            }
        },
    };
    let outcome = first(&f, "outcome").unwrap_or_default().to_owned();
    let input = guichet_app::DecisionInput {
        amount: if outcome == "approved" { amount } else { None },
        outcome,
        reasons: f.iter().filter(|(k, _)| k == "reasons").map(|(_, v)| v.clone()).collect(),
        justification: first(&f, "justification").unwrap_or_default().trim().to_owned(),
    };
    let field = |k: &str| first(&f, k).unwrap_or_default().trim().to_owned();
    let r = match action.as_str() {
        "decision" => s.app.decide(&caller, &id, version_of(&f), input).await,
        "revision" => s.app.review(&caller, &id, version_of(&f), input).await,
        "doublons" => s.app.clear_duplicate_flags(&caller, &id, version_of(&f), field("note")).await,
        "coordonnees-bancaires" => {
            let details = guichet_core::BankDetails {
                institution: field("institution"),
                transit: field("transit"),
                account: field("account"),
            };
            s.app.propose_bank_change(&caller, &id, version_of(&f), details).await
        }
        "confirmer-coordonnees" => s.app.confirm_bank_change(&caller, &id, version_of(&f)).await,
        _ => return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text"),
    };
    after_action(&s, &c, &id, r).await
}

pub(crate) async fn request_information(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, &format!("/demandes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    // Due at the end of that day, in the organization's time zone.
    let due = first(&f, "due")
        .and_then(|d| d.parse::<jiff::civil::Date>().ok())
        .and_then(|d| {
            let tz = jiff::tz::TimeZone::get(&s.app.time_zone()).ok()?;
            tz.to_ambiguous_timestamp(d.at(23, 59, 59, 0)).compatible().ok()
        })
        .map(|ts| ts.as_second());
    let Some(due) = due else {
        return dossier_page(&s, &c, &id, Some(c.t.t("error-invalid-date")), StatusCode::UNPROCESSABLE_ENTITY).await;
    };
    if due <= s.app.now() {
        return dossier_page(&s, &c, &id, Some(c.t.t("error-due-past")), StatusCode::UNPROCESSABLE_ENTITY).await;
    }
    let message_text = first(&f, "message").unwrap_or_default().trim().to_owned();
    let r = s.app.request_information(&caller, &id, version_of(&f), message_text, due).await;
    after_action(&s, &c, &id, r).await
}

pub(crate) async fn provide_information(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, &format!("/demandes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let text = first(&f, "message").unwrap_or_default().trim().to_owned();
    if text.is_empty() {
        return dossier_page(&s, &c, &id, Some(c.t.t("error-message-required")), StatusCode::UNPROCESSABLE_ENTITY)
            .await;
    }
    let r = s.app.provide_information(&caller, &id, version_of(&f), text).await;
    after_action(&s, &c, &id, r).await
}

pub(crate) async fn request_review(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, &format!("/demandes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let reason = first(&f, "reason").unwrap_or_default().trim().to_owned();
    let r = s.app.request_review(&caller, &id, version_of(&f), reason).await;
    after_action(&s, &c, &id, r).await
}

/// (id, short id, program, state, submitted, age, flags, assignee)
type QueueRow = (String, String, String, String, String, String, String, String);

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    t: Tr,
    nav: Nav,
    rows: Vec<QueueRow>,
    next: Option<String>,
    /// (value, label, selected)
    programs: Vec<(String, String, bool)>,
    states: Vec<(String, String, bool)>,
    flagged: bool,
    mine: bool,
    query: String,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct QueueQuery {
    apres: Option<String>,
    programme: Option<String>,
    etat: Option<String>,
    signales: Option<String>,
    miens: Option<String>,
}

const QUEUE_STATES: [&str; 5] =
    ["submitted", "information_requested", "review_requested", "approved", "payment_returned"];

pub(crate) async fn queue(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<QueueQuery>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = &c.caller else { return to_login(&c.nav.path) };
    if !c.nav.staff {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "page-not-found-text");
    }
    let t = c.t;
    let program = q.programme.clone().filter(|p| !p.is_empty());
    let state = q.etat.clone().filter(|e| QUEUE_STATES.contains(&e.as_str()));
    let flagged = q.signales.is_some();
    let mine = q.miens.is_some();
    let filter = ListFilter {
        program: program.clone(),
        // A payment the bank returned comes back to the case workers.
        state: Some(
            state.clone().unwrap_or_else(|| "submitted,information_requested,review_requested,payment_returned".into()),
        ),
        assignee: mine.then(|| "me".into()),
        flagged,
        after: q.apres.clone(),
        limit: Some(50),
    };
    let (list, next) = match s.app.dossiers(caller, &filter).await {
        Ok(x) => x,
        Err(e) => return failure(&c, e),
    };
    let titles = program_titles(&s, &t).await;
    let mut rows = Vec::new();
    for d in list {
        let flags = if d.flags.iter().any(|f| f.starts_with("possible_duplicate")) {
            t.t("flag-duplicate")
        } else {
            String::new()
        };
        let assignee = match &d.assignee {
            Some(a) if a == caller.id() => t.t("queue-mine"),
            Some(_) => t.t("queue-taken"),
            None => String::new(),
        };
        rows.push((
            d.id.clone(),
            d.id.trim_start_matches("d_").chars().take(8).collect(),
            titles.get(&d.program).cloned().unwrap_or_else(|| d.program.clone()),
            state_text(&t, d.state),
            d.submitted_at.map(|x| t.date(x)).unwrap_or_default(),
            d.submitted_at
                .map(|x| t.t1("dash-days", "n", &((s.app.now() - x).max(0) / 86400).to_string()))
                .unwrap_or_default(),
            flags,
            assignee,
        ));
    }
    let mut programs: Vec<(String, String, bool)> =
        titles.iter().map(|(id, title)| (id.clone(), title.clone(), program.as_deref() == Some(id))).collect();
    programs.sort();
    let states = QUEUE_STATES
        .iter()
        .map(|st| ((*st).to_owned(), t.t(&format!("state-{st}")), state.as_deref() == Some(*st)))
        .collect();
    let mut query = String::new();
    for (k, v) in [
        ("programme", program.as_deref()),
        ("etat", state.as_deref()),
        ("signales", flagged.then_some("1")),
        ("miens", mine.then_some("1")),
    ] {
        if let Some(v) = v {
            query.push_str(&format!("&{k}={}", url_encode(v)));
        }
    }
    html(StatusCode::OK, &QueuePage { t, nav: c.nav, rows, next, programs, states, flagged, mine, query })
}

pub(crate) async fn take(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, &format!("/demandes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r = s.app.assign(&caller, &id, version_of(&f), first(&f, "take") == Some("1")).await;
    after_action(&s, &c, &id, r).await
}

// ---------------------------------------------------------------- administration

const ROLES: [&str; 7] =
    ["citizen", "case_worker", "reviewer", "finance_officer", "program_manager", "administrator", "signing_officer"];

struct UserLine {
    id: String,
    name: String,
    email: String,
    active: bool,
    roles: Vec<(String, String, bool)>,
}

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    t: Tr,
    nav: Nav,
    /// (seq, what, aggregate, actor, when)
    log: Vec<(i64, String, String, String, String)>,
    log_filter: (String, String, String),
    log_subjects: Vec<(String, String, bool)>,
    log_next: Option<i64>,
    org_name: String,
    english: bool,
    time_zone: String,
    users: Vec<UserLine>,
    all_roles: Vec<(String, String)>,
    notice: Option<String>,
    error: Option<String>,
    audit: Option<String>,
}

#[derive(serde::Deserialize, Default)]
pub(crate) struct LogQuery {
    journal: Option<String>,
    acteur: Option<String>,
    genre: Option<String>,
    avant: Option<i64>,
}

async fn admin_page(
    s: &AppState,
    c: &Ctx,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    audit: Option<String>,
) -> Response {
    admin_page_with(s, c, status, notice, error, audit, &LogQuery::default()).await
}

#[allow(clippy::too_many_arguments)]
async fn admin_page_with(
    s: &AppState,
    c: &Ctx,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    audit: Option<String>,
    q: &LogQuery,
) -> Response {
    let Some(caller) = &c.caller else { return to_login(&c.nav.path) };
    let clean = |v: &Option<String>| v.clone().filter(|x| !x.trim().is_empty());
    let (journal, acteur, genre) = (clean(&q.journal), clean(&q.acteur), clean(&q.genre));
    let lines = match s.app.audit_log(caller, journal.as_deref(), acteur.as_deref(), genre.as_deref(), q.avant).await {
        Ok(l) => l,
        Err(e) => return failure(c, e),
    };
    let log_next = (lines.len() == 100).then(|| lines.last().map(|l| l.seq)).flatten();
    let log = lines
        .iter()
        .map(|l| {
            let what = match l.aggregate.split(':').next() {
                Some("dossier") => c.t.t(&format!("event-{}", l.kind)),
                _ => l.kind.clone(),
            };
            (l.seq, what, l.aggregate.clone(), l.actor.clone().unwrap_or_default(), c.t.date(l.at))
        })
        .collect();
    let log_filter = (journal.unwrap_or_default(), acteur.unwrap_or_default(), genre.unwrap_or_default());
    let log_subjects = [
        ("dossier:", "admin-log-dossiers"),
        ("user:", "admin-log-users"),
        ("program:", "admin-log-programs"),
        ("organization:", "admin-log-settings"),
    ]
    .iter()
    .map(|(v, k)| ((*v).to_owned(), c.t.t(k), log_filter.0 == *v))
    .collect();
    let users = match s.app.users(caller).await {
        Ok(u) => u,
        Err(e) => return failure(c, e),
    };
    let t = c.t;
    let users = users
        .into_iter()
        .map(|u| UserLine {
            roles: ROLES
                .iter()
                .map(|r| ((*r).to_owned(), t.t(&format!("role-{r}")), u.roles.iter().any(|x| x == r)))
                .collect(),
            id: u.id,
            name: u.name,
            email: u.email,
            active: u.active,
        })
        .collect();
    let all_roles = ROLES.iter().skip(1).map(|r| ((*r).to_owned(), t.t(&format!("role-{r}")))).collect();
    let (org_name, english) = (c.nav.org.clone(), c.nav.english);
    let time_zone = s.app.time_zone();
    html(
        status,
        &AdminPage {
            t,
            nav: c.nav.clone(),
            log,
            log_filter,
            log_subjects,
            log_next,
            org_name,
            english,
            time_zone,
            users,
            all_roles,
            notice,
            error,
            audit,
        },
    )
}

pub(crate) async fn admin(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Query(q): Query<LogQuery>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    admin_page_with(&s, &c, StatusCode::OK, None, None, None, &q).await
}

pub(crate) async fn admin_user(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, "/admin") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let roles: Vec<String> = f.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.clone()).collect();
    let active = first(&f, "active") == Some("1");
    match s.app.update_account(&caller, &id, Some(&roles), Some(active)).await {
        Ok(_) => admin_page(&s, &c, StatusCode::OK, Some(c.t.t("admin-saved")), None, None).await,
        Err(AppError::Forbidden(m)) if m.contains("themselves") => {
            admin_page(&s, &c, StatusCode::FORBIDDEN, None, Some(c.t.t("admin-self")), None).await
        }
        Err(AppError::Invalid { .. }) => {
            admin_page(&s, &c, StatusCode::UNPROCESSABLE_ENTITY, None, Some(c.t.t("error-invalid-text")), None).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn admin_invite(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, "/admin") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let roles: Vec<String> = f.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.clone()).collect();
    match s
        .app
        .invite(&caller, first(&f, "email").unwrap_or_default(), first(&f, "name").unwrap_or_default(), &roles)
        .await
    {
        Ok(_) => admin_page(&s, &c, StatusCode::CREATED, Some(c.t.t("admin-invited")), None, None).await,
        Err(AppError::Taken(_)) => {
            admin_page(&s, &c, StatusCode::CONFLICT, None, Some(c.t.t("register-error-taken")), None).await
        }
        Err(AppError::Invalid { .. }) => {
            admin_page(&s, &c, StatusCode::UNPROCESSABLE_ENTITY, None, Some(c.t.t("error-invalid-text")), None).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn admin_settings(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, "/admin") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let tz = first(&f, "time_zone").unwrap_or_default().to_owned();
    match s
        .app
        .update_org_settings(&caller, first(&f, "name").unwrap_or_default(), first(&f, "english") == Some("1"), &tz)
        .await
    {
        Ok(_) => {
            // The header shows the new name at once.
            let c = ctx(&s, &headers, &uri).await;
            admin_page(&s, &c, StatusCode::OK, Some(c.t.t("admin-saved")), None, None).await
        }
        Err(AppError::Invalid { code: "invalid_time_zone", .. }) => {
            admin_page(&s, &c, StatusCode::UNPROCESSABLE_ENTITY, None, Some(c.t.t("admin-time-zone-error")), None).await
        }
        Err(AppError::Invalid { .. }) => {
            admin_page(&s, &c, StatusCode::UNPROCESSABLE_ENTITY, None, Some(c.t.t("error-required")), None).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn admin_logo(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    mut multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let (mut csrf, mut bytes) = (String::new(), Vec::new());
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name() {
            Some("_csrf") => csrf = field.text().await.unwrap_or_default(),
            Some("logo") => bytes = field.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            _ => {}
        }
    }
    let Some(caller) = c.caller.clone() else { return to_login("/admin") };
    if !csrf_ok(&c, Some(&csrf)) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    match s.app.set_logo(&caller, bytes).await {
        Ok(()) => {
            let c = ctx(&s, &headers, &uri).await;
            admin_page(&s, &c, StatusCode::OK, Some(c.t.t("admin-saved")), None, None).await
        }
        Err(AppError::UnsupportedMedia(_)) | Err(AppError::TooLarge { .. }) => {
            admin_page(&s, &c, StatusCode::UNPROCESSABLE_ENTITY, None, Some(c.t.t("admin-logo-error")), None).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn logo(State(s): State<AppState>) -> Response {
    match s.app.logo().await {
        Ok(Some((media, bytes))) => {
            let mut r = bytes.into_response();
            if let Ok(v) = HeaderValue::from_str(&media) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
            r
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

pub(crate) async fn admin_audit(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, "/admin") {
        Ok(x) => x,
        Err(r) => return r,
    };
    if let Err(e) = caller.may(guichet_core::Action::Administer, None) {
        return failure(&c, e);
    }
    let key = s.app.checkpoint_public_key();
    let report = match s.app.store.verify_audit(key.as_deref()).await {
        Ok(r) => r,
        Err(e) => return failure(&c, e.into()),
    };
    let t = c.t;
    let text = match &report.first_broken {
        None => {
            let mut a = fluent_bundle::FluentArgs::new();
            a.set("events", report.events);
            a.set("checkpoints", report.checkpoints);
            t.t2("admin-audit-ok", &a)
        }
        Some(w) => t.t1("admin-audit-broken", "where", w),
    };
    admin_page(&s, &c, StatusCode::OK, None, None, Some(text)).await
}

// ---------------------------------------------------------------- program management

#[derive(Template)]
#[template(path = "manage.html")]
struct ManagePage {
    t: Tr,
    nav: Nav,
    programs: Vec<(String, String, String)>,
    /// (program title, version, by, when)
    versions: Vec<(String, String, String, String)>,
    source: String,
    check: Option<guichet_app::ProgramCheck>,
    /// (dossiers, eligible before, eligible after, cost before, cost after, changed)
    simulation: Option<(usize, usize, usize, String, String, usize)>,
    /// The first dossiers whose result changes: (id, short id, before, after).
    changed: Vec<(String, String, String, String)>,
    notice: Option<String>,
}

impl ManagePage {
    fn passed_text(&self) -> String {
        let n = self.check.as_ref().map(|c| c.tests_passed).unwrap_or(0);
        self.t.t1("manage-tests-passed", "n", &n.to_string())
    }
}

async fn manage_page(
    s: &AppState,
    c: &Ctx,
    status: StatusCode,
    source: String,
    check: Option<guichet_app::ProgramCheck>,
    simulation: Option<guichet_app::CaseloadSimulation>,
    notice: Option<String>,
) -> Response {
    let Some(caller) = &c.caller else { return to_login(&c.nav.path) };
    if let Err(e) = caller.may(guichet_core::Action::ManagePrograms, None) {
        return failure(c, e);
    }
    let t = c.t;
    let programs: Vec<(String, String, String)> = s
        .app
        .programs()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let title = p.title.get(t.lang.code()).and_then(|x| x.as_str()).unwrap_or(&p.id).to_owned();
            (p.id, title, p.version.chars().take(12).collect())
        })
        .collect();
    let mut versions: Vec<(String, String, String, String)> = Vec::new();
    for (id, title, _) in &programs {
        for (v, by, at) in s.app.store.program_versions(id).await.unwrap_or_default() {
            versions.push((title.clone(), v.chars().take(12).collect::<String>(), by, t.date(at)));
        }
    }
    let outcome = |status: &str, amount: Option<i64>| match amount {
        Some(a) => format!("{status} — {}", t.money(a)),
        None => status.to_owned(),
    };
    let changed = simulation
        .as_ref()
        .map(|x| {
            x.changed
                .iter()
                .take(50)
                .map(|(id, b, a, ba, aa)| {
                    (
                        id.clone(),
                        id.trim_start_matches("d_").chars().take(8).collect(),
                        outcome(b, *ba),
                        outcome(a, *aa),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let simulation = simulation.map(|x| {
        (
            x.dossiers,
            x.eligible_before,
            x.eligible_after,
            t.money(x.amount_before),
            t.money(x.amount_after),
            x.changed.len(),
        )
    });
    html(status, &ManagePage { t, nav: c.nav.clone(), programs, versions, source, check, simulation, changed, notice })
}

pub(crate) async fn manage(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    manage_page(&s, &c, StatusCode::OK, String::new(), None, None, None).await
}

/// The check form: the file pasted, or uploaded (a chosen file wins).
pub(crate) async fn manage_check(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    mut multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let mut f: Pairs = Vec::new();
    let mut uploaded: Option<String> = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some_and(|n| !n.is_empty());
        let Ok(bytes) = field.bytes().await else { break };
        if bytes.len() > 1024 * 1024 {
            return message(&c, StatusCode::PAYLOAD_TOO_LARGE, "page-error", "error-file-size");
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if is_file && name == "file" {
            if !text.trim().is_empty() {
                uploaded = Some(text);
            }
        } else {
            f.push((name, text));
        }
    }
    let caller = match action_guard(&c, &f, "/gestion-programmes") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let source = uploaded.unwrap_or_else(|| first(&f, "source").unwrap_or_default().to_owned()).replace("\r\n", "\n");
    let check = match s.app.check_program(&caller, &source).await {
        Ok(x) => x,
        Err(e) => return failure(&c, e),
    };
    let simulation = if check.publishable && check.current_version.is_some() {
        s.app.simulate_program(&caller, &source).await.ok()
    } else {
        None
    };
    let status = if check.errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    manage_page(&s, &c, status, source, Some(check), simulation, None).await
}

pub(crate) async fn manage_publish(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, "/gestion-programmes") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let source = first(&f, "source").unwrap_or_default().replace("\r\n", "\n");
    match s.app.publish_program(Some(&caller), &source).await {
        Ok(p) => {
            let notice = c.t.t1("manage-published-ok", "version", &p.version.chars().take(12).collect::<String>());
            manage_page(&s, &c, StatusCode::OK, String::new(), None, None, Some(notice)).await
        }
        Err(AppError::Invalid { .. }) => {
            let check = s.app.check_program(&caller, &source).await.ok();
            manage_page(&s, &c, StatusCode::UNPROCESSABLE_ENTITY, source, check, None, None).await
        }
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- dashboards

/// A bar chart and the table of the same data.
struct Chart {
    id: &'static str,
    title: String,
    desc: String,
    max: String,
    bars: Vec<(String, String, String, String)>,
    head: (String, String),
    rows: Vec<(String, String)>,
}

/// Bars for `values` (0 to `max`) in the 640×240 chart frame.
fn bar_shapes(values: &[f64], max: f64) -> Vec<(String, String, String, String)> {
    let n = values.len().max(1) as f64;
    let w = 590.0 / n;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let h = if max > 0.0 { 190.0 * v / max } else { 0.0 };
            (
                format!("{:.1}", 40.0 + i as f64 * w + w * 0.1),
                format!("{:.1}", 210.0 - h),
                format!("{:.1}", w * 0.8),
                format!("{h:.1}"),
            )
        })
        .collect()
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    charts: Vec<Chart>,
    t: Tr,
    nav: Nav,
    id: String,
    title: String,
    figures: Vec<(String, String)>,
    bars: Vec<(String, String, String, String)>,
    max: i64,
    chart_desc: String,
    days: Vec<(String, i64)>,
    states: Vec<(String, i64, String)>,
    /// Committed against the budget: (committed, budget, bar widths in
    /// the 600-unit chart, or None without a budget).
    budget: Option<(String, String, String, String)>,
    budget_value: String,
    notice: Option<String>,
}

pub(crate) async fn dashboard(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    dashboard_page(&s, &c, &id, StatusCode::OK, None).await
}

pub(crate) async fn set_budget(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match action_guard(&c, &f, &format!("/gestion-programmes/{id}/tableau")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let invalid = |c: &Ctx| Some(c.t.t("error-invalid-money"));
    let cents = match typed_money(first(&f, "budget").unwrap_or_default()) {
        Some((_, m)) => m.0,
        None => return dashboard_page(&s, &c, &id, StatusCode::UNPROCESSABLE_ENTITY, invalid(&c)).await,
    };
    match s.app.set_program_budget(&caller, &id, cents).await {
        Ok(()) => dashboard_page(&s, &c, &id, StatusCode::OK, Some(c.t.t("admin-saved"))).await,
        Err(AppError::Invalid { .. }) => {
            dashboard_page(&s, &c, &id, StatusCode::UNPROCESSABLE_ENTITY, invalid(&c)).await
        }
        Err(e) => failure(&c, e),
    }
}

async fn dashboard_page(s: &AppState, c: &Ctx, id: &str, status: StatusCode, notice: Option<String>) -> Response {
    use guichet_core::State as St;
    let Some(caller) = &c.caller else { return to_login(&c.nav.path) };
    let stats = match s.app.program_stats(caller, id).await {
        Ok(x) => x,
        Err(e) => return failure(c, e),
    };
    let p = match s.app.current_program(id).await {
        Ok(p) => p,
        Err(e) => return failure(c, e),
    };
    let t = c.t;
    let count = |f: &dyn Fn(St) -> bool| stats.by_state.iter().filter(|x| f(x.0)).map(|x| x.1).sum::<i64>();
    let granted = |st: St| {
        matches!(st, St::Approved | St::AgreementPending | St::AgreementSigned | St::PaymentScheduled | St::Paid)
    };
    let submitted = count(&|st| st != St::Draft);
    let approved = count(&granted);
    let refused = count(&|st| st == St::Refused);
    let committed: i64 = stats.by_state.iter().filter(|x| granted(x.0)).map(|x| x.2).sum();
    let budget = s.app.program_budget(id).await.ok().flatten();
    let rate = if approved + refused > 0 {
        let pct = approved as f64 * 100.0 / (approved + refused) as f64;
        if t.lang == Lang::Fr { format!("{pct:.1} %").replace('.', ",") } else { format!("{pct:.1}%") }
    } else {
        "—".into()
    };
    let day = |d: i64| t.date(d * 86400 + 43200);
    let max = stats.per_day.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let bars = bar_shapes(&stats.per_day.iter().map(|d| d.1 as f64).collect::<Vec<_>>(), max as f64);
    let mut a = fluent_bundle::FluentArgs::new();
    a.set("days", stats.per_day.len());
    a.set("first", stats.per_day.first().map(|d| day(d.0)).unwrap_or_default());
    a.set("last", stats.per_day.last().map(|d| day(d.0)).unwrap_or_default());
    a.set("max", max);
    let page = DashboardPage {
        t,
        id: id.to_owned(),
        title: t.pick(&p.program.title.fr, &p.program.title.en).to_owned(),
        figures: vec![
            (t.t("dash-submitted"), submitted.to_string()),
            (t.t("dash-approval-rate"), rate),
            (t.t("dash-committed"), t.money(committed)),
            (
                t.t("dash-processing"),
                stats
                    .median_seconds
                    .map(|x| {
                        let days = x as f64 / 86400.0;
                        let v = format!("{days:.1}");
                        t.t1("dash-days", "n", &if t.lang == Lang::Fr { v.replace('.', ",") } else { v })
                    })
                    .unwrap_or_else(|| "—".into()),
            ),
        ],
        bars,
        max,
        chart_desc: t.t2("dash-chart-desc", &a),
        days: stats.per_day.iter().map(|(d, k)| (day(*d), *k)).collect(),
        states: stats.by_state.iter().map(|(st, k, amount)| (state_text(&t, *st), *k, t.money(*amount))).collect(),
        charts: {
            let pct = |a: i64, r: i64| if a + r > 0 { a as f64 * 100.0 / (a + r) as f64 } else { 0.0 };
            let fmt_pct = |x: f64| {
                let v = format!("{x:.1}");
                if t.lang == Lang::Fr { format!("{} %", v.replace('.', ",")) } else { format!("{v}%") }
            };
            let rates: Vec<f64> = stats.decided_per_day.iter().map(|(_, a, r)| pct(*a, *r)).collect();
            let longest = stats.days_to_decision.iter().map(|d| d.1).max().unwrap_or(0);
            let mut a1 = fluent_bundle::FluentArgs::new();
            a1.set("days", stats.decided_per_day.len());
            let mut a2 = fluent_bundle::FluentArgs::new();
            a2.set("n", stats.decided);
            vec![
                Chart {
                    id: "approval",
                    title: t.t("dash-approval-chart"),
                    desc: t.t2("dash-approval-desc", &a1),
                    max: "100 %".into(),
                    bars: bar_shapes(&rates, 100.0),
                    head: (t.t("dash-day"), t.t("dash-approval-rate")),
                    rows: stats
                        .decided_per_day
                        .iter()
                        .map(|(d, a, r)| (day(*d), format!("{} ({a} / {})", fmt_pct(pct(*a, *r)), a + r)))
                        .collect(),
                },
                Chart {
                    id: "processing",
                    title: t.t("dash-processing-chart"),
                    desc: t.t2("dash-processing-desc", &a2),
                    max: longest.to_string(),
                    bars: bar_shapes(
                        &stats.days_to_decision.iter().map(|d| d.1 as f64).collect::<Vec<_>>(),
                        longest as f64,
                    ),
                    head: (t.t("dash-days-taken"), t.t("dash-count")),
                    rows: stats
                        .days_to_decision
                        .iter()
                        .map(|(d, k)| (t.t1("dash-days", "n", &d.to_string()), k.to_string()))
                        .collect(),
                },
            ]
        },
        budget: budget.map(|b| {
            let scale = (b.max(committed)).max(1) as f64;
            (
                t.money(committed),
                t.money(b),
                format!("{:.1}", 560.0 * committed as f64 / scale),
                format!("{:.1}", 560.0 * b as f64 / scale),
            )
        }),
        budget_value: budget.map(|b| format!("{}.{:02}", b / 100, b % 100)).unwrap_or_default(),
        notice,
        nav: c.nav.clone(),
    };
    html(status, &page)
}

pub(crate) async fn program_csv(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = &c.caller else { return to_login(&c.nav.path) };
    match s.app.program_csv(caller, &id).await {
        Ok(csv) => {
            let mut r = csv.into_response();
            r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{}.csv\"", url_encode(&id))) {
                r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- decision letter

/// The decision letter as a PDF/A, in the applicant's language.
pub(crate) async fn letter(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let l = match load(&s, &c, &id).await {
        Ok(l) => l,
        Err(r) => return r,
    };
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let Some(d) = l.view.decision.clone() else {
        return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text");
    };
    let applicant = s.app.store.user(&l.view.applicant).await.ok().flatten();
    let lang = applicant
        .as_ref()
        .and_then(|u| Lang::parse(&u.language))
        .filter(|l| c.nav.english || *l == Lang::Fr)
        .unwrap_or_default();
    let t = Tr { lang, tz: c.t.tz };
    let pr = &l.program.program;
    let explanation = s
        .app
        .evaluate(caller, &id, lang.rules())
        .await
        .ok()
        .and_then(|v| v["explanation"].as_str().map(str::to_owned))
        .unwrap_or_default();
    let data = guichet_docs::DecisionLetter {
        lang: lang.code().into(),
        organization: c.nav.org.clone(),
        title: t.t("letter-title"),
        issued: jiff::Timestamp::from_second(d.at)
            .ok()
            .zip(jiff::tz::TimeZone::get(&s.app.time_zone()).ok())
            .map(|(ts, tz)| {
                let x = tz.to_datetime(ts).date();
                [i32::from(x.year()), i32::from(x.month()), i32::from(x.day())]
            })
            .unwrap_or([2000, 1, 1]),
        date: t.date(d.at),
        recipient: applicant.map(|u| u.name).unwrap_or_default(),
        reference: t.t1("dossier-title", "id", &l.view.id.trim_start_matches("d_").chars().take(8).collect::<String>()),
        program: t.pick(&pr.title.fr, &pr.title.en).to_owned(),
        outcome: t.t(if d.outcome == guichet_core::Outcome::Approved {
            "decision-approved"
        } else {
            "decision-refused"
        }),
        amount: d.amount.map(|a| t.t1("decision-amount", "amount", &t.money(a))),
        reasons_title: t.t("decision-reasons"),
        reasons: d
            .reasons
            .iter()
            .map(|r| {
                pr.rules
                    .iter()
                    .find(|x| &x.name == r)
                    .map(|x| t.pick(&x.fails.fr, &x.fails.en).to_owned())
                    .unwrap_or_else(|| r.clone())
            })
            .collect(),
        justification_title: t.t("decision-justification"),
        justification: d.justification.clone(),
        automatic: (d.by.0 == "system").then(|| t.t("decision-automatic")),
        explanation_title: t.t("dossier-evaluation-title"),
        explanation,
        recourse_title: t.t("letter-recourse-title"),
        recourse: t.t("decision-recourse"),
        footer: t.t("letter-footer"),
    };
    let pdf = match tokio::task::spawn_blocking(move || guichet_app::docs().decision_letter(&data)).await {
        Ok(Ok(pdf)) => pdf,
        Ok(Err(e)) => return failure(&c, AppError::Internal(e.to_string())),
        Err(e) => return failure(&c, AppError::Internal(e.to_string())),
    };
    let mut r = pdf.into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(v) = HeaderValue::from_str(&format!("inline; filename=\"decision-{}.pdf\"", url_encode(&id))) {
        r.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    r
}
