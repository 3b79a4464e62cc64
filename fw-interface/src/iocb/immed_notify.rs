//! IMMED_NOTIFY (0x0D), 24xx layout: link, login and SRR events, firmware → driver on the ATIO
//! queue.
//!
//! Source: reference §7.8 (layout, status codes), §9.7 (ELS/login events), §9.9 (SRR), §9.12
//! (LIP and link events). Acknowledge each one with a NOTIFY_ACK built from it
//! ([`NotifyAckRepr::ack`](crate::iocb::NotifyAckRepr::ack)).

use core::fmt;

use crate::fc::els::ElsOpcode;
use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, check_entry, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{ExchangeAddr, HexBytes, NportHandle, PortId, WireError, Wwn};

enum_with_unknown! {
    /// IMMED_NOTIFY status (0x10), echoed in the NOTIFY_ACK.
    pub enum NotifyStatus(u16) {
        /// 0x0E: abort everything, then ack.
        LipReset = 0x0E => "LIP_RESET",
        /// 0x0F: hold; ack on the next LOOP_UP or ADISC/PDISC.
        LipLinkReinit = 0x0F => "LIP_LINK_REINIT",
        /// 0x16: ack immediately.
        IocbOverflow = 0x16 => "IOCB_OVERFLOW",
        /// 0x20: legacy 2xxx (24xx uses ABTS_RECV).
        AbortTask = 0x20 => "ABORT_TASK",
        /// 0x29: nexus loss for the session, then ack.
        PortLogout = 0x29 => "PORT_LOGOUT",
        /// 0x2A: abort all, then ack.
        PortConfig = 0x2A => "PORT_CONFIG",
        /// 0x2D: nexus loss for all sessions, then ack.
        GlobalTprlo = 0x2D => "GLBL_TPRLO",
        /// 0x2E: link failure: nexus loss for all, then ack.
        GlobalLogo = 0x2E => "GLBL_LOGO",
        /// 0x34: out of resources.
        Resource = 0x34 => "RESOURCE",
        /// 0x36.
        MsgRx = 0x36 => "MSG_RX",
        /// 0x45: SRR.
        Srr = 0x45 => "SRR",
        /// 0x46: an ELS arrived; `status_subcode` = ELS opcode.
        Els = 0x46 => "ELS",
    }
}

bit_flags! {
    /// IMMED_NOTIFY `flags` (0x0C).
    pub struct NotifyFlags: u16 {
        /// B0: PUREX IOCB.
        const PUREX = 1 << 0;
        /// B1: global TPRLO.
        const GLOBAL_TPRLO = 1 << 1;
        /// B5: FC-SP (authenticated PLOGI).
        const FC_SP = 1 << 5;
    }
}

enum_with_unknown! {
    /// The information unit an SRR asks to retransmit (`srr_ui`).
    pub enum SrrIu(u16) {
        /// 1: data-in.
        DataIn = 1 => "DATA_IN",
        /// 5: data-out.
        DataOut = 5 => "DATA_OUT",
        /// 7: status.
        Status = 7 => "STATUS",
    }
}

/// A view of an IMMED_NOTIFY.
#[derive(Debug, Clone)]
pub struct ImmedNotify<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ImmedNotify<T> {
    view_basics!(ImmedNotify, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x03 raw: the driver drops the entry if non-zero.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
        /// 0x08: remote port's handle; 0xFFFF = global event.
        nport_handle, set_nport_handle, 0x08, le16 as NportHandle;
        /// 0x0C raw.
        flags_raw, set_flags_raw, 0x0C, le16;
        /// 0x0E.
        srr_rx_id, set_srr_rx_id, 0x0E, le16;
        /// 0x10 raw.
        status_raw, set_status_raw, 0x10, le16;
        /// 0x12: ELS opcode when status = ELS.
        status_subcode, set_status_subcode, 0x12, u8;
        /// 0x13: opaque, echoed in NOTIFY_ACK.
        fw_handle, set_fw_handle, 0x13, u8;
        /// 0x14: the ELS / SRR exchange, echoed in NOTIFY_ACK.
        exchange_addr, set_exchange_addr, 0x14, le32 as ExchangeAddr;
        /// 0x18.
        srr_rel_offs, set_srr_rel_offs, 0x18, le32;
        /// 0x1C raw.
        srr_ui_raw, set_srr_ui_raw, 0x1C, le16;
        /// 0x1E.
        srr_ox_id, set_srr_ox_id, 0x1E, le16;
        /// 0x28: remote WWPN.
        port_name, set_port_name, 0x28, wwn;
        /// 0x33.
        vp_index, set_vp_index, 0x33, u8;
        /// 0x38: remote port id, little-endian.
        port_id, set_port_id, 0x38, port_le;
        /// 0x3E: OX_ID of the ELS exchange as stored (byte order opaque; echoed).
        ox_id, set_ox_id, 0x3E, le16;
    }

    /// 0x10.
    pub fn status(&self) -> NotifyStatus {
        NotifyStatus::from(self.status_raw())
    }

    /// 0x0C.
    pub fn flags(&self) -> NotifyFlags {
        NotifyFlags::from_bits_retain(self.flags_raw())
    }

    /// 0x20..0x28: the ELS-specific bytes.
    pub fn els_specific(&self) -> [u8; 8] {
        crate::bytes::array(self.buffer.as_ref(), 0x20)
    }

    /// Sets 0x20..0x28.
    pub fn set_els_specific(&mut self, v: [u8; 8])
    where
        T: AsMut<[u8]>,
    {
        self.buffer.as_mut()[0x20..0x28].copy_from_slice(&v)
    }
}

/// A parsed IMMED_NOTIFY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ImmedNotifyRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x08.
    pub nport_handle: NportHandle,
    /// 0x0C.
    pub flags: NotifyFlags,
    /// 0x0E.
    pub srr_rx_id: u16,
    /// 0x10.
    pub status: NotifyStatus,
    /// 0x12.
    pub status_subcode: u8,
    /// 0x13.
    pub fw_handle: u8,
    /// 0x14.
    pub exchange_addr: ExchangeAddr,
    /// 0x18.
    pub srr_rel_offs: u32,
    /// 0x1C.
    pub srr_ui: SrrIu,
    /// 0x1E.
    pub srr_ox_id: u16,
    /// 0x20..0x28, meaning by ELS (see the accessor methods).
    pub els_specific: [u8; 8],
    /// 0x28.
    pub port_name: Wwn,
    /// 0x33.
    pub vp_index: u8,
    /// 0x38.
    pub port_id: PortId,
    /// 0x3E (raw).
    pub ox_id: u16,
}

impl ImmedNotifyRepr {
    /// An ELS notify (status 0x46) as a simulator raises it for a held ELS.
    pub fn els(
        opcode: ElsOpcode,
        nport_handle: NportHandle,
        port_id: PortId,
        port_name: Wwn,
        exchange_addr: ExchangeAddr,
        ox_id: u16,
    ) -> ImmedNotifyRepr {
        ImmedNotifyRepr {
            entry_status: EntryStatus::empty(),
            nport_handle,
            flags: NotifyFlags::empty(),
            srr_rx_id: 0,
            status: NotifyStatus::Els,
            status_subcode: opcode.into(),
            fw_handle: 0,
            exchange_addr,
            srr_rel_offs: 0,
            srr_ui: SrrIu::Unknown(0),
            srr_ox_id: 0,
            els_specific: [0; 8],
            port_name,
            vp_index: 0,
            port_id,
            ox_id,
        }
    }

    /// A non-ELS notify (LIP reset, link reinit, global LOGO, ...) for all ports.
    pub fn global(status: NotifyStatus) -> ImmedNotifyRepr {
        ImmedNotifyRepr {
            status,
            status_subcode: 0,
            ..ImmedNotifyRepr::els(
                ElsOpcode::Unknown(0),
                NportHandle::NONE,
                PortId::new(0),
                Wwn::default(),
                ExchangeAddr(0),
                0,
            )
        }
    }

    /// The ELS opcode, when `status` is ELS.
    pub fn els_opcode(&self) -> Option<ElsOpcode> {
        (self.status == NotifyStatus::Els).then(|| ElsOpcode::from(self.status_subcode))
    }

    /// PLOGI/ADISC/PDISC: the remote node name (0x20, big-endian).
    pub fn node_name(&self) -> Wwn {
        Wwn(self.els_specific)
    }

    /// PRLI: service parameter word 3 bits 0–15 (LE16 at 0x20; B4 target, B5 initiator,
    /// B7 confirmed completion).
    pub fn prli_word3(&self) -> u16 {
        u16::from_le_bytes([self.els_specific[0], self.els_specific[1]])
    }

    /// Other ELS: the port id at 0x20 (read little-endian like the IOCB's other port ids;
    /// the order is unconfirmed) and the N_Port handle at 0x24.
    pub fn els_port(&self) -> (PortId, NportHandle) {
        let e = self.els_specific;
        (
            PortId::from_le_bytes([e[0], e[1], e[2]]),
            NportHandle(u16::from_le_bytes([e[4], e[5]])),
        )
    }

    /// Routing rule: a virtual port only when `vp_index != 0xFF` and the handle is not global.
    pub fn routes_to_vp(&self) -> Option<u8> {
        (self.vp_index != 0xFF && !self.nport_handle.is_none()).then_some(self.vp_index)
    }

    /// Parses an entry.
    pub fn parse<T: AsRef<[u8]>>(n: &ImmedNotify<T>) -> Result<ImmedNotifyRepr, WireError> {
        check_entry(n.buffer.as_ref(), EntryType::ImmedNotify)?;
        Ok(ImmedNotifyRepr {
            entry_status: EntryStatus::from_bits_retain(n.entry_status_raw()),
            nport_handle: n.nport_handle(),
            flags: n.flags(),
            srr_rx_id: n.srr_rx_id(),
            status: n.status(),
            status_subcode: n.status_subcode(),
            fw_handle: n.fw_handle(),
            exchange_addr: n.exchange_addr(),
            srr_rel_offs: n.srr_rel_offs(),
            srr_ui: SrrIu::from(n.srr_ui_raw()),
            srr_ox_id: n.srr_ox_id(),
            els_specific: n.els_specific(),
            port_name: n.port_name(),
            vp_index: n.vp_index(),
            port_id: n.port_id(),
            ox_id: n.ox_id(),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<ImmedNotifyRepr, WireError> {
        ImmedNotifyRepr::parse(&ImmedNotify::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        n: &mut ImmedNotify<T>,
    ) -> Result<(), WireError> {
        start_entry(
            n.buffer.as_mut(),
            EntryType::ImmedNotify,
            1,
            self.entry_status,
        )?;
        n.set_nport_handle(self.nport_handle);
        n.set_flags_raw(self.flags.bits());
        n.set_srr_rx_id(self.srr_rx_id);
        n.set_status_raw(self.status.into());
        n.set_status_subcode(self.status_subcode);
        n.set_fw_handle(self.fw_handle);
        n.set_exchange_addr(self.exchange_addr);
        n.set_srr_rel_offs(self.srr_rel_offs);
        n.set_srr_ui_raw(self.srr_ui.into());
        n.set_srr_ox_id(self.srr_ox_id);
        n.set_els_specific(self.els_specific);
        n.set_port_name(self.port_name);
        n.set_vp_index(self.vp_index);
        n.set_port_id(self.port_id);
        n.set_ox_id(self.ox_id);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut ImmedNotify::new_unchecked(b))
    }
}

impl fmt::Display for ImmedNotifyRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IMMED_NOTIFY status={}", self.status)?;
        if let Some(op) = self.els_opcode() {
            write!(f, "({op})")?;
        } else if self.status_subcode != 0 {
            write!(f, " subcode={:#04x}", self.status_subcode)?;
        }
        write!(
            f,
            " nport={} port_id={} wwpn={} xchg={} ox_id={:#06x}",
            self.nport_handle, self.port_id, self.port_name, self.exchange_addr, self.ox_id
        )?;
        match self.els_opcode() {
            Some(ElsOpcode::Plogi | ElsOpcode::Adisc | ElsOpcode::Pdisc) => {
                write!(f, " wwnn={}", self.node_name())?
            }
            Some(ElsOpcode::Prli) => write!(f, " prli_w3={:#06x}", self.prli_word3())?,
            _ if self.els_specific != [0; 8] => write!(f, " els={}", HexBytes(&self.els_specific))?,
            _ => {}
        }
        if self.status == NotifyStatus::Srr {
            write!(
                f,
                " srr_ui={} srr_rel_offs={} srr_ox_id={:#06x} srr_rx_id={:#06x}",
                self.srr_ui, self.srr_rel_offs, self.srr_ox_id, self.srr_rx_id
            )?;
        }
        if !self.flags.is_empty() {
            write!(f, " flags={}", self.flags)?;
        }
        if self.vp_index != 0 {
            write!(f, " vp={}", self.vp_index)?;
        }
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for ImmedNotifyRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::ImmedNotify.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("flags", Value::U16(self.flags.bits()));
        v.field("srr_rx_id", Value::U16(self.srr_rx_id));
        v.field("status", self.status.to_value());
        v.field("status_subcode", Value::U8(self.status_subcode));
        v.field("fw_handle", Value::U8(self.fw_handle));
        v.field("exchange_addr", Value::U32(self.exchange_addr.0));
        v.field("srr_rel_offs", Value::U32(self.srr_rel_offs));
        v.field("srr_ui", Value::U16(self.srr_ui.into()));
        v.field("srr_ox_id", Value::U16(self.srr_ox_id));
        v.field("els_specific", Value::Bytes(&self.els_specific));
        v.field("port_name", Value::Wwn(self.port_name));
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("port_id", Value::PortId(self.port_id));
        v.field("ox_id", Value::U16(self.ox_id));
    }
}

view_display!(ImmedNotify, ImmedNotifyRepr::parse, "IMMED_NOTIFY");

#[cfg(test)]
pub(crate) mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    /// A PLOGI notify by hand from reference §7.8.
    pub(crate) fn plogi_bytes() -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0x00] = 0x0D; // IMMED_NOTIFY
        b[0x01] = 0x01; // entry_count
        b[0x08..0x0A].copy_from_slice(&[0x01, 0x00]); // nport_handle 1
        b[0x0C..0x0E].copy_from_slice(&[0x20, 0x00]); // flags FC_SP
        b[0x10..0x12].copy_from_slice(&[0x46, 0x00]); // status ELS
        b[0x12] = 0x03; // subcode PLOGI
        b[0x13] = 0x07; // fw_handle
        b[0x14..0x18].copy_from_slice(&[0x00, 0x10, 0x00, 0x00]); // exchange 0x1000
        b[0x20..0x28].copy_from_slice(&[0x20, 0, 0, 0x24, 0xff, 1, 2, 3]); // node name
        b[0x28..0x30].copy_from_slice(&[0x21, 0, 0, 0x24, 0xff, 1, 2, 3]); // port name
        b[0x33] = 0x00; // vp_index
        b[0x38..0x3B].copy_from_slice(&[0x03, 0x02, 0x01]); // port_id 010203 LE
        b[0x3E..0x40].copy_from_slice(&[0x55, 0x44]); // ox_id 0x4455
        b
    }

    pub(crate) fn plogi() -> ImmedNotifyRepr {
        ImmedNotifyRepr {
            flags: NotifyFlags::FC_SP,
            fw_handle: 7,
            els_specific: [0x20, 0, 0, 0x24, 0xff, 1, 2, 3],
            ..ImmedNotifyRepr::els(
                ElsOpcode::Plogi,
                NportHandle(1),
                PortId::new(0x010203),
                Wwn([0x21, 0, 0, 0x24, 0xff, 1, 2, 3]),
                ExchangeAddr(0x1000),
                0x4455,
            )
        }
    }

    #[test]
    fn golden_plogi_notify() {
        let b = plogi_bytes();
        let r = ImmedNotifyRepr::parse_bytes(&b).unwrap();
        assert_eq!(r, plogi());
        assert_eq!(r.els_opcode(), Some(ElsOpcode::Plogi));
        assert_eq!(r.node_name(), Wwn([0x20, 0, 0, 0x24, 0xff, 1, 2, 3]));
        assert_eq!(r.routes_to_vp(), Some(0));
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "IMMED_NOTIFY status=ELS(PLOGI) nport=0x0001 port_id=010203 wwpn=21:00:00:24:ff:01:02:03 xchg=0x00001000 ox_id=0x4455 wwnn=20:00:00:24:ff:01:02:03 flags=FC_SP"
        );
        assert_eq!(
            ImmedNotify::new_unchecked(&b[..]).to_string(),
            r.to_string()
        );
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("status"), "ELS");
        assert_eq!(c.get("port_id"), "010203");
    }

    #[test]
    fn prli_srr_and_global_variants() {
        let mut p = plogi();
        p.status_subcode = 0x20;
        p.els_specific = [0xa0, 0x00, 0, 0, 0, 0, 0, 0];
        assert_eq!(p.prli_word3(), 0x00a0);
        assert!(p.to_string().contains("ELS(PRLI)") && p.to_string().contains("prli_w3=0x00a0"));
        let mut o = plogi();
        o.status_subcode = 0x05;
        o.els_specific = [0x0c, 0x0b, 0x0a, 0, 0x81, 0x00, 0, 0];
        assert_eq!(o.els_port(), (PortId::new(0x0a0b0c), NportHandle(0x81)));
        assert!(o.to_string().contains("els=[0c 0b 0a 00 81 00 00 00]"));
        let g = ImmedNotifyRepr::global(NotifyStatus::LipReset);
        assert_eq!(g.routes_to_vp(), None);
        assert_eq!(g.els_opcode(), None);
        let mut b = [0u8; 64];
        g.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x10..0x12], [0x0e, 0x00]);
        assert_eq!(b[0x08..0x0A], [0xff, 0xff]);
        assert_eq!(ImmedNotifyRepr::parse_bytes(&b).unwrap(), g);
        let srr = ImmedNotifyRepr {
            status: NotifyStatus::Srr,
            srr_ui: SrrIu::DataIn,
            srr_rel_offs: 4096,
            srr_ox_id: 0x1234,
            srr_rx_id: 0x55,
            status_subcode: 1,
            ..g
        };
        srr.emit_bytes(&mut b).unwrap();
        assert_eq!(b[0x1C..0x20], [0x01, 0x00, 0x34, 0x12]);
        assert_eq!(b[0x0E..0x10], [0x55, 0x00]);
        assert_eq!(ImmedNotifyRepr::parse_bytes(&b).unwrap(), srr);
        assert!(srr.to_string().contains("srr_ui=DATA_IN srr_rel_offs=4096"));
        assert!(srr.to_string().contains("subcode=0x01"));
        let bad = ImmedNotifyRepr {
            entry_status: EntryStatus::INVALID_ENTRY_TYPE,
            vp_index: 2,
            ..g
        };
        assert!(
            bad.to_string()
                .ends_with("vp=2 entry_status=INVALID_ENTRY_TYPE")
        );
        let mut v = ImmedNotify::new_unchecked(&mut b[..]);
        v.set_entry_count(1);
        v.set_entry_status_raw(0);
        assert_eq!(v.flags(), NotifyFlags::empty());
        assert!(ImmedNotifyRepr::parse_bytes(&plogi_bytes()[..63]).is_err());
        for s in [
            0x0Eu16, 0x0F, 0x16, 0x20, 0x29, 0x2A, 0x2D, 0x2E, 0x34, 0x36, 0x45, 0x46,
        ] {
            assert!(NotifyStatus::from(s).name().is_some());
        }
    }
}
