//! io_uring with owned, aligned buffers (feature `uring`, Linux).
//!
//! [`Uring`] is a safe submission/completion API over the `io-uring` crate
//! for block I/O on regular files and block devices: reads into and writes
//! from buffer *slots* the ring owns (aligned to 4096 bytes, so O_DIRECT
//! files work), data sync, and hole punching. The rules that make it sound:
//!
//! * a slot's bytes are handed out ([`Uring::slot`]) only while no
//!   operation uses it; an operation marks its slot busy until its
//!   completion is reaped by [`Uring::complete`];
//! * the slots live in heap allocations that are never resized or freed
//!   while the ring lives, and dropping a `Uring` first waits for every
//!   operation in flight;
//! * files are registered with the kernel ([`Uring::register_file`]): the
//!   kernel holds its own reference, so an operation never depends on a
//!   file descriptor of the caller staying open.
//!
//! The core's file backend reaches this through its `IoEngine` trait; the
//! small glue lives in the tools (see `docs/design/core-file-backend.md`).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::vec::Vec;

use io_uring::{IoUring, opcode, types};

/// Alignment of every slot (O_DIRECT needs the logical block size or more).
pub const SLOT_ALIGN: usize = 4096;
/// Files a ring can register.
pub const MAX_FILES: u32 = 64;

/// fallocate(2) mode: deallocate the range, keep the file size.
const PUNCH_HOLE_KEEP_SIZE: i32 = 0x02 | 0x01;

struct Slot {
    /// `len + SLOT_ALIGN` bytes; the slot is `at .. at + len`.
    mem: Vec<u8>,
    at: usize,
    busy: bool,
    user: u64,
}

/// An io_uring instance with `slots` buffers of `slot_len` bytes.
pub struct Uring {
    ring: IoUring,
    slots: Vec<Slot>,
    slot_len: usize,
    files: u32,
    in_flight: usize,
}

impl core::fmt::Debug for Uring {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "Uring({} slots of {} bytes, {} in flight)",
            self.slots.len(),
            self.slot_len,
            self.in_flight
        )
    }
}

/// What an operation does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UringOp {
    /// Read `len` bytes at `offset` into the slot.
    Read,
    /// Write the slot's first `len` bytes at `offset`.
    Write,
    /// fdatasync(2) the file (offset and length ignored).
    DataSync,
    /// Punch a hole of `len` bytes at `offset` (reads return zeros after).
    PunchHole,
}

impl Uring {
    /// A ring of `slots` submission entries and as many buffer slots of
    /// `slot_len` bytes (rounded up to [`SLOT_ALIGN`]). Fails where the
    /// kernel (or a seccomp filter) refuses io_uring.
    pub fn new(slots: usize, slot_len: usize) -> io::Result<Uring> {
        let entries = u32::try_from(slots.max(1).next_power_of_two())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let ring = IoUring::new(entries)?;
        ring.submitter().register_files_sparse(MAX_FILES)?;
        let slot_len = slot_len.max(1).next_multiple_of(SLOT_ALIGN);
        let slots = (0..slots)
            .map(|_| {
                let mem = std::vec![0u8; slot_len + SLOT_ALIGN];
                let at = mem.as_ptr().align_offset(SLOT_ALIGN);
                Slot {
                    mem,
                    at,
                    busy: false,
                    user: 0,
                }
            })
            .collect();
        Ok(Uring {
            ring,
            slots,
            slot_len,
            files: 0,
            in_flight: 0,
        })
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    /// Bytes per slot.
    pub fn slot_len(&self) -> usize {
        self.slot_len
    }

    /// Operations submitted and not yet reaped.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The bytes of slot `i`, unless an operation is using it.
    pub fn slot(&mut self, i: usize) -> Option<&mut [u8]> {
        let len = self.slot_len;
        let s = self.slots.get_mut(i)?;
        if s.busy {
            return None;
        }
        s.mem.get_mut(s.at..s.at + len)
    }

    /// Register a file with the kernel; operations name it by the returned index.
    pub fn register_file(&mut self, fd: BorrowedFd<'_>) -> io::Result<u32> {
        if self.files >= MAX_FILES {
            return Err(io::Error::from(io::ErrorKind::OutOfMemory));
        }
        let idx = self.files;
        self.ring
            .submitter()
            .register_files_update(idx, &[fd.as_raw_fd()])?;
        self.files += 1;
        Ok(idx)
    }

    /// Start `op` on registered file `file` with slot `slot`; `user` comes
    /// back with its completion. The slot is busy until then.
    pub fn submit(
        &mut self,
        op: UringOp,
        file: u32,
        offset: u64,
        len: usize,
        slot: usize,
        user: u64,
    ) -> io::Result<()> {
        if file >= self.files {
            return Err(io::Error::from(io::ErrorKind::NotFound));
        }
        let slot_len = self.slot_len;
        let s = self
            .slots
            .get_mut(slot)
            .filter(|s| !s.busy)
            .ok_or_else(|| io::Error::from(io::ErrorKind::ResourceBusy))?;
        if matches!(op, UringOp::Read | UringOp::Write) && len > slot_len {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        let len32 = u32::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let fd = types::Fixed(file);
        let ptr = s.mem[s.at..].as_mut_ptr();
        let entry = match op {
            UringOp::Read => opcode::Read::new(fd, ptr, len32).offset(offset).build(),
            UringOp::Write => opcode::Write::new(fd, ptr, len32).offset(offset).build(),
            UringOp::DataSync => opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build(),
            UringOp::PunchHole => opcode::Fallocate::new(fd, len as u64)
                .offset(offset)
                .mode(PUNCH_HOLE_KEEP_SIZE)
                .build(),
        }
        .user_data(slot as u64);
        // SAFETY: the entry references (a) slot memory: `ptr .. ptr + len`
        // lies inside `s.mem` (len <= slot_len and mem holds at + slot_len
        // bytes), a heap allocation this ring owns and never resizes or
        // frees while it lives; the slot is marked busy below, so no
        // reference to those bytes is handed out until the completion is
        // reaped, and Drop waits for every completion before freeing; (b) a
        // registered file index, whose file the kernel keeps referenced
        // itself. Nothing else is referenced.
        let pushed = unsafe { self.ring.submission().push(&entry) };
        if pushed.is_err() {
            return Err(io::Error::from(io::ErrorKind::WouldBlock));
        }
        s.busy = true;
        s.user = user;
        self.in_flight += 1;
        self.ring.submit()?;
        Ok(())
    }

    /// Reap finished operations: `done(user, Ok(bytes) | Err(errno))` each,
    /// freeing their slots. Does not block.
    pub fn complete(&mut self, done: &mut dyn FnMut(u64, io::Result<usize>)) {
        let mut cq = self.ring.completion();
        cq.sync();
        for cqe in &mut cq {
            let slot = cqe.user_data() as usize;
            let Some(s) = self.slots.get_mut(slot) else {
                continue;
            };
            s.busy = false;
            self.in_flight = self.in_flight.saturating_sub(1);
            let r = cqe.result();
            let res = if r < 0 {
                Err(io::Error::from_raw_os_error(-r))
            } else {
                Ok(r as usize)
            };
            done(s.user, res);
        }
    }

    /// Block until at least one operation completes (when any is in flight).
    pub fn wait(&mut self) -> io::Result<()> {
        if self.in_flight > 0 {
            self.ring.submit_and_wait(1)?;
        }
        Ok(())
    }
}

impl Drop for Uring {
    fn drop(&mut self) {
        // The kernel may still write into busy slots: wait for all of them
        // before the slot memory is freed.
        while self.in_flight > 0 {
            if self.ring.submit_and_wait(1).is_err() {
                // Cannot wait: leak the slots rather than free memory the
                // kernel may still write.
                core::mem::forget(core::mem::take(&mut self.slots));
                return;
            }
            self.complete(&mut |_, _| {});
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsFd;

    #[test]
    fn read_write_sync_punch() {
        let mut u = match Uring::new(4, 8192) {
            Ok(u) => u,
            Err(e) => {
                std::println!("io_uring unavailable, test skipped: {e}");
                return;
            }
        };
        let path = std::env::temp_dir().join(std::format!("rscst-uring-{}", std::process::id()));
        let mut f = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        f.write_all(&[0x11; 16384]).unwrap();
        let idx = u.register_file(f.as_fd()).unwrap();
        assert_eq!(u.slot(0).unwrap().as_ptr() as usize % SLOT_ALIGN, 0);
        u.slot(0).unwrap()[..4096].fill(0xab);
        u.submit(UringOp::Write, idx, 4096, 4096, 0, 7).unwrap();
        assert!(u.slot(0).is_none(), "busy while in flight");
        assert!(u.submit(UringOp::Read, idx, 0, 4096, 0, 8).is_err());
        let mut got = std::vec::Vec::new();
        while got.is_empty() {
            u.wait().unwrap();
            u.complete(&mut |user, r| got.push((user, r.unwrap())));
        }
        assert_eq!(got, [(7, 4096)]);
        u.submit(UringOp::Read, idx, 4096, 8192, 1, 9).unwrap();
        u.submit(UringOp::DataSync, idx, 0, 0, 2, 10).unwrap();
        u.submit(UringOp::PunchHole, idx, 12288, 4096, 3, 11)
            .unwrap();
        let mut got = std::vec::Vec::new();
        while got.len() < 3 {
            u.wait().unwrap();
            u.complete(&mut |user, r| got.push((user, r.unwrap())));
        }
        got.sort();
        assert_eq!(got, [(9, 8192), (10, 0), (11, 0)]);
        let s = u.slot(1).unwrap();
        assert!(s[..4096].iter().all(|&b| b == 0xab));
        assert!(s[4096..8192].iter().all(|&b| b == 0x11));
        let back = std::fs::read(&path).unwrap();
        assert!(back[12288..].iter().all(|&b| b == 0));
        assert_eq!(back.len(), 16384, "KEEP_SIZE");
        drop(u);
        let _ = std::fs::remove_file(&path);
    }
}
