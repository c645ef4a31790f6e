//! Signatures: the organization's PKI material (sealed), employees'
//! certificates (their private keys sealed twice: under the employee's
//! passphrase by the service, then under the data key here), and
//! envelopes (events hash-chained like a dossier's, a sealed snapshot,
//! and one row per recipient saying whose turn it is).

use guichet_core::{Envelope, EnvelopeEvent, Party};
use serde::Serialize;

use crate::audit::append_event;
use crate::writer::apply_append;
use crate::{NewEvents, Result, Store, StoreError, on};

/// An employee's certificate as stored.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateRow {
    /// Hex of the certificate's serial number.
    pub serial: String,
    pub user_id: String,
    pub subject: String,
    #[serde(skip)]
    pub certificate: Vec<u8>,
    /// The private key, still sealed under the employee's passphrase.
    #[serde(skip)]
    pub private_key: Option<Vec<u8>>,
    /// For a certificate imported from another CA: its issuers (DER), to
    /// put in signatures; `None` for the organization's own CA.
    #[serde(skip)]
    pub chain: Option<Vec<Vec<u8>>>,
    /// For a key on the server's PKCS#11 module: `token label` and `key
    /// label` (the PIN is the employee's, typed to sign).
    #[serde(skip)]
    pub token: Option<(String, String)>,
    pub not_after: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
}

/// An envelope as stored.
#[derive(Debug, Clone)]
pub struct EnvelopeRow {
    pub id: String,
    pub sender: String,
    pub dossier: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub envelope: Envelope,
}

/// A write to one envelope: its events and the state they lead to,
/// optionally with a dossier's events in the same transaction (an
/// agreement sent or signed).
#[derive(Debug)]
pub struct EnvelopeWrite {
    pub id: String,
    /// 0 when sending.
    pub expected_version: i64,
    pub events: Vec<EnvelopeEvent>,
    pub actor: Option<String>,
    pub after: Envelope,
    pub at: i64,
}

/// One row per recipient of an envelope (whose turn it is), inside the
/// caller's transaction; a macro so it compiles for both backends.
macro_rules! insert_recipients {
    ($conn:expr, $id:expr, $envelope:expr, $turn:expr) => {{
        let envelope: &guichet_core::Envelope = $envelope;
        let turn: &[usize] = $turn;
        for (i, r) in envelope.recipients.iter().enumerate() {
            let user = match &r.party {
                Party::Employee { user } | Party::Citizen { user } => Some(user.0.clone()),
                Party::Officer | Party::External => None,
            };
            sqlx::query(
                "INSERT INTO envelope_recipients (envelope, idx, user_id, officer, turn) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind($id)
            .bind(i as i64)
            .bind(user)
            .bind(matches!(r.party, Party::Officer) as i64)
            .bind(turn.contains(&i) as i64)
            .execute(&mut *$conn)
            .await?;
        }
    }};
}

type LinkTuple = (String, i64, i64, Option<Vec<u8>>, Option<i64>, i64);
type EnvelopeTuple = (String, String, Option<String>, i64, i64, i64, Vec<u8>);
type CertTuple = (
    String,
    String,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    i64,
    i64,
    Option<i64>,
    Option<String>,
    Option<Vec<u8>>,
    Option<String>,
);
const CERT_COLUMNS: &str = "serial, user_id, subject, certificate, private_key, not_after, created_at, revoked_at, revocation_reason, chain, token";

/// A chain as stored: each DER certificate after its length (4 bytes).
fn encode_chain(chain: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chain {
        out.extend_from_slice(&(c.len() as u32).to_be_bytes());
        out.extend_from_slice(c);
    }
    out
}

fn decode_chain(mut b: &[u8]) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (len, rest) = b.split_at_checked(4).ok_or_else(|| StoreError::Corrupt("a certificate chain".into()))?;
        let n = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let (cert, rest) = rest.split_at_checked(n).ok_or_else(|| StoreError::Corrupt("a certificate chain".into()))?;
        out.push(cert.to_vec());
        b = rest;
    }
    Ok(out)
}

impl Store {
    /// The organization's PKI material (opened), if it was created.
    pub async fn pki(&self) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            on!(self.db(), p => sqlx::query_as("SELECT material FROM pki WHERE id = 1").fetch_optional(p).await?);
        row.map(|(m,)| self.inner.cipher.open("pki", &m)).transpose()
    }

    /// Stores the PKI material unless another process did first; returns
    /// the material that is now the organization's (ours or theirs).
    pub async fn init_pki(&self, material: &[u8], at: i64) -> Result<Vec<u8>> {
        let sealed = self.inner.cipher.seal("pki", material)?;
        on!(self.db(), p => {
            sqlx::query("INSERT INTO pki (id, material, created_at) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING")
                .bind(sealed)
                .bind(at)
                .execute(p)
                .await?;
        });
        self.pki().await?.ok_or(StoreError::NotFound)
    }

    fn cert_row(&self, r: CertTuple) -> Result<CertificateRow> {
        let key = r.4.map(|k| self.inner.cipher.open(&format!("certificate:{}", r.0), &k)).transpose()?;
        Ok(CertificateRow {
            serial: r.0,
            user_id: r.1,
            subject: r.2,
            certificate: r.3,
            private_key: key,
            not_after: r.5,
            created_at: r.6,
            revoked_at: r.7,
            revocation_reason: r.8,
            chain: r.9.map(|c| decode_chain(&c)).transpose()?,
            token: r.10.and_then(|t| t.split_once('\n').map(|(a, b)| (a.to_owned(), b.to_owned()))),
        })
    }

    /// Records a certificate issued to `user_id` (and the event on the
    /// user's chain).
    pub async fn add_certificate(&self, c: &CertificateRow, actor: &str) -> Result<()> {
        let key = c
            .private_key
            .as_ref()
            .map(|k| self.inner.cipher.seal(&format!("certificate:{}", c.serial), k))
            .transpose()?;
        let event = serde_json::json!({
            "type": "certificate_issued", "serial": c.serial, "subject": c.subject, "not_after": c.not_after,
        });
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            sqlx::query(
                "INSERT INTO certificates (serial, user_id, subject, certificate, private_key, not_after, created_at, chain, token) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&c.serial)
            .bind(&c.user_id)
            .bind(&c.subject)
            .bind(&c.certificate)
            .bind(key)
            .bind(c.not_after)
            .bind(c.created_at)
            .bind(c.chain.as_deref().map(encode_chain))
            .bind(c.token.as_ref().map(|(t, k)| format!("{t}\n{k}")))
            .execute(&mut *tx)
            .await?;
            append_event!(&mut *tx, self, &format!("user:{}", c.user_id), Some(actor), c.created_at, &event);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A user's certificates, newest first.
    pub async fn certificates_of(&self, user_id: &str) -> Result<Vec<CertificateRow>> {
        let sql =
            format!("SELECT {CERT_COLUMNS} FROM certificates WHERE user_id = $1 ORDER BY created_at DESC, serial");
        let rows: Vec<CertTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(user_id).fetch_all(p).await?);
        rows.into_iter().map(|r| self.cert_row(r)).collect()
    }

    pub async fn certificate(&self, serial: &str) -> Result<Option<CertificateRow>> {
        let sql = format!("SELECT {CERT_COLUMNS} FROM certificates WHERE serial = $1");
        let row: Option<CertTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(serial).fetch_optional(p).await?);
        row.map(|r| self.cert_row(r)).transpose()
    }

    /// Valid certificates expiring before `before` whose holder was not
    /// yet reminded to renew.
    pub async fn certificates_to_renew(&self, now: i64, before: i64) -> Result<Vec<CertificateRow>> {
        let sql = format!(
            "SELECT {CERT_COLUMNS} FROM certificates WHERE revoked_at IS NULL AND renewal_reminded_at IS NULL \
             AND not_after > $1 AND not_after <= $2 ORDER BY not_after, serial LIMIT 500"
        );
        let rows: Vec<CertTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(now).bind(before).fetch_all(p).await?);
        rows.into_iter().map(|r| self.cert_row(r)).collect()
    }

    /// Notes that a certificate's holder was reminded to renew it.
    pub async fn note_renewal_reminder(&self, serial: &str, at: i64) -> Result<()> {
        on!(self.db(), p => {
            sqlx::query("UPDATE certificates SET renewal_reminded_at = $2 WHERE serial = $1")
                .bind(serial)
                .bind(at)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Every revoked certificate of the organization's CA (not those
    /// imported from another): (serial, when, reason), for the CRL.
    pub async fn revoked_certificates(&self) -> Result<Vec<(String, i64, String)>> {
        let rows: Vec<(String, i64, Option<String>)> = on!(self.db(), p => sqlx::query_as(
            "SELECT serial, revoked_at, revocation_reason FROM certificates \
             WHERE revoked_at IS NOT NULL AND chain IS NULL ORDER BY revoked_at, serial",
        )
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(|(s, at, r)| (s, at, r.unwrap_or_default())).collect())
    }

    /// Revokes a certificate (once: a second revocation keeps the first
    /// date). Returns whether this call revoked it.
    pub async fn revoke_certificate(&self, serial: &str, reason: &str, actor: &str, at: i64) -> Result<bool> {
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            let user: Option<(String,)> = sqlx::query_as(
                "UPDATE certificates SET revoked_at = $2, revocation_reason = $3 \
                 WHERE serial = $1 AND revoked_at IS NULL RETURNING user_id",
            )
            .bind(serial)
            .bind(at)
            .bind(reason)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((user,)) = user else { return Ok(false) };
            let event = serde_json::json!({"type": "certificate_revoked", "serial": serial, "reason": reason});
            append_event!(&mut *tx, self, &format!("user:{user}"), Some(actor), at, &event);
            tx.commit().await?;
        });
        Ok(true)
    }

    /// Writes an envelope's events, its row and its recipients' turns —
    /// with a dossier's events in the same transaction when given.
    /// Returns the envelope's new version.
    pub async fn write_envelope(&self, w: EnvelopeWrite, dossier: Option<NewEvents>) -> Result<i64> {
        let c = &self.inner.cipher;
        let dossier = dossier.map(|n| self.prepare_append(n)).transpose()?;
        let snapshot_json = serde_json::to_vec(&w.after).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let snapshot = c.seal(&format!("envelope:{}", w.id), &snapshot_json)?;
        let events = w
            .events
            .iter()
            .map(|e| serde_json::to_value(e).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>>>()?;
        let version = w.expected_version + events.len() as i64;
        let turn = w.after.turn();
        let aggregate = format!("envelope:{}", w.id);
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            if w.expected_version == 0 {
                let inserted = sqlx::query(
                    "INSERT INTO envelopes (id, sender, dossier, state, version, last_link, created_at, updated_at, expires_at, snapshot) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                )
                .bind(&w.id)
                .bind(&w.after.sender.0)
                .bind(&w.after.dossier)
                .bind(w.after.state.as_str())
                .bind(version)
                .bind(vec![0u8; 32])
                .bind(w.at)
                .bind(w.after.expires_at)
                .bind(&snapshot)
                .execute(&mut *tx)
                .await?;
                if inserted.rows_affected() == 0 {
                    return Err(StoreError::Conflict { current: -1 });
                }
            } else {
                let updated = sqlx::query(
                    "UPDATE envelopes SET version = $3, state = $4, updated_at = $5, snapshot = $6 \
                     WHERE id = $1 AND version = $2",
                )
                .bind(&w.id)
                .bind(w.expected_version)
                .bind(version)
                .bind(w.after.state.as_str())
                .bind(w.at)
                .bind(&snapshot)
                .execute(&mut *tx)
                .await?;
                if updated.rows_affected() == 0 {
                    let current: Option<i64> = sqlx::query_scalar("SELECT version FROM envelopes WHERE id = $1")
                        .bind(&w.id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    return Err(match current {
                        Some(c) => StoreError::Conflict { current: c },
                        None => StoreError::NotFound,
                    });
                }
            }
            for event in &events {
                append_event!(&mut *tx, self, &aggregate, w.actor.as_deref(), w.at, event);
            }
            sqlx::query("DELETE FROM envelope_recipients WHERE envelope = $1").bind(&w.id).execute(&mut *tx).await?;
            insert_recipients!(&mut *tx, &w.id, &w.after, &turn);
            if let Some(d) = &dossier {
                apply_append!(&mut *tx, d)?;
            }
            tx.commit().await?;
        });
        Ok(version)
    }

    fn envelope_row(&self, r: EnvelopeTuple) -> Result<EnvelopeRow> {
        let plain = self.inner.cipher.open(&format!("envelope:{}", r.0), &r.6)?;
        let envelope: Envelope =
            serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("envelope {}: {e}", r.0)))?;
        Ok(EnvelopeRow { id: r.0, sender: r.1, dossier: r.2, version: r.3, created_at: r.4, updated_at: r.5, envelope })
    }

    pub async fn envelope(&self, id: &str) -> Result<Option<EnvelopeRow>> {
        let row: Option<EnvelopeTuple> = on!(self.db(), p => sqlx::query_as(
            "SELECT id, sender, dossier, version, created_at, updated_at, snapshot FROM envelopes WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        row.map(|r| self.envelope_row(r)).transpose()
    }

    /// The envelopes of a dossier, newest first.
    pub async fn envelopes_of_dossier(&self, dossier: &str) -> Result<Vec<EnvelopeRow>> {
        let rows: Vec<EnvelopeTuple> = on!(self.db(), p => sqlx::query_as(
            "SELECT id, sender, dossier, version, created_at, updated_at, snapshot FROM envelopes \
             WHERE dossier = $1 ORDER BY created_at DESC, id",
        )
        .bind(dossier)
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.envelope_row(r)).collect()
    }

    /// Envelopes where it is `user`'s turn to sign (named, or as a
    /// signing officer when `officer`), oldest first.
    pub async fn envelopes_awaiting(&self, user: &str, officer: bool, limit: i64) -> Result<Vec<EnvelopeRow>> {
        let rows: Vec<EnvelopeTuple> = on!(self.db(), p => sqlx::query_as(
            "SELECT e.id, e.sender, e.dossier, e.version, e.created_at, e.updated_at, e.snapshot FROM envelopes e \
             WHERE e.state = 'sent' AND EXISTS (SELECT 1 FROM envelope_recipients r WHERE r.envelope = e.id AND r.turn = 1 \
               AND (r.user_id = $1 OR (r.officer = 1 AND $2 = 1))) \
             ORDER BY e.created_at, e.id LIMIT $3",
        )
        .bind(user)
        .bind(officer as i64)
        .bind(limit.clamp(1, 500))
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.envelope_row(r)).collect()
    }

    /// Open envelopes due for the sweep: expired at `now`, or unchanged
    /// since `quiet_since` (their waiting signers get a reminder).
    pub async fn envelopes_to_sweep(&self, now: i64, quiet_since: i64, limit: i64) -> Result<Vec<EnvelopeRow>> {
        let rows: Vec<EnvelopeTuple> = on!(self.db(), p => sqlx::query_as(
            "SELECT id, sender, dossier, version, created_at, updated_at, snapshot FROM envelopes \
             WHERE state = 'sent' AND (expires_at <= $1 OR updated_at <= $2) ORDER BY updated_at, id LIMIT $3",
        )
        .bind(now)
        .bind(quiet_since)
        .bind(limit.clamp(1, 1000))
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.envelope_row(r)).collect()
    }

    /// Envelopes a user sent, newest first.
    pub async fn envelopes_sent_by(&self, user: &str, limit: i64) -> Result<Vec<EnvelopeRow>> {
        let rows: Vec<EnvelopeTuple> = on!(self.db(), p => sqlx::query_as(
            "SELECT id, sender, dossier, version, created_at, updated_at, snapshot FROM envelopes \
             WHERE sender = $1 ORDER BY created_at DESC, id LIMIT $2",
        )
        .bind(user)
        .bind(limit.clamp(1, 500))
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.envelope_row(r)).collect()
    }

    /// A link that lets an external recipient open their envelope (the
    /// token itself is never stored: its SHA-256 is).
    pub async fn create_signing_link(&self, token: &str, envelope: &str, index: usize, expires_at: i64) -> Result<()> {
        on!(self.db(), p => {
            sqlx::query(
                "INSERT INTO signing_links (token_hash, envelope, idx, expires_at, tries) VALUES ($1, $2, $3, $4, 0)",
            )
            .bind(crate::token_hash(token))
            .bind(envelope)
            .bind(index as i64)
            .bind(expires_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A signing link: (envelope, recipient, expires, code digest, code
    /// expiry, wrong codes so far).
    pub async fn signing_link(&self, token: &str) -> Result<Option<SigningLink>> {
        let row: Option<LinkTuple> = on!(self.db(), p => sqlx::query_as(
            "SELECT envelope, idx, expires_at, code_hash, code_expires, tries FROM signing_links WHERE token_hash = $1",
        )
        .bind(crate::token_hash(token))
        .fetch_optional(p)
        .await?);
        Ok(row.map(|r| SigningLink {
            envelope: r.0,
            index: r.1.max(0) as usize,
            expires_at: r.2,
            code_hash: r.3,
            code_expires: r.4,
            tries: r.5,
        }))
    }

    /// Stores a new one-time code's digest (wrong tries keep counting: a
    /// link locks after a few, whatever the number of codes asked).
    pub async fn set_signing_code(&self, token: &str, code_hash: &[u8], expires_at: i64) -> Result<()> {
        on!(self.db(), p => {
            sqlx::query("UPDATE signing_links SET code_hash = $2, code_expires = $3 WHERE token_hash = $1")
                .bind(crate::token_hash(token))
                .bind(code_hash)
                .bind(expires_at)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Counts a wrong code; returns the count.
    pub async fn note_wrong_code(&self, token: &str) -> Result<i64> {
        let n: Option<i64> = on!(self.db(), p => sqlx::query_scalar(
            "UPDATE signing_links SET tries = tries + 1 WHERE token_hash = $1 RETURNING tries",
        )
        .bind(crate::token_hash(token))
        .fetch_optional(p)
        .await?);
        Ok(n.unwrap_or(0))
    }

    /// Ends a link once used (the code cannot be used twice).
    pub async fn spend_signing_code(&self, token: &str) -> Result<()> {
        on!(self.db(), p => {
            sqlx::query("UPDATE signing_links SET code_hash = NULL, code_expires = NULL WHERE token_hash = $1")
                .bind(crate::token_hash(token))
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Writes many envelopes (a bulk send) in one transaction each batch:
    /// all of a batch or none.
    pub async fn write_envelopes(
        &self,
        writes: Vec<EnvelopeWrite>,
        mails: Vec<(String, String, String)>,
        at: i64,
    ) -> Result<()> {
        let c = &self.inner.cipher;
        let mut prepared = Vec::with_capacity(writes.len());
        for w in writes {
            let snapshot_json = serde_json::to_vec(&w.after).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let snapshot = c.seal(&format!("envelope:{}", w.id), &snapshot_json)?;
            let events = w
                .events
                .iter()
                .map(|e| serde_json::to_value(e).map_err(|e| StoreError::Corrupt(e.to_string())))
                .collect::<Result<Vec<_>>>()?;
            prepared.push((w, snapshot, events));
        }
        let mut sealed_mails = Vec::with_capacity(mails.len());
        for (to, subject, body) in &mails {
            sealed_mails.push(self.seal_mail(to, subject, body)?);
        }
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            for (w, snapshot, events) in &prepared {
                let version = events.len() as i64;
                sqlx::query(
                    "INSERT INTO envelopes (id, sender, dossier, state, version, last_link, created_at, updated_at, expires_at, snapshot) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9)",
                )
                .bind(&w.id)
                .bind(&w.after.sender.0)
                .bind(&w.after.dossier)
                .bind(w.after.state.as_str())
                .bind(version)
                .bind(vec![0u8; 32])
                .bind(w.at)
                .bind(w.after.expires_at)
                .bind(snapshot)
                .execute(&mut *tx)
                .await?;
                let aggregate = format!("envelope:{}", w.id);
                for event in events {
                    append_event!(&mut *tx, self, &aggregate, w.actor.as_deref(), w.at, event);
                }
                insert_recipients!(&mut *tx, &w.id, &w.after, &w.after.turn());
            }
            for (recipient, body) in &sealed_mails {
                sqlx::query(crate::users::INSERT_MAIL)
                    .bind(recipient)
                    .bind(body)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a template (an event on its own chain says who made it).
    pub async fn put_template(&self, id: &str, owner: &str, name: &str, definition: &str, at: i64) -> Result<()> {
        let event = serde_json::json!({"type": "template_created", "name": name});
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            sqlx::query("INSERT INTO templates (id, owner, name, definition, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(owner)
                .bind(name)
                .bind(definition)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            append_event!(&mut *tx, self, &format!("template:{id}"), Some(owner), at, &event);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A template's definition (JSON text).
    pub async fn template(&self, id: &str) -> Result<Option<(String, String, String, i64)>> {
        Ok(on!(self.db(), p => sqlx::query_as(
            "SELECT owner, name, definition, created_at FROM templates WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    /// Every template: (id, owner, definition, created_at), newest first.
    pub async fn templates(&self) -> Result<Vec<(String, String, String, i64)>> {
        Ok(on!(self.db(), p => sqlx::query_as(
            "SELECT id, owner, definition, created_at FROM templates ORDER BY created_at DESC, id LIMIT 500",
        )
        .fetch_all(p)
        .await?))
    }
}

/// An external recipient's signing link.
#[derive(Debug, Clone)]
pub struct SigningLink {
    pub envelope: String,
    pub index: usize,
    pub expires_at: i64,
    pub code_hash: Option<Vec<u8>>,
    pub code_expires: Option<i64>,
    pub tries: i64,
}
