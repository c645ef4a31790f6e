//! The organization's PKI and employees' personal certificates.
//!
//! On first use the service creates its own certification authority (a
//! root and an issuing CA, `guichet_pades::ca`), the organization's seal
//! certificate (it certifies the evidence of signers without a personal
//! certificate, and the certificates of completion) and the certificate
//! of its RFC 3161 timestamp authority. This material is stored sealed
//! under the data key; two servers starting together agree on one set
//! (the first insert wins).
//!
//! Each employee gets a personal signing certificate from the issuing CA.
//! Their private key is never stored in clear: it is encrypted under a
//! key derived with Argon2id from a signing passphrase only they know
//! (and then sealed again by the store). Signing asks for the passphrase;
//! five wrong ones in 15 minutes lock signing for a while.

use argon2::Argon2;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use guichet_pades::ca::{self, CaFiles, Employee, IssuingCa};
use guichet_pades::{SoftwareKey, TimestampAuthority, TimestampClient};
use guichet_store::CertificateRow;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use time::OffsetDateTime;

use crate::{App, AppError, Caller, Result};

/// How long a personal certificate is valid.
const CERTIFICATE_DAYS: i64 = 730;
/// A passphrase's smallest length.
const MIN_PASSPHRASE: usize = 10;
/// The policy of the built-in timestamp authority (under 2.25, with arcs
/// below 2^32 as const-oid needs).
const TSA_POLICY: &str = "2.25.137271.3161.1";

#[derive(Serialize, Deserialize)]
struct Material {
    organization: String,
    country: String,
    root_cert: String,
    root_key: String,
    issuing_cert: String,
    issuing_key: String,
    seal_cert: String,
    seal_key: String,
    tsa_cert: String,
    tsa_key: String,
}

/// The organization's PKI, loaded.
pub struct Pki {
    pub organization: String,
    /// DER of the root and the issuing CA.
    pub root: Vec<u8>,
    pub issuing: Vec<u8>,
    ca: IssuingCa,
    root_ca: IssuingCa,
    ca_key: SoftwareKey,
    seal_key: SoftwareKey,
    pub seal_cert: Vec<u8>,
    tsa: TimestampAuthority,
    pub tsa_cert: Vec<u8>,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki").field("organization", &self.organization).finish_non_exhaustive()
    }
}

fn pades(e: guichet_pades::Error) -> AppError {
    AppError::Internal(e.to_string())
}

fn now_time() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn random_serial() -> Result<u64> {
    let mut b = [0u8; 8];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| AppError::Internal("no randomness".into()))?;
    Ok((u64::from_be_bytes(b) & 0x7fff_ffff_ffff_ffff) | 1 << 62)
}

/// Serial bytes as the store names them: hex without leading zero bytes.
pub(crate) fn serial_hex(bytes: &[u8]) -> String {
    let trimmed: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    guichet_store::hex(&trimmed)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2).unwrap_or(""), 16).ok()).collect()
}

impl Pki {
    fn create(organization: &str) -> Result<Material> {
        let now = now_time();
        let files = ca::init(organization, "CA", now).map_err(pades)?;
        let ca = IssuingCa::load(organization, "CA", &files.issuing_key).map_err(pades)?;
        let seal = ca
            .issue(
                &Employee {
                    name: format!("{organization} — Sceau / Seal"),
                    email: "seal@guichet.invalid".into(),
                    organization: organization.into(),
                    unit: None,
                },
                random_serial()?,
                now,
                365 * 10,
            )
            .map_err(pades)?;
        let tsa = ca.issue_tsa(organization, random_serial()?, now, 365 * 10).map_err(pades)?;
        let CaFiles { root_cert, root_key, issuing_cert, issuing_key } = files;
        Ok(Material {
            organization: organization.into(),
            country: "CA".into(),
            root_cert,
            root_key,
            issuing_cert,
            issuing_key,
            seal_cert: seal.cert_pem,
            seal_key: seal.key_pem,
            tsa_cert: tsa.cert_pem,
            tsa_key: tsa.key_pem,
        })
    }

    fn load(m: Material) -> Result<Pki> {
        let der = |pem: &str| ca::pem_to_der(pem).map_err(pades);
        let key = |pem: &str| SoftwareKey::from_pkcs8(pem.as_bytes(), false).map_err(pades);
        let issuing = der(&m.issuing_cert)?;
        let tsa_cert = der(&m.tsa_cert)?;
        let tsa = TimestampAuthority::new(
            Box::new(key(&m.tsa_key)?),
            tsa_cert.clone(),
            vec![issuing.clone()],
            TSA_POLICY,
            Box::new(now_time),
        )
        .map_err(pades)?;
        Ok(Pki {
            root: der(&m.root_cert)?,
            issuing,
            ca: IssuingCa::load(&m.organization, &m.country, &m.issuing_key).map_err(pades)?,
            root_ca: IssuingCa::load_root(&m.organization, &m.country, &m.root_key).map_err(pades)?,
            ca_key: key(&m.issuing_key)?,
            seal_key: key(&m.seal_key)?,
            seal_cert: der(&m.seal_cert)?,
            tsa,
            tsa_cert,
            organization: m.organization,
        })
    }

    /// The chain above every certificate this PKI issued (issuing CA;
    /// validators are given the root as their trust anchor).
    pub fn chain(&self) -> Vec<Vec<u8>> {
        vec![self.issuing.clone()]
    }

    pub(crate) fn seal(&self) -> (&SoftwareKey, &[u8]) {
        (&self.seal_key, &self.seal_cert)
    }
}

/// The built-in timestamp authority, as a client.
struct LocalTsa(Arc<Pki>);

impl TimestampClient for LocalTsa {
    fn exchange(&self, request: &[u8]) -> std::result::Result<Vec<u8>, guichet_pades::Error> {
        Ok(self.0.tsa.respond(request))
    }
}

impl App {
    /// The timestamp authority signatures use: the configured one, else
    /// the built-in one.
    pub(crate) fn timestamp_client(&self, pki: &Arc<Pki>) -> Arc<dyn TimestampClient> {
        match &self.timestamps {
            Some(c) => c.0.clone(),
            None => Arc::new(LocalTsa(pki.clone())),
        }
    }

    /// What validation trusts: the organization's root and the configured
    /// anchors.
    pub(crate) fn trust(&self, pki: &Pki) -> Vec<Vec<u8>> {
        let mut t = vec![pki.root.clone()];
        t.extend(self.config.trust_anchors.iter().cloned());
        t
    }
}

/// A certificate as the API shows it (never its key).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct CertificateView {
    pub serial: String,
    pub subject: String,
    pub not_after: i64,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    pub revocation_reason: Option<String>,
    /// Valid now: not revoked, not expired.
    pub valid: bool,
}

impl CertificateView {
    fn of(c: &CertificateRow, now: i64) -> CertificateView {
        CertificateView {
            serial: c.serial.clone(),
            subject: c.subject.clone(),
            not_after: c.not_after,
            created_at: c.created_at,
            revoked_at: c.revoked_at,
            revocation_reason: c.revocation_reason.clone(),
            valid: c.revoked_at.is_none() && c.not_after > now,
        }
    }
}

/// `v1 ‖ salt(16) ‖ nonce(12) ‖ AES-256-GCM(PKCS#8 PEM)` under
/// Argon2id(passphrase, salt).
fn lock_key(pkcs8_pem: &[u8], passphrase: &str) -> Result<Vec<u8>> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| AppError::Internal("no randomness".into()))?;
    aws_lc_rs::rand::fill(&mut nonce).map_err(|_| AppError::Internal("no randomness".into()))?;
    let key = derive(passphrase, &salt)?;
    let mut data = pkcs8_pem.to_vec();
    key.seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(b"guichet signing key v1"), &mut data)
        .map_err(|_| AppError::Internal("cannot encrypt the key".into()))?;
    let mut out = b"v1".to_vec();
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&data);
    Ok(out)
}

fn derive(passphrase: &str, salt: &[u8]) -> Result<LessSafeKey> {
    let mut k = [0u8; 32];
    Argon2::default()
        .hash_password_into(passphrase.as_bytes(), salt, &mut k)
        .map_err(|e| AppError::Internal(format!("key derivation: {e}")))?;
    let unbound = UnboundKey::new(&AES_256_GCM, &k).map_err(|_| AppError::Internal("bad key".into()))?;
    Ok(LessSafeKey::new(unbound))
}

/// Opens a locked key; `None` for a wrong passphrase.
fn unlock_key(locked: &[u8], passphrase: &str) -> Result<Option<Vec<u8>>> {
    if locked.len() < 2 + 16 + 12 + 16 || &locked[..2] != b"v1" {
        return Err(AppError::Internal("a stored signing key is unreadable".into()));
    }
    let (salt, rest) = locked[2..].split_at(16);
    let (nonce, sealed) = rest.split_at(12);
    let key = derive(passphrase, salt)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| AppError::Internal("bad nonce".into()))?;
    let mut data = sealed.to_vec();
    Ok(key.open_in_place(nonce, Aad::from(b"guichet signing key v1"), &mut data).ok().map(|p| p.to_vec()))
}

/// Where an unlocked key is: in memory, or on the server's PKCS#11
/// module (opened for each signature, one at a time in this process).
pub(crate) enum KeySource {
    Software(SoftwareKey),
    Token { module: String, token: String, label: String, pin: String, spki: Vec<u8> },
}

/// PKCS#11 libraries are initialized once per process at a time.
static PKCS11: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl KeySource {
    /// Runs `f` with the key as a signer (blocking: call off the runtime).
    pub(crate) fn with_signer<T>(&self, f: impl FnOnce(&dyn guichet_pades::Signer) -> Result<T>) -> Result<T> {
        match self {
            KeySource::Software(k) => f(k),
            KeySource::Token { module, token, label, pin, spki } => {
                let _one = PKCS11.lock().map_err(|_| AppError::Internal("PKCS#11 lock poisoned".into()))?;
                let key = guichet_pades::Pkcs11Key::open(module, Some(token), pin, label, spki).map_err(token_error)?;
                f(&key)
            }
        }
    }
}

/// A token's error: a wrong PIN is the user's; the rest is the HSM's.
fn token_error(e: guichet_pades::Error) -> AppError {
    let m = e.to_string();
    if m.contains("PIN") || m.contains("login") {
        AppError::Invalid { code: "wrong_passphrase", message: m, field: Some("passphrase".into()), details: None }
    } else {
        AppError::Unavailable(format!("the signing token did not answer: {m}"))
    }
}

/// An employee's key, unlocked for one signature.
pub(crate) struct Unlocked {
    pub key: KeySource,
    pub certificate: Vec<u8>,
    pub serial: String,
    /// The issuers of an imported certificate (else the organization's).
    pub chain: Option<Vec<Vec<u8>>>,
}

impl App {
    /// The organization's PKI, created on first use.
    pub async fn pki(&self) -> Result<Arc<Pki>> {
        self.pki
            .get_or_try_init(|| async {
                let material = match self.store.pki().await? {
                    Some(m) => m,
                    None => {
                        let name = self.org_settings().await.map(|s| s.name).unwrap_or_default();
                        let name = if name.trim().is_empty() { "guichet".to_owned() } else { name };
                        let fresh = tokio::task::spawn_blocking(move || Pki::create(&name))
                            .await
                            .map_err(|e| AppError::Internal(e.to_string()))??;
                        let bytes = serde_json::to_vec(&fresh).map_err(|e| AppError::Internal(e.to_string()))?;
                        self.store.init_pki(&bytes, self.now()).await?
                    }
                };
                let m: Material = serde_json::from_slice(&material)
                    .map_err(|e| AppError::Internal(format!("the stored PKI is unreadable: {e}")))?;
                Ok(Arc::new(Pki::load(m)?))
            })
            .await
            .cloned()
    }

    /// The root and issuing CA certificates, PEM (what validators trust).
    pub async fn ca_pem(&self) -> Result<String> {
        let pki = self.pki().await?;
        Ok(format!("{}{}", ca::der_to_pem(&pki.root).map_err(pades)?, ca::der_to_pem(&pki.issuing).map_err(pades)?))
    }

    /// The issuing CA's current CRL (DER), valid 7 days.
    pub async fn crl(&self) -> Result<Vec<u8>> {
        let pki = self.pki().await?;
        let revoked = self.store.revoked_certificates().await?;
        let list: Vec<_> = revoked
            .iter()
            .map(|(serial, at, reason)| {
                let when = OffsetDateTime::from_unix_timestamp(*at).unwrap_or_else(|_| now_time());
                (unhex(serial), when, reason_code(reason))
            })
            .collect();
        let number = self.now().max(1) as u64;
        pki.ca.crl(&list, number, now_time(), 7).map_err(pades)
    }

    /// The root's CRL (DER), covering the issuing CA, valid 30 days.
    pub async fn root_crl(&self) -> Result<Vec<u8>> {
        let pki = self.pki().await?;
        pki.root_ca.crl(&[], self.now().max(1) as u64, now_time(), 30).map_err(pades)
    }

    /// Answers an OCSP request about the issuing CA's certificates.
    pub async fn ocsp(&self, request: &[u8]) -> Result<Vec<u8>> {
        let pki = self.pki().await?;
        let revoked = self.store.revoked_certificates().await?;
        let status = |serial: &[u8]| ocsp_status(&revoked, serial);
        Ok(guichet_pades::ocsp::respond(request, &pki.issuing, &pki.ca_key, &pki.issuing, &status, now_time()))
    }

    /// OCSP responses (DER) about `certificates`, for the validation data
    /// of a completed document.
    pub(crate) async fn ocsp_about(&self, certificates: &[Vec<u8>]) -> Result<Vec<u8>> {
        let pki = self.pki().await?;
        let revoked = self.store.revoked_certificates().await?;
        let serials = certificates.iter().map(|c| guichet_pades::certificate_serial(c)).collect::<Result<Vec<_>, _>>();
        let serials = serials.map_err(pades)?;
        let status = |serial: &[u8]| ocsp_status(&revoked, serial);
        guichet_pades::ocsp::respond_for(&pki.issuing, &pki.ca_key, &pki.issuing, &serials, &status, now_time())
            .map_err(pades)
    }

    /// Answers an RFC 3161 timestamp request.
    pub async fn timestamp(&self, request: &[u8]) -> Result<Vec<u8>> {
        Ok(self.pki().await?.tsa.respond(request))
    }

    /// Issues the caller (an employee) a personal signing certificate;
    /// its key is locked under `passphrase`. A certificate still valid is
    /// superseded (revoked) by the new one: this is also renewal.
    pub async fn issue_certificate(&self, caller: &Caller, passphrase: &str) -> Result<CertificateView> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("personal signing certificates are for employees".into()));
        }
        if passphrase.chars().count() < MIN_PASSPHRASE {
            return Err(AppError::Invalid {
                code: "weak_passphrase",
                message: format!("the signing passphrase needs at least {MIN_PASSPHRASE} characters"),
                field: Some("passphrase".into()),
                details: None,
            });
        }
        let pki = self.pki().await?;
        let employee = Employee {
            name: caller.user.name.clone(),
            email: caller.user.email.clone(),
            organization: pki.organization.clone(),
            unit: None,
        };
        let serial = random_serial()?;
        let pass = passphrase.to_owned();
        let p = pki.clone();
        let (issued, locked) = tokio::task::spawn_blocking(move || -> Result<_> {
            let issued = p.ca.issue(&employee, serial, now_time(), CERTIFICATE_DAYS).map_err(pades)?;
            let locked = lock_key(issued.key_pem.as_bytes(), &pass)?;
            Ok((issued, locked))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
        self.record_certificate(caller, issued.cert_der, Some(locked), None, None, "bad_certificate").await
    }

    /// Stores a new certificate of `caller` (its validity read from it)
    /// and supersedes their others. `code` names bad input.
    async fn record_certificate(
        &self,
        caller: &Caller,
        certificate: Vec<u8>,
        private_key: Option<Vec<u8>>,
        chain: Option<Vec<Vec<u8>>>,
        token: Option<(String, String)>,
        code: &'static str,
    ) -> Result<CertificateView> {
        let not_after = {
            use der::Decode;
            x509_cert::Certificate::from_der(&certificate)
                .map(|c| c.tbs_certificate.validity.not_after.to_unix_duration().as_secs() as i64)
                .map_err(|e| AppError::invalid(code, format!("unreadable certificate: {e}")))?
        };
        let serial = serial_hex(&guichet_pades::certificate_serial(&certificate).map_err(pades)?);
        if self.store.certificate(&serial).await?.is_some() {
            return Err(AppError::Taken("this certificate".into()));
        }
        let now = self.now();
        let previous = self.store.certificates_of(caller.id()).await?;
        let name = guichet_pades::certificate_common_name(&certificate).unwrap_or_else(|| caller.user.name.clone());
        let row = CertificateRow {
            serial,
            user_id: caller.id().into(),
            subject: format!("{name} <{}>", caller.user.email),
            certificate,
            private_key,
            chain,
            token,
            not_after,
            created_at: now,
            revoked_at: None,
            revocation_reason: None,
        };
        self.store.add_certificate(&row, caller.id()).await?;
        for old in previous.iter().filter(|c| c.revoked_at.is_none()) {
            self.store.revoke_certificate(&old.serial, "superseded", caller.id(), now).await?;
        }
        Ok(CertificateView::of(&row, now))
    }

    /// An employee brings their certificate from the organization's own
    /// CA (a PKCS#12 file and its password); its key is then locked under
    /// their signing passphrase like an issued one. The certificate must
    /// validate to a trust anchor (`Config::trust_anchors`): a test
    /// signature is made and checked before anything is stored.
    pub async fn import_certificate(
        &self,
        caller: &Caller,
        p12: Vec<u8>,
        password: &str,
        passphrase: &str,
    ) -> Result<CertificateView> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("personal signing certificates are for employees".into()));
        }
        if passphrase.chars().count() < MIN_PASSPHRASE {
            return Err(AppError::Invalid {
                code: "weak_passphrase",
                message: format!("the signing passphrase needs at least {MIN_PASSPHRASE} characters"),
                field: Some("passphrase".into()),
                details: None,
            });
        }
        let pki = self.pki().await?;
        let trust = self.trust(&pki);
        let (pass, password) = (passphrase.to_owned(), password.to_owned());
        let (identity, locked) = tokio::task::spawn_blocking(move || -> Result<_> {
            let id = guichet_pades::import_pkcs12(&p12, &password, false)
                .map_err(|e| AppError::invalid("bad_pkcs12", e.to_string()))?;
            probe_signature(&id.key, &id.certificate, &id.chain, &trust, "bad_pkcs12")?;
            let locked = lock_key(&id.key_pkcs8, &pass)?;
            Ok((id, locked))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
        self.record_certificate(caller, identity.certificate, Some(locked), Some(identity.chain), None, "bad_pkcs12")
            .await
    }

    /// An employee registers a key on the server's PKCS#11 module (an HSM
    /// slot of their own, its PIN theirs) with its certificate (PEM, then
    /// its issuers). The key must sign with the PIN, match the
    /// certificate, and a test signature must validate to a trust anchor.
    pub async fn register_token(
        &self,
        caller: &Caller,
        certificate_pem: &str,
        token: &str,
        key_label: &str,
        pin: &str,
    ) -> Result<CertificateView> {
        if !caller.is_staff() {
            return Err(AppError::Forbidden("personal signing certificates are for employees".into()));
        }
        let module = self.config.pkcs11_module.clone().ok_or_else(|| {
            AppError::invalid("no_pkcs11", "this service has no PKCS#11 module configured (setting pkcs11_module)")
        })?;
        let mut certs =
            ca::pem_all(certificate_pem).map_err(|e| AppError::invalid("bad_certificate", e.to_string()))?;
        if certs.is_empty() {
            return Err(AppError::invalid("bad_certificate", "give the certificate in PEM, then its issuers"));
        }
        let certificate = certs.remove(0);
        let spki = guichet_pades::certificate_public_key(&certificate)
            .map_err(|e| AppError::invalid("bad_certificate", e.to_string()))?;
        let pki = self.pki().await?;
        let trust = self.trust(&pki);
        let chain = if certs.is_empty() { pki.chain() } else { certs.clone() };
        let source = KeySource::Token {
            module,
            token: token.trim().to_owned(),
            label: key_label.trim().to_owned(),
            pin: pin.to_owned(),
            spki,
        };
        let cert = certificate.clone();
        tokio::task::spawn_blocking(move || {
            source.with_signer(|key| probe_signature(key, &cert, &chain, &trust, "bad_certificate"))
        })
        .await
        .map_err(|e| AppError::Internal(e.to_string()))??;
        let chain = (!certs.is_empty()).then_some(certs);
        let token = Some((token.trim().to_owned(), key_label.trim().to_owned()));
        self.record_certificate(caller, certificate, None, chain, token, "bad_certificate").await
    }

    /// A user's certificates (their own, or anyone's for an administrator).
    pub async fn certificates(&self, caller: &Caller, user: &str) -> Result<Vec<CertificateView>> {
        if user != caller.id() {
            caller.may(guichet_core::Action::Administer, None)?;
        }
        let now = self.now();
        Ok(self.store.certificates_of(user).await?.iter().map(|c| CertificateView::of(c, now)).collect())
    }

    /// Revokes a certificate: its holder, or an administrator.
    pub async fn revoke_certificate(&self, caller: &Caller, serial: &str, reason: &str) -> Result<()> {
        let c = self.store.certificate(serial).await?.ok_or(AppError::NotFound)?;
        if c.user_id != caller.id() {
            caller.may(guichet_core::Action::Administer, None)?;
        }
        let reason = revocation_reason(reason)?;
        if !self.store.revoke_certificate(serial, reason, caller.id(), self.now()).await? {
            return Err(AppError::WrongState("this certificate is already revoked".into()));
        }
        Ok(())
    }

    /// Revokes a certificate from the command line (an operator with the
    /// database's settings); returns the reason recorded.
    pub async fn revoke_certificate_as_operator(&self, serial: &str, reason: &str) -> Result<&'static str> {
        self.store.certificate(serial).await?.ok_or(AppError::NotFound)?;
        let reason = revocation_reason(reason)?;
        if !self.store.revoke_certificate(serial, reason, "operator", self.now()).await? {
            return Err(AppError::WrongState("this certificate is already revoked".into()));
        }
        Ok(reason)
    }
}

fn revocation_reason(reason: &str) -> Result<&'static str> {
    Ok({
        match reason {
            "" | "unspecified" => "unspecified",
            "key_compromise" | "keyCompromise" => "keyCompromise",
            "affiliation_changed" | "affiliationChanged" => "affiliationChanged",
            "superseded" => "superseded",
            "cessation_of_operation" | "cessationOfOperation" => "cessationOfOperation",
            other => {
                return Err(AppError::invalid(
                    "invalid_request",
                    format!(
                        "unknown revocation reason {other:?} (unspecified, key_compromise, affiliation_changed, superseded, cessation_of_operation)"
                    ),
                ));
            }
        }
    })
}

impl App {
    /// On departure: every valid certificate of `user` is revoked.
    pub(crate) async fn revoke_all(&self, user: &str, by: &str) -> Result<usize> {
        let now = self.now();
        let mut n = 0;
        for c in self.store.certificates_of(user).await?.iter().filter(|c| c.revoked_at.is_none()) {
            if self.store.revoke_certificate(&c.serial, "affiliationChanged", by, now).await? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Unlocks the caller's current certificate with their passphrase
    /// (throttled like logins).
    pub(crate) async fn unlock(&self, caller: &Caller, passphrase: &str) -> Result<Unlocked> {
        let now = self.now();
        let cert = self
            .store
            .certificates_of(caller.id())
            .await?
            .into_iter()
            .find(|c| c.revoked_at.is_none() && c.not_after > now)
            .ok_or_else(|| {
                AppError::Forbidden(
                    "you have no valid signing certificate (revoked or expired): ask for one on your account page"
                        .into(),
                )
            })?;
        let key = format!("passphrase:{}", caller.id());
        let window = self.config.login_window;
        if self.store.login_failures(&key, now, window).await? >= self.config.login_max_failures {
            return Err(AppError::Throttled { retry_after: window });
        }
        if let Some((token, label)) = cert.token.clone() {
            // The token checks the PIN (and locks itself after its own tries).
            let module = self.config.pkcs11_module.clone().ok_or_else(|| {
                AppError::Unavailable("this service has no PKCS#11 module configured for signing tokens".into())
            })?;
            let spki = guichet_pades::certificate_public_key(&cert.certificate).map_err(pades)?;
            let source = KeySource::Token { module, token, label, pin: passphrase.to_owned(), spki };
            let checked = tokio::task::spawn_blocking(move || source.with_signer(|_| Ok(())).map(|()| source))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
            return match checked {
                Ok(source) => {
                    self.store.clear_login_failures(&key).await?;
                    Ok(Unlocked { key: source, certificate: cert.certificate, serial: cert.serial, chain: cert.chain })
                }
                Err(e @ AppError::Invalid { .. }) => {
                    self.store.note_login_failure(&key, now, window).await?;
                    Err(e)
                }
                Err(e) => Err(e),
            };
        }
        let locked = cert.private_key.clone().ok_or_else(|| AppError::Internal("the certificate has no key".into()))?;
        let pass = passphrase.to_owned();
        let opened = tokio::task::spawn_blocking(move || unlock_key(&locked, &pass))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))??;
        let Some(pem) = opened else {
            self.store.note_login_failure(&key, now, window).await?;
            return Err(AppError::Invalid {
                code: "wrong_passphrase",
                message: "wrong signing passphrase".into(),
                field: Some("passphrase".into()),
                details: None,
            });
        };
        self.store.clear_login_failures(&key).await?;
        Ok(Unlocked {
            key: KeySource::Software(SoftwareKey::from_pkcs8(&pem, false).map_err(pades)?),
            certificate: cert.certificate,
            serial: cert.serial,
            chain: cert.chain,
        })
    }
}

/// A test signature with a key over a one-page PDF, validated now against
/// `trust`: a key that cannot sign, or a certificate no trusted authority
/// vouches for, is refused before anything is stored.
fn probe_signature(
    key: &dyn guichet_pades::Signer,
    certificate: &[u8],
    chain: &[Vec<u8>],
    trust: &[Vec<u8>],
    code: &'static str,
) -> Result<()> {
    let probe = crate::docs()
        .render(
            "#set document(date: datetime(year: 2020, month: 1, day: 1))\n#set text(lang: \"fr\")\nguichet",
            &serde_json::json!({}),
        )
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let opts = guichet_pades::SignOptions::new(key, certificate, chain);
    let signed = guichet_pades::sign_pdf(&probe, &opts)
        .map_err(|e| AppError::invalid(code, format!("this certificate cannot sign: {e}")))?;
    let report =
        guichet_pades::verify_pdf(&signed, trust, now_time()).map_err(|e| AppError::Internal(e.to_string()))?;
    if report.all_passed() {
        return Ok(());
    }
    let why = report.signatures.first().map(|s| s.details.join("; ")).unwrap_or_default();
    Err(AppError::invalid(
        "untrusted_certificate",
        format!("this certificate does not validate to a trusted authority (add its root to trust_file): {why}"),
    ))
}

/// What the OCSP responder says of `serial`, from the revoked list.
fn ocsp_status(revoked: &[(String, i64, String)], serial: &[u8]) -> guichet_pades::ocsp::Status {
    let hex = serial_hex(serial);
    match revoked.iter().find(|(s, _, _)| *s == hex) {
        Some((_, at, _)) => guichet_pades::ocsp::Status::Revoked(
            OffsetDateTime::from_unix_timestamp(*at).unwrap_or_else(|_| now_time()),
        ),
        None => guichet_pades::ocsp::Status::Good,
    }
}

fn reason_code(r: &str) -> ca::Reason {
    match r {
        "keyCompromise" => ca::Reason::KeyCompromise,
        "affiliationChanged" => ca::Reason::AffiliationChanged,
        "superseded" => ca::Reason::Superseded,
        "cessationOfOperation" => ca::Reason::CessationOfOperation,
        _ => ca::Reason::Unspecified,
    }
}

/// What the public verification page says about one signature.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SignatureVerdict {
    pub field: String,
    /// `TOTAL-PASSED`, `INDETERMINATE` or `TOTAL-FAILED`.
    pub indication: String,
    pub sub_indication: Option<String>,
    pub signer: Option<String>,
    /// `B-B`, `B-T`, `B-LT`, `B-LTA`.
    pub level: Option<String>,
    /// What changed after this signature: `none`, `allowed`, `not_allowed`.
    pub modification: String,
    /// When a verified timestamp proves it existed (seconds since 1970).
    pub timestamp: Option<i64>,
    pub details: Vec<String>,
}

/// The verdict on a whole document.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Verification {
    /// Every signature TOTAL-PASSED.
    pub valid: bool,
    pub sha256: String,
    pub signatures: Vec<SignatureVerdict>,
}

impl App {
    /// Validates every signature of a PDF against the organization's CA
    /// (anyone may ask: the public verification page).
    pub async fn verify_document(&self, pdf: Vec<u8>) -> Result<Verification> {
        if pdf.len() > self.config.max_upload {
            return Err(AppError::TooLarge { limit: self.config.max_upload });
        }
        if !pdf.starts_with(b"%PDF-") {
            return Err(AppError::UnsupportedMedia("this file is not a PDF".into()));
        }
        let pki = self.pki().await?;
        let trust = self.trust(&pki);
        let sha = {
            use sha2::Digest;
            guichet_store::hex(&sha2::Sha256::digest(&pdf))
        };
        let report = tokio::task::spawn_blocking(move || guichet_pades::verify_pdf(&pdf, &trust, now_time()))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
            .map_err(|e| match e {
                guichet_pades::Error::Encrypted => AppError::invalid("encrypted_pdf", e.to_string()),
                other => AppError::invalid("unreadable_pdf", other.to_string()),
            })?;
        Ok(Verification {
            valid: report.all_passed(),
            sha256: sha,
            signatures: report
                .signatures
                .into_iter()
                .map(|s| SignatureVerdict {
                    field: s.field,
                    indication: s.indication.as_str().into(),
                    sub_indication: s.sub_indication.map(str::to_owned),
                    signer: s.signer,
                    level: s.level.map(str::to_owned),
                    modification: s.modification.as_str().into(),
                    timestamp: s.timestamp.map(|t| t.unix_timestamp()),
                    details: s.details,
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_locked_key_opens_with_its_passphrase_only() {
        let locked = lock_key(b"-----BEGIN PRIVATE KEY-----", "correct horse battery").expect("lock");
        assert_eq!(
            unlock_key(&locked, "correct horse battery").expect("ok").as_deref(),
            Some(&b"-----BEGIN PRIVATE KEY-----"[..])
        );
        assert_eq!(unlock_key(&locked, "wrong horse battery").expect("ok"), None);
        let mut tampered = locked.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        assert_eq!(unlock_key(&tampered, "correct horse battery").expect("ok"), None);
        assert!(unlock_key(b"v0", "x").is_err());
        let again = lock_key(b"-----BEGIN PRIVATE KEY-----", "correct horse battery").expect("lock");
        assert_ne!(locked, again, "fresh salt and nonce each time");
    }

    #[test]
    fn serials_are_named_without_leading_zeros() {
        assert_eq!(serial_hex(&[0, 0x7f, 1]), "7f01");
        assert_eq!(unhex("7f01"), vec![0x7f, 1]);
    }
}
