//! Keys on a PKCS#11 token (an HSM, a smart card, SoftHSM2), through
//! cryptoki. The private key never leaves the token.

use crate::Error;
use crate::keys::{Algorithm, Signer};
use const_oid::db::rfc5912;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use der::Decode;
use std::sync::Mutex;

fn p11(what: &str, e: cryptoki::error::Error) -> Error {
    let msg = match &e {
        cryptoki::error::Error::Pkcs11(rv, _) => {
            let text = format!("{rv:?}");
            if text.contains("PinIncorrect") {
                "wrong PIN".to_owned()
            } else if text.contains("PinLocked") {
                "the PIN is locked".to_owned()
            } else {
                text
            }
        }
        other => other.to_string(),
    };
    Error::Key(format!("PKCS#11 {what}: {msg}"))
}

/// A signing key on a PKCS#11 token.
pub struct Pkcs11Key {
    // The session must be dropped before the library context.
    session: Mutex<Session>,
    key: ObjectHandle,
    algorithm: Algorithm,
    spki: Vec<u8>,
    _context: Pkcs11,
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Key").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

impl Pkcs11Key {
    /// Opens the token labelled `token` in `module` (a PKCS#11 library),
    /// logs in with `pin`, and finds the private key labelled `key_label`.
    /// `cert_spki` is the DER public key of the signer's certificate: the
    /// key signs a probe that must verify against it, so a key that does
    /// not match the certificate is caught before any document is touched.
    pub fn open(
        module: &str,
        token: Option<&str>,
        pin: &str,
        key_label: &str,
        cert_spki: &[u8],
    ) -> Result<Pkcs11Key, Error> {
        let context = Pkcs11::new(module).map_err(|e| p11(&format!("cannot load {module}"), e))?;
        context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)).map_err(|e| p11("initialize", e))?;
        // Only initialized tokens (SoftHSM2 always shows one more, empty).
        let slots: Vec<_> = context
            .get_slots_with_token()
            .map_err(|e| p11("slots", e))?
            .into_iter()
            .filter(|s| context.get_token_info(*s).is_ok_and(|t| t.token_initialized()))
            .collect();
        let slot = match token {
            Some(token) => slots
                .into_iter()
                .find(|s| context.get_token_info(*s).is_ok_and(|t| t.label().trim_end() == token))
                .ok_or_else(|| Error::Key(format!("PKCS#11: no token labelled `{token}`")))?,
            None => match slots.as_slice() {
                [one] => *one,
                [] => return Err(Error::Key("PKCS#11: no token is present".into())),
                _ => return Err(Error::Key("PKCS#11: several tokens are present; name one".into())),
            },
        };
        let token = context.get_token_info(slot).map(|t| t.label().trim_end().to_owned()).unwrap_or_default();
        let session = context.open_ro_session(slot).map_err(|e| p11("open session", e))?;
        session.login(UserType::User, Some(&AuthPin::from(pin.to_owned()))).map_err(|e| p11("login", e))?;
        let keys = session
            .find_objects(&[
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::Label(key_label.as_bytes().to_vec()),
            ])
            .map_err(|e| p11("find key", e))?;
        let key = match keys.as_slice() {
            [k] => *k,
            [] => return Err(Error::Key(format!("PKCS#11: no private key labelled `{key_label}` on `{token}`"))),
            _ => return Err(Error::Key(format!("PKCS#11: several private keys are labelled `{key_label}`"))),
        };
        let spki = spki::SubjectPublicKeyInfoRef::from_der(cert_spki)?;
        let algorithm = if spki.algorithm.oid == rfc5912::ID_EC_PUBLIC_KEY {
            match spki.algorithm.parameters_oid().ok() {
                Some(c) if c == rfc5912::SECP_256_R_1 => Algorithm::EcdsaP256Sha256,
                Some(c) if c == rfc5912::SECP_384_R_1 => Algorithm::EcdsaP384Sha384,
                _ => return Err(Error::Key("PKCS#11: only P-256 and P-384 EC keys are supported".into())),
            }
        } else if spki.algorithm.oid == rfc5912::RSA_ENCRYPTION {
            Algorithm::RsaPkcs1Sha256
        } else {
            return Err(Error::Key(format!("PKCS#11: unsupported key algorithm {}", spki.algorithm.oid)));
        };
        let k = Pkcs11Key { session: Mutex::new(session), key, algorithm, spki: cert_spki.to_vec(), _context: context };
        let probe = b"guichet: does this key match the certificate?";
        let sig = k.sign(probe)?;
        crate::keys::verify_signature(cert_spki, &algorithm.algorithm_identifier()?, probe, &sig)
            .map_err(|_| Error::Key("the token's private key does not match the certificate's public key".into()))?;
        Ok(k)
    }
}

/// `r || s` as a DER `ECDSA-Sig-Value`.
fn ecdsa_der(raw: &[u8]) -> Result<Vec<u8>, Error> {
    if raw.is_empty() || raw.len() % 2 != 0 {
        return Err(Error::Sign("the token returned a malformed ECDSA signature".into()));
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let int = |x: &[u8]| -> Result<Vec<u8>, Error> {
        use der::Encode;
        Ok(der::asn1::UintRef::new(x)?.to_der()?)
    };
    let body = [int(r)?, int(s)?].concat();
    let mut out = vec![0x30];
    if body.len() < 128 {
        out.push(body.len() as u8);
    } else {
        out.extend_from_slice(&[0x81, body.len() as u8]);
    }
    out.extend_from_slice(&body);
    Ok(out)
}

impl Signer for Pkcs11Key {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    fn public_key_info(&self) -> Vec<u8> {
        self.spki.clone()
    }
    fn max_signature_len(&self) -> usize {
        match self.algorithm {
            Algorithm::EcdsaP256Sha256 => 72,
            Algorithm::EcdsaP384Sha384 => 104,
            // The modulus length, from the certificate's key.
            _ => spki::SubjectPublicKeyInfoRef::from_der(&self.spki)
                .map(|s| s.subject_public_key.raw_bytes().len())
                .unwrap_or(512),
        }
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        let session = self.session.lock().map_err(|_| Error::Sign("the PKCS#11 session is unusable".into()))?;
        match self.algorithm {
            // SoftHSM2 2.6 has no CKM_ECDSA_SHA256: hash here, sign the digest.
            Algorithm::EcdsaP256Sha256 | Algorithm::EcdsaP384Sha384 => {
                let digest = self.algorithm.digest().hash(message);
                let raw = session.sign(&Mechanism::Ecdsa, self.key, &digest).map_err(|e| p11("sign", e))?;
                ecdsa_der(&raw)
            }
            Algorithm::RsaPkcs1Sha256 => {
                session.sign(&Mechanism::Sha256RsaPkcs, self.key, message).map_err(|e| p11("sign", e))
            }
            Algorithm::RsaPssSha256 => Err(Error::Sign("RSA-PSS on PKCS#11 tokens is not supported yet".into())),
        }
    }
}
