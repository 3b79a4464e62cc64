//! FC-2 frames and the FC-4 payloads a target meets: FC header, FCP IUs, BLS, ELS, frame
//! delimiters and CRC. All big-endian wire order.
//!
//! Source: reference §8 (FC-FS, FCP-4, FC-LS facts) — read it first.

pub mod bls;
pub mod els;
pub mod fcp;
pub mod frame;
pub mod header;

pub use bls::{BaAccRepr, BaRjtExplanation, BaRjtReason, BaRjtRepr};
pub use els::{ElsOpcode, ElsRepr};
pub use fcp::{
    Cdb, DataDir, FcpCmnd, FcpCmndRepr, FcpRsp, FcpRspFlags, FcpRspRepr, FcpXferRdy,
    FcpXferRdyRepr, Residual, RspCode, SenseData, TaskAttr, TmFlags, TmFunction,
};
pub use frame::{DelimitedFrame, Eof, FcFrameRepr, FcPayload, Sof, crc32};
pub use header::{FCtl, FcHeader, FcHeaderRepr, FcType, RCtl};
