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
//! Mail goes out over a few connections at once (LANES), each kept open
//! for many messages: opening an SMTP connection costs far more than a
//! message on an open one.
//!
//! For the demo and tests, mail can go to a folder instead (one `.eml`
//! file per mail, the exact bytes SMTP would carry).

use guichet_store::OutgoingMail;
use lettre::Message;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;

use crate::{App, AppError, Result};

/// Tries before a mail is left for an operator.
const MAX_ATTEMPTS: i64 = 8;

/// SMTP connections at once, each carrying many messages.
const LANES: usize = 4;

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
#[derive(Clone)]
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
        let tls = if s.starttls {
            Some(
                TlsParameters::new(s.host.clone())
                    .map_err(|e| AppError::invalid("invalid_settings", format!("smtp_host {:?}: {e}", s.host)))?,
            )
        } else {
            None
        };
        let credentials = match (&s.username, &s.password) {
            (Some(u), Some(p)) => Some(Credentials::new(u.clone(), p.clone())),
            _ => None,
        };
        let domain = from.email.domain().to_owned();
        let smtp = Smtp { host: s.host.clone(), port: s.port, tls, credentials };
        Ok(Mailer { transport: Transport::Smtp(std::sync::Arc::new(smtp)), from, domain })
    }

    /// Mail written as `.eml` files into `dir` (the demo's mailbox).
    pub fn to_folder(dir: std::path::PathBuf, from: &str) -> Result<Mailer> {
        let from: Mailbox =
            from.parse().map_err(|e| AppError::invalid("invalid_settings", format!("mail sender {from:?}: {e}")))?;
        std::fs::create_dir_all(&dir).map_err(|e| AppError::Internal(format!("{}: {e}", dir.display())))?;
        let domain = from.email.domain().to_owned();
        Ok(Mailer { transport: Transport::Folder(dir), from, domain })
    }

    fn message(&self, m: &OutgoingMail) -> std::result::Result<Message, String> {
        let to = m.to.parse::<Mailbox>().map_err(|e| e.to_string())?;
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<outbox-{}@{}>", m.id, self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone())
            .map_err(|e| e.to_string())
    }
}

struct Smtp {
    host: String,
    port: u16,
    /// STARTTLS, required, with these parameters.
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
}

impl Smtp {
    async fn connect(&self) -> std::result::Result<AsyncSmtpConnection, String> {
        let hello = ClientId::default();
        let timeout = std::time::Duration::from_secs(20);
        // Our own socket, with Nagle's algorithm off: SMTP is a dialogue of
        // small writes, and each would otherwise wait for the peer's
        // delayed ACK (40 ms a message on loopback).
        let tcp = tokio::time::timeout(timeout, tokio::net::TcpStream::connect((self.host.as_str(), self.port)))
            .await
            .map_err(|_| format!("{}:{}: connection timed out", self.host, self.port))?
            .map_err(|e| format!("{}:{}: {e}", self.host, self.port))?;
        tcp.set_nodelay(true).map_err(|e| e.to_string())?;
        let mut c =
            AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &hello).await.map_err(|e| e.to_string())?;
        if let Some(tls) = &self.tls {
            c.starttls(tls.clone(), &hello).await.map_err(|e| e.to_string())?;
        }
        if let Some(cr) = &self.credentials {
            c.auth(&[Mechanism::Plain, Mechanism::Login], cr).await.map_err(|e| e.to_string())?;
        }
        Ok(c)
    }
}

#[derive(Clone)]
enum Transport {
    Smtp(std::sync::Arc<Smtp>),
    Folder(std::path::PathBuf),
}

/// One lane's connection, opened on first use and again after a failure.
struct Lane {
    transport: Transport,
    conn: Option<AsyncSmtpConnection>,
}

impl Lane {
    async fn send(&mut self, id: i64, msg: Message) -> std::result::Result<(), String> {
        match &self.transport {
            Transport::Smtp(smtp) => {
                if self.conn.as_ref().is_none_or(|c| c.has_broken()) {
                    self.conn = Some(smtp.connect().await?);
                }
                let Some(conn) = self.conn.as_mut() else { return Err("no connection".into()) };
                let r = match tokio::time::timeout(
                    std::time::Duration::from_secs(60),
                    conn.send(msg.envelope(), &msg.formatted()),
                )
                .await
                {
                    Ok(r) => r.map(|_| ()).map_err(|e| e.to_string()),
                    Err(_) => Err("the SMTP server did not answer within 60 s".into()),
                };
                if r.is_err() {
                    // A failed transaction may leave the connection unusable.
                    if let Some(mut c) = self.conn.take() {
                        c.abort().await;
                    }
                }
                r
            }
            Transport::Folder(dir) => {
                // Written whole, then renamed: a reader never sees half a mail.
                let path = dir.join(format!("{id:08}.eml"));
                let tmp = dir.join(format!(".{id:08}.tmp"));
                tokio::fs::write(&tmp, msg.formatted()).await.map_err(|e| e.to_string())?;
                tokio::fs::rename(&tmp, &path).await.map_err(|e| e.to_string())
            }
        }
    }

    async fn close(&mut self) {
        if let Some(mut c) = self.conn.take() {
            let _ = c.quit().await;
        }
    }
}

impl App {
    /// Sends the mails due; returns (sent, failed).
    pub async fn deliver_mails(&self, mailer: &Mailer) -> Result<(usize, usize)> {
        let now = self.now();
        let due = self.store.mails_due(now, MAX_ATTEMPTS, 400).await?;
        let lanes = LANES.min(due.len().div_ceil(20)).max(1);
        let mut work: Vec<Vec<OutgoingMail>> = vec![Vec::new(); lanes];
        for (i, m) in due.into_iter().enumerate() {
            work[i % lanes].push(m);
        }
        let mut set = tokio::task::JoinSet::new();
        for mails in work {
            let (app, mailer) = (self.clone(), mailer.clone());
            set.spawn(async move { app.deliver_lane(&mailer, mails, now).await });
        }
        let (mut sent, mut failed) = (0, 0);
        while let Some(done) = set.join_next().await {
            let (s, f) = done.map_err(|e| AppError::Internal(e.to_string()))??;
            sent += s;
            failed += f;
        }
        Ok((sent, failed))
    }

    /// One connection's share, in order.
    async fn deliver_lane(&self, mailer: &Mailer, mails: Vec<OutgoingMail>, now: i64) -> Result<(usize, usize)> {
        let mut lane = Lane { transport: mailer.transport.clone(), conn: None };
        let (mut sent, mut failed) = (0, 0);
        // The mail the server accepted last, marked sent with the next claim.
        let mut accepted: Option<i64> = None;
        for m in mails {
            let message = mailer.message(&m);
            // Claimed just before it is handed over: a crash after the SMTP
            // server accepted the mail and before it is marked sent must not
            // send it twice (at most one mail per lane is ever in that state).
            let previous = accepted.take();
            match self.store.mail_sent_then_claim(previous, m.id, self.now()).await {
                Ok(true) => {}
                Ok(false) => continue,
                Err(e) => {
                    // The server took the previous mail: mark it on its own.
                    if let Some(id) = previous {
                        self.store.mail_sent(id, self.now()).await?;
                    }
                    return Err(e.into());
                }
            }
            let result = match message {
                Ok(msg) => lane.send(m.id, msg).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    accepted = Some(m.id);
                    sent += 1;
                }
                Err(e) => {
                    let wait = (60i64 << m.attempts.clamp(0, 9)).min(6 * 3600);
                    // The server's answer often repeats the address: it is
                    // kept sealed with the mail, not logged.
                    tracing::warn!(mail = m.id, attempts = m.attempts + 1, "mail not delivered");
                    self.store.mail_failed(m.id, &e, now + wait).await?;
                    failed += 1;
                }
            }
        }
        if let Some(id) = accepted {
            self.store.mail_sent(id, self.now()).await?;
        }
        lane.close().await;
        Ok((sent, failed))
    }
}
