//! # guichet-store
//!
//! Everything guichet keeps: dossiers and their events (each aggregate's
//! events form a hash chain; checkpoints sign Merkle roots over them),
//! users, sessions, tokens, programs, blobs. The only crate with SQL.
//!
//! One [`Store`] runs on **SQLite** (the default: one file plus a blob
//! folder) or **PostgreSQL** (many nodes). The two backends share one SQL
//! text (numbered `$1` parameters, `RETURNING`, `ON CONFLICT`, integers and
//! byte strings only), so the conformance suite in `tests/` proves the same
//! behaviour on both; what differs — migrations, connection settings — is
//! marked where it is.
//!
//! Durability: a write returns only once committed to disk. SQLite runs in
//! WAL mode with `synchronous=FULL`; PostgreSQL with its default
//! `synchronous_commit=on`. Dossier writes go through a group-commit
//! writer ([`writer`]) that puts concurrent writes in one transaction, each
//! in its own savepoint, so one fsync covers many answers.

mod audit;
mod blobs;
mod crypt;
mod dossiers;
mod migrate;
mod payments;
mod signatures;
pub mod testing;
mod users;
mod writer;

pub use audit::{AuditReport, Checkpoint, CheckpointKey, LogLine};
pub use blobs::BlobMeta;
pub use crypt::DataKey;
pub use dossiers::{DossierRow, DossierSummary, NewEvents, ProgramStats, Queue, QueueOrder, StoredEvent};
pub use payments::{
    BatchFile, BatchRow, KeyedMail, MailLogLine, NewBatch, NewPayment, PayeeDetails, PaymentRow, PaymentStatus,
    QueueRow, Settlement,
};
pub use signatures::{CertificateRow, EnvelopeRow, EnvelopeWrite, SigningLink};
pub use users::{ApiToken, Contact, NewUser, OutgoingMail, Session, UserRow};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: someone changed the record first.
    #[error("the record was changed by someone else (now at version {current})")]
    Conflict { current: i64 },
    #[error("not found")]
    NotFound,
    /// A unique value (an email) is already taken.
    #[error("{0} is already taken")]
    Taken(&'static str),
    #[error("settings: {0}")]
    Config(String),
    #[error("cryptography failed")]
    Crypto,
    /// Stored data that does not decode or verify.
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
    #[error("blob storage: {0}")]
    Blob(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("the store is shutting down")]
    Closed,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Which database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same body on whichever pool: the SQL text is shared, the code
/// is compiled once per backend.
macro_rules! on {
    ($db:expr, $p:ident => $body:expr) => {
        match $db {
            $crate::Db::Sqlite($p) => $body,
            $crate::Db::Postgres($p) => $body,
        }
    };
}
pub(crate) use on;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct Options {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Where blobs live (content-addressed files), unless `blob_store`.
    pub blob_dir: PathBuf,
    /// `s3://bucket[/prefix]`: blobs in an S3-compatible store instead.
    pub blob_store: Option<String>,
    /// object_store's S3 settings (`endpoint`, `region`, `aws_allow_http`…).
    pub blob_store_options: Vec<(String, String)>,
    pub data_key: DataKey,
    /// Connections for readers (PostgreSQL: for everything).
    pub max_connections: u32,
}

/// The store. Cheap to clone; share one per process.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) db: Db,
    pub(crate) cipher: crypt::Cipher,
    pub(crate) blobs: blobs::Blobs,
    pub(crate) writer: writer::Handle,
}

impl Store {
    /// Connects (creating a SQLite file if needed) and starts the writer.
    /// Does not migrate: call [`Store::migrate`].
    pub async fn open(opts: Options) -> Result<Store> {
        let db = if let Some(path) = opts.url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err(StoreError::Config("sqlite:// needs a file path".into()));
            }
            if let Some(dir) = Path::new(path).parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| StoreError::Config(format!("{}: {e}", dir.display())))?;
            }
            let co = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                // 8 MB of page cache per connection: memory stays bounded
                // (the OS caches the file too).
                .pragma("cache_size", "-8192");
            let pool = SqlitePoolOptions::new()
                .max_connections(opts.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(co)
                .await?;
            Db::Sqlite(pool)
        } else if opts.url.starts_with("postgres://") || opts.url.starts_with("postgresql://") {
            let co = PgConnectOptions::from_str(&opts.url)?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(co)
                .await?;
            Db::Postgres(pool)
        } else {
            return Err(StoreError::Config(format!(
                "the database URL must start with sqlite:// or postgres:// (got {:?})",
                opts.url.split(':').next().unwrap_or_default()
            )));
        };
        let cipher = crypt::Cipher::new(&opts.data_key)?;
        let blobs = match &opts.blob_store {
            Some(url) => blobs::Blobs::s3(url, &opts.blob_store_options)?,
            None => blobs::Blobs::local(&opts.blob_dir)?,
        };
        let writer = writer::start(db.clone());
        Ok(Store { inner: Arc::new(Inner { db, cipher, blobs, writer }) })
    }

    pub fn backend(&self) -> Backend {
        match self.inner.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations not yet applied; returns their numbers. Then
    /// seals what earlier versions kept in clear (addresses and names,
    /// before migration 9): a step SQL cannot do, as it needs the data key.
    pub async fn migrate(&self) -> Result<Vec<i64>> {
        let applied = migrate::run(&self.inner.db).await?;
        let sealed = self.seal_clear_rows().await?;
        if sealed > 0 {
            tracing::info!(rows = sealed, "sealed addresses and names stored in clear by an earlier version");
        }
        Ok(applied)
    }

    /// Whether the database answers (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        on!(&self.inner.db, p => { sqlx::query("SELECT 1").execute(p).await?; });
        Ok(())
    }

    /// Stops accepting writes and waits for the writer to finish the
    /// writes already accepted; closes the pools.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        on!(&self.inner.db, p => p.close().await);
    }

    /// Whether the database is PostgreSQL (for the SQL that differs).
    pub(crate) fn pg(&self) -> bool {
        matches!(self.inner.db, Db::Postgres(_))
    }

    /// The rows of `select` (a query ending in `IN`) for every key, asked
    /// 500 keys at a time: lookups of many ids at once.
    pub(crate) async fn select_in<T>(&self, select: &str, keys: &[String]) -> Result<Vec<T>>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(500) {
            let sql = format!("{select} ({})", Marks::new(self.pg()).list(chunk.len()));
            let rows: Vec<T> = on!(self.db(), p => {
                let mut q = sqlx::query_as(&sql);
                for k in chunk {
                    q = q.bind(k);
                }
                q.fetch_all(p).await?
            });
            out.extend(rows);
        }
        Ok(out)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.inner.db
    }
}

/// Placeholders for a statement's parameters, in binding order: `$1`,
/// `$2`… on PostgreSQL, `?` on SQLite. SQLite looks a named parameter up
/// by walking a list of all of them, so binding thousands of `$N` (a
/// multi-row insert) is quadratic: 56% of a 20,000-payment batch's time.
#[derive(Debug)]
pub(crate) struct Marks {
    pg: bool,
    n: usize,
}

impl Marks {
    pub(crate) fn new(pg: bool) -> Marks {
        Marks { pg, n: 0 }
    }

    /// The next placeholder.
    pub(crate) fn next(&mut self) -> String {
        self.n += 1;
        if self.pg { format!("${}", self.n) } else { "?".into() }
    }

    /// `count` placeholders, comma-separated.
    pub(crate) fn list(&mut self, count: usize) -> String {
        (0..count).map(|_| self.next()).collect::<Vec<_>>().join(", ")
    }
}

/// Bytes from hexadecimal (either case); None if it is not.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect()
}

/// Lowercase hexadecimal.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// A random identifier: 16 bytes from the system's CSPRNG, as hex, after
/// a prefix naming the kind (`d_` dossier, `u_` user).
pub fn new_id(prefix: &str) -> Result<String> {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| StoreError::Crypto)?;
    Ok(format!("{prefix}{}", hex(&b)))
}

/// SHA-256 of a secret token, as stored (the token itself never is).
pub fn token_hash(token: &str) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(token.as_bytes()).to_vec()
}

fn unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}
