//! Asynchronous events: the codes firmware posts in mb0 with host_status type 0x12, and a
//! parsed [`AsyncEvent`] with the parameters of mb1..mb7.
//!
//! Source: reference §4. Some codes mean different things per family (0x8016 LIP_F8 on FC,
//! DCBX_START on 81xx; 0x8030 POINT_TO_POINT vs DCBX_COMPLETE; 0x8031–0x8035): the enum
//! names the FC meaning and its doc names the other.

use core::fmt;

use crate::value::{FieldVisitor, Value, Visit};
use crate::{NportHandle, PortId};

enum_with_unknown! {
    /// An async event code (mb0).
    pub enum AsyncEventCode(u16) {
        /// 0x8001: marker needed.
        Reset = 0x8001 => "RESET",
        /// 0x8002: mb1..mb3 error info; ISP reset.
        SystemError = 0x8002 => "SYSTEM_ERR",
        /// 0x8003: request-queue DMA error; ISP reset.
        RequestTransferError = 0x8003 => "REQ_TRANSFER_ERR",
        /// 0x8004: response-queue DMA error; ISP reset.
        ResponseTransferError = 0x8004 => "RSP_TRANSFER_ERR",
        /// 0x8005: request-queue wake-up.
        WakeupThreshold = 0x8005 => "WAKEUP_THRES",
        /// 0x800F: 84xx only.
        Isp84xxAlert = 0x800F => "ISP84XX_ALERT",
        /// 0x8010: mb1 = LIP type; loop down.
        LipOccurred = 0x8010 => "LIP_OCCURRED",
        /// 0x8011: link up (any topology); mb1 = speed.
        LoopUp = 0x8011 => "LOOP_UP",
        /// 0x8012: link down; mb1..mb3 (81xx: mb4) reason.
        LoopDown = 0x8012 => "LOOP_DOWN",
        /// 0x8013: loop down, marker needed.
        LipReset = 0x8013 => "LIP_RESET",
        /// 0x8014: port database changed.
        PortUpdate = 0x8014 => "PORT_UPDATE",
        /// 0x8015: registered state change.
        RscnUpdate = 0x8015 => "RSCN_UPDATE",
        /// 0x8016: LIP_F8 on FC chips; DCBX_START on 81xx.
        LipF8 = 0x8016 => "LIP_F8",
        /// 0x8017: ISP reset.
        LoopInitError = 0x8017 => "LOOP_INIT_ERR",
        /// 0x801B.
        FabricAuthRequest = 0x801B => "FABRIC_AUTH_REQ",
        /// 0x801E: congestion notification.
        CongestionNotification = 0x801E => "CONGN_NOTI_RECV",
        /// 0x8020: legacy fast-post (initiator only).
        ScsiCompletion = 0x8020 => "SCSI_COMPLETION",
        /// 0x8021: legacy.
        CtioCompletion = 0x8021 => "CTIO_COMPLETION",
        /// 0x8028.
        TraceNotification = 0x8028 => "TRACE_NOTIFICATION",
        /// 0x8030: point-to-point detected (FC); DCBX_COMPLETE on 81xx.
        PointToPoint = 0x8030 => "POINT_TO_POINT",
        /// 0x8031: CMPLT_1_16BIT (FC); FCF_CONF_ERR on 81xx.
        Cmplt1_16Bit = 0x8031 => "CMPLT_1_16BIT",
        /// 0x8032: CMPLT_2_16BIT (FC); DCBX_PARAM_UPDATE on 81xx.
        Cmplt2_16Bit = 0x8032 => "CMPLT_2_16BIT",
        /// 0x8033.
        Cmplt3_16Bit = 0x8033 => "CMPLT_3_16BIT",
        /// 0x8034.
        Cmplt4_16Bit = 0x8034 => "CMPLT_4_16BIT",
        /// 0x8035.
        Cmplt5_16Bit = 0x8035 => "CMPLT_5_16BIT",
        /// 0x8036: connection mode change; loop resync.
        ChangeInConnection = 0x8036 => "CHG_IN_CONNECTION",
        /// 0x8040: response-queue update via the async path.
        ZioResponse = 0x8040 => "ZIO_RESPONSE",
        /// 0x8042.
        Cmplt2_32Bit = 0x8042 => "CMPLT_2_32BIT",
        /// 0x8048.
        DiscardRndFrame = 0x8048 => "DISCARD_RND_FRAME",
        /// 0x8049: firmware rejected an FCP_CMND; mb3 == 1 = exchange starvation.
        RejectedFcpCmd = 0x8049 => "REJECTED_FCP_CMD",
        /// 0x8050.
        FwNotStarted = 0x8050 => "FW_NOT_STARTED",
        /// 0x8051.
        FwStarting = 0x8051 => "FW_STARTING",
        /// 0x8060.
        FwRestartComplete = 0x8060 => "FW_RESTART_CMPLT",
        /// 0x8061.
        FwInitRequired = 0x8061 => "FW_INIT_REQUIRED",
        /// 0x8062.
        FwShutdownRequested = 0x8062 => "FW_SHUTDOWN_REQUESTED",
        /// 0x8070.
        TemperatureAlert = 0x8070 => "TEMPERATURE_ALERT",
        /// 0x8080.
        DportDiagnostics = 0x8080 => "DPORT_DIAGNOSTICS",
        /// 0x8100 (81xx/83xx).
        IdcComplete = 0x8100 => "IDC_COMPLETE",
        /// 0x8101 (81xx/83xx).
        IdcNotify = 0x8101 => "IDC_NOTIFY",
        /// 0x8102 (81xx/83xx).
        IdcTimeExtension = 0x8102 => "IDC_TIME_EXT",
        /// 0x8130 (enabled by fw option 3 B10).
        TransceiverInsertion = 0x8130 => "TRANSCEIVER_INSERTION",
        /// 0x8131.
        TransceiverRemoval = 0x8131 => "TRANSCEIVER_REMOVAL",
        /// 0x8200 (83xx FCoE).
        IdcAen = 0x8200 => "IDC_AEN",
        /// 0x8401.
        InitFailure = 0x8401 => "INIT_FAILURE",
        /// 0x8402.
        MirrorLunChange = 0x8402 => "MIRROR_LUN_CHANGE",
        /// 0x8500.
        BootInProgress = 0x8500 => "BOOT_IN_PROGRESS",
        /// 0x8502.
        ResetFactoryDefaults = 0x8502 => "RESET_FACTORY_DEFAULTS",
        /// 0x8600.
        PollDiagState = 0x8600 => "POLL_DIAG_STATE",
    }
}

enum_with_unknown! {
    /// LOOP_UP mb1: link speed.
    pub enum LinkSpeed(u16) {
        /// 0.
        Gbps1 = 0 => "1G",
        /// 1.
        Gbps2 = 1 => "2G",
        /// 3.
        Gbps4 = 3 => "4G",
        /// 4.
        Gbps8 = 4 => "8G",
        /// 5.
        Gbps16 = 5 => "16G",
        /// 6.
        Gbps32 = 6 => "32G",
        /// 7.
        Gbps64 = 7 => "64G",
        /// 0x13.
        Gbps10 = 0x13 => "10G",
    }
}

/// A parsed asynchronous event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum AsyncEvent {
    /// 0x8010: a LIP occurred; loop is down.
    LipOccurred {
        /// mb1.
        lip_type: u16,
    },
    /// 0x8011: link up.
    LoopUp {
        /// mb1.
        speed: LinkSpeed,
        /// mb2 B0 (83xx and later): FEC on.
        fec: bool,
    },
    /// 0x8012: link down.
    LoopDown {
        /// mb1..mb4 (mb4 only meaningful on 81xx/8031).
        reason: [u16; 4],
    },
    /// 0x8014: a port's login state changed.
    PortUpdate {
        /// mb1; [`NportHandle::NONE`] (0xFFFF) = global.
        nport_handle: NportHandle,
        /// mb2: the new login state (0x04 PLOGI complete, 0x06 PRLI complete, 0x07 logged out).
        login_state: u16,
        /// mb3 low byte; 0xFF = all virtual ports.
        vp_index: u8,
    },
    /// 0x8015: a registered state change.
    RscnUpdate {
        /// `((mb1 & 0xFF) << 16) | mb2`.
        port_id: PortId,
        /// mb1 bits 8–9: 0 port, 1 area, 2 domain, 3 fabric.
        address_format: u8,
        /// mb3 low byte.
        vp_index: u8,
    },
    /// 0x8049: the firmware rejected an FCP_CMND.
    RejectedFcpCmd {
        /// mb3 == 1: no exchange was available.
        exchange_starvation: bool,
    },
    /// Any other code, with mb1..mb7 kept raw (0x8001 RESET, 0x8002 SYSTEM_ERR, ...).
    Other {
        /// mb0.
        code: AsyncEventCode,
        /// mb1..mb7.
        mb: [u16; 7],
    },
}

impl AsyncEvent {
    /// Parses mb0..mb7 of an async event (mb0 from `host_status[31:16]`).
    pub fn parse(mb: &[u16; 8]) -> AsyncEvent {
        let code = AsyncEventCode::from(mb[0]);
        match code {
            AsyncEventCode::LipOccurred => AsyncEvent::LipOccurred { lip_type: mb[1] },
            AsyncEventCode::LoopUp => AsyncEvent::LoopUp {
                speed: LinkSpeed::from(mb[1]),
                fec: mb[2] & 1 != 0,
            },
            AsyncEventCode::LoopDown => AsyncEvent::LoopDown {
                reason: [mb[1], mb[2], mb[3], mb[4]],
            },
            AsyncEventCode::PortUpdate => AsyncEvent::PortUpdate {
                nport_handle: NportHandle(mb[1]),
                login_state: mb[2],
                vp_index: mb[3] as u8,
            },
            AsyncEventCode::RscnUpdate => AsyncEvent::RscnUpdate {
                port_id: PortId::new((mb[1] as u32 & 0xFF) << 16 | mb[2] as u32),
                address_format: ((mb[1] >> 8) & 3) as u8,
                vp_index: mb[3] as u8,
            },
            AsyncEventCode::RejectedFcpCmd => AsyncEvent::RejectedFcpCmd {
                exchange_starvation: mb[3] == 1,
            },
            _ => AsyncEvent::Other {
                code,
                mb: [mb[1], mb[2], mb[3], mb[4], mb[5], mb[6], mb[7]],
            },
        }
    }

    /// Encodes mb0..mb7 (for a simulator). `parse(emit(e)) == e` for every event built by
    /// `parse`, and for hand-built events whose fields fit their registers.
    pub fn emit(&self) -> [u16; 8] {
        let mut mb = [0u16; 8];
        mb[0] = self.code().into();
        match *self {
            AsyncEvent::LipOccurred { lip_type } => mb[1] = lip_type,
            AsyncEvent::LoopUp { speed, fec } => {
                mb[1] = speed.into();
                mb[2] = fec as u16;
            }
            AsyncEvent::LoopDown { reason } => mb[1..5].copy_from_slice(&reason),
            AsyncEvent::PortUpdate {
                nport_handle,
                login_state,
                vp_index,
            } => {
                mb[1] = nport_handle.0;
                mb[2] = login_state;
                mb[3] = vp_index as u16;
            }
            AsyncEvent::RscnUpdate {
                port_id,
                address_format,
                vp_index,
            } => {
                mb[1] = ((address_format as u16 & 3) << 8) | port_id.domain() as u16;
                mb[2] = port_id.get() as u16;
                mb[3] = vp_index as u16;
            }
            AsyncEvent::RejectedFcpCmd {
                exchange_starvation,
            } => mb[3] = exchange_starvation as u16,
            AsyncEvent::Other { mb: rest, .. } => mb[1..].copy_from_slice(&rest),
        }
        mb
    }

    /// The event code.
    pub fn code(&self) -> AsyncEventCode {
        match self {
            AsyncEvent::LipOccurred { .. } => AsyncEventCode::LipOccurred,
            AsyncEvent::LoopUp { .. } => AsyncEventCode::LoopUp,
            AsyncEvent::LoopDown { .. } => AsyncEventCode::LoopDown,
            AsyncEvent::PortUpdate { .. } => AsyncEventCode::PortUpdate,
            AsyncEvent::RscnUpdate { .. } => AsyncEventCode::RscnUpdate,
            AsyncEvent::RejectedFcpCmd { .. } => AsyncEventCode::RejectedFcpCmd,
            AsyncEvent::Other { code, .. } => *code,
        }
    }

    /// `true` for events after which the Linux driver resets the ISP (SYSTEM_ERR, queue
    /// transfer errors, LOOP_INIT_ERR).
    pub fn needs_isp_reset(&self) -> bool {
        matches!(
            self.code(),
            AsyncEventCode::SystemError
                | AsyncEventCode::RequestTransferError
                | AsyncEventCode::ResponseTransferError
                | AsyncEventCode::LoopInitError
        )
    }

    /// `true` for events after which a MARKER (sync all) must precede new I/O
    /// (RESET, LIP_RESET, LIP_OCCURRED, LOOP_DOWN, and a global PORT_UPDATE).
    pub fn needs_marker(&self) -> bool {
        match self {
            AsyncEvent::PortUpdate { nport_handle, .. } => nport_handle.is_none(),
            AsyncEvent::LipOccurred { .. } | AsyncEvent::LoopDown { .. } => true,
            e => matches!(e.code(), AsyncEventCode::Reset | AsyncEventCode::LipReset),
        }
    }
}

impl fmt::Display for AsyncEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ASYNC {}", self.code())?;
        match self {
            AsyncEvent::LipOccurred { lip_type } => write!(f, " lip_type={lip_type:#06x}"),
            AsyncEvent::LoopUp { speed, fec } => {
                write!(f, " speed={speed}")?;
                if *fec {
                    f.write_str(" FEC")?;
                }
                Ok(())
            }
            AsyncEvent::LoopDown { reason } => {
                write!(
                    f,
                    " reason={:#06x},{:#06x},{:#06x},{:#06x}",
                    reason[0], reason[1], reason[2], reason[3]
                )
            }
            AsyncEvent::PortUpdate {
                nport_handle,
                login_state,
                vp_index,
            } => {
                write!(
                    f,
                    " nport_handle={nport_handle} login_state={login_state:#04x} vp_index={vp_index}"
                )
            }
            AsyncEvent::RscnUpdate {
                port_id,
                address_format,
                vp_index,
            } => {
                write!(
                    f,
                    " port_id={port_id} format={address_format} vp_index={vp_index}"
                )
            }
            AsyncEvent::RejectedFcpCmd {
                exchange_starvation,
            } => {
                if *exchange_starvation {
                    f.write_str(" EXCHANGE_STARVATION")?;
                }
                Ok(())
            }
            AsyncEvent::Other { mb, .. } => {
                for (i, v) in mb.iter().enumerate() {
                    if *v != 0 {
                        write!(f, " mb{}={v:#06x}", i + 1)?;
                    }
                }
                Ok(())
            }
        }
    }
}

impl Visit for AsyncEvent {
    fn visit(&self, v: &mut dyn FieldVisitor) {
        v.field("code", self.code().to_value());
        match *self {
            AsyncEvent::LipOccurred { lip_type } => v.field("lip_type", Value::U16(lip_type)),
            AsyncEvent::LoopUp { speed, fec } => {
                v.field("speed", speed.to_value());
                v.field("fec", Value::Bool(fec));
            }
            AsyncEvent::LoopDown { reason } => {
                for (name, r) in ["mb1", "mb2", "mb3", "mb4"].into_iter().zip(reason) {
                    v.field(name, Value::U16(r));
                }
            }
            AsyncEvent::PortUpdate {
                nport_handle,
                login_state,
                vp_index,
            } => {
                v.field("nport_handle", Value::U16(nport_handle.0));
                v.field("login_state", Value::U16(login_state));
                v.field("vp_index", Value::U8(vp_index));
            }
            AsyncEvent::RscnUpdate {
                port_id,
                address_format,
                vp_index,
            } => {
                v.field("port_id", Value::PortId(port_id));
                v.field("address_format", Value::U8(address_format));
                v.field("vp_index", Value::U8(vp_index));
            }
            AsyncEvent::RejectedFcpCmd {
                exchange_starvation,
            } => v.field("exchange_starvation", Value::Bool(exchange_starvation)),
            AsyncEvent::Other { mb, .. } => {
                for (name, r) in ["mb1", "mb2", "mb3", "mb4", "mb5", "mb6", "mb7"]
                    .into_iter()
                    .zip(mb)
                {
                    v.field(name, Value::U16(r));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::value::test_util::Collect;
    use std::string::ToString;

    #[test]
    fn parses_parameters() {
        let e = AsyncEvent::parse(&[0x8011, 5, 1, 0, 0, 0, 0, 0]);
        assert_eq!(
            e,
            AsyncEvent::LoopUp {
                speed: LinkSpeed::Gbps16,
                fec: true
            }
        );
        assert_eq!(e.to_string(), "ASYNC LOOP_UP speed=16G FEC");
        let e = AsyncEvent::parse(&[0x8015, 0x0201, 0x0203, 0x00FF, 0, 0, 0, 0]);
        assert_eq!(
            e,
            AsyncEvent::RscnUpdate {
                port_id: PortId::new(0x010203),
                address_format: 2,
                vp_index: 0xFF
            }
        );
        let e = AsyncEvent::parse(&[0x8014, 0xFFFF, 0x07, 0x01FF, 0, 0, 0, 0]);
        assert_eq!(
            e,
            AsyncEvent::PortUpdate {
                nport_handle: NportHandle::NONE,
                login_state: 7,
                vp_index: 0xFF
            }
        );
        assert!(e.needs_marker());
        let e = AsyncEvent::parse(&[0x8049, 0, 0, 1, 0, 0, 0, 0]);
        assert_eq!(
            e,
            AsyncEvent::RejectedFcpCmd {
                exchange_starvation: true
            }
        );
        let e = AsyncEvent::parse(&[0x8002, 1, 2, 3, 0, 0, 0, 0]);
        assert!(e.needs_isp_reset() && !e.needs_marker());
        assert_eq!(
            e.to_string(),
            "ASYNC SYSTEM_ERR mb1=0x0001 mb2=0x0002 mb3=0x0003"
        );
        let e = AsyncEvent::parse(&[0x8012, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            e,
            AsyncEvent::LoopDown {
                reason: [1, 2, 3, 4]
            }
        );
        assert_eq!(
            AsyncEvent::parse(&[0x8010, 0xF7F7, 0, 0, 0, 0, 0, 0]),
            AsyncEvent::LipOccurred { lip_type: 0xF7F7 }
        );
        assert_eq!(AsyncEventCode::from(0x9999).to_string(), "UNKNOWN(0x9999)");
        assert_eq!(LinkSpeed::from(0x13), LinkSpeed::Gbps10);
    }

    #[test]
    fn emit_round_trips() {
        let samples: [[u16; 8]; 8] = [
            [0x8010, 0xF7F7, 0, 0, 0, 0, 0, 0],
            [0x8011, 4, 0, 0, 0, 0, 0, 0],
            [0x8012, 1, 2, 3, 4, 0, 0, 0],
            [0x8014, 0x10, 6, 0, 0, 0, 0, 0],
            [0x8015, 0x0301, 0x0203, 2, 0, 0, 0, 0],
            [0x8049, 0, 0, 1, 0, 0, 0, 0],
            [0x8001, 1, 2, 3, 4, 5, 6, 7],
            [0x7777, 1, 0, 0, 0, 0, 0, 9],
        ];
        for mb in samples {
            let e = AsyncEvent::parse(&mb);
            assert_eq!(e.emit(), mb, "{e}");
            let c = Collect::of(&e);
            c.assert_unique();
            assert_eq!(c.0[0].0, "code");
        }
    }
}
