//! Signing keys behind one trait: software keys (PKCS#8) now, PKCS#11
//! tokens through the same trait.

use crate::Error;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self as sig, EcdsaKeyPair, KeyPair, RsaKeyPair};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::Decode;
use der::asn1::AnyRef;
use spki::AlgorithmIdentifierOwned;

/// The signature algorithms guichet signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    EcdsaP256Sha256,
    EcdsaP384Sha384,
    RsaPkcs1Sha256,
    RsaPssSha256,
}

/// The digest that goes with a signature algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Sha256,
    Sha384,
}

impl Digest {
    pub fn oid(self) -> ObjectIdentifier {
        match self {
            Digest::Sha256 => rfc5912::ID_SHA_256,
            Digest::Sha384 => rfc5912::ID_SHA_384,
        }
    }
    pub fn from_oid(oid: &ObjectIdentifier) -> Option<Digest> {
        if *oid == rfc5912::ID_SHA_256 {
            Some(Digest::Sha256)
        } else if *oid == rfc5912::ID_SHA_384 {
            Some(Digest::Sha384)
        } else {
            None
        }
    }
    /// `AlgorithmIdentifier` with absent parameters (RFC 5754).
    pub fn algorithm_identifier(self) -> AlgorithmIdentifierOwned {
        AlgorithmIdentifierOwned { oid: self.oid(), parameters: None }
    }
    pub fn hasher(self) -> Hasher {
        match self {
            Digest::Sha256 => Hasher::Sha256(sha2::Sha256::default()),
            Digest::Sha384 => Hasher::Sha384(sha2::Sha384::default()),
        }
    }
    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        let mut h = self.hasher();
        h.update(data);
        h.finish()
    }
}

/// SHA-1, only where a format requires it (OCSP CertIDs, DSS VRI keys);
/// never for signatures.
pub(crate) fn sha1(data: &[u8]) -> Vec<u8> {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, data).as_ref().to_vec()
}

/// A running digest (streamed over the signed byte ranges).
#[derive(Debug, Clone)]
pub enum Hasher {
    Sha256(sha2::Sha256),
    Sha384(sha2::Sha384),
}

impl Hasher {
    pub fn update(&mut self, data: &[u8]) {
        use sha2::Digest as _;
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha384(h) => h.update(data),
        }
    }
    pub fn finish(self) -> Vec<u8> {
        use sha2::Digest as _;
        match self {
            Hasher::Sha256(h) => h.finalize().to_vec(),
            Hasher::Sha384(h) => h.finalize().to_vec(),
        }
    }
}

impl Algorithm {
    pub fn digest(self) -> Digest {
        match self {
            Algorithm::EcdsaP384Sha384 => Digest::Sha384,
            _ => Digest::Sha256,
        }
    }

    /// The CMS `signatureAlgorithm` identifier.
    pub fn algorithm_identifier(self) -> Result<AlgorithmIdentifierOwned, Error> {
        Ok(match self {
            Algorithm::EcdsaP256Sha256 => {
                AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_256, parameters: None }
            }
            Algorithm::EcdsaP384Sha384 => {
                AlgorithmIdentifierOwned { oid: rfc5912::ECDSA_WITH_SHA_384, parameters: None }
            }
            Algorithm::RsaPkcs1Sha256 => AlgorithmIdentifierOwned {
                oid: rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                parameters: Some(AnyRef::NULL.into()),
            },
            Algorithm::RsaPssSha256 => {
                // RSASSA-PSS-params: SHA-256, MGF1 with SHA-256, salt 32.
                let params = crate::asn1::pss_sha256_params()?;
                AlgorithmIdentifierOwned { oid: rfc5912::ID_RSASSA_PSS, parameters: Some(der::Any::from_der(&params)?) }
            }
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::EcdsaP256Sha256 => "ECDSA P-256 with SHA-256",
            Algorithm::EcdsaP384Sha384 => "ECDSA P-384 with SHA-384",
            Algorithm::RsaPkcs1Sha256 => "RSA PKCS#1 v1.5 with SHA-256",
            Algorithm::RsaPssSha256 => "RSA-PSS with SHA-256",
        }
    }
}

/// Something that signs: a software key, a PKCS#11 token…
pub trait Signer: Send + Sync {
    fn algorithm(&self) -> Algorithm;
    /// The DER `SubjectPublicKeyInfo` of the key, to match the certificate.
    fn public_key_info(&self) -> Vec<u8>;
    /// Signs `message` (the signer hashes it with `algorithm().digest()`).
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error>;
    /// The longest signature this key produces (DER ECDSA varies by a few
    /// bytes), to size the placeholder in the PDF.
    fn max_signature_len(&self) -> usize;
}

enum Inner {
    Ec(EcdsaKeyPair),
    Rsa(RsaKeyPair),
}

/// A private key held in memory (from a PKCS#8 file, or generated).
pub struct SoftwareKey {
    inner: Inner,
    algorithm: Algorithm,
    spki: Vec<u8>,
    rng: SystemRandom,
}

impl std::fmt::Debug for SoftwareKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("SoftwareKey").field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

const OID_EC_PUBLIC_KEY: ObjectIdentifier = rfc5912::ID_EC_PUBLIC_KEY;
const OID_RSA: ObjectIdentifier = rfc5912::RSA_ENCRYPTION;
const OID_P256: ObjectIdentifier = rfc5912::SECP_256_R_1;
const OID_P384: ObjectIdentifier = rfc5912::SECP_384_R_1;

impl SoftwareKey {
    /// Reads a PKCS#8 private key, PEM (`-----BEGIN PRIVATE KEY-----`) or DER.
    /// `pss` chooses RSA-PSS rather than PKCS#1 v1.5 for an RSA key.
    pub fn from_pkcs8(data: &[u8], pss: bool) -> Result<SoftwareKey, Error> {
        let der = if data.starts_with(b"-----") {
            let text = std::str::from_utf8(data).map_err(|_| Error::Key("the PEM file is not text".into()))?;
            let (label, der) =
                der::pem::decode_vec(text.as_bytes()).map_err(|e| Error::Key(format!("not a PEM private key: {e}")))?;
            if label != "PRIVATE KEY" {
                return Err(Error::Key(format!(
                    "expected a PKCS#8 `PRIVATE KEY`, found `{label}` (convert it with `openssl pkcs8 -topk8 -nocrypt`)"
                )));
            }
            der
        } else {
            data.to_vec()
        };
        let info = crate::asn1::PrivateKeyInfoHead::from_der_prefix(&der)
            .map_err(|e| Error::Key(format!("not a PKCS#8 private key: {e}")))?;
        let rng = SystemRandom::new();
        let (inner, algorithm) = if info.algorithm == OID_EC_PUBLIC_KEY {
            let (alg, a) = match info.curve {
                Some(c) if c == OID_P256 => (&sig::ECDSA_P256_SHA256_ASN1_SIGNING, Algorithm::EcdsaP256Sha256),
                Some(c) if c == OID_P384 => (&sig::ECDSA_P384_SHA384_ASN1_SIGNING, Algorithm::EcdsaP384Sha384),
                _ => return Err(Error::Key("only the P-256 and P-384 curves are supported".into())),
            };
            let k = EcdsaKeyPair::from_pkcs8(alg, &der).map_err(|e| Error::Key(format!("bad EC key: {e}")))?;
            (Inner::Ec(k), a)
        } else if info.algorithm == OID_RSA {
            let k = RsaKeyPair::from_pkcs8(&der).map_err(|e| Error::Key(format!("bad RSA key: {e}")))?;
            let bits = k.public_modulus_len() * 8;
            if !(2048..=4096).contains(&bits) {
                return Err(Error::Key(format!("RSA keys of 2048 to 4096 bits are supported, not {bits}")));
            }
            (Inner::Rsa(k), if pss { Algorithm::RsaPssSha256 } else { Algorithm::RsaPkcs1Sha256 })
        } else {
            return Err(Error::Key(format!("unsupported key algorithm {}", info.algorithm)));
        };
        let spki = match &inner {
            Inner::Ec(k) => crate::asn1::ec_spki(info.curve.unwrap_or(OID_P256), k.public_key().as_ref())?,
            Inner::Rsa(k) => crate::asn1::rsa_spki(k.public_key().as_ref())?,
        };
        Ok(SoftwareKey { inner, algorithm, spki, rng })
    }

    /// A new key (for tests and the built-in CA), with its PKCS#8 DER.
    pub fn generate(algorithm: Algorithm) -> Result<(SoftwareKey, Vec<u8>), Error> {
        let rng = SystemRandom::new();
        let pkcs8 = match algorithm {
            Algorithm::EcdsaP256Sha256 => EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P256_SHA256_ASN1_SIGNING, &rng),
            Algorithm::EcdsaP384Sha384 => EcdsaKeyPair::generate_pkcs8(&sig::ECDSA_P384_SHA384_ASN1_SIGNING, &rng),
            Algorithm::RsaPkcs1Sha256 | Algorithm::RsaPssSha256 => {
                let k = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
                    .map_err(|e| Error::Key(format!("cannot generate an RSA key: {e}")))?;
                let der = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::Pkcs8V1Der>::as_der(&k)
                    .map_err(|e| Error::Key(format!("cannot encode the RSA key: {e}")))?;
                return Ok((
                    SoftwareKey::from_pkcs8(der.as_ref(), algorithm == Algorithm::RsaPssSha256)?,
                    der.as_ref().to_vec(),
                ));
            }
        }
        .map_err(|e| Error::Key(format!("cannot generate a key: {e}")))?;
        Ok((SoftwareKey::from_pkcs8(pkcs8.as_ref(), false)?, pkcs8.as_ref().to_vec()))
    }
}

impl Signer for SoftwareKey {
    fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
    fn max_signature_len(&self) -> usize {
        match &self.inner {
            // SEQUENCE { INTEGER r, INTEGER s }, each up to the field size plus a sign byte.
            Inner::Ec(_) if self.algorithm == Algorithm::EcdsaP384Sha384 => 104,
            Inner::Ec(_) => 72,
            Inner::Rsa(k) => k.public_modulus_len(),
        }
    }
    fn public_key_info(&self) -> Vec<u8> {
        self.spki.clone()
    }
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, Error> {
        match &self.inner {
            Inner::Ec(k) => k
                .sign(&self.rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| Error::Sign("ECDSA signing failed".into())),
            Inner::Rsa(k) => {
                let mut out = vec![0; k.public_modulus_len()];
                let padding: &dyn sig::RsaEncoding = if self.algorithm == Algorithm::RsaPssSha256 {
                    &sig::RSA_PSS_SHA256
                } else {
                    &sig::RSA_PKCS1_SHA256
                };
                k.sign(padding, &self.rng, message, &mut out).map_err(|_| Error::Sign("RSA signing failed".into()))?;
                Ok(out)
            }
        }
    }
}

/// Checks a signature with a public key given as DER `SubjectPublicKeyInfo`.
pub fn verify_signature(
    spki_der: &[u8],
    sig_alg: &AlgorithmIdentifierOwned,
    message: &[u8],
    signature: &[u8],
) -> Result<(), Error> {
    let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)?;
    let key = spki.subject_public_key.raw_bytes();
    let params: &'static dyn sig::VerificationAlgorithm = match sig_alg.oid {
        o if o == rfc5912::ECDSA_WITH_SHA_256 => {
            if spki.algorithm.parameters_oid().ok() == Some(OID_P384) {
                &sig::ECDSA_P384_SHA256_ASN1
            } else {
                &sig::ECDSA_P256_SHA256_ASN1
            }
        }
        o if o == rfc5912::ECDSA_WITH_SHA_384 => {
            if spki.algorithm.parameters_oid().ok() == Some(OID_P256) {
                &sig::ECDSA_P256_SHA384_ASN1
            } else {
                &sig::ECDSA_P384_SHA384_ASN1
            }
        }
        o if o == rfc5912::SHA_256_WITH_RSA_ENCRYPTION => &sig::RSA_PKCS1_2048_8192_SHA256,
        o if o == rfc5912::SHA_384_WITH_RSA_ENCRYPTION => &sig::RSA_PKCS1_2048_8192_SHA384,
        o if o == rfc5912::SHA_512_WITH_RSA_ENCRYPTION => &sig::RSA_PKCS1_2048_8192_SHA512,
        o if o == rfc5912::ID_RSASSA_PSS => &sig::RSA_PSS_2048_8192_SHA256,
        // CMS also allows naming just the key algorithm (rsaEncryption).
        o if o == OID_RSA => &sig::RSA_PKCS1_2048_8192_SHA256,
        other => return Err(Error::Verify(format!("unsupported signature algorithm {other}"))),
    };
    sig::UnparsedPublicKey::new(params, key)
        .verify(message, signature)
        .map_err(|_| Error::Verify("the signature does not match".into()))
}

impl From<der::Error> for Error {
    fn from(e: der::Error) -> Self {
        Error::Asn1(e.to_string())
    }
}

/// A key and its certificates imported from a PKCS#12 (.p12/.pfx) file,
/// as the organization's own CA delivers them.
#[derive(Debug)]
pub struct Pkcs12Identity {
    pub key: SoftwareKey,
    /// The signer's certificate (DER).
    pub certificate: Vec<u8>,
    /// The other certificates of the file (DER), issuers first to last.
    pub chain: Vec<Vec<u8>>,
    /// The private key as PKCS#8 DER (to store it locked, as the service
    /// does with a passphrase).
    pub key_pkcs8: Vec<u8>,
}

/// Opens a PKCS#12 file with its password.
pub fn import_pkcs12(data: &[u8], password: &str, pss: bool) -> Result<Pkcs12Identity, Error> {
    use p12_keystore::{KeyStore, KeyStoreEntry, Pkcs12ImportPolicy};
    let store = KeyStore::from_pkcs12(data, password, Pkcs12ImportPolicy::Strict).map_err(|e| {
        let text = e.to_string();
        if text.to_lowercase().contains("mac") || text.to_lowercase().contains("password") {
            Error::Key("PKCS#12: wrong password (or a damaged file)".into())
        } else {
            Error::Key(format!("PKCS#12: {text}"))
        }
    })?;
    let chains: Vec<_> = store
        .entries()
        .filter_map(|(_, e)| match e {
            KeyStoreEntry::PrivateKeyChain(c) => Some(c),
            _ => None,
        })
        .collect();
    let chain = match chains.as_slice() {
        [one] => *one,
        [] => return Err(Error::Key("PKCS#12: the file holds no private key with its certificate".into())),
        _ => return Err(Error::Key("PKCS#12: the file holds several keys; export one".into())),
    };
    let certs: Vec<Vec<u8>> = chain.certs().iter().map(|c| c.as_der().to_vec()).collect();
    let (certificate, rest) =
        certs.split_first().ok_or_else(|| Error::Key("PKCS#12: the key has no certificate".into()))?;
    Ok(Pkcs12Identity {
        key: SoftwareKey::from_pkcs8(chain.key().as_der(), pss)?,
        certificate: certificate.clone(),
        chain: rest.to_vec(),
        key_pkcs8: chain.key().as_der().to_vec(),
    })
}
