//! Text keys: the `key=value` pairs of Login and Text PDUs (RFC 7143 §6, §13).
//!
//! A data segment is a sequence of `key=value` strings, each terminated by a NUL
//! (RFC 7143 §6.1). Keys are at most 63 bytes of letters, digits, `.`, `-`, `+`, `@`
//! and `_` (§6.1, "standard-label"); values are UTF-8, at most 255 bytes except where a
//! key allows more (CHAP and SendTargets responses use up to 8192, §6.1). Binary values
//! use `0x` hex or `0b` base64 (§6.1 "binary-value").

use core::fmt;

/// The longest key name (RFC 7143 §6.1).
pub const MAX_KEY_LEN: usize = 63;
/// The longest value we accept (the largest any key allows, RFC 7143 §6.1).
pub const MAX_VALUE_LEN: usize = 8192;

/// A malformed text segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    /// A pair has no `=`.
    MissingEquals,
    /// A key is empty, too long or uses a forbidden character.
    BadKey,
    /// A value is too long or not UTF-8.
    BadValue,
    /// The same key appears twice in one negotiation (RFC 7143 §6.2).
    Duplicate(String),
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::MissingEquals => f.write_str("key without '='"),
            TextError::BadKey => f.write_str("invalid key name"),
            TextError::BadValue => f.write_str("invalid value"),
            TextError::Duplicate(k) => write!(f, "key {k} sent twice"),
        }
    }
}

impl std::error::Error for TextError {}

fn key_ok(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= MAX_KEY_LEN
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'@' | b'_'))
}

/// Parses a text data segment into `(key, value)` pairs in order. Empty strings between
/// NULs are skipped; a missing final NUL is tolerated. Duplicate keys are an error.
pub fn parse(data: &[u8]) -> Result<Vec<(String, String)>, TextError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for item in data.split(|&b| b == 0) {
        if item.is_empty() {
            continue;
        }
        let eq = item
            .iter()
            .position(|&b| b == b'=')
            .ok_or(TextError::MissingEquals)?;
        let key = core::str::from_utf8(&item[..eq]).map_err(|_| TextError::BadKey)?;
        if !key_ok(key) {
            return Err(TextError::BadKey);
        }
        let value_bytes = &item[eq + 1..];
        if value_bytes.len() > MAX_VALUE_LEN {
            return Err(TextError::BadValue);
        }
        let value = core::str::from_utf8(value_bytes).map_err(|_| TextError::BadValue)?;
        if out.iter().any(|(k, _)| k == key) {
            return Err(TextError::Duplicate(key.to_owned()));
        }
        out.push((key.to_owned(), value.to_owned()));
    }
    Ok(out)
}

/// Appends `key=value\0` to `out`.
pub fn push(out: &mut Vec<u8>, key: &str, value: &str) {
    out.extend_from_slice(key.as_bytes());
    out.push(b'=');
    out.extend_from_slice(value.as_bytes());
    out.push(0);
}

/// Parses a numerical value: decimal, or `0x` hex (RFC 7143 §6.1 "numerical-value";
/// base64 numbers are not used by any initiator we know and are refused).
pub fn parse_number(v: &str) -> Option<u64> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        if hex.is_empty() || hex.len() > 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok()
    } else {
        if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        v.parse().ok()
    }
}

/// Parses a boolean value (`Yes`/`No`, RFC 7143 §6.1 "boolean-value").
pub fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "Yes" => Some(true),
        "No" => Some(false),
        _ => None,
    }
}

/// Formats a boolean value.
pub fn bool_str(b: bool) -> &'static str {
    if b { "Yes" } else { "No" }
}

/// Decodes a binary value: `0x`/`0X` hex or `0b`/`0B` base64 (RFC 7143 §6.1).
pub fn decode_binary(v: &str) -> Option<Vec<u8>> {
    if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        decode_hex(hex)
    } else if let Some(b64) = v.strip_prefix("0b").or_else(|| v.strip_prefix("0B")) {
        decode_base64(b64)
    } else {
        None
    }
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    // An odd number of digits has an implied leading zero (RFC 7143 §6.1).
    let mut out = Vec::with_capacity(b.len().div_ceil(2));
    let (first, rest) = if b.len() % 2 == 1 {
        (Some(hex_val(b[0])?), &b[1..])
    } else {
        (None, b)
    };
    if let Some(v) = first {
        out.push(v);
    }
    for pair in rest.chunks_exact(2) {
        out.push((hex_val(pair[0])? << 4) | hex_val(pair[1])?);
    }
    Some(out)
}

fn decode_base64(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let b = s.trim_end_matches('=').as_bytes();
    if b.is_empty() || b.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() * 3 / 4);
    for chunk in b.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

/// Encodes bytes as an upper-case `0x` hex binary value.
pub fn encode_hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(2 + bytes.len() * 2);
    s.push_str("0x");
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let kv = parse(b"InitiatorName=iqn.x\0SessionType=Normal\0\0").unwrap();
        assert_eq!(kv.len(), 2);
        assert_eq!(kv[0], ("InitiatorName".into(), "iqn.x".into()));
        assert_eq!(kv[1], ("SessionType".into(), "Normal".into()));
        // Missing final NUL tolerated, empty value allowed.
        let kv = parse(b"SendTargets=").unwrap();
        assert_eq!(kv, vec![("SendTargets".into(), String::new())]);
    }

    #[test]
    fn rejects_bad_text() {
        assert_eq!(parse(b"NoEquals\0"), Err(TextError::MissingEquals));
        assert_eq!(parse(b"=v\0"), Err(TextError::BadKey));
        assert_eq!(parse(b"Bad Key=v\0"), Err(TextError::BadKey));
        assert_eq!(parse(b"K=\xff\0"), Err(TextError::BadValue));
        assert_eq!(parse(b"A=1\0A=2\0"), Err(TextError::Duplicate("A".into())));
        let long_key = format!("{}=1", "k".repeat(64));
        assert_eq!(parse(long_key.as_bytes()), Err(TextError::BadKey));
    }

    #[test]
    fn numbers_and_bools() {
        assert_eq!(parse_number("262144"), Some(262_144));
        assert_eq!(parse_number("0x10"), Some(16));
        assert_eq!(parse_number(""), None);
        assert_eq!(parse_number("12a"), None);
        assert_eq!(parse_number("-1"), None);
        assert_eq!(parse_bool("Yes"), Some(true));
        assert_eq!(parse_bool("no"), None);
    }

    #[test]
    fn binary_values() {
        assert_eq!(decode_binary("0x0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_binary("0xabc"), Some(vec![0x0a, 0xbc]));
        assert_eq!(decode_binary("0bAQID"), Some(vec![1, 2, 3]));
        assert_eq!(decode_binary("0bAQI="), Some(vec![1, 2]));
        assert_eq!(decode_binary("0x"), None);
        assert_eq!(decode_binary("0xzz"), None);
        assert_eq!(decode_binary("abcd"), None);
        assert_eq!(encode_hex(&[0x01, 0xab]), "0x01ab");
    }
}
