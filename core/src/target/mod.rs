//! The target: storage, configuration, sessions, submission, completions and
//! the poll loop.
//!
//! SAM-5 4-8 (the model: I_T nexus, task sets, task management, unit
//! attentions), SPC-5 5.14 (unit attention conditions).

mod cmd;
mod config;
mod express;
mod lu;
mod pool;
mod pr;
mod step;
mod taskset;
mod tmf;
mod xcopy;

use core::fmt;

pub use cmd::CmdState;
pub(crate) use cmd::{Cmd, NIL};
pub use config::{
    Access, AluaState, ConfigError, GroupId, HandleError, LuConfig, LuId, PHYSICAL_EXPONENT_MAX,
    PortConfig, Progress, SERIAL_MAX, SessionError, TargetConfig,
};
pub(crate) use lu::{BgKind, BgOp, Lu, LuCfg, ModeValues};
pub use pool::{BufferPool, BufferPoolError, MAX_CHUNKS};
pub(crate) use step::{Step, check, io_sense, need_buf};
pub use tmf::MAX_TMFS;
/// The copy manager's limits (VPD page 8Fh, OPERATING PARAMETERS).
pub(crate) mod xcopy_limits {
    pub(crate) use super::xcopy::{MAX_COPIES, MAX_CSCD, MAX_SEGMENTS};
}
pub(crate) use tmf::Tmf;

use crate::backend::{Backend, IoError, IoToken};
use crate::ids::{
    CmdHandle, Lun, RelativePortId, SessionHandle, TargetPortGroupId, TaskTag, TmfHandle,
    TransportId,
};
use crate::pr::{PrReg, PrStore};
use crate::sense::UnitAttention;
use crate::time::Instant;
use crate::tmf::TmfRequest;
use crate::transport::{CmdRef, CommandRequest, Rejected, TransferError, Transport};

/// Most target ports of one target.
pub const MAX_PORTS: usize = 8;
/// Most initiator groups (the default group included).
pub const MAX_GROUPS: usize = 4;

/// Per I_T_L nexus state.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Itl {
    /// Pending unit attentions, bit per [`UnitAttention`].
    pub ua: u16,
    /// PREVENT ALLOW MEDIUM REMOVAL set by this nexus.
    pub prevent: bool,
    /// Marked as preempted by the PERSISTENT RESERVE OUT being processed.
    pub pr_mark: bool,
    /// Cache of this nexus's registration slot on the LU (`NIL`: none),
    /// valid while `pr_epoch` equals the LU's `PrState::epoch`.
    pub pr_reg: u16,
    pub pr_epoch: u32,
}

impl Itl {
    const EMPTY: Itl = Itl {
        ua: 0,
        prevent: false,
        pr_mark: false,
        pr_reg: NIL,
        pr_epoch: 0,
    };
}

/// A LUN map entry of an initiator group.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapEntry {
    pub in_use: bool,
    pub lun: Lun,
    pub lu: u16,
    pub read_only: bool,
}

impl MapEntry {
    const EMPTY: MapEntry = MapEntry {
        in_use: false,
        lun: Lun(0),
        lu: NIL,
        read_only: false,
    };
}

/// An initiator named in a group.
#[derive(Clone, Debug)]
pub(crate) struct AclEntry {
    pub initiator: TransportId,
    pub group: u8,
}

impl AclEntry {
    const EMPTY: AclEntry = AclEntry {
        initiator: TransportId::EMPTY,
        group: 0,
    };
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum SessionState {
    Free,
    Active,
    /// Removed; waiting for its commands to finish.
    Closing,
    /// Gone; the slot remembers the initiator for 29/07 on its return.
    Lost,
}

/// An I_T nexus.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub generation: u16,
    pub state: SessionState,
    pub initiator: TransportId,
    pub port: RelativePortId,
    pub group: u8,
    /// Commands of this session in the pool.
    pub cmds: u16,
    pub lost_seq: u32,
    /// The last LUN looked up for this session, as the transport gave it,
    /// and what it named (LU or NIL, read-only) while the LUN maps were at
    /// `lun_gen` (`Target::map_gen`; 0: nothing cached).
    pub lun_raw: Lun,
    pub lun_lu: u16,
    pub lun_ro: bool,
    pub lun_gen: u64,
}

impl Session {
    const EMPTY: Session = Session {
        generation: 0,
        state: SessionState::Free,
        initiator: TransportId::EMPTY,
        port: RelativePortId(0),
        group: 0,
        cmds: 0,
        lost_seq: 0,
        lun_raw: Lun::ZERO,
        lun_lu: NIL,
        lun_ro: false,
        lun_gen: 0,
    };
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Port {
    pub cfg: PortConfig,
    pub in_use: bool,
    pub state: AluaState,
}

/// Counters of a target.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Stats {
    /// Commands accepted by [`Target::submit`].
    pub commands: u64,
    /// Commands refused with TASK SET FULL or BUSY.
    pub rejected: u64,
    /// Commands that ended with a status sent.
    pub completed: u64,
    /// Commands that ended aborted.
    pub aborted: u64,
    /// Task management requests accepted.
    pub tmfs: u64,
    /// Bytes described to the transport as Data-In.
    pub data_in_bytes: u64,
    /// Bytes requested from the transport as Data-Out.
    pub data_out_bytes: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} commands ({} completed, {} aborted, {} rejected), {} TMFs, {} bytes in, {} bytes out",
            self.commands,
            self.completed,
            self.aborted,
            self.rejected,
            self.tmfs,
            self.data_in_bytes,
            self.data_out_bytes
        )
    }
}

/// All per-command, per-nexus and per-LU state of a target, sized by const
/// generics: `CMDS` command slots, `SESSIONS` I_T nexuses, `LUNS` logical
/// units, and `REGS` persistent reservation registrations per logical unit
/// (default 8). Build it with the `const` [`TargetStorage::new`] (in a
/// `static`, a `StaticCell`, or on the heap of a host program) and lend it
/// to [`Target::new`].
pub struct TargetStorage<
    const CMDS: usize,
    const SESSIONS: usize,
    const LUNS: usize,
    const REGS: usize = 8,
> {
    cmds: [Cmd; CMDS],
    sessions: [Session; SESSIONS],
    lus: [Lu; LUNS],
    itl: [[Itl; LUNS]; SESSIONS],
    maps: [[MapEntry; LUNS]; MAX_GROUPS],
    acl: [AclEntry; SESSIONS],
    pr_regs: [[PrReg; REGS]; LUNS],
}

impl<const CMDS: usize, const SESSIONS: usize, const LUNS: usize, const REGS: usize> Default
    for TargetStorage<CMDS, SESSIONS, LUNS, REGS>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<const CMDS: usize, const SESSIONS: usize, const LUNS: usize, const REGS: usize>
    TargetStorage<CMDS, SESSIONS, LUNS, REGS>
{
    const CHECK: () = {
        assert!(CMDS > 0 && CMDS < NIL as usize, "CMDS must be 1..65535");
        assert!(
            SESSIONS > 0 && SESSIONS < NIL as usize,
            "SESSIONS must be 1..65535"
        );
        assert!(LUNS > 0 && LUNS < NIL as usize, "LUNS must be 1..65535");
        assert!(REGS > 0 && REGS < 256, "REGS must be 1..255");
    };

    /// Empty storage.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        TargetStorage {
            cmds: [Cmd::EMPTY; CMDS],
            sessions: [Session::EMPTY; SESSIONS],
            lus: [Lu::EMPTY; LUNS],
            itl: [[Itl::EMPTY; LUNS]; SESSIONS],
            maps: [[MapEntry::EMPTY; LUNS]; MAX_GROUPS],
            acl: [AclEntry::EMPTY; SESSIONS],
            pr_regs: [const { [PrReg::EMPTY; REGS] }; LUNS],
        }
    }
}

/// A SCSI target: logical units, their task sets and I_T nexuses, driven by
/// a transport and a backend through [`Target::poll`].
pub struct Target<'a> {
    pub(crate) cmds: &'a mut [Cmd],
    pub(crate) sessions: &'a mut [Session],
    pub(crate) lus: &'a mut [Lu],
    pub(crate) itl: &'a mut [Itl],
    pub(crate) maps: &'a mut [MapEntry],
    pub(crate) acl: &'a mut [AclEntry],
    /// Persistent reservation registrations, `pr_stride` per LU.
    pub(crate) pr_regs: &'a mut [PrReg],
    pub(crate) pr_stride: usize,
    pub(crate) pr_store: Option<&'a mut dyn PrStore>,
    pub(crate) pr_store_errors: u32,
    pub(crate) tmfs: [Tmf; MAX_TMFS],
    /// Held results of EXTENDED COPY operations (RECEIVE COPY RESULTS).
    pub(crate) copies: [xcopy::CopyRec; xcopy::MAX_COPIES],
    pub(crate) ports: [Port; MAX_PORTS],
    pub(crate) groups: [bool; MAX_GROUPS],
    pub(crate) pool: BufferPool<'a>,
    pub(crate) cfg: TargetConfig,
    pub(crate) free_head: u16,
    pub(crate) ready_head: u16,
    pub(crate) ready_tail: u16,
    pub(crate) ready_len: u16,
    pub(crate) now: Instant,
    /// Hints: commands may be parked waiting for buffers / overlapping I/O.
    pub(crate) waiting_buffers: bool,
    pub(crate) waiting_overlap: bool,
    /// New TMFs to start, TMF responses to queue.
    pub(crate) tmf_work: bool,
    pub(crate) lost_seq: u32,
    pub(crate) next_seq: u32,
    /// LUs with a background operation.
    pub(crate) bg_active: u16,
    /// Backend I/Os answered `Submitted::Queued` whose completion has not
    /// been reported yet: while it is 0, `poll` does not ask the backend.
    pub(crate) backend_queued: u32,
    /// Some port group is in a state that refuses media commands.
    pub(crate) alua_restricted: bool,
    /// Generation of the LUN maps, bumped by every change of any group's
    /// map; a session's cached lookup is valid only at the same value.
    pub(crate) map_gen: u64,
    pub(crate) stats: Stats,
}

impl fmt::Debug for Target<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Target({} commands, {} sessions, {} LUs, {:?})",
            self.cmds.len(),
            self.sessions.len(),
            self.lus.len(),
            self.pool
        )
    }
}

/// The bit of the token of background I/O.
const BG_TOKEN: u32 = 1 << 31;

impl<'a> Target<'a> {
    /// A target over `storage`, with `pool` for parameter data and emulated
    /// payloads.
    pub fn new<const C: usize, const S: usize, const L: usize, const R: usize>(
        storage: &'a mut TargetStorage<C, S, L, R>,
        pool: BufferPool<'a>,
        cfg: &TargetConfig,
    ) -> Target<'a> {
        let TargetStorage {
            cmds,
            sessions,
            lus,
            itl,
            maps,
            acl,
            pr_regs,
        } = storage;
        for (i, c) in cmds.iter_mut().enumerate() {
            *c = Cmd::EMPTY;
            c.next = if i + 1 < C { (i + 1) as u16 } else { NIL };
        }
        let mut groups = [false; MAX_GROUPS];
        groups[0] = true;
        Target {
            cmds,
            sessions,
            lus,
            itl: itl.as_flattened_mut(),
            maps: maps.as_flattened_mut(),
            acl,
            pr_regs: pr_regs.as_flattened_mut(),
            pr_stride: R,
            pr_store: None,
            pr_store_errors: 0,
            tmfs: [Tmf::EMPTY; MAX_TMFS],
            copies: [xcopy::CopyRec::EMPTY; xcopy::MAX_COPIES],
            ports: [Port {
                cfg: PortConfig::new(RelativePortId(0), TargetPortGroupId(0)),
                in_use: false,
                state: AluaState::ActiveOptimized,
            }; MAX_PORTS],
            groups,
            pool,
            cfg: cfg.clone(),
            free_head: 0,
            ready_head: NIL,
            ready_tail: NIL,
            ready_len: 0,
            now: Instant::ZERO,
            waiting_buffers: false,
            waiting_overlap: false,
            tmf_work: false,
            lost_seq: 0,
            next_seq: 0,
            bg_active: 0,
            backend_queued: 0,
            alua_restricted: false,
            map_gen: 1,
            stats: Stats::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TargetConfig {
        &self.cfg
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The buffer pool.
    pub fn buffer_pool(&self) -> &BufferPool<'a> {
        &self.pool
    }

    // ---------------------------------------------------------------- config

    /// Add a target port.
    pub fn add_port(&mut self, port: &PortConfig) -> Result<(), ConfigError> {
        if port.id.0 == 0 {
            return Err(ConfigError::Invalid);
        }
        if self.ports.iter().any(|p| p.in_use && p.cfg.id == port.id) {
            return Err(ConfigError::Duplicate);
        }
        let state = self
            .ports
            .iter()
            .find(|p| p.in_use && p.cfg.group == port.group)
            .map_or(AluaState::ActiveOptimized, |p| p.state);
        let slot = self
            .ports
            .iter_mut()
            .find(|p| !p.in_use)
            .ok_or(ConfigError::Full)?;
        *slot = Port {
            cfg: *port,
            in_use: true,
            state,
        };
        Ok(())
    }

    /// Change the asymmetric access state of a target port group; every I_T
    /// nexus gets ASYMMETRIC ACCESS STATE CHANGED on every LU.
    pub fn set_port_group_state(
        &mut self,
        group: TargetPortGroupId,
        state: AluaState,
    ) -> Result<(), ConfigError> {
        let mut found = false;
        for p in self
            .ports
            .iter_mut()
            .filter(|p| p.in_use && p.cfg.group == group)
        {
            found = true;
            p.state = state;
        }
        if !found {
            return Err(ConfigError::NotFound);
        }
        self.alua_restricted = self
            .ports
            .iter()
            .any(|p| p.in_use && matches!(p.state, AluaState::Standby | AluaState::Unavailable));
        for l in 0..self.lus.len() {
            self.lu_changed(l);
        }
        for l in 0..self.lus.len() {
            if self.lus[l].in_use {
                self.set_ua_all(l, UnitAttention::AsymmetricAccessStateChanged, None);
            }
        }
        Ok(())
    }

    pub(crate) fn port(&self, id: RelativePortId) -> Option<&Port> {
        self.ports.iter().find(|p| p.in_use && p.cfg.id == id)
    }

    /// Add a logical unit; map it with [`Target::map_lun`].
    pub fn add_lu(&mut self, cfg: &LuConfig<'_>) -> Result<LuId, ConfigError> {
        let bs = cfg.block_size;
        if !bs.is_power_of_two() || !(512..=65536).contains(&bs) || cfg.blocks == 0 {
            return Err(ConfigError::Invalid);
        }
        if !cfg.unmap_granularity.is_power_of_two()
            || cfg.physical_block_exponent > config::PHYSICAL_EXPONENT_MAX
        {
            return Err(ConfigError::Invalid);
        }
        let serial = cfg.serial.as_bytes();
        if serial.len() > SERIAL_MAX || !serial.iter().all(|c| (0x20..0x7f).contains(c)) {
            return Err(ConfigError::Invalid);
        }
        let l = self
            .lus
            .iter()
            .position(|l| !l.in_use)
            .ok_or(ConfigError::Full)?;
        let mut c = LuCfg {
            backend: cfg.backend,
            block_size: bs,
            pb_exp: cfg.physical_block_exponent,
            blocks: cfg.blocks,
            thin: cfg.thin,
            unmap_granularity: cfg.unmap_granularity,
            read_only: cfg.read_only,
            removable: cfg.removable,
            stoppable: cfg.stoppable,
            write_cache: cfg.write_cache,
            rotation_rate: cfg.rotation_rate,
            naa: cfg.naa,
            serial: [b' '; SERIAL_MAX],
            serial_len: serial.len() as u8,
            lu_group: cfg.lu_group,
            max_transfer_blocks: cfg.max_transfer_blocks,
            background_rate: cfg.background_rate,
        };
        c.serial[..serial.len()].copy_from_slice(serial);
        if c.naa == [0; 16] {
            c.naa = self.derived_naa(l);
        }
        let mode = ModeValues {
            wce: cfg.write_cache,
            d_sense: false,
            qerr: 0,
            tas: false,
            swp: false,
        };
        let lu = &mut self.lus[l];
        *lu = Lu::EMPTY;
        lu.in_use = true;
        lu.cfg = c;
        lu.mode = mode;
        lu.saved = mode;
        for r in self.lu_regs_mut(l) {
            *r = PrReg::EMPTY;
        }
        self.pr_restore(l);
        self.lu_changed(l);
        Ok(LuId(l as u16))
    }

    /// A locally assigned NAA (type 3) identifier from the target's identity
    /// and the LU's position, for LUs configured without one.
    fn derived_naa(&self, l: usize) -> [u8; 16] {
        // FNV-1a over vendor, product and the index.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in self
            .cfg
            .vendor
            .iter()
            .chain(&self.cfg.product)
            .chain(&(l as u32).to_be_bytes())
        {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut naa = [0u8; 16];
        naa[..8].copy_from_slice(&h.to_be_bytes());
        naa[0] = 0x30 | (naa[0] & 0x0f);
        naa
    }

    fn lu_index(&self, lu: LuId) -> Result<usize, ConfigError> {
        match self.lus.get(lu.index()) {
            Some(l) if l.in_use => Ok(lu.index()),
            _ => Err(ConfigError::NotFound),
        }
    }

    /// Change the capacity of a LU (the backend was resized); every I_T
    /// nexus gets CAPACITY DATA HAS CHANGED.
    pub fn resize_lu(&mut self, lu: LuId, blocks: u64) -> Result<(), ConfigError> {
        let l = self.lu_index(lu)?;
        if blocks == 0 {
            return Err(ConfigError::Invalid);
        }
        self.lus[l].cfg.blocks = blocks;
        self.set_ua_all(l, UnitAttention::CapacityDataChanged, None);
        Ok(())
    }

    /// Set the unit serial number of a LU; every I_T nexus gets INQUIRY
    /// DATA HAS CHANGED.
    pub fn set_lu_serial(&mut self, lu: LuId, serial: &str) -> Result<(), ConfigError> {
        let l = self.lu_index(lu)?;
        let s = serial.as_bytes();
        if s.len() > SERIAL_MAX || !s.iter().all(|c| (0x20..0x7f).contains(c)) {
            return Err(ConfigError::Invalid);
        }
        let cfg = &mut self.lus[l].cfg;
        cfg.serial = [b' '; SERIAL_MAX];
        cfg.serial[..s.len()].copy_from_slice(s);
        cfg.serial_len = s.len() as u8;
        self.set_ua_all(l, UnitAttention::InquiryDataChanged, None);
        Ok(())
    }

    /// Number of blocks of a LU.
    pub fn lu_blocks(&self, lu: LuId) -> Option<u64> {
        self.lu_index(lu).ok().map(|l| self.lus[l].cfg.blocks)
    }

    /// Add an initiator group with an empty LUN map.
    pub fn add_group(&mut self) -> Result<GroupId, ConfigError> {
        let g = self
            .groups
            .iter()
            .position(|u| !u)
            .ok_or(ConfigError::Full)?;
        self.groups[g] = true;
        Ok(GroupId(g as u8))
    }

    fn group_index(&self, g: GroupId) -> Result<usize, ConfigError> {
        match self.groups.get(usize::from(g.0)) {
            Some(true) => Ok(usize::from(g.0)),
            _ => Err(ConfigError::NotFound),
        }
    }

    /// Put an initiator (matched by [`TransportId::same_initiator`]) in a
    /// group; sessions it creates from now on use the group's LUN map.
    pub fn add_initiator(
        &mut self,
        group: GroupId,
        initiator: &TransportId,
    ) -> Result<(), ConfigError> {
        let g = self.group_index(group)?;
        if !initiator.is_valid() {
            return Err(ConfigError::Invalid);
        }
        if self
            .acl
            .iter()
            .any(|a| a.initiator.is_valid() && a.initiator.same_initiator(initiator))
        {
            return Err(ConfigError::Duplicate);
        }
        let slot = self
            .acl
            .iter_mut()
            .find(|a| !a.initiator.is_valid())
            .ok_or(ConfigError::Full)?;
        slot.initiator = initiator.clone();
        slot.group = g as u8;
        Ok(())
    }

    fn acl_group(&self, initiator: &TransportId) -> u8 {
        self.acl
            .iter()
            .find(|a| a.initiator.is_valid() && a.initiator.same_initiator(initiator))
            .map_or(0, |a| a.group)
    }

    /// Make `lu` visible as `lun` to the initiators of `group`. Their
    /// sessions get REPORTED LUNS DATA HAS CHANGED on their other LUs and
    /// POWER ON, RESET on the new one.
    pub fn map_lun(
        &mut self,
        group: GroupId,
        lun: Lun,
        lu: LuId,
        access: Access,
    ) -> Result<(), ConfigError> {
        let g = self.group_index(group)?;
        let l = self.lu_index(lu)?;
        let lun = lun.normalized();
        let stride = self.lus.len();
        let map = &mut self.maps[g * stride..(g + 1) * stride];
        if map.iter().any(|e| e.in_use && e.lun == lun) {
            return Err(ConfigError::Duplicate);
        }
        // A LU the group sees already (at another LUN) is not new to its nexuses.
        let known = map.iter().any(|e| e.in_use && usize::from(e.lu) == l);
        let e = map
            .iter_mut()
            .find(|e| !e.in_use)
            .ok_or(ConfigError::Full)?;
        *e = MapEntry {
            in_use: true,
            lun,
            lu: l as u16,
            read_only: access == Access::ReadOnly,
        };
        self.lun_map_changed(g, (!known).then_some(l));
        Ok(())
    }

    /// Remove `lun` from the map of `group`. Its commands in flight finish;
    /// the group's sessions get REPORTED LUNS DATA HAS CHANGED.
    pub fn unmap_lun(&mut self, group: GroupId, lun: Lun) -> Result<(), ConfigError> {
        let g = self.group_index(group)?;
        let lun = lun.normalized();
        let stride = self.lus.len();
        let e = self.maps[g * stride..(g + 1) * stride]
            .iter_mut()
            .find(|e| e.in_use && e.lun == lun)
            .ok_or(ConfigError::NotFound)?;
        *e = MapEntry::EMPTY;
        self.lun_map_changed(g, None);
        Ok(())
    }

    fn lun_map_changed(&mut self, g: usize, new_lu: Option<usize>) {
        // Every session's cached LUN lookup is stale now.
        self.map_gen += 1;
        let stride = self.lus.len();
        for s in 0..self.sessions.len() {
            if self.sessions[s].state != SessionState::Active
                || usize::from(self.sessions[s].group) != g
            {
                continue;
            }
            for e in 0..stride {
                let entry = self.maps[g * stride + e];
                if !entry.in_use {
                    continue;
                }
                let l = usize::from(entry.lu);
                if Some(l) == new_lu {
                    self.set_ua(s, l, UnitAttention::PowerOnReset);
                } else {
                    self.set_ua(s, l, UnitAttention::ReportedLunsDataChanged);
                }
            }
        }
    }

    /// The LU and read-only flag `lun` names for a session's group.
    pub(crate) fn lookup_lun(&self, group: u8, lun: Lun) -> Option<(u16, bool)> {
        self.lookup_normalized(group, lun.normalized())
    }

    /// [`Self::lookup_lun`] of a LUN already in [`Lun::normalized`] form.
    fn lookup_normalized(&self, group: u8, lun: Lun) -> Option<(u16, bool)> {
        let stride = self.lus.len();
        let g = usize::from(group);
        self.maps
            .get(g * stride..(g + 1) * stride)?
            .iter()
            .find(|e| e.in_use && e.lun == lun)
            .map(|e| (e.lu, e.read_only))
    }

    /// [`Self::lookup_lun`] for session `s`, remembered in the session.
    #[inline(never)]
    fn lookup_cached(&mut self, s: usize, lun: Lun) -> (u16, bool) {
        let group = self.sessions[s].group;
        let (lu, ro) = self.lookup_lun(group, lun).unwrap_or((NIL, false));
        let map_gen = self.map_gen;
        let sess = &mut self.sessions[s];
        sess.lun_raw = lun;
        sess.lun_lu = lu;
        sess.lun_ro = ro;
        sess.lun_gen = map_gen;
        (lu, ro)
    }

    /// The map entries of a group (REPORT LUNS).
    pub(crate) fn group_map(&self, group: u8) -> &[MapEntry] {
        let stride = self.lus.len();
        let g = usize::from(group);
        self.maps.get(g * stride..(g + 1) * stride).unwrap_or(&[])
    }

    // -------------------------------------------------------------- sessions

    /// A new I_T nexus of `initiator` through `port`. Every LU it sees gets
    /// POWER ON, RESET (29/00), or I_T NEXUS LOSS OCCURRED (29/07) if this
    /// initiator port lost its nexus on this port before.
    pub fn create_session(
        &mut self,
        initiator: &TransportId,
        port: RelativePortId,
    ) -> Result<SessionHandle, SessionError> {
        if !initiator.is_valid() {
            return Err(SessionError::InvalidInitiator);
        }
        if self.port(port).is_none() {
            return Err(SessionError::UnknownPort);
        }
        let returning = self.sessions.iter().position(|s| {
            s.state == SessionState::Lost && s.port == port && s.initiator == *initiator
        });
        let (s, ua) = match returning {
            Some(s) => (s, UnitAttention::NexusLoss),
            None => {
                let s = match self
                    .sessions
                    .iter()
                    .position(|s| s.state == SessionState::Free)
                {
                    Some(s) => s,
                    None => self
                        .sessions
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| s.state == SessionState::Lost)
                        .min_by_key(|(_, s)| s.lost_seq)
                        .map(|(i, _)| i)
                        .ok_or(SessionError::Full)?,
                };
                (s, UnitAttention::PowerOnReset)
            }
        };
        let group = self.acl_group(initiator);
        let sess = &mut self.sessions[s];
        sess.generation = sess.generation.wrapping_add(1);
        sess.state = SessionState::Active;
        sess.initiator = initiator.clone();
        sess.port = port;
        sess.group = group;
        sess.cmds = 0;
        sess.lun_gen = 0;
        let generation = sess.generation;
        let stride = self.lus.len();
        for e in &mut self.itl[s * stride..(s + 1) * stride] {
            *e = Itl {
                ua: ua.bit(),
                ..Itl::EMPTY
            };
        }
        info!("session {} created", s as u32);
        Ok(SessionHandle::new(s as u16, generation))
    }

    /// The I_T nexus is gone (logout, link loss). Its commands are aborted
    /// (the transport gets `command_aborted` for each and completes them with
    /// `abort_done`, or `response_sent` for those whose status was already
    /// queued), its SPC-2 reservations, PREVENT state and ACA are released.
    ///
    /// Its task management requests whose response is not queued yet get no
    /// response: each is dropped at a later [`Target::poll`], once the
    /// commands it affected have finished, with
    /// [`Transport::tmf_dropped`](crate::Transport::tmf_dropped) — the
    /// transport ends their wire state itself (FC: terminate the TMF's
    /// exchange, BA_RJT an ABTS). A request whose response was already queued
    /// completes normally with `tmf_response_sent`.
    pub fn remove_session(&mut self, session: SessionHandle) -> Result<(), HandleError> {
        let s = self.session_index(session).ok_or(HandleError::Stale)?;
        for j in 0..self.cmds.len() {
            if self.cmds[j].state != CmdState::Free && usize::from(self.cmds[j].session) == s {
                self.abort_cmd(j, false, None);
            }
        }
        self.release_nexus(s);
        for r in self.copies.iter_mut() {
            if usize::from(r.session) == s {
                *r = xcopy::CopyRec::EMPTY;
            }
        }
        for t in self.tmfs.iter_mut() {
            if t.in_use() && usize::from(t.session) == s {
                t.orphan = true;
            }
        }
        self.tmf_work = true;
        self.lost_seq = self.lost_seq.wrapping_add(1);
        let sess = &mut self.sessions[s];
        sess.lost_seq = self.lost_seq;
        sess.state = if sess.cmds > 0 {
            SessionState::Closing
        } else {
            SessionState::Lost
        };
        info!("session {} removed", s as u32);
        Ok(())
    }

    /// Release what an I_T nexus holds on every LU: SPC-2 reservations,
    /// PREVENT, an ACA it faulted.
    pub(crate) fn release_nexus(&mut self, s: usize) {
        let stride = self.lus.len();
        for l in 0..stride {
            let itl = &mut self.itl[s * stride + l];
            let had_prevent = core::mem::replace(&mut itl.prevent, false);
            let lu = &mut self.lus[l];
            if had_prevent {
                lu.prevent = lu.prevent.saturating_sub(1);
            }
            if usize::from(lu.res2) == s {
                lu.res2 = NIL;
            }
            if usize::from(lu.aca) == s {
                self.clear_aca(l);
            }
            self.lu_changed(l);
        }
    }

    pub(crate) fn session_index(&self, h: SessionHandle) -> Option<usize> {
        let s = self.sessions.get(h.index())?;
        (s.state == SessionState::Active && s.generation == h.generation()).then_some(h.index())
    }

    /// Number of live I_T nexuses.
    pub fn session_count(&self) -> usize {
        self.sessions
            .iter()
            .filter(|s| s.state == SessionState::Active)
            .count()
    }

    /// Recompute LU `l`'s [`Lu::quiet`] after a change of any state it
    /// summarises (reset, ACA, reservations, background operation, ALUA,
    /// medium, write protection).
    pub(crate) fn lu_changed(&mut self, l: usize) {
        let alua = self.alua_restricted;
        if let Some(lu) = self.lus.get_mut(l) {
            lu.quiet = lu.is_quiet(alua);
        }
    }

    // ---------------------------------------------------------- unit attention

    pub(crate) fn set_ua(&mut self, s: usize, l: usize, ua: UnitAttention) {
        let stride = self.lus.len();
        if let Some(e) = self.itl.get_mut(s * stride + l) {
            if ua.is_reset() {
                e.ua = ua.bit();
            } else {
                e.ua |= ua.bit();
            }
        }
    }

    /// Establish `ua` on every live I_T nexus of LU `l`, except `except`.
    pub(crate) fn set_ua_all(&mut self, l: usize, ua: UnitAttention, except: Option<usize>) {
        for s in 0..self.sessions.len() {
            if self.sessions[s].state == SessionState::Active && Some(s) != except {
                self.set_ua(s, l, ua);
            }
        }
    }

    pub(crate) fn pending_ua(&self, s: usize, l: usize) -> u16 {
        self.itl.get(s * self.lus.len() + l).map_or(0, |e| e.ua)
    }

    /// Take the first pending unit attention of an I_T_L nexus.
    #[inline]
    pub(crate) fn pop_ua(&mut self, s: usize, l: usize) -> Option<UnitAttention> {
        let stride = self.lus.len();
        let e = self.itl.get_mut(s * stride + l)?;
        if e.ua == 0 {
            return None;
        }
        Self::pop_ua_bit(e)
    }

    /// [`Self::pop_ua`] once one is pending.
    #[inline(never)]
    fn pop_ua_bit(e: &mut Itl) -> Option<UnitAttention> {
        // Bits are in reporting order: the lowest set one goes first.
        let ua = *UnitAttention::ALL.get(e.ua.trailing_zeros() as usize)?;
        e.ua &= !ua.bit();
        Some(ua)
    }

    pub(crate) fn clear_ua(&mut self, s: usize, l: usize, ua: UnitAttention) {
        let stride = self.lus.len();
        if let Some(e) = self.itl.get_mut(s * stride + l) {
            e.ua &= !ua.bit();
        }
    }

    pub(crate) fn itl_mut(&mut self, s: usize, l: usize) -> Option<&mut Itl> {
        let stride = self.lus.len();
        self.itl.get_mut(s * stride + l)
    }

    // ---------------------------------------------------------- submission

    /// Accept a command. `Err` means no slot was taken: the transport answers
    /// with [`Rejected::status`] itself.
    pub fn submit(&mut self, req: &CommandRequest<'_>) -> Result<CmdHandle, Rejected> {
        let (i, h) = self.submit_slot(req)?;
        self.enqueue(i);
        Ok(h)
    }

    /// [`Self::submit`] up to the ready queue: the slot taken and filled,
    /// in `Received`, not queued yet.
    #[inline(always)]
    fn submit_slot(&mut self, req: &CommandRequest<'_>) -> Result<(usize, CmdHandle), Rejected> {
        let h = req.session;
        let s = h.index();
        // The session looked up once (`session_index`'s test on the borrow).
        let Some(sess) = self
            .sessions
            .get(s)
            .filter(|x| x.state == SessionState::Active && x.generation == h.generation())
        else {
            return Err(Rejected::UnknownSession);
        };
        let i = usize::from(self.free_head);
        if i >= self.cmds.len() {
            self.stats.rejected += 1;
            return Err(if sess.cmds > 0 {
                Rejected::TaskSetFull
            } else {
                Rejected::Busy
            });
        }
        let session_gen = sess.generation;
        // The session's last LUN again (the usual case): what it named then,
        // unless a LUN map changed since.
        let (lu, map_ro) = if sess.lun_gen == self.map_gen && sess.lun_raw == req.lun {
            (sess.lun_lu, sess.lun_ro)
        } else {
            self.lookup_cached(s, req.lun)
        };
        let cdb = cdb16(req.cdb);
        self.next_seq = self.next_seq.wrapping_add(1);
        let (Some(c), Some(sess)) = (self.cmds.get_mut(i), self.sessions.get_mut(s)) else {
            // Both were found above.
            return Err(Rejected::Busy);
        };
        sess.cmds += 1;
        self.free_head = c.next;
        let generation = c.generation;
        c.reset(generation, self.next_seq);
        c.state = CmdState::Received;
        c.session = s as u16;
        c.session_gen = session_gen;
        c.lu = lu;
        c.map_ro = map_ro;
        c.tag = req.tag;
        c.attr = req.attr;
        c.cdb = cdb;
        c.dir = req.dir;
        c.expected_len = req.expected_len;
        self.stats.commands += 1;
        Ok((i, CmdHandle::new(i as u16, generation)))
    }

    /// Accept a task management request. `Err(Rejected::Busy)`: every TMF
    /// slot is in use; the transport answers FUNCTION REJECTED or retries.
    pub fn submit_tmf(&mut self, req: &TmfRequest) -> Result<TmfHandle, Rejected> {
        let s = self
            .session_index(req.session)
            .ok_or(Rejected::UnknownSession)?;
        let k = self
            .tmfs
            .iter()
            .position(|t| !t.in_use())
            .ok_or(Rejected::Busy)?;
        let t = &mut self.tmfs[k];
        let generation = t.generation.wrapping_add(1);
        *t = Tmf::new(generation, s as u16, req);
        self.tmf_work = true;
        self.stats.tmfs += 1;
        Ok(TmfHandle::new(k as u16, generation))
    }

    // ---------------------------------------------------------- completions

    fn cmd_index(&self, h: CmdHandle) -> Result<usize, HandleError> {
        match self.cmds.get(h.index()) {
            Some(c) if c.state != CmdState::Free && c.generation == h.generation() => Ok(h.index()),
            _ => Err(HandleError::Stale),
        }
    }

    /// The command's view for transport calls.
    pub(crate) fn cmd_ref(&self, i: usize) -> CmdRef {
        let c = &self.cmds[i];
        CmdRef {
            handle: CmdHandle::new(i as u16, c.generation),
            session: SessionHandle::new(c.session, c.session_gen),
            tag: c.tag,
        }
    }

    /// A completion arrived for a command we aborted meanwhile: ignore it.
    fn aborting(&self, i: usize) -> bool {
        matches!(self.cmds[i].state, CmdState::Aborting | CmdState::AbortWait)
    }

    /// The Data-Out requested by [`Transport::request_data_out`] has landed.
    /// An error ends the command as aborted (`command_aborted`, then `abort_done`).
    pub fn data_out_done(
        &mut self,
        cmd: CmdHandle,
        result: Result<(), TransferError>,
    ) -> Result<(), HandleError> {
        let i = self.cmd_index(cmd)?;
        if self.aborting(i) {
            return Ok(());
        }
        if self.cmds[i].state != CmdState::DataOut {
            return Err(HandleError::WrongState);
        }
        self.transfer_done(i, result);
        Ok(())
    }

    /// The Data-In queued without status by [`Transport::queue_data_in`] is out.
    pub fn data_in_done(
        &mut self,
        cmd: CmdHandle,
        result: Result<(), TransferError>,
    ) -> Result<(), HandleError> {
        let i = self.cmd_index(cmd)?;
        if self.aborting(i) {
            return Ok(());
        }
        if self.cmds[i].state != CmdState::DataIn {
            return Err(HandleError::WrongState);
        }
        self.transfer_done(i, result);
        Ok(())
    }

    fn transfer_done(&mut self, i: usize, result: Result<(), TransferError>) {
        let c = &mut self.cmds[i];
        c.state = CmdState::Exec;
        c.hw_pending_reported = false;
        if let Err(e) = result {
            debug!("{}: {}", i as u32, e);
            c.aborted = true;
            c.abort_tas = false;
        }
        self.enqueue(i);
    }

    /// The status queued by [`Transport::queue_status`] or
    /// [`Transport::queue_data_in`] was sent (or could not be: `Err`). Frees the slot.
    #[inline]
    pub fn response_sent(
        &mut self,
        cmd: CmdHandle,
        result: Result<(), TransferError>,
    ) -> Result<(), HandleError> {
        // The usual case in one look: the live command, waiting for this.
        let i = cmd.index();
        let expected = self
            .cmds
            .get(i)
            .is_some_and(|c| c.generation == cmd.generation() && c.state == CmdState::ResponseSent);
        if !expected {
            let i = self.cmd_index(cmd)?;
            if self.aborting(i) {
                return Ok(());
            }
            return Err(HandleError::WrongState);
        }
        if result.is_ok() {
            self.stats.completed += 1;
        } else {
            self.stats.aborted += 1;
        }
        self.free_answered(i);
        Ok(())
    }

    /// [`Self::free_cmd`] of a command whose status was sent: when it holds
    /// nothing (no buffer, no interlocked range, not in the task set, no
    /// TMF or PREEMPT AND ABORT waiting for it, no command waiting for its
    /// blocks) only the slot and its session's count change, done here
    /// inline; anything else goes through `free_cmd`.
    #[inline(always)]
    fn free_answered(&mut self, i: usize) {
        let waiting_overlap = self.waiting_overlap;
        let free_head = self.free_head;
        let c = &mut self.cmds[i];
        if c.buf.is_some()
            || c.in_task_set
            || c.locks_range
            || c.tmf_waiters != 0
            || c.pa_waiter != NIL
            || (c.media_active && waiting_overlap)
        {
            return self.free_cmd(i);
        }
        let s = usize::from(c.session);
        c.generation = c.generation.wrapping_add(1);
        c.state = CmdState::Free;
        c.next = free_head;
        c.media_active = false;
        c.aborted = false;
        c.lu = NIL;
        c.session = NIL;
        self.free_head = i as u16;
        if let Some(sess) = self.sessions.get_mut(s) {
            sess.cmds = sess.cmds.saturating_sub(1);
            if sess.state == SessionState::Closing && sess.cmds == 0 {
                sess.state = SessionState::Lost;
            }
        }
    }

    /// The transport has terminated the exchange of a command it was told
    /// [`Transport::command_aborted`] of; no transfer of it touches memory
    /// any more. Frees the slot.
    pub fn abort_done(&mut self, cmd: CmdHandle) -> Result<(), HandleError> {
        let i = self.cmd_index(cmd)?;
        if self.cmds[i].state != CmdState::AbortWait {
            return Err(HandleError::WrongState);
        }
        self.stats.aborted += 1;
        self.free_cmd(i);
        Ok(())
    }

    /// The response queued by [`Transport::queue_tmf_response`] was sent. Frees the slot.
    pub fn tmf_response_sent(&mut self, tmf: TmfHandle) -> Result<(), HandleError> {
        let t = self.tmfs.get_mut(tmf.index()).ok_or(HandleError::Stale)?;
        if !t.in_use() || t.generation != tmf.generation() {
            return Err(HandleError::Stale);
        }
        if t.state != tmf::TmfState::Sent {
            return Err(HandleError::WrongState);
        }
        t.state = tmf::TmfState::Free;
        Ok(())
    }

    /// A backend I/O finished.
    fn io_done(&mut self, token: IoToken, result: Result<(), IoError>) {
        let raw = token.raw();
        if raw & BG_TOKEN != 0 {
            self.bg_io_done((raw & !BG_TOKEN) as usize, result);
            return;
        }
        let (i, generation) = ((raw & 0xffff) as usize, (raw >> 16) as u16 & 0x7fff);
        let Some(c) = self.cmds.get_mut(i) else {
            return;
        };
        if c.state != CmdState::Backend || c.generation & 0x7fff != generation {
            warn!("stale backend completion {}", raw);
            return;
        }
        c.io_result = Some(result);
        c.state = CmdState::Exec;
        self.enqueue(i);
    }

    pub(crate) fn io_token(&self, i: usize) -> IoToken {
        IoToken::new(i as u32 | u32::from(self.cmds[i].generation & 0x7fff) << 16)
    }

    pub(crate) fn bg_token(l: usize) -> IoToken {
        IoToken::new(l as u32 | BG_TOKEN)
    }

    // ---------------------------------------------------------- queues

    pub(crate) fn enqueue(&mut self, i: usize) {
        let c = &mut self.cmds[i];
        if c.queued {
            return;
        }
        c.queued = true;
        c.next_ready = NIL;
        match self.cmds.get_mut(usize::from(self.ready_tail)) {
            Some(t) => t.next_ready = i as u16,
            None => self.ready_head = i as u16,
        }
        self.ready_tail = i as u16;
        self.ready_len += 1;
    }

    fn dequeue(&mut self) -> Option<usize> {
        let i = usize::from(self.ready_head);
        let c = self.cmds.get_mut(i)?;
        self.ready_head = c.next_ready;
        c.queued = false;
        c.next_ready = NIL;
        if self.ready_head == NIL {
            self.ready_tail = NIL;
        }
        self.ready_len -= 1;
        Some(i)
    }

    /// Return a slot to the free list, releasing what it holds.
    pub(crate) fn free_cmd(&mut self, i: usize) {
        self.leave_task_set(i);
        let c = &mut self.cmds[i];
        let buf = c.buf.take();
        let (s, l, waiters, locks) = (
            usize::from(c.session),
            usize::from(c.lu),
            c.tmf_waiters,
            c.locks_range,
        );
        let media = c.media_active;
        let pa_waiter = core::mem::replace(&mut c.pa_waiter, NIL);
        // `submit` initialises every field; here only what scans of the
        // pool look at is reset.
        c.generation = c.generation.wrapping_add(1);
        c.state = CmdState::Free;
        c.next = self.free_head;
        c.tmf_waiters = 0;
        c.media_active = false;
        c.locks_range = false;
        c.aborted = false;
        c.lu = NIL;
        c.session = NIL;
        self.free_head = i as u16;
        if let Some(b) = buf {
            self.pool.release(b);
            if self.waiting_buffers {
                self.wake(CmdState::WaitBuffers);
            }
        }
        if locks && let Some(lu) = self.lus.get_mut(l) {
            lu.atomic = lu.atomic.saturating_sub(1);
        }
        if (media || locks) && self.waiting_overlap {
            self.wake(CmdState::WaitOverlap);
        }
        if let Some(sess) = self.sessions.get_mut(s) {
            sess.cmds = sess.cmds.saturating_sub(1);
            if sess.state == SessionState::Closing && sess.cmds == 0 {
                sess.state = SessionState::Lost;
            }
        }
        if waiters != 0 {
            self.tmf_cmd_finished(waiters);
        }
        if let Some(w) = self.cmds.get(usize::from(pa_waiter))
            && w.state == CmdState::WaitAborts
        {
            self.enqueue(usize::from(pa_waiter));
        }
    }

    /// Requeue every command parked in `state`.
    pub(crate) fn wake(&mut self, state: CmdState) {
        match state {
            CmdState::WaitBuffers => self.waiting_buffers = false,
            CmdState::WaitOverlap => self.waiting_overlap = false,
            _ => {}
        }
        for i in 0..self.cmds.len() {
            if self.cmds[i].state == state {
                self.enqueue(i);
            }
        }
    }

    // ---------------------------------------------------------- poll

    /// Advance everything that can move: backend completions, task
    /// management, background operations, then every queued command.
    ///
    /// The usual poll after an express command finds nothing to do; that
    /// test is compiled into the caller, the work out of line.
    #[inline]
    pub fn poll<T: Transport, B: Backend>(
        &mut self,
        now: Instant,
        t: &mut T,
        b: &mut B,
    ) -> Progress {
        self.now = now;
        if self.backend_queued == 0
            && self.ready_len == 0
            && !self.tmf_work
            && self.bg_active == 0
            && self.cfg.hw_pending_timeout.is_none()
        {
            return Progress::Idle;
        }
        self.poll_work(t, b)
    }

    #[inline(never)]
    fn poll_work<T: Transport, B: Backend>(&mut self, t: &mut T, b: &mut B) -> Progress {
        let mut moved = false;
        if self.backend_queued > 0 {
            let pool = self.pool.memory();
            b.complete(pool, &mut |token, r| {
                moved = true;
                self.backend_queued = self.backend_queued.saturating_sub(1);
                self.io_done(token, r);
            });
        }
        if self.tmf_work {
            moved |= self.run_tmfs(t);
        }
        moved |= self.run_background(b);
        let mut n = self.ready_len;
        while n > 0 {
            n -= 1;
            let Some(i) = self.dequeue() else { break };
            moved |= self.run(i, t, b);
        }
        if self.tmf_work {
            moved |= self.run_tmfs(t);
        }
        if self.cfg.hw_pending_timeout.is_some() {
            self.check_hw_pending(t);
        }
        if moved {
            Progress::Progressed
        } else {
            Progress::Idle
        }
    }

    /// Step one command until it parks; true if it moved.
    fn run<T: Transport, B: Backend>(&mut self, i: usize, t: &mut T, b: &mut B) -> bool {
        let mut moved = false;
        loop {
            match self.step(i, t, b) {
                Step::Continue => moved = true,
                Step::Park => return true,
                Step::Retry => {
                    self.enqueue(i);
                    return moved;
                }
                Step::Yield => {
                    self.enqueue(i);
                    return true;
                }
            }
        }
    }

    /// When [`Target::poll`] must run next: `Some(now)` while work is queued,
    /// the next background-operation or hardware-pending deadline, or `None`
    /// until an external event (a submission or completion).
    pub fn poll_at(&self, now: Instant) -> Option<Instant> {
        if self.ready_len > 0 || self.tmf_work {
            return Some(now);
        }
        let mut at: Option<Instant> = None;
        let mut take = |x: Instant| at = Some(at.map_or(x, |a| a.min(x)));
        for lu in self.lus.iter() {
            if let Some(bg) = &lu.bg
                && !bg.io_in_flight
            {
                take(bg.next_at.max(now));
            }
        }
        if let Some(timeout) = self.cfg.hw_pending_timeout {
            for c in self.cmds.iter() {
                if self.hw_waiting(c) && !c.hw_pending_reported {
                    take(c.waiting_since.saturating_add(timeout).max(now));
                }
            }
        }
        at
    }

    fn hw_waiting(&self, c: &Cmd) -> bool {
        matches!(
            c.state,
            CmdState::DataOut | CmdState::DataIn | CmdState::ResponseSent | CmdState::AbortWait
        )
    }

    fn check_hw_pending<T: Transport>(&mut self, t: &mut T) {
        let Some(timeout) = self.cfg.hw_pending_timeout else {
            return;
        };
        for i in 0..self.cmds.len() {
            let c = &self.cmds[i];
            if self.hw_waiting(c)
                && !c.hw_pending_reported
                && self.now >= c.waiting_since.saturating_add(timeout)
            {
                self.cmds[i].hw_pending_reported = true;
                warn!("command {} pending in hardware too long", i as u32);
                let r = self.cmd_ref(i);
                t.hw_pending_timeout(r);
            }
        }
    }

    // ---------------------------------------------------------- introspection

    /// The state of a command (tests and diagnostics).
    pub fn cmd_state(&self, cmd: CmdHandle) -> Option<CmdState> {
        self.cmd_index(cmd).ok().map(|i| self.cmds[i].state)
    }

    /// Number of command slots (`CMDS`): every [`CmdHandle::index`] is below
    /// it, so a transport can size a per-command table of its own.
    pub fn command_slots(&self) -> usize {
        self.cmds.len()
    }

    /// Number of session slots (`SESSIONS`): every [`SessionHandle::index`] is below it.
    pub fn session_slots(&self) -> usize {
        self.sessions.len()
    }

    /// Commands in the pool.
    pub fn active_commands(&self) -> usize {
        self.cmds
            .iter()
            .filter(|c| c.state != CmdState::Free)
            .count()
    }

    /// Whether a tag is live on a session (tests and diagnostics).
    pub fn find_task(&self, session: SessionHandle, tag: TaskTag) -> Option<CmdHandle> {
        let s = self.session_index(session)?;
        self.cmds.iter().enumerate().find_map(|(i, c)| {
            (c.state != CmdState::Free && usize::from(c.session) == s && c.tag == tag)
                .then(|| CmdHandle::new(i as u16, c.generation))
        })
    }
}

/// The first 16 bytes of `cdb`, zero-padded: two 8-byte moves (overlapping
/// when the CDB is shorter than 16) instead of a variable-length copy.
#[inline]
fn cdb16(cdb: &[u8]) -> [u8; 16] {
    let mut out = [0u8; 16];
    let n = cdb.len().min(16);
    if n >= 8 {
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&cdb[at..at + 8]);
            w
        };
        out[..8].copy_from_slice(&word(0));
        out[n - 8..n].copy_from_slice(&word(n - 8));
    } else {
        out[..n].copy_from_slice(&cdb[..n]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::cdb16;

    #[test]
    fn cdb16_copies_and_pads_every_length() {
        let src: [u8; 20] = core::array::from_fn(|k| 0xA0 + k as u8);
        for n in 0..=20 {
            let got = cdb16(&src[..n]);
            let m = n.min(16);
            assert_eq!(&got[..m], &src[..m], "length {n}");
            assert!(got[m..].iter().all(|&b| b == 0), "length {n}");
        }
    }
}
