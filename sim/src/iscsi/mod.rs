//! An iSCSI target portal (RFC 7143), the front door of the simulator's iSCSI-to-FC
//! gateway: real initiators (open-iscsi, libiscsi, qemu) log in here, and every session
//! becomes a nexus on the SAN side behind the [`SanPort`] seam.
//!
//! Heads up: read RFC 7143 first; section numbers below refer to it.
//!
//! Layers, bottom up:
//! * [`wire`]: the 48-byte BHS view and one `Repr` per PDU (§11), golden-byte tested.
//! * [`digest`]: CRC32C header/data digests (§12.1).
//! * [`text`], [`params`]: `key=value` text (§6.1) and operational negotiation (§6.2,
//!   §13).
//! * [`chap`]: CHAP with MD5, one-way and mutual (§12.1.3).
//! * [`Portal`]: the sans-IO state machine of all connections and sessions: login (§6),
//!   full feature phase (§4, §11), task management (§11.5), NOP (§11.18), SendTargets
//!   (§12.3), logout (§11.14), reinstatement (§6.3.5). Bytes in, bytes out, time in; no
//!   sockets, no threads, deterministic.
//! * [`net`]: a small std network layer: a listener plus either a run-to-completion
//!   loop that also polls the SAN, or a network thread talking to a SAN thread over
//!   channels.
//!
//! What is implemented and what is not is listed in `sim/README.md`.

pub mod chap;
pub(crate) mod conn;
pub mod digest;
mod ffp;
mod login;
pub mod net;
pub mod params;
mod portal;
pub mod san;
pub mod text;
pub mod wire;

pub use portal::{ConfigError, ConnId, Portal, PortalConfig, PortalStats, TargetConfig};
pub use san::{
    Command, DataDirection, EventError, LoginDecision, LoginId, NexusId, NexusLoss, SanEvents,
    SanPoll, SanPort, ScsiStatus, SessionLogin, TaskId, TaskMgmt, TmfId,
};
