//! Payments: which approved dossiers are ready, batches built by one
//! finance officer and approved by another, the bank files (ISO 20022
//! pain.001 and Standard 005), the bank's returns, changes of bank details
//! under a second employee's confirmation, and loans (balance, repayments,
//! pre-authorized debits, reminders before the due date).

use guichet_core::{Action, BankDetails, Command, Dossier, State, UserId};
use guichet_pay::{Batch, Direction, Originator, Payment};
use guichet_store::{
    BatchFile, BatchRow, DossierRow, NewBatch, NewEvents, NewPayment, PayeeDetails, PaymentRow, Settlement,
};
use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::{App, AppError, Caller, DossierView, Result};

/// The two file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayFormat {
    Pain001,
    Cpa005,
}

impl PayFormat {
    pub fn parse(s: &str) -> Result<PayFormat> {
        match s {
            "pain001" | "pain.001" => Ok(PayFormat::Pain001),
            "cpa005" | "cpa-005" | "005" => Ok(PayFormat::Cpa005),
            other => Err(AppError::invalid("invalid_request", format!("unknown format {other:?}: pain001 or cpa005"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            PayFormat::Pain001 => "pain001",
            PayFormat::Cpa005 => "cpa005",
        }
    }

    /// The file of `batch` in this format.
    fn write(self, batch: &Batch, org: &Originator) -> Result<Vec<u8>> {
        Ok(match self {
            PayFormat::Pain001 => guichet_pay::pain001::write(batch, org)?.into_bytes(),
            PayFormat::Cpa005 => guichet_pay::cpa005::write(batch, org)?,
        })
    }

    fn file_name(self, batch: &str) -> String {
        match self {
            PayFormat::Pain001 => format!("{batch}.pain001.xml"),
            PayFormat::Cpa005 => format!("{batch}.cpa005.txt"),
        }
    }

    fn media_type(self) -> &'static str {
        match self {
            PayFormat::Pain001 => "application/xml",
            PayFormat::Cpa005 => "text/plain",
        }
    }
}

/// One dossier in the payment queue: ready, or why not.
#[derive(Debug, Clone, Serialize)]
pub struct ReadyPayment {
    pub dossier: String,
    pub program: String,
    /// Cents.
    pub amount: i64,
    pub payee: String,
    /// `815-12345-****567`, when known.
    pub bank: Option<String>,
    /// Why it cannot go in a batch yet (`None`: ready).
    pub blocked: Option<String>,
    pub state: State,
    pub updated_at: i64,
}

/// The format of the payment lines: raise it when what a line holds or
/// how it is computed changes (payability, the checks of `blocked_by`),
/// so that lines written before are not trusted.
pub const PAY_LINE_FORMAT: u32 = 1;

/// The states a dossier of the payment queue is in.
const QUEUE_STATES: [State; 3] = [State::Approved, State::AgreementSigned, State::PaymentReturned];

/// A dossier's line in the payment queue, as the service computed it from
/// the dossier when it last wrote it (kept sealed beside the dossier).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayLine {
    /// The rules it was computed with ([`PAY_LINE_FORMAT`]): a line of
    /// another format is not used (its dossier is opened instead).
    #[serde(default)]
    pub format: u32,
    /// Cents, as decided.
    pub amount: i64,
    /// A third-party payee's name (the program's question); `None`: the
    /// payee is the applicant, named as their account is when read.
    pub name: Option<String>,
    /// A third-party payee's email, told when the payment leaves.
    pub notify: Option<String>,
    pub bank: Option<BankDetails>,
    /// Whether the dossier's state lets a payment go out.
    pub payable: bool,
    /// Why the amount or the bank details keep it back, if they do.
    pub blocked: Option<String>,
    /// A loan waiting for its agreement: not listed at all.
    pub awaiting_agreement: bool,
}

/// A dossier of the payment queue: as listed, and what a batch takes.
#[derive(Debug)]
struct Queued {
    id: String,
    program: String,
    version: i64,
    ready: ReadyPayment,
    line: PayLine,
}

/// A loan's repayment position.
#[derive(Debug, Clone, Serialize)]
pub struct LoanLine {
    pub dossier: String,
    pub program: String,
    pub borrower: String,
    /// Cents lent, repaid and owed.
    pub lent: i64,
    pub repaid: i64,
    pub balance: i64,
    /// ISO date the balance is due.
    pub due: String,
    /// Days from today to the due date (negative: overdue).
    pub days_left: i64,
    pub debit_authorized: bool,
}

/// What an import of returns did.
#[derive(Debug, Clone, Serialize)]
pub struct ReturnsReport {
    pub paid: usize,
    pub returned: usize,
    pub repayments: usize,
    /// Payments the bank has accepted but not settled yet (a pain.002's
    /// interim statuses): nothing applied for them.
    pub pending: usize,
}

/// A batch and its payments.
#[derive(Debug, Clone, Serialize)]
pub struct BatchView {
    pub batch: BatchRow,
    pub payments: Vec<PaymentRow>,
    /// Who built it and who approved it, by name.
    pub created_by_name: String,
    pub approved_by_name: Option<String>,
}

fn masked(d: &BankDetails) -> Option<String> {
    d.account().ok().map(|a| a.to_string())
}

fn bank_from_answer(v: &serde_json::Value) -> Option<BankDetails> {
    let f = |k: &str| v.get(k).and_then(|x| x.as_str()).map(|s| s.trim().to_owned());
    Some(BankDetails { institution: f("institution")?, transit: f("transit")?, account: f("account")? })
}

/// Standard 005's file creation number (1 to 9999, then 1 again) of the
/// batch with sequence number `seq` (1, 2, …: unique forever in the store,
/// so numbering goes on past 9999).
fn file_creation_number(seq: i64) -> Result<u16> {
    if seq < 1 {
        return Err(AppError::Internal(format!("batch sequence number {seq}")));
    }
    u16::try_from((seq - 1) % 9999 + 1).map_err(|_| AppError::Internal("file number".into()))
}

fn iso_date(d: jiff::civil::Date) -> String {
    d.to_string()
}

impl App {
    fn originator(&self) -> Result<&Originator> {
        self.config.originator.as_ref().ok_or_else(|| {
            AppError::WrongState(
                "payment files need the organization's bank settings (payment_originator_id, payment_account…)".into(),
            )
        })
    }

    /// A dossier's line in the payment queue, from the dossier itself
    /// (`None` outside the queue's states). Written with every write of a
    /// dossier (`NewEvents::payment_line`), so the queue opens no dossier.
    pub async fn payment_line(&self, program: &str, program_version: &str, d: &Dossier) -> Result<Option<PayLine>> {
        if !QUEUE_STATES.contains(&d.state) {
            return Ok(None);
        }
        let p = self.program_version(program, program_version, None).await?;
        let payee = p.program.payee.as_ref();
        let answers = &d.answers;
        let third = payee.filter(|x| x.kind == guichet_rules::raw::PayeeKind::ThirdParty);
        let name = third.map(|x| {
            x.name.as_ref().and_then(|q| answers.get(q)).and_then(|v| v.as_str()).map(str::to_owned).unwrap_or_default()
        });
        let notify = third
            .and_then(|x| x.email.as_ref())
            .and_then(|q| answers.get(q))
            .and_then(|v| v.as_str())
            .filter(|e| guichet_core::Email::parse(e).is_ok())
            .map(str::to_owned);
        let bank = d.bank.clone().or_else(|| {
            payee.and_then(|x| x.bank_account.as_ref()).and_then(|q| answers.get(q)).and_then(bank_from_answer)
        });
        let amount = d.decision.as_ref().and_then(|x| x.amount).unwrap_or(0);
        let blocked = Self::blocked_by(d, amount, bank.as_ref());
        Ok(Some(PayLine {
            format: PAY_LINE_FORMAT,
            amount,
            name,
            notify,
            bank,
            payable: d.payable(),
            blocked,
            awaiting_agreement: d.state == State::Approved && d.agreement_required,
        }))
    }

    /// [`App::payment_line`] as the store keeps it (JSON): what every
    /// write of a dossier passes as `NewEvents::payment_line` (public for
    /// writers that bypass the use cases, as the benchmark's setup does).
    pub async fn payment_line_json(
        &self,
        program: &str,
        program_version: &str,
        d: &Dossier,
    ) -> Result<Option<Vec<u8>>> {
        match self.payment_line(program, program_version, d).await? {
            Some(l) => Ok(Some(serde_json::to_vec(&l).map_err(|e| AppError::Internal(e.to_string()))?)),
            None => Ok(None),
        }
    }

    /// Why a payable dossier's own state keeps its payment back (the
    /// amount and the bank details), if it does.
    fn blocked_by(d: &Dossier, amount: i64, bank: Option<&BankDetails>) -> Option<String> {
        if amount <= 0 {
            return Some("the amount is zero".into());
        }
        if let Some(computed) = d.decision.as_ref().and_then(|x| x.computed_amount)
            && amount > computed
        {
            return Some(format!("the amount is over what the program's rules allow ({computed} cents)"));
        }
        if amount > guichet_pay::MAX_AMOUNT {
            return Some("the amount is too large for one bank payment".into());
        }
        if d.pending_bank.is_some() {
            return Some("a change of bank details waits for a second employee's confirmation".into());
        }
        match bank {
            None => Some("no bank details".into()),
            Some(b) if b.account().is_err() => Some("the bank details are not valid".into()),
            _ => None,
        }
    }

    /// Why a line cannot be paid now, if it cannot: its dossier's state,
    /// a duplicate flag (the row's), its own reasons, then the name.
    fn blocked(line: &PayLine, flags: &[String], name: &str) -> Option<String> {
        if !line.payable {
            return Some("not payable in this state".into());
        }
        if flags.iter().any(|f| f.starts_with("possible_duplicate")) {
            return Some("possible duplicate: a case worker must clear the flag".into());
        }
        if let Some(why) = &line.blocked {
            return Some(why.clone());
        }
        if name.trim().is_empty() {
            return Some("no payee name".into());
        }
        None
    }

    /// The payment queue, each dossier with its line: from the lines
    /// written with the dossiers; a dossier without one for its current
    /// version (written before lines, or by a write that kept none) is
    /// opened and its line computed now.
    async fn payment_queue(&self) -> Result<Vec<Queued>> {
        let rows = self.store.payment_queue(&QUEUE_STATES).await?;
        // The lines kept, read once (a line of another format: none).
        let kept: Vec<Option<PayLine>> = rows
            .iter()
            .map(|r| match &r.line {
                Some(json) => serde_json::from_slice::<PayLine>(json)
                    .map(|l| Some(l).filter(|l| l.format == PAY_LINE_FORMAT))
                    .map_err(|e| AppError::Internal(format!("dossier {}: payment line: {e}", r.id))),
                None => Ok(None),
            })
            .collect::<Result<_>>()?;
        let missing: Vec<String> =
            rows.iter().zip(&kept).filter(|(_, l)| l.is_none()).map(|(r, _)| r.id.clone()).collect();
        let mut opened = if missing.is_empty() { Default::default() } else { self.store.dossiers(&missing).await? };
        let mut out = Vec::with_capacity(rows.len());
        for (mut r, kept) in rows.into_iter().zip(kept) {
            let line: PayLine = match kept {
                Some(l) => l,
                None => {
                    let Some(full) = opened.remove(&r.id) else { continue };
                    // Read after the queue: a dossier that moved on since is
                    // listed as it is now (a batch then takes that version).
                    r.version = full.version;
                    r.state = full.state;
                    r.updated_at = full.updated_at;
                    r.flags = full.flags;
                    match self.payment_line(&r.program, &full.program_version, &full.dossier).await? {
                        Some(l) => l,
                        None => continue,
                    }
                }
            };
            // A loan still waiting for its agreement is not in the queue at all.
            if line.awaiting_agreement {
                continue;
            }
            let name = match &line.name {
                Some(third_party) => third_party.clone(),
                None => r.contact.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
            };
            let blocked = Self::blocked(&line, &r.flags, &name);
            let ready = ReadyPayment {
                dossier: r.id.clone(),
                program: r.program.clone(),
                amount: line.amount,
                payee: name,
                bank: line.bank.as_ref().and_then(masked),
                blocked,
                state: r.state,
                updated_at: r.updated_at,
            };
            out.push(Queued { id: r.id, program: r.program, version: r.version, ready, line });
        }
        Ok(out)
    }

    /// The payment queue: approved dossiers whose payment may go out
    /// (agreement signed where needed), and the ones held back, with why.
    pub async fn payments_ready(&self, by: &Caller) -> Result<Vec<ReadyPayment>> {
        by.may(Action::Pay, None)?;
        Ok(self.payment_queue().await?.into_iter().map(|q| q.ready).collect())
    }

    /// Builds a batch of credits from the ready dossiers (all of them, or
    /// those named). Refused whole if a named dossier is not ready.
    pub async fn create_batch(
        &self,
        by: &Caller,
        only: Option<&[String]>,
        execution_date: Option<&str>,
    ) -> Result<BatchRow> {
        by.may(Action::Pay, None)?;
        let now = self.now();
        let today = self.local_date(now)?;
        let execution = match execution_date {
            Some(s) => s
                .parse::<jiff::civil::Date>()
                .map_err(|_| AppError::invalid("invalid_request", format!("{s:?} is not a date (YYYY-MM-DD)")))?,
            None => today,
        };
        if execution < today {
            return Err(AppError::invalid("invalid_request", "the execution date is in the past"));
        }
        // Taken out of the queue as they go in the batch (nothing copied).
        let mut queue: Vec<Option<_>> = self.payment_queue().await?.into_iter().map(Some).collect();
        let blocked = |q: &Option<Queued>| q.as_ref().and_then(|q| q.ready.blocked.as_deref()).map(str::to_owned);
        let chosen: Vec<usize> = if let Some(ids) = only {
            // Looked up by id: an officer may name thousands of a queue of
            // 100,000 (a scan per name was quadratic).
            let by_id: std::collections::HashMap<&str, usize> =
                queue.iter().enumerate().filter_map(|(i, q)| q.as_ref().map(|q| (q.id.as_str(), i))).collect();
            let mut named = std::collections::HashSet::with_capacity(ids.len());
            let mut chosen = Vec::with_capacity(ids.len());
            for id in ids {
                if !named.insert(id.as_str()) {
                    return Err(AppError::invalid("invalid_request", format!("{id} is named twice")));
                }
                let Some(i) = by_id.get(id.as_str()).copied() else {
                    return Err(AppError::invalid("not_ready", format!("{id} is not in the payment queue")));
                };
                if let Some(why) = blocked(&queue[i]) {
                    return Err(AppError::invalid("not_ready", format!("{id}: {why}")));
                }
                chosen.push(i);
            }
            chosen
        } else {
            (0..queue.len()).filter(|i| queue[*i].as_ref().is_some_and(|q| q.ready.blocked.is_none())).collect()
        };
        if chosen.is_empty() {
            return Err(AppError::invalid("not_ready", "no dossier is ready for payment"));
        }
        let batch_id = format!("LOT-{}-{}", today.strftime("%Y%m%d"), &guichet_store::new_id("")?[..8].to_uppercase());
        let mut payments = Vec::with_capacity(chosen.len());
        // References: one random prefix per batch (44 bits), then the
        // payment's number in the batch: unique, 19 characters as before,
        // and increasing, so the payments' index is written in sequence.
        if chosen.len() >= 10_000_000 {
            return Err(AppError::invalid("invalid_request", "a batch holds fewer than 10,000,000 payments"));
        }
        let prefix = guichet_store::new_id("")?[..11].to_uppercase();
        for (n, i) in chosen.into_iter().enumerate() {
            let q = queue[i].take().ok_or_else(|| AppError::Internal("a dossier taken twice for a batch".into()))?;
            let bank = q.line.bank.ok_or_else(|| AppError::Internal("a ready payment without bank details".into()))?;
            let reference = format!("P{prefix}{n:07}");
            let remittance = format!("{} {}", q.program, q.id);
            // Ready: its line, written at this version, says the dossier's
            // own rules allow the payment (`Dossier::payable`); the batch
            // moves it only if it is still at this version.
            payments.push(NewPayment {
                reference,
                dossier: q.id,
                amount: q.ready.amount,
                currency: "CAD".into(),
                details: PayeeDetails {
                    name: q.ready.payee,
                    institution: bank.institution,
                    transit: bank.transit,
                    account: bank.account,
                    remittance,
                    notify: q.line.notify,
                },
                version: Some(q.version),
            });
        }
        self.record_batch(by, batch_id, Direction::Credit, execution, payments).await
    }

    /// Checks that the bank files can be written, then records the batch
    /// and its payments (and, for credits, their dossiers' scheduling) in
    /// one transaction.
    async fn record_batch(
        &self,
        by: &Caller,
        id: String,
        direction: Direction,
        execution: jiff::civil::Date,
        payments: Vec<NewPayment>,
    ) -> Result<BatchRow> {
        let now = self.now();
        let lines = payments
            .iter()
            .map(|p| (p.reference.as_str(), p.dossier.as_str(), p.amount, p.currency.as_str(), &p.details));
        // The files are written now, once: the approval is of these bytes.
        // The file creation number is the store's to give; the files carry
        // the next one, and the store refuses the batch if it took another.
        let file_number = self.store.next_file_number().await?;
        let batch = self.pay_batch(&id, self.local_datetime(now)?, execution, file_number, direction, lines)?;
        batch.check()?;
        let org = self.originator()?;
        // pain.001 carries credit transfers only; Standard 005 both.
        let formats: &[PayFormat] = match direction {
            Direction::Credit => &[PayFormat::Pain001, PayFormat::Cpa005],
            Direction::Debit => &[PayFormat::Cpa005],
        };
        let files = formats
            .iter()
            .map(|f| Ok(BatchFile { format: f.name().into(), bytes: f.write(&batch, org)? }))
            .collect::<Result<Vec<_>>>()?;
        drop(batch);
        let direction = if direction == Direction::Debit { "debit" } else { "credit" };
        self.store
            .create_batch(NewBatch {
                id,
                direction: direction.into(),
                currency: "CAD".into(),
                created_local: self.local_datetime(now)?.to_string(),
                execution_date: iso_date(execution),
                created_by: by.id().into(),
                at: now,
                file_number,
                payments,
                files,
            })
            .await
            .map_err(|e| match e {
                guichet_store::StoreError::Conflict { current: -3 } => AppError::WrongState(
                    "another batch took this file creation number meanwhile: build the batch again".into(),
                ),
                guichet_store::StoreError::Conflict { .. } => AppError::Conflict { current: -1 },
                guichet_store::StoreError::Taken(what) => {
                    AppError::WrongState(format!("{what} of this batch is already used: build the batch again"))
                }
                e => e.into(),
            })
    }

    /// The batch as the file writers take it; `payments` are (reference,
    /// dossier, cents, currency, payee).
    fn pay_batch<'a>(
        &self,
        id: &str,
        created: jiff::civil::DateTime,
        execution: jiff::civil::Date,
        file_number: i64,
        direction: Direction,
        payments: impl Iterator<Item = (&'a str, &'a str, i64, &'a str, &'a PayeeDetails)>,
    ) -> Result<Batch> {
        Ok(Batch {
            id: id.into(),
            created,
            execution,
            file_number: file_creation_number(file_number)?,
            direction,
            payments: payments
                .map(|(reference, dossier, amount, currency, d)| {
                    let account =
                        guichet_core::BankAccount::parse(&d.institution, &d.transit, &d.account).map_err(|_| {
                            AppError::invalid("invalid_bank", format!("{dossier}: the bank details are not valid"))
                        })?;
                    Ok(Payment {
                        reference: reference.into(),
                        name: d.name.clone(),
                        account,
                        amount,
                        currency: currency.into(),
                        remittance: d.remittance.clone(),
                    })
                })
                .collect::<Result<Vec<_>>>()?,
        })
    }

    /// The second finance officer's approval (never the one who built it).
    pub async fn approve_batch(&self, by: &Caller, id: &str) -> Result<BatchRow> {
        by.may(Action::Pay, None)?;
        let batch = self.store.batch(id).await?.ok_or(AppError::NotFound)?;
        if batch.created_by == by.id() {
            return Err(AppError::Forbidden(
                "a batch is approved by a second finance officer, not by who built it".into(),
            ));
        }
        if batch.state != "created" {
            return Err(AppError::WrongState(format!("this batch is already {}", batch.state)));
        }
        self.store.approve_batch(id, by.id(), self.now()).await.map_err(|e| match e {
            guichet_store::StoreError::Conflict { .. } => {
                AppError::WrongState("this batch was approved meanwhile".into())
            }
            e => e.into(),
        })?;
        self.store.batch(id).await?.ok_or(AppError::NotFound)
    }

    pub async fn batches(&self, by: &Caller) -> Result<Vec<BatchRow>> {
        by.may(Action::Pay, None)?;
        Ok(self.store.batches(200).await?)
    }

    pub async fn batch_view(&self, by: &Caller, id: &str) -> Result<BatchView> {
        by.may(Action::Pay, None)?;
        let batch = self.store.batch(id).await?.ok_or(AppError::NotFound)?;
        let payments = self.store.batch_payments(id).await?;
        let name = async |id: &str| -> Result<String> {
            Ok(self.store.user(id).await?.map(|u| u.name).unwrap_or_else(|| id.to_owned()))
        };
        let created_by_name = name(&batch.created_by).await?;
        let approved_by_name = match &batch.approved_by {
            Some(a) => Some(name(a).await?),
            None => None,
        };
        Ok(BatchView { batch, payments, created_by_name, approved_by_name })
    }

    /// The bank file of an approved batch: (bytes, file name, media type):
    /// the file written when the batch was built, whose SHA-256 the second
    /// officer approved. Each hand-out is an event of the batch. The
    /// "payment sent" notices are not queued here: see
    /// [`App::notify_exported_batches`].
    pub async fn export_batch(&self, by: &Caller, id: &str, format: PayFormat) -> Result<(Vec<u8>, String, String)> {
        by.may(Action::Pay, None)?;
        let org = self.originator()?;
        let row = self.store.batch(id).await?.ok_or(AppError::NotFound)?;
        if row.state == "created" {
            return Err(AppError::WrongState("this batch waits for a second finance officer's approval".into()));
        }
        let (bytes, sha, name, media) = match self.store.payment_file(id, format.name()).await? {
            Some((bytes, sha)) => (bytes, sha, format.file_name(id), format.media_type()),
            // A batch built before its files were kept: written from its
            // payments (the same bytes as long as the settings are).
            None => {
                let (bytes, name, media) = self.write_batch_file(&row, format, org).await?;
                let sha = guichet_store::hex(&sha2::Sha256::digest(&bytes));
                (bytes, sha, name, media)
            }
        };
        let first =
            self.store.record_export(id, format.name(), &sha, by.id(), self.now()).await.map_err(|e| match e {
                guichet_store::StoreError::Conflict { .. } => AppError::WrongState(
                    "this batch's file was already written with other contents; the settings changed since".into(),
                ),
                e => e.into(),
            })?;
        if first && row.direction == "credit" {
            tracing::info!(batch = %id, "payment file handed out; payment notices follow");
        }
        Ok((bytes, name, media.into()))
    }

    async fn write_batch_file(
        &self,
        row: &BatchRow,
        format: PayFormat,
        org: &Originator,
    ) -> Result<(Vec<u8>, String, &'static str)> {
        let id = &row.id;
        let payments = self.store.batch_payments(id).await?;
        let payees = self.store.batch_payees(id).await?;
        let direction = if row.direction == "debit" { Direction::Debit } else { Direction::Credit };
        let execution = row
            .execution_date
            .parse::<jiff::civil::Date>()
            .map_err(|_| AppError::Internal(format!("batch {id}: bad execution date")))?;
        let created = row
            .created_local
            .parse::<jiff::civil::DateTime>()
            .map_err(|_| AppError::Internal(format!("batch {id}: bad creation time")))?;
        let lines = payments
            .iter()
            .zip(&payees)
            .map(|(p, d)| (p.reference.as_str(), p.dossier.as_str(), p.amount, p.currency.as_str(), d));
        let batch = self.pay_batch(id, created, execution, row.file_number, direction, lines)?;
        let totals = batch.check()?;
        if totals.sum != row.total || totals.count as i64 != row.count {
            return Err(AppError::Internal(format!("batch {id}: its payments do not add up to its control totals")));
        }
        Ok((format.write(&batch, org)?, format.file_name(id), format.media_type()))
    }

    /// Queues the "payment sent" notices of every credit batch whose file
    /// went out and whose notices are not queued yet; returns how many
    /// batches. Run after an export (off the officer's request: a batch
    /// may hold 100,000 payments) and by the service's minute sweep, so
    /// a crash in between loses none (idempotency keys: none twice).
    pub async fn notify_exported_batches(&self) -> Result<usize> {
        let ids = self.store.batches_to_notify().await?;
        for id in &ids {
            let row = self.store.batch(id).await?.ok_or(AppError::NotFound)?;
            let payments = self.store.batch_payments(id).await?;
            let payees = self.store.batch_payees(id).await?;
            self.notify_payments_sent(&row, &payments, &payees).await?;
            self.store.mark_batch_notified(id, self.now()).await?;
        }
        Ok(ids.len())
    }

    /// Tells each applicant (and a third-party payee with an email) that
    /// the payment left; once per payment, however many exports. Read and
    /// queued in bulk: a batch may hold 100,000 payments.
    async fn notify_payments_sent(
        &self,
        batch: &BatchRow,
        payments: &[PaymentRow],
        payees: &[PayeeDetails],
    ) -> Result<()> {
        let ids: Vec<String> = payments.iter().map(|p| p.dossier.clone()).collect();
        let heads = self.store.dossier_heads(&ids).await?;
        let mut applicants: Vec<String> = heads.values().map(|h| h.0.clone()).collect();
        applicants.sort_unstable();
        applicants.dedup();
        let contacts = self.store.user_contacts(&applicants).await?;
        let date = batch.execution_date.parse::<jiff::civil::Date>().map_err(|e| AppError::Internal(e.to_string()))?;
        let dates = [Self::date_text(date, "fr"), Self::date_text(date, "en")];
        let mut mails = Vec::with_capacity(payments.len());
        for (p, payee) in payments.iter().zip(payees) {
            let Some((applicant, program, version)) = heads.get(&p.dossier) else { continue };
            let Some(user) = contacts.get(applicant) else { continue };
            let prog = self.program_version(program, version, None).await?;
            let lang = if user.language == "en" { "en" } else { "fr" };
            let rl = if lang == "en" { guichet_rules::Lang::En } else { guichet_rules::Lang::Fr };
            let args = |name: &str| {
                [
                    ("name", name.to_owned()),
                    ("program", prog.program.title.get(rl).to_owned()),
                    ("amount", Self::money_text(p.amount, lang)),
                    ("payee", payee.name.clone()),
                    ("date", dates[usize::from(lang == "en")].clone()),
                    ("reference", p.reference.clone()),
                    ("link", format!("{}/demandes/{}", self.config.base_url, p.dossier)),
                ]
            };
            let mut push = |role: &str, to: &str, name: &str| {
                let (subject, body) = crate::notify::render(crate::Notice::PaymentSent, lang, &args(name));
                mails.push(guichet_store::KeyedMail {
                    key: format!("payment-sent:{}:{role}", p.reference),
                    dossier: Some(p.dossier.clone()),
                    to: to.to_owned(),
                    subject,
                    body,
                });
            };
            push("applicant", &user.email, &user.name);
            if let Some(email) = &payee.notify {
                push("payee", email, &payee.name);
            }
        }
        self.store.queue_mails_once(&mails, self.now()).await?;
        Ok(())
    }

    /// Reminders to borrowers 30 and 7 days before their loan is due (each
    /// once). Returns how many were queued.
    pub async fn repayment_reminders(&self) -> Result<usize> {
        let mut queued = 0;
        for (l, _, user) in self.open_loan_rows(Some(30)).await? {
            if l.days_left < 0 {
                continue;
            }
            let stage = if l.days_left <= 7 { 7 } else { 30 };
            let Some(user) = user else { continue };
            let lang = if user.language == "en" { "en" } else { "fr" };
            let due = l.due.parse::<jiff::civil::Date>().map_err(|e| AppError::Internal(e.to_string()))?;
            let args = [
                ("name", user.name.clone()),
                ("dossier", l.dossier.clone()),
                ("balance", Self::money_text(l.balance, lang)),
                ("due", Self::date_text(due, lang)),
                ("link", format!("{}/demandes/{}", self.config.base_url, l.dossier)),
            ];
            let key = format!("repayment-reminder:{}:{}:{stage}", l.dossier, l.due);
            if self.notify(&key, Some(&l.dossier), &user.email, lang, crate::Notice::RepaymentReminder, &args).await? {
                queued += 1;
            }
        }
        Ok(queued)
    }

    /// What was mailed about a dossier (staff, and the applicant).
    pub async fn dossier_mails(&self, by: &Caller, id: &str) -> Result<Vec<guichet_store::MailLogLine>> {
        let row = self.row(id).await?;
        by.may(Action::Read, Some(&row.dossier))?;
        Ok(self.store.dossier_mails(id).await?)
    }

    /// Applies the bank's returns. All or nothing: a line that is unreadable,
    /// names an unknown payment, or contradicts its payment's state refuses
    /// the whole file, with every such line named.
    pub async fn import_returns(&self, by: &Caller, data: &[u8]) -> Result<ReturnsReport> {
        by.may(Action::Pay, None)?;
        let guichet_pay::returns::Parsed { lines, mut errors, pending, pending_references } =
            guichet_pay::returns::parse(data);
        let refs: Vec<String> =
            lines.iter().map(|l| l.reference.clone()).chain(pending_references.iter().map(|p| p.1.clone())).collect();
        let payments: std::collections::HashMap<String, guichet_store::PaymentStatus> =
            self.store.payment_statuses(&refs).await?.into_iter().map(|p| (p.reference.clone(), p)).collect();
        // Each batch read once, however many of its payments the file names.
        let mut batches: std::collections::HashMap<String, BatchRow> = Default::default();
        // Pending at the bank: only payments that went to it and are not
        // settled yet.
        for (line, reference) in &pending_references {
            let message = match payments.get(reference) {
                None => format!("{reference}: no such payment"),
                Some(p) if p.state != "scheduled" => format!("{reference}: the payment is already {}", p.state),
                Some(_) => continue,
            };
            errors.push(guichet_pay::returns::LineError { line: *line, message });
        }
        let now = self.now();
        let actor = UserId(by.id().into());
        let mut settlements = Vec::new();
        let mut dossiers: Vec<NewEvents> = Vec::new();
        // The dossiers the file touches, read at once: (version, state, flags).
        let mut ids: Vec<String> =
            lines.iter().filter_map(|l| payments.get(&l.reference)).map(|p| p.dossier.clone()).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut touched: std::collections::HashMap<String, (i64, Dossier, Vec<String>, String)> = self
            .store
            .dossiers(&ids)
            .await?
            .into_iter()
            .map(|(id, row)| (id, (row.version, row.dossier, row.flags, row.program_version)))
            .collect();
        let mut report = ReturnsReport { paid: 0, returned: 0, repayments: 0, pending };
        for l in &lines {
            let Some(p) = payments.get(&l.reference) else {
                errors.push(guichet_pay::returns::LineError {
                    line: l.line,
                    message: format!("{}: no such payment", l.reference),
                });
                continue;
            };
            if p.state != "scheduled" && !(p.state == "paid" && l.status != guichet_pay::returns::Status::Paid) {
                errors.push(guichet_pay::returns::LineError {
                    line: l.line,
                    message: format!("{}: the payment is already {}", l.reference, p.state),
                });
                continue;
            }
            let batch = match batches.entry(p.batch.clone()) {
                std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(self.store.batch(&p.batch).await?.ok_or(AppError::NotFound)?)
                }
            };
            if batch.state != "exported" {
                errors.push(guichet_pay::returns::LineError {
                    line: l.line,
                    message: format!("{}: its batch was never sent to the bank", l.reference),
                });
                continue;
            }
            let (state, reason) = match l.status {
                guichet_pay::returns::Status::Paid => ("paid", None),
                guichet_pay::returns::Status::Returned => ("returned", Some(l.reason.clone())),
                guichet_pay::returns::Status::Rejected => ("rejected", Some(l.reason.clone())),
            };
            let entry = touched
                .get_mut(&p.dossier)
                .ok_or_else(|| AppError::Internal(format!("{}: its dossier {} is gone", p.reference, p.dossier)))?;
            let cmd = match (batch.direction.as_str(), l.status) {
                ("debit", guichet_pay::returns::Status::Paid) => {
                    report.repayments += 1;
                    Some(Command::RecordRepayment { amount: p.amount, reference: p.reference.clone() })
                }
                ("debit", _) => None,
                (_, guichet_pay::returns::Status::Paid) => {
                    report.paid += 1;
                    Some(Command::MarkPaid { reference: p.reference.clone() })
                }
                _ => {
                    report.returned += 1;
                    Some(Command::ReturnPayment { reference: p.reference.clone(), reason: l.reason.clone() })
                }
            };
            if let Some(cmd) = cmd {
                match entry.1.handle(cmd, &actor, now) {
                    Ok(events) => {
                        let after = entry.1.after(&events)?;
                        dossiers.push(NewEvents {
                            dossier: p.dossier.clone(),
                            expected_version: entry.0,
                            program_version: None,
                            events: events.clone(),
                            actor: Some(by.id().into()),
                            after: after.clone(),
                            flags: entry.2.clone(),
                            keys: vec![],
                            at: now,
                            // A returned payment's dossier is back in the queue.
                            payment_line: self.payment_line_json(&after.program, &entry.3, &after).await?,
                        });
                        entry.0 += events.len() as i64;
                        entry.1 = after;
                    }
                    Err(e) => {
                        errors.push(guichet_pay::returns::LineError {
                            line: l.line,
                            message: format!("{}: {e}", l.reference),
                        });
                        continue;
                    }
                }
            }
            settlements.push(Settlement { reference: p.reference.clone(), state: state.into(), reason });
        }
        if !errors.is_empty() {
            errors.sort_by_key(|e| e.line);
            let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
            return Err(AppError::Invalid {
                code: "invalid_returns",
                message: format!("nothing was applied: {message}"),
                field: None,
                details: Some(serde_json::json!(
                    errors
                        .iter()
                        .map(|e| serde_json::json!({"line": e.line, "message": e.message}))
                        .collect::<Vec<_>>()
                )),
            });
        }
        if settlements.is_empty() {
            // A status report that only says "accepted, pending" is news,
            // not an error: nothing to apply yet.
            if pending > 0 {
                return Ok(report);
            }
            return Err(AppError::invalid("invalid_returns", "the file has no payment lines"));
        }
        self.store.settle_payments(&settlements, dossiers, by.id(), now).await?;
        Ok(report)
    }

    /// New bank details for a dossier's payee after the decision: by the
    /// applicant or a case worker; they wait for a second employee.
    pub async fn propose_bank_change(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        details: BankDetails,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Decide, Some(&row.dossier))
            .or_else(|_| by.may(Action::Pay, Some(&row.dossier)))
            .or_else(|_| by.may(Action::ActAsApplicant, Some(&row.dossier)))?;
        self.run_on(&row, by, version, Command::ProposeBankChange { details }).await
    }

    /// A second employee confirms new bank details.
    pub async fn confirm_bank_change(&self, by: &Caller, id: &str, version: Option<i64>) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Decide, Some(&row.dossier)).or_else(|_| by.may(Action::Pay, Some(&row.dossier)))?;
        self.run_on(&row, by, version, Command::ConfirmBankChange).await
    }

    /// A case worker checked a possible duplicate and clears the flags.
    pub async fn clear_duplicate_flags(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        note: String,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Decide, Some(&row.dossier))?;
        let events = row.dossier.handle(Command::ClearDuplicateFlags { note }, &UserId(by.id().into()), self.now())?;
        let flags = row.flags.iter().filter(|f| !f.starts_with("possible_duplicate")).cloned().collect();
        self.write(&row, version, events, by.id(), flags, vec![]).await
    }

    /// A repayment received outside the bank files (a cheque, a transfer).
    pub async fn record_repayment(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        amount: i64,
        reference: String,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Pay, Some(&row.dossier))?;
        self.require_loan(&row).await?;
        self.run_on(&row, by, version, Command::RecordRepayment { amount, reference }).await
    }

    /// The borrower agrees to repay by pre-authorized debit.
    pub async fn authorize_debit(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        details: BankDetails,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::ActAsApplicant, Some(&row.dossier))?;
        self.require_loan(&row).await?;
        self.run_on(&row, by, version, Command::AuthorizeDebit { details }).await
    }

    async fn require_loan(&self, row: &DossierRow) -> Result<()> {
        let p = self.program_of(row).await?;
        if p.program.agreement.as_ref().is_some_and(|a| a.kind == guichet_rules::raw::AgreementKind::Loan) {
            Ok(())
        } else {
            Err(AppError::WrongState("this program's aid is not a loan".into()))
        }
    }

    /// Loans paid out and not fully repaid, soonest due first. `within`:
    /// only those due within that many days (overdue included).
    pub async fn loans_due(&self, by: &Caller, within: Option<i64>) -> Result<Vec<LoanLine>> {
        by.may(Action::Pay, None)?;
        self.open_loans(within).await
    }

    async fn open_loans(&self, within: Option<i64>) -> Result<Vec<LoanLine>> {
        Ok(self.open_loan_rows(within).await?.into_iter().map(|(l, _, _)| l).collect())
    }

    /// [`App::open_loans`] with each loan's dossier and borrower, read once.
    async fn open_loan_rows(
        &self,
        within: Option<i64>,
    ) -> Result<Vec<(LoanLine, DossierRow, Option<guichet_store::Contact>)>> {
        // Real time, not the demo's evaluation date: money is due on real days.
        let today = self.local_date(self.now())?;
        // Contacts read for the open loans only, not every paid grant.
        let rows = self.store.dossiers_in(&[State::Paid]).await?;
        let mut open = Vec::new();
        for row in rows {
            let p = self.program_of(&row).await?;
            let Some(agreement) = p.program.agreement.as_ref() else { continue };
            if agreement.kind != guichet_rules::raw::AgreementKind::Loan || row.dossier.balance() <= 0 {
                continue;
            }
            let decided = row.dossier.decision.as_ref().map(|d| d.at).unwrap_or(row.updated_at);
            let decided_on = guichet_rules::Date::from_civil(self.local_date(decided)?);
            let due =
                agreement.repay_by.as_deref().and_then(|n| p.program.parameter_at(n, decided_on)).and_then(
                    |v| match v {
                        guichet_rules::Value::Date(d) => Some(d.to_civil()),
                        _ => None,
                    },
                );
            let Some(due) = due else { continue };
            let days_left = (due - today).get_days() as i64;
            if within.is_some_and(|w| days_left > w) {
                continue;
            }
            open.push((row, due, days_left));
        }
        let mut borrowers: Vec<String> = open.iter().map(|(r, _, _)| r.applicant.clone()).collect();
        borrowers.sort_unstable();
        borrowers.dedup();
        let contacts = self.store.user_contacts(&borrowers).await?;
        let mut out: Vec<_> = open
            .into_iter()
            .map(|(row, due, days_left)| {
                let contact = contacts.get(&row.applicant).cloned();
                let line = LoanLine {
                    dossier: row.id.clone(),
                    program: row.program.clone(),
                    borrower: contact.as_ref().map(|c| c.name.clone()).unwrap_or_default(),
                    lent: row.amount.unwrap_or(0),
                    repaid: row.dossier.repaid,
                    balance: row.dossier.balance(),
                    due: iso_date(due),
                    days_left,
                    debit_authorized: row.dossier.debit.is_some(),
                };
                (line, row, contact)
            })
            .collect();
        out.sort_by(|a, b| a.0.due.cmp(&b.0.due).then(a.0.dossier.cmp(&b.0.dossier)));
        Ok(out)
    }

    /// A batch of pre-authorized debits (Standard 005 `D` records) for the
    /// loans due within `within` days whose borrowers agreed to them.
    pub async fn create_debit_batch(&self, by: &Caller, within: i64, execution_date: &str) -> Result<BatchRow> {
        by.may(Action::Pay, None)?;
        let execution = execution_date
            .parse::<jiff::civil::Date>()
            .map_err(|_| AppError::invalid("invalid_request", format!("{execution_date:?} is not a date")))?;
        let loans = self.open_loan_rows(Some(within)).await?;
        let mut payments = Vec::new();
        for (l, row, _) in loans.iter().filter(|(l, _, _)| l.debit_authorized) {
            // A debit already on its way is not asked for twice.
            if self
                .store
                .dossier_payments(&row.id)
                .await?
                .iter()
                .any(|p| p.state == "scheduled" && p.reference.starts_with('R'))
            {
                continue;
            }
            let Some(d) = row.dossier.debit.clone() else { continue };
            payments.push(NewPayment {
                reference: format!("R{}", &guichet_store::new_id("")?[..18].to_uppercase()),
                dossier: row.id.clone(),
                amount: l.balance,
                currency: "CAD".into(),
                details: PayeeDetails {
                    name: l.borrower.clone(),
                    institution: d.institution,
                    transit: d.transit,
                    account: d.account,
                    remittance: format!("{} {}", row.program, row.id),
                    notify: None,
                },
                version: None,
            });
        }
        if payments.is_empty() {
            return Err(AppError::invalid("not_ready", "no loan with a debit authorization is due"));
        }
        let id = format!("PAD-{}-{}", execution.strftime("%Y%m%d"), &guichet_store::new_id("")?[..8].to_uppercase());
        self.record_batch(by, id, Direction::Debit, execution, payments).await
    }

    /// A dossier's payments (for its page).
    pub async fn dossier_payments(&self, by: &Caller, id: &str) -> Result<Vec<PaymentRow>> {
        let row = self.row(id).await?;
        by.may(Action::Read, Some(&row.dossier))?;
        Ok(self.store.dossier_payments(id).await?)
    }

    /// The organization's local date at `t`.
    pub fn local_date(&self, t: i64) -> Result<jiff::civil::Date> {
        Ok(self.local_datetime(t)?.date())
    }

    pub(crate) fn local_datetime(&self, t: i64) -> Result<jiff::civil::DateTime> {
        let tz = jiff::tz::TimeZone::get(&self.time_zone()).map_err(|e| AppError::Internal(e.to_string()))?;
        let ts = jiff::Timestamp::from_second(t).map_err(|e| AppError::Internal(e.to_string()))?;
        tz.to_datetime(ts).with().subsec_nanosecond(0).build().map_err(|e| AppError::Internal(e.to_string()))
    }
}

impl From<guichet_pay::BatchError> for AppError {
    fn from(e: guichet_pay::BatchError) -> AppError {
        AppError::invalid("invalid_batch", e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::file_creation_number;

    #[test]
    fn file_creation_numbers_go_round_after_9999() {
        let n = |seq| file_creation_number(seq).expect("number");
        assert_eq!((n(1), n(2), n(9998), n(9999)), (1, 2, 9998, 9999));
        assert_eq!((n(10_000), n(10_001), n(19_998), n(19_999)), (1, 2, 9999, 1));
        assert!(file_creation_number(0).is_err());
    }
}
