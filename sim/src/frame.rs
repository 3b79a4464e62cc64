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
    /// The header the sender emitted into `bytes` (so the fabric and the receiver do
    /// not parse it again); `None` once the bytes may differ (a corruption fault).
    pub(crate) hdr: Option<FcHeaderRepr>,
}

impl Frame {
    /// The parsed header.
    #[inline]
    pub fn header(&self) -> Result<FcHeaderRepr, WireError> {
        match self.hdr {
            Some(h) => Ok(h),
            None => FcHeaderRepr::parse_bytes(&self.bytes),
        }
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

    /// Where [`Frame::payload`] lies in `bytes`.
    pub(crate) fn payload_range(&self) -> core::ops::Range<usize> {
        let start = FC_HEADER_LEN.min(self.bytes.len());
        let body = self.bytes.len() - start;
        let fill = self
            .bytes
            .get(9 + 2)
            .map(|b| (b & 3) as usize)
            .unwrap_or(0)
            .min(body);
        start..self.bytes.len() - fill
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

/// A delivered FCP_DATA frame handed whole to an initiator port's handler
/// ([`crate::initiator::InitiatorHandler::on_data_frame`]), which may keep it and pass
/// the payload on later without copying it; the buffer goes back to the simulation's
/// frame pool when the handler is done ([`crate::Sim::recycle_data_frame`]).
#[derive(Debug)]
pub struct DataFrame {
    bytes: Vec<u8>,
    payload: core::ops::Range<usize>,
}

impl DataFrame {
    pub(crate) fn new(frame: Frame) -> DataFrame {
        let payload = frame.payload_range();
        DataFrame {
            bytes: frame.bytes,
            payload,
        }
    }

    /// The frame's payload (the read data it carries).
    pub fn payload(&self) -> &[u8] {
        self.bytes.get(self.payload.clone()).unwrap_or(&[])
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Buffers at least this long when freed go to the data frames' list.
const LONG: usize = 1024;

/// Free lists of frame buffers. A buffer keeps the length of its last frame; data
/// frames ([`FramePool::build_data`]) take long ones first, so that growing one back to
/// a full frame does not zero a payload about to be overwritten; the other frames
/// (built zeroed) take short ones first.
#[derive(Debug, Default)]
pub(crate) struct FramePool {
    free: Vec<Vec<u8>>,
    long: Vec<Vec<u8>>,
}

impl FramePool {
    pub(crate) fn get(&mut self) -> Vec<u8> {
        match self.free.pop().or_else(|| self.long.pop()) {
            Some(mut v) => {
                v.clear();
                v
            }
            None => Vec::with_capacity(MAX_FRAME_LEN),
        }
    }

    pub(crate) fn put(&mut self, v: Vec<u8>) {
        let list = if v.len() >= LONG {
            &mut self.long
        } else {
            &mut self.free
        };
        if list.len() < 4096 && v.capacity() >= 64 {
            list.push(v);
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
        // What was emitted: the header with the fill bits emit put in F_CTL.
        let mut h = repr.header;
        h.f_ctl = h.f_ctl.with_fill_bytes(bytes.get(11).map_or(0, |b| b & 3));
        debug_assert_eq!(FcHeaderRepr::parse_bytes(&bytes).ok(), Some(h));
        let hdr = Some(h);
        Ok(Frame {
            sof,
            eof,
            bytes,
            crc: None,
            hdr,
        })
    }

    /// A frame whose payload of `payload_len` bytes the caller fills in `bytes[24..24 +
    /// payload_len]` (zeroed here; fill bytes to a multiple of 4 are zeroed and counted in
    /// F_CTL).
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
        Self::finish_raw(bytes, sof, eof, header, payload_len)
    }

    /// [`FramePool::build_raw`] for a caller that overwrites every payload byte (data
    /// frames): the payload is not zeroed first (it holds an earlier frame's bytes until
    /// the caller fills it); the fill bytes are.
    pub(crate) fn build_data(
        &mut self,
        sof: Sof,
        eof: Eof,
        header: &FcHeaderRepr,
        payload_len: usize,
    ) -> Result<Frame, WireError> {
        let mut bytes = self
            .long
            .pop()
            .or_else(|| self.free.pop())
            .unwrap_or_default();
        let padded = payload_len.next_multiple_of(4);
        let n = FC_HEADER_LEN + padded;
        if bytes.len() >= n {
            bytes.truncate(n);
        } else {
            bytes.reserve(MAX_FRAME_LEN.max(n) - bytes.len());
            bytes.resize(n, 0);
        }
        if padded > payload_len {
            bytes[FC_HEADER_LEN + payload_len..].fill(0);
        }
        Self::finish_raw(bytes, sof, eof, header, payload_len)
    }

    fn finish_raw(
        mut bytes: Vec<u8>,
        sof: Sof,
        eof: Eof,
        header: &FcHeaderRepr,
        payload_len: usize,
    ) -> Result<Frame, WireError> {
        let padded = payload_len.next_multiple_of(4);
        let mut h = *header;
        h.f_ctl = h.f_ctl.with_fill_bytes((padded - payload_len) as u8);
        h.emit_bytes(&mut bytes[..FC_HEADER_LEN])?;
        debug_assert_eq!(FcHeaderRepr::parse_bytes(&bytes).ok(), Some(h));
        Ok(Frame {
            sof,
            eof,
            bytes,
            crc: None,
            hdr: Some(h),
        })
    }
}
