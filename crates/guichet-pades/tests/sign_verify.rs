//! Signing and validating with guichet alone.

mod common;
use common::*;
use guichet_pades::{Indication, Modification, verify_pdf};

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[test]
fn a_signed_pdf_validates_and_keeps_its_original_bytes() {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1001);
    let pdf = simple_pdf(2);
    let signed = sign(&pki, &alice, &pdf, "Approbation");
    assert!(signed.starts_with(&pdf), "incremental update: the original bytes are kept");
    let r = verify_now(&pki, &signed);
    assert_eq!(r.signatures.len(), 1);
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{:#?}", s.details);
    assert_eq!(s.modification, Modification::None);
    assert_eq!(s.level, Some("B-B"));
    assert!(s.signer.as_deref().is_some_and(|n| n.contains("Alice Tremblay")));
}

#[test]
fn without_the_trust_anchor_the_result_is_indeterminate() {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1002);
    let signed = sign(&pki, &alice, &simple_pdf(1), "x");
    let r = verify_pdf(&signed, &[], now()).expect("readable");
    assert_eq!(r.signatures[0].indication, Indication::Indeterminate);
    assert_eq!(r.signatures[0].sub_indication, Some("NO_CERTIFICATE_CHAIN_FOUND"));
}

#[test]
fn five_signers_in_sequence_all_stay_valid() {
    let pki = pki();
    let mut pdf = simple_pdf(3);
    for i in 0..5 {
        let p = employee(&pki, &format!("Signataire {i}"), 2000 + i);
        pdf = sign(&pki, &p, &pdf, &format!("Signature {i}"));
        let r = verify_now(&pki, &pdf);
        assert_eq!(r.signatures.len(), i as usize + 1);
        for (k, s) in r.signatures.iter().enumerate() {
            assert_eq!(
                s.indication,
                Indication::TotalPassed,
                "after {} signers, signature {k}: {:#?}",
                i + 1,
                s.details
            );
            let expected = if k as u64 == i { Modification::None } else { Modification::Allowed };
            assert_eq!(s.modification, expected);
        }
        let names: Vec<&str> = r.signatures.iter().map(|s| s.field.as_str()).collect();
        assert_eq!(names.len(), names.iter().collect::<std::collections::BTreeSet<_>>().len(), "unique field names");
    }
}

#[test]
fn one_changed_byte_in_the_signed_range_fails_the_hash() {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1003);
    let mut signed = sign(&pki, &alice, &simple_pdf(1), "x");
    let at = signed.windows(5).position(|w| w == b"page ").expect("text") + 5;
    signed[at] = b'X';
    let r = verify_now(&pki, &signed);
    assert_eq!(r.signatures[0].indication, Indication::TotalFailed);
    assert_eq!(r.signatures[0].sub_indication, Some("HASH_FAILURE"));
}

#[test]
fn a_later_revision_that_changes_the_page_content_is_reported() {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1004);
    let signed = sign(&pki, &alice, &simple_pdf(1), "x");
    // Incremental saving attack: a new revision replaces the page's text.
    let startxref = {
        let t = String::from_utf8_lossy(&signed[signed.len() - 40..]).to_string();
        t.split("startxref")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .and_then(|n| n.parse::<usize>().ok())
            .expect("startxref")
    };
    let mut forged = signed.clone();
    let text = "BT /F1 24 Tf 72 700 Td (Montant : 1 000 000 $) Tj ET";
    let obj_at = forged.len();
    forged.extend_from_slice(
        format!("5 0 obj\n<< /Length {} >>\nstream\n{text}\nendstream\nendobj\n", text.len()).as_bytes(),
    );
    let xref_at = forged.len();
    forged.extend_from_slice(format!("xref\n5 1\n{obj_at:010} 00000 n\r\ntrailer\n<< /Size 20 /Root 1 0 R /Prev {startxref} >>\nstartxref\n{xref_at}\n%%EOF\n").as_bytes());
    let r = verify_now(&pki, &forged);
    let s = &r.signatures[0];
    assert_eq!(s.modification, Modification::NotAllowed, "{:#?}", s.details);
    assert_eq!(s.indication, Indication::TotalFailed);
}

#[test]
fn bad_inputs_get_precise_errors() {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1005);
    let bob = employee(&pki, "Bob Gagnon", 1006);
    // A key that is not the certificate's.
    let chain = vec![pki.issuing_der.clone()];
    let opts = guichet_pades::SignOptions::new(&bob.key, &alice.cert_der, &chain);
    let e = guichet_pades::sign_pdf(&simple_pdf(1), &opts).expect_err("mismatch");
    assert!(e.to_string().contains("does not match"), "{e}");
    // Not a PDF, truncated PDF.
    assert!(guichet_pades::sign_pdf(b"hello", &opts).is_err());
    let pdf = simple_pdf(1);
    let e = verify_pdf(&pdf[..pdf.len() / 2], &[], now()).expect_err("truncated");
    assert!(matches!(e, guichet_pades::Error::Pdf(_)), "{e}");
}

#[test]
fn b_t_signatures_carry_a_verified_timestamp() {
    let pki = pki();
    let tsa = tsa(&pki);
    let alice = employee(&pki, "Alice Tremblay", 1100);
    let signed = sign_bt(&pki, &alice, &simple_pdf(1), &tsa);
    let r = verify_now(&pki, &signed);
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{:#?}", s.details);
    assert_eq!(s.level, Some("B-T"));
    assert!(s.details.iter().any(|d| d.contains("signature timestamp at")), "{:#?}", s.details);
}

#[test]
fn a_timestamp_authority_that_fails_means_no_signature() {
    struct Down;
    impl guichet_pades::TimestampClient for Down {
        fn exchange(&self, _: &[u8]) -> Result<Vec<u8>, guichet_pades::Error> {
            Err(guichet_pades::Error::Timestamp("connection refused".into()))
        }
    }
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1101);
    let chain = vec![pki.issuing_der.clone()];
    let opts = guichet_pades::SignOptions {
        timestamp: Some(&Down),
        ..guichet_pades::SignOptions::new(&alice.key, &alice.cert_der, &chain)
    };
    let e = guichet_pades::sign_pdf(&simple_pdf(1), &opts).expect_err("fails closed");
    assert!(e.to_string().contains("connection refused"), "{e}");
}

#[test]
fn b_lt_and_b_lta_with_stored_crls_and_a_document_timestamp() {
    let pki = pki();
    let tsa = tsa(&pki);
    let alice = employee(&pki, "Alice Tremblay", 1200);
    let signed = sign_bt(&pki, &alice, &simple_pdf(1), &tsa);
    let data = guichet_pades::ValidationData {
        certs: vec![pki.issuing_der.clone(), pki.root_der.clone()],
        crls: crls(&pki, &[]),
        ocsps: vec![],
    };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    assert!(lt.starts_with(&signed));
    let r = verify_now(&pki, &lt);
    let s = &r.signatures[0];
    assert_eq!(s.indication, Indication::TotalPassed, "{:#?}", s.details);
    assert_eq!(s.level, Some("B-LT"), "{:#?}", s.details);
    assert_eq!(s.modification, Modification::Allowed);
    // Adding the same data again stores nothing twice.
    let again = guichet_pades::add_dss(&lt, &data).expect("DSS");
    assert!(again.len() - lt.len() < 2000, "{} bytes added", again.len() - lt.len());

    let lta = guichet_pades::timestamp_pdf(&lt, &tsa).expect("document timestamp");
    let r = verify_now(&pki, &lta);
    assert_eq!(r.signatures.len(), 2, "{r:#?}");
    assert_eq!(r.signatures[0].level, Some("B-LTA"), "{:#?}", r.signatures[0].details);
    assert_eq!(r.signatures[1].level, Some("document timestamp"));
    assert!(r.all_passed(), "{r:#?}");
}

/// A CRL larger than the streams an update reads into memory (64 KB) is
/// still recognised when the DSS already holds it: not stored twice.
#[test]
fn a_large_crl_already_in_the_dss_is_not_stored_again() {
    let pki = pki();
    let tsa = tsa(&pki);
    let alice = employee(&pki, "Alice Tremblay", 1210);
    let signed = sign_bt(&pki, &alice, &simple_pdf(1), &tsa);
    let earlier = now() - time::Duration::hours(1);
    let others: Vec<(Vec<u8>, time::OffsetDateTime)> =
        (0..4000u32).map(|i| (vec![0x55, (i >> 8) as u8, i as u8, 0x01], earlier)).collect();
    let data = guichet_pades::ValidationData {
        certs: vec![pki.issuing_der.clone(), pki.root_der.clone()],
        crls: crls(&pki, &others),
        ocsps: vec![],
    };
    assert!(data.crls[0].len() > 100_000, "a large CRL: {} bytes", data.crls[0].len());
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let again = guichet_pades::add_dss(&lt, &data).expect("DSS");
    assert!(again.len() - lt.len() < 4000, "{} bytes added", again.len() - lt.len());
    let r = verify_now(&pki, &again);
    assert_eq!(r.signatures[0].level, Some("B-LT"), "{:#?}", r.signatures[0].details);
    assert!(r.all_passed(), "{r:#?}");
}

#[test]
fn a_certificate_revoked_before_signing_fails() {
    let pki = pki();
    let tsa = tsa(&pki);
    let alice = employee(&pki, "Alice Tremblay", 1201);
    let signed = sign_bt(&pki, &alice, &simple_pdf(1), &tsa);
    let earlier = now() - time::Duration::hours(1);
    let data = guichet_pades::ValidationData {
        certs: vec![],
        crls: crls(&pki, &[(serial(&alice.cert_der), earlier)]),
        ocsps: vec![],
    };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let r = verify_now(&pki, &lt);
    assert_eq!(r.signatures[0].indication, Indication::TotalFailed, "{:#?}", r.signatures[0].details);
    assert_eq!(r.signatures[0].sub_indication, Some("REVOKED"));
    // Revoked after the timestamp: the signature stands.
    let later = now() + time::Duration::hours(1);
    let data = guichet_pades::ValidationData {
        certs: vec![],
        crls: crls(&pki, &[(serial(&alice.cert_der), later)]),
        ocsps: vec![],
    };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let r = verify_now(&pki, &lt);
    assert_eq!(r.signatures[0].indication, Indication::TotalPassed, "{:#?}", r.signatures[0].details);
}

#[test]
fn b_lt_with_ocsp_responses() {
    let pki = pki();
    let tsa = tsa(&pki);
    let alice = employee(&pki, "Alice Tremblay", 1400);
    let signed = sign_bt(&pki, &alice, &simple_pdf(1), &tsa);
    let data = guichet_pades::ValidationData { certs: vec![], crls: vec![], ocsps: ocsps(&pki, &alice.cert_der, None) };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let r = verify_now(&pki, &lt);
    assert_eq!(r.signatures[0].indication, Indication::TotalPassed, "{:#?}", r.signatures[0].details);
    assert_eq!(r.signatures[0].level, Some("B-LT"));
    let earlier = now() - time::Duration::hours(2);
    let data = guichet_pades::ValidationData {
        certs: vec![],
        crls: vec![],
        ocsps: ocsps(&pki, &alice.cert_der, Some(earlier)),
    };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let r = verify_now(&pki, &lt);
    assert_eq!(r.signatures[0].sub_indication, Some("REVOKED"), "{:#?}", r.signatures[0].details);
    // A response signed by someone else than the issuer is ignored.
    let other = employee(&pki, "Mallory", 1401);
    let forged = guichet_pades::ocsp::respond_for(
        &pki.issuing_der,
        &other.key,
        &other.cert_der,
        &[serial(&alice.cert_der)],
        &|_| guichet_pades::ocsp::Status::Good,
        now(),
    )
    .expect("response");
    let data = guichet_pades::ValidationData { certs: vec![], crls: vec![], ocsps: vec![forged] };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let r = verify_now(&pki, &lt);
    assert_eq!(r.signatures[0].level, Some("B-T"), "{:#?}", r.signatures[0].details);
}

#[test]
fn requiring_revocation_data_makes_a_b_t_signature_indeterminate() {
    let pki = pki();
    let tsa = tsa(&pki);
    let alice = employee(&pki, "Alice Tremblay", 1500);
    let signed = sign_bt(&pki, &alice, &simple_pdf(1), &tsa);
    let strict = guichet_pades::VerifyOptions { require_revocation: true, online: None };
    let r = guichet_pades::verify_pdf_with(&signed, std::slice::from_ref(&pki.root_der), now(), &strict).expect("ok");
    assert_eq!(r.signatures[0].indication, Indication::Indeterminate);
    assert_eq!(r.signatures[0].sub_indication, Some("TRY_LATER"));
    let data = guichet_pades::ValidationData { certs: vec![], crls: crls(&pki, &[]), ocsps: vec![] };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let r = guichet_pades::verify_pdf_with(&lt, std::slice::from_ref(&pki.root_der), now(), &strict).expect("ok");
    assert_eq!(r.signatures[0].indication, Indication::TotalPassed, "{:#?}", r.signatures[0].details);
}

#[test]
fn certificates_that_cannot_sign_are_refused_before_signing() {
    let pki = pki();
    let chain = vec![pki.issuing_der.clone()];
    let opts = |key: &guichet_pades::SoftwareKey, cert: &[u8]| {
        let o = guichet_pades::SignOptions {
            signing_time: Some(now()),
            ..guichet_pades::SignOptions::new(key, cert, &chain)
        };
        guichet_pades::sign_pdf(&simple_pdf(1), &o)
    };
    // Expired yesterday.
    let e = guichet_pades::ca::Employee {
        name: "Old".into(),
        email: "o@x.org".into(),
        organization: "Org".into(),
        unit: None,
    };
    let old = pki.issuing.issue(&e, 1600, now() - time::Duration::days(30), 29).expect("issue");
    let key = guichet_pades::SoftwareKey::from_pkcs8(old.key_pem.as_bytes(), false).expect("key");
    let err = opts(&key, &old.cert_der).expect_err("expired");
    assert!(err.to_string().contains("expired"), "{err}");
    // A certificate with digitalSignature signs, whatever its name (the
    // refusal of one without it is unit-tested in sign.rs).
    let responder = pki.issuing.issue_ocsp_responder("Org", 1601, now(), 30).expect("responder");
    let rkey = guichet_pades::SoftwareKey::from_pkcs8(responder.key_pem.as_bytes(), false).expect("key");
    assert!(opts(&rkey, &responder.cert_der).is_ok());
}

#[test]
fn encrypted_pdfs_get_a_precise_error() {
    // Real encrypted files, made by qpdf: with a user password, and with
    // an empty one (which readers open without asking).
    let dir = tmpdir("encrypted");
    std::fs::write(dir.join("in.pdf"), simple_pdf(1)).expect("write");
    for (user, name) in [("secret", "pw.pdf"), ("", "nopw.pdf")] {
        let made = std::process::Command::new("qpdf")
            .current_dir(&dir)
            .args(["--encrypt", user, "owner-pw", "256", "--", "in.pdf", name])
            .output();
        if !made.as_ref().is_ok_and(|o| o.status.success()) {
            assert!(!required(), "qpdf is required");
            return;
        }
        let pdf = std::fs::read(dir.join(name)).expect("read");
        let e = verify_pdf(&pdf, &[], now()).expect_err("encrypted");
        assert_eq!(e, guichet_pades::Error::Encrypted, "{name}");
    }
}

/// A visible signature on page 0 goes on the last page.
#[test]
fn page_zero_is_the_last_page() {
    let pki = pki();
    let p = employee(&pki, "Alice Tremblay", 7300);
    let visible =
        guichet_pades::Visible { page: 0, rect: [50.0, 50.0, 200.0, 60.0], lines: vec!["A".into()], image: None };
    let chain = vec![pki.issuing_der.clone()];
    let opts = guichet_pades::SignOptions {
        visible: Some(visible),
        ..guichet_pades::SignOptions::new(&p.key, &p.cert_der, &chain)
    };
    let signed = guichet_pades::sign_pdf(&simple_pdf(3), &opts).expect("signs");
    let doc = lopdf::Document::load_mem(&signed).expect("loads");
    let last = *doc.get_pages().get(&3).expect("page 3");
    let annots = doc.get_dictionary(last).and_then(|d| d.get(b"Annots")).and_then(|a| a.as_array()).map(|a| a.len());
    assert_eq!(annots.ok(), Some(1), "the widget is on page 3");
    let first = *doc.get_pages().get(&1).expect("page 1");
    assert!(doc.get_dictionary(first).map(|d| !d.has(b"Annots")).unwrap_or(false), "not on page 1");
    assert!(verify_now(&pki, &signed).all_passed());
}

/// The network as a validator sees it: the test CA's real OCSP responder
/// and CRLs, at the URLs its certificates name; anything else unreachable.
struct Network<'a> {
    pki: &'a Pki,
    /// When the employee's certificate was revoked, if it was.
    revoked: Option<time::OffsetDateTime>,
    ocsp_up: bool,
    crl_up: bool,
    /// How many requests went out.
    asked: std::sync::atomic::AtomicUsize,
}

impl guichet_pades::RevocationFetcher for Network<'_> {
    fn fetch_crl(&self, url: &str) -> Result<Vec<u8>, String> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let now = now();
        match url {
            "http://pki.test/issuing.crl" if self.crl_up => {
                let revoked: Vec<_> = match self.revoked {
                    Some(t) => vec![(serial_of_employee(), t, guichet_pades::ca::Reason::KeyCompromise)],
                    None => vec![],
                };
                self.pki.issuing.crl(&revoked, 1, now, 7).map_err(|e| e.to_string())
            }
            "http://pki.test/root.crl" => {
                let root =
                    guichet_pades::ca::IssuingCa::load_root("Société du Plan Nord", "CA", &self.pki.files.root_key)
                        .map_err(|e| e.to_string())?;
                root.crl(&[], 1, now, 30).map_err(|e| e.to_string())
            }
            _ => Err("connection refused".into()),
        }
    }

    fn ask_ocsp(&self, url: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        self.asked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if url != "http://pki.test/ocsp" || !self.ocsp_up {
            return Err("connection refused".into());
        }
        let key = guichet_pades::SoftwareKey::from_pkcs8(self.pki.files.issuing_key.as_bytes(), false)
            .map_err(|e| e.to_string())?;
        let revoked = self.revoked;
        let status = move |_: &[u8]| match revoked {
            Some(t) => guichet_pades::ocsp::Status::Revoked(t),
            None => guichet_pades::ocsp::Status::Good,
        };
        Ok(guichet_pades::ocsp::respond(request, &self.pki.issuing_der, &key, &self.pki.issuing_der, &status, now()))
    }
}

/// The one employee of the online PKI has serial 1700.
fn serial_of_employee() -> Vec<u8> {
    vec![0x06, 0xa4]
}

#[test]
fn revocation_is_checked_online_at_the_urls_the_certificates_name_when_asked() {
    let t = time::OffsetDateTime::now_utc();
    let files =
        guichet_pades::ca::init_with("Société du Plan Nord", "CA", t, Some("http://pki.test/root.crl")).expect("CA");
    let issuing = guichet_pades::ca::IssuingCa::load("Société du Plan Nord", "CA", &files.issuing_key)
        .expect("issuing")
        .with_revocation_urls(Some("http://pki.test/ocsp"), Some("http://pki.test/issuing.crl"))
        .expect("urls");
    let pki = Pki {
        root_der: guichet_pades::ca::pem_to_der(&files.root_cert).expect("root"),
        issuing_der: guichet_pades::ca::pem_to_der(&files.issuing_cert).expect("issuing"),
        files,
        issuing,
    };
    let alice = employee(&pki, "Alice Tremblay", 1700);
    assert_eq!(serial(&alice.cert_der), serial_of_employee());
    {
        use der::Decode;
        let c = x509_cert::Certificate::from_der(&alice.cert_der).expect("cert");
        let (ocsp, crl) = guichet_pades::revocation_urls(&c);
        assert_eq!(
            (ocsp, crl),
            (vec!["http://pki.test/ocsp".to_owned()], vec!["http://pki.test/issuing.crl".to_owned()])
        );
    }
    let signed = sign(&pki, &alice, &simple_pdf(1), "online");
    let trust = std::slice::from_ref(&pki.root_der);
    let check = |net: Option<&Network>| {
        let o = guichet_pades::VerifyOptions {
            require_revocation: true,
            online: net.map(|n| n as &dyn guichet_pades::RevocationFetcher),
        };
        guichet_pades::verify_pdf_with(&signed, trust, now(), &o).expect("report").signatures.remove(0)
    };
    let net = |revoked, ocsp_up, crl_up| Network { pki: &pki, revoked, ocsp_up, crl_up, asked: Default::default() };

    // Offline, nothing stored: indeterminate when revocation is required.
    let r = check(None);
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some("TRY_LATER")), "{:#?}", r.details);

    // Online: the employee by OCSP, the issuing CA by the root's CRL.
    let r = check(Some(&net(None, true, true)));
    assert_eq!(r.indication, Indication::TotalPassed, "{:#?}", r.details);
    let text = r.details.join("\n");
    assert!(text.contains("OCSP response fetched from http://pki.test/ocsp"), "{text}");
    assert!(text.contains("CRL fetched from http://pki.test/root.crl"), "{text}");
    assert!(text.contains("fetched online (not stored in the file)"), "{text}");
    assert_eq!(r.level, Some("B-B"), "fetched data does not make a level");
    // A second signature from the same chain: nothing asked twice.
    let twice = sign(&pki, &alice, &signed, "online again");
    let n = net(None, true, true);
    let o = guichet_pades::VerifyOptions { require_revocation: true, online: Some(&n) };
    let report = guichet_pades::verify_pdf_with(&twice, trust, now(), &o).expect("report");
    assert_eq!(report.signatures.len(), 2);
    assert!(report.signatures.iter().all(|s| s.indication == Indication::TotalPassed), "{report:#?}");
    assert_eq!(n.asked.load(std::sync::atomic::Ordering::Relaxed), 2, "one OCSP request and one CRL, once");

    // The responder down: the CRL the certificate names instead.
    let r = check(Some(&net(None, false, true)));
    assert_eq!(r.indication, Indication::TotalPassed, "{:#?}", r.details);
    let text = r.details.join("\n");
    assert!(text.contains("? http://pki.test/ocsp: connection refused"), "{text}");
    assert!(text.contains("CRL fetched from http://pki.test/issuing.crl"), "{text}");

    // Revoked an hour before: by OCSP, and by the CRL when OCSP is down.
    let before = Some(now() - time::Duration::hours(1));
    for (ocsp_up, crl_up) in [(true, true), (false, true)] {
        let r = check(Some(&net(before, ocsp_up, crl_up)));
        assert_eq!((r.indication, r.sub_indication), (Indication::TotalFailed, Some("REVOKED")), "{:#?}", r.details);
    }

    // Nothing answers: still indeterminate, and the report says why.
    let r = check(Some(&net(None, false, false)));
    assert_eq!((r.indication, r.sub_indication), (Indication::Indeterminate, Some("TRY_LATER")), "{:#?}", r.details);
    assert!(r.details.join("\n").contains("? http://pki.test/issuing.crl: connection refused"), "{:#?}", r.details);
}

#[test]
fn form_filling_and_annotations_after_signing_follow_the_docmdp_permissions() {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1900);
    let first = |r: &guichet_pades::ValidationReport| r.signatures[0].clone();

    // Certified with P=2: filling the field in is allowed, and said.
    let p2 = certify(&pki, &alice, &form_pdf(), 2).expect("certify");
    let s = first(&verify_now(&pki, &fill(&p2)));
    assert_eq!((s.indication, s.modification), (Indication::TotalPassed, Modification::Allowed), "{:#?}", s.details);
    assert!(s.details.iter().any(|d| d.contains("form filling")), "{:#?}", s.details);
    // …but not moving the field (its /Rect is not its value).
    let moved = append_revision(
        &p2,
        &[(
            6,
            "<< /Type /Annot /Subtype /Widget /FT /Tx /T (montant) /V (1 000 $) /Rect [50 50 450 720] /P 4 0 R /F 4 >>"
                .into(),
        )],
    );
    let s = first(&verify_now(&pki, &moved));
    assert_eq!((s.indication, s.modification), (Indication::TotalFailed, Modification::NotAllowed), "{:#?}", s.details);

    // An annotation added to the page: P=2 forbids it, P=3 allows it.
    let annotate = |signed: &[u8], annots: &str| {
        append_revision(
            signed,
            &[
                (
                    4,
                    format!(
                        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R /Annots [{annots} 29 0 R] >>"
                    ),
                ),
                (29, "<< /Type /Annot /Subtype /Text /Rect [500 700 520 720] /Contents (Vu) >>".into()),
            ],
        )
    };
    // The page's annotations after certification: the field and the
    // certification signature's widget.
    let widgets = |signed: &[u8]| {
        let doc = lopdf::Document::load_mem(signed).expect("pdf");
        let page = doc.get_pages().get(&1).copied().expect("page");
        let annots =
            doc.get_dictionary(page).expect("page").get(b"Annots").expect("annots").as_array().expect("array").clone();
        annots
            .iter()
            .filter_map(|o| o.as_reference().ok())
            .map(|(n, g)| format!("{n} {g} R"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let s = first(&verify_now(&pki, &annotate(&p2, &widgets(&p2))));
    assert_eq!(s.indication, Indication::TotalFailed, "{:#?}", s.details);
    assert!(s.details.iter().any(|d| d.contains("DocMDP P=3")), "{:#?}", s.details);
    let p3 = certify(&pki, &alice, &form_pdf(), 3).expect("certify");
    let s = first(&verify_now(&pki, &annotate(&p3, &widgets(&p3))));
    assert_eq!((s.indication, s.modification), (Indication::TotalPassed, Modification::Allowed), "{:#?}", s.details);
    assert!(s.details.iter().any(|d| d.contains("annotations")), "{:#?}", s.details);

    // Certified with P=1: not even form filling.
    let p1 = certify(&pki, &alice, &form_pdf(), 1).expect("certify");
    let s = first(&verify_now(&pki, &fill(&p1)));
    assert_eq!(s.indication, Indication::TotalFailed, "{:#?}", s.details);

    // An approval signature (no certification): form filling allowed.
    let approved = sign(&pki, &alice, &form_pdf(), "approval");
    let s = first(&verify_now(&pki, &fill(&approved)));
    assert_eq!((s.indication, s.modification), (Indication::TotalPassed, Modification::Allowed), "{:#?}", s.details);
}
