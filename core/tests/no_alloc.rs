//! 0 allocations across 100,000 commands: the core, the RAM backend and a
//! non-allocating transport under a counting global allocator.
//!
//! Runs as its own binary without the libtest harness, so the counter sees
//! nothing but this thread's work.

use rscst_core::backend::BackendLun;
use rscst_core::{
    Access, BufferPool, Busy, CmdHandle, CmdRef, CommandRequest, Data, DataDirection, GroupId,
    Instant, LuConfig, Lun, Memory, PortConfig, RamBackend, RelativePortId, SliceMemory, Status,
    Target, TargetConfig, TargetPortGroupId, TargetStorage, TaskAttr, TaskTag, TmfRef, TmfResponse,
    Transport, TransportId,
};
use rscst_hba::alloc_count::CountingAllocator;

#[global_allocator]
static ALLOC: CountingAllocator = CountingAllocator::new();

#[derive(Clone, Copy)]
enum Done {
    DataOut(CmdHandle),
    DataIn(CmdHandle),
    Response(CmdHandle),
}

/// A transport that queues its completions in a fixed array.
struct Ring {
    q: [Option<Done>; 64],
    n: usize,
    bytes_in: u64,
    not_good: u64,
}

impl Ring {
    fn push(&mut self, d: Done) -> Result<(), Busy> {
        if self.n == self.q.len() {
            return Err(Busy);
        }
        self.q[self.n] = Some(d);
        self.n += 1;
        Ok(())
    }
}

impl Transport for Ring {
    fn queue_data_in(
        &mut self,
        cmd: CmdRef,
        data: &Data<'_>,
        status: Option<&Status<'_>>,
    ) -> Result<(), Busy> {
        self.bytes_in += u64::from(data.len());
        self.push(if status.is_some() {
            Done::Response(cmd.handle)
        } else {
            Done::DataIn(cmd.handle)
        })
    }
    fn request_data_out(&mut self, cmd: CmdRef, _data: &Data<'_>) -> Result<(), Busy> {
        self.push(Done::DataOut(cmd.handle))
    }
    fn queue_status(&mut self, cmd: CmdRef, status: &Status<'_>) -> Result<(), Busy> {
        if status.status != rscst_core::ScsiStatus::Good {
            self.not_good += 1;
        }
        self.push(Done::Response(cmd.handle))
    }
    fn queue_tmf_response(&mut self, _tmf: TmfRef, _response: &TmfResponse) -> Result<(), Busy> {
        Ok(())
    }
    fn command_aborted(&mut self, _cmd: CmdRef) -> Result<(), Busy> {
        panic!("no aborts in this test")
    }
}

fn main() {
    // Speak enough of the libtest command line for test runners (cargo
    // nextest lists tests with `--list --format terse`).
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--list") {
        if !args.iter().any(|a| a == "--ignored") {
            println!("no_alloc: test");
        }
        return;
    }
    drop(args);
    // Everything allocated up front.
    let lun: &'static mut [u8] = Box::leak(vec![0u8; 1 << 20].into_boxed_slice());
    let lun = Box::leak(Box::new(SliceMemory::new(lun, 0x4000_0000)));
    let pool: &'static mut [u8] = Box::leak(vec![0u8; 64 * 1024].into_boxed_slice());
    let pool = Box::leak(Box::new(SliceMemory::new(pool, 0x1000_0000)));
    let storage = Box::leak(Box::new(TargetStorage::<64, 4, 4>::new()));
    let mut target = Target::new(
        storage,
        BufferPool::new(pool, 4096).unwrap(),
        &TargetConfig::new("RSCST", "no alloc", "1"),
    );
    target
        .add_port(&PortConfig::new(RelativePortId(1), TargetPortGroupId(1)))
        .unwrap();
    let mut backend: RamBackend<'_, &SliceMemory<'_>, 1> = RamBackend::new();
    let id = backend.add_lun(&*lun, 512).unwrap();
    assert_eq!(id, BackendLun(0));
    let lu = target.add_lu(&LuConfig::new(id, 512, 2048)).unwrap();
    target
        .map_lun(GroupId::DEFAULT, Lun::ZERO, lu, Access::ReadWrite)
        .unwrap();
    let initiator = TransportId::fc(0x2100_0024_ff00_0001);
    let s = target
        .create_session(&initiator, RelativePortId(1))
        .unwrap();
    let mut ring = Ring {
        q: [None; 64],
        n: 0,
        bytes_in: 0,
        not_good: 0,
    };
    lun.fill(0, 512, 0x5a).unwrap();

    let cdbs: [(&[u8], DataDirection, u32); 5] = [
        (&[0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], DataDirection::In, 512), // READ(10)
        (&[0x2a, 0, 0, 0, 0, 8, 0, 0, 1, 0], DataDirection::Out, 512), // WRITE(10)
        (
            &[0x88, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 0, 8, 0, 0],
            DataDirection::In,
            4096,
        ), // READ(16)
        (&[0x00, 0, 0, 0, 0, 0], DataDirection::None, 0),             // TEST UNIT READY
        (&[0x12, 0, 0, 0, 96, 0], DataDirection::In, 96),             // INQUIRY (pool buffer)
    ];
    let mut now = 0u64;
    let mut run = |target: &mut Target<'_>,
                   ring: &mut Ring,
                   backend: &mut RamBackend<'_, &SliceMemory<'_>, 1>,
                   n: u64| {
        let mut completed = 0u64;
        let mut tag = 0u64;
        while completed < n {
            // Keep up to 16 commands in flight.
            for _ in 0..16 {
                let (cdb, dir, len) = cdbs[(tag % 5) as usize];
                let req = CommandRequest {
                    session: s,
                    tag: TaskTag(tag),
                    lun: Lun::ZERO,
                    attr: TaskAttr::Simple,
                    priority: 0,
                    crn: 0,
                    cdb,
                    expected_len: len,
                    dir,
                };
                if target.submit(&req).is_err() {
                    break;
                }
                tag += 1;
            }
            now += 1000;
            target.poll(Instant::from_nanos(now), ring, backend);
            for k in 0..ring.n {
                match ring.q[k].take().unwrap() {
                    Done::DataOut(h) => target.data_out_done(h, Ok(())).unwrap(),
                    Done::DataIn(h) => target.data_in_done(h, Ok(())).unwrap(),
                    Done::Response(h) => {
                        target.response_sent(h, Ok(())).unwrap();
                        completed += 1;
                    }
                }
            }
            ring.n = 0;
        }
        // Drain what is still in flight.
        for _ in 0..100 {
            target.poll(Instant::from_nanos(now), ring, backend);
            for k in 0..ring.n {
                match ring.q[k].take().unwrap() {
                    Done::DataOut(h) => target.data_out_done(h, Ok(())).unwrap(),
                    Done::DataIn(h) => target.data_in_done(h, Ok(())).unwrap(),
                    Done::Response(h) => target.response_sent(h, Ok(())).unwrap(),
                }
            }
            ring.n = 0;
        }
    };

    // The power-on unit attention: one command reports it.
    let tur = CommandRequest {
        session: s,
        tag: TaskTag(u64::MAX),
        lun: Lun::ZERO,
        attr: TaskAttr::Simple,
        priority: 0,
        crn: 0,
        cdb: &[0, 0, 0, 0, 0, 0],
        expected_len: 0,
        dir: DataDirection::None,
    };
    let h = target.submit(&tur).unwrap();
    target.poll(Instant::from_nanos(1), &mut ring, &mut backend);
    target.response_sent(h, Ok(())).unwrap();
    ring.n = 0;
    assert_eq!(ring.not_good, 1, "the power-on unit attention");
    ring.not_good = 0;
    // Warm up once, then measure.
    run(&mut target, &mut ring, &mut backend, 1000);
    let before = ALLOC.allocations();
    let commands_before = target.stats().completed;
    run(&mut target, &mut ring, &mut backend, 100_000);
    let after = ALLOC.allocations();
    let completed = target.stats().completed - commands_before;
    assert!(completed >= 100_000, "{completed} commands");
    assert_eq!(target.active_commands(), 0);
    assert_eq!(ring.not_good, 0);
    assert_eq!(after - before, 0, "allocations during {completed} commands");
    println!(
        "no_alloc: {completed} commands, {} allocations, {} bytes of data-in",
        after - before,
        ring.bytes_in
    );
}
