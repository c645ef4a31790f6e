//! Group commit. Dossier writes are sent to one writer task per process;
//! it takes every write waiting (up to [`MAX_BATCH`]), runs them in one
//! transaction, each inside its own savepoint (a write that fails — a
//! version conflict — is rolled back alone), commits once, and only then
//! answers each caller. One fsync covers the whole batch, so durability
//! stays `synchronous=FULL` while throughput grows with concurrency.

use tokio::sync::{mpsc, oneshot};

use crate::{Db, Result, StoreError, on};

const MAX_BATCH: usize = 512;

/// One prepared event: the store chains `json` (the exact bytes kept) and
/// stores `body` (the same bytes, sealed).
#[derive(Debug)]
pub(crate) struct PreparedEvent {
    pub kind: String,
    pub actor: Option<String>,
    pub at: i64,
    pub json: Vec<u8>,
    /// Sealed with the row `aggregate#idx`; filled by the writer's caller
    /// once the index is known (indexes are `expected + i`).
    pub body: Vec<u8>,
}

/// A dossier write: events plus the projection row, atomically.
#[derive(Debug)]
pub(crate) struct Append {
    pub dossier: String,
    /// Present when the dossier is created by this write.
    pub create: Option<(String, String, String)>,
    pub expected: i64,
    pub events: Vec<PreparedEvent>,
    pub state: String,
    pub submitted_at: Option<i64>,
    pub updated_at: i64,
    pub decided_by: Option<String>,
    pub decided_at: Option<i64>,
    pub amount: Option<i64>,
    /// `Some(x)`: set the assignee to x (None clears it).
    pub assignee: Option<Option<String>>,
    pub flags: String,
    /// The dossier after the events, sealed; `None` for a bulk write that
    /// leaves the stored snapshot behind (`snapshot_version` says where it
    /// stopped; reading replays the events after it).
    pub snapshot: Option<Vec<u8>>,
    pub keys: Vec<(String, Vec<u8>)>,
    pub program: String,
    /// The dossier's payment line after this write, sealed (see
    /// `NewEvents::payment_line`).
    pub line: Option<Vec<u8>>,
}

/// Writes (or replaces) a dossier's payment line, at the version `a`
/// brings it to.
macro_rules! upsert_line {
    ($conn:expr, $a:expr) => {{
        let a: &$crate::writer::Append = $a;
        if let Some(line) = &a.line {
            sqlx::query(
                "INSERT INTO payment_lines (dossier, version, body) VALUES ($1, $2, $3) \
                 ON CONFLICT (dossier) DO UPDATE SET version = excluded.version, body = excluded.body",
            )
            .bind(&a.dossier)
            .bind(a.expected + a.events.len() as i64)
            .bind(line)
            .execute(&mut *$conn)
            .await?;
        }
    }};
}
pub(crate) use upsert_line;

struct Job {
    append: Append,
    reply: oneshot::Sender<Result<i64>>,
}

#[derive(Debug)]
pub(crate) struct Handle {
    tx: tokio::sync::Mutex<Option<mpsc::Sender<Job>>>,
    done: tokio::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
}

pub(crate) fn start(db: Db) -> Handle {
    let (tx, rx) = mpsc::channel::<Job>(8192);
    let task = tokio::spawn(run(db, rx));
    Handle { tx: tokio::sync::Mutex::new(Some(tx)), done: tokio::sync::Mutex::new(Some(task)) }
}

impl Handle {
    /// Queues a write and waits until it is committed (or refused).
    pub(crate) async fn append(&self, append: Append) -> Result<i64> {
        let sender = self.tx.lock().await.clone().ok_or(StoreError::Closed)?;
        let (reply, answer) = oneshot::channel();
        sender.send(Job { append, reply }).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    pub(crate) async fn close(&self) {
        self.tx.lock().await.take();
        if let Some(task) = self.done.lock().await.take() {
            let _ = task.await;
        }
    }
}

/// Applies one append inside the current transaction; returns the new
/// version. A macro so it is compiled for each backend's connection type.
macro_rules! apply_append {
    ($conn:expr, $a:expr) => {{
        let a: &$crate::writer::Append = $a;
        let conn = $conn;
        async {
            let n = a.events.len() as i64;
            let version = a.expected + n;
            // The previous link: zeros for a new dossier; else read while
            // taking the row (the version check is the lock).
            let prev: Vec<u8> = if a.create.is_some() {
                vec![0u8; 32]
            } else {
                let row: Option<(Vec<u8>,)> = sqlx::query_as(
                    "UPDATE dossiers SET version = $3 WHERE id = $1 AND version = $2 RETURNING last_link",
                )
                .bind(&a.dossier)
                .bind(a.expected)
                .bind(version)
                .fetch_optional(&mut *conn)
                .await?;
                match row {
                    Some((l,)) => l,
                    None => {
                        let current: Option<i64> = sqlx::query_scalar("SELECT version FROM dossiers WHERE id = $1")
                            .bind(&a.dossier)
                            .fetch_optional(&mut *conn)
                            .await?;
                        return Err(match current {
                            Some(c) => $crate::StoreError::Conflict { current: c },
                            None => $crate::StoreError::NotFound,
                        });
                    }
                }
            };
            let mut link: [u8; 32] = prev
                .as_slice()
                .try_into()
                .map_err(|_| $crate::StoreError::Corrupt(format!("dossier {}: bad last link", a.dossier)))?;
            let mut links = Vec::with_capacity(a.events.len());
            for e in &a.events {
                link = guichet_core::link_json(&link, &e.json);
                links.push(link.to_vec());
            }
            if let Some((program, program_version, applicant)) = &a.create {
                let Some(snapshot) = &a.snapshot else {
                    return Err($crate::StoreError::Corrupt(format!("dossier {}: created without its state", a.dossier)));
                };
                let inserted = sqlx::query(
                    "INSERT INTO dossiers (id, program, program_version, applicant, state, version, last_link, \
                     created_at, submitted_at, updated_at, decided_by, amount, flags, assignee, decided_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10, $11, $12, $13, $14) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&a.dossier)
                .bind(program)
                .bind(program_version)
                .bind(applicant)
                .bind(&a.state)
                .bind(version)
                .bind(link.to_vec())
                .bind(a.updated_at)
                .bind(a.submitted_at)
                .bind(&a.decided_by)
                .bind(a.amount)
                .bind(&a.flags)
                .bind(a.assignee.clone().flatten())
                .bind(a.decided_at)
                .execute(&mut *conn)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err($crate::StoreError::Conflict { current: -1 });
                }
                sqlx::query("INSERT INTO dossier_snapshots (id, body) VALUES ($1, $2)")
                    .bind(&a.dossier)
                    .bind(snapshot)
                    .execute(&mut *conn)
                    .await?;
            } else {
                // A new snapshot is current (snapshot_version NULL: $9 is
                // then -1). Without one, the stored snapshot stays where it
                // was: $9 is the version before these events, kept unless
                // it was already behind.
                sqlx::query(
                    "UPDATE dossiers SET last_link = $2, state = $3, submitted_at = $4, updated_at = $5, \
                     decided_by = $6, amount = $7, flags = $8, \
                     snapshot_version = CASE WHEN $9 < 0 THEN NULL ELSE COALESCE(snapshot_version, $9) END, \
                     assignee = CASE WHEN $10 = 1 THEN $11 ELSE assignee END, decided_at = $12 WHERE id = $1",
                )
                .bind(&a.dossier)
                .bind(link.to_vec())
                .bind(&a.state)
                .bind(a.submitted_at)
                .bind(a.updated_at)
                .bind(&a.decided_by)
                .bind(a.amount)
                .bind(&a.flags)
                .bind(if a.snapshot.is_some() { -1 } else { a.expected })
                .bind(a.assignee.is_some() as i64)
                .bind(a.assignee.clone().flatten())
                .bind(a.decided_at)
                .execute(&mut *conn)
                .await?;
                if let Some(snapshot) = &a.snapshot {
                    sqlx::query("UPDATE dossier_snapshots SET body = $2 WHERE id = $1")
                        .bind(&a.dossier)
                        .bind(snapshot)
                        .execute(&mut *conn)
                        .await?;
                }
            }
            // All the events in one statement.
            let aggregate = format!("dossier:{}", a.dossier);
            let mut sql = String::from("INSERT INTO events (aggregate, idx, kind, actor, at, body, link) VALUES ");
            for i in 0..a.events.len() {
                let b = 1 + 6 * i;
                if i > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&format!("($1, ${}, ${}, ${}, ${}, ${}, ${})", b + 1, b + 2, b + 3, b + 4, b + 5, b + 6));
            }
            let mut q = sqlx::query(&sql).bind(&aggregate);
            for (i, (e, l)) in a.events.iter().zip(&links).enumerate() {
                q = q.bind(a.expected + i as i64).bind(&e.kind).bind(&e.actor).bind(e.at).bind(&e.body).bind(l);
            }
            if !a.events.is_empty() {
                q.execute(&mut *conn).await?;
            }
            for (kind, digest) in &a.keys {
                sqlx::query(
                    "INSERT INTO dossier_keys (dossier, program, kind, digest) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (dossier, kind) DO UPDATE SET digest = excluded.digest",
                )
                .bind(&a.dossier)
                .bind(&a.program)
                .bind(kind)
                .bind(digest)
                .execute(&mut *conn)
                .await?;
            }
            $crate::writer::upsert_line!(conn, a);
            Ok::<i64, $crate::StoreError>(version)
        }
        .await
    }};
}

pub(crate) use apply_append;

/// Applies many appends to existing dossiers inside the current
/// transaction with a few statements per few hundred dossiers (a payment
/// batch touches 100,000): the previous links read at once, every event in
/// multi-row inserts, every projection row in one `UPDATE … FROM` per
/// chunk with its version check. Any version mismatch fails the whole
/// call (`Conflict`). No snapshot is sealed: each row keeps the version
/// its snapshot was taken at. Creations, duplicate keys and writes that
/// bring a snapshot go one by one.
macro_rules! apply_appends {
    ($conn:expr, $appends:expr, $pg:expr) => {{
        let appends: &[$crate::writer::Append] = $appends;
        let pg: bool = $pg;
        let conn = $conn;
        async {
            // In key order (stable: a dossier's own writes keep theirs): the
            // events' and dossiers' index pages are written in sequence, not
            // at random.
            let mut ordered: Vec<&$crate::writer::Append> = appends.iter().collect();
            ordered.sort_by(|x, y| x.dossier.cmp(&y.dossier));
            for chunk in ordered.chunks(300) {
                let distinct: std::collections::HashSet<&str> = chunk.iter().map(|a| a.dossier.as_str()).collect();
                // The bulk path leaves every snapshot behind (see
                // `Append::snapshot`); anything else goes one by one.
                if distinct.len() != chunk.len()
                    || chunk.iter().any(|a| a.create.is_some() || !a.keys.is_empty() || a.snapshot.is_some())
                {
                    for a in chunk {
                        $crate::writer::apply_append!(&mut *conn, a)?;
                    }
                    continue;
                }
                // The previous links and versions.
                let marks = $crate::Marks::new(pg).list(chunk.len());
                let sql = format!("SELECT id, version, last_link FROM dossiers WHERE id IN ({marks})");
                let mut q = sqlx::query_as::<_, (String, i64, Vec<u8>)>(&sql);
                for a in chunk {
                    q = q.bind(&a.dossier);
                }
                let current: std::collections::HashMap<String, (i64, Vec<u8>)> =
                    q.fetch_all(&mut *conn).await?.into_iter().map(|(id, v, l)| (id, (v, l))).collect();
                let mut links: Vec<Vec<Vec<u8>>> = Vec::with_capacity(chunk.len());
                for a in chunk {
                    let Some((version, prev)) = current.get(&a.dossier) else {
                        return Err($crate::StoreError::NotFound);
                    };
                    if *version != a.expected {
                        return Err($crate::StoreError::Conflict { current: *version });
                    }
                    let mut link: [u8; 32] = prev
                        .as_slice()
                        .try_into()
                        .map_err(|_| $crate::StoreError::Corrupt(format!("dossier {}: bad last link", a.dossier)))?;
                    let mut l = Vec::with_capacity(a.events.len());
                    for e in &a.events {
                        link = guichet_core::link_json(&link, &e.json);
                        l.push(link.to_vec());
                    }
                    links.push(l);
                }
                // Every event, many rows per statement.
                let rows: Vec<(&$crate::writer::Append, usize, &Vec<u8>)> = chunk
                    .iter()
                    .zip(&links)
                    .flat_map(|(a, l)| l.iter().enumerate().map(move |(i, link)| (*a, i, link)))
                    .collect();
                for part in rows.chunks(400) {
                    let mut sql =
                        String::from("INSERT INTO events (aggregate, idx, kind, actor, at, body, link) VALUES ");
                    let mut m = $crate::Marks::new(pg);
                    for i in 0..part.len() {
                        if i > 0 {
                            sql.push_str(", ");
                        }
                        sql.push_str(&format!("({})", m.list(7)));
                    }
                    let mut q = sqlx::query(&sql);
                    for (a, i, link) in part {
                        let e = &a.events[*i];
                        q = q
                            .bind(format!("dossier:{}", a.dossier))
                            .bind(a.expected + *i as i64)
                            .bind(&e.kind)
                            .bind(&e.actor)
                            .bind(e.at)
                            .bind(&e.body)
                            .bind(*link);
                    }
                    q.execute(&mut *conn).await?;
                }
                // Every projection row, with its version check; the stored
                // snapshot stays where it was (the version before, unless
                // already behind).
                let types: [&str; 12] = if pg {
                    ["::text", "::bigint", "::bigint", "::bytea", "::text", "::bigint", "::bigint", "::text", "::bigint", "::text", "::text", "::bigint"]
                } else {
                    [""; 12]
                };
                let mut sql = String::from(
                    "WITH v(id, expected, version, last_link, state, submitted_at, updated_at, decided_by, amount, flags, \
                     assignee, decided_at) AS (VALUES ",
                );
                let mut m = $crate::Marks::new(pg);
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let cols: Vec<String> = types.iter().map(|t| format!("{}{t}", m.next())).collect();
                    sql.push_str(&format!("({})", cols.join(", ")));
                }
                sql.push_str(
                    ") UPDATE dossiers SET version = v.version, last_link = v.last_link, state = v.state, \
                     submitted_at = v.submitted_at, updated_at = v.updated_at, decided_by = v.decided_by, \
                     amount = v.amount, flags = v.flags, assignee = v.assignee, decided_at = v.decided_at, \
                     snapshot_version = COALESCE(dossiers.snapshot_version, v.expected) \
                     FROM v WHERE dossiers.id = v.id AND dossiers.version = v.expected",
                );
                let mut q = sqlx::query(&sql);
                for (a, l) in chunk.iter().zip(&links) {
                    let last = l
                        .last()
                        .cloned()
                        .unwrap_or_else(|| current.get(&a.dossier).map(|c| c.1.clone()).unwrap_or_default());
                    q = q
                        .bind(&a.dossier)
                        .bind(a.expected)
                        .bind(a.expected + a.events.len() as i64)
                        .bind(last)
                        .bind(&a.state)
                        .bind(a.submitted_at)
                        .bind(a.updated_at)
                        .bind(&a.decided_by)
                        .bind(a.amount)
                        .bind(&a.flags)
                        .bind(a.assignee.clone().flatten())
                        .bind(a.decided_at);
                }
                let done = q.execute(&mut *conn).await?.rows_affected();
                if done != chunk.len() as u64 {
                    return Err($crate::StoreError::Conflict { current: -1 });
                }
                // The few lines (a returned payment's dossier is back in the
                // queue), one by one.
                for a in chunk {
                    $crate::writer::upsert_line!(conn, *a);
                }
            }
            Ok::<(), $crate::StoreError>(())
        }
        .await
    }};
}

pub(crate) use apply_appends;

async fn run(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let results = commit_batch(&db, &batch).await;
        for (job, r) in batch.into_iter().zip(results) {
            let _ = job.reply.send(r);
        }
    }
}

/// Runs a batch; returns one result per job. If the commit itself fails,
/// every write of the batch fails with it (none was applied).
async fn commit_batch(db: &Db, batch: &[Job]) -> Vec<Result<i64>> {
    let mut results: Vec<Result<i64>> = Vec::with_capacity(batch.len());
    let outcome: Result<()> = async {
        on!(db, p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(db, &mut *tx).await?;
            for job in batch {
                let mut sp = sqlx::Connection::begin(&mut *tx).await?;
                let r = apply_append!(&mut *sp, &job.append);
                match r {
                    Ok(v) => {
                        sp.commit().await?;
                        results.push(Ok(v));
                    }
                    Err(e) => {
                        sp.rollback().await?;
                        results.push(Err(e));
                    }
                }
            }
            tx.commit().await?;
        });
        Ok(())
    }
    .await;
    match outcome {
        Ok(()) => results,
        Err(e) => {
            let msg = e.to_string();
            tracing::error!(error = %msg, writes = batch.len(), "group commit failed");
            batch.iter().map(|_| Err(StoreError::Db(sqlx::Error::Protocol(format!("commit failed: {msg}"))))).collect()
        }
    }
}
