//! Bring-up as a resumable state machine driven by `poll(now)`.
//!
//! Reference §3.5: chip reset (DMA shutdown, soft reset, wait for mb0 and
//! the reset bit, RISC reset/release, wait for the boot ROM), mailbox
//! register test, firmware load (LOAD_RISC_RAM_EXTENDED per chunk, from an
//! image or from flash), VERIFY_CHECKSUM, EXECUTE_FIRMWARE, GET_FIRMWARE_VERSION,
//! GET_RESOURCE_COUNTS, ring initialisation, SET_FIRMWARE_OPTION,
//! INITIALIZE_FIRMWARE with a target-mode ICB, interrupts on, wait for
//! firmware ready, MARKER, GET_ADAPTER_ID. Each step either completes at
//! once or says when to look again; nothing blocks. Any failure (a register
//! that never settles, a mailbox error or timeout) leads to a backoff that
//! doubles per attempt (bounded), then a full reset and a new attempt.

use core::fmt;
use core::time::Duration;

use rscst_core::Instant;
use rscst_fw::icb::{Icb, IcbRepr, RingConfig};
use rscst_fw::mailbox::{
    ADAPTER_ID_LOOP_TRANSITION, ADAPTER_ID_NEEDS_LINK_INIT, AdapterId, ExecuteOptions,
    FirmwareState, FirmwareVersion, Mailboxes, MbMask, MbxStatus, REGISTER_TEST_PATTERN,
    ResourceCounts,
};
use rscst_fw::regs::{self as r, CtrlStatus, HccrCommand, Ictrl};
use rscst_hba::{DmaRegion, Platform};

use super::{Isp, hw};
use crate::core_api::CoreApi;
use crate::event::{BringUpError, Event, ResetReason};
use crate::firmware::{FirmwareSource, SEGMENTS, Segment, segment_from_header};
use crate::mailbox::MbxError;
use crate::ring::{AtioRing, ENTRY_LEN, RequestRing, ResponseRing};

/// Where the port is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Chip reset in progress.
    Resetting,
    /// Firmware being loaded and verified.
    LoadingFirmware,
    /// Firmware started; options and rings being set up.
    Initializing,
    /// Waiting for the firmware to report ready (link up).
    WaitingForReady,
    /// Running: rings live, commands flow (the link may still be down).
    Online,
    /// A bring-up attempt failed; waiting before the next one.
    Backoff,
    /// Stopped for good (a configuration error).
    Failed,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Resetting => "resetting",
            Phase::LoadingFirmware => "loading firmware",
            Phase::Initializing => "initializing",
            Phase::WaitingForReady => "waiting for firmware ready",
            Phase::Online => "online",
            Phase::Backoff => "backoff",
            Phase::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Start,
    DmaShutdown { deadline: Instant },
    SoftReset { not_before: Instant },
    WaitMb0 { deadline: Instant },
    WaitResetClear { deadline: Instant },
    RiscRelease { not_before: Instant },
    WaitRom { deadline: Instant },
    RegisterTest,
    FlashHeader { seg: u8 },
    LoadChunk { seg: u8, done: u32 },
    VerifyChecksum,
    Execute,
    AboutFirmware,
    ResourceCounts,
    SetOptions,
    InitFirmware,
    WaitReady { next: Instant, deadline: Instant },
    Marker,
    AdapterId { next: Instant, attempts: u8 },
    LinkInit,
    Online,
    Backoff { until: Instant },
    Fatal(&'static str),
}

/// State of the bring-up.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BringUp {
    pub(crate) step: Step,
    /// The current step's mailbox command has been posted.
    posted: bool,
    /// Dwords of the current chunk staged in the bounce buffer (flash path).
    staged: u32,
    attempt: u32,
    segments: [Option<Segment>; SEGMENTS],
}

impl BringUp {
    pub(crate) fn new() -> BringUp {
        BringUp {
            step: Step::Start,
            posted: false,
            staged: 0,
            attempt: 0,
            segments: [None; SEGMENTS],
        }
    }

    pub(crate) fn phase(&self) -> Phase {
        match self.step {
            Step::Start
            | Step::DmaShutdown { .. }
            | Step::SoftReset { .. }
            | Step::WaitMb0 { .. }
            | Step::WaitResetClear { .. }
            | Step::RiscRelease { .. }
            | Step::WaitRom { .. }
            | Step::RegisterTest => Phase::Resetting,
            Step::FlashHeader { .. } | Step::LoadChunk { .. } | Step::VerifyChecksum => {
                Phase::LoadingFirmware
            }
            Step::Execute
            | Step::AboutFirmware
            | Step::ResourceCounts
            | Step::SetOptions
            | Step::InitFirmware => Phase::Initializing,
            Step::WaitReady { .. } | Step::Marker | Step::AdapterId { .. } | Step::LinkInit => {
                Phase::WaitingForReady
            }
            Step::Online => Phase::Online,
            Step::Backoff { .. } => Phase::Backoff,
            Step::Fatal(_) => Phase::Failed,
        }
    }

    /// The next time a waiting step wants to look again.
    pub(crate) fn wake_at(&self) -> Option<Instant> {
        match self.step {
            Step::DmaShutdown { deadline }
            | Step::WaitMb0 { deadline }
            | Step::WaitResetClear { deadline }
            | Step::WaitRom { deadline } => Some(deadline),
            Step::SoftReset { not_before } | Step::RiscRelease { not_before } => Some(not_before),
            Step::WaitReady { next, .. } | Step::AdapterId { next, .. } => Some(next),
            Step::Backoff { until } => Some(until),
            Step::Online | Step::Fatal(_) => None,
            _ => None,
        }
    }

    /// Whether the current step's mailbox command is outstanding.
    pub(crate) fn is_posted(&self) -> bool {
        self.posted
    }

    pub(crate) fn fatal(&mut self, why: &'static str) {
        self.step = Step::Fatal(why);
    }

    /// Start over at the chip reset (keeps the attempt count).
    pub(crate) fn restart(&mut self) {
        if !matches!(self.step, Step::Fatal(_)) {
            self.step = Step::Start;
        }
        self.posted = false;
        self.staged = 0;
    }

    fn go(&mut self, step: Step) {
        self.step = step;
        self.posted = false;
        self.staged = 0;
    }
}

/// Polls of a register with no progress before the flash read is retried at
/// the next `poll` (a flash dword takes microseconds on hardware).
const FLASH_SPINS: u32 = 64;
/// Flash dwords read per `poll` at most.
const FLASH_DWORDS_PER_POLL: u32 = 4096;

impl<'s, P: Platform, const REQ: usize, const RSP: usize, const ATIO: usize>
    Isp<'s, P, REQ, RSP, ATIO>
{
    /// Post `mb` once; on later calls return its outcome when it arrives.
    fn mbx_step(&mut self, mb: &Mailboxes, extra: MbMask) -> Option<Result<Mailboxes, MbxError>> {
        if !self.up.posted {
            let regs = regs!(self);
            if self
                .mbx
                .post(&regs, self.now, mb, extra, self.config.mailbox_timeout)
            {
                self.up.posted = true;
            }
            return None;
        }
        let (_, res) = self.mbx.take()?;
        self.up.posted = false;
        Some(res)
    }

    fn fail(&mut self, error: BringUpError) {
        let shift = self.up.attempt.min(16);
        let retry_in = self
            .config
            .backoff_initial
            .saturating_mul(1u32 << shift)
            .min(self.config.backoff_max);
        self.up.attempt = self.up.attempt.saturating_add(1);
        self.event(Event::BringUpFailed { error, retry_in });
        // Quiesce the chip while waiting: interrupts off.
        regs!(self).write(r::ICTRL, 0);
        self.up.go(Step::Backoff {
            until: self.now.saturating_add(retry_in),
        });
    }

    fn after(&self, d: Duration) -> Instant {
        self.now.saturating_add(d)
    }

    /// Run bring-up steps until one has to wait. Returns whether anything
    /// happened.
    #[cold]
    #[inline(never)]
    pub(crate) fn step_bringup<C: CoreApi>(&mut self, core: &mut C) -> bool {
        let mut progressed = false;
        for _ in 0..32 {
            let before = (self.up.step, self.up.posted, self.up.staged);
            self.bringup_once(core);
            if (self.up.step, self.up.posted, self.up.staged) == before {
                break;
            }
            progressed = true;
            if matches!(self.up.step, Step::Online | Step::Fatal(_)) {
                break;
            }
        }
        progressed
    }

    fn bringup_once<C: CoreApi>(&mut self, core: &mut C) {
        let now = self.now;
        let timeout = self.config.reset_timeout;
        match self.up.step {
            Step::Start => {
                self.stats.resets += 1;
                if self.stats.resets == 1 {
                    self.event(Event::Reset(ResetReason::Probe));
                }
                let regs = regs!(self);
                regs.write(r::ICTRL, 0);
                regs.write(r::CTRL_STATUS, CtrlStatus::RESET_STEP_DMA_SHUTDOWN.bits());
                self.up.go(Step::DmaShutdown {
                    deadline: self.after(timeout),
                });
            }
            Step::DmaShutdown { deadline } => {
                let cs = CtrlStatus::from_bits_retain(regs!(self).read(r::CTRL_STATUS));
                if !cs.contains(CtrlStatus::DMA_ACTIVE) {
                    regs!(self).write(r::CTRL_STATUS, CtrlStatus::RESET_STEP_SOFT_RESET.bits());
                    self.up.go(Step::SoftReset {
                        not_before: self.after(Duration::from_micros(100)),
                    });
                } else if now >= deadline {
                    self.fail(BringUpError::RegisterTimeout("DMA shutdown"));
                }
            }
            Step::SoftReset { not_before } => {
                if now >= not_before {
                    self.up.go(Step::WaitMb0 {
                        deadline: self.after(timeout),
                    });
                }
            }
            Step::WaitMb0 { deadline } => {
                if regs!(self).mailbox(0) == 0 {
                    self.up.go(Step::WaitResetClear {
                        deadline: self.after(timeout),
                    });
                } else if now >= deadline {
                    self.fail(BringUpError::RegisterTimeout("mailbox 0 after soft reset"));
                }
            }
            Step::WaitResetClear { deadline } => {
                let cs = CtrlStatus::from_bits_retain(regs!(self).read(r::CTRL_STATUS));
                if !cs.contains(CtrlStatus::SOFT_RESET) {
                    let regs = regs!(self);
                    regs.hccr(HccrCommand::SetRiscReset);
                    regs.hccr_read();
                    regs.hccr(HccrCommand::ReleaseRiscPause);
                    regs.hccr_read();
                    regs.hccr(HccrCommand::ClearRiscReset);
                    self.mbx.reset();
                    self.up.go(Step::RiscRelease {
                        not_before: self.after(Duration::from_millis(10)),
                    });
                } else if now >= deadline {
                    self.fail(BringUpError::RegisterTimeout("soft reset bit"));
                }
            }
            Step::RiscRelease { not_before } => {
                if now >= not_before {
                    self.up.go(Step::WaitRom {
                        deadline: self.after(timeout),
                    });
                }
            }
            Step::WaitRom { deadline } => {
                if regs!(self).mailbox(0) == 0 {
                    self.up.go(Step::RegisterTest);
                } else if now >= deadline {
                    self.fail(BringUpError::RegisterTimeout("boot ROM ready"));
                }
            }
            Step::RegisterTest => {
                let mb = Mailboxes::mailbox_register_test();
                match self.mbx_step(&mb, MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(out)) => {
                        let echoed = (1..8).all(|n| out.get(n) == REGISTER_TEST_PATTERN[n - 1]);
                        if echoed {
                            self.up.segments = [None; SEGMENTS];
                            match self.config.firmware {
                                FirmwareSource::Image(_) => {
                                    if let Some(img) = self.image {
                                        self.up.segments =
                                            [Some(img.segments()[0]), Some(img.segments()[1])];
                                    }
                                    self.up.go(Step::LoadChunk { seg: 0, done: 0 });
                                }
                                FirmwareSource::Flash { .. } => {
                                    self.up.go(Step::FlashHeader { seg: 0 })
                                }
                            }
                        } else {
                            self.fail(BringUpError::RegisterTestMismatch);
                        }
                    }
                }
            }
            Step::FlashHeader { seg } => self.flash_header(seg),
            Step::LoadChunk { seg, done } => self.load_chunk(core, seg, done),
            Step::VerifyChecksum => {
                let start = self.start_address();
                match self.mbx_step(&Mailboxes::verify_checksum(start), MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(_)) => self.up.go(Step::Execute),
                }
            }
            Step::Execute => {
                let start = self.start_address();
                let mb = Mailboxes::execute_firmware(start, ExecuteOptions::empty(), 0);
                match self.mbx_step(&mb, MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(_)) => self.up.go(Step::AboutFirmware),
                }
            }
            Step::AboutFirmware => {
                let mb = Mailboxes::new(rscst_fw::mailbox::MbxCommand::GetFirmwareVersion);
                match self.mbx_step(&mb, MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(out)) => {
                        self.fw.version = Some(FirmwareVersion::from_mailboxes(&out));
                        self.up.go(Step::ResourceCounts);
                    }
                }
            }
            Step::ResourceCounts => {
                let mb = Mailboxes::new(rscst_fw::mailbox::MbxCommand::GetResourceCounts);
                match self.mbx_step(&mb, MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(out)) => {
                        let rc = ResourceCounts::from_mailboxes(&out);
                        self.fw.resources = Some(rc);
                        let pct = self.config.busy_threshold_percent.clamp(1, 100) as usize;
                        let ex = rc.cur_exchanges as usize;
                        self.busy_threshold = if ex == 0 {
                            self.cmds.len()
                        } else {
                            (ex * pct / 100).clamp(1, self.cmds.len())
                        };
                        if let Some(version) = self.fw.version {
                            self.event(Event::FirmwareStarted {
                                generation: self.chip.generation(),
                                version,
                                exchanges: rc.cur_exchanges,
                            });
                        }
                        if let Err(e) = self.init_rings() {
                            self.fail(e);
                        } else {
                            self.up.go(Step::SetOptions);
                        }
                    }
                }
            }
            Step::SetOptions => {
                let words = self.option_words();
                if words == [0; 3] {
                    self.up.go(Step::InitFirmware);
                    return;
                }
                match self.mbx_step(&Mailboxes::set_firmware_option(words), MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(_)) => self.up.go(Step::InitFirmware),
                }
            }
            Step::InitFirmware => {
                let mb = Mailboxes::initialize_firmware(self.dma.icb.iova().0, false);
                match self.mbx_step(&mb, MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(_)) => {
                        regs!(self).write(r::ICTRL, Ictrl::ENABLE_RISC_INT.bits());
                        self.up.go(Step::WaitReady {
                            next: now,
                            deadline: self.after(self.config.ready_timeout),
                        });
                    }
                }
            }
            Step::WaitReady { next, deadline } => {
                if !self.up.posted && now < next {
                    return;
                }
                let mb = Mailboxes::new(rscst_fw::mailbox::MbxCommand::GetFirmwareState);
                match self.mbx_step(&mb, MbMask(0)) {
                    None => {}
                    Some(Err(e)) => self.mailbox_failed(core, e),
                    Some(Ok(out)) => {
                        if FirmwareState::from(out.get(1)) == FirmwareState::Ready {
                            self.up.attempt = 0;
                            self.link_up = true;
                            self.up.go(Step::Marker);
                        } else if now >= deadline {
                            // No link: run anyway and wait for LOOP_UP.
                            self.up.attempt = 0;
                            self.link_up = false;
                            self.marker_needed = true;
                            self.event(Event::WaitingForLink);
                            self.up.go(Step::Online);
                        } else {
                            self.up.go(Step::WaitReady {
                                next: self.after(self.config.ready_poll),
                                deadline,
                            });
                        }
                    }
                }
            }
            Step::Marker => {
                if self.post_marker() {
                    self.up.go(Step::AdapterId {
                        next: now,
                        attempts: 0,
                    });
                } else {
                    self.fail(BringUpError::RingFull);
                }
            }
            Step::AdapterId { next, attempts } => {
                if !self.up.posted && now < next {
                    return;
                }
                match self.mbx_step(&Mailboxes::get_adapter_id(0), MbMask(0)) {
                    None => {}
                    Some(Ok(out)) => {
                        self.adapter_id(AdapterId::from_mailboxes(&out));
                        self.up.go(Step::Online);
                    }
                    Some(Err(MbxError::Status {
                        status: MbxStatus::CommandError,
                        mb1,
                        ..
                    })) if mb1 == ADAPTER_ID_NEEDS_LINK_INIT && attempts < 4 => {
                        self.up.go(Step::LinkInit);
                    }
                    Some(Err(MbxError::Status {
                        status: MbxStatus::CommandError,
                        mb1,
                        ..
                    })) if mb1 == ADAPTER_ID_LOOP_TRANSITION && attempts < 40 => {
                        self.up.go(Step::AdapterId {
                            next: self.after(self.config.ready_poll),
                            attempts: attempts + 1,
                        });
                    }
                    Some(Err(MbxError::Timeout { cmd })) => {
                        self.mailbox_failed(core, MbxError::Timeout { cmd })
                    }
                    Some(Err(_)) => {
                        // Running, but the link is not usable: wait for LOOP_UP.
                        self.link_up = false;
                        self.marker_needed = true;
                        self.event(Event::WaitingForLink);
                        self.up.go(Step::Online);
                    }
                }
            }
            Step::LinkInit => {
                match self.mbx_step(&Mailboxes::link_initialization(false, 0), MbMask(0)) {
                    None => {}
                    Some(Err(MbxError::Timeout { cmd })) => {
                        self.mailbox_failed(core, MbxError::Timeout { cmd })
                    }
                    Some(_) => self.up.go(Step::AdapterId {
                        next: self.after(self.config.ready_poll),
                        attempts: 4,
                    }),
                }
            }
            Step::Online | Step::Fatal(_) => {}
            Step::Backoff { until } => {
                if now >= until {
                    self.event(Event::Reset(ResetReason::BringUpRetry));
                    self.up.go(Step::Start);
                }
            }
        }
    }

    /// A mailbox command of the bring-up failed: a timeout means the
    /// firmware is gone (reset now); an error status fails the attempt.
    fn mailbox_failed<C: CoreApi>(&mut self, _core: &mut C, e: MbxError) {
        self.fail(BringUpError::Mailbox(e));
    }

    /// Learn our id from GET_ADAPTER_ID and announce the port.
    pub(crate) fn adapter_id(&mut self, id: AdapterId) {
        self.fw.port_id = id.port_id;
        self.fw.topology = Some(id.topology);
        self.link_up = true;
        self.event(Event::Online {
            port_id: id.port_id,
            topology: id.topology,
        });
    }

    fn start_address(&self) -> u32 {
        self.up.segments[0].map_or(rscst_fw::pci::RISC_START_ADDRESS, |s| s.risc_addr)
    }

    /// Read dword `addr` of the flash data region through flash_addr/flash_data
    /// (reference §2.4). `None` if the chip has not answered within a few
    /// register reads (try again at the next poll).
    fn flash_dword(&self, dword_addr: u32) -> Option<u32> {
        let regs = regs!(self);
        let addr = self.chip.gen_info.flash_data_base.wrapping_add(dword_addr);
        regs.write(r::FLASH_ADDR, addr & !r::FLASH_ADDR_DATA_FLAG);
        for _ in 0..FLASH_SPINS {
            if regs.read(r::FLASH_ADDR) & r::FLASH_ADDR_DATA_FLAG != 0 {
                return Some(regs.read(r::FLASH_DATA));
            }
        }
        None
    }

    fn flash_base(&self) -> u32 {
        match self.config.firmware {
            FirmwareSource::Flash { dword_offset } => dword_offset,
            FirmwareSource::Image(_) => 0,
        }
    }

    fn flash_header(&mut self, seg: u8) {
        let image_dword = if seg == 0 {
            0
        } else {
            self.up.segments[0].map_or(0, |s| s.dwords)
        };
        let base = self.flash_base().wrapping_add(image_dword);
        let mut hdr = [0u32; 4];
        for (k, h) in hdr.iter_mut().enumerate() {
            match self.flash_dword(base + k as u32) {
                Some(v) => *h = v,
                None => {
                    self.fail(BringUpError::RegisterTimeout("flash read"));
                    return;
                }
            }
        }
        match segment_from_header(seg as usize, image_dword, hdr) {
            Ok(s) => {
                self.up.segments[seg as usize] = Some(s);
                if (seg as usize) + 1 < SEGMENTS {
                    self.up.go(Step::FlashHeader { seg: seg + 1 });
                } else {
                    self.up.go(Step::LoadChunk { seg: 0, done: 0 });
                }
            }
            Err(e) => self.fail(BringUpError::Image(e)),
        }
    }

    /// Stage one chunk in the request ring's memory (the ring is not live
    /// yet; reference §3.5: chunks no larger than the ring) and load it.
    fn load_chunk<C: CoreApi>(&mut self, core: &mut C, seg: u8, done: u32) {
        let Some(s) = self.up.segments.get(seg as usize).copied().flatten() else {
            self.fail(BringUpError::Image(
                crate::firmware::ImageError::Truncated {
                    segment: seg as usize,
                },
            ));
            return;
        };
        let max_chunk = ((REQ * ENTRY_LEN) / 4) as u32;
        let chunk = (s.dwords - done).min(max_chunk);
        if !self.up.posted {
            if !self.stage_chunk(s, done, chunk) {
                return;
            }
            self.up.staged = 0;
        }
        let mb = Mailboxes::load_risc_ram_extended(
            s.risc_addr.wrapping_add(done),
            self.dma.req.iova().0,
            chunk,
        );
        match self.mbx_step(&mb, MbMask(0)) {
            None => {}
            Some(Err(e)) => self.mailbox_failed(core, e),
            Some(Ok(_)) => {
                let done = done + chunk;
                if done < s.dwords {
                    self.up.go(Step::LoadChunk { seg, done });
                } else if (seg as usize) + 1 < SEGMENTS {
                    self.up.go(Step::LoadChunk {
                        seg: seg + 1,
                        done: 0,
                    });
                } else {
                    self.up.go(Step::VerifyChecksum);
                }
            }
        }
    }

    /// Copy dwords `done .. done + chunk` of segment `s` into the bounce
    /// buffer as little-endian. Returns `true` when the chunk is complete.
    fn stage_chunk(&mut self, s: Segment, done: u32, chunk: u32) -> bool {
        let mut buf = [0u8; 256];
        let first = s.image_dword + done;
        let mut k = self.up.staged;
        let budget_end = match self.config.firmware {
            FirmwareSource::Image(_) => chunk,
            FirmwareSource::Flash { .. } => chunk.min(k + FLASH_DWORDS_PER_POLL),
        };
        while k < budget_end {
            let n = (budget_end - k).min(64);
            for j in 0..n {
                let d = first + k + j;
                let v = match self.config.firmware {
                    FirmwareSource::Image(_) => self.image.and_then(|i| i.dword(d)),
                    FirmwareSource::Flash { .. } => {
                        let v = self.flash_dword(self.flash_base().wrapping_add(d));
                        if v.is_none() {
                            // Not ready: keep what is staged, continue next poll.
                            self.up.staged = k + j;
                            return false;
                        }
                        v
                    }
                };
                let Some(v) = v else {
                    self.fail(BringUpError::Image(
                        crate::firmware::ImageError::Truncated { segment: 0 },
                    ));
                    return false;
                };
                let at = j as usize * 4;
                buf[at..at + 4].copy_from_slice(&v.to_le_bytes());
            }
            if self
                .dma
                .req
                .write(k as usize * 4, &buf[..n as usize * 4])
                .is_err()
            {
                self.fail(BringUpError::Dma);
                return false;
            }
            k += n;
        }
        self.up.staged = k;
        k >= chunk
    }

    /// SET_FIRMWARE_OPTION words (reference §5.4): exchange tracking where the
    /// generation supports it; ABTS/PUREX on the ATIO queue on 83xx and later.
    fn option_words(&self) -> [u16; 3] {
        let g = self.chip.gen_info;
        let mut w2 = 0u16;
        if g.exchange_tracking {
            w2 |= 1 << 4;
        }
        if g.abts_on_atio_queue {
            w2 |= 1 << 11;
        }
        [0, w2, 0]
    }

    /// Stamp the response and ATIO rings, zero the pointers, write the ICB.
    fn init_rings(&mut self) -> Result<(), BringUpError> {
        hw::stamp_all(&self.dma.rsp, RSP + 1).map_err(|_| BringUpError::Dma)?;
        hw::stamp_all(&self.dma.atio, ATIO + 1).map_err(|_| BringUpError::Dma)?;
        self.dma
            .req
            .fill(0, (REQ + 1) * ENTRY_LEN, 0)
            .map_err(|_| BringUpError::Dma)?;
        self.req = RequestRing::new();
        self.rsp = ResponseRing::new();
        self.atio = AtioRing::new();
        {
            use rscst_fw::regs::QueuePointer::*;
            let regs = regs!(self);
            for q in [
                RequestIn,
                RequestOut,
                ResponseIn,
                ResponseOut,
                AtioIn,
                AtioOut,
            ] {
                regs.set_queue_ptr(q, 0);
            }
        }
        let ring = |region: &<P::Dma as rscst_hba::DmaPool>::Region, len: usize| RingConfig {
            address: region.iova().0,
            length: len as u16,
        };
        let mut icb = IcbRepr::target_only(
            self.chip.gen_info,
            self.config.port_name,
            self.config.node_name,
            ring(&self.dma.req, REQ),
            ring(&self.dma.rsp, RSP),
            ring(&self.dma.atio, ATIO),
        );
        if let Some(rc) = self.fw.resources
            && rc.cur_exchanges != 0
        {
            icb.execution_throttle = rc.cur_exchanges;
        }
        if let Some(c) = self.config.connection {
            icb.firmware_options_2 = icb.firmware_options_2.with_connection_option(c);
        }
        let mut buf = [0u8; rscst_fw::icb::ICB_LEN];
        icb.emit(&mut Icb::new_unchecked(&mut buf[..]))
            .map_err(|_| BringUpError::Dma)?;
        self.dma.icb.write(0, &buf).map_err(|_| BringUpError::Dma)?;
        Ok(())
    }

    /// MARKER (type 0x04), modifier 2 = sync all, skip handle (reference §7.12).
    #[cold]
    #[inline(never)]
    pub(crate) fn post_marker(&mut self) -> bool {
        self.marker_needed = true;
        self.post(&[], 0)
    }
}
