//! An envelope: one document, the people who must sign it, and in which
//! order. Recipients are placed in numbered groups: groups sign one after
//! the other, the members of a group in parallel (any order). Like a
//! dossier, an envelope is a state machine whose events are the truth;
//! the document itself lives in the blob store, named by its SHA-256,
//! and each signature names the document it produced.
//!
//! sent → (viewed, signed …) → completed | declined | voided | expired

use serde::{Deserialize, Serialize};

use crate::{Actor, Role, Timestamp, UserId};

/// Who a recipient is, which decides how they prove it when signing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Party {
    /// An employee named in advance: signs with their personal certificate.
    Employee { user: UserId },
    /// Any employee holding the signing-officer role (the first to sign
    /// is recorded): signs with their personal certificate.
    Officer,
    /// A citizen with an account (an aid applicant): signs in their
    /// session; the organization's seal certifies the evidence.
    Citizen { user: UserId },
    /// Someone outside, known by email: proves it with a one-time code;
    /// the organization's seal certifies the evidence.
    External,
}

impl Party {
    /// Whether this party signs with a personal certificate.
    pub fn personal(&self) -> bool {
        matches!(self, Party::Employee { .. } | Party::Officer)
    }
}

/// One recipient as the sender placed them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    pub name: String,
    pub email: String,
    pub party: Party,
    /// Signing order: every recipient of group n signs before group n+1.
    pub group: u32,
    /// Where their visible signature goes; invisible when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<Field>,
}

/// A visible signature's place: a page (from 1; 0 for the last page) and
/// a rectangle `[x, y, width, height]` in points from the bottom left.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub page: u32,
    pub rect: [i32; 4],
}

/// Where a recipient stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Standing {
    Waiting,
    Signed {
        at: Timestamp,
        by: Option<UserId>,
        certificate: String,
    },
    Declined {
        at: Timestamp,
        reason: String,
    },
    /// Handed to another recipient (appended at the end, same group).
    Delegated {
        at: Timestamp,
        to: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvelopeState {
    Sent,
    Completed,
    Declined,
    Voided,
    Expired,
}

impl EnvelopeState {
    pub fn as_str(self) -> &'static str {
        match self {
            EnvelopeState::Sent => "sent",
            EnvelopeState::Completed => "completed",
            EnvelopeState::Declined => "declined",
            EnvelopeState::Voided => "voided",
            EnvelopeState::Expired => "expired",
        }
    }
}

/// How the signer proved who they were, kept with their signature.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// `certificate` (a personal certificate and its passphrase),
    /// `session` (a signed-in account), `email_code` (a one-time code
    /// sent to the address).
    pub method: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EnvelopeEvent {
    Sent {
        title: String,
        message: String,
        /// The document's language (`fr`, `en`): the certificate of
        /// completion's and the notifications'.
        #[serde(default = "french")]
        lang: String,
        document_sha256: String,
        recipients: Vec<Recipient>,
        expires_at: Timestamp,
        /// The dossier whose agreement this is, if any.
        dossier: Option<String>,
        by: UserId,
        at: Timestamp,
    },
    Viewed {
        recipient: usize,
        at: Timestamp,
    },
    Signed {
        recipient: usize,
        /// The account that signed (none for an external recipient).
        by: Option<UserId>,
        /// Subject and serial of the certificate that made the PAdES
        /// signature (the personal one, or the organization's seal).
        certificate: String,
        evidence: Evidence,
        /// The document after this signature.
        document_sha256: String,
        at: Timestamp,
    },
    Declined {
        recipient: usize,
        reason: String,
        at: Timestamp,
    },
    Delegated {
        recipient: usize,
        to: Recipient,
        at: Timestamp,
    },
    Reminded {
        recipient: usize,
        at: Timestamp,
    },
    Voided {
        reason: String,
        by: UserId,
        at: Timestamp,
    },
    Expired {
        at: Timestamp,
    },
    /// Every signature made: the final document (with its validation
    /// data and document timestamp) and the certificate of completion.
    Completed {
        document_sha256: String,
        completion_sha256: String,
        at: Timestamp,
    },
}

fn french() -> String {
    "fr".into()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("this envelope is {}: nothing more can be done with it", .0.as_str())]
    Closed(EnvelopeState),
    #[error("this envelope expired")]
    Expired,
    #[error("there is no recipient {0}")]
    NoRecipient(usize),
    #[error("this recipient has already acted")]
    AlreadyActed,
    #[error("it is not this recipient's turn: earlier signers have not all signed")]
    NotYourTurn,
    #[error("you are not this recipient")]
    NotYou,
    #[error("{0}")]
    Invalid(String),
    #[error("the event log is inconsistent at event {index}")]
    Corrupt { index: usize },
}

/// An envelope, rebuilt from its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    pub title: String,
    pub message: String,
    pub lang: String,
    pub state: EnvelopeState,
    /// The document as sent.
    pub original: String,
    /// The document now (after the latest signature).
    pub document: String,
    pub recipients: Vec<Recipient>,
    pub standing: Vec<Standing>,
    pub viewed: Vec<bool>,
    pub expires_at: Timestamp,
    pub dossier: Option<String>,
    pub sender: UserId,
    pub sent_at: Timestamp,
    pub completed_at: Option<Timestamp>,
    pub completion: Option<String>,
}

/// What the sender asks for.
#[derive(Debug, Clone)]
pub struct NewEnvelope {
    pub title: String,
    pub message: String,
    pub lang: String,
    pub document_sha256: String,
    pub recipients: Vec<Recipient>,
    pub expires_at: Timestamp,
    pub dossier: Option<String>,
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn check_recipient(r: &Recipient) -> Result<(), EnvelopeError> {
    if r.name.trim().is_empty() {
        return Err(EnvelopeError::Invalid("every recipient needs a name".into()));
    }
    // Any signing officer may sign: no one address to name.
    if !(r.party == Party::Officer && r.email.is_empty()) {
        crate::Email::parse(&r.email).map_err(|e| EnvelopeError::Invalid(e.to_string()))?;
    }
    if r.field.is_some_and(|f| f.rect[2] <= 0 || f.rect[3] <= 0) {
        return Err(EnvelopeError::Invalid("a signature field has a width and a height".into()));
    }
    Ok(())
}

impl Envelope {
    /// The event that sends a new envelope.
    pub fn send(n: NewEnvelope, by: &UserId, at: Timestamp) -> Result<EnvelopeEvent, EnvelopeError> {
        if n.title.trim().is_empty() {
            return Err(EnvelopeError::Invalid("the envelope needs a title".into()));
        }
        if !is_sha256(&n.document_sha256) {
            return Err(EnvelopeError::Invalid("the document is named by its SHA-256".into()));
        }
        if n.recipients.is_empty() {
            return Err(EnvelopeError::Invalid("an envelope needs at least one signer".into()));
        }
        if n.recipients.len() > 50 {
            return Err(EnvelopeError::Invalid("an envelope has at most 50 signers".into()));
        }
        for r in &n.recipients {
            check_recipient(r)?;
        }
        if n.expires_at <= at {
            return Err(EnvelopeError::Invalid("the expiry date must be in the future".into()));
        }
        if !matches!(n.lang.as_str(), "fr" | "en") {
            return Err(EnvelopeError::Invalid("the document's language is fr or en".into()));
        }
        Ok(EnvelopeEvent::Sent {
            title: n.title,
            message: n.message,
            lang: n.lang,
            document_sha256: n.document_sha256,
            recipients: n.recipients,
            expires_at: n.expires_at,
            dossier: n.dossier,
            by: by.clone(),
            at,
        })
    }

    /// Rebuilds an envelope, refusing a log commands could not have made.
    pub fn replay(events: &[EnvelopeEvent]) -> Result<Envelope, EnvelopeError> {
        let mut it = events.iter().enumerate();
        let mut e = match it.next() {
            Some((
                _,
                EnvelopeEvent::Sent { title, message, lang, document_sha256, recipients, expires_at, dossier, by, at },
            )) => Envelope {
                title: title.clone(),
                message: message.clone(),
                lang: lang.clone(),
                state: EnvelopeState::Sent,
                original: document_sha256.clone(),
                document: document_sha256.clone(),
                recipients: recipients.clone(),
                standing: vec![Standing::Waiting; recipients.len()],
                viewed: vec![false; recipients.len()],
                expires_at: *expires_at,
                dossier: dossier.clone(),
                sender: by.clone(),
                sent_at: *at,
                completed_at: None,
                completion: None,
            },
            _ => return Err(EnvelopeError::Corrupt { index: 0 }),
        };
        for (i, ev) in it {
            e.apply(ev).map_err(|_| EnvelopeError::Corrupt { index: i })?;
        }
        Ok(e)
    }

    /// The envelope after `events` (already checked by the commands).
    pub fn after(&self, events: &[EnvelopeEvent]) -> Result<Envelope, EnvelopeError> {
        let mut e = self.clone();
        for (i, ev) in events.iter().enumerate() {
            e.apply(ev).map_err(|_| EnvelopeError::Corrupt { index: i })?;
        }
        Ok(e)
    }

    fn apply(&mut self, ev: &EnvelopeEvent) -> Result<(), EnvelopeError> {
        use EnvelopeEvent as E;
        match ev {
            E::Sent { .. } => return Err(EnvelopeError::Invalid("sent twice".into())),
            E::Viewed { recipient, .. } => {
                *self.viewed.get_mut(*recipient).ok_or(EnvelopeError::NoRecipient(*recipient))? = true;
            }
            E::Signed { recipient, by, certificate, document_sha256, at, .. } => {
                self.open()?;
                self.check_turn(*recipient)?;
                self.standing[*recipient] =
                    Standing::Signed { at: *at, by: by.clone(), certificate: certificate.clone() };
                self.document = document_sha256.clone();
            }
            E::Declined { recipient, reason, at } => {
                self.open()?;
                self.check_turn(*recipient)?;
                self.standing[*recipient] = Standing::Declined { at: *at, reason: reason.clone() };
                self.state = EnvelopeState::Declined;
            }
            E::Delegated { recipient, to, at } => {
                self.open()?;
                self.check_turn(*recipient)?;
                let n = self.recipients.len();
                self.standing[*recipient] = Standing::Delegated { at: *at, to: n };
                self.recipients.push(to.clone());
                self.standing.push(Standing::Waiting);
                self.viewed.push(false);
            }
            E::Reminded { recipient, .. } => {
                self.open()?;
                if *recipient >= self.recipients.len() {
                    return Err(EnvelopeError::NoRecipient(*recipient));
                }
            }
            E::Voided { .. } => {
                self.open()?;
                self.state = EnvelopeState::Voided;
            }
            E::Expired { .. } => {
                self.open()?;
                self.state = EnvelopeState::Expired;
            }
            E::Completed { document_sha256, completion_sha256, at } => {
                self.open()?;
                if !self.all_signed() {
                    return Err(EnvelopeError::Invalid("not every recipient has signed".into()));
                }
                self.document = document_sha256.clone();
                self.completion = Some(completion_sha256.clone());
                self.completed_at = Some(*at);
                self.state = EnvelopeState::Completed;
            }
        }
        Ok(())
    }

    fn open(&self) -> Result<(), EnvelopeError> {
        if self.state == EnvelopeState::Sent { Ok(()) } else { Err(EnvelopeError::Closed(self.state)) }
    }

    /// The group whose members may sign now: the lowest one with someone
    /// still waiting.
    pub fn current_group(&self) -> Option<u32> {
        self.recipients
            .iter()
            .zip(&self.standing)
            .filter(|(_, s)| matches!(s, Standing::Waiting))
            .map(|(r, _)| r.group)
            .min()
    }

    /// Whether every recipient signed (a delegated one counts through
    /// the one they delegated to).
    pub fn all_signed(&self) -> bool {
        self.standing.iter().all(|s| matches!(s, Standing::Signed { .. } | Standing::Delegated { .. }))
    }

    /// The recipients who may act now.
    pub fn turn(&self) -> Vec<usize> {
        if self.state != EnvelopeState::Sent {
            return Vec::new();
        }
        let Some(g) = self.current_group() else { return Vec::new() };
        (0..self.recipients.len())
            .filter(|&i| self.recipients[i].group == g && matches!(self.standing[i], Standing::Waiting))
            .collect()
    }

    fn check_turn(&self, recipient: usize) -> Result<(), EnvelopeError> {
        let r = self.recipients.get(recipient).ok_or(EnvelopeError::NoRecipient(recipient))?;
        if !matches!(self.standing[recipient], Standing::Waiting) {
            return Err(EnvelopeError::AlreadyActed);
        }
        if Some(r.group) != self.current_group() {
            return Err(EnvelopeError::NotYourTurn);
        }
        Ok(())
    }

    /// Whether `actor` (signed in) is recipient `i`. External recipients
    /// prove themselves with a one-time code instead: never through an
    /// account.
    pub fn is_recipient(&self, i: usize, actor: &Actor) -> bool {
        match self.recipients.get(i).map(|r| &r.party) {
            Some(Party::Employee { user } | Party::Citizen { user }) => *user == actor.user,
            Some(Party::Officer) => actor.roles.contains(&Role::SigningOfficer),
            Some(Party::External) | None => false,
        }
    }

    /// Checks that recipient `i` may act now, at `at`.
    pub fn may_act(&self, i: usize, at: Timestamp) -> Result<(), EnvelopeError> {
        self.open()?;
        if at >= self.expires_at {
            return Err(EnvelopeError::Expired);
        }
        self.check_turn(i)
    }

    /// The events of recipient `i` signing (the caller made the PAdES
    /// signature that produced `document_sha256`).
    pub fn sign(
        &self,
        i: usize,
        by: Option<UserId>,
        certificate: String,
        evidence: Evidence,
        document_sha256: String,
        at: Timestamp,
    ) -> Result<EnvelopeEvent, EnvelopeError> {
        self.may_act(i, at)?;
        if !is_sha256(&document_sha256) {
            return Err(EnvelopeError::Invalid("the document is named by its SHA-256".into()));
        }
        if self.recipients[i].party.personal() && evidence.method != "certificate" {
            return Err(EnvelopeError::Invalid("an employee signs with their personal certificate".into()));
        }
        Ok(EnvelopeEvent::Signed { recipient: i, by, certificate, evidence, document_sha256, at })
    }

    pub fn decline(&self, i: usize, reason: &str, at: Timestamp) -> Result<EnvelopeEvent, EnvelopeError> {
        self.may_act(i, at)?;
        if reason.trim().is_empty() {
            return Err(EnvelopeError::Invalid("say why you decline".into()));
        }
        Ok(EnvelopeEvent::Declined { recipient: i, reason: reason.trim().to_owned(), at })
    }

    /// An employee hands their signature to another employee.
    pub fn delegate(&self, i: usize, to: Recipient, at: Timestamp) -> Result<EnvelopeEvent, EnvelopeError> {
        self.may_act(i, at)?;
        if !matches!(self.recipients[i].party, Party::Employee { .. } | Party::Officer) {
            return Err(EnvelopeError::Invalid("only employees may delegate their signature".into()));
        }
        if !matches!(to.party, Party::Employee { .. }) {
            return Err(EnvelopeError::Invalid("a signature is delegated to another employee".into()));
        }
        check_recipient(&to)?;
        Ok(EnvelopeEvent::Delegated { recipient: i, to: Recipient { group: self.recipients[i].group, ..to }, at })
    }

    pub fn void(&self, reason: &str, by: &UserId, at: Timestamp) -> Result<EnvelopeEvent, EnvelopeError> {
        self.open()?;
        if reason.trim().is_empty() {
            return Err(EnvelopeError::Invalid("say why the envelope is voided".into()));
        }
        Ok(EnvelopeEvent::Voided { reason: reason.trim().to_owned(), by: by.clone(), at })
    }

    pub fn complete(
        &self,
        document_sha256: String,
        completion_sha256: String,
        at: Timestamp,
    ) -> Result<EnvelopeEvent, EnvelopeError> {
        self.open()?;
        if !self.all_signed() {
            return Err(EnvelopeError::Invalid("not every recipient has signed".into()));
        }
        Ok(EnvelopeEvent::Completed { document_sha256, completion_sha256, at })
    }

    /// The expiry event, when it is due.
    pub fn expire(&self, at: Timestamp) -> Option<EnvelopeEvent> {
        (self.state == EnvelopeState::Sent && at >= self.expires_at).then_some(EnvelopeEvent::Expired { at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    fn sha(n: u8) -> String {
        format!("{n:064x}")
    }
    fn person(name: &str, party: Party, group: u32) -> Recipient {
        Recipient {
            name: name.into(),
            email: format!("{}@example.org", name.to_lowercase()),
            party,
            group,
            field: None,
        }
    }
    fn u(s: &str) -> UserId {
        UserId(s.into())
    }
    fn ev(method: &str) -> Evidence {
        Evidence { method: method.into(), ip: None, user_agent: None }
    }

    /// Five signers in two parallel groups: A, B, C (group 1) then D, E (group 2).
    fn five() -> Envelope {
        let sent = Envelope::send(
            NewEnvelope {
                title: "Contrat".into(),
                message: String::new(),
                lang: "fr".into(),
                document_sha256: DOC.into(),
                recipients: vec![
                    person("A", Party::Employee { user: u("a") }, 1),
                    person("B", Party::External, 1),
                    person("C", Party::Citizen { user: u("c") }, 1),
                    person("D", Party::Officer, 2),
                    person("E", Party::Employee { user: u("e") }, 2),
                ],
                expires_at: 1_000,
                dossier: None,
            },
            &u("sender"),
            10,
        )
        .expect("send");
        Envelope::replay(&[sent]).expect("replay")
    }

    #[test]
    fn groups_sign_in_order_and_members_in_any_order() {
        let mut e = five();
        assert_eq!(e.turn(), vec![0, 1, 2]);
        assert_eq!(e.sign(3, None, "x".into(), ev("certificate"), sha(9), 20), Err(EnvelopeError::NotYourTurn));
        let mut log = vec![];
        for (n, (i, m)) in [(2, "session"), (0, "certificate"), (1, "email_code")].into_iter().enumerate() {
            let s = e.sign(i, None, "cert".into(), ev(m), sha(n as u8 + 1), 20 + n as i64).expect("sign");
            e = e.after(std::slice::from_ref(&s)).expect("apply");
            log.push(s);
        }
        assert_eq!(e.turn(), vec![3, 4]);
        assert_eq!(e.document, sha(3));
        assert!(!e.all_signed());
        assert!(e.complete(sha(9), sha(10), 30).is_err(), "not before everyone signed");
        for (i, n) in [(4, 4u8), (3, 5)] {
            let s = e.sign(i, Some(u("x")), "cert".into(), ev("certificate"), sha(n), 40).expect("sign");
            e = e.after(std::slice::from_ref(&s)).expect("apply");
        }
        assert!(e.all_signed());
        assert!(e.turn().is_empty());
        let c = e.complete(sha(20), sha(21), 50).expect("complete");
        let done = e.after(&[c]).expect("apply");
        assert_eq!(done.state, EnvelopeState::Completed);
        assert_eq!(
            done.sign(0, None, "x".into(), ev("certificate"), sha(1), 60),
            Err(EnvelopeError::Closed(EnvelopeState::Completed))
        );
    }

    #[test]
    fn employees_sign_with_their_certificate_only() {
        let e = five();
        assert!(e.sign(0, Some(u("a")), "c".into(), ev("session"), sha(1), 20).is_err());
        assert!(e.sign(2, Some(u("c")), "c".into(), ev("session"), sha(1), 20).is_ok());
    }

    #[test]
    fn who_is_a_recipient() {
        let e = five();
        let a = Actor { user: u("a"), roles: vec![Role::CaseWorker] };
        let officer = Actor { user: u("z"), roles: vec![Role::SigningOfficer] };
        let c = Actor { user: u("c"), roles: vec![Role::Citizen] };
        assert!(e.is_recipient(0, &a));
        assert!(!e.is_recipient(0, &officer));
        assert!(e.is_recipient(3, &officer));
        assert!(!e.is_recipient(3, &a));
        assert!(e.is_recipient(2, &c));
        assert!(!e.is_recipient(1, &c), "an external recipient is never an account");
        assert!(!e.is_recipient(99, &c));
    }

    #[test]
    fn declining_ends_the_envelope_and_signing_twice_is_refused() {
        let e = five();
        let s = e.sign(0, None, "c".into(), ev("certificate"), sha(1), 20).expect("sign");
        let e = e.after(&[s]).expect("apply");
        assert_eq!(e.sign(0, None, "c".into(), ev("certificate"), sha(2), 21), Err(EnvelopeError::AlreadyActed));
        assert!(e.decline(1, "  ", 22).is_err(), "a reason is needed");
        let d = e.decline(1, "Le montant est faux", 22).expect("decline");
        let e = e.after(&[d]).expect("apply");
        assert_eq!(e.state, EnvelopeState::Declined);
        assert!(e.turn().is_empty());
        assert_eq!(e.void("x", &u("sender"), 23), Err(EnvelopeError::Closed(EnvelopeState::Declined)));
    }

    #[test]
    fn delegation_passes_the_turn_to_another_employee_in_the_same_group() {
        let e = five();
        assert!(e.delegate(1, person("F", Party::Employee { user: u("f") }, 1), 20).is_err(), "external");
        assert!(e.delegate(0, person("F", Party::External, 1), 20).is_err(), "to an employee only");
        let d = e.delegate(0, person("F", Party::Employee { user: u("f") }, 7), 20).expect("delegate");
        let e = e.after(&[d]).expect("apply");
        assert_eq!(e.recipients[5].group, 1, "keeps the delegator's place");
        assert_eq!(e.turn(), vec![1, 2, 5]);
    }

    #[test]
    fn expiry_and_voiding() {
        let e = five();
        assert_eq!(e.sign(0, None, "c".into(), ev("certificate"), sha(1), 1_000), Err(EnvelopeError::Expired));
        assert!(e.expire(999).is_none());
        let x = e.expire(1_000).expect("due");
        assert_eq!(e.after(&[x]).expect("apply").state, EnvelopeState::Expired);
        let v = e.void("Erreur de destinataire", &u("sender"), 30).expect("void");
        assert_eq!(e.after(&[v]).expect("apply").state, EnvelopeState::Voided);
    }

    #[test]
    fn a_forged_log_is_refused() {
        let e = five();
        let sent = Envelope::send(
            NewEnvelope {
                title: e.title.clone(),
                message: String::new(),
                lang: "fr".into(),
                document_sha256: DOC.into(),
                recipients: e.recipients.clone(),
                expires_at: 1_000,
                dossier: None,
            },
            &u("sender"),
            10,
        )
        .expect("send");
        // D (group 2) signing before group 1: no command makes this.
        let forged = EnvelopeEvent::Signed {
            recipient: 3,
            by: None,
            certificate: "c".into(),
            evidence: ev("certificate"),
            document_sha256: sha(1),
            at: 20,
        };
        assert_eq!(Envelope::replay(&[sent, forged]), Err(EnvelopeError::Corrupt { index: 1 }));
    }

    #[test]
    fn bad_envelopes_are_refused() {
        let ok = NewEnvelope {
            title: "T".into(),
            message: String::new(),
            lang: "fr".into(),
            document_sha256: DOC.into(),
            recipients: vec![person("A", Party::External, 1)],
            expires_at: 100,
            dossier: None,
        };
        assert!(Envelope::send(ok.clone(), &u("s"), 10).is_ok());
        assert!(Envelope::send(NewEnvelope { recipients: vec![], ..ok.clone() }, &u("s"), 10).is_err());
        assert!(Envelope::send(NewEnvelope { expires_at: 5, ..ok.clone() }, &u("s"), 10).is_err());
        assert!(Envelope::send(NewEnvelope { document_sha256: "abc".into(), ..ok.clone() }, &u("s"), 10).is_err());
        let bad_mail = vec![Recipient { email: "pas une adresse".into(), ..person("A", Party::External, 1) }];
        assert!(Envelope::send(NewEnvelope { recipients: bad_mail, ..ok.clone() }, &u("s"), 10).is_err());
        assert!(Envelope::send(NewEnvelope { lang: "de".into(), ..ok.clone() }, &u("s"), 10).is_err());
        let officer = vec![Recipient { email: String::new(), ..person("Officer", Party::Officer, 1) }];
        assert!(Envelope::send(NewEnvelope { recipients: officer, ..ok.clone() }, &u("s"), 10).is_ok(), "any officer");
        let flat =
            vec![Recipient { field: Some(Field { page: 1, rect: [0, 0, 0, 10] }), ..person("A", Party::External, 1) }];
        assert!(Envelope::send(NewEnvelope { recipients: flat, ..ok }, &u("s"), 10).is_err());
    }
}
