//! GET_PORT_DATABASE's `port_database_24xx` buffer and GET_ID_LIST entries.
//!
//! Source: reference §7.13 (port database) and §3.4 (GET_ID_LIST entry). The port database
//! stores the port id big-endian (gotcha 1); an ID-list entry stores it little-endian.

use core::fmt;

use crate::bytes::*;
use crate::error::{WireError, need};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{NportHandle, PortId, Wwn};

/// Size of `port_database_24xx`.
pub const PORT_DATABASE_LEN: usize = 64;
/// Size of one GET_ID_LIST entry.
pub const ID_LIST_ENTRY_LEN: usize = 8;

enum_with_unknown! {
    /// A port login state (port database bytes 2/3 low nibble; async PORT_UPDATE mb2).
    pub enum LoginState(u8) {
        /// 0x03.
        PlogiPending = 0x03 => "PLOGI_PENDING",
        /// 0x04.
        PlogiComplete = 0x04 => "PLOGI_COMPLETE",
        /// 0x05.
        PrliPending = 0x05 => "PRLI_PENDING",
        /// 0x06: logged in and ready for FCP.
        PrliComplete = 0x06 => "PRLI_COMPLETE",
        /// 0x07: port unavailable / logged out.
        PortUnavailable = 0x07 => "PORT_UNAVAILABLE",
        /// 0x09.
        PrloPending = 0x09 => "PRLO_PENDING",
        /// 0x11.
        LogoPending = 0x11 => "LOGO_PENDING",
        /// 0x12.
        Prli2Pending = 0x12 => "PRLI2_PENDING",
    }
}

bit_flags! {
    /// Port database `flags` (0x00).
    pub struct PortDbFlags: u16 {
        /// B1: hard address.
        const HARD_ADDRESS = 1 << 1;
        /// B4: class 2.
        const CLASS_2 = 1 << 4;
        /// B5: FCP-2 confirm.
        const FCP2_CONFIRM = 1 << 5;
        /// B6: ACK0.
        const ACK0 = 1 << 6;
        /// B7: FC tape.
        const FC_TAPE = 1 << 7;
        /// B14: task retry id.
        const TASK_RETRY_ID = 1 << 14;
    }
}

mod field {
    use core::ops::Range;
    pub const FLAGS: Range<usize> = 0x00..0x02;
    pub const CURRENT_LOGIN_STATE: usize = 0x02;
    pub const LAST_LOGIN_STATE: usize = 0x03;
    pub const HARD_ADDRESS: Range<usize> = 0x04..0x07;
    pub const PORT_ID: Range<usize> = 0x08..0x0B;
    pub const SEQUENCE_ID: usize = 0x0B;
    pub const PORT_TIMER: Range<usize> = 0x0C..0x0E;
    pub const NPORT_HANDLE: Range<usize> = 0x0E..0x10;
    pub const RECEIVE_DATA_SIZE: Range<usize> = 0x10..0x12;
    pub const PRLI_WORD0: Range<usize> = 0x14..0x16;
    pub const PRLI_WORD3: Range<usize> = 0x16..0x18;
    pub const PORT_NAME: Range<usize> = 0x18..0x20;
    pub const NODE_NAME: Range<usize> = 0x20..0x28;
}

/// A view of a `port_database_24xx` buffer.
#[derive(Debug, Clone)]
pub struct PortDatabase<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PortDatabase<T> {
    /// Wraps without checking the length.
    pub const fn new_unchecked(buffer: T) -> PortDatabase<T> {
        PortDatabase { buffer }
    }

    /// Wraps a buffer of at least 64 bytes.
    pub fn new_checked(buffer: T) -> Result<PortDatabase<T>, WireError> {
        let v = PortDatabase::new_unchecked(buffer);
        v.check_len()?;
        Ok(v)
    }

    /// Checks the length.
    pub fn check_len(&self) -> Result<(), WireError> {
        need(PORT_DATABASE_LEN, self.buffer.as_ref().len())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// 0x00 (LE16).
    pub fn flags(&self) -> PortDbFlags {
        PortDbFlags::from_bits_retain(le16(self.buffer.as_ref(), field::FLAGS.start))
    }

    /// 0x02: low nibble FCP state, high nibble NVMe state.
    pub fn current_login_state(&self) -> u8 {
        self.buffer.as_ref()[field::CURRENT_LOGIN_STATE]
    }

    /// 0x03.
    pub fn last_login_state(&self) -> u8 {
        self.buffer.as_ref()[field::LAST_LOGIN_STATE]
    }

    /// 0x04: hard address (3 bytes; read big-endian like the port id — order unconfirmed).
    pub fn hard_address(&self) -> PortId {
        PortId::from_be_bytes(array(self.buffer.as_ref(), field::HARD_ADDRESS.start))
    }

    /// 0x08: port id, big-endian.
    pub fn port_id(&self) -> PortId {
        PortId::from_be_bytes(array(self.buffer.as_ref(), field::PORT_ID.start))
    }

    /// 0x0B.
    pub fn sequence_id(&self) -> u8 {
        self.buffer.as_ref()[field::SEQUENCE_ID]
    }

    /// 0x0C (LE16).
    pub fn port_timer(&self) -> u16 {
        le16(self.buffer.as_ref(), field::PORT_TIMER.start)
    }

    /// 0x0E (LE16).
    pub fn nport_handle(&self) -> NportHandle {
        NportHandle(le16(self.buffer.as_ref(), field::NPORT_HANDLE.start))
    }

    /// 0x10 (LE16).
    pub fn receive_data_size(&self) -> u16 {
        le16(self.buffer.as_ref(), field::RECEIVE_DATA_SIZE.start)
    }

    /// 0x14: PRLI service-parameter word 0 bits 15–0 (BE16).
    pub fn prli_word0(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PRLI_WORD0.start)
    }

    /// 0x16: PRLI service-parameter word 3 bits 15–0 (BE16; B4 target, B7 confirmed completion).
    pub fn prli_word3(&self) -> u16 {
        be16(self.buffer.as_ref(), field::PRLI_WORD3.start)
    }

    /// 0x18: WWPN.
    pub fn port_name(&self) -> Wwn {
        Wwn(array(self.buffer.as_ref(), field::PORT_NAME.start))
    }

    /// 0x20: WWNN.
    pub fn node_name(&self) -> Wwn {
        Wwn(array(self.buffer.as_ref(), field::NODE_NAME.start))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> PortDatabase<T> {
    /// Sets `flags`.
    pub fn set_flags(&mut self, v: PortDbFlags) {
        set_le16(self.buffer.as_mut(), field::FLAGS.start, v.bits())
    }
    /// Sets `current_login_state`.
    pub fn set_current_login_state(&mut self, v: u8) {
        self.buffer.as_mut()[field::CURRENT_LOGIN_STATE] = v
    }
    /// Sets `last_login_state`.
    pub fn set_last_login_state(&mut self, v: u8) {
        self.buffer.as_mut()[field::LAST_LOGIN_STATE] = v
    }
    /// Sets `hard_address`.
    pub fn set_hard_address(&mut self, v: PortId) {
        self.buffer.as_mut()[field::HARD_ADDRESS].copy_from_slice(&v.to_be_bytes())
    }
    /// Sets `port_id`.
    pub fn set_port_id(&mut self, v: PortId) {
        self.buffer.as_mut()[field::PORT_ID].copy_from_slice(&v.to_be_bytes())
    }
    /// Sets `sequence_id`.
    pub fn set_sequence_id(&mut self, v: u8) {
        self.buffer.as_mut()[field::SEQUENCE_ID] = v
    }
    /// Sets `port_timer`.
    pub fn set_port_timer(&mut self, v: u16) {
        set_le16(self.buffer.as_mut(), field::PORT_TIMER.start, v)
    }
    /// Sets `nport_handle`.
    pub fn set_nport_handle(&mut self, v: NportHandle) {
        set_le16(self.buffer.as_mut(), field::NPORT_HANDLE.start, v.0)
    }
    /// Sets `receive_data_size`.
    pub fn set_receive_data_size(&mut self, v: u16) {
        set_le16(self.buffer.as_mut(), field::RECEIVE_DATA_SIZE.start, v)
    }
    /// Sets `prli_word0`.
    pub fn set_prli_word0(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::PRLI_WORD0.start, v)
    }
    /// Sets `prli_word3`.
    pub fn set_prli_word3(&mut self, v: u16) {
        set_be16(self.buffer.as_mut(), field::PRLI_WORD3.start, v)
    }
    /// Sets `port_name`.
    pub fn set_port_name(&mut self, v: Wwn) {
        self.buffer.as_mut()[field::PORT_NAME].copy_from_slice(&v.0)
    }
    /// Sets `node_name`.
    pub fn set_node_name(&mut self, v: Wwn) {
        self.buffer.as_mut()[field::NODE_NAME].copy_from_slice(&v.0)
    }
}

/// A parsed port database entry (the NVMe/security tail 0x28–0x3F is not kept).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct PortDatabaseRepr {
    /// 0x00.
    pub flags: PortDbFlags,
    /// 0x02 raw (low nibble FCP, high nibble NVMe).
    pub current_login_state: u8,
    /// 0x03 raw.
    pub last_login_state: u8,
    /// 0x04.
    pub hard_address: PortId,
    /// 0x08.
    pub port_id: PortId,
    /// 0x0B.
    pub sequence_id: u8,
    /// 0x0C.
    pub port_timer: u16,
    /// 0x0E.
    pub nport_handle: NportHandle,
    /// 0x10.
    pub receive_data_size: u16,
    /// 0x14.
    pub prli_word0: u16,
    /// 0x16.
    pub prli_word3: u16,
    /// 0x18.
    pub port_name: Wwn,
    /// 0x20.
    pub node_name: Wwn,
}

impl PortDatabaseRepr {
    /// Parses the buffer.
    pub fn parse<T: AsRef<[u8]>>(p: &PortDatabase<T>) -> Result<PortDatabaseRepr, WireError> {
        p.check_len()?;
        Ok(PortDatabaseRepr {
            flags: p.flags(),
            current_login_state: p.current_login_state(),
            last_login_state: p.last_login_state(),
            hard_address: p.hard_address(),
            port_id: p.port_id(),
            sequence_id: p.sequence_id(),
            port_timer: p.port_timer(),
            nport_handle: p.nport_handle(),
            receive_data_size: p.receive_data_size(),
            prli_word0: p.prli_word0(),
            prli_word3: p.prli_word3(),
            port_name: p.port_name(),
            node_name: p.node_name(),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        PORT_DATABASE_LEN
    }

    /// Writes all 64 bytes (reserved bytes zero).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        p: &mut PortDatabase<T>,
    ) -> Result<(), WireError> {
        p.check_len()?;
        p.buffer.as_mut()[..PORT_DATABASE_LEN].fill(0);
        p.set_flags(self.flags);
        p.set_current_login_state(self.current_login_state);
        p.set_last_login_state(self.last_login_state);
        p.set_hard_address(self.hard_address);
        p.set_port_id(self.port_id);
        p.set_sequence_id(self.sequence_id);
        p.set_port_timer(self.port_timer);
        p.set_nport_handle(self.nport_handle);
        p.set_receive_data_size(self.receive_data_size);
        p.set_prli_word0(self.prli_word0);
        p.set_prli_word3(self.prli_word3);
        p.set_port_name(self.port_name);
        p.set_node_name(self.node_name);
        Ok(())
    }

    /// The FCP login state (low nibble of the current state).
    pub fn fcp_login_state(&self) -> LoginState {
        LoginState::from(self.current_login_state & 0x0F)
    }

    /// Linux's acceptance rule: current or last FCP state is PRLI complete (0x06).
    pub fn prli_complete(&self) -> bool {
        self.current_login_state & 0x0F == 0x06 || self.last_login_state & 0x0F == 0x06
    }

    /// PRLI word 3 B4: the remote port is a target.
    pub fn is_target(&self) -> bool {
        self.prli_word3 & 0x0010 != 0
    }

    /// PRLI word 3 B5: the remote port is an initiator.
    pub fn is_initiator(&self) -> bool {
        self.prli_word3 & 0x0020 != 0
    }
}

impl fmt::Display for PortDatabaseRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PDB nport_handle={} port_id={} wwpn={} wwnn={} state={} prli_w3={:#06x} flags={}",
            self.nport_handle,
            self.port_id,
            self.port_name,
            self.node_name,
            self.fcp_login_state(),
            self.prli_word3,
            self.flags
        )
    }
}

impl Visit for PortDatabaseRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("flags", Value::U16(self.flags.bits()));
        v.field("current_login_state", Value::U8(self.current_login_state));
        v.field("last_login_state", Value::U8(self.last_login_state));
        v.field("hard_address", Value::PortId(self.hard_address));
        v.field("port_id", Value::PortId(self.port_id));
        v.field("sequence_id", Value::U8(self.sequence_id));
        v.field("port_timer", Value::U16(self.port_timer));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("receive_data_size", Value::U16(self.receive_data_size));
        v.field("prli_word0", Value::U16(self.prli_word0));
        v.field("prli_word3", Value::U16(self.prli_word3));
        v.field("port_name", Value::Wwn(self.port_name));
        v.field("node_name", Value::Wwn(self.node_name));
    }
}

/// One GET_ID_LIST entry: `al_pa, area, domain, unused, LE16 nport_handle, 2 reserved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IdListEntryRepr {
    /// Bytes 0–2, little-endian (al_pa, area, domain).
    pub port_id: PortId,
    /// Bytes 4–5.
    pub nport_handle: NportHandle,
}

impl IdListEntryRepr {
    /// Parses 8 bytes.
    pub fn parse(b: &[u8]) -> Result<IdListEntryRepr, WireError> {
        need(ID_LIST_ENTRY_LEN, b.len())?;
        Ok(IdListEntryRepr {
            port_id: PortId::from_le_bytes(array(b, 0)),
            nport_handle: NportHandle(le16(b, 4)),
        })
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub const fn buffer_len(&self) -> usize {
        ID_LIST_ENTRY_LEN
    }

    /// Writes 8 bytes.
    pub fn emit(&self, b: &mut [u8]) -> Result<(), WireError> {
        need(ID_LIST_ENTRY_LEN, b.len())?;
        b[..3].copy_from_slice(&self.port_id.to_le_bytes());
        b[3] = 0;
        set_le16(b, 4, self.nport_handle.0);
        b[6..8].fill(0);
        Ok(())
    }

    /// The first `count` entries of a GET_ID_LIST buffer (fewer if the buffer is shorter).
    pub fn iter(buf: &[u8], count: usize) -> impl Iterator<Item = IdListEntryRepr> + '_ {
        buf.chunks_exact(ID_LIST_ENTRY_LEN)
            .take(count)
            .filter_map(|c| IdListEntryRepr::parse(c).ok())
    }
}

impl fmt::Display for IdListEntryRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ID port_id={} nport_handle={}",
            self.port_id, self.nport_handle
        )
    }
}

impl Visit for IdListEntryRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("port_id", Value::PortId(self.port_id));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
    }
}

view_display!(PortDatabase, PortDatabaseRepr::parse, "PDB");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    fn golden() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0x00..0x02].copy_from_slice(&[0x22, 0x00]); // flags B1|B5
        b[0x02] = 0x06; // current_login_state PRLI complete
        b[0x03] = 0x04; // last_login_state
        b[0x04..0x07].copy_from_slice(&[0x00, 0x00, 0xef]); // hard_address
        b[0x08..0x0B].copy_from_slice(&[0x01, 0x02, 0x03]); // port_id BE
        b[0x0B] = 0x09; // sequence_id
        b[0x0C..0x0E].copy_from_slice(&[0x1e, 0x00]); // port_timer 30
        b[0x0E..0x10].copy_from_slice(&[0x81, 0x00]); // nport_handle 0x81
        b[0x10..0x12].copy_from_slice(&[0x00, 0x08]); // receive_data_size 2048
        b[0x14..0x16].copy_from_slice(&[0x08, 0x00]); // PRLI word0 (BE) 0x0800
        b[0x16..0x18].copy_from_slice(&[0x00, 0xa2]); // PRLI word3 (BE) 0x00a2: initiator|confirm|read xfer_rdy disabled
        b[0x18..0x20].copy_from_slice(&[0x21, 0, 0, 0x24, 0xff, 1, 2, 3]); // port_name
        b[0x20..0x28].copy_from_slice(&[0x20, 0, 0, 0x24, 0xff, 1, 2, 3]); // node_name
        b
    }

    fn repr() -> PortDatabaseRepr {
        PortDatabaseRepr {
            flags: PortDbFlags::HARD_ADDRESS | PortDbFlags::FCP2_CONFIRM,
            current_login_state: 6,
            last_login_state: 4,
            hard_address: PortId::new(0xef),
            port_id: PortId::new(0x010203),
            sequence_id: 9,
            port_timer: 30,
            nport_handle: NportHandle(0x81),
            receive_data_size: 2048,
            prli_word0: 0x0800,
            prli_word3: 0x00a2,
            port_name: Wwn([0x21, 0, 0, 0x24, 0xff, 1, 2, 3]),
            node_name: Wwn([0x20, 0, 0, 0x24, 0xff, 1, 2, 3]),
        }
    }

    #[test]
    fn golden_port_database() {
        let b = golden();
        let r = PortDatabaseRepr::parse(&PortDatabase::new_checked(&b[..]).unwrap()).unwrap();
        assert_eq!(r, repr());
        assert!(r.prli_complete() && r.is_initiator() && !r.is_target());
        assert_eq!(r.fcp_login_state(), LoginState::PrliComplete);
        let mut out = [0xA5u8; 64];
        repr()
            .emit(&mut PortDatabase::new_checked(&mut out[..]).unwrap())
            .unwrap();
        assert_eq!(out, b);
        assert_eq!(r.buffer_len(), 64);
        assert_eq!(
            r.to_string(),
            "PDB nport_handle=0x0081 port_id=010203 wwpn=21:00:00:24:ff:01:02:03 wwnn=20:00:00:24:ff:01:02:03 state=PRLI_COMPLETE prli_w3=0x00a2 flags=HARD_ADDRESS|FCP2_CONFIRM"
        );
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("port_id"), "010203");
        let mut not_ready = repr();
        not_ready.current_login_state = 0x14;
        not_ready.last_login_state = 0x07;
        assert!(!not_ready.prli_complete());
        assert_eq!(not_ready.fcp_login_state(), LoginState::PlogiComplete);
        assert!(PortDatabase::new_checked(&b[..63]).is_err());
    }

    #[test]
    fn golden_id_list() {
        let b = [
            0x03, 0x02, 0x01, 0x00, 0x81, 0x00, 0x00, 0x00, // port 010203 handle 0x81
            0xef, 0x00, 0x00, 0x00, 0x7e, 0x00, 0x00, 0x00, // port 0000ef handle 0x7e
        ];
        let v: std::vec::Vec<_> = IdListEntryRepr::iter(&b, 5).collect();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[0],
            IdListEntryRepr {
                port_id: PortId::new(0x010203),
                nport_handle: NportHandle(0x81)
            }
        );
        assert_eq!(v[1].port_id, PortId::new(0xef));
        let mut out = [0xA5u8; 8];
        v[0].emit(&mut out).unwrap();
        assert_eq!(out, b[..8]);
        assert_eq!(v[0].buffer_len(), 8);
        assert_eq!(v[0].to_string(), "ID port_id=010203 nport_handle=0x0081");
        assert!(IdListEntryRepr::parse(&b[..7]).is_err());
        assert_eq!(Collect::of(&v[1]).get("nport_handle"), "126");
    }
}
