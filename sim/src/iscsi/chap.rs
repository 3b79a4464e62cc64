//! CHAP authentication (RFC 1994 §4.1, as profiled by RFC 7143 §12.1.3).
//!
//! The response to a challenge is `MD5(identifier || secret || challenge)` (CHAP_A=5).
//! The target sends `CHAP_A`, `CHAP_I` and `CHAP_C`; the initiator answers with
//! `CHAP_N` and `CHAP_R`, and for mutual CHAP adds its own `CHAP_I`/`CHAP_C`, which the
//! target answers with `CHAP_N`/`CHAP_R`. RFC 7143 §12.1.3 requires the target to refuse
//! a mutual challenge equal to the one it sent (reflection).

use md5::{Digest, Md5};

/// The CHAP algorithm number of MD5 (RFC 1994, IANA PPP authentication algorithms).
pub const CHAP_A_MD5: u32 = 5;
/// The challenge length we send, in bytes (RFC 7143 §12.1.3 recommends at least 16).
pub const CHALLENGE_LEN: usize = 16;

/// A CHAP name and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ChapCredentials {
    /// The CHAP_N name.
    pub name: String,
    /// The shared secret.
    pub secret: Vec<u8>,
}

impl core::fmt::Debug for ChapCredentials {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print secrets.
        f.debug_struct("ChapCredentials")
            .field("name", &self.name)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// CHAP configuration of a target (or of discovery sessions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChapConfig {
    /// What the initiator must present (one-way CHAP).
    pub initiator: ChapCredentials,
    /// What the target presents when the initiator asks for mutual CHAP.
    pub target: Option<ChapCredentials>,
}

/// `MD5(id || secret || challenge)`.
pub fn response(id: u8, secret: &[u8], challenge: &[u8]) -> [u8; 16] {
    let mut h = Md5::new();
    h.update([id]);
    h.update(secret);
    h.update(challenge);
    h.finalize().into()
}

/// Compares two byte strings without an early exit on the first difference.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    // RFC 1321 Appendix A.5 test suite.
    #[test]
    fn md5_rfc1321_vectors() {
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
        assert_eq!(hex(&md5(b"a")), "0cc175b9c0f1b6a831c399e269772661");
        assert_eq!(hex(&md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(
            hex(&md5(b"message digest")),
            "f96b697d7cb7938d525a2f31aaf161d0"
        );
        assert_eq!(
            hex(&md5(b"abcdefghijklmnopqrstuvwxyz")),
            "c3fcd3d76192e4007dfb496cca67e13b"
        );
    }

    #[test]
    fn chap_response_is_md5_of_id_secret_challenge() {
        let challenge = [0x11u8, 0x22, 0x33, 0x44];
        let r = response(7, b"secret", &challenge);
        let mut msg = vec![7u8];
        msg.extend_from_slice(b"secret");
        msg.extend_from_slice(&challenge);
        assert_eq!(r, md5(&msg));
        // Identifier 0, secret "abc", empty challenge = MD5("\0abc").
        assert_eq!(hex(&response(0, b"abc", &[])), hex(&md5(b"\0abc")));
        assert_ne!(response(1, b"secret", &challenge), r);
    }

    #[test]
    fn constant_time_compare() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
