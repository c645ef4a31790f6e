//! Dossier use cases: create, answer, upload, submit (with duplicate
//! detection and, for automatic programs, the decision), evaluate, request
//! and provide information, decide, request a review, review, withdraw,
//! list and read. Each checks the caller's right first, then the
//! dossier's state (in `guichet-core`), then writes once.

use guichet_core::{Action, Command, Decision, Dossier, Event, Outcome, State, UserId};
use guichet_rules::{Application, Lang, Mode, QuestionType};
use guichet_store::{DossierRow, NewEvents, Queue, QueueOrder, StoredEvent};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use crate::{App, AppError, Caller, Published, Result};

/// A dossier as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct DossierView {
    pub id: String,
    pub program: String,
    pub program_version: String,
    pub applicant: String,
    #[schemars(with = "String")]
    pub state: State,
    /// For optimistic concurrency: send it back as `version` when changing
    /// the dossier; a stale one gets 409 `version_conflict`.
    pub version: i64,
    pub created_at: i64,
    pub submitted_at: Option<i64>,
    pub updated_at: i64,
    pub assignee: Option<String>,
    pub decided_by: Option<String>,
    /// Cents.
    pub amount: Option<i64>,
    pub flags: Vec<String>,
    pub answers: serde_json::Value,
    pub documents: Vec<serde_json::Value>,
    #[schemars(with = "Option<serde_json::Value>")]
    pub decision: Option<Decision>,
    pub agreement_required: bool,
    pub reviewed: bool,
    /// Bank details after the decision: confirmed (masked), and proposed
    /// ones waiting for a second employee (masked, who proposed them).
    pub bank: Option<String>,
    pub pending_bank: Option<(String, String)>,
    /// Why the bank returned the last payment.
    pub return_reason: Option<String>,
    /// Cents repaid on a loan, and whether the borrower authorized debits.
    pub repaid: i64,
    pub debit_authorized: bool,
}

fn masked(b: &guichet_core::BankDetails) -> String {
    b.account().map(|a| a.to_string()).unwrap_or_else(|_| "?".into())
}

impl DossierView {
    fn of(r: DossierRow) -> DossierView {
        let d = r.dossier;
        DossierView {
            id: r.id,
            program: r.program,
            program_version: r.program_version,
            applicant: r.applicant,
            state: r.state,
            version: r.version,
            created_at: r.created_at,
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
            assignee: r.assignee,
            decided_by: r.decided_by,
            amount: r.amount,
            flags: r.flags,
            answers: d.answers,
            documents: d.documents.into_iter().map(|(n, s)| serde_json::json!({"name": n, "sha256": s})).collect(),
            decision: d.decision,
            agreement_required: d.agreement_required,
            reviewed: d.reviewed,
            bank: d.bank.as_ref().map(masked),
            pending_bank: d.pending_bank.as_ref().map(|(b, by)| (masked(b), by.0.clone())),
            return_reason: d.return_reason,
            repaid: d.repaid,
            debit_authorized: d.debit.is_some(),
        }
    }
}

/// Filters of a dossier listing.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
pub struct ListFilter {
    pub program: Option<String>,
    /// Comma-separated states (`submitted,information_requested`).
    pub state: Option<String>,
    /// A user id, or `me`.
    pub assignee: Option<String>,
    #[serde(default)]
    pub flagged: bool,
    /// The `next` cursor of the previous page.
    pub after: Option<String>,
    pub limit: Option<i64>,
}

/// A decision (or a review's new decision).
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// `approved` or `refused`.
    pub outcome: String,
    /// Cents; defaults to the amount the rules computed. Another amount
    /// needs a justification.
    pub amount: Option<i64>,
    /// Coded reasons; for a refusal, defaults to the rules that failed.
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub justification: String,
}

/// An uploaded document.
#[derive(Debug)]
pub struct DocumentUpload {
    pub name: String,
    pub bytes: Vec<u8>,
    /// The file question it answers, if any.
    pub question: Option<String>,
}

/// The media type of a file by its content: PDF, JPEG or PNG only.
pub(crate) fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        Some("image/png")
    } else {
        None
    }
}

fn state_list(s: &str) -> Result<Vec<State>> {
    s.split(',')
        .filter(|x| !x.trim().is_empty())
        .map(|x| {
            serde_json::from_value(serde_json::Value::String(x.trim().into()))
                .map_err(|_| AppError::invalid("invalid_request", format!("unknown state {x:?}")))
        })
        .collect()
}

/// Values compared across dossiers for duplicate detection: the
/// applicant's bank accounts and addresses (not a third-party payee's:
/// many tenants share a landlord), and a SIN answer if the program asks.
fn duplicate_keys(p: &Published, answers: &serde_json::Value) -> Vec<(String, String)> {
    let payee = p.program.payee.as_ref().filter(|p| matches!(p.kind, guichet_rules::raw::PayeeKind::ThirdParty));
    let third_party =
        |q: &str| payee.is_some_and(|p| p.address.as_deref() == Some(q) || p.bank_account.as_deref() == Some(q));
    let norm = |v: &serde_json::Value, fields: &[&str]| -> Option<String> {
        let parts: Vec<String> = fields
            .iter()
            .map(|f| {
                let s = match v.get(f)? {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                Some(s.to_lowercase().chars().filter(|c| c.is_alphanumeric()).collect::<String>())
            })
            .collect::<Option<_>>()?;
        Some(parts.join("|"))
    };
    let mut keys = Vec::new();
    for q in &p.program.questions {
        let Some(v) = answers.get(&q.id) else { continue };
        if third_party(&q.id) {
            continue;
        }
        match q.kind {
            QuestionType::BankAccount => {
                if let Some(k) = norm(v, &["institution", "transit", "account"]) {
                    keys.push((format!("bank:{}", q.id), k));
                }
            }
            QuestionType::Address => {
                if let Some(k) = norm(v, &["line1", "postal_code"]) {
                    keys.push((format!("address:{}", q.id), k));
                }
            }
            QuestionType::Text if matches!(q.id.as_str(), "sin" | "nas") => {
                if let Some(s) = v.as_str().and_then(|s| guichet_core::Sin::parse(s).ok()) {
                    keys.push(("sin".into(), s.expose().to_owned()));
                }
            }
            _ => {}
        }
    }
    keys
}

impl App {
    /// A dossier as stored now (no authorization: callers checked).
    async fn dossier_view(&self, id: &str) -> Result<DossierView> {
        Ok(DossierView::of(self.row(id).await?))
    }

    pub(crate) async fn row(&self, id: &str) -> Result<DossierRow> {
        self.store.dossier(id).await?.ok_or(AppError::NotFound)
    }

    pub(crate) async fn program_of(&self, row: &DossierRow) -> Result<Arc<Published>> {
        self.program_version(&row.program, &row.program_version, None).await
    }

    /// The date an application is evaluated at: its submission day.
    fn application_date(&self, submitted_at: Option<i64>) -> Result<guichet_rules::Date> {
        match (submitted_at, &self.config.reference_date) {
            (_, Some(_)) | (None, None) => self.today(),
            (Some(t), None) => Ok(guichet_rules::Date::from_civil(self.local_date(t)?)),
        }
    }

    fn evaluate_answers(
        &self,
        p: &Published,
        answers: &serde_json::Value,
        date: guichet_rules::Date,
        mode: Mode,
    ) -> Result<guichet_rules::Evaluation> {
        let app = Application::from_json(&serde_json::json!({"submitted_on": date.to_string(), "answers": answers}))?;
        let inputs = p.program.prepare(&app)?;
        Ok(p.program.evaluate(&inputs, mode)?)
    }

    /// Checks answers against the program's questions (types, bounds,
    /// names), without requiring completeness.
    fn check_answers(&self, p: &Published, answers: &serde_json::Value) -> Result<()> {
        if !answers.is_object() {
            return Err(AppError::invalid("invalid_request", "`answers` must be a JSON object"));
        }
        let app = Application::from_json(
            &serde_json::json!({"submitted_on": self.today()?.to_string(), "answers": answers}),
        )?;
        p.program.prepare(&app)?;
        Ok(())
    }

    /// The one write of a use case.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn write(
        &self,
        row: &DossierRow,
        expected: Option<i64>,
        events: Vec<Event>,
        by: &str,
        flags: Vec<String>,
        keys: Vec<(String, String)>,
    ) -> Result<DossierView> {
        let expected = expected.unwrap_or(row.version);
        if expected != row.version {
            return Err(AppError::Conflict { current: row.version });
        }
        let after = row.dossier.after(&events)?;
        let now = self.now();
        let version = self
            .store
            .append(NewEvents {
                dossier: row.id.clone(),
                expected_version: expected,
                program_version: None,
                events,
                actor: Some(by.into()),
                after: after.clone(),
                flags: flags.clone(),
                keys,
                at: now,
                payment_line: self.payment_line_json(&row.program, &row.program_version, &after).await?,
            })
            .await?;
        // What was written, without reading it back.
        Ok(DossierView::of(DossierRow {
            version,
            state: after.state,
            submitted_at: after.submitted_at,
            updated_at: now,
            decided_by: after.decision.as_ref().map(|d| d.by.0.clone()),
            assignee: after.assignee.as_ref().map(|u| u.0.clone()),
            amount: after.decision.as_ref().and_then(|d| d.amount),
            flags,
            dossier: after,
            ..row.clone()
        }))
    }

    /// The common shape of a use case: read the dossier, check the right,
    /// run the command, write once.
    async fn command(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        action: Action,
        cmd: Command,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(action, Some(&row.dossier))?;
        self.run_on(&row, by, version, cmd).await
    }

    /// Runs a command on a dossier already read and checked, and writes.
    pub(crate) async fn run_on(
        &self,
        row: &DossierRow,
        by: &Caller,
        version: Option<i64>,
        cmd: Command,
    ) -> Result<DossierView> {
        let events = row.dossier.handle(cmd, &UserId(by.id().into()), self.now())?;
        self.write(row, version, events, by.id(), row.flags.clone(), vec![]).await
    }

    /// Submission: complete evaluation, duplicate flags, and the decision
    /// itself when the program decides automatically. Returns the events
    /// (after `pending`), the flags and the keys.
    async fn submission(
        &self,
        id: &str,
        p: &Published,
        dossier: &Dossier,
        by: &UserId,
        now: i64,
    ) -> Result<(Vec<Event>, Vec<String>, Vec<(String, String)>)> {
        let date = self.application_date(Some(now))?;
        let ev = self.evaluate_answers(p, &dossier.answers, date, Mode::Complete)?;
        let mut events = dossier.handle(Command::Submit, by, now)?;
        let keys = duplicate_keys(p, &dossier.answers);
        let mut flags = Vec::new();
        for (kind, value) in &keys {
            for other in self.store.duplicates(&p.id, kind, value, id).await? {
                flags.push(format!("possible_duplicate:{}:{other}", kind.split(':').next().unwrap_or(kind)));
            }
        }
        if p.program.decision == guichet_rules::Decision::Automatic {
            let after = dossier.after(&events)?;
            let approved = ev.eligible();
            let decision = Decision {
                outcome: if approved { Outcome::Approved } else { Outcome::Refused },
                amount: if approved { Some(ev.amount.map(|m| m.0).unwrap_or(0)) } else { None },
                computed_amount: ev.amount.map(|m| m.0),
                reasons: ev.failed().map(|r| p.program.rules[r.rule].name.clone()).collect(),
                justification: "Décision automatique selon les règles du programme".into(),
                program_version: p.version.clone(),
                evaluation: p.program.evaluation_json(&ev, Lang::Fr),
                by: UserId("system".into()),
                at: now,
            };
            let agreement_required = p.program.agreement.is_some();
            events.extend(after.handle(
                Command::Decide { decision, agreement_required },
                &UserId("system".into()),
                now,
            )?);
        }
        Ok((events, flags, keys))
    }

    /// Starts an application (optionally with answers, optionally
    /// submitting it at once).
    pub async fn create_dossier(
        &self,
        by: &Caller,
        program: &str,
        answers: Option<serde_json::Value>,
        submit: bool,
    ) -> Result<DossierView> {
        by.may(Action::ActAsApplicant, None)?;
        let p = match self.current_program(program).await {
            Ok(p) => p,
            Err(AppError::NotFound) => {
                return Err(AppError::Invalid {
                    code: "unknown_program",
                    message: format!("there is no published program {program:?}"),
                    field: Some("program".into()),
                    details: None,
                });
            }
            Err(e) => return Err(e),
        };
        let now = self.now();
        let user = UserId(by.id().into());
        let mut events = Dossier::create(&p.id, user.clone(), now)?;
        let mut d = Dossier::replay(&events)?;
        if let Some(a) = answers {
            self.check_answers(&p, &a)?;
            let more = d.handle(Command::Answer { answers: a }, &user, now)?;
            d = d.after(&more)?;
            events.extend(more);
        }
        let id = guichet_store::new_id("d_")?;
        let (mut flags, mut keys) = (Vec::new(), Vec::new());
        if submit {
            let (more, f, k) = self.submission(&id, &p, &d, &user, now).await?;
            d = d.after(&more)?;
            events.extend(more);
            (flags, keys) = (f, k);
        }
        let version = self
            .store
            .append(NewEvents {
                dossier: id.clone(),
                expected_version: 0,
                program_version: Some(p.version.clone()),
                events,
                actor: Some(by.id().into()),
                after: d.clone(),
                flags: flags.clone(),
                keys,
                at: now,
                payment_line: None,
            })
            .await?;
        let view = DossierView::of(DossierRow {
            id,
            program: p.id.clone(),
            program_version: p.version.clone(),
            applicant: by.id().into(),
            state: d.state,
            version,
            created_at: now,
            submitted_at: d.submitted_at,
            updated_at: now,
            assignee: None,
            decided_by: d.decision.as_ref().map(|x| x.by.0.clone()),
            amount: d.decision.as_ref().and_then(|x| x.amount),
            flags,
            dossier: d,
        });
        if view.state != State::Draft {
            self.after_submission(&view).await;
        }
        Ok(view)
    }

    /// A dossier the caller may read.
    pub async fn dossier(&self, by: &Caller, id: &str) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Read, Some(&row.dossier))?;
        Ok(DossierView::of(row))
    }

    /// Its events (the audit trail of the dossier).
    pub async fn dossier_events(&self, by: &Caller, id: &str) -> Result<Vec<StoredEvent>> {
        let row = self.row(id).await?;
        by.may(Action::Read, Some(&row.dossier))?;
        Ok(self.store.events(&format!("dossier:{id}")).await?)
    }

    /// A citizen's own dossiers, or the staff's queue.
    pub async fn dossiers(
        &self,
        by: &Caller,
        f: &ListFilter,
    ) -> Result<(Vec<guichet_store::DossierSummary>, Option<String>)> {
        let staff = by.actor.may(Action::Read, None).is_ok();
        let q = Queue {
            program: f.program.clone(),
            states: f.state.as_deref().map(state_list).transpose()?.unwrap_or_default(),
            applicant: if staff { None } else { Some(by.id().into()) },
            assignee: match f.assignee.as_deref() {
                Some("me") => Some(by.id().to_owned()),
                other => other.map(str::to_owned),
            },
            flagged: f.flagged,
            order: if staff { QueueOrder::OldestSubmitted } else { QueueOrder::NewestCreated },
            after: f.after.clone(),
            limit: f.limit.unwrap_or(50),
        };
        self.store.queue(&q).await.map_err(|e| match e {
            guichet_store::StoreError::Config(m) => AppError::invalid("invalid_request", m),
            other => other.into(),
        })
    }

    pub async fn answer(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        answers: serde_json::Value,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::ActAsApplicant, Some(&row.dossier))?;
        let p = self.program_of(&row).await?;
        self.check_answers(&p, &answers)?;
        let events = row.dossier.handle(Command::Answer { answers }, &UserId(by.id().into()), self.now())?;
        // Merged answers must still be valid together.
        let merged = row.dossier.after(&events)?.answers;
        self.check_answers(&p, &merged)?;
        self.write(&row, version, events, by.id(), row.flags.clone(), vec![]).await
    }

    pub async fn upload(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        doc: DocumentUpload,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::ActAsApplicant, Some(&row.dossier))?;
        if doc.bytes.len() > self.config.max_upload {
            return Err(AppError::TooLarge { limit: self.config.max_upload });
        }
        let media = sniff(&doc.bytes).ok_or_else(|| {
            AppError::UnsupportedMedia("only PDF, JPEG and PNG files are accepted (checked by content)".into())
        })?;
        let name = doc.name.trim();
        if name.is_empty() || name.len() > 255 || name.chars().any(char::is_control) {
            return Err(AppError::invalid("invalid_request", "the file name must be 1 to 255 printable characters"));
        }
        let p = self.program_of(&row).await?;
        if let Some(q) = &doc.question {
            match p.program.question(q) {
                Some(question) if question.kind == QuestionType::File => {}
                _ => {
                    return Err(AppError::Invalid {
                        code: "invalid_answer",
                        message: format!("{q:?} is not a file question of this program"),
                        field: Some(q.clone()),
                        details: None,
                    });
                }
            }
        }
        // Refuse before storing the bytes if the state does not allow it.
        let now = self.now();
        let probe = Command::AttachDocument { name: name.into(), sha256: "0".repeat(64), media_type: media.into() };
        row.dossier.handle(probe, &UserId(by.id().into()), now)?;
        let meta = self.store.put_blob(doc.bytes, media, now).await?;
        let user = UserId(by.id().into());
        let mut events = row.dossier.handle(
            Command::AttachDocument { name: name.into(), sha256: meta.sha256.clone(), media_type: media.into() },
            &user,
            now,
        )?;
        if let Some(q) = doc.question {
            let d = row.dossier.after(&events)?;
            events.extend(d.handle(Command::Answer { answers: serde_json::json!({ q: meta.sha256 }) }, &user, now)?);
        }
        self.write(&row, version, events, by.id(), row.flags.clone(), vec![]).await
    }

    /// The bytes of a document attached to a dossier the caller may read.
    pub async fn document(&self, by: &Caller, id: &str, sha: &str) -> Result<(String, Vec<u8>, String)> {
        let row = self.row(id).await?;
        by.may(Action::Read, Some(&row.dossier))?;
        let name =
            row.dossier.documents.iter().find(|(_, s)| s == sha).map(|(n, _)| n.clone()).ok_or(AppError::NotFound)?;
        let (meta, bytes) = self.store.blob(sha).await?;
        Ok((meta.media_type, bytes, name))
    }

    pub async fn submit(&self, by: &Caller, id: &str, version: Option<i64>) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::ActAsApplicant, Some(&row.dossier))?;
        if row.state != State::Draft {
            return Err(guichet_core::CommandError::WrongState { state: row.state }.into());
        }
        let p = self.program_of(&row).await?;
        let (events, flags, keys) = self.submission(id, &p, &row.dossier, &UserId(by.id().into()), self.now()).await?;
        let view = self.write(&row, version, events, by.id(), flags, keys).await?;
        self.after_submission(&view).await;
        Ok(view)
    }

    /// The notices of a submission (and of its automatic decision).
    async fn after_submission(&self, view: &DossierView) {
        self.notify_applicant(view, crate::Notice::ApplicationReceived, vec![]).await;
        self.notify_decision(view).await;
    }

    /// Eligibility with its explanation, in `lang`. Drafts are evaluated
    /// leniently (missing answers leave rules undetermined).
    pub async fn evaluate(&self, by: &Caller, id: &str, lang: Lang) -> Result<serde_json::Value> {
        let row = self.row(id).await?;
        by.may(Action::Read, Some(&row.dossier))?;
        let p = self.program_of(&row).await?;
        let mode = if row.state == State::Draft { Mode::Draft } else { Mode::Complete };
        let date = self.application_date(row.submitted_at)?;
        let ev = self.evaluate_answers(&p, &row.dossier.answers, date, mode)?;
        let mut out = p.program.evaluation_json(&ev, lang);
        if let Some(o) = out.as_object_mut() {
            o.insert("explanation".into(), p.program.explain(&ev, lang).into());
        }
        Ok(out)
    }

    pub async fn request_information(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        message: String,
        due: i64,
    ) -> Result<DossierView> {
        let extra = vec![("message", message.clone()), ("due", due.to_string())];
        let view = self.command(by, id, version, Action::Decide, Command::RequestInformation { message, due }).await?;
        self.notify_applicant(&view, crate::Notice::InformationRequested, extra).await;
        Ok(view)
    }

    pub async fn provide_information(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        message: String,
    ) -> Result<DossierView> {
        self.command(by, id, version, Action::ActAsApplicant, Command::ProvideInformation { message }).await
    }

    fn decision(&self, p: &Published, row: &DossierRow, input: DecisionInput, by: &Caller) -> Result<Decision> {
        let date = self.application_date(row.submitted_at)?;
        let ev = self.evaluate_answers(p, &row.dossier.answers, date, Mode::Complete)?;
        let outcome = match input.outcome.as_str() {
            "approved" => Outcome::Approved,
            "refused" => Outcome::Refused,
            other => {
                return Err(AppError::Invalid {
                    code: "invalid_request",
                    message: format!("outcome is `approved` or `refused`, not {other:?}"),
                    field: Some("outcome".into()),
                    details: None,
                });
            }
        };
        let computed = ev.amount.map(|m| m.0);
        // Deciding against the rules is a human's right, with reasons.
        let against = (outcome == Outcome::Approved) != ev.eligible();
        if against && input.justification.trim().is_empty() {
            return Err(AppError::Invalid {
                code: "justification_required",
                message: "this decision differs from the rules' result: give a justification".into(),
                field: Some("justification".into()),
                details: None,
            });
        }
        let reasons = if input.reasons.is_empty() && outcome == Outcome::Refused {
            ev.failed().map(|r| p.program.rules[r.rule].name.clone()).collect()
        } else {
            input.reasons
        };
        let amount = match outcome {
            Outcome::Approved => Some(input.amount.or(computed).ok_or_else(|| AppError::Invalid {
                code: "invalid_request",
                message: "the rules give no amount: state it".into(),
                field: Some("amount".into()),
                details: None,
            })?),
            Outcome::Refused => None,
        };
        Ok(Decision {
            outcome,
            amount,
            computed_amount: computed,
            reasons,
            justification: input.justification,
            program_version: p.version.clone(),
            evaluation: p.program.evaluation_json(&ev, Lang::Fr),
            by: UserId(by.id().into()),
            at: self.now(),
        })
    }

    pub async fn decide(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        input: DecisionInput,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Decide, Some(&row.dossier))?;
        if row.state != State::Submitted {
            return Err(guichet_core::CommandError::WrongState { state: row.state }.into());
        }
        let p = self.program_of(&row).await?;
        let decision = self.decision(&p, &row, input, by)?;
        let agreement_required = p.program.agreement.is_some();
        let view = self.run_on(&row, by, version, Command::Decide { decision, agreement_required }).await?;
        self.notify_decision(&view).await;
        if view.state == State::Approved && view.agreement_required {
            self.after_approval(id, by.id()).await;
            return self.dossier_view(id).await;
        }
        Ok(view)
    }

    pub async fn request_review(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        reason: String,
    ) -> Result<DossierView> {
        let view = self.command(by, id, version, Action::ActAsApplicant, Command::RequestReview { reason }).await?;
        // The agreement of the decision under review is no longer offered.
        self.void_open_envelopes(id, by.id(), "review requested / révision demandée").await?;
        Ok(view)
    }

    pub async fn review(
        &self,
        by: &Caller,
        id: &str,
        version: Option<i64>,
        input: DecisionInput,
    ) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Review, Some(&row.dossier))?;
        if row.state != State::ReviewRequested {
            return Err(guichet_core::CommandError::WrongState { state: row.state }.into());
        }
        let p = self.program_of(&row).await?;
        let decision = self.decision(&p, &row, input, by)?;
        let view = self.run_on(&row, by, version, Command::Review { decision }).await?;
        self.notify_decision(&view).await;
        if view.state == State::Approved && view.agreement_required {
            self.after_approval(id, by.id()).await;
            return self.dossier_view(id).await;
        }
        Ok(view)
    }

    /// A case worker or reviewer takes the dossier (or releases it).
    pub async fn assign(&self, by: &Caller, id: &str, version: Option<i64>, take: bool) -> Result<DossierView> {
        let row = self.row(id).await?;
        by.may(Action::Decide, Some(&row.dossier)).or_else(|_| by.may(Action::Review, Some(&row.dossier)))?;
        let to = take.then(|| UserId(by.id().into()));
        self.run_on(&row, by, version, Command::Assign { to }).await
    }

    pub async fn withdraw(&self, by: &Caller, id: &str, version: Option<i64>, reason: String) -> Result<DossierView> {
        self.command(by, id, version, Action::ActAsApplicant, Command::Withdraw { reason }).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_recognized_by_content_not_name() {
        assert_eq!(sniff(b"%PDF-1.7\n..."), Some("application/pdf"));
        assert_eq!(sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some("image/jpeg"));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n...."), Some("image/png"));
        assert_eq!(sniff(b"MZ\x90\x00 an exe named bail.pdf"), None);
        assert_eq!(sniff(b""), None);
    }
}
