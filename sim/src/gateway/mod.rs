//! The iSCSI-to-FC gateway: every iSCSI session of the [`Portal`](crate::iscsi::Portal)
//! becomes a simulated FC initiator N_Port that logs in to the simulated HBA, so real
//! iSCSI initiators (libiscsi, open-iscsi, qemu, fio) reach the FC target stack (driver
//! and SCSI core) exactly as FC hosts would.
//!
//! Heads up: this is the SAN side of the portal's seam ([`crate::iscsi::SanPort`] /
//! [`crate::iscsi::SanEvents`]); read `sim/src/iscsi/san.rs` first. FC facts follow
//! FCP-4 and FC-LS-3; the initiator ports are the simulator's ([`crate::initiator`]).
//!
//! ## Mapping
//!
//! | iSCSI (RFC 7143) | FC (FCP-4 / FC-LS-3) |
//! |---|---|
//! | session login (initiator name + ISID) | an initiator N_Port with WWPN [`initiator_wwpn`]: FLOGI, PLOGI, PRLI to the HBA |
//! | logout, connection loss, reinstatement | LOGO (the core sees the I_T nexus end) |
//! | SCSI Command (CDB, attribute, EDTL, R/W) | FCP_CMND (CDB, task attribute, FCP_DL, RDDATA/WRDATA) |
//! | R2T ← / Data-Out → | XFER_RDY → `ready_to_transfer`; `data_out` → FCP_DATA frames |
//! | Data-In | FCP_DATA frames → `data_in` |
//! | SCSI Response (status, sense, residual) | FCP_RSP (status, FCP_SNS_INFO, FCP_RESID) |
//! | ABORT TASK | ABTS of that exchange; BA_ACC → function complete, BA_RJT → task does not exist |
//! | ABORT TASK SET, CLEAR TASK SET, LOGICAL UNIT RESET, CLEAR ACA | FCP_CMND with that TM flag |
//! | TARGET WARM RESET, TARGET COLD RESET | FCP_CMND with TARGET RESET |
//! | TMF response | RSP_CODE 0 → complete, 4 / 5 → rejected, 9 → LUN does not exist |
//!
//! A session is a nexus: when the target logs the port out (or the HBA leaves the
//! fabric), the port logs in again by itself; the commands that were outstanding end
//! with CHECK CONDITION, ABORTED COMMAND, LOGICAL UNIT COMMUNICATION FAILURE (0B/08/00),
//! and commands arriving meanwhile get BUSY.
//!
//! ## Ports
//!
//! Initiator ports are pooled (at most [`GatewayConfig::max_ports`]): a session whose
//! WWPN has an idle port reuses it; otherwise the least recently used idle port takes
//! the new name (link down, new WWPN/WWNN, link up, FLOGI) — a virtual port coming and
//! going, as NPIV hosts do; only when every port is busy is a login refused (target
//! error, out of resources).
//!
//! ## Run modes and copies
//!
//! * Stepped or run-to-completion ([`Gateway`]): the caller owns the [`Sim`](crate::Sim); SCSI
//!   requests go into the simulation synchronously (Data-Out bytes are copied once, from
//!   the portal's receive buffer into the FC data frames); the answers are collected
//!   while the simulation runs and handed to the portal by [`Gateway::deliver`]. Data-In
//!   stays in the FC data frames that carried it (the gateway keeps them:
//!   [`crate::initiator::InitiatorHandler::on_data_frame`]) until the portal copies the
//!   payloads, as the parts of one Data-In, into the socket buffer
//!   ([`crate::iscsi::SanEvents::data_in_parts`]); a run of more than 32 frames is
//!   joined in a reused buffer first.
//! * Threaded ([`ThreadedGateway`]): the simulation runs on its own thread
//!   ([`crate::SimThread`]) and the portal on another; requests are posted to the
//!   simulation thread, answers come back through a queue that wakes the portal.

mod engine;
mod rtc;
mod threaded;

use core::fmt;
use core::time::Duration;

use rscst_fw::Wwn;

pub use rtc::{Gateway, GatewayPort};
pub use threaded::ThreadedGateway;

use crate::iscsi::wire::Isid;

/// Gateway settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Initiator N_Ports at most (iSCSI sessions at once); the fabric has room for 250,
    /// the target for as many sessions as its driver and core were built with.
    pub max_ports: usize,
    /// An FC command not answered within this time is aborted (ABTS) and ends with
    /// CHECK CONDITION, ABORTED COMMAND, LOGICAL UNIT COMMUNICATION TIME-OUT.
    pub command_timeout: Duration,
    /// Largest FC frame payload the initiator ports send and receive (256..=2112).
    pub max_payload: u16,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_ports: 32,
            command_timeout: Duration::from_secs(60),
            max_payload: 2048,
        }
    }
}

/// Gateway counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GatewayStats {
    /// Sessions whose FC login succeeded.
    pub logins: u64,
    /// Logins refused (no port, no target, PLOGI/PRLI rejected).
    pub login_failures: u64,
    /// Sessions ended (LOGO done).
    pub logouts: u64,
    /// Sessions in full feature phase now.
    pub sessions: u64,
    /// SCSI commands sent as FCP_CMND.
    pub commands: u64,
    /// Commands refused before reaching the fabric (BUSY, TASK SET FULL, bad CDB).
    pub refused: u64,
    /// Commands ended without an FCP_RSP (timeout, nexus loss).
    pub failed: u64,
    /// ABTS sent for ABORT TASK or for tasks the portal gave up.
    pub aborts: u64,
    /// FCP task management requests sent.
    pub tmfs: u64,
    /// Read bytes passed to the portal.
    pub bytes_in: u64,
    /// Write bytes passed to the fabric.
    pub bytes_out: u64,
    /// Idle ports renamed for a new session.
    pub port_renames: u64,
    /// Initiator ports created.
    pub ports: u64,
}

impl fmt::Display for GatewayStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sessions {} (logins {}, failed {}, logouts {}), commands {} (refused {}, failed {}), \
             aborts {}, tmfs {}, in {} B, out {} B, ports {} (renamed {})",
            self.sessions,
            self.logins,
            self.login_failures,
            self.logouts,
            self.commands,
            self.refused,
            self.failed,
            self.aborts,
            self.tmfs,
            self.bytes_in,
            self.bytes_out,
            self.ports,
            self.port_renames
        )
    }
}

/// FNV-1a, 64 bits.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in *p {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        // A separator, so ("ab", "c") and ("a", "bc") differ.
        h ^= 0xff;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The company identifier in the gateway's WWNs: `02:52:53` ("RS" with the locally
/// administered bit set), so they never collide with a vendor's.
pub const GATEWAY_OUI: u32 = 0x02_52_53;

fn naa5(hash: u64) -> Wwn {
    // NAA 5 (IEEE Registered): 4-bit NAA, 24-bit company id, 36-bit vendor specific.
    let v = (5u64 << 60) | (u64::from(GATEWAY_OUI) << 36) | (hash & 0xF_FFFF_FFFF);
    Wwn::from_u64(v)
}

/// The WWPN of the initiator port that stands for an iSCSI initiator port (SCSI initiator
/// port name = iSCSI name + ISID, SAM-5 / RFC 7143 §4.2.7.1): NAA 5 with
/// [`GATEWAY_OUI`] and 36 bits of a hash of the lower-cased name and the ISID. The same
/// session identity always gets the same WWPN (so reservations, unit attentions and LUN
/// maps follow it), different ones practically never share one.
pub fn initiator_wwpn(name: &str, isid: Isid) -> Wwn {
    let lower = name.to_ascii_lowercase();
    // Bit 35 of the vendor field set: port names; clear: node names.
    naa5(fnv1a(&[lower.as_bytes(), &isid.0]) | (1 << 35))
}

/// The WWNN of the initiator ports of one iSCSI initiator node (its name alone).
pub fn initiator_wwnn(name: &str) -> Wwn {
    let lower = name.to_ascii_lowercase();
    naa5(fnv1a(&[lower.as_bytes()]) & !(1 << 35))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wwpn_is_stable_naa5_and_distinct() {
        let isid = Isid([0x80, 0, 0, 0x12, 0x34, 0x56]);
        let a = initiator_wwpn("iqn.2024-01.test:init", isid);
        assert_eq!(
            a,
            initiator_wwpn("IQN.2024-01.TEST:INIT", isid),
            "case-insensitive"
        );
        assert_eq!(a.0[0] >> 4, 5, "NAA 5");
        let oui = (u32::from(a.0[0] & 0x0f) << 20)
            | (u32::from(a.0[1]) << 12)
            | (u32::from(a.0[2]) << 4)
            | u32::from(a.0[3] >> 4);
        assert_eq!(oui, GATEWAY_OUI);
        let other_isid = Isid([0x80, 0, 0, 0x12, 0x34, 0x57]);
        assert_ne!(a, initiator_wwpn("iqn.2024-01.test:init", other_isid));
        assert_ne!(a, initiator_wwpn("iqn.2024-01.test:init2", isid));
        let n = initiator_wwnn("iqn.2024-01.test:init");
        assert_ne!(a, n, "port and node names differ");
        assert_eq!(n, initiator_wwnn("iqn.2024-01.test:INIT"));
        // 1000 sessions of one initiator: no collision.
        let mut seen = std::collections::HashSet::new();
        for i in 0..1000u32 {
            let b = i.to_be_bytes();
            let w = initiator_wwpn("iqn.x", Isid([0x80, 0, b[0], b[1], b[2], b[3]]));
            assert!(seen.insert(w), "collision at {i}");
        }
    }

    #[test]
    fn stats_display() {
        let s = GatewayStats {
            commands: 3,
            ..Default::default()
        };
        assert!(s.to_string().contains("commands 3"));
    }
}
