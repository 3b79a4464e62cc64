//! A tiny scripted chip for the driver's own unit tests: registers, a boot
//! ROM and firmware that answer the bring-up mailbox commands at once, DMA
//! memory reached by IOVA, and switches for faults. Not a simulator (that
//! is `rscst-sim`); just enough to test the bring-up state machine alone.

use core::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;
use std::vec::Vec;

use rscst_core::{
    CmdHandle, CommandRequest, Rejected, RelativePortId, SessionHandle, TmfHandle, TmfRequest,
    TransferError, TransportId,
};
use rscst_fw::icb::{Icb, IcbRepr};
use rscst_fw::pci::IcbVariant;
use rscst_fw::regs as r;
use rscst_hba::host::HostRegion;
use rscst_hba::{
    CpuFence, DmaError, DmaPool, DmaRegion, Iova, Irq, Mmio, PciConfig, Platform, RegOffset,
};

use crate::core_api::CoreApi;

#[derive(Default)]
pub(crate) struct State {
    pub ctrl_status: u32,
    pub ictrl: u32,
    pub host_status: u32,
    pub mbx: [u16; 32],
    pub queue: [u32; 32],
    pub reset_reads: u32,
    pub rom_busy: u32,
    pub fw_running: bool,
    pub sum: u32,
    pub loaded: Vec<(u32, Vec<u32>)>,
    pub ready_after: u32,
    pub state_queries: u32,
    pub stall: Option<u16>,
    pub fail: Option<(u16, u16)>,
    pub commands: Vec<u16>,
    pub icb: Option<IcbRepr>,
    pub options: Option<[u16; 3]>,
    pub flash: Vec<u32>,
    pub flash_addr: u32,
    pub flash_wait: u32,
    pub regions: Vec<HostRegion>,
    pub next_iova: u64,
    pub device_id: u16,
    /// Login state GET_PORT_DATABASE reports (0 = not logged in: status 0x400A).
    pub pdb_state: u8,
    /// The interrupt line is an MSI (edge: `latch` set per posted cause,
    /// cleared by `ack`) instead of the INTx level.
    pub edge: bool,
    pub latch: bool,
    /// A cause (host status, mailboxes) the "firmware" posts as soon as the
    /// driver clears the current one.
    pub next_cause: Option<(u32, [u16; 8])>,
}

impl State {
    pub(crate) fn dma_read_pub(&self, iova: u64, buf: &mut [u8]) -> bool {
        self.dma_read(iova, buf)
    }

    pub(crate) fn dma_write_pub(&self, iova: u64, data: &[u8]) -> bool {
        for r in &self.regions {
            let base = r.iova().0;
            if iova >= base && iova + data.len() as u64 <= base + r.len() as u64 {
                return r.write((iova - base) as usize, data).is_ok();
            }
        }
        false
    }

    fn dma_read(&self, iova: u64, buf: &mut [u8]) -> bool {
        for r in &self.regions {
            let base = r.iova().0;
            if iova >= base && iova + buf.len() as u64 <= base + r.len() as u64 {
                return r.read((iova - base) as usize, buf).is_ok();
            }
        }
        false
    }

    fn complete(&mut self, status: u16) {
        let t = match (self.fw_running, status == 0x4000) {
            (true, true) => 0x10,
            (true, false) => 0x11,
            (false, true) => 0x01,
            (false, false) => 0x02,
        };
        self.mbx[0] = status;
        self.host_status = (status as u32) << 16 | 0x8000 | t;
    }

    fn mailbox(&mut self) {
        let cmd = self.mbx[0];
        self.commands.push(cmd);
        if self.stall == Some(cmd) {
            return;
        }
        if let Some((c, st)) = self.fail
            && c == cmd
        {
            self.complete(st);
            return;
        }
        let m = self.mbx;
        let addr = (m[6] as u64) << 48 | (m[7] as u64) << 32 | (m[2] as u64) << 16 | m[3] as u64;
        let status = match cmd {
            0x06 => 0x4000, // registers stay as written: echoed
            0x0B => {
                let words = (m[4] as u32) << 16 | m[5] as u32;
                let risc = (m[8] as u32) << 16 | m[1] as u32;
                let mut buf = std::vec![0u8; words as usize * 4];
                if self.dma_read(addr, &mut buf) {
                    let w: Vec<u32> = buf
                        .chunks(4)
                        .map(|c| u32::from_le_bytes(c.try_into().unwrap()))
                        .collect();
                    for x in &w {
                        self.sum = self.sum.wrapping_add(*x);
                    }
                    self.loaded.push((risc, w));
                    0x4000
                } else {
                    0x4006
                }
            }
            0x07 => {
                if self.sum == 0 {
                    0x4000
                } else {
                    0x4010
                }
            }
            0x02 => {
                self.fw_running = true;
                0x4000
            }
            0x08 => {
                self.mbx[1] = 9;
                self.mbx[2] = 1;
                self.mbx[3] = 2;
                self.mbx[6] = 1 << 2;
                0x4000
            }
            0x42 => {
                self.mbx[3] = 100;
                0x4000
            }
            0x38 => {
                self.options = Some([m[1], m[2], m[3]]);
                0x4000
            }
            0x60 => {
                let mut b = [0u8; 128];
                if self.dma_read(addr, &mut b) {
                    self.icb =
                        IcbRepr::parse(&Icb::new_unchecked(&b[..]), IcbVariant::Isp24xx).ok();
                    0x4000
                } else {
                    0x4006
                }
            }
            0x69 => {
                self.state_queries += 1;
                self.mbx[1] = if self.state_queries > self.ready_after {
                    3
                } else {
                    4
                };
                0x4000
            }
            0x64 => {
                if self.pdb_state == 0 {
                    0x400A
                } else {
                    let mut b = [0u8; 64];
                    b[2] = self.pdb_state;
                    b[3] = self.pdb_state;
                    b[0x0E..0x10].copy_from_slice(&m[1].to_le_bytes());
                    if self.dma_write_pub(addr, &b) {
                        0x4000
                    } else {
                        0x4006
                    }
                }
            }
            0x20 => {
                self.mbx[1] = 0x7E;
                self.mbx[2] = 0x0200;
                self.mbx[3] = 0x01;
                self.mbx[6] = 3;
                0x4000
            }
            _ => 0x4001,
        };
        self.complete(status);
    }
}

pub(crate) type Shared = Rc<RefCell<State>>;

pub(crate) struct FakeRegs(pub Shared);

impl Mmio for FakeRegs {
    fn read32(&self, o: RegOffset) -> u32 {
        let mut s = self.0.borrow_mut();
        match o.0 {
            r::CTRL_STATUS => {
                if s.ctrl_status & 1 != 0 {
                    if s.reset_reads > 0 {
                        s.reset_reads -= 1;
                    } else {
                        s.ctrl_status &= !1;
                    }
                }
                s.ctrl_status
            }
            r::ICTRL => s.ictrl,
            r::HOST_STATUS => s.host_status,
            r::FLASH_ADDR => {
                if s.flash_wait > 0 {
                    s.flash_wait -= 1;
                    s.flash_addr & !r::FLASH_ADDR_DATA_FLAG
                } else {
                    s.flash_addr | r::FLASH_ADDR_DATA_FLAG
                }
            }
            r::FLASH_DATA => {
                let i = s.flash_addr.wrapping_sub(0x7FF0_0000) as usize;
                s.flash.get(i).copied().unwrap_or(u32::MAX)
            }
            x if (x as usize) < s.queue.len() * 4 => s.queue[x as usize / 4],
            _ => u32::MAX,
        }
    }
    fn write32(&self, o: RegOffset, v: u32) {
        let mut s = self.0.borrow_mut();
        match o.0 {
            r::CTRL_STATUS => {
                s.ctrl_status = v & !(1 << 17);
                if v & 1 != 0 {
                    s.fw_running = false;
                    s.mbx[0] = 0x1234;
                    s.reset_reads = 3;
                    s.rom_busy = 4;
                }
            }
            r::ICTRL => s.ictrl = v,
            r::HCCR => match v {
                0x5000_0000 => s.mailbox(),
                0xA000_0000 => {
                    s.host_status = 0;
                    if let Some((hs, mb)) = s.next_cause.take() {
                        s.host_status = hs;
                        s.mbx[1..8].copy_from_slice(&mb[1..]);
                        s.latch = true;
                    }
                }
                0x2000_0000 => s.mbx[0] = 0,
                _ => {}
            },
            r::FLASH_ADDR => {
                s.flash_addr = v;
                s.flash_wait = 2;
            }
            x if (x as usize) < s.queue.len() * 4 => s.queue[x as usize / 4] = v,
            _ => {}
        }
    }
    fn read16(&self, o: RegOffset) -> u16 {
        let mut s = self.0.borrow_mut();
        match r::mailbox_index(o.0) {
            // mb0 reads busy for a few reads while the "ROM" runs after a
            // soft reset, then 0.
            Some(0) if s.rom_busy > 0 => {
                s.rom_busy -= 1;
                if s.rom_busy == 0 {
                    s.mbx[0] = 0;
                }
                0x1234
            }
            Some(n) => s.mbx[n],
            None => 0xFFFF,
        }
    }
    fn write16(&self, o: RegOffset, v: u16) {
        if let Some(n) = r::mailbox_index(o.0) {
            self.0.borrow_mut().mbx[n] = v;
        }
    }
}

pub(crate) struct FakePool(pub Shared);

impl DmaPool for FakePool {
    type Region = HostRegion;
    fn alloc(&self, len: usize, _align: usize) -> Result<HostRegion, DmaError> {
        let mut s = self.0.borrow_mut();
        let iova = 0x1_0000_0000 + s.next_iova;
        s.next_iova += (len as u64).next_multiple_of(4096);
        let r = HostRegion::new(len, Iova(iova))?;
        s.regions.push(r.clone());
        Ok(r)
    }
}

pub(crate) struct FakeIrq(pub Shared);

impl Irq for FakeIrq {
    fn pending(&self) -> bool {
        let s = self.0.borrow();
        s.ictrl & 8 != 0
            && if s.edge {
                s.latch
            } else {
                s.host_status & 0x8000 != 0
            }
    }
    fn ack(&self) {
        let mut s = self.0.borrow_mut();
        if s.edge {
            s.latch = false;
        }
    }
    fn wait(&self, _timeout: Option<Duration>) -> bool {
        self.pending()
    }
    fn trigger(&self) -> rscst_hba::Trigger {
        if self.0.borrow().edge {
            rscst_hba::Trigger::Edge
        } else {
            rscst_hba::Trigger::Level
        }
    }
}

pub(crate) struct FakePci(pub Shared);

impl PciConfig for FakePci {
    fn read32(&self, offset: u16) -> u32 {
        match offset {
            0 => (self.0.borrow().device_id as u32) << 16 | 0x1077,
            _ => 0,
        }
    }
    fn write32(&self, _offset: u16, _value: u32) {}
}

pub(crate) struct FakePlatform {
    pub state: Shared,
    regs: FakeRegs,
    pool: FakePool,
    irq: FakeIrq,
    pci: FakePci,
    fence: CpuFence,
}

impl FakePlatform {
    pub(crate) fn new() -> FakePlatform {
        let state: Shared = Rc::new(RefCell::new(State {
            device_id: 0x2532,
            pdb_state: 6,
            ..State::default()
        }));
        FakePlatform {
            regs: FakeRegs(state.clone()),
            pool: FakePool(state.clone()),
            irq: FakeIrq(state.clone()),
            pci: FakePci(state.clone()),
            fence: CpuFence,
            state,
        }
    }
}

impl Platform for FakePlatform {
    type Mmio = FakeRegs;
    type Dma = FakePool;
    type Irq = FakeIrq;
    type Fence = CpuFence;
    type Pci = FakePci;
    fn regs(&self) -> &FakeRegs {
        &self.regs
    }
    fn mq_regs(&self) -> Option<&FakeRegs> {
        None
    }
    fn dma(&self) -> &FakePool {
        &self.pool
    }
    fn irq(&self) -> &FakeIrq {
        &self.irq
    }
    fn fence(&self) -> &CpuFence {
        &self.fence
    }
    fn pci(&self) -> &FakePci {
        &self.pci
    }
}

/// A two-segment image whose dwords sum to zero (the fake's checksum rule).
pub(crate) fn image(seg_dwords: [u32; 2]) -> Vec<u8> {
    let mut words = Vec::new();
    for (i, &n) in seg_dwords.iter().enumerate() {
        let base = words.len();
        words.extend_from_slice(&[0x4000_0000 | i as u32, 0, 0x10_0000 + 0x8000 * i as u32, n]);
        for k in 4..n {
            words.push(k.wrapping_mul(0x9E37_79B9));
        }
        let sum = words[base..].iter().fold(0u32, |a, w| a.wrapping_add(*w));
        // Fold the segment's sum into its last dword so it sums to zero.
        let last = words.len() - 1;
        words[last] = words[last].wrapping_sub(sum);
    }
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

/// A core that must never be called (bring-up tests).
#[derive(Default)]
pub(crate) struct NoCore;

impl CoreApi for NoCore {
    fn command_slots(&self) -> Option<usize> {
        Some(4)
    }
    fn tmf_slots(&self) -> Option<usize> {
        Some(2)
    }
    fn create_session(&mut self, _: &TransportId, _: RelativePortId) -> Option<SessionHandle> {
        panic!("no core")
    }
    fn remove_session(&mut self, _: SessionHandle) {
        panic!("no core")
    }
    fn submit(&mut self, _: &CommandRequest<'_>) -> Result<CmdHandle, Rejected> {
        panic!("no core")
    }
    fn submit_tmf(&mut self, _: &TmfRequest) -> Result<TmfHandle, Rejected> {
        panic!("no core")
    }
    fn data_out_done(&mut self, _: CmdHandle, _: Result<(), TransferError>) -> bool {
        panic!("no core")
    }
    fn data_in_done(&mut self, _: CmdHandle, _: Result<(), TransferError>) -> bool {
        panic!("no core")
    }
    fn response_sent(&mut self, _: CmdHandle, _: Result<(), TransferError>) -> bool {
        panic!("no core")
    }
    fn abort_done(&mut self, _: CmdHandle) -> bool {
        panic!("no core")
    }
    fn tmf_response_sent(&mut self, _: TmfHandle) -> bool {
        panic!("no core")
    }
}
