//! FC frames as the fabric carries them, and a buffer pool so the data path does not
//! allocate per frame.

use rscst_fw::WireError;
use rscst_fw::fc::header::FC_HEADER_LEN;
use rscst_fw::fc::{Eof, FcFrameRepr, FcHeaderRepr, Sof};

/// Largest frame: header + 2112 bytes of payload.
pub const MAX_FRAME_LEN: usize = FC_HEADER_LEN + rscst_fw::fc::header::FC_MAX_PAYLOAD;

/// One FC frame on a link: delimiters, header + payload bytes, and the CRC the sender
/// computed (only when something looks at it: a pcap capture or a corruption fault — the
/// receiver checks it when present).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Start of frame.
    pub sof: Sof,
    /// End of frame.
    pub eof: Eof,
    /// Header (24 bytes) + payload (padded to 4 bytes; F_CTL says how much fill).
    pub bytes: Vec<u8>,
    /// CRC-32 of `bytes` as transmitted.
    pub crc: Option<u32>,
}

impl Frame {
    /// The parsed header.
    pub fn header(&self) -> Result<FcHeaderRepr, WireError> {
        FcHeaderRepr::parse_bytes(&self.bytes)
    }

    /// The payload without fill bytes (empty if the frame is shorter than a header).
    pub fn payload(&self) -> &[u8] {
        let body = self.bytes.get(FC_HEADER_LEN..).unwrap_or(&[]);
        let fill = self
            .bytes
            .get(9 + 2)
            .map(|b| (b & 3) as usize)
            .unwrap_or(0)
            .min(body.len());
        &body[..body.len() - fill]
    }

    /// `true` if the stored CRC (when present) matches the bytes.
    pub fn crc_ok(&self) -> bool {
        match self.crc {
            Some(c) => rscst_fw::fc::crc32(&self.bytes) == c,
            None => true,
        }
    }

    /// The decoded frame (for traces and tests).
    pub fn decode(&self) -> Result<FcFrameRepr<'_>, WireError> {
        FcFrameRepr::parse(&self.bytes)
    }
}

/// A free list of frame buffers.
#[derive(Debug, Default)]
pub(crate) struct FramePool {
    free: Vec<Vec<u8>>,
}

impl FramePool {
    pub(crate) fn get(&mut self) -> Vec<u8> {
        match self.free.pop() {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(MAX_FRAME_LEN),
        }
    }

    pub(crate) fn put(&mut self, v: Vec<u8>) {
        if self.free.len() < 4096 && v.capacity() >= 64 {
            self.free.push(v);
        }
    }

    /// A frame with a typed payload.
    pub(crate) fn build(
        &mut self,
        sof: Sof,
        eof: Eof,
        repr: &FcFrameRepr<'_>,
    ) -> Result<Frame, WireError> {
        let mut bytes = self.get();
        bytes.resize(repr.buffer_len(), 0);
        let n = repr.emit(&mut bytes)?;
        bytes.truncate(n);
        Ok(Frame {
            sof,
            eof,
            bytes,
            crc: None,
        })
    }

    /// A frame whose payload of `payload_len` bytes the caller fills in `bytes[24..24 +
    /// payload_len]` (fill bytes to a multiple of 4 are zeroed and counted in F_CTL).
    pub(crate) fn build_raw(
        &mut self,
        sof: Sof,
        eof: Eof,
        header: &FcHeaderRepr,
        payload_len: usize,
    ) -> Result<Frame, WireError> {
        let mut bytes = self.get();
        let padded = payload_len.next_multiple_of(4);
        bytes.resize(FC_HEADER_LEN + padded, 0);
        let mut h = *header;
        h.f_ctl = h.f_ctl.with_fill_bytes((padded - payload_len) as u8);
        h.emit_bytes(&mut bytes[..FC_HEADER_LEN])?;
        Ok(Frame {
            sof,
            eof,
            bytes,
            crc: None,
        })
    }
}
