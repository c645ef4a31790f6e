//! Signing and validating a 100 KB PDF (PAdES B-B, ECDSA P-256).
//!
//! cargo bench -p guichet-pades --bench pades
//!
//! Writes the PDF, key and certificates it uses to $GUICHET_BENCH_DIR
//! (default /var/tmp/guichet-bench/pades) so that bench/pades_compare.sh
//! times pyHanko and pdfsig on exactly the same inputs.

use criterion::{Criterion, criterion_group, criterion_main};
use guichet_pades::ca::{self, Employee};
use guichet_pades::{SignOptions, SoftwareKey, sign_pdf, verify_pdf};
use std::hint::black_box;

/// A PDF of about 100 KB: 28 pages of text in uncompressed streams.
fn pdf_100k() -> Vec<u8> {
    let pages = 28;
    let mut objs: Vec<String> = vec!["<< /Type /Catalog /Pages 2 0 R >>".into()];
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 4 + 2 * i)).collect();
    objs.push(format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")));
    objs.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".into());
    for i in 0..pages {
        objs.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents {} 0 R >>",
            5 + 2 * i
        ));
        let mut text = String::from("BT /F1 10 Tf 50 750 Td 12 TL ");
        for l in 0..40 {
            text.push_str(&format!(
                "(Article {i}.{l} : les parties conviennent de ce qui suit, conformement au programme.) ' "
            ));
        }
        text.push_str("ET");
        objs.push(format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()));
    }
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

fn bench(c: &mut Criterion) {
    let now = time::OffsetDateTime::now_utc();
    let files = ca::init("Société du Plan Nord", "CA", now).expect("CA");
    let issuing = ca::IssuingCa::load("Société du Plan Nord", "CA", &files.issuing_key).expect("CA");
    let e = Employee {
        name: "Alice Tremblay".into(),
        email: "alice@example.org".into(),
        organization: "Société du Plan Nord".into(),
        unit: None,
    };
    let issued = issuing.issue(&e, 1000, now, 365).expect("issue");
    let key = SoftwareKey::from_pkcs8(issued.key_pem.as_bytes(), false).expect("key");
    let chain = vec![ca::pem_to_der(&files.issuing_cert).expect("pem")];
    let root = ca::pem_to_der(&files.root_cert).expect("pem");
    let pdf = pdf_100k();
    let opts = SignOptions { signing_time: Some(now), ..SignOptions::new(&key, &issued.cert_der, &chain) };
    let signed = sign_pdf(&pdf, &opts).expect("signs");
    assert!(verify_pdf(&signed, std::slice::from_ref(&root), now).expect("ok").all_passed());

    let dir = std::env::var("GUICHET_BENCH_DIR").unwrap_or_else(|_| "/var/tmp/guichet-bench/pades".into());
    if std::fs::create_dir_all(&dir).is_ok() {
        let w = |name: &str, data: &[u8]| std::fs::write(format!("{dir}/{name}"), data).is_ok();
        let ok = w("in.pdf", &pdf)
            && w("signed.pdf", &signed)
            && w("key.pem", issued.key_pem.as_bytes())
            && w("cert.pem", issued.cert_pem.as_bytes())
            && w("chain.pem", files.issuing_cert.as_bytes())
            && w("root.pem", files.root_cert.as_bytes());
        eprintln!("{} KB PDF; inputs written to {dir}: {ok}", pdf.len() / 1024);
    }

    c.bench_function("sign 100 KB PDF, PAdES B-B, ECDSA P-256", |b| {
        b.iter(|| sign_pdf(black_box(&pdf), &opts).expect("signs"))
    });
    c.bench_function("validate 100 KB signed PDF", |b| {
        b.iter(|| verify_pdf(black_box(&signed), std::slice::from_ref(&root), now).expect("ok"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
