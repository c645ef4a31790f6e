//! Validation of every signature in a PDF, in the spirit of ETSI EN 319
//! 102-1: byte range, digest, signature, signing certificate, path to a
//! trust anchor, and what changed in the file after each signature.

use crate::keys::verify_signature;
use crate::pdf;
use crate::{Error, cades};
use der::{Decode, Encode};
use lopdf::{Document, Object, ObjectId};
use x509_cert::Certificate;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Indication {
    TotalPassed,
    Indeterminate,
    TotalFailed,
}

impl Indication {
    pub fn as_str(self) -> &'static str {
        match self {
            Indication::TotalPassed => "TOTAL-PASSED",
            Indication::Indeterminate => "INDETERMINATE",
            Indication::TotalFailed => "TOTAL-FAILED",
        }
    }
}

/// What happened to the document after a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Modification {
    /// The signature covers the whole file.
    None,
    /// Later revisions only add signatures, their fields, validation data
    /// or timestamps.
    Allowed,
    /// A later revision changes signed content.
    NotAllowed,
}

impl Modification {
    pub fn as_str(self) -> &'static str {
        match self {
            Modification::None => "none",
            Modification::Allowed => "allowed",
            Modification::NotAllowed => "not allowed",
        }
    }
}

/// The verdict on one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureReport {
    pub field: String,
    pub indication: Indication,
    /// ETSI sub-indication (`HASH_FAILURE`, `NO_CERTIFICATE_CHAIN_FOUND`…).
    pub sub_indication: Option<&'static str>,
    pub signer: Option<String>,
    pub level: Option<&'static str>,
    pub byte_range: Vec<i64>,
    pub modification: Modification,
    /// When a verified timestamp proves the signature (or, for a document
    /// timestamp, the document) existed.
    pub timestamp: Option<time::OffsetDateTime>,
    /// Every check made, in order, with its outcome, for people.
    pub details: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidationReport {
    pub signatures: Vec<SignatureReport>,
}

impl ValidationReport {
    pub fn all_passed(&self) -> bool {
        !self.signatures.is_empty() && self.signatures.iter().all(|s| s.indication == Indication::TotalPassed)
    }
}

/// Validates every signature of `pdf` against `trust` (DER certificates),
/// at time `now` (the proven signing time when there is no timestamp).
pub fn verify_pdf(pdf_bytes: &[u8], trust: &[Vec<u8>], now: time::OffsetDateTime) -> Result<ValidationReport, Error> {
    verify_pdf_with(pdf_bytes, trust, now, &VerifyOptions::default())
}

/// How strict validation is, and whether it may go online.
#[derive(Clone, Copy, Default)]
pub struct VerifyOptions<'a> {
    /// Without revocation data for every certificate of the signer's path
    /// (stored in the file, or fetched online when allowed), the result is
    /// INDETERMINATE (TRY_LATER) instead of a detail: what an auditor wants
    /// of a document kept for years.
    pub require_revocation: bool,
    /// When the file holds no revocation data for a certificate, ask the
    /// OCSP responder (authorityInfoAccess) or fetch the CRL
    /// (cRLDistributionPoints) the certificate names. What is fetched
    /// counts for the verdict, not for the level (B-LT needs it stored).
    pub online: Option<&'a dyn RevocationFetcher>,
}

impl std::fmt::Debug for VerifyOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VerifyOptions")
            .field("require_revocation", &self.require_revocation)
            .field("online", &self.online.is_some())
            .finish()
    }
}

/// The network, brought by the caller (validation itself does no IO):
/// fetch a CRL by its URL, send an OCSP request to a responder. Errors
/// are messages for the report.
pub trait RevocationFetcher: Send + Sync {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String>;
    fn ask_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String>;
}

/// What was fetched, by URL (and OCSP request).
type Fetched<K> = std::sync::Mutex<std::collections::HashMap<K, Result<Vec<u8>, String>>>;

/// A fetcher that asks each URL (and OCSP request) once per validation.
struct Memo<'a> {
    inner: &'a dyn RevocationFetcher,
    crls: Fetched<String>,
    ocsps: Fetched<(String, Vec<u8>)>,
}

impl<'a> Memo<'a> {
    fn new(inner: &'a dyn RevocationFetcher) -> Memo<'a> {
        Memo { inner, crls: Default::default(), ocsps: Default::default() }
    }
}

impl RevocationFetcher for Memo<'_> {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        let mut seen = self.crls.lock().map_err(|_| "revocation cache poisoned".to_owned())?;
        seen.entry(url.to_owned()).or_insert_with(|| self.inner.fetch_crl(url)).clone()
    }

    fn ask_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        let mut seen = self.ocsps.lock().map_err(|_| "revocation cache poisoned".to_owned())?;
        seen.entry((url.to_owned(), request.to_vec())).or_insert_with(|| self.inner.ask_ocsp(url, request)).clone()
    }
}

/// The http(s) URLs a certificate names for revocation: its OCSP
/// responders (authorityInfoAccess) and its CRLs (cRLDistributionPoints).
pub fn revocation_urls(cert: &Certificate) -> (Vec<String>, Vec<String>) {
    use x509_cert::ext::pkix::name::{DistributionPointName, GeneralName};
    let uri = |g: &GeneralName| match g {
        GeneralName::UniformResourceIdentifier(u) => {
            let u = u.as_str();
            crate::ca::is_http_url(u).then(|| u.to_owned())
        }
        _ => None,
    };
    let (mut ocsp, mut crl) = (Vec::new(), Vec::new());
    for e in cert.tbs_certificate.extensions.iter().flatten() {
        if e.extn_id == const_oid::db::rfc5280::ID_PE_AUTHORITY_INFO_ACCESS {
            if let Ok(aia) = x509_cert::ext::pkix::AuthorityInfoAccessSyntax::from_der(e.extn_value.as_bytes()) {
                ocsp.extend(
                    aia.0
                        .iter()
                        .filter(|a| a.access_method == const_oid::db::rfc5280::ID_AD_OCSP)
                        .filter_map(|a| uri(&a.access_location)),
                );
            }
        } else if e.extn_id == const_oid::db::rfc5280::ID_CE_CRL_DISTRIBUTION_POINTS
            && let Ok(dps) = x509_cert::ext::pkix::CrlDistributionPoints::from_der(e.extn_value.as_bytes())
        {
            for dp in &dps.0 {
                if let Some(DistributionPointName::FullName(names)) = &dp.distribution_point {
                    crl.extend(names.iter().filter_map(uri));
                }
            }
        }
    }
    (ocsp, crl)
}

/// Revocation data for each certificate of `path` (but the anchor), asked
/// online: the OCSP responder first, else the CRL (at most two URLs of
/// each per certificate). Returns (CRLs, OCSP responses, report lines).
fn fetch_online(f: &dyn RevocationFetcher, path: &[Certificate]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>, Vec<String>) {
    let (mut crls, mut ocsps, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    for pair in path.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        let (ocsp_urls, crl_urls) = revocation_urls(cert);
        let mut got = false;
        if let Ok(req) = crate::ocsp::request(cert, issuer) {
            for url in ocsp_urls.iter().take(2) {
                match f.ask_ocsp(url, &req) {
                    Ok(r) if crate::ocsp::status_in(&r, cert, issuer).is_some() => {
                        notes.push(format!("· OCSP response fetched from {url}"));
                        ocsps.push(r);
                        got = true;
                        break;
                    }
                    Ok(_) => notes.push(format!("? {url}: the OCSP answer does not cover the certificate")),
                    Err(e) => notes.push(format!("? {url}: {e}")),
                }
            }
        }
        if !got {
            for url in crl_urls.iter().take(2) {
                match f.fetch_crl(url) {
                    Ok(c) => {
                        notes.push(format!("· CRL fetched from {url}"));
                        crls.push(c);
                        break;
                    }
                    Err(e) => notes.push(format!("? {url}: {e}")),
                }
            }
        }
        if ocsp_urls.is_empty() && crl_urls.is_empty() {
            notes.push(format!("? {} names no OCSP responder or CRL", cert.tbs_certificate.subject));
        }
    }
    (crls, ocsps, notes)
}

/// `verify_pdf` with options.
pub fn verify_pdf_with(
    pdf_bytes: &[u8],
    trust: &[Vec<u8>],
    now: time::OffsetDateTime,
    options: &VerifyOptions<'_>,
) -> Result<ValidationReport, Error> {
    let doc = pdf::load(pdf_bytes)?;
    let ends = pdf::revision_ends(pdf_bytes);
    let mut sigs: Vec<(ObjectId, &lopdf::Dictionary)> = doc
        .objects
        .iter()
        .filter_map(|(id, o)| o.as_dict().ok().map(|d| (*id, d)))
        .filter(|(_, d)| d.has(b"ByteRange") && d.has(b"Contents"))
        .collect();
    // In file order.
    sigs.sort_by_key(|(_, d)| byte_range(d).and_then(|r| r.get(1).copied()).unwrap_or(0));
    // Signatures from one chain ask the same URLs: each is asked once.
    let memo = options.online.map(Memo::new);
    let options = VerifyOptions { online: memo.as_ref().map(|m| m as &dyn RevocationFetcher), ..*options };
    let mut ctx = Ctx {
        bytes: pdf_bytes,
        doc: &doc,
        ends,
        trust,
        now,
        crls: dss_items(&doc, b"CRLs"),
        ocsps: dss_items(&doc, b"OCSPs"),
        doc_timestamps: Vec::new(),
        options,
        doc_mdp: sigs.iter().find_map(|(_, d)| docmdp(d)),
    };
    let is_doc_ts =
        |d: &lopdf::Dictionary| d.get(b"SubFilter").ok().and_then(|s| s.as_name().ok()) == Some(b"ETSI.RFC3161");
    // Document timestamps first: they tell which signatures reach B-LTA.
    let mut reports: Vec<(usize, SignatureReport)> = Vec::new();
    for (k, (id, d)) in sigs.iter().enumerate() {
        if is_doc_ts(d) {
            let field = field_name(&doc, *id).unwrap_or_else(|| format!("object {} {}", id.0, id.1));
            let r = check_doc_timestamp(&ctx, d, field);
            if r.indication == Indication::TotalPassed
                && let Some(e) = r.byte_range.get(2..4).map(|x| (x[0] + x[1]) as usize)
            {
                ctx.doc_timestamps.push(e);
            }
            reports.push((k, r));
        }
    }
    for (k, (id, d)) in sigs.iter().enumerate() {
        if !is_doc_ts(d) {
            let field = field_name(&doc, *id).unwrap_or_else(|| format!("object {} {}", id.0, id.1));
            reports.push((k, check_one(&ctx, d, field)));
        }
    }
    reports.sort_by_key(|(k, _)| *k);
    Ok(ValidationReport { signatures: reports.into_iter().map(|(_, r)| r).collect() })
}

/// What every signature's check needs.
struct Ctx<'a> {
    bytes: &'a [u8],
    doc: &'a Document,
    ends: Vec<usize>,
    trust: &'a [Vec<u8>],
    now: time::OffsetDateTime,
    /// CRLs and OCSP responses of the Document Security Store.
    crls: Vec<Vec<u8>>,
    ocsps: Vec<Vec<u8>>,
    /// Ends of the revisions covered by a valid document timestamp.
    doc_timestamps: Vec<usize>,
    options: VerifyOptions<'a>,
    /// The document's certification signature's DocMDP permissions, if
    /// it has one (1 no change, 2 form filling, 3 also annotations).
    doc_mdp: Option<i64>,
}

/// The contents of the DSS streams under `key` (`Certs`, `CRLs`, `OCSPs`).
fn dss_items(doc: &Document, key: &[u8]) -> Vec<Vec<u8>> {
    let Some(dss) = doc.catalog().ok().and_then(|c| c.get(b"DSS").ok()).and_then(|o| pdf::dict(doc, o)).map(|(_, d)| d)
    else {
        return Vec::new();
    };
    pdf::stream_array(doc, dss, key).into_iter().map(|(content, _)| content).collect()
}

/// The DocMDP permissions of a certification signature dictionary.
fn docmdp(d: &lopdf::Dictionary) -> Option<i64> {
    let refs = d.get(b"Reference").ok()?.as_array().ok()?;
    refs.iter().filter_map(|r| r.as_dict().ok()).find_map(|r| {
        (r.get(b"TransformMethod").ok()?.as_name().ok()? == b"DocMDP")
            .then(|| r.get(b"TransformParams").ok()?.as_dict().ok()?.get(b"P").ok()?.as_i64().ok())
            .flatten()
            .or(Some(2))
    })
}

fn names(path: &[Certificate]) -> String {
    path.iter().map(|c| c.tbs_certificate.subject.to_string()).collect::<Vec<_>>().join(" ← ")
}

enum Coverage {
    /// Every certificate of the path (but the trust anchor) has a CRL.
    Complete,
    /// The first certificate without one.
    Missing(String),
}

/// Checks each certificate of `path` (but the trust anchor, last) against
/// a CRL of its issuer: signed by the issuer, and not listing it as
/// revoked at or before `at`.
fn revocation(
    path: &[Certificate],
    crls: &[Vec<u8>],
    ocsps: &[Vec<u8>],
    at: time::OffsetDateTime,
) -> Result<Coverage, String> {
    let at = at.unix_timestamp();
    let lists: Vec<x509_cert::crl::CertificateList> =
        crls.iter().filter_map(|c| x509_cert::crl::CertificateList::from_der(c).ok()).collect();
    let mut missing = None;
    for pair in path.windows(2) {
        let (cert, issuer) = (&pair[0], &pair[1]);
        let spki = issuer.tbs_certificate.subject_public_key_info.to_der().unwrap_or_default();
        let usable = lists.iter().filter(|l| {
            l.tbs_cert_list.issuer == cert.tbs_certificate.issuer
                && l.tbs_cert_list.to_der().is_ok_and(|tbs| {
                    verify_signature(&spki, &l.signature_algorithm, &tbs, l.signature.raw_bytes()).is_ok()
                })
        });
        let mut found = false;
        for l in usable {
            found = true;
            for r in l.tbs_cert_list.revoked_certificates.iter().flatten() {
                if r.serial_number == cert.tbs_certificate.serial_number && unix(&r.revocation_date) <= at {
                    return Err(format!(
                        "{} was revoked before the signature's proven time",
                        cert.tbs_certificate.subject
                    ));
                }
            }
        }
        // OCSP responses signed by the issuer.
        for o in ocsps {
            match crate::ocsp::status_in(o, cert, issuer) {
                Some(crate::ocsp::Status::Good) => found = true,
                Some(crate::ocsp::Status::Revoked(t)) => {
                    found = true;
                    if t.unix_timestamp() <= at {
                        return Err(format!(
                            "{} was revoked (OCSP) before the signature's proven time",
                            cert.tbs_certificate.subject
                        ));
                    }
                }
                None => {}
            }
        }
        if !found && missing.is_none() {
            missing = Some(cert.tbs_certificate.subject.to_string());
        }
    }
    Ok(match missing {
        None => Coverage::Complete,
        Some(who) => Coverage::Missing(who),
    })
}

/// A document timestamp (`/SubFilter /ETSI.RFC3161`): its token must stamp
/// the digest of its byte range, and its authority must be trusted.
fn check_doc_timestamp(ctx: &Ctx, d: &lopdf::Dictionary, field: String) -> SignatureReport {
    let mut report = SignatureReport {
        field,
        indication: Indication::TotalFailed,
        sub_indication: Some("FORMAT_FAILURE"),
        signer: None,
        level: Some("document timestamp"),
        byte_range: Vec::new(),
        modification: Modification::None,
        timestamp: None,
        details: Vec::new(),
    };
    let (br, end, token) = match byte_range_and_contents(ctx, d) {
        Ok(x) => x,
        Err(msg) => {
            report.details.push(format!("✗ {msg}"));
            return report;
        }
    };
    report.byte_range = br.clone();
    let (b, c) = (br[1] as usize, br[2] as usize);
    let bytes = ctx.bytes;
    let stamped = move |dg: crate::keys::Digest| {
        let mut h = dg.hasher();
        h.update(&bytes[..b]);
        h.update(&bytes[c..end]);
        h.finish()
    };
    match check_timestamp(&token, &stamped, ctx.trust, ctx.now) {
        Ok((at, tsa)) => {
            report.signer = Some(tsa);
            report.timestamp = Some(at);
            report.details.push("✓ the timestamp stamps the document as it was then".into());
            report.indication = Indication::TotalPassed;
            report.sub_indication = None;
        }
        Err((indication, sub, msg)) => {
            report.details.push(format!("✗ {msg}"));
            report.indication = indication;
            report.sub_indication = Some(sub);
        }
    }
    if end != bytes.len() {
        report.modification = match trailing_garbage(bytes, &ctx.ends)
            .and_then(|()| changes_after(ctx.doc, &bytes[..end]))
            .and_then(|c| c.permitted(ctx.doc_mdp))
        {
            Ok(what) => {
                report.details.push(format!("✓ changes after the timestamp: allowed ({what})"));
                Modification::Allowed
            }
            Err(what) => {
                report.details.push(format!("✗ changed after the timestamp: {what}"));
                report.indication = Indication::TotalFailed;
                report.sub_indication = Some("MODIFIED_AFTER_SIGNING");
                Modification::NotAllowed
            }
        };
    }
    report
}

/// The byte range (checked), its end, and the decoded /Contents.
fn byte_range_and_contents(ctx: &Ctx, d: &lopdf::Dictionary) -> Result<(Vec<i64>, usize, Vec<u8>), String> {
    let bytes = ctx.bytes;
    let br = byte_range(d).ok_or("the /ByteRange is not four integers")?;
    let ok_shape = br.len() == 4 && br.iter().all(|x| *x >= 0);
    let (a, b, c, l) =
        if ok_shape { (br[0] as usize, br[1] as usize, br[2] as usize, br[3] as usize) } else { (1, 0, 0, 0) };
    if !ok_shape || a != 0 || b == 0 || c <= b || c.checked_add(l).is_none_or(|e| e > bytes.len()) {
        return Err(format!("the byte range {br:?} is not [0 a b c] inside the file"));
    }
    let end = c + l;
    let gap = &bytes[b..c];
    if gap.first() != Some(&b'<')
        || gap.last() != Some(&b'>')
        || !gap[1..gap.len() - 1].iter().all(|x| x.is_ascii_hexdigit())
    {
        return Err("the byte range does not exclude exactly the /Contents hex string".into());
    }
    let hex = &gap[1..gap.len() - 1];
    let contents: Vec<u8> = hex
        .chunks(2)
        .filter(|p| p.len() == 2)
        .filter_map(|p| u8::from_str_radix(std::str::from_utf8(p).ok()?, 16).ok())
        .collect();
    let declared = d.get(b"Contents").ok().and_then(|c| c.as_str().ok()).map(<[u8]>::to_vec).unwrap_or_default();
    if declared != contents {
        return Err(
            "the /Contents of the signature is not the part the byte range excludes (signature wrapping)".into()
        );
    }
    if !ctx.ends.contains(&end) {
        return Err(format!("the byte range ends at {end}, which is not the end of a revision"));
    }
    Ok((br, end, contents))
}

fn fail_with(mut r: SignatureReport, sub: &'static str, details: Vec<String>) -> SignatureReport {
    r.indication = Indication::TotalFailed;
    r.sub_indication = Some(sub);
    r.details = details;
    r
}

fn byte_range(d: &lopdf::Dictionary) -> Option<Vec<i64>> {
    d.get(b"ByteRange").ok()?.as_array().ok()?.iter().map(|o| o.as_i64().ok()).collect()
}

fn field_name(doc: &Document, sig: ObjectId) -> Option<String> {
    doc.objects.values().filter_map(|o| o.as_dict().ok()).find_map(|d| match d.get(b"V") {
        Ok(Object::Reference(r)) if *r == sig => {
            d.get(b"T").ok().and_then(|t| t.as_str().ok()).map(|t| String::from_utf8_lossy(t).into_owned())
        }
        _ => None,
    })
}

struct Verdict {
    indication: Indication,
    sub: Option<&'static str>,
}

fn check_one(ctx: &Ctx, d: &lopdf::Dictionary, field: String) -> SignatureReport {
    let (bytes, doc, trust, now) = (ctx.bytes, ctx.doc, ctx.trust, ctx.now);
    let mut details = Vec::new();
    let mut report = SignatureReport {
        field,
        indication: Indication::TotalFailed,
        sub_indication: Some("FORMAT_FAILURE"),
        signer: None,
        level: None,
        byte_range: Vec::new(),
        modification: Modification::None,
        timestamp: None,
        details: Vec::new(),
    };
    let fail = |r: SignatureReport, sub: &'static str, msg: String, mut details: Vec<String>| {
        details.push(format!("✗ {msg}"));
        fail_with(r, sub, details)
    };
    // 1. The byte range: from 0, around exactly the /Contents string, to
    //    the end of a revision.
    let (br, end, cms_bytes) = match byte_range_and_contents(ctx, d) {
        Ok(x) => x,
        Err(msg) => return fail(report, "FORMAT_FAILURE", msg, details),
    };
    report.byte_range = br.clone();
    let (b, c) = (br[1] as usize, br[2] as usize);
    details.push(format!("✓ byte range {br:?} ends a revision and excludes only /Contents"));

    // 2. The CMS object, its digest and its signature.
    let info = match cades::parse(&cms_bytes) {
        Ok(i) => i,
        Err(e) => return fail(report, "FORMAT_FAILURE", e.to_string(), details),
    };
    if info.signer_infos != 1 {
        return fail(
            report,
            "FORMAT_FAILURE",
            format!("the CMS object has {} SignerInfos; PAdES wants exactly one", info.signer_infos),
            details,
        );
    }
    let Some(digest) = info.digest else {
        return fail(
            report,
            "CRYPTO_CONSTRAINTS_FAILURE",
            format!("unsupported digest algorithm {}", info.digest_oid),
            details,
        );
    };
    let mut h = digest.hasher();
    h.update(&bytes[..b]);
    h.update(&bytes[c..end]);
    let actual = h.finish();
    if info.message_digest.as_deref() != Some(actual.as_slice()) {
        return fail(
            report,
            "HASH_FAILURE",
            "the document digest does not match the signed message digest: the signed bytes were changed".into(),
            details,
        );
    }
    details.push("✓ the digest of the signed bytes matches".into());
    let Some(si) = info.signer else {
        report.indication = Indication::Indeterminate;
        report.sub_indication = Some("NO_SIGNING_CERTIFICATE_FOUND");
        details.push("? the signer's certificate is not in the signature".into());
        report.details = details;
        return report;
    };
    let signer_der = &info.certificates[si];
    let signer = match Certificate::from_der(signer_der) {
        Ok(c) => c,
        Err(e) => return fail(report, "FORMAT_FAILURE", format!("unreadable signer certificate: {e}"), details),
    };
    report.signer = Some(signer.tbs_certificate.subject.to_string());
    let spki = signer.tbs_certificate.subject_public_key_info.to_der().unwrap_or_default();
    if let Err(e) = verify_signature(&spki, &info.signature_algorithm, &info.signed_attrs_der, &info.signature) {
        return fail(report, "SIG_CRYPTO_FAILURE", format!("the signature value is wrong: {e}"), details);
    }
    details.push("✓ the signature value is correct".into());
    if !info.content_type_is_data {
        return fail(report, "FORMAT_FAILURE", "the content-type attribute is not id-data".into(), details);
    }
    let mut verdict = Verdict { indication: Indication::TotalPassed, sub: None };
    match info.signing_certificate_v2 {
        Some(true) => details.push("✓ signing-certificate-v2 names the signer's certificate".into()),
        Some(false) => {
            return fail(
                report,
                "SIG_CONSTRAINTS_FAILURE",
                "signing-certificate-v2 does not match the signer's certificate".into(),
                details,
            );
        }
        None => {
            details.push("? no signing-certificate-v2 attribute (required by PAdES)".into());
            verdict = Verdict { indication: Indication::Indeterminate, sub: Some("SIG_CONSTRAINTS_FAILURE") };
        }
    }
    if info.has_signing_time {
        details.push("? a signing-time attribute is present (PAdES baseline forbids it)".into());
    }
    report.level = Some("B-B");

    // 3. A signature timestamp proves the signature existed at its time.
    let mut proven = now;
    if let Some(token) = &info.timestamp_token {
        let value = info.signature.clone();
        match check_timestamp(token, &move |d| d.hash(&value), trust, now) {
            Ok((at, tsa)) => {
                let t = at.to_offset(time::UtcOffset::UTC);
                let when = format!(
                    "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                );
                details.push(format!("✓ signature timestamp at {when} by {tsa}"));
                proven = at;
                report.timestamp = Some(at);
                report.level = Some("B-T");
            }
            Err((indication, sub, msg)) => {
                if indication == Indication::TotalFailed {
                    return fail(report, sub, msg, details);
                }
                details.push(format!("? {msg}"));
                if verdict.indication == Indication::TotalPassed {
                    verdict = Verdict { indication, sub: Some(sub) };
                }
            }
        }
    }

    // 4. The certificate path, at the proven time.
    match check_path(signer_der, &info.certificates, trust, proven) {
        Ok(path) => {
            details.push(format!("✓ certificate path to a trust anchor: {}", names(&path)));
            // 4b. Revocation, from the validation data stored in the file.
            let mut coverage = revocation(&path, &ctx.crls, &ctx.ocsps, proven);
            let mut fetched = false;
            if let (Ok(Coverage::Missing(_)), Some(f)) = (&coverage, ctx.options.online) {
                let (crls, ocsps, notes) = fetch_online(f, &path);
                details.extend(notes);
                let crls: Vec<Vec<u8>> = ctx.crls.iter().cloned().chain(crls).collect();
                let ocsps: Vec<Vec<u8>> = ctx.ocsps.iter().cloned().chain(ocsps).collect();
                coverage = revocation(&path, &crls, &ocsps, proven);
                fetched = true;
            }
            match coverage {
                Ok(Coverage::Complete) if fetched => {
                    details.push("✓ not revoked, by revocation data fetched online (not stored in the file)".into());
                }
                Ok(Coverage::Complete) => {
                    details.push("✓ not revoked, by the CRLs and OCSP responses stored in the file".into());
                    if report.level == Some("B-T") {
                        report.level = Some("B-LT");
                        if ctx.doc_timestamps.iter().any(|&e| e > end) {
                            report.level = Some("B-LTA");
                        }
                    }
                }
                Ok(Coverage::Missing(who)) => {
                    details.push(format!("? no revocation data stored for {who}"));
                    if ctx.options.require_revocation && verdict.indication == Indication::TotalPassed {
                        verdict = Verdict { indication: Indication::Indeterminate, sub: Some("TRY_LATER") };
                    }
                }
                Err(msg) => {
                    details.push(format!("✗ {msg}"));
                    return fail_with(report, "REVOKED", details);
                }
            }
        }
        Err((sub, msg)) => {
            details.push(format!("? {msg}"));
            if verdict.indication == Indication::TotalPassed {
                verdict = Verdict { indication: Indication::Indeterminate, sub: Some(sub) };
            }
        }
    }

    // 5. What changed after this signature.
    report.modification = if end == bytes.len() {
        Modification::None
    } else {
        match trailing_garbage(bytes, &ctx.ends)
            .and_then(|()| changes_after(doc, &bytes[..end]))
            .and_then(|c| c.permitted(ctx.doc_mdp))
        {
            Ok(what) => {
                details.push(format!("· later revisions: {what}"));
                Modification::Allowed
            }
            Err(what) => {
                details.push(format!("✗ changed after signing: {what}"));
                Modification::NotAllowed
            }
        }
    };
    if let Some(p) = docmdp(d)
        && report.modification == Modification::Allowed
        && p == 1
    {
        details.push("✗ this certification signature (DocMDP P=1) forbids any later change, even a signature".into());
        report.modification = Modification::NotAllowed;
    }
    if let Some(p) = docmdp(d) {
        details.push(format!("✓ certification signature (DocMDP P={p})"));
    }
    if report.modification == Modification::NotAllowed {
        verdict = Verdict { indication: Indication::TotalFailed, sub: Some("MODIFIED_AFTER_SIGNING") };
    } else {
        details.push(format!("✓ changes after this signature: {}", report.modification.as_str()));
    }
    report.indication = verdict.indication;
    report.sub_indication = verdict.sub;
    report.details = details;
    report
}

/// Checks a signature timestamp token: its own signature and TSA path,
/// and that it stamps this signature value. Returns the time and the TSA.
fn check_timestamp(
    token: &[u8],
    stamped: &dyn Fn(crate::keys::Digest) -> Vec<u8>,
    trust: &[Vec<u8>],
    now: time::OffsetDateTime,
) -> Result<(time::OffsetDateTime, String), (Indication, &'static str, String)> {
    let bad = |sub, msg: String| (Indication::TotalFailed, sub, msg);
    let info = cades::parse(token).map_err(|e| bad("FORMAT_FAILURE", format!("unreadable timestamp token: {e}")))?;
    let tst_der =
        info.econtent.clone().ok_or_else(|| bad("FORMAT_FAILURE", "the timestamp token has no TSTInfo".into()))?;
    if info.content_type != Some(crate::tsp::ID_CT_TST_INFO) {
        return Err(bad("FORMAT_FAILURE", "the timestamp token's content type is not TSTInfo".into()));
    }
    let digest =
        info.digest.ok_or_else(|| bad("CRYPTO_CONSTRAINTS_FAILURE", "unsupported digest in the timestamp".into()))?;
    if info.message_digest.as_deref() != Some(digest.hash(&tst_der).as_slice()) {
        return Err(bad("HASH_FAILURE", "the timestamp token's digest does not match its TSTInfo".into()));
    }
    let si = info.signer.ok_or_else(|| {
        (
            Indication::Indeterminate,
            "NO_SIGNING_CERTIFICATE_FOUND",
            "the timestamp authority's certificate is not in the token".into(),
        )
    })?;
    let tsa = Certificate::from_der(&info.certificates[si])
        .map_err(|e| bad("FORMAT_FAILURE", format!("bad TSA certificate: {e}")))?;
    let spki = tsa.tbs_certificate.subject_public_key_info.to_der().unwrap_or_default();
    verify_signature(&spki, &info.signature_algorithm, &info.signed_attrs_der, &info.signature)
        .map_err(|e| bad("SIG_CRYPTO_FAILURE", format!("the timestamp's signature is wrong: {e}")))?;
    let tst = x509_tsp::TstInfo::from_der(&tst_der).map_err(|e| bad("FORMAT_FAILURE", format!("bad TSTInfo: {e}")))?;
    let imprint_alg = crate::keys::Digest::from_oid(&tst.message_imprint.hash_algorithm.oid)
        .ok_or_else(|| bad("CRYPTO_CONSTRAINTS_FAILURE", "unsupported timestamp imprint algorithm".into()))?;
    if tst.message_imprint.hashed_message.as_bytes() != stamped(imprint_alg).as_slice() {
        return Err(bad("HASH_FAILURE", "the timestamp does not stamp this signature or document".into()));
    }
    let eku_ok = extension(&tsa, const_oid::db::rfc5280::ID_CE_EXT_KEY_USAGE)
        .and_then(|v| x509_cert::ext::pkix::ExtendedKeyUsage::from_der(v).ok())
        .is_some_and(|e| e.0.contains(&crate::tsp::ID_KP_TIME_STAMPING));
    if !eku_ok {
        return Err((
            Indication::Indeterminate,
            "CHAIN_CONSTRAINTS_FAILURE",
            "the timestamp's certificate is not for timestamping".into(),
        ));
    }
    let secs = tst.gen_time.to_unix_duration().as_secs() as i64;
    let at = time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|_| bad("FORMAT_FAILURE", "bad timestamp time".into()))?;
    if at > now + time::Duration::minutes(5) {
        return Err(bad("FORMAT_FAILURE", format!("the timestamp ({at}) is in the future")));
    }
    check_path(&info.certificates[si], &info.certificates, trust, at)
        .map_err(|(sub, msg)| (Indication::Indeterminate, sub, format!("timestamp authority: {msg}")))?;
    Ok((at, tsa.tbs_certificate.subject.to_string()))
}

fn unix(t: &x509_cert::time::Time) -> i64 {
    t.to_unix_duration().as_secs() as i64
}

/// Builds a path from the signer to one of the trust anchors and checks
/// it: names chain, each certificate is signed by the next, issuers are
/// CAs, every certificate is valid at `now`, the signer may sign.
fn check_path(
    signer: &[u8],
    pool: &[Vec<u8>],
    trust: &[Vec<u8>],
    now: time::OffsetDateTime,
) -> Result<Vec<Certificate>, (&'static str, String)> {
    let now = now.unix_timestamp();
    let parse =
        |d: &[u8]| Certificate::from_der(d).map_err(|e| ("FORMAT_FAILURE", format!("unreadable certificate: {e}")));
    let mut current = parse(signer)?;
    let ku = key_usage(&current);
    if let Some(bits) = ku
        && bits & 0b1100_0000 == 0
    {
        return Err((
            "CHAIN_CONSTRAINTS_FAILURE",
            "the signer's certificate allows neither digitalSignature nor nonRepudiation".into(),
        ));
    }
    let mut path = Vec::new();
    for _depth in 0..8 {
        let v = &current.tbs_certificate.validity;
        if now < unix(&v.not_before) || now > unix(&v.not_after) {
            return Err((
                "OUT_OF_BOUNDS_NO_POE",
                format!("{} is not valid at the validation time", current.tbs_certificate.subject),
            ));
        }
        let der = current.to_der().unwrap_or_default();
        if trust.contains(&der) {
            path.push(current);
            return Ok(path);
        }
        let issuer = pool.iter().chain(trust.iter()).filter_map(|c| Certificate::from_der(c).ok()).find(|c| {
            c.tbs_certificate.subject == current.tbs_certificate.issuer
                && c.tbs_certificate.subject_public_key_info.to_der().is_ok_and(|spki| {
                    current.tbs_certificate.to_der().is_ok_and(|tbs| {
                        verify_signature(&spki, &current.signature_algorithm, &tbs, current.signature.raw_bytes())
                            .is_ok()
                    })
                })
        });
        let Some(issuer) = issuer else {
            return Err((
                "NO_CERTIFICATE_CHAIN_FOUND",
                format!("no trusted issuer found for {}", current.tbs_certificate.issuer),
            ));
        };
        if !is_ca(&issuer) {
            return Err((
                "CHAIN_CONSTRAINTS_FAILURE",
                format!("{} is not a certification authority", issuer.tbs_certificate.subject),
            ));
        }
        if issuer == current {
            return Err(("NO_CERTIFICATE_CHAIN_FOUND", "the path ends at an untrusted self-signed certificate".into()));
        }
        path.push(std::mem::replace(&mut current, issuer));
    }
    Err(("NO_CERTIFICATE_CHAIN_FOUND", "the certificate path is too long".into()))
}

fn extension(c: &Certificate, oid: const_oid::ObjectIdentifier) -> Option<&[u8]> {
    c.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == oid).map(|e| e.extn_value.as_bytes())
}

/// The first byte of the keyUsage bits (digitalSignature is 0x80,
/// nonRepudiation 0x40), if the extension is present.
fn key_usage(c: &Certificate) -> Option<u8> {
    let v = extension(c, const_oid::db::rfc5280::ID_CE_KEY_USAGE)?;
    let bits = der::asn1::BitString::from_der(v).ok()?;
    Some(bits.raw_bytes().first().copied().unwrap_or(0))
}

fn is_ca(c: &Certificate) -> bool {
    extension(c, const_oid::db::rfc5280::ID_CE_BASIC_CONSTRAINTS)
        .and_then(|v| x509_cert::ext::pkix::BasicConstraints::from_der(v).ok())
        .is_some_and(|b| b.ca)
}

/// What later revisions did besides adding signatures, validation data
/// and timestamps.
#[derive(Debug, Default, Clone, Copy)]
struct Changes {
    /// Values of existing form fields (/V, /AS and their appearance).
    form_filling: bool,
    /// Annotations (not form fields) added to pages.
    annotations: bool,
}

impl Changes {
    /// Whether the document's DocMDP permissions allow these changes (no
    /// certification: form filling, not annotations, which can paint over
    /// signed content). Returns what they were, for the report.
    fn permitted(self, doc_mdp: Option<i64>) -> Result<&'static str, String> {
        let p = doc_mdp.unwrap_or(2);
        if self.annotations && p < 3 {
            return Err(
                "an annotation was added to a page (only a certification signature with DocMDP P=3 allows it)".into()
            );
        }
        if self.form_filling && p < 2 {
            return Err("a form field was filled in (the certification signature's DocMDP P=1 forbids it)".into());
        }
        Ok(match (self.form_filling, self.annotations) {
            (false, false) => "signatures, validation data or timestamps only",
            (true, false) => "form filling (and signatures, validation data or timestamps)",
            (false, true) => "annotations (and signatures, validation data or timestamps)",
            (true, true) => "form filling and annotations (and signatures, validation data or timestamps)",
        })
    }
}

/// A form field other than a signature: a dictionary with /FT, or a widget
/// whose parent has one.
fn is_value_field(doc: &Document, d: &lopdf::Dictionary) -> bool {
    let ft = |d: &lopdf::Dictionary| d.get(b"FT").ok().and_then(|f| f.as_name().ok()).map(<[u8]>::to_vec);
    let own = ft(d).or_else(|| match d.get(b"Parent") {
        Ok(Object::Reference(p)) => doc.get_dictionary(*p).ok().and_then(ft),
        _ => None,
    });
    matches!(own.as_deref(), Some(b"Tx" | b"Ch" | b"Btn"))
}

/// Compares the signed revision with the final document: every object of
/// the signed revision must be unchanged, except the catalog (new AcroForm
/// or DSS), the AcroForm (more fields), pages (more signature widgets, or
/// annotations: noted), and form fields' values and appearances (noted:
/// form filling); fields and annotations may only be added, never removed.
fn changes_after(full: &Document, signed: &[u8]) -> Result<Changes, String> {
    let mut changes = Changes::default();
    let old = pdf::load(signed).map_err(|e| format!("the signed revision cannot be read: {e}"))?;
    let canon = |o: &Object| {
        let mut v = Vec::new();
        pdf::write_object(&mut v, o);
        v
    };
    let root = match old.trailer.get(b"Root") {
        Ok(Object::Reference(r)) => Some(*r),
        _ => None,
    };
    let acro = root.and_then(|r| old.get_dictionary(r).ok()).and_then(|c| match c.get(b"AcroForm") {
        Ok(Object::Reference(a)) => Some(*a),
        _ => None,
    });
    for (id, o) in &old.objects {
        let Ok(n) = full.get_object(*id) else {
            return Err(format!("object {} {} was removed", id.0, id.1));
        };
        if canon(o) == canon(n) {
            continue;
        }
        let (Ok(od), Ok(nd)) = (o.as_dict(), n.as_dict()) else {
            return Err(format!("object {} {} was changed", id.0, id.1));
        };
        // Keys that may change, per kind of object.
        let field = is_value_field(&old, od);
        let allowed: &[&[u8]] = if Some(*id) == root {
            &[b"AcroForm", b"DSS", b"Extensions", b"Perms"]
        } else if Some(*id) == acro {
            &[b"Fields", b"SigFlags", b"DR", b"DA", b"NeedAppearances"]
        } else if od.get(b"Type").ok().and_then(|t| t.as_name().ok()) == Some(b"Page") {
            &[b"Annots"]
        } else if field {
            &[b"V", b"AS", b"AP"]
        } else {
            &[]
        };
        let keys: std::collections::BTreeSet<&Vec<u8>> =
            od.iter().map(|(k, _)| k).chain(nd.iter().map(|(k, _)| k)).collect();
        for k in keys {
            let same = match (od.get(k), nd.get(k)) {
                (Ok(a), Ok(b)) => canon(a) == canon(b),
                (Err(_), Err(_)) => true,
                _ => false,
            };
            if !same && !allowed.contains(&k.as_slice()) {
                return Err(format!("/{} of object {} {} was changed", String::from_utf8_lossy(k), id.0, id.1));
            }
            if !same && field {
                changes.form_filling = true;
            }
        }
        // Fields and annotations may only grow, and only by signatures.
        for list in [b"Fields".as_slice(), b"Annots".as_slice()] {
            let (Some(before), Some(after)) =
                (od.get(list).ok().map(|x| resolve_list(&old, x)), nd.get(list).ok().map(|x| resolve_list(full, x)))
            else {
                continue;
            };
            if !before.iter().all(|x| after.contains(x)) {
                return Err(format!("an entry of /{} was removed", String::from_utf8_lossy(list)));
            }
            for added in after.iter().filter(|x| !before.contains(x)) {
                let d = match added {
                    Object::Reference(r) => full.get_dictionary(*r).ok(),
                    _ => None,
                };
                let is_sig = d.is_some_and(|d| d.get(b"FT").ok().and_then(|f| f.as_name().ok()) == Some(b"Sig"));
                // A markup annotation (not a widget: no new form field).
                let is_annotation = list == b"Annots"
                    && d.is_some_and(|d| {
                        d.get(b"Subtype").ok().and_then(|f| f.as_name().ok()).is_some_and(|s| s != b"Widget")
                            && !d.has(b"FT")
                    });
                if is_annotation {
                    changes.annotations = true;
                } else if !is_sig {
                    return Err(format!("a non-signature entry was added to /{}", String::from_utf8_lossy(list)));
                }
            }
        }
    }
    Ok(changes)
}

/// Bytes after the last `%%EOF` are not a revision: a reader may still use
/// objects put there (an incremental saving attack without a
/// cross-reference section), so anything but whitespace is a change.
fn trailing_garbage(bytes: &[u8], ends: &[usize]) -> Result<(), String> {
    let last = ends.last().copied().unwrap_or(0);
    if bytes[last.min(bytes.len())..].iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
        Ok(())
    } else {
        Err(format!("{} bytes after the last %%EOF, outside any revision", bytes.len() - last))
    }
}

fn resolve_list(doc: &Document, o: &Object) -> Vec<Object> {
    match o {
        Object::Array(a) => a.clone(),
        Object::Reference(r) => doc.get_object(*r).ok().and_then(|x| x.as_array().ok()).cloned().unwrap_or_default(),
        _ => Vec::new(),
    }
}
