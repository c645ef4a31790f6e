//! OCSP (RFC 6960): responses signed by a certification authority about the
//! certificates it issued, for B-LT validation data and for an online
//! responder; and reading them back when validating.

use crate::Error;
use crate::keys::{Signer, sha1};
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, GeneralizedTime, Null, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use x509_cert::Certificate;
use x509_cert::serial_number::SerialNumber;
use x509_ocsp::{
    BasicOcspResponse, CertId, CertStatus, OcspGeneralizedTime, OcspRequest, OcspResponse, OcspResponseStatus,
    ResponderId, ResponseBytes, ResponseData, RevokedInfo, SingleResponse, Version,
};

/// id-pkix-ocsp-basic.
const ID_PKIX_OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-kp-OCSPSigning.
const ID_KP_OCSP_SIGNING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.9");
/// id-sha1, which CertIDs use almost everywhere (RFC 5019).
const ID_SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");

fn gtime(t: time::OffsetDateTime) -> Result<OcspGeneralizedTime, Error> {
    let secs = u64::try_from(t.unix_timestamp()).map_err(|_| Error::Ca("time before 1970".into()))?;
    Ok(OcspGeneralizedTime(GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))?))
}

fn parse_cert(der: &[u8]) -> Result<Certificate, Error> {
    Certificate::from_der(der).map_err(|e| Error::Certificate(format!("unreadable certificate: {e}")))
}

/// The CertID of a certificate serial under an issuer (SHA-1 hashes).
fn cert_id(issuer: &Certificate, serial: &SerialNumber) -> Result<CertId, Error> {
    Ok(CertId {
        hash_algorithm: AlgorithmIdentifierOwned { oid: ID_SHA1, parameters: Some(Null.into()) },
        issuer_name_hash: OctetString::new(sha1(&issuer.tbs_certificate.subject.to_der()?))?,
        issuer_key_hash: OctetString::new(sha1(
            issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes(),
        ))?,
        serial_number: serial.clone(),
    })
}

/// Whether `id` designates a certificate of `issuer` with this serial.
fn matches(id: &CertId, issuer: &Certificate, serial: &SerialNumber) -> bool {
    // CertIDs hash with SHA-1 almost everywhere, SHA-256/384 sometimes.
    let digest = crate::keys::Digest::from_oid(&id.hash_algorithm.oid);
    if digest.is_none() && id.hash_algorithm.oid != ID_SHA1 {
        return false;
    }
    let h = |data: &[u8]| match digest {
        Some(d) => d.hash(data),
        None => sha1(data),
    };
    id.serial_number == *serial
        && issuer.tbs_certificate.subject.to_der().is_ok_and(|n| id.issuer_name_hash.as_bytes() == h(&n).as_slice())
        && id.issuer_key_hash.as_bytes()
            == h(issuer.tbs_certificate.subject_public_key_info.subject_public_key.raw_bytes()).as_slice()
}

/// A certificate's state for a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Good,
    Revoked(time::OffsetDateTime),
}

/// A signed OCSP response about `serials` of `issuer_der`'s certificates,
/// signed by `signer` whose certificate is `signer_cert_der` (the issuing
/// CA itself). `status` says, per serial, good or revoked.
pub fn respond_for(
    issuer_der: &[u8],
    signer: &dyn Signer,
    signer_cert_der: &[u8],
    serials: &[Vec<u8>],
    status: &dyn Fn(&[u8]) -> Status,
    now: time::OffsetDateTime,
) -> Result<Vec<u8>, Error> {
    let issuer = parse_cert(issuer_der)?;
    let signer_cert = parse_cert(signer_cert_der)?;
    let mut responses = Vec::new();
    for s in serials {
        let serial = SerialNumber::new(s)?;
        let cert_status = match status(s) {
            Status::Good => CertStatus::Good(Null),
            Status::Revoked(t) => {
                CertStatus::Revoked(RevokedInfo { revocation_time: gtime(t)?, revocation_reason: None })
            }
        };
        responses.push(SingleResponse {
            cert_id: cert_id(&issuer, &serial)?,
            cert_status,
            this_update: gtime(now)?,
            next_update: Some(gtime(now + time::Duration::days(7))?),
            single_extensions: None,
        });
    }
    let data = ResponseData {
        version: Version::V1,
        responder_id: ResponderId::ByName(signer_cert.tbs_certificate.subject.clone()),
        produced_at: gtime(now)?,
        responses,
        response_extensions: None,
    };
    let signature = signer.sign(&data.to_der()?)?;
    let basic = BasicOcspResponse {
        tbs_response_data: data,
        signature_algorithm: signer.algorithm().algorithm_identifier()?,
        signature: BitString::from_bytes(&signature)?,
        certs: Some(vec![signer_cert]),
    };
    let resp = OcspResponse {
        response_status: OcspResponseStatus::Successful,
        response_bytes: Some(ResponseBytes {
            response_type: ID_PKIX_OCSP_BASIC,
            response: OctetString::new(basic.to_der()?)?,
        }),
    };
    Ok(resp.to_der()?)
}

/// Answers a DER OCSP request (an online responder): the serials it asks
/// about, or `malformedRequest`.
pub fn respond(
    request: &[u8],
    issuer_der: &[u8],
    signer: &dyn Signer,
    signer_cert_der: &[u8],
    status: &dyn Fn(&[u8]) -> Status,
    now: time::OffsetDateTime,
) -> Vec<u8> {
    let answer = || -> Result<Vec<u8>, Error> {
        let req = OcspRequest::from_der(request).map_err(|e| Error::Ca(format!("bad OCSP request: {e}")))?;
        let issuer = parse_cert(issuer_der)?;
        let mut serials = Vec::new();
        for r in &req.tbs_request.request_list {
            if !matches(&r.req_cert, &issuer, &r.req_cert.serial_number) {
                return Err(Error::Ca("the request is about another issuer".into()));
            }
            serials.push(r.req_cert.serial_number.as_bytes().to_vec());
        }
        respond_for(issuer_der, signer, signer_cert_der, &serials, status, now)
    };
    answer().unwrap_or_else(|_| {
        OcspResponse { response_status: OcspResponseStatus::MalformedRequest, response_bytes: None }
            .to_der()
            .unwrap_or_default()
    })
}

/// An OCSP request about `cert` (issued by `issuer`), as a validator
/// sends it to the responder the certificate names.
pub(crate) fn request(cert: &Certificate, issuer: &Certificate) -> Result<Vec<u8>, Error> {
    let req = OcspRequest {
        tbs_request: x509_ocsp::TbsRequest {
            version: Version::V1,
            requestor_name: None,
            request_list: vec![x509_ocsp::Request {
                req_cert: cert_id(issuer, &cert.tbs_certificate.serial_number)?,
                single_request_extensions: None,
            }],
            request_extensions: None,
        },
        optional_signature: None,
    };
    Ok(req.to_der()?)
}

/// What a stored OCSP response says about `cert` (issued by `issuer`):
/// `None` if it does not cover it or cannot be trusted (not signed by the
/// issuer).
pub(crate) fn status_in(response: &[u8], cert: &Certificate, issuer: &Certificate) -> Option<Status> {
    let resp = OcspResponse::from_der(response).ok()?;
    if resp.response_status != OcspResponseStatus::Successful {
        return None;
    }
    let bytes = resp.response_bytes?;
    if bytes.response_type != ID_PKIX_OCSP_BASIC {
        return None;
    }
    let basic = BasicOcspResponse::from_der(bytes.response.as_bytes()).ok()?;
    // Signed by the issuer itself, or by a responder the issuer delegated
    // (RFC 6960 §4.2.2.2: a certificate it issued with the id-kp-OCSPSigning
    // extended key usage, included in the response).
    let tbs = basic.tbs_response_data.to_der().ok()?;
    let signed_by = |c: &Certificate| {
        c.tbs_certificate.subject_public_key_info.to_der().is_ok_and(|spki| {
            crate::keys::verify_signature(&spki, &basic.signature_algorithm, &tbs, basic.signature.raw_bytes()).is_ok()
        })
    };
    let delegated = |c: &Certificate| {
        c.tbs_certificate.issuer == issuer.tbs_certificate.subject
            && issuer.tbs_certificate.subject_public_key_info.to_der().is_ok_and(|spki| {
                c.tbs_certificate.to_der().is_ok_and(|ctbs| {
                    crate::keys::verify_signature(&spki, &c.signature_algorithm, &ctbs, c.signature.raw_bytes()).is_ok()
                })
            })
            && c.tbs_certificate.extensions.iter().flatten().any(|e| {
                e.extn_id == const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE
                    && x509_cert::ext::pkix::ExtendedKeyUsage::from_der(e.extn_value.as_bytes())
                        .is_ok_and(|eku| eku.0.contains(&ID_KP_OCSP_SIGNING))
            })
    };
    let trusted = signed_by(issuer) || basic.certs.iter().flatten().any(|c| delegated(c) && signed_by(c));
    if !trusted {
        return None;
    }
    let serial = &cert.tbs_certificate.serial_number;
    basic.tbs_response_data.responses.iter().find(|r| matches(&r.cert_id, issuer, serial)).and_then(|r| {
        match &r.cert_status {
            CertStatus::Good(_) => Some(Status::Good),
            CertStatus::Revoked(info) => {
                let secs = info.revocation_time.0.to_unix_duration().as_secs() as i64;
                time::OffsetDateTime::from_unix_timestamp(secs).ok().map(Status::Revoked)
            }
            CertStatus::Unknown(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca;
    use x509_ocsp::{Request, TbsRequest};

    struct Fixture {
        files: ca::CaFiles,
        issuing: ca::IssuingCa,
        issuer_der: Vec<u8>,
        issuer: Certificate,
        cert: Certificate,
        now: time::OffsetDateTime,
    }

    /// A CA and one employee certificate it issued.
    fn fixture() -> Fixture {
        let now = time::OffsetDateTime::now_utc();
        let files = ca::init("Org", "CA", now).expect("CA");
        let issuing = ca::IssuingCa::load("Org", "CA", &files.issuing_key).expect("CA");
        let e = ca::Employee { name: "A".into(), email: "a@x.org".into(), organization: "Org".into(), unit: None };
        let issued = issuing.issue(&e, 77, now, 30).expect("issue");
        let issuer_der = ca::pem_to_der(&files.issuing_cert).expect("pem");
        let issuer = parse_cert(&issuer_der).expect("cert");
        let cert = parse_cert(&issued.cert_der).expect("cert");
        Fixture { files, issuing, issuer_der, issuer, cert, now }
    }

    #[test]
    fn an_online_request_gets_a_signed_answer_and_garbage_a_refusal() {
        let f = fixture();
        let req = OcspRequest {
            tbs_request: TbsRequest {
                version: Version::V1,
                requestor_name: None,
                request_list: vec![Request {
                    req_cert: cert_id(&f.issuer, &f.cert.tbs_certificate.serial_number).expect("id"),
                    single_request_extensions: None,
                }],
                request_extensions: None,
            },
            optional_signature: None,
        };
        let key = crate::SoftwareKey::from_pkcs8(f.files.issuing_key.as_bytes(), false).expect("key");
        let answer = respond(&req.to_der().expect("der"), &f.issuer_der, &key, &f.issuer_der, &|_| Status::Good, f.now);
        assert_eq!(status_in(&answer, &f.cert, &f.issuer), Some(Status::Good));
        let refused = respond(b"garbage", &f.issuer_der, &key, &f.issuer_der, &|_| Status::Good, f.now);
        let parsed = OcspResponse::from_der(&refused).expect("a response");
        assert_eq!(parsed.response_status, OcspResponseStatus::MalformedRequest);
        assert_eq!(status_in(&refused, &f.cert, &f.issuer), None);
    }

    #[test]
    fn a_delegated_responder_is_trusted_and_an_impostor_is_not() {
        let f = fixture();
        let serial = f.cert.tbs_certificate.serial_number.as_bytes().to_vec();
        // A responder the CA delegated.
        let responder = f.issuing.issue_ocsp_responder("Org", 78, f.now, 30).expect("responder");
        let rkey = crate::SoftwareKey::from_pkcs8(responder.key_pem.as_bytes(), false).expect("key");
        let r = respond_for(
            &f.issuer_der,
            &rkey,
            &responder.cert_der,
            std::slice::from_ref(&serial),
            &|_| Status::Good,
            f.now,
        )
        .expect("r");
        assert_eq!(status_in(&r, &f.cert, &f.issuer), Some(Status::Good));
        // An employee's certificate (no OCSPSigning) is no responder.
        let e = ca::Employee { name: "A".into(), email: "a@x.org".into(), organization: "Org".into(), unit: None };
        let other = f.issuing.issue(&e, 79, f.now, 30).expect("issue");
        let okey = crate::SoftwareKey::from_pkcs8(other.key_pem.as_bytes(), false).expect("key");
        let r = respond_for(&f.issuer_der, &okey, &other.cert_der, &[serial], &|_| Status::Good, f.now).expect("r");
        assert_eq!(status_in(&r, &f.cert, &f.issuer), None);
    }
}
