//! Accounts, sessions, API tokens, one-time tokens (email verification,
//! password reset), login throttling, programs and the mail outbox.
//! Secrets are stored as SHA-256 of the token, never the token; account
//! changes are events of the `user:ID` aggregate, chained like dossiers'.

use serde::Serialize;

use crate::audit::append_event;
use crate::{Result, Store, StoreError, on, unique_violation};

#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub language: String,
    pub verified: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    #[serde(skip)]
    pub password_hash: String,
    pub roles: Vec<String>,
    pub language: String,
    pub verified: bool,
    pub active: bool,
    #[serde(skip)]
    pub totp_secret: Option<Vec<u8>>,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct Session {
    pub user_id: String,
    pub csrf: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct ApiToken {
    pub user_id: String,
    pub name: String,
    pub expires_at: i64,
}

/// Marks mail $1 sent at $2.
const MARK_SENT: &str = "UPDATE outbox SET sent_at = $2, last_error = NULL WHERE id = $1";
/// A mail for the outbox: recipient's digest $1, sealed head and body $2, at $3.
pub(crate) const INSERT_MAIL: &str =
    "INSERT INTO outbox (recipient, subject, body, created_at, sealed_head) VALUES ($1, '', $2, $3, 1)";

type UserTuple = (String, Option<Vec<u8>>, String, String, String, i64, i64, Option<Vec<u8>>, i64);
const USER_COLUMNS: &str = "id, contact, password_hash, roles, language, verified, active, totp_secret, created_at";

/// An address as stored and looked up: trimmed, lowercased.
fn normal_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// What `users.contact` seals.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedContact {
    email: String,
    name: String,
}

/// What `outbox.body` seals (`sealed_head` 1).
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct SealedMail {
    pub to: String,
    pub subject: String,
    pub body: String,
}

impl Store {
    /// The keyed digest an address is found by (`users.email`,
    /// `outbox.recipient`): hex, never the address.
    pub(crate) fn email_key(&self, email: &str) -> String {
        crate::hex(&self.inner.cipher.blind("email", &normal_email(email)))
    }

    fn seal_contact(&self, id: &str, email: &str, name: &str) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(&SealedContact { email: email.into(), name: name.into() })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.inner.cipher.seal(&format!("user:{id}:contact"), &json)
    }

    /// An account's address and name.
    pub(crate) fn open_contact(&self, id: &str, sealed: Option<&[u8]>) -> Result<(String, String)> {
        let sealed = sealed.ok_or_else(|| {
            StoreError::Corrupt(format!("user:{id}: contact not sealed (the store was not migrated)"))
        })?;
        let plain = self.inner.cipher.open(&format!("user:{id}:contact"), sealed)?;
        let c: SealedContact = serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((c.email, c.name))
    }

    /// A mail as the outbox keeps it: the recipient's digest, and the
    /// address, subject and body sealed together, bound to that digest.
    pub(crate) fn seal_mail(&self, to: &str, subject: &str, body: &str) -> Result<(String, Vec<u8>)> {
        let key = self.email_key(to);
        let json = serde_json::to_vec(&SealedMail { to: to.into(), subject: subject.into(), body: body.into() })
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let sealed = self.inner.cipher.seal(&format!("mail:{key}"), &json)?;
        Ok((key, sealed))
    }

    pub(crate) fn open_mail(&self, key: &str, sealed: &[u8]) -> Result<SealedMail> {
        let plain = self.inner.cipher.open(&format!("mail:{key}"), sealed)?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(format!("mail:{key}: {e}")))
    }

    /// A delivery error as stored: sealed (an SMTP server's answer often
    /// repeats the address), as hex in its text column.
    fn seal_error(&self, id: i64, error: &str) -> Result<String> {
        Ok(crate::hex(&self.inner.cipher.seal(&format!("mail-error:{id}"), error.as_bytes())?))
    }

    pub(crate) fn open_error(&self, id: i64, stored: &str) -> Result<String> {
        let sealed = crate::unhex(stored).ok_or_else(|| StoreError::Corrupt(format!("mail-error:{id}: not sealed")))?;
        let plain = self.inner.cipher.open(&format!("mail-error:{id}"), &sealed)?;
        Ok(String::from_utf8_lossy(&plain).into_owned())
    }

    fn user_row(&self, r: UserTuple) -> Result<UserRow> {
        let totp = match r.7 {
            Some(sealed) => Some(self.inner.cipher.open(&format!("user:{}:totp", r.0), &sealed)?),
            None => None,
        };
        let (email, name) = self.open_contact(&r.0, r.1.as_deref())?;
        Ok(UserRow {
            roles: r.3.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            id: r.0,
            email,
            name,
            password_hash: r.2,
            language: r.4,
            verified: r.5 != 0,
            active: r.6 != 0,
            totp_secret: totp,
            created_at: r.8,
        })
    }

    /// Creates an account (the email is stored lowercased and sealed, found
    /// by its keyed digest; taken → error).
    pub async fn create_user(&self, u: NewUser, actor: Option<&str>, at: i64) -> Result<UserRow> {
        let id = crate::new_id("u_")?;
        let email = normal_email(&u.email);
        let key = self.email_key(&email);
        let contact = self.seal_contact(&id, &email, &u.name)?;
        let roles = u.roles.join(",");
        let event = serde_json::json!({"type": "user_created", "email": email, "name": u.name, "roles": u.roles});
        let res: Result<()> = on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            sqlx::query(
                "INSERT INTO users (id, email, name, contact, password_hash, roles, language, verified, active, created_at) \
                 VALUES ($1, $2, '', $3, $4, $5, $6, $7, 1, $8)",
            )
            .bind(&id)
            .bind(&key)
            .bind(&contact)
            .bind(&u.password_hash)
            .bind(&roles)
            .bind(&u.language)
            .bind(u.verified as i64)
            .bind(at)
            .execute(&mut *tx)
            .await
            .map_err(|e| if unique_violation(&e) { StoreError::Taken("this email") } else { e.into() })?;
            append_event!(&mut *tx, self, &format!("user:{id}"), actor, at, &event);
            tx.commit().await?;
            Ok(())
        });
        res?;
        self.user(&id).await?.ok_or(StoreError::NotFound)
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let r: Option<UserTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(id).fetch_optional(p).await?);
        r.map(|r| self.user_row(r)).transpose()
    }

    /// Many accounts' contact details at once (for lists and notices).
    pub async fn user_contacts(&self, ids: &[String]) -> Result<std::collections::HashMap<String, Contact>> {
        let select = "SELECT id, contact, language FROM users WHERE id IN";
        let rows: Vec<(String, Option<Vec<u8>>, String)> = self.select_in(select, ids).await?;
        rows.into_iter()
            .map(|(id, contact, language)| {
                let (email, name) = self.open_contact(&id, contact.as_deref())?;
                Ok((id, Contact { email, name, language }))
            })
            .collect()
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        let key = self.email_key(email);
        let r: Option<UserTuple> = on!(self.db(), p => sqlx::query_as(&sql).bind(key).fetch_optional(p).await?);
        r.map(|r| self.user_row(r)).transpose()
    }

    pub async fn users(&self) -> Result<Vec<UserRow>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id");
        let rows: Vec<UserTuple> = on!(self.db(), p => sqlx::query_as(&sql).fetch_all(p).await?);
        rows.into_iter().map(|r| self.user_row(r)).collect()
    }

    /// Changes an account. `change` names what changed, for the log (the
    /// password hash and TOTP secret are never logged).
    #[allow(clippy::too_many_arguments)]
    pub async fn update_user(
        &self,
        id: &str,
        roles: Option<&[String]>,
        active: Option<bool>,
        verified: Option<bool>,
        password_hash: Option<&str>,
        totp_secret: Option<Option<&[u8]>>,
        actor: Option<&str>,
        at: i64,
    ) -> Result<()> {
        let mut event = serde_json::json!({"type": "user_changed"});
        if let Some(r) = roles {
            event["roles"] = serde_json::json!(r);
        }
        if let Some(a) = active {
            event["active"] = a.into();
        }
        if let Some(v) = verified {
            event["verified"] = v.into();
        }
        if password_hash.is_some() {
            event["password_changed"] = true.into();
        }
        if let Some(t) = totp_secret {
            event["totp"] = t.is_some().into();
        }
        let totp_sealed = match totp_secret {
            Some(Some(s)) => Some(Some(self.inner.cipher.seal(&format!("user:{id}:totp"), s)?)),
            Some(None) => Some(None),
            None => None,
        };
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            let done = sqlx::query(
                "UPDATE users SET roles = COALESCE($2, roles), active = COALESCE($3, active), \
                 verified = COALESCE($4, verified), password_hash = COALESCE($5, password_hash), \
                 totp_secret = CASE WHEN $6 = 1 THEN $7 ELSE totp_secret END WHERE id = $1",
            )
            .bind(id)
            .bind(roles.map(|r| r.join(",")))
            .bind(active.map(i64::from))
            .bind(verified.map(i64::from))
            .bind(password_hash)
            .bind(totp_sealed.is_some() as i64)
            .bind(totp_sealed.clone().flatten())
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            if password_hash.is_some() || active == Some(false) {
                // A new password or a deactivation ends every session.
                sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
            }
            append_event!(&mut *tx, self, &format!("user:{id}"), actor, at, &event);
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn create_session(&self, token: &str, user_id: &str, csrf: &str, at: i64, expires_at: i64) -> Result<()> {
        on!(self.db(), p => sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(crate::token_hash(token))
        .bind(user_id)
        .bind(csrf)
        .bind(at)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// The live session of a token (expired ones are not returned).
    pub async fn session(&self, token: &str, now: i64) -> Result<Option<Session>> {
        let r: Option<(String, String, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT user_id, csrf, expires_at FROM sessions WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(crate::token_hash(token))
        .bind(now)
        .fetch_optional(p)
        .await?);
        Ok(r.map(|(user_id, csrf, expires_at)| Session { user_id, csrf, expires_at }))
    }

    /// The live session of a token and its active account, in one query.
    pub async fn session_user(&self, token: &str, now: i64) -> Result<Option<(Session, UserRow)>> {
        let sql = format!(
            "SELECT s.csrf, s.expires_at, {} FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.active = 1",
            USER_COLUMNS.split(", ").map(|c| format!("u.{c}")).collect::<Vec<_>>().join(", ")
        );
        type Row = (String, i64, String, Option<Vec<u8>>, String, String, String, i64, i64, Option<Vec<u8>>, i64);
        let r: Option<Row> = on!(self.db(), p => sqlx::query_as(&sql)
            .bind(crate::token_hash(token))
            .bind(now)
            .fetch_optional(p)
            .await?);
        let Some(r) = r else { return Ok(None) };
        let user = self.user_row((r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10))?;
        Ok(Some((Session { user_id: user.id.clone(), csrf: r.0, expires_at: r.1 }, user)))
    }

    pub async fn delete_session(&self, token: &str) -> Result<()> {
        on!(self.db(), p => sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(crate::token_hash(token))
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    pub async fn create_api_token(
        &self,
        token: &str,
        user_id: &str,
        name: &str,
        at: i64,
        expires_at: i64,
    ) -> Result<()> {
        on!(self.db(), p => sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, name, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(crate::token_hash(token))
        .bind(user_id)
        .bind(name)
        .bind(at)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    pub async fn api_token(&self, token: &str, now: i64) -> Result<Option<ApiToken>> {
        let r: Option<(String, String, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT user_id, name, expires_at FROM api_tokens WHERE token_hash = $1 AND expires_at > $2",
        )
        .bind(crate::token_hash(token))
        .bind(now)
        .fetch_optional(p)
        .await?);
        Ok(r.map(|(user_id, name, expires_at)| ApiToken { user_id, name, expires_at }))
    }

    /// A single-use token (email verification, password reset).
    pub async fn create_one_time(&self, token: &str, user_id: &str, purpose: &str, expires_at: i64) -> Result<()> {
        on!(self.db(), p => sqlx::query(
            "INSERT INTO one_time_tokens (token_hash, user_id, purpose, expires_at, used) VALUES ($1, $2, $3, $4, 0)",
        )
        .bind(crate::token_hash(token))
        .bind(user_id)
        .bind(purpose)
        .bind(expires_at)
        .execute(p)
        .await
        .map(|_| ())?);
        Ok(())
    }

    /// Uses a single-use token: returns its user once, never twice.
    pub async fn consume_one_time(&self, token: &str, purpose: &str, now: i64) -> Result<Option<String>> {
        let r: Option<String> = on!(self.db(), p => sqlx::query_scalar(
            "UPDATE one_time_tokens SET used = 1 WHERE token_hash = $1 AND purpose = $2 AND used = 0 \
             AND expires_at > $3 RETURNING user_id",
        )
        .bind(crate::token_hash(token))
        .bind(purpose)
        .bind(now)
        .fetch_optional(p)
        .await?);
        Ok(r)
    }

    /// What `login_failures.key` holds for `key`: its keyed digest (a key
    /// names an address, or a signing link: never stored in clear).
    fn throttle_key(&self, key: &str) -> String {
        crate::hex(&self.inner.cipher.blind("throttle", key))
    }

    /// Records a failed login for `key` and returns the failures within
    /// the window that contains `now`.
    pub async fn note_login_failure(&self, key: &str, now: i64, window: i64) -> Result<i64> {
        let key = self.throttle_key(key);
        let n: i64 = on!(self.db(), p => sqlx::query_scalar(
            "INSERT INTO login_failures (key, count, window_start) VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               count = CASE WHEN login_failures.window_start > $2 - $3 THEN login_failures.count + 1 ELSE 1 END, \
               window_start = CASE WHEN login_failures.window_start > $2 - $3 THEN login_failures.window_start ELSE $2 END \
             RETURNING count",
        )
        .bind(&key)
        .bind(now)
        .bind(window)
        .fetch_one(p)
        .await?);
        Ok(n)
    }

    /// Failures of `key` within the window.
    pub async fn login_failures(&self, key: &str, now: i64, window: i64) -> Result<i64> {
        let key = self.throttle_key(key);
        let n: Option<i64> = on!(self.db(), p => sqlx::query_scalar(
            "SELECT count FROM login_failures WHERE key = $1 AND window_start > $2",
        )
        .bind(&key)
        .bind(now - window)
        .fetch_optional(p)
        .await?);
        Ok(n.unwrap_or(0))
    }

    pub async fn clear_login_failures(&self, key: &str) -> Result<()> {
        let key = self.throttle_key(key);
        on!(self.db(), p => sqlx::query("DELETE FROM login_failures WHERE key = $1").bind(&key).execute(p).await.map(|_| ())?);
        Ok(())
    }

    /// Publishes a program version (idempotent for the same version) and
    /// makes it current, with an event on `program:ID`.
    pub async fn publish_program(&self, id: &str, version: &str, source: &str, by: &str, at: i64) -> Result<()> {
        let event = serde_json::json!({"type": "program_published", "program": id, "version": version});
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            sqlx::query(
                "INSERT INTO programs (id, version, source, published_by, published_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id, version) DO NOTHING",
            )
            .bind(id)
            .bind(version)
            .bind(source)
            .bind(by)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO current_programs (id, version) VALUES ($1, $2) \
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            )
            .bind(id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
            append_event!(&mut *tx, self, &format!("program:{id}"), Some(by), at, &event);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The current version of every program: (id, version, source).
    pub async fn current_programs(&self) -> Result<Vec<(String, String, String)>> {
        Ok(on!(self.db(), p => sqlx::query_as(
            "SELECT c.id, c.version, p.source FROM current_programs c JOIN programs p ON p.id = c.id AND p.version = c.version ORDER BY c.id",
        )
        .fetch_all(p)
        .await?))
    }

    /// The current version of every program, without the sources (the
    /// service compiles each version once and keeps it).
    pub async fn current_program_versions(&self) -> Result<Vec<(String, String)>> {
        Ok(
            on!(self.db(), p => sqlx::query_as("SELECT id, version FROM current_programs ORDER BY id").fetch_all(p).await?),
        )
    }

    /// The current version of one program.
    pub async fn current_version(&self, id: &str) -> Result<Option<String>> {
        Ok(on!(self.db(), p => sqlx::query_scalar("SELECT version FROM current_programs WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?))
    }

    /// Every published version of a program, newest first:
    /// (version, published by, published at).
    pub async fn program_versions(&self, id: &str) -> Result<Vec<(String, String, i64)>> {
        Ok(on!(self.db(), p => sqlx::query_as(
            "SELECT version, published_by, published_at FROM programs WHERE id = $1 ORDER BY published_at DESC, version",
        )
        .bind(id)
        .fetch_all(p)
        .await?))
    }

    /// One version's source.
    pub async fn program_source(&self, id: &str, version: &str) -> Result<Option<String>> {
        Ok(on!(self.db(), p => sqlx::query_scalar("SELECT source FROM programs WHERE id = $1 AND version = $2")
            .bind(id)
            .bind(version)
            .fetch_optional(p)
            .await?))
    }

    /// The organization's settings (key → JSON value).
    pub async fn settings(&self) -> Result<std::collections::BTreeMap<String, serde_json::Value>> {
        let rows: Vec<(String, String)> =
            on!(self.db(), p => sqlx::query_as("SELECT key, value FROM organization_settings").fetch_all(p).await?);
        rows.into_iter()
            .map(|(k, v)| Ok((k, serde_json::from_str(&v).map_err(|e| StoreError::Corrupt(e.to_string()))?)))
            .collect()
    }

    /// Sets settings, with an event on `organization:settings`.
    pub async fn set_settings(&self, values: &[(String, serde_json::Value)], by: &str, at: i64) -> Result<()> {
        let event = serde_json::json!({"type": "settings_changed", "values": values.iter().cloned().collect::<serde_json::Map<_, _>>()});
        on!(self.db(), p => {
            let mut tx = p.begin().await?;
            crate::audit::lock_events_shared(self.db(), &mut *tx).await?;
            for (k, v) in values {
                sqlx::query(
                    "INSERT INTO organization_settings (key, value, updated_by, updated_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                )
                .bind(k)
                .bind(v.to_string())
                .bind(by)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            }
            append_event!(&mut *tx, self, "organization:settings", Some(by), at, &event);
            tx.commit().await?;
        });
        Ok(())
    }

    /// Queues an email (sealed: it may hold a token or personal data).
    pub async fn queue_mail(&self, to: &str, subject: &str, body: &str, at: i64) -> Result<()> {
        let (key, sealed) = self.seal_mail(to, subject, body)?;
        on!(self.db(), p => sqlx::query(INSERT_MAIL)
            .bind(key)
            .bind(sealed)
            .bind(at)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Mails due for delivery: not sent, fewer than `max_attempts` failed
    /// tries, and their next try due at `now`; oldest first.
    pub async fn mails_due(&self, now: i64, max_attempts: i64, limit: i64) -> Result<Vec<OutgoingMail>> {
        let rows: Vec<(i64, String, Vec<u8>, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT id, recipient, body, attempts FROM outbox \
             WHERE sent_at IS NULL AND claimed_at IS NULL AND attempts < $1 AND next_at <= $2 ORDER BY id LIMIT $3",
        )
        .bind(max_attempts)
        .bind(now)
        .bind(limit.clamp(1, 1000))
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|(id, key, b, attempts)| {
                let m = self.open_mail(&key, &b)?;
                Ok(OutgoingMail { id, to: m.to, subject: m.subject, body: m.body, attempts })
            })
            .collect()
    }

    /// Claims a mail just before handing it to the SMTP server; false if
    /// another sender has it. A claimed mail never marked sent (the process
    /// died in between) is not sent again by itself: it may have gone out.
    pub async fn claim_mail(&self, id: i64, at: i64) -> Result<bool> {
        self.mail_sent_then_claim(None, id, at).await
    }

    /// Marks the mail the SMTP server just accepted (if any) as sent and
    /// claims the next, in one transaction: one commit per mail instead of
    /// two, and still at most one mail claimed and not marked at a time.
    /// False if another sender has the next one.
    pub async fn mail_sent_then_claim(&self, sent: Option<i64>, next: i64, at: i64) -> Result<bool> {
        let done = on!(self.db(), p => {
            let mut tx = p.begin().await?;
            if let Some(id) = sent {
                sqlx::query(MARK_SENT)
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            let done = sqlx::query(
                "UPDATE outbox SET claimed_at = $2 WHERE id = $1 AND claimed_at IS NULL AND sent_at IS NULL",
            )
            .bind(next)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            tx.commit().await?;
            done
        });
        Ok(done == 1)
    }

    /// A mail the SMTP server accepted.
    pub async fn mail_sent(&self, id: i64, at: i64) -> Result<()> {
        on!(self.db(), p => {
            sqlx::query(MARK_SENT)
                .bind(id)
                .bind(at)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// A failed try: why, and when to try again.
    pub async fn mail_failed(&self, id: i64, error: &str, next_at: i64) -> Result<()> {
        let error = self.seal_error(id, error)?;
        on!(self.db(), p => {
            sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2, next_at = $3, claimed_at = NULL WHERE id = $1")
                .bind(id)
                .bind(error)
                .bind(next_at)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// The latest mails to `to` (newest first): (subject, body, at).
    pub async fn mails_to(&self, to: &str, limit: i64) -> Result<Vec<(String, String, i64)>> {
        let key = self.email_key(to);
        let rows: Vec<(Vec<u8>, i64)> = on!(self.db(), p => sqlx::query_as(
            "SELECT body, created_at FROM outbox WHERE recipient = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(&key)
        .bind(limit)
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|(b, at)| {
                let m = self.open_mail(&key, &b)?;
                Ok((m.subject, m.body, at))
            })
            .collect()
    }

    /// Fails unless the data key opens the oldest sealed event (when
    /// there is one): the key the data was sealed with.
    async fn check_data_key(&self) -> Result<()> {
        let first: Option<(String, i64, Vec<u8>)> = on!(self.db(), p => sqlx::query_as(
            "SELECT aggregate, idx, body FROM events ORDER BY seq LIMIT 1",
        )
        .fetch_optional(p)
        .await?);
        if let Some((aggregate, idx, body)) = first {
            self.inner.cipher.open(&format!("{aggregate}#{idx}"), &body).map_err(|_| {
                StoreError::Config(
                    "the data key does not open the stored events: it is not the key this database was sealed with"
                        .into(),
                )
            })?;
        }
        Ok(())
    }

    /// Seals what was stored in clear before migration 9: accounts'
    /// addresses and names, and the outbox's recipients and subjects. Runs
    /// after the migrations, 500 rows per transaction; a row already sealed
    /// (by another node meanwhile) is left alone. Returns how many rows.
    pub(crate) async fn seal_clear_rows(&self) -> Result<u64> {
        let users: Option<String> = on!(self.db(), p => sqlx::query_scalar(
            "SELECT id FROM users WHERE contact IS NULL LIMIT 1",
        )
        .fetch_optional(p)
        .await?);
        let mails: Option<i64> = on!(self.db(), p => sqlx::query_scalar(
            "SELECT id FROM outbox WHERE sealed_head = 0 LIMIT 1",
        )
        .fetch_optional(p)
        .await?);
        if users.is_none() && mails.is_none() {
            return Ok(0);
        }
        // Nothing is rewritten under a data key that is not the one the
        // data was sealed with: it would turn the clear values into ones
        // the right key cannot open.
        self.check_data_key().await?;
        let mut done = 0;
        loop {
            let rows: Vec<(String, String, String)> = on!(self.db(), p => sqlx::query_as(
                "SELECT id, email, name FROM users WHERE contact IS NULL ORDER BY id LIMIT 500",
            )
            .fetch_all(p)
            .await?);
            if rows.is_empty() {
                break;
            }
            let mut sealed = Vec::with_capacity(rows.len());
            for (id, email, name) in &rows {
                sealed.push((id, self.email_key(email), self.seal_contact(id, &normal_email(email), name)?));
            }
            on!(self.db(), p => {
                let mut tx = p.begin().await?;
                for (id, key, contact) in &sealed {
                    let r = sqlx::query("UPDATE users SET email = $2, name = '', contact = $3 WHERE id = $1 AND contact IS NULL")
                        .bind(id)
                        .bind(key)
                        .bind(contact)
                        .execute(&mut *tx)
                        .await?;
                    done += r.rows_affected();
                }
                tx.commit().await?;
            });
        }
        loop {
            type Clear = (i64, String, String, Vec<u8>, Option<String>);
            let rows: Vec<Clear> = on!(self.db(), p => sqlx::query_as(
                "SELECT id, recipient, subject, body, last_error FROM outbox WHERE sealed_head = 0 ORDER BY id LIMIT 500",
            )
            .fetch_all(p)
            .await?);
            if rows.is_empty() {
                break;
            }
            let mut sealed = Vec::with_capacity(rows.len());
            for (id, to, subject, b, error) in &rows {
                // Before migration 9 the body alone was sealed, bound to the
                // address (which the error must not repeat).
                let body = self.inner.cipher.open(&format!("mail:{to}"), b).map_err(|_| {
                    StoreError::Corrupt(format!(
                        "outbox mail {id}: cannot be decrypted (wrong data key or altered row)"
                    ))
                })?;
                let error = error.as_deref().map(|e| self.seal_error(*id, e)).transpose()?;
                sealed.push((id, self.seal_mail(to, subject, &String::from_utf8_lossy(&body))?, error));
            }
            on!(self.db(), p => {
                let mut tx = p.begin().await?;
                for (id, (key, body), error) in &sealed {
                    let r = sqlx::query(
                        "UPDATE outbox SET recipient = $2, subject = '', body = $3, last_error = $4, sealed_head = 1 \
                         WHERE id = $1 AND sealed_head = 0",
                    )
                    .bind(id)
                    .bind(key)
                    .bind(body)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
                    done += r.rows_affected();
                }
                tx.commit().await?;
            });
        }
        Ok(done)
    }
}

/// How to reach an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub email: String,
    pub name: String,
    pub language: String,
}

/// A mail of the outbox, opened, ready to deliver.
#[derive(Debug, Clone)]
pub struct OutgoingMail {
    pub id: i64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyedMail;
    use crate::testing::{backends, fresh_store};

    /// Every value a user or outbox row holds, as the database has it.
    async fn raw_rows(store: &Store) -> Vec<u8> {
        let mut out = Vec::new();
        on!(store.db(), p => {
            let users: Vec<(String, String, String, Option<Vec<u8>>)> =
                sqlx::query_as("SELECT id, email, name, contact FROM users").fetch_all(p).await.expect("users");
            for (id, email, name, contact) in users {
                out.extend([id, email, name].concat().into_bytes());
                out.extend(contact.unwrap_or_default());
            }
            let mails: Vec<(String, String, Vec<u8>, Option<String>)> =
                sqlx::query_as("SELECT recipient, subject, body, last_error FROM outbox")
                    .fetch_all(p)
                    .await
                    .expect("outbox");
            for (to, subject, body, error) in mails {
                out.extend([to, subject, error.unwrap_or_default()].concat().into_bytes());
                out.extend(body);
            }
            let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM login_failures").fetch_all(p).await.expect("keys");
            out.extend(keys.concat().into_bytes());
        });
        out
    }

    /// A verified account without roles.
    fn account(email: &str, name: &str, language: &str) -> NewUser {
        NewUser {
            email: email.into(),
            name: name.into(),
            password_hash: "h".into(),
            roles: vec![],
            language: language.into(),
            verified: true,
        }
    }

    fn holds(raw: &[u8], clear: &str) -> bool {
        raw.windows(clear.len()).any(|w| w.eq_ignore_ascii_case(clear.as_bytes()))
    }

    /// Addresses, names and mail subjects are sealed at rest, found by a
    /// keyed digest; rows an earlier version wrote in clear are sealed by
    /// `migrate` and read back the same.
    #[test]
    fn addresses_names_and_mails_are_sealed_at_rest_and_earlier_rows_on_migrate() {
        for b in backends() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let (store, _) = fresh_store(b).await.expect("store");
                // An account and a mail as version 8 wrote them.
                let old_body = store.inner.cipher.seal("mail:Odile.Ancienne@example.org", b"Bonjour").expect("seal");
                on!(store.db(), p => {
                    sqlx::query(
                        "INSERT INTO users (id, email, name, password_hash, roles, language, verified, active, created_at) \
                         VALUES ('u_old', 'odile.ancienne@example.org', 'Odile Ancienne', 'h', 'citizen', 'fr', 1, 1, 1)",
                    )
                    .execute(p)
                    .await
                    .expect("old user");
                    sqlx::query(
                        "INSERT INTO outbox (recipient, subject, body, created_at, attempts, last_error, dossier) \
                         VALUES ($1, $2, $3, 2, 1, '550 <odile.ancienne@example.org>: no such user', 'd_0')",
                    )
                        .bind("Odile.Ancienne@example.org")
                        .bind("Votre dossier, Odile")
                        .bind(old_body)
                        .execute(p)
                        .await
                        .expect("old mail");
                });
                assert!(holds(&raw_rows(&store).await, "ancienne"), "the old rows are in clear");
                assert_eq!(store.migrate().await.expect("migrate"), Vec::<i64>::new());
                assert_eq!(store.seal_clear_rows().await.expect("again"), 0, "sealed once");

                let new = NewUser {
                    roles: vec!["citizen".into()],
                    ..account("Alice.Tremblay@Example.org", "Alice Tremblay", "en")
                };
                let alice = store.create_user(new, None, 3).await.expect("alice");
                store.queue_mail("alice.tremblay@example.org", "Bienvenue", "Bonjour", 4).await.expect("mail");
                store
                    .queue_mail_once("k1", Some("d_1"), "bob.gagnon@example.org", "Décision", "Bonjour", 5)
                    .await
                    .expect("mail once");
                let many = [KeyedMail {
                    key: "k2".into(),
                    dossier: Some("d_1".into()),
                    to: "carole.roy@example.org".into(),
                    subject: "Paiement envoyé".into(),
                    body: "Bonjour".into(),
                }];
                assert_eq!(store.queue_mails_once(&many, 6).await.expect("mails"), 1);
                let bob = store.mails_due(10, 8, 100).await.expect("due")[2].id;
                store.mail_failed(bob, "550 5.1.1 <bob.gagnon@example.org>: unknown", 99).await.expect("failed");

                assert_eq!(store.note_login_failure("login:alice.tremblay@example.org", 7, 60).await.expect("note"), 1);
                assert_eq!(store.login_failures("login:alice.tremblay@example.org", 8, 60).await.expect("n"), 1);
                let raw = raw_rows(&store).await;
                for clear in ["odile", "ancienne", "tremblay", "gagnon", "carole", "bienvenue", "cision", "paiement"] {
                    assert!(!holds(&raw, clear), "{clear:?} is stored in clear ({b})");
                }

                // Everything reads back, found by address whatever its case.
                let old = store.user_by_email(" ODILE.Ancienne@example.org").await.expect("get").expect("found");
                assert_eq!(
                    (old.id.as_str(), old.email.as_str(), old.name.as_str(), old.roles.as_slice()),
                    ("u_old", "odile.ancienne@example.org", "Odile Ancienne", &["citizen".to_string()][..])
                );
                assert_eq!(store.user(&alice.id).await.expect("get").expect("found").name, "Alice Tremblay");
                let contacts = store.user_contacts(&[old.id.clone(), alice.id.clone()]).await.expect("contacts");
                assert_eq!(
                    contacts.get(&alice.id),
                    Some(&Contact {
                        email: "alice.tremblay@example.org".into(),
                        name: "Alice Tremblay".into(),
                        language: "en".into()
                    })
                );
                assert_eq!(contacts.get("u_old").map(|c| c.name.as_str()), Some("Odile Ancienne"));
                let again = NewUser { verified: false, ..account("odile.ancienne@EXAMPLE.org", "x", "fr") };
                assert!(matches!(store.create_user(again, None, 7).await, Err(StoreError::Taken(_))), "one account per address");
                assert_eq!(
                    store.mails_to("odile.ancienne@example.org", 10).await.expect("mails"),
                    vec![("Votre dossier, Odile".to_string(), "Bonjour".to_string(), 2)]
                );
                let due = store.mails_due(10, 8, 100).await.expect("due");
                assert_eq!(
                    due.iter().map(|m| (m.to.as_str(), m.subject.as_str())).collect::<Vec<_>>(),
                    [
                        ("Odile.Ancienne@example.org", "Votre dossier, Odile"),
                        ("alice.tremblay@example.org", "Bienvenue"),
                        ("carole.roy@example.org", "Paiement envoyé"),
                    ],
                    "Bob's waits for its next try"
                );
                let old_log = store.dossier_mails("d_0").await.expect("log");
                assert_eq!(
                    old_log.iter().map(|l| (l.to.as_str(), l.last_error.as_deref())).collect::<Vec<_>>(),
                    [("Odile.Ancienne@example.org", Some("550 <odile.ancienne@example.org>: no such user"))]
                );
                let log = store.dossier_mails("d_1").await.expect("log");
                assert_eq!(
                    log.iter().map(|l| (l.to.as_str(), l.subject.as_str(), l.last_error.as_deref())).collect::<Vec<_>>(),
                    [
                        ("bob.gagnon@example.org", "Décision", Some("550 5.1.1 <bob.gagnon@example.org>: unknown")),
                        ("carole.roy@example.org", "Paiement envoyé", None)
                    ]
                );
                store.close().await;
            });
        }
    }

    /// A store opened with another data key refuses to seal what is in
    /// clear (it would be lost to the right key) and changes nothing.
    #[test]
    fn clear_rows_are_not_sealed_under_a_wrong_data_key() {
        for b in backends() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let (store, opts) = fresh_store(b).await.expect("store");
                store.create_user(account("a@example.org", "A", "fr"), None, 1).await.expect("user");
                on!(store.db(), p => {
                    sqlx::query(
                        "INSERT INTO users (id, email, name, password_hash, roles, language, verified, active, created_at) \
                         VALUES ('u_old', 'odile.ancienne@example.org', 'Odile Ancienne', 'h', 'citizen', 'fr', 1, 1, 1)",
                    )
                    .execute(p)
                    .await
                    .expect("old user");
                });
                store.close().await;
                let wrong = crate::Options { data_key: crate::DataKey::generate().expect("key"), ..opts.clone() };
                let other = Store::open(wrong).await.expect("open");
                let err = other.migrate().await.expect_err("a wrong key is refused");
                assert!(err.to_string().contains("not the key this database was sealed with"), "{err}");
                assert!(holds(&raw_rows(&other).await, "Odile Ancienne"), "left as it was");
                other.close().await;
                let right = Store::open(opts).await.expect("open");
                right.migrate().await.expect("migrate");
                assert_eq!(right.user("u_old").await.expect("get").expect("found").name, "Odile Ancienne");
                right.close().await;
            });
        }
    }

    /// The payment queue's bulk read brings each applicant's contact with
    /// the dossier, opened; none for an applicant without an account; and
    /// an account whose contact is not sealed is an error, not a payee
    /// without a name.
    #[test]
    fn the_payment_queue_brings_the_applicants_contact_or_refuses_one_not_sealed() {
        for b in backends() {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let (store, _) = fresh_store(b).await.expect("store");
                let marie =
                    store.create_user(account("Marie@example.org", "Marie Gagnon", "en"), None, 1).await.expect("user").id;
                for (dossier, applicant) in [("d_marie", marie.as_str()), ("d_nobody", "u_nobody")] {
                    let who = guichet_core::UserId(applicant.into());
                    let events = guichet_core::Dossier::create("p", who, 1).expect("create");
                    let after = guichet_core::Dossier::replay(&events).expect("replay");
                    let write = crate::NewEvents {
                        dossier: dossier.into(),
                        expected_version: 0,
                        program_version: Some("v1".into()),
                        events,
                        actor: Some(applicant.into()),
                        after,
                        flags: vec![],
                        keys: vec![],
                        at: 1,
                        payment_line: None,
                    };
                    store.append(write).await.expect("append");
                }
                let read = store.payment_queue(&[guichet_core::State::Draft]).await.expect("read");
                let found: std::collections::HashMap<String, Option<Contact>> =
                    read.into_iter().map(|r| (r.id, r.contact)).collect();
                let expected =
                    Contact { email: "marie@example.org".into(), name: "Marie Gagnon".into(), language: "en".into() };
                assert_eq!(found.get("d_marie"), Some(&Some(expected)));
                assert_eq!(found.get("d_nobody"), Some(&None));
                on!(store.db(), p => {
                    sqlx::query("UPDATE users SET contact = NULL WHERE id = $1").bind(&marie).execute(p).await.expect("clear");
                });
                let err = store.payment_queue(&[guichet_core::State::Draft]).await.expect_err("not sealed");
                assert!(err.to_string().contains("contact not sealed"), "{err}");
                // The loans' read does not read accounts.
                assert_eq!(store.dossiers_in(&[guichet_core::State::Draft]).await.expect("read").len(), 2);
                store.close().await;
            });
        }
    }
}
