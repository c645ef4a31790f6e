//! `/api/v1` routes of payments and loans (finance officers), and the
//! dossier-level ones (bank details, repayments, debit authorization,
//! duplicate flags, delivery log).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::{get, post};
use guichet_app::PayFormat;
use guichet_core::BankDetails;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::AppState;
use crate::api::{Route, json_of, query, read_limited, route, schema};
use crate::extract::{ApiResult, Auth, Body};

type Json = axum::Json<serde_json::Value>;

pub fn routes() -> Vec<Route> {
    vec![
        route!(
            "get",
            "/api/v1/payments/ready",
            "Approved dossiers whose payment may go out, and those held back (why). Finance officers.",
            auth = true,
            resp = serde_json::Value,
            get(ready)
        ),
        route!(
            "get",
            "/api/v1/payments/batches",
            "The latest payment batches.",
            auth = true,
            resp = serde_json::Value,
            get(batches)
        ),
        route!(
            "post",
            "/api/v1/payments/batches",
            "Build a batch from the ready dossiers (all, or `dossiers`).",
            auth = true,
            body = BatchBody,
            resp = serde_json::Value,
            post(create_batch)
        ),
        route!(
            "get",
            "/api/v1/payments/batches/{id}",
            "A batch and its payments.",
            auth = true,
            resp = serde_json::Value,
            get(batch)
        ),
        route!(
            "post",
            "/api/v1/payments/batches/{id}/approve",
            "Approve a batch (a second finance officer: never who built it).",
            auth = true,
            resp = serde_json::Value,
            post(approve)
        ),
        route!(
            "post",
            "/api/v1/payments/batches/{id}/file",
            "Write the bank file of an approved batch (`format`: pain001 or cpa005); the first one marks the batch sent and tells the payees. A POST: it changes the batch.",
            auth = true,
            body = FormatBody,
            resp = serde_json::Value,
            post(file)
        ),
        route!(
            "post",
            "/api/v1/payments/returns",
            "Apply the bank's returns (raw body: an ISO 20022 pain.002.001.03 status report, or a CSV with reference, status, reason). All or nothing.",
            auth = true,
            resp = serde_json::Value,
            post(returns)
        ),
        route!(
            "get",
            "/api/v1/loans",
            "Loans not fully repaid, soonest due first (`?within=DAYS`).",
            auth = true,
            resp = serde_json::Value,
            get(loans)
        ),
        route!(
            "post",
            "/api/v1/loans/debits",
            "A batch of pre-authorized debits for the loans due.",
            auth = true,
            body = DebitBody,
            resp = serde_json::Value,
            post(debits)
        ),
        route!(
            "get",
            "/api/v1/dossiers/{id}/payments",
            "A dossier's payments.",
            auth = true,
            resp = serde_json::Value,
            get(dossier_payments)
        ),
        route!(
            "get",
            "/api/v1/dossiers/{id}/mails",
            "What was mailed about a dossier, to whom, and whether it was delivered.",
            auth = true,
            resp = serde_json::Value,
            get(dossier_mails)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/bank-details",
            "Propose new bank details for the payee (they wait for a second employee).",
            auth = true,
            body = BankBody,
            resp = serde_json::Value,
            post(propose_bank)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/bank-details/confirm",
            "Confirm proposed bank details (not who proposed them).",
            auth = true,
            body = VersionBody,
            resp = serde_json::Value,
            post(confirm_bank)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/repayments",
            "Record a loan repayment received.",
            auth = true,
            body = RepaymentBody,
            resp = serde_json::Value,
            post(repayment)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/debit-authorization",
            "The borrower authorizes pre-authorized debits from an account.",
            auth = true,
            body = BankBody,
            resp = serde_json::Value,
            post(authorize_debit)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/duplicates/clear",
            "A case worker clears the possible-duplicate flags, with a note.",
            auth = true,
            body = NoteBody,
            resp = serde_json::Value,
            post(clear_duplicates)
        ),
    ]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchBody {
    /// Only these dossiers (default: every ready one).
    #[serde(default)]
    pub dossiers: Option<Vec<String>>,
    /// YYYY-MM-DD; default today.
    #[serde(default)]
    pub execution_date: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DebitBody {
    #[serde(default = "thirty")]
    pub within: i64,
    pub execution_date: String,
}

fn thirty() -> i64 {
    30
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BankBody {
    pub version: Option<i64>,
    pub institution: String,
    pub transit: String,
    pub account: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RepaymentBody {
    pub version: Option<i64>,
    /// Cents.
    pub amount: i64,
    pub reference: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    pub version: Option<i64>,
    pub note: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FormatBody {
    /// `pain001` (ISO 20022) or `cpa005` (Payments Canada Standard 005).
    pub format: String,
}

#[derive(Debug, Deserialize)]
pub struct WithinQuery {
    pub within: Option<i64>,
}

type Q<T> = Result<Query<T>, axum::extract::rejection::QueryRejection>;

async fn ready(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    json_of(s.app.payments_ready(&c).await?)
}

async fn batches(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    json_of(s.app.batches(&c).await?)
}

async fn create_batch(State(s): State<AppState>, Auth(c): Auth, Body(b): Body<BatchBody>) -> ApiResult<Json> {
    json_of(s.app.create_batch(&c, b.dossiers.as_deref(), b.execution_date.as_deref()).await?)
}

async fn batch(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    json_of(s.app.batch_view(&c, &id).await?)
}

async fn approve(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    json_of(s.app.approve_batch(&c, &id).await?)
}

/// A bank file as an attachment, named after the batch.
pub(crate) fn attachment(bytes: Vec<u8>, name: &str, media: &str) -> Response {
    let media =
        if media == "application/xml" { "application/xml; charset=utf-8" } else { "text/plain; charset=us-ascii" };
    crate::api::file_response(bytes, media, Some(format!("attachment; filename=\"{name}\"")))
}

async fn file(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<FormatBody>,
) -> ApiResult<Response> {
    let format = PayFormat::parse(&b.format)?;
    let (bytes, name, media) = s.app.export_batch(&c, &id, format).await?;
    notify_in_background(&s);
    Ok(attachment(bytes, &name, &media))
}

/// Queues the "payment sent" notices of the batches whose file just went
/// out, after the response (the service's minute sweep catches a crash).
pub(crate) fn notify_in_background(s: &AppState) {
    let app = s.app.clone();
    tokio::spawn(async move {
        match app.notify_exported_batches().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(batches = n, "payment notices queued"),
            Err(e) => tracing::warn!(error = %e, "payment notices not queued yet; the sweep retries"),
        }
    });
}

async fn returns(
    State(s): State<AppState>,
    Auth(c): Auth,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let data = read_limited(body, s.app.config.max_upload, declared).await?;
    json_of(s.app.import_returns(&c, &data).await?)
}

async fn loans(State(s): State<AppState>, Auth(c): Auth, q: Q<WithinQuery>) -> ApiResult<Json> {
    json_of(s.app.loans_due(&c, query(q)?.within).await?)
}

async fn debits(State(s): State<AppState>, Auth(c): Auth, Body(b): Body<DebitBody>) -> ApiResult<Json> {
    json_of(s.app.create_debit_batch(&c, b.within, &b.execution_date).await?)
}

async fn dossier_payments(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    json_of(s.app.dossier_payments(&c, &id).await?)
}

async fn dossier_mails(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    json_of(s.app.dossier_mails(&c, &id).await?)
}

fn details(b: &BankBody) -> BankDetails {
    BankDetails { institution: b.institution.clone(), transit: b.transit.clone(), account: b.account.clone() }
}

async fn propose_bank(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<BankBody>,
) -> ApiResult<Json> {
    json_of(s.app.propose_bank_change(&c, &id, b.version, details(&b)).await?)
}

async fn confirm_bank(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<VersionBody>,
) -> ApiResult<Json> {
    json_of(s.app.confirm_bank_change(&c, &id, b.version).await?)
}

async fn repayment(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<RepaymentBody>,
) -> ApiResult<Json> {
    json_of(s.app.record_repayment(&c, &id, b.version, b.amount, b.reference).await?)
}

async fn authorize_debit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<BankBody>,
) -> ApiResult<Json> {
    json_of(s.app.authorize_debit(&c, &id, b.version, details(&b)).await?)
}

async fn clear_duplicates(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<NoteBody>,
) -> ApiResult<Json> {
    json_of(s.app.clear_duplicate_flags(&c, &id, b.version, b.note).await?)
}
