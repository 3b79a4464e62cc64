//! Any queue entry: dispatch on the entry-type byte (and the direction), for tools, traces and
//! fuzzing. Drivers and simulators that know what they expect call the specific `parse`.

use core::fmt;

use crate::WireError;
use crate::error::need;
use crate::iocb::abts::{AbtsRecvRepr, AbtsRespCompletionRepr, AbtsRespRepr};
use crate::iocb::atio7::{Atio7, Atio7Repr};
use crate::iocb::continuation::ContinueA64Repr;
use crate::iocb::ctio_crc2::{CtioCrc2CompletionRepr, CtioCrc2Repr};
use crate::iocb::ctio7::{Ctio7CompletionRepr, Ctio7Repr};
use crate::iocb::immed_notify::ImmedNotifyRepr;
use crate::iocb::loginout::{LoginoutCompletionRepr, LoginoutRepr};
use crate::iocb::marker::MarkerRepr;
use crate::iocb::mbx_iocb::MbxIocbRepr;
use crate::iocb::notify_ack::{NotifyAckCompletionRepr, NotifyAckRepr};
use crate::iocb::status_cont::StatusContRepr;
use crate::iocb::{ENTRY_LEN, EntryType};
use crate::value::{FieldVisitor, Visit};

/// Which way an entry travels; it picks the request or the returned form of the entry types
/// that have both (CTIO7, CTIO_CRC2, NOTIFY_ACK, ABTS_RESP, LOGINOUT).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Dir {
    /// Driver → firmware (request queue).
    Request,
    /// Firmware → driver (response or ATIO queue).
    Response,
}

/// Any decoded entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(clippy::large_enum_variant)]
pub enum AnyEntry {
    /// 0x06.
    Atio7(Atio7Repr),
    /// 0x0D.
    ImmedNotify(ImmedNotifyRepr),
    /// 0x54.
    AbtsRecv(AbtsRecvRepr),
    /// 0x12, request.
    Ctio7(Ctio7Repr),
    /// 0x12, returned.
    Ctio7Completion(Ctio7CompletionRepr),
    /// 0x7A, request.
    CtioCrc2(CtioCrc2Repr),
    /// 0x7A, returned.
    CtioCrc2Completion(CtioCrc2CompletionRepr),
    /// 0x0E, request.
    NotifyAck(NotifyAckRepr),
    /// 0x0E, returned.
    NotifyAckCompletion(NotifyAckCompletionRepr),
    /// 0x55, request.
    AbtsResp(AbtsRespRepr),
    /// 0x55, returned.
    AbtsRespCompletion(AbtsRespCompletionRepr),
    /// 0x04 (either direction).
    Marker(MarkerRepr),
    /// 0x10.
    StatusCont(StatusContRepr),
    /// 0x0A.
    ContinueA64(ContinueA64Repr),
    /// 0x52, request.
    Loginout(LoginoutRepr),
    /// 0x52, returned.
    LoginoutCompletion(LoginoutCompletionRepr),
    /// 0x39 (either direction).
    MbxIocb(MbxIocbRepr),
}

macro_rules! each {
    ($self:ident, $r:ident => $e:expr) => {
        match $self {
            AnyEntry::Atio7($r) => $e,
            AnyEntry::ImmedNotify($r) => $e,
            AnyEntry::AbtsRecv($r) => $e,
            AnyEntry::Ctio7($r) => $e,
            AnyEntry::Ctio7Completion($r) => $e,
            AnyEntry::CtioCrc2($r) => $e,
            AnyEntry::CtioCrc2Completion($r) => $e,
            AnyEntry::NotifyAck($r) => $e,
            AnyEntry::NotifyAckCompletion($r) => $e,
            AnyEntry::AbtsResp($r) => $e,
            AnyEntry::AbtsRespCompletion($r) => $e,
            AnyEntry::Marker($r) => $e,
            AnyEntry::StatusCont($r) => $e,
            AnyEntry::ContinueA64($r) => $e,
            AnyEntry::Loginout($r) => $e,
            AnyEntry::LoginoutCompletion($r) => $e,
            AnyEntry::MbxIocb($r) => $e,
        }
    };
}

impl AnyEntry {
    /// Decodes the entry at the start of `b` (64 bytes, more for a multi-slot ATIO). Never
    /// panics. Entry types this crate knows but does not decode (initiator and NPIV entries)
    /// are [`WireError::Unsupported`]; others [`WireError::UnknownEntryType`].
    pub fn parse(b: &[u8], dir: Dir) -> Result<AnyEntry, WireError> {
        need(ENTRY_LEN, b.len())?;
        let t = EntryType::from(b[0]);
        let req = dir == Dir::Request;
        Ok(match t {
            EntryType::Atio7 => AnyEntry::Atio7(Atio7Repr::parse_bytes(b)?),
            EntryType::ImmedNotify => AnyEntry::ImmedNotify(ImmedNotifyRepr::parse_bytes(b)?),
            EntryType::AbtsRecv => AnyEntry::AbtsRecv(AbtsRecvRepr::parse_bytes(b)?),
            EntryType::Ctio7 if req => AnyEntry::Ctio7(Ctio7Repr::parse_bytes(b)?),
            EntryType::Ctio7 => AnyEntry::Ctio7Completion(Ctio7CompletionRepr::parse_bytes(b)?),
            EntryType::CtioCrc2 if req => AnyEntry::CtioCrc2(CtioCrc2Repr::parse_bytes(b)?),
            EntryType::CtioCrc2 => {
                AnyEntry::CtioCrc2Completion(CtioCrc2CompletionRepr::parse_bytes(b)?)
            }
            EntryType::NotifyAck if req => AnyEntry::NotifyAck(NotifyAckRepr::parse_bytes(b)?),
            EntryType::NotifyAck => {
                AnyEntry::NotifyAckCompletion(NotifyAckCompletionRepr::parse_bytes(b)?)
            }
            EntryType::AbtsResp if req => AnyEntry::AbtsResp(AbtsRespRepr::parse_bytes(b)?),
            EntryType::AbtsResp => {
                AnyEntry::AbtsRespCompletion(AbtsRespCompletionRepr::parse_bytes(b)?)
            }
            EntryType::Marker => AnyEntry::Marker(MarkerRepr::parse_bytes(b)?),
            EntryType::StatusCont => AnyEntry::StatusCont(StatusContRepr::parse_bytes(b)?),
            EntryType::ContinueA64 => AnyEntry::ContinueA64(ContinueA64Repr::parse_bytes(b)?),
            EntryType::Loginout if req => AnyEntry::Loginout(LoginoutRepr::parse_bytes(b)?),
            EntryType::Loginout => {
                AnyEntry::LoginoutCompletion(LoginoutCompletionRepr::parse_bytes(b)?)
            }
            EntryType::MbxIocb => AnyEntry::MbxIocb(MbxIocbRepr::parse_bytes(b)?),
            EntryType::Unknown(x) => return Err(WireError::UnknownEntryType(x)),
            known => return Err(WireError::Unsupported(known.name().unwrap_or("entry type"))),
        })
    }

    /// The entry type.
    pub fn entry_type(&self) -> EntryType {
        match self {
            AnyEntry::Atio7(_) => EntryType::Atio7,
            AnyEntry::ImmedNotify(_) => EntryType::ImmedNotify,
            AnyEntry::AbtsRecv(_) => EntryType::AbtsRecv,
            AnyEntry::Ctio7(_) | AnyEntry::Ctio7Completion(_) => EntryType::Ctio7,
            AnyEntry::CtioCrc2(_) | AnyEntry::CtioCrc2Completion(_) => EntryType::CtioCrc2,
            AnyEntry::NotifyAck(_) | AnyEntry::NotifyAckCompletion(_) => EntryType::NotifyAck,
            AnyEntry::AbtsResp(_) | AnyEntry::AbtsRespCompletion(_) => EntryType::AbtsResp,
            AnyEntry::Marker(_) => EntryType::Marker,
            AnyEntry::StatusCont(_) => EntryType::StatusCont,
            AnyEntry::ContinueA64(_) => EntryType::ContinueA64,
            AnyEntry::Loginout(_) | AnyEntry::LoginoutCompletion(_) => EntryType::Loginout,
            AnyEntry::MbxIocb(_) => EntryType::MbxIocb,
        }
    }

    /// Bytes [`emit`](Self::emit) writes (64, more for a multi-slot ATIO).
    pub fn buffer_len(&self) -> usize {
        match self {
            AnyEntry::Atio7(r) => r.buffer_len(),
            _ => ENTRY_LEN,
        }
    }

    /// Writes the entry; returns the bytes written.
    pub fn emit(&self, b: &mut [u8]) -> Result<usize, WireError> {
        each!(self, r => r.emit_bytes(b))?;
        Ok(self.buffer_len())
    }
}

impl fmt::Display for AnyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        each!(self, r => fmt::Display::fmt(r, f))
    }
}

impl Visit for AnyEntry {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        each!(self, r => r.visit(v))
    }
}

/// Walks a buffer of consecutive ring slots (as `rscst decode` gets them), yielding each
/// entry and its bytes. An ATIO advances by its `entry_count` slots, every other entry by
/// one slot (a CTIO7's continuations are entries of their own). Stops after the first error.
#[derive(Debug, Clone)]
pub struct EntryIter<'a> {
    buf: &'a [u8],
    dir: Dir,
    failed: bool,
}

impl<'a> EntryIter<'a> {
    /// Iterates the entries of `buf`.
    pub fn new(buf: &'a [u8], dir: Dir) -> EntryIter<'a> {
        EntryIter {
            buf,
            dir,
            failed: false,
        }
    }
}

impl<'a> Iterator for EntryIter<'a> {
    type Item = Result<(AnyEntry, &'a [u8]), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() || self.failed {
            return None;
        }
        match AnyEntry::parse(self.buf, self.dir) {
            Ok(e) => {
                let slots = match e {
                    AnyEntry::Atio7(_) => {
                        Atio7::new_unchecked(self.buf).entry_count().max(1) as usize
                    }
                    _ => 1,
                };
                let n = (slots * ENTRY_LEN).min(self.buf.len());
                let (this, rest) = self.buf.split_at(n);
                self.buf = rest;
                Some(Ok((e, this)))
            }
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::iocb::abts::tests::recv_bytes;
    use crate::iocb::atio7::tests::GOLDEN as ATIO;
    use crate::iocb::immed_notify::tests::plogi_bytes;
    use crate::value::test_util::Collect;
    use std::string::ToString;
    use std::vec::Vec;

    #[test]
    fn dispatch_by_type_and_direction() {
        assert!(matches!(
            AnyEntry::parse(&ATIO, Dir::Response),
            Ok(AnyEntry::Atio7(_))
        ));
        assert!(matches!(
            AnyEntry::parse(&plogi_bytes(), Dir::Response),
            Ok(AnyEntry::ImmedNotify(_))
        ));
        assert!(matches!(
            AnyEntry::parse(&recv_bytes(), Dir::Response),
            Ok(AnyEntry::AbtsRecv(_))
        ));
        let mut ctio = [0u8; 64];
        ctio[0] = 0x12;
        ctio[1] = 1;
        assert!(matches!(
            AnyEntry::parse(&ctio, Dir::Request),
            Ok(AnyEntry::Ctio7(_))
        ));
        assert!(matches!(
            AnyEntry::parse(&ctio, Dir::Response),
            Ok(AnyEntry::Ctio7Completion(_))
        ));
        let mut e = [0u8; 64];
        for (t, req, resp) in [
            (0x7Au8, "CtioCrc2", "CtioCrc2Completion"),
            (0x0E, "NotifyAck", "NotifyAckCompletion"),
            (0x52, "Loginout", "LoginoutCompletion"),
            (0x04, "Marker", "Marker"),
            (0x10, "StatusCont", "StatusCont"),
            (0x0A, "ContinueA64", "ContinueA64"),
            (0x39, "MbxIocb", "MbxIocb"),
        ] {
            e[0] = t;
            let a = AnyEntry::parse(&e, Dir::Request).unwrap();
            let b = AnyEntry::parse(&e, Dir::Response).unwrap();
            assert!(std::format!("{a:?}").starts_with(req), "{a:?}");
            assert!(std::format!("{b:?}").starts_with(resp), "{b:?}");
            assert_eq!(u8::from(a.entry_type()), t);
            assert_eq!(u8::from(b.entry_type()), t);
            let mut out = [0u8; 64];
            assert_eq!(a.emit(&mut out).unwrap(), 64);
            assert_eq!(AnyEntry::parse(&out, Dir::Request).unwrap(), a);
            Collect::of(&a).assert_unique();
            Collect::of(&b).assert_unique();
            assert!(!a.to_string().is_empty() && !b.to_string().is_empty());
        }
        e[0] = 0x03;
        assert_eq!(
            AnyEntry::parse(&e, Dir::Response),
            Err(WireError::Unsupported("STATUS"))
        );
        e[0] = 0xEE;
        assert_eq!(
            AnyEntry::parse(&e, Dir::Response),
            Err(WireError::UnknownEntryType(0xEE))
        );
        assert!(AnyEntry::parse(&e[..10], Dir::Response).is_err());
        // ABTS_RESP: an all-zero body has R_CTL 0, which is malformed for a request.
        e[0] = 0x55;
        assert!(AnyEntry::parse(&e, Dir::Request).is_err());
        assert!(matches!(
            AnyEntry::parse(&e, Dir::Response),
            Ok(AnyEntry::AbtsRespCompletion(_))
        ));
    }

    #[test]
    fn iterates_multi_slot_buffers() {
        // CTIO7 + CONTINUE_A64 + ATIO.
        let mut b = [0u8; 192];
        b[0] = 0x12;
        b[1] = 2;
        b[64] = 0x0A;
        b[65] = 1;
        b[128..].copy_from_slice(&ATIO);
        let v: Vec<_> = EntryIter::new(&b, Dir::Request)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[0].0.entry_type(), EntryType::Ctio7);
        assert_eq!(v[1].0.entry_type(), EntryType::ContinueA64);
        assert_eq!(v[2].0.entry_type(), EntryType::Atio7);
        assert_eq!(v[2].1.len(), 64);
        // An error stops the walk.
        let mut bad = b;
        bad[64] = 0xEE;
        let r: Vec<_> = EntryIter::new(&bad, Dir::Request).collect();
        assert_eq!(r.len(), 2);
        assert!(r[1].is_err());
        assert_eq!(EntryIter::new(&[], Dir::Request).count(), 0);
    }
}
