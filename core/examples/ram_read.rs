//! The smallest complete use of the core: a RAM LU, one session, and a
//! transport that completes everything at once. Runs `N` 512-byte READs
//! (first argument, default 1,000,000) and prints the time per command.
//!
//! ```sh
//! cargo run --release -p rscst-core --example ram_read -- 1000000
//! ```
//! Under `valgrind --tool=callgrind` (or `perf stat -e instructions`) with two
//! values of `N`, the difference gives the instructions per command.

use std::time::Instant as StdInstant;

use rscst_core::{
    Access, BufferPool, Busy, CmdHandle, CmdRef, CommandRequest, Data, DataDirection, GroupId,
    Instant, LuConfig, Lun, PortConfig, RamBackend, RelativePortId, SliceMemory, Status, Target,
    TargetConfig, TargetPortGroupId, TargetStorage, TaskAttr, TaskTag, TmfRef, TmfResponse,
    Transport, TransportId,
};

/// A transport whose "hardware" finishes every request at once: it only
/// remembers which commands to complete after the poll.
struct Instant0 {
    done: [Option<CmdHandle>; 32],
    n: usize,
}

impl Transport for Instant0 {
    fn queue_data_in(
        &mut self,
        cmd: CmdRef,
        _: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        assert!(status.is_some(), "one round");
        self.done[self.n] = Some(cmd.handle);
        self.n += 1;
        Ok(())
    }
    fn request_data_out(&mut self, _: CmdRef, _: &Data<'_>) -> Result<(), Busy> {
        unreachable!()
    }
    fn queue_status(&mut self, cmd: CmdRef, _: &Status<'_>) -> Result<(), Busy> {
        self.done[self.n] = Some(cmd.handle);
        self.n += 1;
        Ok(())
    }
    fn queue_tmf_response(&mut self, _: TmfRef, _: &TmfResponse) -> Result<(), Busy> {
        Ok(())
    }
    fn command_aborted(&mut self, _: CmdRef) -> Result<(), Busy> {
        unreachable!()
    }
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("a count"));
    // Caller-provided memory: the LU's bytes and the buffer pool.
    let mut lun = vec![0u8; 1 << 20];
    let lun = SliceMemory::new(&mut lun, 0x4000_0000);
    let mut pool = vec![0u8; 64 * 1024];
    let pool = SliceMemory::new(&mut pool, 0x1000_0000);
    let mut storage = Box::new(TargetStorage::<32, 4, 4>::new());
    let mut target = Target::new(
        &mut storage,
        BufferPool::new(&pool, 4096).unwrap(),
        &TargetConfig::new("RSCST", "example", "1"),
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
    let mut t = Instant0 {
        done: [None; 32],
        n: 0,
    };

    let read10 = [0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0];
    let start = StdInstant::now();
    let mut now = 0;
    for i in 0..n {
        let h = target
            .submit(&CommandRequest {
                session: s,
                tag: TaskTag(i),
                lun: Lun::ZERO,
                attr: TaskAttr::Simple,
                priority: 0,
                crn: 0,
                cdb: &read10,
                expected_len: 512,
                dir: DataDirection::In,
            })
            .unwrap();
        now += 100;
        target.poll(Instant::from_nanos(now), &mut t, &mut backend);
        for k in 0..t.n {
            target
                .response_sent(t.done[k].take().unwrap(), Ok(()))
                .unwrap();
        }
        t.n = 0;
        let _ = h;
    }
    let el = start.elapsed();
    println!(
        "{n} READs of 512 bytes: {:?} per command; {}",
        el / n.max(1) as u32,
        target.stats()
    );
}
