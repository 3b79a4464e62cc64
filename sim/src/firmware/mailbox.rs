//! The mailbox engine (reference §3): one command at a time, taken on `hccr =
//! SET_HOST_INT`, answered after a modelled latency with `host_status = mb0 << 16 | B15 |
//! type` — type 0x01/0x02 while the boot ROM runs, 0x10/0x11 once EXECUTE_FIRMWARE
//! started the firmware.
//!
//! Commands and what the model checks (unlisted opcodes answer 0x4001 INVALID_COMMAND):
//!
//! | opcode | ROM | firmware | errors |
//! |---|---|---|---|
//! | 0x06 MAILBOX_REGISTER_TEST | ✓ | ✓ | — (echoes mb1..mb7) |
//! | 0x0B LOAD_RISC_RAM_EXTENDED | ✓ | — | 0x4006 length 0 or > 4 Mi words; 0x4002 DMA fault |
//! | 0x07 VERIFY_CHECKSUM | ✓ | — | 0x4005 nothing loaded there; 0x4010 sum ≠ 0 (mb1/mb2 = sum) |
//! | 0x02 EXECUTE_FIRMWARE | ✓ | — | 0x4005 nothing loaded; 0x4010 bad checksum |
//! | 0x08 GET_FIRMWARE_VERSION | — | ✓ | |
//! | 0x42 GET_RESOURCE_COUNTS | — | ✓ | |
//! | 0x28 / 0x38 GET / SET_FIRMWARE_OPTION | — | ✓ | |
//! | 0x60 / 0x48 (MID_)INITIALIZE_FIRMWARE | — | ✓ | 0x4005 already initialised; 0x4006 bad ICB; 0x4002 DMA fault |
//! | 0x69 GET_FIRMWARE_STATE | — | ✓ | |
//! | 0x20 GET_ADAPTER_ID | — | ✓ | 0x4005 + mb1 0x07 until the port is logged in to the fabric |
//! | 0x7C GET_ID_LIST | — | ✓ | 0x4005 before init |
//! | 0x64 GET_PORT_DATABASE | — | ✓ | 0x400A unknown handle |
//! | 0x6B GET_LINK_STATUS | — | ✓ | |
//! | 0x22 GET_RETRY_COUNT | — | ✓ | |
//! | 0x6F / 0x71 LOGIN / LOGOUT_FABRIC_PORT | — | ✓ | 0x4007 port id used (mb1 = its handle), 0x4008 handle used, 0x400A not logged in, 0x4005 rejected |
//! | 0x72 LINK_INITIALIZATION, 0x62 INITIATE_LIP | — | ✓ | link reset after completion |
//! | 0x14 STOP_FIRMWARE | — | ✓ | back to the ROM |
//! | 0x54 IOCB_COMMAND_A64 | — | ✓ | executes MARKER / LOGINOUT in place |

use core::time::Duration;
use std::sync::atomic::Ordering;

use rscst_fw::icb::{FwOptions1, FwOptions2, ICB_LEN, Icb, IcbRepr};
use rscst_fw::mailbox::{
    AdapterId, FirmwareState, FirmwareVersion, FwAttributes, MbMask, MbxCommand, MbxStatus,
    ResourceCounts, Topology,
};
use rscst_fw::port_db::{PORT_DATABASE_LEN, PortDatabase};
use rscst_fw::regs::{CtrlStatus, HccrStatus, IntType};
use rscst_fw::{NportHandle, PortId};

use super::{Firmware, FwEvent, MbxInFlight, Phase};
use crate::fault::InjectedFault;
use crate::sim::Ctx;
use crate::trace::TraceKind;
use crate::violation::ViolationKind;

/// The handle the HBA reports as its own (GET_ADAPTER_ID mb1).
pub(crate) const OWN_HANDLE: u16 = 0x0000;

/// Outcome of executing a command.
pub(crate) enum Exec {
    /// Done: status (mb0) and the other output registers; latency.
    Done([u16; 32], Duration),
    /// Completes later by itself (fabric login waits for the remote port).
    Deferred,
}

fn status(s: MbxStatus) -> [u16; 32] {
    let mut m = [0u16; 32];
    m[0] = s.into();
    m
}

fn error(s: MbxStatus, mb1: u16) -> [u16; 32] {
    let mut m = status(s);
    m[1] = mb1;
    m
}

impl Firmware {
    /// `hccr = SET_HOST_INT`.
    pub(crate) fn doorbell(&mut self, ctx: &mut Ctx<'_>) {
        if self.risc_reset || self.booting {
            // Latched in hccr B6; the ROM takes it when it is ready.
            self.doorbell_deferred = true;
            return;
        }
        if self.paused || self.halted {
            return; // a halted RISC answers nothing; the driver times out
        }
        let regs = ctx.shared.regs.mb_in_all();
        if self.mbx.is_some() {
            ctx.shared
                .violation(ViolationKind::MailboxWhileBusy { mb0: regs[0] });
            return;
        }
        let written = ctx.shared.regs.mb_written.swap(0, Ordering::AcqRel);
        if written != u32::MAX {
            ctx.shared.violation(ViolationKind::MailboxNotAllWritten {
                mb0: regs[0],
                missing: !written,
            });
        }
        ctx.shared
            .regs
            .hccr_status
            .fetch_and(!HccrStatus::HOST_INT.bits(), Ordering::AcqRel);
        ctx.shared.trace.record(
            ctx.now,
            TraceKind::MailboxCommand(rscst_fw::mailbox::Mailboxes(regs)),
        );
        self.stats.mailbox_commands += 1;
        if self.phase == Phase::Running && ctx.faults.mailbox_stall() {
            ctx.shared.trace.record(
                ctx.now,
                TraceKind::Fault(InjectedFault::MailboxStall { mb0: regs[0] }),
            );
            self.mbx = Some(MbxInFlight {
                regs,
                result: None,
                stalled: true,
            });
            return;
        }
        let rom = self.phase == Phase::Rom;
        self.mbx = Some(MbxInFlight {
            regs,
            result: None,
            stalled: false,
        });
        match self.exec(ctx, &regs) {
            Exec::Done(out, extra) => {
                let ok = out[0] == u16::from(MbxStatus::CommandComplete);
                // EXECUTE_FIRMWARE is answered by the firmware it started.
                let t = match (rom && self.phase == Phase::Rom, ok) {
                    (true, true) => IntType::RomMbxOk,
                    (true, false) => IntType::RomMbxFail,
                    (false, true) => IntType::MbxOk,
                    (false, false) => IntType::MbxFail,
                };
                if let Some(m) = self.mbx.as_mut() {
                    m.result = Some((t, out));
                }
                let base = if rom {
                    self.cfg.timing.rom_mailbox
                } else {
                    self.cfg.timing.fw_mailbox
                };
                self.at(ctx, base + extra, FwEvent::MailboxDone);
            }
            Exec::Deferred => {}
        }
    }

    /// Completes a deferred command now.
    pub(crate) fn complete_deferred(&mut self, ctx: &mut Ctx<'_>, out: [u16; 32]) {
        let Some(m) = self.mbx.as_mut() else { return };
        if m.result.is_some() || m.stalled {
            return;
        }
        let ok = out[0] == u16::from(MbxStatus::CommandComplete);
        m.result = Some((if ok { IntType::MbxOk } else { IntType::MbxFail }, out));
        self.mailbox_done(ctx);
    }

    pub(crate) fn mailbox_done(&mut self, ctx: &mut Ctx<'_>) {
        let Some(m) = self.mbx.as_ref() else { return };
        let Some((t, out)) = m.result else { return };
        let cmd = MbxCommand::from(m.regs[0]);
        let generation = ctx.shared.chip.generation();
        let mask = cmd
            .registers(generation)
            .map(|r| r.outputs)
            .unwrap_or(MbMask::of(&[0]))
            .with(MbMask::of(&[0, 1]));
        self.causes.mbx = Some((t, out, mask));
        self.try_post(ctx);
        // What happens after the completion is posted.
        if cmd == MbxCommand::StopFirmware && t == IntType::MbxOk {
            self.stop_firmware(ctx);
        }
    }

    pub(crate) fn exec(&mut self, ctx: &mut Ctx<'_>, mb: &[u16; 32]) -> Exec {
        let cmd = MbxCommand::from(mb[0]);
        let rom = self.phase == Phase::Rom;
        let z = Duration::ZERO;
        let done = |m| Exec::Done(m, Duration::ZERO);
        match cmd {
            MbxCommand::MailboxRegisterTest => {
                let mut out = status(MbxStatus::CommandComplete);
                out[1..8].copy_from_slice(&mb[1..8]);
                done(out)
            }
            MbxCommand::LoadRiscRamExtended if rom => self.load_risc_ram(ctx, mb),
            MbxCommand::VerifyChecksum if rom => {
                let addr = (mb[1] as u32) << 16 | mb[2] as u32;
                done(match self.ram.segment(addr) {
                    None => error(MbxStatus::CommandError, 0),
                    Some((_, 0)) => status(MbxStatus::CommandComplete),
                    Some((_, sum)) => {
                        let mut m = status(MbxStatus::ChecksumError);
                        m[1] = sum as u16;
                        m[2] = (sum >> 16) as u16;
                        m
                    }
                })
            }
            MbxCommand::ExecuteFirmware if rom => {
                let addr = (mb[1] as u32) << 16 | mb[2] as u32;
                done(match self.ram.segment(addr) {
                    None => error(MbxStatus::CommandError, 0),
                    Some((_, sum)) if sum != 0 => {
                        let mut m = status(MbxStatus::ChecksumError);
                        m[1] = sum as u16;
                        m[2] = (sum >> 16) as u16;
                        m
                    }
                    Some(_) => {
                        self.start_firmware(ctx, addr);
                        status(MbxStatus::CommandComplete)
                    }
                })
            }
            _ if rom => done(status(MbxStatus::InvalidCommand)),
            MbxCommand::GetFirmwareVersion => {
                let v = self.version.unwrap_or(FirmwareVersion {
                    major: 0,
                    minor: 0,
                    subminor: 0,
                    memory_size: 0,
                    attributes: FwAttributes::empty(),
                    attributes_high: 0,
                    extended_attributes: 0,
                });
                done(v.to_mailboxes().0)
            }
            MbxCommand::GetResourceCounts => {
                let total = self.xchg.capacity();
                let free = self.xchg.free_count();
                let rc = ResourceCounts {
                    orig_target_exchanges: total,
                    cur_target_exchanges: free,
                    cur_exchanges: free,
                    orig_exchanges: total,
                    cur_iocbs: self.cfg.iocb_count,
                    orig_iocbs: self.cfg.iocb_count,
                    max_vports: 0,
                    max_fcfs: 0,
                };
                done(rc.to_mailboxes().0)
            }
            MbxCommand::GetFirmwareOption => {
                let mut out = status(MbxStatus::CommandComplete);
                out[1..4].copy_from_slice(&self.fw_options);
                done(out)
            }
            MbxCommand::SetFirmwareOption => {
                self.fw_options.copy_from_slice(&mb[1..4]);
                done(status(MbxStatus::CommandComplete))
            }
            MbxCommand::InitializeFirmware | MbxCommand::MidInitializeFirmware => {
                let m = self.initialize(ctx, mb);
                Exec::Done(m, self.cfg.timing.init_firmware)
            }
            MbxCommand::GetFirmwareState => {
                let mut out = status(MbxStatus::CommandComplete);
                out[1] = self.state.into();
                done(out)
            }
            MbxCommand::GetAdapterId => {
                if !self.link.logged_in {
                    return done(error(
                        MbxStatus::CommandError,
                        rscst_fw::mailbox::ADAPTER_ID_LOOP_TRANSITION,
                    ));
                }
                let a = AdapterId {
                    nport_handle: NportHandle(OWN_HANDLE),
                    port_id: self.link.port_id,
                    topology: Topology::FPort,
                    switch_capabilities: 0,
                };
                done(a.to_mailboxes().0)
            }
            MbxCommand::GetIdList => {
                if self.rings.is_none() {
                    return done(error(MbxStatus::CommandError, 0));
                }
                let dma = dma_addr(mb);
                let mut buf = Vec::new();
                for p in self.ports.iter().filter(|p| p.state_logged_in()) {
                    let le = p.port_id.to_le_bytes();
                    let h = p.handle.to_le_bytes();
                    buf.extend_from_slice(&[le[0], le[1], le[2], 0, h[0], h[1], 0, 0]);
                }
                if !buf.is_empty() && !ctx.dma_write(dma, &buf, "GET_ID_LIST buffer") {
                    return done(status(MbxStatus::HostInterfaceError));
                }
                let mut out = status(MbxStatus::CommandComplete);
                out[1] = (buf.len() / 8) as u16;
                done(out)
            }
            MbxCommand::GetPortDatabase => {
                let Some(p) = self.ports.get(mb[1]) else {
                    return done(error(MbxStatus::NotLoggedIn, 0));
                };
                let repr = p.port_database();
                let mut buf = [0u8; PORT_DATABASE_LEN];
                if repr
                    .emit(&mut PortDatabase::new_unchecked(&mut buf[..]))
                    .is_err()
                {
                    return done(status(MbxStatus::CommandError));
                }
                if !ctx.dma_write(dma_addr(mb), &buf, "GET_PORT_DATABASE buffer") {
                    return done(status(MbxStatus::HostInterfaceError));
                }
                done(status(MbxStatus::CommandComplete))
            }
            MbxCommand::GetLinkStatus => {
                let l = &self.link;
                let counters = [
                    l.link_failures,
                    l.loss_of_sync,
                    0,
                    0,
                    0,
                    l.invalid_crc,
                    l.lip_count,
                    l.link_up_count,
                ];
                let buf: Vec<u8> = counters.iter().flat_map(|c| c.to_le_bytes()).collect();
                if !ctx.dma_write(dma_addr(mb), &buf, "GET_LINK_STATUS buffer") {
                    return done(status(MbxStatus::HostInterfaceError));
                }
                done(status(MbxStatus::CommandComplete))
            }
            MbxCommand::GetRetryCount => {
                let mut out = status(MbxStatus::CommandComplete);
                out[1] = 8; // retry count
                out[3] = 200; // R_A_TOV = mb3 / 2 = 100 (100 ms units)
                done(out)
            }
            MbxCommand::LoginFabricPort => self.mbx_login_fabric_port(ctx, mb),
            MbxCommand::LogoutFabricPort => done(self.mbx_logout_fabric_port(ctx, mb)),
            MbxCommand::LinkInitialization | MbxCommand::InitiateLip => {
                if self.rings.is_none() {
                    return done(error(MbxStatus::CommandError, 0));
                }
                // The link reset follows the completion.
                ctx.queue.push(
                    ctx.now + self.cfg.timing.fw_mailbox + z,
                    crate::sim::Event::Fault(crate::fault::ScheduledFault::Lip),
                );
                done(status(MbxStatus::CommandComplete))
            }
            MbxCommand::StopFirmware => done(status(MbxStatus::CommandComplete)),
            MbxCommand::IocbCommandA64 => self.mbx_execute_iocb(ctx, dma_addr(mb)),
            _ => done(status(MbxStatus::InvalidCommand)),
        }
    }

    fn load_risc_ram(&mut self, ctx: &mut Ctx<'_>, mb: &[u16; 32]) -> Exec {
        let risc = (mb[8] as u32) << 16 | mb[1] as u32;
        let words = (mb[4] as u32) << 16 | mb[5] as u32;
        if words == 0 || words > 0x0040_0000 {
            return Exec::Done(status(MbxStatus::CommandParameterError), Duration::ZERO);
        }
        let mut buf = vec![0u8; words as usize * 4];
        if !ctx.dma_read(dma_addr(mb), &mut buf, "LOAD_RISC_RAM chunk") {
            return Exec::Done(status(MbxStatus::HostInterfaceError), Duration::ZERO);
        }
        let ws: Vec<u32> = buf
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        self.ram.write(risc, &ws);
        let kib = (words as u64 * 4).div_ceil(1024);
        let extra = self
            .cfg
            .timing
            .load_per_kib
            .saturating_mul(u32::try_from(kib).unwrap_or(u32::MAX));
        Exec::Done(status(MbxStatus::CommandComplete), extra)
    }

    fn start_firmware(&mut self, ctx: &mut Ctx<'_>, addr: u32) {
        let w = |i: u32| self.ram.read(addr.wrapping_add(i)).unwrap_or(0);
        let mut attrs = FwAttributes::from_bits_retain(w(7) as u16);
        if ctx.shared.chip.has_mq_bar() {
            attrs.insert(FwAttributes::MULTIQUEUE);
        }
        self.version = Some(FirmwareVersion {
            major: w(4) as u16,
            minor: w(5) as u16,
            subminor: w(6) as u16,
            memory_size: 0x0010_0000,
            attributes: attrs,
            attributes_high: 0,
            extended_attributes: 0,
        });
        self.phase = Phase::Running;
        self.state = FirmwareState::ConfigWait;
        ctx.shared
            .regs
            .ctrl_status
            .fetch_or(CtrlStatus::DMA_ACTIVE.bits(), Ordering::AcqRel);
        ctx.shared
            .trace
            .record(ctx.now, TraceKind::Chip("firmware started"));
    }

    fn stop_firmware(&mut self, ctx: &mut Ctx<'_>) {
        self.phase = Phase::Rom;
        self.version = None;
        self.rings = None;
        self.icb = None;
        self.state = FirmwareState::ConfigWait;
        for l in &ctx.shared.ring_len {
            l.store(0, Ordering::Release);
        }
        self.xchg.clear();
        self.ports.clear();
        if self.link.logged_in {
            ctx.fabric_logout_hba = true;
        }
        self.link.logged_in = false;
        self.link.flogi = None;
        ctx.shared
            .trace
            .record(ctx.now, TraceKind::Chip("firmware stopped"));
    }

    fn initialize(&mut self, ctx: &mut Ctx<'_>, mb: &[u16; 32]) -> [u16; 32] {
        if self.rings.is_some() {
            return error(MbxStatus::CommandError, 0);
        }
        let mut buf = [0u8; ICB_LEN];
        if !ctx.dma_read(dma_addr(mb), &mut buf, "ICB") {
            return status(MbxStatus::HostInterfaceError);
        }
        let variant = ctx.shared.chip.gen_info().icb;
        let Ok(icb) = IcbRepr::parse(&Icb::new_unchecked(&buf[..]), variant) else {
            return status(MbxStatus::CommandParameterError);
        };
        if let Err(why) = validate_icb(&icb) {
            ctx.shared.trace.record(ctx.now, TraceKind::Chip(why));
            return error(MbxStatus::CommandParameterError, 0);
        }
        let rings = super::Rings::new(&icb);
        for (i, len) in [
            icb.request_q.length,
            icb.response_q.length,
            icb.atio_q.length,
        ]
        .iter()
        .enumerate()
        {
            ctx.shared.ring_len[i].store(*len as u32, Ordering::Release);
        }
        use crate::device::Qp;
        ctx.shared.regs.set_qp(Qp::ReqOut, rings.req_out as u32);
        ctx.shared.regs.set_qp(Qp::RspIn, rings.rsp_in as u32);
        ctx.shared.regs.set_qp(Qp::AtioIn, rings.atio_in as u32);
        self.rings = Some(rings);
        let want = if icb.exchange_count == 0 || icb.exchange_count == 0xFFFF {
            self.cfg.exchange_count
        } else {
            icb.exchange_count.min(self.cfg.exchange_count)
        };
        self.xchg = super::Exchanges::new(want);
        self.icb = Some(icb);
        ctx.shared
            .trace
            .record(ctx.now, TraceKind::Chip("firmware initialized"));
        if self.link.cable {
            self.state = FirmwareState::WaitLogin;
            let t = self.cfg.timing.init_firmware + self.cfg.timing.link_init;
            self.at(ctx, t, FwEvent::LinkInit);
        } else {
            self.state = FirmwareState::LossOfSync;
        }
        let mut out = status(MbxStatus::CommandComplete);
        out[1] = 0;
        out[2] = 0;
        out
    }

    /// Target mode enabled in the ICB.
    pub(crate) fn target_mode(&self) -> bool {
        self.icb
            .as_ref()
            .is_some_and(|i| i.firmware_options_1.contains(FwOptions1::TARGET_MODE))
    }

    /// Target PRLI control (ICB fw options 2 B14): logins are reported and wait for
    /// NOTIFY_ACK.
    pub(crate) fn prli_control(&self) -> bool {
        self.icb.as_ref().is_some_and(|i| {
            i.firmware_options_2
                .contains(FwOptions2::TARGET_PRLI_CONTROL)
        })
    }

    /// Largest frame payload we send (ICB frame size).
    pub(crate) fn frame_size(&self) -> usize {
        self.icb
            .as_ref()
            .map(|i| i.frame_payload_size as usize)
            .unwrap_or(2048)
            .clamp(256, 2112)
    }

    /// ABTS_RECV goes to the ATIO queue (SET_FIRMWARE_OPTION word 2 B11 on MQ chips).
    pub(crate) fn abts_on_atio(&self, ctx: &Ctx<'_>) -> bool {
        ctx.shared.chip.generation().is_mq_chip() && self.fw_options[1] & (1 << 11) != 0
    }

    /// The HBA's own port id (zero before fabric login).
    pub(crate) fn own_pid(&self) -> PortId {
        self.link.port_id
    }
}

fn dma_addr(mb: &[u16; 32]) -> u64 {
    rscst_fw::mailbox::Mailboxes(*mb).dma_addr()
}

fn validate_icb(icb: &IcbRepr) -> Result<(), &'static str> {
    if icb.version != rscst_fw::icb::ICB_VERSION {
        return Err("INITIALIZE_FIRMWARE: ICB version not 1");
    }
    if icb.request_q.length < 2 || icb.request_q.address == 0 {
        return Err("INITIALIZE_FIRMWARE: no request queue");
    }
    if icb.response_q.length < 2 || icb.response_q.address == 0 {
        return Err("INITIALIZE_FIRMWARE: no response queue");
    }
    if icb.firmware_options_1.contains(FwOptions1::TARGET_MODE)
        && (icb.atio_q.length < 2 || icb.atio_q.address == 0)
    {
        return Err("INITIALIZE_FIRMWARE: target mode without an ATIO queue");
    }
    if !(256..=2112).contains(&icb.frame_payload_size) {
        return Err("INITIALIZE_FIRMWARE: frame payload size outside 256..2112");
    }
    if icb.firmware_options_2.bits() & (3 << 29) != 0 {
        return Err("INITIALIZE_FIRMWARE: shadow indexes (fw options 2 B29/B30) are not modelled");
    }
    Ok(())
}
