//! CRC32C header and data digests (RFC 7143 §12.1, Appendix A.1 test vectors in
//! RFC 3720 Appendix B.4).
//!
//! The digest is the CRC32C (Castagnoli) of the covered bytes, sent least-significant
//! byte first: for 32 zero bytes the CRC is `0x8a9136aa` and the wire bytes are
//! `aa 36 91 8a`. The header digest covers the BHS and AHS; the data digest covers the
//! data segment including its padding. The `crc32c` crate uses SSE4.2 when present.

/// Length of a digest on the wire.
pub const DIGEST_LEN: usize = 4;

/// CRC32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// CRC32C continued over more bytes.
pub fn crc32c_append(crc: u32, data: &[u8]) -> u32 {
    crc32c::crc32c_append(crc, data)
}

/// The digest of a data segment plus its zero padding, as sent on the wire.
pub fn data_digest(data: &[u8]) -> [u8; DIGEST_LEN] {
    let pad = super::wire::pad4(data.len());
    let crc = crc32c_append(crc32c(data), &[0u8; 3][..pad]);
    crc.to_le_bytes()
}

/// The digest of a header (BHS + AHS), as sent on the wire.
pub fn header_digest(header: &[u8]) -> [u8; DIGEST_LEN] {
    crc32c(header).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 3720 Appendix B.4 "CRC Examples"; the bytes are the on-wire order.
    #[test]
    fn rfc3720_vectors() {
        assert_eq!(header_digest(&[0u8; 32]), [0xaa, 0x36, 0x91, 0x8a]);
        assert_eq!(header_digest(&[0xffu8; 32]), [0x43, 0xab, 0xa8, 0x62]);
        let inc: Vec<u8> = (0u8..32).collect();
        assert_eq!(header_digest(&inc), [0x4e, 0x79, 0xdd, 0x46]);
        let dec: Vec<u8> = (0u8..32).rev().collect();
        assert_eq!(header_digest(&dec), [0x5c, 0xdb, 0x3f, 0x11]);
        // An iSCSI SCSI Read (10) command PDU.
        let pdu: [u8; 48] = [
            0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14,
            0x00, 0x00, 0x00, 0x18, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        ];
        assert_eq!(header_digest(&pdu), [0x56, 0x3a, 0x96, 0xd9]);
    }

    #[test]
    fn check_value_and_padding() {
        // The standard CRC-32C check value.
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
        // A 5-byte segment is digested with 3 pad bytes of zero.
        let mut padded = b"abcde".to_vec();
        padded.extend_from_slice(&[0, 0, 0]);
        assert_eq!(data_digest(b"abcde"), crc32c(&padded).to_le_bytes());
        assert_eq!(data_digest(b"abcd"), crc32c(b"abcd").to_le_bytes());
    }
}
