//! The file backend through the core, with both engines: the positioned
//! read/write engine and io_uring (`hba::host::uring`, through the glue a
//! tool writes, here in `UringEngine`). READ/WRITE with FUA, SYNCHRONIZE
//! CACHE, WRITE SAME, COMPARE AND WRITE, UNMAP (punched holes) and GET LBA
//! STATUS (SEEK_DATA/SEEK_HOLE) against a temporary file; O_DIRECT.
mod common;
use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::PathBuf;

use common::*;
use rscst_core::backend::{EngineKind, EngineOp};
use rscst_core::{
    Access, Backend, DataDirection, FileBackend, FileOptions, GroupId, IoEngine, LuConfig, Lun,
    PreadEngine, SessionHandle,
};
use rscst_hba::host::uring::{Uring, UringOp};

/// The glue between the core's engine trait and hba's io_uring.
struct UringEngine(Uring);

impl IoEngine for UringEngine {
    fn slots(&self) -> usize {
        self.0.slots()
    }
    fn slot_len(&self) -> usize {
        self.0.slot_len()
    }
    fn slot(&mut self, slot: usize) -> Option<&mut [u8]> {
        self.0.slot(slot)
    }
    fn add_file(&mut self, file: &File) -> io::Result<usize> {
        self.0.register_file(file.as_fd()).map(|i| i as usize)
    }
    fn submit(&mut self, op: &EngineOp) -> io::Result<()> {
        let kind = match op.kind {
            EngineKind::Read => UringOp::Read,
            EngineKind::Write => UringOp::Write,
            EngineKind::Flush => UringOp::DataSync,
            EngineKind::Discard => UringOp::PunchHole,
        };
        let file = u32::try_from(op.file).map_err(|_| io::Error::from(io::ErrorKind::NotFound))?;
        self.0
            .submit(kind, file, op.offset, op.len, op.slot, op.user)
    }
    fn complete(&mut self, done: &mut dyn FnMut(u64, io::Result<usize>)) {
        self.0.complete(done)
    }
}

/// Something that can wait for its engine (io_uring completes on its own time).
trait Wait {
    fn wait(&mut self);
}
impl Wait for FileBackend<PreadEngine> {
    fn wait(&mut self) {}
}
impl Wait for FileBackend<UringEngine> {
    fn wait(&mut self) {
        let _ = self.engine_mut().0.wait();
    }
}

const BLOCKS: u64 = 2048;

fn temp_file(tag: &str) -> PathBuf {
    let p = std::env::temp_dir().join(format!("rscst-file-{tag}-{}", std::process::id()));
    let f = File::create(&p).unwrap();
    f.set_len(BLOCKS * 512).unwrap();
    p
}

fn target<E: IoEngine>(
    engine: E,
    path: &std::path::Path,
    opts: FileOptions,
) -> (H<FileBackend<E>>, SessionHandle) {
    let mut fb = FileBackend::new(engine, 16);
    let id = fb.open(path, 512, opts).unwrap();
    assert_eq!(fb.blocks(id), Some(BLOCKS));
    let mut h = H::new(fb, 1024 * 1024, &[]);
    let mut cfg = LuConfig::new(id, 512, BLOCKS);
    cfg.thin = true;
    let lu = h.t.add_lu(&cfg).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login("iqn.t:file");
    (h, s)
}

fn run<B: Backend + Wait>(
    h: &mut H<B>,
    s: SessionHandle,
    cdb: &[u8],
    dir: DataDirection,
    len: u32,
    out: &[u8],
) -> Outcome {
    let c = h.submit(s, 0, cdb, dir, len, out);
    for _ in 0..10_000 {
        h.settle();
        if let Some(o) = h.outcome(c) {
            return o;
        }
        h.b.wait();
    }
    panic!("no outcome");
}

fn exercise<E: IoEngine>(h: &mut H<FileBackend<E>>, s: SessionHandle, path: &std::path::Path)
where
    FileBackend<E>: Wait,
{
    let r = |h: &mut H<FileBackend<E>>, cdb: &[u8], len: u32| {
        run(h, s, cdb, DataDirection::In, len, &[])
    };
    let w = |h: &mut H<FileBackend<E>>, cdb: &[u8], data: &[u8]| {
        run(h, s, cdb, DataDirection::Out, data.len() as u32, data)
    };
    run(h, s, &TUR, DataDirection::None, 0, &[]); // the power-on unit attention
    // A sparse file reads as zeros and is deallocated.
    r(h, &rd10(0, 8), 4096).good().data(&[0; 4096]);
    let lbas = |h: &mut H<FileBackend<E>>, lba: u64| {
        let mut c = [0u8; 16];
        c[0] = 0x9e;
        c[1] = 0x12;
        c[2..10].copy_from_slice(&lba.to_be_bytes());
        c[13] = 64;
        let d = r(h, &c, 64).good().data.clone();
        (u32::from_be_bytes(d[16..20].try_into().unwrap()), d[20])
    };
    assert_eq!(lbas(h, 0), (BLOCKS as u32, 1), "all deallocated");
    // WRITE (1.5 MiB: several engine pieces), FUA, read back.
    let data = pattern(3072 * 256, 7);
    w(h, &wr16(256, 1536), &data).good();
    let mut fua = wr10(0, 8);
    fua[1] = 0x08;
    w(h, &fua, &[0x42; 4096]).good();
    assert_eq!(r(h, &rd16(256, 1536), 1536 * 512).good().data, data);
    let file = std::fs::read(path).unwrap();
    assert_eq!(&file[256 * 512..(256 + 1536) * 512], &data[..]);
    assert!(file[..4096].iter().all(|&b| b == 0x42));
    // GET LBA STATUS: mapped where written.
    assert_eq!(lbas(h, 0).1, 0);
    assert_eq!(lbas(h, 300), (1536 - 44, 0));
    // SYNCHRONIZE CACHE.
    run(
        h,
        s,
        &[0x35, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        DataDirection::None,
        0,
        &[],
    )
    .good();
    // UNMAP 1 MiB (a punched hole reads as zeros, and is deallocated).
    let mut um = vec![0u8; 24];
    um[1] = 22;
    um[3] = 16;
    um[8..16].copy_from_slice(&512u64.to_be_bytes());
    um[16..20].copy_from_slice(&2048u32.to_be_bytes()[..]);
    um[16..20].copy_from_slice(&1024u32.to_be_bytes());
    w(h, &[0x42, 0, 0, 0, 0, 0, 0, 0, 24, 0], &um).good();
    r(h, &rd16(512, 16), 8192).good().data(&[0; 8192]);
    assert_eq!(lbas(h, 512), (1024, 1));
    assert_eq!(lbas(h, 256), (256, 0));
    // WRITE SAME of a pattern block over 300 blocks (several pieces of the slot).
    let blk = pattern(512, 99);
    let mut ws = [0u8; 16];
    ws[0] = 0x93;
    ws[2..10].copy_from_slice(&1600u64.to_be_bytes());
    ws[10..14].copy_from_slice(&300u32.to_be_bytes());
    w(h, &ws, &blk).good();
    let back = r(h, &rd16(1600, 300), 300 * 512).good().data.clone();
    assert!(back.chunks(512).all(|c| c == blk));
    // COMPARE AND WRITE (a read and a write through the engine).
    let mut caw = [0u8; 16];
    caw[0] = 0x89;
    caw[2..10].copy_from_slice(&1600u64.to_be_bytes());
    caw[13] = 1;
    let mut both = blk.clone();
    both.extend_from_slice(&[0x77; 512]);
    w(h, &caw, &both).good();
    r(h, &rd16(1600, 1), 512).good().data(&[0x77; 512]);
    w(h, &caw, &both).check(0xe, 0x1d, 0);
}

#[test]
fn file_backend_with_the_pread_engine() {
    let path = temp_file("pread");
    let (mut h, s) = target(
        PreadEngine::new(4, 128 * 1024),
        &path,
        FileOptions::default(),
    );
    exercise(&mut h, s, &path);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn file_backend_with_o_direct() {
    let path = temp_file("direct");
    let mut fb = FileBackend::new(PreadEngine::new(4, 64 * 1024), 16);
    let opts = FileOptions {
        direct: true,
        read_only: false,
    };
    if let Err(e) = fb.open(&path, 512, opts) {
        println!("O_DIRECT refused by this file system, test skipped: {e}");
        let _ = std::fs::remove_file(&path);
        return;
    }
    drop(fb);
    let (mut h, s) = target(PreadEngine::new(4, 64 * 1024), &path, opts);
    exercise(&mut h, s, &path);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn file_backend_with_io_uring() {
    let ring = match Uring::new(8, 128 * 1024) {
        Ok(r) => r,
        Err(e) => {
            println!("the kernel refuses io_uring, test skipped: {e}");
            return;
        }
    };
    let path = temp_file("uring");
    let (mut h, s) = target(UringEngine(ring), &path, FileOptions::default());
    exercise(&mut h, s, &path);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn file_backend_errors_and_back_pressure() {
    let path = temp_file("errors");
    let mut fb = FileBackend::new(PreadEngine::new(1, 4096), 1);
    assert!(
        fb.open(&path, 500, FileOptions::default()).is_err(),
        "block size"
    );
    let id = fb.open(&path, 512, FileOptions::default()).unwrap();
    let mut h = H::new(fb, 256 * 1024, &[]);
    let lu = h.t.add_lu(&LuConfig::new(id, 512, BLOCKS)).unwrap();
    h.t.map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = h.login_clean("iqn.t:e", 0);
    // One slot, one I/O at a time: two writes still both complete.
    let a = h.submit(s, 0, &wr10(0, 16), DataDirection::Out, 8192, &[1; 8192]);
    let b = h.submit(s, 0, &wr10(16, 16), DataDirection::Out, 8192, &[2; 8192]);
    h.settle();
    h.result(a).good();
    h.result(b).good();
    h.read_cmd(s, 0, &rd10(0, 32), 16384).good();
    let file = std::fs::read(&path).unwrap();
    assert!(file[..8192].iter().all(|&x| x == 1) && file[8192..16384].iter().all(|&x| x == 2));
    let _ = std::fs::remove_file(&path);
}
