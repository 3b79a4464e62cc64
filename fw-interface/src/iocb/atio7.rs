//! ATIO_TYPE7 (0x06): a received FCP_CMND, firmware → driver on the ATIO queue.
//!
//! Source: reference §7.2 (layout), §6.3 (the ATIO ring and its signature), §9.1 (command
//! arrival), gotchas 1, 4, 6, 7. Bytes 0x00–0x07 are little-endian; the FC header (0x08) and
//! the FCP_CMND (0x20) are big-endian wire bytes. With an additional CDB (n dwords) FCP_DL sits
//! at `0x3C + 4n` and the entry spans `ceil((0x40 + 4n) / 64)` slots: give the parser the
//! slots as one contiguous buffer (whether a multi-slot ATIO may wrap the ring end is
//! unconfirmed; a driver copies the slots out in ring order either way).

use core::fmt;

use crate::error::need;
use crate::fc::fcp::{
    Cdb, DataDir, FCP_CMND_CDB_OFFSET, FCP_CMND_MIN_LEN, FcpCmnd, FcpCmndRepr, TaskAttr, TmFlags,
};
use crate::fc::header::{FC_HEADER_LEN, FCtl, FcHeader, FcHeaderRepr, FcType, RCtl};
use crate::iocb::{ENTRY_LEN, EntryType};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{ExchangeAddr, Lun, OxId, PortId, WireError};

/// Offset of the FC header.
pub const HEADER_OFFSET: usize = 0x08;
/// Offset of the FCP_CMND.
pub const FCP_CMND_OFFSET: usize = 0x20;
/// The smallest valid `fcp_cmnd_len` (24-byte header + 32-byte FCP_CMND); Linux treats a
/// smaller value as a corrupted ATIO and terminates its exchange.
pub const MIN_FCP_CMND_LEN: u16 = 0x38;

mod field {
    pub const ENTRY_TYPE: usize = 0x00;
    pub const ENTRY_COUNT: usize = 0x01;
    pub const ATTR_N_LENGTH: usize = 0x02;
    pub const EXCHANGE_ADDR: usize = 0x04;
}

/// A view of an ATIO7, possibly spanning several slots.
#[derive(Debug, Clone)]
pub struct Atio7<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Atio7<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Atio7<T> {
        Atio7 { buffer }
    }

    /// Wraps a buffer after [`check_len`](Self::check_len).
    pub fn new_checked(buffer: T) -> Result<Atio7<T>, WireError> {
        let v = Atio7::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// At least one 64-byte slot, and as many bytes as the additional CDB length needs.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        need(ENTRY_LEN, len)?;
        need(self.required_len(), len)
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// `0x40 + 4·add_cdb_len`: bytes up to and including FCP_DL.
    pub fn required_len(&self) -> usize {
        FCP_CMND_OFFSET + FCP_CMND_MIN_LEN + 4 * self.add_cdb_len() as usize
    }

    /// Slots the entry needs: `ceil(required_len / 64)`.
    pub fn slots_needed(&self) -> usize {
        self.required_len().div_ceil(ENTRY_LEN)
    }

    accessors! {
        /// 0x00 raw (0x06).
        entry_type_raw, set_entry_type_raw, field::ENTRY_TYPE, u8;
        /// 0x01: slots used.
        entry_count, set_entry_count, field::ENTRY_COUNT, u8;
        /// 0x02 (LE16): bits 0–11 FC header + FCP_CMND length, bits 12–15 attr.
        attr_n_length, set_attr_n_length, field::ATTR_N_LENGTH, le16;
        /// 0x04 (LE32): the firmware's exchange handle; 0xFFFFFFFF = none (answer BUSY).
        exchange_addr, set_exchange_addr, field::EXCHANGE_ADDR, le32 as ExchangeAddr;
    }

    /// 0x00.
    pub fn entry_type(&self) -> EntryType {
        EntryType::from(self.entry_type_raw())
    }

    /// Bits 0–11 of 0x02: FC header + FCP_CMND length (≥ 0x38).
    pub fn fcp_cmnd_len(&self) -> u16 {
        self.attr_n_length() & 0x0FFF
    }

    /// Bits 12–15 of 0x02: the attribute nibble, echoed into CTIO7 flags bits 9–12 (meaning
    /// unconfirmed).
    pub fn attr(&self) -> u8 {
        (self.attr_n_length() >> 12) as u8
    }

    /// Byte 0x2B bits 7–2: additional CDB length in dwords.
    pub fn add_cdb_len(&self) -> u8 {
        self.buffer.as_ref()[FCP_CMND_OFFSET + 11] >> 2
    }

    /// The FC header (0x08–0x1F).
    pub fn header(&self) -> FcHeader<&[u8]> {
        FcHeader::new_unchecked(&self.buffer.as_ref()[HEADER_OFFSET..HEADER_OFFSET + FC_HEADER_LEN])
    }

    /// The FCP_CMND (0x20 ..= FCP_DL).
    pub fn fcp_cmnd(&self) -> FcpCmnd<&[u8]> {
        FcpCmnd::new_unchecked(&self.buffer.as_ref()[FCP_CMND_OFFSET..self.required_len()])
    }

    /// FCP_DL.
    pub fn fcp_dl(&self) -> u32 {
        self.fcp_cmnd().fcp_dl()
    }

    /// The checks [`Atio7Repr::parse`] (and [`Atio7CmdRepr::parse`]) make: the length,
    /// the entry type, an `entry_count` covering the additional CDB, and an FCP_CMND
    /// length of at least 0x38 (smaller is Linux's "corrupted ATIO").
    #[inline]
    pub fn check(&self) -> Result<(), WireError> {
        self.check_len()?;
        if self.entry_type_raw() != u8::from(EntryType::Atio7) {
            return Err(WireError::WrongEntryType {
                expected: EntryType::Atio7.into(),
                found: self.entry_type_raw(),
            });
        }
        if (self.entry_count() as usize) < self.slots_needed() {
            return Err(WireError::Malformed(
                "ATIO entry_count too small for its additional CDB",
            ));
        }
        if self.fcp_cmnd_len() < MIN_FCP_CMND_LEN {
            return Err(WireError::Malformed(
                "ATIO FCP_CMND length < 0x38 (corrupted)",
            ));
        }
        Ok(())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Atio7<T> {
    /// Sets bits 0–11 of 0x02.
    pub fn set_fcp_cmnd_len(&mut self, v: u16) {
        let x = self.attr_n_length() & 0xF000 | v & 0x0FFF;
        self.set_attr_n_length(x)
    }

    /// Sets bits 12–15 of 0x02.
    pub fn set_attr(&mut self, v: u8) {
        let x = self.attr_n_length() & 0x0FFF | (v as u16 & 0xF) << 12;
        self.set_attr_n_length(x)
    }

    /// The FC header, writable.
    pub fn header_mut(&mut self) -> FcHeader<&mut [u8]> {
        FcHeader::new_unchecked(
            &mut self.buffer.as_mut()[HEADER_OFFSET..HEADER_OFFSET + FC_HEADER_LEN],
        )
    }

    /// Everything from the FCP_CMND on, writable.
    pub fn fcp_cmnd_mut(&mut self) -> FcpCmnd<&mut [u8]> {
        FcpCmnd::new_unchecked(&mut self.buffer.as_mut()[FCP_CMND_OFFSET..])
    }
}

/// A parsed ATIO7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Atio7Repr {
    /// The attribute nibble (0–15), echoed into every CTIO7 of the exchange.
    pub attr: u8,
    /// The exchange address (the command's identity).
    pub exchange_addr: ExchangeAddr,
    /// The FC header as received.
    pub header: FcHeaderRepr,
    /// The FCP_CMND.
    pub fcp: FcpCmndRepr,
}

impl Atio7Repr {
    /// An ATIO for an FCP_CMND from `s_id` to `d_id` with the usual header: R_CTL 0x06,
    /// TYPE FCP, F_CTL 0x290000, SEQ_ID 0, RX_ID 0xFFFF, attr 0.
    pub const fn new(
        exchange_addr: ExchangeAddr,
        s_id: PortId,
        d_id: PortId,
        ox_id: OxId,
        fcp: FcpCmndRepr,
    ) -> Self {
        Atio7Repr {
            attr: 0,
            exchange_addr,
            header: FcHeaderRepr::new(
                RCtl::UnsolCmd,
                FcType::Fcp,
                d_id,
                s_id,
                FCtl::FCP_CMND,
                ox_id,
            ),
            fcp,
        }
    }

    /// Parses an ATIO. Errors: wrong entry type; buffer or `entry_count` too short for the
    /// additional CDB; `fcp_cmnd_len` < 0x38 (the "corrupted ATIO" case — the view still
    /// gives the exchange address so the driver can terminate it).
    pub fn parse<T: AsRef<[u8]>>(a: &Atio7<T>) -> Result<Atio7Repr, WireError> {
        a.check()?;
        Ok(Atio7Repr {
            attr: a.attr(),
            exchange_addr: a.exchange_addr(),
            header: FcHeaderRepr::parse(&a.header())?,
            fcp: FcpCmndRepr::parse(&a.fcp_cmnd())?,
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<Atio7Repr, WireError> {
        Atio7Repr::parse(&Atio7::new_checked(b)?)
    }

    /// `0x40 + 4·n`: the bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        FCP_CMND_OFFSET + self.fcp.buffer_len()
    }

    /// Ring slots this ATIO occupies.
    pub fn slots(&self) -> usize {
        self.buffer_len().div_ceil(ENTRY_LEN)
    }

    /// Writes [`buffer_len`](Self::buffer_len) bytes (bytes after FCP_DL in the last slot
    /// are left alone).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, a: &mut Atio7<T>) -> Result<(), WireError> {
        need(self.buffer_len(), a.buffer.as_ref().len())?;
        a.set_entry_type_raw(EntryType::Atio7.into());
        a.set_entry_count(self.slots() as u8);
        let len = (FC_HEADER_LEN + self.fcp.buffer_len()) as u16;
        a.set_attr_n_length((self.attr as u16 & 0xF) << 12 | len);
        a.set_exchange_addr(self.exchange_addr);
        self.header.emit(&mut a.header_mut())?;
        self.fcp.emit(&mut a.fcp_cmnd_mut())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut Atio7::new_unchecked(b))
    }
}

impl fmt::Display for Atio7Repr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ATIO7 xchg={} s_id={} d_id={} ox_id={} ",
            self.exchange_addr, self.header.s_id, self.header.d_id, self.header.ox_id
        )?;
        self.fcp.fmt_fields(f)?;
        if self.attr != 0 {
            write!(f, " atio_attr={}", self.attr)?;
        }
        Ok(())
    }
}

impl Visit for Atio7Repr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::Atio7.to_value());
        v.field("entry_count", Value::U8(self.slots() as u8));
        v.field(
            "fcp_cmnd_len",
            Value::U16((FC_HEADER_LEN + self.fcp.buffer_len()) as u16),
        );
        v.field("attr", Value::U8(self.attr));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        self.header.visit_fields(v);
        self.fcp.visit_fields(v);
    }
}

/// An ATIO7 parsed for the command path: the fields a target needs to run the command,
/// with the CDB borrowed from the entry's bytes instead of copied.
///
/// [`Atio7Repr`] owns everything, so it carries a CDB buffer for the largest additional
/// CDB (268 bytes); moving that per command costs more than the rest of the parse. This
/// is the same parse — the same checks ([`Atio7::check`]) and the same values (the
/// tests hold the two against each other) — for a driver's hot path; the FC header is
/// reduced to what every CTIO7 of the exchange echoes (S_ID, OX_ID).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Atio7CmdRepr<'a> {
    /// The attribute nibble (0–15), echoed into every CTIO7 of the exchange.
    pub attr: u8,
    /// The exchange address (the command's identity).
    pub exchange_addr: ExchangeAddr,
    /// The FC header's S_ID: the initiator.
    pub s_id: PortId,
    /// The FC header's OX_ID.
    pub ox_id: OxId,
    /// FCP_LUN.
    pub lun: Lun,
    /// Command reference number.
    pub crn: u8,
    /// Task attribute.
    pub task_attr: TaskAttr,
    /// Priority (0–15).
    pub priority: u8,
    /// Task management flags; empty for a command.
    pub tmf: TmFlags,
    /// Direction from RDDATA/WRDATA.
    pub dir: DataDir,
    /// The CDB in FCP form (16 + 4·n bytes, as [`Cdb::as_slice`]).
    pub cdb: &'a [u8],
    /// FCP_DL: expected data length.
    pub data_len: u32,
}

impl<'a> Atio7CmdRepr<'a> {
    /// Parses an ATIO (the checks of [`Atio7Repr::parse`]).
    #[inline]
    pub fn parse(a: &Atio7<&'a [u8]>) -> Result<Atio7CmdRepr<'a>, WireError> {
        a.check()?;
        let b: &'a [u8] = a.buffer;
        // `check` made sure the buffer holds `required_len` bytes: the FCP_CMND with its
        // additional CDB and FCP_DL.
        let end = a.required_len();
        let fcp = FcpCmnd::new_unchecked(&b[FCP_CMND_OFFSET..end]);
        let h = a.header();
        Ok(Atio7CmdRepr {
            attr: a.attr(),
            exchange_addr: a.exchange_addr(),
            s_id: h.s_id(),
            ox_id: h.ox_id(),
            lun: fcp.lun(),
            crn: fcp.crn(),
            task_attr: fcp.task_attr(),
            priority: fcp.priority(),
            tmf: fcp.tm_flags(),
            dir: DataDir::from_bits(fcp.rddata(), fcp.wrdata()),
            cdb: &b[FCP_CMND_OFFSET + FCP_CMND_CDB_OFFSET..end - 4],
            data_len: crate::bytes::be32(b, end - 4),
        })
    }

    /// Parses bytes (never panics).
    #[inline]
    pub fn parse_bytes(b: &'a [u8]) -> Result<Atio7CmdRepr<'a>, WireError> {
        Atio7CmdRepr::parse(&Atio7::new_unchecked(b))
    }
}

impl fmt::Display for Atio7CmdRepr<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ATIO7 xchg={} s_id={} ox_id={} lun={} attr={}",
            self.exchange_addr, self.s_id, self.ox_id, self.lun, self.task_attr
        )?;
        if !self.tmf.is_empty() {
            write!(f, " tmf={}", self.tmf)?;
        }
        // The CDB as `Cdb` prints it: without its padding.
        let cdb = Cdb::new(self.cdb).unwrap_or_default();
        write!(f, " cdb={cdb} fcp_dl={} {}", self.data_len, self.dir)?;
        if self.crn != 0 {
            write!(f, " crn={}", self.crn)?;
        }
        if self.priority != 0 {
            write!(f, " prio={}", self.priority)?;
        }
        if self.attr != 0 {
            write!(f, " atio_attr={}", self.attr)?;
        }
        Ok(())
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Atio7CmdRepr<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "ATIO7 xchg={} s_id={} ox_id={} lun={} cdb={=[u8]:02x} fcp_dl={}",
            self.exchange_addr,
            self.s_id,
            self.ox_id,
            self.lun,
            self.cdb,
            self.data_len
        )
    }
}

view_display!(Atio7, Atio7Repr::parse, "ATIO7");

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use crate::fc::fcp::{Cdb, DataDir, TaskAttr, TmFlags};
    use crate::value::test_util::Collect;
    use crate::{Lun, RxId};
    use std::string::ToString;

    /// A READ(10) ATIO written by hand from reference §7.2, offset by offset.
    pub(crate) const GOLDEN: [u8; 64] = [
        0x06, // 0x00 entry_type ATIO7
        0x01, // 0x01 entry_count
        0x38, 0x10, // 0x02 attr_n_length: len 0x38, attr 1
        0x23, 0x01, 0x00, 0x00, // 0x04 exchange_addr 0x123 (LE)
        0x06, // 0x08 R_CTL unsolicited command
        0x0a, 0x0b, 0x0c, // 0x09 D_ID 0a0b0c
        0x00, // 0x0C CS_CTL
        0x01, 0x02, 0x03, // 0x0D S_ID 010203
        0x08, // 0x10 TYPE FCP
        0x29, 0x00, 0x00, // 0x11 F_CTL 0x290000
        0x00, // 0x14 SEQ_ID
        0x00, // 0x15 DF_CTL
        0x00, 0x00, // 0x16 SEQ_CNT
        0x12, 0x34, // 0x18 OX_ID (BE)
        0xff, 0xff, // 0x1A RX_ID
        0x00, 0x00, 0x00, 0x00, // 0x1C PARAMETER
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x20 FCP_LUN 0
        0x00, // 0x28 CRN
        0x00, // 0x29 task attribute SIMPLE
        0x00, // 0x2A TM flags
        0x02, // 0x2B add_cdb_len 0, RDDATA
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // 0x2C CDB READ(10) ...
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // ... 8 blocks
        0x00, 0x00, 0x10, 0x00, // 0x3C FCP_DL 4096 (BE)
    ];

    pub(crate) fn golden_repr() -> Atio7Repr {
        Atio7Repr {
            attr: 1,
            exchange_addr: ExchangeAddr(0x123),
            header: FcHeaderRepr::new(
                RCtl::UnsolCmd,
                FcType::Fcp,
                PortId::new(0x0a0b0c),
                PortId::new(0x010203),
                FCtl::FCP_CMND,
                OxId(0x1234),
            ),
            fcp: FcpCmndRepr {
                lun: Lun::default(),
                crn: 0,
                task_attr: TaskAttr::Simple,
                priority: 0,
                tmf: TmFlags::empty(),
                dir: DataDir::DataIn,
                cdb: Cdb::new(&[0x28, 0, 0, 0, 0, 0, 0, 0, 8, 0]).unwrap(),
                data_len: 4096,
            },
        }
    }

    #[test]
    fn golden_parse_every_field() {
        let a = Atio7::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(a.entry_type(), EntryType::Atio7);
        assert_eq!(
            (a.entry_count(), a.fcp_cmnd_len(), a.attr(), a.add_cdb_len()),
            (1, 0x38, 1, 0)
        );
        assert_eq!(a.exchange_addr(), ExchangeAddr(0x123));
        assert_eq!(a.header().s_id(), PortId::new(0x010203));
        assert_eq!(a.header().rx_id(), RxId::UNASSIGNED);
        assert_eq!(a.fcp_dl(), 4096);
        assert_eq!((a.required_len(), a.slots_needed()), (64, 1));
        let r = Atio7Repr::parse(&a).unwrap();
        assert_eq!(r, golden_repr());
        assert_eq!(
            r.to_string(),
            "ATIO7 xchg=0x00000123 s_id=010203 d_id=0a0b0c ox_id=0x1234 lun=0000000000000000 attr=SIMPLE cdb=[28 00 00 00 00 00 00 00 08 00] fcp_dl=4096 RD atio_attr=1"
        );
        assert_eq!(a.to_string(), r.to_string());
    }

    #[test]
    fn golden_emit_into_a5() {
        let mut out = [0xA5u8; 64];
        golden_repr().emit_bytes(&mut out).unwrap();
        assert_eq!(out, GOLDEN);
        assert_eq!((golden_repr().buffer_len(), golden_repr().slots()), (64, 1));
    }

    #[test]
    fn multi_slot_atio_with_additional_cdb() {
        // A 32-byte CDB: add_cdb_len = 4, FCP_DL at 0x3C + 16 = 0x4C, two slots.
        let mut b = [0u8; 128];
        b[..64].copy_from_slice(&GOLDEN);
        b[0x01] = 2; // entry_count
        b[0x02..0x04].copy_from_slice(&[0x48, 0x00]); // len 0x38 + 16, attr 0
        b[0x2B] = (4 << 2) | 0x01; // add_cdb_len 4, WRDATA
        b[0x2C] = 0x7f; // variable-length CDB
        b[0x33] = 0x18; // additional CDB length 24 -> 32 bytes
        for (i, x) in b[0x34..0x4C].iter_mut().enumerate() {
            *x = 0x40 + i as u8;
        }
        b[0x4C..0x50].copy_from_slice(&[0x00, 0x00, 0x02, 0x00]); // FCP_DL 512
        let a = Atio7::new_checked(&b[..]).unwrap();
        assert_eq!(
            (a.add_cdb_len(), a.required_len(), a.slots_needed()),
            (4, 0x50, 2)
        );
        let r = Atio7Repr::parse(&a).unwrap();
        assert_eq!(
            (r.fcp.cdb.len(), r.fcp.data_len, r.fcp.dir),
            (32, 512, DataDir::DataOut)
        );
        assert_eq!(r.fcp.cdb.as_slice()[8..], b[0x34..0x4C]);
        assert_eq!((r.buffer_len(), r.slots()), (0x50, 2));
        let mut out = [0xA5u8; 128];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out[..0x50], b[..0x50]);
        assert!(out[0x50..].iter().all(|&x| x == 0xA5));
        // One slot only: truncated.
        assert!(matches!(
            Atio7::new_checked(&b[..64]),
            Err(WireError::Truncated {
                needed: 0x50,
                got: 64
            })
        ));
        // entry_count too small.
        let mut c = b;
        c[1] = 1;
        assert!(Atio7Repr::parse_bytes(&c).is_err());
        let c = Collect::of(&r);
        assert_eq!(c.get("add_cdb_len"), "4");
        assert_eq!(c.get("entry_count"), "2");
        assert_eq!(c.get("wrdata"), "true");
    }

    /// `Atio7CmdRepr` is `Atio7Repr` without the copy: same verdict, same values.
    pub(crate) fn assert_cmd_repr_agrees(b: &[u8]) {
        match (Atio7Repr::parse_bytes(b), Atio7CmdRepr::parse_bytes(b)) {
            (Ok(r), Ok(c)) => {
                assert_eq!(
                    (c.attr, c.exchange_addr, c.s_id, c.ox_id),
                    (r.attr, r.exchange_addr, r.header.s_id, r.header.ox_id)
                );
                assert_eq!(
                    (c.lun, c.crn, c.task_attr, c.priority, c.tmf, c.dir),
                    (
                        r.fcp.lun,
                        r.fcp.crn,
                        r.fcp.task_attr,
                        r.fcp.priority,
                        r.fcp.tmf,
                        r.fcp.dir
                    )
                );
                assert_eq!((c.cdb, c.data_len), (r.fcp.cdb.as_slice(), r.fcp.data_len));
                assert!(!c.to_string().is_empty());
            }
            (Err(a), Err(b)) => assert_eq!(a, b),
            (a, b) => panic!("Atio7Repr {a:?} but Atio7CmdRepr {b:?}"),
        }
    }

    #[test]
    fn cmd_repr_borrows_the_same_fields() {
        assert_cmd_repr_agrees(&GOLDEN);
        let c = Atio7CmdRepr::parse_bytes(&GOLDEN).unwrap();
        assert_eq!(c.cdb, &GOLDEN[0x2C..0x3C]);
        assert_eq!(
            c.to_string(),
            "ATIO7 xchg=0x00000123 s_id=010203 ox_id=0x1234 lun=0000000000000000 attr=SIMPLE cdb=[28 00 00 00 00 00 00 00 08 00] fcp_dl=4096 RD atio_attr=1"
        );
        // Additional CDB across two slots, a TMF, priority and CRN, and the failures.
        let mut b = [0u8; 128];
        b[..64].copy_from_slice(&GOLDEN);
        b[0x01] = 2;
        b[0x02..0x04].copy_from_slice(&[0x48, 0x00]);
        b[0x2B] = (4 << 2) | 0x01;
        for (i, x) in b[0x2C..0x4C].iter_mut().enumerate() {
            *x = 0x40 + i as u8;
        }
        b[0x4C..0x50].copy_from_slice(&[0x00, 0x00, 0x02, 0x00]);
        assert_cmd_repr_agrees(&b);
        assert_eq!(Atio7CmdRepr::parse_bytes(&b).unwrap().cdb.len(), 32);
        assert_cmd_repr_agrees(&b[..64]);
        let mut t = GOLDEN;
        t[0x28] = 7;
        t[0x29] = 0x02 | 5 << 3;
        t[0x2A] = 0x10;
        assert_cmd_repr_agrees(&t);
        for (at, v) in [(0, 0x12), (1, 0), (2, 0x37)] {
            let mut w = b;
            w[at] = v;
            assert_cmd_repr_agrees(&w);
        }
        assert_cmd_repr_agrees(&GOLDEN[..40]);
    }

    #[test]
    fn rejects_wrong_type_and_corrupted_length() {
        let mut b = GOLDEN;
        b[2] = 0x37;
        assert_eq!(
            Atio7Repr::parse_bytes(&b),
            Err(WireError::Malformed(
                "ATIO FCP_CMND length < 0x38 (corrupted)"
            ))
        );
        // The exchange address is still readable to terminate it.
        assert_eq!(
            Atio7::new_checked(&b[..]).unwrap().exchange_addr(),
            ExchangeAddr(0x123)
        );
        let mut w = GOLDEN;
        w[0] = 0x12;
        assert_eq!(
            Atio7Repr::parse_bytes(&w),
            Err(WireError::WrongEntryType {
                expected: 6,
                found: 0x12
            })
        );
        assert!(
            Atio7::new_unchecked(&w[..])
                .to_string()
                .starts_with("ATIO7 (wrong entry type")
        );
        assert!(Atio7Repr::parse_bytes(&GOLDEN[..63]).is_err());
    }

    #[test]
    fn setters_and_visit() {
        let mut b = GOLDEN;
        let mut a = Atio7::new_unchecked(&mut b[..]);
        a.set_attr(0xF);
        a.set_fcp_cmnd_len(0x40);
        assert_eq!((a.attr(), a.fcp_cmnd_len()), (0xF, 0x40));
        a.header_mut().set_ox_id(OxId(0x4321));
        a.fcp_cmnd_mut().set_crn(9);
        assert_eq!(a.header().ox_id(), OxId(0x4321));
        assert_eq!(a.fcp_cmnd().crn(), 9);
        assert_eq!(a.into_inner()[2..4], [0x40, 0xF0]);
        let c = Collect::of(&golden_repr());
        c.assert_unique();
        for k in [
            "entry_type",
            "entry_count",
            "exchange_addr",
            "attr",
            "d_id",
            "s_id",
            "ox_id",
            "rx_id",
            "lun",
            "crn",
            "task_attr",
            "tmf_flags",
            "rddata",
            "wrdata",
            "add_cdb_len",
            "cdb",
            "fcp_dl",
        ] {
            c.get(k);
        }
        assert_eq!(c.get("entry_type"), "ATIO7");
        assert_eq!(c.get("lun"), "0000000000000000");
        assert_eq!(c.get("s_id"), "010203");
        assert_eq!(c.get("ox_id"), "4660");
        let n = Atio7Repr::new(
            ExchangeAddr(1),
            PortId::new(1),
            PortId::new(2),
            OxId(3),
            golden_repr().fcp,
        );
        assert_eq!(
            (n.header.s_id, n.header.d_id, n.attr),
            (PortId::new(1), PortId::new(2), 0)
        );
    }
}
