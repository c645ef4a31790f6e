//! RFC 6238 time-based one-time passwords (HMAC-SHA-1, 6 digits, 30 s),
//! as authenticator apps expect, and RFC 4648 base32 for their secrets.

use aws_lc_rs::hmac;

/// The 6-digit code of `secret` for the 30-second step containing `unix`.
pub fn totp_code(secret: &[u8], unix: i64) -> String {
    let counter = (unix.max(0) / 30) as u64;
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let h = tag.as_ref();
    let off = (h[19] & 0x0f) as usize;
    let bin = (u32::from(h[off] & 0x7f) << 24)
        | (u32::from(h[off + 1]) << 16)
        | (u32::from(h[off + 2]) << 8)
        | u32::from(h[off + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// Whether `code` is valid now, one step early or late (clock drift).
pub(crate) fn totp_check(secret: &[u8], code: &str, unix: i64) -> bool {
    let code = code.trim();
    [-30, 0, 30].iter().any(|d| {
        let want = totp_code(secret, unix + d);
        aws_lc_rs::constant_time::verify_slices_are_equal(want.as_bytes(), code.as_bytes()).is_ok()
    })
}

/// RFC 4648 base32, no padding (what `otpauth://` URIs carry).
pub fn base32(bytes: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for b in bytes {
        buf = (buf << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

pub(crate) fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let (mut buf, mut bits, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').chars().filter(|c| !c.is_whitespace()) {
        let v = match c.to_ascii_uppercase() {
            c @ 'A'..='Z' => c as u32 - 'A' as u32,
            c @ '2'..='7' => c as u32 - '2' as u32 + 26,
            _ => return None,
        };
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            out.push((buf >> (bits - 8)) as u8);
            bits -= 8;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B (SHA-1 rows; 8 digits there, the last 6 here).
    #[test]
    fn rfc_6238_vectors() {
        let secret = b"12345678901234567890";
        for (t, code) in
            [(59, "94287082"), (1111111109, "07081804"), (1234567890, "89005924"), (2000000000, "69279037")]
        {
            assert_eq!(totp_code(secret, t), code[2..], "t={t}");
        }
        assert!(totp_check(secret, "287082", 59 + 30));
        assert!(!totp_check(secret, "287082", 59 + 90));
    }

    #[test]
    fn base32_round_trips_rfc_4648_vectors() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(base32(b"fo"), "MZXQ");
        assert_eq!(base32_decode("MZXW6YTBOI").as_deref(), Some(&b"foobar"[..]));
        assert_eq!(base32_decode("mzxq====").as_deref(), Some(&b"fo"[..]));
        assert!(base32_decode("1").is_none());
    }
}
