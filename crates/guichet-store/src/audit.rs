//! The audit trail's integrity: chains, checkpoints, verification.
//!
//! Each aggregate's events are chained (see `guichet_core::link_json`);
//! a checkpoint takes every event written since the last one, in `seq`
//! order, computes the RFC 6962 Merkle root of their links, and signs
//! `guichet checkpoint v1 ‖ first ‖ last ‖ root` with the organization's
//! Ed25519 key. [`Store::verify_audit`] re-derives all of it.
//!
//! On PostgreSQL, sequence numbers are handed out before commit, so a
//! checkpoint could otherwise skip an event that commits late with a
//! smaller `seq`: every transaction that appends events holds a shared
//! advisory lock, and a checkpoint takes it exclusively.

use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use guichet_core::{Dossier, Event, Hash, link_json, merkle_root};
use serde::Serialize;

use crate::{Db, Result, Store, StoreError, hex, on};

const EVENTS_LOCK: i64 = 7213;

pub(crate) trait EventsLock {
    async fn lock(&mut self, exclusive: bool) -> Result<()>;
}

impl EventsLock for sqlx::SqliteConnection {
    async fn lock(&mut self, _exclusive: bool) -> Result<()> {
        // One writer at a time already: SQLite serializes write
        // transactions. This one takes the write lock now.
        sqlite_write_lock(self).await
    }
}

/// On SQLite, takes the database's write lock at the start of a
/// transaction, before it reads anything. A deferred transaction that reads
/// and then writes fails at once with "database is locked" when another
/// connection committed in between (its snapshot is stale: no busy timeout
/// helps; seen as a 500 when a bank file was handed out while the notices
/// of the first hand-out were being queued). One that starts by writing
/// waits for the lock (`busy_timeout`) instead. A write that matches no
/// row takes the lock and changes nothing.
pub(crate) async fn sqlite_write_lock(c: &mut sqlx::SqliteConnection) -> Result<()> {
    sqlx::query("UPDATE schema_migrations SET name = name WHERE version < 0").execute(c).await?;
    Ok(())
}

impl EventsLock for sqlx::PgConnection {
    async fn lock(&mut self, exclusive: bool) -> Result<()> {
        let sql =
            if exclusive { "SELECT pg_advisory_xact_lock($1)" } else { "SELECT pg_advisory_xact_lock_shared($1)" };
        sqlx::query(sql).bind(EVENTS_LOCK).execute(self).await?;
        Ok(())
    }
}

pub(crate) async fn lock_events_shared<C: EventsLock>(_db: &Db, c: &mut C) -> Result<()> {
    c.lock(false).await
}

/// Appends one event (a JSON object with a `type`) to an aggregate other
/// than a dossier, inside the caller's transaction.
macro_rules! append_event {
    ($conn:expr, $store:expr, $aggregate:expr, $actor:expr, $at:expr, $event:expr) => {{
        let conn = $conn;
        let aggregate: &str = $aggregate;
        let event: &serde_json::Value = $event;
        let json = serde_json::to_vec(event).map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?;
        let kind = event.get("type").and_then(|t| t.as_str()).unwrap_or("unknown").to_owned();
        let last: Option<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT idx, link FROM events WHERE aggregate = $1 ORDER BY idx DESC LIMIT 1")
                .bind(aggregate)
                .fetch_optional(&mut *conn)
                .await?;
        let (idx, prev) = match last {
            Some((i, l)) => (i + 1, l),
            None => (0, vec![0u8; 32]),
        };
        let prev: [u8; 32] =
            prev.as_slice().try_into().map_err(|_| $crate::StoreError::Corrupt(format!("{aggregate}: bad link")))?;
        let link = guichet_core::link_json(&prev, &json);
        let body = $store.inner.cipher.seal(&format!("{aggregate}#{idx}"), &json)?;
        sqlx::query(
            "INSERT INTO events (aggregate, idx, kind, actor, at, body, link) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(aggregate)
        .bind(idx)
        .bind(kind)
        .bind($actor)
        .bind($at)
        .bind(body)
        .bind(link.to_vec())
        .execute(&mut *conn)
        .await?;
    }};
}
pub(crate) use append_event;

/// The schedulings left for a dossier after its own last event (versions
/// `expected`, `expected + 1`…, smallest last in `slots`), moved to its
/// events; a break if one does not fit there.
fn trailing_slots(
    aggregate: &str,
    slots: &mut Vec<(i64, Event)>,
    mut expected: i64,
    events: &mut Vec<Event>,
) -> Option<String> {
    take_slots(slots, &mut expected, events);
    slots.last().map(|(v, _)| {
        format!(
            "{aggregate}: a payment batch scheduled its payment at version {v}, where its history has {}",
            if *v < expected { "another event" } else { "a gap before it" }
        )
    })
}

/// Moves the schedulings at versions `expected`, `expected + 1`… (the
/// smallest last in `slots`) to `events`, advancing `expected`.
fn take_slots(slots: &mut Vec<(i64, Event)>, expected: &mut i64, events: &mut Vec<Event>) {
    while slots.last().is_some_and(|(v, _)| *v == *expected) {
        if let Some((_, e)) = slots.pop() {
            events.push(e);
        }
        *expected += 1;
    }
}

/// The organization's checkpoint key (Ed25519). Until the organization's
/// PAdES key signs checkpoints, this software key does; keep its PKCS#8
/// file with the other secrets.
#[derive(Debug)]
pub struct CheckpointKey(Ed25519KeyPair);

impl CheckpointKey {
    /// A new key, as PKCS#8 bytes to keep.
    pub fn generate_pkcs8() -> Result<Vec<u8>> {
        let rng = aws_lc_rs::rand::SystemRandom::new();
        Ok(Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| StoreError::Crypto)?.as_ref().to_vec())
    }

    pub fn from_pkcs8(der: &[u8]) -> Result<CheckpointKey> {
        Ed25519KeyPair::from_pkcs8(der)
            .map(CheckpointKey)
            .map_err(|_| StoreError::Config("the checkpoint key is not an Ed25519 PKCS#8 key".into()))
    }

    pub fn public_key(&self) -> Vec<u8> {
        self.0.public_key().as_ref().to_vec()
    }
}

/// A signed checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    pub first_seq: i64,
    pub last_seq: i64,
    pub events: usize,
    pub root: String,
    pub at: i64,
}

fn checkpoint_message(first: i64, last: i64, root: &Hash) -> Vec<u8> {
    format!("guichet checkpoint v1\n{first}\n{last}\n{}\n", hex(root)).into_bytes()
}

/// What `audit verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AuditReport {
    pub aggregates: usize,
    pub events: usize,
    pub dossiers: usize,
    pub checkpoints: usize,
    /// Events written after the last checkpoint.
    pub unchecked_events: usize,
    /// The first problem found, in log order; `None` when all is intact.
    pub first_broken: Option<String>,
}

fn to_hash(v: &[u8], what: &str) -> Result<Hash> {
    v.try_into().map_err(|_| StoreError::Corrupt(format!("{what}: a link is not 32 bytes")))
}

/// One line of the audit log (no event body: those are sealed and read
/// per dossier).
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    pub seq: i64,
    pub aggregate: String,
    pub index: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub at: i64,
}

impl Store {
    /// The latest events, newest first, filtered by aggregate prefix
    /// (`dossier:`, `user:`…), actor and kind; `before` pages back by seq.
    pub async fn audit_log(
        &self,
        aggregate_prefix: Option<&str>,
        actor: Option<&str>,
        kind: Option<&str>,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<LogLine>> {
        let rows: Vec<(i64, String, i64, String, Option<String>, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT seq, aggregate, idx, kind, actor, at FROM events \
             WHERE ($1 = '' OR aggregate LIKE $1 || '%') AND ($2 = '' OR actor = $2) AND ($3 = '' OR kind = $3) \
             AND seq < $4 ORDER BY seq DESC LIMIT $5",
        )
        .bind(aggregate_prefix.unwrap_or(""))
        .bind(actor.unwrap_or(""))
        .bind(kind.unwrap_or(""))
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit.clamp(1, 500))
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(seq, aggregate, index, kind, actor, at)| LogLine { seq, aggregate, index, kind, actor, at })
            .collect())
    }

    /// Signs a checkpoint over the events written since the last one;
    /// `None` when there are none.
    pub async fn checkpoint(&self, key: &CheckpointKey, at: i64) -> Result<Option<Checkpoint>> {
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            (*tx).lock(true).await?;
            let after: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(last_seq), 0) FROM checkpoints")
                .fetch_one(&mut *tx)
                .await?;
            let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT seq, link FROM events WHERE seq > $1 ORDER BY seq")
                .bind(after)
                .fetch_all(&mut *tx)
                .await?;
            let Some(last) = rows.last().map(|r| r.0) else { return Ok(None) };
            let links = rows.iter().map(|r| to_hash(&r.1, "checkpoint")).collect::<Result<Vec<_>>>()?;
            let root = merkle_root(&links);
            let first = after + 1;
            let sig = key.0.sign(&checkpoint_message(first, last, &root));
            sqlx::query(
                "INSERT INTO checkpoints (first_seq, last_seq, root, signature, public_key, at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(first)
            .bind(last)
            .bind(root.to_vec())
            .bind(sig.as_ref().to_vec())
            .bind(key.public_key())
            .bind(at)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(Some(Checkpoint { first_seq: first, last_seq: last, events: links.len(), root: hex(&root), at }))
        })
    }

    /// Re-checks every chain (and that each dossier's stored state is what
    /// its events replay to) and every checkpoint (root and signature; the
    /// signer must be `trusted_key` when given). Stops at the first break.
    pub async fn verify_audit(&self, trusted_key: Option<&[u8]>) -> Result<AuditReport> {
        let mut report = AuditReport::default();
        if let Some(broken) = self.verify_chains(&mut report).await? {
            report.first_broken = Some(broken);
            return Ok(report);
        }
        report.first_broken = self.verify_checkpoints(trusted_key, &mut report).await?;
        Ok(report)
    }

    async fn verify_chains(&self, report: &mut AuditReport) -> Result<Option<String>> {
        const PAGE: i64 = 5000;
        let mut cursor: (String, i64) = (String::new(), -1);
        let mut current: Option<String> = None;
        let mut expected_idx = 0i64;
        let mut prev: Hash = [0u8; 32];
        let mut dossier_events: Vec<Event> = Vec::new();
        // The dossiers' payments scheduled by batches, from the batches'
        // own (chained) events: they take their place in each dossier's
        // history, at the version each names.
        let mut slots = match self.batch_slots().await? {
            Ok(s) => s,
            Err(broken) => return Ok(Some(broken)),
        };
        let mut dossier_slots: Vec<(i64, Event)> = Vec::new();
        loop {
            let rows: Vec<(String, i64, Vec<u8>, Vec<u8>)> = on!(self.db(), p => sqlx::query_as(
                "SELECT aggregate, idx, body, link FROM events WHERE aggregate > $1 OR (aggregate = $1 AND idx > $2) \
                 ORDER BY aggregate, idx LIMIT $3",
            )
            .bind(&cursor.0)
            .bind(cursor.1)
            .bind(PAGE)
            .fetch_all(p)
            .await?);
            let end = (rows.len() as i64) < PAGE;
            for (aggregate, idx, body, link) in rows {
                if current.as_deref() != Some(&aggregate) {
                    if let Some(done) = current.take() {
                        if let Some(b) = trailing_slots(&done, &mut dossier_slots, expected_idx, &mut dossier_events) {
                            return Ok(Some(b));
                        }
                        if let Some(b) = self.finish_aggregate(&done, &dossier_events, &prev, report).await? {
                            return Ok(Some(b));
                        }
                    }
                    current = Some(aggregate.clone());
                    report.aggregates += 1;
                    expected_idx = 0;
                    prev = [0u8; 32];
                    dossier_events.clear();
                    dossier_slots =
                        aggregate.strip_prefix("dossier:").and_then(|id| slots.remove(id)).unwrap_or_default();
                    dossier_slots.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
                }
                // The versions a batch's event holds for this dossier.
                take_slots(&mut dossier_slots, &mut expected_idx, &mut dossier_events);
                let here = format!("{aggregate} event {idx}");
                if idx != expected_idx {
                    return Ok(Some(format!("{here}: expected event {expected_idx} (an event is missing)")));
                }
                let plain = match self.inner.cipher.open(&format!("{aggregate}#{idx}"), &body) {
                    Ok(p) => p,
                    Err(e) => return Ok(Some(format!("{here}: {e}"))),
                };
                let l = link_json(&prev, &plain);
                if l.as_slice() != link.as_slice() {
                    return Ok(Some(format!(
                        "{here}: does not follow from the event before (the history was changed)"
                    )));
                }
                if aggregate.starts_with("dossier:") {
                    match serde_json::from_slice::<Event>(&plain) {
                        Ok(e) => dossier_events.push(e),
                        Err(e) => return Ok(Some(format!("{here}: unreadable event: {e}"))),
                    }
                }
                prev = l;
                expected_idx += 1;
                report.events += 1;
                cursor = (aggregate, idx);
            }
            if end {
                break;
            }
        }
        if let Some(done) = current.take() {
            if let Some(b) = trailing_slots(&done, &mut dossier_slots, expected_idx, &mut dossier_events) {
                return Ok(Some(b));
            }
            if let Some(b) = self.finish_aggregate(&done, &dossier_events, &prev, report).await? {
                return Ok(Some(b));
            }
        }
        if let Some((id, _)) = slots.iter().next() {
            return Ok(Some(format!("dossier:{id}: a payment batch scheduled its payment but it has no events")));
        }
        let rows = self.count_dossiers().await?;
        if rows as usize != report.dossiers {
            return Ok(Some(format!("{rows} dossiers are stored but {} have events", report.dossiers)));
        }
        Ok(None)
    }

    /// What the batches' events scheduled: dossier → [(version, event)],
    /// or the first batch event that cannot be read.
    async fn batch_slots(
        &self,
    ) -> Result<std::result::Result<std::collections::HashMap<String, Vec<(i64, Event)>>, String>> {
        let rows: Vec<(String, i64, i64, Vec<u8>)> = on!(self.db(), p => sqlx::query_as(
            "SELECT aggregate, idx, at, body FROM events WHERE kind = 'batch_created' ORDER BY seq",
        )
        .fetch_all(p)
        .await?);
        let mut out: std::collections::HashMap<String, Vec<(i64, Event)>> = Default::default();
        for (aggregate, idx, at, body) in rows {
            let here = format!("{aggregate} event {idx}");
            let Some(batch) = aggregate.strip_prefix("batch:") else { continue };
            #[derive(serde::Deserialize)]
            struct Created {
                #[serde(default)]
                scheduled: Vec<(String, String, Option<i64>)>,
            }
            let created: Created = match self
                .inner
                .cipher
                .open(&format!("{aggregate}#{idx}"), &body)
                .map(|plain| serde_json::from_slice(&plain).map_err(|e| format!("{here}: unreadable event: {e}")))
            {
                Ok(Ok(c)) => c,
                Ok(Err(e)) => return Ok(Err(e)),
                Err(e) => return Ok(Err(format!("{here}: {e}"))),
            };
            for (reference, dossier, version) in created.scheduled {
                let Some(version) = version else { continue };
                let e = Event::PaymentScheduled { at, batch: Some(batch.to_owned()), reference: Some(reference) };
                out.entry(dossier).or_default().push((version, e));
            }
        }
        Ok(Ok(out))
    }

    /// For a dossier: its row must be what its events replay to.
    async fn finish_aggregate(
        &self,
        aggregate: &str,
        events: &[Event],
        last: &Hash,
        report: &mut AuditReport,
    ) -> Result<Option<String>> {
        let Some(id) = aggregate.strip_prefix("dossier:") else { return Ok(None) };
        report.dossiers += 1;
        let replayed = match Dossier::replay(events) {
            Ok(d) => d,
            Err(e) => return Ok(Some(format!("{aggregate}: the events do not replay: {e}"))),
        };
        let row: Option<(i64, Vec<u8>, String)> = on!(self.db(), p => sqlx::query_as(
            "SELECT version, last_link, state FROM dossiers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let Some((version, last_link, state)) = row else {
            return Ok(Some(format!("{aggregate}: events without a dossier")));
        };
        if version != events.len() as i64 || last_link.as_slice() != last.as_slice() {
            return Ok(Some(format!("{aggregate}: the dossier row does not match its last event")));
        }
        if state != crate::dossiers::state_name(replayed.state) {
            return Ok(Some(format!("{aggregate}: stored state {state} but the events give {:?}", replayed.state)));
        }
        match self.dossier(id).await {
            Ok(Some(d)) if d.dossier == replayed => Ok(None),
            Ok(_) => Ok(Some(format!("{aggregate}: the stored snapshot differs from the events"))),
            Err(e) => Ok(Some(format!("{aggregate}: {e}"))),
        }
    }

    async fn verify_checkpoints(&self, trusted: Option<&[u8]>, report: &mut AuditReport) -> Result<Option<String>> {
        type Row = (i64, i64, i64, Vec<u8>, Vec<u8>, Vec<u8>);
        let cps: Vec<Row> = on!(self.db(), p => sqlx::query_as(
            "SELECT id, first_seq, last_seq, root, signature, public_key FROM checkpoints ORDER BY id",
        )
        .fetch_all(p)
        .await?);
        let mut next_first = 1i64;
        for (id, first, last, root, sig, public_key) in cps {
            let here = format!("checkpoint {id} (events {first}–{last})");
            if first != next_first {
                return Ok(Some(format!("{here}: does not start where the previous one ended")));
            }
            if trusted.is_some_and(|t| t != public_key.as_slice()) {
                return Ok(Some(format!("{here}: signed by a key that is not the organization's")));
            }
            let links: Vec<Vec<u8>> = on!(self.db(), p => sqlx::query_scalar(
                "SELECT link FROM events WHERE seq >= $1 AND seq <= $2 ORDER BY seq",
            )
            .bind(first)
            .bind(last)
            .fetch_all(p)
            .await?);
            let links = links.iter().map(|l| to_hash(l, &here)).collect::<Result<Vec<_>>>()?;
            let computed = merkle_root(&links);
            if computed.as_slice() != root.as_slice() {
                return Ok(Some(format!("{here}: the events no longer hash to the signed root")));
            }
            let pk = UnparsedPublicKey::new(&signature::ED25519, &public_key);
            if pk.verify(&checkpoint_message(first, last, &computed), &sig).is_err() {
                return Ok(Some(format!("{here}: the signature does not verify")));
            }
            report.checkpoints += 1;
            next_first = last + 1;
        }
        let unchecked: i64 = on!(self.db(), p => sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE seq >= $1")
            .bind(next_first)
            .fetch_one(p)
            .await?);
        report.unchecked_events = unchecked as usize;
        Ok(None)
    }
}
