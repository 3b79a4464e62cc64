//! Persistent reservations (SPC-5 5.13): the per-LU state, the conflict
//! rule, and the APTPL blob with its store.
//!
//! The commands themselves (PERSISTENT RESERVE IN/OUT) are handled in
//! `target/pr.rs`; this module holds what they act on:
//!
//! * [`PrState`] in every logical unit: PRgeneration, the reservation
//!   (type, holder), APTPL;
//! * [`PrReg`] registration slots in caller storage (`REGS` per LU, a const
//!   generic of [`crate::TargetStorage`]). A registration names an I_T nexus
//!   by the initiator port's TransportID and the relative target port (or
//!   every target port, ALL_TG_PT), never by a session: a registration
//!   survives nexus loss and applies again when that initiator port logs in;
//! * the conflict rule of SPC-5 table "SPC commands that are allowed in the
//!   presence of various reservations" and its SBC-4 counterpart, driven by
//!   the [`crate::cdb::PrClass`] of each CDB row;
//! * [`PrBlob`], the encoded state of one LU, and [`PrStore`], where it is
//!   kept while APTPL is active (a file per LU with [`FilePrStore`] on `std`).

use core::fmt;

use crate::cdb::{OpInfo, OpKind, PrClass};
use crate::ids::{RelativePortId, TRANSPORT_ID_MAX, TransportId};

/// A persistent reservation type (SPC-5 table "Persistent reservation type codes").
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PrType {
    /// 1h: Write Exclusive.
    WriteExclusive,
    /// 3h: Exclusive Access.
    ExclusiveAccess,
    /// 5h: Write Exclusive, Registrants Only.
    WriteExclusiveRegistrantsOnly,
    /// 6h: Exclusive Access, Registrants Only.
    ExclusiveAccessRegistrantsOnly,
    /// 7h: Write Exclusive, All Registrants.
    WriteExclusiveAllRegistrants,
    /// 8h: Exclusive Access, All Registrants.
    ExclusiveAccessAllRegistrants,
}

impl PrType {
    /// The TYPE code.
    pub const fn code(self) -> u8 {
        match self {
            PrType::WriteExclusive => 0x1,
            PrType::ExclusiveAccess => 0x3,
            PrType::WriteExclusiveRegistrantsOnly => 0x5,
            PrType::ExclusiveAccessRegistrantsOnly => 0x6,
            PrType::WriteExclusiveAllRegistrants => 0x7,
            PrType::ExclusiveAccessAllRegistrants => 0x8,
        }
    }

    /// The type of a TYPE code; `None` for reserved codes.
    pub const fn from_code(code: u8) -> Option<PrType> {
        Some(match code {
            0x1 => PrType::WriteExclusive,
            0x3 => PrType::ExclusiveAccess,
            0x5 => PrType::WriteExclusiveRegistrantsOnly,
            0x6 => PrType::ExclusiveAccessRegistrantsOnly,
            0x7 => PrType::WriteExclusiveAllRegistrants,
            0x8 => PrType::ExclusiveAccessAllRegistrants,
            _ => return None,
        })
    }

    /// An all-registrants type: every registered I_T nexus is a holder.
    pub const fn all_registrants(self) -> bool {
        matches!(
            self,
            PrType::WriteExclusiveAllRegistrants | PrType::ExclusiveAccessAllRegistrants
        )
    }

    /// A registrants-only type.
    pub const fn registrants_only(self) -> bool {
        matches!(
            self,
            PrType::WriteExclusiveRegistrantsOnly | PrType::ExclusiveAccessRegistrantsOnly
        )
    }

    /// An exclusive-access type (reads conflict too).
    pub const fn exclusive_access(self) -> bool {
        matches!(
            self,
            PrType::ExclusiveAccess
                | PrType::ExclusiveAccessRegistrantsOnly
                | PrType::ExclusiveAccessAllRegistrants
        )
    }

    /// Whether a command of class `class` from an I_T nexus that is not the
    /// holder conflicts; `registered` says whether that nexus is registered.
    pub(crate) const fn conflicts(self, class: PrClass, registered: bool) -> bool {
        match class {
            PrClass::Allowed => false,
            // Registrants of RO/AR types may do everything.
            _ if registered && (self.registrants_only() || self.all_registrants()) => false,
            PrClass::Read => self.exclusive_access(),
            PrClass::Write => true,
        }
    }
}

impl fmt::Display for PrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrType::WriteExclusive => "Write Exclusive",
            PrType::ExclusiveAccess => "Exclusive Access",
            PrType::WriteExclusiveRegistrantsOnly => "Write Exclusive, Registrants Only",
            PrType::ExclusiveAccessRegistrantsOnly => "Exclusive Access, Registrants Only",
            PrType::WriteExclusiveAllRegistrants => "Write Exclusive, All Registrants",
            PrType::ExclusiveAccessAllRegistrants => "Exclusive Access, All Registrants",
        })
    }
}

/// The class a command has against persistent reservations: the CDB
/// row's, refined where the tables depend on CDB fields (PREVENT ALLOW
/// MEDIUM REMOVAL with PREVENT 00b, START STOP UNIT with START=1 and no
/// power condition are allowed through every reservation).
pub(crate) fn effective_class(op: &OpInfo, cdb: &[u8; 16]) -> PrClass {
    match op.kind {
        OpKind::PreventAllow if cdb[4] & 0x03 == 0 => PrClass::Allowed,
        OpKind::PreventAllow => PrClass::Write,
        OpKind::StartStopUnit if cdb[4] & 0x01 != 0 && cdb[4] >> 4 == 0 => PrClass::Allowed,
        _ => op.pr,
    }
}

/// A registration slot: the reservation key of one I_T nexus (or, with
/// ALL_TG_PT, of the initiator port's I_T nexuses through every target port).
#[derive(Clone, Debug)]
pub(crate) struct PrReg {
    pub in_use: bool,
    pub key: u64,
    pub initiator: TransportId,
    pub port: RelativePortId,
    pub all_tg_pt: bool,
}

impl PrReg {
    pub(crate) const EMPTY: PrReg = PrReg {
        in_use: false,
        key: 0,
        initiator: TransportId::EMPTY,
        port: RelativePortId(0),
        all_tg_pt: false,
    };

    /// Whether this registration is the one of the I_T nexus `(initiator, port)`.
    pub(crate) fn matches(&self, initiator: &TransportId, port: RelativePortId) -> bool {
        self.in_use && (self.all_tg_pt || self.port == port) && self.initiator.same_port(initiator)
    }
}

/// The reservation of a LU.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Reservation {
    pub ty: PrType,
    /// Registration slot of the holder (meaningless for all-registrants types).
    pub holder: u16,
    /// Target port of the holding I_T nexus (its registration may be ALL_TG_PT).
    pub holder_port: RelativePortId,
}

/// Persistent reservation state of one logical unit; its registrations
/// live in the target's registration slots.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PrState {
    /// PRgeneration.
    pub generation: u32,
    pub res: Option<Reservation>,
    /// Activate persist through power loss: the last valid APTPL bit.
    pub aptpl: bool,
    /// Registrations in use.
    pub count: u16,
    /// Changes whenever the registration set changes (invalidates the
    /// per-I_T_L cache of "which registration is mine").
    pub epoch: u32,
}

impl PrState {
    pub(crate) const EMPTY: PrState = PrState {
        generation: 0,
        res: None,
        aptpl: false,
        count: 0,
        epoch: 1,
    };

    /// Whether any I_T nexus is registered (an SPC-2 RESERVE or RELEASE then
    /// conflicts, SPC-5 5.13.3).
    pub(crate) fn has_registrations(&self) -> bool {
        self.count > 0
    }
}

/// Why the persistent reservation store failed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum PrStoreError {
    /// The medium or file could not be read or written.
    Io,
    /// The saved state does not fit the store.
    NoSpace,
}

impl fmt::Display for PrStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PrStoreError::Io => "persistent reservation store I/O error",
            PrStoreError::NoSpace => "persistent reservation store full",
        })
    }
}

impl core::error::Error for PrStoreError {}

/// Where the persistent reservation state of LUs with APTPL active is kept
/// across restarts: one opaque blob per LU, named by the LU's 16-byte NAA
/// identifier (VPD page 83h; an 8-byte NAA is zero-padded).
///
/// The core saves after every PERSISTENT RESERVE OUT that changes the state
/// of a LU while APTPL is active (and once more when APTPL is turned off,
/// with a blob that restores nothing), and loads when the LU is added with
/// [`crate::Target::add_lu`]. `save` must replace the old blob atomically:
/// after a crash, `load` sees either the old or the new one, whole.
pub trait PrStore {
    /// Copy bytes of LU `lu`'s blob from `offset` into `buf`; the number
    /// copied, 0 at the end or when there is no blob.
    fn load(&mut self, lu: &[u8; 16], offset: usize, buf: &mut [u8])
    -> Result<usize, PrStoreError>;
    /// Replace LU `lu`'s blob with `blob` (written piece by piece with
    /// [`PrBlob::write_to`]).
    fn save(&mut self, lu: &[u8; 16], blob: &PrBlob<'_>) -> Result<(), PrStoreError>;
}

/// The encoded persistent reservation state of one LU, produced piece by
/// piece (no buffer holds it whole).
///
/// Layout (big endian): `"RSPR"`, version 1, flags (bit 0 APTPL), TYPE code
/// (0: no reservation), reserved, PRgeneration (4), holder record index (2),
/// holder port (2), record count (2), reserved (2); then per registration:
/// key (8), relative target port (2), flags (bit 0 ALL_TG_PT), reserved,
/// TransportID length (2), the TransportID.
pub struct PrBlob<'s> {
    pub(crate) state: &'s PrState,
    pub(crate) regs: &'s [PrReg],
}

const BLOB_MAGIC: &[u8; 4] = b"RSPR";
const BLOB_VERSION: u8 = 1;
const BLOB_HEADER: usize = 20;
const BLOB_RECORD: usize = 14;

impl PrBlob<'_> {
    /// Length of the encoding in bytes.
    pub fn len(&self) -> usize {
        BLOB_HEADER
            + self
                .regs
                .iter()
                .filter(|r| r.in_use)
                .map(|r| BLOB_RECORD + r.initiator.as_bytes().len())
                .sum::<usize>()
    }

    /// Whether the encoding is empty (never: it always has a header).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Feed the encoding to `sink`, in order, in pieces of at most 256 bytes.
    pub fn write_to(
        &self,
        sink: &mut dyn FnMut(&[u8]) -> Result<(), PrStoreError>,
    ) -> Result<(), PrStoreError> {
        let st = self.state;
        let mut h = [0u8; BLOB_HEADER];
        h[..4].copy_from_slice(BLOB_MAGIC);
        h[4] = BLOB_VERSION;
        h[5] = u8::from(st.aptpl);
        let (holder, port) = match st.res {
            Some(r) => {
                h[6] = r.ty.code();
                // The holder as an index among the records written.
                let idx = self
                    .regs
                    .iter()
                    .take(usize::from(r.holder))
                    .filter(|x| x.in_use)
                    .count();
                (idx as u16, r.holder_port.0)
            }
            None => (0, 0),
        };
        h[8..12].copy_from_slice(&st.generation.to_be_bytes());
        h[12..14].copy_from_slice(&holder.to_be_bytes());
        h[14..16].copy_from_slice(&port.to_be_bytes());
        let count = self.regs.iter().filter(|r| r.in_use).count() as u16;
        h[16..18].copy_from_slice(&count.to_be_bytes());
        sink(&h)?;
        for r in self.regs.iter().filter(|r| r.in_use) {
            let tid = r.initiator.as_bytes();
            let mut rec = [0u8; BLOB_RECORD];
            rec[..8].copy_from_slice(&r.key.to_be_bytes());
            rec[8..10].copy_from_slice(&r.port.0.to_be_bytes());
            rec[10] = u8::from(r.all_tg_pt);
            rec[12..14].copy_from_slice(&(tid.len() as u16).to_be_bytes());
            sink(&rec)?;
            sink(tid)?;
        }
        Ok(())
    }
}

impl fmt::Debug for PrBlob<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrBlob({} bytes)", self.len())
    }
}

/// Read exactly `buf.len()` bytes at `offset` of a stored blob.
fn load_exact(
    store: &mut dyn PrStore,
    lu: &[u8; 16],
    offset: usize,
    buf: &mut [u8],
) -> Result<bool, PrStoreError> {
    let mut got = 0;
    while got < buf.len() {
        let n = store.load(lu, offset + got, &mut buf[got..])?;
        if n == 0 {
            return Ok(false);
        }
        got += n;
    }
    Ok(true)
}

/// Decode LU `lu`'s blob from `store` into `state` and `regs` (cleared
/// first). `Ok(false)`: no blob, an inactive one (APTPL off), or one that
/// does not decode (ignored, the LU starts without reservations).
pub(crate) fn restore(
    store: &mut dyn PrStore,
    lu: &[u8; 16],
    state: &mut PrState,
    regs: &mut [PrReg],
) -> Result<bool, PrStoreError> {
    let mut h = [0u8; BLOB_HEADER];
    if !load_exact(store, lu, 0, &mut h)? {
        return Ok(false);
    }
    if &h[..4] != BLOB_MAGIC || h[4] != BLOB_VERSION || h[5] & 0x01 == 0 {
        return Ok(false);
    }
    let ty = match h[6] {
        0 => None,
        c => match PrType::from_code(c) {
            Some(t) => Some(t),
            None => return Ok(false),
        },
    };
    let generation = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    let holder = u16::from_be_bytes([h[12], h[13]]);
    let holder_port = RelativePortId(u16::from_be_bytes([h[14], h[15]]));
    let count = usize::from(u16::from_be_bytes([h[16], h[17]]));
    if count > regs.len()
        || (ty.is_some()
            && !ty.is_some_and(|t| t.all_registrants())
            && usize::from(holder) >= count)
    {
        return Ok(false);
    }
    for r in regs.iter_mut() {
        *r = PrReg::EMPTY;
    }
    let mut at = BLOB_HEADER;
    for slot in regs.iter_mut().take(count) {
        let mut rec = [0u8; BLOB_RECORD];
        let mut tid = [0u8; TRANSPORT_ID_MAX];
        if !load_exact(store, lu, at, &mut rec)? {
            return Ok(false);
        }
        let len = usize::from(u16::from_be_bytes([rec[12], rec[13]]));
        if len > TRANSPORT_ID_MAX || !load_exact(store, lu, at + BLOB_RECORD, &mut tid[..len])? {
            return Ok(false);
        }
        let Ok(initiator) = TransportId::from_bytes(&tid[..len]) else {
            return Ok(false);
        };
        *slot = PrReg {
            in_use: true,
            key: u64::from_be_bytes([
                rec[0], rec[1], rec[2], rec[3], rec[4], rec[5], rec[6], rec[7],
            ]),
            initiator,
            port: RelativePortId(u16::from_be_bytes([rec[8], rec[9]])),
            all_tg_pt: rec[10] & 0x01 != 0,
        };
        at += BLOB_RECORD + len;
    }
    state.generation = generation;
    state.aptpl = true;
    state.count = count as u16;
    state.epoch = state.epoch.wrapping_add(1).max(1);
    state.res = ty.map(|ty| Reservation {
        ty,
        holder,
        holder_port,
    });
    Ok(true)
}

#[cfg(feature = "std")]
mod file_store {
    extern crate std;

    use std::fs;
    use std::io::Write;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    use super::{PrBlob, PrStore, PrStoreError};

    /// A [`PrStore`] keeping one file per LU (`pr-<NAA hex>.bin`) in a
    /// directory. A save writes `pr-<NAA hex>.tmp`, syncs it, renames it over
    /// the old file and syncs the directory, so a crash leaves the old or the
    /// new state, never a mix.
    #[derive(Debug)]
    pub struct FilePrStore {
        dir: PathBuf,
    }

    impl FilePrStore {
        /// A store in `dir` (created if missing).
        pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<FilePrStore> {
            let dir = dir.into();
            fs::create_dir_all(&dir)?;
            Ok(FilePrStore { dir })
        }

        fn path(&self, lu: &[u8; 16], ext: &str) -> PathBuf {
            let mut name = std::string::String::from("pr-");
            for b in lu {
                use core::fmt::Write as _;
                let _ = write!(name, "{b:02x}");
            }
            name.push_str(ext);
            self.dir.join(name)
        }
    }

    impl PrStore for FilePrStore {
        fn load(
            &mut self,
            lu: &[u8; 16],
            offset: usize,
            buf: &mut [u8],
        ) -> Result<usize, PrStoreError> {
            let f = match fs::File::open(self.path(lu, ".bin")) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
                Err(_) => return Err(PrStoreError::Io),
            };
            f.read_at(buf, offset as u64).map_err(|_| PrStoreError::Io)
        }

        fn save(&mut self, lu: &[u8; 16], blob: &PrBlob<'_>) -> Result<(), PrStoreError> {
            let tmp = self.path(lu, ".tmp");
            let io = |_| PrStoreError::Io;
            let mut f = fs::File::create(&tmp).map_err(io)?;
            blob.write_to(&mut |piece| f.write_all(piece).map_err(io))?;
            f.sync_all().map_err(io)?;
            drop(f);
            fs::rename(&tmp, self.path(lu, ".bin")).map_err(io)?;
            // Make the rename itself durable.
            if let Ok(d) = fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        }
    }
}

#[cfg(feature = "std")]
pub use file_store::FilePrStore;

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(std::vec::Vec<u8>);
    impl PrStore for Mem {
        fn load(
            &mut self,
            _: &[u8; 16],
            offset: usize,
            buf: &mut [u8],
        ) -> Result<usize, PrStoreError> {
            let src = self.0.get(offset..).unwrap_or(&[]);
            let n = src.len().min(buf.len());
            buf[..n].copy_from_slice(&src[..n]);
            Ok(n)
        }
        fn save(&mut self, _: &[u8; 16], blob: &PrBlob<'_>) -> Result<(), PrStoreError> {
            self.0.clear();
            blob.write_to(&mut |p| {
                self.0.extend_from_slice(p);
                Ok(())
            })
        }
    }

    #[test]
    fn conflict_matrix() {
        use PrClass::*;
        use PrType::*;
        // (type, class, registered) -> conflicts, for a non-holder.
        for (t, read_reg, write_reg, read_unreg, write_unreg) in [
            (WriteExclusive, false, true, false, true),
            (ExclusiveAccess, true, true, true, true),
            (WriteExclusiveRegistrantsOnly, false, false, false, true),
            (ExclusiveAccessRegistrantsOnly, false, false, true, true),
            (WriteExclusiveAllRegistrants, false, false, false, true),
            (ExclusiveAccessAllRegistrants, false, false, true, true),
        ] {
            assert_eq!(t.conflicts(Read, true), read_reg, "{t}");
            assert_eq!(t.conflicts(Write, true), write_reg, "{t}");
            assert_eq!(t.conflicts(Read, false), read_unreg, "{t}");
            assert_eq!(t.conflicts(Write, false), write_unreg, "{t}");
            assert!(!t.conflicts(Allowed, false));
            assert_eq!(PrType::from_code(t.code()), Some(t));
        }
        assert_eq!(PrType::from_code(2), None);
    }

    #[test]
    fn blob_round_trip_and_corruption() {
        let mut regs = [PrReg::EMPTY, PrReg::EMPTY, PrReg::EMPTY];
        regs[1] = PrReg {
            in_use: true,
            key: 0x1122,
            initiator: TransportId::fc(0x2100_0024_ff00_0001),
            port: RelativePortId(2),
            all_tg_pt: false,
        };
        regs[2] = PrReg {
            in_use: true,
            key: 0x3344,
            initiator: TransportId::iscsi("iqn.x:y", Some([1, 2, 3, 4, 5, 6])).unwrap(),
            port: RelativePortId(1),
            all_tg_pt: true,
        };
        let st = PrState {
            generation: 7,
            res: Some(Reservation {
                ty: PrType::ExclusiveAccess,
                holder: 2,
                holder_port: RelativePortId(1),
            }),
            aptpl: true,
            count: 2,
            epoch: 3,
        };
        let blob = PrBlob {
            state: &st,
            regs: &regs,
        };
        let mut store = Mem(std::vec::Vec::new());
        store.save(&[0; 16], &blob).unwrap();
        assert_eq!(store.0.len(), blob.len());
        let mut st2 = PrState::EMPTY;
        let mut regs2 = [PrReg::EMPTY, PrReg::EMPTY];
        assert_eq!(
            restore(&mut store, &[0; 16], &mut st2, &mut regs2),
            Ok(true)
        );
        assert_eq!(st2.generation, 7);
        assert_eq!(st2.count, 2);
        // Holder index 2 among slots is record 1 after compaction.
        assert_eq!(
            st2.res.map(|r| (r.ty, r.holder)),
            Some((PrType::ExclusiveAccess, 1))
        );
        assert_eq!(regs2[1].key, 0x3344);
        assert!(regs2[1].all_tg_pt);
        assert_eq!(regs2[0].initiator, regs[1].initiator);
        // Too many records for the slots, a truncated blob, a bad magic:
        // nothing is restored.
        let mut one = [PrReg::EMPTY];
        assert_eq!(restore(&mut store, &[0; 16], &mut st2, &mut one), Ok(false));
        let full = store.0.clone();
        store.0.truncate(full.len() - 3);
        assert_eq!(
            restore(&mut store, &[0; 16], &mut st2, &mut regs2),
            Ok(false)
        );
        store.0 = full;
        store.0[0] = b'X';
        assert_eq!(
            restore(&mut store, &[0; 16], &mut st2, &mut regs2),
            Ok(false)
        );
    }
}
