//! Extractors: the authenticated caller (session cookie with CSRF check,
//! or API bearer token), JSON bodies whose rejections become our error
//! body, and the error response itself.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use guichet_app::{AppError, Caller, SESSION_COOKIE};
use serde::de::DeserializeOwned;

use crate::AppState;

/// An error, as every route answers it.
#[derive(Debug)]
pub struct ApiError(pub AppError);

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = match &e {
            AppError::Internal(m) => {
                tracing::error!(error = %m, "internal error");
                "an internal error occurred; it was logged".to_owned()
            }
            other => other.to_string(),
        };
        let mut body = serde_json::json!({"error": {"code": e.code(), "message": message}});
        if let AppError::Invalid { field, details, .. } = &e {
            if let Some(f) = field {
                body["error"]["field"] = f.clone().into();
            }
            if let Some(d) = details {
                body["error"]["details"] = d.clone();
            }
        }
        if let AppError::Conflict { current } = &e {
            body["error"]["current_version"] = (*current).into();
        }
        let mut resp = (status, axum::Json(body)).into_response();
        if let AppError::Throttled { retry_after } = &e {
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if matches!(e, AppError::Unauthenticated) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

pub(crate) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then(|| v.to_owned())
    })
}

pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim().to_owned())
}

/// The authenticated caller. Session callers must echo the session's CSRF
/// token in `X-CSRF-Token` on every request that changes something.
#[derive(Debug)]
pub struct Auth(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(token) = bearer(&parts.headers) {
            return match state.app.caller_from_api_token(&token).await? {
                Some(c) => Ok(Auth(c)),
                None => Err(AppError::Unauthenticated.into()),
            };
        }
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(AppError::Unauthenticated.into());
        };
        let Some(caller) = state.app.caller_from_session(&token).await? else {
            return Err(AppError::Unauthenticated.into());
        };
        let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if !safe {
            let sent = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or("");
            let expected = caller.csrf.as_deref().unwrap_or("");
            if expected.is_empty()
                || aws_lc_rs::constant_time::verify_slices_are_equal(sent.as_bytes(), expected.as_bytes()).is_err()
            {
                return Err(
                    AppError::Forbidden("missing or wrong X-CSRF-Token header (it was given at login)".into()).into()
                );
            }
        }
        Ok(Auth(caller))
    }
}

/// A JSON body; malformed JSON, a wrong content type or wrong field types
/// answer 400 `invalid_request` with serde's precise message.
#[derive(Debug)]
pub struct Body<T>(pub T);

const MAX_JSON: usize = 1024 * 1024;

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json_type =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
            });
        if !json_type {
            return Err(AppError::UnsupportedMedia("send the body as application/json".into()).into());
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| too_large_or(e.body_text()))?;
        if bytes.len() > MAX_JSON {
            return Err(AppError::TooLarge { limit: MAX_JSON }.into());
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize(&mut de) {
            Ok(v) => Ok(Body(v)),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                Err(AppError::Invalid {
                    code: "invalid_request",
                    message: format!("invalid JSON body: {inner}"),
                    field: (path != ".").then_some(path),
                    details: None,
                }
                .into())
            }
        }
    }
}

pub(crate) fn too_large_or(text: String) -> ApiError {
    if text.contains("length limit") {
        ApiError(AppError::TooLarge { limit: 0 })
    } else {
        ApiError(AppError::invalid("invalid_request", text))
    }
}

/// Where a request comes from, for the evidence of a signature: the peer
/// address and the user agent.
#[derive(Debug, Clone)]
pub struct Client(pub guichet_app::SigningContext);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip =
            parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip().to_string());
        let user_agent =
            parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|s| s.chars().take(300).collect());
        Ok(Client(guichet_app::SigningContext { ip, user_agent }))
    }
}

/// A multipart form read whole: its text fields, and the files named in
/// `files` (each at most `limit` bytes; a larger one sets `too_large` and
/// is dropped).
#[derive(Debug, Default)]
pub(crate) struct FormData {
    pub fields: std::collections::HashMap<String, String>,
    /// name → (file name as sent, bytes)
    pub files: std::collections::HashMap<String, (String, Vec<u8>)>,
    pub too_large: bool,
}

impl FormData {
    pub fn field(&self, name: &str) -> &str {
        self.fields.get(name).map(String::as_str).unwrap_or_default()
    }

    /// A file's bytes (empty when absent).
    pub fn take_file(&mut self, name: &str) -> Vec<u8> {
        self.files.remove(name).map(|(_, b)| b).unwrap_or_default()
    }
}

/// Reads a multipart form; a malformed body is an error with the reason.
pub(crate) async fn read_form(
    mut multipart: axum::extract::Multipart,
    files: &[&str],
    limit: usize,
) -> Result<FormData, String> {
    let mut form = FormData::default();
    while let Some(mut field) = multipart.next_field().await.map_err(|e| e.body_text())? {
        let name = field.name().unwrap_or_default().to_owned();
        if files.contains(&name.as_str()) {
            let file_name: String = field.file_name().unwrap_or_default().chars().take(200).collect();
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|e| e.body_text())? {
                if bytes.len() + chunk.len() > limit {
                    form.too_large = true;
                    bytes.clear();
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            if !form.too_large {
                form.files.insert(name, (file_name, bytes));
            }
        } else {
            form.fields.insert(name, field.text().await.map_err(|e| e.body_text())?);
        }
    }
    Ok(form)
}
