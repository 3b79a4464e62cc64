//! SBC-4 commands: READ/WRITE and friends, VERIFY, WRITE SAME, UNMAP, GET
//! LBA STATUS, COMPARE AND WRITE, ORWRITE, WRITE ATOMIC, READ CAPACITY,
//! SYNCHRONIZE CACHE, PRE-FETCH, START STOP UNIT, PREVENT ALLOW MEDIUM
//! REMOVAL, READ DEFECT DATA, FORMAT UNIT and SANITIZE (with the paced
//! background operation engine they share).

use crate::backend::{Backend, IoKind, MapDir, Mapped, Submitted};
use crate::cdb::{LbaLayout, be, be_at};
use crate::memory::compare;
use crate::sense::{FieldPointer, SenseReason};
use crate::target::{BgKind, BgOp, Cmd, CmdState, Lu, NIL, Step, Target, check, need_buf};
use crate::transport::{DataDirection, ScsiStatus, Transport};

fn invalid_cdb(byte: u16, bit: u8) -> SenseReason {
    SenseReason::InvalidFieldInCdb(FieldPointer::bit(byte, bit))
}

fn invalid_param(byte: u16, bit: Option<u8>) -> SenseReason {
    SenseReason::InvalidFieldInParameterList(FieldPointer { byte, bit })
}

/// [`Target::lba_blocks`] of command slot `c`.
#[inline(always)]
fn lba_blocks(c: &Cmd) -> (u64, u64) {
    let Some(op) = c.op else { return (0, 0) };
    let d = &c.cdb;
    match op.layout {
        // The 10- and 16-byte READ/WRITE layouts, decoded directly.
        LbaLayout::Ten => (
            u64::from(u32::from_be_bytes([d[2], d[3], d[4], d[5]])),
            u64::from(u16::from_be_bytes([d[7], d[8]])),
        ),
        LbaLayout::Sixteen => (
            u64::from_be_bytes([d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9]]),
            u64::from(u32::from_be_bytes([d[10], d[11], d[12], d[13]])),
        ),
        LbaLayout::Six => {
            let lba = be(d, (1, 3)) & 0x1f_ffff;
            let n = u64::from(d[4]);
            (lba, if n == 0 { 256 } else { n })
        }
        LbaLayout::Fields => (be(d, op.lba), be(d, op.count)),
    }
}

/// FUA of a READ(10), (12) or (16) (READ(6) has none).
#[inline(always)]
fn read_fua(c: &Cmd) -> bool {
    c.op.is_some_and(|o| o.cdb_len > 6) && c.cdb[1] & 0x08 != 0
}

/// [`Target::check_transfer`] of command slot `c` on its LU `lu`.
#[inline(always)]
fn check_transfer(c: &Cmd, lu: &Lu, lba: u64, blocks: u64) -> Result<(), SenseReason> {
    // `end <= capacity` covers `lba <= capacity` (`end >= lba`).
    match lba.checked_add(blocks) {
        Some(end) if end <= lu.cfg.blocks => {}
        _ => return Err(SenseReason::LbaOutOfRange),
    }
    let max = lu.cfg.max_transfer_blocks;
    if max != 0 && blocks > u64::from(max) {
        let count = c.op.map_or((0, 0), |o| o.count);
        return Err(invalid_cdb(u16::from(count.0), 7));
    }
    Ok(())
}

/// Where [`Target::read_first`] left a READ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum First {
    /// Its one mapped round is the whole transfer: in Respond with GOOD, no
    /// sense, the data to go with the status and a non-empty scatter list
    /// (what `express_respond` serves; `Step::Continue` to the loop).
    Answer,
    /// What the stage returned.
    Step(Step),
    /// Go on in the stage loop at the stage set.
    Loop,
}

// Stages of the data-moving handlers.
const S_PARSE: u8 = 0;
const S_MAP: u8 = 1;
const S_BUFFERED: u8 = 2;
const S_SEND: u8 = 3;
const S_SENT: u8 = 4;
const S_REQ_MAPPED: u8 = 5;
const S_REQ_BUF: u8 = 6;
const S_GOT_MAPPED: u8 = 7;
const S_GOT_BUF: u8 = 8;
const S_WRITTEN: u8 = 9;
const S_READ_DONE: u8 = 10;

/// Steps a late background operation may take in one poll.
const BG_BURST: usize = 16;

/// Largest round a backend without mapping moves through the pool.
const MAX_ROUND: u64 = 1 << 20;

impl Target<'_> {
    #[inline]
    fn lu_of(&self, i: usize) -> usize {
        usize::from(self.cmds[i].lu)
    }

    #[inline]
    fn block_size(&self, i: usize) -> u64 {
        self.lus
            .get(self.lu_of(i))
            .map_or(512, |lu| u64::from(lu.cfg.block_size))
    }

    /// LBA and block count of a block command, from the table's fields
    /// (READ(6)/WRITE(6): 21-bit LBA, 0 blocks meaning 256).
    #[inline(always)]
    fn lba_blocks(&self, i: usize) -> (u64, u64) {
        lba_blocks(&self.cmds[i])
    }

    /// LBA OUT OF RANGE unless `lba .. lba + blocks` lies in the LU.
    fn check_range(&self, i: usize, lba: u64, blocks: u64) -> Result<(), SenseReason> {
        let cap = self.lus[self.lu_of(i)].cfg.blocks;
        match lba.checked_add(blocks) {
            // `end >= lba`: the LBA is in range too.
            Some(end) if end <= cap => Ok(()),
            _ => Err(SenseReason::LbaOutOfRange),
        }
    }

    /// [`Self::check_range`], then INVALID FIELD IN CDB when a transfer
    /// exceeds MAXIMUM TRANSFER LENGTH (one LU lookup for both).
    #[inline]
    fn check_transfer(&self, i: usize, lba: u64, blocks: u64) -> Result<(), SenseReason> {
        let Some(lu) = self.lus.get(self.lu_of(i)) else {
            return Err(SenseReason::InternalTargetFailure);
        };
        check_transfer(&self.cmds[i], lu, lba, blocks)
    }

    /// The largest round of a buffered transfer, in whole blocks.
    fn round_limit(&self, i: usize) -> u64 {
        let bs = self.block_size(i);
        ((self.pool.capacity() / 2).min(MAX_ROUND) / bs).max(1) * bs
    }

    // ------------------------------------------------------ READ

    pub(crate) fn exec_read<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        // The stages run in a loop; the usual READ (parse, one mapped round,
        // status) is `read_first`, which goes through them in order with the
        // command slot and the LU borrowed once (each of its parts is exactly
        // the stage's arm of the loop).
        if self.cmds[i].stage == S_PARSE {
            match self.read_first(i, t, b) {
                First::Answer => return Step::Continue,
                First::Step(step) => return step,
                First::Loop => {}
            }
        }
        let l = self.lu_of(i);
        let bs = self
            .lus
            .get(l)
            .map_or(512, |lu| u64::from(lu.cfg.block_size));
        loop {
            match self.cmds[i].stage {
                S_MAP => {
                    let c = &self.cmds[i];
                    let (lba, blocks) = (c.lba, c.count);
                    if !self.begin_media(i, lba, blocks) {
                        return Step::Park;
                    }
                    let c = &mut self.cmds[i];
                    let remaining = c.aux - c.done;
                    let round_lba = c.lba + c.done / bs;
                    let round_blocks = remaining.div_ceil(bs);
                    c.segs.clear();
                    let lun = self.lus[l].cfg.backend;
                    match b.map(
                        lun,
                        MapDir::Read,
                        round_lba,
                        round_blocks,
                        bs as u32,
                        &mut c.segs,
                    ) {
                        Ok(Mapped::Bytes(n)) => {
                            let round = n.min(remaining);
                            c.segs.truncate(round);
                            c.round = round;
                            c.seg_offset = c.done;
                            c.stage = S_SEND;
                            return self.read_send(i, t, l);
                        }
                        Ok(Mapped::Unsupported) => c.stage = S_BUFFERED,
                        Err(e) => return self.fail(i, crate::target::io_sense(e, true)),
                    }
                }
                S_BUFFERED => {
                    let c = &self.cmds[i];
                    let round = (c.aux - c.done).min(self.round_limit(i));
                    let blocks = round.div_ceil(bs);
                    need_buf!(self, i, blocks * bs);
                    let c = &mut self.cmds[i];
                    c.round = round;
                    let lba = c.lba + c.done / bs;
                    let step = self.submit_io(
                        i,
                        b,
                        IoKind::Read,
                        lba,
                        blocks,
                        Some((0, (blocks * bs) as usize)),
                        S_READ_DONE,
                    );
                    if step != Step::Continue {
                        return step;
                    }
                }
                S_READ_DONE => {
                    check!(self, i, self.take_io_result(i, true));
                    let round = self.cmds[i].round as usize;
                    self.buf_segs(i, 0, round);
                    let c = &mut self.cmds[i];
                    c.seg_offset = c.done;
                    c.stage = S_SEND;
                }
                S_SEND => return self.read_send(i, t, l),
                S_SENT => {
                    let c = &mut self.cmds[i];
                    c.done += c.round;
                    c.stage = S_MAP;
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    /// A READ on the express path ([`Target::run_now`]): command `i`, off
    /// the ready queue and in `Exec`, runs what the step loop would:
    /// `read_first`, then the status through `step_respond`. Any other way
    /// out (further rounds, a parked or busy stage) puts it in the task set
    /// and, unless parked, on the ready queue in the state the loop
    /// continues from.
    #[inline(always)]
    pub(crate) fn express_read<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) {
        let step = match self.read_first(i, t, b) {
            // Its one mapped round with the status.
            First::Answer => {
                if self.express_respond(i, t) == Step::Park {
                    // The status is queued (`ResponseSent`): it never was in
                    // the task set as far as anything could tell (see
                    // `express_claim`).
                    debug_assert_eq!(self.cmds[i].state, CmdState::ResponseSent);
                    return;
                }
                // The transport was busy: Respond again from the poll.
                Step::Retry
            }
            First::Step(Step::Continue) => {
                // `read_first` continues only into Respond: here (a range
                // error, no data) with the status alone.
                debug_assert_eq!(self.cmds[i].state, CmdState::Respond);
                let step = self.step_respond(i, t);
                if step == Step::Park {
                    debug_assert_eq!(self.cmds[i].state, CmdState::ResponseSent);
                    return;
                }
                step
            }
            First::Step(step) => step,
            // The stage loop goes on at the stage set.
            First::Loop => Step::Retry,
        };
        self.express_enter(i);
        if step != Step::Park {
            self.enqueue(i);
        }
    }

    /// READ's S_PARSE stage, then (when the backend maps and no interlock
    /// is in play) its first S_MAP and S_SEND. [`First::Loop`]: go on in the
    /// stage loop of [`Self::exec_read`] at the stage set.
    #[inline(always)]
    fn read_first<T: Transport, B: Backend>(&mut self, i: usize, t: &mut T, b: &mut B) -> First {
        let Some(c) = self.cmds.get_mut(i) else {
            return First::Step(self.fail(i, SenseReason::InternalTargetFailure));
        };
        let Some(lu) = self.lus.get_mut(usize::from(c.lu)) else {
            return First::Step(self.fail(i, SenseReason::InternalTargetFailure));
        };
        let (lba, blocks) = lba_blocks(c);
        if let Err(r) = check_transfer(c, lu, lba, blocks) {
            return First::Step(self.fail(i, r));
        }
        let bs = u64::from(lu.cfg.block_size);
        // S_PARSE. FUA only matters to backend I/O, which a READ done in one
        // mapped round never does: it is set on every way out to more rounds.
        c.lba = lba;
        c.count = blocks;
        c.intended = blocks * bs;
        c.aux = c.intended.min(c.expected(DataDirection::In));
        c.done = 0;
        lu.stats.read_cmds += 1;
        if c.aux == 0 {
            return First::Step(self.good(i));
        }
        c.stage = S_MAP;
        // S_MAP: `begin_media` without interlocking commands on the LU (the
        // loop's S_MAP runs the whole of it otherwise).
        if !c.media_active {
            if c.media_lu != NIL || lu.atomic != 0 {
                c.flags.fua = read_fua(c);
                return First::Loop;
            }
            c.media_active = true;
        }
        let remaining = c.aux;
        c.segs.clear();
        match b.map(
            lu.cfg.backend,
            MapDir::Read,
            lba,
            remaining.div_ceil(bs),
            bs as u32,
            &mut c.segs,
        ) {
            Ok(Mapped::Bytes(n)) => {
                let round = n.min(remaining);
                if n > remaining {
                    c.segs.truncate(round);
                }
                c.round = round;
                c.seg_offset = 0;
                c.stage = S_SEND;
                // S_SEND (`read_send` with nothing done yet).
                if round >= c.aux {
                    c.done = round;
                    c.data_with_status = true;
                    lu.stats.read_bytes += round;
                    // `good`.
                    c.status = ScsiStatus::Good;
                    c.sense = None;
                    c.state = CmdState::Respond;
                    // `step_respond` with data sends it with the status
                    // (`express_respond`); an empty list goes its own way.
                    return if c.segs.is_empty() {
                        First::Step(Step::Continue)
                    } else {
                        First::Answer
                    };
                }
                c.flags.fua = read_fua(c);
                First::Step(self.send_in(i, t, S_SENT))
            }
            Ok(Mapped::Unsupported) => {
                c.flags.fua = read_fua(c);
                c.stage = S_BUFFERED;
                First::Loop
            }
            Err(e) => First::Step(self.fail(i, crate::target::io_sense(e, true))),
        }
    }

    /// READ's S_SEND stage: the last round goes with the status, any other
    /// is sent on its own.
    #[inline(always)]
    fn read_send<T: Transport>(&mut self, i: usize, t: &mut T, l: usize) -> Step {
        let c = &mut self.cmds[i];
        if c.done + c.round >= c.aux {
            c.done += c.round;
            c.data_with_status = true;
            let n = c.done;
            self.lus[l].stats.read_bytes += n;
            return self.good(i);
        }
        self.send_in(i, t, S_SENT)
    }

    // ------------------------------------------------------ WRITE, WRITE AND VERIFY

    pub(crate) fn exec_write<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let l = self.lu_of(i);
        let bs = self
            .lus
            .get(l)
            .map_or(512, |lu| u64::from(lu.cfg.block_size));
        loop {
            match self.cmds[i].stage {
                S_PARSE => {
                    let (lba, blocks) = self.lba_blocks(i);
                    let verify = self.cmds[i]
                        .op
                        .is_some_and(|o| o.kind == crate::cdb::OpKind::WriteVerify);
                    let c = &mut self.cmds[i];
                    c.intended = blocks * bs;
                    check!(self, i, self.check_transfer(i, lba, blocks));
                    let c = &mut self.cmds[i];
                    let expected = c.expected(DataDirection::Out);
                    if expected < c.intended && !expected.is_multiple_of(bs) {
                        // A partial block cannot be written.
                        return self.fail(i, SenseReason::InvalidFieldInInformationUnit);
                    }
                    c.flags.fua =
                        verify || (c.op.is_some_and(|o| o.cdb_len > 6) && c.cdb[1] & 0x08 != 0);
                    c.lba = lba;
                    c.count = blocks;
                    c.aux = c.intended.min(expected);
                    c.done = 0;
                    self.lus[l].stats.write_cmds += 1;
                    if self.cmds[i].aux == 0 {
                        return self.good(i);
                    }
                    self.cmds[i].stage = S_MAP;
                }
                S_MAP => {
                    let c = &self.cmds[i];
                    let (lba, blocks) = (c.lba, c.count);
                    if !self.begin_media(i, lba, blocks) {
                        return Step::Park;
                    }
                    let c = &mut self.cmds[i];
                    let remaining = c.aux - c.done;
                    let round_lba = c.lba + c.done / bs;
                    c.segs.clear();
                    let lun = self.lus[l].cfg.backend;
                    match b.map(
                        lun,
                        MapDir::Write,
                        round_lba,
                        remaining / bs,
                        bs as u32,
                        &mut c.segs,
                    ) {
                        Ok(Mapped::Bytes(n)) => {
                            let round = n.min(remaining);
                            c.segs.truncate(round);
                            c.round = round;
                            c.stage = S_REQ_MAPPED;
                        }
                        Ok(Mapped::Unsupported) => c.stage = S_BUFFERED,
                        Err(e) => return self.fail(i, crate::target::io_sense(e, false)),
                    }
                }
                S_BUFFERED => {
                    let c = &self.cmds[i];
                    let round = (c.aux - c.done).min(self.round_limit(i));
                    need_buf!(self, i, round);
                    self.cmds[i].round = round;
                    self.buf_segs(i, 0, round as usize);
                    self.cmds[i].stage = S_REQ_BUF;
                }
                S_REQ_MAPPED | S_REQ_BUF => {
                    let next = if self.cmds[i].stage == S_REQ_MAPPED {
                        S_GOT_MAPPED
                    } else {
                        S_GOT_BUF
                    };
                    let offset = self.cmds[i].done;
                    return self.request_out(i, t, offset, next);
                }
                S_GOT_MAPPED | S_GOT_BUF => {
                    let c = &self.cmds[i];
                    let lba = c.lba + c.done / bs;
                    let blocks = c.round / bs;
                    let (kind, buf) = if c.stage == S_GOT_MAPPED {
                        (IoKind::CommitWrite, None)
                    } else {
                        (IoKind::Write, Some((0, c.round as usize)))
                    };
                    let step = self.submit_io(i, b, kind, lba, blocks, buf, S_WRITTEN);
                    if step != Step::Continue {
                        return step;
                    }
                }
                S_WRITTEN => {
                    check!(self, i, self.take_io_result(i, false));
                    let c = &mut self.cmds[i];
                    c.done += c.round;
                    if c.done >= c.aux {
                        let n = c.done;
                        self.lus[l].stats.write_bytes += n;
                        return self.good(i);
                    }
                    c.stage = S_MAP;
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ VERIFY

    pub(crate) fn exec_verify<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let bs = self.block_size(i);
        loop {
            match self.cmds[i].stage {
                0 => {
                    let (lba, blocks) = self.lba_blocks(i);
                    let bytchk = (self.cmds[i].cdb[1] >> 1) & 0x03;
                    if bytchk == 0b10 {
                        return self.fail(i, invalid_cdb(1, 2));
                    }
                    let intended = match bytchk {
                        0b00 => 0,
                        0b01 => blocks * bs,
                        _ if blocks == 0 => 0,
                        _ => bs,
                    };
                    self.cmds[i].intended = intended;
                    check!(self, i, self.check_transfer(i, lba, blocks));
                    let c = &mut self.cmds[i];
                    if c.expected(DataDirection::Out) < intended {
                        return self.fail(i, SenseReason::InvalidFieldInInformationUnit);
                    }
                    if intended == 0 {
                        // Medium verification: the blocks are readable.
                        return self.good(i);
                    }
                    c.lba = lba;
                    c.count = blocks;
                    c.aux = u64::from(bytchk);
                    c.done = 0;
                    c.stage = 1;
                }
                // A round: receive data (all of BYTCHK=01b's, once BYTCHK=11b's one block).
                1 => {
                    let c = &self.cmds[i];
                    let (lba, blocks) = (c.lba, c.count);
                    if !self.begin_media(i, lba, blocks) {
                        return Step::Park;
                    }
                    let single = self.cmds[i].aux == 0b11;
                    let limit = (self.round_limit(i) / bs).max(1);
                    let c = &self.cmds[i];
                    let left = c.count - c.done / bs;
                    let round_blocks = left.min(limit);
                    let data = if single { bs } else { round_blocks * bs };
                    need_buf!(self, i, data + round_blocks * bs);
                    let c = &mut self.cmds[i];
                    c.round = round_blocks * bs;
                    if single && c.done > 0 {
                        c.stage = 3;
                        continue;
                    }
                    let offset = if single { 0 } else { c.done };
                    self.buf_segs(i, 0, data as usize);
                    return self.request_out(i, t, offset, 3);
                }
                3 => {
                    let c = &self.cmds[i];
                    let single = c.aux == 0b11;
                    let data = if single { bs } else { c.round };
                    let lba = c.lba + c.done / bs;
                    let step = self.submit_io(
                        i,
                        b,
                        IoKind::Read,
                        lba,
                        c.round / bs,
                        Some((data as usize, c.round as usize)),
                        4,
                    );
                    if step != Step::Continue {
                        return step;
                    }
                }
                4 => {
                    check!(self, i, self.take_io_result(i, true));
                    let c = &self.cmds[i];
                    let single = c.aux == 0b11;
                    let Some(buf) = c.buf else {
                        return self.fail(i, SenseReason::InternalTargetFailure);
                    };
                    let base = self.pool.offset(buf);
                    let mem = self.pool.memory();
                    let (round, done) = (c.round as usize, c.done);
                    let data = if single { bs as usize } else { round };
                    let mut miscompare = None;
                    if single {
                        let mut k = 0;
                        while k < round && miscompare.is_none() {
                            let r = compare(mem, base, mem, base + data + k, bs as usize);
                            miscompare =
                                check!(self, i, r.map_err(|_| SenseReason::InternalTargetFailure))
                                    .map(|off| done + (k + off) as u64);
                            k += bs as usize;
                        }
                    } else {
                        let r = compare(mem, base, mem, base + data, round);
                        miscompare =
                            check!(self, i, r.map_err(|_| SenseReason::InternalTargetFailure))
                                .map(|off| done + off as u64);
                    }
                    if let Some(off) = miscompare {
                        return self.fail(i, SenseReason::Miscompare(off));
                    }
                    let c = &mut self.cmds[i];
                    c.done += c.round;
                    if c.done >= c.count * bs {
                        // What was received is what the command meant to move.
                        c.done = c.intended;
                        return self.good(i);
                    }
                    c.stage = 1;
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ PRE-FETCH, SYNCHRONIZE CACHE

    pub(crate) fn exec_prefetch(&mut self, i: usize) -> Step {
        let (lba, blocks) = self.lba_blocks(i);
        check!(self, i, self.check_range(i, lba, blocks));
        // Every block of a RAM or null LU is "in cache".
        self.finish(i, ScsiStatus::ConditionMet)
    }

    pub(crate) fn exec_sync_cache<B: Backend>(&mut self, i: usize, b: &mut B) -> Step {
        match self.cmds[i].stage {
            0 => {
                let (lba, mut blocks) = self.lba_blocks(i);
                check!(self, i, self.check_range(i, lba, blocks));
                if blocks == 0 {
                    blocks = self.lus[self.lu_of(i)].cfg.blocks - lba;
                }
                self.submit_io(i, b, IoKind::Flush, lba, blocks, None, 1)
            }
            _ => {
                check!(self, i, self.take_io_result(i, false));
                self.good(i)
            }
        }
    }

    // ------------------------------------------------------ WRITE SAME

    pub(crate) fn exec_write_same<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let bs = self.block_size(i);
        let l = self.lu_of(i);
        let c = &self.cmds[i];
        let (unmap, ndob) = (
            c.cdb[1] & 0x08 != 0,
            c.cdb[0] == 0x93 && c.cdb[1] & 0x01 != 0,
        );
        if c.stage == 0 {
            let (lba, mut blocks) = self.lba_blocks(i);
            let cap = self.lus[l].cfg.blocks;
            if lba > cap {
                return self.fail(i, SenseReason::LbaOutOfRange);
            }
            if blocks == 0 {
                blocks = cap - lba;
            }
            check!(self, i, self.check_range(i, lba, blocks));
            if unmap && !self.lus[l].cfg.thin {
                return self.fail(i, invalid_cdb(1, 3));
            }
            let c = &mut self.cmds[i];
            c.flags.fua = false;
            c.lba = lba;
            c.count = blocks;
            if ndob {
                c.intended = 0;
                if c.expected(DataDirection::Out) != 0 {
                    return self.fail(i, SenseReason::InvalidFieldInInformationUnit);
                }
                c.stage = 2;
            }
        }
        if self.cmds[i].stage < 2
            && let Err(step) = self.receive_params(i, t, bs, bs)
        {
            return step;
        }
        loop {
            match self.cmds[i].stage {
                2 => {
                    let c = &self.cmds[i];
                    let (lba, blocks) = (c.lba, c.count);
                    if !self.begin_media(i, lba, blocks) {
                        return Step::Park;
                    }
                    // UNMAP=1 (ANCHOR=0) asks for an unmap operation on each
                    // LBA (SBC-4 WRITE SAME, table "ANCHOR bit, UNMAP bit and
                    // ANC_SUP bit relationships"), whatever the Data-Out block
                    // holds. The backend deallocates the whole granules and
                    // writes zeros (LBPRZ's pattern) into the blocks of a
                    // granule the range covers only in part: they read as if
                    // unmapped and then mapped again autonomously, so every
                    // block of the range reads zeros, for any granularity.
                    // libiscsi's WriteSame10.UnmapUntilEnd checks exactly
                    // that, with a 0xFF block.
                    let kind = if unmap {
                        IoKind::Unmap
                    } else {
                        IoKind::WriteSame
                    };
                    if kind == IoKind::WriteSame && ndob {
                        need_buf!(self, i, bs);
                        let Some(buf) = self.cmds[i].buf else {
                            return self.fail(i, SenseReason::InternalTargetFailure);
                        };
                        let off = self.pool.offset(buf);
                        check!(
                            self,
                            i,
                            self.pool
                                .memory()
                                .fill(off, bs as usize, 0)
                                .map_err(|_| SenseReason::InternalTargetFailure)
                        );
                    }
                    let buf = (kind == IoKind::WriteSame).then_some((0, bs as usize));
                    self.lus[l].stats.write_cmds += 1;
                    let step = self.submit_io(i, b, kind, lba, blocks, buf, 3);
                    if step != Step::Continue {
                        return step;
                    }
                }
                3 => {
                    check!(self, i, self.take_io_result(i, false));
                    return self.good(i);
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ UNMAP

    pub(crate) fn exec_unmap<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let l = self.lu_of(i);
        if !self.lus[l].cfg.thin {
            return self.fail(i, SenseReason::InvalidOpcode);
        }
        let len = be(&self.cmds[i].cdb, (7, 2));
        let n = match self.receive_params(i, t, len, len) {
            Ok(n) => n,
            Err(step) => return step,
        };
        loop {
            match self.cmds[i].stage {
                2 => {
                    if len == 0 {
                        return self.good(i);
                    }
                    if n < 8 {
                        return self.fail(i, SenseReason::ParameterListLengthError);
                    }
                    let mut hdr = [0u8; 8];
                    check!(self, i, self.read_params(i, 0, &mut hdr));
                    let bdl = be_at(&hdr, 2, 2) as usize;
                    let count = bdl.min(n - 8) / 16;
                    if count as u64 > self.max_unmap_descriptors() {
                        return self.fail(i, invalid_param(2, None));
                    }
                    // Validate every descriptor before touching anything.
                    let cap = self.lus[l].cfg.blocks;
                    for k in 0..count {
                        let mut d = [0u8; 16];
                        check!(self, i, self.read_params(i, 8 + 16 * k, &mut d));
                        let (lba, blocks) = (be_at(&d, 0, 8), be_at(&d, 8, 4));
                        if lba.checked_add(blocks).is_none_or(|e| e > cap) {
                            return self.fail(i, SenseReason::LbaOutOfRange);
                        }
                    }
                    let c = &mut self.cmds[i];
                    c.count = count as u64;
                    c.aux = 0;
                    c.stage = 3;
                }
                3 => {
                    let c = &self.cmds[i];
                    if c.aux >= c.count {
                        return self.good(i);
                    }
                    let mut d = [0u8; 16];
                    check!(
                        self,
                        i,
                        self.read_params(i, 8 + 16 * c.aux as usize, &mut d)
                    );
                    let (lba, blocks) = (be_at(&d, 0, 8), be_at(&d, 8, 4));
                    if blocks == 0 {
                        self.cmds[i].aux += 1;
                        continue;
                    }
                    let step = self.submit_io(i, b, IoKind::Unmap, lba, blocks, None, 4);
                    if step != Step::Continue {
                        return step;
                    }
                }
                4 => {
                    check!(self, i, self.take_io_result(i, false));
                    let c = &mut self.cmds[i];
                    c.aux += 1;
                    c.stage = 3;
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ GET LBA STATUS

    pub(crate) fn exec_get_lba_status<B: Backend>(&mut self, i: usize, b: &mut B) -> Step {
        let c = &self.cmds[i];
        let lba = be(&c.cdb, (2, 8));
        let alloc = be(&c.cdb, (10, 4));
        let l = self.lu_of(i);
        let (cap, bs, lun) = (
            self.lus[l].cfg.blocks,
            self.lus[l].cfg.block_size,
            self.lus[l].cfg.backend,
        );
        if lba >= cap {
            return self.fail(i, SenseReason::LbaOutOfRange);
        }
        let room = (self.pool.capacity().min(8 + 16 * 1024) - 8) / 16;
        let max_desc = (alloc.saturating_sub(8) / 16).clamp(1, room);
        let xfer_cap = alloc.min(self.cmds[i].expected(DataDirection::In));
        need_buf!(self, i, 8 + 16 * max_desc);
        let Some(buf) = self.cmds[i].buf else {
            return self.fail(i, SenseReason::InternalTargetFailure);
        };
        let mut at = lba;
        let mut k = 0u64;
        while k < max_desc && at < cap {
            let run = match b.lba_status(lun, at, cap - at, bs) {
                Ok(r) => r,
                Err(e) => return self.fail(i, crate::target::io_sense(e, true)),
            };
            let n = run.blocks.clamp(1, cap - at).min(u64::from(u32::MAX));
            let mut d = [0u8; 16];
            d[..8].copy_from_slice(&at.to_be_bytes());
            d[8..12].copy_from_slice(&(n as u32).to_be_bytes());
            d[12] = run.status.code();
            check!(
                self,
                i,
                self.pool
                    .write(buf, 8 + 16 * k as usize, &d)
                    .map_err(|_| SenseReason::InternalTargetFailure)
            );
            at += n;
            k += 1;
        }
        let mut hdr = [0u8; 8];
        hdr[..4].copy_from_slice(&((4 + 16 * k) as u32).to_be_bytes());
        check!(
            self,
            i,
            self.pool
                .write(buf, 0, &hdr)
                .map_err(|_| SenseReason::InternalTargetFailure)
        );
        let total = 8 + 16 * k;
        let c = &mut self.cmds[i];
        c.intended = total.min(alloc);
        let xfer = c.intended.min(xfer_cap);
        if xfer > 0 {
            self.buf_segs(i, 0, xfer as usize);
            let c = &mut self.cmds[i];
            c.seg_offset = 0;
            c.data_with_status = true;
            c.done = xfer;
        }
        self.good(i)
    }

    // ------------------------------------------------------ COMPARE AND WRITE

    pub(crate) fn exec_compare_and_write<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let bs = self.block_size(i);
        let l = self.lu_of(i);
        if self.cmds[i].stage == 0 {
            let (lba, blocks) = self.lba_blocks(i);
            let c = &mut self.cmds[i];
            c.intended = 2 * blocks * bs;
            check!(self, i, self.check_range(i, lba, blocks));
            if blocks > self.max_compare_write_blocks(l) {
                return self.fail(i, invalid_cdb(13, 7));
            }
            let c = &mut self.cmds[i];
            c.flags.fua = c.cdb[1] & 0x08 != 0;
            c.lba = lba;
            c.count = blocks;
            if blocks == 0 {
                if c.expected(DataDirection::Out) != 0 {
                    // NUMBER OF LOGICAL BLOCKS 0 is no error (SBC-4 5.3), but
                    // Data-Out with it means the initiator's count did not fit
                    // the one-byte field: 256 or more blocks, beyond MAXIMUM
                    // COMPARE AND WRITE LENGTH (at most 255). The answer is
                    // the one a count above that limit gets, INVALID FIELD IN
                    // CDB at the field (what libiscsi's CompareAndWrite.Simple
                    // expects of its 256-block case, which wraps to 0).
                    return self.fail(i, invalid_cdb(13, 7));
                }
                return self.good(i);
            }
        }
        let n = self.cmds[i].count * bs;
        if self.cmds[i].stage < 2
            && let Err(step) = self.receive_params(i, t, 2 * n, 3 * n)
        {
            return step;
        }
        loop {
            match self.cmds[i].stage {
                2 => {
                    if !self.lock_range(i) {
                        return Step::Park;
                    }
                    let lba = self.cmds[i].lba;
                    self.lus[l].stats.write_cmds += 1;
                    let step = self.submit_io(
                        i,
                        b,
                        IoKind::Read,
                        lba,
                        n / bs,
                        Some((2 * n as usize, n as usize)),
                        3,
                    );
                    if step != Step::Continue {
                        return step;
                    }
                }
                3 => {
                    check!(self, i, self.take_io_result(i, true));
                    let Some(buf) = self.cmds[i].buf else {
                        return self.fail(i, SenseReason::InternalTargetFailure);
                    };
                    let (mem, base) = (self.pool.memory(), self.pool.offset(buf));
                    let r = compare(mem, base, mem, base + 2 * n as usize, n as usize);
                    match check!(self, i, r.map_err(|_| SenseReason::InternalTargetFailure)) {
                        Some(off) => return self.fail(i, SenseReason::Miscompare(off as u64)),
                        None => {
                            let lba = self.cmds[i].lba;
                            let step = self.submit_io(
                                i,
                                b,
                                IoKind::Write,
                                lba,
                                n / bs,
                                Some((n as usize, n as usize)),
                                4,
                            );
                            if step != Step::Continue {
                                return step;
                            }
                        }
                    }
                }
                4 => {
                    check!(self, i, self.take_io_result(i, false));
                    self.lus[l].stats.write_bytes += n;
                    return self.good(i);
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ ORWRITE

    pub(crate) fn exec_orwrite<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let bs = self.block_size(i);
        let l = self.lu_of(i);
        loop {
            match self.cmds[i].stage {
                0 => {
                    let (lba, blocks) = self.lba_blocks(i);
                    self.cmds[i].intended = blocks * bs;
                    check!(self, i, self.check_transfer(i, lba, blocks));
                    let c = &mut self.cmds[i];
                    if c.expected(DataDirection::Out) < c.intended {
                        return self.fail(i, SenseReason::InvalidFieldInInformationUnit);
                    }
                    c.flags.fua = c.cdb[1] & 0x08 != 0;
                    c.lba = lba;
                    c.count = blocks;
                    c.done = 0;
                    if blocks == 0 {
                        return self.good(i);
                    }
                    self.lus[l].stats.write_cmds += 1;
                    c.stage = 1;
                }
                1 => {
                    // Read-modify-write under the interlock, in rounds.
                    if !self.lock_range(i) {
                        return Step::Park;
                    }
                    let limit = (self.round_limit(i) / bs).max(1);
                    let c = &self.cmds[i];
                    let round_blocks = (c.count - c.done / bs).min(limit);
                    need_buf!(self, i, 2 * round_blocks * bs);
                    let c = &mut self.cmds[i];
                    c.round = round_blocks * bs;
                    let offset = c.done;
                    self.buf_segs(i, 0, (round_blocks * bs) as usize);
                    return self.request_out(i, t, offset, 2);
                }
                2 => {
                    let c = &self.cmds[i];
                    let lba = c.lba + c.done / bs;
                    let r = c.round;
                    let step = self.submit_io(
                        i,
                        b,
                        IoKind::Read,
                        lba,
                        r / bs,
                        Some((r as usize, r as usize)),
                        3,
                    );
                    if step != Step::Continue {
                        return step;
                    }
                }
                3 => {
                    check!(self, i, self.take_io_result(i, true));
                    let Some(buf) = self.cmds[i].buf else {
                        return self.fail(i, SenseReason::InternalTargetFailure);
                    };
                    let r = self.cmds[i].round as usize;
                    let mut x = [0u8; 128];
                    let mut y = [0u8; 128];
                    let mut at = 0;
                    while at < r {
                        let k = (r - at).min(x.len());
                        let ok = self.pool.read(buf, at, &mut x[..k]).is_ok()
                            && self.pool.read(buf, r + at, &mut y[..k]).is_ok();
                        if !ok {
                            return self.fail(i, SenseReason::InternalTargetFailure);
                        }
                        for (a, m) in x[..k].iter_mut().zip(&y[..k]) {
                            *a |= m;
                        }
                        if self.pool.write(buf, at, &x[..k]).is_err() {
                            return self.fail(i, SenseReason::InternalTargetFailure);
                        }
                        at += k;
                    }
                    let c = &self.cmds[i];
                    let lba = c.lba + c.done / bs;
                    let step =
                        self.submit_io(i, b, IoKind::Write, lba, r as u64 / bs, Some((0, r)), 4);
                    if step != Step::Continue {
                        return step;
                    }
                }
                4 => {
                    check!(self, i, self.take_io_result(i, false));
                    let c = &mut self.cmds[i];
                    c.done += c.round;
                    if c.done >= c.count * bs {
                        let n = c.done;
                        self.lus[l].stats.write_bytes += n;
                        return self.good(i);
                    }
                    c.stage = 1;
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ WRITE ATOMIC(16)

    pub(crate) fn exec_write_atomic<T: Transport, B: Backend>(
        &mut self,
        i: usize,
        t: &mut T,
        b: &mut B,
    ) -> Step {
        let bs = self.block_size(i);
        let l = self.lu_of(i);
        if self.cmds[i].stage == 0 {
            let (lba, blocks) = self.lba_blocks(i);
            self.cmds[i].intended = blocks * bs;
            check!(self, i, self.check_range(i, lba, blocks));
            if blocks > self.max_atomic_blocks(l) {
                return self.fail(i, invalid_cdb(12, 7));
            }
            let c = &mut self.cmds[i];
            if c.expected(DataDirection::Out) < c.intended {
                return self.fail(i, SenseReason::InvalidFieldInInformationUnit);
            }
            c.flags.fua = c.cdb[1] & 0x08 != 0;
            c.lba = lba;
            c.count = blocks;
            if blocks == 0 {
                return self.good(i);
            }
        }
        let n = self.cmds[i].count * bs;
        if self.cmds[i].stage < 2
            && let Err(step) = self.receive_params(i, t, n, n)
        {
            return step;
        }
        loop {
            match self.cmds[i].stage {
                2 => {
                    if !self.lock_range(i) {
                        return Step::Park;
                    }
                    let lba = self.cmds[i].lba;
                    self.lus[l].stats.write_cmds += 1;
                    let step =
                        self.submit_io(i, b, IoKind::Write, lba, n / bs, Some((0, n as usize)), 3);
                    if step != Step::Continue {
                        return step;
                    }
                }
                3 => {
                    check!(self, i, self.take_io_result(i, false));
                    self.lus[l].stats.write_bytes += n;
                    return self.good(i);
                }
                _ => return self.fail(i, SenseReason::InternalTargetFailure),
            }
        }
    }

    // ------------------------------------------------------ READ CAPACITY

    pub(crate) fn exec_read_capacity10(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let (lba, pmi) = (be(&c.cdb, (2, 4)), c.cdb[8] & 0x01 != 0);
        if !pmi && lba != 0 {
            return self.fail(i, invalid_cdb(2, 7));
        }
        let lu = &self.lus[self.lu_of(i)];
        let last = u32::try_from(lu.cfg.blocks - 1).unwrap_or(u32::MAX);
        let bs = lu.cfg.block_size;
        self.respond_payload(i, 8, move |_, _, p| {
            p.u32(last);
            p.u32(bs);
            Ok(())
        })
    }

    pub(crate) fn exec_read_capacity16(&mut self, i: usize) -> Step {
        let alloc = be(&self.cmds[i].cdb, (10, 4));
        let lu = &self.lus[self.lu_of(i)];
        let (last, bs, thin, exp) = (
            lu.cfg.blocks - 1,
            lu.cfg.block_size,
            lu.cfg.thin,
            lu.cfg.pb_exp,
        );
        self.respond_payload(i, alloc, move |_, _, p| {
            p.u64(last);
            p.u32(bs);
            p.u8(0); // no protection
            p.u8(exp & 0x0f); // P_I_EXPONENT 0, LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
            // LBPME, LBPRZ; LOWEST ALIGNED LOGICAL BLOCK ADDRESS 0.
            p.u16(if thin { 0xc000 } else { 0 });
            p.zeros(16);
            Ok(())
        })
    }

    // ------------------------------------------------------ READ DEFECT DATA

    pub(crate) fn exec_read_defect_data(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let twelve = c.cdb[0] == 0xb7;
        let flags = if twelve { c.cdb[1] } else { c.cdb[2] } & 0x1f;
        let alloc = if twelve {
            be(&c.cdb, (6, 4))
        } else {
            be(&c.cdb, (7, 2))
        };
        // No defects: an empty list in the requested format, PLISTV/GLISTV
        // echoing what was asked for.
        self.respond_payload(i, alloc, move |_, _, p| {
            p.u8(0);
            p.u8(flags);
            if twelve {
                p.u16(0);
                p.u32(0);
            } else {
                p.u16(0);
            }
            Ok(())
        })
    }

    // ------------------------------------------------------ START STOP UNIT, PREVENT ALLOW

    pub(crate) fn exec_start_stop<B: Backend>(&mut self, i: usize, b: &mut B) -> Step {
        let l = self.lu_of(i);
        if self.cmds[i].stage == 1 {
            check!(self, i, self.take_io_result(i, false));
            return self.good(i);
        }
        let c = &self.cmds[i];
        let (power, no_flush, loej, start) = (
            c.cdb[4] >> 4,
            c.cdb[4] & 0x04 != 0,
            c.cdb[4] & 0x02 != 0,
            c.cdb[4] & 0x01 != 0,
        );
        if power != 0 {
            // Power conditions are accepted and have no effect: the LU is
            // always active; START and LOEJ are ignored (SBC-4 5.25).
            return self.good(i);
        }
        let lu = &mut self.lus[l];
        let stopping = if loej {
            if !lu.cfg.removable {
                return self.fail(i, invalid_cdb(4, 1));
            }
            if lu.prevent > 0 {
                return self.fail(i, SenseReason::MediumRemovalPrevented);
            }
            lu.loaded = start;
            lu.started = start;
            !start
        } else {
            if start && !lu.loaded {
                return self.fail(i, SenseReason::MediumNotPresent);
            }
            // SBC-4 has START=0 enter the stopped power condition; an LU
            // configured without `stoppable` stays ready (see LuConfig).
            if start || lu.cfg.stoppable {
                lu.started = start;
            }
            !start
        };
        self.lu_changed(l);
        if stopping && !no_flush {
            let blocks = self.lus[l].cfg.blocks;
            return self.submit_io(i, b, IoKind::Flush, 0, blocks, None, 1);
        }
        self.good(i)
    }

    pub(crate) fn exec_prevent_allow(&mut self, i: usize) -> Step {
        let l = self.lu_of(i);
        let c = &self.cmds[i];
        let prevent = match c.cdb[4] & 0x03 {
            0 => false,
            1 => true,
            _ => return self.fail(i, invalid_cdb(4, 1)),
        };
        let s = usize::from(c.session);
        let Some(itl) = self.itl_mut(s, l) else {
            return self.fail(i, SenseReason::InternalTargetFailure);
        };
        let was = core::mem::replace(&mut itl.prevent, prevent);
        let lu = &mut self.lus[l];
        match (was, prevent) {
            (false, true) => lu.prevent += 1,
            (true, false) => lu.prevent = lu.prevent.saturating_sub(1),
            _ => {}
        }
        self.good(i)
    }

    // ------------------------------------------------------ SANITIZE, FORMAT UNIT

    pub(crate) fn exec_sanitize<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        let bs = self.block_size(i);
        let l = self.lu_of(i);
        let c = &self.cmds[i];
        let sa = c.cdb[1] & 0x1f;
        let immed = c.cdb[1] & 0x80 != 0;
        let len = be(&c.cdb, (7, 2));
        if c.stage == 0 {
            match sa {
                0x01 if !(5..=bs + 4).contains(&len) => return self.fail(i, invalid_cdb(7, 7)),
                0x02 | 0x1f if len != 0 => return self.fail(i, invalid_cdb(7, 7)),
                _ => {}
            }
            if sa == 0x1f {
                self.lus[l].sanitize_failed = false;
                return self.good(i);
            }
        }
        if self.cmds[i].stage == S_WAIT_BG {
            return self.bg_waiter_done(i);
        }
        let room = if sa == 0x01 { len.max(bs) } else { bs };
        if let Err(step) = self.receive_params(i, t, len, room) {
            return step;
        }
        let kind = if sa == 0x01 {
            let mut hdr = [0u8; 4];
            check!(self, i, self.read_params(i, 0, &mut hdr));
            let (invert, test, count) = (hdr[0] & 0x80 != 0, (hdr[0] >> 5) & 0x03, hdr[0] & 0x1f);
            let plen = be_at(&hdr, 2, 2);
            if test != 0 {
                return self.fail(i, invalid_param(0, Some(6)));
            }
            if count == 0 {
                return self.fail(i, invalid_param(0, Some(4)));
            }
            if hdr[1] != 0 {
                return self.fail(i, invalid_param(1, Some(7)));
            }
            if plen == 0 || plen > bs || plen + 4 != len {
                return self.fail(i, invalid_param(2, Some(7)));
            }
            // Expand the pattern over one block at the front of the buffer.
            check!(self, i, self.expand_pattern(i, plen as usize, bs as usize));
            BgKind::Overwrite {
                passes: count,
                invert,
            }
        } else {
            let Some(buf) = self.cmds[i].buf else {
                return self.fail(i, SenseReason::InternalTargetFailure);
            };
            let off = self.pool.offset(buf);
            check!(
                self,
                i,
                self.pool
                    .memory()
                    .fill(off, bs as usize, 0)
                    .map_err(|_| SenseReason::InternalTargetFailure)
            );
            BgKind::BlockErase
        };
        self.start_background(i, kind, immed)
    }

    /// Repeat the `plen`-byte pattern at offset 4 of the parameter list
    /// over the first `bs` bytes of the command's buffer.
    fn expand_pattern(&mut self, i: usize, plen: usize, bs: usize) -> Result<(), SenseReason> {
        let buf = self.cmds[i].buf.ok_or(SenseReason::InternalTargetFailure)?;
        let mut pattern = [0u8; 256];
        let mut out = [0u8; 256];
        let err = |_| SenseReason::InternalTargetFailure;
        // Shift the pattern down over the 4-byte header first, in pieces.
        let mut at = 0;
        while at < plen {
            let n = (plen - at).min(pattern.len());
            self.pool
                .read(buf, 4 + at, &mut pattern[..n])
                .map_err(err)?;
            self.pool.write(buf, at, &pattern[..n]).map_err(err)?;
            at += n;
        }
        // Then replicate it to the end of the block.
        let mut at = plen;
        while at < bs {
            let n = (bs - at).min(out.len());
            for (k, o) in out[..n].iter_mut().enumerate() {
                let src = (at + k) % plen;
                let mut one = [0u8; 1];
                self.pool.read(buf, src, &mut one).map_err(err)?;
                *o = one[0];
            }
            self.pool.write(buf, at, &out[..n]).map_err(err)?;
            at += n;
        }
        Ok(())
    }

    pub(crate) fn exec_format_unit<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        let l = self.lu_of(i);
        let bs = self.block_size(i);
        if self.cmds[i].stage == S_WAIT_BG {
            return self.bg_waiter_done(i);
        }
        let c = &self.cmds[i];
        let (longlist, fmtdata) = (c.cdb[1] & 0x20 != 0, c.cdb[1] & 0x10 != 0);
        let mut immed = false;
        if fmtdata {
            let hdr_len: u64 = if longlist { 8 } else { 4 };
            let len = c.expected(DataDirection::Out).max(hdr_len);
            let n = match self.receive_params(i, t, len, len.max(bs)) {
                Ok(n) => n,
                Err(step) => return step,
            };
            if (n as u64) < hdr_len {
                return self.fail(i, SenseReason::ParameterListLengthError);
            }
            let mut hdr = [0u8; 8];
            check!(
                self,
                i,
                self.read_params(i, 0, &mut hdr[..hdr_len as usize])
            );
            // FOV with DPRY/DCRT/STPF/IP: only defaults and no initialization pattern.
            if hdr[1] & 0x08 != 0 {
                return self.fail(i, invalid_param(1, Some(3)));
            }
            let dll = if longlist {
                be_at(&hdr, 4, 4)
            } else {
                be_at(&hdr, 2, 2)
            };
            if dll != 0 {
                return self.fail(i, invalid_param(if longlist { 4 } else { 2 }, None));
            }
            immed = hdr[1] & 0x02 != 0;
        } else {
            self.cmds[i].stage = 2;
        }
        if !self.lus[l].cfg.thin {
            // Nothing to initialise: the medium is already "formatted".
            return self.good(i);
        }
        need_buf!(self, i, bs);
        self.start_background(i, BgKind::Format, immed)
    }

    /// Start a background operation of the command's LU, owning the
    /// command's buffer (its first block is the pattern). With `immed` the
    /// command completes now; otherwise when the operation does.
    fn start_background(&mut self, i: usize, kind: BgKind, immed: bool) -> Step {
        let l = self.lu_of(i);
        let buf = self.cmds[i].buf.take();
        let c = &self.cmds[i];
        self.lus[l].bg = Some(BgOp {
            kind,
            next_lba: 0,
            pass: 0,
            buf,
            inverted: false,
            io_in_flight: false,
            io_blocks: 0,
            next_at: self.now,
            waiter: if immed { NIL } else { i as u16 },
            waiter_gen: c.generation,
        });
        self.lu_changed(l);
        self.bg_active += 1;
        if matches!(kind, BgKind::Overwrite { .. } | BgKind::BlockErase) {
            self.lus[l].sanitize_failed = false;
        }
        if immed {
            return self.good(i);
        }
        let c = &mut self.cmds[i];
        c.stage = S_WAIT_BG;
        c.state = CmdState::WaitBackground;
        Step::Park
    }

    /// A command that waited for its background operation is woken.
    fn bg_waiter_done(&mut self, i: usize) -> Step {
        match self.cmds[i].io_result.take() {
            Some(Err(e)) => self.fail(i, crate::target::io_sense(e, false)),
            Some(Ok(())) => self.good(i),
            // Spurious wake-up: keep waiting.
            None => {
                self.cmds[i].state = CmdState::WaitBackground;
                Step::Park
            }
        }
    }

    /// Advance the background operations that are due.
    pub(crate) fn run_background<B: Backend>(&mut self, b: &mut B) -> bool {
        if self.bg_active == 0 {
            return false;
        }
        let mut moved = false;
        for l in 0..self.lus.len() {
            // A paced operation catches up after a late poll, a few steps at a time.
            for _ in 0..BG_BURST {
                if !self.bg_step(l, b) {
                    break;
                }
                moved = true;
            }
        }
        moved
    }

    /// Submit the next step of LU `l`'s background operation, if one is due.
    fn bg_step<B: Backend>(&mut self, l: usize, b: &mut B) -> bool {
        let Some(bg) = self.lus[l].bg else {
            return false;
        };
        if bg.io_in_flight || self.now < bg.next_at {
            return false;
        }
        let cfg = self.lus[l].cfg;
        let bs = u64::from(cfg.block_size);
        let step_bytes = if cfg.background_rate == 0 {
            MAX_ROUND * 16
        } else {
            (cfg.background_rate / 50).clamp(bs, MAX_ROUND * 16)
        };
        // Steps are whole allocation granules (and physical blocks), so that
        // a step boundary never splits a granule: an unmap step deallocates
        // every granule it covers, and after BLOCK ERASE or FORMAT UNIT
        // GET LBA STATUS reports the whole LU deallocated.
        let align = u64::from(cfg.unmap_granularity.max(1)).max(1 << cfg.pb_exp);
        let blocks = ((step_bytes / bs / align).max(1) * align).min(cfg.blocks - bg.next_lba);
        let (kind, with_buf) = match bg.kind {
            BgKind::Overwrite { .. } => (IoKind::WriteSame, true),
            BgKind::BlockErase if cfg.thin => (IoKind::Unmap, false),
            BgKind::BlockErase => (IoKind::WriteSame, true),
            BgKind::Format => (IoKind::Unmap, false),
        };
        let io_buf = match (with_buf, bg.buf) {
            (true, Some(pb)) => Some(self.pool.io_buf(pb, 0, bs as usize)),
            (true, None) => {
                self.finish_background(l, Err(crate::backend::IoError::Failed));
                return true;
            }
            (false, _) => None,
        };
        let io = crate::backend::Io {
            token: Self::bg_token(l),
            lun: cfg.backend,
            kind,
            lba: bg.next_lba,
            blocks,
            block_size: cfg.block_size,
            fua: false,
            buf: io_buf,
        };
        if let Some(op) = self.lus[l].bg.as_mut() {
            op.io_blocks = blocks;
        }
        match b.submit(&io) {
            Ok(Submitted::Done(r)) => {
                self.bg_io_done(l, r);
                true
            }
            Ok(Submitted::Queued) => {
                self.backend_queued += 1;
                if let Some(op) = self.lus[l].bg.as_mut() {
                    op.io_in_flight = true;
                }
                true
            }
            Err(_) => false,
        }
    }

    /// A step of LU `l`'s background operation finished.
    pub(crate) fn bg_io_done(&mut self, l: usize, result: Result<(), crate::backend::IoError>) {
        let (blocks, bs, rate) = match self.lus.get(l) {
            Some(lu) => (
                lu.cfg.blocks,
                u64::from(lu.cfg.block_size),
                lu.cfg.background_rate,
            ),
            None => return,
        };
        let Some(mut bg) = self.lus[l].bg else { return };
        bg.io_in_flight = false;
        if result.is_err() {
            self.lus[l].bg = Some(bg);
            self.finish_background(l, result);
            return;
        }
        bg.next_lba += bg.io_blocks;
        if rate > 0 {
            let ns = u128::from(bg.io_blocks * bs) * 1_000_000_000 / u128::from(rate);
            // Due when this step's bytes have "taken" their time at the
            // configured rate, counted from when this step was due.
            let d = core::time::Duration::from_nanos(ns.min(u128::from(u64::MAX)) as u64);
            bg.next_at = bg.next_at.saturating_add(d);
        }
        if bg.next_lba >= blocks {
            bg.next_lba = 0;
            bg.pass += 1;
            let passes = match bg.kind {
                BgKind::Overwrite { passes, .. } => passes,
                _ => 1,
            };
            if bg.pass >= passes {
                self.lus[l].bg = Some(bg);
                self.finish_background(l, Ok(()));
                return;
            }
            if let (BgKind::Overwrite { invert: true, .. }, Some(pb)) = (bg.kind, bg.buf) {
                // Invert the pattern between passes.
                let mut chunk = [0u8; 128];
                let mut at = 0;
                while at < bs as usize {
                    let n = (bs as usize - at).min(chunk.len());
                    let _ = self.pool.read(pb, at, &mut chunk[..n]);
                    for x in chunk[..n].iter_mut() {
                        *x = !*x;
                    }
                    let _ = self.pool.write(pb, at, &chunk[..n]);
                    at += n;
                }
                bg.inverted = !bg.inverted;
            }
        }
        self.lus[l].bg = Some(bg);
    }

    fn finish_background(&mut self, l: usize, result: Result<(), crate::backend::IoError>) {
        let Some(bg) = self.lus[l].bg.take() else {
            return;
        };
        self.lu_changed(l);
        self.bg_active = self.bg_active.saturating_sub(1);
        if let Some(pb) = bg.buf {
            self.pool.release(pb);
            if self.waiting_buffers {
                self.wake(CmdState::WaitBuffers);
            }
        }
        if result.is_err() && !matches!(bg.kind, BgKind::Format) {
            self.lus[l].sanitize_failed = true;
        }
        let w = usize::from(bg.waiter);
        if let Some(c) = self.cmds.get_mut(w)
            && c.generation == bg.waiter_gen
            && c.state == CmdState::WaitBackground
        {
            c.io_result = Some(result);
            self.enqueue(w);
        }
    }
}

/// Stage of SANITIZE / FORMAT UNIT waiting for their background operation.
const S_WAIT_BG: u8 = 20;
