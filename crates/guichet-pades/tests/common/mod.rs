//! Shared by the signature tests: PDFs, a CA, keys, and the external
//! validators (pdfsig, pyHanko, openssl, qpdf) when they are installed.
#![allow(dead_code)]

use guichet_pades::ca::{self, Employee};
use guichet_pades::{SignOptions, SoftwareKey, sign_pdf};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A small valid PDF with a classic cross-reference table, `pages` pages
/// of text.
pub fn simple_pdf(pages: usize) -> Vec<u8> {
    text_pdf(pages, |i| format!("BT /F1 24 Tf 72 700 Td (Entente de pret, page {}) Tj ET", i + 1))
}

/// A PDF with a classic cross-reference table whose page `i` (from 0)
/// draws the content stream `content(i)` in Helvetica (/F1).
pub fn text_pdf(pages: usize, content: impl Fn(usize) -> String) -> Vec<u8> {
    let mut objs: Vec<String> = Vec::new();
    objs.push("<< /Type /Catalog /Pages 2 0 R >>".into());
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objs.push(format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")));
    objs.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
    for i in 0..pages {
        objs.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        let text = content(i);
        objs.push(format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()));
    }
    pdf_of(&objs)
}

pub struct Pki {
    pub files: ca::CaFiles,
    pub root_der: Vec<u8>,
    pub issuing_der: Vec<u8>,
    pub issuing: ca::IssuingCa,
}

pub fn pki() -> Pki {
    let now = time::OffsetDateTime::now_utc();
    let files = ca::init("Société du Plan Nord", "CA", now).expect("CA");
    let issuing = ca::IssuingCa::load("Société du Plan Nord", "CA", &files.issuing_key).expect("issuing CA");
    Pki {
        root_der: ca::pem_to_der(&files.root_cert).expect("root"),
        issuing_der: ca::pem_to_der(&files.issuing_cert).expect("issuing"),
        files,
        issuing,
    }
}

pub struct Person {
    pub cert_der: Vec<u8>,
    pub cert_pem: String,
    pub key: SoftwareKey,
    pub key_pem: String,
}

pub fn employee(pki: &Pki, name: &str, serial: u64) -> Person {
    let e = Employee {
        name: name.into(),
        email: format!("{}@plannord.example", name.to_lowercase().replace(' ', ".")),
        organization: "Société du Plan Nord".into(),
        unit: Some("Affaires juridiques".into()),
    };
    let issued = pki.issuing.issue(&e, serial, time::OffsetDateTime::now_utc(), 365).expect("issue");
    Person {
        cert_der: issued.cert_der,
        cert_pem: issued.cert_pem,
        key: SoftwareKey::from_pkcs8(issued.key_pem.as_bytes(), false).expect("key"),
        key_pem: issued.key_pem,
    }
}

/// The built-in timestamp authority, certified by the test CA.
pub fn tsa(pki: &Pki) -> guichet_pades::TimestampAuthority {
    let issued =
        pki.issuing.issue_tsa("Société du Plan Nord", 9000, time::OffsetDateTime::now_utc(), 365).expect("TSA cert");
    let key = SoftwareKey::from_pkcs8(issued.key_pem.as_bytes(), false).expect("TSA key");
    guichet_pades::TimestampAuthority::new(
        Box::new(key),
        issued.cert_der,
        vec![pki.issuing_der.clone()],
        "2.25.41975",
        Box::new(time::OffsetDateTime::now_utc),
    )
    .expect("TSA")
}

/// Signs at B-T with `tsa`.
pub fn sign_bt(pki: &Pki, p: &Person, pdf: &[u8], tsa: &guichet_pades::TimestampAuthority) -> Vec<u8> {
    let chain = vec![pki.issuing_der.clone()];
    let opts = SignOptions {
        signing_time: Some(time::OffsetDateTime::now_utc()),
        reason: Some("B-T"),
        timestamp: Some(tsa),
        ..SignOptions::new(&p.key, &p.cert_der, &chain)
    };
    sign_pdf(pdf, &opts).expect("signs")
}

/// Signs as the certifying (first) signature with DocMDP permissions `p`.
pub fn certify(pki: &Pki, person: &Person, pdf: &[u8], p: u8) -> Result<Vec<u8>, guichet_pades::Error> {
    let chain = vec![pki.issuing_der.clone()];
    let opts = SignOptions {
        signing_time: Some(time::OffsetDateTime::now_utc()),
        reason: Some("Certification"),
        certify: Some(p),
        ..SignOptions::new(&person.key, &person.cert_der, &chain)
    };
    sign_pdf(pdf, &opts)
}

pub fn sign(pki: &Pki, p: &Person, pdf: &[u8], reason: &str) -> Vec<u8> {
    let chain = vec![pki.issuing_der.clone()];
    let opts = SignOptions {
        signing_time: Some(time::OffsetDateTime::now_utc()),
        reason: Some(reason),
        location: Some("Québec"),
        ..SignOptions::new(&p.key, &p.cert_der, &chain)
    };
    sign_pdf(pdf, &opts).expect("signs")
}

/// The validator's report on `pdf`, trusting the test root, now.
pub fn verify_now(pki: &Pki, pdf: &[u8]) -> guichet_pades::ValidationReport {
    guichet_pades::verify_pdf(pdf, std::slice::from_ref(&pki.root_der), time::OffsetDateTime::now_utc())
        .unwrap_or_else(|e| panic!("unreadable: {e}"))
}

pub fn tmpdir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("guichet-pades-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).expect("tmp");
    d
}

pub fn have(tool: &str) -> bool {
    Command::new("sh").arg("-c").arg(format!("command -v {tool}")).output().is_ok_and(|o| o.status.success())
}

/// Whether external validators must be present (CI installs them).
pub fn required() -> bool {
    std::env::var_os("GUICHET_REQUIRE_VALIDATORS").is_some()
}

/// The pyHanko command, if installed (`$PYHANKO` or CI's virtualenv);
/// when validators are required, its absence fails the test.
pub fn pyhanko() -> Option<PathBuf> {
    let candidates =
        [std::env::var_os("PYHANKO").map(PathBuf::from), Some(PathBuf::from("/var/tmp/pyhanko/bin/pyhanko"))];
    let found = candidates.into_iter().flatten().find(|p| p.exists());
    assert!(
        found.is_some() || !required(),
        "pyHanko is required (GUICHET_REQUIRE_VALIDATORS is set) but not installed"
    );
    found
}

/// An NSS database trusting `root_pem`, for pdfsig.
pub fn nss_db(dir: &Path, root_pem: &str) -> String {
    let db = dir.join("nss");
    std::fs::create_dir_all(&db).expect("nss dir");
    let root = dir.join("root.pem");
    std::fs::write(&root, root_pem).expect("root");
    let sql = format!("sql:{}", db.display());
    let ok = Command::new("certutil")
        .args(["-N", "-d", &sql, "--empty-password"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "certutil -N failed");
    let ok = Command::new("certutil")
        .args(["-A", "-d", &sql, "-n", "root", "-t", "CT,C,C", "-i"])
        .arg(&root)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "certutil -A failed");
    sql
}

pub fn run(cmd: &mut Command) -> (bool, String) {
    let o = cmd.output().expect("runs");
    (o.status.success(), format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
}

/// CRLs for the whole test PKI: the issuing CA's (listing `revoked`) and
/// the root's (listing nothing).
pub fn crls(pki: &Pki, revoked: &[(Vec<u8>, time::OffsetDateTime)]) -> Vec<Vec<u8>> {
    let now = time::OffsetDateTime::now_utc();
    let r: Vec<_> = revoked.iter().map(|(s, t)| (s.clone(), *t, ca::Reason::KeyCompromise)).collect();
    let issuing_crl = pki.issuing.crl(&r, 1, now, 7).expect("issuing CRL");
    let root = ca::IssuingCa::load_root("Société du Plan Nord", "CA", &pki.files.root_key).expect("root");
    let root_crl = root.crl(&[], 1, now, 30).expect("root CRL");
    vec![issuing_crl, root_crl]
}

/// DER serial of a certificate.
pub fn serial(cert_der: &[u8]) -> Vec<u8> {
    use der::Decode;
    x509_cert::Certificate::from_der(cert_der).expect("cert").tbs_certificate.serial_number.as_bytes().to_vec()
}

/// OCSP responses for the whole test PKI: the issuing CA's about `cert`
/// (revoked at `revoked_at` if given) and the root's about the issuing CA.
pub fn ocsps(pki: &Pki, cert_der: &[u8], revoked_at: Option<time::OffsetDateTime>) -> Vec<Vec<u8>> {
    use guichet_pades::ocsp::{Status, respond_for};
    let now = time::OffsetDateTime::now_utc();
    let issuing_key = SoftwareKey::from_pkcs8(pki.files.issuing_key.as_bytes(), false).expect("issuing key");
    let root_key = SoftwareKey::from_pkcs8(pki.files.root_key.as_bytes(), false).expect("root key");
    let status = move |_: &[u8]| match revoked_at {
        Some(t) => Status::Revoked(t),
        None => Status::Good,
    };
    let a =
        respond_for(&pki.issuing_der, &issuing_key, &pki.issuing_der, &[serial(cert_der)], &status, now).expect("ocsp");
    let b = respond_for(&pki.root_der, &root_key, &pki.root_der, &[serial(&pki.issuing_der)], &|_| Status::Good, now)
        .expect("ocsp");
    vec![a, b]
}

/// The offset the last `startxref` gives.
pub fn startxref(b: &[u8]) -> usize {
    let t = String::from_utf8_lossy(&b[b.len() - 40..]).to_string();
    t.split("startxref")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("startxref")
}

/// Appends a revision that (re)defines objects, with a proper xref.
pub fn append_revision(base: &[u8], objects: &[(u32, String)]) -> Vec<u8> {
    let prev = startxref(base);
    let mut out = base.to_vec();
    let mut entries = Vec::new();
    for (id, body) in objects {
        entries.push((*id, out.len()));
        out.extend_from_slice(format!("{id} 0 obj\n{body}\nendobj\n").as_bytes());
    }
    let x = out.len();
    out.extend_from_slice(b"xref\n");
    for (id, off) in entries {
        out.extend_from_slice(format!("{id} 1\n{off:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size 30 /Root 1 0 R /Prev {prev} >>\nstartxref\n{x}\n%%EOF\n").as_bytes(),
    );
    out
}

/// A one-page PDF with a text field ("montant", object 6, a widget on
/// the page) holding "1 000 $".
pub fn form_pdf() -> Vec<u8> {
    let objs = [
        "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [6 0 R] /DA (/Helv 0 Tf 0 g) >> >>".to_owned(),
        "<< /Type /Pages /Kids [4 0 R] /Count 1 >>".into(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R /Annots [6 0 R] >>".into(),
        {
            let text = "BT /F1 18 Tf 72 700 Td (Montant du pret :) Tj ET";
            format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len())
        },
        "<< /Type /Annot /Subtype /Widget /FT /Tx /T (montant) /V (1 000 $) /Rect [250 690 450 720] /P 4 0 R /F 4 >>".into(),
    ];
    pdf_of(&objs)
}

/// The field filled in with "2 000 $" and a new appearance, in a revision.
pub fn fill(signed: &[u8]) -> Vec<u8> {
    let ap = "BT /Helv 12 Tf 2 8 Td (2 000 $) Tj ET";
    append_revision(
        signed,
        &[
            (6, "<< /Type /Annot /Subtype /Widget /FT /Tx /T (montant) /V (2 000 $) /Rect [250 690 450 720] /P 4 0 R /F 4 /AP << /N 28 0 R >> >>".into()),
            (28, format!("<< /Type /XObject /Subtype /Form /BBox [0 0 200 30] /Length {} >>\nstream\n{ap}\nendstream", ap.len())),
        ],
    )
}

/// A PDF of `objs` (numbered from 1; the first is the catalog) with a
/// classic cross-reference table.
pub fn pdf_of(objs: &[String]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f\r\n", objs.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(
        format!("trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n", objs.len() + 1).as_bytes(),
    );
    out
}
