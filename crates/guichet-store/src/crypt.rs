//! Personal data at rest: every event body and dossier snapshot (answers,
//! SIN, bank accounts, addresses, names) is sealed with AES-256-GCM under
//! the organization's data key, and bound to its row (the associated data
//! names the row) so a sealed value cannot be moved to another row.
//! Equality lookups (duplicate detection) use keyed HMAC-SHA-256 digests,
//! never the clear value.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::{hmac, rand};

use crate::StoreError;

/// The 32-byte data key (from settings, 64 hex digits).
#[derive(Clone)]
pub struct DataKey([u8; 32]);

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(…)")
    }
}

impl DataKey {
    /// Parses 64 hex digits.
    pub fn from_hex(s: &str) -> Result<DataKey, StoreError> {
        crate::unhex(s.trim())
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .map(DataKey)
            .ok_or_else(|| StoreError::Config("the data key is 64 hex digits (32 bytes)".into()))
    }

    /// A fresh random key.
    pub fn generate() -> Result<DataKey, StoreError> {
        let mut k = [0u8; 32];
        rand::fill(&mut k).map_err(|_| StoreError::Crypto)?;
        Ok(DataKey(k))
    }

    pub fn to_hex(&self) -> String {
        crate::hex(&self.0)
    }
}

pub(crate) struct Cipher {
    aead: LessSafeKey,
    index: hmac::Key,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cipher(…)")
    }
}

impl Cipher {
    pub(crate) fn new(key: &DataKey) -> Result<Cipher, StoreError> {
        // Two keys from one: the AEAD key and the blind-index key, derived
        // by HMAC with distinct labels so neither reveals the other.
        let master = hmac::Key::new(hmac::HMAC_SHA256, &key.0);
        let aead_key = hmac::sign(&master, b"guichet aead v1");
        let index_key = hmac::sign(&master, b"guichet blind index v1");
        let unbound = UnboundKey::new(&AES_256_GCM, aead_key.as_ref()).map_err(|_| StoreError::Crypto)?;
        Ok(Cipher { aead: LessSafeKey::new(unbound), index: hmac::Key::new(hmac::HMAC_SHA256, index_key.as_ref()) })
    }

    /// nonce ‖ ciphertext ‖ tag.
    pub(crate) fn seal(&self, row: &str, plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce).map_err(|_| StoreError::Crypto)?;
        let mut out = Vec::with_capacity(NONCE_LEN + plain.len() + 16);
        out.extend_from_slice(&nonce);
        let mut body = plain.to_vec();
        self.aead
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(row.as_bytes()), &mut body)
            .map_err(|_| StoreError::Crypto)?;
        out.extend_from_slice(&body);
        Ok(out)
    }

    pub(crate) fn open(&self, row: &str, sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < NONCE_LEN + 16 {
            return Err(StoreError::Corrupt(format!("{row}: sealed value too short")));
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| StoreError::Crypto)?;
        let mut body = body.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(row.as_bytes()), &mut body)
            .map_err(|_| StoreError::Corrupt(format!("{row}: cannot be decrypted (wrong data key or altered row)")))?;
        Ok(plain.to_vec())
    }

    /// The keyed digest used to find equal values without storing them.
    pub(crate) fn blind(&self, kind: &str, value: &str) -> Vec<u8> {
        let mut ctx = hmac::Context::with_key(&self.index);
        ctx.update(kind.as_bytes());
        ctx.update(&[0]);
        ctx.update(value.as_bytes());
        ctx.sign().as_ref().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_bound_to_their_row_and_key() {
        let key = DataKey::generate().expect("key");
        let c = Cipher::new(&key).expect("cipher");
        let sealed = c.seal("dossier:1", b"NAS 046 454 286").expect("seal");
        assert!(!sealed.windows(3).any(|w| w == b"046"));
        assert_eq!(c.open("dossier:1", &sealed).expect("open"), b"NAS 046 454 286");
        assert!(c.open("dossier:2", &sealed).is_err());
        let other = Cipher::new(&DataKey::generate().expect("key")).expect("cipher");
        assert!(other.open("dossier:1", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[20] ^= 1;
        assert!(c.open("dossier:1", &flipped).is_err());
        assert_eq!(c.blind("sin", "046454286"), c.blind("sin", "046454286"));
        assert_ne!(c.blind("sin", "046454286"), c.blind("bank", "046454286"));
        assert_eq!(DataKey::from_hex(&key.to_hex()).expect("hex").0, key.0);
        assert!(DataKey::from_hex("zz").is_err());
    }
}
