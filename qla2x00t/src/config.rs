//! Driver configuration.

use core::time::Duration;

use rscst_core::RelativePortId;
use rscst_fw::Wwn;
use rscst_fw::icb::ConnectionOption;

use crate::firmware::FirmwareSource;

/// How the driver runs one port. [`IspConfig::new`] gives the defaults of
/// the reference (Linux) where it states them.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct IspConfig<'a> {
    /// Our WWPN (ICB port_name).
    pub port_name: Wwn,
    /// Our WWNN (ICB node_name).
    pub node_name: Wwn,
    /// The firmware to load.
    pub firmware: FirmwareSource<'a>,
    /// The SCSI target port this FC port is (core configuration).
    pub relative_port: RelativePortId,
    /// Connection option override (ICB fw options 2 B4–B6); `None` keeps the
    /// generation default.
    pub connection: Option<ConnectionOption>,
    /// Mailbox command timeout (Linux: 30 s).
    pub mailbox_timeout: Duration,
    /// Limit for each register wait of the reset sequence.
    pub reset_timeout: Duration,
    /// GET_FIRMWARE_STATE polling interval (Linux: 500 ms).
    pub ready_poll: Duration,
    /// How long to wait for the firmware to be ready before going online
    /// with the link down and waiting for LOOP_UP (Linux: 20 s).
    pub ready_timeout: Duration,
    /// First backoff after a failed bring-up; doubles per attempt.
    pub backoff_initial: Duration,
    /// Largest backoff.
    pub backoff_max: Duration,
    /// CTIO7 timeout field (seconds, reference §7.3; Linux 10).
    pub ctio_timeout_secs: u16,
    /// The driver's own deadline for a tracked IOCB's completion; after it
    /// the exchange is terminated, and if the terminate is not completed by
    /// the same deadline again, the chip is reset.
    pub completion_timeout: Duration,
    /// How long sessions survive a link loss before their I_T nexus is
    /// ended (unless the initiator logs in again first).
    pub port_down_timeout: Duration,
    /// Largest Data-In/Data-Out byte count of one CTIO7; larger transfers are
    /// split into several CTIO7s at increasing relative offsets.
    pub max_ctio_bytes: u32,
    /// New commands get BUSY when the commands in flight reach this
    /// percentage of the firmware's exchange count (Linux: 90).
    pub busy_threshold_percent: u8,
    /// Request slots kept for the driver's own IOCBs (NOTIFY_ACK, ABTS_RESP,
    /// terminate, BUSY, MARKER): core requests are refused with `Busy` when
    /// they would dip into them.
    pub internal_reserve: usize,
    /// Most ATIO entries handled per `poll` (bounds latency of other work).
    pub atio_budget: usize,
    /// Most response entries handled per `poll`.
    pub response_budget: usize,
}

impl<'a> IspConfig<'a> {
    /// Defaults for a port with these names and firmware.
    pub fn new(port_name: Wwn, node_name: Wwn, firmware: FirmwareSource<'a>) -> IspConfig<'a> {
        IspConfig {
            port_name,
            node_name,
            firmware,
            relative_port: RelativePortId(1),
            connection: None,
            mailbox_timeout: Duration::from_secs(30),
            reset_timeout: Duration::from_secs(1),
            ready_poll: Duration::from_millis(500),
            ready_timeout: Duration::from_secs(20),
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(30),
            ctio_timeout_secs: 10,
            completion_timeout: Duration::from_secs(15),
            port_down_timeout: Duration::from_secs(10),
            max_ctio_bytes: 16 << 20,
            busy_threshold_percent: 90,
            internal_reserve: 8,
            atio_budget: 128,
            response_budget: 256,
        }
    }
}
