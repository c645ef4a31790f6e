//! Fresh databases for tests (this crate's, and the service's HTTP
//! tests): SQLite always; PostgreSQL too when `GUICHET_TEST_POSTGRES`
//! holds an administrator URL (`.ci/run` sets it).

use crate::{DataKey, Options, Result, Store, StoreError};
use std::path::PathBuf;

/// The backends to test on: `"sqlite"`, and `"postgres"` when configured.
pub fn backends() -> Vec<&'static str> {
    let mut v = vec!["sqlite"];
    if std::env::var("GUICHET_TEST_POSTGRES").is_ok_and(|s| !s.is_empty()) {
        v.push("postgres");
    }
    v
}

/// A scratch folder under the system's temporary directory.
pub fn scratch_dir(tag: &str) -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("guichet-test-{tag}-{}", crate::new_id("")?));
    std::fs::create_dir_all(&dir).map_err(|e| StoreError::Config(e.to_string()))?;
    Ok(dir)
}

/// The URL of a new, empty database on `backend`.
pub async fn fresh_database_url(backend: &str, dir: &std::path::Path) -> Result<String> {
    match backend {
        "sqlite" => Ok(format!("sqlite://{}", dir.join("guichet.db").display())),
        "postgres" => {
            let admin = std::env::var("GUICHET_TEST_POSTGRES")
                .map_err(|_| StoreError::Config("GUICHET_TEST_POSTGRES is not set".into()))?;
            let name = crate::new_id("guichet_test_")?;
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&admin).await?;
            sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
            c.close().await?;
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            Ok(format!("{base}/{name}"))
        }
        other => Err(StoreError::Config(format!("unknown backend {other}"))),
    }
}

/// Options for a store on a new, empty database (not migrated), with its
/// scratch folder and a new data key.
pub async fn fresh_options(backend: &str) -> Result<Options> {
    let dir = scratch_dir(backend)?;
    let url = fresh_database_url(backend, &dir).await?;
    Ok(Options {
        url,
        blob_dir: dir.join("blobs"),
        blob_store: None,
        blob_store_options: Vec::new(),
        data_key: DataKey::generate()?,
        max_connections: 8,
    })
}

/// A migrated store on a new database, with its scratch folder.
pub async fn fresh_store(backend: &str) -> Result<(Store, Options)> {
    let opts = fresh_options(backend).await?;
    let store = Store::open(opts.clone()).await?;
    store.migrate().await?;
    Ok((store, opts))
}

/// Forgets every dossier's payment line (a projection: the payment queue
/// then opens each dossier instead), so a test can compare both reads.
pub async fn forget_payment_lines(store: &Store) -> Result<u64> {
    Ok(crate::on!(store.db(), p => sqlx::query("DELETE FROM payment_lines").execute(p).await?.rows_affected()))
}
