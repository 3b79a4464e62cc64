//! The backend contract: where blocks are stored.
//!
//! One [`Backend`] value serves every logical unit of a target; each logical
//! unit names its storage by a [`BackendLun`]. A tool composes backends per
//! LUN with [`Pair`]. Two styles of data movement coexist:
//!
//! * **Zero copy** ([`Backend::map`]): the backend hands out [`Seg`]ments of
//!   its own bus-addressable memory (a RAM LUN's bytes, the null backend's
//!   zero page) and the transport DMAs straight to or from there. A mapped
//!   write is then confirmed with [`IoKind::CommitWrite`].
//! * **Buffered** ([`Backend::submit`] with an [`IoBuf`]): the core passes a
//!   buffer of its pool; the backend reads media into it or writes it out
//!   (a file backend; COMPARE AND WRITE, WRITE SAME and friends on any
//!   backend).
//!
//! Submission never blocks: it completes inline ([`Submitted::Done`]), is
//! queued ([`Submitted::Queued`], finished later through
//! [`Backend::poll_completions`]), or is refused for now (`Err(Busy)`, the
//! core retries on the next poll).

use core::fmt;

use crate::memory::{Memory, MemoryError, Seg, SegList};
use crate::transport::Busy;

#[cfg(feature = "std")]
mod file;
mod null;
mod pair;
mod ram;

#[cfg(feature = "std")]
pub use file::{EngineKind, EngineOp, FileBackend, FileOptions, IoEngine, PreadEngine, SLOT_ALIGN};

pub use null::NullBackend;
pub use pair::Pair;
pub use ram::{RamBackend, RamError};

/// A backend's name for one logical unit's storage.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BackendLun(pub u32);

impl fmt::Display for BackendLun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend LUN {}", self.0)
    }
}

/// The core's token of an I/O, handed back with its completion. Opaque to
/// the backend; [`IoToken::raw`] fits an io_uring `user_data`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct IoToken(u32);

impl IoToken {
    #[allow(dead_code)] // issued by the target
    pub(crate) const fn new(raw: u32) -> IoToken {
        IoToken(raw)
    }

    /// The token as a number.
    pub const fn raw(self) -> u32 {
        self.0
    }

    /// The token of a number from [`IoToken::raw`].
    pub const fn from_raw(raw: u32) -> IoToken {
        IoToken(raw)
    }
}

impl fmt::Display for IoToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "io {:#x}", self.0)
    }
}

/// Which way data will move through a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MapDir {
    /// The transport will read the media bytes (SCSI READ).
    Read,
    /// The transport will write the media bytes (SCSI WRITE), then the core
    /// submits [`IoKind::CommitWrite`].
    Write,
}

/// The answer of [`Backend::map`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Mapped {
    /// The segments now cover the first this-many bytes of the range (a
    /// whole number of blocks, at least one). The rest is mapped by a later call.
    Bytes(u64),
    /// This backend does not map: the core uses buffered I/O.
    Unsupported,
}

/// What an [`Io`] does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum IoKind {
    /// Read the blocks into `buf`.
    Read,
    /// Write `buf` to the blocks.
    Write,
    /// The blocks were written through a [`MapDir::Write`] mapping: make them
    /// durable and allocated (a thin backend marks them mapped). No buffer.
    CommitWrite,
    /// Make the blocks durable (SYNCHRONIZE CACHE). No buffer.
    Flush,
    /// Deallocate the blocks (UNMAP, WRITE SAME with UNMAP). Every block of
    /// the range reads back as zeros afterwards (LBPRZ), whatever the
    /// backend's allocation granule: whole granules are deallocated, the
    /// blocks of a granule the range covers only in part are zeroed (and
    /// may stay allocated). No buffer.
    Unmap,
    /// Write the one block in `buf` to every block of the range (WRITE SAME).
    WriteSame,
}

impl fmt::Display for IoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoKind::Read => "read",
            IoKind::Write => "write",
            IoKind::CommitWrite => "commit",
            IoKind::Flush => "flush",
            IoKind::Unmap => "unmap",
            IoKind::WriteSame => "write same",
        })
    }
}

/// A buffer of the core's pool an I/O reads into or writes from.
#[derive(Clone, Copy)]
pub struct IoBuf<'a> {
    /// The pool memory.
    pub mem: &'a dyn Memory,
    /// Offset of the buffer within it.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
}

impl IoBuf<'_> {
    /// Copy `buf.len()` bytes at `at` within the buffer out.
    pub fn read(&self, at: usize, buf: &mut [u8]) -> Result<(), MemoryError> {
        crate::memory::check_range(at, buf.len(), self.len)?;
        self.mem.read(self.offset + at, buf)
    }

    /// Copy `data` into the buffer at `at`.
    pub fn write(&self, at: usize, data: &[u8]) -> Result<(), MemoryError> {
        crate::memory::check_range(at, data.len(), self.len)?;
        self.mem.write(self.offset + at, data)
    }

    /// Fill `len` bytes at `at` with `byte`.
    pub fn fill(&self, at: usize, len: usize, byte: u8) -> Result<(), MemoryError> {
        crate::memory::check_range(at, len, self.len)?;
        self.mem.fill(self.offset + at, len, byte)
    }
}

impl fmt::Debug for IoBuf<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IoBuf({} bytes at {:#x})", self.len, self.offset)
    }
}

/// One I/O request.
#[derive(Clone, Copy, Debug)]
pub struct Io<'a> {
    /// Handed back with the completion.
    pub token: IoToken,
    /// The logical unit's storage.
    pub lun: BackendLun,
    /// What to do.
    pub kind: IoKind,
    /// First block.
    pub lba: u64,
    /// Number of blocks.
    pub blocks: u64,
    /// Logical block size in bytes.
    pub block_size: u32,
    /// Force unit access: the data must be durable before completion.
    pub fua: bool,
    /// The data buffer (`Read`, `Write`, `WriteSame`).
    pub buf: Option<IoBuf<'a>>,
}

/// How [`Backend::submit`] took an I/O.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Submitted {
    /// In flight; the result comes from [`Backend::complete`] (by default
    /// [`Backend::poll_completions`]), exactly once.
    Queued,
    /// Finished already.
    Done(Result<(), IoError>),
}

/// Why an I/O failed. The core maps each to a sense code in one place.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum IoError {
    /// Unrecovered media error (MEDIUM ERROR, UNRECOVERED READ ERROR / WRITE ERROR).
    Medium,
    /// A thin backend ran out of space (DATA PROTECT, SPACE ALLOCATION FAILED WRITE PROTECT).
    NoSpace,
    /// The blocks lie outside the storage (the core checks first; a bug).
    OutOfRange,
    /// The operation is not supported by this storage.
    Unsupported,
    /// Anything else (HARDWARE ERROR, INTERNAL TARGET FAILURE).
    Failed,
}

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IoError::Medium => "medium error",
            IoError::NoSpace => "out of space",
            IoError::OutOfRange => "blocks out of range",
            IoError::Unsupported => "operation not supported",
            IoError::Failed => "backend failure",
        })
    }
}

impl core::error::Error for IoError {}

impl From<MemoryError> for IoError {
    fn from(_: MemoryError) -> IoError {
        IoError::Failed
    }
}

/// Provisioning status of a run of blocks (SBC-4 5.8, GET LBA STATUS).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ProvisioningStatus {
    /// Mapped (or unknown).
    Mapped,
    /// Deallocated.
    Deallocated,
    /// Anchored.
    Anchored,
}

impl ProvisioningStatus {
    /// The PROVISIONING STATUS code of a GET LBA STATUS descriptor.
    pub const fn code(self) -> u8 {
        match self {
            ProvisioningStatus::Mapped => 0,
            ProvisioningStatus::Deallocated => 1,
            ProvisioningStatus::Anchored => 2,
        }
    }
}

impl fmt::Display for ProvisioningStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProvisioningStatus::Mapped => "mapped",
            ProvisioningStatus::Deallocated => "deallocated",
            ProvisioningStatus::Anchored => "anchored",
        })
    }
}

/// A run of blocks with one provisioning status.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct LbaRun {
    /// The status.
    pub status: ProvisioningStatus,
    /// How many blocks from the asked LBA on share it (at least 1).
    pub blocks: u64,
}

/// Block storage for the logical units of a target.
pub trait Backend {
    /// Zero copy: describe blocks `lba .. lba + blocks` (of `block_size`
    /// bytes) as segments of the backend's memory, appended to `segs`, which
    /// the transport will read ([`MapDir::Read`]) or fill ([`MapDir::Write`]).
    /// The mapping stays valid until the command completes. The default
    /// answers [`Mapped::Unsupported`].
    fn map(
        &mut self,
        lun: BackendLun,
        dir: MapDir,
        lba: u64,
        blocks: u64,
        block_size: u32,
        segs: &mut SegList,
    ) -> Result<Mapped, IoError> {
        let _ = (lun, dir, lba, blocks, block_size, segs);
        Ok(Mapped::Unsupported)
    }

    /// Start an I/O.
    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy>;

    /// Report finished I/Os, each once, by token. The default reports none
    /// (a backend that always completes inline).
    fn poll_completions(&mut self, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        let _ = done;
    }

    /// What [`Target::poll`](crate::Target::poll) calls: report finished
    /// I/Os, given `pool`, the memory every [`IoBuf`] of this target lies
    /// in, so a backend that completes queued reads later can copy into it
    /// (the file backend). The default calls [`Backend::poll_completions`].
    ///
    /// The core calls it only while some I/O this backend answered
    /// [`Submitted::Queued`] has not been reported yet (it counts them), so
    /// a poll with nothing queued costs no call into the backend. A backend
    /// must not rely on being polled for anything else.
    fn complete(&mut self, pool: &dyn Memory, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        let _ = pool;
        self.poll_completions(done)
    }

    /// The provisioning status of the blocks from `lba` on, at most `max`
    /// blocks (GET LBA STATUS). The default reports everything mapped.
    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        block_size: u32,
    ) -> Result<LbaRun, IoError> {
        let _ = (lun, lba, block_size);
        Ok(LbaRun {
            status: ProvisioningStatus::Mapped,
            blocks: max.max(1),
        })
    }
}

impl<B: Backend + ?Sized> Backend for &mut B {
    fn map(
        &mut self,
        lun: BackendLun,
        dir: MapDir,
        lba: u64,
        blocks: u64,
        block_size: u32,
        segs: &mut SegList,
    ) -> Result<Mapped, IoError> {
        (**self).map(lun, dir, lba, blocks, block_size, segs)
    }
    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy> {
        (**self).submit(io)
    }
    fn poll_completions(&mut self, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        (**self).poll_completions(done)
    }
    fn complete(&mut self, pool: &dyn Memory, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        (**self).complete(pool, done)
    }
    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        block_size: u32,
    ) -> Result<LbaRun, IoError> {
        (**self).lba_status(lun, lba, max, block_size)
    }
}

/// Append segments covering `len` bytes at bus address `addr` onwards, each
/// at most `u32::MAX` bytes; returns the bytes that fit.
#[inline]
pub(crate) fn push_range(segs: &mut SegList, mut addr: u64, len: u64) -> u64 {
    /// The longest segment: 4 GiB less one page, page-aligned lengths.
    const MAX_SEG: u64 = (u32::MAX & !0xfff) as u64;
    // The usual map: one segment into the empty list.
    if segs.is_empty() && len != 0 && len <= MAX_SEG {
        segs.set_one(Seg {
            addr,
            len: len as u32,
        });
        return len;
    }
    let mut done = 0;
    while done < len {
        let n = (len - done).min(MAX_SEG);
        if segs
            .push(Seg {
                addr,
                len: n as u32,
            })
            .is_err()
        {
            break;
        }
        addr += n;
        done += n;
    }
    done
}

impl fmt::Display for MapDir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MapDir::Read => "read",
            MapDir::Write => "write",
        })
    }
}

impl fmt::Display for Mapped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mapped::Bytes(n) => write!(f, "{n} bytes mapped"),
            Mapped::Unsupported => f.write_str("not mapped"),
        }
    }
}

impl fmt::Display for Submitted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Submitted::Queued => f.write_str("queued"),
            Submitted::Done(Ok(())) => f.write_str("done"),
            Submitted::Done(Err(e)) => write!(f, "failed: {e}"),
        }
    }
}

impl fmt::Display for LbaRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} blocks {}", self.blocks, self.status)
    }
}
