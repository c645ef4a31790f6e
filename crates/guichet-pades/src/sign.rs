//! Signing by incremental update: the original bytes are kept as they
//! are; a new revision appends the signature dictionary, its field and
//! widget, the updated AcroForm, catalog and page, and a cross-reference
//! section of the same kind as the file's (table or stream).

use crate::keys::{Digest, Signer};
use crate::pdf::{self, text_string, write_object};
use crate::revision::Appender;
use crate::{Error, cades};
use lopdf::{Dictionary, Object};
use std::io::Write;

/// What to sign with and what to record.
#[derive(Clone)]
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
    /// Make this the document's certification signature (DocMDP) with the
    /// given permissions: 1 no change at all, 2 form filling and signing,
    /// 3 also annotations. Only the first signature of a document may.
    pub certify: Option<u8>,
    /// A visible signature; invisible when `None`.
    pub visible: Option<crate::Visible<'a>>,
}

impl<'a> SignOptions<'a> {
    /// An invisible B-B signature with no claimed time, reason or place:
    /// set the other fields with struct update syntax.
    pub fn new(signer: &'a dyn Signer, certificate: &'a [u8], chain: &'a [Vec<u8>]) -> SignOptions<'a> {
        SignOptions {
            signer,
            certificate,
            chain,
            signing_time: None,
            reason: None,
            location: None,
            name: None,
            timestamp: None,
            certify: None,
            visible: None,
        }
    }
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

/// Signs `pdf` with a PAdES signature (B-B, or B-T with a timestamp
/// authority) and returns the signed file.
pub fn sign_pdf(pdf_bytes: &[u8], opts: &SignOptions<'_>) -> Result<Vec<u8>, Error> {
    let update = sign_pdf_update(pdf_bytes, opts)?;
    Ok(appended(pdf_bytes, &update))
}

/// Feeds exactly `len` bytes of `r` (the file) to `h`, 1 MB at a time.
fn hash_exactly(h: &mut crate::keys::Hasher, r: &mut dyn std::io::Read, len: usize) -> Result<(), Error> {
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let want = left.min(buf.len());
        let n = r.read(&mut buf[..want]).map_err(|e| Error::Pdf(format!("reading the file: {e}")))?;
        if n == 0 {
            return Err(Error::Pdf("the file is shorter than its structure: it changed while being signed".into()));
        }
        h.update(&buf[..n]);
        left -= n;
    }
    Ok(())
}

/// The file followed by a revision written for it.
pub(crate) fn appended(pdf_bytes: &[u8], update: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(pdf_bytes.len() + update.len());
    out.extend_from_slice(pdf_bytes);
    out.extend_from_slice(update);
    out
}

/// [`sign_pdf`] for large files: returns only the new revision, to write
/// after the file's bytes (which it reads once, for the hash, and never
/// copies: give it a memory map and the file stays on disk). The document's
/// streams are not kept while its structure is read, so memory stays a
/// small fraction of a large file.
pub fn sign_pdf_update(pdf_bytes: &[u8], opts: &SignOptions<'_>) -> Result<Vec<u8>, Error> {
    sign_update(pdf_bytes, None, opts)
}

/// [`sign_pdf_update`] for a file too large to map: `structure` is the
/// file as [`crate::structure_image`] makes it (every byte but large
/// streams' contents), `original` reads the file itself, from its start,
/// for the hash.
pub fn sign_pdf_update_from(
    structure: &[u8],
    original: &mut dyn std::io::Read,
    opts: &SignOptions<'_>,
) -> Result<Vec<u8>, Error> {
    sign_update(structure, Some(original), opts)
}

fn sign_update(
    pdf_bytes: &[u8],
    original: Option<&mut dyn std::io::Read>,
    opts: &SignOptions<'_>,
) -> Result<Vec<u8>, Error> {
    // Size the /Contents placeholder from this signer's certificates and the
    // longest signature its key can produce.
    let digest = opts.signer.algorithm().digest();
    check_certificate(opts.certificate, opts.signing_time)?;
    let prepared = cades::prepare(opts.signer, opts.certificate, opts.chain)?;
    // A signature timestamp goes inside the CMS: learn its size from a
    // first request (a TSA's tokens keep their size from one to the next).
    let token_estimate = match opts.timestamp {
        Some(tsa) => crate::tsp::timestamp(tsa, &[0; 32])?.len() + 64,
        None => 0,
    };
    let reserved = prepared.max_len(token_estimate)?;
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
    if let Some(p) = opts.certify {
        if !(1..=3).contains(&p) {
            return Err(Error::Sign(format!("DocMDP permissions are 1, 2 or 3, not {p}")));
        }
        let mut params = Dictionary::new();
        params.set("Type", Object::Name(b"TransformParams".to_vec()));
        params.set("P", Object::Integer(i64::from(p)));
        params.set("V", Object::Name(b"1.2".to_vec()));
        let mut sigref = Dictionary::new();
        sigref.set("Type", Object::Name(b"SigRef".to_vec()));
        sigref.set("TransformMethod", Object::Name(b"DocMDP".to_vec()));
        sigref.set("TransformParams", Object::Dictionary(params));
        extra.set("Reference", Object::Array(vec![Object::Dictionary(sigref)]));
    }
    let kind = Kind {
        type_: "Sig",
        sub_filter: "ETSI.CAdES.detached",
        field_prefix: "Signature",
        certify: opts.certify.is_some(),
        visible: opts.visible.as_ref(),
    };
    append_signature(pdf_bytes, original, &kind, reserved, &extra, digest, &|document_digest| {
        let signed = prepared.sign(document_digest, const_oid::db::rfc5911::ID_DATA)?;
        // B-T: a timestamp over the signature value; no silent fallback.
        let token = match opts.timestamp {
            Some(tsa) => Some(crate::tsp::timestamp(tsa, &Digest::Sha256.hash(&signed.signature))?),
            None => None,
        };
        prepared.encode(&signed, None, token.as_deref())
    })
}

/// Refuses a certificate that may not sign documents, or that is not valid
/// at the signing time: better no signature than one that fails later.
pub(crate) fn check_certificate(cert_der: &[u8], at: Option<time::OffsetDateTime>) -> Result<(), Error> {
    use der::Decode;
    let c = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| Error::Certificate(format!("unreadable certificate: {e}")))?;
    let ku = c
        .tbs_certificate
        .extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == const_oid::db::rfc5280::ID_CE_KEY_USAGE)
        .and_then(|e| der::asn1::BitString::from_der(e.extn_value.as_bytes()).ok())
        .map(|b| b.raw_bytes().first().copied().unwrap_or(0));
    if let Some(bits) = ku
        && bits & 0b1100_0000 == 0
    {
        return Err(Error::Certificate(format!(
            "{} may not sign documents (its key usage has neither digitalSignature nor nonRepudiation)",
            c.tbs_certificate.subject
        )));
    }
    if let Some(at) = at {
        let v = &c.tbs_certificate.validity;
        let (from, to) =
            (v.not_before.to_unix_duration().as_secs() as i64, v.not_after.to_unix_duration().as_secs() as i64);
        let now = at.unix_timestamp();
        if now > to {
            return Err(Error::Certificate(format!("{} expired; renew it before signing", c.tbs_certificate.subject)));
        }
        if now < from {
            return Err(Error::Certificate(format!("{} is not valid yet", c.tbs_certificate.subject)));
        }
    }
    Ok(())
}

/// Adds a document timestamp (PAdES B-LTA: `/Type /DocTimeStamp`,
/// `/SubFilter /ETSI.RFC3161`) over the whole file as it is.
pub fn timestamp_pdf(pdf_bytes: &[u8], tsa: &dyn crate::tsp::TimestampClient) -> Result<Vec<u8>, Error> {
    let update = timestamp_pdf_update(pdf_bytes, tsa)?;
    Ok(appended(pdf_bytes, &update))
}

/// [`timestamp_pdf`], returning only the new revision.
pub fn timestamp_pdf_update(pdf_bytes: &[u8], tsa: &dyn crate::tsp::TimestampClient) -> Result<Vec<u8>, Error> {
    timestamp_update(pdf_bytes, None, tsa)
}

/// [`timestamp_pdf_update`] from a structure image and the file's reader
/// (see [`sign_pdf_update_from`]).
pub fn timestamp_pdf_update_from(
    structure: &[u8],
    original: &mut dyn std::io::Read,
    tsa: &dyn crate::tsp::TimestampClient,
) -> Result<Vec<u8>, Error> {
    timestamp_update(structure, Some(original), tsa)
}

fn timestamp_update(
    pdf_bytes: &[u8],
    original: Option<&mut dyn std::io::Read>,
    tsa: &dyn crate::tsp::TimestampClient,
) -> Result<Vec<u8>, Error> {
    let reserved = crate::tsp::timestamp(tsa, &[0; 32])?.len() + 64;
    let kind = Kind {
        type_: "DocTimeStamp",
        sub_filter: "ETSI.RFC3161",
        field_prefix: "DocTimeStamp",
        certify: false,
        visible: None,
    };
    append_signature(pdf_bytes, original, &kind, reserved, &Dictionary::new(), Digest::Sha256, &|document_digest| {
        crate::tsp::timestamp(tsa, document_digest)
    })
}

/// Computes the /Contents value from the digest of the byte range.
type ContentsFn<'a> = dyn Fn(&[u8]) -> Result<Vec<u8>, Error> + 'a;

struct Kind<'a> {
    type_: &'static str,
    sub_filter: &'static str,
    field_prefix: &'static str,
    /// A certification signature: the catalog's /Perms names it.
    certify: bool,
    visible: Option<&'a crate::Visible<'a>>,
}

/// The new revision of a signature: the field and its widget, the
/// AcroForm, catalog and page they join, and the signature dictionary
/// whose /Contents is filled by `contents` from the digest of the byte
/// range.
fn append_signature(
    pdf_bytes: &[u8],
    original: Option<&mut dyn std::io::Read>,
    kind: &Kind<'_>,
    reserved: usize,
    extra: &Dictionary,
    digest: Digest,
    contents: &ContentsFn<'_>,
) -> Result<Vec<u8>, Error> {
    let doc = pdf::load_structure(pdf_bytes)?;
    let mut w = Appender::new(pdf_bytes, &doc, reserved * 2)?;
    let root = w.root;
    let catalog = doc.get_dictionary(root).map_err(|e| Error::Pdf(format!("unreadable catalog: {e}")))?.clone();
    let pages = doc.get_pages();
    let page_no = match kind.visible.map(|v| v.page) {
        Some(0) => pages.len(),
        Some(n) => n,
        None => 1,
    };
    let page = *pages.get(&(u32::try_from(page_no).unwrap_or(u32::MAX))).ok_or_else(|| {
        Error::Pdf(if pages.is_empty() {
            "the document has no page".into()
        } else {
            format!("there is no page {page_no} (the document has {})", pages.len())
        })
    })?;

    // The AcroForm: existing (indirect or inline) or new.
    let (acro_id, mut acro, catalog_changes) = match catalog.get(b"AcroForm") {
        Ok(Object::Reference(id)) => {
            (*id, doc.get_dictionary(*id).map_err(|e| Error::Pdf(format!("unreadable AcroForm: {e}")))?.clone(), false)
        }
        Ok(Object::Dictionary(d)) => (w.alloc(), d.clone(), true),
        _ => (w.alloc(), Dictionary::new(), true),
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
    let field_name = (1..)
        .map(|i| format!("{}{i}", kind.field_prefix))
        .find(|n| !taken.iter().any(|t| t == n.as_bytes()))
        .unwrap_or_default();

    if kind.certify && doc.objects.values().any(|o| o.as_dict().is_ok_and(|d| d.has(b"ByteRange"))) {
        return Err(Error::Sign("only the first signature of a document can certify it (DocMDP)".into()));
    }
    let sig_id = w.alloc();
    let widget_id = w.alloc();
    fields.push(Object::Reference(widget_id));
    acro.set("Fields", Object::Array(fields));
    acro.set("SigFlags", Object::Integer(3));

    let mut widget = Dictionary::new();
    widget.set("Type", Object::Name(b"Annot".to_vec()));
    widget.set("Subtype", Object::Name(b"Widget".to_vec()));
    widget.set("FT", Object::Name(b"Sig".to_vec()));
    match kind.visible {
        Some(v) => {
            let [x, y, wd, ht] = v.rect;
            widget.set(
                "Rect",
                Object::Array(vec![Object::Real(x), Object::Real(y), Object::Real(x + wd), Object::Real(y + ht)]),
            );
            let form = crate::appearance::write(&mut w, v)?;
            let mut ap = Dictionary::new();
            ap.set("N", Object::Reference(form));
            widget.set("AP", Object::Dictionary(ap));
        }
        None => widget.set("Rect", Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()])),
    }
    // Print + Locked: the signature prints and stays put.
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

    w.object(widget_id, &Object::Dictionary(widget));
    w.object(page, &Object::Dictionary(page_dict));
    w.object(acro_id, &Object::Dictionary(acro));
    if catalog_changes || kind.certify {
        let mut cat = catalog.clone();
        cat.set("AcroForm", Object::Reference(acro_id));
        if kind.certify {
            let mut perms = Dictionary::new();
            perms.set("DocMDP", Object::Reference(sig_id));
            cat.set("Perms", Object::Dictionary(perms));
        }
        w.object(root, &Object::Dictionary(cat));
    }

    // The signature dictionary, with placeholders whose positions we keep
    // (in the new revision; the file's offsets add the base's length).
    w.begin(sig_id);
    let _ = write!(w.out, "<</Type/{}/Filter/Adobe.PPKLite/SubFilter/{}/ByteRange ", kind.type_, kind.sub_filter);
    let byte_range_at = w.out.len();
    w.out.extend_from_slice(b"[0 0000000000 0000000000 0000000000]");
    w.out.extend_from_slice(b"/Contents ");
    let contents_start = w.out.len();
    w.out.push(b'<');
    w.out.resize(w.out.len() + reserved * 2, b'0');
    w.out.push(b'>');
    let contents_end = w.out.len();
    for (k, v) in extra.iter() {
        pdf::write_name(&mut w.out, k);
        w.out.push(b' ');
        write_object(&mut w.out, v);
    }
    w.out.extend_from_slice(b">>");
    w.end();
    let base = w.base_len();
    let mut out = w.finish()?;

    // Fill in the byte range, hash it (the file as it was, streamed, then
    // the new revision around /Contents), and put the signature in.
    let total = base + out.len();
    let (cs, ce) = (base + contents_start, base + contents_end);
    let ranges = [0, cs, ce, total - ce];
    let text = format!("[{} {} {} {}]", ranges[0], ranges[1], ranges[2], ranges[3]);
    let slot = &mut out[byte_range_at..byte_range_at + 36];
    if text.len() > slot.len() {
        return Err(Error::Pdf("the document is too large for a 10-digit byte range".into()));
    }
    slot.fill(b' ');
    slot[..text.len()].copy_from_slice(text.as_bytes());
    let mut h = digest.hasher();
    match original {
        None => {
            for chunk in pdf_bytes.chunks(1 << 20) {
                h.update(chunk);
            }
        }
        Some(r) => hash_exactly(&mut h, r, pdf_bytes.len())?,
    }
    h.update(&out[..contents_start]);
    h.update(&out[contents_end..]);
    let value = contents(&h.finish())?;
    if value.len() > reserved {
        return Err(Error::Sign(format!(
            "the signature ({} bytes) does not fit the reserved {} bytes",
            value.len(),
            reserved
        )));
    }
    let hex = &mut out[contents_start + 1..contents_end - 1];
    for (i, b) in value.iter().enumerate() {
        let s = format!("{b:02X}");
        hex[2 * i..2 * i + 2].copy_from_slice(s.as_bytes());
    }
    Ok(out)
}
