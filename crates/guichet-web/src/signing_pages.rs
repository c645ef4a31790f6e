//! The screens of signatures: the public verification page, the signing
//! ceremony (the whole document drawn page by page, the signers and their
//! order, sign or decline), the list of documents waiting for one's
//! signature, an employee's personal certificate, and sending a dossier's
//! agreement.

#![allow(clippy::result_large_err)]

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use guichet_app::{AppError, EnvelopeView, Verification};

use crate::AppState;
use crate::extract::read_form;
use crate::i18n::Tr;
use crate::pages::{Ctx, Nav, Pairs, csrf_ok, ctx, failure, first, html, message, see_other, to_login};

// ---------------------------------------------------------------- verify

struct SignatureLine {
    title: String,
    indication: String,
    sub: Option<String>,
    signer: String,
    when: String,
    level: String,
    changes: String,
    details: Vec<String>,
}

struct VerifyResult {
    valid: bool,
    verdict: String,
    file: String,
    sha256: String,
    signatures: Vec<SignatureLine>,
}

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    t: Tr,
    nav: Nav,
    max: String,
    error: Option<String>,
    result: Option<VerifyResult>,
}

fn megabytes(bytes: usize) -> String {
    format!("{} Mo", bytes / (1024 * 1024))
}

/// `29 novembre 2026, 10 h 45 UTC` / `November 29, 2026, 10:45 UTC`.
fn moment(t: &Tr, unix: i64) -> String {
    let Ok(ts) = jiff::Timestamp::from_second(unix) else { return String::new() };
    let dt = t.tz.to_datetime(ts);
    let clock = match t.lang {
        crate::i18n::Lang::Fr => format!("{} h {:02}", dt.hour(), dt.minute()),
        crate::i18n::Lang::En => format!("{}:{:02}", dt.hour(), dt.minute()),
    };
    format!("{}, {clock}", t.date(unix))
}

fn verify_result(t: &Tr, v: Verification, file: String) -> VerifyResult {
    let mut n_sig = 0;
    let mut n_ts = 0;
    let signatures = v
        .signatures
        .into_iter()
        .map(|s| {
            let doc_ts = s.level.as_deref() == Some("document timestamp");
            let title = if doc_ts {
                n_ts += 1;
                t.t1("verify-doc-timestamp", "n", &n_ts.to_string())
            } else {
                n_sig += 1;
                t.t1("verify-signature", "n", &n_sig.to_string())
            };
            SignatureLine {
                title,
                indication: t.t(&format!("verify-indication-{}", s.indication)),
                sub: s.sub_indication,
                signer: s.signer.unwrap_or_else(|| "—".into()),
                when: s.timestamp.map(|at| moment(t, at)).unwrap_or_else(|| t.t("verify-no-timestamp")),
                level: if doc_ts { t.t("verify-level-doc-timestamp") } else { s.level.unwrap_or_else(|| "—".into()) },
                changes: t.t(&format!("verify-changes-{}", s.modification.replace(' ', "_"))),
                details: s.details,
            }
        })
        .collect::<Vec<_>>();
    let verdict = if signatures.is_empty() {
        t.t("verify-unsigned")
    } else if v.valid {
        t.t("verify-valid")
    } else {
        t.t("verify-invalid")
    };
    VerifyResult { valid: v.valid, verdict, file, sha256: v.sha256, signatures }
}

pub(crate) async fn verify_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let max = megabytes(s.app.config.max_upload);
    html(StatusCode::OK, &VerifyPage { t: c.t, nav: c.nav, max, error: None, result: None })
}

pub(crate) async fn verify_upload(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    let limit = s.app.config.max_upload;
    let max = megabytes(limit);
    let page = |status: StatusCode, error: Option<String>, result: Option<VerifyResult>| {
        html(status, &VerifyPage { t, nav: c.nav.clone(), max: max.clone(), error, result })
    };
    let mut form = read_form(multipart, &["document"], limit).await.unwrap_or_default();
    let (name, bytes) = form.files.remove("document").unwrap_or_default();
    if form.too_large {
        return page(StatusCode::PAYLOAD_TOO_LARGE, Some(t.t1("verify-error-size", "size", &max)), None);
    }
    if bytes.is_empty() {
        return page(StatusCode::UNPROCESSABLE_ENTITY, Some(t.t("verify-error-missing")), None);
    }
    match s.app.verify_document(bytes).await {
        Ok(v) => page(StatusCode::OK, None, Some(verify_result(&t, v, name))),
        Err(AppError::UnsupportedMedia(_)) => {
            page(StatusCode::UNSUPPORTED_MEDIA_TYPE, Some(t.t("verify-error-type")), None)
        }
        Err(AppError::TooLarge { .. }) => {
            page(StatusCode::PAYLOAD_TOO_LARGE, Some(t.t1("verify-error-size", "size", &max)), None)
        }
        Err(AppError::Invalid { code: "encrypted_pdf", .. }) => {
            page(StatusCode::UNPROCESSABLE_ENTITY, Some(t.t("verify-error-encrypted")), None)
        }
        Err(AppError::Invalid { message, .. }) => {
            page(StatusCode::UNPROCESSABLE_ENTITY, Some(t.t1("verify-error-unreadable", "why", &message)), None)
        }
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- envelopes

#[derive(Template)]
#[template(path = "envelopes.html")]
struct EnvelopesPage {
    t: Tr,
    nav: Nav,
    items: Vec<(String, String, String)>,
    employee: bool,
    /// (envelope, title, state, sent on)
    sent: Vec<(String, String, String, String)>,
}

pub(crate) async fn envelopes(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let t = c.t;
    let list = match s.app.envelopes_awaiting(caller).await {
        Ok(l) => l,
        Err(e) => return failure(&c, e),
    };
    let sent = if caller.is_staff() {
        match s.app.envelopes_sent(caller).await {
            Ok(l) => l,
            Err(e) => return failure(&c, e),
        }
    } else {
        Vec::new()
    };
    let items =
        list.into_iter().map(|e| (e.id, e.title, t.t1("envelope-expires", "date", &t.date(e.expires_at)))).collect();
    let sent = sent
        .into_iter()
        .map(|e| (e.id, e.title, t.t(&format!("envelope-state-{}", e.state)), t.date(e.sent_at)))
        .collect();
    html(StatusCode::OK, &EnvelopesPage { t, nav: c.nav.clone(), items, employee: caller.is_staff(), sent })
}

// ---------------------------------------------------------------- new envelope

const ROWS: usize = 6;

#[derive(Template)]
#[template(path = "new_envelope.html")]
struct NewEnvelopePage {
    t: Tr,
    nav: Nav,
    max: String,
    error: Option<String>,
    title: String,
    message: String,
    days: String,
    lang: String,
    /// (row from 1, (kind, name, email, group))
    rows: Vec<(usize, (String, String, String, String))>,
}

fn new_envelope_page(
    s: &AppState,
    c: &Ctx,
    form: &std::collections::HashMap<String, String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let rows = (1..=ROWS)
        .map(|i| {
            let group = form.get(&format!("group-{i}")).cloned().unwrap_or_else(|| "1".into());
            (i, (get(&format!("kind-{i}")), get(&format!("name-{i}")), get(&format!("email-{i}")), group))
        })
        .collect();
    let page = NewEnvelopePage {
        t: c.t,
        nav: c.nav.clone(),
        max: megabytes(s.app.config.max_upload),
        error,
        title: get("title"),
        message: get("message"),
        days: form.get("days").cloned().unwrap_or_else(|| "30".into()),
        lang: form.get("lang").cloned().unwrap_or_else(|| c.t.lang.code().into()),
        rows,
    };
    html(status, &page)
}

pub(crate) async fn new_envelope_form(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    if !caller.is_staff() {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "page-not-found-text");
    }
    new_envelope_page(&s, &c, &Default::default(), None, StatusCode::OK)
}

pub(crate) async fn new_envelope(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    let limit = s.app.config.max_upload;
    let mut data = read_form(multipart, &["document"], limit).await.unwrap_or_default();
    let (pdf, too_large) = (data.take_file("document"), data.too_large);
    let form = data.fields;
    let Some(caller) = c.caller.clone() else { return to_login("/enveloppes/nouvelle") };
    if !csrf_ok(&c, form.get("_csrf").map(String::as_str)) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let again = |key: &str, status: StatusCode| new_envelope_page(&s, &c, &form, Some(t.t(key)), status);
    if too_large {
        return new_envelope_page(
            &s,
            &c,
            &form,
            Some(t.t1("verify-error-size", "size", &megabytes(limit))),
            StatusCode::PAYLOAD_TOO_LARGE,
        );
    }
    if pdf.is_empty() {
        return again("verify-error-missing", StatusCode::UNPROCESSABLE_ENTITY);
    }
    let mut recipients = Vec::new();
    for i in 1..=ROWS {
        let kind = form.get(&format!("kind-{i}")).map(|k| k.trim().to_owned()).unwrap_or_default();
        if kind.is_empty() {
            continue;
        }
        let Some(group) =
            form.get(&format!("group-{i}")).and_then(|g| g.trim().parse::<u32>().ok()).filter(|g| *g >= 1)
        else {
            return again("new-envelope-error-group", StatusCode::UNPROCESSABLE_ENTITY);
        };
        recipients.push(guichet_app::RecipientInput {
            name: form.get(&format!("name-{i}")).map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()),
            email: form.get(&format!("email-{i}")).map(|e| e.trim().to_owned()).unwrap_or_default(),
            kind,
            group,
            field: None,
        });
    }
    let input = guichet_app::EnvelopeInput {
        title: form.get("title").cloned().unwrap_or_default(),
        message: form.get("message").cloned().unwrap_or_default(),
        lang: form.get("lang").cloned().filter(|l| l == "fr" || l == "en"),
        expires_in_days: form.get("days").and_then(|d| d.trim().parse().ok()),
        recipients,
    };
    match s.app.create_envelope(&caller, pdf, input).await {
        Ok(e) => see_other(&format!("/enveloppes/{}", e.id)),
        Err(AppError::UnsupportedMedia(_)) => again("verify-error-type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
        Err(AppError::Invalid { code: "encrypted_pdf", .. }) => {
            again("verify-error-encrypted", StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(AppError::Invalid { message, .. }) => new_envelope_page(
            &s,
            &c,
            &form,
            Some(t.t1("new-envelope-error", "why", &message)),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(e) => failure(&c, e),
    }
}

#[derive(Template)]
#[template(path = "envelope.html")]
struct EnvelopePage {
    t: Tr,
    nav: Nav,
    id: String,
    title: String,
    state: String,
    due: Option<String>,
    dossier: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    /// (order, who, status)
    recipients: Vec<(u32, String, String)>,
    /// (page number from 1, alternative text)
    pages: Vec<(usize, String)>,
    completed: bool,
    /// The recipients the caller signs as now: (index, with a personal certificate).
    turn: Vec<(usize, bool)>,
    sealed_note: String,
    can_void: bool,
}

async fn envelope_page(
    s: &AppState,
    c: &Ctx,
    id: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let t = c.t;
    let e: EnvelopeView = match s.app.envelope(caller, id).await {
        Ok(e) => e,
        Err(x) => return failure(c, x),
    };
    if !e.your_turn.is_empty() {
        // Opening the page is recorded (once) as the document viewed.
        let _ = s.app.envelope_viewed(caller, id).await;
    }
    let count = s.app.envelope_page_count(caller, id).await.unwrap_or(0);
    let recipients = e
        .recipients
        .iter()
        .map(|r| {
            let status = match r.status.as_str() {
                "signed" => t.t1("recipient-signed", "date", &r.at.map(|a| moment(&t, a)).unwrap_or_default()),
                "declined" => t.t1("recipient-declined", "reason", r.reason.as_deref().unwrap_or_default()),
                "delegated" => t.t("recipient-delegated"),
                _ if r.viewed => format!("{} {}", t.t("recipient-waiting"), t.t("recipient-viewed")),
                _ => t.t("recipient-waiting"),
            };
            let who = match (&r.signed_by, r.email.is_empty()) {
                (Some(by), _) if r.kind == "officer" => format!("{by} — {}", r.name),
                (_, true) => r.name.clone(),
                (_, false) => format!("{} ({})", r.name, r.email),
            };
            (r.group, who, status)
        })
        .collect();
    let org = c.nav.org.clone();
    let may_void = e.state == "sent"
        && (e.sender == caller.id()
            || caller
                .actor
                .roles
                .iter()
                .any(|r| matches!(r, guichet_core::Role::CaseWorker | guichet_core::Role::Administrator)));
    let page = EnvelopePage {
        t,
        nav: c.nav.clone(),
        id: e.id.clone(),
        state: t.t(&format!("envelope-state-{}", e.state)),
        due: (e.state == "sent").then(|| t.t1("envelope-expires", "date", &t.date(e.expires_at))),
        dossier: e.dossier.clone().filter(|_| caller.is_staff() || e.recipients.iter().any(|r| r.kind == "citizen")),
        notice,
        error,
        recipients,
        pages: (1..=count)
            .map(|n| {
                let mut args = fluent_bundle::FluentArgs::new();
                args.set("n", n);
                args.set("total", count);
                args.set("title", e.title.clone());
                (n, t.t2("envelope-page-alt", &args))
            })
            .collect(),
        completed: e.state == "completed",
        turn: e
            .your_turn
            .iter()
            .map(|&i| (i, e.recipients.get(i).is_some_and(|r| r.kind == "employee" || r.kind == "officer")))
            .collect(),
        sealed_note: t.t1("envelope-citizen-note", "org", &org),
        can_void: may_void,
        title: e.title,
    };
    html(status, &page)
}

pub(crate) async fn envelope(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    envelope_page(&s, &c, &id, None, None, StatusCode::OK).await
}

/// One page of the document as an SVG image (`3.svg`).
pub(crate) async fn envelope_svg(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, file)): Path<(String, String)>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let Some(n) = page_number(&file) else {
        return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text");
    };
    match s.app.envelope_page(caller, &id, n - 1).await {
        Ok(svg) => svg_response(svg),
        Err(e) => failure(&c, e),
    }
}

#[derive(serde::Deserialize)]
pub(crate) struct WhichFile {
    f: Option<String>,
}

pub(crate) async fn envelope_pdf(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    Query(q): Query<WhichFile>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let Ok(which) = crate::api::envelope_file(q.f.as_deref()) else {
        return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text");
    };
    match s.app.envelope_file(caller, &id, which).await {
        Ok(pdf) => {
            let name = match which {
                guichet_app::EnvelopeFile::Completion => "certificat-achevement",
                guichet_app::EnvelopeFile::Original => "document-original",
                guichet_app::EnvelopeFile::Current => "document-signe",
            };
            let disposition = format!("inline; filename=\"{name}-{}.pdf\"", id.trim_start_matches("e_"));
            crate::api::file_response(pdf, "application/pdf", Some(disposition))
        }
        Err(e) => failure(&c, e),
    }
}

/// An envelope action's outcome: the envelope again, with a notice or
/// the reason it failed.
async fn after(s: &AppState, c: &Ctx, id: &str, r: Result<EnvelopeView, AppError>, done: &str) -> Response {
    let t = c.t;
    let (status, key) = match r {
        Ok(_) => return envelope_page(s, c, id, Some(t.t(done)), None, StatusCode::OK).await,
        Err(AppError::Invalid { code: "wrong_passphrase", .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "envelope-error-passphrase")
        }
        Err(AppError::Invalid { code: "passphrase_required", .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "envelope-error-passphrase")
        }
        Err(AppError::Invalid { code: "agreement_required", .. }) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "envelope-error-agree")
        }
        Err(AppError::Invalid { code: "invalid_envelope", message, .. })
            if message.contains("employee") || message.contains("someone else") =>
        {
            (StatusCode::UNPROCESSABLE_ENTITY, "envelope-error-delegate")
        }
        Err(AppError::Invalid { .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "envelope-error-reason"),
        Err(AppError::Throttled { .. }) => (StatusCode::TOO_MANY_REQUESTS, "envelope-error-throttled"),
        Err(AppError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "envelope-error-unavailable"),
        Err(AppError::Forbidden(m)) if m.contains("certificate") => {
            (StatusCode::FORBIDDEN, "envelope-error-no-certificate")
        }
        Err(AppError::WrongState(_)) | Err(AppError::Conflict { .. }) => (StatusCode::CONFLICT, "envelope-error-turn"),
        Err(e) => return failure(c, e),
    };
    envelope_page(s, c, id, None, Some(t.t(key)), status).await
}

pub(crate) async fn envelope_sign(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    crate::extract::Client(client): crate::extract::Client,
    Path((id, index)): Path<(String, usize)>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, &format!("/enveloppes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r = if first(&f, "agree") != Some("1") {
        Err(AppError::Invalid { code: "agreement_required", message: String::new(), field: None, details: None })
    } else {
        s.app.sign_envelope(&caller, &id, index, first(&f, "passphrase"), &client).await
    };
    after(&s, &c, &id, r, "envelope-signed-notice").await
}

pub(crate) async fn envelope_decline(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, index)): Path<(String, usize)>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, &format!("/enveloppes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r = s.app.decline_envelope(&caller, &id, index, first(&f, "reason").unwrap_or_default()).await;
    after(&s, &c, &id, r, "envelope-declined-notice").await
}

pub(crate) async fn envelope_delegate(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((id, index)): Path<(String, usize)>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, &format!("/enveloppes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r = s.app.delegate_envelope(&caller, &id, index, first(&f, "email").unwrap_or_default()).await;
    after(&s, &c, &id, r, "envelope-delegated-notice").await
}

pub(crate) async fn envelope_void(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, &format!("/enveloppes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let r = s.app.void_envelope(&caller, &id, first(&f, "reason").unwrap_or_default()).await;
    after(&s, &c, &id, r, "envelope-voided-notice").await
}

/// A case worker sends (again) a dossier's agreement.
pub(crate) async fn send_agreement(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, &format!("/demandes/{id}")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.app.send_agreement(&caller, &id).await {
        Ok(e) => see_other(&format!("/enveloppes/{}", e.id)),
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- certificate

struct CertificateLine {
    serial: String,
    subject: String,
    until: String,
    status: String,
    valid: bool,
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage {
    t: Tr,
    nav: Nav,
    /// The caller's own certificates (else an administrator's view).
    own: bool,
    holder: String,
    revoke_base: String,
    lead: String,
    notice: Option<String>,
    error: Option<String>,
    certificates: Vec<CertificateLine>,
}

async fn certificate_page(
    s: &AppState,
    c: &Ctx,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let Some(caller) = c.caller.as_ref() else { return to_login("/compte/certificat") };
    if !caller.is_staff() {
        return message(c, StatusCode::FORBIDDEN, "page-forbidden", "page-not-found-text");
    }
    certificates_page(s, c, caller.id(), notice, error, status).await
}

/// A user's certificates: their own page, or an administrator's view.
async fn certificates_page(
    s: &AppState,
    c: &Ctx,
    user: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let Some(caller) = c.caller.as_ref() else { return to_login(&c.nav.path) };
    let t = c.t;
    let own = user == caller.id();
    let list = match s.app.certificates(caller, user).await {
        Ok(l) => l,
        Err(e) => return failure(c, e),
    };
    let holder = match s.app.store.user(user).await {
        Ok(Some(u)) => u.name,
        _ => return message(c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text"),
    };
    let now = s.app.now();
    let certificates = list
        .into_iter()
        .map(|x| CertificateLine {
            status: match (&x.revoked_at, x.not_after > now) {
                (Some(at), _) => {
                    let mut args = fluent_bundle::FluentArgs::new();
                    args.set("date", t.date(*at));
                    args.set(
                        "reason",
                        t.t(&format!("revocation-{}", x.revocation_reason.as_deref().unwrap_or("unspecified"))),
                    );
                    t.t2("certificate-revoked", &args)
                }
                (None, false) => t.t("certificate-expired"),
                (None, true) => t.t("certificate-valid"),
            },
            serial: x.serial,
            subject: x.subject,
            until: t.date(x.not_after),
            valid: x.valid,
        })
        .collect();
    let page = CertificatePage {
        t,
        nav: c.nav.clone(),
        own,
        revoke_base: if own { "/compte/certificat".into() } else { "/admin/certificats".into() },
        lead: if own { t.t1("certificate-lead", "org", &c.nav.org) } else { t.t("certificate-admin-lead") },
        holder,
        notice,
        error,
        certificates,
    };
    html(status, &page)
}

/// An administrator's view of someone's certificates.
pub(crate) async fn admin_certificates(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    certificates_page(&s, &c, &id, None, None, StatusCode::OK).await
}

pub(crate) async fn admin_revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(serial): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, "/admin") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let holder = match s.app.store.certificate(&serial).await {
        Ok(Some(x)) => x.user_id,
        Ok(None) => return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text"),
        Err(e) => return failure(&c, e.into()),
    };
    match s.app.revoke_certificate(&caller, &serial, first(&f, "reason").unwrap_or("unspecified")).await {
        Ok(()) => {
            certificates_page(&s, &c, &holder, Some(c.t.t("certificate-revoked-notice")), None, StatusCode::OK).await
        }
        Err(AppError::WrongState(_)) => {
            certificates_page(&s, &c, &holder, None, Some(c.t.t("certificate-already-revoked")), StatusCode::CONFLICT)
                .await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn certificate(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    certificate_page(&s, &c, None, None, StatusCode::OK).await
}

pub(crate) async fn certificate_issue(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, "/compte/certificat") {
        Ok(x) => x,
        Err(r) => return r,
    };
    let t = c.t;
    let pass = first(&f, "passphrase").unwrap_or_default();
    if pass != first(&f, "passphrase_again").unwrap_or_default() {
        return certificate_page(
            &s,
            &c,
            None,
            Some(t.t("certificate-error-mismatch")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match s.app.issue_certificate(&caller, pass).await {
        Ok(_) => certificate_page(&s, &c, Some(t.t("certificate-issued")), None, StatusCode::OK).await,
        Err(AppError::Invalid { code: "weak_passphrase", .. }) => {
            certificate_page(&s, &c, None, Some(t.t("certificate-error-weak")), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn certificate_import(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Multipart,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let mut form = read_form(multipart, &["pkcs12"], 1024 * 1024).await.unwrap_or_default();
    let (p12, too_large) = (form.take_file("pkcs12"), form.too_large);
    let (password, passphrase) = (form.field("password").to_owned(), form.field("passphrase").to_owned());
    let Some(caller) = c.caller.clone() else { return to_login("/compte/certificat") };
    if !csrf_ok(&c, Some(form.field("_csrf"))) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    let t = c.t;
    let refused = |key: &str| t.t(key);
    if too_large || p12.is_empty() {
        return certificate_page(
            &s,
            &c,
            None,
            Some(refused("certificate-import-error-file")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match s.app.import_certificate(&caller, p12, &password, &passphrase).await {
        Ok(_) => certificate_page(&s, &c, Some(t.t("certificate-imported")), None, StatusCode::OK).await,
        Err(AppError::Invalid { code, message, .. }) => {
            let text = match code {
                "weak_passphrase" => refused("certificate-error-weak"),
                "untrusted_certificate" => refused("certificate-import-error-untrusted"),
                _ => t.t1("certificate-import-error", "why", &message),
            };
            certificate_page(&s, &c, None, Some(text), StatusCode::UNPROCESSABLE_ENTITY).await
        }
        Err(AppError::Taken(_)) => {
            certificate_page(&s, &c, None, Some(refused("certificate-import-error-taken")), StatusCode::CONFLICT).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn certificate_revoke(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(serial): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match crate::pages::action_guard(&c, &f, "/compte/certificat") {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.app.revoke_certificate(&caller, &serial, "unspecified").await {
        Ok(()) => certificate_page(&s, &c, Some(c.t.t("certificate-revoked-notice")), None, StatusCode::OK).await,
        Err(e) => failure(&c, e),
    }
}

// ---------------------------------------------------------------- external signers

#[derive(Template)]
#[template(path = "external.html")]
struct ExternalPage {
    t: Tr,
    nav: Nav,
    token: String,
    title: String,
    name: String,
    message: String,
    state: String,
    due: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    pages: Vec<(usize, String)>,
    may_sign: bool,
    sealed_note: String,
}

async fn external_page(
    s: &AppState,
    c: &Ctx,
    token: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    let t = c.t;
    let v = match s.app.external_envelope(token).await {
        Ok(v) => v,
        Err(AppError::WrongState(_)) => {
            return message(c, StatusCode::GONE, "external-expired", "external-expired-text");
        }
        Err(e) => return failure(c, e),
    };
    let e = &v.envelope;
    let count = s.app.external_page_count(token).await.unwrap_or(0);
    let name = e.recipients.get(v.recipient).map(|r| r.name.clone()).unwrap_or_default();
    let page = ExternalPage {
        t,
        nav: c.nav.clone(),
        token: token.to_owned(),
        title: e.title.clone(),
        name,
        message: e.message.clone(),
        state: t.t(&format!("envelope-state-{}", e.state)),
        due: (e.state == "sent").then(|| t.t1("envelope-expires", "date", &t.date(e.expires_at))),
        notice,
        error,
        pages: (1..=count)
            .map(|n| {
                let mut args = fluent_bundle::FluentArgs::new();
                args.set("n", n);
                args.set("total", count);
                args.set("title", e.title.clone());
                (n, t.t2("envelope-page-alt", &args))
            })
            .collect(),
        may_sign: v.may_sign,
        sealed_note: t.t1("external-sealed-note", "org", &c.nav.org),
    };
    html(status, &page)
}

pub(crate) async fn external(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(token): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    external_page(&s, &c, &token, None, None, StatusCode::OK).await
}

pub(crate) async fn external_svg(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path((token, file)): Path<(String, String)>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(n) = page_number(&file) else {
        return message(&c, StatusCode::NOT_FOUND, "page-not-found", "page-not-found-text");
    };
    match s.app.external_page(&token, n - 1).await {
        Ok(svg) => svg_response(svg),
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn external_pdf(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(token): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    match s.app.external_file(&token).await {
        Ok(pdf) => crate::api::file_response(pdf, "application/pdf", None),
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn external_code(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(token): Path<String>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    match s.app.send_signing_code(&token).await {
        Ok(()) => external_page(&s, &c, &token, Some(t.t("external-code-sent")), None, StatusCode::OK).await,
        Err(AppError::Throttled { retry_after: 0 }) => {
            external_page(&s, &c, &token, None, Some(t.t("external-locked")), StatusCode::TOO_MANY_REQUESTS).await
        }
        Err(AppError::Throttled { .. }) => {
            external_page(&s, &c, &token, None, Some(t.t("external-code-wait")), StatusCode::TOO_MANY_REQUESTS).await
        }
        Err(AppError::WrongState(_)) => {
            external_page(&s, &c, &token, None, Some(t.t("envelope-error-turn")), StatusCode::CONFLICT).await
        }
        Err(e) => failure(&c, e),
    }
}

pub(crate) async fn external_sign(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    crate::extract::Client(client): crate::extract::Client,
    Path(token): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    if first(&f, "agree") != Some("1") {
        return external_page(
            &s,
            &c,
            &token,
            None,
            Some(t.t("envelope-error-agree")),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let (status, key) = match s.app.sign_external(&token, first(&f, "code").unwrap_or_default(), &client).await {
        Ok(_) => return external_page(&s, &c, &token, Some(t.t("envelope-signed-notice")), None, StatusCode::OK).await,
        Err(AppError::Invalid { code: "wrong_code", .. }) => (StatusCode::UNPROCESSABLE_ENTITY, "external-wrong-code"),
        Err(AppError::Throttled { .. }) => (StatusCode::TOO_MANY_REQUESTS, "external-locked"),
        Err(AppError::Unavailable(_)) => (StatusCode::SERVICE_UNAVAILABLE, "envelope-error-unavailable"),
        Err(AppError::WrongState(_)) | Err(AppError::Conflict { .. }) => (StatusCode::CONFLICT, "envelope-error-turn"),
        Err(e) => return failure(&c, e),
    };
    external_page(&s, &c, &token, None, Some(t.t(key)), status).await
}

pub(crate) async fn external_decline(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(token): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let t = c.t;
    match s.app.decline_external(&token, first(&f, "reason").unwrap_or_default()).await {
        Ok(_) => external_page(&s, &c, &token, Some(t.t("envelope-declined-notice")), None, StatusCode::OK).await,
        Err(AppError::Invalid { .. }) => {
            external_page(&s, &c, &token, None, Some(t.t("envelope-error-reason")), StatusCode::UNPROCESSABLE_ENTITY)
                .await
        }
        Err(AppError::WrongState(_)) => {
            external_page(&s, &c, &token, None, Some(t.t("envelope-error-turn")), StatusCode::CONFLICT).await
        }
        Err(e) => failure(&c, e),
    }
}

/// `3.svg` → 3 (pages count from 1).
fn page_number(file: &str) -> Option<usize> {
    file.strip_suffix(".svg").and_then(|n| n.parse::<usize>().ok()).filter(|n| *n >= 1)
}

fn svg_response(svg: String) -> Response {
    let mut r = svg.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/svg+xml"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Drawn from an uploaded PDF: nothing in it may run or load.
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; img-src data:; style-src 'unsafe-inline'"),
    );
    r
}
