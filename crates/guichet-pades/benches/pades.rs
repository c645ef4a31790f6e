//! Signing and validating a 100 KB PDF (PAdES B-B, ECDSA P-256).
//!
//! cargo bench -p guichet-pades --bench pades
//!
//! Writes the PDF, key and certificates it uses to $GUICHET_BENCH_DIR
//! (default /var/tmp/guichet-bench/pades) so that bench/pades_compare.sh
//! times pyHanko and pdfsig on exactly the same inputs.

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use guichet_pades::ca::{self, Employee};
use guichet_pades::{SignOptions, SoftwareKey, sign_pdf, verify_pdf};
use std::hint::black_box;

/// A PDF of about 100 KB: 28 pages of text in uncompressed streams.
fn pdf_100k() -> Vec<u8> {
    common::text_pdf(28, |i| {
        let mut text = String::from("BT /F1 10 Tf 50 750 Td 12 TL ");
        for l in 0..40 {
            text.push_str(&format!(
                "(Article {i}.{l} : les parties conviennent de ce qui suit, conformement au programme.) ' "
            ));
        }
        text.push_str("ET");
        text
    })
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
