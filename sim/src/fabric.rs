//! The virtual FC fabric: one switch (domain [`FabricConfig::domain`]) with a port per
//! attached N_Port — the simulated HBA on switch port 0, simulated initiators on the others —
//! and the fabric services an N_Port talks to: the F_Port login server (FLOGI at FF:FF:FE),
//! the fabric controller (SCR, RSCN from FF:FF:FD) and a name-server table.
//!
//! Addresses: the port on switch port *n* gets N_Port ID `domain : n+1 : 00` when its FLOGI
//! is accepted. Frames are routed by D_ID to a logged-in port with its link up; anything
//! else is discarded (and traced). Delivery takes [`FabricConfig::latency`] plus the
//! serialisation time of the frame at [`FabricConfig::bytes_per_sec`], and frames to one
//! port arrive in the order they were sent (FC class 3 in-order delivery) unless a delay
//! fault reorders them.
//!
//! Simplifications (documented in the crate README): one switch, no zoning, no loop
//! topology (LIP is modelled as a link reset of the HBA's port), the name server is
//! consulted through [`crate::Sim::name_server`] rather than CT frames, and the HBA's
//! FC-4 registration is done by the fabric when the HBA logs in.

use core::time::Duration;

use rscst_fw::fc::els::{
    ClassParamsRepr, CommonFeatures, ElsOpcode, ElsRepr, RscnPage, RscnRepr, ServiceParamsRepr,
};
use rscst_fw::fc::{Eof, FCtl, FcFrameRepr, FcHeaderRepr, FcPayload, FcType, RCtl, Sof};
use rscst_fw::{OxId, PortId, RxId, Wwn};

use crate::frame::{Frame, FramePool};
use crate::time::SimTime;

/// Index of a switch port: 0 is the simulated HBA, 1.. the initiators in creation order.
pub type Slot = usize;

/// The HBA's switch port.
pub const HBA_SLOT: Slot = 0;

/// Fabric parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FabricConfig {
    /// Switch domain id (first byte of every N_Port ID).
    pub domain: u8,
    /// Fixed part of the frame delivery time.
    pub latency: Duration,
    /// Link rate for serialisation delay (bytes per second; 0 = infinitely fast).
    pub bytes_per_sec: u64,
    /// Whether the HBA's cable is plugged in at start.
    pub hba_link_up: bool,
}

impl Default for FabricConfig {
    fn default() -> Self {
        FabricConfig {
            domain: 0x01,
            latency: Duration::from_micros(1),
            bytes_per_sec: 800_000_000,
            hba_link_up: true,
        }
    }
}

/// A name-server entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameServerEntry {
    /// N_Port ID.
    pub port_id: PortId,
    /// WWPN.
    pub wwpn: Wwn,
    /// WWNN.
    pub wwnn: Wwn,
    /// Registered as an FCP target.
    pub fcp_target: bool,
    /// Registered as an FCP initiator.
    pub fcp_initiator: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct FabricPort {
    pub port_id: PortId,
    pub wwpn: Wwn,
    pub wwnn: Wwn,
    pub cable: bool,
    pub logged_in: bool,
    pub fcp_target: bool,
    pub fcp_initiator: bool,
    /// Earliest arrival time of the next frame to this port (in-order delivery).
    pub next_arrival: SimTime,
}

/// What the fabric wants done after it handled a frame addressed to a fabric service.
#[derive(Debug, Default)]
pub(crate) struct FabricOut {
    /// Frames to deliver: (destination slot, frame).
    pub frames: Vec<(Slot, Frame)>,
    /// A port's fabric login changed: (slot, now logged in).
    pub login_changed: Option<(Slot, bool)>,
}

pub(crate) struct Fabric {
    pub cfg: FabricConfig,
    pub ports: Vec<FabricPort>,
    rx_id: u16,
}

impl Fabric {
    pub(crate) fn new(cfg: FabricConfig) -> Fabric {
        Fabric {
            cfg,
            ports: Vec::new(),
            rx_id: 0,
        }
    }

    /// Adds a switch port; returns its slot.
    pub(crate) fn attach(
        &mut self,
        wwpn: Wwn,
        wwnn: Wwn,
        cable: bool,
        target: bool,
        initiator: bool,
    ) -> Slot {
        let slot = self.ports.len();
        let area = u8::try_from(slot + 1).unwrap_or(0xFF);
        self.ports.push(FabricPort {
            port_id: PortId::from_parts(self.cfg.domain, area, 0x00),
            wwpn,
            wwnn,
            cable,
            logged_in: false,
            fcp_target: target,
            fcp_initiator: initiator,
            next_arrival: SimTime::ZERO,
        });
        slot
    }

    /// The slot whose logged-in port has `pid`.
    pub(crate) fn route(&self, pid: PortId) -> Option<Slot> {
        self.ports
            .iter()
            .position(|p| p.logged_in && p.cable && p.port_id == pid)
    }

    pub(crate) fn name_server(&self) -> Vec<NameServerEntry> {
        self.ports
            .iter()
            .filter(|p| p.logged_in && p.cable)
            .map(|p| NameServerEntry {
                port_id: p.port_id,
                wwpn: p.wwpn,
                wwnn: p.wwnn,
                fcp_target: p.fcp_target,
                fcp_initiator: p.fcp_initiator,
            })
            .collect()
    }

    /// When a frame of `len` bytes sent now to `slot` arrives.
    pub(crate) fn arrival(
        &mut self,
        now: SimTime,
        slot: Slot,
        len: usize,
        extra: Option<Duration>,
    ) -> SimTime {
        let ser = if self.cfg.bytes_per_sec == 0 {
            0
        } else {
            (len as u128 * 1_000_000_000 / self.cfg.bytes_per_sec as u128) as u64
        };
        let base = now + self.cfg.latency + Duration::from_nanos(ser);
        let Some(p) = self.ports.get_mut(slot) else {
            return base;
        };
        match extra {
            Some(d) => base + d,
            None => {
                let t = base.max(p.next_arrival);
                p.next_arrival = t;
                t
            }
        }
    }

    fn next_rx_id(&mut self) -> RxId {
        self.rx_id = self.rx_id.wrapping_add(1) & 0x7FFF;
        RxId(self.rx_id)
    }

    /// A port lost or regained its link / left the fabric: RSCN to the others.
    pub(crate) fn set_logged_in(
        &mut self,
        pool: &mut FramePool,
        slot: Slot,
        logged_in: bool,
    ) -> Vec<(Slot, Frame)> {
        let Some(p) = self.ports.get_mut(slot) else {
            return Vec::new();
        };
        if p.logged_in == logged_in {
            return Vec::new();
        }
        p.logged_in = logged_in;
        let pid = p.port_id;
        self.rscn(pool, slot, pid)
    }

    pub(crate) fn set_cable(
        &mut self,
        pool: &mut FramePool,
        slot: Slot,
        up: bool,
    ) -> Vec<(Slot, Frame)> {
        let Some(p) = self.ports.get_mut(slot) else {
            return Vec::new();
        };
        p.cable = up;
        if !up && p.logged_in {
            return self.set_logged_in(pool, slot, false);
        }
        Vec::new()
    }

    fn rscn(&mut self, pool: &mut FramePool, changed: Slot, pid: PortId) -> Vec<(Slot, Frame)> {
        let page = RscnPage {
            event_qualifier: 0,
            address_format: 0,
            port_id: pid,
        };
        let Ok(rscn) = RscnRepr::new(&[page]) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (slot, p) in self.ports.iter().enumerate() {
            if slot == changed || !p.logged_in || !p.cable {
                continue;
            }
            self.rx_id = self.rx_id.wrapping_add(1) & 0x7FFF;
            let h = FcHeaderRepr::new(
                RCtl::ElsReq,
                FcType::Els,
                p.port_id,
                PortId::FABRIC_CONTROLLER,
                FCtl::FCP_CMND,
                OxId(0x8000 | self.rx_id),
            );
            let repr = FcFrameRepr {
                header: h,
                payload: FcPayload::Els(ElsRepr::Rscn(rscn)),
            };
            if let Ok(f) = pool.build(Sof::I3, Eof::TNeg, &repr) {
                out.push((slot, f));
            }
        }
        out
    }

    /// A frame addressed to a fabric service (FF:FF:Fx).
    pub(crate) fn service(&mut self, pool: &mut FramePool, from: Slot, frame: &Frame) -> FabricOut {
        let mut out = FabricOut::default();
        let Ok(repr) = frame.decode() else { return out };
        let h = repr.header;
        let FcPayload::Els(els) = repr.payload else {
            return out;
        };
        if h.r_ctl != RCtl::ElsReq {
            return out; // replies to our RSCNs
        }
        let Some(port) = self.ports.get(from).cloned() else {
            return out;
        };
        let reply_payload = match (h.d_id, els) {
            (PortId::FABRIC_LOGIN, ElsRepr::ServiceParams(sp)) if sp.opcode == ElsOpcode::Flogi => {
                if let Some(p) = self.ports.get_mut(from) {
                    p.wwpn = sp.port_name;
                    p.wwnn = sp.node_name;
                }
                let acc = self.flogi_acc(sp.rx_data_field_size);
                Some((ElsRepr::ServiceParams(acc), port.port_id, true))
            }
            (PortId::FABRIC_CONTROLLER, ElsRepr::Scr(_)) => Some((
                ElsRepr::Other {
                    opcode: ElsOpcode::LsAcc,
                    len: 4,
                },
                h.s_id,
                false,
            )),
            (PortId::FABRIC_LOGIN, ElsRepr::Logo(_)) => {
                out.login_changed = Some((from, false));
                Some((
                    ElsRepr::Other {
                        opcode: ElsOpcode::LsAcc,
                        len: 4,
                    },
                    h.s_id,
                    false,
                ))
            }
            _ => {
                let rjt = rscst_fw::fc::els::LsRjtRepr {
                    reason: rscst_fw::fc::els::LsRjtReason::NotSupported,
                    explanation: rscst_fw::fc::els::LsRjtExplanation::None,
                    vendor: 0,
                };
                Some((ElsRepr::LsRjt(rjt), h.s_id, false))
            }
        };
        if let Some((payload, d_id, flogi)) = reply_payload {
            let rx = self.next_rx_id();
            let mut rh = h.reply(RCtl::ElsRep, FcType::Els, FCtl::BLS_RESPONSE);
            rh.d_id = d_id;
            rh.rx_id = rx;
            let repr = FcFrameRepr {
                header: rh,
                payload: FcPayload::Els(payload),
            };
            if let Ok(f) = pool.build(Sof::I3, Eof::TNeg, &repr) {
                out.frames.push((from, f));
            }
            if flogi {
                out.login_changed = Some((from, true));
            }
        }
        out
    }

    fn flogi_acc(&self, _rx: u16) -> ServiceParamsRepr {
        let mut sp = ServiceParamsRepr::n_port(
            ElsOpcode::LsAcc,
            Wwn::from_u64(0x2000_0005_1e00_0000 | self.cfg.domain as u64),
            Wwn::from_u64(0x1000_0005_1e00_0000 | self.cfg.domain as u64),
            2112,
        );
        sp.common_features = CommonFeatures::F_PORT;
        sp.word2 = 10_000; // R_A_TOV ms
        sp.classes[2] = ClassParamsRepr::valid_class(2112);
        sp
    }
}
