//! Building the request IOCBs the driver sends (local 64-byte buffers,
//! copied into the ring afterwards; STYLE.md S3).

use crate::handle::SKIP_HANDLE;
use crate::ring::Entry;

/// MARKER (0x04), modifier 2 = sync all, skip handle (reference §7.12).
pub(crate) fn marker_sync_all(vp_index: u8) -> Entry {
    let mut e = [0u8; 64];
    e[0] = 0x04;
    e[1] = 1;
    e[4..8].copy_from_slice(&SKIP_HANDLE.to_le_bytes());
    e[0x0A] = 2;
    e[0x0D] = vp_index;
    e
}
