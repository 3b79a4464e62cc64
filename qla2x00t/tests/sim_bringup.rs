//! The driver brought up on the simulator (no SCSI core yet): reset, firmware
//! load, target-mode init, link up; a 27xx with the MQ register page; a
//! mailbox stall and a system error with recovery.

use std::time::Duration;

use rscst_core::{
    CmdHandle, CommandRequest, Instant, Rejected, RelativePortId, SessionHandle, TmfHandle,
    TmfRequest, TransferError, TransportId,
};
use rscst_fw::Wwn;
use rscst_hba::Trigger;
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

/// A driver brought up on a default simulator (3 s of virtual time), its
/// bring-up events taken.
fn online<'s>(st: &'s mut Storage, image: &'s FirmwareImage) -> (Sim, Driver<'s>) {
    online_with(st, image, Trigger::Edge)
}

/// [`online`] with the interrupt line of the given kind.
fn online_with<'s>(
    st: &'s mut Storage,
    image: &'s FirmwareImage,
    trigger: Trigger,
) -> (Sim, Driver<'s>) {
    let (mut sim, platform) = Sim::new(SimConfig {
        irq_trigger: trigger,
        ..SimConfig::default()
    });
    let mut isp = Driver::probe(platform, st, config(image.as_bytes())).unwrap();
    run(&mut sim, &mut isp, Duration::from_secs(3));
    assert!(isp.is_online());
    events(&mut isp);
    (sim, isp)
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
    system_error_recovery(Trigger::Edge);
}

/// The same on an INTx line (acknowledged after the cause is cleared).
#[test]
fn system_error_resets_and_recovers_on_a_level_line() {
    system_error_recovery(Trigger::Level);
}

fn system_error_recovery(trigger: Trigger) {
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let (mut sim, mut isp) = online_with(&mut st, &image, trigger);
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

/// Online and idle, a poll reads no register: the interrupt line is quiet, the
/// response ring's signature says nothing new, so neither host status nor the
/// response in-pointer is read (each is an uncached PCIe round trip on
/// hardware). The periodic sweep still reads host status once.
#[test]
fn idle_online_polls_read_no_register() {
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let (mut sim, mut isp) = online(&mut st, &image);
    // Let the last bring-up and login traffic settle.
    run(&mut sim, &mut isp, Duration::from_millis(300));
    let t = now(&sim);
    for _ in 0..3 {
        isp.poll(t, &mut Idle);
    }
    let (reads, _) = isp.platform().mmio_counts();
    for _ in 0..1000 {
        assert_eq!(isp.poll(t, &mut Idle), Progress::Idle);
    }
    assert_eq!(
        isp.platform().mmio_counts().0,
        reads,
        "idle polls read registers"
    );
    // A sweep later, host status is read once whatever the line says.
    let later = t.saturating_add(Duration::from_millis(250));
    isp.poll(later, &mut Idle);
    isp.poll(later, &mut Idle);
    let after = isp.platform().mmio_counts().0;
    assert!(after > reads, "the sweep's host-status read");
    isp.poll(later, &mut Idle);
    assert_eq!(isp.platform().mmio_counts().0, after);
}

/// The RISC halts without an async event or an interrupt: the interrupt line
/// stays quiet, and the periodic sweep's host-status read finds the pause; the
/// driver resets the chip and brings the port back.
#[test]
fn silent_risc_halt_is_found_by_the_sweep_and_recovered() {
    let image = FirmwareImage::default_image();
    let mut st = Storage::new();
    let (mut sim, mut isp) = online(&mut st, &image);
    let raised = sim.interrupts_raised();
    sim.inject(ScheduledFault::RiscHalt);
    // Within one poll and the halt is not seen yet: nothing told the driver.
    isp.poll(now(&sim), &mut Idle);
    assert_eq!(
        sim.interrupts_raised(),
        raised,
        "a silent halt raises nothing"
    );
    run(&mut sim, &mut isp, Duration::from_secs(5));
    let ev = events(&mut isp);
    assert!(
        ev.iter()
            .any(|e| matches!(e, Event::Reset(rscst_qla::ResetReason::RiscPaused))),
        "{ev:#?}"
    );
    assert_eq!(isp.phase(), Phase::Online, "{ev:#?}");
    assert!(isp.link_up());
    assert_eq!(isp.stats().resets, 2);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}
