//! Appending a revision to a PDF: new or replaced objects, then a
//! cross-reference section of the file's kind (table or stream) whose
//! trailer points back to the previous one. Earlier bytes never change.

use crate::Error;
use crate::keys::Digest;
use crate::pdf::{self, write_dict, write_object};
use lopdf::{Dictionary, Document, Object, ObjectId};
use std::io::Write;

pub(crate) struct Appender<'d> {
    pub doc: &'d Document,
    /// The new revision only: it goes after the file's `base` bytes.
    pub out: Vec<u8>,
    pub root: ObjectId,
    offsets: Vec<(ObjectId, usize)>,
    next: u32,
    startxref: usize,
    xref_stream: bool,
    original_len: usize,
    /// The file's last bytes (for a file identifier when it has none).
    tail: Vec<u8>,
}

impl<'d> Appender<'d> {
    pub fn new(pdf_bytes: &[u8], doc: &'d Document, extra: usize) -> Result<Appender<'d>, Error> {
        let startxref = pdf::last_startxref(pdf_bytes)?;
        let root = match doc.trailer.get(b"Root") {
            Ok(Object::Reference(id)) => *id,
            _ => return Err(Error::Pdf("the trailer has no /Root catalog".into())),
        };
        let size = doc.trailer.get(b"Size").ok().and_then(|s| s.as_i64().ok()).unwrap_or(0).max(0) as u32;
        let mut out = Vec::with_capacity(extra + 4096);
        if !pdf_bytes.ends_with(b"\n") {
            out.push(b'\n');
        }
        Ok(Appender {
            doc,
            out,
            root,
            offsets: Vec::new(),
            next: size.max(doc.max_id + 1),
            startxref,
            xref_stream: pdf::last_xref_is_stream(pdf_bytes, startxref),
            original_len: pdf_bytes.len(),
            tail: pdf_bytes[pdf_bytes.len().saturating_sub(4096)..].to_vec(),
        })
    }

    /// The offset in the whole file of what is written next.
    pub fn pos(&self) -> usize {
        self.original_len + self.out.len()
    }

    /// The length of the file this revision is appended to.
    pub fn base_len(&self) -> usize {
        self.original_len
    }

    pub fn alloc(&mut self) -> ObjectId {
        self.next += 1;
        (self.next - 1, 0)
    }

    pub fn begin(&mut self, id: ObjectId) {
        self.offsets.push((id, self.pos()));
        let _ = writeln!(self.out, "{} {} obj", id.0, id.1);
    }

    pub fn end(&mut self) {
        self.out.extend_from_slice(b"\nendobj\n");
    }

    pub fn object(&mut self, id: ObjectId, o: &Object) {
        self.begin(id);
        write_object(&mut self.out, o);
        self.end();
    }

    /// Writes the cross-reference section and trailer; returns the new
    /// revision (the bytes to append to the file).
    pub fn finish(mut self) -> Result<Vec<u8>, Error> {
        let mut trailer = Dictionary::new();
        trailer.set("Root", Object::Reference(self.root));
        if let Ok(info) = self.doc.trailer.get(b"Info") {
            trailer.set("Info", info.clone());
        }
        let id = match self.doc.trailer.get(b"ID") {
            Ok(Object::Array(a)) if a.len() == 2 => a.clone(),
            _ => {
                // A file identifier from the file's length and its tail (where
                // its cross-reference and trailer are): unique enough, and cheap.
                let h =
                    Digest::Sha256.hash(&[&self.original_len.to_be_bytes()[..], &self.tail].concat())[..16].to_vec();
                vec![
                    Object::String(h.clone(), lopdf::StringFormat::Hexadecimal),
                    Object::String(h, lopdf::StringFormat::Hexadecimal),
                ]
            }
        };
        trailer.set("ID", Object::Array(id));
        trailer.set("Prev", Object::Integer(self.startxref as i64));
        let xref_at;
        if self.xref_stream {
            let xs_id = self.alloc();
            self.offsets.push((xs_id, self.pos()));
            self.offsets.sort();
            let mut data = Vec::new();
            let mut index = Vec::new();
            for (id, off) in &self.offsets {
                let off = u32::try_from(*off).map_err(|_| Error::Pdf("the file is over 4 GB".into()))?;
                index.push(Object::Integer(i64::from(id.0)));
                index.push(Object::Integer(1));
                data.push(1u8);
                data.extend_from_slice(&off.to_be_bytes());
                data.extend_from_slice(&id.1.to_be_bytes());
            }
            trailer.set("Type", Object::Name(b"XRef".to_vec()));
            trailer.set("Size", Object::Integer(i64::from(self.next)));
            trailer.set("Index", Object::Array(index));
            trailer.set("W", Object::Array(vec![1.into(), 4.into(), 2.into()]));
            xref_at = self.pos();
            let _ = writeln!(self.out, "{} {} obj", xs_id.0, xs_id.1);
            write_object(&mut self.out, &Object::Stream(lopdf::Stream::new(trailer, data)));
            self.out.extend_from_slice(b"\nendobj\n");
        } else {
            self.offsets.sort();
            xref_at = self.pos();
            self.out.extend_from_slice(b"xref\n");
            let o = &self.offsets;
            let mut i = 0;
            while i < o.len() {
                let mut j = i;
                while j + 1 < o.len() && o[j + 1].0.0 == o[j].0.0 + 1 {
                    j += 1;
                }
                let _ = writeln!(self.out, "{} {}", o[i].0.0, j - i + 1);
                for (id, off) in &o[i..=j] {
                    let _ = write!(self.out, "{off:010} {:05} n\r\n", id.1);
                }
                i = j + 1;
            }
            trailer.set("Size", Object::Integer(i64::from(self.next)));
            self.out.extend_from_slice(b"trailer\n");
            write_dict(&mut self.out, &trailer);
            self.out.push(b'\n');
        }
        let _ = write!(self.out, "startxref\n{xref_at}\n%%EOF\n");
        Ok(self.out)
    }
}
