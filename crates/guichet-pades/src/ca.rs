//! A built-in certification authority for organizations without a PKI: a
//! root, an issuing CA, and employees' signing certificates
//! (digitalSignature + nonRepudiation), with revocation lists.

use crate::Error;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevocationReason, RevokedCertParams, SerialNumber,
};
use time::{Duration, OffsetDateTime};

fn ca_err(e: rcgen::Error) -> Error {
    Error::Ca(e.to_string())
}

/// Who a signing certificate is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Employee {
    pub name: String,
    pub email: String,
    pub organization: String,
    pub unit: Option<String>,
}

/// The certificates and keys of a CA, as PEM text (what is stored).
#[derive(Clone)]
pub struct CaFiles {
    pub root_cert: String,
    pub root_key: String,
    pub issuing_cert: String,
    pub issuing_key: String,
}

impl std::fmt::Debug for CaFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CaFiles").finish_non_exhaustive()
    }
}

/// A certificate just issued, with its new private key (PKCS#8 PEM).
#[derive(Clone)]
pub struct Issued {
    pub cert_pem: String,
    pub cert_der: Vec<u8>,
    pub key_pem: String,
    pub serial: Vec<u8>,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("serial", &self.serial).finish_non_exhaustive()
    }
}

fn ca_name(organization: &str, country: &str, role: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CountryName, country);
    dn.push(DnType::OrganizationName, organization);
    dn.push(DnType::CommonName, format!("{organization} — {role}"));
    dn
}

fn ca_params(
    organization: &str,
    country: &str,
    role: &str,
    now: OffsetDateTime,
    years: i64,
    path_len: u8,
) -> CertificateParams {
    let mut p = CertificateParams::default();
    p.distinguished_name = ca_name(organization, country, role);
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(path_len));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(365 * years);
    p
}

/// The common part of an end-entity certificate: not a CA (stated, so
/// that rcgen writes the key usage), valid from five minutes ago (clock
/// skew) for `days` days.
/// A new key pair of `algorithm`: its public half for rcgen, and the
/// private key as PKCS#8 PEM.
fn new_key(algorithm: crate::Algorithm) -> Result<(SubjectKey, String), Error> {
    let (soft, pkcs8) = crate::SoftwareKey::generate(algorithm)?;
    let key = SubjectKey::new(&crate::Signer::public_key_info(&soft), algorithm)?;
    let key_pem = der::pem::encode_string("PRIVATE KEY", der::pem::LineEnding::LF, &pkcs8)
        .map_err(|e| Error::Key(format!("cannot encode the key: {e}")))?;
    Ok((key, key_pem))
}

fn leaf_params(now: OffsetDateTime, days: i64) -> Result<CertificateParams, Error> {
    let mut p = CertificateParams::new(vec![]).map_err(ca_err)?;
    p.is_ca = IsCa::ExplicitNoCa;
    p.not_before = now - Duration::minutes(5);
    p.not_after = now + Duration::days(days);
    Ok(p)
}

/// Creates a root CA (20 years) and an issuing CA (10 years) signed by it,
/// with ECDSA P-384 keys.
pub fn init(organization: &str, country: &str, now: OffsetDateTime) -> Result<CaFiles, Error> {
    init_with(organization, country, now, None)
}

/// [`init`], the issuing CA's certificate naming where the root's CRL is
/// published (cRLDistributionPoints), for validators that check online.
pub fn init_with(
    organization: &str,
    country: &str,
    now: OffsetDateTime,
    root_crl_url: Option<&str>,
) -> Result<CaFiles, Error> {
    let root_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(ca_err)?;
    let root_params = ca_params(organization, country, "Root CA", now, 20, 1);
    let root = root_params.self_signed(&root_key).map_err(ca_err)?;
    let issuing_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384).map_err(ca_err)?;
    let mut issuing_params = ca_params(organization, country, "Issuing CA", now, 10, 0);
    if let Some(url) = root_crl_url {
        check_url(url)?;
        issuing_params.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![url.to_owned()] }];
    }
    let root_issuer = Issuer::new(root_params, &root_key);
    let issuing = issuing_params.signed_by(&issuing_key, &root_issuer).map_err(ca_err)?;
    Ok(CaFiles {
        root_cert: root.pem(),
        root_key: root_key.serialize_pem(),
        issuing_cert: issuing.pem(),
        issuing_key: issuing_key.serialize_pem(),
    })
}

/// The issuing CA, ready to issue (rebuilt from its stored files and the
/// names it was created with).
pub struct IssuingCa {
    params: CertificateParams,
    key: KeyPair,
    /// Where relying parties ask about the certificates it issues: an OCSP
    /// responder (authorityInfoAccess) and a CRL (cRLDistributionPoints).
    ocsp_url: Option<String>,
    crl_url: Option<String>,
}

impl std::fmt::Debug for IssuingCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuingCa").finish_non_exhaustive()
    }
}

impl IssuingCa {
    pub fn load(organization: &str, country: &str, issuing_key_pem: &str) -> Result<IssuingCa, Error> {
        let key = KeyPair::from_pem(issuing_key_pem).map_err(ca_err)?;
        let params = ca_params(organization, country, "Issuing CA", OffsetDateTime::UNIX_EPOCH, 10, 0);
        Ok(IssuingCa { params, key, ocsp_url: None, crl_url: None })
    }

    /// The root CA, to publish the CRL that covers the issuing CA.
    pub fn load_root(organization: &str, country: &str, root_key_pem: &str) -> Result<IssuingCa, Error> {
        let key = KeyPair::from_pem(root_key_pem).map_err(ca_err)?;
        let params = ca_params(organization, country, "Root CA", OffsetDateTime::UNIX_EPOCH, 20, 1);
        Ok(IssuingCa { params, key, ocsp_url: None, crl_url: None })
    }

    /// Names, in the certificates issued from now on, the OCSP responder
    /// and the CRL (http URLs) a validator can ask online.
    pub fn with_revocation_urls(mut self, ocsp_url: Option<&str>, crl_url: Option<&str>) -> Result<IssuingCa, Error> {
        for u in ocsp_url.iter().chain(crl_url.iter()) {
            check_url(u)?;
        }
        self.ocsp_url = ocsp_url.map(str::to_owned);
        self.crl_url = crl_url.map(str::to_owned);
        Ok(self)
    }

    /// Issues an employee's signing certificate (P-256 key, `days` long).
    pub fn issue(&self, e: &Employee, serial: u64, now: OffsetDateTime, days: i64) -> Result<Issued, Error> {
        self.issue_with(e, serial, now, days, crate::Algorithm::EcdsaP256Sha256)
    }

    /// Issues an employee's signing certificate with a new key of the given
    /// algorithm (P-256, P-384, or RSA 2048).
    pub fn issue_with(
        &self,
        e: &Employee,
        serial: u64,
        now: OffsetDateTime,
        days: i64,
        algorithm: crate::Algorithm,
    ) -> Result<Issued, Error> {
        if e.name.trim().is_empty() || !e.email.contains('@') {
            return Err(Error::Ca("an employee needs a name and an email address".into()));
        }
        let (key, key_pem) = new_key(algorithm)?;
        let mut p = leaf_params(now, days)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, e.name.as_str());
        dn.push(DnType::OrganizationName, e.organization.as_str());
        if let Some(u) = &e.unit {
            dn.push(DnType::OrganizationalUnitName, u.as_str());
        }
        p.distinguished_name = dn;
        p.subject_alt_names = vec![rcgen::SanType::Rfc822Name(e.email.as_str().try_into().map_err(ca_err)?)];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        self.sign_leaf(p, serial, &key, key_pem)
    }

    /// Signs a leaf certificate with serial number `serial` (as a minimal
    /// positive DER integer, which `Issued::serial` holds too).
    fn sign_leaf(
        &self,
        mut p: CertificateParams,
        serial: u64,
        key: &impl rcgen::PublicKeyData,
        key_pem: String,
    ) -> Result<Issued, Error> {
        let serial_bytes = serial.to_be_bytes().iter().skip_while(|b| **b == 0).copied().collect::<Vec<u8>>();
        let serial_bytes = if serial_bytes.first().is_some_and(|b| *b >= 0x80) || serial_bytes.is_empty() {
            [vec![0], serial_bytes].concat()
        } else {
            serial_bytes
        };
        p.serial_number = Some(SerialNumber::from_slice(&serial_bytes));
        if let Some(url) = &self.crl_url {
            p.crl_distribution_points = vec![rcgen::CrlDistributionPoint { uris: vec![url.clone()] }];
        }
        if let Some(url) = &self.ocsp_url {
            use der::Encode;
            let uri = der::asn1::Ia5String::new(url).map_err(|e| Error::Ca(format!("OCSP URL: {e}")))?;
            let aia = vec![x509_cert::ext::pkix::AccessDescription {
                access_method: const_oid::db::rfc5280::ID_AD_OCSP,
                access_location: x509_cert::ext::pkix::name::GeneralName::UniformResourceIdentifier(uri),
            }];
            p.custom_extensions
                .push(rcgen::CustomExtension::from_oid_content(&[1, 3, 6, 1, 5, 5, 7, 1, 1], aia.to_der()?));
        }
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = p.signed_by(key, &issuer).map_err(ca_err)?;
        Ok(Issued { cert_pem: cert.pem(), cert_der: cert.der().to_vec(), key_pem, serial: serial_bytes })
    }

    /// Issues the certificate of a timestamp authority: digitalSignature,
    /// and the one extended key usage timeStamping, critical (RFC 3161).
    pub fn issue_tsa(&self, organization: &str, serial: u64, now: OffsetDateTime, days: i64) -> Result<Issued, Error> {
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(ca_err)?;
        let key_pem = key.serialize_pem();
        self.tsa_leaf(organization, serial, now, days, &key, key_pem)
    }

    /// A timestamp authority's certificate with a new key of `algorithm`
    /// (some clients' test authorities, pyHanko's among them, are RSA only).
    pub fn issue_tsa_with(
        &self,
        organization: &str,
        serial: u64,
        now: OffsetDateTime,
        days: i64,
        algorithm: crate::Algorithm,
    ) -> Result<Issued, Error> {
        let (key, key_pem) = new_key(algorithm)?;
        self.tsa_leaf(organization, serial, now, days, &key, key_pem)
    }

    fn tsa_leaf(
        &self,
        organization: &str,
        serial: u64,
        now: OffsetDateTime,
        days: i64,
        key: &impl rcgen::PublicKeyData,
        key_pem: String,
    ) -> Result<Issued, Error> {
        let mut p = leaf_params(now, days)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{organization} — Timestamp Authority"));
        dn.push(DnType::OrganizationName, organization);
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // ExtKeyUsageSyntax ::= SEQUENCE { id-kp-timeStamping }
        let mut eku = rcgen::CustomExtension::from_oid_content(
            &[2, 5, 29, 37],
            vec![0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x08],
        );
        eku.set_criticality(true);
        p.custom_extensions = vec![eku];
        self.sign_leaf(p, serial, key, key_pem)
    }

    /// Renews a certificate this CA issued: same subject, same public key
    /// and usages, a new serial number and validity (before it expires, or
    /// after).
    pub fn renew(&self, cert_der: &[u8], serial: u64, now: OffsetDateTime, days: i64) -> Result<Issued, Error> {
        use der::{Decode, Encode};
        let old = x509_cert::Certificate::from_der(cert_der)
            .map_err(|e| Error::Certificate(format!("unreadable certificate: {e}")))?;
        let mut dn = DistinguishedName::new();
        for rdn in old.tbs_certificate.subject.0.iter() {
            for atv in rdn.0.iter() {
                let value = crate::asn1::name_text(&atv.value)
                    .ok_or_else(|| Error::Ca("a name attribute of the certificate is not text".into()))?;
                let kind = match atv.oid {
                    o if o == const_oid::db::rfc4519::CN => DnType::CommonName,
                    o if o == const_oid::db::rfc4519::O => DnType::OrganizationName,
                    o if o == const_oid::db::rfc4519::OU => DnType::OrganizationalUnitName,
                    o if o == const_oid::db::rfc4519::C => DnType::CountryName,
                    other => return Err(Error::Ca(format!("unsupported name attribute {other}"))),
                };
                dn.push(kind, value);
            }
        }
        let spki = old.tbs_certificate.subject_public_key_info.to_der()?;
        let alg = if old.tbs_certificate.subject_public_key_info.algorithm.oid == const_oid::db::rfc5912::RSA_ENCRYPTION
        {
            crate::Algorithm::RsaPkcs1Sha256
        } else if old
            .tbs_certificate
            .subject_public_key_info
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok())
            == Some(const_oid::db::rfc5912::SECP_384_R_1)
        {
            crate::Algorithm::EcdsaP384Sha384
        } else {
            crate::Algorithm::EcdsaP256Sha256
        };
        let key = SubjectKey::new(&spki, alg)?;
        let mut p = leaf_params(now, days)?;
        p.distinguished_name = dn;
        // The same e-mail address.
        let san = old
            .tbs_certificate
            .extensions
            .iter()
            .flatten()
            .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_SUBJECT_ALT_NAME);
        if let Some(san) = san
            && let Ok(names) = x509_cert::ext::pkix::SubjectAltName::from_der(san.extn_value.as_bytes())
        {
            for n in names.0 {
                if let x509_cert::ext::pkix::name::GeneralName::Rfc822Name(m) = n {
                    p.subject_alt_names.push(rcgen::SanType::Rfc822Name(m.as_str().try_into().map_err(ca_err)?));
                }
            }
        }
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::ContentCommitment];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
        self.sign_leaf(p, serial, &key, String::new())
    }

    /// Issues the certificate of a delegated OCSP responder: the one
    /// extended key usage OCSPSigning (RFC 6960 §4.2.2.2).
    pub fn issue_ocsp_responder(
        &self,
        organization: &str,
        serial: u64,
        now: OffsetDateTime,
        days: i64,
    ) -> Result<Issued, Error> {
        let (key, key_pem) = new_key(crate::Algorithm::EcdsaP256Sha256)?;
        let mut p = leaf_params(now, days)?;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("{organization} — OCSP"));
        dn.push(DnType::OrganizationName, organization);
        p.distinguished_name = dn;
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::OcspSigning];
        self.sign_leaf(p, serial, &key, key_pem)
    }

    /// A CRL listing `revoked` (serial, time, reason), valid for `days`.
    pub fn crl(
        &self,
        revoked: &[(Vec<u8>, OffsetDateTime, RevocationReason)],
        number: u64,
        now: OffsetDateTime,
        days: i64,
    ) -> Result<Vec<u8>, Error> {
        let params = CertificateRevocationListParams {
            this_update: now,
            next_update: now + Duration::days(days),
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|(s, t, r)| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(s),
                    revocation_time: *t,
                    reason_code: Some(*r),
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: self.params.key_identifier_method.clone(),
        };
        let issuer = Issuer::from_params(&self.params, &self.key);
        Ok(params.signed_by(&issuer).map_err(ca_err)?.der().to_vec())
    }
}

/// A subject's public key for rcgen: the key bits and the algorithm.
struct SubjectKey {
    bits: Vec<u8>,
    algorithm: &'static rcgen::SignatureAlgorithm,
}

impl SubjectKey {
    fn new(spki_der: &[u8], algorithm: crate::Algorithm) -> Result<SubjectKey, Error> {
        use der::Decode;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(spki_der)?;
        let algorithm = match algorithm {
            crate::Algorithm::EcdsaP256Sha256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            crate::Algorithm::EcdsaP384Sha384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            // The certificate names the key as rsaEncryption in both cases.
            crate::Algorithm::RsaPkcs1Sha256 | crate::Algorithm::RsaPssSha256 => &rcgen::PKCS_RSA_SHA256,
        };
        Ok(SubjectKey { bits: spki.subject_public_key.raw_bytes().to_vec(), algorithm })
    }
}

impl rcgen::PublicKeyData for SubjectKey {
    fn der_bytes(&self) -> &[u8] {
        &self.bits
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        self.algorithm
    }
}

pub use rcgen::RevocationReason as Reason;

/// A DER certificate as PEM text.
pub fn der_to_pem(der: &[u8]) -> Result<String, Error> {
    der::pem::encode_string("CERTIFICATE", der::pem::LineEnding::LF, der)
        .map_err(|e| Error::Certificate(format!("cannot encode the certificate: {e}")))
}

/// DER of the first certificate in a PEM text.
pub fn pem_to_der(pem: &str) -> Result<Vec<u8>, Error> {
    pem_all(pem)?.into_iter().next().ok_or_else(|| Error::Certificate("no certificate in this PEM text".into()))
}

/// DER of every certificate in a PEM text (a chain file).
pub fn pem_all(pem: &str) -> Result<Vec<Vec<u8>>, Error> {
    let mut out = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find("-----END CERTIFICATE-----") else {
            return Err(Error::Certificate("a PEM certificate is not closed".into()));
        };
        let block = &rest[start..start + end + "-----END CERTIFICATE-----".len()];
        let (_, der) =
            der::pem::decode_vec(block.as_bytes()).map_err(|e| Error::Certificate(format!("bad PEM: {e}")))?;
        out.push(der);
        rest = &rest[start + end + 1..];
    }
    Ok(out)
}

/// Whether `u` is an http(s) URL: the only kind a CA names for revocation
/// and a validator asks online.
pub fn is_http_url(u: &str) -> bool {
    u.starts_with("http://") || u.starts_with("https://")
}

/// A revocation URL for a CA to name: http(s), else an error saying so.
pub fn check_url(u: &str) -> Result<(), Error> {
    if is_http_url(u) { Ok(()) } else { Err(Error::Ca(format!("{u:?} is not an http(s) URL"))) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_issued_serial_is_the_one_in_the_certificate() {
        use der::Decode;
        let now = OffsetDateTime::now_utc();
        let files = init("Org", "CA", now).expect("CA");
        let ca = IssuingCa::load("Org", "CA", &files.issuing_key).expect("CA");
        let e = Employee { name: "A".into(), email: "a@x.org".into(), organization: "Org".into(), unit: None };
        let employee = ca.issue(&e, 0x80, now, 30).expect("employee");
        let issued = [
            ca.issue_tsa("Org", 7, now, 30).expect("tsa"),
            ca.issue_ocsp_responder("Org", 0x1_0000, now, 30).expect("ocsp"),
            ca.renew(&employee.cert_der, 0xff, now, 30).expect("renewal"),
            employee,
        ];
        for (i, want) in issued.iter().zip([vec![7], vec![1, 0, 0], vec![0, 0xff], vec![0, 0x80]]) {
            let cert = x509_cert::Certificate::from_der(&i.cert_der).expect("cert");
            assert_eq!(i.serial, want);
            assert_eq!(cert.tbs_certificate.serial_number.as_bytes(), want.as_slice());
        }
    }

    #[test]
    fn a_certificate_without_signing_usage_is_refused_for_signing() {
        let now = OffsetDateTime::now_utc();
        let files = init("Org", "CA", now).expect("CA");
        let issuing = IssuingCa::load("Org", "CA", &files.issuing_key).expect("CA");
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut p = CertificateParams::new(vec![]).expect("params");
        p.not_before = now - Duration::minutes(5);
        p.not_after = now + Duration::days(1);
        p.key_usages = vec![KeyUsagePurpose::KeyEncipherment];
        p.is_ca = IsCa::ExplicitNoCa;
        let issuer = Issuer::from_params(&issuing.params, &issuing.key);
        let cert = p.signed_by(&key, &issuer).expect("cert");
        let e = crate::sign::check_certificate(cert.der(), Some(now)).expect_err("refused");
        assert!(e.to_string().contains("may not sign documents"), "{e}");
        p.key_usages = vec![KeyUsagePurpose::ContentCommitment];
        let cert = p.signed_by(&key, &issuer).expect("cert");
        assert!(crate::sign::check_certificate(cert.der(), Some(now)).is_ok());
    }
}
