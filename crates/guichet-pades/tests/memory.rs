//! A 200 MB PDF signs in memory well under the file's size: the document's
//! streams are not kept while its structure is read, the hash reads the
//! file once without copying it, and only the new revision is returned.
//! Measured with a counting allocator (this test binary's own), which
//! sees every allocation of every thread.
#![allow(unsafe_code)] // the counting allocator below, and nothing else

mod common;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::SeqCst) + by;
    PEAK.fetch_max(now, Ordering::SeqCst);
}

// SAFETY: every call goes to the system allocator with the same arguments;
// the counters only observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            CURRENT.fetch_sub(layout.size(), Ordering::SeqCst);
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The counters see every thread: the tests of this file run one at a time.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Bytes allocated at the peak of `f`, above what was allocated before it.
fn peak_during<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = CURRENT.load(Ordering::SeqCst);
    PEAK.store(before, Ordering::SeqCst);
    let out = f();
    (out, PEAK.load(Ordering::SeqCst).saturating_sub(before))
}

/// A scanned document: `pages` pages, each a 2 MiB grey image (raw
/// samples), with a classic cross-reference table.
fn scanned_pdf(pages: usize) -> Vec<u8> {
    const W: usize = 1024;
    const H: usize = 2048;
    let mut out = Vec::with_capacity(pages * (W * H + 512) + 4096);
    let mut offsets = Vec::new();
    // Grey samples (a repeated ramp: cheap to make, not all one value).
    let ramp: Vec<u8> = (0..=250).collect();
    let samples: Vec<u8> = ramp.iter().copied().cycle().take(W * H).collect();
    out.extend_from_slice(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
    let mut obj = |out: &mut Vec<u8>, n: usize, body: &[u8]| {
        offsets.push((n, out.len()));
        out.extend_from_slice(format!("{n} 0 obj\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\nendobj\n");
    };
    obj(&mut out, 1, b"<</Type/Catalog/Pages 2 0 R>>");
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", 3 + 3 * i)).collect();
    obj(&mut out, 2, format!("<</Type/Pages/Kids[{}]/Count {pages}>>", kids.join(" ")).as_bytes());
    for i in 0..pages {
        let (page, content, image) = (3 + 3 * i, 4 + 3 * i, 5 + 3 * i);
        obj(
            &mut out,
            page,
            format!(
                "<</Type/Page/Parent 2 0 R/MediaBox[0 0 612 792]/Resources<</XObject<</Im0 {image} 0 R>>>>/Contents {content} 0 R>>"
            )
            .as_bytes(),
        );
        let ops = b"q 612 0 0 792 0 0 cm /Im0 Do Q";
        let mut c = format!("<</Length {}>>\nstream\n", ops.len()).into_bytes();
        c.extend_from_slice(ops);
        c.extend_from_slice(b"\nendstream");
        obj(&mut out, content, &c);
        let mut im = format!(
            "<</Type/XObject/Subtype/Image/Width {W}/Height {H}/ColorSpace/DeviceGray/BitsPerComponent 8/Length {}>>\nstream\n",
            W * H
        )
        .into_bytes();
        im.extend_from_slice(&samples);
        im.extend_from_slice(b"\nendstream");
        obj(&mut out, image, &im);
    }
    let size = 3 + 3 * pages;
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f\r\n").as_bytes());
    offsets.sort();
    for (_, off) in &offsets {
        out.extend_from_slice(format!("{off:010} 00000 n\r\n").as_bytes());
    }
    out.extend_from_slice(format!("trailer\n<</Size {size}/Root 1 0 R>>\nstartxref\n{xref}\n%%EOF\n").as_bytes());
    out
}

#[test]
fn a_200_mb_pdf_signs_in_a_small_fraction_of_its_size() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pdf = scanned_pdf(100);
    assert!(pdf.len() > 200_000_000, "{} bytes", pdf.len());
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1800);
    let chain = vec![pki.issuing_der.clone()];
    let opts = guichet_pades::SignOptions {
        signing_time: Some(time::OffsetDateTime::now_utc()),
        reason: Some("contrat"),
        ..guichet_pades::SignOptions::new(&alice.key, &alice.cert_der, &chain)
    };

    let (update, peak) = peak_during(|| guichet_pades::sign_pdf_update(&pdf, &opts).expect("signs"));
    eprintln!("signing a {} MB PDF allocated at most {:.1} MB", pdf.len() / 1_000_000, peak as f64 / 1e6);
    assert!(peak < pdf.len() / 20, "{peak} bytes allocated to sign {} bytes", pdf.len());

    // The measure can fail: the whole-file API copies the file once.
    let (whole, copied) = peak_during(|| guichet_pades::sign_pdf(&pdf, &opts).expect("signs"));
    assert!(copied >= pdf.len(), "{copied}");
    drop(whole);

    // And the revision makes a valid signature over all 200 MB.
    let mut signed = pdf;
    signed.extend_from_slice(&update);
    let report = verify_now(&pki, &signed);
    assert_eq!(report.signatures.len(), 1);
    let s = &report.signatures[0];
    assert_eq!(s.indication, guichet_pades::Indication::TotalPassed, "{:#?}", s.details);
    // One byte of an image changed: the digest no longer matches.
    signed[100_000_000] ^= 1;
    let report = verify_now(&pki, &signed);
    assert_eq!(report.signatures[0].indication, guichet_pades::Indication::TotalFailed);
}

#[test]
fn a_structure_image_and_the_file_sign_the_same_as_the_file_alone() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let pdf = scanned_pdf(3);
    let image = guichet_pades::structure_image(&mut std::io::Cursor::new(&pdf), pdf.len(), 0).expect("image");
    assert_eq!(image.len(), pdf.len());
    // The images' samples were left out.
    assert!(image.iter().filter(|b| **b == 0).count() > 3 * 2_000_000, "the large streams are left out");
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1801);
    let chain = vec![pki.issuing_der.clone()];
    let opts = guichet_pades::SignOptions::new(&alice.key, &alice.cert_der, &chain);
    let update = guichet_pades::sign_pdf_update_from(&image, &mut std::io::Cursor::new(&pdf), &opts).expect("signs");
    let mut signed = pdf.clone();
    signed.extend_from_slice(&update);
    let r = verify_now(&pki, &signed);
    assert_eq!(r.signatures[0].indication, guichet_pades::Indication::TotalPassed, "{:#?}", r.signatures[0].details);
    // A file shorter than its structure (changed meanwhile): refused.
    let short = &pdf[..pdf.len() - 10];
    assert!(guichet_pades::sign_pdf_update_from(&image, &mut std::io::Cursor::new(short), &opts).is_err());
}
