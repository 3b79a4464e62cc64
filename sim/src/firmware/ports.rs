//! The firmware's remote port database (reference §7.13) and the ELS exchanges the HBA
//! originates itself: FLOGI to the fabric, PLOGI/LOGO for LOGIN/LOGOUT_FABRIC_PORT and the
//! LOGINOUT IOCB.
//!
//! N_Port handles are assigned lowest-free from 0x0001 (0x0000 is the HBA's own handle,
//! GET_ADAPTER_ID mb1); 0x07F0..0x07FF are the well-known handles and never given out.

use std::collections::BTreeMap;

use rscst_fw::async_event::AsyncEvent;
use rscst_fw::fc::els::{ElsOpcode, ElsRepr, LogoRepr, ServiceParamsRepr};
use rscst_fw::fc::{Eof, FCtl, FcFrameRepr, FcHeaderRepr, FcPayload, FcType, RCtl, Sof};
use rscst_fw::mailbox::{FirmwareState, MbxStatus};
use rscst_fw::port_db::{LoginState, PortDatabaseRepr, PortDbFlags};
use rscst_fw::{NportHandle, OxId, PortId, Wwn};

use super::{Firmware, FwEvent};
use crate::fabric::HBA_SLOT;
use crate::frame::Frame;
use crate::sim::Ctx;

/// Highest handle the firmware assigns.
pub(crate) const MAX_HANDLE: u16 = 0x07EF;

/// How long the HBA waits for the reply to an ELS it sent.
const ELS_TIMEOUT: core::time::Duration = core::time::Duration::from_secs(2);

/// One remote port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RemotePort {
    pub handle: u16,
    pub port_id: PortId,
    pub wwpn: Wwn,
    pub wwnn: Wwn,
    /// Current login state (FCP nibble).
    pub state: u8,
    /// Previous state.
    pub last_state: u8,
    /// The remote's PRLI word 3 (low 16 bits).
    pub prli_word3: u16,
    /// Largest payload the remote receives (its PLOGI).
    pub rx_size: u16,
}

impl RemotePort {
    pub(crate) fn set_state(&mut self, s: LoginState) {
        self.last_state = self.state;
        self.state = s.into();
    }

    /// PLOGI complete or further.
    pub(crate) fn state_logged_in(&self) -> bool {
        matches!(self.state, 0x04..=0x06 | 0x09)
    }

    /// PRLI complete: FCP may flow.
    pub(crate) fn fcp_ready(&self) -> bool {
        self.state == u8::from(LoginState::PrliComplete)
    }

    pub(crate) fn port_database(&self) -> PortDatabaseRepr {
        PortDatabaseRepr {
            flags: PortDbFlags::empty(),
            current_login_state: self.state,
            last_login_state: self.last_state,
            hard_address: PortId::new(0),
            port_id: self.port_id,
            sequence_id: 0,
            port_timer: 0,
            nport_handle: NportHandle(self.handle),
            receive_data_size: self.rx_size,
            prli_word0: if self.state == 0x06 { 0x0800 } else { 0 },
            prli_word3: self.prli_word3,
            port_name: self.wwpn,
            node_name: self.wwnn,
        }
    }
}

/// The port database.
#[derive(Debug, Default)]
pub(crate) struct PortDb {
    ports: BTreeMap<u16, RemotePort>,
    /// N_Port ID → the lowest handle with it (every frame received looks it up).
    by_pid: crate::fxhash::FxHashMap<u32, u16>,
}

impl PortDb {
    pub(crate) fn clear(&mut self) {
        self.ports.clear();
        self.by_pid.clear();
    }

    pub(crate) fn get(&self, h: u16) -> Option<&RemotePort> {
        self.ports.get(&h)
    }

    pub(crate) fn get_mut(&mut self, h: u16) -> Option<&mut RemotePort> {
        self.ports.get_mut(&h)
    }

    pub(crate) fn by_pid(&self, pid: PortId) -> Option<&RemotePort> {
        let h = self.by_pid.get(&pid.get())?;
        self.ports.get(h)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &RemotePort> {
        self.ports.values()
    }

    /// A new entry for `pid` at the lowest free handle (or `want` if given and free).
    pub(crate) fn insert(
        &mut self,
        pid: PortId,
        wwpn: Wwn,
        wwnn: Wwn,
        want: Option<u16>,
    ) -> Option<u16> {
        let handle = match want {
            Some(h) if h != 0 && h <= MAX_HANDLE && !self.ports.contains_key(&h) => h,
            Some(_) => return None,
            None => (1..=MAX_HANDLE).find(|h| !self.ports.contains_key(h))?,
        };
        self.ports.insert(
            handle,
            RemotePort {
                handle,
                port_id: pid,
                wwpn,
                wwnn,
                state: LoginState::PlogiPending.into(),
                last_state: 0,
                prli_word3: 0,
                rx_size: 2048,
            },
        );
        let e = self.by_pid.entry(pid.get()).or_insert(handle);
        *e = (*e).min(handle);
        Some(handle)
    }

    pub(crate) fn remove(&mut self, h: u16) -> Option<RemotePort> {
        let p = self.ports.remove(&h)?;
        if self.by_pid.get(&p.port_id.get()) == Some(&h) {
            match self.ports.values().find(|q| q.port_id == p.port_id) {
                Some(q) => self.by_pid.insert(p.port_id.get(), q.handle),
                None => self.by_pid.remove(&p.port_id.get()),
            };
        }
        Some(p)
    }
}

/// An ELS the HBA sent and waits for.
#[derive(Debug, Clone)]
pub(crate) enum ElsOrig {
    Flogi,
    /// PLOGI for LOGIN_FABRIC_PORT (mailbox) or a LOGINOUT IOCB (`iocb` = the entry).
    Plogi {
        handle: u16,
        iocb: Option<Box<[u8; 64]>>,
    },
    Logo,
}

impl Firmware {
    fn els_frame(
        &mut self,
        ctx: &mut Ctx<'_>,
        d_id: PortId,
        payload: ElsRepr,
        kind: ElsOrig,
    ) -> Option<(Frame, u16)> {
        let ox = self.next_ox_id();
        let h = FcHeaderRepr::new(
            RCtl::ElsReq,
            FcType::Els,
            d_id,
            self.link.port_id,
            FCtl::FCP_CMND,
            OxId(ox),
        );
        let repr = FcFrameRepr {
            header: h,
            payload: FcPayload::Els(payload),
        };
        let f = ctx.pool.build(Sof::I3, Eof::TNeg, &repr).ok()?;
        let serial = self.next_serial();
        self.els_out.insert(ox, (kind, serial));
        self.at(ctx, ELS_TIMEOUT, FwEvent::LoginTimeout { serial });
        Some((f, ox))
    }

    pub(crate) fn next_ox_id(&mut self) -> u16 {
        self.ox_counter = self.ox_counter.wrapping_add(1);
        if self.ox_counter == 0xFFFF {
            self.ox_counter = 1;
        }
        self.ox_counter
    }

    pub(crate) fn our_service_params(&self, opcode: ElsOpcode) -> ServiceParamsRepr {
        let (wwpn, wwnn) = self
            .icb
            .as_ref()
            .map(|i| (i.port_name, i.node_name))
            .filter(|(p, _)| !p.is_zero())
            .unwrap_or((self.cfg.wwpn, self.cfg.wwnn));
        ServiceParamsRepr::n_port(
            opcode,
            wwpn,
            wwnn,
            self.cfg.max_frame_payload.min(self.frame_size() as u16),
        )
    }

    pub(crate) fn send_flogi(&mut self, ctx: &mut Ctx<'_>) {
        let sp = self.our_service_params(ElsOpcode::Flogi);
        self.link.port_id = PortId::new(0);
        if let Some((f, _)) = self.els_frame(
            ctx,
            PortId::FABRIC_LOGIN,
            ElsRepr::ServiceParams(sp),
            ElsOrig::Flogi,
        ) {
            self.link.flogi = Some(self.serial);
            ctx.send(HBA_SLOT, f);
        }
    }

    /// A reply (LS_ACC / LS_RJT) to an ELS we originated.
    pub(crate) fn els_reply(
        &mut self,
        ctx: &mut Ctx<'_>,
        hdr: &FcHeaderRepr,
        els: Option<ElsRepr>,
    ) {
        let Some((kind, _)) = self.els_out.remove(&hdr.ox_id.0) else {
            ctx.discard(self.link.port_id, "ELS reply for no exchange");
            return;
        };
        let acc = matches!(els, Some(ref e) if e.opcode() == ElsOpcode::LsAcc);
        match kind {
            ElsOrig::Flogi => {
                if acc && hdr.s_id == PortId::FABRIC_LOGIN {
                    self.fabric_login_done(ctx, hdr.d_id);
                } else {
                    self.link.flogi = None;
                    self.state = FirmwareState::WaitLogin;
                    let t = self
                        .cfg
                        .timing
                        .link_init
                        .max(core::time::Duration::from_millis(1));
                    self.at(ctx, t, FwEvent::LinkInit);
                }
            }
            ElsOrig::Plogi { handle, iocb } => {
                let sp = match els {
                    Some(ElsRepr::ServiceParams(sp)) if acc => Some(sp),
                    _ => None,
                };
                match sp {
                    Some(sp) => {
                        if let Some(p) = self.ports.get_mut(handle) {
                            p.wwpn = sp.port_name;
                            p.wwnn = sp.node_name;
                            p.rx_size = sp.class3().rx_data_field_size.clamp(256, 2112);
                            p.set_state(LoginState::PlogiComplete);
                        }
                        self.login_finished(ctx, handle, iocb, true);
                    }
                    None => {
                        self.ports.remove(handle);
                        self.login_finished(ctx, handle, iocb, false);
                    }
                }
            }
            ElsOrig::Logo => {}
        }
    }

    pub(crate) fn login_timeout(&mut self, ctx: &mut Ctx<'_>, serial: u64) {
        let Some(ox) = self
            .els_out
            .iter()
            .find(|(_, (_, s))| *s == serial)
            .map(|(o, _)| *o)
        else {
            return;
        };
        let Some((kind, _)) = self.els_out.remove(&ox) else {
            return;
        };
        match kind {
            ElsOrig::Flogi => {
                self.link.flogi = None;
                self.at(ctx, core::time::Duration::ZERO, FwEvent::LinkInit);
            }
            ElsOrig::Plogi { handle, iocb } => {
                self.ports.remove(handle);
                self.login_finished(ctx, handle, iocb, false);
            }
            ElsOrig::Logo => {}
        }
    }

    fn login_finished(
        &mut self,
        ctx: &mut Ctx<'_>,
        handle: u16,
        iocb: Option<Box<[u8; 64]>>,
        ok: bool,
    ) {
        match iocb {
            None => {
                let mut out = [0u16; 32];
                out[0] = if ok {
                    MbxStatus::CommandComplete
                } else {
                    MbxStatus::CommandError
                }
                .into();
                out[1] = if ok { 0 } else { 0x0004 };
                self.complete_deferred(ctx, out);
            }
            Some(entry) => self.loginout_done(ctx, *entry, handle, ok),
        }
        if ok {
            self.queue_async(
                ctx,
                AsyncEvent::PortUpdate {
                    nport_handle: NportHandle(handle),
                    login_state: u8::from(LoginState::PlogiComplete) as u16,
                    vp_index: 0,
                },
            );
        }
    }

    /// Starts a PLOGI to `pid` under `handle` (LOGIN_FABRIC_PORT or LOGINOUT).
    pub(crate) fn start_plogi(
        &mut self,
        ctx: &mut Ctx<'_>,
        handle: u16,
        pid: PortId,
        iocb: Option<Box<[u8; 64]>>,
    ) {
        let sp = self.our_service_params(ElsOpcode::Plogi);
        if let Some((f, _)) = self.els_frame(
            ctx,
            pid,
            ElsRepr::ServiceParams(sp),
            ElsOrig::Plogi { handle, iocb },
        ) {
            ctx.send(HBA_SLOT, f);
        }
    }

    /// Sends LOGO to a remote port (we do not wait for the reply).
    pub(crate) fn send_logo(&mut self, ctx: &mut Ctx<'_>, pid: PortId) {
        let logo = LogoRepr {
            port_id: self.link.port_id,
            port_name: self.our_service_params(ElsOpcode::Logo).port_name,
        };
        if let Some((f, _)) = self.els_frame(ctx, pid, ElsRepr::Logo(logo), ElsOrig::Logo) {
            ctx.send(HBA_SLOT, f);
        }
    }

    /// LOGIN_FABRIC_PORT (0x6F): mb1 = handle, mb2 = domain, mb3 = area/al_pa, mb10 B0 =
    /// conditional (succeed at once if already logged in).
    pub(crate) fn mbx_login_fabric_port(
        &mut self,
        ctx: &mut Ctx<'_>,
        mb: &[u16; 32],
    ) -> super::mailbox::Exec {
        use super::mailbox::Exec;
        let done = |m0: MbxStatus, m1: u16| {
            let mut m = [0u16; 32];
            m[0] = m0.into();
            m[1] = m1;
            Exec::Done(m, core::time::Duration::ZERO)
        };
        if !self.link.logged_in || self.state != FirmwareState::Ready {
            return done(MbxStatus::LinkDownError, 0);
        }
        let handle = mb[1];
        let pid = PortId::new((mb[2] as u32 & 0xFF) << 16 | mb[3] as u32);
        if let Some(p) = self.ports.by_pid(pid) {
            if p.handle != handle {
                return done(MbxStatus::PortIdUsed, p.handle);
            }
            if mb[10] & 1 != 0 && p.state_logged_in() {
                return done(MbxStatus::CommandComplete, 0);
            }
        } else if self.ports.get(handle).is_some() {
            return done(MbxStatus::LoopIdUsed, 0);
        }
        if self.ports.get(handle).is_none()
            && self
                .ports
                .insert(pid, Wwn::default(), Wwn::default(), Some(handle))
                .is_none()
        {
            return done(MbxStatus::CommandParameterError, 0);
        }
        self.start_plogi(ctx, handle, pid, None);
        Exec::Deferred
    }

    /// LOGOUT_FABRIC_PORT (0x71): mb1 = handle.
    pub(crate) fn mbx_logout_fabric_port(
        &mut self,
        ctx: &mut Ctx<'_>,
        mb: &[u16; 32],
    ) -> [u16; 32] {
        let mut m = [0u16; 32];
        let Some(p) = self.ports.get(mb[1]).cloned() else {
            m[0] = MbxStatus::NotLoggedIn.into();
            return m;
        };
        self.send_logo(ctx, p.port_id);
        self.port_gone(ctx, p.handle, super::target::CTIO_PORT_LOGGED_OUT);
        m[0] = MbxStatus::CommandComplete.into();
        m
    }

    /// A remote port is logged out: its exchanges die with `ctio_status`, the entry goes.
    pub(crate) fn port_gone(&mut self, ctx: &mut Ctx<'_>, handle: u16, ctio_status: u16) {
        let Some(p) = self.ports.remove(handle) else {
            return;
        };
        self.abort_exchanges_of(ctx, p.port_id, ctio_status);
        self.queue_async(
            ctx,
            AsyncEvent::PortUpdate {
                nport_handle: NportHandle(handle),
                login_state: u8::from(LoginState::PortUnavailable) as u16,
                vp_index: 0,
            },
        );
    }
}
