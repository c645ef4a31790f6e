//! Long-term validation data (PAdES B-LT): a Document Security Store with
//! the certificates, CRLs and OCSP responses a validator needs years from
//! now, without going online.

use crate::Error;
use crate::pdf;
use crate::revision::Appender;
use lopdf::{Dictionary, Object, ObjectId, Stream};

/// What to store: DER certificates, CRLs and OCSP responses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ValidationData {
    pub certs: Vec<Vec<u8>>,
    pub crls: Vec<Vec<u8>>,
    pub ocsps: Vec<Vec<u8>>,
}

fn sha1_hex(data: &[u8]) -> String {
    crate::keys::sha1(data).iter().map(|b| format!("{b:02X}")).collect()
}

/// Adds (or extends) the `/DSS` of the catalog in a new revision, with a
/// `/VRI` entry for every signature of the file. Items already stored are
/// not stored twice.
pub fn add_dss(pdf_bytes: &[u8], data: &ValidationData) -> Result<Vec<u8>, Error> {
    let update = add_dss_update(pdf_bytes, data)?;
    Ok(crate::sign::appended(pdf_bytes, &update))
}

/// [`add_dss`], returning only the new revision.
pub fn add_dss_update(pdf_bytes: &[u8], data: &ValidationData) -> Result<Vec<u8>, Error> {
    // The structure, with the small streams' contents (the DSS's items).
    let doc = pdf::load_structure(pdf_bytes)?;
    let mut w =
        Appender::new(pdf_bytes, &doc, data.certs.iter().chain(&data.crls).chain(&data.ocsps).map(Vec::len).sum())?;
    let root = w.root;
    let mut catalog = doc.get_dictionary(root).map_err(|e| Error::Pdf(format!("unreadable catalog: {e}")))?.clone();
    let mut dss = match catalog.get(b"DSS") {
        Ok(o) => pdf::dict(&doc, o).map(|(_, d)| d.clone()).unwrap_or_default(),
        Err(_) => Dictionary::new(),
    };
    let refs_for = |key: &'static [u8], items: &[Vec<u8>], w: &mut Appender| -> Vec<(Vec<u8>, Object)> {
        // What is already there, by content.
        let mut have: Vec<(Vec<u8>, Object)> = pdf::stream_array_in(pdf_bytes, &doc, &dss, key)
            .into_iter()
            .map(|(c, id)| (c, Object::Reference(id)))
            .collect();
        for item in items {
            if have.iter().any(|(c, _)| c == item) {
                continue;
            }
            let id: ObjectId = w.alloc();
            w.object(id, &Object::Stream(Stream::new(Dictionary::new(), item.clone())));
            have.push((item.clone(), Object::Reference(id)));
        }
        have
    };
    let certs = refs_for(b"Certs", &data.certs, &mut w);
    let crls = refs_for(b"CRLs", &data.crls, &mut w);
    let ocsps = refs_for(b"OCSPs", &data.ocsps, &mut w);
    let list = |v: &[(Vec<u8>, Object)]| Object::Array(v.iter().map(|(_, o)| o.clone()).collect());
    // Each kind under its DSS name and its VRI name, when there is any.
    let kinds = [("Certs", "Cert", &certs), ("CRLs", "CRL", &crls), ("OCSPs", "OCSP", &ocsps)];
    for (dss_key, _, items) in kinds {
        if !items.is_empty() {
            dss.set(dss_key, list(items));
        }
    }
    // VRI: per signature (keyed by the SHA-1 of its /Contents), the same
    // material.
    let mut vri = match dss.get(b"VRI") {
        Ok(o) => pdf::dict(&doc, o).map(|(_, d)| d.clone()).unwrap_or_default(),
        Err(_) => Dictionary::new(),
    };
    for o in doc.objects.values() {
        let Ok(d) = o.as_dict() else { continue };
        if !d.has(b"ByteRange") {
            continue;
        }
        let Some(contents) = d.get(b"Contents").ok().and_then(|c| c.as_str().ok()) else { continue };
        let mut entry = Dictionary::new();
        for (_, vri_key, items) in kinds {
            if !items.is_empty() {
                entry.set(vri_key, list(items));
            }
        }
        vri.set(sha1_hex(contents), Object::Dictionary(entry));
    }
    dss.set("VRI", Object::Dictionary(vri));
    let dss_id = w.alloc();
    w.object(dss_id, &Object::Dictionary(dss));
    catalog.set("DSS", Object::Reference(dss_id));
    w.object(root, &Object::Dictionary(catalog));
    w.finish()
}
