//! Small ASN.1 pieces the RustCrypto crates do not provide: the head of a
//! PKCS#8 key, public key infos, RSA-PSS parameters, and the ESS
//! `SigningCertificateV2` attribute (RFC 5035).

use crate::Error;
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{BitString, OctetString};
use der::{Encode, Reader, Sequence, SliceReader};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::ext::pkix::name::GeneralNames;
use x509_cert::serial_number::SerialNumber;

/// The algorithm (and curve) of a PKCS#8 `PrivateKeyInfo`.
pub(crate) struct PrivateKeyInfoHead {
    pub algorithm: ObjectIdentifier,
    pub curve: Option<ObjectIdentifier>,
}

impl PrivateKeyInfoHead {
    pub fn from_der_prefix(der: &[u8]) -> der::Result<PrivateKeyInfoHead> {
        let mut r = SliceReader::new(der)?;
        r.sequence(|r| {
            let _version: der::asn1::Int = r.decode()?;
            let alg: AlgorithmIdentifierOwned = r.decode()?;
            while !r.is_finished() {
                let _: der::Any = r.decode()?;
            }
            let curve = alg.parameters.as_ref().and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
            Ok(PrivateKeyInfoHead { algorithm: alg.oid, curve })
        })
    }
}

pub(crate) fn ec_spki(curve: ObjectIdentifier, point: &[u8]) -> Result<Vec<u8>, Error> {
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned {
            oid: rfc5912::ID_EC_PUBLIC_KEY,
            parameters: Some(der::Any::encode_from(&curve)?),
        },
        subject_public_key: BitString::from_bytes(point)?,
    };
    Ok(spki.to_der()?)
}

pub(crate) fn rsa_spki(rsa_public_key: &[u8]) -> Result<Vec<u8>, Error> {
    let spki = SubjectPublicKeyInfoOwned {
        algorithm: AlgorithmIdentifierOwned { oid: rfc5912::RSA_ENCRYPTION, parameters: Some(der::asn1::Null.into()) },
        subject_public_key: BitString::from_bytes(rsa_public_key)?,
    };
    Ok(spki.to_der()?)
}

/// `RSASSA-PSS-params` for SHA-256, MGF1-SHA-256, 32 bytes of salt.
pub(crate) fn pss_sha256_params() -> Result<Vec<u8>, Error> {
    Ok(vec![
        0x30, 0x34, 0xa0, 0x0f, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
        0x00, 0xa1, 0x1c, 0x30, 0x1a, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x08, 0x30, 0x0d,
        0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00, 0xa2, 0x03, 0x02, 0x01, 0x20,
    ])
}

/// `IssuerSerial` (RFC 5035).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct IssuerSerial {
    pub issuer: GeneralNames,
    pub serial_number: SerialNumber,
}

/// `ESSCertIDv2`; the hash algorithm is absent when it is SHA-256 (DER
/// omits a DEFAULT value).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct EssCertIdV2 {
    #[asn1(optional = "true")]
    pub hash_algorithm: Option<AlgorithmIdentifierOwned>,
    pub cert_hash: OctetString,
    #[asn1(optional = "true")]
    pub issuer_serial: Option<IssuerSerial>,
}

/// `SigningCertificateV2`.
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SigningCertificateV2 {
    pub certs: Vec<EssCertIdV2>,
    #[asn1(optional = "true")]
    pub policies: Option<der::Any>,
}

/// The text of a name attribute (UTF8String or PrintableString, the two
/// that certificates use for names).
pub(crate) fn name_text(value: &der::Any) -> Option<String> {
    value
        .decode_as::<der::asn1::Utf8StringRef>()
        .map(|s| s.as_str().to_owned())
        .or_else(|_| value.decode_as::<der::asn1::PrintableStringRef>().map(|s| s.as_str().to_owned()))
        .ok()
}
