//! Dossiers: their events (the truth, hash-chained and sealed) and their
//! projection row (state, dates, amount, flags: what queues filter on,
//! nothing personal in clear; the full state is a sealed snapshot).

use guichet_core::{Dossier, Event, State};
use serde::Serialize;

use crate::writer::{Append, PreparedEvent};
use crate::{Result, Store, StoreError, on};

/// A write of new events to one dossier, with the state they lead to.
#[derive(Debug)]
pub struct NewEvents {
    pub dossier: String,
    /// The version the writer saw (0 when creating): a clear conflict if
    /// someone else wrote in between.
    pub expected_version: i64,
    /// Program version (hash) when creating.
    pub program_version: Option<String>,
    pub events: Vec<Event>,
    pub actor: Option<String>,
    /// The dossier after the events.
    pub after: Dossier,
    pub flags: Vec<String>,
    /// Values to index for duplicate detection: (kind, clear value); only
    /// keyed digests are stored.
    pub keys: Vec<(String, String)>,
    pub at: i64,
    /// The dossier's line in the payment queue after this write (the
    /// service's JSON, sealed here), for a dossier the queue lists; read
    /// back by [`Store::payment_queue`] while the dossier stays at this
    /// write's version.
    pub payment_line: Option<Vec<u8>>,
}

/// A dossier as stored.
#[derive(Debug, Clone, Serialize)]
pub struct DossierRow {
    pub id: String,
    pub program: String,
    pub program_version: String,
    pub applicant: String,
    pub state: State,
    pub version: i64,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub updated_at: i64,
    pub assignee: Option<String>,
    pub decided_by: Option<String>,
    pub amount: Option<i64>,
    pub flags: Vec<String>,
    #[serde(skip)]
    pub dossier: Dossier,
}

/// A queue line: no personal data.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DossierSummary {
    pub id: String,
    pub program: String,
    pub applicant: String,
    pub state: State,
    pub version: i64,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub updated_at: i64,
    pub assignee: Option<String>,
    pub amount: Option<i64>,
    pub flags: Vec<String>,
}

/// One stored event, opened.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent {
    pub seq: i64,
    pub index: i64,
    pub kind: String,
    pub actor: Option<String>,
    pub at: i64,
    pub event: serde_json::Value,
    /// Hex of the chain link after this event.
    pub link: String,
    /// The chain that holds this event when it is not the aggregate's own:
    /// a payment batch's (`batch:ID`), whose one event scheduled the
    /// payments of all its dossiers (`link` is then that event's link).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueOrder {
    /// Submitted first, first served (case workers).
    #[default]
    OldestSubmitted,
    /// Latest created first (a citizen's own list).
    NewestCreated,
}

/// A filtered, keyset-paginated listing.
#[derive(Debug, Clone, Default)]
pub struct Queue {
    pub program: Option<String>,
    pub states: Vec<State>,
    pub applicant: Option<String>,
    pub assignee: Option<String>,
    /// Only dossiers with at least one flag.
    pub flagged: bool,
    pub order: QueueOrder,
    /// The cursor from the previous page.
    pub after: Option<String>,
    pub limit: i64,
}

pub(crate) fn state_name(s: State) -> String {
    serde_json::to_value(s).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

pub(crate) fn parse_state(s: &str) -> Result<State> {
    serde_json::from_value(serde_json::Value::String(s.into()))
        .map_err(|_| StoreError::Corrupt(format!("unknown dossier state {s:?}")))
}

fn event_kind(v: &serde_json::Value) -> String {
    v.get("type").and_then(|t| t.as_str()).unwrap_or("unknown").to_owned()
}

/// What [`DossierTuple`] reads, from [`DOSSIER_FROM`] (the row `d` and its
/// snapshot `s`, kept apart: see migration 0010).
pub(crate) const DOSSIER_COLUMNS: &str = "d.id, d.program, d.program_version, d.applicant, d.state, d.version, \
     d.created_at, d.submitted_at, d.updated_at, d.assignee, d.decided_by, d.amount, d.flags, s.body, d.snapshot_version";
pub(crate) const DOSSIER_FROM: &str = "dossiers d JOIN dossier_snapshots s ON s.id = d.id";

/// A dossier row as `SELECT {DOSSIER_COLUMNS}` reads it.
pub(crate) type DossierTuple = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    String,
    Vec<u8>,
    Option<i64>,
);

type SummaryTuple =
    (String, String, String, String, i64, i64, Option<i64>, i64, Option<String>, Option<i64>, String, i64);

impl Store {
    /// Appends events to a dossier (creating it when `expected_version`
    /// is 0 and a program version is given), atomically with its row.
    /// Returns the new version.
    pub async fn append(&self, n: NewEvents) -> Result<i64> {
        let append = self.prepare_append(n)?;
        self.inner.writer.append(append).await
    }

    /// Seals and chains-to-be a dossier write (the writer, or a caller's
    /// own transaction, applies it).
    pub(crate) fn prepare_append(&self, n: NewEvents) -> Result<Append> {
        self.prepare_append_with(n, true)
    }

    /// As [`Store::prepare_append`]; without `snapshot` the stored snapshot
    /// is left behind (bulk writes: a payment batch, the bank's returns).
    pub(crate) fn prepare_append_with(&self, n: NewEvents, snapshot: bool) -> Result<Append> {
        let c = &self.inner.cipher;
        let mut events = Vec::with_capacity(n.events.len());
        for (i, e) in n.events.iter().enumerate() {
            let v = serde_json::to_value(e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let json = serde_json::to_vec(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let idx = n.expected_version + i as i64;
            let body = c.seal(&format!("dossier:{}#{idx}", n.dossier), &json)?;
            events.push(PreparedEvent { kind: event_kind(&v), actor: n.actor.clone(), at: n.at, json, body });
        }
        // A new dossier always gets its snapshot.
        let snapshot = if snapshot || n.expected_version == 0 {
            let json = serde_json::to_vec(&n.after).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Some(c.seal(&format!("dossier:{}", n.dossier), &json)?)
        } else {
            None
        };
        let decision = n.after.decision.as_ref();
        let create = match (&n.program_version, n.expected_version) {
            (Some(v), 0) => Some((n.after.program.clone(), v.clone(), n.after.applicant.0.clone())),
            (None, 0) => return Err(StoreError::Corrupt("a new dossier needs its program version".into())),
            _ => None,
        };
        let append = Append {
            dossier: n.dossier.clone(),
            create,
            expected: n.expected_version,
            events,
            state: state_name(n.after.state),
            submitted_at: n.after.submitted_at,
            updated_at: n.at,
            decided_by: decision.map(|d| d.by.0.clone()),
            decided_at: decision.map(|d| d.at),
            amount: decision.and_then(|d| d.amount),
            assignee: Some(n.after.assignee.as_ref().map(|u| u.0.clone())),
            flags: serde_json::to_string(&n.flags).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            snapshot,
            keys: n.keys.iter().map(|(k, v)| (k.clone(), c.blind(k, v))).collect(),
            program: n.after.program.clone(),
            line: match &n.payment_line {
                // Bound to the dossier and the version it holds for.
                Some(json) => Some(c.seal(
                    &format!("payment-line:{}:{}", n.dossier, n.expected_version + n.events.len() as i64),
                    json,
                )?),
                None => None,
            },
        };
        Ok(append)
    }

    /// A dossier with its state opened.
    pub async fn dossier(&self, id: &str) -> Result<Option<DossierRow>> {
        let sql = format!("SELECT {DOSSIER_COLUMNS} FROM {DOSSIER_FROM} WHERE d.id = $1");
        let row: Option<DossierTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await?);
        Ok(self.open_dossiers(row.into_iter().collect()).await?.pop())
    }

    /// Many dossiers at once, by id (those that exist), opened and brought
    /// up to date like [`Store::dossier`]'s.
    pub async fn dossiers(&self, ids: &[String]) -> Result<std::collections::HashMap<String, DossierRow>> {
        let select = format!("SELECT {DOSSIER_COLUMNS} FROM {DOSSIER_FROM} WHERE d.id IN");
        let rows: Vec<DossierTuple> = self.select_in(&select, ids).await?;
        Ok(self.open_dossiers(rows).await?.into_iter().map(|r| (r.id.clone(), r)).collect())
    }

    /// Dossier rows as read, opened: each snapshot, then, for a snapshot
    /// left behind by a bulk write, the events after it.
    pub(crate) async fn open_dossiers(&self, rows: Vec<DossierTuple>) -> Result<Vec<DossierRow>> {
        let mut out = Vec::with_capacity(rows.len());
        let mut behind: Vec<(usize, i64)> = Vec::new();
        for r in rows {
            if let Some(v) = r.14.filter(|v| *v < r.5) {
                behind.push((out.len(), v));
            }
            out.push(self.dossier_of_tuple(r)?);
        }
        self.catch_up(&mut out, &behind).await?;
        Ok(out)
    }

    /// Brings the dossiers at `behind` (index in `rows`, version of their
    /// snapshot) up to date: the events after their snapshot, read a few
    /// hundred dossiers at a time, replayed on it.
    pub(crate) async fn catch_up(&self, rows: &mut [DossierRow], behind: &[(usize, i64)]) -> Result<()> {
        for chunk in behind.chunks(200) {
            let aggregates: Vec<String> = chunk.iter().map(|(i, _)| format!("dossier:{}", rows[*i].id)).collect();
            // Only the events after the oldest snapshot of the chunk, not
            // each dossier's whole history.
            let from = chunk.iter().map(|(_, v)| *v).min().unwrap_or(0);
            let mut m = crate::Marks::new(self.pg());
            let sql = format!(
                "SELECT aggregate, idx, body FROM events WHERE idx >= {} AND aggregate IN ({})",
                m.next(),
                m.list(aggregates.len())
            );
            let found: Vec<(String, i64, Vec<u8>)> = on!(self.db(), p => {
                let mut q = sqlx::query_as(&sql).bind(from);
                for a in &aggregates {
                    q = q.bind(a);
                }
                q.fetch_all(p).await?
            });
            let ids: Vec<String> = chunk.iter().map(|(i, _)| rows[*i].id.clone()).collect();
            let mut slots = self.scheduled_by_batches(&ids, from).await?;
            let mut later: std::collections::HashMap<String, Vec<(i64, Vec<u8>)>> = Default::default();
            for (aggregate, idx, body) in found {
                later.entry(aggregate).or_default().push((idx, body));
            }
            for ((i, from), aggregate) in chunk.iter().zip(&aggregates) {
                // Its own events and the batches' schedulings, by version.
                // Only up to the version read: a write that landed between
                // the row's read and this one is not part of that row.
                let to = rows[*i].version;
                let mut events: Vec<(i64, Event)> = later
                    .remove(aggregate)
                    .unwrap_or_default()
                    .iter()
                    .filter(|(idx, _)| (*from..to).contains(idx))
                    .map(|(idx, body)| Ok((*idx, self.open_event(aggregate, *idx, body)?)))
                    .collect::<Result<_>>()?;
                events.extend(slots.remove(&rows[*i].id).unwrap_or_default());
                events.retain(|(idx, _)| (*from..to).contains(idx));
                events.sort_by_key(|(idx, _)| *idx);
                let row = &mut rows[*i];
                if events.len() as i64 != row.version - from
                    || events.iter().zip(*from..).any(|((idx, _), expected)| *idx != expected)
                {
                    return Err(StoreError::Corrupt(format!("{aggregate}: events missing after its snapshot")));
                }
                let events: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
                row.dossier = row
                    .dossier
                    .after(&events)
                    .map_err(|e| StoreError::Corrupt(format!("{aggregate}: the events after its snapshot: {e}")))?;
            }
        }
        Ok(())
    }

    /// The payments that batches scheduled for these dossiers at version
    /// `from` or later (the batch's event stands for an event of the
    /// dossier there: see [`Store::create_batch`]), as the dossier's event
    /// at that version: id → [(version, event)].
    pub(crate) async fn scheduled_by_batches(
        &self,
        ids: &[String],
        from: i64,
    ) -> Result<std::collections::HashMap<String, Vec<(i64, Event)>>> {
        let mut out: std::collections::HashMap<String, Vec<(i64, Event)>> = Default::default();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut m = crate::Marks::new(self.pg());
        let sql = format!(
            "SELECT p.dossier, p.version, p.reference, p.batch, b.created_at FROM payments p \
             JOIN payment_batches b ON b.id = p.batch WHERE p.version >= {} AND p.dossier IN ({})",
            m.next(),
            m.list(ids.len())
        );
        let found: Vec<(String, i64, String, String, i64)> = on!(self.db(), p => {
            let mut q = sqlx::query_as(&sql).bind(from);
            for id in ids {
                q = q.bind(id);
            }
            q.fetch_all(p).await?
        });
        for (dossier, version, reference, batch, at) in found {
            let event = Event::PaymentScheduled { at, batch: Some(batch), reference: Some(reference) };
            out.entry(dossier).or_default().push((version, event));
        }
        Ok(out)
    }

    /// An event of `aggregate` as stored (sealed JSON), opened.
    fn open_event<T: serde::de::DeserializeOwned>(&self, aggregate: &str, idx: i64, body: &[u8]) -> Result<T> {
        let plain = self.inner.cipher.open(&format!("{aggregate}#{idx}"), body)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("{aggregate}#{idx}: {e}")))
    }

    /// A dossier's sealed snapshot, opened (as it was at its row's
    /// `snapshot_version`, when that is set).
    pub(crate) fn open_snapshot(&self, id: &str, sealed: &[u8]) -> Result<Dossier> {
        let plain = self.inner.cipher.open(&format!("dossier:{id}"), sealed)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("dossier {id}: {e}")))
    }

    /// A dossier row as read (its snapshot sealed), with the snapshot opened.
    fn dossier_of_tuple(&self, r: DossierTuple) -> Result<DossierRow> {
        let dossier = self.open_snapshot(&r.0, &r.13)?;
        Ok(DossierRow {
            state: parse_state(&r.4)?,
            flags: serde_json::from_str(&r.12).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            id: r.0,
            program: r.1,
            program_version: r.2,
            applicant: r.3,
            version: r.5,
            created_at: r.6,
            submitted_at: r.7,
            updated_at: r.8,
            assignee: r.9,
            decided_by: r.10,
            amount: r.11,
            dossier,
        })
    }

    /// The events of an aggregate (`dossier:ID`, `user:ID`…), opened.
    pub async fn events(&self, aggregate: &str) -> Result<Vec<StoredEvent>> {
        type Row = (i64, i64, String, Option<String>, i64, Vec<u8>, Vec<u8>);
        let rows: Vec<Row> = on!(self.db(), p => sqlx::query_as(
            "SELECT seq, idx, kind, actor, at, body, link FROM events WHERE aggregate = $1 ORDER BY idx",
        )
        .bind(aggregate)
        .fetch_all(p)
        .await?);
        let mut out = rows
            .into_iter()
            .map(|(seq, idx, kind, actor, at, body, link)| {
                let event = self.open_event(aggregate, idx, &body)?;
                Ok(StoredEvent { seq, index: idx, kind, actor, at, event, link: crate::hex(&link), chain: None })
            })
            .collect::<Result<Vec<_>>>()?;
        if let Some(id) = aggregate.strip_prefix("dossier:") {
            // The payments its batches scheduled, with the batch's event.
            type Row = (i64, String, String, String, i64, i64, Vec<u8>);
            let rows: Vec<Row> = on!(self.db(), p => sqlx::query_as(
                "SELECT p.version, p.reference, p.batch, b.created_by, b.created_at, e.seq, e.link FROM payments p \
                 JOIN payment_batches b ON b.id = p.batch \
                 JOIN events e ON e.aggregate = 'batch:' || p.batch AND e.idx = 0 \
                 WHERE p.dossier = $1 AND p.version IS NOT NULL",
            )
            .bind(id)
            .fetch_all(p)
            .await?);
            for (version, reference, batch, by, at, seq, link) in rows {
                let e = Event::PaymentScheduled { at, batch: Some(batch.clone()), reference: Some(reference) };
                let event = serde_json::to_value(&e).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                out.push(StoredEvent {
                    seq,
                    index: version,
                    kind: event_kind(&event),
                    actor: Some(by),
                    at,
                    event,
                    link: crate::hex(&link),
                    chain: Some(format!("batch:{batch}")),
                });
            }
            out.sort_by_key(|e| e.index);
        }
        Ok(out)
    }

    /// A page of dossier summaries and the cursor of the next page.
    pub async fn queue(&self, q: &Queue) -> Result<(Vec<DossierSummary>, Option<String>)> {
        let mut sql = String::from(
            "SELECT id, program, applicant, state, version, created_at, submitted_at, updated_at, assignee, amount, flags, \
             COALESCE(submitted_at, created_at) FROM dossiers WHERE 1 = 1",
        );
        // Parameters are numbered in order of appearance: texts first would
        // break that, so build (placeholder, value) in one sequence.
        let mut binds: Vec<Bind> = Vec::new();
        let next = |b: Bind, binds: &mut Vec<Bind>| {
            binds.push(b);
            format!("${}", binds.len())
        };
        if let Some(p) = &q.program {
            sql += &format!(" AND program = {}", next(Bind::Text(p.clone()), &mut binds));
        }
        if let Some(a) = &q.applicant {
            sql += &format!(" AND applicant = {}", next(Bind::Text(a.clone()), &mut binds));
        }
        if let Some(a) = &q.assignee {
            sql += &format!(" AND assignee = {}", next(Bind::Text(a.clone()), &mut binds));
        }
        if q.flagged {
            sql += " AND flags <> '[]'";
        }
        if !q.states.is_empty() {
            let ph: Vec<String> = q.states.iter().map(|s| next(Bind::Text(state_name(*s)), &mut binds)).collect();
            sql += &format!(" AND state IN ({})", ph.join(", "));
        }
        let (ts_col, desc) = match q.order {
            QueueOrder::OldestSubmitted => ("submitted_at", false),
            QueueOrder::NewestCreated => ("created_at", true),
        };
        if q.order == QueueOrder::OldestSubmitted {
            sql += " AND submitted_at IS NOT NULL";
        }
        if let Some(cursor) = &q.after {
            let (ts, id) = cursor
                .split_once('.')
                .and_then(|(t, i)| Some((t.parse::<i64>().ok()?, i.to_owned())))
                .ok_or_else(|| StoreError::Config(format!("bad page cursor {cursor:?}")))?;
            let t = next(Bind::Int(ts), &mut binds);
            let i = next(Bind::Text(id), &mut binds);
            let op = if desc { "<" } else { ">" };
            // A row-value comparison: both databases seek the index to it
            // (an OR of two comparisons makes SQLite scan).
            sql += &format!(" AND ({ts_col}, id) {op} ({t}, {i})");
        }
        let dir = if desc { "DESC" } else { "ASC" };
        let limit = q.limit.clamp(1, 500);
        sql += &format!(" ORDER BY {ts_col} {dir}, id {dir} LIMIT {}", next(Bind::Int(limit + 1), &mut binds));
        let rows: Vec<SummaryTuple> = on!(self.db(), p => {
            let mut query = sqlx::query_as(&sql);
            for b in &binds {
                query = match b {
                    Bind::Text(s) => query.bind(s.clone()),
                    Bind::Int(i) => query.bind(*i),
                };
            }
            query.fetch_all(p).await?
        });
        let more = rows.len() as i64 > limit;
        let mut out = Vec::with_capacity(rows.len());
        let mut cursor = None;
        for r in rows.into_iter().take(limit as usize) {
            cursor = Some(format!("{}.{}", r.11, r.0));
            out.push(DossierSummary {
                state: parse_state(&r.3)?,
                flags: serde_json::from_str(&r.10).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                id: r.0,
                program: r.1,
                applicant: r.2,
                version: r.4,
                created_at: r.5,
                submitted_at: r.6,
                updated_at: r.7,
                assignee: r.8,
                amount: r.9,
            });
        }
        Ok((out, if more { cursor } else { None }))
    }

    /// Other open (submitted, not closed) dossiers of the program whose
    /// indexed value of `kind` equals `value` (at most ten: enough to flag,
    /// and a shared address must not make submissions quadratic).
    pub async fn duplicates(&self, program: &str, kind: &str, value: &str, except: &str) -> Result<Vec<String>> {
        let digest = self.inner.cipher.blind(kind, value);
        let ids: Vec<String> = on!(self.db(), p => sqlx::query_scalar(
            "SELECT k.dossier FROM dossier_keys k JOIN dossiers d ON d.id = k.dossier \
             WHERE k.program = $1 AND k.kind = $2 AND k.digest = $3 AND k.dossier <> $4 \
             AND d.state NOT IN ('draft', 'withdrawn', 'refused', 'paid') ORDER BY k.dossier LIMIT 10",
        )
        .bind(program)
        .bind(kind)
        .bind(digest)
        .bind(except)
        .fetch_all(p)
        .await?);
        Ok(ids)
    }

    /// A program's figures: submissions per day (UTC days since 1970) and,
    /// per state, the number of dossiers and the sum of their amounts.
    pub async fn program_stats(&self, program: &str) -> Result<ProgramStats> {
        let per_day: Vec<(i64, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT submitted_at / 86400 AS day, COUNT(*) FROM dossiers WHERE program = $1 AND submitted_at IS NOT NULL \
             GROUP BY submitted_at / 86400 ORDER BY 1",
        )
        .bind(program)
        .fetch_all(p)
        .await?);
        let by_state: Vec<(String, i64, Option<i64>)> = on!(self.db(), p => sqlx::query_as(
            "SELECT state, COUNT(*), CAST(SUM(amount) AS BIGINT) FROM dossiers WHERE program = $1 GROUP BY state ORDER BY state",
        )
        .bind(program)
        .fetch_all(p)
        .await?);
        // Median time from submission to decision, by an OFFSET seek on the
        // sorted durations (portable; no median aggregate in SQLite).
        let decided: i64 = on!(self.db(), p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM dossiers WHERE program = $1 AND decided_at IS NOT NULL AND submitted_at IS NOT NULL",
        )
        .bind(program)
        .fetch_one(p)
        .await?);
        let median_seconds: Option<i64> = if decided == 0 {
            None
        } else {
            on!(self.db(), p => sqlx::query_scalar(
                "SELECT decided_at - submitted_at FROM dossiers WHERE program = $1 AND decided_at IS NOT NULL \
                 AND submitted_at IS NOT NULL ORDER BY 1 LIMIT 1 OFFSET $2",
            )
            .bind(program)
            .bind(decided / 2)
            .fetch_optional(p)
            .await?)
        };
        let decided_per_day: Vec<(i64, i64, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT decided_at / 86400, CAST(SUM(CASE WHEN amount IS NOT NULL THEN 1 ELSE 0 END) AS BIGINT), \
             CAST(SUM(CASE WHEN amount IS NULL THEN 1 ELSE 0 END) AS BIGINT) FROM dossiers \
             WHERE program = $1 AND decided_at IS NOT NULL GROUP BY decided_at / 86400 ORDER BY 1",
        )
        .bind(program)
        .fetch_all(p)
        .await?);
        let days_to_decision: Vec<(i64, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT (decided_at - submitted_at) / 86400, COUNT(*) FROM dossiers \
             WHERE program = $1 AND decided_at IS NOT NULL AND submitted_at IS NOT NULL \
             GROUP BY (decided_at - submitted_at) / 86400 ORDER BY 1",
        )
        .bind(program)
        .fetch_all(p)
        .await?);
        Ok(ProgramStats {
            decided,
            median_seconds,
            decided_per_day,
            days_to_decision,
            per_day,
            by_state: by_state
                .into_iter()
                .map(|(s, n, a)| Ok((parse_state(&s)?, n, a.unwrap_or(0))))
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// How many dossiers (for metrics and tests).
    pub async fn count_dossiers(&self) -> Result<i64> {
        Ok(on!(self.db(), p => sqlx::query_scalar("SELECT COUNT(*) FROM dossiers").fetch_one(p).await?))
    }
}

/// See [`Store::program_stats`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProgramStats {
    /// Decided dossiers, and the median time from submission to decision.
    pub decided: i64,
    pub median_seconds: Option<i64>,
    /// Per day of decision: (day, approved, refused).
    pub decided_per_day: Vec<(i64, i64, i64)>,
    /// Whole days from submission to decision, and how many dossiers took that long.
    pub days_to_decision: Vec<(i64, i64)>,
    pub per_day: Vec<(i64, i64)>,
    pub by_state: Vec<(State, i64, i64)>,
}

enum Bind {
    Text(String),
    Int(i64),
}
