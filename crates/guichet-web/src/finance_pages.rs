//! The finance officers' screens: the payment queue (build a batch), the
//! batches (approve as a second officer, download the bank files), the
//! bank's returns, and the loans to be repaid.

#![allow(clippy::result_large_err)]

use askama::Template;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use guichet_app::{AppError, BatchView, Caller, LoanLine, PayFormat, ReadyPayment};
use guichet_store::BatchRow;

use crate::AppState;
use crate::i18n::Tr;
use crate::pages::{Ctx, Nav, Pairs, csrf_ok, ctx, failure, first, html, message, see_other, to_login};

/// Lines shown of each list (a batch may hold 100,000 payments; it is
/// built from all of them or from those ticked among these).
const SHOWN: usize = 200;

#[derive(Template)]
#[template(path = "finance.html")]
struct FinancePage {
    t: Tr,
    nav: Nav,
    /// The first SHOWN of each list, and how many there are in all.
    ready: Vec<ReadyPayment>,
    held: Vec<ReadyPayment>,
    ready_count: usize,
    ready_total: i64,
    held_count: usize,
    batches: Vec<BatchRow>,
    error: Option<String>,
    notice: Option<String>,
    today: String,
}

#[derive(Template)]
#[template(path = "batch.html")]
struct BatchPage {
    t: Tr,
    nav: Nav,
    bv: BatchView,
    state_label: String,
    /// Whether this officer may approve it (not who built it).
    may_approve: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "loans.html")]
struct LoansPage {
    t: Tr,
    nav: Nav,
    loans: Vec<LoanLine>,
    total: i64,
}

fn finance(c: &Ctx) -> Result<Caller, Response> {
    let Some(caller) = c.caller.clone() else { return Err(to_login(&c.nav.path)) };
    if caller.may(guichet_core::Action::Pay, None).is_err() {
        return Err(message(c, StatusCode::FORBIDDEN, "page-forbidden", "page-not-found-text"));
    }
    Ok(caller)
}

/// [`finance`] for a form: the session's CSRF token must come with it.
fn finance_post(c: &Ctx, token: Option<&str>) -> Result<Caller, Response> {
    let caller = finance(c)?;
    if !csrf_ok(c, token) {
        return Err(message(c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale"));
    }
    Ok(caller)
}

async fn queue_page(s: &AppState, c: &Ctx, caller: &Caller, error: Option<String>, notice: Option<String>) -> Response {
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let list = match s.app.payments_ready(caller).await {
        Ok(l) => l,
        Err(e) => return failure(c, e),
    };
    let batches = match s.app.batches(caller).await {
        Ok(b) => b,
        Err(e) => return failure(c, e),
    };
    let (ready, held): (Vec<_>, Vec<_>) = list.into_iter().partition(|l| l.blocked.is_none());
    let (ready_count, held_count) = (ready.len(), held.len());
    let ready_total = ready.iter().map(|r| r.amount).sum();
    let ready = ready.into_iter().take(SHOWN).collect();
    let held = held.into_iter().take(SHOWN).collect();
    let today = s.app.local_date(s.app.now()).map(|d| d.to_string()).unwrap_or_default();
    let page = FinancePage {
        t: c.t,
        nav: c.nav.clone(),
        ready,
        held,
        ready_count,
        ready_total,
        held_count,
        batches,
        error,
        notice,
        today,
    };
    html(status, &page)
}

pub(crate) async fn queue(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    queue_page(&s, &c, &caller, None, None).await
}

/// The message of a refused action, shown on the page it came from.
fn refusal(c: &Ctx, e: &AppError) -> Option<String> {
    match e {
        AppError::Invalid { message, .. } | AppError::WrongState(message) | AppError::Forbidden(message) => {
            Some(c.t.t1("finance-refused", "why", message))
        }
        AppError::Conflict { .. } => Some(c.t.t("error-stale")),
        _ => None,
    }
}

pub(crate) async fn create_batch(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance_post(&c, first(&f, "_csrf")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let chosen: Vec<String> = f.iter().filter(|(k, _)| k == "dossier").map(|(_, v)| v.clone()).collect();
    let all = first(&f, "scope") == Some("all");
    if !all && chosen.is_empty() {
        return queue_page(&s, &c, &caller, Some(c.t.t("finance-choose")), None).await;
    }
    let date = first(&f, "execution_date").filter(|d| !d.is_empty());
    let only = (!all).then_some(chosen.as_slice());
    match s.app.create_batch(&caller, only, date).await {
        Ok(b) => see_other(&format!("/finances/lots/{}", b.id)),
        Err(e) => match refusal(&c, &e) {
            Some(m) => queue_page(&s, &c, &caller, Some(m), None).await,
            None => failure(&c, e),
        },
    }
}

async fn batch_page(s: &AppState, c: &Ctx, caller: &Caller, id: &str, error: Option<String>) -> Response {
    match s.app.batch_view(caller, id).await {
        Ok(view) => {
            let may_approve = view.batch.state == "created" && view.batch.created_by != caller.id();
            let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            let state_label = c.t.t(&format!("batch-state-{}", view.batch.state));
            html(status, &BatchPage { t: c.t, nav: c.nav.clone(), bv: view, state_label, may_approve, error })
        }
        Err(e) => failure(c, e),
    }
}

pub(crate) async fn batch(State(s): State<AppState>, headers: HeaderMap, uri: Uri, Path(id): Path<String>) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    batch_page(&s, &c, &caller, &id, None).await
}

pub(crate) async fn approve(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance_post(&c, first(&f, "_csrf")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.app.approve_batch(&caller, &id).await {
        Ok(_) => see_other(&format!("/finances/lots/{id}")),
        Err(e) => match refusal(&c, &e) {
            Some(m) => batch_page(&s, &c, &caller, &id, Some(m)).await,
            None => failure(&c, e),
        },
    }
}

/// Writes a bank file (a POST with the CSRF token: the first file marks the
/// batch sent and tells the payees, so a link must not do it).
pub(crate) async fn file(
    State(s): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<String>,
    axum::Form(f): axum::Form<Pairs>,
) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance_post(&c, first(&f, "_csrf")) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let result = match PayFormat::parse(first(&f, "format").unwrap_or_default()) {
        Ok(format) => s.app.export_batch(&caller, &id, format).await,
        Err(e) => Err(e),
    };
    match result {
        Ok((bytes, name, media)) => {
            crate::payments_api::notify_in_background(&s);
            crate::payments_api::attachment(bytes, &name, &media)
        }
        Err(e) => match refusal(&c, &e) {
            Some(m) => batch_page(&s, &c, &caller, &id, Some(m)).await,
            None => failure(&c, e),
        },
    }
}

pub(crate) async fn returns(State(s): State<AppState>, headers: HeaderMap, uri: Uri, multipart: Multipart) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    let mut form = match crate::extract::read_form(multipart, &["file"], s.app.config.max_upload).await {
        Ok(f) => f,
        Err(why) => return queue_page(&s, &c, &caller, Some(c.t.t1("finance-refused", "why", &why)), None).await,
    };
    if !csrf_ok(&c, Some(form.field("_csrf"))) {
        return message(&c, StatusCode::FORBIDDEN, "page-forbidden", "error-stale");
    }
    if form.too_large {
        let limit = s.app.config.max_upload.to_string();
        return queue_page(&s, &c, &caller, Some(c.t.t1("finance-too-large", "limit", &limit)), None).await;
    }
    let data = form.take_file("file");
    if data.is_empty() {
        return queue_page(&s, &c, &caller, Some(c.t.t("finance-returns-empty")), None).await;
    }
    match s.app.import_returns(&caller, &data).await {
        Ok(r) => {
            let mut args = fluent_bundle::FluentArgs::new();
            args.set("paid", r.paid);
            args.set("returned", r.returned);
            args.set("repayments", r.repayments);
            args.set("pending", r.pending);
            let notice = c.t.t2("finance-returns-done", &args);
            queue_page(&s, &c, &caller, None, Some(notice)).await
        }
        Err(e) => match refusal(&c, &e) {
            Some(m) => queue_page(&s, &c, &caller, Some(m), None).await,
            None => failure(&c, e),
        },
    }
}

pub(crate) async fn loans(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let caller = match finance(&c) {
        Ok(x) => x,
        Err(r) => return r,
    };
    match s.app.loans_due(&caller, None).await {
        Ok(loans) => {
            let total = loans.iter().map(|l| l.balance).sum();
            html(StatusCode::OK, &LoansPage { t: c.t, nav: c.nav.clone(), loans, total })
        }
        Err(e) => failure(&c, e),
    }
}

#[derive(Template)]
#[template(path = "mailbox.html")]
struct MailboxPage {
    t: Tr,
    nav: Nav,
    /// (subject, body, when)
    mails: Vec<(String, String, String)>,
}

/// The demo's mailbox: the signed-in account's own mail.
pub(crate) async fn mailbox(State(s): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let c = ctx(&s, &headers, &uri).await;
    let Some(caller) = c.caller.clone() else { return to_login(&c.nav.path) };
    match s.app.my_mails(&caller).await {
        Ok(list) => {
            let mails = list.into_iter().map(|(subject, body, at)| (subject, body, c.t.date(at))).collect();
            html(StatusCode::OK, &MailboxPage { t: c.t, nav: c.nav.clone(), mails })
        }
        Err(e) => failure(&c, e),
    }
}
