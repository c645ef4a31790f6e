//! Accounts and authentication: Argon2id passwords, sessions stored in the
//! database (any node serves any request), CSRF tokens, login throttling,
//! optional TOTP, API tokens, email verification and password reset by
//! single-use tokens, and account administration.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use guichet_core::{Action, Actor, Role, UserId};
use guichet_store::{NewUser, UserRow};
use serde::Serialize;
use std::sync::OnceLock;

use crate::totp::{base32_decode, totp_check};
use crate::{App, AppError, Result, secret_token};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "guichet_session";

/// Someone authenticated, with the roles they act under.
#[derive(Debug, Clone)]
pub struct Caller {
    pub user: UserRow,
    pub actor: Actor,
    /// The session's CSRF token when the caller came with a session cookie
    /// (unsafe requests must echo it); `None` for API tokens.
    pub csrf: Option<String>,
}

impl Caller {
    pub fn may(&self, action: Action, dossier: Option<&guichet_core::Dossier>) -> Result<()> {
        self.actor.may(action, dossier).map_err(|d| match d {
            guichet_core::Denied::NotYours => AppError::NotFound,
            guichet_core::Denied::Role => AppError::Forbidden(d.to_string()),
        })
    }

    pub fn id(&self) -> &str {
        &self.user.id
    }

    pub fn is_staff(&self) -> bool {
        self.actor.roles.iter().any(|r| !matches!(r, Role::Citizen))
    }
}

/// A successful login.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct LoginOutcome {
    /// The session token (the API sets it as an HttpOnly cookie).
    #[serde(skip)]
    pub token: String,
    /// Echo it in `X-CSRF-Token` on every unsafe request of this session.
    pub csrf_token: String,
    pub expires_at: i64,
    pub user_id: String,
    pub roles: Vec<String>,
}

pub(crate) fn parse_roles(roles: &[String]) -> Result<Vec<Role>> {
    roles
        .iter()
        .map(|r| {
            serde_json::from_value(serde_json::Value::String(r.clone()))
                .map_err(|_| AppError::invalid("invalid_request", format!("unknown role {r:?}")))
        })
        .collect()
}

fn actor_of(u: &UserRow) -> Result<Actor> {
    Ok(Actor { user: UserId(u.id.clone()), roles: parse_roles(&u.roles)? })
}

async fn hash_password(password: String) -> Result<String> {
    check_password_strength(&password)?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default().hash_password(password.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))?
    .map_err(|e| AppError::Internal(e.to_string()))
}

fn check_password_strength(p: &str) -> Result<()> {
    if p.chars().count() < 12 {
        return Err(AppError::Invalid {
            code: "weak_password",
            message: "the password must have at least 12 characters".into(),
            field: Some("password".into()),
            details: None,
        });
    }
    if p.len() > 1024 {
        return Err(AppError::invalid("weak_password", "the password is longer than 1024 bytes"));
    }
    Ok(())
}

/// Verifies in constant time for the hash; an unknown account is checked
/// against a dummy hash so that timing does not tell accounts apart.
async fn verify_password(hash: Option<String>, password: String) -> Result<bool> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    tokio::task::spawn_blocking(move || {
        let known = hash.is_some();
        let h = match hash {
            Some(h) => h,
            None => DUMMY
                .get_or_init(|| {
                    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
                    Argon2::default().hash_password(b"not a password", &salt).map(|h| h.to_string()).unwrap_or_default()
                })
                .clone(),
        };
        let ok =
            PasswordHash::new(&h).is_ok_and(|p| Argon2::default().verify_password(password.as_bytes(), &p).is_ok());
        ok && known
    })
    .await
    .map_err(|e| AppError::Internal(e.to_string()))
}

fn valid_email(email: &str) -> Result<String> {
    guichet_core::Email::parse(email).map(|e| e.as_str().to_lowercase()).map_err(|e| AppError::Invalid {
        code: "invalid_email",
        message: e.to_string(),
        field: Some("email".into()),
        details: None,
    })
}

impl App {
    /// The caller of a session token, if the session is live and the
    /// account active.
    pub async fn caller_from_session(&self, token: &str) -> Result<Option<Caller>> {
        let Some((s, user)) = self.store.session_user(token, self.now()).await? else { return Ok(None) };
        Ok(Some(Caller { actor: actor_of(&user)?, user, csrf: Some(s.csrf) }))
    }

    /// An operator at the console acting as one of the organization's
    /// accounts (the CLI's `--as EMAIL`): the account must be active, and
    /// its roles are checked as on the screens.
    pub async fn caller_as_operator(&self, email: &str) -> Result<Caller> {
        let user = self
            .store
            .user_by_email(email)
            .await?
            .filter(|u| u.active)
            .ok_or_else(|| AppError::Forbidden(format!("no active account {email}")))?;
        Ok(Caller { actor: actor_of(&user)?, user, csrf: None })
    }

    /// The caller of an API token.
    pub async fn caller_from_api_token(&self, token: &str) -> Result<Option<Caller>> {
        let Some(t) = self.store.api_token(token, self.now()).await? else { return Ok(None) };
        let Some(user) = self.store.user(&t.user_id).await?.filter(|u| u.active) else { return Ok(None) };
        Ok(Some(Caller { actor: actor_of(&user)?, user, csrf: None }))
    }

    /// A citizen opens an account; a verification link is mailed.
    pub async fn register(&self, email: &str, password: &str, name: &str, language: &str) -> Result<UserRow> {
        let email = valid_email(email)?;
        if name.trim().is_empty() {
            return Err(AppError::Invalid {
                code: "invalid_request",
                message: "the name must not be empty".into(),
                field: Some("name".into()),
                details: None,
            });
        }
        let language = if language == "en" { "en" } else { "fr" };
        let hash = hash_password(password.to_owned()).await?;
        let now = self.now();
        let user = self
            .store
            .create_user(
                NewUser {
                    email: email.clone(),
                    name: name.trim().into(),
                    password_hash: hash,
                    roles: vec!["citizen".into()],
                    language: language.into(),
                    verified: false,
                },
                None,
                now,
            )
            .await?;
        let token = secret_token()?;
        self.store.create_one_time(&token, &user.id, "verify", now + 7 * 86400).await?;
        let link = format!("{}/verify?token={token}", self.config.base_url);
        let args = [("name", name.trim().to_owned()), ("link", link)];
        let key = format!("account-verification:{}", user.id);
        self.notify(&key, None, &email, language, crate::Notice::AccountVerification, &args).await?;
        Ok(user)
    }

    /// Creates an employee or administrator account with a password (the
    /// first administrator, from `guichet admin create`; demo accounts).
    pub async fn create_account(
        &self,
        by: Option<&Caller>,
        email: &str,
        name: &str,
        password: &str,
        roles: &[String],
    ) -> Result<UserRow> {
        if let Some(c) = by {
            c.may(Action::Administer, None)?;
        }
        parse_roles(roles)?;
        let email = valid_email(email)?;
        let hash = hash_password(password.to_owned()).await?;
        Ok(self
            .store
            .create_user(
                NewUser {
                    email,
                    name: name.trim().into(),
                    password_hash: hash,
                    roles: roles.to_vec(),
                    language: "fr".into(),
                    verified: true,
                },
                by.map(|c| c.id()),
                self.now(),
            )
            .await?)
    }

    /// An administrator invites someone: the account exists with no usable
    /// password and a link to choose one is mailed.
    pub async fn invite(&self, by: &Caller, email: &str, name: &str, roles: &[String]) -> Result<UserRow> {
        by.may(Action::Administer, None)?;
        parse_roles(roles)?;
        let email = valid_email(email)?;
        let now = self.now();
        let user = self
            .store
            .create_user(
                NewUser {
                    email: email.clone(),
                    name: name.trim().into(),
                    password_hash: "!invited".into(),
                    roles: roles.to_vec(),
                    language: "fr".into(),
                    verified: true,
                },
                Some(by.id()),
                now,
            )
            .await?;
        let token = secret_token()?;
        self.store.create_one_time(&token, &user.id, "reset", now + 7 * 86400).await?;
        let link = format!("{}/reset?token={token}", self.config.base_url);
        self.store
            .queue_mail(&email, "Invitation guichet", &format!("Choisissez votre mot de passe : {link}\n"), now)
            .await?;
        Ok(user)
    }

    pub async fn verify_email(&self, token: &str) -> Result<()> {
        let now = self.now();
        let user =
            self.store.consume_one_time(token, "verify", now).await?.ok_or_else(|| {
                AppError::invalid("invalid_token", "this link is not valid (already used or expired)")
            })?;
        self.store.update_user(&user, None, None, Some(true), None, None, Some(&user), now).await?;
        Ok(())
    }

    /// Always succeeds (does not tell whether the account exists).
    pub async fn request_password_reset(&self, email: &str) -> Result<()> {
        let now = self.now();
        if let Some(u) = self.store.user_by_email(email).await?.filter(|u| u.active) {
            let token = secret_token()?;
            self.store.create_one_time(&token, &u.id, "reset", now + 3600).await?;
            let link = format!("{}/reset?token={token}", self.config.base_url);
            let (subject, body) = if u.language == "en" {
                ("Reset your password", format!("To choose a new password, open this link within an hour:\n{link}\n"))
            } else {
                (
                    "Réinitialisez votre mot de passe",
                    format!("Pour choisir un nouveau mot de passe, ouvrez ce lien d'ici une heure :\n{link}\n"),
                )
            };
            self.store.queue_mail(&u.email, subject, &body, now).await?;
        }
        Ok(())
    }

    pub async fn reset_password(&self, token: &str, password: &str) -> Result<()> {
        check_password_strength(password)?;
        let now = self.now();
        let user =
            self.store.consume_one_time(token, "reset", now).await?.ok_or_else(|| {
                AppError::invalid("invalid_token", "this link is not valid (already used or expired)")
            })?;
        let hash = hash_password(password.to_owned()).await?;
        self.store.update_user(&user, None, None, Some(true), Some(&hash), None, Some(&user), now).await?;
        Ok(())
    }

    /// Signs in. Throttled per account; TOTP required when enabled.
    pub async fn login(&self, email: &str, password: &str, totp: Option<&str>) -> Result<LoginOutcome> {
        let now = self.now();
        let key = format!("login:{}", email.trim().to_lowercase());
        let window = self.config.login_window;
        if self.store.login_failures(&key, now, window).await? >= self.config.login_max_failures {
            return Err(AppError::Throttled { retry_after: window });
        }
        let user = self.store.user_by_email(email).await?;
        let ok = verify_password(user.as_ref().map(|u| u.password_hash.clone()), password.to_owned()).await?;
        let user = match user {
            Some(u) if ok && u.active => u,
            _ => {
                self.store.note_login_failure(&key, now, window).await?;
                return Err(AppError::BadCredentials);
            }
        };
        if let Some(secret) = &user.totp_secret {
            match totp {
                None => return Err(AppError::TotpRequired),
                Some(code) if totp_check(secret, code, now) => {}
                Some(_) => {
                    self.store.note_login_failure(&key, now, window).await?;
                    return Err(AppError::BadCredentials);
                }
            }
        }
        self.store.clear_login_failures(&key).await?;
        let token = secret_token()?;
        let csrf = secret_token()?;
        let expires_at = now + self.config.session_ttl;
        self.store.create_session(&token, &user.id, &csrf, now, expires_at).await?;
        Ok(LoginOutcome { token, csrf_token: csrf, expires_at, user_id: user.id, roles: user.roles })
    }

    pub async fn logout(&self, token: &str) -> Result<()> {
        Ok(self.store.delete_session(token).await?)
    }

    /// A bearer token for scripts, valid `days` days.
    pub async fn create_api_token(&self, by: &Caller, name: &str, days: i64) -> Result<(String, i64)> {
        if !(1..=366).contains(&days) {
            return Err(AppError::invalid("invalid_request", "a token lives 1 to 366 days"));
        }
        let token = secret_token()?;
        let now = self.now();
        let expires_at = now + days * 86400;
        self.store.create_api_token(&token, by.id(), name, now, expires_at).await?;
        Ok((token, expires_at))
    }

    /// Turns TOTP on: the caller proves they hold `secret` (base32) by a
    /// current code. Employees only.
    pub async fn enable_totp(&self, by: &Caller, secret_b32: &str, code: &str) -> Result<()> {
        if !by.is_staff() {
            return Err(AppError::Forbidden("two-factor codes are for employee accounts".into()));
        }
        let secret = base32_decode(secret_b32)
            .filter(|s| s.len() >= 16)
            .ok_or_else(|| AppError::invalid("invalid_request", "the secret is base32 of at least 16 bytes"))?;
        let now = self.now();
        if !totp_check(&secret, code, now) {
            return Err(AppError::invalid("invalid_code", "this code does not match the secret"));
        }
        self.store.update_user(by.id(), None, None, None, None, Some(Some(&secret)), Some(by.id()), now).await?;
        Ok(())
    }

    pub async fn users(&self, by: &Caller) -> Result<Vec<UserRow>> {
        by.may(Action::Administer, None)?;
        Ok(self.store.users().await?)
    }

    /// Changes roles or deactivates (deactivation ends the sessions and
    /// revokes the person's signing certificates).
    pub async fn update_account(
        &self,
        by: &Caller,
        id: &str,
        roles: Option<&[String]>,
        active: Option<bool>,
    ) -> Result<UserRow> {
        by.may(Action::Administer, None)?;
        if let Some(r) = roles {
            parse_roles(r)?;
        }
        if id == by.id() && (active == Some(false) || roles.is_some_and(|r| !r.iter().any(|x| x == "administrator"))) {
            return Err(AppError::Forbidden("an administrator cannot lock themselves out".into()));
        }
        self.store.update_user(id, roles, active, None, None, None, Some(by.id()), self.now()).await?;
        if active == Some(false) {
            // A departure: the person's signing certificates are revoked,
            // so nothing can be signed in their name from now on.
            self.revoke_all(id, by.id()).await?;
        }
        self.store.user(id).await?.ok_or(AppError::NotFound)
    }

    /// The latest emails sent to an address (demo mail sink; tests).
    pub async fn mails_to(&self, email: &str) -> Result<Vec<(String, String, i64)>> {
        Ok(self.store.mails_to(email, 20).await?)
    }
}

/// The organization's settings, as the screens use them.
#[derive(Debug, Clone, Serialize)]
pub struct OrgSettings {
    /// Shown in every page's header.
    pub name: String,
    /// Languages offered: always French; English unless turned off.
    pub english: bool,
    /// The logo's blob (SHA-256), if one was uploaded.
    pub logo: Option<String>,
    /// IANA time zone name (dates of applications and on the screens).
    pub time_zone: String,
}

impl App {
    /// The organization's logo: a PNG or JPEG of at most 512 KB.
    pub async fn set_logo(&self, by: &Caller, bytes: Vec<u8>) -> Result<()> {
        by.may(Action::Administer, None)?;
        let media = match crate::dossiers::sniff(&bytes) {
            Some(m @ ("image/png" | "image/jpeg")) => m,
            _ => return Err(AppError::UnsupportedMedia("the logo is a PNG or JPEG image".into())),
        };
        if bytes.len() > 512 * 1024 {
            return Err(AppError::TooLarge { limit: 512 * 1024 });
        }
        let now = self.now();
        let meta = self.store.put_blob(bytes, media, now).await?;
        Ok(self.store.set_settings(&[("logo".into(), meta.sha256.into())], by.id(), now).await?)
    }

    /// The logo's bytes and media type, if any (public).
    pub async fn logo(&self) -> Result<Option<(String, Vec<u8>)>> {
        let Some(sha) = self.org_settings().await?.logo else { return Ok(None) };
        let (meta, bytes) = self.store.blob(&sha).await?;
        Ok(Some((meta.media_type, bytes)))
    }

    pub async fn org_settings(&self) -> Result<OrgSettings> {
        let s = self.store.settings().await?;
        Ok(OrgSettings {
            name: s
                .get("name")
                .and_then(|v| v.as_str())
                .filter(|n| !n.trim().is_empty())
                .unwrap_or("guichet")
                .to_owned(),
            english: s.get("english").and_then(|v| v.as_bool()).unwrap_or(true),
            logo: s.get("logo").and_then(|v| v.as_str()).map(str::to_owned),
            time_zone: {
                let tz = s
                    .get("time_zone")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .unwrap_or_else(|| self.config.time_zone.clone());
                self.set_time_zone_cache(&tz);
                tz
            },
        })
    }

    /// Administrators name the organization and choose whether English is
    /// offered (Quebec public bodies may communicate in French only).
    pub async fn update_org_settings(
        &self,
        by: &Caller,
        name: &str,
        english: bool,
        time_zone: &str,
    ) -> Result<OrgSettings> {
        by.may(Action::Administer, None)?;
        let time_zone = time_zone.trim();
        if time_zone.is_empty() || jiff::tz::TimeZone::get(time_zone).is_err() {
            return Err(AppError::Invalid {
                code: "invalid_time_zone",
                message: format!("{time_zone:?} is not a time zone name (for example America/Toronto)"),
                field: Some("time_zone".into()),
                details: None,
            });
        }
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 120 {
            return Err(AppError::Invalid {
                code: "invalid_request",
                message: "the organization's name has 1 to 120 characters".into(),
                field: Some("name".into()),
                details: None,
            });
        }
        self.store
            .set_settings(
                &[
                    ("name".into(), name.into()),
                    ("english".into(), english.into()),
                    ("time_zone".into(), time_zone.into()),
                ],
                by.id(),
                self.now(),
            )
            .await?;
        self.org_settings().await
    }
}

impl App {
    /// The audit log, newest first (administrators).
    pub async fn audit_log(
        &self,
        by: &Caller,
        aggregate_prefix: Option<&str>,
        actor: Option<&str>,
        kind: Option<&str>,
        before: Option<i64>,
    ) -> Result<Vec<guichet_store::LogLine>> {
        by.may(Action::Administer, None)?;
        Ok(self.store.audit_log(aggregate_prefix, actor, kind, before, 100).await?)
    }
}
