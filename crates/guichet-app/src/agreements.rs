//! Envelopes and agreements: the loan agreement generated when a loan is
//! approved, sent to the citizen and then to a signing officer; signing
//! (a PAdES signature, B-T, with the employee's personal certificate, or
//! — for a citizen — the organization's seal over the recorded evidence);
//! completion (validation data, a document timestamp: B-LTA; and a
//! certificate of completion signed by the organization), which releases
//! the dossier for payment.

use guichet_core::{
    Action, Command, Envelope, EnvelopeError, EnvelopeEvent, EnvelopeState, Evidence, Field, NewEnvelope, Party,
    Recipient, Standing, State, UserId,
};
use guichet_pades::{SignOptions, ValidationData, Visible};
use guichet_store::{DossierRow, EnvelopeRow, EnvelopeWrite, NewEvents};
use serde::Serialize;

use crate::signing::serial_hex;
use crate::{App, AppError, Caller, Result};

/// How long a citizen has to sign an agreement.
const AGREEMENT_DAYS: i64 = 30;

impl From<EnvelopeError> for AppError {
    fn from(e: EnvelopeError) -> Self {
        match e {
            EnvelopeError::Closed(_) | EnvelopeError::Expired | EnvelopeError::AlreadyActed => {
                AppError::WrongState(e.to_string())
            }
            EnvelopeError::NotYourTurn => AppError::WrongState(e.to_string()),
            EnvelopeError::NotYou => AppError::Forbidden(e.to_string()),
            EnvelopeError::NoRecipient(_) => AppError::NotFound,
            EnvelopeError::Invalid(m) => AppError::invalid("invalid_envelope", m),
            EnvelopeError::Corrupt { .. } => AppError::Internal(e.to_string()),
        }
    }
}

/// One recipient as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct RecipientView {
    pub index: usize,
    pub name: String,
    pub email: String,
    /// `employee`, `officer`, `citizen`, `external`.
    pub kind: String,
    pub group: u32,
    /// `waiting`, `signed`, `declined`, `delegated`.
    pub status: String,
    pub at: Option<i64>,
    /// The serial of the certificate that signed.
    pub certificate: Option<String>,
    pub reason: Option<String>,
    pub viewed: bool,
    /// Who signed in an officer's place (the account's name).
    pub signed_by: Option<String>,
}

/// An envelope as the API shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct EnvelopeView {
    pub id: String,
    pub title: String,
    pub message: String,
    pub lang: String,
    /// `sent`, `completed`, `declined`, `voided`, `expired`.
    pub state: String,
    pub version: i64,
    pub dossier: Option<String>,
    pub sender: String,
    pub sent_at: i64,
    pub expires_at: i64,
    pub completed_at: Option<i64>,
    /// The document as sent, now, and the certificate of completion.
    pub original_sha256: String,
    pub document_sha256: String,
    pub completion_sha256: Option<String>,
    pub recipients: Vec<RecipientView>,
    /// The recipients the caller may act as, now.
    pub your_turn: Vec<usize>,
}

fn kind(p: &Party) -> &'static str {
    match p {
        Party::Employee { .. } => "employee",
        Party::Officer => "officer",
        Party::Citizen { .. } => "citizen",
        Party::External => "external",
    }
}

impl EnvelopeView {
    pub(crate) fn of(id: &str, version: i64, e: &Envelope, caller: Option<&Caller>) -> EnvelopeView {
        let recipients = e
            .recipients
            .iter()
            .zip(&e.standing)
            .enumerate()
            .map(|(i, (r, s))| {
                let (status, at, certificate, reason, by) = match s {
                    Standing::Waiting => ("waiting", None, None, None, None),
                    Standing::Signed { at, certificate, by } => {
                        ("signed", Some(*at), Some(certificate.clone()), None, by.as_ref().map(|u| u.0.clone()))
                    }
                    Standing::Declined { at, reason } => ("declined", Some(*at), None, Some(reason.clone()), None),
                    Standing::Delegated { at, .. } => ("delegated", Some(*at), None, None, None),
                };
                RecipientView {
                    index: i,
                    name: r.name.clone(),
                    email: r.email.clone(),
                    kind: kind(&r.party).into(),
                    group: r.group,
                    status: status.into(),
                    at,
                    certificate,
                    reason,
                    viewed: e.viewed.get(i).copied().unwrap_or(false),
                    signed_by: by,
                }
            })
            .collect();
        let your_turn =
            caller.map(|c| e.turn().into_iter().filter(|&i| e.is_recipient(i, &c.actor)).collect()).unwrap_or_default();
        EnvelopeView {
            id: id.into(),
            title: e.title.clone(),
            message: e.message.clone(),
            lang: e.lang.clone(),
            state: e.state.as_str().into(),
            version,
            dossier: e.dossier.clone(),
            sender: e.sender.0.clone(),
            sent_at: e.sent_at,
            expires_at: e.expires_at,
            completed_at: e.completed_at,
            original_sha256: e.original.clone(),
            document_sha256: e.document.clone(),
            completion_sha256: e.completion.clone(),
            recipients,
            your_turn,
        }
    }
}

/// Who signs: someone signed in, or an external recipient who proved
/// their address with a one-time code.
enum Who<'a> {
    Account(&'a Caller),
    External,
}

/// Where and how a signer signs, for the evidence.
#[derive(Debug, Clone, Default)]
pub struct SigningContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

/// Which file of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvelopeFile {
    Original,
    Current,
    Completion,
}

/// `2026-11-29 10:40 UTC`.
fn utc(t: i64) -> String {
    jiff::Timestamp::from_second(t).map(|ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_default()
}

fn sha256_hex(b: &[u8]) -> String {
    use sha2::Digest;
    guichet_store::hex(&sha2::Sha256::digest(b))
}

/// One line of an address answer (`{line1, city, province, postal_code}`).
fn address_line(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => ["line1", "line2", "city", "province", "postal_code"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(|x| x.as_str()).filter(|x| !x.trim().is_empty()))
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::new(),
    }
}

fn signing_failed(e: guichet_pades::Error) -> AppError {
    match e {
        guichet_pades::Error::Timestamp(m) => AppError::Unavailable(format!(
            "the timestamp authority did not answer ({m}): nothing was signed; try again in a moment"
        )),
        other => AppError::Internal(other.to_string()),
    }
}

/// One page (from 0) of a PDF drawn as SVG.
async fn page_svg(pdf: Vec<u8>, index: usize) -> Result<String> {
    blocking(move || {
        guichet_docs::pdf_page_svg(&pdf, index)
            .map_err(|e| AppError::invalid("unreadable_pdf", e.to_string()))?
            .0
            .ok_or(AppError::NotFound)
    })
    .await
}

/// How many pages a PDF has.
async fn page_count(pdf: Vec<u8>) -> Result<usize> {
    blocking(move || {
        guichet_docs::pdf_page_svg(&pdf, usize::MAX)
            .map(|(_, n)| n)
            .map_err(|e| AppError::invalid("unreadable_pdf", e.to_string()))
    })
    .await
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| AppError::Internal(e.to_string()))?
}

impl App {
    async fn envelope_row(&self, id: &str) -> Result<EnvelopeRow> {
        self.store.envelope(id).await?.ok_or(AppError::NotFound)
    }

    /// Whether `caller` may see an envelope: its sender, a recipient
    /// (any signing officer for an officer's place), whoever may read its
    /// dossier, an administrator.
    async fn may_see(&self, caller: &Caller, row: &EnvelopeRow) -> Result<()> {
        let e = &row.envelope;
        if row.sender == caller.id()
            || (0..e.recipients.len()).any(|i| e.is_recipient(i, &caller.actor))
            || caller.may(Action::Administer, None).is_ok()
        {
            return Ok(());
        }
        if let Some(d) = &e.dossier
            && let Some(dossier) = self.store.dossier(d).await?
            && caller.may(Action::Read, Some(&dossier.dossier)).is_ok()
            && caller.is_staff()
        {
            return Ok(());
        }
        Err(AppError::NotFound)
    }

    /// The envelope, when `caller` is its recipient `index`; else 404 (not
    /// theirs to see) or 403 (someone else's place).
    async fn as_recipient(&self, caller: &Caller, id: &str, index: usize) -> Result<EnvelopeRow> {
        let row = self.envelope_row(id).await?;
        if index >= row.envelope.recipients.len() {
            return Err(AppError::NotFound);
        }
        if !row.envelope.is_recipient(index, &caller.actor) {
            self.may_see(caller, &row).await?;
            return Err(AppError::Forbidden("you are not this signer".into()));
        }
        Ok(row)
    }

    pub async fn envelope(&self, caller: &Caller, id: &str) -> Result<EnvelopeView> {
        let row = self.envelope_row(id).await?;
        self.may_see(caller, &row).await?;
        let mut view = EnvelopeView::of(&row.id, row.version, &row.envelope, Some(caller));
        // Names, not account ids, for whoever signed in an officer's place.
        for r in view.recipients.iter_mut() {
            if let Some(u) = r.signed_by.take() {
                r.signed_by = Some(self.store.user(&u).await?.map(|x| x.name).unwrap_or(u));
            }
        }
        Ok(view)
    }

    /// The envelopes of a dossier (whoever may read the dossier).
    pub async fn dossier_envelopes(&self, caller: &Caller, dossier: &str) -> Result<Vec<EnvelopeView>> {
        let d = self.store.dossier(dossier).await?.ok_or(AppError::NotFound)?;
        caller.may(Action::Read, Some(&d.dossier))?;
        Ok(self
            .store
            .envelopes_of_dossier(dossier)
            .await?
            .iter()
            .map(|r| EnvelopeView::of(&r.id, r.version, &r.envelope, Some(caller)))
            .collect())
    }

    /// Envelopes waiting for the caller's signature.
    pub async fn envelopes_awaiting(&self, caller: &Caller) -> Result<Vec<EnvelopeView>> {
        let officer = caller.actor.roles.contains(&guichet_core::Role::SigningOfficer);
        Ok(self
            .store
            .envelopes_awaiting(caller.id(), officer, 200)
            .await?
            .iter()
            .map(|r| EnvelopeView::of(&r.id, r.version, &r.envelope, Some(caller)))
            .filter(|v| !v.your_turn.is_empty())
            .collect())
    }

    /// A file of an envelope, as PDF bytes.
    pub async fn envelope_file(&self, caller: &Caller, id: &str, which: EnvelopeFile) -> Result<Vec<u8>> {
        let row = self.envelope_row(id).await?;
        self.may_see(caller, &row).await?;
        let sha = match which {
            EnvelopeFile::Original => row.envelope.original.clone(),
            EnvelopeFile::Current => row.envelope.document.clone(),
            EnvelopeFile::Completion => row.envelope.completion.clone().ok_or(AppError::NotFound)?,
        };
        Ok(self.store.blob(&sha).await?.1)
    }

    /// One page (from 0) of an envelope's current document as SVG.
    pub async fn envelope_page(&self, caller: &Caller, id: &str, index: usize) -> Result<String> {
        let pdf = self.envelope_file(caller, id, EnvelopeFile::Current).await?;
        page_svg(pdf, index).await
    }

    /// How many pages an envelope's document has.
    pub async fn envelope_page_count(&self, caller: &Caller, id: &str) -> Result<usize> {
        let pdf = self.envelope_file(caller, id, EnvelopeFile::Current).await?;
        page_count(pdf).await
    }

    /// Records that a recipient opened the document (once).
    pub async fn envelope_viewed(&self, caller: &Caller, id: &str) -> Result<()> {
        let row = self.envelope_row(id).await?;
        let e = &row.envelope;
        let now = self.now();
        let Some(i) = e.turn().into_iter().find(|&i| e.is_recipient(i, &caller.actor) && !e.viewed[i]) else {
            return Ok(());
        };
        let ev = EnvelopeEvent::Viewed { recipient: i, at: now };
        match self.write_events(&row, vec![ev], Some(caller.id()), now).await {
            Ok(_) | Err(AppError::Conflict { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Generates the loan agreement of an approved loan dossier and sends
    /// it: to the citizen, then to a signing officer. A case worker (or
    /// reviewer) may send it again after a decline or a void.
    pub async fn send_agreement(&self, caller: &Caller, dossier: &str) -> Result<EnvelopeView> {
        let row = self.store.dossier(dossier).await?.ok_or(AppError::NotFound)?;
        caller.may(Action::Decide, Some(&row.dossier)).or_else(|_| caller.may(Action::Review, Some(&row.dossier)))?;
        self.send_agreement_for(&row, caller.id()).await
    }

    /// After an approval: sends the agreement when the program needs one.
    /// A failure leaves the dossier approved, to be sent again by hand.
    pub(crate) async fn after_approval(&self, dossier: &str, by: &str) {
        let Ok(Some(row)) = self.store.dossier(dossier).await else { return };
        if row.state == State::Approved
            && row.dossier.agreement_required
            && let Err(e) = self.send_agreement_for(&row, by).await
        {
            tracing::error!(dossier, error = %e, "the agreement could not be sent");
        }
    }

    async fn send_agreement_for(&self, row: &DossierRow, by: &str) -> Result<EnvelopeView> {
        if !row.dossier.agreement_required || !matches!(row.state, State::Approved | State::AgreementPending) {
            return Err(AppError::WrongState("this dossier has no agreement to send now".into()));
        }
        let existing = self.store.envelopes_of_dossier(&row.id).await?;
        if existing.iter().any(|e| matches!(e.envelope.state, EnvelopeState::Sent | EnvelopeState::Completed)) {
            return Err(AppError::WrongState("this dossier's agreement was already sent".into()));
        }
        let p = self.program_version(&row.program, &row.program_version, None).await?;
        let agreement =
            p.program.agreement.as_ref().ok_or_else(|| AppError::WrongState("the program has no agreement".into()))?;
        let applicant = self.store.user(&row.applicant).await?.ok_or(AppError::NotFound)?;
        let org = self.org_settings().await?;
        let lang = if applicant.language == "en" && org.english { "en" } else { "fr" };
        let fr = lang == "fr";
        let amount = row.amount.ok_or_else(|| AppError::WrongState("the decision has no amount".into()))?;
        let date = self.today()?;
        let repay_by = agreement
            .repay_by
            .as_deref()
            .and_then(|name| p.program.parameter_at(name, date))
            .and_then(|v| match v {
                guichet_rules::Value::Date(d) => Some(if fr { d.to_fr() } else { d.to_en() }),
                _ => None,
            })
            .unwrap_or_default();
        let answers = &row.dossier.answers;
        let payee = p.program.payee.as_ref();
        let answer = |q: Option<&String>| q.and_then(|q| answers.get(q)).map(address_line).unwrap_or_default();
        let reference = format!(
            "{} {}",
            if fr { "Demande" } else { "Application" },
            row.id.trim_start_matches("d_").chars().take(8).collect::<String>()
        );
        let money = guichet_rules::Money(amount);
        let (issued, today_words) = {
            let c = date.to_civil();
            (
                [i32::from(c.year()), i32::from(c.month()), i32::from(c.day())],
                if fr { date.to_fr() } else { date.to_en() },
            )
        };
        let boxes = guichet_docs::SIGNATURE_BOXES;
        let officer_label = if fr { "Signataire autorisé" } else { "Signing officer" };
        let data = guichet_docs::LoanAgreement {
            lang: lang.into(),
            organization: org.name.clone(),
            program: if fr { p.program.title.fr.clone() } else { p.program.title.en.clone() },
            reference: reference.clone(),
            issued,
            date: today_words,
            borrower: guichet_docs::AgreementParty {
                name: applicant.name.clone(),
                address: answers.get("home").map(address_line).unwrap_or_default(),
            },
            landlord: guichet_docs::AgreementParty {
                name: answer(payee.and_then(|x| x.name.as_ref())),
                address: answer(payee.and_then(|x| x.address.as_ref())),
            },
            amount: if fr { money.to_fr() } else { money.to_en() },
            repay_by,
            boxes: vec![
                guichet_docs::SignatureBox {
                    label: format!("{} — {}", if fr { "L'emprunteur" } else { "The borrower" }, applicant.name),
                    rect: boxes[0],
                },
                guichet_docs::SignatureBox {
                    label: format!("{} {} — {officer_label}", if fr { "Pour" } else { "For" }, org.name),
                    rect: boxes[1],
                },
            ],
        };
        let pdf = blocking(move || crate::docs().loan_agreement(&data).map_err(|e| AppError::Internal(e.to_string())))
            .await?;
        let now = self.now();
        let blob = self.store.put_blob(pdf, "application/pdf", now).await?;
        let sent = Envelope::send(
            NewEnvelope {
                title: format!("{} — {reference}", if fr { "Convention de prêt" } else { "Loan agreement" }),
                message: String::new(),
                lang: lang.into(),
                document_sha256: blob.sha256.clone(),
                recipients: vec![
                    Recipient {
                        name: applicant.name.clone(),
                        email: applicant.email.clone(),
                        party: Party::Citizen { user: UserId(applicant.id.clone()) },
                        group: 1,
                        field: Some(Field { page: 0, rect: boxes[0] }),
                    },
                    Recipient {
                        name: officer_label.into(),
                        email: String::new(),
                        party: Party::Officer,
                        group: 2,
                        field: Some(Field { page: 0, rect: boxes[1] }),
                    },
                ],
                expires_at: now + AGREEMENT_DAYS * 86_400,
                dossier: Some(row.id.clone()),
            },
            &UserId(by.into()),
            now,
        )?;
        let envelope = Envelope::replay(std::slice::from_ref(&sent))?;
        let dossier_events = row.dossier.handle(
            Command::SendAgreement { document_sha256: blob.sha256.clone() },
            &UserId(by.into()),
            now,
        )?;
        let id = guichet_store::new_id("e_")?;
        let after = row.dossier.after(&dossier_events)?;
        let payment_line = self.payment_line_json(&row.program, &row.program_version, &after).await?;
        let version = self
            .store
            .write_envelope(
                EnvelopeWrite {
                    id: id.clone(),
                    expected_version: 0,
                    events: vec![sent],
                    actor: Some(by.into()),
                    after: envelope.clone(),
                    at: now,
                },
                Some(NewEvents {
                    dossier: row.id.clone(),
                    expected_version: row.version,
                    program_version: None,
                    events: dossier_events,
                    actor: Some(by.into()),
                    after,
                    flags: row.flags.clone(),
                    keys: vec![],
                    at: now,
                    payment_line,
                }),
            )
            .await?;
        let link = format!("{}/enveloppes/{id}", self.config.base_url);
        let (subject, body) = if fr {
            (
                "Votre convention de prêt est prête à signer".to_owned(),
                format!(
                    "Bonjour {},\n\nVotre prêt de {} est approuvé. Lisez et signez la convention de prêt avant le {} :\n{link}\n\n{}",
                    applicant.name,
                    money.to_fr(),
                    utc(now + AGREEMENT_DAYS * 86_400).get(..10).unwrap_or_default(),
                    org.name
                ),
            )
        } else {
            (
                "Your loan agreement is ready to sign".to_owned(),
                format!(
                    "Hello {},\n\nYour loan of {} is approved. Read and sign the loan agreement before {}:\n{link}\n\n{}",
                    applicant.name,
                    money.to_en(),
                    utc(now + AGREEMENT_DAYS * 86_400).get(..10).unwrap_or_default(),
                    org.name
                ),
            )
        };
        self.store.queue_mail(&applicant.email, &subject, &body, now).await?;
        Ok(EnvelopeView::of(&id, version, &envelope, None))
    }

    /// Signs as recipient `index`: with the caller's personal certificate
    /// (`passphrase`) for an employee's place, with the organization's
    /// seal over the session's evidence for a citizen's. Completes the
    /// envelope after the last signature. Nothing is stored unless the
    /// whole signature (and timestamp) succeeded.
    pub async fn sign_envelope(
        &self,
        caller: &Caller,
        id: &str,
        index: usize,
        passphrase: Option<&str>,
        ctx: &SigningContext,
    ) -> Result<EnvelopeView> {
        // Two signers of one group may sign at the same moment: the
        // second signs again over the first one's document.
        let mut attempts = 0;
        loop {
            attempts += 1;
            match self.sign_once(caller, id, index, passphrase, ctx).await {
                Err(AppError::Conflict { .. }) if attempts < 3 => continue,
                other => return other,
            }
        }
    }

    async fn sign_once(
        &self,
        caller: &Caller,
        id: &str,
        index: usize,
        passphrase: Option<&str>,
        ctx: &SigningContext,
    ) -> Result<EnvelopeView> {
        let row = self.as_recipient(caller, id, index).await?;
        self.sign_as(row, index, Who::Account(caller), passphrase, ctx).await
    }

    /// Signs as recipient `index` of `row`, who has been identified.
    async fn sign_as(
        &self,
        row: EnvelopeRow,
        index: usize,
        who: Who<'_>,
        passphrase: Option<&str>,
        ctx: &SigningContext,
    ) -> Result<EnvelopeView> {
        let e = row.envelope.clone();
        let now = self.now();
        e.may_act(index, now)?;
        let recipient = e.recipients[index].clone();
        let pki = self.pki().await?;
        let pdf = self.store.blob(&e.document).await?.1;
        let personal = recipient.party.personal();
        let (unlocked, serial, method) = match (&who, personal) {
            (Who::Account(caller), true) => {
                let pass = passphrase.filter(|p| !p.is_empty()).ok_or_else(|| AppError::Invalid {
                    code: "passphrase_required",
                    message: "type your signing passphrase".into(),
                    field: Some("passphrase".into()),
                    details: None,
                })?;
                let u = self.unlock(caller, pass).await?;
                let serial = u.serial.clone();
                (Some(u), serial, "certificate")
            }
            (Who::External, true) => return Err(AppError::Forbidden("an employee signs in their account".into())),
            (_, false) => {
                let serial = serial_hex(
                    &guichet_pades::certificate_serial(&pki.seal_cert)
                        .map_err(|e| AppError::Internal(e.to_string()))?,
                );
                (None, serial, if matches!(who, Who::External) { "email_code" } else { "session" })
            }
        };
        let (caller_name, caller_email, by) = match &who {
            Who::Account(c) => (c.user.name.clone(), c.user.email.clone(), Some(UserId(c.id().into()))),
            Who::External => (recipient.name.clone(), recipient.email.clone(), None),
        };
        let caller_id = by.as_ref().map(|u| u.0.clone());
        let evidence = Evidence { method: method.into(), ip: ctx.ip.clone(), user_agent: ctx.user_agent.clone() };
        let fr = e.lang != "en";
        let signer_name = if personal { caller_name } else { recipient.name.clone() };
        let when = utc(now);
        let reason = if personal {
            if fr { format!("Signé par {signer_name}") } else { format!("Signed by {signer_name}") }
        } else if fr {
            format!("Signé par {signer_name} ({caller_email}), preuve scellée par {}", pki.organization)
        } else {
            format!("Signed by {signer_name} ({caller_email}), evidence sealed by {}", pki.organization)
        };
        let lines = vec![
            signer_name.clone(),
            if fr { format!("Signé le {when}") } else { format!("Signed {when}") },
            if personal {
                if fr { "Certificat personnel".to_owned() } else { "Personal certificate".to_owned() }
            } else if fr {
                format!("Scellé par {}", pki.organization)
            } else {
                format!("Sealed by {}", pki.organization)
            },
        ];
        let field = recipient.field;
        let p = pki.clone();
        let tsa = self.timestamp_client(&pki);
        let signed = blocking(move || {
            // Page 0 is the last page (guichet-pades knows the document).
            let visible = field.map(|f| Visible {
                page: f.page as usize,
                rect: f.rect.map(|x| x as f32),
                lines: lines.clone(),
                image: None,
            });
            let chain = unlocked.as_ref().and_then(|u| u.chain.clone()).unwrap_or_else(|| p.chain());
            let sign = |key: &dyn guichet_pades::Signer, cert: &[u8]| {
                let opts = SignOptions {
                    signing_time: Some(time::OffsetDateTime::now_utc()),
                    reason: Some(&reason),
                    timestamp: Some(tsa.as_ref()),
                    visible: visible.clone(),
                    ..SignOptions::new(key, cert, &chain)
                };
                guichet_pades::sign_pdf(&pdf, &opts).map_err(signing_failed)
            };
            match &unlocked {
                Some(u) => u.key.with_signer(|key| sign(key, &u.certificate)),
                None => {
                    let (k, c) = p.seal();
                    sign(k, c)
                }
            }
        })
        .await?;
        let blob = self.store.put_blob(signed, "application/pdf", now).await?;
        let signed_event = e.sign(index, by.clone(), serial, evidence, blob.sha256.clone(), now)?;
        let mut events = vec![signed_event];
        let mut after = e.after(&events)?;
        let mut dossier_write = None;
        if after.all_signed() {
            let (document, completion) = self.finish(&row.id, &after, &events, now).await?;
            let done = after.complete(document, completion, now)?;
            after = after.after(std::slice::from_ref(&done))?;
            events.push(done);
            if let Some(d) = &after.dossier {
                let drow = self.store.dossier(d).await?.ok_or(AppError::NotFound)?;
                if drow.state == State::AgreementPending {
                    let dev = drow.dossier.handle(
                        Command::SignAgreement { document_sha256: after.original.clone() },
                        &by.clone().unwrap_or_else(|| UserId("system".into())),
                        now,
                    )?;
                    let dafter = drow.dossier.after(&dev)?;
                    let payment_line = self.payment_line_json(&drow.program, &drow.program_version, &dafter).await?;
                    dossier_write = Some(NewEvents {
                        dossier: drow.id.clone(),
                        expected_version: drow.version,
                        program_version: None,
                        events: dev,
                        actor: caller_id.clone(),
                        after: dafter,
                        flags: drow.flags.clone(),
                        keys: vec![],
                        at: now,
                        payment_line,
                    });
                }
            }
        }
        let version = self
            .store
            .write_envelope(
                EnvelopeWrite {
                    id: row.id.clone(),
                    expected_version: row.version,
                    events,
                    actor: caller_id,
                    after: after.clone(),
                    at: now,
                },
                dossier_write,
            )
            .await?;
        if after.state == EnvelopeState::Completed {
            self.notify_completed(&row.id, &after, now).await?;
        } else {
            self.notify_turn(&row.id, &e.turn(), &after, now).await?;
        }
        let caller = match who {
            Who::Account(c) => Some(c),
            Who::External => None,
        };
        Ok(EnvelopeView::of(&row.id, version, &after, caller))
    }

    /// Tells the recipients whose turn just came: employees and citizens
    /// by a mail with the envelope's page, external recipients by a mail
    /// with their own signing link.
    pub(crate) async fn notify_turn(&self, id: &str, was: &[usize], after: &Envelope, now: i64) -> Result<()> {
        self.notify_turn_as(id, was, after, now, crate::Notice::AgreementToSign).await
    }

    /// Queues the mails of whose turn it is, filed on the envelope's
    /// dossier (if any) and keyed by envelope, recipient and moment.
    pub(crate) async fn notify_turn_as(
        &self,
        id: &str,
        was: &[usize],
        after: &Envelope,
        now: i64,
        notice: crate::Notice,
    ) -> Result<()> {
        for (i, to, subject, body) in self.turn_mails_as(id, was, after, notice).await? {
            let key = format!("{notice:?}:{id}:{i}:{now}");
            self.store.queue_mail_once(&key, after.dossier.as_deref(), &to, &subject, &body, now).await?;
        }
        Ok(())
    }

    /// The mails `notify_turn` sends: (to, subject, body). External
    /// recipients get a signing link of their own, stored here.
    pub(crate) async fn turn_mails(
        &self,
        id: &str,
        was: &[usize],
        after: &Envelope,
    ) -> Result<Vec<(String, String, String)>> {
        Ok(self
            .turn_mails_as(id, was, after, crate::Notice::AgreementToSign)
            .await?
            .into_iter()
            .map(|(_, to, subject, body)| (to, subject, body))
            .collect())
    }

    async fn turn_mails_as(
        &self,
        id: &str,
        was: &[usize],
        after: &Envelope,
        notice: crate::Notice,
    ) -> Result<Vec<(usize, String, String, String)>> {
        let mut out = Vec::new();
        for i in after.turn().into_iter().filter(|i| !was.contains(i)) {
            let r = &after.recipients[i];
            if r.email.is_empty() {
                continue;
            }
            let link = if r.party == Party::External {
                let token = crate::secret_token()?;
                self.store.create_signing_link(&token, id, i, after.expires_at).await?;
                format!("{}/signer/{token}", self.config.base_url)
            } else {
                format!("{}/enveloppes/{id}", self.config.base_url)
            };
            let lang = if after.lang == "en" { "en" } else { "fr" };
            let until = self.local_date(after.expires_at).map(|d| Self::date_text(d, lang)).unwrap_or_default();
            let (subject, body) = crate::notify::render(
                notice,
                lang,
                &[
                    ("name", r.name.clone()),
                    ("title", after.title.clone()),
                    ("until", until),
                    ("link", link),
                    ("message", after.message.clone()),
                ],
            );
            out.push((i, r.email.clone(), subject, body.trim_end().to_owned() + "\n"));
        }
        Ok(out)
    }

    /// The completed document (validation data for every certificate of
    /// every signature, then a document timestamp: PAdES B-LTA) and the
    /// certificate of completion (sealed by the organization). Returns
    /// their SHA-256 once stored.
    async fn finish(&self, id: &str, e: &Envelope, pending: &[EnvelopeEvent], now: i64) -> Result<(String, String)> {
        let pki = self.pki().await?;
        let pdf = self.store.blob(&e.document).await?.1;
        // Every certificate that signed: employees' and the seal.
        // Every certificate that signed: employees' and the seal. Ours get
        // OCSP answers from our responder; imported ones bring their
        // issuers (their own CA answers for them, not us).
        let mut signer_certs: Vec<Vec<u8>> = Vec::new();
        let mut foreign: Vec<Vec<u8>> = Vec::new();
        let mut subjects = std::collections::HashMap::new();
        for s in &e.standing {
            if let Standing::Signed { certificate, .. } = s {
                let (der, subject) = match self.store.certificate(certificate).await? {
                    Some(c) => {
                        if let Some(chain) = c.chain {
                            foreign.extend(chain);
                            foreign.push(c.certificate.clone());
                            subjects.insert(certificate.clone(), c.subject);
                            continue;
                        }
                        (c.certificate, c.subject)
                    }
                    None => (pki.seal_cert.clone(), format!("{} — Sceau / Seal", pki.organization)),
                };
                subjects.insert(certificate.clone(), subject);
                if !signer_certs.contains(&der) {
                    signer_certs.push(der);
                }
            }
        }
        let mut about = signer_certs.clone();
        about.push(pki.tsa_cert.clone());
        let ocsp = self.ocsp_about(&about).await?;
        let crls = vec![self.crl().await?, self.root_crl().await?];
        let mut certs = vec![pki.issuing.clone(), pki.root.clone(), pki.tsa_cert.clone()];
        certs.extend(signer_certs);
        for c in foreign {
            if !certs.contains(&c) {
                certs.push(c);
            }
        }
        let tsa = self.timestamp_client(&pki);
        let document = blocking(move || {
            let data = ValidationData { certs, crls, ocsps: vec![ocsp] };
            let with_dss = guichet_pades::add_dss(&pdf, &data).map_err(|e| AppError::Internal(e.to_string()))?;
            guichet_pades::timestamp_pdf(&with_dss, tsa.as_ref()).map_err(signing_failed)
        })
        .await?;
        let document_sha = sha256_hex(&document);

        // The certificate of completion, from the chained log.
        let fr = e.lang != "en";
        let mut log: Vec<(i64, EnvelopeEvent)> = Vec::new();
        for s in self.store.events(&format!("envelope:{id}")).await? {
            if let Ok(ev) = serde_json::from_value::<EnvelopeEvent>(s.event) {
                log.push((s.at, ev));
            }
        }
        log.extend(pending.iter().map(|ev| (now, ev.clone())));
        let name = |i: usize| e.recipients.get(i).map(|r| r.name.clone()).unwrap_or_default();
        let sender = self.store.user(&e.sender.0).await?.map(|u| u.name).unwrap_or_else(|| e.sender.0.clone());
        let evidence_text = |ev: &Evidence, cert: &str| {
            let mut parts = vec![match ev.method.as_str() {
                "certificate" if fr => "certificat personnel".to_owned(),
                "certificate" => "personal certificate".to_owned(),
                "session" if fr => "compte ouvert (session)".to_owned(),
                "session" => "signed-in account (session)".to_owned(),
                "email_code" if fr => "code unique envoyé par courriel".to_owned(),
                "email_code" => "one-time code sent by email".to_owned(),
                other => other.to_owned(),
            }];
            parts.push(format!("{} {}", if fr { "certificat n°" } else { "certificate #" }, cert));
            if let Some(ip) = &ev.ip {
                parts.push(format!("IP {ip}"));
            }
            if let Some(ua) = &ev.user_agent {
                parts.push(ua.chars().take(120).collect());
            }
            parts.join(" · ")
        };
        let events = log
            .iter()
            .map(|(at, ev)| {
                let (what, who, evidence) = match ev {
                    EnvelopeEvent::Sent { .. } => (if fr { "Envoyée" } else { "Sent" }, sender.clone(), String::new()),
                    EnvelopeEvent::Viewed { recipient, .. } => {
                        (if fr { "Consultée" } else { "Viewed" }, name(*recipient), String::new())
                    }
                    EnvelopeEvent::Signed { recipient, certificate, evidence, .. } => {
                        (if fr { "Signée" } else { "Signed" }, name(*recipient), evidence_text(evidence, certificate))
                    }
                    EnvelopeEvent::Declined { recipient, reason, .. } => {
                        (if fr { "Refusée" } else { "Declined" }, name(*recipient), reason.clone())
                    }
                    EnvelopeEvent::Delegated { recipient, to, .. } => {
                        (if fr { "Déléguée" } else { "Delegated" }, name(*recipient), to.name.clone())
                    }
                    EnvelopeEvent::Reminded { recipient, .. } => {
                        (if fr { "Rappel" } else { "Reminder" }, name(*recipient), String::new())
                    }
                    EnvelopeEvent::Voided { reason, .. } => {
                        (if fr { "Annulée" } else { "Voided" }, String::new(), reason.clone())
                    }
                    EnvelopeEvent::Expired { .. } => {
                        (if fr { "Expirée" } else { "Expired" }, String::new(), String::new())
                    }
                    EnvelopeEvent::Completed { .. } => {
                        (if fr { "Achevée" } else { "Completed" }, String::new(), String::new())
                    }
                };
                guichet_docs::CompletionEvent { at: utc(*at), what: what.into(), who, evidence }
            })
            .collect();
        let signers = e
            .recipients
            .iter()
            .zip(&e.standing)
            .filter_map(|(r, s)| match s {
                Standing::Signed { at, certificate, .. } => Some(guichet_docs::CompletionSigner {
                    group: r.group,
                    name: r.name.clone(),
                    email: r.email.clone(),
                    certificate: format!(
                        "{} (n° {certificate})",
                        subjects.get(certificate).cloned().unwrap_or_default()
                    ),
                    at: utc(*at),
                }),
                _ => None,
            })
            .collect();
        let day = jiff::Timestamp::from_second(now)
            .map(|t| jiff::tz::TimeZone::UTC.to_datetime(t).date())
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let data = guichet_docs::Completion {
            lang: e.lang.clone(),
            organization: pki.organization.clone(),
            title: e.title.clone(),
            envelope: id.into(),
            sender,
            original: e.original.clone(),
            signed: document_sha.clone(),
            completed: utc(now),
            issued: [i32::from(day.year()), i32::from(day.month()), i32::from(day.day())],
            signers,
            events,
        };
        let p = pki.clone();
        let tsa = self.timestamp_client(&pki);
        let completion = blocking(move || {
            let pdf = crate::docs().completion(&data).map_err(|e| AppError::Internal(e.to_string()))?;
            let (key, cert) = p.seal();
            let chain = p.chain();
            let reason = if data.lang == "en" { "Certificate of completion" } else { "Certificat d'achèvement" };
            let opts = SignOptions {
                signing_time: Some(time::OffsetDateTime::now_utc()),
                reason: Some(reason),
                timestamp: Some(tsa.as_ref()),
                ..SignOptions::new(key, cert, &chain)
            };
            guichet_pades::sign_pdf(&pdf, &opts).map_err(signing_failed)
        })
        .await?;
        let completion = self.store.put_blob(completion, "application/pdf", now).await?;
        let document = self.store.put_blob(document, "application/pdf", now).await?;
        debug_assert_eq!(document.sha256, document_sha);
        Ok((document.sha256, completion.sha256))
    }

    async fn notify_completed(&self, id: &str, e: &Envelope, now: i64) -> Result<()> {
        let link = format!("{}/enveloppes/{id}", self.config.base_url);
        for r in e.recipients.iter().filter(|r| !r.email.is_empty()) {
            let (subject, body) = if e.lang == "en" {
                (
                    format!("Signed by everyone: {}", e.title),
                    format!(
                        "Hello {},\n\nEvery party has signed “{}”. The signed document:\n{link}\n",
                        r.name, e.title
                    ),
                )
            } else {
                (
                    format!("Signé par tous : {}", e.title),
                    format!(
                        "Bonjour {},\n\nToutes les parties ont signé « {} ». Le document signé :\n{link}\n",
                        r.name, e.title
                    ),
                )
            };
            self.store.queue_mail(&r.email, &subject, &body, now).await?;
        }
        Ok(())
    }

    /// The minute job: open envelopes past their expiry expire; signers
    /// whose turn has waited three quiet days get a reminder (and again
    /// every three days); holders of a certificate that expires within 30
    /// days are told to renew it (once). Returns (expired, reminded).
    pub async fn sweep_envelopes(&self) -> Result<(usize, usize)> {
        const QUIET: i64 = 3 * 86_400;
        let now = self.now();
        let (mut expired, mut reminded) = (0, 0);
        for row in self.store.envelopes_to_sweep(now, now - QUIET, 200).await? {
            let e = &row.envelope;
            let events: Vec<EnvelopeEvent> = match e.expire(now) {
                Some(x) => vec![x],
                None => e.turn().into_iter().map(|recipient| EnvelopeEvent::Reminded { recipient, at: now }).collect(),
            };
            if events.is_empty() {
                continue;
            }
            let after = match self.write_events(&row, events, None, now).await {
                Ok((_, after)) => after,
                // Someone acted meanwhile: next minute.
                Err(AppError::Conflict { .. }) => continue,
                Err(x) => return Err(x),
            };
            if after.state == EnvelopeState::Expired {
                expired += 1;
            } else {
                reminded += e.turn().len();
                self.notify_turn_as(&row.id, &[], &after, now, crate::Notice::SigningReminder).await?;
            }
        }
        // Personal certificates: a reminder to renew, 30 days ahead, once.
        for c in self.store.certificates_to_renew(now, now + 30 * 86_400).await? {
            if let Some(u) = self.store.user(&c.user_id).await?.filter(|u| u.active) {
                let day = utc(c.not_after).get(..10).unwrap_or_default().to_owned();
                let link = format!("{}/compte/certificat", self.config.base_url);
                let (subject, body) = if u.language == "en" {
                    (
                        "Your signing certificate expires soon".to_owned(),
                        format!(
                            "Hello {},\n\nYour signing certificate expires on {day}. Renew it here:\n{link}\n",
                            u.name
                        ),
                    )
                } else {
                    (
                        "Votre certificat de signature expire bientôt".to_owned(),
                        format!(
                            "Bonjour {},\n\nVotre certificat de signature expire le {day}. Renouvelez-le ici :\n{link}\n",
                            u.name
                        ),
                    )
                };
                self.store.queue_mail(&u.email, &subject, &body, now).await?;
            }
            self.store.note_renewal_reminder(&c.serial, now).await?;
        }
        Ok((expired, reminded))
    }

    /// Hands an employee's signature to a colleague (same place in the order).
    pub async fn delegate_envelope(
        &self,
        caller: &Caller,
        id: &str,
        index: usize,
        to_email: &str,
    ) -> Result<EnvelopeView> {
        let row = self.as_recipient(caller, id, index).await?;
        let e = &row.envelope;
        let to = self
            .store
            .user_by_email(to_email)
            .await?
            .filter(|u| u.active && u.roles.iter().any(|r| r != "citizen"))
            .ok_or_else(|| {
                AppError::invalid("invalid_envelope", format!("no active employee account for {to_email:?}"))
            })?;
        if to.id == caller.id() {
            return Err(AppError::invalid("invalid_envelope", "delegate to someone else"));
        }
        let now = self.now();
        let ev = e.delegate(
            index,
            Recipient {
                name: to.name.clone(),
                email: to.email.clone(),
                party: Party::Employee { user: UserId(to.id.clone()) },
                group: e.recipients[index].group,
                field: e.recipients[index].field,
            },
            now,
        )?;
        let was = e.turn();
        let view = self.write_one(&row, ev, caller, now).await?;
        if let Some(after) = self.store.envelope(id).await? {
            self.notify_turn(id, &was, &after.envelope, now).await?;
        }
        Ok(view)
    }

    /// Declines to sign, with a reason: the envelope ends.
    pub async fn decline_envelope(
        &self,
        caller: &Caller,
        id: &str,
        index: usize,
        reason: &str,
    ) -> Result<EnvelopeView> {
        let row = self.as_recipient(caller, id, index).await?;
        let e = &row.envelope;
        let now = self.now();
        let ev = e.decline(index, reason, now)?;
        let view = self.write_one(&row, ev, caller, now).await?;
        self.notify_declined(&row, index, reason, now).await?;
        Ok(view)
    }

    /// Tells the sender that a recipient declined, and why.
    async fn notify_declined(&self, row: &EnvelopeRow, index: usize, reason: &str, now: i64) -> Result<()> {
        let Some(sender) = self.store.user(&row.sender).await? else { return Ok(()) };
        let e = &row.envelope;
        let who = e.recipients.get(index).map(|r| r.name.clone()).unwrap_or_default();
        let link = format!("{}/enveloppes/{}", self.config.base_url, row.id);
        let (subject, body) = if sender.language == "en" {
            (
                format!("Declined: {}", e.title),
                format!("{who} declined to sign “{}”:\n\n{}\n\n{link}\n", e.title, reason.trim()),
            )
        } else {
            (
                format!("Refusé : {}", e.title),
                format!("{who} refuse de signer « {} » :\n\n{}\n\n{link}\n", e.title, reason.trim()),
            )
        };
        self.store.queue_mail(&sender.email, &subject, &body, now).await?;
        Ok(())
    }

    /// Voids an envelope still open: its sender, or an administrator.
    pub async fn void_envelope(&self, caller: &Caller, id: &str, reason: &str) -> Result<EnvelopeView> {
        let row = self.envelope_row(id).await?;
        if row.sender != caller.id() {
            self.may_see(caller, &row).await?;
            let on_dossier = match &row.envelope.dossier {
                Some(d) => match self.store.dossier(d).await? {
                    Some(x) => caller.may(Action::Decide, Some(&x.dossier)).is_ok(),
                    None => false,
                },
                None => false,
            };
            if !on_dossier {
                caller.may(Action::Administer, None)?;
            }
        }
        let now = self.now();
        let ev = row.envelope.void(reason, &UserId(caller.id().into()), now)?;
        self.write_one(&row, ev, caller, now).await
    }

    /// Voids a dossier's open envelopes (its decision is being reviewed).
    pub(crate) async fn void_open_envelopes(&self, dossier: &str, by: &str, reason: &str) -> Result<()> {
        let now = self.now();
        for row in self.store.envelopes_of_dossier(dossier).await? {
            if row.envelope.state != EnvelopeState::Sent {
                continue;
            }
            let ev = row.envelope.void(reason, &UserId(by.into()), now)?;
            self.write_events(&row, vec![ev], Some(by), now).await?;
        }
        Ok(())
    }

    async fn write_one(&self, row: &EnvelopeRow, ev: EnvelopeEvent, caller: &Caller, now: i64) -> Result<EnvelopeView> {
        let (version, after) = self.write_events(row, vec![ev], Some(caller.id()), now).await?;
        Ok(EnvelopeView::of(&row.id, version, &after, Some(caller)))
    }

    /// Writes events to an envelope already read (no dossier change);
    /// returns its new version and state.
    async fn write_events(
        &self,
        row: &EnvelopeRow,
        events: Vec<EnvelopeEvent>,
        actor: Option<&str>,
        now: i64,
    ) -> Result<(i64, Envelope)> {
        let after = row.envelope.after(&events)?;
        let w = EnvelopeWrite {
            id: row.id.clone(),
            expected_version: row.version,
            events,
            actor: actor.map(str::to_owned),
            after: after.clone(),
            at: now,
        };
        let version = self.store.write_envelope(w, None).await?;
        Ok((version, after))
    }
}

/// A recipient as the sender names them.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecipientInput {
    /// Defaults to the account's name for employees and citizens.
    #[serde(default)]
    pub name: Option<String>,
    /// The address (an account's, for employees and citizens); may be
    /// empty for `officer`.
    #[serde(default)]
    pub email: String,
    /// `employee`, `officer` (any signing officer), `citizen`, `external`.
    pub kind: String,
    /// Signing order: every recipient of group n signs before group n+1.
    #[serde(default = "first_group")]
    pub group: u32,
    /// A visible signature: page (from 1; 0 = last) and `[x, y, w, h]` in points.
    #[serde(default)]
    pub field: Option<FieldInput>,
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldInput {
    pub page: u32,
    pub rect: [i32; 4],
}

fn first_group() -> u32 {
    1
}

/// A new envelope around an uploaded PDF.
#[derive(Debug, Clone, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvelopeInput {
    pub title: String,
    #[serde(default)]
    pub message: String,
    /// `fr` (default) or `en`: the notifications' and the certificate of
    /// completion's language.
    #[serde(default)]
    pub lang: Option<String>,
    /// 1 to 365; 30 by default.
    #[serde(default)]
    pub expires_in_days: Option<i64>,
    pub recipients: Vec<RecipientInput>,
}

/// What an external recipient's link opens.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ExternalView {
    pub envelope: EnvelopeView,
    /// Which recipient the link is for.
    pub recipient: usize,
    /// Whether it is their turn now.
    pub may_sign: bool,
}

fn code_digest(token: &str, code: &str) -> Vec<u8> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(token.as_bytes());
    h.update(b"\0");
    h.update(code.trim().as_bytes());
    h.finalize().to_vec()
}

/// Wrong one-time codes a link accepts before it locks.
const MAX_CODE_TRIES: i64 = 5;

impl App {
    /// An employee sends a PDF for signature.
    pub async fn create_envelope(&self, caller: &Caller, pdf: Vec<u8>, input: EnvelopeInput) -> Result<EnvelopeView> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("envelopes are sent by employees".into()));
        }
        if pdf.len() > self.config.max_upload {
            return Err(AppError::TooLarge { limit: self.config.max_upload });
        }
        if !pdf.starts_with(b"%PDF-") {
            return Err(AppError::UnsupportedMedia("the document must be a PDF".into()));
        }
        let checked = pdf.clone();
        blocking(move || match guichet_pades::verify_pdf(&checked, &[], time::OffsetDateTime::now_utc()) {
            Ok(_) => Ok(()),
            Err(guichet_pades::Error::Encrypted) => Err(AppError::invalid(
                "encrypted_pdf",
                "this PDF is encrypted: remove the encryption before sending it for signature",
            )),
            Err(e) => Err(AppError::invalid("unreadable_pdf", format!("this PDF cannot be read: {e}"))),
        })
        .await?;
        let lang =
            input.lang.clone().unwrap_or_else(|| if caller.user.language == "en" { "en".into() } else { "fr".into() });
        let days = input.expires_in_days.unwrap_or(30);
        if !(1..=365).contains(&days) {
            return Err(AppError::invalid("invalid_envelope", "an envelope expires in 1 to 365 days"));
        }
        let mut recipients = Vec::with_capacity(input.recipients.len());
        for (i, r) in input.recipients.iter().enumerate() {
            let account = |kind: &'static str| async move {
                let u = self.store.user_by_email(&r.email).await?.filter(|u| u.active).ok_or_else(|| {
                    AppError::invalid(
                        "invalid_envelope",
                        format!("recipient {}: no active {kind} account for {:?}", i + 1, r.email),
                    )
                })?;
                Ok::<_, AppError>(u)
            };
            let (party, name, email) = match r.kind.as_str() {
                "employee" => {
                    let u = account("employee").await?;
                    if u.roles.iter().all(|x| x == "citizen") {
                        return Err(AppError::invalid(
                            "invalid_envelope",
                            format!("recipient {}: {:?} is not an employee", i + 1, r.email),
                        ));
                    }
                    (Party::Employee { user: UserId(u.id.clone()) }, u.name, u.email)
                }
                "citizen" => {
                    let u = account("citizen").await?;
                    (Party::Citizen { user: UserId(u.id.clone()) }, u.name, u.email)
                }
                "officer" => (Party::Officer, String::new(), r.email.trim().to_lowercase()),
                "external" => (Party::External, String::new(), r.email.trim().to_lowercase()),
                other => {
                    return Err(AppError::invalid(
                        "invalid_envelope",
                        format!("recipient {}: kind is employee, officer, citizen or external, not {other:?}", i + 1),
                    ));
                }
            };
            let name = r.name.clone().filter(|n| !n.trim().is_empty()).unwrap_or(name);
            let name = if name.is_empty() && party == Party::Officer {
                if lang == "en" { "Signing officer".to_owned() } else { "Signataire autorisé".to_owned() }
            } else {
                name
            };
            recipients.push(Recipient {
                name,
                email,
                party,
                group: r.group,
                field: r.field.map(|f| Field { page: f.page, rect: f.rect }),
            });
        }
        let now = self.now();
        let blob = self.store.put_blob(pdf, "application/pdf", now).await?;
        let sent = Envelope::send(
            NewEnvelope {
                title: input.title.trim().to_owned(),
                message: input.message.trim().to_owned(),
                lang,
                document_sha256: blob.sha256,
                recipients,
                expires_at: now + days * 86_400,
                dossier: None,
            },
            &UserId(caller.id().into()),
            now,
        )?;
        let envelope = Envelope::replay(std::slice::from_ref(&sent))?;
        let id = guichet_store::new_id("e_")?;
        let version = self
            .store
            .write_envelope(
                EnvelopeWrite {
                    id: id.clone(),
                    expected_version: 0,
                    events: vec![sent],
                    actor: Some(caller.id().into()),
                    after: envelope.clone(),
                    at: now,
                },
                None,
            )
            .await?;
        self.notify_turn(&id, &[], &envelope, now).await?;
        Ok(EnvelopeView::of(&id, version, &envelope, Some(caller)))
    }

    /// An external recipient's link: their envelope and place in it.
    async fn link(&self, token: &str) -> Result<(guichet_store::SigningLink, EnvelopeRow)> {
        let link = self.store.signing_link(token).await?.ok_or(AppError::NotFound)?;
        if link.expires_at <= self.now() {
            return Err(AppError::WrongState("this signing link has expired".into()));
        }
        let row = self.envelope_row(&link.envelope).await?;
        Ok((link, row))
    }

    pub async fn external_envelope(&self, token: &str) -> Result<ExternalView> {
        let (link, row) = self.link(token).await?;
        let e = &row.envelope;
        Ok(ExternalView {
            envelope: EnvelopeView::of(&row.id, row.version, e, None),
            recipient: link.index,
            may_sign: e.turn().contains(&link.index),
        })
    }

    pub async fn external_file(&self, token: &str) -> Result<Vec<u8>> {
        let (_, row) = self.link(token).await?;
        Ok(self.store.blob(&row.envelope.document).await?.1)
    }

    pub async fn external_page(&self, token: &str, index: usize) -> Result<String> {
        let pdf = self.external_file(token).await?;
        page_svg(pdf, index).await
    }

    /// How many pages the link's document has.
    pub async fn external_page_count(&self, token: &str) -> Result<usize> {
        let pdf = self.external_file(token).await?;
        page_count(pdf).await
    }

    /// The envelopes the caller sent, newest first.
    pub async fn envelopes_sent(&self, caller: &Caller) -> Result<Vec<EnvelopeView>> {
        Ok(self
            .store
            .envelopes_sent_by(caller.id(), 100)
            .await?
            .iter()
            .map(|r| EnvelopeView::of(&r.id, r.version, &r.envelope, Some(caller)))
            .collect())
    }

    /// Emails a one-time code to the link's recipient (one a minute).
    pub async fn send_signing_code(&self, token: &str) -> Result<()> {
        let (link, row) = self.link(token).await?;
        let now = self.now();
        row.envelope.may_act(link.index, now)?;
        if link.tries >= MAX_CODE_TRIES {
            return Err(AppError::Throttled { retry_after: 0 });
        }
        if link.code_expires.is_some_and(|x| x - 540 > now) {
            return Err(AppError::Throttled { retry_after: link.code_expires.unwrap_or(now) - 540 - now });
        }
        let mut b = [0u8; 4];
        aws_lc_rs::rand::fill(&mut b).map_err(|_| AppError::Internal("no randomness".into()))?;
        let code = format!("{:06}", u32::from_be_bytes(b) % 1_000_000);
        self.store.set_signing_code(token, &code_digest(token, &code), now + 600).await?;
        let r = &row.envelope.recipients[link.index];
        let (subject, body) = if row.envelope.lang == "en" {
            (
                format!("Your signing code: {code}"),
                format!("Your code to sign “{}”: {code}\nIt is valid for 10 minutes.\n", row.envelope.title),
            )
        } else {
            (
                format!("Votre code de signature : {code}"),
                format!("Votre code pour signer « {} » : {code}\nIl est valide 10 minutes.\n", row.envelope.title),
            )
        };
        self.store.queue_mail(&r.email, &subject, &body, now).await?;
        Ok(())
    }

    /// Signs as the link's external recipient, with the emailed code.
    pub async fn sign_external(&self, token: &str, code: &str, ctx: &SigningContext) -> Result<EnvelopeView> {
        let (link, row) = self.link(token).await?;
        let now = self.now();
        row.envelope.may_act(link.index, now)?;
        if link.tries >= MAX_CODE_TRIES {
            return Err(AppError::Throttled { retry_after: 0 });
        }
        let good = match (&link.code_hash, link.code_expires) {
            (Some(h), Some(x)) if x > now => {
                aws_lc_rs::constant_time::verify_slices_are_equal(h, &code_digest(token, code)).is_ok()
            }
            _ => false,
        };
        if !good {
            let tries = self.store.note_wrong_code(token).await?;
            return Err(if tries >= MAX_CODE_TRIES {
                AppError::Throttled { retry_after: 0 }
            } else {
                AppError::Invalid {
                    code: "wrong_code",
                    message: "wrong or expired code: ask for a new one".into(),
                    field: Some("code".into()),
                    details: None,
                }
            });
        }
        self.store.spend_signing_code(token).await?;
        self.sign_as(row, link.index, Who::External, None, ctx).await
    }

    /// Declines as the link's external recipient.
    pub async fn decline_external(&self, token: &str, reason: &str) -> Result<EnvelopeView> {
        let (link, row) = self.link(token).await?;
        let now = self.now();
        let ev = row.envelope.decline(link.index, reason, now)?;
        let (version, after) = self.write_events(&row, vec![ev], None, now).await?;
        self.notify_declined(&row, link.index, reason, now).await?;
        Ok(EnvelopeView::of(&row.id, version, &after, None))
    }
}
