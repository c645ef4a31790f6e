//! # guichet-app
//!
//! The use cases of guichet. Every entry point takes the [`Caller`] (who
//! asks), checks authorization with the one table in
//! `guichet_core::Actor::may`, runs the dossier's command (pure, in
//! `guichet-core`), evaluates with the program (pure, in `guichet-rules`)
//! and writes through `guichet-store` — one write per use case, so a use
//! case either happens whole or not at all. The JSON API and the screens
//! call these and nothing else.

mod agreements;
mod auth;
mod dossiers;
mod error;
mod mailer;
mod notify;
mod payments;
mod programs;
mod signing;
mod templates;
mod totp;

pub use agreements::{
    EnvelopeFile, EnvelopeInput, EnvelopeView, ExternalView, FieldInput, RecipientInput, RecipientView, SigningContext,
};
pub use auth::{Caller, LoginOutcome, OrgSettings, SESSION_COOKIE};
pub use dossiers::{DecisionInput, DocumentUpload, DossierView, ListFilter};
pub use error::AppError;
pub use mailer::{Mailer, SmtpSettings};
pub use notify::{Notice, fluent_bundle, render as render_notice};
pub use payments::{BatchView, LoanLine, PayFormat, ReadyPayment, ReturnsReport};
pub use programs::{CaseloadSimulation, ProgramCheck, ProgramSummary, Published};
pub use signing::{CertificateView, Pki, SignatureVerdict, Verification};
pub use templates::{BulkReport, SignerAddress, TemplateInput, TemplateSend, TemplateSigner, TemplateView};
pub use totp::{base32, totp_code};

use guichet_store::{CheckpointKey, Store};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

/// Service settings the use cases need.
#[derive(Debug, Clone)]
pub struct Config {
    /// Public base URL, for links in emails (`https://guichet.example`).
    pub base_url: String,
    /// Session lifetime, seconds.
    pub session_ttl: i64,
    /// Largest upload, bytes.
    pub max_upload: usize,
    /// Failed logins allowed per account within `login_window` seconds.
    pub login_max_failures: i64,
    pub login_window: i64,
    /// The organization's time zone (dates of applications are local).
    pub time_zone: String,
    /// Evaluate applications as of this date instead of today (the demo
    /// runs as of a day when the 2020 programs were open).
    pub reference_date: Option<String>,
    /// More trust anchors (DER) for validation, beside the organization's
    /// own root: an external timestamp authority's, an organization CA's.
    pub trust_anchors: Vec<Vec<u8>>,
    /// The PKCS#11 library of the server's HSM, where employees may keep
    /// their signing keys (their PIN is typed to sign).
    pub pkcs11_module: Option<String>,
    /// The organization as its bank knows it, for payment files; payment
    /// batches can be built without it, not written.
    pub originator: Option<guichet_pay::Originator>,
    /// Mail goes to a folder, not SMTP (the demo): every account may read
    /// its own mail on the screens.
    pub mailbox: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            base_url: "http://127.0.0.1:8080".into(),
            session_ttl: 12 * 3600,
            max_upload: 20 * 1024 * 1024,
            login_max_failures: 5,
            login_window: 15 * 60,
            time_zone: "America/Toronto".into(),
            reference_date: None,
            trust_anchors: Vec::new(),
            pkcs11_module: None,
            originator: None,
            mailbox: false,
        }
    }
}

/// Compiled programs by (id, version).
type ProgramCache = HashMap<(String, String), Arc<Published>>;

/// The application: the store, the settings, the published programs.
#[derive(Debug, Clone)]
pub struct App {
    pub store: Store,
    pub config: Arc<Config>,
    programs: Arc<RwLock<ProgramCache>>,
    checkpoint_key: Option<Arc<CheckpointKey>>,
    /// The organization's time zone: the settings file's, until the
    /// administrators choose one (refreshed whenever settings are read).
    time_zone: Arc<RwLock<String>>,
    /// The organization's PKI, loaded (or created) on first use.
    pki: Arc<tokio::sync::OnceCell<Arc<Pki>>>,
    /// Seconds added to the system clock (`shift_clock`).
    clock_shift: Arc<std::sync::atomic::AtomicI64>,
    /// An external timestamp authority; the built-in one when `None`.
    timestamps: Option<ExternalTsa>,
}

/// An external timestamp authority's client.
#[derive(Clone)]
pub(crate) struct ExternalTsa(pub(crate) Arc<dyn guichet_pades::TimestampClient>);

impl std::fmt::Debug for ExternalTsa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ExternalTsa")
    }
}

impl App {
    pub fn new(store: Store, config: Config, checkpoint_key: Option<CheckpointKey>) -> App {
        App {
            store,
            config: Arc::new(config.clone()),
            programs: Arc::new(RwLock::new(HashMap::new())),
            checkpoint_key: checkpoint_key.map(Arc::new),
            time_zone: Arc::new(RwLock::new(config.time_zone.clone())),
            pki: Arc::new(tokio::sync::OnceCell::new()),
            clock_shift: Arc::new(std::sync::atomic::AtomicI64::new(0)),
            timestamps: None,
        }
    }

    /// Timestamps from this authority instead of the built-in one (an
    /// external TSA over HTTP, given by the binary). Validators must then
    /// trust its root too (`Config::trust_anchors`).
    pub fn with_timestamp_client(mut self, client: Arc<dyn guichet_pades::TimestampClient>) -> App {
        self.timestamps = Some(ExternalTsa(client));
        self
    }

    /// Seconds since 1970 (plus any `shift_clock`).
    pub fn now(&self) -> i64 {
        let real =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        real + self.clock_shift.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves this process's clock forward by `seconds`: deadlines (an
    /// envelope's expiry, reminders, sessions) can be rehearsed and
    /// tested without waiting. Signatures' times come from the timestamp
    /// authority, which keeps the real clock.
    pub fn shift_clock(&self, seconds: i64) {
        self.clock_shift.fetch_add(seconds, std::sync::atomic::Ordering::Relaxed);
    }

    /// The date applications are evaluated at: the reference date if set,
    /// else today in the organization's time zone.
    pub fn today(&self) -> Result<guichet_rules::Date> {
        let s = match &self.config.reference_date {
            Some(d) => d.clone(),
            None => {
                let name = self.time_zone();
                let tz =
                    jiff::tz::TimeZone::get(&name).map_err(|e| AppError::Internal(format!("time zone {name}: {e}")))?;
                tz.to_datetime(jiff::Timestamp::now()).date().to_string()
            }
        };
        guichet_rules::Date::parse(&s).map_err(|e| AppError::Internal(format!("reference date {s}: {e}")))
    }

    /// The organization's time zone (IANA name).
    pub fn time_zone(&self) -> String {
        self.time_zone.read().map(|t| t.clone()).unwrap_or_else(|_| self.config.time_zone.clone())
    }

    pub(crate) fn set_time_zone_cache(&self, name: &str) {
        if let Ok(mut t) = self.time_zone.write() {
            name.clone_into(&mut t);
        }
    }

    /// Signs a checkpoint over the events since the last one (the job
    /// `guichet serve` runs every minute).
    pub async fn checkpoint(&self) -> Result<Option<guichet_store::Checkpoint>> {
        let Some(key) = &self.checkpoint_key else { return Ok(None) };
        Ok(self.store.checkpoint(key, self.now()).await?)
    }

    pub fn checkpoint_public_key(&self) -> Option<Vec<u8>> {
        self.checkpoint_key.as_ref().map(|k| k.public_key())
    }
}

/// The Typst engine (fonts loaded once per process, shared by every
/// document the service makes: agreements, completions, templates,
/// letters).
pub fn docs() -> &'static guichet_docs::Engine {
    static ENGINE: std::sync::OnceLock<guichet_docs::Engine> = std::sync::OnceLock::new();
    ENGINE.get_or_init(guichet_docs::Engine::new)
}

/// A random secret token: 32 bytes from the system's CSPRNG, as hex.
pub(crate) fn secret_token() -> Result<String> {
    let mut b = [0u8; 32];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| AppError::Internal("no randomness".into()))?;
    Ok(guichet_store::hex(&b))
}
