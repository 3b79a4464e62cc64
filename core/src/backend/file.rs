//! The file backend (feature `std`): logical units in regular files or
//! block devices, behind an [`IoEngine`].
//!
//! The core hands buffered I/O to a backend as [`IoBuf`]s of its pool. The
//! file backend moves data between those and the engine's own aligned
//! buffer *slots* with **one host copy** per direction (pool → slot before a
//! write, slot → pool after a read); the engine does the file I/O from the
//! slots. Zero copy is the RAM backend's promise, not this one's: the
//! slots are what lets the same backend run O_DIRECT and io_uring, whose
//! buffers must be aligned and must not move while the kernel uses them.
//!
//! A core I/O larger than a slot is split into slot-sized pieces; pieces
//! are submitted as slots come free, from [`Backend::submit`] and
//! [`Backend::complete`] (which is given the pool memory, so queued reads
//! can be copied in and later write pieces copied out). Every core I/O is
//! answered [`Submitted::Queued`] and reported by `complete`.
//!
//! Thin provisioning: UNMAP punches holes (`fallocate(PUNCH_HOLE |
//! KEEP_SIZE)`, so deallocated blocks read as zeros: LBPRZ), and GET LBA
//! STATUS asks the file system with `lseek(SEEK_DATA / SEEK_HOLE)`.
//!
//! Engines: [`PreadEngine`] here (positioned read/write system calls,
//! completing inline); io_uring lives in `rscst-hba` (`hba::host::uring`,
//! the only crate allowed `unsafe`) and is adapted to [`IoEngine`] by the
//! tools (`docs/design/core-file-backend.md` says what the glue must do).

extern crate std;

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::vec::Vec;

use rustix::fs::{FallocateFlags, SeekFrom};

use super::{
    Backend, BackendLun, Io, IoError, IoKind, IoToken, LbaRun, ProvisioningStatus, Submitted,
};
use crate::memory::Memory;
use crate::transport::Busy;

/// What an engine operation does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EngineKind {
    /// Read `len` bytes at `offset` into the slot.
    Read,
    /// Write the slot's first `len` bytes at `offset`.
    Write,
    /// Make written data durable (fdatasync).
    Flush,
    /// Deallocate `len` bytes at `offset`, keeping the size (punch a hole).
    Discard,
}

/// One operation for an [`IoEngine`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct EngineOp {
    /// Handed back with the completion.
    pub user: u64,
    /// What to do.
    pub kind: EngineKind,
    /// The engine's index of the file ([`IoEngine::add_file`]).
    pub file: usize,
    /// Byte offset in the file.
    pub offset: u64,
    /// Byte length.
    pub len: usize,
    /// The buffer slot (every operation holds one until it completes).
    pub slot: usize,
}

/// The I/O engine under the file backend: buffer slots it owns, and
/// asynchronous operations on files it was given.
///
/// Contract: [`IoEngine::slot`] returns a slot's bytes only while no
/// operation uses it; an operation submitted with a slot keeps it until its
/// completion is reported by [`IoEngine::complete`], exactly once, with the
/// operation's `user` value and the bytes transferred (0 for flush and
/// discard) or the error. Slots are at least 4096-byte aligned (O_DIRECT).
pub trait IoEngine {
    /// Number of buffer slots (the most operations in flight).
    fn slots(&self) -> usize;
    /// Bytes per slot (a multiple of 4096).
    fn slot_len(&self) -> usize;
    /// The bytes of an idle slot.
    fn slot(&mut self, slot: usize) -> Option<&mut [u8]>;
    /// Take a file for later operations; its index.
    fn add_file(&mut self, file: &File) -> io::Result<usize>;
    /// Start an operation. `Err`: not started (the slot stays free).
    fn submit(&mut self, op: &EngineOp) -> io::Result<()>;
    /// Report finished operations.
    fn complete(&mut self, done: &mut dyn FnMut(u64, io::Result<usize>));
}

/// The positioned read/write engine: each operation is a system call made
/// in `submit` (safe std `FileExt`, `fdatasync`, `fallocate`); completions
/// are reported by the next `complete`.
pub struct PreadEngine {
    slots: Vec<(Vec<u8>, usize)>,
    slot_len: usize,
    files: Vec<File>,
    done: VecDeque<(u64, io::Result<usize>)>,
}

impl core::fmt::Debug for PreadEngine {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "PreadEngine({} slots of {})",
            self.slots.len(),
            self.slot_len
        )
    }
}

/// Alignment of engine slots.
pub const SLOT_ALIGN: usize = 4096;

impl PreadEngine {
    /// `slots` buffer slots of `slot_len` bytes (rounded up to 4096), aligned to 4096.
    pub fn new(slots: usize, slot_len: usize) -> PreadEngine {
        let slot_len = slot_len.max(1).next_multiple_of(SLOT_ALIGN);
        let slots = (0..slots.max(1))
            .map(|_| {
                let v = std::vec![0u8; slot_len + SLOT_ALIGN];
                let at = v.as_ptr().align_offset(SLOT_ALIGN);
                (v, at)
            })
            .collect::<Vec<_>>();
        let n = slots.len();
        PreadEngine {
            slots,
            slot_len,
            files: Vec::new(),
            done: VecDeque::with_capacity(n),
        }
    }

    fn run(&mut self, op: &EngineOp) -> io::Result<usize> {
        let f = self
            .files
            .get(op.file)
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let len = self.slot_len;
        let (v, at) = self
            .slots
            .get_mut(op.slot)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        let buf = v
            .get_mut(*at..*at + len)
            .and_then(|b| b.get_mut(..op.len))
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput));
        match op.kind {
            EngineKind::Read => f.read_at(buf?, op.offset),
            EngineKind::Write => f.write_at(buf?, op.offset),
            EngineKind::Flush => f.sync_data().map(|()| 0),
            EngineKind::Discard => rustix::fs::fallocate(
                f,
                FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE,
                op.offset,
                op.len as u64,
            )
            .map(|()| 0)
            .map_err(io::Error::from),
        }
    }
}

impl IoEngine for PreadEngine {
    fn slots(&self) -> usize {
        self.slots.len()
    }

    fn slot_len(&self) -> usize {
        self.slot_len
    }

    fn slot(&mut self, slot: usize) -> Option<&mut [u8]> {
        let len = self.slot_len;
        let (v, at) = self.slots.get_mut(slot)?;
        v.get_mut(*at..*at + len)
    }

    fn add_file(&mut self, file: &File) -> io::Result<usize> {
        self.files.push(file.try_clone()?);
        Ok(self.files.len() - 1)
    }

    fn submit(&mut self, op: &EngineOp) -> io::Result<()> {
        let r = self.run(op);
        self.done.push_back((op.user, r));
        Ok(())
    }

    fn complete(&mut self, done: &mut dyn FnMut(u64, io::Result<usize>)) {
        while let Some((user, r)) = self.done.pop_front() {
            done(user, r);
        }
    }
}

/// How a file LU is opened.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct FileOptions {
    /// Open with O_DIRECT (bypass the page cache; block size and offsets
    /// must suit the device's logical block size).
    pub direct: bool,
    /// Open read-only.
    pub read_only: bool,
}

struct FileLun {
    file: File,
    engine_file: usize,
    block_size: u32,
    blocks: u64,
}

/// A core I/O in progress.
#[derive(Clone, Copy, Debug)]
struct Pending {
    in_use: bool,
    token: IoToken,
    lun: usize,
    kind: IoKind,
    /// Byte offset in the file of the whole I/O.
    offset: u64,
    /// Bytes of the whole I/O (write same: of the whole range).
    len: u64,
    /// Pool offset of the data buffer.
    pool: usize,
    /// Bytes of pattern in the write-same slot (a multiple of the block).
    pattern: usize,
    /// Next byte (relative) to submit.
    next: u64,
    in_flight: u16,
    /// The write-same slot, reused for every piece.
    same_slot: usize,
    fua: bool,
    flushing: bool,
    error: Option<IoError>,
}

impl Pending {
    const EMPTY: Pending = Pending {
        in_use: false,
        token: IoToken::new(0),
        lun: 0,
        kind: IoKind::Read,
        offset: 0,
        len: 0,
        pool: 0,
        pattern: 0,
        next: 0,
        in_flight: 0,
        same_slot: usize::MAX,
        fua: false,
        flushing: false,
        error: None,
    };
}

/// Logical units in files, over an [`IoEngine`]. See the module documentation.
pub struct FileBackend<E: IoEngine> {
    engine: E,
    luns: Vec<FileLun>,
    free_slots: Vec<usize>,
    /// Per slot: (pending index, relative byte offset of the piece).
    slot_use: Vec<(usize, u64)>,
    pending: Vec<Pending>,
    done: VecDeque<(IoToken, Result<(), IoError>)>,
}

impl<E: IoEngine> core::fmt::Debug for FileBackend<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "FileBackend({} LUNs, {} slots)",
            self.luns.len(),
            self.slot_use.len()
        )
    }
}

fn io_error(e: &io::Error) -> IoError {
    match e.raw_os_error() {
        Some(5) => IoError::Medium,               // EIO
        Some(28) | Some(122) => IoError::NoSpace, // ENOSPC, EDQUOT
        Some(95) => IoError::Unsupported,         // EOPNOTSUPP
        _ => IoError::Failed,
    }
}

impl<E: IoEngine> FileBackend<E> {
    /// A backend over `engine`, for at most `max_ios` core I/Os in flight
    /// (more are answered Busy). Everything is allocated here, none per I/O.
    pub fn new(engine: E, max_ios: usize) -> FileBackend<E> {
        let n = engine.slots();
        FileBackend {
            engine,
            luns: Vec::new(),
            free_slots: (0..n).rev().collect(),
            slot_use: std::vec![(usize::MAX, 0); n],
            pending: std::vec![Pending::EMPTY; max_ios.max(1)],
            done: VecDeque::with_capacity(max_ios.max(1)),
        }
    }

    /// The engine (e.g. to wait on it).
    pub fn engine_mut(&mut self) -> &mut E {
        &mut self.engine
    }

    /// Open `path` (a regular file or a block device) as a LU of
    /// `block_size`-byte blocks; its size is the file's, whole blocks.
    pub fn open(
        &mut self,
        path: &Path,
        block_size: u32,
        opts: FileOptions,
    ) -> io::Result<BackendLun> {
        let mut o = std::fs::OpenOptions::new();
        o.read(true).write(!opts.read_only);
        if opts.direct {
            use std::os::unix::fs::OpenOptionsExt;
            o.custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32);
        }
        self.add_file(o.open(path)?, block_size)
    }

    /// Add an open file as a LU.
    pub fn add_file(&mut self, file: File, block_size: u32) -> io::Result<BackendLun> {
        if !block_size.is_power_of_two() || !(512..=65536).contains(&block_size) {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // The size of a block device is where its end is.
        let size = rustix::fs::seek(&file, SeekFrom::End(0)).map_err(io::Error::from)?;
        let blocks = size / u64::from(block_size);
        if blocks == 0 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let engine_file = self.engine.add_file(&file)?;
        self.luns.push(FileLun {
            file,
            engine_file,
            block_size,
            blocks,
        });
        Ok(BackendLun(self.luns.len() as u32 - 1))
    }

    /// Number of blocks of a LUN.
    pub fn blocks(&self, lun: BackendLun) -> Option<u64> {
        self.luns.get(lun.0 as usize).map(|l| l.blocks)
    }

    fn finish(&mut self, p: usize) {
        let pe = &mut self.pending[p];
        let r = match pe.error {
            Some(e) => Err(e),
            None => Ok(()),
        };
        let token = pe.token;
        let same = core::mem::replace(&mut pe.same_slot, usize::MAX);
        if same != usize::MAX {
            self.free_slots.push(same);
        }
        self.pending[p] = Pending::EMPTY;
        self.done.push_back((token, r));
    }

    /// Submit what pending I/O `p` can, given free slots; finish it when done.
    fn pump(&mut self, p: usize, pool: &dyn Memory) {
        let slot_len = self.engine.slot_len() as u64;
        loop {
            let pe = self.pending[p];
            if !pe.in_use {
                return;
            }
            let lun = &self.luns[pe.lun];
            let file = lun.engine_file;
            if pe.error.is_some() || pe.next >= pe.len && !matches!(pe.kind, IoKind::Flush) {
                if pe.in_flight > 0 {
                    return;
                }
                // FUA: durable before completion.
                if pe.error.is_none() && pe.fua && !pe.flushing {
                    self.pending[p].flushing = true;
                    self.pending[p].kind = IoKind::Flush;
                    self.pending[p].next = 0;
                    self.pending[p].len = 0;
                    continue;
                }
                self.finish(p);
                return;
            }
            let (kind, piece) = match pe.kind {
                IoKind::Flush if pe.next == 0 && pe.in_flight == 0 => (EngineKind::Flush, 0),
                IoKind::Flush => {
                    if pe.in_flight == 0 {
                        self.finish(p);
                    }
                    return;
                }
                IoKind::Read => (EngineKind::Read, (pe.len - pe.next).min(slot_len)),
                IoKind::Write => (EngineKind::Write, (pe.len - pe.next).min(slot_len)),
                IoKind::WriteSame => (EngineKind::Write, (pe.len - pe.next).min(pe.pattern as u64)),
                IoKind::Unmap => (EngineKind::Discard, pe.len - pe.next),
                IoKind::CommitWrite => {
                    self.finish(p);
                    return;
                }
            };
            let slot = if pe.kind == IoKind::WriteSame {
                if pe.in_flight > 0 {
                    return; // the pattern slot is busy: one piece at a time
                }
                pe.same_slot
            } else {
                match self.free_slots.pop() {
                    Some(s) => s,
                    None => return,
                }
            };
            if kind == EngineKind::Write && pe.kind == IoKind::Write {
                let ok = self
                    .engine
                    .slot(slot)
                    .and_then(|b| b.get_mut(..piece as usize))
                    .map(|b| pool.read(pe.pool + pe.next as usize, b));
                if !matches!(ok, Some(Ok(()))) {
                    self.free_slots.push(slot);
                    self.pending[p].error = Some(IoError::Failed);
                    continue;
                }
            }
            let op = EngineOp {
                user: ((p as u64) << 32) | slot as u64,
                kind,
                file,
                offset: pe.offset + pe.next,
                len: piece as usize,
                slot,
            };
            match self.engine.submit(&op) {
                Ok(()) => {
                    self.slot_use[slot] = (p, pe.next);
                    let pe = &mut self.pending[p];
                    pe.in_flight += 1;
                    pe.next += piece.max(1);
                }
                Err(e) => {
                    if pe.kind != IoKind::WriteSame {
                        self.free_slots.push(slot);
                    }
                    self.pending[p].error = Some(io_error(&e));
                }
            }
        }
    }

    /// Process engine completions and submit what they make possible, until
    /// the engine reports nothing more (an inline engine finishes here).
    fn reap(&mut self, pool: &dyn Memory) {
        while self.reap_once(pool) {}
    }

    fn reap_once(&mut self, pool: &dyn Memory) -> bool {
        let mut fin: [(u64, i64); 64] = [(0, 0); 64];
        let mut any = false;
        loop {
            // Collect a batch (the engine callback cannot borrow self).
            let mut n = 0;
            let mut more = false;
            let mut errs: [Option<IoError>; 64] = [None; 64];
            self.engine.complete(&mut |user, r| {
                if n == fin.len() {
                    more = true;
                    return;
                }
                match r {
                    Ok(b) => fin[n] = (user, b as i64),
                    Err(e) => {
                        fin[n] = (user, -1);
                        errs[n] = Some(io_error(&e));
                    }
                }
                n += 1;
            });
            any |= n > 0;
            for k in 0..n {
                let (user, bytes) = fin[k];
                let (p, slot) = ((user >> 32) as usize, (user & 0xffff_ffff) as usize);
                let Some((_, rel)) = self.slot_use.get(slot).copied() else {
                    continue;
                };
                self.slot_use[slot] = (usize::MAX, 0);
                let Some(pe) = self.pending.get(p).copied().filter(|x| x.in_use) else {
                    continue;
                };
                let expect = match pe.kind {
                    IoKind::Read | IoKind::Write => {
                        (pe.len - rel).min(self.engine.slot_len() as u64) as i64
                    }
                    IoKind::WriteSame => (pe.len - rel).min(pe.pattern as u64) as i64,
                    _ => 0,
                };
                let mut err = errs[k];
                if err.is_none() && bytes != expect {
                    // Short transfer (end of file, a full file system).
                    err = Some(if pe.kind == IoKind::Read {
                        IoError::Medium
                    } else {
                        IoError::NoSpace
                    });
                }
                if err.is_none() && pe.kind == IoKind::Read {
                    let ok = self
                        .engine
                        .slot(slot)
                        .and_then(|b| b.get(..bytes as usize))
                        .map(|b| pool.write(pe.pool + rel as usize, b));
                    if !matches!(ok, Some(Ok(()))) {
                        err = Some(IoError::Failed);
                    }
                }
                if pe.kind != IoKind::WriteSame {
                    self.free_slots.push(slot);
                }
                let pe = &mut self.pending[p];
                pe.in_flight -= 1;
                if pe.error.is_none() {
                    pe.error = err;
                }
            }
            if !more {
                break;
            }
        }
        for p in 0..self.pending.len() {
            if self.pending[p].in_use {
                self.pump(p, pool);
            }
        }
        any
    }
}

impl<E: IoEngine> Backend for FileBackend<E> {
    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy> {
        let Some(lun) = self.luns.get(io.lun.0 as usize) else {
            return Ok(Submitted::Done(Err(IoError::OutOfRange)));
        };
        if io.block_size != lun.block_size {
            return Ok(Submitted::Done(Err(IoError::Failed)));
        }
        if io.lba.checked_add(io.blocks).is_none_or(|e| e > lun.blocks) {
            return Ok(Submitted::Done(Err(IoError::OutOfRange)));
        }
        let bs = u64::from(lun.block_size);
        let len = io.blocks * bs;
        if io.kind == IoKind::CommitWrite {
            return Ok(Submitted::Done(Ok(())));
        }
        let Some(p) = self.pending.iter().position(|x| !x.in_use) else {
            return Err(Busy);
        };
        let needs_buf = matches!(io.kind, IoKind::Read | IoKind::Write | IoKind::WriteSame);
        let pool = match (needs_buf, io.buf) {
            (true, Some(b)) if io.kind == IoKind::WriteSame || b.len as u64 >= len => b.offset,
            (true, _) => return Ok(Submitted::Done(Err(IoError::Failed))),
            (false, _) => 0,
        };
        let mut pe = Pending {
            in_use: true,
            token: io.token,
            lun: io.lun.0 as usize,
            kind: io.kind,
            offset: io.lba * bs,
            len,
            pool,
            fua: io.fua && matches!(io.kind, IoKind::Write | IoKind::WriteSame),
            ..Pending::EMPTY
        };
        if io.kind == IoKind::WriteSame {
            // One slot holds the block repeated; every piece writes from it.
            let Some(slot) = self.free_slots.pop() else {
                return Err(Busy);
            };
            let (Some(buf), Some(src)) = (self.engine.slot(slot), io.buf) else {
                self.free_slots.push(slot);
                return Ok(Submitted::Done(Err(IoError::Failed)));
            };
            let reps = (buf.len() as u64 / bs).max(1);
            let mut ok = src
                .read(0, buf.get_mut(..bs as usize).unwrap_or_default())
                .is_ok();
            for k in 1..reps as usize {
                let (head, tail) = buf.split_at_mut(k * bs as usize);
                if let Some(dst) = tail.get_mut(..bs as usize) {
                    dst.copy_from_slice(&head[..bs as usize]);
                } else {
                    ok = false;
                }
            }
            if !ok || bs as usize > buf.len() {
                self.free_slots.push(slot);
                return Ok(Submitted::Done(Err(IoError::Failed)));
            }
            pe.same_slot = slot;
            pe.pattern = (reps * bs) as usize;
        }
        self.pending[p] = pe;
        match io.buf {
            Some(b) => self.pump(p, b.mem),
            None => self.pump(p, &EmptyMemory),
        }
        Ok(Submitted::Queued)
    }

    fn complete(&mut self, pool: &dyn Memory, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        self.reap(pool);
        while let Some((t, r)) = self.done.pop_front() {
            done(t, r);
        }
    }

    fn poll_completions(&mut self, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        // Without the pool memory only I/O that moves no data can finish.
        self.complete(&EmptyMemory, done)
    }

    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        block_size: u32,
    ) -> Result<LbaRun, IoError> {
        let l = self.luns.get(lun.0 as usize).ok_or(IoError::OutOfRange)?;
        if lba >= l.blocks || block_size != l.block_size {
            return Err(IoError::OutOfRange);
        }
        let bs = u64::from(l.block_size);
        let max = max.max(1).min(l.blocks - lba);
        let (off, end) = (lba * bs, (lba + max) * bs);
        let run = |status, bytes: u64| LbaRun {
            status,
            blocks: (bytes / bs).clamp(1, max),
        };
        match rustix::fs::seek(&l.file, SeekFrom::Data(off)) {
            Ok(d) if d <= off => {
                // Data here: mapped up to the next hole (a block is mapped
                // if any byte of it is).
                let hole = rustix::fs::seek(&l.file, SeekFrom::Hole(off))
                    .map_err(|e| io_error(&io::Error::from(e)))?;
                let hole = hole.min(end).next_multiple_of(bs);
                Ok(run(ProvisioningStatus::Mapped, hole - off))
            }
            Ok(d) => {
                // A hole up to the next data, in whole blocks.
                let d = d.min(end) / bs * bs;
                if d <= off {
                    Ok(run(ProvisioningStatus::Mapped, bs))
                } else {
                    Ok(run(ProvisioningStatus::Deallocated, d - off))
                }
            }
            // ENXIO: no data from here to the end of the file.
            Err(e) if e == rustix::io::Errno::NXIO => {
                Ok(run(ProvisioningStatus::Deallocated, end - off))
            }
            Err(e) => Err(io_error(&io::Error::from(e))),
        }
    }
}

/// Memory of no bytes (for I/O that moves no data).
struct EmptyMemory;

impl Memory for EmptyMemory {
    fn len(&self) -> usize {
        0
    }
    fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), crate::memory::MemoryError> {
        crate::memory::check_range(offset, buf.len(), 0)
    }
    fn write(&self, offset: usize, data: &[u8]) -> Result<(), crate::memory::MemoryError> {
        crate::memory::check_range(offset, data.len(), 0)
    }
    fn fill(&self, offset: usize, len: usize, _: u8) -> Result<(), crate::memory::MemoryError> {
        crate::memory::check_range(offset, len, 0)
    }
    fn bus_addr(&self, _: usize) -> Option<u64> {
        None
    }
}
