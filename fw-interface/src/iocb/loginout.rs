//! LOGINOUT_PORT (0x52): how FWI2 firmware logs remote ports in and out, and its completion.
//!
//! Source: reference §7.14. Sent on the request queue or with mailbox 0x54 (execute IOCB); the
//! same layout comes back with `comp_status` and, on error, a subcode in `io_parameter[0]`.

use core::fmt;

use crate::iocb::{ENTRY_LEN, EntryStatus, EntryType, IocbStatus, check_entry, start_entry};
use crate::value::{FieldVisitor, Value, Visit};
use crate::{NportHandle, PortId, WireError};

/// Number of `io_parameter` dwords.
pub const IO_PARAMETERS: usize = 11;

enum_with_unknown! {
    /// `control_flags` bits 0–3: the command.
    pub enum LoginoutCommand(u8) {
        /// 0x00.
        Plogi = 0x00 => "PLOGI",
        /// 0x01.
        Prli = 0x01 => "PRLI",
        /// 0x02.
        Pdisc = 0x02 => "PDISC",
        /// 0x03.
        Adisc = 0x03 => "ADISC",
        /// 0x08.
        Logo = 0x08 => "LOGO",
        /// 0x09.
        Prlo = 0x09 => "PRLO",
        /// 0x0A.
        Tprlo = 0x0A => "TPRLO",
    }
}

bit_flags! {
    /// `control_flags` modifier bits (4–10). B4 and B5 mean different things for login and
    /// logout commands; both names are listed.
    pub struct LoginoutFlags: u16 {
        /// B4 (login): conditional PLOGI.
        const COND_PLOGI = 1 << 4;
        /// B4 (logout): implicit LOGO.
        const IMPLICIT_LOGO = 1 << 4;
        /// B5 (login): skip PRLI.
        const SKIP_PRLI = 1 << 5;
        /// B5 (logout): implicit LOGO of all.
        const IMPLICIT_LOGO_ALL = 1 << 5;
        /// B6: explicit LOGO.
        const EXPLICIT_LOGO = 1 << 6;
        /// B7: free the N_Port handle after LOGO.
        const FREE_NPORT_HANDLE = 1 << 7;
        /// B8: class 2.
        const CLASS_2 = 1 << 8;
        /// B9: FCP-2 override.
        const FCP2_OVERRIDE = 1 << 9;
        /// B10: include SNS.
        const INCLUDE_SNS = 1 << 10;
    }
}

enum_with_unknown! {
    /// Error subcode in `io_parameter[0]` of a failed completion.
    pub enum LoginoutError(u32) {
        /// 0x01.
        NoLink = 0x01 => "NO_LINK",
        /// 0x02.
        NoIocb = 0x02 => "NO_IOCB",
        /// 0x03.
        NoExchange = 0x03 => "NO_EXCHANGE",
        /// 0x04.
        CommandFailed = 0x04 => "COMMAND_FAILED",
        /// 0x05.
        NoFabric = 0x05 => "NO_FABRIC",
        /// 0x07.
        FwNotReady = 0x07 => "FW_NOT_READY",
        /// 0x09.
        NotLoggedIn = 0x09 => "NOT_LOGGED_IN",
        /// 0x0A.
        NoPcb = 0x0A => "NO_PCB",
        /// 0x18.
        ElsReject = 0x18 => "ELS_REJECT",
        /// 0x19.
        ParameterError = 0x19 => "PARAMETER_ERROR",
        /// 0x1A: `io_parameter[1]` = the handle using the port id.
        PortIdUsed = 0x1A => "PORT_ID_USED",
        /// 0x1B.
        NportHandleUsed = 0x1B => "NPORT_HANDLE_USED",
        /// 0x1C.
        NoNport = 0x1C => "NO_NPORT",
        /// 0x1D.
        AlreadyLoggedIn = 0x1D => "ALREADY_LOGGED_IN",
        /// 0x1F.
        NoFlogiAcc = 0x1F => "NO_FLOGI_ACC",
    }
}

/// A view of a LOGINOUT_PORT entry.
#[derive(Debug, Clone)]
pub struct Loginout<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Loginout<T> {
    view_basics!(Loginout, ENTRY_LEN);

    accessors! {
        /// 0x01.
        entry_count, set_entry_count, 0x01, u8;
        /// 0x03 raw.
        entry_status_raw, set_entry_status_raw, 0x03, u8;
        /// 0x04.
        handle, set_handle, 0x04, le32;
        /// 0x08: completion status (0 in a request).
        comp_status_raw, set_comp_status_raw, 0x08, le16;
        /// 0x0A.
        nport_handle, set_nport_handle, 0x0A, le16 as NportHandle;
        /// 0x0C raw: command (bits 0–3) and modifiers.
        control_flags, set_control_flags, 0x0C, le16;
        /// 0x0E.
        vp_index, set_vp_index, 0x0E, u8;
        /// 0x10: port id, little-endian.
        port_id, set_port_id, 0x10, port_le;
        /// 0x13: response size in dwords.
        rsp_size, set_rsp_size, 0x13, u8;
    }

    /// `io_parameter[i]` (LE32 at 0x14 + 4i); `None` for `i > 10`.
    pub fn io_parameter(&self, i: usize) -> Option<u32> {
        (i < IO_PARAMETERS).then(|| crate::bytes::le32(self.buffer.as_ref(), 0x14 + 4 * i))
    }

    /// Sets `io_parameter[i]` (ignored for `i > 10`).
    pub fn set_io_parameter(&mut self, i: usize, v: u32)
    where
        T: AsMut<[u8]>,
    {
        if i < IO_PARAMETERS {
            crate::bytes::set_le32(self.buffer.as_mut(), 0x14 + 4 * i, v)
        }
    }
}

/// A LOGINOUT_PORT request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LoginoutRepr {
    /// 0x04.
    pub handle: u32,
    /// 0x0A.
    pub nport_handle: NportHandle,
    /// 0x0C bits 0–3.
    pub command: LoginoutCommand,
    /// 0x0C bits 4–15.
    pub flags: LoginoutFlags,
    /// 0x0E.
    pub vp_index: u8,
    /// 0x10.
    pub port_id: PortId,
    /// 0x13.
    pub rsp_size: u8,
    /// 0x14.
    pub io_parameter: [u32; IO_PARAMETERS],
}

impl LoginoutRepr {
    /// A PLOGI of `port_id` into `nport_handle`.
    pub const fn plogi(handle: u32, nport_handle: NportHandle, port_id: PortId) -> LoginoutRepr {
        LoginoutRepr {
            handle,
            nport_handle,
            command: LoginoutCommand::Plogi,
            flags: LoginoutFlags::empty(),
            vp_index: 0,
            port_id,
            rsp_size: 0,
            io_parameter: [0; IO_PARAMETERS],
        }
    }

    /// A logout as Linux sends it: LOGO with implicit LOGO (B4) and free handle (B7).
    pub const fn logout(handle: u32, nport_handle: NportHandle, port_id: PortId) -> LoginoutRepr {
        LoginoutRepr {
            command: LoginoutCommand::Logo,
            flags: LoginoutFlags::IMPLICIT_LOGO.union(LoginoutFlags::FREE_NPORT_HANDLE),
            ..LoginoutRepr::plogi(handle, nport_handle, port_id)
        }
    }

    /// The 16-bit control flags as sent.
    pub fn control_flags(&self) -> u16 {
        self.flags.bits() & !0xF | (u8::from(self.command) as u16 & 0xF)
    }

    fn read<T: AsRef<[u8]>>(l: &Loginout<T>) -> LoginoutRepr {
        let cf = l.control_flags();
        let mut io_parameter = [0u32; IO_PARAMETERS];
        for (i, p) in io_parameter.iter_mut().enumerate() {
            *p = l.io_parameter(i).unwrap_or(0);
        }
        LoginoutRepr {
            handle: l.handle(),
            nport_handle: l.nport_handle(),
            command: LoginoutCommand::from((cf & 0xF) as u8),
            flags: LoginoutFlags::from_bits_retain(cf & !0xF),
            vp_index: l.vp_index(),
            port_id: l.port_id(),
            rsp_size: l.rsp_size(),
            io_parameter,
        }
    }

    fn write<T: AsRef<[u8]> + AsMut<[u8]>>(&self, l: &mut Loginout<T>) {
        l.set_handle(self.handle);
        l.set_nport_handle(self.nport_handle);
        l.set_control_flags(self.control_flags());
        l.set_vp_index(self.vp_index);
        l.set_port_id(self.port_id);
        l.set_rsp_size(self.rsp_size);
        for (i, p) in self.io_parameter.iter().enumerate() {
            l.set_io_parameter(i, *p);
        }
    }

    /// Parses a request.
    pub fn parse<T: AsRef<[u8]>>(l: &Loginout<T>) -> Result<LoginoutRepr, WireError> {
        check_entry(l.buffer.as_ref(), EntryType::Loginout)?;
        Ok(Self::read(l))
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<LoginoutRepr, WireError> {
        LoginoutRepr::parse(&Loginout::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes (comp_status 0).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, l: &mut Loginout<T>) -> Result<(), WireError> {
        start_entry(
            l.buffer.as_mut(),
            EntryType::Loginout,
            1,
            EntryStatus::empty(),
        )?;
        self.write(l);
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut Loginout::new_unchecked(b))
    }

    fn fmt_common(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} handle={:#010x} nport={} port_id={}",
            self.command, self.handle, self.nport_handle, self.port_id
        )?;
        if !self.flags.is_empty() {
            f.write_str(" flags=")?;
            self.fmt_flags(f)?;
        }
        if self.vp_index != 0 {
            write!(f, " vp={}", self.vp_index)?;
        }
        Ok(())
    }

    /// `true` for LOGO, PRLO and TPRLO (B4/B5 then mean implicit LOGO).
    pub fn is_logout(&self) -> bool {
        matches!(
            self.command,
            LoginoutCommand::Logo | LoginoutCommand::Prlo | LoginoutCommand::Tprlo
        )
    }

    /// The flags with the B4/B5 names that fit the command.
    fn fmt_flags(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let skip: [&str; 2] = if self.is_logout() {
            ["COND_PLOGI", "SKIP_PRLI"]
        } else {
            ["IMPLICIT_LOGO", "IMPLICIT_LOGO_ALL"]
        };
        let mut rest = self.flags.bits();
        let mut first = true;
        for &(name, bits) in LoginoutFlags::NAMES {
            if skip.contains(&name) || rest & bits != bits {
                continue;
            }
            f.write_str(if first { "" } else { "|" })?;
            f.write_str(name)?;
            rest &= !bits;
            first = false;
        }
        if rest != 0 {
            write!(f, "{}{rest:#x}", if first { "" } else { "|" })?;
        }
        Ok(())
    }

    fn visit_common(&self, v: &mut dyn FieldVisitor) {
        const P: [&str; IO_PARAMETERS] = [
            "io_parameter0",
            "io_parameter1",
            "io_parameter2",
            "io_parameter3",
            "io_parameter4",
            "io_parameter5",
            "io_parameter6",
            "io_parameter7",
            "io_parameter8",
            "io_parameter9",
            "io_parameter10",
        ];
        v.field("nport_handle", Value::U16(self.nport_handle.0));
        v.field("control_flags", Value::U16(self.control_flags()));
        v.field("command", self.command.to_value());
        v.field("vp_index", Value::U8(self.vp_index));
        v.field("port_id", Value::PortId(self.port_id));
        v.field("rsp_size", Value::U8(self.rsp_size));
        for (name, p) in P.iter().zip(self.io_parameter) {
            v.field(name, Value::U32(p));
        }
    }
}

impl fmt::Display for LoginoutRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LOGINOUT ")?;
        self.fmt_common(f)
    }
}

impl Visit for LoginoutRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::Loginout.to_value());
        v.field("handle", Value::U32(self.handle));
        self.visit_common(v);
    }
}

/// A LOGINOUT_PORT completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LoginoutCompletionRepr {
    /// 0x03.
    pub entry_status: EntryStatus,
    /// 0x08: 0 OK, 0x31 error.
    pub status: IocbStatus,
    /// Every other field as returned.
    pub entry: LoginoutRepr,
}

impl LoginoutCompletionRepr {
    /// The error subcode (`io_parameter[0]`) when the status is not COMPLETE.
    pub fn error(&self) -> Option<LoginoutError> {
        (self.status != IocbStatus::Complete)
            .then(|| LoginoutError::from(self.entry.io_parameter[0]))
    }

    /// For PORT_ID_USED: the N_Port handle already using the port id (`io_parameter[1]`).
    pub fn handle_in_use(&self) -> Option<NportHandle> {
        (self.error() == Some(LoginoutError::PortIdUsed))
            .then(|| NportHandle(self.entry.io_parameter[1] as u16))
    }

    /// Parses a completion.
    pub fn parse<T: AsRef<[u8]>>(l: &Loginout<T>) -> Result<Self, WireError> {
        check_entry(l.buffer.as_ref(), EntryType::Loginout)?;
        Ok(LoginoutCompletionRepr {
            entry_status: EntryStatus::from_bits_retain(l.entry_status_raw()),
            status: IocbStatus::from(l.comp_status_raw()),
            entry: LoginoutRepr::read(l),
        })
    }

    /// Parses bytes (never panics).
    pub fn parse_bytes(b: &[u8]) -> Result<Self, WireError> {
        Self::parse(&Loginout::new_checked(b)?)
    }

    /// 64.
    pub const fn buffer_len(&self) -> usize {
        ENTRY_LEN
    }

    /// Writes the 64 bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, l: &mut Loginout<T>) -> Result<(), WireError> {
        start_entry(l.buffer.as_mut(), EntryType::Loginout, 1, self.entry_status)?;
        self.entry.write(l);
        l.set_comp_status_raw(self.status.into());
        Ok(())
    }

    /// Writes into bytes.
    pub fn emit_bytes(&self, b: &mut [u8]) -> Result<(), WireError> {
        self.emit(&mut Loginout::new_unchecked(b))
    }
}

impl fmt::Display for LoginoutCompletionRepr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LOGINOUT-DONE status={} ", self.status)?;
        self.entry.fmt_common(f)?;
        if let Some(e) = self.error() {
            write!(f, " error={e}")?;
            if let Some(h) = self.handle_in_use() {
                write!(f, " in_use_by={h}")?;
            }
        }
        if !self.entry_status.is_empty() {
            write!(f, " entry_status={}", self.entry_status)?;
        }
        Ok(())
    }
}

impl Visit for LoginoutCompletionRepr {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("entry_type", EntryType::Loginout.to_value());
        v.field("entry_status", Value::U8(self.entry_status.bits()));
        v.field("handle", Value::U32(self.entry.handle));
        v.field("comp_status", self.status.to_value());
        self.entry.visit_common(v);
    }
}

// A view displays as a request.
view_display!(Loginout, LoginoutRepr::parse, "LOGINOUT");

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    #[test]
    fn golden_logout_request() {
        let mut b = [0u8; 64];
        b[0x00] = 0x52; // LOGINOUT
        b[0x01] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x11, 0x00, 0x00, 0x00]); // handle 0x11
        b[0x0A..0x0C].copy_from_slice(&[0x81, 0x00]); // nport_handle 0x81
        b[0x0C..0x0E].copy_from_slice(&[0x98, 0x00]); // LOGO (8) | B4 | B7
        b[0x10..0x13].copy_from_slice(&[0x03, 0x02, 0x01]); // port id 010203 LE
        let r = LoginoutRepr::parse_bytes(&b).unwrap();
        assert_eq!(
            r,
            LoginoutRepr::logout(0x11, NportHandle(0x81), PortId::new(0x010203))
        );
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "LOGINOUT LOGO handle=0x00000011 nport=0x0081 port_id=010203 flags=IMPLICIT_LOGO|FREE_NPORT_HANDLE"
        );
        let p = LoginoutRepr {
            flags: LoginoutFlags::COND_PLOGI
                | LoginoutFlags::SKIP_PRLI
                | LoginoutFlags::from_bits_retain(0x8000),
            ..LoginoutRepr::plogi(1, NportHandle(2), PortId::new(3))
        };
        assert!(p.to_string().ends_with("flags=COND_PLOGI|SKIP_PRLI|0x8000"));
        assert!(!p.is_logout() && r.is_logout());
        let c = Collect::of(&r);
        c.assert_unique();
        assert_eq!(c.get("command"), "LOGO");
        assert_eq!(c.get("control_flags"), "152");
        let v = Loginout::new_checked(&b[..]).unwrap();
        assert_eq!(
            (v.io_parameter(10), v.io_parameter(11), v.entry_count()),
            (Some(0), None, 1)
        );
    }

    #[test]
    fn golden_failed_plogi_completion() {
        let mut b = [0u8; 64];
        b[0x00] = 0x52;
        b[0x01] = 0x01;
        b[0x04..0x08].copy_from_slice(&[0x12, 0x00, 0x00, 0x00]); // handle
        b[0x08..0x0A].copy_from_slice(&[0x31, 0x00]); // comp_status error
        b[0x0A..0x0C].copy_from_slice(&[0x82, 0x00]); // nport_handle
        b[0x0C..0x0E].copy_from_slice(&[0x00, 0x00]); // PLOGI
        b[0x0E] = 0x02; // vp_index
        b[0x10..0x13].copy_from_slice(&[0xef, 0x00, 0x00]); // port id 0000ef
        b[0x13] = 0x04; // rsp_size
        b[0x14..0x18].copy_from_slice(&[0x1a, 0x00, 0x00, 0x00]); // io_parameter[0] PORT_ID_USED
        b[0x18..0x1C].copy_from_slice(&[0x81, 0x00, 0x00, 0x00]); // io_parameter[1] handle in use
        let r = LoginoutCompletionRepr::parse_bytes(&b).unwrap();
        assert_eq!(r.status, IocbStatus::IocbError);
        assert_eq!(r.error(), Some(LoginoutError::PortIdUsed));
        assert_eq!(r.handle_in_use(), Some(NportHandle(0x81)));
        assert_eq!(
            (r.entry.vp_index, r.entry.rsp_size, r.entry.command),
            (2, 4, LoginoutCommand::Plogi)
        );
        let mut out = [0xA5u8; 64];
        r.emit_bytes(&mut out).unwrap();
        assert_eq!(out, b);
        assert_eq!(
            r.to_string(),
            "LOGINOUT-DONE status=IOCB_ERROR PLOGI handle=0x00000012 nport=0x0082 port_id=0000ef vp=2 error=PORT_ID_USED in_use_by=0x0081"
        );
        let ok = LoginoutCompletionRepr {
            status: IocbStatus::Complete,
            entry_status: EntryStatus::empty(),
            entry: r.entry,
        };
        assert_eq!((ok.error(), ok.handle_in_use()), (None, None));
        let bounced = LoginoutCompletionRepr {
            entry_status: EntryStatus::BUSY,
            ..ok
        };
        assert!(bounced.to_string().ends_with("entry_status=BUSY"));
        Collect::of(&r).assert_unique();
        assert_eq!((r.buffer_len(), ok.entry.buffer_len()), (64, 64));
        assert_eq!(LoginoutError::from(0x1F), LoginoutError::NoFlogiAcc);
    }
}
