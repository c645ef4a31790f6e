//! `guichet serve`, `migrate`, `demo`, `audit verify`, `admin create`.
//!
//! Settings come from a TOML file (`--config`, default `guichet.toml` if
//! present) and then `GUICHET_*` environment variables, which win; the
//! command line wins over both.

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand};
use guichet_app::{App, Config};
use guichet_store::{CheckpointKey, DataKey, Options, Store};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The settings file (every key optional; `GUICHET_<KEY>` overrides).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://PATH` (default `sqlite://guichet-data/guichet.db`) or `postgres://…`.
    pub database: Option<String>,
    /// Where uploaded and generated files go (default: beside the SQLite file).
    pub blob_dir: Option<PathBuf>,
    /// `s3://bucket[/prefix]`: blobs in an S3-compatible store instead.
    pub blob_store: Option<String>,
    /// S3 settings (object_store's keys: `endpoint`, `region`,
    /// `access_key_id`, `secret_access_key`, `aws_allow_http`…); the
    /// standard `AWS_*` variables are read too.
    #[serde(default)]
    pub s3: std::collections::BTreeMap<String, String>,
    /// 64 hex digits: the key sealing personal data at rest.
    pub data_key: Option<String>,
    /// A file holding the data key.
    pub data_key_file: Option<PathBuf>,
    /// The Ed25519 PKCS#8 key that signs audit checkpoints.
    pub checkpoint_key_file: Option<PathBuf>,
    pub listen: Option<String>,
    pub base_url: Option<String>,
    pub max_upload: Option<usize>,
    pub time_zone: Option<String>,
    /// Evaluate applications as of this date (YYYY-MM-DD) instead of today.
    pub reference_date: Option<String>,
    /// `text` (default) or `json`.
    pub log_format: Option<String>,
    /// An external RFC 3161 timestamp authority (`http://…`) for the
    /// service's signatures, instead of the built-in one.
    pub tsa_url: Option<String>,
    /// A PEM file of more trust anchors for validation (the external
    /// timestamp authority's root, an organization CA's).
    pub trust_file: Option<PathBuf>,
    /// The PKCS#11 library of the server's HSM, for employees' keys kept
    /// there (`/usr/lib/softhsm/libsofthsm2.so`…).
    pub pkcs11_module: Option<String>,
    pub max_connections: Option<u32>,
    /// SMTP: where the outbox is delivered (nothing is sent without it;
    /// mails stay in the outbox).
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    /// STARTTLS (default true).
    pub smtp_starttls: Option<bool>,
    pub smtp_username: Option<String>,
    /// The password, from `GUICHET_SMTP_PASSWORD` or this file.
    pub smtp_password_file: Option<PathBuf>,
    /// The sender, `guichet <no-reply@example.org>`.
    pub smtp_from: Option<String>,
    /// Instead of SMTP (demo, tests): write each mail as a `.eml` file in
    /// this folder, and show every account its own mail at `/courriels`.
    pub mail_dir: Option<PathBuf>,
    /// The organization as its bank knows it, for payment files: the
    /// originator id the bank assigned (10 characters)…
    pub payment_originator_id: Option<String>,
    /// …its name (30 characters in Standard 005) and short name (15)…
    pub payment_originator_name: Option<String>,
    pub payment_short_name: Option<String>,
    /// …the bank's AFT data centre (5 digits)…
    pub payment_data_centre: Option<String>,
    /// …and the organization's account, `INSTITUTION-TRANSIT-ACCOUNT`.
    pub payment_account: Option<String>,
    /// Standard 005 transaction codes the bank asks for (default 450, 430).
    pub payment_credit_code: Option<String>,
    pub payment_debit_code: Option<String>,
}

impl Settings {
    fn load(path: Option<&Path>) -> Result<Settings> {
        let mut s = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", p.display()))?
            }
            None if Path::new("guichet.toml").exists() => return Settings::load(Some(Path::new("guichet.toml"))),
            None => Settings::default(),
        };
        let env = |k: &str| std::env::var(format!("GUICHET_{k}")).ok().filter(|v| !v.is_empty());
        if let Some(v) = env("DATABASE") {
            s.database = Some(v);
        }
        if let Some(v) = env("BLOB_DIR") {
            s.blob_dir = Some(v.into());
        }
        if let Some(v) = env("BLOB_STORE") {
            s.blob_store = Some(v);
        }
        if let Some(v) = env("DATA_KEY") {
            s.data_key = Some(v);
        }
        if let Some(v) = env("DATA_KEY_FILE") {
            s.data_key_file = Some(v.into());
        }
        if let Some(v) = env("CHECKPOINT_KEY_FILE") {
            s.checkpoint_key_file = Some(v.into());
        }
        if let Some(v) = env("LISTEN") {
            s.listen = Some(v);
        }
        if let Some(v) = env("BASE_URL") {
            s.base_url = Some(v);
        }
        if let Some(v) = env("MAX_UPLOAD") {
            s.max_upload = Some(v.parse().context("GUICHET_MAX_UPLOAD is a number of bytes")?);
        }
        if let Some(v) = env("TIME_ZONE") {
            s.time_zone = Some(v);
        }
        if let Some(v) = env("REFERENCE_DATE") {
            s.reference_date = Some(v);
        }
        if let Some(v) = env("LOG_FORMAT") {
            s.log_format = Some(v);
        }
        if let Some(v) = env("TSA_URL") {
            s.tsa_url = Some(v);
        }
        if let Some(v) = env("TRUST_FILE") {
            s.trust_file = Some(v.into());
        }
        if let Some(v) = env("PKCS11_MODULE") {
            s.pkcs11_module = Some(v);
        }
        if let Some(v) = env("SMTP_HOST") {
            s.smtp_host = Some(v);
        }
        if let Some(v) = env("SMTP_PORT") {
            s.smtp_port = Some(v.parse().context("GUICHET_SMTP_PORT is a port number")?);
        }
        if let Some(v) = env("SMTP_STARTTLS") {
            s.smtp_starttls = Some(v == "true" || v == "1");
        }
        if let Some(v) = env("SMTP_USERNAME") {
            s.smtp_username = Some(v);
        }
        if let Some(v) = env("SMTP_FROM") {
            s.smtp_from = Some(v);
        }
        if let Some(v) = env("MAIL_DIR") {
            s.mail_dir = Some(v.into());
        }
        Ok(s)
    }

    fn database(&self) -> String {
        self.database.clone().unwrap_or_else(|| "sqlite://guichet-data/guichet.db".into())
    }

    fn blob_dir(&self) -> PathBuf {
        if let Some(d) = &self.blob_dir {
            return d.clone();
        }
        match self.database().strip_prefix("sqlite://") {
            Some(p) => Path::new(p).parent().unwrap_or(Path::new(".")).join("blobs"),
            None => PathBuf::from("guichet-blobs"),
        }
    }

    fn data_key(&self) -> Result<DataKey> {
        let hex = match (&self.data_key, &self.data_key_file) {
            (Some(k), _) => k.clone(),
            (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            (None, None) => bail!(
                "no data key: set data_key_file (or GUICHET_DATA_KEY) to 64 hex digits, e.g. from `openssl rand -hex 32`; \
                 personal data is encrypted with it and cannot be read without it"
            ),
        };
        Ok(DataKey::from_hex(&hex)?)
    }

    fn checkpoint_key(&self) -> Result<Option<CheckpointKey>> {
        match &self.checkpoint_key_file {
            Some(f) => {
                let der = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                Ok(Some(CheckpointKey::from_pkcs8(&der)?))
            }
            None => Ok(None),
        }
    }

    /// The payment originator, when its settings are there.
    fn originator(&self) -> Result<Option<guichet_pay::Originator>> {
        let Some(id) = &self.payment_originator_id else { return Ok(None) };
        let account =
            self.payment_account.as_deref().context("payment_account is needed with payment_originator_id")?;
        let parts: Vec<&str> = account.split(['-', ' ']).filter(|p| !p.is_empty()).collect();
        let [institution, transit, number] = parts[..] else {
            bail!("payment_account is INSTITUTION-TRANSIT-ACCOUNT, e.g. 815-30001-1234567");
        };
        let account = guichet_core::BankAccount::parse(institution, transit, number)
            .map_err(|_| anyhow!("payment_account: 3-digit institution, 5-digit transit, 7 to 12-digit account"))?;
        let name = self.payment_originator_name.clone().context("payment_originator_name is needed")?;
        Ok(Some(guichet_pay::Originator {
            short_name: self.payment_short_name.clone().unwrap_or_else(|| name.chars().take(15).collect()),
            name,
            id: id.clone(),
            data_centre: self.payment_data_centre.clone().context("payment_data_centre is needed")?,
            account,
            credit_code: self.payment_credit_code.clone().unwrap_or_else(|| "450".into()),
            debit_code: self.payment_debit_code.clone().unwrap_or_else(|| "430".into()),
        }))
    }

    fn config(&self) -> Config {
        let d = Config::default();
        Config {
            originator: self.originator().unwrap_or_else(|e| {
                tracing::warn!("payment settings ignored: {e:#}");
                None
            }),
            base_url: self.base_url.clone().unwrap_or(d.base_url),
            max_upload: self.max_upload.unwrap_or(d.max_upload),
            time_zone: self.time_zone.clone().unwrap_or(d.time_zone),
            reference_date: self.reference_date.clone(),
            pkcs11_module: self.pkcs11_module.clone(),
            mailbox: self.smtp_host.is_none() && self.mail_dir.is_some(),
            ..d
        }
    }

    async fn store(&self) -> Result<Store> {
        let opts = Options {
            url: self.database(),
            blob_dir: self.blob_dir(),
            blob_store: self.blob_store.clone(),
            blob_store_options: self.s3.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            data_key: self.data_key()?,
            max_connections: self.max_connections.unwrap_or(16),
        };
        Store::open(opts).await.with_context(|| format!("opening {}", redact(&self.database())))
    }
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.into(),
            }
        }
        _ => url.into(),
    }
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Settings file (TOML).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<String>,
    /// sqlite://PATH or postgres://…
    #[arg(long)]
    database: Option<String>,
}

#[derive(Args, Debug)]
pub struct DbArgs {
    #[arg(long)]
    config: Option<PathBuf>,
    #[arg(long)]
    database: Option<String>,
    /// A demo folder (its guichet.toml).
    #[arg(long, conflicts_with = "config")]
    dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 8080)]
    port: u16,
    #[arg(long, default_value = "guichet-demo")]
    dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Re-check every hash chain and checkpoint; report the first broken link.
    Verify(DbArgs),
    /// Sign a checkpoint over the events since the last one.
    Checkpoint(DbArgs),
}

#[derive(Subcommand, Debug)]
pub enum AdminCmd {
    /// Create an administrator (the first one). The password is read from
    /// standard input.
    Create {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
    },
    /// Publish program files (each must load and pass its own tests).
    Publish {
        #[command(flatten)]
        db: DbArgs,
        files: Vec<PathBuf>,
    },
    /// List an employee's signing certificates (they get one on their own
    /// screen: its key is locked under a passphrase only they know).
    Certificates {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
    },
    /// Revoke a signing certificate (by its serial, as listed).
    Revoke {
        #[command(flatten)]
        db: DbArgs,
        serial: String,
        /// unspecified, key_compromise, affiliation_changed, superseded, cessation_of_operation
        #[arg(long, default_value = "unspecified")]
        reason: String,
    },
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}

pub(crate) fn report(r: Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn settings_for(db: &DbArgs) -> Result<Settings> {
    let mut s = match &db.dir {
        Some(d) => Settings::load(Some(&d.join("guichet.toml")))?,
        None => Settings::load(db.config.as_deref())?,
    };
    if let Some(u) = &db.database {
        s.database = Some(u.clone());
    }
    Ok(s)
}

fn init_logs(format: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("GUICHET_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let b = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = if format == Some("json") { b.json().try_init() } else { b.try_init() };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Opens, migrates, loads programs, starts the checkpoint job, serves.
async fn run_server(settings: &Settings, listen: &str, banner: Option<String>) -> Result<()> {
    let store = settings.store().await?;
    let applied = store.migrate().await.context("migrating")?;
    if !applied.is_empty() {
        tracing::info!(?applied, "migrations applied");
    }
    let mut config = settings.config();
    if let Some(f) = &settings.trust_file {
        let pem = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        config.trust_anchors = guichet_pades::ca::pem_all(&pem).with_context(|| format!("{}", f.display()))?;
    }
    let mut app = App::new(store, config, settings.checkpoint_key()?);
    if let Some(url) = &settings.tsa_url {
        app = app.with_timestamp_client(std::sync::Arc::new(crate::sign_cmd::HttpTsa::new(url)?));
    }
    let mailer = if let Some(host) = &settings.smtp_host {
        let password = match (std::env::var("GUICHET_SMTP_PASSWORD").ok(), &settings.smtp_password_file) {
            (Some(p), _) => Some(p),
            (None, Some(f)) => {
                Some(std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?.trim().to_owned())
            }
            (None, None) => None,
        };
        let smtp = guichet_app::SmtpSettings {
            host: host.clone(),
            port: settings.smtp_port.unwrap_or(587),
            starttls: settings.smtp_starttls.unwrap_or(true),
            username: settings.smtp_username.clone(),
            password,
            from: settings.smtp_from.clone().unwrap_or_else(|| "guichet <no-reply@localhost>".into()),
        };
        Some(guichet_app::Mailer::new(&smtp).map_err(|e| anyhow!("{e}"))?)
    } else if let Some(dir) = &settings.mail_dir {
        let from = settings.smtp_from.clone().unwrap_or_else(|| "guichet <no-reply@localhost>".into());
        Some(guichet_app::Mailer::to_folder(dir.clone(), &from).map_err(|e| anyhow!("{e}"))?)
    } else {
        None
    };
    if let Some(mailer) = mailer {
        let job = app.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                match job.deliver_mails(&mailer).await {
                    Ok((0, 0)) => {}
                    Ok((sent, failed)) => tracing::info!(sent, failed, "mail delivered"),
                    Err(e) => tracing::warn!(error = %e, "mail delivery failed"),
                }
            }
        });
    }
    let n = app.load_programs().await?;
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("listening on {listen}"))?;
    tracing::info!(address = %listener.local_addr()?, programs = n, database = %redact(&settings.database()), "guichet serving");
    if let Some(b) = banner {
        println!("{b}");
    }
    let job = app.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        let mut minutes: u64 = 0;
        loop {
            tick.tick().await;
            minutes += 1;
            match job.sweep_envelopes().await {
                Ok((0, 0)) => {}
                Ok((expired, reminded)) => tracing::info!(expired, reminded, "envelopes swept"),
                Err(e) => tracing::warn!(error = %e, "envelope sweep failed"),
            }
            // A batch whose file went out just before a crash.
            match job.notify_exported_batches().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(batches = n, "payment notices queued"),
                Err(e) => tracing::warn!(error = %e, "payment notices failed"),
            }
            // Hourly (and at start): it reads every loan paid out.
            if minutes % 60 == 1 {
                match job.repayment_reminders().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(reminders = n, "loan repayment reminders queued"),
                    Err(e) => tracing::warn!(error = %e, "repayment reminders failed"),
                }
            }
            match job.checkpoint().await {
                Ok(Some(c)) => tracing::info!(events = c.events, last_seq = c.last_seq, "audit checkpoint signed"),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "audit checkpoint failed"),
            }
        }
    });
    guichet_web::serve(listener, app, shutdown_signal()).await?;
    Ok(())
}

pub fn serve(a: &ServeArgs) -> ExitCode {
    report((|| {
        let mut s = Settings::load(a.config.as_deref())?;
        if let Some(d) = &a.database {
            s.database = Some(d.clone());
        }
        init_logs(s.log_format.as_deref());
        let listen = a.listen.clone().or(s.listen.clone()).unwrap_or_else(|| "127.0.0.1:8080".into());
        runtime()?.block_on(run_server(&s, &listen, None))
    })())
}

pub fn migrate(a: &DbArgs) -> ExitCode {
    report((|| {
        let s = settings_for(a)?;
        runtime()?.block_on(async {
            let store = s.store().await?;
            let applied = store.migrate().await?;
            if applied.is_empty() {
                println!("{}: schema up to date", redact(&s.database()));
            } else {
                println!("{}: applied migrations {applied:?}", redact(&s.database()));
            }
            store.close().await;
            Ok(())
        })
    })())
}

pub fn audit(cmd: &AuditCmd) -> ExitCode {
    let (db, checkpoint) = match cmd {
        AuditCmd::Verify(db) => (db, false),
        AuditCmd::Checkpoint(db) => (db, true),
    };
    let result = (|| -> Result<bool> {
        let s = settings_for(db)?;
        runtime()?.block_on(async {
            let store = s.store().await?;
            let key = s.checkpoint_key()?;
            if checkpoint {
                let key = key.ok_or_else(|| anyhow!("no checkpoint_key_file in the settings"))?;
                let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs() as i64;
                match store.checkpoint(&key, now).await? {
                    Some(c) => println!(
                        "checkpoint over events {}–{} ({} events): root {}",
                        c.first_seq, c.last_seq, c.events, c.root
                    ),
                    None => println!("no new events since the last checkpoint"),
                }
                store.close().await;
                return Ok(true);
            }
            let r = store.verify_audit(key.map(|k| k.public_key()).as_deref()).await?;
            store.close().await;
            println!(
                "{} events in {} aggregates ({} dossiers), {} signed checkpoints, {} events after the last checkpoint",
                r.events, r.aggregates, r.dossiers, r.checkpoints, r.unchecked_events
            );
            match &r.first_broken {
                None => {
                    println!("audit: intact");
                    Ok(true)
                }
                Some(b) => {
                    println!("audit: BROKEN at {b}");
                    Ok(false)
                }
            }
        })
    })();
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub fn admin(cmd: &AdminCmd) -> ExitCode {
    let (db, email, name) = match cmd {
        AdminCmd::Create { db, email, name } => (db, email, name),
        AdminCmd::Publish { db, files } => return report(publish(db, files)),
        AdminCmd::Certificates { db, email } => return report(certificates(db, email)),
        AdminCmd::Revoke { db, serial, reason } => return report(revoke(db, serial, reason)),
    };
    report((|| {
        let s = settings_for(db)?;
        let mut password = String::new();
        std::io::stdin().read_line(&mut password)?;
        let password = password.trim_end_matches(['\r', '\n']).to_owned();
        runtime()?.block_on(async {
            let store = s.store().await?;
            store.migrate().await?;
            let app = App::new(store.clone(), s.config(), None);
            let u = app
                .create_account(None, email, name, &password, &["administrator".into()])
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("administrator {} created ({})", u.email, u.id);
            store.close().await;
            Ok(())
        })
    })())
}

/// The application over a database, for one-shot commands.
pub(crate) async fn app_for(db: &DbArgs) -> Result<(App, Store)> {
    let s = settings_for(db)?;
    let store = s.store().await?;
    store.migrate().await?;
    let app = App::new(store.clone(), s.config(), None);
    app.load_programs().await?;
    Ok((app, store))
}

fn certificates(db: &DbArgs, email: &str) -> Result<()> {
    let s = settings_for(db)?;
    runtime()?.block_on(async {
        let store = s.store().await?;
        let user = store.user_by_email(email).await?.ok_or_else(|| anyhow!("no account for {email}"))?;
        let list = store.certificates_of(&user.id).await?;
        if list.is_empty() {
            println!("{email}: no signing certificate");
        }
        for c in list {
            let state = match (&c.revoked_at, &c.revocation_reason) {
                (Some(at), r) => format!("revoked at {at} ({})", r.as_deref().unwrap_or("unspecified")),
                (None, _) => format!("valid until {}", c.not_after),
            };
            println!("{}  {}  {state}", c.serial, c.subject);
        }
        store.close().await;
        Ok(())
    })
}

fn revoke(db: &DbArgs, serial: &str, reason: &str) -> Result<()> {
    let s = settings_for(db)?;
    runtime()?.block_on(async {
        let store = s.store().await?;
        let app = App::new(store.clone(), s.config(), None);
        let revoked = app.revoke_certificate_as_operator(serial, reason).await.map_err(|e| anyhow!("{e}"))?;
        println!("certificate {serial} revoked ({revoked}); the CRL and OCSP answers say so from now on");
        store.close().await;
        Ok(())
    })
}

fn publish(db: &DbArgs, files: &[PathBuf]) -> Result<()> {
    let s = settings_for(db)?;
    let sources = files
        .iter()
        .map(|f| std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display())).map(|t| (f, t)))
        .collect::<Result<Vec<_>>>()?;
    runtime()?.block_on(async {
        let store = s.store().await?;
        store.migrate().await?;
        let app = App::new(store.clone(), s.config(), None);
        let mut result = Ok(());
        for (f, src) in &sources {
            match app.publish_program(None, src).await {
                Ok(p) => println!("{}: published {} version {}", f.display(), p.id, p.version),
                Err(e) => {
                    let details = match &e {
                        guichet_app::AppError::Invalid { details: Some(d), .. } => format!("\n{d}"),
                        _ => String::new(),
                    };
                    result = Err(anyhow!("{}: {e}{details}", f.display()));
                    break;
                }
            }
        }
        store.close().await;
        result
    })
}

const PROGRAMS: [&str; 2] = [
    include_str!("../../../programs/shq-pret-loyer-2020.toml"),
    include_str!("../../../programs/shq-menages-en-attente-2020.toml"),
];

/// The demo accounts: (email, name, roles). Their password is printed.
const DEMO_USERS: [(&str, &str, &[&str]); 9] = [
    ("admin@demo.guichet", "Ada Administratrice", &["administrator"]),
    ("agent@demo.guichet", "Claude Agente", &["case_worker"]),
    ("revision@demo.guichet", "Rémi Réviseur", &["reviewer"]),
    ("finances@demo.guichet", "France Finances", &["finance_officer"]),
    // A second finance officer: batches are approved by someone else.
    ("finances2@demo.guichet", "Félix Finances", &["finance_officer"]),
    ("programmes@demo.guichet", "Paul Programmes", &["program_manager"]),
    ("citoyen@demo.guichet", "Camille Citoyenne", &["citizen"]),
    ("locataire@demo.guichet", "Jean Locataire", &["citizen"]),
    ("signataire@demo.guichet", "Sophie Signataire", &["signing_officer"]),
];
const DEMO_PASSWORD: &str = "demo-guichet-2020";

fn write_secret(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)?.write_all(bytes)?;
    Ok(())
}

/// Prepares the demo folder (once) and returns its settings.
async fn prepare_demo(dir: &Path, port: u16) -> Result<Settings> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let conf = dir.join("guichet.toml");
    if !conf.exists() {
        write_secret(&dir.join("data.key"), DataKey::generate()?.to_hex().as_bytes())?;
        write_secret(&dir.join("checkpoint.p8"), &CheckpointKey::generate_pkcs8()?)?;
        std::fs::write(
            &conf,
            format!(
                "# guichet demo settings (see README.md).\n\
                 database = \"sqlite://{db}\"\n\
                 blob_dir = \"{blobs}\"\n\
                 data_key_file = \"{key}\"\n\
                 checkpoint_key_file = \"{cp}\"\n\
                 base_url = \"http://127.0.0.1:{port}\"\n\
                 # The SHQ programs were open in 2020: the demo evaluates as of this day.\n\
                 reference_date = \"2020-05-10\"\n\
                 # Mail goes to this folder; each account reads its own at /courriels.\n\
                 mail_dir = \"{mail}\"\n\
                 # Payment files: fictitious bank settings for the demo.\n\
                 payment_originator_id = \"SHQDEMO001\"\n\
                 payment_originator_name = \"Societe d'habitation du Quebec\"\n\
                 payment_short_name = \"SHQ\"\n\
                 payment_data_centre = \"00310\"\n\
                 payment_account = \"815-30001-1234567\"\n",
                db = dir.join("guichet.db").display(),
                blobs = dir.join("blobs").display(),
                key = dir.join("data.key").display(),
                cp = dir.join("checkpoint.p8").display(),
                mail = dir.join("mail").display(),
            ),
        )?;
    }
    let s = Settings::load(Some(&conf))?;
    let store = s.store().await?;
    store.migrate().await?;
    let app = App::new(store.clone(), s.config(), s.checkpoint_key()?);
    app.load_programs().await?;
    let fresh = store.users().await?.is_empty();
    for src in PROGRAMS {
        app.publish_program(None, src).await.map_err(|e| anyhow!("publishing a demo program: {e}"))?;
    }
    if fresh {
        for (email, name, roles) in DEMO_USERS {
            let roles: Vec<String> = roles.iter().map(|r| r.to_string()).collect();
            app.create_account(None, email, name, DEMO_PASSWORD, &roles).await.map_err(|e| anyhow!("{e}"))?;
        }
        seed_dossiers(&app).await?;
    }
    store.close().await;
    Ok(s)
}

/// A few sample dossiers from the citizen account: a draft, one submitted,
/// and one approved whose loan agreement waits for signatures.
async fn seed_dossiers(app: &App) -> Result<()> {
    let login = app.login("citoyen@demo.guichet", DEMO_PASSWORD, None).await.map_err(|e| anyhow!("{e}"))?;
    let citizen = app.caller_from_session(&login.token).await?.ok_or_else(|| anyhow!("demo session"))?;
    let example: serde_json::Value =
        serde_json::from_str(include_str!("../../../examples/pret-loyer-admissible.json")).context("the example")?;
    let eligible = example["answers"].clone();
    let approved = app
        .create_dossier(&citizen, "shq-pret-loyer-2020", Some(eligible.clone()), true)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    let mut late = eligible.clone();
    late["lease_start"] = "2020-05-15".into();
    app.create_dossier(&citizen, "shq-pret-loyer-2020", Some(late), true).await.map_err(|e| anyhow!("{e}"))?;
    app.create_dossier(&citizen, "shq-pret-loyer-2020", Some(serde_json::json!({"income_support": "cerb"})), false)
        .await
        .map_err(|e| anyhow!("{e}"))?;
    // The first is approved: its agreement waits for the citizen's
    // signature, then the signing officer's (her certificate is ready; its
    // passphrase is the demo password).
    let session = |email: &'static str| async move {
        let login = app.login(email, DEMO_PASSWORD, None).await.map_err(|e| anyhow!("{e}"))?;
        app.caller_from_session(&login.token).await?.ok_or_else(|| anyhow!("demo session"))
    };
    let agent = session("agent@demo.guichet").await?;
    let input = guichet_app::DecisionInput {
        outcome: "approved".into(),
        amount: None,
        reasons: vec![],
        justification: String::new(),
    };
    app.decide(&agent, &approved.id, None, input).await.map_err(|e| anyhow!("{e}"))?;
    let officer = session("signataire@demo.guichet").await?;
    app.issue_certificate(&officer, DEMO_PASSWORD).await.map_err(|e| anyhow!("{e}"))?;
    // Another tenant's loan, its agreement signed by both: ready to pay on
    // the finance officers' screen.
    let tenant = session("locataire@demo.guichet").await?;
    let mut answers = eligible.clone();
    answers["home"]["line1"] = "210, rue Fleury Ouest, app. 5".into();
    answers["home"]["postal_code"] = "H3L 1T6".into();
    let ready =
        app.create_dossier(&tenant, "shq-pret-loyer-2020", Some(answers), true).await.map_err(|e| anyhow!("{e}"))?;
    let input = guichet_app::DecisionInput {
        outcome: "approved".into(),
        amount: None,
        reasons: vec![],
        justification: String::new(),
    };
    app.decide(&agent, &ready.id, None, input).await.map_err(|e| anyhow!("{e}"))?;
    let envelope = app
        .dossier_envelopes(&tenant, &ready.id)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("the demo agreement"))?;
    let ctx = guichet_app::SigningContext { ip: Some("127.0.0.1".into()), user_agent: Some("guichet demo".into()) };
    app.sign_envelope(&tenant, &envelope.id, 0, None, &ctx).await.map_err(|e| anyhow!("{e}"))?;
    app.sign_envelope(&officer, &envelope.id, 1, Some(DEMO_PASSWORD), &ctx).await.map_err(|e| anyhow!("{e}"))?;
    Ok(())
}

pub fn demo(a: &DemoArgs) -> ExitCode {
    report((|| {
        init_logs(None);
        let rt = runtime()?;
        let s = rt.block_on(prepare_demo(&a.dir, a.port))?;
        let listen = format!("127.0.0.1:{}", a.port);
        let mut banner = format!(
            "\nguichet demo ready: http://{listen}/api/v1/programs\n  folder: {}\n  OpenAPI: http://{listen}/api/v1/openapi.json\n  accounts (password {DEMO_PASSWORD}):\n",
            a.dir.display()
        );
        for (email, _, roles) in DEMO_USERS {
            banner.push_str(&format!("    {email:<28} {}\n", roles.join(", ")));
        }
        banner.push_str(&format!(
            "  the signing officer's certificate passphrase is {DEMO_PASSWORD} too\n  verify any signed PDF: http://{listen}/verifier\n"
        ));
        rt.block_on(run_server(&s, &listen, Some(banner)))
    })())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls_are_shown_without_password() {
        assert_eq!(redact("postgres://app:s3cret@db:5432/guichet"), "postgres://app:***@db:5432/guichet");
        assert_eq!(redact("postgres://db/guichet"), "postgres://db/guichet");
        assert_eq!(redact("sqlite://x.db"), "sqlite://x.db");
    }
}
