//! The command slot and its one state enum.

use core::fmt;

use super::pool::PoolBuf;
use crate::cdb::OpInfo;
use crate::ids::TaskTag;
use crate::memory::SegList;
use crate::sense::SenseReason;
use crate::time::Instant;
use crate::transport::{DataDirection, ScsiStatus, TaskAttr};

/// "No slot" in the intrusive lists.
pub(crate) const NIL: u16 = u16::MAX;

/// The life of a command. One `step` function advances a command by
/// matching on this, exhaustively; `Display` gives the state names.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CmdState {
    /// The slot is free.
    Free,
    /// Submitted: the first step checks the LU, ACA, unit attentions and the
    /// CDB, and enters the task set.
    Received,
    /// In the task set, waiting for older tasks (SAM-5 dormant state) or
    /// for a logical unit reset to finish.
    Dormant,
    /// Enabled: reservation, readiness and write-protection checks, then execution.
    Enabled,
    /// Executing: the command's handler runs its next stage.
    Exec,
    /// Waiting for chunks of the buffer pool.
    WaitBuffers,
    /// Waiting for overlapping commands to stop touching the same blocks
    /// (COMPARE AND WRITE, WRITE ATOMIC).
    WaitOverlap,
    /// Waiting for a background operation of the LU (SANITIZE, FORMAT UNIT
    /// without IMMED).
    WaitBackground,
    /// A PERSISTENT RESERVE OUT with PREEMPT AND ABORT waits for the tasks
    /// it aborted to leave the transport and the backend.
    WaitAborts,
    /// Data-Out requested from the transport; waiting for `data_out_done`.
    DataOut,
    /// A backend I/O is in flight.
    Backend,
    /// Data-In without status queued; waiting for `data_in_done`.
    DataIn,
    /// The status (and final data) is ready to be queued.
    Respond,
    /// The status is queued; waiting for `response_sent`.
    ResponseSent,
    /// Aborted: the transport is to be told (`command_aborted`).
    Aborting,
    /// Aborted: waiting for the transport's `abort_done`.
    AbortWait,
}

impl fmt::Display for CmdState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CmdState::Free => "free",
            CmdState::Received => "received",
            CmdState::Dormant => "dormant",
            CmdState::Enabled => "enabled",
            CmdState::Exec => "executing",
            CmdState::WaitBuffers => "waiting for buffers",
            CmdState::WaitOverlap => "waiting for overlapping commands",
            CmdState::WaitBackground => "waiting for background operation",
            CmdState::WaitAborts => "waiting for preempted tasks",
            CmdState::DataOut => "data-out pending",
            CmdState::Backend => "backend I/O pending",
            CmdState::DataIn => "data-in pending",
            CmdState::Respond => "ready to respond",
            CmdState::ResponseSent => "response pending",
            CmdState::Aborting => "aborting",
            CmdState::AbortWait => "waiting for abort completion",
        })
    }
}

/// Per-command flags parsed from the CDB.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub(crate) struct CmdFlags {
    pub fua: bool,
    pub immed: bool,
}

/// A command slot.
pub(crate) struct Cmd {
    pub generation: u16,
    /// Arrival order (interlock fairness).
    pub seq: u32,
    pub state: CmdState,
    /// Handler-specific progress within `Exec`.
    pub stage: u8,
    /// In the ready queue.
    pub queued: bool,
    pub next_ready: u16,
    /// Free list / task set links.
    pub next: u16,
    pub prev: u16,
    pub in_task_set: bool,
    /// On the task-set list (else only counted as unlisted).
    pub listed: bool,
    /// Counted as blocking (ORDERED/HEAD OF QUEUE) in the task set.
    pub blocking: bool,

    pub session: u16,
    /// Generation of the session when the command arrived.
    pub session_gen: u16,
    /// LU index, or `NIL` for an unmapped LUN.
    pub lu: u16,
    /// The initiator group maps the LU read-only.
    pub map_ro: bool,
    pub tag: TaskTag,
    pub attr: TaskAttr,
    pub cdb: [u8; 16],
    pub op: Option<&'static OpInfo>,
    pub dir: DataDirection,
    pub expected_len: u32,
    pub waiting_since: Instant,
    pub hw_pending_reported: bool,

    // Parsed.
    pub flags: CmdFlags,
    pub lba: u64,
    /// Blocks (block commands) or the allocation / parameter list length.
    pub count: u64,
    /// Handler scratch (descriptor index, pass counter ...).
    pub aux: u64,

    // Data.
    /// Bytes the command means to move in its direction (SPC residual basis).
    pub intended: u64,
    /// Bytes moved so far.
    pub done: u64,
    /// Bytes of the current round.
    pub round: u64,
    pub segs: SegList,
    /// Relative offset of `segs` within the command's data.
    pub seg_offset: u64,
    /// `segs` hold the final data, to be sent with the status.
    pub data_with_status: bool,
    pub buf: Option<PoolBuf>,
    /// This command takes part in the LBA-range interlock.
    pub media_active: bool,
    /// The LU of the interlocked range when it is not the command's own
    /// (EXTENDED COPY), else NIL.
    pub media_lu: u16,
    pub locks_range: bool,
    pub io_result: Option<Result<(), crate::backend::IoError>>,

    // Result.
    pub status: ScsiStatus,
    pub sense: Option<SenseReason>,
    /// QErr and ACA processing of a CHECK CONDITION has run.
    pub qerr_done: bool,

    // Aborts.
    pub aborted: bool,
    pub abort_tas: bool,
    /// Bit per TMF slot waiting for this command to finish.
    pub tmf_waiters: u8,
    /// Slot of a PREEMPT AND ABORT waiting for this command to finish, or NIL.
    pub pa_waiter: u16,
}

impl Cmd {
    pub(crate) const EMPTY: Cmd = Cmd {
        generation: 0,
        seq: 0,
        state: CmdState::Free,
        stage: 0,
        queued: false,
        next_ready: NIL,
        next: NIL,
        prev: NIL,
        in_task_set: false,
        listed: false,
        blocking: false,
        session: NIL,
        session_gen: 0,
        lu: NIL,
        map_ro: false,
        tag: TaskTag(0),
        attr: TaskAttr::Simple,
        cdb: [0; 16],
        op: None,
        dir: DataDirection::None,
        expected_len: 0,
        waiting_since: Instant::ZERO,
        hw_pending_reported: false,
        flags: CmdFlags {
            fua: false,
            immed: false,
        },
        lba: 0,
        count: 0,
        aux: 0,
        intended: 0,
        done: 0,
        round: 0,
        segs: SegList::new(),
        seg_offset: 0,
        data_with_status: false,
        buf: None,
        media_active: false,
        media_lu: NIL,
        locks_range: false,
        io_result: None,
        status: ScsiStatus::Good,
        sense: None,
        qerr_done: false,
        aborted: false,
        abort_tas: false,
        tmf_waiters: 0,
        pa_waiter: NIL,
    };

    /// Make a free slot a fresh command (the submit path): every field back
    /// to its initial value except the ready-queue links (a slot may still be
    /// linked there) and the scatter list's entries (only its length is reset,
    /// to keep this cheap). The destructuring names every field, so a new
    /// field cannot be forgotten.
    pub(crate) fn reset(&mut self, generation: u16, seq: u32) {
        let Cmd {
            generation: g,
            seq: q,
            state,
            stage,
            queued: _,
            next_ready: _,
            next,
            prev,
            in_task_set,
            listed,
            blocking,
            session,
            session_gen,
            lu,
            map_ro,
            tag,
            attr,
            cdb,
            op,
            dir,
            expected_len,
            waiting_since,
            hw_pending_reported,
            flags,
            lba,
            count,
            aux,
            intended,
            done,
            round,
            segs,
            seg_offset,
            data_with_status,
            buf,
            media_active,
            media_lu,
            locks_range,
            io_result,
            status,
            sense,
            qerr_done,
            aborted,
            abort_tas,
            tmf_waiters,
            pa_waiter,
        } = self;
        *g = generation;
        *q = seq;
        *state = CmdState::Free;
        *stage = 0;
        *next = NIL;
        *prev = NIL;
        *in_task_set = false;
        *listed = false;
        *blocking = false;
        *session = NIL;
        *session_gen = 0;
        *lu = NIL;
        *map_ro = false;
        *tag = TaskTag(0);
        *attr = TaskAttr::Simple;
        *cdb = [0; 16];
        *op = None;
        *dir = DataDirection::None;
        *expected_len = 0;
        *waiting_since = Instant::ZERO;
        *hw_pending_reported = false;
        *flags = CmdFlags::default();
        *lba = 0;
        *count = 0;
        *aux = 0;
        *intended = 0;
        *done = 0;
        *round = 0;
        segs.clear();
        *seg_offset = 0;
        *data_with_status = false;
        *buf = None;
        *media_active = false;
        *media_lu = NIL;
        *locks_range = false;
        *io_result = None;
        *status = ScsiStatus::Good;
        *sense = None;
        *qerr_done = false;
        *aborted = false;
        *abort_tas = false;
        *tmf_waiters = 0;
        *pa_waiter = NIL;
    }

    /// The LU whose blocks the interlocked range `lba .. lba + count` names.
    pub(crate) fn range_lu(&self) -> u16 {
        if self.media_lu == NIL {
            self.lu
        } else {
            self.media_lu
        }
    }

    /// Bytes the initiator expects in direction `dir` (0 if it announced another one).
    pub(crate) fn expected(&self, dir: DataDirection) -> u64 {
        if self.dir == dir {
            u64::from(self.expected_len)
        } else {
            0
        }
    }
}
