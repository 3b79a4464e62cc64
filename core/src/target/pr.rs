//! PERSISTENT RESERVE IN / OUT (SPC-5 5.13, 6.16, 6.17).
//!
//! Registrations name I_T nexuses by TransportID and relative target port
//! (`pr::PrReg`), so they outlive sessions; a session finds "its"
//! registration by comparing its initiator port and target port, cached
//! per I_T_L (`Itl::pr_reg`, invalidated by `PrState::epoch`). Every
//! PERSISTENT RESERVE OUT runs to completion within one step once its
//! parameter list is in (PREEMPT AND ABORT then waits for the tasks it
//! aborted, like a task management function), so no other command sees a
//! half-applied change.

use super::{CmdState, NIL, SessionState, Step, Target, check};
use crate::cdb::{PrClass, be, be_at};
use crate::ids::{RelativePortId, TransportId};
use crate::pr::{self, PrBlob, PrReg, PrStore, PrType, Reservation};
use crate::sense::{FieldPointer, SenseKey, SenseReason, UnitAttention};
use crate::transport::{ScsiStatus, Transport};

/// Largest PERSISTENT RESERVE OUT parameter list accepted: the basic 24
/// bytes, the TransportID list length and 16 TransportIDs of the largest size.
const PROUT_MAX: u64 = 28 + 16 * crate::ids::TRANSPORT_ID_MAX as u64;
/// The PERSISTENT RESERVE OUT stage that waits for aborted tasks.
const S_WAIT_ABORTS: u8 = 10;

fn invalid_param(byte: usize, bit: Option<u8>) -> SenseReason {
    SenseReason::InvalidFieldInParameterList(FieldPointer {
        byte: byte as u16,
        bit,
    })
}

fn invalid_cdb(byte: u16, bit: u8) -> SenseReason {
    SenseReason::InvalidFieldInCdb(FieldPointer::bit(byte, bit))
}

/// ILLEGAL REQUEST, 26/04 INVALID RELEASE OF PERSISTENT RESERVATION.
const INVALID_RELEASE: SenseReason = SenseReason::Other {
    key: SenseKey::IllegalRequest,
    asc: 0x26,
    ascq: 0x04,
};

/// ILLEGAL REQUEST, 55/04 INSUFFICIENT REGISTRATION RESOURCES.
const NO_REGISTRATION_RESOURCES: SenseReason = SenseReason::Other {
    key: SenseKey::IllegalRequest,
    asc: 0x55,
    ascq: 0x04,
};

/// Why a PERSISTENT RESERVE OUT ended early.
enum Fail {
    Conflict,
    Sense(SenseReason),
}

impl From<SenseReason> for Fail {
    fn from(r: SenseReason) -> Fail {
        Fail::Sense(r)
    }
}

/// The basic PERSISTENT RESERVE OUT parameter list (SPC-5 6.17.3).
struct Basic {
    rk: u64,
    sark: u64,
    spec_i_pt: bool,
    all_tg_pt: bool,
    aptpl: bool,
}

impl<'a> Target<'a> {
    /// Keep the persistent reservation state of LUs with APTPL active in
    /// `store`. Attach it right after [`Target::new`], before the LUs are
    /// added: [`Target::add_lu`] restores each LU's saved state from it.
    pub fn set_pr_store(&mut self, store: &'a mut dyn PrStore) {
        self.pr_store = Some(store);
    }

    /// How many saves to the persistent reservation store failed (the
    /// change itself took effect in memory and the command completed).
    pub fn pr_store_errors(&self) -> u32 {
        self.pr_store_errors
    }

    pub(crate) fn lu_regs(&self, l: usize) -> &[PrReg] {
        let n = self.pr_stride;
        self.pr_regs.get(l * n..(l + 1) * n).unwrap_or(&[])
    }

    pub(crate) fn lu_regs_mut(&mut self, l: usize) -> &mut [PrReg] {
        let n = self.pr_stride;
        self.pr_regs.get_mut(l * n..(l + 1) * n).unwrap_or(&mut [])
    }

    /// Restore LU `l`'s saved state from the store, if any.
    pub(crate) fn pr_restore(&mut self, l: usize) {
        let naa = self.lus[l].cfg.naa;
        let n = self.pr_stride;
        let Some(store) = self.pr_store.as_deref_mut() else {
            return;
        };
        let Some(regs) = self.pr_regs.get_mut(l * n..(l + 1) * n) else {
            return;
        };
        let state = &mut self.lus[l].pr;
        match pr::restore(store, &naa, state, regs) {
            Ok(true) => info!("LU {}: persistent reservations restored", l as u32),
            Ok(false) => {}
            Err(_) => warn!("LU {}: persistent reservation store unreadable", l as u32),
        }
    }

    /// Save LU `l`'s state if APTPL is active (or was just turned off).
    fn pr_save(&mut self, l: usize, was_aptpl: bool) {
        let naa = self.lus[l].cfg.naa;
        let n = self.pr_stride;
        let state = self.lus[l].pr;
        if !state.aptpl && !was_aptpl {
            return;
        }
        let Some(store) = self.pr_store.as_deref_mut() else {
            return;
        };
        let regs = self.pr_regs.get(l * n..(l + 1) * n).unwrap_or(&[]);
        if store
            .save(
                &naa,
                &PrBlob {
                    state: &state,
                    regs,
                },
            )
            .is_err()
        {
            warn!("LU {}: persistent reservation state not saved", l as u32);
            self.pr_store_errors = self.pr_store_errors.saturating_add(1);
        }
    }

    /// The registration slot of session `s`'s I_T nexus on LU `l`.
    pub(crate) fn pr_reg_of(&mut self, s: usize, l: usize) -> Option<usize> {
        let stride = self.lus.len();
        let epoch = self.lus.get(l)?.pr.epoch;
        let itl = self.itl.get(s * stride + l)?;
        if itl.pr_epoch == epoch {
            return (itl.pr_reg != NIL).then_some(usize::from(itl.pr_reg));
        }
        let sess = self.sessions.get(s)?;
        let found = self
            .lu_regs(l)
            .iter()
            .position(|r| r.matches(&sess.initiator, sess.port));
        let itl = &mut self.itl[s * stride + l];
        itl.pr_epoch = epoch;
        itl.pr_reg = found.map_or(NIL, |r| r as u16);
        found
    }

    /// Whether the nexus of session `s` (registered at `reg`) holds LU `l`'s reservation.
    fn pr_is_holder(&self, l: usize, s: usize, reg: Option<usize>) -> bool {
        match (self.lus[l].pr.res, reg) {
            (Some(res), Some(r)) => {
                res.ty.all_registrants()
                    || (usize::from(res.holder) == r
                        && self
                            .sessions
                            .get(s)
                            .is_some_and(|x| x.port == res.holder_port))
            }
            _ => false,
        }
    }

    /// The persistent reservation check of the enabled state.
    pub(crate) fn pr_conflict(&mut self, i: usize) -> bool {
        let c = &self.cmds[i];
        let (s, l) = (usize::from(c.session), usize::from(c.lu));
        let Some(res) = self.lus.get(l).and_then(|lu| lu.pr.res) else {
            return false;
        };
        let Some(op) = c.op else { return false };
        let class = pr::effective_class(op, &c.cdb);
        if class == PrClass::Allowed {
            return false;
        }
        let reg = self.pr_reg_of(s, l);
        !self.pr_is_holder(l, s, reg) && res.ty.conflicts(class, reg.is_some())
    }

    /// Establish `ua` for every live I_T nexus registered on LU `l`, except `except`.
    fn pr_ua_registrants(&mut self, l: usize, ua: UnitAttention, except: usize) {
        for s in 0..self.sessions.len() {
            if s != except
                && self.sessions[s].state == SessionState::Active
                && self.pr_reg_of(s, l).is_some()
            {
                self.set_ua(s, l, ua);
            }
        }
    }

    /// Mark the live sessions whose nexus registration `r` is (except `except`).
    fn pr_mark_sessions_of(&mut self, l: usize, r: usize, except: usize) {
        let stride = self.lus.len();
        for s in 0..self.sessions.len() {
            let sess = &self.sessions[s];
            if s != except
                && sess.state == SessionState::Active
                && self.lu_regs(l)[r].matches(&sess.initiator, sess.port)
            {
                self.itl[s * stride + l].pr_mark = true;
            }
        }
    }

    fn pr_changed(&mut self, l: usize) {
        let n = self.lu_regs(l).iter().filter(|r| r.in_use).count() as u16;
        let pr = &mut self.lus[l].pr;
        pr.count = n;
        pr.epoch = pr.epoch.wrapping_add(1).max(1);
    }

    // ------------------------------------------------------ PERSISTENT RESERVE IN

    pub(crate) fn exec_prin(&mut self, i: usize) -> Step {
        let c = &self.cmds[i];
        let sa = c.cdb[1] & 0x1f;
        let alloc = be(&c.cdb, (7, 2));
        let l = usize::from(c.lu);
        self.respond_payload(i, alloc, move |t, _, p| {
            let st = t.lus[l].pr;
            let regs = t.lu_regs(l);
            match sa {
                0x00 => {
                    p.u32(st.generation);
                    p.u32(8 * u32::from(st.count));
                    for r in regs.iter().filter(|r| r.in_use) {
                        p.u64(r.key);
                    }
                }
                0x01 => {
                    p.u32(st.generation);
                    match st.res {
                        None => p.u32(0),
                        Some(res) => {
                            p.u32(16);
                            let key = if res.ty.all_registrants() {
                                0
                            } else {
                                regs.get(usize::from(res.holder)).map_or(0, |r| r.key)
                            };
                            p.u64(key);
                            p.zeros(5); // obsolete, reserved
                            p.u8(res.ty.code()); // SCOPE 0h: logical unit
                            p.zeros(2);
                        }
                    }
                }
                0x02 => {
                    p.u16(8);
                    // CRH, SIP_C, ATP_C; PTPL_C with a store.
                    let ptpl_c = if t.pr_store.is_some() { 0x01 } else { 0 };
                    p.u8(0x10 | 0x08 | 0x04 | ptpl_c);
                    // TMV, ALLOW COMMANDS 100b, PTPL_A.
                    p.u8(0x80 | 0x40 | u8::from(st.aptpl));
                    // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX; EX_AC_AR.
                    p.u8(0x80 | 0x40 | 0x20 | 0x08 | 0x02);
                    p.u8(0x01);
                    p.u16(0);
                }
                _ => {
                    // READ FULL STATUS.
                    p.u32(st.generation);
                    let len: usize = regs
                        .iter()
                        .filter(|r| r.in_use)
                        .map(|r| 24 + r.initiator.as_bytes().len())
                        .sum();
                    p.u32(len as u32);
                    for (k, r) in regs.iter().enumerate().filter(|(_, r)| r.in_use) {
                        let holder = st
                            .res
                            .filter(|res| res.ty.all_registrants() || usize::from(res.holder) == k);
                        p.u64(r.key);
                        p.zeros(4);
                        p.u8(u8::from(r.all_tg_pt) << 1 | u8::from(holder.is_some()));
                        p.u8(holder.map_or(0, |h| h.ty.code()));
                        p.zeros(4);
                        let port = match holder {
                            // The holding nexus of an ALL_TG_PT registration.
                            Some(h) if !h.ty.all_registrants() && r.all_tg_pt => h.holder_port.0,
                            _ if r.all_tg_pt => 0,
                            _ => r.port.0,
                        };
                        p.u16(port);
                        let tid = r.initiator.as_bytes();
                        p.u32(tid.len() as u32);
                        p.put(tid);
                    }
                }
            }
            Ok(())
        })
    }

    // ------------------------------------------------------ PERSISTENT RESERVE OUT

    pub(crate) fn exec_prout<T: Transport>(&mut self, i: usize, t: &mut T) -> Step {
        if self.cmds[i].stage == S_WAIT_ABORTS {
            return self.prout_wait_aborts(i);
        }
        let c = &self.cmds[i];
        let sa = c.cdb[1] & 0x1f;
        let len = be(&c.cdb, (5, 4));
        if c.stage == 0 {
            let max = if sa == 0x07 {
                24 + crate::ids::TRANSPORT_ID_MAX as u64
            } else {
                PROUT_MAX
            };
            if !(24..=max).contains(&len) {
                return self.fail(i, SenseReason::ParameterListLengthError);
            }
        }
        let n = match self.receive_params(i, t, len, len) {
            Ok(n) => n,
            Err(step) => return step,
        };
        if (n as u64) < len {
            // The initiator sent less than the CDB announced.
            return self.fail(i, SenseReason::ParameterListLengthError);
        }
        let mut h = [0u8; 24];
        check!(self, i, self.read_params(i, 0, &mut h));
        let l = usize::from(self.cmds[i].lu);
        let was_aptpl = self.lus[l].pr.aptpl;
        let r = if sa == 0x07 {
            self.pr_register_and_move(i, &h, n)
        } else {
            let b = Basic {
                rk: be_at(&h, 0, 8),
                sark: be_at(&h, 8, 8),
                spec_i_pt: h[20] & 0x08 != 0,
                all_tg_pt: h[20] & 0x04 != 0,
                aptpl: h[20] & 0x01 != 0,
            };
            if b.spec_i_pt && sa != 0x00 {
                Err(invalid_param(20, Some(3)).into())
            } else if !b.spec_i_pt && n != 24 {
                Err(SenseReason::ParameterListLengthError.into())
            } else {
                match sa {
                    0x00 | 0x06 => self.pr_register(i, &b, sa == 0x06, n),
                    0x01 => self.pr_reserve(i, &b),
                    0x02 => self.pr_release(i, &b),
                    0x03 => self.pr_clear(i, &b),
                    0x04 | 0x05 => self.pr_preempt(i, &b, sa == 0x05),
                    _ => Err(invalid_cdb(1, 4).into()),
                }
            }
        };
        self.lu_changed(l);
        match r {
            Ok(()) => {
                self.pr_save(l, was_aptpl);
                if self.cmds[i].stage == S_WAIT_ABORTS {
                    return self.prout_wait_aborts(i);
                }
                self.good(i)
            }
            Err(Fail::Conflict) => self.finish(i, ScsiStatus::ReservationConflict),
            Err(Fail::Sense(r)) => self.fail(i, r),
        }
    }

    /// The registration of the command's nexus, checked against the
    /// RESERVATION KEY field (SPC-5 6.17.3): RESERVATION CONFLICT if the
    /// nexus is unregistered or the key differs.
    fn pr_me(&mut self, i: usize, rk: u64) -> Result<usize, Fail> {
        let c = &self.cmds[i];
        let (s, l) = (usize::from(c.session), usize::from(c.lu));
        match self.pr_reg_of(s, l) {
            Some(r) if self.lu_regs(l)[r].key == rk => Ok(r),
            _ => Err(Fail::Conflict),
        }
    }

    fn cmd_sl(&self, i: usize) -> (usize, usize) {
        let c = &self.cmds[i];
        (usize::from(c.session), usize::from(c.lu))
    }

    fn pr_scope_type(&self, i: usize) -> Result<PrType, SenseReason> {
        let b = self.cmds[i].cdb[2];
        if b >> 4 != 0 {
            return Err(invalid_cdb(2, 7));
        }
        PrType::from_code(b & 0x0f).ok_or(invalid_cdb(2, 3))
    }

    fn free_reg_slots(&self, l: usize) -> usize {
        self.lu_regs(l).iter().filter(|r| !r.in_use).count()
    }

    fn insert_reg(&mut self, l: usize, reg: PrReg) -> Result<usize, Fail> {
        let regs = self.lu_regs_mut(l);
        let k = regs
            .iter()
            .position(|r| !r.in_use)
            .ok_or(Fail::Sense(NO_REGISTRATION_RESOURCES))?;
        regs[k] = reg;
        Ok(k)
    }

    /// Parse and check the SPEC_I_PT TransportID list: the count of IDs.
    fn pr_check_spec_list(&self, i: usize, n: usize, all_tg_pt: bool) -> Result<usize, Fail> {
        let (s, l) = self.cmd_sl(i);
        let mut hdr = [0u8; 4];
        if n < 28 {
            return Err(SenseReason::ParameterListLengthError.into());
        }
        self.read_params(i, 24, &mut hdr)?;
        let tpdl = be_at(&hdr, 0, 4) as usize;
        if n != 28 + tpdl {
            return Err(SenseReason::ParameterListLengthError.into());
        }
        let me = &self.sessions[s];
        let mut at = 28;
        let mut count = 0;
        while at < n {
            let tid = self.read_tid(i, at, n)?;
            // Already registered (through this port, or any with ALL_TG_PT),
            // the issuer itself, or named twice: refused.
            let dup_reg = self.lu_regs(l).iter().any(|r| {
                r.in_use
                    && (r.initiator.same_port(&tid) || tid.same_port(&r.initiator))
                    && (all_tg_pt || r.all_tg_pt || r.port == me.port)
            });
            let is_me = tid.same_port(&me.initiator);
            let mut twice = false;
            let mut o = 28;
            while o < at {
                let other = self.read_tid(i, o, n)?;
                twice |= other.same_port(&tid) || tid.same_port(&other);
                o += other.as_bytes().len();
            }
            if dup_reg || is_me || twice {
                return Err(invalid_param(at, None).into());
            }
            at += tid.as_bytes().len();
            count += 1;
        }
        Ok(count)
    }

    /// A TransportID of the parameter list at `at` (of `n` bytes).
    fn read_tid(&self, i: usize, at: usize, n: usize) -> Result<TransportId, SenseReason> {
        let mut buf = [0u8; crate::ids::TRANSPORT_ID_MAX];
        let k = (n.saturating_sub(at)).min(buf.len());
        self.read_params(i, at, &mut buf[..k])?;
        match TransportId::from_bytes(&buf[..k]) {
            Ok(t) if t.is_supported_for_pr() => Ok(t),
            Err(crate::ids::TransportIdError::TooShort) if k < 24 => {
                Err(SenseReason::ParameterListLengthError)
            }
            _ => Err(invalid_param(at, None)),
        }
    }

    /// REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-5 5.13.7).
    fn pr_register(&mut self, i: usize, b: &Basic, ignore: bool, n: usize) -> Result<(), Fail> {
        let (s, l) = self.cmd_sl(i);
        if b.aptpl && self.pr_store.is_none() {
            return Err(invalid_param(20, Some(0)).into());
        }
        match self.pr_reg_of(s, l) {
            None => {
                if !ignore && b.rk != 0 {
                    return Err(Fail::Conflict);
                }
                let extra = if b.spec_i_pt {
                    self.pr_check_spec_list(i, n, b.all_tg_pt)?
                } else {
                    0
                };
                if b.sark == 0 {
                    // Nothing to register: no change.
                    return Ok(());
                }
                if self.free_reg_slots(l) < 1 + extra {
                    return Err(NO_REGISTRATION_RESOURCES.into());
                }
                let me = &self.sessions[s];
                let reg = PrReg {
                    in_use: true,
                    key: b.sark,
                    initiator: me.initiator.clone(),
                    port: me.port,
                    all_tg_pt: b.all_tg_pt,
                };
                let port = me.port;
                self.insert_reg(l, reg)?;
                let mut at = 28;
                for _ in 0..extra {
                    let tid = self.read_tid(i, at, n)?;
                    at += tid.as_bytes().len();
                    self.insert_reg(
                        l,
                        PrReg {
                            in_use: true,
                            key: b.sark,
                            initiator: tid,
                            port,
                            all_tg_pt: b.all_tg_pt,
                        },
                    )?;
                }
            }
            Some(r) => {
                if !ignore && b.rk != self.lu_regs(l)[r].key {
                    return Err(Fail::Conflict);
                }
                if b.spec_i_pt {
                    return Err(invalid_param(20, Some(3)).into());
                }
                if b.sark == 0 {
                    self.pr_unregister(l, r, s);
                } else {
                    self.lu_regs_mut(l)[r].key = b.sark;
                }
            }
        }
        self.pr_changed(l);
        let pr = &mut self.lus[l].pr;
        pr.generation = pr.generation.wrapping_add(1);
        pr.aptpl = b.aptpl;
        Ok(())
    }

    /// Remove registration `r` of LU `l` (unregistered by the nexus of
    /// session `s`), releasing the reservation it held.
    fn pr_unregister(&mut self, l: usize, r: usize, s: usize) {
        self.lu_regs_mut(l)[r] = PrReg::EMPTY;
        let remaining = self.lu_regs(l).iter().any(|x| x.in_use);
        self.pr_changed(l);
        let Some(res) = self.lus[l].pr.res else {
            return;
        };
        if res.ty.all_registrants() {
            if !remaining {
                self.lus[l].pr.res = None;
                self.lu_changed(l);
            }
        } else if usize::from(res.holder) == r {
            self.lus[l].pr.res = None;
            self.lu_changed(l);
            if res.ty.registrants_only() {
                self.pr_ua_registrants(l, UnitAttention::ReservationsReleased, s);
            }
        }
    }

    /// RESERVE (SPC-5 5.13.9).
    fn pr_reserve(&mut self, i: usize, b: &Basic) -> Result<(), Fail> {
        let (s, l) = self.cmd_sl(i);
        let r = self.pr_me(i, b.rk)?;
        let ty = self.pr_scope_type(i)?;
        match self.lus[l].pr.res {
            None => {
                let port = self.sessions[s].port;
                self.lus[l].pr.res = Some(Reservation {
                    ty,
                    holder: r as u16,
                    holder_port: port,
                });
                Ok(())
            }
            Some(res) if res.ty == ty && self.pr_is_holder(l, s, Some(r)) => Ok(()),
            Some(_) => Err(Fail::Conflict),
        }
    }

    /// RELEASE (SPC-5 5.13.11.2).
    fn pr_release(&mut self, i: usize, b: &Basic) -> Result<(), Fail> {
        let (s, l) = self.cmd_sl(i);
        let r = self.pr_me(i, b.rk)?;
        let Some(res) = self.lus[l].pr.res else {
            return Ok(());
        };
        if !self.pr_is_holder(l, s, Some(r)) {
            return Ok(());
        }
        let cdb2 = self.cmds[i].cdb[2];
        if cdb2 >> 4 != 0 || cdb2 & 0x0f != res.ty.code() {
            return Err(INVALID_RELEASE.into());
        }
        self.lus[l].pr.res = None;
        if res.ty.registrants_only() || res.ty.all_registrants() {
            self.pr_ua_registrants(l, UnitAttention::ReservationsReleased, s);
        }
        Ok(())
    }

    /// CLEAR (SPC-5 5.13.11.2.5).
    fn pr_clear(&mut self, i: usize, b: &Basic) -> Result<(), Fail> {
        let (s, l) = self.cmd_sl(i);
        self.pr_me(i, b.rk)?;
        self.pr_ua_registrants(l, UnitAttention::ReservationsPreempted, s);
        for r in self.lu_regs_mut(l) {
            *r = PrReg::EMPTY;
        }
        self.lus[l].pr.res = None;
        self.pr_changed(l);
        let pr = &mut self.lus[l].pr;
        pr.generation = pr.generation.wrapping_add(1);
        Ok(())
    }

    /// PREEMPT and PREEMPT AND ABORT (SPC-5 5.13.12).
    fn pr_preempt(&mut self, i: usize, b: &Basic, abort: bool) -> Result<(), Fail> {
        let (s, l) = self.cmd_sl(i);
        let me = self.pr_me(i, b.rk)?;
        if self.cmds[i].cdb[2] >> 4 != 0 {
            return Err(invalid_cdb(2, 7).into());
        }
        let res = self.lus[l].pr.res;
        // Which registrations go, and whether the reservation moves to us.
        let (take_all, new_res) = match res {
            Some(r) if r.ty.all_registrants() && b.sark == 0 => (true, true),
            Some(r)
                if !r.ty.all_registrants()
                    && self
                        .lu_regs(l)
                        .get(usize::from(r.holder))
                        .is_some_and(|h| h.in_use && h.key == b.sark) =>
            {
                (false, true)
            }
            _ if b.sark == 0 => return Err(invalid_param(8, None).into()),
            _ => (false, false),
        };
        let ty = if new_res {
            Some(self.pr_scope_type(i)?)
        } else {
            None
        };
        if !take_all && !self.lu_regs(l).iter().any(|r| r.in_use && r.key == b.sark) {
            return Err(Fail::Conflict);
        }
        // Remove the victims, remembering their live nexuses.
        for k in 0..self.pr_stride {
            let r = &self.lu_regs(l)[k];
            if k != me && r.in_use && (take_all || r.key == b.sark) {
                self.pr_mark_sessions_of(l, k, s);
                self.lu_regs_mut(l)[k] = PrReg::EMPTY;
            }
        }
        self.pr_changed(l);
        if let Some(ty) = ty {
            let port = self.sessions[s].port;
            self.lus[l].pr.res = Some(Reservation {
                ty,
                holder: me as u16,
                holder_port: port,
            });
            if res.is_some_and(|old| old.ty != ty) {
                // A changed type or scope: the remaining registrants are told.
                let stride = self.lus.len();
                for s2 in 0..self.sessions.len() {
                    if s2 != s
                        && !self.itl[s2 * stride + l].pr_mark
                        && self.sessions[s2].state == SessionState::Active
                        && self.pr_reg_of(s2, l).is_some()
                    {
                        self.set_ua(s2, l, UnitAttention::ReservationsReleased);
                    }
                }
            }
        }
        let pr = &mut self.lus[l].pr;
        pr.generation = pr.generation.wrapping_add(1);
        // The preempted nexuses: unit attention, and for PREEMPT AND ABORT
        // their tasks on this LU.
        let stride = self.lus.len();
        let tas = self.lus[l].mode.tas;
        let mut waiting = false;
        for s2 in 0..self.sessions.len() {
            let itl = &mut self.itl[s2 * stride + l];
            if !core::mem::replace(&mut itl.pr_mark, false) {
                continue;
            }
            self.set_ua(s2, l, UnitAttention::RegistrationsPreempted);
            if !abort {
                continue;
            }
            if usize::from(self.lus[l].aca) == s2 {
                self.clear_aca(l);
            }
            let mut any = false;
            for j in 0..self.cmds.len() {
                let c = &self.cmds[j];
                if j != i
                    && c.state != CmdState::Free
                    && usize::from(c.lu) == l
                    && usize::from(c.session) == s2
                {
                    self.cmds[j].pa_waiter = i as u16;
                    self.abort_cmd(j, tas, None);
                    any = true;
                }
            }
            if any && !tas {
                self.set_ua(s2, l, UnitAttention::CommandsCleared);
            }
            waiting |= any;
        }
        if waiting {
            self.cmds[i].stage = S_WAIT_ABORTS;
        }
        Ok(())
    }

    /// PREEMPT AND ABORT completes once every task it aborted is gone.
    fn prout_wait_aborts(&mut self, i: usize) -> Step {
        let pending = self
            .cmds
            .iter()
            .any(|c| c.state != CmdState::Free && usize::from(c.pa_waiter) == i);
        if pending {
            self.cmds[i].state = CmdState::WaitAborts;
            return Step::Park;
        }
        self.good(i)
    }

    /// REGISTER AND MOVE (SPC-5 5.13.8).
    fn pr_register_and_move(&mut self, i: usize, h: &[u8; 24], n: usize) -> Result<(), Fail> {
        let (s, l) = self.cmd_sl(i);
        let (rk, sark) = (be_at(h, 0, 8), be_at(h, 8, 8));
        let (unreg, aptpl) = (h[17] & 0x02 != 0, h[17] & 0x01 != 0);
        let rtpi = RelativePortId(be_at(h, 18, 2) as u16);
        let tpdl = be_at(h, 20, 4) as usize;
        let me = self.pr_me(i, rk)?;
        let Some(res) = self.lus[l].pr.res else {
            return Err(Fail::Conflict);
        };
        if !self.pr_is_holder(l, s, Some(me)) {
            return Err(Fail::Conflict);
        }
        if res.ty.all_registrants() {
            // Every registrant holds it: there is nothing to move.
            return Err(invalid_cdb(2, 3).into());
        }
        let ty = self.pr_scope_type(i)?;
        if sark == 0 {
            return Err(invalid_param(8, None).into());
        }
        if n != 24 + tpdl {
            return Err(SenseReason::ParameterListLengthError.into());
        }
        if aptpl && self.pr_store.is_none() {
            return Err(invalid_param(17, Some(0)).into());
        }
        if self.port(rtpi).is_none() {
            return Err(invalid_param(18, None).into());
        }
        let tid = self.read_tid(i, 24, n)?;
        if tid.as_bytes().len() != tpdl {
            return Err(invalid_param(20, None).into());
        }
        let sess = &self.sessions[s];
        if tid.same_port(&sess.initiator) && rtpi == sess.port {
            return Err(invalid_param(24, None).into());
        }
        let dest = match self.lu_regs(l).iter().position(|r| r.matches(&tid, rtpi)) {
            Some(d) => d,
            None => self.insert_reg(
                l,
                PrReg {
                    in_use: true,
                    key: sark,
                    initiator: tid,
                    port: rtpi,
                    all_tg_pt: false,
                },
            )?,
        };
        self.lus[l].pr.res = Some(Reservation {
            ty,
            holder: dest as u16,
            holder_port: rtpi,
        });
        if unreg {
            self.lu_regs_mut(l)[me] = PrReg::EMPTY;
        }
        self.pr_changed(l);
        let pr = &mut self.lus[l].pr;
        pr.generation = pr.generation.wrapping_add(1);
        pr.aptpl = aptpl;
        Ok(())
    }
}
