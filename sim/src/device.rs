//! The PCI function as the driver sees it: the register file, the interrupt line, the
//! fence counters and PCI configuration space, shared (behind an `Arc`) between the driver's
//! [`crate::SimPlatform`] handles and the firmware model.
//!
//! Every register is an atomic, so the driver may run on another thread than the model
//! (threaded mode). A register write does only what the silicon does at once:
//!
//! * storing the value (mailboxes: into the *inbound* mailbox registers — the driver reads
//!   the *outbound* ones the RISC writes, as on the ISP, so async events and completions
//!   never clobber a command being written);
//! * `hccr = CLEAR_RISC_INT` clears `host_status` B15 (and lowers the interrupt line);
//! * `ictrl` gates the interrupt line (an interrupt is raised only with B3 set);
//! * flash/NVRAM reads through `flash_addr`/`flash_data` complete immediately.
//!
//! Everything the *firmware* reacts to (soft reset, RISC reset/pause, the mailbox doorbell,
//! ring doorbells and out-pointer updates) is queued for the model, which acts on it when it
//! is stepped (stepped mode) or woken (threaded mode) — with modelled latencies.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use rscst_fw::regs::{self, CtrlStatus, HccrCommand, HccrStatus, HostStatus, Ictrl};
use rscst_fw::{Wwn, icb};

use crate::chip::ChipModel;
use crate::iommu::Iommu;
use crate::time::SimTime;
use crate::trace::{Bar, TraceKind, Tracer};
use crate::violation::{Violation, ViolationKind};

/// Size of the simulated register BAR (the 0x100 bytes of `device_reg_24xx`).
pub const REG_BAR_LEN: u32 = rscst_fw::pci::MIN_REGISTER_BAR_LEN;
/// Size of the simulated MQ BAR: one page (queue pair 0).
pub const MQ_BAR_LEN: u32 = rscst_fw::pci::MQ_PAGE_SIZE;

/// Index of the six queue pointer registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Qp {
    ReqIn = 0,
    ReqOut = 1,
    RspIn = 2,
    RspOut = 3,
    AtioIn = 4,
    AtioOut = 5,
}

impl Qp {
    fn name(self) -> &'static str {
        match self {
            Qp::ReqIn => "req_q_in",
            Qp::ReqOut => "req_q_out",
            Qp::RspIn => "rsp_q_in",
            Qp::RspOut => "rsp_q_out",
            Qp::AtioIn => "atio_q_in",
            Qp::AtioOut => "atio_q_out",
        }
    }
}

/// The bits of `Shared::work`.
pub(crate) mod work {
    /// Register commands are queued (`Shared::take_cmds`).
    pub const CMD: u32 = 1 << 0;
    /// `req_q_in` was written.
    pub const REQ_DOORBELL: u32 = 1 << 1;
    /// `rsp_q_out` was written.
    pub const RSP_OUT: u32 = 1 << 2;
    /// `atio_q_out` was written.
    pub const ATIO_OUT: u32 = 1 << 3;
    /// `hccr = CLEAR_RISC_INT`: `host_status` is free for the next cause.
    pub const ACK: u32 = 1 << 4;
}

/// A register write the firmware model must act on, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegCmd {
    SoftReset,
    DmaShutdown(bool),
    Hccr(HccrCommand),
    MailboxDoorbell,
}

/// The registers. Mailboxes are split into inbound (driver → RISC) and outbound
/// (RISC → driver).
pub(crate) struct RegFile {
    pub flash_addr: AtomicU32,
    pub flash_data: AtomicU32,
    pub ctrl_status: AtomicU32,
    pub ictrl: AtomicU32,
    pub host_status: AtomicU32,
    pub hccr_status: AtomicU32,
    pub q: [AtomicU32; 6],
    pub preq: [AtomicU32; 2],
    /// gpiod, gpioe, iobase_addr, iobase_window, c4, c8, q, select, sdata: plain storage.
    pub scratch: [AtomicU32; 9],
    pub mb_in: [AtomicU16; 32],
    pub mb_out: [AtomicU16; 32],
    pub mb_written: AtomicU32,
}

impl RegFile {
    fn new() -> RegFile {
        RegFile {
            flash_addr: AtomicU32::new(0),
            flash_data: AtomicU32::new(0),
            ctrl_status: AtomicU32::new(CtrlStatus::SLOT_64BIT.bits()),
            ictrl: AtomicU32::new(0),
            host_status: AtomicU32::new(0),
            hccr_status: AtomicU32::new(0),
            q: Default::default(),
            preq: Default::default(),
            scratch: Default::default(),
            mb_in: Default::default(),
            mb_out: Default::default(),
            mb_written: AtomicU32::new(0),
        }
    }

    pub(crate) fn qp(&self, which: Qp) -> u32 {
        self.q[which as usize].load(Ordering::Acquire)
    }

    pub(crate) fn set_qp(&self, which: Qp, v: u32) {
        self.q[which as usize].store(v, Ordering::Release);
    }

    pub(crate) fn set_mb_out(&self, n: usize, v: u16) {
        if let Some(r) = self.mb_out.get(n) {
            r.store(v, Ordering::Relaxed);
        }
    }

    pub(crate) fn mb_in_all(&self) -> [u16; 32] {
        let mut m = [0u16; 32];
        for (d, s) in m.iter_mut().zip(self.mb_in.iter()) {
            *d = s.load(Ordering::Acquire);
        }
        m
    }
}

/// The interrupt line: level = `host_status` B15 && `ictrl` B3; the host side latches it
/// (an eventfd / NVIC pending bit) until [`rscst_hba::Irq::ack`].
///
/// Waiting is `std::thread::park`: a waiter registers its thread, re-checks the latch and
/// parks; `raise` sets the latch and unparks the registered threads. The registry's lock
/// is taken only when somebody sleeps, never on the interrupt path of a busy driver.
pub(crate) struct IrqLine {
    latched: AtomicBool,
    /// Threads parked (or about to park) in [`IrqLine::wait`].
    sleepers: AtomicUsize,
    waiters: Mutex<Vec<std::thread::Thread>>,
    pub raised: AtomicU64,
}

impl IrqLine {
    fn new() -> IrqLine {
        IrqLine {
            latched: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
            raised: AtomicU64::new(0),
        }
    }

    pub(crate) fn pending(&self) -> bool {
        self.latched.load(Ordering::SeqCst)
    }

    fn raise(&self) {
        self.raised.fetch_add(1, Ordering::Relaxed);
        if !self.latched.swap(true, Ordering::SeqCst)
            && self.sleepers.load(Ordering::SeqCst) != 0
            && let Ok(w) = self.waiters.lock()
        {
            for t in w.iter() {
                t.unpark();
            }
        }
    }

    /// Edge-triggered acknowledge (MSI): the message is consumed; the next
    /// cause sends another.
    pub(crate) fn clear(&self) {
        self.latched.store(false, Ordering::SeqCst);
    }

    /// Level-triggered re-arm: the latch keeps whatever the line says now.
    /// Cleared first and set again if `level()` is up, so a raise that comes
    /// between the driver's look at the level and the store is never undone.
    pub(crate) fn ack(&self, level: impl Fn() -> bool) {
        self.latched.store(false, Ordering::SeqCst);
        if level() {
            self.latched.store(true, Ordering::SeqCst);
        }
    }

    pub(crate) fn wait(&self, timeout: Option<StdDuration>) -> bool {
        if self.pending() {
            return true;
        }
        let me = std::thread::current();
        // Register before re-checking, so a raise either sees the sleeper or is seen.
        self.sleepers.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut w) = self.waiters.lock() {
            w.push(me.clone());
        }
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        while !self.pending() {
            match deadline {
                None => std::thread::park(),
                Some(d) => {
                    let now = std::time::Instant::now();
                    if now >= d {
                        break;
                    }
                    std::thread::park_timeout(d - now);
                }
            }
        }
        if let Ok(mut w) = self.waiters.lock()
            && let Some(i) = w.iter().position(|t| t.id() == me.id())
        {
            w.swap_remove(i);
        }
        self.sleepers.fetch_sub(1, Ordering::SeqCst);
        self.pending()
    }
}

/// Wakes the firmware thread (threaded mode) without a lock: the notifier sets a flag and,
/// only if the thread is asleep, unparks it. A notifier never waits for the firmware
/// thread, whatever that thread is doing (a lock held by a descheduled firmware thread
/// used to stall the driver's doorbell).
pub(crate) struct Wake {
    sleeping: AtomicBool,
    work: AtomicBool,
    /// The firmware thread (set when it starts; written only then).
    thread: std::sync::RwLock<Option<std::thread::Thread>>,
}

impl Wake {
    fn new() -> Wake {
        Wake {
            sleeping: AtomicBool::new(false),
            work: AtomicBool::new(false),
            thread: std::sync::RwLock::new(None),
        }
    }

    /// The calling thread is the firmware thread from now on.
    pub(crate) fn register(&self) {
        if let Ok(mut t) = self.thread.write() {
            *t = Some(std::thread::current());
        }
    }

    #[inline]
    pub(crate) fn notify(&self) {
        self.work.store(true, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst)
            && let Ok(t) = self.thread.read()
            && let Some(t) = t.as_ref()
        {
            t.unpark();
        }
    }

    /// Sleeps until notified or `timeout` (firmware thread only); returns at once if work
    /// was signalled since the last call.
    pub(crate) fn sleep(&self, timeout: StdDuration) {
        self.sleeping.store(true, Ordering::SeqCst);
        let end = std::time::Instant::now() + timeout;
        // Announced as sleeping before looking at the flag: a notify either sees the
        // sleeper (and unparks it) or is seen here.
        while !self.work.swap(false, Ordering::SeqCst) {
            let now = std::time::Instant::now();
            if now >= end {
                break;
            }
            std::thread::park_timeout(end - now);
        }
        self.sleeping.store(false, Ordering::SeqCst);
    }
}

/// Counts of `DmaFence` calls; the doorbell check compares them.
#[derive(Default)]
pub(crate) struct FenceCounters {
    pub release: AtomicU64,
    pub acquire: AtomicU64,
    pub release_at_last_doorbell: AtomicU64,
}

/// Register accesses by the driver, both BARs, any width. Reads are what a
/// poller should avoid on hardware: each is an uncached round trip over PCIe
/// (writes are posted).
#[derive(Default)]
pub(crate) struct MmioCounters {
    pub reads: AtomicU64,
    pub writes: AtomicU64,
}

/// The flash/NVRAM contents behind `flash_addr`/`flash_data`.
pub(crate) struct Flash {
    /// Dword address of the NVRAM data window (24xx/25xx), if the chip has one.
    nvram_base: Option<u32>,
    /// Function 0's `nvram_24xx` image (512 bytes), at NVRAM dword 0x80.
    nvram: [u8; icb::NVRAM_LEN],
}

impl Flash {
    fn new(chip: &ChipModel, wwpn: Wwn, wwnn: Wwn) -> Flash {
        let mut nvram = [0u8; icb::NVRAM_LEN];
        {
            let mut n = icb::Nvram24xx::new_unchecked(&mut nvram[..]);
            n.set_id(*b"ISP ");
            n.set_nvram_version(1);
            n.set_version(1);
            n.set_frame_payload_size(icb::nvram_defaults::FRAME_PAYLOAD_SIZE);
            n.set_execution_throttle(icb::nvram_defaults::EXECUTION_THROTTLE);
            n.set_exchange_count(0);
            n.set_hard_address(icb::nvram_defaults::HARD_ADDRESS);
            n.set_port_name(wwpn);
            n.set_node_name(wwnn);
            n.set_login_retry_count(icb::nvram_defaults::LOGIN_RETRY_COUNT);
            n.set_firmware_options_1(icb::nvram_defaults::FIRMWARE_OPTIONS_1);
            n.set_firmware_options_2(icb::nvram_defaults::FIRMWARE_OPTIONS_2);
            n.set_firmware_options_3(icb::nvram_defaults::FIRMWARE_OPTIONS_3);
            n.set_model_name(*b"QLE2562 (rscst) ");
            n.fix_checksum();
        }
        Flash {
            nvram_base: chip.gen_info().nvram_data_base,
            nvram,
        }
    }

    /// The dword at flash/NVRAM dword address `addr` (erased flash reads all-ones).
    fn read(&self, addr: u32) -> u32 {
        if let Some(base) = self.nvram_base
            && let Some(off) = addr.checked_sub(base)
        {
            let func0 = rscst_fw::pci::NVRAM_FUNC0_ADDR;
            if let Some(i) = off.checked_sub(func0)
                && (i as usize) < icb::NVRAM_LEN / 4
            {
                let b = i as usize * 4;
                return u32::from_le_bytes([
                    self.nvram[b],
                    self.nvram[b + 1],
                    self.nvram[b + 2],
                    self.nvram[b + 3],
                ]);
            }
            if off < 0x200 {
                return 0xFFFF_FFFF;
            }
        }
        0xFFFF_FFFF
    }
}

/// PCI configuration space of the function. The command register (read on every DMA and
/// interrupt decision) is an atomic; the rest is read-only after creation.
pub(crate) struct PciSpace {
    words: [u32; 64],
    command: AtomicU32,
}

impl PciSpace {
    fn new(chip: &ChipModel) -> PciSpace {
        let mut w = [0u32; 64];
        w[0] = (chip.device_id() as u32) << 16 | rscst_fw::pci::QLOGIC_VENDOR_ID as u32;
        w[1] = 0x0010_0000; // status: capabilities list
        w[2] = 0x0C04_0002; // class FC (0x0C04), revision 2
        w[3] = 0x0000_0010; // cache line 16 dwords
        // Memory BARs at fixed fake addresses (the simulator needs no BAR sizing).
        let bar = chip.gen_info().reg_bar as usize;
        w[4 + bar] = 0xFE00_0000 | 0x4; // 64-bit memory BAR
        if chip.has_mq_bar() {
            w[4 + chip.gen_info().mq_bar as usize] = 0xFD00_0000 | 0x4;
        }
        w[11] = 0x015D_1077; // subsystem QLogic / QLE25xx-class board
        w[15] = 0x0000_0100; // interrupt pin A
        PciSpace {
            words: w,
            command: AtomicU32::new(0),
        }
    }

    pub(crate) fn read(&self, offset: u16) -> u32 {
        if !offset.is_multiple_of(4) || offset >= 256 {
            return 0xFFFF_FFFF;
        }
        if offset == 0x04 {
            return self.words[1] & 0xFFFF_0000 | self.command.load(Ordering::Acquire);
        }
        self.words[offset as usize / 4]
    }

    pub(crate) fn write(&self, offset: u16, value: u32) {
        if offset == 0x04 {
            // Command register: memory space, bus master, INTx disable are writable.
            self.command.store(value & 0x0406, Ordering::Release);
        }
    }

    pub(crate) fn bus_master(&self) -> bool {
        self.command.load(Ordering::Relaxed) & 0x4 != 0
    }

    pub(crate) fn intx_disabled(&self) -> bool {
        self.command.load(Ordering::Relaxed) & 0x0400 != 0
    }
}

/// Everything shared between the driver's handles and the model.
pub(crate) struct Shared {
    pub chip: ChipModel,
    pub regs: RegFile,
    pub iommu: Arc<Iommu>,
    pub irq: IrqLine,
    pub fence: FenceCounters,
    pub mmio: MmioCounters,
    pub clock: AtomicU64,
    pub trace: Tracer,
    pub wake: Wake,
    pub threaded: AtomicBool,
    pub violations: Mutex<Vec<Violation>>,
    cmds: Mutex<VecDeque<RegCmd>>,
    /// What the driver's register writes ask of the firmware since it last looked:
    /// `work::*` bits (one load tells the model there is nothing to do).
    pub work: AtomicU32,
    /// Ring lengths set by INITIALIZE_FIRMWARE (0: not initialised): req, rsp, atio.
    pub ring_len: [AtomicU32; 3],
    /// `req_q_in` when the driver last wrote `hccr = CLEAR_RISC_INT`: the request-ring
    /// entries before it were doorbelled before the driver acknowledged the interrupt
    /// cause it had just read (the MARKER check, `firmware::MarkerState`).
    pub req_in_at_ack: AtomicU32,
    /// A DMA without bus mastering was reported once.
    pub bus_master_warned: AtomicBool,
    /// The line is modelled as MSI (a message per cause, acknowledging consumes
    /// it) instead of INTx (a level, `SimConfig::irq_trigger`).
    pub edge_irq: bool,
    flash: Flash,
    pub pci: PciSpace,
}

impl Shared {
    pub(crate) fn new(
        chip: ChipModel,
        iommu: Arc<Iommu>,
        trace: Tracer,
        wwpn: Wwn,
        wwnn: Wwn,
        edge_irq: bool,
    ) -> Shared {
        Shared {
            edge_irq,
            flash: Flash::new(&chip, wwpn, wwnn),
            pci: PciSpace::new(&chip),
            chip,
            regs: RegFile::new(),
            iommu,
            irq: IrqLine::new(),
            fence: FenceCounters::default(),
            mmio: MmioCounters::default(),
            clock: AtomicU64::new(0),
            trace,
            wake: Wake::new(),
            threaded: AtomicBool::new(false),
            violations: Mutex::new(Vec::new()),
            cmds: Mutex::new(VecDeque::new()),
            work: AtomicU32::new(0),
            ring_len: Default::default(),
            req_in_at_ack: AtomicU32::new(0),
            bus_master_warned: AtomicBool::new(false),
        }
    }

    pub(crate) fn now(&self) -> SimTime {
        SimTime(self.clock.load(Ordering::Relaxed))
    }

    pub(crate) fn violation(&self, kind: ViolationKind) {
        let now = self.now();
        self.trace.record(now, TraceKind::Violation(kind.clone()));
        if let Ok(mut v) = self.violations.lock() {
            v.push(Violation { time: now, kind });
        }
    }

    fn push_cmd(&self, c: RegCmd) {
        if let Ok(mut q) = self.cmds.lock() {
            q.push_back(c);
        }
        self.signal(work::CMD);
    }

    /// Tells the firmware model (and wakes its thread in threaded mode).
    #[inline]
    fn signal(&self, bit: u32) {
        self.work.fetch_or(bit, Ordering::Release);
        self.wake.notify();
    }

    /// The `work` bits set since the last call (one relaxed load when there are none).
    #[inline]
    pub(crate) fn take_work(&self) -> u32 {
        if self.work.load(Ordering::Relaxed) == 0 {
            return 0;
        }
        self.work.swap(0, Ordering::AcqRel)
    }

    pub(crate) fn take_cmds(&self) -> VecDeque<RegCmd> {
        self.cmds
            .lock()
            .map(|mut q| std::mem::take(&mut *q))
            .unwrap_or_default()
    }

    /// The interrupt line level.
    pub(crate) fn irq_level(&self) -> bool {
        self.regs.host_status.load(Ordering::Acquire) & HostStatus::INT_PENDING != 0
            && self.regs.ictrl.load(Ordering::Acquire) & Ictrl::ENABLE_RISC_INT.bits() != 0
            && !self.pci.intx_disabled()
    }

    fn update_irq(&self) {
        if self.irq_level() {
            self.irq.raise();
        }
    }

    /// Posts `hs` to `host_status` if no interrupt is pending (B15 clear). Mailbox outputs
    /// must already be in place. Returns whether it was posted.
    pub(crate) fn post_host_status(&self, hs: u32) -> bool {
        let r = &self.regs.host_status;
        let cur = r.load(Ordering::Acquire);
        if cur & HostStatus::INT_PENDING != 0 {
            return false;
        }
        // Keep B8 (RISC paused) as the model set it.
        let new = hs | (cur & HostStatus::RISC_PAUSED);
        if r.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return false;
        }
        self.update_irq();
        true
    }

    pub(crate) fn host_status_pending(&self) -> bool {
        self.regs.host_status.load(Ordering::Acquire) & HostStatus::INT_PENDING != 0
    }

    pub(crate) fn set_risc_paused(&self, paused: bool) {
        if paused {
            self.regs
                .host_status
                .fetch_or(HostStatus::RISC_PAUSED, Ordering::AcqRel);
        } else {
            self.regs
                .host_status
                .fetch_and(!HostStatus::RISC_PAUSED, Ordering::AcqRel);
        }
    }

    // ---------------------------------------------------------------------------------
    // Register access from the driver.

    fn trace_reg(&self, write: bool, bar: Bar, offset: u32, width: u8, value: u32) {
        if self.trace.registers_on() {
            let kind = if write {
                TraceKind::RegWrite {
                    bar,
                    offset,
                    width,
                    value,
                }
            } else {
                TraceKind::RegRead {
                    bar,
                    offset,
                    width,
                    value,
                }
            };
            self.trace.record(self.now(), kind);
        }
    }

    fn bad(&self, bar: Bar, offset: u32, width: u8, write: bool) {
        self.violation(ViolationKind::BadRegisterAccess {
            bar,
            offset,
            width,
            write,
        });
    }

    /// Which queue pointer lives at `offset` of `bar`, for this chip.
    fn qp_at(&self, bar: Bar, offset: u32) -> Option<Qp> {
        let in_mq = self.chip.queue_ptrs_in_mq();
        match (bar, in_mq) {
            (Bar::Regs, false) => match offset {
                regs::REQ_Q_IN => Some(Qp::ReqIn),
                regs::REQ_Q_OUT => Some(Qp::ReqOut),
                regs::RSP_Q_IN => Some(Qp::RspIn),
                regs::RSP_Q_OUT => Some(Qp::RspOut),
                regs::ATIO_Q_IN => Some(Qp::AtioIn),
                regs::ATIO_Q_OUT => Some(Qp::AtioOut),
                _ => None,
            },
            (Bar::Mq, true) => match offset {
                regs::mq::REQ_Q_IN => Some(Qp::ReqIn),
                regs::mq::REQ_Q_OUT => Some(Qp::ReqOut),
                regs::mq::RSP_Q_IN => Some(Qp::RspIn),
                regs::mq::RSP_Q_OUT => Some(Qp::RspOut),
                regs::mq::ATIO_Q_IN => Some(Qp::AtioIn),
                regs::mq::ATIO_Q_OUT => Some(Qp::AtioOut),
                _ => None,
            },
            _ => None,
        }
    }

    pub(crate) fn mmio_read32(&self, bar: Bar, offset: u32) -> u32 {
        self.mmio.reads.fetch_add(1, Ordering::Relaxed);
        let v = self.read32_inner(bar, offset);
        self.trace_reg(false, bar, offset, 32, v);
        v
    }

    fn read32_inner(&self, bar: Bar, offset: u32) -> u32 {
        let r = &self.regs;
        let len = match bar {
            Bar::Regs => REG_BAR_LEN,
            Bar::Mq => MQ_BAR_LEN,
        };
        if offset >= len || !offset.is_multiple_of(4) {
            self.bad(bar, offset, 32, false);
            return 0xFFFF_FFFF;
        }
        if let Some(q) = self.qp_at(bar, offset) {
            return r.qp(q);
        }
        if bar == Bar::Mq {
            return 0;
        }
        if let Some(n) = regs::mailbox_index(offset) {
            let lo = r.mb_out[n].load(Ordering::Acquire) as u32;
            let hi = r
                .mb_out
                .get(n + 1)
                .map(|m| m.load(Ordering::Acquire) as u32)
                .unwrap_or(0);
            return lo | hi << 16;
        }
        match offset {
            regs::FLASH_ADDR => r.flash_addr.load(Ordering::Acquire),
            regs::FLASH_DATA => r.flash_data.load(Ordering::Acquire),
            regs::CTRL_STATUS => r.ctrl_status.load(Ordering::Acquire),
            regs::ICTRL => r.ictrl.load(Ordering::Acquire),
            regs::ISTATUS => {
                if self.host_status_pending() {
                    rscst_fw::regs::Istatus::RISC_INT.bits()
                } else {
                    0
                }
            }
            regs::HOST_STATUS => r.host_status.load(Ordering::Acquire),
            regs::HCCR => r.hccr_status.load(Ordering::Acquire),
            regs::PREQ_Q_IN => r.preq[0].load(Ordering::Acquire),
            regs::PREQ_Q_OUT => r.preq[1].load(Ordering::Acquire),
            _ => match scratch_index(offset) {
                Some(i) => r.scratch[i].load(Ordering::Acquire),
                None => 0,
            },
        }
    }

    pub(crate) fn mmio_read16(&self, bar: Bar, offset: u32) -> u16 {
        self.mmio.reads.fetch_add(1, Ordering::Relaxed);
        let v = if bar == Bar::Regs
            && let Some(n) = regs::mailbox_index(offset)
        {
            self.regs.mb_out[n].load(Ordering::Acquire)
        } else {
            self.bad(bar, offset, 16, false);
            if offset.is_multiple_of(2) && offset < REG_BAR_LEN {
                (self.read32_inner(bar, offset & !3) >> ((offset & 2) * 8)) as u16
            } else {
                0xFFFF
            }
        };
        self.trace_reg(false, bar, offset, 16, v as u32);
        v
    }

    pub(crate) fn mmio_write16(&self, bar: Bar, offset: u32, value: u16) {
        self.mmio.writes.fetch_add(1, Ordering::Relaxed);
        self.trace_reg(true, bar, offset, 16, value as u32);
        if bar == Bar::Regs
            && let Some(n) = regs::mailbox_index(offset)
        {
            self.write_mailbox(n, value);
        } else {
            self.bad(bar, offset, 16, true);
        }
    }

    fn write_mailbox(&self, n: usize, v: u16) {
        if let Some(r) = self.regs.mb_in.get(n) {
            r.store(v, Ordering::Release);
            self.regs.mb_written.fetch_or(1 << n, Ordering::AcqRel);
        }
    }

    pub(crate) fn mmio_write32(&self, bar: Bar, offset: u32, value: u32) {
        self.mmio.writes.fetch_add(1, Ordering::Relaxed);
        self.trace_reg(true, bar, offset, 32, value);
        let len = match bar {
            Bar::Regs => REG_BAR_LEN,
            Bar::Mq => MQ_BAR_LEN,
        };
        if offset >= len || !offset.is_multiple_of(4) {
            self.bad(bar, offset, 32, true);
            return;
        }
        if let Some(q) = self.qp_at(bar, offset) {
            self.write_qp(q, value);
            return;
        }
        if bar == Bar::Mq {
            self.bad(bar, offset, 32, true);
            return;
        }
        if let Some(n) = regs::mailbox_index(offset) {
            self.write_mailbox(n, value as u16);
            self.write_mailbox(n + 1, (value >> 16) as u16);
            return;
        }
        let r = &self.regs;
        match offset {
            regs::FLASH_ADDR => {
                if value & regs::FLASH_ADDR_DATA_FLAG == 0 {
                    r.flash_data
                        .store(self.flash.read(value), Ordering::Release);
                    r.flash_addr
                        .store(value | regs::FLASH_ADDR_DATA_FLAG, Ordering::Release);
                } else {
                    // Writes are accepted and dropped (the simulated flash is read-only).
                    r.flash_addr
                        .store(value & !regs::FLASH_ADDR_DATA_FLAG, Ordering::Release);
                }
            }
            regs::FLASH_DATA => r.flash_data.store(value, Ordering::Release),
            regs::CTRL_STATUS => {
                const WRITABLE: u32 = CtrlStatus::SOFT_RESET.bits()
                    | CtrlStatus::FLASH_ENABLE.bits()
                    | 0x30
                    | CtrlStatus::DMA_SHUTDOWN.bits();
                let old = r.ctrl_status.load(Ordering::Acquire);
                let new =
                    (value & WRITABLE) | (old & !WRITABLE) | (old & CtrlStatus::SOFT_RESET.bits());
                r.ctrl_status.store(new, Ordering::Release);
                let shut = CtrlStatus::DMA_SHUTDOWN.bits();
                if (old ^ new) & shut != 0 || new & shut != 0 {
                    self.push_cmd(RegCmd::DmaShutdown(new & shut != 0));
                }
                if value & CtrlStatus::SOFT_RESET.bits() != 0 {
                    self.push_cmd(RegCmd::SoftReset);
                }
            }
            regs::ICTRL => {
                r.ictrl.store(value, Ordering::Release);
                self.update_irq();
            }
            regs::ISTATUS | regs::HOST_STATUS => self.bad(bar, offset, 32, true),
            regs::HCCR => self.write_hccr(HccrCommand::from(value)),
            regs::PREQ_Q_IN => r.preq[0].store(value, Ordering::Release),
            regs::PREQ_Q_OUT => r.preq[1].store(value, Ordering::Release),
            _ => match scratch_index(offset) {
                Some(i) => r.scratch[i].store(value, Ordering::Release),
                None => {
                    if !self.chip.queue_ptrs_in_mq()
                        || !matches!(offset, regs::REQ_Q_IN..=regs::ATIO_Q_OUT)
                    {
                        self.bad(bar, offset, 32, true);
                    }
                    // 27xx: the 24xx-block queue pointers are inert; the MQ page holds them.
                }
            },
        }
    }

    fn write_hccr(&self, cmd: HccrCommand) {
        let st = &self.regs.hccr_status;
        match cmd {
            HccrCommand::ClearRiscInt => {
                // Recorded before the clear, so a model that sees the clear sees it.
                self.req_in_at_ack
                    .store(self.regs.qp(Qp::ReqIn), Ordering::Release);
                self.regs
                    .host_status
                    .fetch_and(!HostStatus::INT_PENDING, Ordering::AcqRel);
                self.signal(work::ACK);
            }
            HccrCommand::SetHostInt => {
                st.fetch_or(HccrStatus::HOST_INT.bits(), Ordering::AcqRel);
                self.push_cmd(RegCmd::MailboxDoorbell);
            }
            HccrCommand::ClearHostInt => {
                st.fetch_and(!HccrStatus::HOST_INT.bits(), Ordering::AcqRel);
            }
            HccrCommand::SetRiscReset => {
                st.fetch_or(HccrStatus::RISC_RESET.bits(), Ordering::AcqRel);
                self.push_cmd(RegCmd::Hccr(cmd));
            }
            HccrCommand::ClearRiscReset => {
                st.fetch_and(!HccrStatus::RISC_RESET.bits(), Ordering::AcqRel);
                self.push_cmd(RegCmd::Hccr(cmd));
            }
            HccrCommand::SetRiscPause => {
                st.fetch_or(HccrStatus::RISC_PAUSE.bits(), Ordering::AcqRel);
                self.push_cmd(RegCmd::Hccr(cmd));
            }
            HccrCommand::ReleaseRiscPause => {
                st.fetch_and(!HccrStatus::RISC_PAUSE.bits(), Ordering::AcqRel);
                self.push_cmd(RegCmd::Hccr(cmd));
            }
            HccrCommand::Nop => {}
            HccrCommand::Unknown(_) => self.bad(Bar::Regs, regs::HCCR, 32, true),
        }
    }

    fn write_qp(&self, q: Qp, value: u32) {
        let ring = match q {
            Qp::ReqIn | Qp::ReqOut => 0,
            Qp::RspIn | Qp::RspOut => 1,
            Qp::AtioIn | Qp::AtioOut => 2,
        };
        let len = self.ring_len[ring].load(Ordering::Acquire);
        if len == 0 && value != 0 {
            self.violation(ViolationKind::RingsNotInitialized { register: q.name() });
        } else if len != 0 && value >= len {
            self.violation(ViolationKind::RingPointerOutOfRange {
                register: q.name(),
                value,
                length: len as u16,
            });
            return;
        }
        self.regs.set_qp(q, value);
        match q {
            Qp::ReqIn => {
                let rel = self.fence.release.load(Ordering::Acquire);
                let last = self
                    .fence
                    .release_at_last_doorbell
                    .swap(rel, Ordering::AcqRel);
                if len != 0 && rel == last {
                    self.violation(ViolationKind::DoorbellWithoutFence);
                }
                self.signal(work::REQ_DOORBELL);
            }
            Qp::RspOut => self.signal(work::RSP_OUT),
            Qp::AtioOut => self.signal(work::ATIO_OUT),
            _ => {}
        }
    }
}

fn scratch_index(offset: u32) -> Option<usize> {
    Some(match offset {
        regs::GPIOD => 0,
        regs::GPIOE => 1,
        regs::IOBASE_ADDR => 2,
        regs::IOBASE_WINDOW => 3,
        regs::IOBASE_C4 => 4,
        regs::IOBASE_C8 => 5,
        regs::IOBASE_Q => 6,
        regs::IOBASE_SELECT => 7,
        regs::IOBASE_SDATA => 8,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// A notify before the sleep is not lost; a notify during it wakes the sleeper (long
    /// before its timeout); a sleep with nothing signalled times out.
    #[test]
    fn wake_hands_off_without_loss() {
        let w = Arc::new(Wake::new());
        w.register();
        w.notify();
        let t = Instant::now();
        w.sleep(StdDuration::from_secs(30));
        assert!(
            t.elapsed() < StdDuration::from_secs(10),
            "notify before sleep"
        );
        let t = Instant::now();
        w.sleep(StdDuration::from_millis(20));
        assert!(
            t.elapsed() >= StdDuration::from_millis(20),
            "nothing signalled"
        );
        let w2 = Arc::clone(&w);
        let n = std::thread::spawn(move || {
            std::thread::sleep(StdDuration::from_millis(20));
            w2.notify();
        });
        let t = Instant::now();
        w.sleep(StdDuration::from_secs(30));
        assert!(
            t.elapsed() < StdDuration::from_secs(10),
            "woken by the notify"
        );
        n.join().unwrap();
    }

    #[test]
    fn irq_wait_is_woken_by_a_raise() {
        let l = Arc::new(IrqLine::new());
        assert!(!l.wait(Some(StdDuration::from_millis(5))), "times out");
        let l2 = Arc::clone(&l);
        let r = std::thread::spawn(move || {
            std::thread::sleep(StdDuration::from_millis(20));
            l2.raise();
        });
        let t = Instant::now();
        assert!(l.wait(Some(StdDuration::from_secs(30))));
        assert!(t.elapsed() < StdDuration::from_secs(10));
        r.join().unwrap();
        assert_eq!(l.raised.load(Ordering::Relaxed), 1);
        l.ack(|| false);
        assert!(!l.pending());
        assert_eq!(l.sleepers.load(Ordering::Relaxed), 0);
        assert!(l.waiters.lock().unwrap().is_empty());
        // A raise while the driver re-arms (after the clear, before its look
        // at the level, which it saw low) stays latched.
        l.ack(|| {
            l.raise();
            false
        });
        assert!(l.pending(), "a raise during the re-arm was lost");
        // The level still up at the re-arm: latched again.
        l.ack(|| true);
        assert!(l.pending());
        l.ack(|| false);
        assert!(!l.pending());
    }
}
