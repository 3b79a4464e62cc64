//! Logical unit state: task set counters, ACA, reservations, medium, mode pages.

use super::cmd::NIL;
use super::config::SERIAL_MAX;
use super::pool::PoolBuf;
use crate::backend::BackendLun;
use crate::pr::PrState;
use crate::time::Instant;

/// Mode parameters that can change (control 0Ah, caching 08h).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct ModeValues {
    /// Caching: WCE.
    pub wce: bool,
    /// Control: D_SENSE.
    pub d_sense: bool,
    /// Control: QERR (00b, 01b or 11b).
    pub qerr: u8,
    /// Control: TAS.
    pub tas: bool,
    /// Control: SWP.
    pub swp: bool,
}

/// Copied configuration of a logical unit.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LuCfg {
    pub backend: BackendLun,
    pub block_size: u32,
    /// Logical blocks per physical block, log2.
    pub pb_exp: u8,
    pub blocks: u64,
    pub thin: bool,
    pub unmap_granularity: u32,
    pub read_only: bool,
    pub removable: bool,
    pub stoppable: bool,
    pub write_cache: bool,
    pub rotation_rate: u16,
    pub naa: [u8; 16],
    pub serial: [u8; SERIAL_MAX],
    pub serial_len: u8,
    pub lu_group: u16,
    pub max_transfer_blocks: u32,
    pub background_rate: u64,
}

/// What a background operation does.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BgKind {
    /// SANITIZE OVERWRITE: `passes` passes of the pattern block, inverted
    /// between passes when `invert`.
    Overwrite { passes: u8, invert: bool },
    /// SANITIZE BLOCK ERASE: deallocate (thin) or zero every block.
    BlockErase,
    /// FORMAT UNIT: deallocate (thin) or keep the data.
    Format,
}

/// A long-running operation of the LU, advanced by `poll` in paced steps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct BgOp {
    pub kind: BgKind,
    pub next_lba: u64,
    pub pass: u8,
    /// The pattern block (overwrite) in the buffer pool.
    pub buf: Option<PoolBuf>,
    /// The pattern currently in `buf` is the inverted one.
    pub inverted: bool,
    pub io_in_flight: bool,
    pub io_blocks: u64,
    pub next_at: Instant,
    /// Command waiting for completion (IMMED=0): index and generation.
    pub waiter: u16,
    pub waiter_gen: u16,
}

/// Per-LU counters (LOG SENSE pages 02h/03h).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LuStats {
    pub read_cmds: u64,
    pub write_cmds: u64,
    pub read_bytes: u64,
    pub write_bytes: u64,
}

/// A logical unit slot.
pub(crate) struct Lu {
    pub in_use: bool,
    pub cfg: LuCfg,
    // Task set (SAM-5 8): arrival-ordered list of the tasks in it.
    pub ts_head: u16,
    pub ts_tail: u16,
    pub n_tasks: u16,
    /// SIMPLE tasks counted but not on the list (all older than the list).
    pub unlisted: u16,
    pub n_blocking: u16,
    pub n_dormant: u16,
    /// Session index of the faulted I_T nexus of an ACA condition, or NIL.
    pub aca: u16,
    pub aca_tasks: u16,
    /// Resets in progress: new commands are held until they finish.
    pub resets: u8,
    /// Session index holding an SPC-2 reservation, or NIL.
    pub res2: u16,
    /// I_T nexuses with PREVENT set.
    pub prevent: u16,
    pub loaded: bool,
    pub started: bool,
    pub mode: ModeValues,
    pub saved: ModeValues,
    pub bg: Option<BgOp>,
    /// Commands holding or waiting for an LBA-range interlock.
    pub atomic: u16,
    pub sanitize_failed: bool,
    pub stats: LuStats,
    pub pr: PrState,
    /// Nothing that could hold or refuse a command is set: [`Lu::is_quiet`]
    /// as of the last change. Every place that changes one of the states it
    /// summarises calls `Target::lu_changed`; the receive checks take their
    /// short path only while it is set (false is always safe).
    pub quiet: bool,
}

impl Lu {
    pub(crate) const EMPTY: Lu = Lu {
        in_use: false,
        cfg: LuCfg {
            backend: BackendLun(0),
            block_size: 512,
            pb_exp: 0,
            blocks: 0,
            thin: false,
            unmap_granularity: 1,
            read_only: false,
            removable: false,
            stoppable: false,
            write_cache: false,
            rotation_rate: 1,
            naa: [0; 16],
            serial: [b' '; SERIAL_MAX],
            serial_len: 0,
            lu_group: 0,
            max_transfer_blocks: 0,
            background_rate: 0,
        },
        ts_head: NIL,
        ts_tail: NIL,
        n_tasks: 0,
        unlisted: 0,
        n_blocking: 0,
        n_dormant: 0,
        aca: NIL,
        aca_tasks: 0,
        resets: 0,
        res2: NIL,
        prevent: 0,
        loaded: true,
        started: true,
        mode: ModeValues {
            wce: false,
            d_sense: false,
            qerr: 0,
            tas: false,
            swp: false,
        },
        saved: ModeValues {
            wce: false,
            d_sense: false,
            qerr: 0,
            tas: false,
            swp: false,
        },
        bg: None,
        atomic: 0,
        sanitize_failed: false,
        stats: LuStats {
            read_cmds: 0,
            write_cmds: 0,
            read_bytes: 0,
            write_bytes: 0,
        },
        pr: PrState::EMPTY,
        quiet: false,
    };

    /// No reset in progress, no ACA condition, no SPC-2 or persistent
    /// reservation, no background operation, no ALUA restriction on the
    /// target, the medium loaded and started, not write-protected. Then the
    /// only checks left for a command are its own: the nexus's unit
    /// attentions, its task attribute and a read-only LUN map.
    pub(crate) fn is_quiet(&self, alua_restricted: bool) -> bool {
        self.in_use
            && self.resets == 0
            && self.aca == NIL
            && self.res2 == NIL
            && self.pr.res.is_none()
            && self.bg.is_none()
            && !alua_restricted
            && self.loaded
            && self.started
            && !self.mode.swp
            && !self.cfg.read_only
    }

    pub(crate) fn serial(&self) -> &[u8] {
        &self.cfg.serial[..usize::from(self.cfg.serial_len)]
    }

    /// Progress of the background operation in 65536ths.
    pub(crate) fn bg_progress(&self) -> u16 {
        match &self.bg {
            Some(bg) if self.cfg.blocks > 0 => {
                let passes = match bg.kind {
                    BgKind::Overwrite { passes, .. } => u64::from(passes.max(1)),
                    _ => 1,
                };
                let total = self.cfg.blocks.saturating_mul(passes);
                let done = self.cfg.blocks.saturating_mul(u64::from(bg.pass)) + bg.next_lba;
                (u128::from(done) * 65536 / u128::from(total.max(1))).min(65535) as u16
            }
            _ => 0,
        }
    }
}
