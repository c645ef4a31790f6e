//! RFC 3161 timestamps: asking a timestamp authority (through a client
//! trait, so the caller chooses the transport), and answering requests as
//! the built-in authority.

use crate::keys::Signer;
use crate::{Error, cades};
use cmpv2::status::{PkiStatus, PkiStatusInfo};
use const_oid::ObjectIdentifier;
use const_oid::db::rfc5912;
use der::asn1::{GeneralizedTime, Int, OctetString};
use der::{Decode, Encode};
use spki::AlgorithmIdentifier;
use x509_tsp::{MessageImprint, TimeStampReq, TimeStampResp, TspVersion, TstInfo};

/// id-ct-TSTInfo.
pub(crate) const ID_CT_TST_INFO: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.1.4");
/// id-kp-timeStamping.
pub(crate) const ID_KP_TIME_STAMPING: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.3.8");

/// A way to reach a timestamp authority: send a DER `TimeStampReq`, get
/// back the DER `TimeStampResp` (over HTTP, in process…).
pub trait TimestampClient: Send + Sync {
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, Error>;
}

fn nonce() -> Result<Vec<u8>, Error> {
    let mut n = [0u8; 8];
    aws_lc_rs::rand::fill(&mut n).map_err(|_| Error::Sign("no randomness for the timestamp nonce".into()))?;
    n[0] &= 0x7f;
    n[0] |= 0x01;
    Ok(n.to_vec())
}

/// Requests a timestamp over a SHA-256 `imprint` and checks that the
/// answer is granted, for this imprint and this nonce. Returns the token
/// (a DER `ContentInfo`). Fails closed: no answer, no signature.
pub(crate) fn timestamp(client: &dyn TimestampClient, imprint: &[u8]) -> Result<Vec<u8>, Error> {
    let imprint = imprint.to_vec();
    let n = nonce()?;
    let req = TimeStampReq {
        version: TspVersion::V1,
        message_imprint: MessageImprint {
            hash_algorithm: AlgorithmIdentifier { oid: rfc5912::ID_SHA_256, parameters: None },
            hashed_message: OctetString::new(imprint.clone())?,
        },
        req_policy: None,
        nonce: Some(Int::new(&n)?),
        cert_req: true,
        extensions: None,
    };
    let resp_der = client.exchange(&req.to_der()?)?;
    let resp = TimeStampResp::from_der(&resp_der)
        .map_err(|e| Error::Timestamp(format!("the timestamp authority's answer is not a TimeStampResp: {e}")))?;
    if !matches!(resp.status.status, PkiStatus::Accepted | PkiStatus::GrantedWithMods) {
        let why =
            resp.status.status_string.as_ref().and_then(|s| s.iter().next().map(|t| t.to_string())).unwrap_or_default();
        return Err(Error::Timestamp(format!("the timestamp authority refused: {:?} {why}", resp.status.status)));
    }
    let token = resp.time_stamp_token.ok_or_else(|| Error::Timestamp("the answer holds no timestamp token".into()))?;
    let token_der = token.to_der()?;
    let tst = tst_info(&token_der)?;
    if tst.message_imprint.hashed_message.as_bytes() != imprint.as_slice() {
        return Err(Error::Timestamp("the timestamp is for other data than requested".into()));
    }
    if tst.nonce.as_ref().map(|x| x.as_bytes()) != Some(Int::new(&n)?.as_bytes()) {
        return Err(Error::Timestamp("the timestamp's nonce is not the one sent (replayed answer?)".into()));
    }
    Ok(token_der)
}

/// The `TSTInfo` inside a token.
pub(crate) fn tst_info(token: &[u8]) -> Result<TstInfo, Error> {
    let ci = cms::content_info::ContentInfo::from_der(token)
        .map_err(|e| Error::Timestamp(format!("bad timestamp token: {e}")))?;
    let sd: cms::signed_data::SignedData =
        ci.content.decode_as().map_err(|e| Error::Timestamp(format!("bad timestamp token: {e}")))?;
    if sd.encap_content_info.econtent_type != ID_CT_TST_INFO {
        return Err(Error::Timestamp("the token does not hold a TSTInfo".into()));
    }
    let content = sd.encap_content_info.econtent.ok_or_else(|| Error::Timestamp("the token has no content".into()))?;
    let octets: OctetString = content.decode_as().map_err(|e| Error::Timestamp(format!("bad TSTInfo: {e}")))?;
    TstInfo::from_der(octets.as_bytes()).map_err(|e| Error::Timestamp(format!("bad TSTInfo: {e}")))
}

/// The built-in timestamp authority: a key, its certificate (extended key
/// usage timeStamping, critical) and chain, a policy, and a clock.
pub struct TimestampAuthority {
    key: Box<dyn Signer>,
    cert: Vec<u8>,
    chain: Vec<Vec<u8>>,
    policy: ObjectIdentifier,
    clock: Box<dyn Fn() -> time::OffsetDateTime + Send + Sync>,
}

impl std::fmt::Debug for TimestampAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimestampAuthority").field("policy", &self.policy).finish_non_exhaustive()
    }
}

impl TimestampAuthority {
    /// `clock` gives the time to stamp (the caller owns the clock: this
    /// crate reads none).
    pub fn new(
        key: Box<dyn Signer>,
        cert_der: Vec<u8>,
        chain: Vec<Vec<u8>>,
        policy: &str,
        clock: Box<dyn Fn() -> time::OffsetDateTime + Send + Sync>,
    ) -> Result<TimestampAuthority, Error> {
        // const-oid holds arcs in 32 bits (and panics beyond): check first.
        let arcs_fit = policy.split('.').count() >= 2 && policy.split('.').all(|a| a.parse::<u32>().is_ok());
        if !arcs_fit {
            return Err(Error::Timestamp(format!(
                "`{policy}` is not a policy OID with arcs below 2^32 (like 2.25.41975)"
            )));
        }
        let policy =
            ObjectIdentifier::new(policy).map_err(|e| Error::Timestamp(format!("bad policy OID {policy}: {e}")))?;
        cades::prepare(key.as_ref(), &cert_der, &chain)?;
        Ok(TimestampAuthority { key, cert: cert_der, chain, policy, clock })
    }

    fn rejection() -> Vec<u8> {
        let resp = TimeStampResp {
            status: PkiStatusInfo { status: PkiStatus::Rejection, status_string: None, fail_info: None },
            time_stamp_token: None,
        };
        resp.to_der().unwrap_or_default()
    }

    /// Answers a DER `TimeStampReq` with a DER `TimeStampResp`: a token
    /// (SHA-256 imprints only), or a rejection for anything malformed.
    pub fn respond(&self, request: &[u8]) -> Vec<u8> {
        match self.token(request) {
            Ok(token) => match cms::content_info::ContentInfo::from_der(&token) {
                Ok(ci) => TimeStampResp {
                    status: PkiStatusInfo { status: PkiStatus::Accepted, status_string: None, fail_info: None },
                    time_stamp_token: Some(ci),
                }
                .to_der()
                .unwrap_or_else(|_| Self::rejection()),
                Err(_) => Self::rejection(),
            },
            Err(_) => Self::rejection(),
        }
    }

    fn token(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        let req = TimeStampReq::from_der(request).map_err(|e| Error::Timestamp(format!("bad request: {e}")))?;
        if req.message_imprint.hash_algorithm.oid != rfc5912::ID_SHA_256
            || req.message_imprint.hashed_message.as_bytes().len() != 32
        {
            return Err(Error::Timestamp("only SHA-256 imprints are stamped".into()));
        }
        let now = (self.clock)();
        let secs =
            u64::try_from(now.unix_timestamp()).map_err(|_| Error::Timestamp("the clock is before 1970".into()))?;
        let mut serial = [0u8; 16];
        aws_lc_rs::rand::fill(&mut serial).map_err(|_| Error::Timestamp("no randomness".into()))?;
        serial[0] &= 0x7f;
        serial[0] |= 0x01;
        let tst = TstInfo {
            version: TspVersion::V1,
            policy: self.policy,
            message_imprint: req.message_imprint,
            serial_number: Int::new(&serial)?,
            gen_time: GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))?,
            accuracy: None,
            ordering: false,
            nonce: req.nonce,
            tsa: None,
            extensions: None,
        };
        let tst_der = tst.to_der()?;
        let prepared = cades::prepare(self.key.as_ref(), &self.cert, &self.chain)?;
        let digest = self.key.algorithm().digest();
        let signed = prepared.sign(&digest.hash(&tst_der), ID_CT_TST_INFO)?;
        prepared.encode(&signed, Some((ID_CT_TST_INFO, &tst_der)), None)
    }
}

/// The built-in authority, called in process.
impl TimestampClient for TimestampAuthority {
    fn exchange(&self, request: &[u8]) -> Result<Vec<u8>, Error> {
        Ok(self.respond(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Digest;

    struct Refuses;
    impl TimestampClient for Refuses {
        fn exchange(&self, _: &[u8]) -> Result<Vec<u8>, Error> {
            Err(Error::Timestamp("connection refused".into()))
        }
    }

    #[test]
    fn an_unreachable_authority_fails_closed() {
        let e = timestamp(&Refuses, &Digest::Sha256.hash(b"x")).expect_err("must fail");
        assert!(e.to_string().contains("connection refused"));
    }

    #[test]
    fn garbage_requests_are_rejected_not_stamped() {
        let now = time::OffsetDateTime::now_utc();
        let files = crate::ca::init("Org", "CA", now).expect("CA");
        let issuing = crate::ca::IssuingCa::load("Org", "CA", &files.issuing_key).expect("CA");
        let issued = issuing.issue_tsa("Org", 1, now, 30).expect("TSA certificate");
        let key = crate::SoftwareKey::from_pkcs8(issued.key_pem.as_bytes(), false).expect("key");
        let chain = vec![crate::ca::pem_to_der(&files.issuing_cert).expect("pem")];
        let tsa = TimestampAuthority::new(Box::new(key), issued.cert_der, chain, "2.25.41975", Box::new(move || now))
            .expect("TSA");
        for garbage in [&b"garbage"[..], b"", &[0x30, 0x03, 0x02, 0x01, 0x01]] {
            let r = tsa.respond(garbage);
            let parsed = TimeStampResp::from_der(&r).expect("a valid response");
            assert_eq!(parsed.status.status, PkiStatus::Rejection);
            assert!(parsed.time_stamp_token.is_none());
        }
        // A well-formed request is stamped by the same authority.
        assert!(timestamp(&tsa, &Digest::Sha256.hash(b"x")).is_ok());
    }
}
