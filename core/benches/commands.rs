//! Micro-benchmarks of the core alone (divan): one command through `submit`, `poll` and
//! `response_sent`, with a RAM LU in caller memory and a transport that finishes every
//! request at once. A regression guard to run by hand:
//!
//! ```sh
//! cargo bench -p rscst-core --bench commands
//! ```
//!
//! Times, not assertions. The instruction count per command (stable across machines) is
//! `scripts/callgrind-read512.sh`'s job for the whole stack, and `core/examples/ram_read`
//! under callgrind for the core alone.

use rscst_core::{
    Access, BufferPool, Busy, CmdHandle, CmdRef, CommandRequest, Data, DataDirection, GroupId,
    Instant, LuConfig, Lun, PortConfig, RamBackend, RelativePortId, SessionHandle, SliceMemory,
    Status, Target, TargetConfig, TargetPortGroupId, TargetStorage, TaskAttr, TaskTag, TmfRef,
    TmfResponse, Transport, TransportId,
};

fn main() {
    divan::main();
}

/// Completes everything at once: remembers what to complete after the poll.
struct Instant0 {
    done: Vec<CmdHandle>,
    data_out: Vec<CmdHandle>,
    /// Check that every command ends GOOD (what is measured is the command).
    expect_good: bool,
}

impl Transport for Instant0 {
    fn queue_data_in(
        &mut self,
        cmd: CmdRef,
        _: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        let s = status.expect("one round");
        assert!(!self.expect_good || s.status == rscst_core::ScsiStatus::Good);
        self.done.push(cmd.handle);
        Ok(())
    }
    fn request_data_out(&mut self, cmd: CmdRef, _: &Data<'_>) -> Result<(), Busy> {
        self.data_out.push(cmd.handle);
        Ok(())
    }
    fn queue_status(&mut self, cmd: CmdRef, s: &Status<'_>) -> Result<(), Busy> {
        assert!(
            !self.expect_good || s.status == rscst_core::ScsiStatus::Good,
            "{:?}",
            s.sense
        );
        self.done.push(cmd.handle);
        Ok(())
    }
    fn queue_tmf_response(&mut self, _: TmfRef, _: &TmfResponse) -> Result<(), Busy> {
        Ok(())
    }
    fn command_aborted(&mut self, _: CmdRef) -> Result<(), Busy> {
        unreachable!("nothing is aborted")
    }
}

/// Runs `f` with a target holding one 1 MiB RAM LU and one session whose unit
/// attention is already cleared.
fn with_target(
    f: impl FnOnce(&mut Target<'_>, &mut RamBackend<'_, &SliceMemory<'_>, 1>, SessionHandle),
) {
    let mut lun = vec![0u8; 1 << 20];
    let lun = SliceMemory::new(&mut lun, 0x4000_0000);
    let mut pool = vec![0u8; 64 * 1024];
    let pool = SliceMemory::new(&mut pool, 0x1000_0000);
    let mut storage = Box::new(TargetStorage::<32, 4, 4>::new());
    let mut target = Target::new(
        &mut storage,
        BufferPool::new(&pool, 4096).unwrap(),
        &TargetConfig::new("RSCST", "bench", "1"),
    );
    target
        .add_port(&PortConfig::new(RelativePortId(1), TargetPortGroupId(1)))
        .unwrap();
    let mut backend: RamBackend<'_, &SliceMemory<'_>, 1> = RamBackend::new();
    let id = backend.add_lun(&lun, 512).unwrap();
    let lu = target.add_lu(&LuConfig::new(id, 512, 2048)).unwrap();
    target
        .map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let s = target
        .create_session(&TransportId::fc(0x2100_0000_0000_0001), RelativePortId(1))
        .unwrap();
    // The first command reports POWER ON, RESET (CHECK CONDITION): clear it here.
    let mut t = Instant0 {
        done: Vec::new(),
        data_out: Vec::new(),
        expect_good: false,
    };
    submit(&mut target, s, &[0; 6], 0, DataDirection::None, 0);
    target.poll(Instant::from_nanos(1), &mut t, &mut backend);
    for h in t.done {
        target.response_sent(h, Ok(())).unwrap();
    }
    f(&mut target, &mut backend, s);
}

fn submit(
    target: &mut Target<'_>,
    session: SessionHandle,
    cdb: &[u8],
    len: u32,
    dir: DataDirection,
    tag: u64,
) {
    target
        .submit(&CommandRequest {
            session,
            tag: TaskTag(tag),
            lun: Lun::ZERO,
            attr: TaskAttr::Simple,
            priority: 0,
            crn: 0,
            cdb,
            expected_len: len,
            dir,
        })
        .unwrap();
}

/// One command, start to end; it must end GOOD.
fn run(
    target: &mut Target<'_>,
    backend: &mut RamBackend<'_, &SliceMemory<'_>, 1>,
    session: SessionHandle,
    cdb: &[u8],
    len: u32,
    dir: DataDirection,
    tag: u64,
) {
    let mut t = Instant0 {
        done: Vec::with_capacity(4),
        data_out: Vec::with_capacity(4),
        expect_good: true,
    };
    submit(target, session, cdb, len, dir, tag);
    let now = Instant::from_nanos(tag);
    target.poll(now, &mut t, backend);
    while let Some(h) = t.data_out.pop() {
        target.data_out_done(h, Ok(())).unwrap();
        target.poll(now, &mut t, backend);
    }
    assert_eq!(t.done.len(), 1);
    for h in t.done.drain(..) {
        target.response_sent(h, Ok(())).unwrap();
    }
}

#[divan::bench(args = [512, 4096])]
fn read(b: divan::Bencher, bytes: u32) {
    let blocks = (bytes / 512) as u8;
    let cdb = [0x28, 0, 0, 0, 0, 8, 0, 0, blocks, 0];
    with_target(|t, be, s| {
        let mut tag = 1;
        b.bench_local(|| {
            tag += 1;
            run(t, be, s, &cdb, bytes, DataDirection::In, tag);
        });
    });
}

#[divan::bench(args = [512, 4096])]
fn write(b: divan::Bencher, bytes: u32) {
    let blocks = (bytes / 512) as u8;
    let cdb = [0x2A, 0, 0, 0, 0, 8, 0, 0, blocks, 0];
    with_target(|t, be, s| {
        let mut tag = 1;
        b.bench_local(|| {
            tag += 1;
            run(t, be, s, &cdb, bytes, DataDirection::Out, tag);
        });
    });
}

#[divan::bench]
fn test_unit_ready(b: divan::Bencher) {
    with_target(|t, be, s| {
        let mut tag = 1;
        b.bench_local(|| {
            tag += 1;
            run(t, be, s, &[0; 6], 0, DataDirection::None, tag);
        });
    });
}

#[divan::bench]
fn inquiry(b: divan::Bencher) {
    with_target(|t, be, s| {
        let mut tag = 1;
        b.bench_local(|| {
            tag += 1;
            run(
                t,
                be,
                s,
                &[0x12, 0, 0, 0, 96, 0],
                96,
                DataDirection::In,
                tag,
            );
        });
    });
}
