//! A tiny test driver that talks to the simulator only through the `rscst_hba` traits (it
//! is *not* the real driver): register reads and writes, DMA regions, the fence and the
//! interrupt line. Each test file uses the parts it needs.
#![allow(dead_code)]

pub mod target;

use std::time::Duration;

use rscst_fw::icb::{Icb, IcbRepr, RingConfig};
use rscst_fw::mailbox::{Mailboxes, MbxCommand};
use rscst_fw::regs::{self, HccrCommand, HostStatus, QueuePointer};
use rscst_fw::{Wwn, pci::GenInfo};
use rscst_hba::{DmaFence, DmaPool, DmaRegion, Irq, Mmio, Platform, RegOffset};
use rscst_sim::{FirmwareImage, Sim, SimConfig, SimDmaRegion, SimPlatform};

pub const RESPONSE_PROCESSED: u32 = 0xDEAD_DEAD;

/// What one mailbox command returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MbxResult {
    pub host_status: HostStatus,
    pub out: Mailboxes,
}

impl MbxResult {
    pub fn mb(&self, n: usize) -> u16 {
        self.out.0[n]
    }
    pub fn status(&self) -> u16 {
        self.out.0[0]
    }
    pub fn int_type(&self) -> u8 {
        self.host_status.0 as u8
    }
}

/// The rings a bring-up allocated.
pub struct TestRings {
    pub req: SimDmaRegion,
    pub rsp: SimDmaRegion,
    pub atio: SimDmaRegion,
    pub req_len: u16,
    pub rsp_len: u16,
    pub atio_len: u16,
    pub req_in: u16,
    pub rsp_out: u16,
    pub atio_out: u16,
}

pub struct TestDriver {
    pub p: SimPlatform,
    pub gen_info: &'static GenInfo,
    /// Async events seen while waiting (mb0..mb7).
    pub asyncs: Vec<[u16; 8]>,
    /// Queue interrupts seen (host_status values).
    pub queue_ints: Vec<u32>,
    pub rings: Option<TestRings>,
    pub icb_mem: Option<SimDmaRegion>,
}

impl TestDriver {
    pub fn new(p: SimPlatform) -> TestDriver {
        let id = rscst_hba::PciConfig::id(p.pci());
        let chip = rscst_fw::pci::probe(id.vendor, id.device).expect("a supported chip");
        TestDriver {
            p,
            gen_info: chip.gen_info,
            asyncs: Vec::new(),
            queue_ints: Vec::new(),
            rings: None,
            icb_mem: None,
        }
    }

    pub fn rd(&self, off: u32) -> u32 {
        self.p.regs().read32(RegOffset(off))
    }
    pub fn wr(&self, off: u32, v: u32) {
        self.p.regs().write32(RegOffset(off), v)
    }
    pub fn mb_out(&self, n: usize) -> u16 {
        self.p.regs().read16(RegOffset(regs::mailbox(n).unwrap()))
    }
    pub fn host_status(&self) -> HostStatus {
        HostStatus(self.rd(regs::HOST_STATUS))
    }
    pub fn hccr(&self, c: HccrCommand) {
        self.wr(regs::HCCR, c.into());
    }

    fn qp_loc(&self, which: QueuePointer) -> (bool, u32) {
        let loc = regs::queue_pointer(self.gen_info, false, which);
        (loc.bar != self.gen_info.reg_bar, loc.offset)
    }
    pub fn qp_write(&self, which: QueuePointer, v: u32) {
        match self.qp_loc(which) {
            (true, off) => self.p.mq_regs().expect("MQ BAR").write32(RegOffset(off), v),
            (false, off) => self.wr(off, v),
        }
    }
    pub fn qp_read(&self, which: QueuePointer) -> u32 {
        match self.qp_loc(which) {
            (true, off) => self.p.mq_regs().expect("MQ BAR").read32(RegOffset(off)),
            (false, off) => self.rd(off),
        }
    }

    /// Steps `sim` until `cond` holds; `false` after `timeout` of simulated time.
    pub fn wait(
        &mut self,
        sim: &mut Sim,
        timeout: Duration,
        mut cond: impl FnMut(&mut TestDriver) -> bool,
    ) -> bool {
        let deadline = sim.now() + timeout;
        loop {
            if cond(self) {
                return true;
            }
            if sim.now() >= deadline {
                return false;
            }
            if !sim.step() {
                // Idle: nothing will change by itself.
                sim.run_until(deadline);
                return cond(self);
            }
        }
    }

    /// Takes a non-mailbox interrupt cause (async event or queue update) and clears it.
    fn take_other(&mut self, hs: HostStatus) {
        let t = hs.int_type();
        if t == rscst_fw::regs::IntType::AsyncEvent {
            let mut mb = [0u16; 8];
            mb[0] = hs.mailbox0();
            for (n, m) in mb.iter_mut().enumerate().skip(1) {
                *m = self.mb_out(n);
            }
            self.asyncs.push(mb);
        } else {
            self.queue_ints.push(hs.0);
        }
        self.hccr(HccrCommand::ClearRiscInt);
    }

    /// Drains pending async/queue interrupts without waiting.
    pub fn drain_interrupts(&mut self, sim: &mut Sim, time: Duration) {
        let deadline = sim.now() + time;
        while sim.now() <= deadline {
            let hs = self.host_status();
            if hs.int_pending() && !hs.int_type().is_mailbox_completion() {
                self.take_other(hs);
                continue;
            }
            if !sim.step() {
                break;
            }
        }
    }

    /// Runs one mailbox command: writes all 32 registers, rings the doorbell, waits for the
    /// completion (collecting async events on the way), reads all outputs, clears.
    pub fn try_mailbox(
        &mut self,
        sim: &mut Sim,
        cmd: &Mailboxes,
        timeout: Duration,
    ) -> Option<MbxResult> {
        for n in 0..32 {
            self.p
                .regs()
                .write16(RegOffset(regs::mailbox(n).unwrap()), cmd.0[n]);
        }
        self.hccr(HccrCommand::SetHostInt);
        let mut result = None;
        let ok = self.wait(sim, timeout, |d| {
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
                result = Some(MbxResult {
                    host_status: hs,
                    out,
                });
                true
            } else {
                d.take_other(hs);
                false
            }
        });
        if ok { result } else { None }
    }

    pub fn mailbox(&mut self, sim: &mut Sim, cmd: &Mailboxes) -> MbxResult {
        self.try_mailbox(sim, cmd, Duration::from_secs(30))
            .unwrap_or_else(|| panic!("mailbox {} timed out", cmd.command()))
    }

    pub fn simple(&mut self, sim: &mut Sim, c: MbxCommand) -> MbxResult {
        self.mailbox(sim, &Mailboxes::new(c))
    }

    /// Reference §3.5 chip reset.
    pub fn chip_reset(&mut self, sim: &mut Sim) {
        rscst_hba::PciConfig::enable_bus_master(self.p.pci());
        self.wr(regs::ICTRL, 0);
        self.wr(regs::CTRL_STATUS, 0x0001_0030);
        assert!(
            self.wait(sim, Duration::from_millis(300), |d| d.rd(regs::CTRL_STATUS)
                & (1 << 17)
                == 0),
            "DMA quiesce"
        );
        self.wr(regs::CTRL_STATUS, 0x0001_0031);
        sim.run_for(Duration::from_micros(100));
        assert!(
            self.wait(sim, Duration::from_millis(50), |d| d.mb_out(0) == 0),
            "mb0 after soft reset"
        );
        assert!(
            self.wait(sim, Duration::from_micros(300), |d| d.rd(regs::CTRL_STATUS)
                & 1
                == 0),
            "soft reset bit"
        );
        self.hccr(HccrCommand::SetRiscReset);
        let _ = self.rd(regs::HCCR);
        self.hccr(HccrCommand::ReleaseRiscPause);
        let _ = self.rd(regs::HCCR);
        self.hccr(HccrCommand::ClearRiscReset);
        sim.run_for(Duration::from_millis(10));
        assert!(
            self.wait(sim, Duration::from_millis(300), |d| d.mb_out(0) == 0),
            "ROM ready"
        );
        self.rings = None;
    }

    /// Loads `img` with LOAD_RISC_RAM_EXTENDED in chunks of `chunk_words`.
    pub fn load_firmware(
        &mut self,
        sim: &mut Sim,
        img: &FirmwareImage,
        chunk_words: usize,
    ) -> Vec<MbxResult> {
        let buf = self.p.dma().alloc(chunk_words * 4, 4096).expect("dma");
        let mut results = Vec::new();
        for seg in img.segments() {
            let words: Vec<[u8; 4]> = seg
                .bytes
                .chunks(4)
                .map(|c| [c[3], c[2], c[1], c[0]])
                .collect();
            let mut addr = seg.load_addr;
            for chunk in words.chunks(chunk_words) {
                let bytes: Vec<u8> = chunk.iter().flatten().copied().collect();
                buf.write(0, &bytes).unwrap();
                let m = Mailboxes::load_risc_ram_extended(addr, buf.iova().0, chunk.len() as u32);
                results.push(self.mailbox(sim, &m));
                addr += chunk.len() as u32;
            }
        }
        results
    }

    /// Reset, register test, load, verify, execute: firmware running.
    pub fn boot(&mut self, sim: &mut Sim) {
        self.chip_reset(sim);
        let r = self.mailbox(sim, &Mailboxes::mailbox_register_test());
        assert_eq!(r.status(), 0x4000);
        let img = FirmwareImage::default_image();
        for r in self.load_firmware(sim, &img, 2048) {
            assert_eq!(r.status(), 0x4000);
        }
        let r = self.mailbox(sim, &Mailboxes::verify_checksum(img.start_address()));
        assert_eq!(r.status(), 0x4000, "verify");
        let r = self.mailbox(
            sim,
            &Mailboxes::execute_firmware(
                img.start_address(),
                rscst_fw::mailbox::ExecuteOptions::empty(),
                0,
            ),
        );
        assert_eq!(r.status(), 0x4000, "execute");
    }

    /// Allocates rings, writes the ICB, INITIALIZE_FIRMWARE, enables interrupts.
    pub fn init(&mut self, sim: &mut Sim, req_len: u16, rsp_len: u16, atio_len: u16) -> MbxResult {
        let dma = self.p.dma();
        let alloc = |n: u16| dma.alloc((n as usize + 1) * 64, 4096).expect("ring");
        let req = alloc(req_len);
        let rsp = alloc(rsp_len);
        let atio = alloc(atio_len);
        for i in 0..rsp_len as usize {
            rsp.store_u32(
                i * 64 + 0x3C,
                RESPONSE_PROCESSED,
                std::sync::atomic::Ordering::Relaxed,
            )
            .unwrap();
        }
        for i in 0..atio_len as usize {
            atio.store_u32(
                i * 64 + 0x3C,
                RESPONSE_PROCESSED,
                std::sync::atomic::Ordering::Relaxed,
            )
            .unwrap();
        }
        let icb = IcbRepr::target_only(
            self.gen_info,
            Wwn::from_u64(0x2100_0024_ff00_0001),
            Wwn::from_u64(0x2000_0024_ff00_0001),
            RingConfig {
                address: req.iova().0,
                length: req_len,
            },
            RingConfig {
                address: rsp.iova().0,
                length: rsp_len,
            },
            RingConfig {
                address: atio.iova().0,
                length: atio_len,
            },
        );
        let mut b = [0u8; 128];
        icb.emit(&mut Icb::new_unchecked(&mut b[..])).unwrap();
        let icb_mem = dma.alloc(128, 64).unwrap();
        icb_mem.write(0, &b).unwrap();
        for q in [
            QueuePointer::RequestIn,
            QueuePointer::RequestOut,
            QueuePointer::ResponseIn,
            QueuePointer::ResponseOut,
            QueuePointer::AtioIn,
            QueuePointer::AtioOut,
        ] {
            self.qp_write(q, 0);
        }
        let r = self.mailbox(
            sim,
            &Mailboxes::initialize_firmware(icb_mem.iova().0, false),
        );
        self.icb_mem = Some(icb_mem);
        self.rings = Some(TestRings {
            req,
            rsp,
            atio,
            req_len,
            rsp_len,
            atio_len,
            req_in: 0,
            rsp_out: 0,
            atio_out: 0,
        });
        self.wr(regs::ICTRL, rscst_fw::regs::Ictrl::ENABLE_RISC_INT.bits());
        r
    }

    /// Polls GET_FIRMWARE_STATE until READY (3).
    pub fn wait_ready(&mut self, sim: &mut Sim) {
        for _ in 0..100 {
            let r = self.simple(sim, MbxCommand::GetFirmwareState);
            assert_eq!(r.status(), 0x4000);
            if r.mb(1) == 3 {
                return;
            }
            sim.run_for(Duration::from_millis(1));
        }
        panic!("firmware never became ready");
    }

    /// The whole bring-up of reference §3.5, ending with firmware ready and a MARKER sent.
    pub fn bring_up(&mut self, sim: &mut Sim) {
        self.boot(sim);
        let r = self.init(sim, 128, 128, 128);
        assert_eq!(r.status(), 0x4000, "init: {:?}", r);
        self.wait_ready(sim);
        self.drain_interrupts(sim, Duration::from_millis(1));
    }

    pub fn fence(&self) {
        self.p.fence().release();
    }

    pub fn irq_pending(&self) -> bool {
        self.p.irq().pending()
    }

    pub fn irq_ack(&self) {
        self.p.irq().ack()
    }
}

/// `fence().acquire()` on the platform.
pub trait FenceExt {
    fn fence_acquire(&self);
}

impl FenceExt for SimPlatform {
    fn fence_acquire(&self) {
        self.fence().acquire()
    }
}

/// A simulator and a test driver on it.
pub fn setup(cfg: SimConfig) -> (Sim, TestDriver) {
    let (sim, p) = Sim::new(cfg);
    let d = TestDriver::new(p);
    (sim, d)
}
