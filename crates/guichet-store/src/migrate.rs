//! Numbered migrations, one list per backend (same numbers, same tables).
//! Each runs in its own transaction with its row in `schema_migrations`;
//! on PostgreSQL an advisory lock keeps two nodes from migrating at once.

use crate::{Db, Result, on};

const SQLITE: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/sqlite/0001_initial.sql")),
    (2, "settings", include_str!("../migrations/sqlite/0002_settings.sql")),
    (3, "decided_at", include_str!("../migrations/sqlite/0003_decided_at.sql")),
    (4, "signatures", include_str!("../migrations/sqlite/0004_signatures.sql")),
    (5, "mail_delivery", include_str!("../migrations/sqlite/0005_mail_delivery.sql")),
    (6, "payments", include_str!("../migrations/sqlite/0006_payments.sql")),
    (7, "payment_files", include_str!("../migrations/sqlite/0007_payment_files.sql")),
    (8, "snapshot_version", include_str!("../migrations/sqlite/0008_snapshot_version.sql")),
    (9, "sealed_contacts", include_str!("../migrations/sqlite/0009_sealed_contacts.sql")),
    (10, "snapshots_apart", include_str!("../migrations/sqlite/0010_snapshots_apart.sql")),
    (11, "batch_payees", include_str!("../migrations/sqlite/0011_batch_payees.sql")),
];
const POSTGRES: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (2, "settings", include_str!("../migrations/postgres/0002_settings.sql")),
    (3, "decided_at", include_str!("../migrations/postgres/0003_decided_at.sql")),
    (4, "signatures", include_str!("../migrations/postgres/0004_signatures.sql")),
    (5, "mail_delivery", include_str!("../migrations/postgres/0005_mail_delivery.sql")),
    (6, "payments", include_str!("../migrations/postgres/0006_payments.sql")),
    (7, "payment_files", include_str!("../migrations/postgres/0007_payment_files.sql")),
    (8, "snapshot_version", include_str!("../migrations/postgres/0008_snapshot_version.sql")),
    (9, "sealed_contacts", include_str!("../migrations/postgres/0009_sealed_contacts.sql")),
    (10, "snapshots_apart", include_str!("../migrations/postgres/0010_snapshots_apart.sql")),
    (11, "batch_payees", include_str!("../migrations/postgres/0011_batch_payees.sql")),
];

const TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL)";

fn list(db: &Db) -> &'static [(i64, &'static str, &'static str)] {
    match db {
        Db::Sqlite(_) => SQLITE,
        Db::Postgres(_) => POSTGRES,
    }
}

pub(crate) async fn run(db: &Db) -> Result<Vec<i64>> {
    run_list(db, list(db)).await
}

async fn run_list(db: &Db, list: &[(i64, &str, &str)]) -> Result<Vec<i64>> {
    let mut applied = Vec::new();
    on!(db, p => {
        sqlx::raw_sql(TABLE).execute(p).await?;
        for (version, name, sql) in list {
            let mut tx = p.begin().await?;
            if matches!(db, Db::Postgres(_)) {
                sqlx::raw_sql("SELECT pg_advisory_xact_lock(7212)").execute(&mut *tx).await?;
            }
            let done: Option<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations WHERE version = $1")
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            sqlx::raw_sql(sql).execute(&mut *tx).await?;
            sqlx::query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)")
                .bind(version)
                .bind(*name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            applied.push(*version);
        }
    });
    Ok(applied)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Same numbers on both backends, and the PostgreSQL schema declares
    /// the same tables and columns as SQLite's.
    #[test]
    fn both_backends_have_the_same_migrations() {
        assert_eq!(
            SQLITE.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>(),
            POSTGRES.iter().map(|m| (m.0, m.1)).collect::<Vec<_>>()
        );
        let columns = |sql: &str| -> Vec<String> {
            sql.lines()
                .map(str::trim)
                .filter(|l| !l.starts_with("--"))
                .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
                .collect()
        };
        for (s, p) in SQLITE.iter().zip(POSTGRES) {
            assert_eq!(columns(s.2), columns(p.2), "migration {}", s.0);
        }
    }

    /// A fresh store of backend `b` with the migrations before `version`.
    async fn store_before(b: &str, version: i64) -> crate::Store {
        let opts = crate::testing::fresh_options(b).await.expect("database");
        let store = crate::Store::open(opts).await.expect("open");
        let before: Vec<_> = list(store.db()).iter().filter(|m| m.0 < version).copied().collect();
        assert_eq!(run_list(store.db(), &before).await.expect("migrations").len() as i64, version - 1);
        store
    }

    /// Migration 10 moves each dossier's snapshot to its own table, byte
    /// for byte, and the row no longer carries it.
    #[test]
    fn snapshots_move_apart_with_their_bytes() {
        for b in crate::testing::backends() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let store = store_before(b, 10).await;
                let db = store.db();
                on!(db, p => {
                    sqlx::query(
                        "INSERT INTO dossiers (id, program, program_version, applicant, state, version, last_link, \
                         created_at, updated_at, flags, snapshot) \
                         VALUES ('d_old', 'p', 'v1', 'u_a', 'draft', 1, $1, 1, 1, '[]', $2)",
                    )
                    .bind(vec![7u8; 32])
                    .bind(b"sealed state".to_vec())
                    .execute(p)
                    .await
                    .expect("old row");
                });
                let tenth: Vec<_> = list(db).iter().filter(|m| m.0 <= 10).copied().collect();
                assert_eq!(run_list(db, &tenth).await.expect("10"), vec![10]);
                on!(db, p => {
                    let body: Vec<u8> = sqlx::query_scalar("SELECT body FROM dossier_snapshots WHERE id = 'd_old'")
                        .fetch_one(p)
                        .await
                        .expect("moved");
                    assert_eq!(body, b"sealed state");
                    assert!(sqlx::query("SELECT snapshot FROM dossiers").fetch_all(p).await.is_err(), "column gone");
                });
                store.close().await;
            });
        }
    }

    /// A batch built before migration 11 keeps its payees in its payment
    /// rows, each sealed, and its bank files as written (not compressed):
    /// both are still read, the payees in file order, the file byte for
    /// byte.
    #[test]
    fn payees_of_a_batch_from_before_slices_are_read_from_its_rows() {
        use sha2::Digest;
        const FILE: &[u8] = b"<Document>pain.001 as written in 2025</Document>";
        for b in crate::testing::backends() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let store = store_before(b, 11).await;
                let db = store.db();
                let payee = |name: &str| crate::PayeeDetails {
                    name: name.into(),
                    institution: "006".into(),
                    transit: "10000".into(),
                    account: "1234567".into(),
                    remittance: "r".into(),
                    notify: None,
                };
                let sealed = |reference: &str, name: &str| {
                    let json = serde_json::to_vec(&payee(name)).expect("json");
                    store.inner.cipher.seal(&format!("payment:{reference}"), &json).expect("seal")
                };
                on!(db, p => {
                    sqlx::query(
                        "INSERT INTO payment_batches (id, direction, state, currency, count, total, file_number, \
                         created_local, execution_date, created_by, created_at, pain001_sha256) \
                         VALUES ('B', 'credit', 'created', 'CAD', 2, 3, 1, '', '', 'u', 1, $1)",
                    )
                    .bind(crate::hex(&sha2::Sha256::digest(FILE)))
                    .execute(p)
                    .await
                    .expect("old batch");
                    sqlx::query("INSERT INTO payment_files (batch, format, body) VALUES ('B', 'pain001', $1)")
                        .bind(store.inner.cipher.seal("payment-file:B:pain001", FILE).expect("seal"))
                        .execute(p)
                        .await
                        .expect("old file");
                    for (seq, reference, name) in [(1i64, "P2", "Bob"), (0, "P1", "Alice")] {
                        sqlx::query(
                            "INSERT INTO payments (reference, batch, seq, dossier, amount, currency, state, details, \
                             updated_at) VALUES ($1, 'B', $2, 'd', 1, 'CAD', 'scheduled', $3, 1)",
                        )
                        .bind(reference)
                        .bind(seq)
                        .bind(sealed(reference, name))
                        .execute(p)
                        .await
                        .expect("old payment");
                    }
                });
                assert_eq!(run(db).await.expect("11"), vec![11]);
                assert_eq!(store.batch_payees("B").await.expect("payees"), vec![payee("Alice"), payee("Bob")]);
                let (bytes, _) = store.payment_file("B", "pain001").await.expect("file").expect("kept");
                assert_eq!(bytes, FILE);
                store.close().await;
            });
        }
    }
}
