//! Signing by incremental update: the original bytes are kept as they
//! are; a new revision appends the signature dictionary, its field and
//! widget, the updated AcroForm, catalog and page, and a cross-reference
//! section of the same kind as the file's (table or stream).

use crate::keys::{Digest, Signer};
use crate::pdf::{self, text_string, write_dict, write_object};
use crate::{Error, cades};
use lopdf::{Dictionary, Object, ObjectId};
use std::io::Write;

/// What to sign with and what to record.
#[derive(Clone, Copy)]
pub struct SignOptions<'a> {
    pub signer: &'a dyn Signer,
    /// DER of the signer's certificate.
    pub certificate: &'a [u8],
    /// DER of the issuing certificates, up to (not necessarily including) the root.
    pub chain: &'a [Vec<u8>],
    /// The signing time claimed in `/M` (PAdES keeps it out of the CMS).
    pub signing_time: Option<time::OffsetDateTime>,
    pub reason: Option<&'a str>,
    pub location: Option<&'a str>,
    pub name: Option<&'a str>,
    /// A timestamp authority: PAdES B-T when present.
    pub timestamp: Option<&'a dyn crate::tsp::TimestampClient>,
}

impl std::fmt::Debug for SignOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignOptions")
            .field("algorithm", &self.signer.algorithm())
            .field("reason", &self.reason)
            .finish()
    }
}

fn pdf_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "D:{:04}{:02}{:02}{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Signs `pdf` with a PAdES B-B signature and returns the signed file.
pub fn sign_pdf(pdf_bytes: &[u8], opts: &SignOptions<'_>) -> Result<Vec<u8>, Error> {
    let doc = pdf::load(pdf_bytes)?;
    let startxref = pdf::last_startxref(pdf_bytes)?;
    let xref_stream = pdf::last_xref_is_stream(pdf_bytes, startxref);
    let root = match doc.trailer.get(b"Root") {
        Ok(Object::Reference(id)) => *id,
        _ => return Err(Error::Pdf("the trailer has no /Root catalog".into())),
    };
    let catalog = doc.get_dictionary(root).map_err(|e| Error::Pdf(format!("unreadable catalog: {e}")))?.clone();
    let size = doc.trailer.get(b"Size").ok().and_then(|s| s.as_i64().ok()).unwrap_or(0).max(0) as u32;
    let mut next = size.max(doc.max_id + 1);
    let mut alloc = || {
        next += 1;
        (next - 1, 0u16)
    };
    let page = *doc.get_pages().values().next().ok_or_else(|| Error::Pdf("the document has no page".into()))?;

    // The AcroForm: existing (indirect or inline) or new.
    let (acro_id, mut acro, catalog_changes) = match catalog.get(b"AcroForm") {
        Ok(Object::Reference(id)) => {
            (*id, doc.get_dictionary(*id).map_err(|e| Error::Pdf(format!("unreadable AcroForm: {e}")))?.clone(), false)
        }
        Ok(Object::Dictionary(d)) => (alloc(), d.clone(), true),
        _ => (alloc(), Dictionary::new(), true),
    };
    let mut fields: Vec<Object> = match acro.get(b"Fields") {
        Ok(Object::Array(a)) => a.clone(),
        Ok(Object::Reference(id)) => {
            doc.get_object(*id).ok().and_then(|o| o.as_array().ok()).cloned().unwrap_or_default()
        }
        _ => Vec::new(),
    };
    let taken: Vec<Vec<u8>> = fields
        .iter()
        .filter_map(|f| pdf::dict(&doc, f))
        .filter_map(|(_, d)| d.get(b"T").ok().and_then(|t| t.as_str().ok()).map(<[u8]>::to_vec))
        .collect();
    let field_name =
        (1..).map(|i| format!("Signature{i}")).find(|n| !taken.iter().any(|t| t == n.as_bytes())).unwrap_or_default();

    let sig_id = alloc();
    let widget_id = alloc();
    fields.push(Object::Reference(widget_id));
    acro.set("Fields", Object::Array(fields));
    acro.set("SigFlags", Object::Integer(3));

    let mut widget = Dictionary::new();
    widget.set("Type", Object::Name(b"Annot".to_vec()));
    widget.set("Subtype", Object::Name(b"Widget".to_vec()));
    widget.set("FT", Object::Name(b"Sig".to_vec()));
    widget.set("Rect", Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]));
    // Print + Locked: an invisible signature that stays put.
    widget.set("F", Object::Integer(132));
    widget.set("T", text_string(&field_name));
    widget.set("V", Object::Reference(sig_id));
    widget.set("P", Object::Reference(page));

    let mut page_dict = doc.get_dictionary(page).map_err(|e| Error::Pdf(format!("unreadable page: {e}")))?.clone();
    let mut annots: Vec<Object> = match page_dict.get(b"Annots") {
        Ok(Object::Array(a)) => a.clone(),
        Ok(Object::Reference(id)) => {
            doc.get_object(*id).ok().and_then(|o| o.as_array().ok()).cloned().unwrap_or_default()
        }
        _ => Vec::new(),
    };
    annots.push(Object::Reference(widget_id));
    page_dict.set("Annots", Object::Array(annots));

    let mut objects: Vec<(ObjectId, Object)> =
        vec![(widget_id, Object::Dictionary(widget)), (page, Object::Dictionary(page_dict))];
    objects.push((acro_id, Object::Dictionary(acro)));
    if catalog_changes {
        let mut cat = catalog.clone();
        cat.set("AcroForm", Object::Reference(acro_id));
        objects.push((root, Object::Dictionary(cat)));
    }

    // Size the /Contents placeholder from this signer's certificates and the
    // longest signature its key can produce.
    let digest = opts.signer.algorithm().digest();
    let prepared = cades::prepare(opts.signer, opts.certificate, opts.chain)?;
    // A signature timestamp goes inside the CMS: learn its size from a
    // first request (a TSA's tokens keep their size from one to the next).
    let token_estimate = match opts.timestamp {
        Some(tsa) => crate::tsp::timestamp(tsa, digest, &[0; 32])?.len() + 64,
        None => 0,
    };
    let reserved = prepared.max_len(token_estimate)?;

    let mut out = Vec::with_capacity(pdf_bytes.len() + reserved * 2 + 4096);
    out.extend_from_slice(pdf_bytes);
    if !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    let mut offsets: Vec<(ObjectId, usize)> = Vec::new();
    for (id, o) in &objects {
        offsets.push((*id, out.len()));
        let _ = writeln!(out, "{} {} obj", id.0, id.1);
        write_object(&mut out, o);
        out.extend_from_slice(b"\nendobj\n");
    }
    // The signature dictionary, with placeholders whose positions we keep.
    offsets.push((sig_id, out.len()));
    let _ = write!(
        out,
        "{} {} obj\n<</Type/Sig/Filter/Adobe.PPKLite/SubFilter/ETSI.CAdES.detached/ByteRange ",
        sig_id.0, sig_id.1
    );
    let byte_range_at = out.len();
    out.extend_from_slice(b"[0 0000000000 0000000000 0000000000]");
    out.extend_from_slice(b"/Contents ");
    let contents_start = out.len();
    out.push(b'<');
    out.resize(out.len() + reserved * 2, b'0');
    out.push(b'>');
    let contents_end = out.len();
    let mut extra = Dictionary::new();
    if let Some(t) = opts.signing_time {
        extra.set("M", Object::String(pdf_date(t).into_bytes(), lopdf::StringFormat::Literal));
    }
    if let Some(r) = opts.reason {
        extra.set("Reason", text_string(r));
    }
    if let Some(l) = opts.location {
        extra.set("Location", text_string(l));
    }
    if let Some(n) = opts.name {
        extra.set("Name", text_string(n));
    }
    for (k, v) in extra.iter() {
        pdf::write_name(&mut out, k);
        out.push(b' ');
        write_object(&mut out, v);
    }
    out.extend_from_slice(b">>\nendobj\n");

    // Cross-reference section of the same kind as the file's.
    let mut trailer = Dictionary::new();
    trailer.set("Root", Object::Reference(root));
    if let Ok(info) = doc.trailer.get(b"Info") {
        trailer.set("Info", info.clone());
    }
    let id = match doc.trailer.get(b"ID") {
        Ok(Object::Array(a)) if a.len() == 2 => a.clone(),
        _ => {
            // A file identifier from the file's length and its tail (where
            // its cross-reference and trailer are): unique enough, and cheap.
            let tail = &pdf_bytes[pdf_bytes.len().saturating_sub(4096)..];
            let h = Digest::Sha256.hash(&[&pdf_bytes.len().to_be_bytes()[..], tail].concat())[..16].to_vec();
            vec![
                Object::String(h.clone(), lopdf::StringFormat::Hexadecimal),
                Object::String(h, lopdf::StringFormat::Hexadecimal),
            ]
        }
    };
    trailer.set("ID", Object::Array(id));
    trailer.set("Prev", Object::Integer(startxref as i64));
    let xref_at;
    if xref_stream {
        let xs_id = alloc();
        offsets.push((xs_id, out.len()));
        offsets.sort();
        let mut data = Vec::new();
        let mut index = Vec::new();
        for (id, off) in &offsets {
            index.push(Object::Integer(i64::from(id.0)));
            index.push(Object::Integer(1));
            data.push(1u8);
            data.extend_from_slice(&(*off as u32).to_be_bytes());
            data.extend_from_slice(&id.1.to_be_bytes());
        }
        trailer.set("Type", Object::Name(b"XRef".to_vec()));
        trailer.set("Size", Object::Integer(i64::from(next)));
        trailer.set("Index", Object::Array(index));
        trailer.set("W", Object::Array(vec![1.into(), 4.into(), 2.into()]));
        xref_at = out.len();
        let _ = writeln!(out, "{} {} obj", xs_id.0, xs_id.1);
        write_object(&mut out, &Object::Stream(lopdf::Stream::new(trailer, data)));
        out.extend_from_slice(b"\nendobj\n");
    } else {
        offsets.sort();
        xref_at = out.len();
        out.extend_from_slice(b"xref\n");
        let mut i = 0;
        while i < offsets.len() {
            let mut j = i;
            while j + 1 < offsets.len() && offsets[j + 1].0.0 == offsets[j].0.0 + 1 {
                j += 1;
            }
            let _ = writeln!(out, "{} {}", offsets[i].0.0, j - i + 1);
            for (id, off) in &offsets[i..=j] {
                let _ = write!(out, "{off:010} {:05} n\r\n", id.1);
            }
            i = j + 1;
        }
        trailer.set("Size", Object::Integer(i64::from(next)));
        out.extend_from_slice(b"trailer\n");
        write_dict(&mut out, &trailer);
        out.push(b'\n');
    }
    let _ = write!(out, "startxref\n{xref_at}\n%%EOF\n");

    // Fill in the byte range, hash it, sign, and put the CMS in /Contents.
    let total = out.len();
    let ranges = [0, contents_start, contents_end, total - contents_end];
    let text = format!("[{} {} {} {}]", ranges[0], ranges[1], ranges[2], ranges[3]);
    let slot = &mut out[byte_range_at..byte_range_at + 36];
    if text.len() > slot.len() {
        return Err(Error::Pdf("the document is too large for a 10-digit byte range".into()));
    }
    slot.fill(b' ');
    slot[..text.len()].copy_from_slice(text.as_bytes());
    let mut h = digest.hasher();
    h.update(&out[..contents_start]);
    h.update(&out[contents_end..]);
    let signed = prepared.sign(&h.finish(), const_oid::db::rfc5911::ID_DATA)?;
    // B-T: a timestamp over the signature value; no silent fallback.
    let token = match opts.timestamp {
        Some(tsa) => Some(crate::tsp::timestamp(tsa, digest, &signed.signature)?),
        None => None,
    };
    let cms = prepared.encode(&signed, None, token.as_deref())?;
    if cms.len() > reserved {
        return Err(Error::Sign(format!(
            "the signature ({} bytes) does not fit the reserved {} bytes",
            cms.len(),
            reserved
        )));
    }
    let hex = &mut out[contents_start + 1..contents_end - 1];
    for (i, b) in cms.iter().enumerate() {
        let s = format!("{b:02X}");
        hex[2 * i..2 * i + 2].copy_from_slice(s.as_bytes());
    }
    Ok(out)
}
