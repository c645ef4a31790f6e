//! The published attacks on PDF signatures (Mladenov et al., "1 Trillion
//! Dollar Refund", 2019; Mainka et al., "Shadow Attacks", 2021) against
//! guichet's validator: each must be reported, none may pass.

mod common;
use common::*;
use guichet_pades::{Indication, Modification, verify_pdf};

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

fn signed_one() -> (Pki, Vec<u8>) {
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1300);
    let signed = sign(&pki, &alice, &simple_pdf(1), "x");
    (pki, signed)
}

fn assert_fails(pki: &Pki, pdf: &[u8], what: &str) {
    match verify_pdf(pdf, std::slice::from_ref(&pki.root_der), now()) {
        Err(_) => {}
        Ok(r) => {
            assert!(!r.signatures.is_empty(), "{what}: the signature vanished without an error");
            assert!(r.signatures.iter().any(|s| s.indication == Indication::TotalFailed), "{what} passed: {r:#?}");
        }
    }
}

#[test]
fn isa_new_page_content_in_a_proper_revision() {
    let (pki, signed) = signed_one();
    let text = "BT /F1 24 Tf 72 700 Td (Montant : 1 000 000 $) Tj ET";
    let forged = append_revision(&signed, &[(5, format!("<< /Length {} >>\nstream\n{text}\nendstream", text.len()))]);
    assert_fails(&pki, &forged, "incremental saving attack");
}

#[test]
fn isa_objects_appended_without_a_cross_reference_section() {
    let (pki, signed) = signed_one();
    let mut forged = signed.clone();
    let text = "BT /F1 24 Tf 72 700 Td (Montant : 1 000 000 $) Tj ET";
    forged.extend_from_slice(
        format!("5 0 obj\n<< /Length {} >>\nstream\n{text}\nendstream\nendobj\n", text.len()).as_bytes(),
    );
    let r = verify_now(&pki, &forged);
    assert_eq!(r.signatures[0].modification, Modification::NotAllowed, "{:#?}", r.signatures[0]);
    assert!(r.signatures[0].details.iter().any(|d| d.contains("after the last %%EOF")), "{:#?}", r.signatures[0]);
    assert_eq!(r.signatures[0].indication, Indication::TotalFailed);
}

#[test]
fn isa_new_annotation_over_the_page() {
    let (pki, signed) = signed_one();
    // A free-text annotation that paints over the signed text ("hide").
    let forged = append_revision(
        &signed,
        &[
            (4, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R /Annots [25 0 R] >>".into()),
            (25, "<< /Type /Annot /Subtype /FreeText /Rect [60 690 560 730] /Contents (Montant : 1 000 000 $) /DA (/Helv 20 Tf 0 g) >>".into()),
        ],
    );
    assert_fails(&pki, &forged, "overlay annotation");
}

#[test]
fn usf_byte_range_that_does_not_cover_the_document() {
    let (pki, signed) = signed_one();
    // Rewrite the byte range so that it covers only the first bytes.
    let mut forged = signed.clone();
    let at = forged.windows(10).position(|w| w == b"/ByteRange").expect("byte range") + 11;
    let end = at + forged[at..].iter().position(|b| *b == b']').expect("]") + 1;
    let fake = b"[0 10 20 10]";
    let mut slot = fake.to_vec();
    slot.resize(end - at, b' ');
    forged[at..end].copy_from_slice(&slot);
    assert_fails(&pki, &forged, "universal signature forgery (byte range)");
}

#[test]
fn usf_empty_contents() {
    let (pki, signed) = signed_one();
    let mut forged = signed.clone();
    let at = forged.windows(10).position(|w| w == b"/Contents ").expect("contents") + 11;
    let end = at + forged[at..].iter().position(|b| *b == b'>').expect(">");
    forged[at..end].fill(b'0');
    assert_fails(&pki, &forged, "universal signature forgery (contents)");
}

#[test]
fn shadow_hide_and_replace_through_the_cross_reference_only() {
    // The signed document carries, unused, a second version of the page
    // content (object 20). A later revision changes no object's bytes but
    // points the page to it: the page dictionary changes, so it is caught.
    let pki = pki();
    let alice = employee(&pki, "Alice Tremblay", 1301);
    let base = simple_pdf(1);
    let shadow_text = "BT /F1 24 Tf 72 700 Td (Montant : 1 000 000 $) Tj ET";
    let with_shadow = append_revision(
        &base,
        &[(20, format!("<< /Length {} >>\nstream\n{shadow_text}\nendstream", shadow_text.len()))],
    );
    let signed = sign(&pki, &alice, &with_shadow, "x");
    let ok = verify_now(&pki, &signed);
    assert!(ok.all_passed(), "{ok:#?}");
    let forged = append_revision(
        &signed,
        &[(4, "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 3 0 R >> >> /Contents 20 0 R /Annots [9 0 R] >>".into())],
    );
    assert_fails(&pki, &forged, "shadow hide-and-replace");
}

#[test]
fn shadow_replace_an_object_by_redefining_it() {
    // "Replace": the same object number defined again in a new revision,
    // with different content (a font here).
    let (pki, signed) = signed_one();
    let forged = append_revision(&signed, &[(3, "<< /Type /Font /Subtype /Type1 /BaseFont /Courier >>".into())]);
    assert_fails(&pki, &forged, "shadow replace");
}
