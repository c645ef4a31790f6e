//! Our signatures checked by independent validators: poppler's pdfsig,
//! pyHanko, `openssl cms -verify` on the extracted CMS, and `qpdf --check`.
//! CI installs them and sets GUICHET_REQUIRE_VALIDATORS, so a missing tool
//! fails there instead of skipping.

mod common;
use common::*;
use std::process::Command;

fn tool(name: &str) -> bool {
    let present = have(name);
    assert!(present || !required(), "{name} is required (GUICHET_REQUIRE_VALIDATORS is set) but not installed");
    if !present {
        eprintln!("{name} not installed: this check is skipped here (CI runs it)");
    }
    present
}

/// pdfsig's verdict for every signature: valid, trusted, and whether it
/// covers the whole document. (pdfsig exits 0 even on a bad digest: its
/// output is what counts.)
fn pdfsig(nss: &str, file: &std::path::Path) -> String {
    let (_, out) = run(Command::new("pdfsig").args(["-nssdir", nss]).arg(file));
    out
}

/// pyHanko's report on every signature of `file`, trusting only `root`.
fn pyhanko_validate(py: &std::path::Path, root: &std::path::Path, file: &std::path::Path) -> (bool, String) {
    run(Command::new(py).args(["sign", "validate", "--pretty-print", "--trust-replace", "--trust"]).arg(root).arg(file))
}

#[test]
fn pdfsig_pyhanko_openssl_and_qpdf_accept_five_sequential_signatures() {
    let pki = pki();
    let dir = tmpdir("interop");
    let mut pdf = simple_pdf(2);
    let nss = tool("pdfsig").then(|| nss_db(&dir, &pki.files.root_cert));
    let py = pyhanko();
    let root_pem = dir.join("root.pem");
    std::fs::write(&root_pem, &pki.files.root_cert).expect("root");
    for i in 0..5u64 {
        let p = employee(&pki, &format!("Signataire {i}"), 3000 + i);
        pdf = sign(&pki, &p, &pdf, &format!("Étape {i}"));
        let file = dir.join(format!("signed-{i}.pdf"));
        std::fs::write(&file, &pdf).expect("write");
        if let Some(nss) = &nss {
            let out = pdfsig(nss, &file);
            assert_eq!(out.matches("Signature Validation: Signature is Valid.").count(), i as usize + 1, "{out}");
            assert_eq!(out.matches("Certificate Validation: Certificate is Trusted.").count(), i as usize + 1, "{out}");
            // The last signature covers the whole file, the earlier ones do not.
            assert_eq!(out.matches("Signed Ranges").count(), i as usize + 1, "{out}");
            assert!(out.contains("Total document signed"), "{out}");
            assert!(out.contains("ETSI.CAdES.detached"), "{out}");
        }
        if let Some(py) = &py {
            // pyHanko reports every signature of the file, with its own
            // analysis of what the later revisions changed.
            let (ok, out) = pyhanko_validate(py, &root_pem, &file);
            assert!(ok, "pyHanko rejected the file after {} signers: {out}", i + 1);
            let n = i as usize + 1;
            assert_eq!(out.matches("The signature is cryptographically sound.").count(), n, "{out}");
            assert_eq!(out.matches("The signer's certificate is trusted.").count(), n, "{out}");
            assert_eq!(out.matches("The signature is judged VALID.").count(), n, "{out}");
            assert_eq!(out.matches("The signature covers the entire file.").count(), 1, "{out}");
            assert_eq!(
                out.matches("All modifications relate to signing and form filling operations").count(),
                n - 1,
                "{out}"
            );
        }
    }
    if tool("qpdf") {
        let file = dir.join("signed-4.pdf");
        let (ok, out) = run(Command::new("qpdf").arg("--check").arg(&file));
        assert!(ok && out.contains("No syntax or stream encoding errors"), "{out}");
    }
}

#[test]
fn openssl_verifies_the_extracted_cms() {
    if !tool("openssl") {
        return;
    }
    let pki = pki();
    let dir = tmpdir("openssl");
    let p = employee(&pki, "Alice Tremblay", 4000);
    let signed = sign(&pki, &p, &simple_pdf(1), "x");
    let r = verify_now(&pki, &signed);
    let br = &r.signatures[0].byte_range;
    let (b, c, l) = (br[1] as usize, br[2] as usize, br[3] as usize);
    let hex = &signed[b + 1..c - 1];
    let cms: Vec<u8> =
        hex.chunks(2).map(|x| u8::from_str_radix(std::str::from_utf8(x).expect("hex"), 16).expect("hex")).collect();
    // The DER object without its zero padding.
    let len = if cms[1] & 0x80 != 0 {
        let n = (cms[1] & 0x7f) as usize;
        2 + n + cms[2..2 + n].iter().fold(0usize, |a, x| a * 256 + *x as usize)
    } else {
        2 + cms[1] as usize
    };
    std::fs::write(dir.join("sig.der"), &cms[..len]).expect("cms");
    let mut content = signed[..b].to_vec();
    content.extend_from_slice(&signed[c..c + l]);
    std::fs::write(dir.join("content.bin"), &content).expect("content");
    std::fs::write(dir.join("root.pem"), &pki.files.root_cert).expect("root");
    let (ok, out) = run(Command::new("openssl").current_dir(&dir).args([
        "cms",
        "-verify",
        "-inform",
        "DER",
        "-in",
        "sig.der",
        "-content",
        "content.bin",
        "-binary",
        "-CAfile",
        "root.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    ]));
    assert!(ok && out.contains("Verification successful"), "{out}");
}

/// A file whose cross-reference is a stream (object streams, PDF 1.5+):
/// the new revision must use a stream too, and validators must agree.
#[test]
fn signing_a_file_with_xref_streams() {
    if !tool("qpdf") {
        return;
    }
    let pki = pki();
    let dir = tmpdir("xrefstream");
    std::fs::write(dir.join("plain.pdf"), simple_pdf(2)).expect("write");
    let (ok, out) =
        run(Command::new("qpdf").current_dir(&dir).args(["--object-streams=generate", "plain.pdf", "streams.pdf"]));
    assert!(ok, "{out}");
    let original = std::fs::read(dir.join("streams.pdf")).expect("read");
    assert!(!original.windows(5).any(|w| w == b"\nxref"), "qpdf wrote a classic table");
    let mut pdf = original.clone();
    for i in 0..2u64 {
        let p = employee(&pki, &format!("Signataire {i}"), 5000 + i);
        pdf = sign(&pki, &p, &pdf, "xref stream");
    }
    assert!(pdf.starts_with(&original));
    assert!(!pdf.windows(5).any(|w| w == b"\nxref"), "the update used a classic table in a stream file");
    let r = verify_now(&pki, &pdf);
    assert!(r.all_passed(), "{r:#?}");
    let file = dir.join("signed.pdf");
    std::fs::write(&file, &pdf).expect("write");
    let (ok, out) = run(Command::new("qpdf").arg("--check").arg(&file));
    assert!(ok, "{out}");
    if tool("pdfsig") {
        let nss = nss_db(&dir, &pki.files.root_cert);
        let out = pdfsig(&nss, &file);
        assert_eq!(out.matches("Signature is Valid.").count(), 2, "{out}");
    }
    if let Some(py) = pyhanko() {
        let root = dir.join("root.pem");
        let (ok, out) = pyhanko_validate(&py, &root, &file);
        assert!(ok, "{out}");
        assert_eq!(out.matches("The signature is judged VALID.").count(), 2, "{out}");
    }
}

/// guichet accepts what pyHanko signs, and rejects it once tampered with.
#[test]
fn guichet_validates_pyhanko_signatures_and_catches_tampering() {
    let Some(py) = pyhanko() else {
        assert!(!required(), "pyHanko is required");
        return;
    };
    let pki = pki();
    let dir = tmpdir("pyhanko-signed");
    let p = employee(&pki, "Alice Tremblay", 6000);
    std::fs::write(dir.join("in.pdf"), simple_pdf(1)).expect("write");
    std::fs::write(dir.join("key.pem"), &p.key_pem).expect("write");
    std::fs::write(dir.join("cert.pem"), &p.cert_pem).expect("write");
    std::fs::write(dir.join("chain.pem"), &pki.files.issuing_cert).expect("write");
    let (ok, out) = run(Command::new(&py).current_dir(&dir).args([
        "sign",
        "addsig",
        "--field",
        "Sig1",
        "pemder",
        "--no-pass",
        "--key",
        "key.pem",
        "--cert",
        "cert.pem",
        "--chain",
        "chain.pem",
        "in.pdf",
        "out.pdf",
    ]));
    assert!(ok, "{out}");
    let signed = std::fs::read(dir.join("out.pdf")).expect("read");
    let now = time::OffsetDateTime::now_utc();
    let r = guichet_pades::verify_pdf(&signed, std::slice::from_ref(&pki.root_der), now).expect("ok");
    assert_eq!(r.signatures.len(), 1);
    assert!(r.all_passed(), "{r:#?}");
    assert_eq!(r.signatures[0].field, "Sig1");

    // One byte in the signed range.
    let mut tampered = signed.clone();
    let at = tampered.windows(7).position(|w| w == b"Entente").expect("text");
    tampered[at] = b'e';
    let r = guichet_pades::verify_pdf(&tampered, std::slice::from_ref(&pki.root_der), now).expect("ok");
    assert_eq!(r.signatures[0].indication, guichet_pades::Indication::TotalFailed);

    // A signature with a second /Contents string hidden elsewhere: the
    // byte range must exclude exactly the /Contents of the dictionary.
    let r0 = &r.signatures[0].byte_range;
    let mut wrapped = signed.clone();
    let (b, c) = (r0[1] as usize, r0[2] as usize);
    wrapped[b + 1] = if wrapped[b + 1] == b'3' { b'2' } else { b'3' };
    let r = guichet_pades::verify_pdf(&wrapped, std::slice::from_ref(&pki.root_der), now).expect("ok");
    assert_eq!(r.signatures[0].indication, guichet_pades::Indication::TotalFailed, "{:#?}", r.signatures[0]);
    assert!(c > b);
}

/// B-T: pdfsig and pyHanko accept our signature timestamps.
#[test]
fn validators_accept_b_t() {
    let pki = pki();
    let tsa = tsa(&pki);
    let dir = tmpdir("bt");
    let p = employee(&pki, "Alice Tremblay", 7000);
    let signed = sign_bt(&pki, &p, &simple_pdf(1), &tsa);
    let file = dir.join("bt.pdf");
    std::fs::write(&file, &signed).expect("write");
    let root = dir.join("root.pem");
    std::fs::write(&root, &pki.files.root_cert).expect("write");
    if tool("pdfsig") {
        let nss = nss_db(&dir, &pki.files.root_cert);
        let out = pdfsig(&nss, &file);
        assert!(out.contains("Signature is Valid.") && out.contains("Certificate is Trusted."), "{out}");
    }
    if let Some(py) = pyhanko() {
        let (ok, out) = pyhanko_validate(&py, &root, &file);
        assert!(ok, "{out}");
        assert!(out.contains("The signature is judged VALID."), "{out}");
        assert!(out.contains("The timestamp token is cryptographically sound."), "{out}");
        assert!(out.contains("The TSA certificate is trusted."), "{out}");
    }
}

/// Every key algorithm we sign with is accepted by pdfsig and pyHanko.
#[test]
fn validators_accept_every_key_algorithm() {
    use guichet_pades::{Algorithm, SoftwareKey};
    let pki = pki();
    let dir = tmpdir("algorithms");
    let root = dir.join("root.pem");
    std::fs::write(&root, &pki.files.root_cert).expect("write");
    let nss = tool("pdfsig").then(|| nss_db(&dir, &pki.files.root_cert));
    for (i, alg) in
        [Algorithm::EcdsaP384Sha384, Algorithm::RsaPkcs1Sha256, Algorithm::RsaPssSha256].into_iter().enumerate()
    {
        let e = guichet_pades::ca::Employee {
            name: format!("Signataire {alg:?}"),
            email: "s@example.org".into(),
            organization: "Société du Plan Nord".into(),
            unit: None,
        };
        let issued =
            pki.issuing.issue_with(&e, 8000 + i as u64, time::OffsetDateTime::now_utc(), 30, alg).expect("issue");
        let key = SoftwareKey::from_pkcs8(issued.key_pem.as_bytes(), alg == Algorithm::RsaPssSha256).expect("key");
        assert_eq!(guichet_pades::Signer::algorithm(&key), alg);
        let p = Person { cert_der: issued.cert_der, cert_pem: issued.cert_pem, key, key_pem: issued.key_pem };
        let signed = sign(&pki, &p, &simple_pdf(1), alg.name());
        let r = verify_now(&pki, &signed);
        assert!(r.all_passed(), "{alg:?}: {r:#?}");
        let file = dir.join(format!("{i}.pdf"));
        std::fs::write(&file, &signed).expect("write");
        if let Some(nss) = &nss {
            let out = pdfsig(nss, &file);
            assert!(out.contains("Signature is Valid.") && out.contains("Certificate is Trusted."), "{alg:?}: {out}");
        }
        if let Some(py) = pyhanko() {
            let (ok, out) = pyhanko_validate(&py, &root, &file);
            assert!(ok && out.contains("The signature is judged VALID."), "{alg:?}: {out}");
        }
    }
}

/// B-LT and B-LTA: pdfsig and pyHanko accept the signature, the stored
/// validation data and the document timestamp.
#[test]
fn validators_accept_b_lta() {
    let pki = pki();
    let tsa = tsa(&pki);
    let dir = tmpdir("blta");
    let p = employee(&pki, "Alice Tremblay", 7100);
    let signed = sign_bt(&pki, &p, &simple_pdf(1), &tsa);
    let data = guichet_pades::ValidationData {
        certs: vec![pki.issuing_der.clone(), pki.root_der.clone()],
        crls: crls(&pki, &[]),
        ocsps: vec![],
    };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let lta = guichet_pades::timestamp_pdf(&lt, &tsa).expect("timestamp");
    let file = dir.join("lta.pdf");
    std::fs::write(&file, &lta).expect("write");
    let root = dir.join("root.pem");
    std::fs::write(&root, &pki.files.root_cert).expect("write");
    if tool("qpdf") {
        let (ok, out) = run(Command::new("qpdf").arg("--check").arg(&file));
        assert!(ok, "{out}");
    }
    if tool("pdfsig") {
        let nss = nss_db(&dir, &pki.files.root_cert);
        let out = pdfsig(&nss, &file);
        // pdfsig validates the signature; it cannot validate RFC 3161
        // document timestamps at all ("Unable to validate this type").
        assert_eq!(out.matches("Signature is Valid.").count(), 1, "{out}");
        assert!(out.contains("Certificate is Trusted."), "{out}");
    }
    if let Some(py) = pyhanko() {
        let (ok, out) = pyhanko_validate(&py, &root, &file);
        assert!(ok, "{out}");
        assert!(out.contains("judged VALID"), "{out}");
        assert!(out.contains("The signature is cryptographically sound."), "{out}");
        assert!(out.contains("All modifications relate to signature maintenance"), "{out}");
        std::fs::write(dir.join("pyhanko.txt"), &out).expect("write");
    }
}

/// A certification signature (DocMDP P=2) then an approval signature:
/// both valid for guichet and pyHanko; with P=1 the later signature
/// breaks the certification for both.
#[test]
fn certification_signatures() {
    let pki = pki();
    let dir = tmpdir("certify");
    let root = dir.join("root.pem");
    std::fs::write(&root, &pki.files.root_cert).expect("write");
    let a = employee(&pki, "Alice Tremblay", 7200);
    let b = employee(&pki, "Bob Gagnon", 7201);
    for p in [2u8, 1] {
        let certified = certify(&pki, &a, &simple_pdf(1), p).expect("certifies");
        let both = sign(&pki, &b, &certified, "Approbation");
        let r = verify_now(&pki, &both);
        assert!(r.signatures[0].details.iter().any(|d| d.contains(&format!("DocMDP P={p}"))), "{r:#?}");
        if p == 2 {
            assert!(r.all_passed(), "{r:#?}");
        } else {
            assert_eq!(r.signatures[0].modification, guichet_pades::Modification::NotAllowed, "{r:#?}");
            assert_eq!(r.signatures[1].indication, guichet_pades::Indication::TotalPassed);
        }
        // Only the first signature may certify.
        assert!(certify(&pki, &b, &both, 2).is_err());
        if let Some(py) = pyhanko() {
            let file = dir.join(format!("p{p}.pdf"));
            std::fs::write(&file, &both).expect("write");
            let (_, out) = pyhanko_validate(&py, &root, &file);
            // pyHanko reads the DocMDP policy the same way.
            if p == 2 {
                assert_eq!(out.matches("judged VALID").count(), 2, "{out}");
                assert!(
                    out.contains("they appear to be compatible with the current document modification policy"),
                    "{out}"
                );
            } else {
                assert_eq!(out.matches("judged VALID").count(), 1, "{out}");
                assert!(
                    out.contains("they appear to be incompatible with the current document modification policy"),
                    "{out}"
                );
            }
        }
    }
}

/// openssl accepts our OCSP responses, and pyHanko a B-LT file that
/// carries them.
#[test]
fn openssl_and_pyhanko_accept_our_ocsp_responses() {
    let pki = pki();
    let tsa = tsa(&pki);
    let dir = tmpdir("ocsp");
    let p = employee(&pki, "Alice Tremblay", 7300);
    let responses = ocsps(&pki, &p.cert_der, None);
    std::fs::write(dir.join("r.der"), &responses[0]).expect("write");
    std::fs::write(dir.join("root.pem"), &pki.files.root_cert).expect("write");
    std::fs::write(dir.join("issuing.pem"), &pki.files.issuing_cert).expect("write");
    std::fs::write(dir.join("alice.pem"), &p.cert_pem).expect("write");
    if tool("openssl") {
        let (ok, out) = run(Command::new("openssl").current_dir(&dir).args([
            "ocsp",
            "-respin",
            "r.der",
            "-CAfile",
            "root.pem",
            "-issuer",
            "issuing.pem",
            "-cert",
            "alice.pem",
            "-no_nonce",
        ]));
        assert!(ok && out.contains("Response verify OK") && out.contains("alice.pem: good"), "{out}");
    }
    let signed = sign_bt(&pki, &p, &simple_pdf(1), &tsa);
    let data = guichet_pades::ValidationData { certs: vec![pki.issuing_der.clone()], crls: vec![], ocsps: responses };
    let lt = guichet_pades::add_dss(&signed, &data).expect("DSS");
    let file = dir.join("lt.pdf");
    std::fs::write(&file, &lt).expect("write");
    if let Some(py) = pyhanko() {
        let (ok, out) = pyhanko_validate(&py, &dir.join("root.pem"), &file);
        assert!(ok && out.contains("judged VALID"), "{out}");
    }
}

/// A visible signature: the font is embedded (subset, with Unicode), the
/// text extracts with its accents, the rectangle is drawn, and validators
/// still accept the signature.
#[test]
fn visible_signature_with_embedded_font_and_image() {
    if !tool("pdftoppm") || !tool("pdffonts") || !tool("pdftotext") {
        return;
    }
    let pki = pki();
    let dir = tmpdir("visible");
    let p = employee(&pki, "Alice Tremblay", 7400);
    // A JPEG for the image: a page rendered by pdftoppm.
    std::fs::write(dir.join("logo.pdf"), simple_pdf(1)).expect("write");
    let (ok, out) =
        run(Command::new("pdftoppm").current_dir(&dir).args(["-jpeg", "-r", "12", "-singlefile", "logo.pdf", "logo"]));
    assert!(ok, "{out}");
    let jpeg = std::fs::read(dir.join("logo.jpg")).expect("jpeg");
    let chain = vec![pki.issuing_der.clone()];
    let opts = guichet_pades::SignOptions {
        signing_time: Some(time::OffsetDateTime::now_utc()),
        reason: Some("Approbation"),
        visible: Some(guichet_pades::Visible {
            page: 2,
            rect: [300.0, 50.0, 250.0, 70.0],
            lines: vec![
                "Signé numériquement par".into(),
                "Alice Tremblay".into(),
                "Motif : entente n° 42 — prêt".into(),
            ],
            image: Some(&jpeg),
        }),
        ..guichet_pades::SignOptions::new(&p.key, &p.cert_der, &chain)
    };
    let signed = guichet_pades::sign_pdf(&simple_pdf(2), &opts).expect("signs");
    let r = verify_now(&pki, &signed);
    assert!(r.all_passed(), "{r:#?}");
    let file = dir.join("visible.pdf");
    std::fs::write(&file, &signed).expect("write");
    let (_, fonts) = run(Command::new("pdffonts").arg(&file));
    let line = fonts.lines().find(|l| l.contains("GUICHE+DejaVuSans")).unwrap_or_else(|| panic!("{fonts}"));
    // Embedded, subset, with a Unicode map.
    assert!(line.contains("CID TrueType") && line.contains("yes yes yes"), "{fonts}");
    let (_, text) = run(Command::new("pdftotext").args(["-f", "2", "-l", "2"]).arg(&file).arg("-"));
    assert!(text.contains("Alice Tremblay") && text.contains("entente n° 42 — prêt"), "{text}");
    // Page 2, rendered at 72 dpi: the signature's rectangle is drawn.
    let (ok, out) = run(Command::new("pdftoppm").current_dir(&dir).args([
        "-f",
        "2",
        "-l",
        "2",
        "-r",
        "72",
        "-gray",
        "-singlefile",
        "visible.pdf",
        "page",
    ]));
    assert!(ok, "{out}");
    let pgm = std::fs::read(dir.join("page.pgm")).expect("pgm");
    let header_end = pgm.windows(4).position(|w| w == b"255\n").expect("pgm header") + 4;
    let pixels = &pgm[header_end..];
    let (w, h) = (612usize, 792usize);
    assert_eq!(pixels.len(), w * h);
    let dark_in = |x0: usize, y0: usize, x1: usize, y1: usize| {
        (y0..y1).flat_map(|y| (x0..x1).map(move |x| (x, y))).filter(|(x, y)| pixels[y * w + x] < 128).count()
    };
    // PDF y grows upwards: the rectangle spans rows 792-120 .. 792-50.
    let inside = dark_in(300, h - 120, 550, h - 50);
    let elsewhere = dark_in(300, h - 400, 550, h - 330);
    assert!(inside > 500 && elsewhere == 0, "inside {inside}, elsewhere {elsewhere}");
    if tool("pdfsig") {
        let nss = nss_db(&dir, &pki.files.root_cert);
        let out = pdfsig(&nss, &file);
        assert!(out.contains("Signature is Valid.") && out.contains("Certificate is Trusted."), "{out}");
    }
    if let Some(py) = pyhanko() {
        let root = dir.join("root.pem");
        let (ok, out) = pyhanko_validate(&py, &root, &file);
        assert!(ok && out.contains("judged VALID"), "{out}");
    }
}

/// Form filling after a certification (P=2), and an annotation (P=2):
/// pyHanko's modification policy agrees with guichet's on each. (P=3 is
/// outside pyHanko's policy: it warns that its StandardDiffPolicy "was not
/// designed to support DocMDP level 3" and refuses any annotation; guichet
/// allows added annotations there, tested in sign_verify.rs.)
#[test]
fn form_filling_and_annotations_judged_like_pyhanko() {
    let Some(py) = pyhanko() else {
        assert!(!required(), "pyHanko is required");
        return;
    };
    let pki = pki();
    let dir = tmpdir("formfill");
    let root = dir.join("root.pem");
    std::fs::write(&root, &pki.files.root_cert).expect("write");
    let a = employee(&pki, "Alice Tremblay", 7300);
    let annotate = |signed: &[u8]| {
        let doc = lopdf::Document::load_mem(signed).expect("pdf");
        let page = doc.get_pages().get(&1).copied().expect("page");
        let annots =
            doc.get_dictionary(page).expect("page").get(b"Annots").expect("annots").as_array().expect("a").clone();
        let list: Vec<String> =
            annots.iter().filter_map(|o| o.as_reference().ok()).map(|(n, g)| format!("{n} {g} R")).collect();
        append_revision(
            signed,
            &[
                (
                    4,
                    format!(
                        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R /Annots [{} 29 0 R] >>",
                        list.join(" ")
                    ),
                ),
                (29, "<< /Type /Annot /Subtype /Text /Rect [500 700 520 720] /Contents (Vu) >>".into()),
            ],
        )
    };
    let p2 = certify(&pki, &a, &form_pdf(), 2).expect("certify");
    for (name, file, ok) in [("filled-p2", fill(&p2), true), ("annotated-p2", annotate(&p2), false)] {
        let r = verify_now(&pki, &file);
        assert_eq!(r.all_passed(), ok, "{name}: {r:#?}");
        let path = dir.join(format!("{name}.pdf"));
        std::fs::write(&path, &file).expect("write");
        let (_, out) = pyhanko_validate(&py, &root, &path);
        let compatible = out.contains("they appear to be compatible with the current document modification policy");
        assert_eq!(compatible, ok, "{name}: pyHanko says\n{out}");
    }
}
