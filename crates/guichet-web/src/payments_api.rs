//! `/api/v1` routes of payments and loans (finance officers), and the
//! dossier-level ones (bank details, repayments, debit authorization,
//! duplicate flags, delivery log).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use guichet_app::PayFormat;
use guichet_core::BankDetails;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::AppState;
use crate::api::{Route, json_of, query, read_limited, schema};
use crate::extract::{ApiResult, Auth, Body};

type Json = axum::Json<serde_json::Value>;

pub fn routes() -> Vec<Route> {
    let r = |method, path, summary, body: Option<fn(&mut schemars::SchemaGenerator) -> schemars::Schema>, handler| {
        Route { method, path, summary, auth: true, body, response: Some(schema::<serde_json::Value>), handler }
    };
    vec![
        r(
            "get",
            "/api/v1/payments/ready",
            "Approved dossiers whose payment may go out, and those held back (why). Finance officers.",
            None,
            get(ready),
        ),
        r("get", "/api/v1/payments/batches", "The latest payment batches.", None, get(batches)),
        r(
            "post",
            "/api/v1/payments/batches",
            "Build a batch from the ready dossiers (all, or `dossiers`).",
            Some(schema::<BatchBody>),
            post(create_batch),
        ),
        r("get", "/api/v1/payments/batches/{id}", "A batch and its payments.", None, get(batch)),
        r(
            "post",
            "/api/v1/payments/batches/{id}/approve",
            "Approve a batch (a second finance officer: never who built it).",
            None,
            post(approve),
        ),
        r(
            "post",
            "/api/v1/payments/batches/{id}/file",
            "Write the bank file of an approved batch (`format`: pain001 or cpa005); the first one marks the batch sent and tells the payees. A POST: it changes the batch.",
            Some(schema::<FormatBody>),
            post(file),
        ),
        r(
            "post",
            "/api/v1/payments/returns",
            "Apply the bank's returns (raw CSV body: reference, status, reason). All or nothing.",
            None,
            post(returns),
        ),
        r("get", "/api/v1/loans", "Loans not fully repaid, soonest due first (`?within=DAYS`).", None, get(loans)),
        r(
            "post",
            "/api/v1/loans/debits",
            "A batch of pre-authorized debits for the loans due.",
            Some(schema::<DebitBody>),
            post(debits),
        ),
        r("get", "/api/v1/dossiers/{id}/payments", "A dossier's payments.", None, get(dossier_payments)),
        r(
            "get",
            "/api/v1/dossiers/{id}/mails",
            "What was mailed about a dossier, to whom, and whether it was delivered.",
            None,
            get(dossier_mails),
        ),
        r(
            "post",
            "/api/v1/dossiers/{id}/bank-details",
            "Propose new bank details for the payee (they wait for a second employee).",
            Some(schema::<BankBody>),
            post(propose_bank),
        ),
        r(
            "post",
            "/api/v1/dossiers/{id}/bank-details/confirm",
            "Confirm proposed bank details (not who proposed them).",
            Some(schema::<VersionBody>),
            post(confirm_bank),
        ),
        r(
            "post",
            "/api/v1/dossiers/{id}/repayments",
            "Record a loan repayment received.",
            Some(schema::<RepaymentBody>),
            post(repayment),
        ),
        r(
            "post",
            "/api/v1/dossiers/{id}/debit-authorization",
            "The borrower authorizes pre-authorized debits from an account.",
            Some(schema::<BankBody>),
            post(authorize_debit),
        ),
        r(
            "post",
            "/api/v1/dossiers/{id}/duplicates/clear",
            "A case worker clears the possible-duplicate flags, with a note.",
            Some(schema::<NoteBody>),
            post(clear_duplicates),
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

/// The file as an attachment, named after the batch.
pub(crate) fn attachment(bytes: Vec<u8>, name: &str, media: &str) -> Response {
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    let media =
        if media == "application/xml" { "application/xml; charset=utf-8" } else { "text/plain; charset=us-ascii" };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(media));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn file(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<FormatBody>,
) -> ApiResult<Response> {
    let format = PayFormat::parse(&b.format)?;
    let (bytes, name, media) = s.app.export_batch(&c, &id, format).await?;
    Ok(attachment(bytes, &name, &media))
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
