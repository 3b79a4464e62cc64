//! EXTENDED COPY (LID1) and RECEIVE COPY RESULTS (SPC-4 6.4 and 6.18;
//! SPC-5 6.6 and 6.29), the copy manager of the target.
//!
//! Supported: the LID1 parameter list, identification descriptor CSCD
//! descriptors (E4h) naming our own LUs by their NAA designator (VPD page
//! 83h), and block device to block device segment descriptors (02h). The
//! whole parameter list is checked before any block moves; the copy then
//! runs as backend `Read` into the command's pool buffer and `Write` out of
//! it, a bounded chunk at a time, yielding to the other commands after each
//! chunk (`Step::Yield`), under the LBA-range interlock of the destination
//! chunk, and abortable between chunks like any command.
//!
//! Choices where the references leave room: a segment that names a CSCD
//! descriptor index beyond the list is COPY ABORTED, UNREACHABLE COPY
//! TARGET (08/04); a CSCD descriptor with NUL set or naming no LU this
//! initiator can see is COPY ABORTED, COPY TARGET DEVICE NOT REACHABLE
//! (0D/02); a segment beyond the capacity of its LU is COPY ABORTED with no
//! additional sense code, the segment pointer at the LOGICAL BLOCK ADDRESS
//! field and the segment index in COMMAND-SPECIFIC INFORMATION; an I/O
//! error while copying is COPY ABORTED, THIRD PARTY DEVICE FAILURE (0D/01).
//! Results are held (LIST ID USAGE 00b) only for copies that started.

use super::{CmdState, NIL, Step, Target, check};
use crate::backend::{Backend, IoKind};
use crate::cdb::{PrClass, be, be_at};
use crate::payload::Payload;
use crate::sense::{FieldPointer, SenseKey, SenseReason};
use crate::transport::{ScsiStatus, Transport};

/// Held copy results of a target (and concurrent identified copies).
pub const MAX_COPIES: usize = 8;
/// CSCD (target) descriptors one parameter list may carry.
pub(crate) const MAX_CSCD: usize = 8;
/// Segment descriptors one parameter list may carry.
pub(crate) const MAX_SEGMENTS: usize = 16;
/// Largest descriptor list (CSCD + segment descriptors), before the pool's limit.
const MAX_LIST: u64 = 1024;
/// Largest chunk moved per backend round trip.
const MAX_CHUNK: u64 = 256 * 1024;

const CSCD_LEN: usize = 32;
const B2B_LEN: usize = 28;

const S_RUN: u8 = 2;
const S_READ_DONE: u8 = 3;
const S_WRITE_DONE: u8 = 4;

fn invalid_param(byte: usize, bit: Option<u8>) -> SenseReason {
    SenseReason::InvalidFieldInParameterList(FieldPointer {
        byte: byte as u16,
        bit,
    })
}

fn illegal(asc: u8, ascq: u8) -> SenseReason {
    SenseReason::Other {
        key: SenseKey::IllegalRequest,
        asc,
        ascq,
    }
}

fn aborted(asc: u8, ascq: u8, segment: usize, field: Option<u16>) -> SenseReason {
    SenseReason::CopyAborted {
        asc,
        ascq,
        segment: segment as u16,
        field: field.map(FieldPointer::byte),
    }
}

/// Status of a held copy operation.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum CopyStatus {
    Running,
    Done,
    Failed,
}

/// The held results of one EXTENDED COPY (per I_T nexus and list identifier).
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyRec {
    pub session: u16,
    pub session_gen: u16,
    pub list_id: u8,
    pub status: CopyStatus,
    pub segments: u16,
    pub bytes: u64,
    /// The command running it (index, generation), while running.
    pub cmd: u16,
    pub cmd_gen: u16,
}

impl CopyRec {
    pub(crate) const EMPTY: CopyRec = CopyRec {
        session: NIL,
        session_gen: 0,
        list_id: 0,
        status: CopyStatus::Done,
        segments: 0,
        bytes: 0,
        cmd: NIL,
        cmd_gen: 0,
    };
}

/// A checked block-to-block segment.
#[derive(Clone, Copy, Debug)]
struct Segment {
    src: usize,
    dst: usize,
    src_lba: u64,
    dst_lba: u64,
    /// Source blocks.
    blocks: u64,
}

impl Target<'_> {
    /// MAXIMUM DESCRIPTOR LIST LENGTH: what the pool can hold besides a chunk.
    pub(crate) fn xcopy_max_list(&self) -> u64 {
        MAX_LIST.min(self.pool.capacity().saturating_sub(16 + 4096))
    }

    /// Bytes of the pool buffer before the copy chunk.
    fn xcopy_param_area(len: u64) -> u64 {
        len.div_ceil(4096) * 4096
    }

    /// The LU a CSCD descriptor at `at` names, if reachable by session `s`.
    fn xcopy_cscd_lu(&self, i: usize, at: usize) -> Result<Option<usize>, SenseReason> {
        let mut d = [0u8; CSCD_LEN];
        self.read_params(i, at, &mut d)?;
        if d[1] & 0x20 != 0 || d[1] & 0x1f != 0 {
            // NUL, or not a direct-access device.
            return Ok(None);
        }
        let (code_set, assoc_type, len) = (d[4] & 0x0f, d[5] & 0x3f, usize::from(d[7]));
        if code_set != 1 || assoc_type != 0x03 || !(len == 8 || len == 16) {
            return Ok(None);
        }
        let desig = &d[8..8 + len];
        let s = usize::from(self.cmds[i].session);
        let group = self.sessions.get(s).map_or(0, |x| x.group);
        let bs = be_at(&d, 29, 3);
        for (l, lu) in self.lus.iter().enumerate() {
            let naa_len = if lu.cfg.naa[0] >> 4 == 6 { 16 } else { 8 };
            if !lu.in_use || naa_len != len || &lu.cfg.naa[..len] != desig {
                continue;
            }
            if !self
                .group_map(group)
                .iter()
                .any(|e| e.in_use && usize::from(e.lu) == l)
            {
                return Ok(None);
            }
            if bs != u64::from(lu.cfg.block_size) {
                return Err(invalid_param(at + 29, None));
            }
            return Ok(Some(l));
        }
        Ok(None)
    }

    /// Check the whole parameter list of `n` bytes: the number of segments.
    fn xcopy_check(&mut self, i: usize, n: usize) -> Result<usize, SenseReason> {
        let mut h = [0u8; 16];
        if n < 16 {
            return Err(SenseReason::ParameterListLengthError);
        }
        self.read_params(i, 0, &mut h)?;
        let tdl = be_at(&h, 2, 2) as usize;
        let sdl = be_at(&h, 8, 4) as usize;
        let inline = be_at(&h, 12, 4) as usize;
        if (tdl + sdl) as u64 > self.xcopy_max_list() {
            return Err(SenseReason::ParameterListLengthError);
        }
        if 16 + tdl + sdl + inline > n {
            return Err(SenseReason::ParameterListLengthError);
        }
        match (h[1] >> 3) & 0x03 {
            0b00 | 0b10 => {}
            0b11 if h[0] == 0 => {}
            0b11 => return Err(invalid_param(0, None)),
            _ => return Err(invalid_param(1, Some(4))),
        }
        if inline != 0 {
            return Err(invalid_param(12, None));
        }
        if !tdl.is_multiple_of(CSCD_LEN) {
            return Err(invalid_param(2, None));
        }
        let ncscd = tdl / CSCD_LEN;
        if ncscd > MAX_CSCD {
            return Err(illegal(0x26, 0x06)); // TOO MANY TARGET DESCRIPTORS
        }
        // Count the segment descriptors first (TOO MANY wins over their contents).
        let (mut at, end, mut nseg) = (16 + tdl, 16 + tdl + sdl, 0);
        while at < end {
            let mut sh = [0u8; 4];
            self.read_params(i, at, &mut sh)?;
            at += 4 + be_at(&sh, 2, 2) as usize;
            nseg += 1;
        }
        if at != end {
            return Err(SenseReason::ParameterListLengthError);
        }
        if nseg > MAX_SEGMENTS {
            return Err(illegal(0x26, 0x08)); // TOO MANY SEGMENT DESCRIPTORS
        }
        for k in 0..ncscd {
            let at = 16 + k * CSCD_LEN;
            let mut d = [0u8; 2];
            self.read_params(i, at, &mut d)?;
            // The LU ID TYPE field (byte 1, bits 7-6) qualifies an LU
            // IDENTIFIER field, which the identification descriptor CSCD
            // (E4h) does not have: it names its LU by the designator, so the
            // field is ignored (libiscsi's ExtendedCopy.ValidTgtDescr expects
            // a copy with LU ID TYPE 11b to succeed on an SPC-4 target).
            if d[0] != 0xe4 {
                return Err(illegal(0x26, 0x07)); // UNSUPPORTED TARGET DESCRIPTOR TYPE CODE
            }
        }
        let mut at = 16 + tdl;
        for k in 0..nseg {
            let mut d = [0u8; 4];
            self.read_params(i, at, &mut d)?;
            if d[0] != 0x02 {
                return Err(illegal(0x26, 0x09)); // UNSUPPORTED SEGMENT DESCRIPTOR TYPE CODE
            }
            if be_at(&d, 2, 2) as usize != B2B_LEN - 4 {
                return Err(invalid_param(at + 2, None));
            }
            self.xcopy_segment(i, k, at, tdl)?;
            at += B2B_LEN;
        }
        Ok(nseg)
    }

    /// Segment `k` (its descriptor at `at`), checked against its LUs.
    fn xcopy_segment(
        &mut self,
        i: usize,
        k: usize,
        at: usize,
        tdl: usize,
    ) -> Result<Segment, SenseReason> {
        let mut d = [0u8; B2B_LEN];
        self.read_params(i, at, &mut d)?;
        let ncscd = tdl / CSCD_LEN;
        let (si, di) = (be_at(&d, 4, 2) as usize, be_at(&d, 6, 2) as usize);
        let lu_of = |t: &mut Self, idx: usize, field: u16| -> Result<usize, SenseReason> {
            if idx >= ncscd {
                return Err(aborted(0x08, 0x04, k, Some(field)));
            }
            t.xcopy_cscd_lu(i, 16 + idx * CSCD_LEN)?
                .ok_or(aborted(0x0d, 0x02, k, Some(field)))
        };
        let src = lu_of(self, si, 4)?;
        let dst = lu_of(self, di, 6)?;
        let blocks = be_at(&d, 10, 2);
        let (src_lba, dst_lba) = (be_at(&d, 12, 8), be_at(&d, 20, 8));
        let (sbs, dbs) = (
            u64::from(self.lus[src].cfg.block_size),
            u64::from(self.lus[dst].cfg.block_size),
        );
        if d[1] & 0x02 != 0 || !(blocks * sbs).is_multiple_of(dbs) {
            // DC=1 (destination counts) and inexact segments are not supported.
            return Err(illegal(0x26, 0x0a)); // UNEXPECTED INEXACT SEGMENT
        }
        let dst_blocks = blocks * sbs / dbs;
        let fits = |lba: u64, n: u64, cap: u64| lba.checked_add(n).is_some_and(|e| e <= cap);
        if !fits(src_lba, blocks, self.lus[src].cfg.blocks) {
            return Err(aborted(0, 0, k, Some(12)));
        }
        if !fits(dst_lba, dst_blocks, self.lus[dst].cfg.blocks) {
            return Err(aborted(0, 0, k, Some(20)));
        }
        // The copy target must accept this nexus's reads and writes.
        let lu = &self.lus[dst];
        if lu.cfg.read_only || lu.mode.swp {
            return Err(if lu.mode.swp {
                SenseReason::SoftwareWriteProtected
            } else {
                SenseReason::WriteProtected
            });
        }
        Ok(Segment {
            src,
            dst,
            src_lba,
            dst_lba,
            blocks,
        })
    }

    /// Whether session `s` may read LU `src` and write LU `dst` (SPC-2 and
    /// persistent reservations of LUs other than the addressed one).
    fn xcopy_conflict(&mut self, i: usize, seg: &Segment) -> bool {
        let s = usize::from(self.cmds[i].session);
        for (l, class) in [(seg.src, PrClass::Read), (seg.dst, PrClass::Write)] {
            let lu = &self.lus[l];
            if lu.res2 != NIL && usize::from(lu.res2) != s {
                return true;
            }
            if let Some(res) = lu.pr.res {
                let reg = self.pr_reg_of(s, l);
                let holder = match reg {
                    Some(r) => {
                        res.ty.all_registrants()
                            || (usize::from(res.holder) == r
                                && self.sessions[s].port == res.holder_port)
                    }
                    None => false,
                };
                if !holder && res.ty.conflicts(class, reg.is_some()) {
                    return true;
                }
            }
        }
        false
    }

    fn xcopy_rec(&self, i: usize) -> Option<usize> {
        let g = self.cmds[i].generation;
        self.copies.iter().position(|r| {
            usize::from(r.cmd) == i && r.cmd_gen == g && r.status == CopyStatus::Running
        })
    }

    fn xcopy_end(&mut self, i: usize, result: Result<(), SenseReason>) -> Step {
        if let Some(k) = self.xcopy_rec(i) {
            let r = &mut self.copies[k];
            r.status = if result.is_ok() {
                CopyStatus::Done
            } else {
                CopyStatus::Failed
            };
            r.cmd = NIL;
        }
        self.media_done(i);
        match result {
            Ok(()) => self.good(i),
            Err(r) => self.fail(i, r),
        }
    }

    /// The command's media interlock range is released (between chunks).
    fn media_done(&mut self, i: usize) {
        if core::mem::replace(&mut self.cmds[i].media_active, false) && self.waiting_overlap {
            self.wake(CmdState::WaitOverlap);
        }
    }

    pub(crate) fn exec_extended_copy<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let len = be(&self.cmds[i].cdb, (10, 4));
        if self.cmds[i].stage == 0 {
            if len == 0 {
                return self.good(i);
            }
            if len < 16 || len > 16 + self.xcopy_max_list() {
                return self.fail(i, SenseReason::ParameterListLengthError);
            }
        }
        let area = Self::xcopy_param_area(len);
        let chunk = MAX_CHUNK.min(self.pool.capacity().saturating_sub(area));
        if self.cmds[i].stage < S_RUN {
            let n = match self.receive_params(i, t, len, area + chunk) {
                Ok(n) => n,
                Err(step) => return step,
            };
            let nseg = check!(self, i, self.xcopy_check(i, n));
            // Every segment's targets must accept this nexus.
            let tdl = {
                let mut h = [0u8; 4];
                check!(self, i, self.read_params(i, 0, &mut h));
                be_at(&h, 2, 2) as usize
            };
            for k in 0..nseg {
                let seg = check!(
                    self,
                    i,
                    self.xcopy_segment(i, k, 16 + tdl + k * B2B_LEN, tdl)
                );
                if self.xcopy_conflict(i, &seg) {
                    return self.finish(i, ScsiStatus::ReservationConflict);
                }
            }
            let mut h = [0u8; 2];
            check!(self, i, self.read_params(i, 0, &mut h));
            let (list_id, usage) = (h[0], (h[1] >> 3) & 0x03);
            let s = usize::from(self.cmds[i].session);
            let running = self.copies.iter().any(|r| {
                usize::from(r.session) == s
                    && r.list_id == list_id
                    && r.status == CopyStatus::Running
                    && usage != 0b11
            });
            if running {
                return self.fail(i, illegal(0x00, 0x16)); // OPERATION IN PROGRESS
            }
            if usage == 0b00 {
                // Hold the results: replace an old record of this list id,
                // else a free or finished one.
                let sg = self.sessions[s].generation;
                let slot = self
                    .copies
                    .iter()
                    .position(|r| usize::from(r.session) == s && r.list_id == list_id)
                    .or_else(|| self.copies.iter().position(|r| r.session == NIL))
                    .or_else(|| {
                        self.copies
                            .iter()
                            .position(|r| r.status != CopyStatus::Running)
                    });
                let Some(k) = slot else {
                    return self.fail(i, SenseReason::InsufficientResources);
                };
                self.copies[k] = CopyRec {
                    session: s as u16,
                    session_gen: sg,
                    list_id,
                    status: CopyStatus::Running,
                    segments: 0,
                    bytes: 0,
                    cmd: i as u16,
                    cmd_gen: self.cmds[i].generation,
                };
            }
            let c = &mut self.cmds[i];
            c.aux = 0; // segment << 32 | blocks done in it
            let _ = nseg;
            c.intended = len;
            c.stage = S_RUN;
        }
        let (tdl, nseg) = {
            let mut h = [0u8; 12];
            check!(self, i, self.read_params(i, 0, &mut h));
            (be_at(&h, 2, 2) as usize, be_at(&h, 8, 4) as usize / B2B_LEN)
        };
        loop {
            let (k, done) = (
                (self.cmds[i].aux >> 32) as usize,
                self.cmds[i].aux & 0xffff_ffff,
            );
            match self.cmds[i].stage {
                S_RUN => {
                    if k >= nseg {
                        return self.xcopy_end(i, Ok(()));
                    }
                    let at = 16 + tdl + k * B2B_LEN;
                    let seg = match self.xcopy_segment(i, k, at, tdl) {
                        Ok(s) => s,
                        Err(r) => return self.xcopy_end(i, Err(r)),
                    };
                    if done >= seg.blocks {
                        self.cmds[i].aux = (k as u64 + 1) << 32;
                        if let Some(r) = self.xcopy_rec(i) {
                            self.copies[r].segments += 1;
                        }
                        continue;
                    }
                    let (sbs, dbs) = (
                        u64::from(self.lus[seg.src].cfg.block_size),
                        u64::from(self.lus[seg.dst].cfg.block_size),
                    );
                    let per = (chunk / sbs.max(dbs)) * sbs.max(dbs) / sbs;
                    if per == 0 {
                        return self.xcopy_end(i, Err(SenseReason::InsufficientResources));
                    }
                    let n = (seg.blocks - done).min(per);
                    // Overlapping ranges of one LU copy backwards when the
                    // destination lies above the source.
                    let backwards = seg.src == seg.dst
                        && seg.dst_lba > seg.src_lba
                        && seg.dst_lba < seg.src_lba + seg.blocks;
                    let off = if backwards {
                        seg.blocks - done - n
                    } else {
                        done
                    };
                    let (dst_lba, dst_n) = (seg.dst_lba + off * sbs / dbs, n * sbs / dbs);
                    self.cmds[i].round = n;
                    if !self.begin_media_on(i, seg.dst, dst_lba, dst_n) {
                        return Step::Park;
                    }
                    let step = self.submit_io_on(
                        i,
                        b,
                        seg.src,
                        IoKind::Read,
                        seg.src_lba + off,
                        n,
                        Some((area as usize, (n * sbs) as usize)),
                        S_READ_DONE,
                    );
                    if step != Step::Continue {
                        return step;
                    }
                }
                S_READ_DONE => {
                    if self.take_io_result(i, true).is_err() {
                        return self.xcopy_end(i, Err(aborted(0x0d, 0x01, k, None)));
                    }
                    let at = 16 + tdl + k * B2B_LEN;
                    let seg = match self.xcopy_segment(i, k, at, tdl) {
                        Ok(s) => s,
                        Err(r) => return self.xcopy_end(i, Err(r)),
                    };
                    let dbs = u64::from(self.lus[seg.dst].cfg.block_size);
                    let sbs = u64::from(self.lus[seg.src].cfg.block_size);
                    let n = self.cmds[i].round;
                    let (lba, dst_n) = (self.cmds[i].lba, n * sbs / dbs);
                    let step = self.submit_io_on(
                        i,
                        b,
                        seg.dst,
                        IoKind::Write,
                        lba,
                        dst_n,
                        Some((area as usize, (n * sbs) as usize)),
                        S_WRITE_DONE,
                    );
                    if step != Step::Continue {
                        return step;
                    }
                }
                S_WRITE_DONE => {
                    if self.take_io_result(i, false).is_err() {
                        return self.xcopy_end(i, Err(aborted(0x0d, 0x01, k, None)));
                    }
                    let n = self.cmds[i].round;
                    let at = 16 + tdl + k * B2B_LEN;
                    let sbs = match self.xcopy_segment(i, k, at, tdl) {
                        Ok(s) => u64::from(self.lus[s.src].cfg.block_size),
                        Err(r) => return self.xcopy_end(i, Err(r)),
                    };
                    if let Some(r) = self.xcopy_rec(i) {
                        self.copies[r].bytes += n * sbs;
                    }
                    self.media_done(i);
                    let c = &mut self.cmds[i];
                    c.aux = ((k as u64) << 32) | (done + n);
                    c.stage = S_RUN;
                    // Give way to the other commands between chunks.
                    return Step::Yield;
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ RECEIVE COPY RESULTS

    pub(crate) fn exec_receive_copy_results(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let (sa, list_id) = (c.cdb[1] & 0x1f, c.cdb[2]);
        let alloc = be(&c.cdb, (10, 4));
        let s = usize::from(c.session);
        if sa == 0x03 {
            let max_list = self.xcopy_max_list();
            return self.respond_payload(i, alloc, move |_, _, p| {
                p.u32(42); // AVAILABLE DATA
                p.u8(0x01); // SNLID: LIST ID USAGE 11b is supported
                p.zeros(3);
                p.u16(MAX_CSCD as u16);
                p.u16(MAX_SEGMENTS as u16);
                p.u32(max_list as u32);
                p.u32(u32::MAX); // MAXIMUM SEGMENT LENGTH: no limit of our own
                p.u32(0); // MAXIMUM INLINE DATA LENGTH: no inline data
                p.u32(0); // HELD DATA LIMIT
                p.u32(0); // MAXIMUM STREAM DEVICE TRANSFER SIZE
                p.u16(0);
                p.u16(MAX_COPIES as u16); // TOTAL CONCURRENT COPIES
                p.u8(MAX_COPIES as u8); // MAXIMUM CONCURRENT COPIES
                p.u8(9); // DATA SEGMENT GRANULARITY: 512 bytes
                p.u8(0); // INLINE DATA GRANULARITY
                p.u8(0); // HELD DATA GRANULARITY
                p.zeros(3);
                p.u8(2); // IMPLEMENTED DESCRIPTOR LIST LENGTH
                p.put(&[0x02, 0xe4]);
                Ok(())
            });
        }
        // COPY STATUS of this I_T nexus's list identifier.
        let sg = self.sessions.get(s).map_or(0, |x| x.generation);
        let Some(k) = self.copies.iter().position(|r| {
            usize::from(r.session) == s && r.session_gen == sg && r.list_id == list_id
        }) else {
            return self.fail(i, SenseReason::InvalidFieldInCdb(FieldPointer::bit(2, 7)));
        };
        let mut rec = self.copies[k];
        // A copy whose command went away (aborted) ended with errors.
        if rec.status == CopyStatus::Running {
            let alive = self
                .cmds
                .get(usize::from(rec.cmd))
                .is_some_and(|c| c.state != CmdState::Free && c.generation == rec.cmd_gen);
            if !alive {
                rec.status = CopyStatus::Failed;
            }
        }
        let (mut count, mut units) = (rec.bytes, 0u8);
        while count > u64::from(u32::MAX) {
            count >>= 10;
            units += 1;
        }
        let step = self.respond_payload(i, alloc, move |_, _, p: &mut Payload<'_>| {
            p.u32(8);
            p.u8(match rec.status {
                CopyStatus::Running => 0x00,
                CopyStatus::Done => 0x01,
                CopyStatus::Failed => 0x02,
            });
            p.u16(rec.segments);
            p.u8(units);
            p.u32(count as u32);
            Ok(())
        });
        // A finished operation's results are discarded once reported.
        if rec.status != CopyStatus::Running && self.cmds[i].sense.is_none() {
            self.copies[k] = CopyRec::EMPTY;
        }
        step
    }
}
