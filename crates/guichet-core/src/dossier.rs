//! draft → submitted → (information requested ⇄ information provided) →
//! approved | refused → (agreement pending → agreement signed) → payment
//! scheduled → paid; withdrawn; review requested → reviewed.

use serde::{Deserialize, Serialize};

/// Seconds since 1970 (UTC). The caller owns the clock.
pub type Timestamp = i64;

/// A user, as the service identifies them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct UserId(pub String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Draft,
    Submitted,
    InformationRequested,
    Approved,
    Refused,
    ReviewRequested,
    AgreementPending,
    AgreementSigned,
    PaymentScheduled,
    Paid,
    /// The bank sent the payment back (closed account…): back to a case
    /// worker, who has the bank details corrected before it goes again.
    PaymentReturned,
    Withdrawn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Approved,
    Refused,
}

/// A decision, with everything needed to explain it years later.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub outcome: Outcome,
    /// Cents; present when approved.
    pub amount: Option<i64>,
    /// The amount the rules computed, when it differs from `amount`.
    pub computed_amount: Option<i64>,
    /// Coded reasons (rule names, refusal codes).
    pub reasons: Vec<String>,
    pub justification: String,
    /// The program version (SHA-256 of its canonical form) applied.
    pub program_version: String,
    /// The evaluation trace that produced it (as the rules engine gave it).
    pub evaluation: serde_json::Value,
    pub by: UserId,
    pub at: Timestamp,
}

/// What happened. Every change of a dossier is one of these.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Created {
        program: String,
        applicant: UserId,
        at: Timestamp,
    },
    Answered {
        answers: serde_json::Value,
        at: Timestamp,
    },
    DocumentAttached {
        name: String,
        sha256: String,
        media_type: String,
        at: Timestamp,
    },
    Submitted {
        at: Timestamp,
    },
    InformationRequested {
        by: UserId,
        message: String,
        due: Timestamp,
        at: Timestamp,
    },
    InformationProvided {
        message: String,
        at: Timestamp,
    },
    /// `agreement_required`: the program wants a signed agreement before
    /// any payment (a loan).
    Decided {
        decision: Decision,
        agreement_required: bool,
    },
    ReviewRequested {
        reason: String,
        at: Timestamp,
    },
    Reviewed {
        decision: Decision,
    },
    AgreementSent {
        document_sha256: String,
        at: Timestamp,
    },
    AgreementSigned {
        document_sha256: String,
        at: Timestamp,
    },
    /// Put in a payment batch (`reference` is the payment's, as the bank
    /// file carries it).
    PaymentScheduled {
        at: Timestamp,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        batch: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    Paid {
        reference: String,
        at: Timestamp,
    },
    /// The bank returned or rejected the payment.
    PaymentReturned {
        reference: String,
        reason: String,
        at: Timestamp,
    },
    /// New bank details for the payee after the decision: they take effect
    /// only once a second employee confirms them (fraud control).
    BankChangeProposed {
        details: BankDetails,
        by: UserId,
        at: Timestamp,
    },
    BankChangeConfirmed {
        by: UserId,
        at: Timestamp,
    },
    /// A loan repayment received (by an employee's entry or an import).
    RepaymentRecorded {
        amount: i64,
        reference: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<UserId>,
        at: Timestamp,
    },
    /// A case worker checked the possible duplicates flagged at
    /// submission and cleared them.
    DuplicateFlagsCleared {
        note: String,
        by: UserId,
        at: Timestamp,
    },
    /// The borrower agreed to repay by pre-authorized debit from this
    /// account.
    DebitAuthorized {
        details: BankDetails,
        at: Timestamp,
    },
    Withdrawn {
        reason: String,
        at: Timestamp,
    },
    /// A case worker or reviewer takes the dossier (`to: None`: releases it).
    Assigned {
        to: Option<UserId>,
        by: UserId,
        at: Timestamp,
    },
}

/// What someone asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Answer { answers: serde_json::Value },
    AttachDocument { name: String, sha256: String, media_type: String },
    Submit,
    RequestInformation { message: String, due: Timestamp },
    ProvideInformation { message: String },
    Decide { decision: Decision, agreement_required: bool },
    RequestReview { reason: String },
    Review { decision: Decision },
    SendAgreement { document_sha256: String },
    SignAgreement { document_sha256: String },
    SchedulePayment { batch: String, reference: String },
    MarkPaid { reference: String },
    ReturnPayment { reference: String, reason: String },
    ProposeBankChange { details: BankDetails },
    ConfirmBankChange,
    RecordRepayment { amount: i64, reference: String },
    AuthorizeDebit { details: BankDetails },
    ClearDuplicateFlags { note: String },
    Withdraw { reason: String },
    Assign { to: Option<UserId> },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("this cannot be done to a dossier that is {state:?}")]
    WrongState { state: State },
    #[error("{0}")]
    Invalid(String),
    #[error("the reviewer must not be the person who decided")]
    SameReviewer,
    #[error("the event log is inconsistent at event {index}: {event}")]
    Corrupt { index: usize, event: String },
}

/// The state of a dossier, rebuilt from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dossier {
    pub program: String,
    pub applicant: UserId,
    pub state: State,
    pub answers: serde_json::Value,
    pub documents: Vec<(String, String)>,
    pub decision: Option<Decision>,
    /// Whether the decision came from a review (a dossier is reviewed once).
    pub reviewed: bool,
    pub agreement_required: bool,
    pub agreement: Option<String>,
    pub created_at: Timestamp,
    pub submitted_at: Option<Timestamp>,
    /// Who is working on it.
    #[serde(default)]
    pub assignee: Option<UserId>,
    /// The payee's bank details as confirmed after the decision (they
    /// replace the ones in the answers).
    #[serde(default)]
    pub bank: Option<BankDetails>,
    /// Proposed new bank details, and who proposed them.
    #[serde(default)]
    pub pending_bank: Option<(BankDetails, UserId)>,
    /// The payment now or last in a batch.
    #[serde(default)]
    pub payment_reference: Option<String>,
    /// Why the bank returned the last payment.
    #[serde(default)]
    pub return_reason: Option<String>,
    /// Bank details were confirmed since the payment came back: it may go
    /// in a batch again.
    #[serde(default)]
    pub bank_fixed: bool,
    /// Cents repaid on a loan.
    #[serde(default)]
    pub repaid: i64,
    /// The account a borrower authorized for pre-authorized debits.
    #[serde(default)]
    pub debit: Option<BankDetails>,
}

/// Canadian bank details, as a dossier keeps them (sealed with it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankDetails {
    pub institution: String,
    pub transit: String,
    pub account: String,
}

impl BankDetails {
    /// Checked for form (3, 5 and 7 to 12 digits).
    pub fn account(&self) -> Result<crate::BankAccount, CommandError> {
        crate::BankAccount::parse(&self.institution, &self.transit, &self.account).map_err(|_| {
            CommandError::Invalid(
                "bank details: the institution has 3 digits, the transit 5 and the account 7 to 12".into(),
            )
        })
    }
}

impl Dossier {
    /// What is left to repay on a loan (cents).
    pub fn balance(&self) -> i64 {
        self.decision.as_ref().and_then(|d| d.amount).unwrap_or(0) - self.repaid
    }

    /// Whether a payment may go out now (state-wise: the service also
    /// checks duplicate flags and bank details).
    pub fn payable(&self) -> bool {
        match self.state {
            State::Approved => !self.agreement_required,
            State::AgreementSigned => true,
            State::PaymentReturned => self.bank_fixed,
            _ => false,
        }
    }
}

fn non_empty(what: &str, s: &str) -> Result<(), CommandError> {
    if s.trim().is_empty() { Err(CommandError::Invalid(format!("{what} must not be empty"))) } else { Ok(()) }
}

fn check_decision(d: &Decision) -> Result<(), CommandError> {
    non_empty("the program version", &d.program_version)?;
    match d.outcome {
        Outcome::Approved => {
            let amount = d.amount.ok_or_else(|| CommandError::Invalid("an approval needs an amount".into()))?;
            if amount < 0 {
                return Err(CommandError::Invalid("the amount cannot be negative".into()));
            }
            if d.computed_amount.is_some_and(|c| c != amount) {
                non_empty("the justification of an amount override", &d.justification)?;
            }
        }
        Outcome::Refused => {
            if d.reasons.is_empty() {
                return Err(CommandError::Invalid("a refusal needs at least one coded reason".into()));
            }
            if d.amount.is_some() {
                return Err(CommandError::Invalid("a refusal has no amount".into()));
            }
        }
    }
    Ok(())
}

impl Dossier {
    /// The events of a new dossier.
    pub fn create(program: &str, applicant: UserId, at: Timestamp) -> Result<Vec<Event>, CommandError> {
        non_empty("the program", program)?;
        Ok(vec![Event::Created { program: program.into(), applicant, at }])
    }

    /// Rebuilds a dossier from its events, refusing a log that could not
    /// have been produced by commands.
    pub fn replay(events: &[Event]) -> Result<Dossier, CommandError> {
        let corrupt = |index: usize, e: &Event| CommandError::Corrupt { index, event: format!("{e:?}") };
        let mut it = events.iter().enumerate();
        let mut d = match it.next() {
            Some((_, Event::Created { program, applicant, at })) => Dossier {
                program: program.clone(),
                applicant: applicant.clone(),
                state: State::Draft,
                answers: serde_json::Value::Object(Default::default()),
                documents: Vec::new(),
                decision: None,
                reviewed: false,
                agreement_required: false,
                agreement: None,
                created_at: *at,
                submitted_at: None,
                assignee: None,
                bank: None,
                pending_bank: None,
                payment_reference: None,
                return_reason: None,
                bank_fixed: false,
                repaid: 0,
                debit: None,
            },
            Some((i, e)) => return Err(corrupt(i, e)),
            None => return Err(CommandError::Invalid("a dossier starts with its creation".into())),
        };
        for (i, e) in it {
            d.apply(e).map_err(|_| corrupt(i, e))?;
        }
        Ok(d)
    }

    /// The dossier after `events` (each checked against the state it
    /// applies to), without replaying the whole log.
    pub fn after(&self, events: &[Event]) -> Result<Dossier, CommandError> {
        self.clone().into_after(events)
    }

    /// [`Dossier::after`] without a copy, for a caller done with this state
    /// (a payment batch moves 100,000 dossiers forward).
    pub fn into_after(mut self, events: &[Event]) -> Result<Dossier, CommandError> {
        for e in events {
            self.apply(e)?;
        }
        Ok(self)
    }

    /// Applies one event (checking it is possible in the current state).
    fn apply(&mut self, e: &Event) -> Result<(), CommandError> {
        use State::*;
        let wrong = |s: State| Err(CommandError::WrongState { state: s });
        match (self.state, e) {
            (Draft, Event::Answered { answers, .. }) => merge(&mut self.answers, answers),
            (Draft | InformationRequested, Event::DocumentAttached { name, sha256, .. }) => {
                self.documents.push((name.clone(), sha256.clone()))
            }
            (Draft, Event::Submitted { at }) => {
                self.state = Submitted;
                self.submitted_at = Some(*at);
            }
            (Submitted, Event::InformationRequested { .. }) => self.state = InformationRequested,
            (InformationRequested, Event::InformationProvided { .. }) => self.state = Submitted,
            (Submitted, Event::Decided { decision, agreement_required }) => {
                self.state = if decision.outcome == Outcome::Approved { Approved } else { Refused };
                self.decision = Some(decision.clone());
                self.agreement_required = *agreement_required;
            }
            // A loan's agreement waiting to be signed does not stop a review of
            // the decision (its envelope is voided by the service).
            (Approved | Refused | AgreementPending, Event::ReviewRequested { .. }) if !self.reviewed => {
                self.state = ReviewRequested
            }
            (ReviewRequested, Event::Reviewed { decision }) => {
                self.state = if decision.outcome == Outcome::Approved { Approved } else { Refused };
                self.decision = Some(decision.clone());
                self.reviewed = true;
            }
            // Sent again (replacing a declined or voided one) while pending.
            (Approved | AgreementPending, Event::AgreementSent { document_sha256, .. }) if self.agreement_required => {
                self.agreement = Some(document_sha256.clone());
                self.state = AgreementPending;
            }
            (AgreementPending, Event::AgreementSigned { document_sha256, .. }) => {
                self.agreement = Some(document_sha256.clone());
                self.state = AgreementSigned;
            }
            (Approved | AgreementSigned | PaymentReturned, Event::PaymentScheduled { reference, .. })
                if self.payable() =>
            {
                self.state = PaymentScheduled;
                self.payment_reference = reference.clone();
                self.bank_fixed = false;
            }
            (PaymentScheduled, Event::Paid { reference, .. }) if self.is_current(reference) => self.state = Paid,
            (PaymentScheduled | Paid, Event::PaymentReturned { reference, reason, .. })
                if self.is_current(reference) =>
            {
                self.state = PaymentReturned;
                self.return_reason = Some(reason.clone());
                self.bank_fixed = false;
            }
            (
                Approved | AgreementPending | AgreementSigned | PaymentReturned,
                Event::BankChangeProposed { details, by, .. },
            ) => self.pending_bank = Some((details.clone(), by.clone())),
            (
                Approved | AgreementPending | AgreementSigned | PaymentReturned,
                Event::BankChangeConfirmed { by, .. },
            ) if self.pending_bank.as_ref().is_some_and(|(_, p)| p != by) => {
                self.bank = self.pending_bank.take().map(|(d, _)| d);
                if self.state == PaymentReturned {
                    self.bank_fixed = true;
                }
            }
            (Paid, Event::RepaymentRecorded { amount, .. }) if *amount > 0 && *amount <= self.balance() => {
                self.repaid += amount
            }
            (
                Submitted | InformationRequested | ReviewRequested | Approved | AgreementPending | AgreementSigned
                | PaymentReturned,
                Event::DuplicateFlagsCleared { .. },
            ) => {}
            (AgreementSigned | PaymentScheduled | Paid | PaymentReturned, Event::DebitAuthorized { details, .. }) => {
                self.debit = Some(details.clone())
            }
            (Draft | Submitted | InformationRequested | AgreementPending, Event::Withdrawn { .. }) => {
                self.state = Withdrawn
            }
            (Submitted | InformationRequested | ReviewRequested, Event::Assigned { to, .. }) => {
                self.assignee = to.clone();
            }
            (s, _) => return wrong(s),
        }
        Ok(())
    }

    /// Checks a command against the state and returns the events it makes.
    /// `actor` is who asks; role checks belong to the service, the rules
    /// that depend on the dossier's own history are here.
    pub fn handle(&self, cmd: Command, actor: &UserId, at: Timestamp) -> Result<Vec<Event>, CommandError> {
        let wrong = || CommandError::WrongState { state: self.state };
        let events = match cmd {
            Command::Answer { answers } => {
                if !answers.is_object() {
                    return Err(CommandError::Invalid("answers are a JSON object".into()));
                }
                vec![Event::Answered { answers, at }]
            }
            Command::AttachDocument { name, sha256, media_type } => {
                non_empty("the document name", &name)?;
                if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(CommandError::Invalid("a document is named by its SHA-256 (64 hex digits)".into()));
                }
                vec![Event::DocumentAttached { name, sha256, media_type, at }]
            }
            Command::Submit => vec![Event::Submitted { at }],
            Command::RequestInformation { message, due } => {
                non_empty("the request", &message)?;
                if due <= at {
                    return Err(CommandError::Invalid("the due date must be in the future".into()));
                }
                vec![Event::InformationRequested { by: actor.clone(), message, due, at }]
            }
            Command::ProvideInformation { message } => vec![Event::InformationProvided { message, at }],
            Command::Decide { decision, agreement_required } => {
                check_decision(&decision)?;
                vec![Event::Decided { decision: Decision { by: actor.clone(), at, ..decision }, agreement_required }]
            }
            Command::RequestReview { reason } => {
                non_empty("the reason for the review", &reason)?;
                if self.reviewed {
                    return Err(CommandError::Invalid("this dossier was already reviewed".into()));
                }
                vec![Event::ReviewRequested { reason, at }]
            }
            Command::Review { decision } => {
                check_decision(&decision)?;
                if self.decision.as_ref().is_some_and(|d| &d.by == actor) {
                    return Err(CommandError::SameReviewer);
                }
                vec![Event::Reviewed { decision: Decision { by: actor.clone(), at, ..decision } }]
            }
            Command::SendAgreement { document_sha256 } => vec![Event::AgreementSent { document_sha256, at }],
            Command::SignAgreement { document_sha256 } => {
                if self.agreement.as_deref() != Some(document_sha256.as_str()) {
                    return Err(CommandError::Invalid("the signed document is not the agreement that was sent".into()));
                }
                vec![Event::AgreementSigned { document_sha256, at }]
            }
            Command::SchedulePayment { batch, reference } => {
                non_empty("the payment reference", &reference)?;
                if !self.payable() {
                    return Err(wrong());
                }
                vec![Event::PaymentScheduled { at, batch: Some(batch), reference: Some(reference) }]
            }
            Command::MarkPaid { reference } => {
                non_empty("the payment reference", &reference)?;
                self.check_current(&reference)?;
                vec![Event::Paid { reference, at }]
            }
            Command::ReturnPayment { reference, reason } => {
                non_empty("the reason of the return", &reason)?;
                self.check_current(&reference)?;
                vec![Event::PaymentReturned { reference, reason, at }]
            }
            Command::ProposeBankChange { details } => {
                details.account()?;
                vec![Event::BankChangeProposed { details, by: actor.clone(), at }]
            }
            Command::ConfirmBankChange => match &self.pending_bank {
                None => return Err(CommandError::Invalid("no change of bank details is waiting".into())),
                Some((_, by)) if by == actor => {
                    return Err(CommandError::Invalid(
                        "a change of bank details is confirmed by someone other than who proposed it".into(),
                    ));
                }
                Some(_) => vec![Event::BankChangeConfirmed { by: actor.clone(), at }],
            },
            Command::RecordRepayment { amount, reference } => {
                non_empty("the repayment reference", &reference)?;
                if amount <= 0 {
                    return Err(CommandError::Invalid("a repayment is more than zero".into()));
                }
                if self.state == State::Paid && amount > self.balance() {
                    return Err(CommandError::Invalid(format!(
                        "the repayment ({amount} cents) is more than the balance ({} cents)",
                        self.balance()
                    )));
                }
                vec![Event::RepaymentRecorded { amount, reference, by: Some(actor.clone()), at }]
            }
            Command::AuthorizeDebit { details } => {
                details.account()?;
                vec![Event::DebitAuthorized { details, at }]
            }
            Command::ClearDuplicateFlags { note } => {
                non_empty("the note on the duplicate check", &note)?;
                vec![Event::DuplicateFlagsCleared { note, by: actor.clone(), at }]
            }
            Command::Withdraw { reason } => vec![Event::Withdrawn { reason, at }],
            Command::Assign { to } => vec![Event::Assigned { to, by: actor.clone(), at }],
        };
        // Every event must be possible now: check on a copy.
        let mut probe = self.clone();
        for e in &events {
            probe.apply(e).map_err(|_| wrong())?;
        }
        Ok(events)
    }
}

impl Dossier {
    fn is_current(&self, reference: &str) -> bool {
        self.payment_reference.as_deref().is_none_or(|r| r == reference)
    }

    fn check_current(&self, reference: &str) -> Result<(), CommandError> {
        if self.is_current(reference) {
            Ok(())
        } else {
            Err(CommandError::Invalid(format!("{reference} is not this dossier's current payment")))
        }
    }
}

/// Shallow merge of answers: later answers replace earlier ones; `null`
/// removes one.
fn merge(into: &mut serde_json::Value, new: &serde_json::Value) {
    if let (Some(a), Some(b)) = (into.as_object_mut(), new.as_object()) {
        for (k, v) in b {
            if v.is_null() {
                a.remove(k);
            } else {
                a.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId(s.into())
    }

    fn decision(outcome: Outcome, amount: Option<i64>) -> Decision {
        Decision {
            outcome,
            amount,
            computed_amount: amount,
            reasons: if outcome == Outcome::Refused { vec!["lease_in_force".into()] } else { vec![] },
            justification: String::new(),
            program_version: "aea065a6".into(),
            evaluation: serde_json::json!({"status": "eligible"}),
            by: u("nobody"),
            at: 0,
        }
    }

    /// Runs commands, checking that replaying the log gives the same state.
    struct Run {
        events: Vec<Event>,
        t: Timestamp,
    }

    impl Run {
        fn new() -> Run {
            Run { events: Dossier::create("shq-pret-loyer-2020", u("citizen"), 1).expect("create"), t: 1 }
        }
        fn dossier(&self) -> Dossier {
            Dossier::replay(&self.events).expect("replays")
        }
        fn exec(&mut self, who: &str, cmd: Command) -> Result<State, CommandError> {
            self.t += 10;
            let new = self.dossier().handle(cmd, &u(who), self.t)?;
            self.events.extend(new);
            Ok(self.dossier().state)
        }
    }

    #[test]
    fn a_loan_goes_from_draft_to_paid_only_after_its_agreement() {
        let mut r = Run::new();
        assert_eq!(
            r.exec("citizen", Command::Answer { answers: serde_json::json!({"monthly_rent": "800.00"}) }),
            Ok(State::Draft)
        );
        assert_eq!(r.exec("citizen", Command::Submit), Ok(State::Submitted));
        assert_eq!(
            r.exec("worker", Command::RequestInformation { message: "Bail ?".into(), due: 10_000 }),
            Ok(State::InformationRequested)
        );
        assert_eq!(r.exec("citizen", Command::ProvideInformation { message: "Voici".into() }), Ok(State::Submitted));
        let d = decision(Outcome::Approved, Some(150_000));
        assert_eq!(r.exec("worker", Command::Decide { decision: d, agreement_required: true }), Ok(State::Approved));
        // The payment waits for the signed agreement.
        assert_eq!(
            r.exec("finance", Command::SchedulePayment { batch: "B1".into(), reference: "PAY-1".into() }),
            Err(CommandError::WrongState { state: State::Approved })
        );
        let sha = "a".repeat(64);
        assert_eq!(
            r.exec("system", Command::SendAgreement { document_sha256: sha.clone() }),
            Ok(State::AgreementPending)
        );
        assert!(matches!(
            r.exec("citizen", Command::SignAgreement { document_sha256: "b".repeat(64) }),
            Err(CommandError::Invalid(_))
        ));
        assert_eq!(r.exec("citizen", Command::SignAgreement { document_sha256: sha }), Ok(State::AgreementSigned));
        assert_eq!(
            r.exec("finance", Command::SchedulePayment { batch: "B1".into(), reference: "PAY-1".into() }),
            Ok(State::PaymentScheduled)
        );
        assert_eq!(r.exec("finance", Command::MarkPaid { reference: "PAY-1".into() }), Ok(State::Paid));
        let d = r.dossier();
        assert_eq!(d.decision.as_ref().map(|x| x.by.clone()), Some(u("worker")));
        assert_eq!(d.answers["monthly_rent"], "800.00");
        // The log serializes and replays to the same dossier.
        let json = serde_json::to_string(&r.events).expect("json");
        let back: Vec<Event> = serde_json::from_str(&json).expect("events");
        assert_eq!(Dossier::replay(&back), Ok(d));
    }

    #[test]
    fn a_grant_is_paid_without_an_agreement() {
        let mut r = Run::new();
        r.exec("citizen", Command::Submit).expect("submit");
        r.exec(
            "worker",
            Command::Decide { decision: decision(Outcome::Approved, Some(400_000)), agreement_required: false },
        )
        .expect("decide");
        assert_eq!(
            r.exec("system", Command::SendAgreement { document_sha256: "a".repeat(64) }),
            Err(CommandError::WrongState { state: State::Approved })
        );
        assert_eq!(
            r.exec("finance", Command::SchedulePayment { batch: "B1".into(), reference: "PAY-1".into() }),
            Ok(State::PaymentScheduled)
        );
    }

    #[test]
    fn a_returned_payment_goes_again_only_with_confirmed_new_bank_details() {
        let mut r = Run::new();
        r.exec("citizen", Command::Submit).expect("submit");
        let d = decision(Outcome::Approved, Some(150_000));
        r.exec("worker", Command::Decide { decision: d, agreement_required: false }).expect("decide");
        let details = BankDetails { institution: "815".into(), transit: "30001".into(), account: "7654321".into() };
        let pay = |b: &str, p: &str| Command::SchedulePayment { batch: b.into(), reference: p.into() };
        assert_eq!(r.exec("finance", pay("B1", "PAY-1")), Ok(State::PaymentScheduled));
        // No change of bank details while the file is at the bank.
        assert!(r.exec("worker", Command::ProposeBankChange { details: details.clone() }).is_err());
        // Only the current payment can come back.
        assert!(matches!(
            r.exec("finance", Command::ReturnPayment { reference: "PAY-0".into(), reason: "905".into() }),
            Err(CommandError::Invalid(_))
        ));
        assert_eq!(
            r.exec("finance", Command::ReturnPayment { reference: "PAY-1".into(), reason: "905 compte fermé".into() }),
            Ok(State::PaymentReturned)
        );
        assert_eq!(r.dossier().return_reason.as_deref(), Some("905 compte fermé"));
        assert!(r.exec("finance", pay("B2", "PAY-2")).is_err(), "not before new bank details");
        let bad = BankDetails { account: "12".into(), ..details.clone() };
        assert!(matches!(r.exec("worker", Command::ProposeBankChange { details: bad }), Err(CommandError::Invalid(_))));
        r.exec("worker", Command::ProposeBankChange { details: details.clone() }).expect("propose");
        assert!(r.exec("finance", pay("B2", "PAY-2")).is_err(), "not before the confirmation");
        assert!(
            matches!(r.exec("worker", Command::ConfirmBankChange), Err(CommandError::Invalid(m)) if m.contains("someone other"))
        );
        r.exec("other", Command::ConfirmBankChange).expect("confirm");
        assert_eq!(r.dossier().bank, Some(details));
        assert_eq!(r.exec("finance", pay("B2", "PAY-2")), Ok(State::PaymentScheduled));
        assert_eq!(r.exec("finance", Command::MarkPaid { reference: "PAY-2".into() }), Ok(State::Paid));
        // Repayments, never more than the balance.
        let repay = |a: i64| Command::RecordRepayment { amount: a, reference: format!("R{a}") };
        assert_eq!(r.exec("finance", repay(100_000)), Ok(State::Paid));
        assert!(matches!(r.exec("finance", repay(60_000)), Err(CommandError::Invalid(m)) if m.contains("balance")));
        assert!(r.exec("finance", repay(0)).is_err());
        r.exec("finance", repay(50_000)).expect("rest");
        assert_eq!(r.dossier().balance(), 0);
        let json = serde_json::to_string(&r.events).expect("json");
        let back: Vec<Event> = serde_json::from_str(&json).expect("events");
        assert_eq!(Dossier::replay(&back), Ok(r.dossier()));
    }

    #[test]
    fn decisions_must_be_justified() {
        let mut r = Run::new();
        r.exec("citizen", Command::Submit).expect("submit");
        let mut over = decision(Outcome::Approved, Some(120_000));
        over.computed_amount = Some(150_000);
        assert!(
            matches!(r.exec("worker", Command::Decide { decision: over.clone(), agreement_required: false }), Err(CommandError::Invalid(m)) if m.contains("justification"))
        );
        over.justification = "Loyer partiel selon le bail fourni".into();
        assert_eq!(
            r.exec("worker", Command::Decide { decision: over, agreement_required: false }),
            Ok(State::Approved)
        );
        let mut r = Run::new();
        r.exec("citizen", Command::Submit).expect("submit");
        let mut refusal = decision(Outcome::Refused, None);
        refusal.reasons.clear();
        assert!(
            matches!(r.exec("worker", Command::Decide { decision: refusal, agreement_required: false }), Err(CommandError::Invalid(m)) if m.contains("coded reason"))
        );
    }

    #[test]
    fn a_review_is_by_someone_else_and_happens_once() {
        let mut r = Run::new();
        r.exec("citizen", Command::Submit).expect("submit");
        r.exec("worker", Command::Decide { decision: decision(Outcome::Refused, None), agreement_required: true })
            .expect("decide");
        assert_eq!(
            r.exec("citizen", Command::RequestReview { reason: "Mon bail était en vigueur".into() }),
            Ok(State::ReviewRequested)
        );
        assert_eq!(
            r.exec("worker", Command::Review { decision: decision(Outcome::Approved, Some(150_000)) }),
            Err(CommandError::SameReviewer)
        );
        assert_eq!(
            r.exec("reviewer", Command::Review { decision: decision(Outcome::Approved, Some(150_000)) }),
            Ok(State::Approved)
        );
        assert!(r.dossier().reviewed);
        assert!(r.exec("citizen", Command::RequestReview { reason: "encore".into() }).is_err());
        // The agreement requirement of the first decision still holds.
        assert_eq!(
            r.exec("finance", Command::SchedulePayment { batch: "B1".into(), reference: "PAY-1".into() }),
            Err(CommandError::WrongState { state: State::Approved })
        );
    }

    #[test]
    fn wrong_states_are_refused_and_forged_logs_do_not_replay() {
        let mut r = Run::new();
        assert_eq!(
            r.exec(
                "worker",
                Command::Decide { decision: decision(Outcome::Approved, Some(1)), agreement_required: false }
            ),
            Err(CommandError::WrongState { state: State::Draft })
        );
        r.exec("citizen", Command::Withdraw { reason: "Plus besoin".into() }).expect("withdraw");
        assert_eq!(r.exec("citizen", Command::Submit), Err(CommandError::WrongState { state: State::Withdrawn }));
        // A log where payment precedes the decision cannot be replayed.
        let forged = vec![
            Event::Created { program: "p".into(), applicant: u("c"), at: 1 },
            Event::Submitted { at: 2 },
            Event::Paid { reference: "x".into(), at: 3 },
        ];
        assert!(matches!(Dossier::replay(&forged), Err(CommandError::Corrupt { index: 2, .. })));
        assert!(Dossier::replay(&[]).is_err());
        assert!(matches!(Dossier::replay(&forged[1..]), Err(CommandError::Corrupt { index: 0, .. })));
    }

    #[test]
    fn a_dossier_is_taken_and_released_while_it_is_being_handled() {
        let mut r = Run::new();
        assert_eq!(
            r.exec("worker", Command::Assign { to: Some(u("worker")) }),
            Err(CommandError::WrongState { state: State::Draft })
        );
        r.exec("citizen", Command::Submit).expect("submit");
        r.exec("worker", Command::Assign { to: Some(u("worker")) }).expect("take");
        assert_eq!(r.dossier().assignee, Some(u("worker")));
        r.exec("worker", Command::Assign { to: None }).expect("release");
        assert_eq!(r.dossier().assignee, None);
        r.exec("worker", Command::Decide { decision: decision(Outcome::Approved, Some(1)), agreement_required: false })
            .expect("decide");
        assert!(r.exec("worker", Command::Assign { to: Some(u("worker")) }).is_err(), "a decided dossier is not taken");
    }
}
