//! IOCB-level test harness: the fake chip brought online, a test playing
//! firmware on the three rings, and a core that records every call.

use std::vec::Vec;

use rscst_core::{
    CmdHandle, CommandRequest, Instant, Rejected, RelativePortId, SessionHandle, TmfHandle,
    TmfRequest, TransferError, TransportId,
};
use rscst_fw::iocb::{ENTRY_LEN, PROCESSED_SIGNATURE, SIGNATURE_OFFSET};
use rscst_fw::regs;
use rscst_hba::DmaRegion;

use super::fake::{FakePlatform, Shared, image};
use super::{Isp, IspStorage};
use crate::config::IspConfig;
use crate::core_api::CoreApi;
use crate::firmware::FirmwareSource;

/// What the recording core was told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Call {
    CreateSession(u64),
    RemoveSession(SessionHandle),
    Submit {
        tag: u64,
        lun: u64,
        cdb0: u8,
        len: u32,
        dir: rscst_core::DataDirection,
        attr: rscst_core::TaskAttr,
    },
    SubmitTmf(TmfRequest),
    DataOutDone(CmdHandle, Result<(), TransferError>),
    DataInDone(CmdHandle, Result<(), TransferError>),
    ResponseSent(CmdHandle, Result<(), TransferError>),
    AbortDone(CmdHandle),
    TmfResponseSent(TmfHandle),
}

#[derive(Default)]
pub(crate) struct RecCore {
    pub calls: Vec<Call>,
    pub next_cmd: u16,
    pub next_tmf: u16,
    pub next_session: u16,
    pub reject: Option<Rejected>,
    /// The CDB of the last command submitted.
    pub last_cdb: Vec<u8>,
    pub refuse_login: bool,
}

impl CoreApi for RecCore {
    fn command_slots(&self) -> Option<usize> {
        Some(8)
    }
    fn tmf_slots(&self) -> Option<usize> {
        Some(4)
    }
    fn create_session(&mut self, id: &TransportId, _: RelativePortId) -> Option<SessionHandle> {
        let b = id.as_bytes();
        let wwpn = u64::from_be_bytes(b[8..16].try_into().unwrap());
        self.calls.push(Call::CreateSession(wwpn));
        if self.refuse_login {
            return None;
        }
        self.next_session += 1;
        Some(SessionHandle::from_u32(self.next_session as u32 | 1 << 16))
    }
    fn remove_session(&mut self, s: SessionHandle) {
        self.calls.push(Call::RemoveSession(s));
    }
    fn submit(&mut self, r: &CommandRequest<'_>) -> Result<CmdHandle, Rejected> {
        self.last_cdb = r.cdb.to_vec();
        self.calls.push(Call::Submit {
            tag: r.tag.0,
            lun: r.lun.0,
            cdb0: r.cdb[0],
            len: r.expected_len,
            dir: r.dir,
            attr: r.attr,
        });
        if let Some(rej) = self.reject {
            return Err(rej);
        }
        let i = self.next_cmd % 8;
        self.next_cmd += 1;
        Ok(CmdHandle::from_u32(i as u32 | (self.next_cmd as u32) << 16))
    }
    fn submit_tmf(&mut self, r: &TmfRequest) -> Result<TmfHandle, Rejected> {
        self.calls.push(Call::SubmitTmf(*r));
        let i = self.next_tmf % 4;
        self.next_tmf += 1;
        Ok(TmfHandle::from_u32(i as u32 | (self.next_tmf as u32) << 16))
    }
    fn data_out_done(&mut self, c: CmdHandle, r: Result<(), TransferError>) -> bool {
        self.calls.push(Call::DataOutDone(c, r));
        true
    }
    fn data_in_done(&mut self, c: CmdHandle, r: Result<(), TransferError>) -> bool {
        self.calls.push(Call::DataInDone(c, r));
        true
    }
    fn response_sent(&mut self, c: CmdHandle, r: Result<(), TransferError>) -> bool {
        self.calls.push(Call::ResponseSent(c, r));
        true
    }
    fn abort_done(&mut self, c: CmdHandle) -> bool {
        self.calls.push(Call::AbortDone(c));
        true
    }
    fn tmf_response_sent(&mut self, t: TmfHandle) -> bool {
        self.calls.push(Call::TmfResponseSent(t));
        true
    }
}

pub(crate) const REQ: usize = 32;
pub(crate) type HStorage = IspStorage<8, 8, 4, 32, 256>;
pub(crate) type HIsp<'s> = Isp<'s, FakePlatform, REQ, 32, 32>;

/// The test's side of the rings.
pub(crate) struct Fw {
    pub chip: Shared,
    pub req_out: u16,
    pub rsp_in: u16,
    pub atio_in: u16,
    pub now: u64,
}

impl Fw {
    fn reg(&self, off: u32) -> u32 {
        self.chip.borrow().queue[off as usize / 4]
    }

    /// Entries the driver posted since the last call (and "consume" them).
    pub fn requests(&mut self, isp: &HIsp<'_>) -> Vec<[u8; 64]> {
        let in_ptr = self.reg(regs::REQ_Q_IN) as u16;
        let mut v = Vec::new();
        while self.req_out != in_ptr {
            let mut e = [0u8; 64];
            isp.dma
                .req
                .read(self.req_out as usize * ENTRY_LEN, &mut e)
                .unwrap();
            v.push(e);
            self.req_out = ((self.req_out as usize + 1) % REQ) as u16;
        }
        self.chip.borrow_mut().queue[regs::REQ_Q_OUT as usize / 4] = self.req_out as u32;
        v
    }

    /// Put an entry (1..n slots) on the ATIO queue.
    pub fn atio(&mut self, isp: &HIsp<'_>, bytes: &[u8]) {
        for chunk in bytes.chunks(ENTRY_LEN) {
            let mut e = [0u8; 64];
            e[..chunk.len()].copy_from_slice(chunk);
            assert_ne!(
                u32::from_le_bytes(e[SIGNATURE_OFFSET..].try_into().unwrap()),
                PROCESSED_SIGNATURE
            );
            isp.dma
                .atio
                .write(self.atio_in as usize * ENTRY_LEN, &e)
                .unwrap();
            self.atio_in = (self.atio_in + 1) % 32;
        }
        self.chip.borrow_mut().queue[regs::ATIO_Q_IN as usize / 4] = self.atio_in as u32;
    }

    /// Put an entry on the response queue.
    pub fn respond(&mut self, isp: &HIsp<'_>, e: &[u8; 64]) {
        isp.dma
            .rsp
            .write(self.rsp_in as usize * ENTRY_LEN, e)
            .unwrap();
        self.rsp_in = (self.rsp_in + 1) % 32;
        self.chip.borrow_mut().queue[regs::RSP_Q_IN as usize / 4] = self.rsp_in as u32;
    }

    /// Raise an async event.
    pub fn async_event(&mut self, mb: [u16; 8]) {
        let mut c = self.chip.borrow_mut();
        c.mbx[1..8].copy_from_slice(&mb[1..]);
        c.host_status = (mb[0] as u32) << 16 | 0x8000 | 0x12;
        c.latch = true;
    }

    /// Raise a response-queue update cause (host status type 0x13).
    pub fn queue_update(&mut self) {
        let mut c = self.chip.borrow_mut();
        c.host_status = 0x8000 | 0x13;
        c.latch = true;
    }
}

pub(crate) fn leak_image() -> &'static [u8] {
    std::boxed::Box::leak(image([64, 16]).into_boxed_slice())
}

/// Probe and bring the port online; returns the driver, the firmware side and a core.
pub(crate) fn online<'s, C: CoreApi>(storage: &'s mut HStorage, core: &mut C) -> (HIsp<'s>, Fw) {
    let p = FakePlatform::new();
    let chip = p.state.clone();
    let mut cfg = IspConfig::new(
        rscst_fw::Wwn::from_u64(0x2100_0000_0000_0001),
        rscst_fw::Wwn::from_u64(0x2000_0000_0000_0001),
        FirmwareSource::Image(leak_image()),
    );
    cfg.busy_threshold_percent = 100;
    let mut isp = HIsp::probe(p, storage, cfg).unwrap();
    let mut t = 0;
    while !isp.is_online() {
        isp.poll(Instant::from_millis(t), core);
        t += 1;
        assert!(t < 10_000, "bring-up stuck: {:?}", isp.phase());
    }
    let mut fw = Fw {
        chip,
        req_out: 0,
        rsp_in: 0,
        atio_in: 0,
        now: t,
    };
    // The marker.
    let m = fw.requests(&isp);
    assert_eq!(m.len(), 1);
    assert_eq!(m[0][0], 0x04);
    while isp.pop_event().is_some() {}
    (isp, fw)
}

impl Fw {
    /// Poll the driver once at the harness clock (+1 ms).
    pub fn poll<C: CoreApi>(&mut self, isp: &mut HIsp<'_>, core: &mut C) {
        self.now += 1;
        isp.poll(Instant::from_millis(self.now), core);
    }

    /// The bytes a data-in CTIO7 (with its continuations) points at.
    pub fn read_dsds(&self, entries: &[[u8; 64]]) -> Vec<u8> {
        let mut out = Vec::new();
        for d in dsds(entries) {
            let mut b = std::vec![0u8; d.length as usize];
            assert!(
                self.chip.borrow().dma_read_pub(d.address, &mut b),
                "DSD {d} not mapped"
            );
            out.extend_from_slice(&b);
        }
        out
    }

    /// Write `data` where a data-out CTIO7 points.
    pub fn write_dsds(&self, entries: &[[u8; 64]], data: &[u8]) {
        let mut at = 0;
        for d in dsds(entries) {
            let n = d.length as usize;
            assert!(
                self.chip
                    .borrow()
                    .dma_write_pub(d.address, &data[at..at + n])
            );
            at += n;
        }
        assert_eq!(at, data.len());
    }
}

/// The DSDs of a CTIO7 and its continuation entries.
pub(crate) fn dsds(entries: &[[u8; 64]]) -> Vec<rscst_fw::iocb::Dsd64> {
    use rscst_fw::iocb::{ContinueA64Repr, Ctio7Mode, Ctio7Repr};
    let c = Ctio7Repr::parse_bytes(&entries[0]).unwrap();
    let Ctio7Mode::Mode0(m) = c.mode else {
        return Vec::new();
    };
    let mut v = std::vec![m.dsd];
    for e in &entries[1..c.entry_count as usize] {
        v.extend(ContinueA64Repr::parse_bytes(e).unwrap().used().copied());
    }
    v.truncate(c.dseg_count as usize);
    v
}
