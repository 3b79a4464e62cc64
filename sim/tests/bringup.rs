//! Bring-up through the `rscst_hba` traits alone: reset, boot ROM, firmware load and
//! start, every mailbox command of reference §3.4 the model implements, interrupts,
//! IOMMU faults and the interface-rule checks.

mod common;

use std::time::Duration;

use common::{TestDriver, setup};
use rscst_fw::mailbox::{
    AdapterId, FirmwareVersion, Mailboxes, MbxCommand, ResourceCounts, Topology,
};
use rscst_fw::port_db::PORT_DATABASE_LEN;
use rscst_fw::regs::{self, HccrCommand, IntType};
use rscst_hba::{DmaPool, DmaRegion, Irq, Mmio, PciConfig, Platform, RegOffset};
use rscst_sim::{ChipModel, FirmwareImage, ScheduledFault, Sim, SimConfig, ViolationKind};

fn booted() -> (Sim, TestDriver) {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.boot(&mut sim);
    (sim, d)
}

#[test]
fn pci_identity_and_bars() {
    let (_sim, p) = Sim::new(SimConfig::default());
    let id = p.pci().id();
    assert_eq!((id.vendor, id.device), (0x1077, 0x2532));
    assert!(p.mq_regs().is_none(), "25xx: no MQ BAR used");
    let (_sim, p) = Sim::new(SimConfig::with_chip(ChipModel::isp27xx()));
    assert_eq!(p.pci().id().device, 0x2261);
    assert!(p.mq_regs().is_some(), "27xx: MQ BAR");
    p.pci().enable_bus_master();
    assert_eq!(p.pci().read32(0x04) & 0x6, 0x6);
}

#[test]
fn reset_sequence_busy_then_ready() {
    let (mut sim, d) = setup(SimConfig::default());
    d.wr(regs::CTRL_STATUS, 0x0001_0030);
    sim.step();
    d.wr(regs::CTRL_STATUS, 0x0001_0031);
    assert_eq!(d.rd(regs::CTRL_STATUS) & 1, 1, "soft reset bit reads set");
    sim.step(); // the model takes the reset
    assert_ne!(d.mb_out(0), 0, "mb0 busy while the ROM runs");
    assert_eq!(d.rd(regs::CTRL_STATUS) & 1, 1);
    sim.run_for(Duration::from_millis(1));
    assert_eq!(d.mb_out(0), 0, "ROM ready");
    assert_eq!(d.rd(regs::CTRL_STATUS) & 1, 0, "soft reset self-clears");
    assert_eq!(d.rd(regs::CTRL_STATUS) & (1 << 17), 0, "DMA idle");
    // RISC reset / release pause / clear reset: HCCR status bits, then ROM boot.
    d.hccr(HccrCommand::SetRiscReset);
    assert_ne!(d.rd(regs::HCCR) & (1 << 5), 0, "RISC reset mode");
    d.hccr(HccrCommand::ReleaseRiscPause);
    d.hccr(HccrCommand::ClearRiscReset);
    assert_eq!(d.rd(regs::HCCR) & (1 << 5), 0);
    sim.step(); // the model takes the three HCCR commands
    assert_ne!(d.mb_out(0), 0, "ROM booting");
    sim.run_for(Duration::from_millis(10));
    assert_eq!(d.mb_out(0), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn rom_mailbox_register_test_and_invalid_command() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.chip_reset(&mut sim);
    let r = d.mailbox(&mut sim, &Mailboxes::mailbox_register_test());
    assert_eq!(r.status(), 0x4000);
    assert_eq!(r.int_type(), 0x01, "ROM completion type");
    assert_eq!(&r.out.0[1..8], &rscst_fw::mailbox::REGISTER_TEST_PATTERN);
    // Any pattern is echoed.
    let mut m = Mailboxes::new(MbxCommand::MailboxRegisterTest);
    m.0[1..8].copy_from_slice(&[1, 2, 3, 4, 5, 6, 0xFFFF]);
    let r = d.mailbox(&mut sim, &m);
    assert_eq!(&r.out.0[1..8], &[1, 2, 3, 4, 5, 6, 0xFFFF]);
    // The ROM knows no firmware commands.
    let r = d.simple(&mut sim, MbxCommand::GetFirmwareVersion);
    assert_eq!((r.status(), r.int_type()), (0x4001, 0x02));
    let r = d.mailbox(&mut sim, &Mailboxes::verify_checksum(0x0010_0000));
    assert_eq!(r.status(), 0x4005, "nothing loaded");
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::execute_firmware(0x0010_0000, Default::default(), 0),
    );
    assert_eq!((r.status(), r.int_type()), (0x4005, 0x02));
    assert!(sim.violations().is_empty());
}

#[test]
fn firmware_load_verify_execute_version() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.chip_reset(&mut sim);
    let img = FirmwareImage::default_image();
    // Chunks no larger than a small request ring, as the driver splits them.
    let loads = d.load_firmware(&mut sim, &img, 128 * 16);
    assert!(loads.len() >= 3);
    assert!(
        loads
            .iter()
            .all(|r| r.status() == 0x4000 && r.int_type() == 0x01)
    );
    let r = d.mailbox(&mut sim, &Mailboxes::verify_checksum(img.start_address()));
    assert_eq!((r.status(), r.int_type()), (0x4000, 0x01));
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::execute_firmware(img.start_address(), Default::default(), 0),
    );
    assert_eq!(r.status(), 0x4000);
    assert_eq!(
        r.int_type(),
        0x10,
        "firmware completion type after EXECUTE_FIRMWARE"
    );
    let r = d.simple(&mut sim, MbxCommand::GetFirmwareVersion);
    assert_eq!(r.int_type(), 0x10);
    let v = FirmwareVersion::from_mailboxes(&r.out);
    assert_eq!((v.major, v.minor, v.subminor), (9, 10, 0));
    // ROM-only commands are gone once the firmware runs.
    let r = d.mailbox(&mut sim, &Mailboxes::verify_checksum(img.start_address()));
    assert_eq!((r.status(), r.int_type()), (0x4001, 0x11));
    assert!(sim.violations().is_empty());
}

#[test]
fn bad_checksum_is_refused() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.chip_reset(&mut sim);
    let img = FirmwareImage::default_image().corrupted(0, 1000);
    d.load_firmware(&mut sim, &img, 4096);
    let r = d.mailbox(&mut sim, &Mailboxes::verify_checksum(img.start_address()));
    assert_eq!(r.status(), 0x4010);
    let sum = (r.mb(2) as u32) << 16 | r.mb(1) as u32;
    assert_ne!(sum, 0, "bad checksum reported as (mb2 << 16) + mb1");
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::execute_firmware(img.start_address(), Default::default(), 0),
    );
    assert_eq!((r.status(), r.int_type()), (0x4010, 0x02));
}

#[test]
fn load_parameter_and_dma_errors() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.chip_reset(&mut sim);
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::load_risc_ram_extended(0x0010_0000, 0x7F00_0000_0000, 0),
    );
    assert_eq!(r.status(), 0x4006, "zero length");
    // An address the driver never mapped: IOMMU fault, host interface error.
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::load_risc_ram_extended(0x0010_0000, 0x1234_0000, 16),
    );
    assert_eq!(r.status(), 0x4002);
    let faults = sim.take_iommu_faults();
    assert_eq!(faults.len(), 1);
    assert_eq!(faults[0].iova, 0x1234_0000);
    assert_eq!(faults[0].context, "LOAD_RISC_RAM chunk");
}

#[test]
fn initialize_and_firmware_ready_with_async_loop_up() {
    let (mut sim, mut d) = booted();
    let r = d.simple(&mut sim, MbxCommand::GetFirmwareState);
    assert_eq!(r.mb(1), 0, "config wait before INITIALIZE_FIRMWARE");
    let r = d.simple(&mut sim, MbxCommand::GetAdapterId);
    assert_eq!((r.status(), r.mb(1)), (0x4005, 0x07), "loop in transition");
    let rc = ResourceCounts::from_mailboxes(&d.simple(&mut sim, MbxCommand::GetResourceCounts).out);
    assert_eq!(rc.orig_exchanges, 2048);
    let r = d.init(&mut sim, 64, 32, 64);
    assert_eq!((r.status(), r.int_type()), (0x4000, 0x10));
    d.wait_ready(&mut sim);
    d.drain_interrupts(&mut sim, Duration::from_millis(1));
    assert!(
        d.asyncs.iter().any(|a| a[0] == 0x8011 && a[1] == 4),
        "LOOP_UP at 8G: {:x?}",
        d.asyncs
    );
    let a = AdapterId::from_mailboxes(&d.simple(&mut sim, MbxCommand::GetAdapterId).out);
    assert_eq!(a.port_id, rscst_fw::PortId::from_parts(1, 1, 0));
    assert_eq!(a.topology, Topology::FPort);
    assert_eq!(sim.hba_port_id(), Some(a.port_id));
    assert!(
        sim.name_server()
            .iter()
            .any(|e| e.port_id == a.port_id && e.fcp_target)
    );
    // Retry count / R_A_TOV.
    let r = d.simple(&mut sim, MbxCommand::GetRetryCount);
    assert_eq!((r.mb(1), r.mb(3)), (8, 200));
    // Firmware options round-trip.
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::set_firmware_option([0x0400, 0x0810, 0x1000]),
    );
    assert_eq!(r.status(), 0x4000);
    let r = d.simple(&mut sim, MbxCommand::GetFirmwareOption);
    assert_eq!(&r.out.0[1..4], &[0x0400, 0x0810, 0x1000]);
    // ID list empty, unknown handle not logged in.
    let buf = d.p.dma().alloc(4096, 4096).unwrap();
    let r = d.mailbox(&mut sim, &Mailboxes::get_id_list(buf.iova().0, 0));
    assert_eq!((r.status(), r.mb(1)), (0x4000, 0));
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::get_port_database(rscst_fw::NportHandle(5), buf.iova().0, 0, 0),
    );
    assert_eq!(r.status(), 0x400A);
    // Link status counters.
    let mut m = Mailboxes::new(MbxCommand::GetLinkStatus);
    m.set_dma_addr(buf.iova().0);
    assert_eq!(d.mailbox(&mut sim, &m).status(), 0x4000);
    let mut c = [0u8; 32];
    buf.read(0, &mut c).unwrap();
    assert_eq!(
        u32::from_le_bytes([c[28], c[29], c[30], c[31]]),
        1,
        "one link up"
    );
    // A second INITIALIZE_FIRMWARE needs a reset first.
    let m = Mailboxes::initialize_firmware(d.icb_mem.as_ref().unwrap().iova().0, false);
    assert_eq!(d.mailbox(&mut sim, &m).status(), 0x4005);
    assert_eq!(PORT_DATABASE_LEN, 64);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn bad_icb_is_refused() {
    let (mut sim, mut d) = booted();
    let icb = d.p.dma().alloc(128, 64).unwrap();
    // All zero: version 0.
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::initialize_firmware(icb.iova().0, false),
    );
    assert_eq!(r.status(), 0x4006);
    // Unmapped ICB.
    let r = d.mailbox(
        &mut sim,
        &Mailboxes::initialize_firmware(0xDEAD_0000, false),
    );
    assert_eq!(r.status(), 0x4002);
    assert_eq!(sim.take_iommu_faults().len(), 1);
}

#[test]
fn interrupt_line_follows_ictrl_and_one_cause_at_a_time() {
    let (mut sim, mut d) = booted();
    d.init(&mut sim, 64, 64, 64);
    d.wr(regs::ICTRL, 0);
    d.irq_ack();
    // Let LOOP_UP arrive with interrupts disabled: host_status shows it, the line stays low.
    sim.run_for(Duration::from_millis(20));
    let hs = d.host_status();
    assert!(hs.int_pending());
    assert_eq!(hs.int_type(), IntType::AsyncEvent);
    assert_ne!(d.rd(regs::ISTATUS) & 8, 0);
    assert!(!d.irq_pending(), "no interrupt with ictrl B3 clear");
    d.wr(regs::ICTRL, 8);
    assert!(
        d.irq_pending(),
        "enabling interrupts raises the pending cause"
    );
    // Post a mailbox command while the async event is still pending: its completion waits.
    for n in 0..32 {
        d.p.regs().write16(
            RegOffset(regs::mailbox(n).unwrap()),
            Mailboxes::new(MbxCommand::GetFirmwareState).0[n],
        );
    }
    d.hccr(HccrCommand::SetHostInt);
    sim.run_for(Duration::from_millis(1));
    assert_eq!(
        d.host_status().int_type(),
        IntType::AsyncEvent,
        "still the first cause"
    );
    d.hccr(HccrCommand::ClearRiscInt);
    assert!(
        !d.host_status().int_pending(),
        "CLEAR_RISC_INT clears B15 at once"
    );
    d.irq_ack();
    assert!(!d.irq_pending());
    sim.step();
    let hs = d.host_status();
    assert!(hs.int_pending());
    assert_eq!(hs.int_type(), IntType::MbxOk);
    assert_eq!(hs.mailbox0(), 0x4000);
    assert!(d.irq_pending());
    d.hccr(HccrCommand::ClearRiscInt);
}

#[test]
fn mailbox_protocol_violations_are_recorded() {
    let (mut sim, mut d) = booted();
    // Only mb0 written.
    d.p.regs().write16(
        RegOffset(regs::mailbox(0).unwrap()),
        MbxCommand::GetFirmwareState.into(),
    );
    d.hccr(HccrCommand::SetHostInt);
    // A second doorbell while the first is outstanding.
    sim.step();
    d.hccr(HccrCommand::SetHostInt);
    sim.run_for(Duration::from_millis(1));
    let v = sim.take_violations();
    assert!(
        matches!(
            v[0].kind,
            ViolationKind::MailboxNotAllWritten { mb0: 0x69, .. }
        ),
        "{v:?}"
    );
    assert!(
        v.iter()
            .any(|v| matches!(v.kind, ViolationKind::MailboxWhileBusy { .. })),
        "{v:?}"
    );
    // Bad register accesses.
    d.p.regs().read32(RegOffset(0x200));
    d.p.regs().write32(RegOffset(0x13), 1);
    let v = sim.take_violations();
    assert_eq!(v.len(), 2);
    assert!(d.rd(regs::HOST_STATUS) & (1 << 15) != 0);
    let _ = &mut d;
}

#[test]
fn nvram_reads_through_flash_registers() {
    let (_sim, d) = setup(SimConfig::default());
    let base = d.gen_info.nvram_data_base.unwrap() + rscst_fw::pci::NVRAM_FUNC0_ADDR;
    let mut img = [0u8; 512];
    for i in 0..128u32 {
        d.wr(regs::FLASH_ADDR, base + i);
        let a = d.rd(regs::FLASH_ADDR);
        assert_ne!(a & regs::FLASH_ADDR_DATA_FLAG, 0, "data ready");
        img[i as usize * 4..i as usize * 4 + 4]
            .copy_from_slice(&d.rd(regs::FLASH_DATA).to_le_bytes());
    }
    let n = rscst_fw::icb::Nvram24xx::new_checked(&img[..]).unwrap();
    assert!(n.is_valid());
    assert_eq!(n.port_name(), SimConfig::default().firmware.wwpn);
    // Flash outside NVRAM reads erased.
    d.wr(regs::FLASH_ADDR, 0x7FF0_0000);
    assert_eq!(d.rd(regs::FLASH_DATA), 0xFFFF_FFFF);
}

#[test]
fn mailbox_stall_needs_a_reset() {
    let (mut sim, mut d) = booted();
    sim.inject(ScheduledFault::StallNextMailbox);
    assert!(
        d.try_mailbox(
            &mut sim,
            &Mailboxes::new(MbxCommand::GetFirmwareState),
            Duration::from_secs(1)
        )
        .is_none()
    );
    assert!(sim.trace_text().contains("FAULT mailbox stall"));
    // Recovery: full reset and boot again.
    d.boot(&mut sim);
    assert_eq!(
        d.simple(&mut sim, MbxCommand::GetFirmwareState).status(),
        0x4000
    );
}

#[test]
fn system_error_pauses_the_risc() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.bring_up(&mut sim);
    sim.inject(ScheduledFault::SystemError);
    d.drain_interrupts(&mut sim, Duration::from_millis(1));
    assert!(d.asyncs.iter().any(|a| a[0] == 0x8002), "{:x?}", d.asyncs);
    assert!(d.host_status().risc_paused(), "host_status B8");
    assert!(
        d.try_mailbox(
            &mut sim,
            &Mailboxes::new(MbxCommand::GetFirmwareState),
            Duration::from_secs(1)
        )
        .is_none()
    );
    d.bring_up(&mut sim);
    assert!(!d.host_status().risc_paused());
}

#[test]
fn isp27xx_bring_up_uses_the_mq_page() {
    let (mut sim, mut d) = setup(SimConfig::with_chip(ChipModel::isp27xx()));
    d.bring_up(&mut sim);
    let a = AdapterId::from_mailboxes(&d.simple(&mut sim, MbxCommand::GetAdapterId).out);
    assert_eq!(a.topology, Topology::FPort);
    let v =
        FirmwareVersion::from_mailboxes(&d.simple(&mut sim, MbxCommand::GetFirmwareVersion).out);
    assert!(
        v.attributes
            .contains(rscst_fw::mailbox::FwAttributes::MULTIQUEUE)
    );
    // The 24xx-block queue pointers are inert on 27xx.
    d.wr(regs::REQ_Q_IN, 5);
    assert_eq!(d.rd(regs::REQ_Q_IN), 0);
    assert!(sim.violations().is_empty(), "{:?}", sim.violations());
}

#[test]
fn ring_pointer_checks() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.bring_up(&mut sim);
    d.qp_write(regs::QueuePointer::RequestIn, 500);
    let v = sim.take_violations();
    assert!(matches!(
        v[0].kind,
        ViolationKind::RingPointerOutOfRange { value: 500, .. }
    ));
    // A doorbell without a release fence.
    d.qp_write(regs::QueuePointer::RequestIn, 0);
    let v = sim.take_violations();
    assert!(
        matches!(v[0].kind, ViolationKind::DoorbellWithoutFence),
        "{v:?}"
    );
    d.fence();
    d.qp_write(regs::QueuePointer::RequestIn, 0);
    assert!(sim.take_violations().is_empty());
    sim.run_for(Duration::from_millis(1));
    let _ = d.p.irq().pending();
    let _ = d.p.regs().read32(RegOffset(regs::HOST_STATUS));
}

#[test]
fn rewriting_a_register_with_no_effect_is_not_work() {
    let (mut sim, mut d) = setup(SimConfig::default());
    d.bring_up(&mut sim);
    sim.schedule_fault(sim.now() + Duration::from_millis(3), ScheduledFault::Lip);
    let t0 = sim.now();
    for _ in 0..100 {
        // A driver that writes its (unchanged) out-pointers on every poll.
        d.qp_write(regs::QueuePointer::ResponseOut, 0);
        d.qp_write(regs::QueuePointer::AtioOut, 0);
        if !sim.step() {
            break;
        }
        if sim.now() > t0 + Duration::from_millis(2) {
            break;
        }
    }
    assert!(
        sim.now() > t0 + Duration::from_millis(2),
        "time advanced to the scheduled LIP"
    );
}
