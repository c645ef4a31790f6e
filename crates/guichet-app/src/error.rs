//! What can go wrong in a use case, with a stable code and an HTTP status:
//! the API answers `{"error": {"code", "message", "field"?}}` from this.

use guichet_core::CommandError;
use guichet_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("sign in first (or your session expired)")]
    Unauthenticated,
    #[error("wrong email or password")]
    BadCredentials,
    #[error("enter the code from your authenticator app")]
    TotpRequired,
    #[error("too many failed attempts; try again in {retry_after} seconds")]
    Throttled { retry_after: i64 },
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("the dossier was changed by someone else (now at version {current}); reload it and try again")]
    Conflict { current: i64 },
    #[error("{0}")]
    WrongState(String),
    /// Input that cannot be accepted: `code` is stable (`invalid_answer`,
    /// `missing_answer`, `outside_window`, `invalid_request`…).
    #[error("{message}")]
    Invalid { code: &'static str, message: String, field: Option<String>, details: Option<serde_json::Value> },
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("{0} is already taken")]
    Taken(String),
    /// A service we depend on (the timestamp authority) did not answer:
    /// nothing was done; try again.
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> AppError {
        AppError::Invalid { code, message: message.into(), field: None, details: None }
    }

    pub fn status(&self) -> u16 {
        match self {
            AppError::Unauthenticated | AppError::BadCredentials | AppError::TotpRequired => 401,
            AppError::Throttled { .. } => 429,
            AppError::Forbidden(_) => 403,
            AppError::NotFound => 404,
            AppError::Conflict { .. } | AppError::WrongState(_) | AppError::Taken(_) => 409,
            AppError::Invalid { code: "invalid_request", .. } => 400,
            AppError::Invalid { .. } => 422,
            AppError::TooLarge { .. } => 413,
            AppError::UnsupportedMedia(_) => 415,
            AppError::Unavailable(_) => 503,
            AppError::Internal(_) => 500,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            AppError::Unauthenticated => "unauthenticated",
            AppError::BadCredentials => "bad_credentials",
            AppError::TotpRequired => "totp_required",
            AppError::Throttled { .. } => "throttled",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound => "not_found",
            AppError::Conflict { .. } => "version_conflict",
            AppError::WrongState(_) => "wrong_state",
            AppError::Invalid { code, .. } => code,
            AppError::TooLarge { .. } => "too_large",
            AppError::UnsupportedMedia(_) => "unsupported_media_type",
            AppError::Taken(_) => "taken",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { current } => AppError::Conflict { current },
            StoreError::NotFound => AppError::NotFound,
            StoreError::Taken(what) => AppError::Taken(what.into()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<CommandError> for AppError {
    fn from(e: CommandError) -> Self {
        match e {
            CommandError::WrongState { state } => {
                let s =
                    serde_json::to_value(state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
                AppError::WrongState(format!("this cannot be done to a dossier that is {s}"))
            }
            CommandError::Invalid(m) => AppError::invalid("invalid_command", m),
            CommandError::SameReviewer => AppError::Forbidden(e.to_string()),
            CommandError::Corrupt { .. } => AppError::Internal(e.to_string()),
        }
    }
}

impl From<guichet_rules::EvalError> for AppError {
    fn from(e: guichet_rules::EvalError) -> Self {
        AppError::Invalid { code: e.code.as_str(), message: e.message, field: e.field, details: None }
    }
}
