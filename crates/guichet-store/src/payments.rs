//! Payments: batches (built by one finance officer, approved by another,
//! exported as bank files whose SHA-256 is recorded) and their payments
//! (the payee's name and bank details sealed). Every change is an event of
//! the batch (`batch:ID`) and, for the dossiers it touches, of the dossier,
//! in the same transaction.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::audit::append_event;
use crate::dossiers::{DOSSIER_FROM, state_name};
use crate::writer::apply_appends;
use crate::{DossierRow, NewEvents, Result, Store, StoreError, on};
use guichet_core::State;

/// What the bank file needs about a payee; sealed at rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayeeDetails {
    pub name: String,
    pub institution: String,
    pub transit: String,
    pub account: String,
    pub remittance: String,
    /// A third-party payee's email, told when the payment leaves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewPayment {
    pub reference: String,
    pub dossier: String,
    pub amount: i64,
    pub currency: String,
    pub details: PayeeDetails,
    /// For a credit: the dossier's version when it was read for the batch.
    /// The batch's event schedules the dossier's payment at that version
    /// (the dossier moves to `payment_scheduled`, version + 1); the batch
    /// is refused whole if any dossier changed since. `None`: the dossier
    /// does not change (a debit).
    pub version: Option<i64>,
}

/// How many payees one sealed slice of a batch holds.
const PAYEE_SLICE: usize = 1000;

#[derive(Debug)]
pub struct NewBatch {
    pub id: String,
    /// `credit` or `debit`.
    pub direction: String,
    pub currency: String,
    /// The organization's local date and time of creation (ISO 8601).
    pub created_local: String,
    pub execution_date: String,
    pub created_by: String,
    pub at: i64,
    /// The batch's sequence number, from which the files' creation number
    /// comes: [`Store::next_file_number`] when they were written
    /// (`Conflict { current: -3 }` if another batch took it since).
    pub file_number: i64,
    pub payments: Vec<NewPayment>,
    /// The bank files, written once now: the second officer approves
    /// these bytes (their SHA-256 is on the batch) and they are kept sealed.
    pub files: Vec<BatchFile>,
}

/// A bank file of a batch: `pain001` or `cpa005`, and its bytes.
#[derive(Debug, Clone)]
pub struct BatchFile {
    pub format: String,
    pub bytes: Vec<u8>,
}

/// zlib at its fastest level: bank files are repetitive text (tags, fixed
/// fields padded with blanks).
fn deflate(bytes: &[u8]) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::with_capacity(bytes.len() / 8), flate2::Compression::fast());
    z.write_all(bytes).map_err(|e| StoreError::Corrupt(format!("compressing a bank file: {e}")))?;
    z.finish().map_err(|e| StoreError::Corrupt(format!("compressing a bank file: {e}")))
}

fn inflate(packed: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(packed.len() * 8);
    flate2::read::ZlibDecoder::new(packed).read_to_end(&mut out)?;
    Ok(out)
}

/// The next batch's sequence number (1, 2, …; never reused).
const NEXT_FILE_NUMBER: &str = "SELECT CAST(COALESCE(MAX(file_number), 0) + 1 AS BIGINT) FROM payment_batches";

fn file_column(format: &str) -> Result<&'static str> {
    match format {
        "pain001" => Ok("pain001_sha256"),
        "cpa005" => Ok("cpa005_sha256"),
        _ => Err(StoreError::Corrupt(format!("unknown payment file format {format:?}"))),
    }
}

/// A batch as stored.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub id: String,
    pub direction: String,
    /// `created`, `approved` or `exported`.
    pub state: String,
    pub currency: String,
    pub count: i64,
    pub total: i64,
    pub file_number: i64,
    pub created_local: String,
    pub execution_date: String,
    pub created_by: String,
    pub created_at: i64,
    pub approved_by: Option<String>,
    pub approved_at: Option<i64>,
    pub pain001_sha256: Option<String>,
    pub cpa005_sha256: Option<String>,
    pub exported_at: Option<i64>,
}

/// A dossier as the payment queue reads it (see [`Store::payment_queue`]).
#[derive(Debug, Clone)]
pub struct QueueRow {
    pub id: String,
    pub program: String,
    pub applicant: String,
    pub state: State,
    pub version: i64,
    pub updated_at: i64,
    pub flags: Vec<String>,
    /// The service's payment line for this version (JSON), if it wrote one.
    pub line: Option<Vec<u8>>,
    pub contact: Option<crate::Contact>,
}

/// A payment as stored.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentRow {
    pub reference: String,
    pub batch: String,
    pub dossier: String,
    pub amount: i64,
    pub currency: String,
    /// `scheduled`, `paid`, `returned` or `rejected`.
    pub state: String,
    pub reason: Option<String>,
    pub updated_at: i64,
}

/// Where a payment stands, without its payee (nothing to open): what
/// checking a returns file needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentStatus {
    pub reference: String,
    pub batch: String,
    pub dossier: String,
    pub amount: i64,
    /// `scheduled`, `paid`, `returned` or `rejected`.
    pub state: String,
}

/// A payment's new state from the bank's returns.
#[derive(Debug, Clone)]
pub struct Settlement {
    pub reference: String,
    pub state: String,
    pub reason: Option<String>,
}

type BatchTuple = (
    String,
    String,
    String,
    String,
    i64,
    i64,
    i64,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    Option<String>,
    Option<i64>,
);
type PaymentTuple = (String, String, String, i64, String, String, Option<String>, i64);

const BATCH_COLUMNS: &str = "id, direction, state, currency, count, total, file_number, created_local, execution_date, \
     created_by, created_at, approved_by, approved_at, pain001_sha256, cpa005_sha256, exported_at";
const PAYMENT_COLUMNS: &str = "reference, batch, dossier, amount, currency, state, reason, updated_at";

fn batch_row(r: BatchTuple) -> BatchRow {
    BatchRow {
        id: r.0,
        direction: r.1,
        state: r.2,
        currency: r.3,
        count: r.4,
        total: r.5,
        file_number: r.6,
        created_local: r.7,
        execution_date: r.8,
        created_by: r.9,
        created_at: r.10,
        approved_by: r.11,
        approved_at: r.12,
        pain001_sha256: r.13,
        cpa005_sha256: r.14,
        exported_at: r.15,
    }
}

/// `states` as an SQL list of quoted names (`None`: no state).
fn states_in(states: &[State]) -> Option<String> {
    let list = states.iter().map(|s| format!("'{}'", state_name(*s).replace('\'', ""))).collect::<Vec<_>>();
    (!list.is_empty()).then(|| list.join(", "))
}

fn payment_row(r: PaymentTuple) -> PaymentRow {
    PaymentRow {
        reference: r.0,
        batch: r.1,
        dossier: r.2,
        amount: r.3,
        currency: r.4,
        state: r.5,
        reason: r.6,
        updated_at: r.7,
    }
}

impl Store {
    /// Dossiers in any of `states`, opened (the loans), oldest change
    /// first. A lean read for the many: the columns the snapshot does not
    /// hold, and the snapshot (program, state, dates, assignee and decision
    /// come from it).
    pub async fn dossiers_in(&self, states: &[State]) -> Result<Vec<DossierRow>> {
        let Some(list) = states_in(states) else { return Ok(Vec::new()) };
        // Sorted here: SQLite would sort the whole rows, snapshots included.
        let sql = format!(
            "SELECT d.id, d.program_version, d.version, d.updated_at, d.flags, s.body, d.snapshot_version, \
             d.applicant FROM {DOSSIER_FROM} WHERE d.state IN ({list})"
        );
        type Lean = (String, String, i64, i64, String, Vec<u8>, Option<i64>, String);
        let mut out = Vec::new();
        let mut behind = Vec::new();
        // Each row opened as it comes (a queue of 100,000 never holds its
        // sealed rows and their opened states in memory at once). Not
        // faster: measured as reading them all first, within noise.
        let mut take = |(id, program_version, version, updated_at, flags, snapshot, snapshot_version, applicant): Lean|
         -> Result<()> {
            let dossier = self.open_snapshot(&id, &snapshot)?;
            if let Some(v) = snapshot_version.filter(|v| *v < version) {
                behind.push((out.len(), v));
            }
            out.push(DossierRow {
                id,
                program: String::new(),
                program_version,
                applicant,
                state: dossier.state,
                version,
                created_at: 0,
                submitted_at: None,
                updated_at,
                assignee: None,
                decided_by: None,
                amount: None,
                flags: serde_json::from_str(&flags).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                dossier,
            });
            Ok(())
        };
        on!(self.db(), p => {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query_as::<_, Lean>(&sql).fetch(p);
            while let Some(row) = rows.try_next().await? {
                take(row)?;
            }
        });
        self.catch_up(&mut out, &behind).await?;
        for r in &mut out {
            let d = &r.dossier;
            r.program = d.program.clone();
            r.state = d.state;
            r.created_at = d.created_at;
            r.submitted_at = d.submitted_at;
            r.assignee = d.assignee.as_ref().map(|u| u.0.clone());
            r.decided_by = d.decision.as_ref().map(|x| x.by.0.clone());
            r.amount = d.decision.as_ref().and_then(|x| x.amount);
        }
        out.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        Ok(out)
    }

    /// The dossiers in any of `states` as the payment queue reads them,
    /// oldest change first: the row's plain columns, the applicant's
    /// contact (opened; `None`: no account), and the payment line the
    /// service wrote with the dossier's current version (opened), if any.
    /// Nothing else is opened: a queue of 100,000 reads no snapshot.
    pub async fn payment_queue(&self, states: &[State]) -> Result<Vec<QueueRow>> {
        let Some(list) = states_in(states) else { return Ok(Vec::new()) };
        let sql = format!(
            "SELECT d.id, d.program, d.applicant, d.state, d.version, d.updated_at, d.flags, l.body, u.contact, \
             u.language FROM dossiers d \
             LEFT JOIN payment_lines l ON l.dossier = d.id AND l.version = d.version \
             LEFT JOIN users u ON u.id = d.applicant WHERE d.state IN ({list})"
        );
        // Few columns: sqlx copies each value of each of 100,000 rows.
        type Row = (String, String, String, String, i64, i64, String, Option<Vec<u8>>, Option<Vec<u8>>, Option<String>);
        let mut out = Vec::new();
        let c = &self.inner.cipher;
        let mut take = |r: Row| -> Result<()> {
            let (id, program, applicant, state, version, updated_at, flags) = (r.0, r.1, r.2, r.3, r.4, r.5, r.6);
            let line = match r.7 {
                Some(body) => Some(c.open(&format!("payment-line:{id}:{version}"), &body)?),
                None => None,
            };
            // The language is never NULL in an account: NULL is no account.
            let contact = match r.9 {
                Some(language) => {
                    let (email, name) = self.open_contact(&applicant, r.8.as_deref())?;
                    Some(crate::Contact { email, name, language })
                }
                None => None,
            };
            out.push(QueueRow {
                state: crate::dossiers::parse_state(&state)?,
                flags: serde_json::from_str(&flags).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                id,
                program,
                applicant,
                version,
                updated_at,
                line,
                contact,
            });
            Ok(())
        };
        on!(self.db(), p => {
            use futures_util::TryStreamExt;
            let mut rows = sqlx::query_as::<_, Row>(&sql).fetch(p);
            while let Some(row) = rows.try_next().await? {
                take(row)?;
            }
        });
        out.sort_by(|a, b| (a.updated_at, &a.id).cmp(&(b.updated_at, &b.id)));
        Ok(out)
    }

    /// Creates a batch with its payments, in one transaction; the file
    /// creation number is the next one. The batch is the record of its
    /// payments: one event (`batch_created`, which names each payment's
    /// dossier and the version it took), its payees sealed in slices, a
    /// lean row per payment, and the dossiers moved to `payment_scheduled`
    /// by one statement. A dossier changed since it was read fails the
    /// whole batch (a conflict), nothing kept.
    pub async fn create_batch(&self, b: NewBatch) -> Result<BatchRow> {
        let c = &self.inner.cipher;
        let mut slices = Vec::with_capacity(b.payments.len().div_ceil(PAYEE_SLICE));
        for (n, chunk) in b.payments.chunks(PAYEE_SLICE).enumerate() {
            // Each payee with its payment's reference: bound to it, not to
            // its place alone.
            let list: Vec<(&str, &PayeeDetails)> = chunk.iter().map(|p| (p.reference.as_str(), &p.details)).collect();
            let json = serde_json::to_vec(&list).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            slices.push(c.seal(&format!("batch-payees:{}:{n}", b.id), &json)?);
        }
        let total: i64 = b.payments.iter().map(|p| p.amount).sum();
        let count = b.payments.len() as i64;
        let scheduled = b.payments.iter().filter(|p| p.version.is_some()).count() as u64;
        let mut digests = Vec::with_capacity(b.files.len());
        for f in &b.files {
            file_column(&f.format)?;
            digests.push((f.format.clone(), crate::hex(&sha2::Sha256::digest(&f.bytes))));
        }
        let sha_of = |format: &str| digests.iter().find(|f| f.0 == format).map(|f| f.1.clone());
        let (pain001, cpa005) = (sha_of("pain001"), sha_of("cpa005"));
        // The files compressed and sealed on another thread while the
        // transaction writes the rest (tens of MB: the longest step).
        let sealer = {
            let store = self.clone();
            let (id, files) = (b.id.clone(), b.files);
            tokio::task::spawn_blocking(move || -> Result<Vec<(String, Vec<u8>)>> {
                files
                    .into_iter()
                    .map(|f| {
                        let packed = deflate(&f.bytes)?;
                        let sealed = store.inner.cipher.seal(&format!("payment-file:{id}:{}", f.format), &packed)?;
                        Ok((f.format, sealed))
                    })
                    .collect()
            })
        };
        // The payments in file order: [reference, dossier, version taken
        // (null: the dossier does not change)].
        let event = serde_json::json!({
            "type": "batch_created", "direction": b.direction, "count": count, "total": total,
            "currency": b.currency, "execution_date": b.execution_date,
            "pain001_sha256": pain001, "cpa005_sha256": cpa005,
            "scheduled": b.payments.iter().map(|p| (&p.reference, &p.dossier, p.version)).collect::<Vec<_>>(),
        });
        let aggregate = format!("batch:{}", b.id);
        let pg = matches!(self.db(), crate::Db::Postgres(_));
        let empty = if pg { "''::bytea" } else { "x''" };
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            let file_number: i64 = sqlx::query_scalar(NEXT_FILE_NUMBER).fetch_one(&mut *tx).await?;
            if file_number != b.file_number {
                return Err(StoreError::Conflict { current: -3 });
            }
            sqlx::query(
                "INSERT INTO payment_batches (id, direction, state, currency, count, total, file_number, created_local, \
                 execution_date, created_by, created_at, pain001_sha256, cpa005_sha256) \
                 VALUES ($1, $2, 'created', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(&b.id)
            .bind(&b.direction)
            .bind(&b.currency)
            .bind(count)
            .bind(total)
            .bind(file_number)
            .bind(&b.created_local)
            .bind(&b.execution_date)
            .bind(&b.created_by)
            .bind(b.at)
            .bind(&pain001)
            .bind(&cpa005)
            .execute(&mut *tx)
            .await?;
            for (n, body) in slices.iter().enumerate() {
                sqlx::query("INSERT INTO batch_payees (batch, slice, body) VALUES ($1, $2, $3)")
                    .bind(&b.id)
                    .bind(n as i64)
                    .bind(body)
                    .execute(&mut *tx)
                    .await?;
            }
            // Many lean rows per statement (placeholders in the order of
            // the text: SQLite's `?`; numbered ones cost SQLite a lookup by
            // name per value).
            for (chunk_no, chunk) in b.payments.chunks(500).enumerate() {
                let mut sql = String::from(
                    "INSERT INTO payments (reference, batch, seq, dossier, amount, currency, state, details, updated_at, \
                     version) VALUES ",
                );
                let mut m = crate::Marks::new(pg);
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    let (a, b2) = (m.list(6), m.list(2));
                    sql.push_str(&format!("({a}, 'scheduled', {empty}, {b2})"));
                }
                let mut q = sqlx::query(&sql);
                for (i, pay) in chunk.iter().enumerate() {
                    let seq = (chunk_no * 500 + i) as i64;
                    q = q
                        .bind(&pay.reference)
                        .bind(&b.id)
                        .bind(seq)
                        .bind(&pay.dossier)
                        .bind(pay.amount)
                        .bind(&pay.currency)
                        .bind(b.at)
                        .bind(pay.version);
                }
                q.execute(&mut *tx).await.map_err(|e| {
                    if crate::unique_violation(&e) { StoreError::Taken("a payment reference") } else { e.into() }
                })?;
            }
            append_event!(&mut *tx, self, &aggregate, Some(b.created_by.as_str()), b.at, &event);
            // The dossiers leave the queue: each at the version the batch
            // read (its snapshot stays there; reads replay the batch's
            // scheduling after it).
            if scheduled > 0 {
                let moved = sqlx::query(
                    "UPDATE dossiers SET state = 'payment_scheduled', version = p.version + 1, updated_at = $2, \
                     snapshot_version = COALESCE(dossiers.snapshot_version, p.version) \
                     FROM payments p WHERE p.batch = $1 AND p.version IS NOT NULL AND p.dossier = dossiers.id \
                     AND dossiers.version = p.version \
                     AND dossiers.state IN ('approved', 'agreement_signed', 'payment_returned')",
                )
                .bind(&b.id)
                .bind(b.at)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if moved != scheduled {
                    return Err(StoreError::Conflict { current: -1 });
                }
            }
            // Their digests are the batch's (pain001_sha256, cpa005_sha256).
            let files = sealer.await.map_err(|e| StoreError::Corrupt(format!("sealing the bank files: {e}")))??;
            for (format, sealed) in &files {
                sqlx::query("INSERT INTO payment_files (batch, format, body, encoding) VALUES ($1, $2, $3, 'deflate')")
                    .bind(&b.id)
                    .bind(format)
                    .bind(sealed)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        self.batch(&b.id).await?.ok_or(StoreError::NotFound)
    }

    /// The sequence number the next batch gets (1, 2, …, never reused; the
    /// files carry it modulo 9999: see the payment use cases).
    pub async fn next_file_number(&self) -> Result<i64> {
        Ok(on!(self.db(), p => sqlx::query_scalar(NEXT_FILE_NUMBER).fetch_one(p).await?))
    }

    pub async fn batch(&self, id: &str) -> Result<Option<BatchRow>> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM payment_batches WHERE id = $1");
        let row: Option<BatchTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await?);
        Ok(row.map(batch_row))
    }

    /// The latest batches, newest first.
    pub async fn batches(&self, limit: i64) -> Result<Vec<BatchRow>> {
        let sql = format!("SELECT {BATCH_COLUMNS} FROM payment_batches ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows: Vec<BatchTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(limit).fetch_all(p).await?);
        Ok(rows.into_iter().map(batch_row).collect())
    }

    /// A batch's payments in file order.
    pub async fn batch_payments(&self, id: &str) -> Result<Vec<PaymentRow>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE batch = $1 ORDER BY seq");
        let rows: Vec<PaymentTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(id).fetch_all(p).await?);
        Ok(rows.into_iter().map(payment_row).collect())
    }

    /// A batch's payees in file order (one per payment of
    /// [`Store::batch_payments`]), opened: from the batch's sealed slices,
    /// or, for a batch built before them, from each payment's row.
    pub async fn batch_payees(&self, id: &str) -> Result<Vec<PayeeDetails>> {
        let slices: Vec<(i64, Vec<u8>)> = on!(self.db(), p => sqlx::query_as(
            "SELECT slice, body FROM batch_payees WHERE batch = $1 ORDER BY slice",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        let references: Vec<String> = on!(self.db(), p => sqlx::query_scalar(
            "SELECT reference FROM payments WHERE batch = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        let count = references.len() as i64;
        let mut out = Vec::with_capacity(references.len());
        if slices.is_empty() {
            let rows: Vec<(String, Vec<u8>)> = on!(self.db(), p => sqlx::query_as(
                "SELECT reference, details FROM payments WHERE batch = $1 ORDER BY seq",
            )
            .bind(id)
            .fetch_all(p)
            .await?);
            for (reference, sealed) in rows {
                let plain = self.inner.cipher.open(&format!("payment:{reference}"), &sealed)?;
                out.push(
                    serde_json::from_slice(&plain)
                        .map_err(|e| StoreError::Corrupt(format!("payment {reference}: {e}")))?,
                );
            }
        } else {
            for (n, (slice, sealed)) in slices.into_iter().enumerate() {
                if slice != n as i64 {
                    return Err(StoreError::Corrupt(format!("batch {id}: payee slice {n} is missing")));
                }
                let plain = self.inner.cipher.open(&format!("batch-payees:{id}:{n}"), &sealed)?;
                let list: Vec<(String, PayeeDetails)> = serde_json::from_slice(&plain)
                    .map_err(|e| StoreError::Corrupt(format!("batch {id}, payees {n}: {e}")))?;
                for (reference, payee) in list {
                    if references.get(out.len()) != Some(&reference) {
                        return Err(StoreError::Corrupt(format!(
                            "batch {id}: payee {} is not its payment's ({reference})",
                            out.len()
                        )));
                    }
                    out.push(payee);
                }
            }
        }
        if out.len() as i64 != count {
            return Err(StoreError::Corrupt(format!("batch {id}: {count} payments but {} payees", out.len())));
        }
        Ok(out)
    }

    /// Payments by reference (those that exist).
    pub async fn payments_by_reference(&self, references: &[String]) -> Result<Vec<PaymentRow>> {
        let select = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE reference IN");
        let rows: Vec<PaymentTuple> = self.select_in(&select, references).await?;
        Ok(rows.into_iter().map(payment_row).collect())
    }

    /// Where the payments named stand (those that exist), payees left sealed.
    pub async fn payment_statuses(&self, references: &[String]) -> Result<Vec<PaymentStatus>> {
        let select = "SELECT reference, batch, dossier, amount, state FROM payments WHERE reference IN";
        let rows: Vec<(String, String, String, i64, String)> = self.select_in(select, references).await?;
        Ok(rows
            .into_iter()
            .map(|(reference, batch, dossier, amount, state)| PaymentStatus {
                reference,
                batch,
                dossier,
                amount,
                state,
            })
            .collect())
    }

    /// A dossier's payments, oldest first.
    pub async fn dossier_payments(&self, dossier: &str) -> Result<Vec<PaymentRow>> {
        let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE dossier = $1 ORDER BY updated_at, reference");
        let rows: Vec<PaymentTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(dossier).fetch_all(p).await?);
        Ok(rows.into_iter().map(payment_row).collect())
    }

    /// The second officer's approval. Refused (`Conflict`) unless the batch
    /// is waiting for approval and `by` is not who built it: the two-person
    /// rule holds in the database too.
    pub async fn approve_batch(&self, id: &str, by: &str, at: i64) -> Result<()> {
        let aggregate = format!("batch:{id}");
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            let done: Option<(Option<String>, Option<String>)> = sqlx::query_as(
                "UPDATE payment_batches SET state = 'approved', approved_by = $2, approved_at = $3 \
                 WHERE id = $1 AND state = 'created' AND created_by <> $2 RETURNING pain001_sha256, cpa005_sha256",
            )
            .bind(id)
            .bind(by)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((pain001, cpa005)) = done else { return Err(StoreError::Conflict { current: -1 }) };
            // What was approved: these two files, byte for byte.
            let event = serde_json::json!({
                "type": "batch_approved", "by": by, "pain001_sha256": pain001, "cpa005_sha256": cpa005,
            });
            append_event!(&mut *tx, self, &aggregate, Some(by), at, &event);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A bank file kept with its batch (None for a batch built before
    /// files were kept), opened and checked against the SHA-256 the
    /// batch was approved with: (bytes, that SHA-256 in hex).
    pub async fn payment_file(&self, batch: &str, format: &str) -> Result<Option<(Vec<u8>, String)>> {
        let column = file_column(format)?;
        let sql = format!(
            "SELECT f.body, f.encoding, b.{column} FROM payment_files f JOIN payment_batches b ON b.id = f.batch \
             WHERE f.batch = $1 AND f.format = $2"
        );
        let row: Option<(Vec<u8>, Option<String>, Option<String>)> =
            on!(self.db(), p => sqlx::query_as(&sql).bind(batch).bind(format).fetch_optional(p).await?);
        let Some((sealed, encoding, approved)) = row else { return Ok(None) };
        let opened = self.inner.cipher.open(&format!("payment-file:{batch}:{format}"), &sealed)?;
        let bytes = match encoding.as_deref() {
            None => opened,
            Some("deflate") => {
                inflate(&opened).map_err(|e| StoreError::Corrupt(format!("batch {batch}: its {format} file: {e}")))?
            }
            Some(other) => return Err(StoreError::Corrupt(format!("batch {batch}: file encoding {other:?}"))),
        };
        let sha = crate::hex(&sha2::Sha256::digest(&bytes));
        if approved.as_deref() != Some(sha.as_str()) {
            return Err(StoreError::Corrupt(format!("batch {batch}: its {format} file is not the one approved")));
        }
        Ok(Some((bytes, sha)))
    }

    /// Records that a file of an approved batch was handed out, with its
    /// SHA-256 (an event each time: who took the bank file, when). The
    /// file must be the one the batch holds (`Conflict` otherwise): a
    /// batch has one file per format. Returns whether this was the
    /// batch's first file (it went to the bank now).
    pub async fn record_export(&self, id: &str, format: &str, sha256: &str, by: &str, at: i64) -> Result<bool> {
        let column = file_column(format)?;
        let aggregate = format!("batch:{id}");
        let event = serde_json::json!({"type": "batch_exported", "format": format, "sha256": sha256});
        let first;
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            let sql = format!("SELECT state, {column}, exported_at FROM payment_batches WHERE id = $1");
            let row: Option<(String, Option<String>, Option<i64>)> =
                sqlx::query_as(&sql).bind(id).fetch_optional(&mut *tx).await?;
            let Some((state, existing, exported_at)) = row else { return Err(StoreError::NotFound) };
            first = exported_at.is_none();
            if state == "created" {
                return Err(StoreError::Conflict { current: -1 });
            }
            if existing.as_deref().is_some_and(|e| e != sha256) {
                return Err(StoreError::Conflict { current: -2 });
            }
            let sql = format!(
                "UPDATE payment_batches SET {column} = $2, state = 'exported', \
                 exported_at = COALESCE(exported_at, $3) WHERE id = $1"
            );
            sqlx::query(&sql).bind(id).bind(sha256).bind(at).execute(&mut *tx).await?;
            append_event!(&mut *tx, self, &aggregate, Some(by), at, &event);
            tx.commit().await?;
        });
        Ok(first)
    }

    /// Credit batches whose file went out and whose "payment sent"
    /// notices are not queued yet, oldest first.
    pub async fn batches_to_notify(&self) -> Result<Vec<String>> {
        Ok(on!(self.db(), p => sqlx::query_scalar(
            "SELECT id FROM payment_batches WHERE direction = 'credit' AND exported_at IS NOT NULL \
             AND notified_at IS NULL ORDER BY exported_at, id",
        )
        .fetch_all(p)
        .await?))
    }

    /// Marks a batch's notices queued.
    pub async fn mark_batch_notified(&self, id: &str, at: i64) -> Result<()> {
        on!(self.db(), p => sqlx::query("UPDATE payment_batches SET notified_at = $2 WHERE id = $1 AND notified_at IS NULL")
            .bind(id)
            .bind(at)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Applies the bank's returns: payments' new states, the dossiers'
    /// events and one event per batch touched, in one transaction.
    pub async fn settle_payments(
        &self,
        settlements: &[Settlement],
        dossiers: Vec<NewEvents>,
        by: &str,
        at: i64,
    ) -> Result<()> {
        let appends = dossiers.into_iter().map(|n| self.prepare_append_with(n, false)).collect::<Result<Vec<_>>>()?;
        let refs: Vec<String> = settlements.iter().map(|s| s.reference.clone()).collect();
        let batch_of: std::collections::HashMap<String, String> =
            self.payment_statuses(&refs).await?.into_iter().map(|p| (p.reference, p.batch)).collect();
        let mut per_batch: std::collections::BTreeMap<&str, Vec<serde_json::Value>> = Default::default();
        for s in settlements {
            let batch = batch_of.get(&s.reference).ok_or(StoreError::NotFound)?;
            per_batch.entry(batch).or_default().push(serde_json::json!({
                "reference": s.reference, "state": s.state, "reason": s.reason,
            }));
        }
        let pg = matches!(self.db(), crate::Db::Postgres(_));
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            // Many payments per statement (both databases read UPDATE … FROM).
            for chunk in settlements.chunks(300) {
                // Placeholders in the order of the text (SQLite's `?`).
                let mut m = crate::Marks::new(pg);
                let rows = (0..chunk.len()).map(|_| format!("({})", m.list(3))).collect::<Vec<_>>().join(", ");
                let at_mark = m.next();
                let sql = format!(
                    "WITH v (reference, state, reason) AS (VALUES {rows}) \
                     UPDATE payments SET state = v.state, reason = v.reason, updated_at = {at_mark} \
                     FROM v WHERE payments.reference = v.reference"
                );
                let mut q = sqlx::query(&sql);
                for s in chunk {
                    q = q.bind(&s.reference).bind(&s.state).bind(&s.reason);
                }
                let done = q.bind(at).execute(&mut *tx).await?.rows_affected();
                if done != chunk.len() as u64 {
                    return Err(StoreError::NotFound);
                }
            }
            for (batch, lines) in &per_batch {
                let event = serde_json::json!({"type": "returns_imported", "payments": lines});
                append_event!(&mut *tx, self, &format!("batch:{batch}"), Some(by), at, &event);
            }
            apply_appends!(&mut *tx, &appends, pg)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Queues a mail once: a second call with the same idempotency key is
    /// a no-op (returns false). `dossier` files it in the dossier's log.
    pub async fn queue_mail_once(
        &self,
        key: &str,
        dossier: Option<&str>,
        to: &str,
        subject: &str,
        body: &str,
        at: i64,
    ) -> Result<bool> {
        let (recipient, sealed) = self.seal_mail(to, subject, body)?;
        let done = on!(self.db(), p => sqlx::query(
            "INSERT INTO outbox (recipient, subject, body, created_at, idempotency_key, dossier, sealed_head) \
             VALUES ($1, '', $2, $3, $4, $5, 1) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(recipient)
        .bind(sealed)
        .bind(at)
        .bind(key)
        .bind(dossier)
        .execute(p)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Queues many mails in one transaction, each once per key (those
    /// already queued are left alone). Returns how many were new.
    pub async fn queue_mails_once(&self, mails: &[KeyedMail], at: i64) -> Result<u64> {
        let mut sealed = Vec::with_capacity(mails.len());
        for m in mails {
            sealed.push(self.seal_mail(&m.to, &m.subject, &m.body)?);
        }
        let mut added = 0;
        let pg = self.pg();
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            for (chunk_no, chunk) in mails.chunks(400).enumerate() {
                let mut sql = String::from(
                    "INSERT INTO outbox (recipient, subject, body, created_at, idempotency_key, dossier, sealed_head) VALUES ",
                );
                let mut marks = crate::Marks::new(pg);
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!("({}, '', {}, 1)", marks.list(1), marks.list(4)));
                }
                sql.push_str(" ON CONFLICT (idempotency_key) DO NOTHING");
                let mut q = sqlx::query(&sql);
                for (i, m) in chunk.iter().enumerate() {
                    let (recipient, body) = &sealed[chunk_no * 400 + i];
                    q = q
                        .bind(recipient)
                        .bind(body)
                        .bind(at)
                        .bind(&m.key)
                        .bind(&m.dossier);
                }
                added += q.execute(&mut *tx).await?.rows_affected();
            }
            tx.commit().await?;
        });
        Ok(added)
    }

    /// Who applied and under which program version, for many dossiers at
    /// once (plain columns: nothing to open): id → (applicant, program,
    /// program version).
    pub async fn dossier_heads(
        &self,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, (String, String, String)>> {
        let select = "SELECT id, applicant, program, program_version FROM dossiers WHERE id IN";
        let rows: Vec<(String, String, String, String)> = self.select_in(select, ids).await?;
        Ok(rows.into_iter().map(|(id, a, p, v)| (id, (a, p, v))).collect())
    }

    /// What was sent (or is waiting) about a dossier: (recipient, subject,
    /// queued at, sent at, attempts, last error), oldest first.
    pub async fn dossier_mails(&self, dossier: &str) -> Result<Vec<MailLogLine>> {
        type Row = (String, Vec<u8>, i64, Option<i64>, i64, Option<String>, Option<i64>, i64);
        let rows: Vec<Row> = on!(self.db(), p => sqlx::query_as(
            "SELECT recipient, body, created_at, sent_at, attempts, last_error, claimed_at, id FROM outbox \
             WHERE dossier = $1 ORDER BY id",
        )
        .bind(dossier)
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|r| {
                let m = self.open_mail(&r.0, &r.1)?;
                Ok(MailLogLine {
                    status: match (r.3, r.6) {
                        (Some(_), _) => "sent",
                        (None, Some(_)) => "uncertain",
                        (None, None) if r.4 > 0 => "retrying",
                        (None, None) => "queued",
                    },
                    to: m.to,
                    subject: m.subject,
                    queued_at: r.2,
                    sent_at: r.3,
                    attempts: r.4,
                    last_error: r.5.as_deref().map(|e| self.open_error(r.7, e)).transpose()?,
                })
            })
            .collect()
    }
}

/// A mail to queue once under its key.
#[derive(Debug, Clone)]
pub struct KeyedMail {
    pub key: String,
    pub dossier: Option<String>,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// One line of a dossier's delivery log.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MailLogLine {
    /// `queued`, `retrying`, `sent`, or `uncertain` (handed to the SMTP
    /// server when the process stopped: not sent again by itself).
    pub status: &'static str,
    pub to: String,
    pub subject: String,
    pub queued_at: i64,
    pub sent_at: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
}
