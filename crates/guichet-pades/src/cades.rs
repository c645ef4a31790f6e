//! CMS `SignedData` for PAdES (the CAdES detached profile): building one
//! over a document digest, and reading one back.

use crate::Error;
use crate::asn1::{EssCertIdV2, IssuerSerial, SigningCertificateV2};
use crate::keys::{Digest, Signer};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5911;
use der::asn1::{OctetString, SetOfVec};
use der::{Decode, Encode, Reader, SliceReader};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::attr::Attribute;
use x509_cert::ext::pkix::name::GeneralName;

/// id-aa-signatureTimeStampToken (RFC 3161, appendix A).
pub(crate) const ID_AA_SIGNATURE_TIME_STAMP_TOKEN: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.14");

fn attribute<T: Encode>(oid: ObjectIdentifier, value: &T) -> Result<Attribute, Error> {
    let v = der::Any::from_der(&value.to_der()?)?;
    Ok(Attribute { oid, values: SetOfVec::try_from(vec![v])? })
}

/// A signer's certificate and chain, parsed once: `finish` builds the
/// signature for a digest, `max_len` sizes the /Contents placeholder.
pub(crate) struct Prepared<'a> {
    signer: &'a dyn Signer,
    cert: Certificate,
    certs: Vec<CertificateChoices>,
    ess: SigningCertificateV2,
}

/// Checks the key against the certificate and parses the chain.
pub(crate) fn prepare<'a>(signer: &'a dyn Signer, cert_der: &[u8], chain: &[Vec<u8>]) -> Result<Prepared<'a>, Error> {
    let cert = Certificate::from_der(cert_der)
        .map_err(|e| Error::Certificate(format!("unreadable signer certificate: {e}")))?;
    let cert_spki = cert.tbs_certificate.subject_public_key_info.to_der()?;
    if cert_spki != signer.public_key_info() {
        return Err(Error::Key("the private key does not match the certificate's public key".into()));
    }
    let ess = SigningCertificateV2 {
        certs: vec![EssCertIdV2 {
            hash_algorithm: None,
            cert_hash: OctetString::new(Digest::Sha256.hash(cert_der))?,
            issuer_serial: Some(IssuerSerial {
                issuer: vec![GeneralName::DirectoryName(cert.tbs_certificate.issuer.clone())],
                serial_number: cert.tbs_certificate.serial_number.clone(),
            }),
        }],
        policies: None,
    };
    let mut certs = vec![CertificateChoices::Certificate(cert.clone())];
    for c in chain {
        let c =
            Certificate::from_der(c).map_err(|e| Error::Certificate(format!("unreadable chain certificate: {e}")))?;
        certs.push(CertificateChoices::Certificate(c));
    }
    Ok(Prepared { signer, cert, certs, ess })
}

/// A computed signature, before it is wrapped (so that a timestamp over
/// its value can be added as an unsigned attribute).
pub(crate) struct Signed {
    attrs: SetOfVec<Attribute>,
    pub signature: Vec<u8>,
}

impl Prepared<'_> {
    /// The largest the DER can be: built with a signature of the longest
    /// length the algorithm produces, plus `extra` bytes of unsigned
    /// attributes (a timestamp token).
    pub fn max_len(&self, extra: usize) -> Result<usize, Error> {
        let digest = self.signer.algorithm().digest();
        let s = Signed {
            attrs: self.attrs(&vec![0; digest.hash(b"").len()], rfc5911::ID_DATA)?,
            signature: vec![0xff; self.signer.max_signature_len()],
        };
        // An unsigned attribute adds its own tag and length bytes.
        Ok(self.encode(&s, None, None)?.len() + if extra > 0 { extra + 32 } else { 0 })
    }

    fn attrs(&self, digest_value: &[u8], content_type: ObjectIdentifier) -> Result<SetOfVec<Attribute>, Error> {
        Ok(SetOfVec::try_from(vec![
            attribute(rfc5911::ID_CONTENT_TYPE, &content_type)?,
            attribute(rfc5911::ID_MESSAGE_DIGEST, &OctetString::new(digest_value)?)?,
            attribute(rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2, &self.ess)?,
        ])?)
    }

    /// Signs the attributes (content-type, message-digest of the content,
    /// signing-certificate-v2; no signing-time, which PAdES forbids).
    pub fn sign(&self, content_digest: &[u8], content_type: ObjectIdentifier) -> Result<Signed, Error> {
        let attrs = self.attrs(content_digest, content_type)?;
        // The signature covers the DER of the attributes as a SET OF.
        let signature = self.signer.sign(&attrs.to_der()?)?;
        Ok(Signed { attrs, signature })
    }

    /// The DER `ContentInfo`: exactly one SignerInfo, the signer's
    /// certificate and chain included; detached unless `content` is given
    /// (a timestamp token encapsulates its TSTInfo); `timestamp` becomes
    /// the signature-time-stamp unsigned attribute.
    pub fn encode(
        &self,
        s: &Signed,
        content: Option<(ObjectIdentifier, &[u8])>,
        timestamp: Option<&[u8]>,
    ) -> Result<Vec<u8>, Error> {
        let alg = self.signer.algorithm();
        let digest = alg.digest();
        let unsigned_attrs = match timestamp {
            Some(token) => Some(SetOfVec::try_from(vec![Attribute {
                oid: ID_AA_SIGNATURE_TIME_STAMP_TOKEN,
                values: SetOfVec::try_from(vec![der::Any::from_der(token)?])?,
            }])?),
            None => None,
        };
        let signer_info = SignerInfo {
            version: CmsVersion::V1,
            sid: SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: self.cert.tbs_certificate.issuer.clone(),
                serial_number: self.cert.tbs_certificate.serial_number.clone(),
            }),
            digest_alg: digest.algorithm_identifier(),
            signed_attrs: Some(s.attrs.clone()),
            signature_algorithm: alg.algorithm_identifier()?,
            signature: OctetString::new(s.signature.clone())?,
            unsigned_attrs,
        };
        let (econtent_type, econtent, version) = match content {
            Some((oid, der)) => (oid, Some(der::Any::new(der::Tag::OctetString, der)?), CmsVersion::V3),
            None => (rfc5911::ID_DATA, None, CmsVersion::V1),
        };
        let signed = SignedData {
            version,
            digest_algorithms: SetOfVec::try_from(vec![digest.algorithm_identifier()])?,
            encap_content_info: EncapsulatedContentInfo { econtent_type, econtent },
            certificates: Some(CertificateSet(SetOfVec::try_from(self.certs.clone())?)),
            crls: None,
            signer_infos: SignerInfos(SetOfVec::try_from(vec![signer_info])?),
        };
        let ci = ContentInfo { content_type: rfc5911::ID_SIGNED_DATA, content: der::Any::encode_from(&signed)? };
        Ok(ci.to_der()?)
    }
}

/// What a validator needs from a CMS signature.
#[derive(Debug, Clone)]
pub struct SignedAttributesInfo {
    pub certificates: Vec<Vec<u8>>,
    /// Index in `certificates` of the signer's certificate, if found.
    pub signer: Option<usize>,
    pub digest: Option<Digest>,
    pub digest_oid: ObjectIdentifier,
    pub message_digest: Option<Vec<u8>>,
    pub content_type_is_data: bool,
    /// The content-type signed attribute.
    pub content_type: Option<ObjectIdentifier>,
    /// The encapsulated content (a timestamp token's TSTInfo), if any.
    pub econtent: Option<Vec<u8>>,
    pub signed_attrs_der: Vec<u8>,
    pub signature_algorithm: AlgorithmIdentifierOwned,
    pub signature: Vec<u8>,
    /// `Some(true)` when signing-certificate-v2 names the signer's certificate.
    pub signing_certificate_v2: Option<bool>,
    pub has_signing_time: bool,
    pub signer_infos: usize,
    /// The RFC 3161 token of a signature timestamp, if any.
    pub timestamp_token: Option<Vec<u8>>,
    /// Bytes after the DER object (the zero padding of /Contents).
    pub trailing_nonzero: bool,
}

/// Reads a `ContentInfo` (possibly followed by zero padding).
pub(crate) fn parse(bytes: &[u8]) -> Result<SignedAttributesInfo, Error> {
    let mut r = SliceReader::new(bytes)?;
    let ci =
        ContentInfo::decode(&mut r).map_err(|e| Error::Verify(format!("the signature is not a CMS object: {e}")))?;
    let used = usize::try_from(u32::from(r.position())).unwrap_or(bytes.len());
    let trailing_nonzero = bytes.get(used..).is_some_and(|rest| rest.iter().any(|b| *b != 0));
    if ci.content_type != rfc5911::ID_SIGNED_DATA {
        return Err(Error::Verify("the CMS object is not SignedData".into()));
    }
    let sd: SignedData = ci.content.decode_as().map_err(|e| Error::Verify(format!("bad SignedData: {e}")))?;
    let certificates: Vec<Vec<u8>> = sd
        .certificates
        .iter()
        .flat_map(|s| s.0.iter())
        .filter_map(|c| match c {
            CertificateChoices::Certificate(c) => c.to_der().ok(),
            _ => None,
        })
        .collect();
    let signer_infos = sd.signer_infos.0.len();
    let si = sd.signer_infos.0.iter().next().ok_or_else(|| Error::Verify("the CMS object has no SignerInfo".into()))?;
    let signer = certificates.iter().position(|c| {
        let Ok(c) = Certificate::from_der(c) else { return false };
        match &si.sid {
            SignerIdentifier::IssuerAndSerialNumber(ias) => {
                ias.issuer == c.tbs_certificate.issuer && ias.serial_number == c.tbs_certificate.serial_number
            }
            SignerIdentifier::SubjectKeyIdentifier(ski) => c.tbs_certificate.extensions.iter().flatten().any(|e| {
                e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_KEY_IDENTIFIER
                    && e.extn_value.as_bytes().ends_with(ski.0.as_bytes())
            }),
        }
    });
    let attrs =
        si.signed_attrs.as_ref().ok_or_else(|| Error::Verify("the signature has no signed attributes".into()))?;
    let find = |oid: ObjectIdentifier| attrs.iter().find(|a| a.oid == oid).and_then(|a| a.values.iter().next());
    let message_digest =
        find(rfc5911::ID_MESSAGE_DIGEST).and_then(|v| v.decode_as::<OctetString>().ok()).map(|o| o.as_bytes().to_vec());
    let content_type = find(rfc5911::ID_CONTENT_TYPE).and_then(|v| v.decode_as::<ObjectIdentifier>().ok());
    let content_type_is_data = content_type == Some(rfc5911::ID_DATA);
    let econtent = sd
        .encap_content_info
        .econtent
        .as_ref()
        .and_then(|c| c.decode_as::<OctetString>().ok())
        .map(|o| o.as_bytes().to_vec());
    let signing_certificate_v2 = find(rfc5911::ID_AA_SIGNING_CERTIFICATE_V_2).map(|v| {
        let Ok(ess) = v.decode_as::<SigningCertificateV2>() else { return false };
        let (Some(first), Some(s)) = (ess.certs.first(), signer) else { return false };
        let alg = first.hash_algorithm.as_ref().map(|a| Digest::from_oid(&a.oid)).unwrap_or(Some(Digest::Sha256));
        alg.is_some_and(|d| d.hash(&certificates[s]) == first.cert_hash.as_bytes())
    });
    let has_signing_time = find(rfc5911::ID_SIGNING_TIME).is_some();
    let timestamp_token = si
        .unsigned_attrs
        .iter()
        .flat_map(|u| u.iter())
        .find(|a| a.oid == ID_AA_SIGNATURE_TIME_STAMP_TOKEN)
        .and_then(|a| a.values.iter().next())
        .and_then(|v| v.to_der().ok());
    Ok(SignedAttributesInfo {
        certificates,
        signer,
        digest: Digest::from_oid(&si.digest_alg.oid),
        digest_oid: si.digest_alg.oid,
        message_digest,
        content_type_is_data,
        content_type,
        econtent,
        signed_attrs_der: attrs.to_der()?,
        signature_algorithm: si.signature_algorithm.clone(),
        signature: si.signature.as_bytes().to_vec(),
        signing_certificate_v2,
        has_signing_time,
        signer_infos,
        timestamp_token,
        trailing_nonzero,
    })
}
