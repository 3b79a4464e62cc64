//! Threaded mode: the simulation on its own thread and real time, the tiny test driver on
//! this one, sleeping on the interrupt line between polls. Bring-up and a verified
//! workload from two initiators, then the simulation is stopped and inspected.

mod common;

use std::time::{Duration, Instant};

use common::target::MiniTarget;
use common::{MbxResult, TestDriver};
use rscst_fw::mailbox::{Mailboxes, MbxCommand};
use rscst_fw::regs::{self, HccrCommand};
use rscst_hba::{Irq, Mmio, Platform, RegOffset};
use rscst_sim::{
    ChannelHandler, CommandSpec, FirmwareImage, InitiatorConfig, InitiatorEvent, Sim, SimConfig,
    WorkloadSpec,
};

/// Polls `cond` in real time, sleeping on the interrupt line when interrupts are enabled.
fn wait(
    d: &mut TestDriver,
    limit: Duration,
    mut cond: impl FnMut(&mut TestDriver) -> bool,
) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if cond(d) {
            return true;
        }
        if d.rd(regs::ICTRL) & 8 != 0 {
            d.p.irq().wait(Some(Duration::from_millis(1)));
        } else {
            std::thread::yield_now();
        }
    }
    cond(d)
}

fn mbx(d: &mut TestDriver, cmd: &Mailboxes) -> MbxResult {
    for n in 0..32 {
        d.p.regs()
            .write16(RegOffset(regs::mailbox(n).unwrap()), cmd.0[n]);
    }
    d.hccr(HccrCommand::SetHostInt);
    let mut res = None;
    let ok = wait(d, Duration::from_secs(5), |d| {
        let hs = d.host_status();
        if !hs.int_pending() {
            return false;
        }
        if hs.int_type().is_mailbox_completion() {
            let mut out = Mailboxes([0; 32]);
            out.0[0] = hs.mailbox0();
            for n in 1..32 {
                out.0[n] = d.mb_out(n);
            }
            d.hccr(HccrCommand::ClearRiscInt);
            d.irq_ack();
            res = Some(MbxResult {
                host_status: hs,
                out,
            });
            return true;
        }
        d.hccr(HccrCommand::ClearRiscInt);
        d.irq_ack();
        false
    });
    assert!(ok, "mailbox {} timed out", cmd.command());
    res.unwrap()
}

fn bring_up(d: &mut TestDriver) {
    rscst_hba::PciConfig::enable_bus_master(d.p.pci());
    d.wr(regs::CTRL_STATUS, 0x0001_0030);
    assert!(wait(d, Duration::from_secs(1), |d| d.rd(regs::CTRL_STATUS)
        & (1 << 17)
        == 0));
    d.wr(regs::CTRL_STATUS, 0x0001_0031);
    assert!(wait(d, Duration::from_secs(1), |d| d.rd(regs::CTRL_STATUS)
        & 1
        == 0
        && d.mb_out(0) == 0));
    d.hccr(HccrCommand::SetRiscReset);
    d.hccr(HccrCommand::ReleaseRiscPause);
    d.hccr(HccrCommand::ClearRiscReset);
    std::thread::sleep(Duration::from_millis(1));
    assert!(wait(d, Duration::from_secs(1), |d| d.mb_out(0) == 0));
    assert_eq!(mbx(d, &Mailboxes::mailbox_register_test()).status(), 0x4000);
    let img = FirmwareImage::default_image();
    let buf = rscst_hba::DmaPool::alloc(d.p.dma(), 16384, 4096).unwrap();
    for seg in img.segments() {
        let bytes: Vec<u8> = seg
            .bytes
            .chunks(4)
            .flat_map(|c| [c[3], c[2], c[1], c[0]])
            .collect();
        rscst_hba::DmaRegion::write(&buf, 0, &bytes).unwrap();
        let m = Mailboxes::load_risc_ram_extended(
            seg.load_addr,
            rscst_hba::DmaRegion::iova(&buf).0,
            seg.words() as u32,
        );
        assert_eq!(mbx(d, &m).status(), 0x4000);
    }
    let r = mbx(
        d,
        &Mailboxes::execute_firmware(img.start_address(), Default::default(), 0),
    );
    assert_eq!((r.status(), r.int_type()), (0x4000, 0x10));
}

#[test]
fn threaded_bring_up_and_verified_workload() {
    let (sim, p) = Sim::new(SimConfig::threaded());
    let th = sim.spawn();
    let mut d = TestDriver::new(p);
    bring_up(&mut d);
    let r = init_threaded(&mut d);
    assert_eq!(r.status(), 0x4000);
    assert!(wait(&mut d, Duration::from_secs(5), |d| {
        let r = mbx(d, &Mailboxes::new(MbxCommand::GetFirmwareState));
        r.mb(1) == 3
    }));
    let mut t = MiniTarget::new(d, 1024);
    let inis: Vec<_> = th.with(|sim| {
        (0..2)
            .map(|i| sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9ff_0000 + i)))
            .collect()
    });
    let target = th.with(|sim| sim.hba_port_id()).expect("HBA on the fabric");
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let v = inis.clone();
        if th.with(move |sim| v.iter().all(|i| sim.initiator_port_id(*i).is_some())) {
            break;
        }
        t.poll_hw();
        assert!(Instant::now() < end, "fabric login");
    }
    let spec = WorkloadSpec {
        target: Some(target),
        lba_count: 512,
        total_ios: Some(3000),
        queue_depth: 8,
        ..WorkloadSpec::default()
    };
    let inis3 = inis.clone();
    let w = th
        .with(move |sim| sim.start_workload(spec, &inis3))
        .unwrap();
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        t.poll_hw();
        if th.with(move |sim| sim.workload_done(w)) {
            break;
        }
        assert!(Instant::now() < end, "workload stuck");
        t.d.p.irq().wait(Some(Duration::from_millis(1)));
    }
    let sim = th.stop();
    let r = sim.workload_report(w).unwrap();
    assert!(r.clean(), "{r}");
    assert_eq!(r.ok, 3000);
    assert!(sim.interrupts_raised() > 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
    assert_eq!(sim.open_exchanges(), 0);
}

fn init_threaded(d: &mut TestDriver) -> MbxResult {
    use rscst_fw::icb::{Icb, IcbRepr, RingConfig};
    use rscst_hba::{DmaPool, DmaRegion};
    let dma = d.p.dma();
    let alloc = |n: u16| dma.alloc((n as usize + 1) * 64, 4096).unwrap();
    let (req, rsp, atio) = (alloc(256), alloc(256), alloc(256));
    for i in 0..256 {
        rsp.store_u32(
            i * 64 + 0x3C,
            common::RESPONSE_PROCESSED,
            std::sync::atomic::Ordering::Relaxed,
        )
        .unwrap();
        atio.store_u32(
            i * 64 + 0x3C,
            common::RESPONSE_PROCESSED,
            std::sync::atomic::Ordering::Relaxed,
        )
        .unwrap();
    }
    let icb = IcbRepr::target_only(
        d.gen_info,
        rscst_fw::Wwn::from_u64(0x2100_0024_ff00_0001),
        rscst_fw::Wwn::from_u64(0x2000_0024_ff00_0001),
        RingConfig {
            address: req.iova().0,
            length: 256,
        },
        RingConfig {
            address: rsp.iova().0,
            length: 256,
        },
        RingConfig {
            address: atio.iova().0,
            length: 256,
        },
    );
    let mut b = [0u8; 128];
    icb.emit(&mut Icb::new_unchecked(&mut b[..])).unwrap();
    let icb_mem = dma.alloc(128, 64).unwrap();
    icb_mem.write(0, &b).unwrap();
    let r = mbx(d, &Mailboxes::initialize_firmware(icb_mem.iova().0, false));
    d.icb_mem = Some(icb_mem);
    d.rings = Some(common::TestRings {
        req,
        rsp,
        atio,
        req_len: 256,
        rsp_len: 256,
        atio_len: 256,
        req_in: 0,
        rsp_out: 0,
        atio_out: 0,
    });
    d.wr(regs::ICTRL, 8);
    r
}

#[test]
fn channel_handler_forwards_events_across_threads() {
    let (mut sim, p) = Sim::new(SimConfig::default());
    let mut d = TestDriver::new(p);
    d.bring_up(&mut sim);
    let mut t = MiniTarget::new(d, 64);
    let ini = sim.add_initiator(InitiatorConfig::new(0x2100_0000_c9ff_1000));
    let (h, rx) = ChannelHandler::new();
    sim.set_initiator_handler(ini, Box::new(h));
    assert!(common::target::run(
        &mut sim,
        &mut t,
        Duration::from_secs(1),
        |s, _| s.initiator_port_id(ini).is_some()
    ));
    let target = sim.hba_port_id().unwrap();
    sim.initiator_login(ini, target).unwrap();
    assert!(common::target::run(
        &mut sim,
        &mut t,
        Duration::from_secs(1),
        |s, _| s.initiator_logged_in(ini, target)
    ));
    let lun = rscst_fw::Lun::from_index(0).unwrap();
    let tag = sim
        .initiator_command(
            ini,
            target,
            CommandSpec::read(lun, &[0x12, 0, 0, 0, 36, 0], 36).unwrap(),
        )
        .unwrap();
    assert!(common::target::run(
        &mut sim,
        &mut t,
        Duration::from_secs(1),
        |s, _| s.initiator_outstanding(ini) == 0
    ));
    let evs: Vec<_> = rx.try_iter().collect();
    assert!(
        evs.iter()
            .any(|(_, e)| matches!(e, InitiatorEvent::FabricLogin { .. }))
    );
    assert!(evs.iter().any(|(_, e)| matches!(e, InitiatorEvent::Completed { tag: g, result } if *g == tag && result.data.len() == 36)));
}
