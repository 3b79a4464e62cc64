//! The login phase (RFC 7143 §6: stages, §6.3 login phase rules, §11.12/§11.13 PDUs,
//! §12.1.3 CHAP, §6.3.5 session reinstatement).
//!
//! A connection starts in the security stage or directly in the operational stage. Each
//! Login Request carries text keys; each gets exactly one Login Response. The target
//! agrees to change stage (T bit) only when the initiator asks and the current stage is
//! complete (authentication done). Reaching full feature phase on a normal session asks
//! the SAN for a nexus, after reinstating any session with the same initiator name, ISID
//! and target. Errors end the login with a status class/detail and close the connection.

use crate::fxhash::FxHashMap;

use super::chap::{self, CHALLENGE_LEN, ChapConfig};
use super::conn::{Conn, Digests, Frame, Phase, Session, SessionKind, Slab, TaskState};
use super::params::{self, Answer, SessionParams, SessionType};
use super::portal::{Deferred, Portal, SessionKey};
use super::san::{
    EventError, Handle, LoginDecision, LoginId, NexusId, NexusLoss, SanPort, SessionLogin, TaskId,
};
use super::text;
use super::wire::{BHS_LEN, Bhs, Isid, LoginRequestRepr, LoginResponseRepr, LoginStatus, Stage};

/// Largest login text we accumulate across continued PDUs.
const MAX_LOGIN_TEXT: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Auth {
    /// No AuthMethod seen yet.
    Start,
    /// AuthMethod=CHAP agreed; waiting for CHAP_A.
    ChapWaitAlgorithm,
    /// Challenge sent; waiting for CHAP_N/CHAP_R.
    ChapWaitResponse {
        id: u8,
        challenge: [u8; CHALLENGE_LEN],
    },
    /// Authenticated (or no authentication needed).
    Done,
}

/// The final response of a login waiting for the SAN.
#[derive(Debug)]
pub(crate) struct PendingFinal {
    text: Vec<u8>,
    csg: Stage,
    tsih: u16,
    target: usize,
    ids_itt: u32,
    ids_cmdsn: u32,
}

/// State of a connection in login phase.
#[derive(Debug)]
pub(crate) struct LoginState {
    isid: [u8; 6],
    tsih: u16,
    cid: u16,
    itt: u32,
    cmdsn: u32,
    stage: Stage,
    initiator_name: Option<String>,
    initiator_alias: Option<String>,
    target_name: Option<String>,
    session_type: SessionType,
    target: Option<usize>,
    auth: Auth,
    params: SessionParams,
    responded: bool,
    identified: bool,
    declared_mrdsl: bool,
    text_in: Vec<u8>,
    pending: Option<PendingFinal>,
}

/// What a Login Response echoes from the request.
#[derive(Debug, Clone, Copy)]
struct Ids {
    isid: [u8; 6],
    itt: u32,
    cmdsn: u32,
    tsih: u16,
}

/// Where a login step left the connection.
enum Step {
    /// Still in login phase.
    Continue,
    /// Entered full feature phase.
    Done,
}

impl Portal {
    #[allow(clippy::too_many_arguments)]
    fn login_response(
        &mut self,
        c: &mut Conn,
        ids: Ids,
        transit: bool,
        csg: Stage,
        nsg: Stage,
        status: LoginStatus,
        text: &[u8],
    ) {
        let mut hdr = [0u8; BHS_LEN];
        LoginResponseRepr {
            transit,
            cont: false,
            csg,
            nsg: if transit { nsg } else { Stage::Security },
            version_max: 0,
            version_active: 0,
            isid: ids.isid,
            tsih: ids.tsih,
            itt: ids.itt,
            statsn: c.take_statsn(),
            exp_cmdsn: ids.cmdsn,
            max_cmdsn: ids.cmdsn.wrapping_add(self.cfg.queue_depth).wrapping_sub(1),
            status,
        }
        .emit(&mut hdr);
        c.send(&hdr, &[text]);
    }

    /// Ends the login with an error status and closes the connection after sending it.
    fn login_fail(&mut self, c: &mut Conn, ids: Ids, csg: Stage, status: LoginStatus) {
        self.stats.login_failures += 1;
        let csg = if matches!(csg, Stage::Security | Stage::Operational) {
            csg
        } else {
            Stage::Security
        };
        self.login_response(c, ids, false, csg, Stage::Security, status, &[]);
        c.login = None;
        c.phase = Phase::Closing;
        c.last_rx = self.now;
    }

    pub(crate) fn on_login<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        f: &Frame<'_>,
        san: &mut S,
    ) {
        let bhs = Bhs::new_unchecked(f.bhs);
        let req = match LoginRequestRepr::parse(&bhs) {
            Ok(r) => r,
            Err(_) => {
                let ids = Ids {
                    isid: [0; 6],
                    itt: bhs.itt(),
                    cmdsn: bhs.u32_at(24),
                    tsih: 0,
                };
                return self.login_fail(c, ids, Stage::Security, LoginStatus::INITIATOR_ERROR);
            }
        };
        let mut ls = match c.login.take() {
            Some(ls) => ls,
            None => Box::new(LoginState::new(&req, &self.cfg.limits)),
        };
        let ids = Ids {
            isid: if ls.responded { ls.isid } else { req.isid },
            itt: req.itt,
            cmdsn: req.cmdsn,
            tsih: ls.tsih,
        };
        match self.login_step(c, ch, &mut ls, ids, &req, f.data, san) {
            Ok(Step::Continue) => c.login = Some(ls),
            Ok(Step::Done) => {}
            Err(status) => self.login_fail(c, ids, req.csg, status),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn login_step<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        ls: &mut LoginState,
        ids: Ids,
        req: &LoginRequestRepr,
        data: &[u8],
        san: &mut S,
    ) -> Result<Step, LoginStatus> {
        if !ls.responded && req.version_min != 0 {
            // RFC 7143 §11.12.4: version 0 is the only version there is.
            return Err(LoginStatus::UNSUPPORTED_VERSION);
        }
        if ls.pending.is_some() {
            // A new request while the SAN decides: the initiator broke the exchange.
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        if ls.responded && (req.isid != ls.isid || req.tsih != ls.tsih || req.cid != ls.cid) {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        ls.itt = req.itt;
        ls.cmdsn = req.cmdsn;
        if req.cont {
            // RFC 7143 §11.12.2: each continued request gets an empty response.
            if ls.text_in.len() + data.len() > MAX_LOGIN_TEXT {
                return Err(LoginStatus::INITIATOR_ERROR);
            }
            ls.text_in.extend_from_slice(data);
            ls.responded = true;
            self.login_response(c, ids, false, req.csg, req.nsg, LoginStatus::SUCCESS, &[]);
            return Ok(Step::Continue);
        }
        let mut all = std::mem::take(&mut ls.text_in);
        all.extend_from_slice(data);
        let keys = text::parse(&all).map_err(|_| LoginStatus::INITIATOR_ERROR)?;

        // Stage rules (RFC 7143 §6.3).
        if !matches!(req.csg, Stage::Security | Stage::Operational) || req.csg != ls.stage {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        if req.transit {
            let ok = match req.csg {
                Stage::Security => matches!(req.nsg, Stage::Operational | Stage::FullFeature),
                Stage::Operational => req.nsg == Stage::FullFeature,
                _ => false,
            };
            if !ok {
                return Err(LoginStatus::INITIATOR_ERROR);
            }
        }

        // Declarative login keys; they may not change once given.
        for (k, v) in &keys {
            let slot = match k.as_str() {
                "InitiatorName" => &mut ls.initiator_name,
                "InitiatorAlias" => &mut ls.initiator_alias,
                "TargetName" => &mut ls.target_name,
                "SessionType" => {
                    let t = match v.as_str() {
                        "Normal" => SessionType::Normal,
                        "Discovery" => SessionType::Discovery,
                        _ => return Err(LoginStatus::SESSION_TYPE_NOT_SUPPORTED),
                    };
                    if ls.responded && t != ls.session_type {
                        return Err(LoginStatus::INITIATOR_ERROR);
                    }
                    ls.session_type = t;
                    continue;
                }
                _ => continue,
            };
            match slot {
                Some(old) if old != v => return Err(LoginStatus::INITIATOR_ERROR),
                _ => *slot = Some(v.clone()),
            }
        }
        let mut resp = Vec::new();
        if !ls.identified {
            self.check_identity(ls)?;
            ls.identified = true;
            if ls.session_type == SessionType::Normal {
                let tpgt = self.cfg.portal_group_tag.to_string();
                text::push(&mut resp, "TargetPortalGroupTag", &tpgt);
                if let Some(alias) = ls.target.and_then(|t| self.cfg.targets[t].alias.clone()) {
                    text::push(&mut resp, "TargetAlias", &alias);
                }
            }
        }
        ls.responded = true;
        let chap_cfg = self.chap_config(ls).cloned();

        match req.csg {
            Stage::Security => {
                self.security_keys(ls, &keys, chap_cfg.as_ref(), &mut resp)?;
                self.operational_keys(ls, &keys, &mut resp, false)?;
            }
            _ => {
                if chap_cfg.is_some() && ls.auth != Auth::Done {
                    // Authentication is required and the initiator skipped it.
                    return Err(LoginStatus::AUTHENTICATION_FAILURE);
                }
                ls.auth = Auth::Done;
                self.operational_keys(ls, &keys, &mut resp, true)?;
            }
        }
        let done = ls.auth == Auth::Done;
        if req.transit && done && req.nsg == Stage::FullFeature {
            return self.login_finish(c, ch, ls, ids, req.csg, resp, san);
        }
        if req.transit && done {
            ls.stage = req.nsg;
        }
        let transit = req.transit && done;
        self.login_response(
            c,
            ids,
            transit,
            req.csg,
            req.nsg,
            LoginStatus::SUCCESS,
            &resp,
        );
        Ok(Step::Continue)
    }

    fn check_identity(&self, ls: &mut LoginState) -> Result<(), LoginStatus> {
        let Some(name) = &ls.initiator_name else {
            return Err(LoginStatus::MISSING_PARAMETER);
        };
        if name.is_empty() || name.len() > 223 {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        if ls.session_type == SessionType::Normal {
            let Some(tn) = &ls.target_name else {
                return Err(LoginStatus::MISSING_PARAMETER);
            };
            let idx = self
                .cfg
                .targets
                .iter()
                .position(|t| t.name.eq_ignore_ascii_case(tn))
                .ok_or(LoginStatus::NOT_FOUND)?;
            if !self.cfg.targets[idx].allows(name) {
                return Err(LoginStatus::AUTHORIZATION_FAILURE);
            }
            ls.target = Some(idx);
        }
        Ok(())
    }

    fn chap_config(&self, ls: &LoginState) -> Option<&ChapConfig> {
        match ls.session_type {
            SessionType::Discovery => self.cfg.discovery_chap.as_ref(),
            SessionType::Normal => ls.target.and_then(|t| self.cfg.targets[t].chap.as_ref()),
        }
    }

    fn security_keys(
        &mut self,
        ls: &mut LoginState,
        keys: &[(String, String)],
        chap_cfg: Option<&ChapConfig>,
        resp: &mut Vec<u8>,
    ) -> Result<(), LoginStatus> {
        let get = |k: &str| keys.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str());
        let fail = LoginStatus::AUTHENTICATION_FAILURE;
        let chap_keys = keys.iter().any(|(k, _)| k.starts_with("CHAP_"));
        if ls.auth == Auth::Start {
            match get("AuthMethod") {
                None => {
                    if chap_cfg.is_some() || chap_keys {
                        return Err(fail);
                    }
                    ls.auth = Auth::Done;
                    return Ok(());
                }
                Some(list) => {
                    let offered: Vec<&str> = list.split(',').collect();
                    if chap_cfg.is_some() {
                        if !offered.contains(&"CHAP") {
                            text::push(resp, "AuthMethod", "Reject");
                            return Err(fail);
                        }
                        text::push(resp, "AuthMethod", "CHAP");
                        ls.auth = Auth::ChapWaitAlgorithm;
                    } else if offered.contains(&"None") {
                        text::push(resp, "AuthMethod", "None");
                        ls.auth = Auth::Done;
                        return if chap_keys {
                            Err(LoginStatus::INITIATOR_ERROR)
                        } else {
                            Ok(())
                        };
                    } else {
                        return Err(fail);
                    }
                }
            }
        } else if get("AuthMethod").is_some() {
            return Err(LoginStatus::INITIATOR_ERROR);
        }
        match ls.auth {
            Auth::ChapWaitAlgorithm => {
                let Some(list) = get("CHAP_A") else {
                    return Ok(());
                };
                let md5 = list
                    .split(',')
                    .any(|a| text::parse_number(a) == Some(u64::from(chap::CHAP_A_MD5)));
                if !md5 {
                    text::push(resp, "CHAP_A", "Reject");
                    return Err(fail);
                }
                let id = self.random() as u8;
                let mut challenge = [0u8; CHALLENGE_LEN];
                for chunk in challenge.chunks_mut(8) {
                    let r = self.random().to_le_bytes();
                    chunk.copy_from_slice(&r[..chunk.len()]);
                }
                text::push(resp, "CHAP_A", "5");
                text::push(resp, "CHAP_I", &id.to_string());
                text::push(resp, "CHAP_C", &text::encode_hex(&challenge));
                ls.auth = Auth::ChapWaitResponse { id, challenge };
                Ok(())
            }
            Auth::ChapWaitResponse { id, challenge } => {
                let (Some(cfg), Some(n), Some(r)) = (chap_cfg, get("CHAP_N"), get("CHAP_R")) else {
                    return Err(fail);
                };
                let got = text::decode_binary(r).ok_or(fail)?;
                let want = chap::response(id, &cfg.initiator.secret, &challenge);
                if n != cfg.initiator.name || !chap::constant_time_eq(&got, &want) {
                    return Err(fail);
                }
                match (get("CHAP_I"), get("CHAP_C")) {
                    (None, None) => {}
                    (Some(i), Some(cc)) => {
                        // Mutual CHAP: the initiator challenges the target.
                        let tgt = cfg.target.as_ref().ok_or(fail)?;
                        let i = text::parse_number(i).filter(|&v| v <= 255).ok_or(fail)? as u8;
                        let cc = text::decode_binary(cc).ok_or(fail)?;
                        if cc.is_empty() || cc.len() > 1024 || cc == challenge {
                            return Err(fail);
                        }
                        let r = chap::response(i, &tgt.secret, &cc);
                        text::push(resp, "CHAP_N", &tgt.name);
                        text::push(resp, "CHAP_R", &text::encode_hex(&r));
                    }
                    _ => return Err(fail),
                }
                ls.auth = Auth::Done;
                Ok(())
            }
            Auth::Done => {
                if chap_keys {
                    return Err(LoginStatus::INITIATOR_ERROR);
                }
                Ok(())
            }
            Auth::Start => Ok(()),
        }
    }

    fn operational_keys(
        &mut self,
        ls: &mut LoginState,
        keys: &[(String, String)],
        resp: &mut Vec<u8>,
        operational_stage: bool,
    ) -> Result<(), LoginStatus> {
        for (k, v) in keys {
            match params::negotiate(k, v, &self.cfg.limits, ls.session_type, &mut ls.params) {
                Answer::Reply(a) => text::push(resp, k, &a),
                Answer::Silent => {}
                Answer::Fail(st) => return Err(st),
                Answer::NotOperational => {
                    if operational_stage && (k == "AuthMethod" || k.starts_with("CHAP_")) {
                        // Security keys outside the security stage (RFC 7143 §6.3).
                        return Err(LoginStatus::INITIATOR_ERROR);
                    }
                }
            }
        }
        if operational_stage && !ls.declared_mrdsl {
            // RFC 7143 §13.12: each side declares what it can receive.
            text::push(
                resp,
                "MaxRecvDataSegmentLength",
                &self.cfg.limits.max_recv_data_segment_length.to_string(),
            );
            ls.declared_mrdsl = true;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn login_finish<S: SanPort + ?Sized>(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        ls: &mut LoginState,
        ids: Ids,
        csg: Stage,
        resp: Vec<u8>,
        san: &mut S,
    ) -> Result<Step, LoginStatus> {
        let name = ls
            .initiator_name
            .clone()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if ls.session_type == SessionType::Discovery {
            let tsih = self.alloc_tsih();
            let key: SessionKey = (name, ls.isid, None);
            self.enter_full_feature(
                c,
                ch,
                ls,
                ids,
                SessionKind::Discovery,
                tsih,
                csg,
                &resp,
                key,
            );
            return Ok(Step::Done);
        }
        let target = ls.target.ok_or(LoginStatus::MISSING_PARAMETER)?;
        if ls.tsih != 0 {
            return self.reinstate_connection(c, ch, ls, ids, target, &name, csg, &resp);
        }
        // Session reinstatement (RFC 7143 §6.3.5): same initiator name, ISID and target.
        let key: SessionKey = (name.clone(), ls.isid, Some(target));
        if let Some(&old) = self.by_isid.get(&key)
            && old != ch
        {
            if let Some(mut oc) = self.conns.take(old) {
                self.teardown(&mut oc, old, NexusLoss::Reinstated);
                oc.phase = Phase::Dead;
                self.conns.put_back(old, oc);
                self.stats.reinstatements += 1;
            }
            self.by_isid.remove(&key);
        }
        // The SAN hears about the old nexus ending before the new one starts.
        self.flush_deferred(san);
        let tsih = self.alloc_tsih();
        let decision = san.login(&SessionLogin {
            login: LoginId { conn: ch },
            initiator_name: ls.initiator_name.as_deref().unwrap_or_default(),
            initiator_alias: ls.initiator_alias.as_deref(),
            isid: Isid(ls.isid),
            target_name: &self.cfg.targets[target].name,
            target_index: target,
            portal_group_tag: self.cfg.portal_group_tag,
            tsih,
        });
        match decision {
            LoginDecision::Accept(nexus) => {
                let kind = SessionKind::Normal { nexus, target };
                self.enter_full_feature(c, ch, ls, ids, kind, tsih, csg, &resp, key);
                Ok(Step::Done)
            }
            LoginDecision::Reject(st) => Err(st),
            LoginDecision::Pending => {
                ls.pending = Some(PendingFinal {
                    text: resp,
                    csg,
                    tsih,
                    target,
                    ids_itt: ids.itt,
                    ids_cmdsn: ids.cmdsn,
                });
                Ok(Step::Continue)
            }
        }
    }

    /// A login with a non-zero TSIH: connection reinstatement (RFC 7143 §6.3.4) when it
    /// names the session's only connection (same CID); otherwise a second connection,
    /// which MaxConnections=1 forbids.
    #[allow(clippy::too_many_arguments)]
    fn reinstate_connection(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        ls: &mut LoginState,
        ids: Ids,
        target: usize,
        name: &str,
        csg: Stage,
        resp: &[u8],
    ) -> Result<Step, LoginStatus> {
        let Some(&old) = self.by_tsih.get(&ls.tsih) else {
            return Err(LoginStatus::SESSION_DOES_NOT_EXIST);
        };
        let Some(mut oc) = self.conns.take(old) else {
            return Err(LoginStatus::SESSION_DOES_NOT_EXIST);
        };
        let same = oc.session.as_ref().is_some_and(|s| {
            s.isid.0 == ls.isid
                && s.initiator_name == name
                && s.cid == ls.cid
                && matches!(s.kind, SessionKind::Normal { target: t, .. } if t == target)
        });
        if !same {
            self.conns.put_back(old, oc);
            return Err(LoginStatus::TOO_MANY_CONNECTIONS);
        }
        let Some(mut s) = oc.session.take() else {
            self.conns.put_back(old, oc);
            return Err(LoginStatus::SESSION_DOES_NOT_EXIST);
        };
        // The old connection's tasks end; the session, its nexus and its CmdSN state
        // move to the new connection.
        if let SessionKind::Normal { nexus, .. } = s.kind {
            for (th, t) in oc.tasks.iter() {
                if t.state == TaskState::Active {
                    self.deferred.push_back(Deferred::Abort(
                        nexus,
                        TaskId {
                            conn: old,
                            task: th,
                        },
                    ));
                }
            }
            self.by_nexus.insert(nexus, ch);
        }
        s.queued.clear();
        oc.tasks = Slab::default();
        oc.itt_map.clear();
        oc.phase = Phase::Dead;
        self.conns.put_back(old, oc);
        self.by_tsih.insert(s.tsih, ch);
        self.by_isid
            .insert((s.initiator_name.clone(), s.isid.0, Some(target)), ch);
        // Connection-only parameters come from this login.
        s.params.header_digest = ls.params.header_digest;
        s.params.data_digest = ls.params.data_digest;
        s.params.max_xmit_data_segment_length = ls.params.max_xmit_data_segment_length;
        let ids = Ids {
            tsih: s.tsih,
            ..ids
        };
        c.session = Some(s);
        self.login_response(
            c,
            ids,
            true,
            csg,
            Stage::FullFeature,
            LoginStatus::SUCCESS,
            resp,
        );
        self.activate(c);
        self.stats.logins += 1;
        Ok(Step::Done)
    }

    #[allow(clippy::too_many_arguments)]
    fn enter_full_feature(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        ls: &LoginState,
        ids: Ids,
        kind: SessionKind,
        tsih: u16,
        csg: Stage,
        resp: &[u8],
        key: SessionKey,
    ) {
        let depth = self.cfg.queue_depth;
        let s = Session {
            kind,
            tsih,
            isid: Isid(ls.isid),
            cid: ls.cid,
            initiator_name: key.0.clone(),
            params: ls.params.clone(),
            exp_cmdsn: ls.cmdsn,
            max_cmdsn: ls.cmdsn.wrapping_add(depth).wrapping_sub(1),
            queued: FxHashMap::default(),
        };
        if let SessionKind::Normal { nexus, .. } = kind {
            self.by_nexus.insert(nexus, ch);
        }
        self.by_tsih.insert(tsih, ch);
        self.by_isid.insert(key, ch);
        c.session = Some(s);
        let ids = Ids { tsih, ..ids };
        self.login_response(
            c,
            ids,
            true,
            csg,
            Stage::FullFeature,
            LoginStatus::SUCCESS,
            resp,
        );
        self.activate(c);
        self.stats.logins += 1;
    }

    /// Switches the connection to full feature phase; digests start with the next PDU
    /// (RFC 7143 §13.1).
    fn activate(&mut self, c: &mut Conn) {
        c.login = None;
        c.phase = Phase::FullFeature;
        c.last_rx = self.now;
        if let Some(s) = &c.session {
            let d = Digests::from_params(&s.params);
            c.rx_digests = d;
            c.tx_digests = d;
        }
    }

    pub(crate) fn finish_pending_login(
        &mut self,
        c: &mut Conn,
        ch: Handle,
        result: Result<NexusId, LoginStatus>,
    ) -> Result<(), EventError> {
        if c.phase != Phase::Login {
            return Err(EventError::Stale);
        }
        let Some(mut ls) = c.login.take() else {
            return Err(EventError::Stale);
        };
        let Some(p) = ls.pending.take() else {
            c.login = Some(ls);
            return Err(EventError::Invalid("login not waiting for the SAN"));
        };
        let ids = Ids {
            isid: ls.isid,
            itt: p.ids_itt,
            cmdsn: p.ids_cmdsn,
            tsih: ls.tsih,
        };
        match result {
            Ok(nexus) => {
                let name = ls
                    .initiator_name
                    .clone()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let key: SessionKey = (name, ls.isid, Some(p.target));
                let kind = SessionKind::Normal {
                    nexus,
                    target: p.target,
                };
                self.enter_full_feature(c, ch, &ls, ids, kind, p.tsih, p.csg, &p.text, key);
            }
            Err(st) => self.login_fail(c, ids, p.csg, st),
        }
        Ok(())
    }
}

impl LoginState {
    fn new(req: &LoginRequestRepr, limits: &params::TargetLimits) -> Self {
        LoginState {
            isid: req.isid,
            tsih: req.tsih,
            cid: req.cid,
            itt: req.itt,
            cmdsn: req.cmdsn,
            stage: req.csg,
            initiator_name: None,
            initiator_alias: None,
            target_name: None,
            session_type: SessionType::Normal,
            target: None,
            auth: Auth::Start,
            params: SessionParams::defaults(limits),
            responded: false,
            identified: false,
            declared_mrdsl: false,
            text_in: Vec::new(),
            pending: None,
        }
    }
}
