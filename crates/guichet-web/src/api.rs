//! The route table of `/api/v1` and its handlers. The router and the
//! OpenAPI document are both built from [`routes`].

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, patch, post};
use guichet_app::{AppError, DecisionInput, DocumentUpload, DossierView, ListFilter, LoginOutcome, ProgramSummary};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use crate::AppState;
use crate::extract::{ApiError, ApiResult, Auth, Body, cookie};

/// One route: what the router serves and the OpenAPI document says.
#[derive(Debug)]
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub summary: &'static str,
    /// Whether a session or an API token is needed.
    pub auth: bool,
    pub body: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub response: Option<fn(&mut SchemaGenerator) -> Schema>,
    pub handler: MethodRouter<AppState>,
}

pub(crate) fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

macro_rules! route {
    ($m:literal, $p:literal, $s:literal, auth = $a:literal, body = $b:ty, resp = $r:ty, $h:expr) => {
        Route {
            method: $m,
            path: $p,
            summary: $s,
            auth: $a,
            body: Some(schema::<$b>),
            response: Some(schema::<$r>),
            handler: $h,
        }
    };
    ($m:literal, $p:literal, $s:literal, auth = $a:literal, resp = $r:ty, $h:expr) => {
        Route { method: $m, path: $p, summary: $s, auth: $a, body: None, response: Some(schema::<$r>), handler: $h }
    };
}

pub(crate) use route;

/// Every route of the service.
pub fn routes() -> Vec<Route> {
    vec![
        route!(
            "get",
            "/healthz",
            "Liveness: the process answers.",
            auth = false,
            resp = serde_json::Value,
            get(healthz)
        ),
        route!(
            "get",
            "/readyz",
            "Readiness: the database answers.",
            auth = false,
            resp = serde_json::Value,
            get(readyz)
        ),
        route!("get", "/metrics", "Prometheus metrics.", auth = false, resp = String, get(metrics)),
        route!(
            "get",
            "/api/v1/openapi.json",
            "This document.",
            auth = false,
            resp = serde_json::Value,
            get(openapi_doc)
        ),
        route!(
            "post",
            "/api/v1/auth/register",
            "Open a citizen account (a verification link is emailed).",
            auth = false,
            body = RegisterBody,
            resp = serde_json::Value,
            post(register)
        ),
        route!(
            "post",
            "/api/v1/auth/verify",
            "Confirm an email address with the emailed token.",
            auth = false,
            body = TokenBody,
            resp = serde_json::Value,
            post(verify)
        ),
        route!(
            "post",
            "/api/v1/auth/login",
            "Sign in: sets the session cookie and returns the CSRF token.",
            auth = false,
            body = LoginBody,
            resp = LoginOutcome,
            post(login)
        ),
        route!(
            "post",
            "/api/v1/auth/logout",
            "Sign out (ends the session).",
            auth = true,
            resp = serde_json::Value,
            post(logout)
        ),
        route!(
            "post",
            "/api/v1/auth/password-reset",
            "Email a password reset link (always answers 202).",
            auth = false,
            body = EmailBody,
            resp = serde_json::Value,
            post(reset_request)
        ),
        route!(
            "post",
            "/api/v1/auth/password-reset/confirm",
            "Choose a new password with the emailed token.",
            auth = false,
            body = ResetBody,
            resp = serde_json::Value,
            post(reset_confirm)
        ),
        route!("get", "/api/v1/me", "Who am I.", auth = true, resp = serde_json::Value, get(me)),
        route!(
            "post",
            "/api/v1/me/tokens",
            "Create an API token (bearer) for scripts.",
            auth = true,
            body = TokenRequest,
            resp = serde_json::Value,
            post(api_token)
        ),
        route!(
            "post",
            "/api/v1/me/totp",
            "Turn on two-factor codes (employees).",
            auth = true,
            body = TotpBody,
            resp = serde_json::Value,
            post(totp)
        ),
        route!("get", "/api/v1/programs", "Published programs (current versions).", auth = false, resp = Vec<ProgramSummary>, get(programs)),
        route!(
            "post",
            "/api/v1/programs",
            "Publish a program version (body: the TOML file; program managers).",
            auth = true,
            resp = ProgramSummary,
            post(publish)
        ),
        route!(
            "get",
            "/api/v1/programs/{id}",
            "One program: questions, rules, window.",
            auth = false,
            resp = ProgramSummary,
            get(program)
        ),
        route!(
            "get",
            "/api/v1/dossiers",
            "My dossiers (citizens) or the queue (staff), keyset-paginated.",
            auth = true,
            resp = serde_json::Value,
            get(list)
        ),
        route!(
            "post",
            "/api/v1/dossiers",
            "Start an application (optionally with answers, optionally submitted).",
            auth = true,
            body = CreateBody,
            resp = DossierView,
            post(create)
        ),
        route!("get", "/api/v1/dossiers/{id}", "A dossier.", auth = true, resp = DossierView, get(dossier)),
        route!(
            "patch",
            "/api/v1/dossiers/{id}/answers",
            "Answer questions (merged; null removes an answer).",
            auth = true,
            body = AnswersBody,
            resp = DossierView,
            patch(answers)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/documents",
            "Upload a PDF, JPEG or PNG (raw body; ?name=&question=&version=).",
            auth = true,
            resp = DossierView,
            post(upload)
        ),
        route!(
            "get",
            "/api/v1/dossiers/{id}/documents/{sha256}",
            "A document's bytes.",
            auth = true,
            resp = String,
            get(document)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/submit",
            "Submit the application.",
            auth = true,
            body = VersionBody,
            resp = DossierView,
            post(submit)
        ),
        route!(
            "get",
            "/api/v1/dossiers/{id}/evaluation",
            "Eligibility with its explanation (?lang=fr|en).",
            auth = true,
            resp = serde_json::Value,
            get(evaluation)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/information-requests",
            "Ask the applicant for information (case workers).",
            auth = true,
            body = InfoRequestBody,
            resp = DossierView,
            post(request_information)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/information",
            "Provide the information asked for.",
            auth = true,
            body = MessageBody,
            resp = DossierView,
            post(provide_information)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/decision",
            "Approve or refuse (case workers).",
            auth = true,
            body = DecisionBody,
            resp = DossierView,
            post(decide)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/review-request",
            "Ask for a review of the decision.",
            auth = true,
            body = ReasonBody,
            resp = DossierView,
            post(request_review)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/review",
            "Decide the review (reviewers; not the first decider).",
            auth = true,
            body = DecisionBody,
            resp = DossierView,
            post(review)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/assignment",
            "Take the dossier (or release it: take = false) (case workers, reviewers).",
            auth = true,
            body = AssignBody,
            resp = DossierView,
            post(assign)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/withdraw",
            "Withdraw the application.",
            auth = true,
            body = ReasonBody,
            resp = DossierView,
            post(withdraw)
        ),
        route!(
            "get",
            "/api/v1/dossiers/{id}/events",
            "The dossier's events (its audit trail).",
            auth = true,
            resp = serde_json::Value,
            get(events)
        ),
        route!("get", "/api/v1/users", "Accounts (administrators).", auth = true, resp = serde_json::Value, get(users)),
        route!(
            "post",
            "/api/v1/users",
            "Invite an employee (administrators).",
            auth = true,
            body = InviteBody,
            resp = serde_json::Value,
            post(invite)
        ),
        route!(
            "patch",
            "/api/v1/users/{id}",
            "Change roles or deactivate (administrators).",
            auth = true,
            body = UserPatch,
            resp = serde_json::Value,
            patch(update_user)
        ),
        route!(
            "get",
            "/api/v1/audit/verify",
            "Re-check every hash chain and checkpoint (administrators).",
            auth = true,
            resp = serde_json::Value,
            get(audit_verify)
        ),
        route!(
            "post",
            "/api/v1/verify",
            "Validate every signature of a PDF (the request body, application/pdf): who signed, when, with which certificate, what changed after each signature. No sign-in needed.",
            auth = false,
            resp = guichet_app::Verification,
            post(verify_pdf)
        ),
        route!(
            "get",
            "/pki/ca.pem",
            "The organization's root and issuing CA certificates (PEM): the trust anchors of its signatures.",
            auth = false,
            resp = String,
            get(ca_pem)
        ),
        route!(
            "get",
            "/pki/crl",
            "The issuing CA's certificate revocation list (DER).",
            auth = false,
            resp = String,
            get(crl)
        ),
        route!(
            "post",
            "/pki/ocsp",
            "OCSP responder for the issuing CA's certificates (RFC 6960; application/ocsp-request).",
            auth = false,
            resp = String,
            post(ocsp)
        ),
        route!(
            "post",
            "/pki/tsa",
            "RFC 3161 timestamp authority (application/timestamp-query).",
            auth = false,
            resp = String,
            post(tsa)
        ),
        route!(
            "get",
            "/api/v1/me/certificates",
            "My personal signing certificates.",
            auth = true,
            resp = Vec<guichet_app::CertificateView>,
            get(my_certificates)
        ),
        route!(
            "post",
            "/api/v1/me/certificates",
            "Issue (or renew) my personal signing certificate; its key is locked under the passphrase (employees).",
            auth = true,
            body = PassphraseBody,
            resp = guichet_app::CertificateView,
            post(issue_certificate)
        ),
        route!(
            "post",
            "/api/v1/me/certificates/import",
            "Bring my certificate from the organization's own CA (employees): multipart/form-data with `pkcs12` (the .p12 file), `password` (the file's) and `passphrase` (my signing passphrase, which locks the key here). It must validate to a trusted authority.",
            auth = true,
            resp = guichet_app::CertificateView,
            post(import_certificate)
        ),
        route!(
            "post",
            "/api/v1/me/certificates/token",
            "Register my key on the server's PKCS#11 module (HSM): my certificate in PEM (then its issuers), the token and key labels, and my PIN, which I type again to sign (employees).",
            auth = true,
            body = TokenRegistration,
            resp = guichet_app::CertificateView,
            post(register_token)
        ),
        route!(
            "get",
            "/api/v1/users/{id}/certificates",
            "A user's signing certificates (administrators).",
            auth = true,
            resp = Vec<guichet_app::CertificateView>,
            get(user_certificates)
        ),
        route!(
            "post",
            "/api/v1/certificates/{serial}/revoke",
            "Revoke a certificate (its holder or an administrator).",
            auth = true,
            body = RevokeBody,
            resp = serde_json::Value,
            post(revoke_certificate)
        ),
        route!(
            "post",
            "/api/v1/dossiers/{id}/agreement",
            "Generate and send the dossier's agreement (again, after a decline or a void).",
            auth = true,
            resp = guichet_app::EnvelopeView,
            post(send_agreement)
        ),
        route!(
            "get",
            "/api/v1/dossiers/{id}/envelopes",
            "The envelopes (agreements) of a dossier.",
            auth = true,
            resp = Vec<guichet_app::EnvelopeView>,
            get(dossier_envelopes)
        ),
        route!(
            "post",
            "/api/v1/envelopes",
            "Send a PDF for signature (employees): multipart/form-data with a `document` part (the PDF) and an `envelope` part (JSON: title, message, lang, expires_in_days, recipients in signing groups).",
            auth = true,
            body = guichet_app::EnvelopeInput,
            resp = guichet_app::EnvelopeView,
            post(create_envelope)
        ),
        route!(
            "post",
            "/api/v1/templates",
            "Save a template for repeated contracts (Typst source with merge fields, the signers' places); it must render (employees).",
            auth = true,
            body = guichet_app::TemplateInput,
            resp = guichet_app::TemplateView,
            post(create_template)
        ),
        route!(
            "get",
            "/api/v1/templates",
            "The templates (employees).",
            auth = true,
            resp = Vec<guichet_app::TemplateView>,
            get(templates)
        ),
        route!(
            "get",
            "/api/v1/templates/{id}",
            "A template, with the columns its bulk-send CSV needs.",
            auth = true,
            resp = guichet_app::TemplateView,
            get(template)
        ),
        route!(
            "post",
            "/api/v1/templates/{id}/send",
            "Send one envelope from a template: the merge fields' values and the signers' addresses.",
            auth = true,
            body = guichet_app::TemplateSend,
            resp = guichet_app::EnvelopeView,
            post(send_template)
        ),
        route!(
            "post",
            "/api/v1/templates/{id}/bulk",
            "Bulk send: one envelope per row of the CSV body (text/csv; header as the template says). Every row is checked first: any error, and nothing is sent.",
            auth = true,
            resp = guichet_app::BulkReport,
            post(bulk_send)
        ),
        route!(
            "get",
            "/api/v1/signing/{token}",
            "What an external signer's emailed link opens (no account needed).",
            auth = false,
            resp = guichet_app::ExternalView,
            get(external_envelope)
        ),
        route!(
            "get",
            "/api/v1/signing/{token}/document",
            "The document, for an external signer.",
            auth = false,
            resp = String,
            get(external_document)
        ),
        route!(
            "post",
            "/api/v1/signing/{token}/code",
            "Email a one-time code to the external signer (one a minute; five wrong codes lock the link).",
            auth = false,
            resp = serde_json::Value,
            post(external_code)
        ),
        route!(
            "post",
            "/api/v1/signing/{token}/sign",
            "Sign as the external signer, with the emailed code.",
            auth = false,
            body = ExternalSignBody,
            resp = guichet_app::EnvelopeView,
            post(external_sign)
        ),
        route!(
            "post",
            "/api/v1/signing/{token}/decline",
            "Decline as the external signer, with a reason.",
            auth = false,
            body = ReasonOnly,
            resp = guichet_app::EnvelopeView,
            post(external_decline)
        ),
        route!(
            "get",
            "/api/v1/envelopes",
            "Envelopes waiting for my signature.",
            auth = true,
            resp = Vec<guichet_app::EnvelopeView>,
            get(envelopes_awaiting)
        ),
        route!(
            "get",
            "/api/v1/envelopes/{id}",
            "An envelope.",
            auth = true,
            resp = guichet_app::EnvelopeView,
            get(envelope)
        ),
        route!(
            "get",
            "/api/v1/envelopes/{id}/document",
            "The envelope's document as PDF (`?file=current` by default, `original`, or `completion`).",
            auth = true,
            resp = String,
            get(envelope_document)
        ),
        route!(
            "post",
            "/api/v1/envelopes/{id}/recipients/{index}/sign",
            "Sign as this recipient (employees: with the signing passphrase).",
            auth = true,
            body = SignBody,
            resp = guichet_app::EnvelopeView,
            post(sign_envelope)
        ),
        route!(
            "post",
            "/api/v1/envelopes/{id}/recipients/{index}/decline",
            "Decline to sign, with a reason (the envelope ends).",
            auth = true,
            body = ReasonOnly,
            resp = guichet_app::EnvelopeView,
            post(decline_envelope)
        ),
        route!(
            "post",
            "/api/v1/envelopes/{id}/recipients/{index}/delegate",
            "Hand my signature to another employee (employees and signing officers).",
            auth = true,
            body = DelegateBody,
            resp = guichet_app::EnvelopeView,
            post(delegate_envelope)
        ),
        route!(
            "post",
            "/api/v1/envelopes/{id}/void",
            "Void an open envelope (its sender, the dossier's case workers, administrators).",
            auth = true,
            body = ReasonOnly,
            resp = guichet_app::EnvelopeView,
            post(void_envelope)
        ),
    ]
    .into_iter()
    .chain(crate::payments_api::routes())
    .collect()
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassphraseBody {
    pub passphrase: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRegistration {
    /// PEM: the certificate, then its issuers.
    pub certificate: String,
    pub token: String,
    pub key_label: String,
    pub pin: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// `unspecified`, `key_compromise`, `affiliation_changed`, `superseded`, `cessation_of_operation`.
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// The signing passphrase (employees signing with their certificate).
    pub passphrase: Option<String>,
    /// The signer read the whole document and agrees to sign it.
    pub agree: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegateBody {
    /// The colleague's account address.
    pub email: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExternalSignBody {
    /// The one-time code emailed to the signer.
    pub code: String,
    /// The signer read the whole document and agrees to sign it.
    pub agree: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonOnly {
    pub reason: String,
}

#[derive(Debug, Deserialize)]
pub struct FileQuery {
    pub file: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    pub email: String,
    pub password: String,
    pub name: String,
    /// `fr` (default) or `en`.
    #[serde(default)]
    pub language: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    pub token: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
    /// The 6-digit code, when two-factor codes are on.
    pub totp: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailBody {
    pub email: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResetBody {
    pub token: String,
    pub password: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    /// 1 to 366.
    pub days: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpBody {
    /// Base32 secret (at least 16 bytes).
    pub secret: String,
    pub code: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    pub program: String,
    pub answers: Option<serde_json::Value>,
    #[serde(default)]
    pub submit: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswersBody {
    /// The version you read; a stale one answers 409.
    pub version: Option<i64>,
    pub answers: serde_json::Value,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VersionBody {
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfoRequestBody {
    pub version: Option<i64>,
    pub message: String,
    /// Due date, seconds since 1970.
    pub due: i64,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub version: Option<i64>,
    pub message: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub version: Option<i64>,
    pub reason: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignBody {
    pub version: Option<i64>,
    /// true: take it; false: release it.
    pub take: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    pub version: Option<i64>,
    /// `approved` or `refused`.
    pub outcome: String,
    /// Cents; defaults to the amount the rules computed.
    pub amount: Option<i64>,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub justification: String,
}

impl DecisionBody {
    fn split(self) -> (Option<i64>, DecisionInput) {
        (
            self.version,
            DecisionInput {
                outcome: self.outcome,
                amount: self.amount,
                reasons: self.reasons,
                justification: self.justification,
            },
        )
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteBody {
    pub email: String,
    pub name: String,
    pub roles: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub roles: Option<Vec<String>>,
    pub active: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct UploadQuery {
    pub name: Option<String>,
    pub question: Option<String>,
    pub version: Option<i64>,
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

type Json = axum::Json<serde_json::Value>;

fn ok() -> Json {
    axum::Json(serde_json::json!({"ok": true}))
}

pub(crate) fn json_of<T: serde::Serialize>(v: T) -> ApiResult<Json> {
    to_json(v)
}

fn to_json<T: serde::Serialize>(v: T) -> ApiResult<Json> {
    serde_json::to_value(v).map(axum::Json).map_err(|e| ApiError(AppError::Internal(e.to_string())))
}

pub(crate) fn query<T: serde::de::DeserializeOwned>(
    q: Result<Query<T>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<T> {
    q.map(|Query(v)| v).map_err(|e| ApiError(AppError::invalid("invalid_request", e.body_text())))
}

async fn healthz() -> Json {
    axum::Json(serde_json::json!({"status": "ok"}))
}

async fn readyz(State(s): State<AppState>) -> Response {
    match s.app.store.ping().await {
        Ok(()) => axum::Json(serde_json::json!({"status": "ready"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "database unavailable"})))
                .into_response()
        }
    }
}

async fn metrics(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render()).into_response()
}

async fn openapi_doc() -> Json {
    axum::Json(crate::openapi())
}

async fn register(State(s): State<AppState>, Body(b): Body<RegisterBody>) -> ApiResult<Response> {
    let u = s.app.register(&b.email, &b.password, &b.name, &b.language).await?;
    Ok((StatusCode::CREATED, to_json(u)?).into_response())
}

async fn verify(State(s): State<AppState>, Body(b): Body<TokenBody>) -> ApiResult<Json> {
    s.app.verify_email(&b.token).await?;
    Ok(ok())
}

fn session_cookie(s: &AppState, token: &str, max_age: i64) -> ApiResult<HeaderValue> {
    let secure = if s.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}",
        guichet_app::SESSION_COOKIE
    ))
    .map_err(|e| ApiError(AppError::Internal(e.to_string())))
}

async fn login(State(s): State<AppState>, Body(b): Body<LoginBody>) -> ApiResult<Response> {
    let out = s.app.login(&b.email, &b.password, b.totp.as_deref()).await?;
    let c = session_cookie(&s, &out.token, out.expires_at - s.app.now())?;
    let mut resp = to_json(&out)?.into_response();
    resp.headers_mut().insert(header::SET_COOKIE, c);
    Ok(resp)
}

async fn logout(State(s): State<AppState>, Auth(_): Auth, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(token) = cookie(&headers, guichet_app::SESSION_COOKIE) {
        s.app.logout(&token).await?;
    }
    let mut resp = ok().into_response();
    resp.headers_mut().insert(header::SET_COOKIE, session_cookie(&s, "", 0)?);
    Ok(resp)
}

async fn reset_request(State(s): State<AppState>, Body(b): Body<EmailBody>) -> ApiResult<Response> {
    s.app.request_password_reset(&b.email).await?;
    Ok((StatusCode::ACCEPTED, ok()).into_response())
}

async fn reset_confirm(State(s): State<AppState>, Body(b): Body<ResetBody>) -> ApiResult<Json> {
    s.app.reset_password(&b.token, &b.password).await?;
    Ok(ok())
}

async fn me(Auth(c): Auth) -> ApiResult<Json> {
    to_json(&c.user)
}

async fn api_token(State(s): State<AppState>, Auth(c): Auth, Body(b): Body<TokenRequest>) -> ApiResult<Response> {
    let (token, expires_at) = s.app.create_api_token(&c, &b.name, b.days).await?;
    Ok((StatusCode::CREATED, axum::Json(serde_json::json!({"token": token, "expires_at": expires_at}))).into_response())
}

async fn totp(State(s): State<AppState>, Auth(c): Auth, Body(b): Body<TotpBody>) -> ApiResult<Json> {
    s.app.enable_totp(&c, &b.secret, &b.code).await?;
    Ok(ok())
}

async fn programs(State(s): State<AppState>) -> ApiResult<Json> {
    to_json(s.app.programs().await?)
}

async fn program(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.current_program(&id).await?.summary())
}

async fn publish(
    State(s): State<AppState>,
    Auth(c): Auth,
    body: Result<String, axum::extract::rejection::StringRejection>,
) -> ApiResult<Response> {
    let source = body.map_err(|e| crate::extract::too_large_or(e.body_text()))?;
    let summary = s.app.publish_program(Some(&c), &source).await?;
    Ok((StatusCode::CREATED, to_json(summary)?).into_response())
}

async fn list(
    State(s): State<AppState>,
    Auth(c): Auth,
    q: Result<Query<ListFilter>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json> {
    let f = query(q)?;
    let (items, next) = s.app.dossiers(&c, &f).await?;
    Ok(axum::Json(serde_json::json!({"items": items, "next": next})))
}

async fn create(State(s): State<AppState>, Auth(c): Auth, Body(b): Body<CreateBody>) -> ApiResult<Response> {
    let d = s.app.create_dossier(&c, &b.program, b.answers, b.submit).await?;
    Ok((StatusCode::CREATED, to_json(d)?).into_response())
}

async fn dossier(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.dossier(&c, &id).await?)
}

async fn answers(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<AnswersBody>,
) -> ApiResult<Json> {
    to_json(s.app.answer(&c, &id, b.version, b.answers).await?)
}

async fn upload(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    q: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Json> {
    let q = query(q)?;
    let limit = s.app.config.max_upload;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let bytes = read_limited(body, limit, declared).await?;
    let name = q.name.unwrap_or_else(|| "document".into());
    let d = s.app.upload(&c, &id, q.version, DocumentUpload { name, bytes, question: q.question }).await?;
    to_json(d)
}

/// Reads a body of at most `limit` bytes. A larger one is answered 413;
/// up to [`DRAIN`] bytes past the limit are read and dropped first so that
/// the client, still sending, receives the answer instead of a reset.
pub(crate) async fn read_limited(body: axum::body::Body, limit: usize, declared: Option<usize>) -> ApiResult<Vec<u8>> {
    use futures_util::StreamExt;
    const DRAIN: usize = 64 * 1024 * 1024;
    let too_large = ApiError(AppError::TooLarge { limit });
    if declared.is_some_and(|n| n > limit + DRAIN) {
        return Err(too_large);
    }
    let mut stream = body.into_data_stream();
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit));
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError(AppError::invalid("invalid_request", format!("reading the body: {e}"))))?;
        seen += chunk.len();
        if seen > limit + DRAIN {
            break;
        }
        if seen <= limit {
            out.extend_from_slice(&chunk);
        }
    }
    if seen > limit {
        return Err(too_large);
    }
    Ok(out)
}

async fn document(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((id, sha)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (media, bytes, name) = s.app.document(&c, &id, &sha).await?;
    let safe: String =
        name.chars().map(|ch| if ch.is_ascii_alphanumeric() || ".-_".contains(ch) { ch } else { '_' }).collect();
    let disposition = HeaderValue::from_str(&format!("inline; filename=\"{safe}\""))
        .map_err(|e| ApiError(AppError::Internal(e.to_string())))?;
    let ct = HeaderValue::from_str(&media).map_err(|e| ApiError(AppError::Internal(e.to_string())))?;
    let mut resp = bytes.into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, ct);
    resp.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    resp.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(resp)
}

async fn submit(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<VersionBody>,
) -> ApiResult<Json> {
    to_json(s.app.submit(&c, &id, b.version).await?)
}

async fn evaluation(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    q: Result<Query<LangQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json> {
    let lang = match query(q)?.lang.as_deref() {
        None | Some("fr") => guichet_rules::Lang::Fr,
        Some("en") => guichet_rules::Lang::En,
        Some(other) => {
            return Err(ApiError(AppError::invalid("invalid_request", format!("lang is fr or en, not {other:?}"))));
        }
    };
    Ok(axum::Json(s.app.evaluate(&c, &id, lang).await?))
}

async fn request_information(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<InfoRequestBody>,
) -> ApiResult<Json> {
    to_json(s.app.request_information(&c, &id, b.version, b.message, b.due).await?)
}

async fn provide_information(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<MessageBody>,
) -> ApiResult<Json> {
    to_json(s.app.provide_information(&c, &id, b.version, b.message).await?)
}

async fn decide(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<DecisionBody>,
) -> ApiResult<Json> {
    let (version, input) = b.split();
    to_json(s.app.decide(&c, &id, version, input).await?)
}

async fn request_review(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<ReasonBody>,
) -> ApiResult<Json> {
    to_json(s.app.request_review(&c, &id, b.version, b.reason).await?)
}

async fn review(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<DecisionBody>,
) -> ApiResult<Json> {
    let (version, input) = b.split();
    to_json(s.app.review(&c, &id, version, input).await?)
}

async fn assign(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<AssignBody>,
) -> ApiResult<Json> {
    to_json(s.app.assign(&c, &id, b.version, b.take).await?)
}

async fn withdraw(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<ReasonBody>,
) -> ApiResult<Json> {
    to_json(s.app.withdraw(&c, &id, b.version, b.reason).await?)
}

async fn events(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.dossier_events(&c, &id).await?)
}

async fn users(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    to_json(s.app.users(&c).await?)
}

async fn invite(State(s): State<AppState>, Auth(c): Auth, Body(b): Body<InviteBody>) -> ApiResult<Response> {
    let u = s.app.invite(&c, &b.email, &b.name, &b.roles).await?;
    Ok((StatusCode::CREATED, to_json(u)?).into_response())
}

async fn update_user(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<UserPatch>,
) -> ApiResult<Json> {
    to_json(s.app.update_account(&c, &id, b.roles.as_deref(), b.active).await?)
}

async fn audit_verify(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    c.may(guichet_core::Action::Administer, None)?;
    let key = s.app.checkpoint_public_key();
    let report = s.app.store.verify_audit(key.as_deref()).await.map_err(|e| ApiError(e.into()))?;
    to_json(report)
}

fn bytes(content_type: &'static str, body: Vec<u8>) -> Response {
    file_response(body, content_type, None)
}

/// A file as a response: its type, `nosniff`, and how to show or save it
/// (`Content-Disposition`) when given.
pub(crate) fn file_response(body: Vec<u8>, content_type: &'static str, disposition: Option<String>) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Some(v) = disposition.and_then(|d| HeaderValue::from_str(&d).ok()) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    r
}

async fn verify_pdf(State(s): State<AppState>, headers: HeaderMap, body: axum::body::Body) -> ApiResult<Json> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let pdf = read_limited(body, s.app.config.max_upload, declared).await?;
    to_json(s.app.verify_document(pdf).await?)
}

async fn ca_pem(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(bytes("application/x-pem-file", s.app.ca_pem().await?.into_bytes()))
}

async fn crl(State(s): State<AppState>) -> ApiResult<Response> {
    Ok(bytes("application/pkix-crl", s.app.crl().await?))
}

async fn ocsp(State(s): State<AppState>, body: axum::body::Body) -> ApiResult<Response> {
    let req = read_limited(body, 64 * 1024, None).await?;
    Ok(bytes("application/ocsp-response", s.app.ocsp(&req).await?))
}

async fn tsa(State(s): State<AppState>, body: axum::body::Body) -> ApiResult<Response> {
    let req = read_limited(body, 64 * 1024, None).await?;
    Ok(bytes("application/timestamp-reply", s.app.timestamp(&req).await?))
}

async fn my_certificates(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    to_json(s.app.certificates(&c, c.id()).await?)
}

async fn issue_certificate(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<PassphraseBody>,
) -> ApiResult<Response> {
    let cert = s.app.issue_certificate(&c, &b.passphrase).await?;
    Ok((StatusCode::CREATED, to_json(cert)?).into_response())
}

async fn user_certificates(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.certificates(&c, &id).await?)
}

async fn revoke_certificate(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(serial): Path<String>,
    Body(b): Body<RevokeBody>,
) -> ApiResult<Json> {
    s.app.revoke_certificate(&c, &serial, &b.reason).await?;
    Ok(ok())
}

async fn send_agreement(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Response> {
    let e = s.app.send_agreement(&c, &id).await?;
    Ok((StatusCode::CREATED, to_json(e)?).into_response())
}

async fn dossier_envelopes(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.dossier_envelopes(&c, &id).await?)
}

async fn envelopes_awaiting(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    to_json(s.app.envelopes_awaiting(&c).await?)
}

async fn envelope(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.envelope(&c, &id).await?)
}

pub(crate) fn envelope_file(which: Option<&str>) -> ApiResult<guichet_app::EnvelopeFile> {
    Ok(match which {
        None | Some("current") => guichet_app::EnvelopeFile::Current,
        Some("original") => guichet_app::EnvelopeFile::Original,
        Some("completion") => guichet_app::EnvelopeFile::Completion,
        Some(other) => {
            return Err(ApiError(AppError::invalid(
                "invalid_request",
                format!("file is current, original or completion, not {other:?}"),
            )));
        }
    })
}

async fn envelope_document(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    q: Result<Query<FileQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Response> {
    let which = envelope_file(query(q)?.file.as_deref())?;
    Ok(bytes("application/pdf", s.app.envelope_file(&c, &id, which).await?))
}

async fn sign_envelope(
    State(s): State<AppState>,
    Auth(c): Auth,
    crate::extract::Client(ctx): crate::extract::Client,
    Path((id, index)): Path<(String, usize)>,
    Body(b): Body<SignBody>,
) -> ApiResult<Json> {
    if !b.agree {
        return Err(ApiError(AppError::Invalid {
            code: "agreement_required",
            message: "read the whole document and agree to sign it (agree: true)".into(),
            field: Some("agree".into()),
            details: None,
        }));
    }
    to_json(s.app.sign_envelope(&c, &id, index, b.passphrase.as_deref(), &ctx).await?)
}

async fn decline_envelope(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((id, index)): Path<(String, usize)>,
    Body(b): Body<ReasonOnly>,
) -> ApiResult<Json> {
    to_json(s.app.decline_envelope(&c, &id, index, &b.reason).await?)
}

async fn void_envelope(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<ReasonOnly>,
) -> ApiResult<Json> {
    to_json(s.app.void_envelope(&c, &id, &b.reason).await?)
}

async fn create_envelope(
    State(s): State<AppState>,
    Auth(c): Auth,
    multipart: axum::extract::Multipart,
) -> ApiResult<Response> {
    let limit = s.app.config.max_upload;
    let bad = |m: String| ApiError(AppError::invalid("invalid_request", m));
    let mut form = crate::extract::read_form(multipart, &["document"], limit)
        .await
        .map_err(|e| bad(format!("reading the form: {e}")))?;
    if form.too_large {
        return Err(ApiError(AppError::TooLarge { limit }));
    }
    let pdf = form.files.remove("document").map(|(_, b)| b);
    let pdf = pdf.ok_or_else(|| bad("a `document` part (the PDF) is needed".into()))?;
    let input = form.fields.get("envelope").ok_or_else(|| bad("an `envelope` part (JSON) is needed".into()))?;
    let input = serde_json::from_str(input).map_err(|e| bad(format!("the envelope part: {e}")))?;
    let e = s.app.create_envelope(&c, pdf, input).await?;
    Ok((StatusCode::CREATED, to_json(e)?).into_response())
}

async fn external_envelope(State(s): State<AppState>, Path(token): Path<String>) -> ApiResult<Json> {
    to_json(s.app.external_envelope(&token).await?)
}

async fn external_document(State(s): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    Ok(bytes("application/pdf", s.app.external_file(&token).await?))
}

async fn external_code(State(s): State<AppState>, Path(token): Path<String>) -> ApiResult<Response> {
    s.app.send_signing_code(&token).await?;
    Ok((StatusCode::ACCEPTED, ok()).into_response())
}

async fn external_sign(
    State(s): State<AppState>,
    crate::extract::Client(ctx): crate::extract::Client,
    Path(token): Path<String>,
    Body(b): Body<ExternalSignBody>,
) -> ApiResult<Json> {
    if !b.agree {
        return Err(ApiError(AppError::Invalid {
            code: "agreement_required",
            message: "read the whole document and agree to sign it (agree: true)".into(),
            field: Some("agree".into()),
            details: None,
        }));
    }
    to_json(s.app.sign_external(&token, &b.code, &ctx).await?)
}

async fn external_decline(
    State(s): State<AppState>,
    Path(token): Path<String>,
    Body(b): Body<ReasonOnly>,
) -> ApiResult<Json> {
    to_json(s.app.decline_external(&token, &b.reason).await?)
}

async fn delegate_envelope(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path((id, index)): Path<(String, usize)>,
    Body(b): Body<DelegateBody>,
) -> ApiResult<Json> {
    to_json(s.app.delegate_envelope(&c, &id, index, &b.email).await?)
}

async fn create_template(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<guichet_app::TemplateInput>,
) -> ApiResult<Response> {
    let t = s.app.create_template(&c, b).await?;
    Ok((StatusCode::CREATED, to_json(t)?).into_response())
}

async fn templates(State(s): State<AppState>, Auth(c): Auth) -> ApiResult<Json> {
    to_json(s.app.templates(&c).await?)
}

async fn template(State(s): State<AppState>, Auth(c): Auth, Path(id): Path<String>) -> ApiResult<Json> {
    to_json(s.app.template(&c, &id).await?)
}

async fn send_template(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    Body(b): Body<guichet_app::TemplateSend>,
) -> ApiResult<Response> {
    let e = s.app.send_template(&c, &id, b).await?;
    Ok((StatusCode::CREATED, to_json(e)?).into_response())
}

async fn bulk_send(
    State(s): State<AppState>,
    Auth(c): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> ApiResult<Response> {
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    let csv = read_limited(body, s.app.config.max_upload, declared).await?;
    let r = s.app.bulk_send(&c, &id, &csv).await?;
    Ok((StatusCode::CREATED, to_json(r)?).into_response())
}

async fn import_certificate(
    State(s): State<AppState>,
    Auth(c): Auth,
    multipart: axum::extract::Multipart,
) -> ApiResult<Response> {
    let bad = |m: String| ApiError(AppError::invalid("invalid_request", m));
    let limit = 1024 * 1024;
    let mut form = crate::extract::read_form(multipart, &["pkcs12"], limit)
        .await
        .map_err(|e| bad(format!("reading the form: {e}")))?;
    if form.too_large {
        return Err(ApiError(AppError::TooLarge { limit }));
    }
    let p12 = form.take_file("pkcs12");
    if p12.is_empty() {
        return Err(bad("a `pkcs12` part (the .p12 file) is needed".into()));
    }
    let cert = s.app.import_certificate(&c, p12, form.field("password"), form.field("passphrase")).await?;
    Ok((StatusCode::CREATED, to_json(cert)?).into_response())
}

async fn register_token(
    State(s): State<AppState>,
    Auth(c): Auth,
    Body(b): Body<TokenRegistration>,
) -> ApiResult<Response> {
    let cert = s.app.register_token(&c, &b.certificate, &b.token, &b.key_label, &b.pin).await?;
    Ok((StatusCode::CREATED, to_json(cert)?).into_response())
}
