//! Delivering the outbox over SMTP (lettre): every mail the use cases
//! wrote — verification links, signing invitations and one-time codes,
//! reminders, "completed", "declined" — is sent by this job, oldest first.
//! A mail is marked sent once the server accepted it; a failed try waits
//! 1, 2, 4… minutes (at most 6 hours) before the next, and after 8 tries
//! the mail stays in the outbox with its last error for an operator.
//! Each mail is claimed just before the SMTP transaction: a crash between
//! the server's acceptance and the mark leaves it claimed, shown as
//! "uncertain" in the dossier's delivery log, and it is not sent again by
//! itself (no duplicates; an operator decides). Its Message-ID is stable
//! (`<outbox-ID@domain>`), so a receiving server can also drop a copy.
//!
//! For the demo and tests, mail can go to a folder instead (one `.eml`
//! file per mail, the exact bytes SMTP would carry).

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::{App, AppError, Result};

/// Tries before a mail is left for an operator.
const MAX_ATTEMPTS: i64 = 8;

/// Where mail goes.
#[derive(Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    /// STARTTLS (required when true).
    pub starttls: bool,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `guichet <no-reply@example.org>`.
    pub from: String,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

/// An SMTP transport, ready.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
    /// The sender's domain, for Message-IDs.
    domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Mailer")
    }
}

impl Mailer {
    pub fn new(s: &SmtpSettings) -> Result<Mailer> {
        let from: Mailbox = s
            .from
            .parse()
            .map_err(|e| AppError::invalid("invalid_settings", format!("smtp_from {:?}: {e}", s.from)))?;
        let mut b = if s.starttls {
            AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&s.host)
                .map_err(|e| AppError::invalid("invalid_settings", format!("smtp_host {:?}: {e}", s.host)))?
        } else {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host)
        };
        b = b.port(s.port).timeout(Some(std::time::Duration::from_secs(20)));
        if let (Some(u), Some(p)) = (&s.username, &s.password) {
            b = b.credentials(Credentials::new(u.clone(), p.clone()));
        }
        let domain = from.email.domain().to_owned();
        Ok(Mailer { transport: Transport::Smtp(b.build()), from, domain })
    }

    /// Mail written as `.eml` files into `dir` (the demo's mailbox).
    pub fn to_folder(dir: std::path::PathBuf, from: &str) -> Result<Mailer> {
        let from: Mailbox =
            from.parse().map_err(|e| AppError::invalid("invalid_settings", format!("mail sender {from:?}: {e}")))?;
        std::fs::create_dir_all(&dir).map_err(|e| AppError::Internal(format!("{}: {e}", dir.display())))?;
        let domain = from.email.domain().to_owned();
        Ok(Mailer { transport: Transport::Folder(dir), from, domain })
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(std::path::PathBuf),
}

impl Transport {
    async fn send(&self, id: i64, msg: Message) -> std::result::Result<(), String> {
        match self {
            Transport::Smtp(t) => t.send(msg).await.map(|_| ()).map_err(|e| e.to_string()),
            Transport::Folder(dir) => {
                // Written whole, then renamed: a reader never sees half a mail.
                let path = dir.join(format!("{id:08}.eml"));
                let tmp = dir.join(format!(".{id:08}.tmp"));
                tokio::fs::write(&tmp, msg.formatted()).await.map_err(|e| e.to_string())?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| e.to_string())
            }
        }
    }
}

impl App {
    /// Sends the mails due; returns (sent, failed).
    pub async fn deliver_mails(&self, mailer: &Mailer) -> Result<(usize, usize)> {
        let now = self.now();
        let (mut sent, mut failed) = (0, 0);
        for m in self.store.mails_due(now, MAX_ATTEMPTS, 200).await? {
            let message = m.to.parse::<Mailbox>().map_err(|e| e.to_string()).and_then(|to| {
                Message::builder()
                    .from(mailer.from.clone())
                    .to(to)
                    .subject(m.subject.clone())
                    .message_id(Some(format!("<outbox-{}@{}>", m.id, mailer.domain)))
                    .header(ContentType::TEXT_PLAIN)
                    .body(m.body.clone())
                    .map_err(|e| e.to_string())
            });
            // Claimed first: a crash after the SMTP server accepted the mail
            // and before it is marked sent must not send it twice.
            if !self.store.claim_mail(m.id, self.now()).await? {
                continue;
            }
            let result = match message {
                Ok(msg) => mailer.transport.send(m.id, msg).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    self.store.mail_sent(m.id, self.now()).await?;
                    sent += 1;
                }
                Err(e) => {
                    let wait = (60i64 << m.attempts.clamp(0, 9)).min(6 * 3600);
                    tracing::warn!(mail = m.id, error = %e, "mail not delivered");
                    self.store.mail_failed(m.id, &e, now + wait).await?;
                    failed += 1;
                }
            }
        }
        Ok((sent, failed))
    }
}
