//! The program's version: SHA-256 over a canonical form of the file.
//!
//! The canonical form is the parsed TOML written back in document order
//! with one spelling per value: comments, whitespace, quoting styles and
//! inline-versus-header tables do not change the version; anything that
//! changes meaning, or the order of questions, does.

use sha2::{Digest, Sha256};
use std::fmt::Write;

fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_value(out: &mut String, v: &toml::Value) {
    match v {
        toml::Value::String(s) => write_str(out, s),
        toml::Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        toml::Value::Float(f) => {
            let _ = write!(out, "{f:?}");
        }
        toml::Value::Boolean(b) => {
            let _ = write!(out, "{b}");
        }
        toml::Value::Datetime(d) => {
            let _ = write!(out, "d{d}");
        }
        toml::Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(out, x);
            }
            out.push(']');
        }
        toml::Value::Table(t) => {
            out.push('{');
            for (i, (k, x)) in t.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, k);
                out.push(':');
                write_value(out, x);
            }
            out.push('}');
        }
    }
}

/// The canonical text of a program file (valid TOML assumed; on a parse
/// error the raw text is hashed, which `load` rejects anyway).
pub fn canonical(src: &str) -> String {
    match toml::from_str::<toml::Table>(src) {
        Ok(t) => {
            let mut out = String::with_capacity(src.len());
            write_value(&mut out, &toml::Value::Table(t));
            out
        }
        Err(_) => src.to_owned(),
    }
}

/// Hex SHA-256 of the canonical form.
pub fn version(src: &str) -> String {
    let digest = Sha256::digest(canonical(src).as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest.iter() {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_and_comments_do_not_change_the_version() {
        let a = "id = \"x\" # c\n[t]\na = 1\nb = 'two'\n";
        let b = "id=\"x\"\nt = { a = 1, b = \"two\" }\n";
        assert_eq!(version(a), version(b));
    }

    #[test]
    fn meaning_and_order_change_the_version() {
        assert_ne!(version("a = 1\nb = 2\n"), version("b = 2\na = 1\n"));
        assert_ne!(version("a = 1\n"), version("a = 2\n"));
        assert_ne!(version("a = \"1\"\n"), version("a = 1\n"));
    }
}
