//! The driver brought up on the simulator (no SCSI core yet): reset, firmware
//! load, target-mode init, link up; a 27xx with the MQ register page; a
//! mailbox stall and a system error with recovery.

use std::time::Duration;

use rscst_core::{
    CmdHandle, CommandRequest, Instant, Rejected, RelativePortId, SessionHandle, TmfHandle,
    TmfRequest, TransferError, TransportId,
};
use rscst_fw::Wwn;
use rscst_qla::{CoreApi, Event, FirmwareSource, Isp, IspConfig, IspStorage, Phase, Progress};
use rscst_sim::{ChipModel, FirmwareImage, ScheduledFault, Sim, SimConfig, SimPlatform, SimTime};

/// A core nobody logs in to.
struct Idle;

impl CoreApi for Idle {
    fn command_slots(&self) -> Option<usize> {
        Some(16)
    }
    fn tmf_slots(&self) -> Option<usize> {
        Some(8)
    }
    fn create_session(&mut self, _: &TransportId, _: RelativePortId) -> Option<SessionHandle> {
        None
    }
    fn remove_session(&mut self, _: SessionHandle) {}
    fn submit(&mut self, _: &CommandRequest<'_>) -> Result<CmdHandle, Rejected> {
        Err(Rejected::Busy)
    }
    fn submit_tmf(&mut self, _: &TmfRequest) -> Result<TmfHandle, Rejected> {
        Err(Rejected::Busy)
    }
    fn data_out_done(&mut self, _: CmdHandle, _: Result<(), TransferError>) -> bool {
        false
    }
    fn data_in_done(&mut self, _: CmdHandle, _: Result<(), TransferError>) -> bool {
        false
    }
    fn response_sent(&mut self, _: CmdHandle, _: Result<(), TransferError>) -> bool {
        false
    }
    fn abort_done(&mut self, _: CmdHandle) -> bool {
        false
    }
    fn tmf_response_sent(&mut self, _: TmfHandle) -> bool {
        false
    }
}

type Storage = IspStorage<16, 8, 8, 64, 256>;
type Driver<'s> = Isp<'s, SimPlatform, 128, 128, 128>;

fn now(sim: &Sim) -> Instant {
    Instant::from_nanos(sim.now().as_nanos())
}

/// Interleave driver and simulator for `d` of virtual time.
fn run(sim: &mut Sim, isp: &mut Driver<'_>, d: Duration) {
    let end = sim.now().saturating_add(d);
    loop {
        for _ in 0..10_000 {
            sim.run_until(sim.now());
            if isp.poll(now(sim), &mut Idle) == Progress::Idle {
                break;
            }
        }
        if sim.now() >= end {
            return;
        }
        let mut next = end;
        if let Some(t) = sim.next_event_time() {
            next = next.min(t);
        }
        if let Some(t) = isp.poll_at(now(sim)) {
            next = next.min(SimTime::from_nanos(t.as_nanos()));
        }
        if next <= sim.now() {
            next = sim.now().saturating_add(Duration::from_micros(1));
        }
        sim.run_until(next);
    }
}

fn config(image: &[u8]) -> IspConfig<'_> {
    IspConfig::new(
        Wwn::from_u64(0x2100_0024_ff00_0001),
        Wwn::from_u64(0x2000_0024_ff00_0001),
        FirmwareSource::Image(image),
    )
}

fn events(isp: &mut Driver<'_>) -> Vec<Event> {
    std::iter::from_fn(|| isp.pop_event())
        .map(|r| r.event)
        .collect()
}

fn bring_up(chip: ChipModel) {
    let (mut sim, platform) = Sim::new(SimConfig::with_chip(chip));
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let mut isp = Driver::probe(platform, &mut st, config(image.as_bytes())).unwrap();
    run(&mut sim, &mut isp, Duration::from_secs(3));
    let ev = events(&mut isp);
    assert_eq!(isp.phase(), Phase::Online, "{ev:#?}");
    assert!(isp.link_up(), "{ev:#?}");
    assert_eq!(Some(isp.port_id()), sim.hba_port_id());
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::FirmwareStarted { .. }))
    );
    assert!(ev.iter().any(|e| matches!(e, Event::Online { .. })));
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert!(sim.iommu_faults().is_empty());
    assert!(sim.release_fences() >= isp.stats().doorbells);
}

#[test]
fn brings_up_isp2532() {
    bring_up(ChipModel::default());
}

#[test]
fn brings_up_isp27xx_with_mq_page() {
    bring_up(ChipModel::isp27xx());
}

#[test]
fn mailbox_stall_resets_and_recovers() {
    let (mut sim, platform) = Sim::new(SimConfig::default());
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let mut cfg = config(image.as_bytes());
    cfg.mailbox_timeout = Duration::from_millis(500);
    cfg.backoff_initial = Duration::from_millis(100);
    let mut isp = Driver::probe(platform, &mut st, cfg).unwrap();
    sim.inject(ScheduledFault::StallNextMailbox);
    run(&mut sim, &mut isp, Duration::from_secs(5));
    let ev = events(&mut isp);
    assert_eq!(isp.phase(), Phase::Online, "{ev:#?}");
    assert!(
        ev.iter().any(|e| matches!(e, Event::BringUpFailed { .. })),
        "{ev:#?}"
    );
    assert_eq!(isp.stats().resets, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn system_error_resets_and_recovers() {
    let (mut sim, platform) = Sim::new(SimConfig::default());
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let mut isp = Driver::probe(platform, &mut st, config(image.as_bytes())).unwrap();
    run(&mut sim, &mut isp, Duration::from_secs(3));
    assert!(isp.is_online());
    events(&mut isp);
    sim.inject(ScheduledFault::SystemError);
    run(&mut sim, &mut isp, Duration::from_secs(5));
    let ev = events(&mut isp);
    assert!(
        ev.iter().any(|e| matches!(
            e,
            Event::Reset(rscst_qla::ResetReason::SystemError(_))
                | Event::Reset(rscst_qla::ResetReason::RiscPaused)
        )),
        "{ev:#?}"
    );
    assert_eq!(isp.phase(), Phase::Online, "{ev:#?}");
    assert!(isp.link_up());
    assert_eq!(isp.stats().resets, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
#[ignore]
fn show_events() {
    let (mut sim, platform) = Sim::new(SimConfig::default());
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let mut isp = Driver::probe(platform, &mut st, config(image.as_bytes())).unwrap();
    run(&mut sim, &mut isp, Duration::from_secs(3));
    sim.inject(ScheduledFault::SystemError);
    run(&mut sim, &mut isp, Duration::from_secs(5));
    while let Some(e) = isp.pop_event() {
        println!("{e}");
    }
    println!("{}", isp.stats());
}
