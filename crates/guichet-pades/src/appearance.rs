//! Visible signatures: an appearance stream drawn in the signature's
//! rectangle (a frame, optional image, lines of text), with the font
//! (DejaVu Sans) subset and embedded so that it prints and reads the same
//! everywhere, and extracts as text (ToUnicode).

use crate::Error;
use crate::revision::Appender;
use lopdf::{Dictionary, Object, ObjectId, Stream};
use std::fmt::Write as _;

/// The font shipped with guichet (Bitstream Vera licence, see fonts/).
static FONT: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");

/// Where and what to show.
#[derive(Debug, Clone, PartialEq)]
pub struct Visible<'a> {
    /// Page number, from 1; 0 for the last page.
    pub page: usize,
    /// Lower-left corner and size, in points.
    pub rect: [f32; 4],
    /// Lines of text (signer, date, reason…), drawn top to bottom.
    pub lines: Vec<String>,
    /// A JPEG image drawn at the left (a logo, a handwritten signature).
    pub image: Option<&'a [u8]>,
}

fn f(x: f32) -> String {
    let s = format!("{x:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// Width, height and colour components of a baseline or progressive JPEG.
fn jpeg_info(data: &[u8]) -> Result<(u32, u32, u8), Error> {
    if !data.starts_with(&[0xff, 0xd8]) {
        return Err(Error::Pdf("the signature image is not a JPEG file".into()));
    }
    let mut i = 2;
    while i + 9 < data.len() {
        if data[i] != 0xff {
            i += 1;
            continue;
        }
        let marker = data[i + 1];
        let len = usize::from(u16::from_be_bytes([data[i + 2], data[i + 3]]));
        if matches!(marker, 0xc0..=0xc2) {
            let h = u32::from(u16::from_be_bytes([data[i + 5], data[i + 6]]));
            let w = u32::from(u16::from_be_bytes([data[i + 7], data[i + 8]]));
            return Ok((w, h, data[i + 9]));
        }
        i += 2 + len;
    }
    Err(Error::Pdf("the JPEG image has no frame header".into()))
}

/// Writes the appearance (font, image, form XObject) and returns the form.
pub(crate) fn write(w: &mut Appender, v: &Visible) -> Result<ObjectId, Error> {
    let [_, _, width, height] = v.rect;
    if width < 10.0 || height < 10.0 {
        return Err(Error::Pdf("the signature rectangle is too small (at least 10 × 10 points)".into()));
    }
    let face = ttf_parser::Face::parse(FONT, 0).map_err(|e| Error::Pdf(format!("font: {e}")))?;
    let upem = f32::from(face.units_per_em());

    // Glyphs: old ids through the subsetter's remapper (.notdef stays 0).
    let mut mapper = subsetter::GlyphRemapper::new();
    mapper.remap(0);
    let mut used: Vec<(u16, u16, char, f32)> = Vec::new(); // new gid, old gid, char, advance
    let mut encoded_lines = Vec::new();
    let mut widest = 0f32;
    for line in &v.lines {
        let mut hex = String::new();
        let mut units = 0f32;
        for c in line.chars() {
            let old = face.glyph_index(c).map(|g| g.0).unwrap_or(0);
            let new = mapper.remap(old);
            let adv = f32::from(face.glyph_hor_advance(ttf_parser::GlyphId(old)).unwrap_or(0)) * 1000.0 / upem;
            if !used.iter().any(|(n, ..)| *n == new) {
                used.push((new, old, c, adv));
            }
            units += adv;
            let _ = write!(hex, "{new:04X}");
        }
        widest = widest.max(units);
        encoded_lines.push(hex);
    }
    let subset = subsetter::subset(FONT, 0, &mapper).map_err(|e| Error::Pdf(format!("font subset: {e:?}")))?;

    // Layout: the image (if any) on the left third, text on the rest.
    let image = match v.image {
        Some(jpeg) => Some((jpeg, jpeg_info(jpeg)?)),
        None => None,
    };
    let pad = 4.0;
    let text_x = if image.is_some() { width / 3.0 + pad } else { pad };
    let text_w = (width - text_x - pad).max(1.0);
    let n = v.lines.len().max(1) as f32;
    let mut size = ((height - 2.0 * pad) / (n * 1.25)).min(10.0);
    if widest > 0.0 {
        size = size.min(text_w * 1000.0 / widest);
    }
    let leading = size * 1.25;

    let mut content = String::new();
    let _ = writeln!(content, "q 0.96 0.97 1 rg 0 0 {} {} re f Q", f(width), f(height));
    let _ = writeln!(content, "q 0.1 0.2 0.5 RG 1 w 0.5 0.5 {} {} re S Q", f(width - 1.0), f(height - 1.0));
    if let Some((_, (iw, ih, _))) = &image {
        let box_w = width / 3.0 - pad;
        let box_h = height - 2.0 * pad;
        let scale = (box_w / *iw as f32).min(box_h / *ih as f32);
        let (dw, dh) = (*iw as f32 * scale, *ih as f32 * scale);
        let _ = writeln!(content, "q {} 0 0 {} {} {} cm /Im1 Do Q", f(dw), f(dh), f(pad), f((height - dh) / 2.0));
    }
    let _ = writeln!(
        content,
        "BT 0.05 0.1 0.3 rg /F1 {} Tf {} TL {} {} Td",
        f(size),
        f(leading),
        f(text_x),
        f(height - pad - size)
    );
    for (i, hex) in encoded_lines.iter().enumerate() {
        if i > 0 {
            content.push_str("T* ");
        }
        let _ = writeln!(content, "<{hex}> Tj");
    }
    content.push_str("ET\n");

    // The font objects: Type0 → CIDFontType2 → descriptor → subset file.
    let tag = "GUICHE+DejaVuSans";
    let file_id = w.alloc();
    let mut fd = Dictionary::new();
    fd.set("Length1", Object::Integer(subset.len() as i64));
    w.object(file_id, &Object::Stream(Stream::new(fd, subset)));
    let bbox = face.global_bounding_box();
    let scale = |x: i16| Object::Integer(i64::from(x) * 1000 / i64::from(face.units_per_em()));
    let desc_id = w.alloc();
    let mut desc = Dictionary::new();
    desc.set("Type", Object::Name(b"FontDescriptor".to_vec()));
    desc.set("FontName", Object::Name(tag.as_bytes().to_vec()));
    desc.set("Flags", Object::Integer(32));
    desc.set(
        "FontBBox",
        Object::Array(vec![scale(bbox.x_min), scale(bbox.y_min), scale(bbox.x_max), scale(bbox.y_max)]),
    );
    desc.set("ItalicAngle", Object::Integer(0));
    desc.set("Ascent", scale(face.ascender()));
    desc.set("Descent", scale(face.descender()));
    desc.set("CapHeight", scale(face.capital_height().unwrap_or(face.ascender())));
    desc.set("StemV", Object::Integer(80));
    desc.set("FontFile2", Object::Reference(file_id));
    w.object(desc_id, &Object::Dictionary(desc));
    used.sort_by_key(|(n, ..)| *n);
    let mut widths = Vec::new();
    for (new, _, _, adv) in &used {
        widths.push(Object::Integer(i64::from(*new)));
        widths.push(Object::Array(vec![Object::Integer(adv.round() as i64)]));
    }
    let cid_id = w.alloc();
    let mut cid = Dictionary::new();
    cid.set("Type", Object::Name(b"Font".to_vec()));
    cid.set("Subtype", Object::Name(b"CIDFontType2".to_vec()));
    cid.set("BaseFont", Object::Name(tag.as_bytes().to_vec()));
    let mut info = Dictionary::new();
    info.set("Registry", Object::String(b"Adobe".to_vec(), lopdf::StringFormat::Literal));
    info.set("Ordering", Object::String(b"Identity".to_vec(), lopdf::StringFormat::Literal));
    info.set("Supplement", Object::Integer(0));
    cid.set("CIDSystemInfo", Object::Dictionary(info));
    cid.set("FontDescriptor", Object::Reference(desc_id));
    cid.set("W", Object::Array(widths));
    cid.set("CIDToGIDMap", Object::Name(b"Identity".to_vec()));
    w.object(cid_id, &Object::Dictionary(cid));
    // ToUnicode: so that the text can be searched, copied and read aloud.
    let mut cmap = String::from(
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n",
    );
    let mapped: Vec<_> = used.iter().filter(|(n, ..)| *n != 0).collect();
    for chunk in mapped.chunks(100) {
        let _ = writeln!(cmap, "{} beginbfchar", chunk.len());
        for (new, _, c, _) in chunk {
            let mut buf = [0u16; 2];
            let units: String = c.encode_utf16(&mut buf).iter().map(|u| format!("{u:04X}")).collect();
            let _ = writeln!(cmap, "<{new:04X}> <{units}>");
        }
        cmap.push_str("endbfchar\n");
    }
    cmap.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    let tu_id = w.alloc();
    w.object(tu_id, &Object::Stream(Stream::new(Dictionary::new(), cmap.into_bytes())));
    let font_id = w.alloc();
    let mut font = Dictionary::new();
    font.set("Type", Object::Name(b"Font".to_vec()));
    font.set("Subtype", Object::Name(b"Type0".to_vec()));
    font.set("BaseFont", Object::Name(tag.as_bytes().to_vec()));
    font.set("Encoding", Object::Name(b"Identity-H".to_vec()));
    font.set("DescendantFonts", Object::Array(vec![Object::Reference(cid_id)]));
    font.set("ToUnicode", Object::Reference(tu_id));
    w.object(font_id, &Object::Dictionary(font));

    let mut resources = Dictionary::new();
    let mut fonts = Dictionary::new();
    fonts.set("F1", Object::Reference(font_id));
    resources.set("Font", Object::Dictionary(fonts));
    if let Some((jpeg, (iw, ih, comps))) = image {
        let img_id = w.alloc();
        let mut d = Dictionary::new();
        d.set("Type", Object::Name(b"XObject".to_vec()));
        d.set("Subtype", Object::Name(b"Image".to_vec()));
        d.set("Width", Object::Integer(i64::from(iw)));
        d.set("Height", Object::Integer(i64::from(ih)));
        let cs: &[u8] = match comps {
            1 => b"DeviceGray",
            4 => b"DeviceCMYK",
            _ => b"DeviceRGB",
        };
        d.set("ColorSpace", Object::Name(cs.to_vec()));
        d.set("BitsPerComponent", Object::Integer(8));
        d.set("Filter", Object::Name(b"DCTDecode".to_vec()));
        w.object(img_id, &Object::Stream(Stream::new(d, jpeg.to_vec())));
        let mut xo = Dictionary::new();
        xo.set("Im1", Object::Reference(img_id));
        resources.set("XObject", Object::Dictionary(xo));
    }
    let form_id = w.alloc();
    let mut form = Dictionary::new();
    form.set("Type", Object::Name(b"XObject".to_vec()));
    form.set("Subtype", Object::Name(b"Form".to_vec()));
    form.set("BBox", Object::Array(vec![0.into(), 0.into(), Object::Real(width), Object::Real(height)]));
    form.set("Resources", Object::Dictionary(resources));
    w.object(form_id, &Object::Stream(Stream::new(form, content.into_bytes())));
    Ok(form_id)
}
