//! The null backend (SCST nullio, SPDK null bdev): reads return zeros,
//! writes are discarded, at no per-command cost.

use super::{Backend, BackendLun, Io, IoError, IoKind, MapDir, Mapped, Submitted};
use crate::memory::{Memory, Seg, SegList};
use crate::transport::Busy;

/// Serves any number of logical units of any size. Every read segment points
/// at one shared chunk of zeros and every write segment at one shared sink
/// chunk, so READ and WRITE are zero copy with no per-command work.
#[derive(Debug)]
pub struct NullBackend<M: Memory> {
    zeros: M,
    sink: M,
}

impl<M: Memory> NullBackend<M> {
    /// A null backend over two bus-addressable chunks: `zeros` (filled with
    /// zeros here, never written again) and `sink` (where written data lands).
    /// Larger chunks let larger transfers go in one round.
    pub fn new(zeros: M, sink: M) -> Result<NullBackend<M>, IoError> {
        zeros.fill(0, zeros.len(), 0)?;
        Ok(NullBackend { zeros, sink })
    }

    fn chunk(&self, dir: MapDir) -> &M {
        match dir {
            MapDir::Read => &self.zeros,
            MapDir::Write => &self.sink,
        }
    }
}

impl<M: Memory> Backend for NullBackend<M> {
    fn map(
        &mut self,
        _lun: BackendLun,
        dir: MapDir,
        _lba: u64,
        blocks: u64,
        block_size: u32,
        segs: &mut SegList,
    ) -> Result<Mapped, IoError> {
        let chunk = self.chunk(dir);
        let (Some(addr), Ok(chunk_len)) = (chunk.bus_addr(0), u32::try_from(chunk.len())) else {
            return Ok(Mapped::Unsupported);
        };
        let bs = u64::from(block_size);
        let free = (crate::memory::MAX_SEGS - segs.len()) as u64;
        let fit = free * u64::from(chunk_len) / bs * bs;
        let want = blocks.saturating_mul(bs).min(fit);
        if want == 0 {
            return Ok(Mapped::Unsupported);
        }
        let mut done = 0u64;
        while done < want {
            let n = (want - done).min(u64::from(chunk_len));
            if segs
                .push(Seg {
                    addr,
                    len: n as u32,
                })
                .is_err()
            {
                break;
            }
            done += n;
        }
        Ok(Mapped::Bytes(done))
    }

    fn submit(&mut self, io: &Io<'_>) -> Result<Submitted, Busy> {
        let r = match (io.kind, io.buf) {
            (IoKind::Read, Some(buf)) => buf.fill(0, buf.len, 0).map_err(IoError::from),
            (IoKind::Read, None) => Err(IoError::Failed),
            _ => Ok(()),
        };
        Ok(Submitted::Done(r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{IoBuf, IoToken};
    use crate::memory::SliceMemory;

    #[test]
    fn reads_zeros_and_maps_shared_chunks() {
        let (mut z, mut s, mut p) = ([0xffu8; 4096], [0u8; 4096], [0xffu8; 1024]);
        let mut b = NullBackend::new(
            SliceMemory::new(&mut z, 0x10_0000),
            SliceMemory::new(&mut s, 0x20_0000),
        )
        .unwrap();
        let mut segs = SegList::new();
        // 64 KiB of reads: 8 segments of the 4 KiB zero chunk hold 32 KiB.
        let m = b
            .map(BackendLun(0), MapDir::Read, 0, 128, 512, &mut segs)
            .unwrap();
        assert_eq!(m, Mapped::Bytes(32 * 1024));
        assert!(
            segs.as_slice()
                .iter()
                .all(|s| s.addr == 0x10_0000 && s.len == 4096)
        );
        segs.clear();
        let m = b
            .map(BackendLun(3), MapDir::Write, 9, 1, 512, &mut segs)
            .unwrap();
        assert_eq!(m, Mapped::Bytes(512));
        assert_eq!(
            segs.as_slice(),
            &[Seg {
                addr: 0x20_0000,
                len: 512
            }]
        );

        let pool = SliceMemory::new(&mut p, 0);
        let io = Io {
            token: IoToken::new(1),
            lun: BackendLun(0),
            kind: IoKind::Read,
            lba: 0,
            blocks: 2,
            block_size: 512,
            fua: false,
            buf: Some(IoBuf {
                mem: &pool,
                offset: 0,
                len: 1024,
            }),
        };
        assert_eq!(b.submit(&io), Ok(Submitted::Done(Ok(()))));
        let mut out = [1u8; 1024];
        pool.read(0, &mut out).unwrap();
        assert!(out.iter().all(|&x| x == 0));
    }
}
