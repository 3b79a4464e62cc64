//! Driver + the real SCSI core + a RAM LUN in DMA memory, with the test
//! playing firmware at the IOCB level: the transport contract end to end.

use std::boxed::Box;
use std::vec::Vec;

use rscst_core::{
    Access, BackendLun, BufferPool, GroupId, Instant, LuConfig, PortConfig, RamBackend,
    RelativePortId, Target, TargetConfig, TargetPortGroupId, TargetStorage,
};
use rscst_fw::fc::els::ElsOpcode;
use rscst_fw::fc::fcp::{DataDir, FcpCmndRepr, TmFunction};
use rscst_fw::iocb::{
    Atio7Repr, Ctio7CompletionRepr, Ctio7Flags, Ctio7Mode, Ctio7Repr, CtioStatus, ImmedNotifyRepr,
};
use rscst_fw::{ExchangeAddr, Lun, NportHandle, OxId, PortId, Wwn};
use rscst_hba::host::HostRegion;
use rscst_hba::{DmaPool, Platform};

use super::harness::{Fw, HIsp, HStorage, online};
use crate::memory::DmaMemory;

type Backend = RamBackend<'static, DmaMemory<HostRegion>, 1>;

struct Stack {
    isp: HIsp<'static>,
    fw: Fw,
    target: Target<'static>,
    backend: Backend,
}

fn stack() -> Stack {
    let storage: &'static mut HStorage = Box::leak(Box::new(HStorage::new()));
    let ts: &'static mut TargetStorage<8, 4, 2> = Box::leak(Box::new(TargetStorage::new()));
    // Bring the port up first; the core's memory comes from the platform's
    // DMA pool the driver owns (the recording core stands in for the
    // capacity check of the first poll).
    let (isp, fw) = online(storage, &mut super::harness::RecCore::default());
    let pool_mem: &'static DmaMemory<HostRegion> = Box::leak(Box::new(DmaMemory::new(
        isp.platform().dma().alloc(64 * 1024, 4096).unwrap(),
    )));
    let pool = BufferPool::new(pool_mem, 4096).unwrap();
    let mut target = Target::new(ts, pool, &TargetConfig::new("RSCST", "qla test", "0001"));
    target
        .add_port(&PortConfig::new(RelativePortId(1), TargetPortGroupId(1)))
        .unwrap();
    let lun_mem = DmaMemory::new(isp.platform().dma().alloc(128 * 512, 4096).unwrap());
    let mut backend = Backend::new();
    let bl = backend.add_lun(lun_mem, 512).unwrap();
    assert_eq!(bl, BackendLun(0));
    let lu = target.add_lu(&LuConfig::new(bl, 512, 128)).unwrap();
    target
        .map_lun(
            GroupId::DEFAULT,
            rscst_core::Lun::single_level(0).unwrap(),
            lu,
            Access::ReadWrite,
        )
        .unwrap();
    Stack {
        isp,
        fw,
        target,
        backend,
    }
}

const INIT: u32 = 0x010500;

impl Stack {
    fn turn(&mut self) {
        self.fw.now += 1;
        self.isp.poll_stack(
            Instant::from_millis(self.fw.now),
            &mut self.target,
            &mut self.backend,
        );
    }

    fn settle(&mut self) {
        for _ in 0..5 {
            self.turn();
        }
    }

    fn notify(&mut self, op: ElsOpcode) {
        let mut n = ImmedNotifyRepr::els(
            op,
            NportHandle(0x10),
            PortId::new(INIT),
            Wwn::from_u64(0x2100_0000_0000_0042),
            ExchangeAddr(0x7000 + op.raw() as u32),
            1,
        );
        n.els_specific[0] = 0x20;
        let mut e = [0u8; 64];
        n.emit_bytes(&mut e).unwrap();
        self.fw.atio(&self.isp, &e);
        self.settle();
        // Acks are not completed here (skip the completion: handles time out
        // only after 15 s, far beyond these tests).
        self.fw.requests(&self.isp);
    }

    fn login(&mut self) {
        self.notify(ElsOpcode::Plogi);
        self.notify(ElsOpcode::Prli);
        assert_eq!(self.target.session_count(), 1);
    }

    fn command(&mut self, xchg: u32, cdb: &[u8], dir: DataDir, len: u32) {
        let fcp = FcpCmndRepr::command(Lun::from_index(0).unwrap(), cdb, dir, len).unwrap();
        let a = Atio7Repr::new(
            ExchangeAddr(xchg),
            PortId::new(INIT),
            PortId::new(0x010200),
            OxId(xchg as u16),
            fcp,
        );
        let mut e = [0u8; 64];
        a.emit_bytes(&mut e).unwrap();
        self.fw.atio(&self.isp, &e);
        self.settle();
    }

    /// Take the posted entries grouped per IOCB (a CTIO7 with its continuations).
    fn iocbs(&mut self) -> Vec<Vec<[u8; 64]>> {
        let r = self.fw.requests(&self.isp);
        let mut out: Vec<Vec<[u8; 64]>> = Vec::new();
        let mut i = 0;
        while i < r.len() {
            let n = (r[i][1] as usize).max(1);
            out.push(r[i..i + n].to_vec());
            i += n;
        }
        out
    }

    fn complete(&mut self, e: &[u8; 64], st: CtioStatus) {
        let c = Ctio7Repr::parse_bytes(e).unwrap();
        if c.flags.contains(Ctio7Flags::DONT_RET_CTIO) && st == CtioStatus::Success {
            return;
        }
        let mut b = [0u8; 64];
        Ctio7CompletionRepr::for_request(&c, st)
            .emit_bytes(&mut b)
            .unwrap();
        self.fw.respond(&self.isp, &b);
    }

    /// Run a command to the end, playing firmware: returns (data in, status, sense).
    fn run(
        &mut self,
        xchg: u32,
        cdb: &[u8],
        dir: DataDir,
        len: u32,
        out: &[u8],
    ) -> (Vec<u8>, u8, Vec<u8>) {
        self.command(xchg, cdb, dir, len);
        let mut data = Vec::new();
        for _ in 0..20 {
            let iocbs = self.iocbs();
            if iocbs.is_empty() {
                self.settle();
                continue;
            }
            for e in iocbs {
                let c = Ctio7Repr::parse_bytes(&e[0]).unwrap();
                assert_eq!(c.exchange_addr, ExchangeAddr(xchg));
                if c.flags.contains(Ctio7Flags::DATA_IN) {
                    data.extend(self.fw.read_dsds(&e));
                }
                if c.flags.contains(Ctio7Flags::DATA_OUT) {
                    self.fw.write_dsds(&e, out);
                }
                self.complete(&e[0], CtioStatus::Success);
                if c.flags.contains(Ctio7Flags::SEND_STATUS) {
                    let sense = match c.mode {
                        Ctio7Mode::Mode1(m) => m.sense().to_vec(),
                        Ctio7Mode::Mode0(_) => Vec::new(),
                    };
                    self.settle();
                    return (data, c.scsi_status.status, sense);
                }
            }
            self.settle();
        }
        panic!("command {xchg:#x} never completed");
    }
}

#[test]
fn unit_attention_inquiry_write_read_through_the_core() {
    let mut s = stack();
    s.login();
    // First command sees the POWER ON / RESET unit attention.
    let (_, st, sense) = s.run(0x100, &[0, 0, 0, 0, 0, 0], DataDir::None, 0, &[]);
    assert_eq!(st, 0x02);
    assert_eq!((sense[2] & 0xF, sense[12]), (0x6, 0x29));
    let (inq, st, _) = s.run(0x101, &[0x12, 0, 0, 0, 96, 0], DataDir::DataIn, 96, &[]);
    assert_eq!(st, 0);
    assert_eq!(&inq[8..13], b"RSCST");
    // WRITE(10) 2 blocks at LBA 5, read them back.
    let pattern: Vec<u8> = (0..1024u32).map(|i| (i * 7 + 3) as u8).collect();
    let (_, st, _) = s.run(
        0x102,
        &[0x2A, 0, 0, 0, 0, 5, 0, 0, 2, 0],
        DataDir::DataOut,
        1024,
        &pattern,
    );
    assert_eq!(st, 0);
    let (back, st, _) = s.run(
        0x103,
        &[0x28, 0, 0, 0, 0, 5, 0, 0, 2, 0],
        DataDir::DataIn,
        1024,
        &[],
    );
    assert_eq!(st, 0);
    assert_eq!(back, pattern);
    // Zero copy: the CTIO7 pointed at the LUN's own bytes.
    assert_eq!(s.isp.stats().bytes_copied, 0);
    assert_eq!(s.target.active_commands(), 0);
    assert_eq!(
        (s.isp.commands_in_flight(), s.isp.handles_in_use() <= 2),
        (0, true)
    );
}

#[test]
fn read_with_short_fcp_dl_reports_overflow_residual() {
    let mut s = stack();
    s.login();
    s.run(0x100, &[0, 0, 0, 0, 0, 0], DataDir::None, 0, &[]);
    // READ(10) of 2 blocks with FCP_DL 512: the core sends 512 and OVER 512.
    s.command(
        0x200,
        &[0x28, 0, 0, 0, 0, 0, 0, 0, 2, 0],
        DataDir::DataIn,
        512,
    );
    let iocbs = s.iocbs();
    let last = Ctio7Repr::parse_bytes(&iocbs.last().unwrap()[0]).unwrap();
    assert!(last.flags.contains(Ctio7Flags::SEND_STATUS));
    assert_eq!(last.residual, 512);
    assert_eq!(last.scsi_status.to_u16() & (1 << 10), 1 << 10, "RESID_OVER");
    for e in &iocbs {
        s.complete(&e[0], CtioStatus::Success);
    }
    s.settle();
    assert_eq!(s.target.active_commands(), 0);
}

#[test]
fn lun_reset_with_a_write_waiting_for_data() {
    let mut s = stack();
    s.login();
    s.run(0x100, &[0, 0, 0, 0, 0, 0], DataDir::None, 0, &[]);
    s.command(
        0x300,
        &[0x2A, 0, 0, 0, 0, 1, 0, 0, 1, 0],
        DataDir::DataOut,
        512,
    );
    let data_out = s.iocbs();
    assert!(
        Ctio7Repr::parse_bytes(&data_out[0][0])
            .unwrap()
            .flags
            .contains(Ctio7Flags::DATA_OUT)
    );
    // LUN RESET arrives while the data-out is outstanding.
    let fcp = FcpCmndRepr::task_management(Lun::from_index(0).unwrap(), TmFunction::LunReset);
    let a = Atio7Repr::new(
        ExchangeAddr(0x301),
        PortId::new(INIT),
        PortId::new(0x010200),
        OxId(9),
        fcp,
    );
    let mut e = [0u8; 64];
    a.emit_bytes(&mut e).unwrap();
    s.fw.atio(&s.isp, &e);
    s.settle();
    // The driver terminates the write's exchange; no TMF response yet.
    let t = s.iocbs();
    assert_eq!(t.len(), 1);
    let tc = Ctio7Repr::parse_bytes(&t[0][0]).unwrap();
    assert!(tc.flags.contains(Ctio7Flags::TERMINATE));
    assert_eq!(tc.exchange_addr, ExchangeAddr(0x300));
    // The firmware fails the data-out and completes the terminate.
    s.complete(&data_out[0][0], CtioStatus::Aborted);
    s.complete(&t[0][0], CtioStatus::Success);
    s.settle();
    // Now the FCP_RSP of the TMF goes out.
    let r = s.iocbs();
    let rc = Ctio7Repr::parse_bytes(&r[0][0]).unwrap();
    assert_eq!(rc.exchange_addr, ExchangeAddr(0x301));
    let Ctio7Mode::Mode1(m) = rc.mode else {
        panic!()
    };
    assert_eq!(m.response_info()[3], 0, "FUNCTION COMPLETE");
    s.complete(&r[0][0], CtioStatus::Success);
    s.settle();
    assert_eq!(s.target.active_commands(), 0);
    assert_eq!((s.isp.commands_in_flight(), s.isp.tmfs_in_flight()), (0, 0));
}

/// The express path: with the backend at hand (`poll_stack`'s
/// `StackCore`), a READ is answered from the ATIO drain itself, with the
/// same CTIO7 the core's poll would have had the driver post; the driver's
/// `poll` with the bare target leaves it to the core's poll.
#[test]
fn a_read_is_answered_from_the_atio_drain_with_the_polls_ctio7() {
    let read = |express: bool| {
        let mut s = stack();
        s.login();
        s.run(0x100, &[0, 0, 0, 0, 0, 0], DataDir::None, 0, &[]);
        let pattern: Vec<u8> = (0..512u32).map(|i| (i * 5 + 1) as u8).collect();
        let wr = [0x2A, 0, 0, 0, 0, 3, 0, 0, 1, 0];
        assert_eq!(s.run(0x101, &wr, DataDir::DataOut, 512, &pattern).1, 0);
        let fcp = FcpCmndRepr::command(
            Lun::from_index(0).unwrap(),
            &[0x28, 0, 0, 0, 0, 3, 0, 0, 1, 0],
            DataDir::DataIn,
            512,
        )
        .unwrap();
        let a = Atio7Repr::new(
            ExchangeAddr(0x400),
            PortId::new(INIT),
            PortId::new(0x010200),
            OxId(0x400),
            fcp,
        );
        let mut e = [0u8; 64];
        a.emit_bytes(&mut e).unwrap();
        s.fw.atio(&s.isp, &e);
        s.fw.now += 1;
        let now = Instant::from_millis(s.fw.now);
        if express {
            let mut core = crate::core_api::StackCore {
                target: &mut s.target,
                backend: &mut s.backend,
            };
            s.isp.poll(now, &mut core);
            // Answered in the drain: nothing left for the core's poll.
            assert_eq!(s.target.poll_at(now), None);
        } else {
            s.isp.poll(now, &mut s.target);
            assert!(
                s.iocbs().is_empty(),
                "nothing posted before the core's poll"
            );
            assert_eq!(s.target.poll_at(now), Some(now));
            s.target.poll(now, &mut s.isp, &mut s.backend);
            s.isp.flush();
        }
        let iocbs = s.iocbs();
        assert_eq!(iocbs.len(), 1);
        let c = Ctio7Repr::parse_bytes(&iocbs[0][0]).unwrap();
        assert!(
            c.flags
                .contains(Ctio7Flags::DATA_IN | Ctio7Flags::SEND_STATUS)
        );
        assert_eq!(s.fw.read_dsds(&iocbs[0]), pattern);
        s.complete(&iocbs[0][0], CtioStatus::Success);
        s.settle();
        assert_eq!(s.target.active_commands(), 0);
        assert_eq!(s.isp.commands_in_flight(), 0);
        iocbs[0][0]
    };
    assert_eq!(read(true), read(false));
}
