//! Two backends behind one: logical units below a split go to the first.

use super::{Backend, BackendLun, Io, IoError, IoToken, LbaRun, MapDir, Mapped, Submitted};
use crate::memory::SegList;
use crate::transport::Busy;

/// Routes [`BackendLun`]s below `split` to `a` and the others to `b`
/// (renumbered from 0), e.g. RAM LUNs 0..4 and null LUNs from 4 on. Nest
/// pairs for more kinds.
#[derive(Debug)]
pub struct Pair<A, B> {
    /// The backend of the low LUN numbers.
    pub a: A,
    /// The backend of the high LUN numbers.
    pub b: B,
    split: u32,
}

impl<A: Backend, B: Backend> Pair<A, B> {
    /// `BackendLun(n)` for `n < split` is `a`'s LUN `n`, else `b`'s LUN `n - split`.
    pub fn new(a: A, b: B, split: u32) -> Pair<A, B> {
        Pair { a, b, split }
    }

    fn route(&self, lun: BackendLun) -> Result<BackendLun, BackendLun> {
        if lun.0 < self.split {
            Ok(lun)
        } else {
            Err(BackendLun(lun.0 - self.split))
        }
    }
}

impl<A: Backend, B: Backend> Backend for Pair<A, B> {
    fn map(
        &mut self,
        lun: BackendLun,
        dir: MapDir,
        lba: u64,
        blocks: u64,
        block_size: u32,
        segs: &mut SegList,
    ) -> Result<Mapped, IoError> {
        match self.route(lun) {
            Ok(l) => self.a.map(l, dir, lba, blocks, block_size, segs),
            Err(l) => self.b.map(l, dir, lba, blocks, block_size, segs),
        }
    }

    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy> {
        match self.route(io.lun) {
            Ok(l) => self.a.submit(&Io { lun: l, ..*io }),
            Err(l) => self.b.submit(&Io { lun: l, ..*io }),
        }
    }

    fn poll_completions(&mut self, done: &mut dyn FnMut(IoToken, Result<(), IoError>)) {
        self.a.poll_completions(done);
        self.b.poll_completions(done);
    }

    fn complete(
        &mut self,
        pool: &dyn crate::memory::Memory,
        done: &mut dyn FnMut(IoToken, Result<(), IoError>),
    ) {
        self.a.complete(pool, done);
        self.b.complete(pool, done);
    }

    fn lba_status(
        &mut self,
        lun: BackendLun,
        lba: u64,
        max: u64,
        block_size: u32,
    ) -> Result<LbaRun, IoError> {
        match self.route(lun) {
            Ok(l) => self.a.lba_status(l, lba, max, block_size),
            Err(l) => self.b.lba_status(l, lba, max, block_size),
        }
    }
}
