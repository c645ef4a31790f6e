//! # guichet-pades
//!
//! PAdES signatures (ETSI EN 319 142-1) over PDF documents: signing by
//! incremental update, validation of every signature in a file, signing
//! keys behind the [`Signer`] trait, and a built-in certification authority.
//!
//! Pure: no database, no HTTP server, no files. Callers pass bytes in and
//! get bytes and reports out.

mod appearance;
mod asn1;
pub mod ca;
mod cades;
mod keys;
mod ltv;
pub mod ocsp;
mod pdf;
mod pkcs11;
mod revision;
mod sign;
mod tsp;
mod verify;

pub use appearance::Visible;
pub use cades::SignedAttributesInfo;
pub use keys::{Algorithm, Digest, Pkcs12Identity, Signer, SoftwareKey, import_pkcs12, verify_signature};
pub use ltv::{ValidationData, add_dss, add_dss_update};
pub use pdf::structure_image;
pub use pkcs11::Pkcs11Key;
pub use sign::{
    SignOptions, sign_pdf, sign_pdf_update, sign_pdf_update_from, timestamp_pdf, timestamp_pdf_update,
    timestamp_pdf_update_from,
};
pub use tsp::{TimestampAuthority, TimestampClient};
pub use verify::{
    Indication, Modification, RevocationFetcher, SignatureReport, ValidationReport, VerifyOptions, revocation_urls,
    verify_pdf, verify_pdf_with,
};

/// Everything that can go wrong, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("unreadable PDF: {0}")]
    Pdf(String),
    #[error("encrypted PDFs cannot be signed or validated (remove the encryption first)")]
    Encrypted,
    #[error("key: {0}")]
    Key(String),
    #[error("certificate: {0}")]
    Certificate(String),
    #[error("signing failed: {0}")]
    Sign(String),
    #[error("verification: {0}")]
    Verify(String),
    #[error("ASN.1: {0}")]
    Asn1(String),
    #[error("timestamp: {0}")]
    Timestamp(String),
    #[error("certification authority: {0}")]
    Ca(String),
}

/// The DER `SubjectPublicKeyInfo` of a DER certificate.
pub fn certificate_public_key(cert_der: &[u8]) -> Result<Vec<u8>, Error> {
    use der::{Decode, Encode};
    let c = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| Error::Certificate(format!("unreadable certificate: {e}")))?;
    Ok(c.tbs_certificate.subject_public_key_info.to_der()?)
}

/// The serial number (DER integer contents) of a DER certificate.
pub fn certificate_serial(cert_der: &[u8]) -> Result<Vec<u8>, Error> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| Error::Certificate(format!("unreadable certificate: {e}")))?;
    Ok(c.tbs_certificate.serial_number.as_bytes().to_vec())
}

/// The common name of a DER certificate's subject, if it has one.
pub fn certificate_common_name(cert_der: &[u8]) -> Option<String> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(cert_der).ok()?;
    c.tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .find(|a| a.oid == const_oid::db::rfc4519::CN)
        .and_then(|a| asn1::name_text(&a.value))
}

/// Reads a CMS `ContentInfo` (a PDF signature's /Contents, possibly
/// followed by zero padding) as a validator sees it.
pub fn inspect_cms(bytes: &[u8]) -> Result<SignedAttributesInfo, Error> {
    cades::parse(bytes)
}
