//! The PDF side: reading what signing and validation need (through
//! lopdf), and writing objects for an incremental update.

use crate::Error;
use lopdf::{Dictionary, Document, Object, ObjectId, StringFormat};
use std::io::Write;

/// Parses a PDF (or a prefix of one: an earlier revision).
pub(crate) fn load(bytes: &[u8]) -> Result<Document, Error> {
    load_with(bytes, lopdf::LoadOptions::default())
}

/// Streams shorter than this keep their contents in a structure (the
/// DSS's certificates, CRLs and OCSP responses are read from it).
const SMALL_STREAM: usize = 64 * 1024;

/// Parses a PDF's structure for an incremental update: every object, but
/// the large streams without their contents (page contents, images,
/// fonts…), which the update never rewrites. Object and cross-reference
/// streams are kept (the loader needs them). A 200 MB file of scanned
/// pages then takes a few megabytes, not hundreds.
pub(crate) fn load_structure(bytes: &[u8]) -> Result<Document, Error> {
    // lopdf keeps the object changed in place, except for the objects of
    // object streams, for which it keeps the one returned: both are the
    // same (a stream's dictionary without content clones cheaply).
    fn drop_contents(id: ObjectId, o: &mut Object) -> Option<(ObjectId, Object)> {
        if let Object::Stream(s) = o
            && !s.dict.has_type(b"ObjStm")
            && !s.dict.has_type(b"XRef")
            && s.content.len() >= SMALL_STREAM
        {
            s.content = Vec::new();
            // Not to be read again from the file as a stream whose length
            // came later.
            s.start_position = None;
        }
        Some((id, o.clone()))
    }
    load_with(bytes, lopdf::LoadOptions::with_filter(drop_contents))
}

fn load_with(bytes: &[u8], options: lopdf::LoadOptions) -> Result<Document, Error> {
    if !bytes.starts_with(b"%PDF-") {
        let head = bytes.iter().take(64).position(|b| *b == b'%');
        if head.is_none() || !bytes.windows(5).take(1024).any(|w| w == b"%PDF-") {
            return Err(Error::Pdf("this is not a PDF file (no %PDF- header)".into()));
        }
    }
    // A complete file ends with %%EOF (readers tolerate a little after it).
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    if memchr::memmem::find(tail, b"%%EOF").is_none() {
        return Err(Error::Pdf("no %%EOF at the end: the file is truncated".into()));
    }
    let doc = Document::load_mem_with_options(bytes, options).map_err(|e| {
        let text = e.to_string();
        if text.to_lowercase().contains("decrypt") || text.to_lowercase().contains("password") {
            Error::Encrypted
        } else {
            Error::Pdf(text)
        }
    })?;
    // lopdf decrypts files with an empty password on load: refuse those
    // too, an incremental update would mix clear and encrypted objects.
    if doc.is_encrypted() || doc.was_encrypted() {
        return Err(Error::Encrypted);
    }
    Ok(doc)
}

/// Reads a PDF of `len` bytes and returns its *structure image*: the same
/// length and offsets, every byte copied except the contents of large
/// streams with a direct `/Length` (not object or cross-reference
/// streams), left zero. The buffer is allocated zeroed and those parts are
/// never written, so the system does not back them with memory: a 200 MB
/// file of scanned pages takes a few megabytes. `extra` bytes of capacity
/// are left for revisions to be appended (zeroed, untouched). A stream
/// whose length cannot be read from its dictionary is copied whole: never
/// a wrong skip (the parser reads lengths the same way).
pub fn structure_image(r: &mut dyn std::io::Read, len: usize, extra: usize) -> Result<Vec<u8>, Error> {
    let changed = || Error::Pdf("the file changed while it was read".into());
    let mut out = vec![0u8; len + extra];
    // `pos`: bytes of the file placed so far (copied, or skipped and left
    // zero); `text_from`: where the text since the last skipped stream
    // starts (to read a dictionary back); `skip`: stream bytes still to skip.
    let (mut pos, mut text_from, mut skip) = (0usize, 0usize, 0usize);
    let advance = |pos: &mut usize, by: usize| -> Result<usize, Error> {
        *pos = pos.checked_add(by).filter(|e| *e <= len).ok_or_else(changed)?;
        Ok(*pos)
    };
    // Bytes read and not placed yet.
    let (mut chunk, mut buf) = (vec![0u8; 1 << 20], Vec::new());
    let mut eof = false;
    while !eof {
        let n = r.read(&mut chunk).map_err(|e| Error::Pdf(format!("reading the file: {e}")))?;
        buf.extend_from_slice(&chunk[..n]);
        eof = n == 0;
        let mut at = 0usize;
        loop {
            if skip > 0 {
                let k = skip.min(buf.len() - at);
                advance(&mut pos, k)?;
                (at, skip) = (at + k, skip - k);
                if skip > 0 {
                    break;
                }
                text_from = pos;
            }
            let p = &buf[at..];
            let Some(k) = memchr::memmem::find(p, b"stream") else {
                // Keep the last bytes: the keyword may straddle two reads.
                let take = p.len() - if eof { 0 } else { p.len().min(7) };
                let from = pos;
                out[from..advance(&mut pos, take)?].copy_from_slice(&p[..take]);
                at += take;
                break;
            };
            let head = k + 6;
            let eol = match (p.get(head), p.get(head + 1)) {
                (Some(b'\n'), _) => Some(head + 1),
                (Some(b'\r'), Some(b'\n')) => Some(head + 2),
                // Decide with the next read.
                (None, _) | (Some(b'\r'), None) if !eof => {
                    let from = pos;
                    out[from..advance(&mut pos, k)?].copy_from_slice(&p[..k]);
                    at += k;
                    break;
                }
                _ => None,
            };
            let take = eol.unwrap_or(head);
            let from = pos;
            out[from..advance(&mut pos, take)?].copy_from_slice(&p[..take]);
            at += take;
            if eol.is_some()
                && let Some(n) = skippable_length(&out[text_from.max(pos.saturating_sub(65_536))..pos])
            {
                skip = n;
            }
        }
        buf.drain(..at);
    }
    if pos != len || skip > 0 || !buf.is_empty() {
        return Err(changed());
    }
    out.truncate(len);
    Ok(out)
}

/// The direct `/Length` of a large ordinary stream whose dictionary ends
/// `text` (`… << … >> stream`), or None (copy it).
fn skippable_length(text: &[u8]) -> Option<usize> {
    let t = text.trim_ascii_end().strip_suffix(b"stream")?.trim_ascii_end();
    let t = t.strip_suffix(b">>")?;
    let obj = memchr::memmem::rfind(t, b" obj")?;
    let dict = &t[obj..];
    if memchr::memmem::find(dict, b"/ObjStm").is_some() || memchr::memmem::find(dict, b"/XRef").is_some() {
        return None;
    }
    let at = memchr::memmem::rfind(dict, b"/Length")?;
    let rest = &dict[at + 7..];
    let rest = rest.trim_ascii_start();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let n: usize = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    // "/Length 12 0 R" is indirect: not read here.
    let after = rest[digits..].trim_ascii_start();
    if after.first().is_some_and(u8::is_ascii_digit) {
        return None;
    }
    (n >= SMALL_STREAM).then_some(n)
}

/// The offset given by the last `startxref`.
pub(crate) fn last_startxref(bytes: &[u8]) -> Result<usize, Error> {
    let tail_start = bytes.len().saturating_sub(2048);
    let tail = &bytes[tail_start..];
    let pos = tail
        .windows(9)
        .rposition(|w| w == b"startxref")
        .ok_or_else(|| Error::Pdf("no `startxref` at the end of the file (truncated?)".into()))?;
    let rest = &tail[pos + 9..];
    let digits: Vec<u8> =
        rest.iter().skip_while(|b| b.is_ascii_whitespace()).take_while(|b| b.is_ascii_digit()).copied().collect();
    std::str::from_utf8(&digits)
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|off: &usize| *off < bytes.len())
        .ok_or_else(|| Error::Pdf("the `startxref` offset is not a valid position".into()))
}

/// Whether the last cross-reference section is a stream (PDF 1.5+).
pub(crate) fn last_xref_is_stream(bytes: &[u8], startxref: usize) -> bool {
    !bytes[startxref..].starts_with(b"xref")
}

/// Offsets just past each `%%EOF` marker: the ends of the revisions.
pub(crate) fn revision_ends(bytes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    for p in memchr::memmem::find_iter(bytes, b"%%EOF") {
        let mut end = p + 5;
        // The end-of-line after %%EOF belongs to the revision.
        if bytes.get(end) == Some(&b'\r') {
            end += 1;
        }
        if bytes.get(end) == Some(&b'\n') {
            end += 1;
        }
        out.push(end);
    }
    out
}

pub(crate) fn write_name(out: &mut Vec<u8>, name: &[u8]) {
    out.push(b'/');
    for &c in name {
        if c.is_ascii_graphic() && !b"()<>[]{}/%#".contains(&c) {
            out.push(c);
        } else {
            let _ = write!(out, "#{c:02X}");
        }
    }
}

pub(crate) fn write_string(out: &mut Vec<u8>, s: &[u8], format: StringFormat) {
    match format {
        StringFormat::Hexadecimal => {
            out.push(b'<');
            for b in s {
                let _ = write!(out, "{b:02X}");
            }
            out.push(b'>');
        }
        StringFormat::Literal => {
            out.push(b'(');
            for &c in s {
                match c {
                    b'(' | b')' | b'\\' => {
                        out.push(b'\\');
                        out.push(c);
                    }
                    b'\r' => out.extend_from_slice(b"\\r"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    _ => out.push(c),
                }
            }
            out.push(b')');
        }
    }
}

/// A text string: PDFDocEncoding-compatible ASCII as is, anything else as
/// UTF-16BE with a byte order mark.
pub(crate) fn text_string(s: &str) -> Object {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Object::String(s.as_bytes().to_vec(), StringFormat::Literal)
    } else {
        let mut v = vec![0xfe, 0xff];
        for u in s.encode_utf16() {
            v.extend_from_slice(&u.to_be_bytes());
        }
        Object::String(v, StringFormat::Hexadecimal)
    }
}

pub(crate) fn write_object(out: &mut Vec<u8>, o: &Object) {
    match o {
        Object::Null => out.extend_from_slice(b"null"),
        Object::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Object::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Object::Real(r) => {
            let _ = write!(out, "{}", if r.fract() == 0.0 { format!("{r:.1}") } else { format!("{r}") });
        }
        Object::Name(n) => write_name(out, n),
        Object::String(s, f) => write_string(out, s, *f),
        Object::Array(a) => {
            out.push(b'[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_object(out, x);
            }
            out.push(b']');
        }
        Object::Dictionary(d) => write_dict(out, d),
        Object::Stream(s) => {
            let mut d = s.dict.clone();
            d.set("Length", Object::Integer(s.content.len() as i64));
            write_dict(out, &d);
            out.extend_from_slice(b"\nstream\n");
            out.extend_from_slice(&s.content);
            out.extend_from_slice(b"\nendstream");
        }
        Object::Reference((n, g)) => {
            let _ = write!(out, "{n} {g} R");
        }
    }
}

pub(crate) fn write_dict(out: &mut Vec<u8>, d: &Dictionary) {
    out.extend_from_slice(b"<<");
    for (k, v) in d.iter() {
        write_name(out, k);
        out.push(b' ');
        write_object(out, v);
    }
    out.extend_from_slice(b">>");
}

/// Resolves a reference to its dictionary (or returns the inline one).
pub(crate) fn dict<'a>(doc: &'a Document, o: &'a Object) -> Option<(Option<ObjectId>, &'a Dictionary)> {
    match o {
        Object::Reference(id) => doc.get_dictionary(*id).ok().map(|d| (Some(*id), d)),
        Object::Dictionary(d) => Some((None, d)),
        _ => None,
    }
}

/// The streams listed under `key` in `dict` (an array, inline or by
/// reference), as used by the DSS: each one's content, decoded when it
/// can be, with its object number. Entries that are not references to
/// streams are skipped.
/// [`stream_array`] on a document from [`load_structure`]: a large stream
/// it left without content is read from `bytes` (the file it was loaded
/// from), so a 100 KB CRL already in the DSS is recognised as such.
pub(crate) fn stream_array_in(bytes: &[u8], doc: &Document, dict: &Dictionary, key: &[u8]) -> Vec<(Vec<u8>, ObjectId)> {
    stream_array(doc, dict, key)
        .into_iter()
        .map(|(content, id)| {
            if !content.is_empty() {
                return (content, id);
            }
            let full = doc
                .get_object(id)
                .ok()
                .and_then(|o| o.as_stream().ok())
                .and_then(|s| dropped_content(bytes, doc, id, s));
            (full.unwrap_or(content), id)
        })
        .collect()
}

/// The content of stream `id` as the file holds it at its cross-reference
/// offset (decoded when it can be): None if the object is not found there.
fn dropped_content(bytes: &[u8], doc: &Document, id: ObjectId, s: &lopdf::Stream) -> Option<Vec<u8>> {
    let lopdf::xref::XrefEntry::Normal { offset, .. } = doc.reference_table.get(id.0)? else { return None };
    let len = match s.dict.get(b"Length").ok()? {
        Object::Integer(n) => usize::try_from(*n).ok()?,
        Object::Reference(r) => usize::try_from(doc.get_object(*r).ok()?.as_i64().ok()?).ok()?,
        _ => return None,
    };
    let from = usize::try_from(*offset).ok()?;
    let head = bytes.get(from..)?;
    let header = format!("{} {} obj", id.0, id.1);
    let skip = head.iter().take_while(|b| b.is_ascii_whitespace()).count();
    if !head[skip..].starts_with(header.as_bytes()) {
        return None;
    }
    // The data starts after the `stream` keyword and its end of line
    // (LF or CR LF), as `structure_image` reads it.
    let body = &head[skip..];
    let start = memchr::memmem::find_iter(body, b"stream").find_map(|k| match (body.get(k + 6), body.get(k + 7)) {
        (Some(b'\n'), _) => Some(k + 7),
        (Some(b'\r'), Some(b'\n')) => Some(k + 8),
        _ => None,
    })?;
    let start = from + skip + start;
    let stream = lopdf::Stream::new(s.dict.clone(), bytes.get(start..start.checked_add(len)?)?.to_vec());
    Some(stream.decompressed_content().unwrap_or(stream.content))
}

pub(crate) fn stream_array(doc: &Document, dict: &Dictionary, key: &[u8]) -> Vec<(Vec<u8>, ObjectId)> {
    let list: &[Object] = match dict.get(key) {
        Ok(Object::Array(a)) => a,
        Ok(Object::Reference(r)) => doc.get_object(*r).ok().and_then(|o| o.as_array().ok()).map_or(&[], |a| a),
        _ => &[],
    };
    list.iter()
        .filter_map(|o| {
            let id = o.as_reference().ok()?;
            let s = doc.get_object(id).ok()?.as_stream().ok()?;
            Some((s.decompressed_content().unwrap_or_else(|_| s.content.clone()), id))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(dict: &str, len: usize, fill: u8) -> Vec<u8> {
        let mut v = format!("{dict}\nstream\n").into_bytes();
        v.extend(std::iter::repeat_n(fill, len));
        v.extend_from_slice(b"\nendstream\nendobj\n");
        v
    }

    /// A reader that hands out `n` bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let k = self.1.min(buf.len()).min(self.0.len());
            buf[..k].copy_from_slice(&self.0[..k]);
            self.0 = &self.0[k..];
            Ok(k)
        }
    }

    #[test]
    fn structure_images_leave_out_large_ordinary_streams_only() {
        let big = 70_000;
        let mut file = b"%PDF-1.7\n".to_vec();
        let parts = [
            ("1 0 obj <</Length 70000>>", big, b'a', true),
            ("2 0 obj <</Type/ObjStm/N 1/First 4/Length 70000>>", big, b'b', false),
            ("3 0 obj <</Length 9 0 R>>", big, b'c', false),
            ("4 0 obj <</Length 10>>", 10, b'd', false),
            ("5 0 obj\r\n<< /Filter /DCTDecode /Length  70000 >>", big, b'e', true),
        ];
        let mut ranges = Vec::new();
        for (dict, len, fill, skipped) in parts {
            let s = stream(dict, len, fill);
            let start = file.len() + dict.len() + "\nstream\n".len();
            ranges.push((start..start + len, skipped));
            file.extend_from_slice(&s);
        }
        file.extend_from_slice(b"trailer <<>>\nstartxref\n0\n%%EOF\n");
        for step in [1 << 20, 7, 1] {
            let image = structure_image(&mut Trickle(&file, step), file.len(), 0).expect("image");
            assert_eq!(image.len(), file.len());
            for (range, skipped) in &ranges {
                let zeros = image[range.clone()].iter().all(|b| *b == 0);
                assert_eq!(zeros, *skipped, "reads of {step}: {range:?}");
            }
            let outside = (0..file.len()).filter(|i| !ranges.iter().any(|(r, s)| *s && r.contains(i)));
            assert!(outside.into_iter().all(|i| image[i] == file[i]), "reads of {step}");
        }
        // A file that is not the length announced: an error, not a guess.
        assert!(structure_image(&mut Trickle(&file, 1 << 20), file.len() + 1, 0).is_err());
        assert!(structure_image(&mut Trickle(&file, 1 << 20), file.len() - 1, 0).is_err());
    }
}
