//! The virtual FC fabric: one switch (domain [`FabricConfig::domain`]) with a port per
//! attached N_Port — the simulated HBA on switch port 0, simulated initiators on the others —
//! and the fabric services an N_Port talks to: the F_Port login server (FLOGI at FF:FF:FE),
//! the fabric controller (SCR, RSCN from FF:FF:FD) and a name-server table.
//!
//! Addresses: the port on switch port *n* gets N_Port ID `domain : n+1 : 00` when its FLOGI
//! is accepted. Frames are routed by D_ID to a logged-in port with its link up; anything
//! else is discarded (and traced).
//!
//! Links ([`Links`]): every port has a full-duplex link to the switch at its own rate — the
//! HBA's at the speed of its firmware ([`link_bytes_per_sec`] of
//! `FirmwareConfig::link_speed`: 8GFC ≈ 800 MB/s, 16GFC 1600, 32GFC 3200), the initiators'
//! at [`FabricConfig::bytes_per_sec`]. A frame occupies a link for its wire size (SOF,
//! header, payload, CRC, EOF and the minimum inter-frame gap: [`FRAME_OVERHEAD`] bytes
//! more than header + payload) at the link's rate, in each direction separately: the
//! sender's transmitter serialises what it sends in order, and the switch (cut-through,
//! [`FabricConfig::latency`] after the frame starts arriving) serialises what it sends
//! down each port's link, so several senders share a receiver's link. Frames to one port
//! arrive in the order they were sent (FC class 3 in-order delivery) unless a delay fault
//! reorders them. In threaded mode, or with `bytes_per_sec = 0`, links are infinitely fast
//! (delivery after the latency only): the real-time thread does not sleep per frame.
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
    /// Rate of the initiators' links, bytes per second (the HBA's link runs at its
    /// firmware's link speed). 0: every link, the HBA's included, is infinitely fast.
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
}

/// Wire bytes of a frame beyond its header and payload: SOF (4), CRC (4), EOF (4) and
/// the minimum inter-frame gap of six primitive signals (24).
pub const FRAME_OVERHEAD: usize = 36;

/// The data rate of an FC link speed, bytes per second (1GFC = 100 MB/s, doubling per
/// generation; 10GFC 1200 MB/s).
pub fn link_bytes_per_sec(speed: rscst_fw::async_event::LinkSpeed) -> u64 {
    use rscst_fw::async_event::LinkSpeed;
    match speed {
        LinkSpeed::Gbps1 => 100_000_000,
        LinkSpeed::Gbps2 => 200_000_000,
        LinkSpeed::Gbps4 => 400_000_000,
        LinkSpeed::Gbps8 => 800_000_000,
        LinkSpeed::Gbps10 => 1_200_000_000,
        LinkSpeed::Gbps16 => 1_600_000_000,
        LinkSpeed::Gbps32 => 3_200_000_000,
        LinkSpeed::Gbps64 => 6_400_000_000,
        LinkSpeed::Unknown(_) => 800_000_000,
    }
}

/// When a frame is on its sender's link: from `start` (first bit) to `end` (last bit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tx {
    pub start: SimTime,
    pub end: SimTime,
}

impl Tx {
    /// A frame that goes out at once (fabric services; infinitely fast links).
    pub(crate) fn at(t: SimTime) -> Tx {
        Tx { start: t, end: t }
    }
}

/// The links between the ports and the switch: rates and when each direction is free.
#[derive(Debug, Default)]
pub(crate) struct Links {
    /// Bytes per second per switch port (0: infinitely fast).
    rate: Vec<u64>,
    /// When the port's transmitter (port → switch) is free.
    up_free: Vec<SimTime>,
    /// When the switch's transmitter towards the port (switch → port) is free.
    down_free: Vec<SimTime>,
    /// Some link has a finite rate.
    finite: bool,
}

fn wire_time(rate: u64, len: usize) -> Duration {
    if rate == 0 {
        return Duration::ZERO;
    }
    let bytes = (len + FRAME_OVERHEAD) as u128;
    Duration::from_nanos((bytes * 1_000_000_000 / rate as u128) as u64)
}

impl Links {
    fn add(&mut self, rate: u64) {
        self.finite |= rate != 0;
        self.rate.push(rate);
        self.up_free.push(SimTime::ZERO);
        self.down_free.push(SimTime::ZERO);
    }

    /// Whether serialisation is modelled (stepped mode with finite links).
    pub(crate) fn paced(&self, threaded: bool) -> bool {
        self.finite && !threaded
    }

    /// Puts a frame of `len` bytes (header + payload) on `from`'s link at `now`.
    pub(crate) fn send(&mut self, now: SimTime, from: Slot, len: usize, paced: bool) -> Tx {
        let (Some(free), Some(&rate)) = (self.up_free.get_mut(from), self.rate.get(from)) else {
            return Tx::at(now);
        };
        if !paced {
            return Tx::at(now);
        }
        let start = now.max(*free);
        let end = start + wire_time(rate, len);
        *free = end;
        Tx { start, end }
    }

    /// When `from`'s transmitter is free (`now` or later).
    pub(crate) fn free_at(&self, now: SimTime, from: Slot) -> SimTime {
        self.up_free.get(from).map_or(now, |&t| t.max(now))
    }

    /// When a frame of `len` bytes on its sender's link as `tx` has arrived at `to`:
    /// cut-through after the switch latency, serialised on `to`'s link behind what the
    /// switch already sends there, never before its last bit left the sender. `extra`
    /// (a delay fault) is added after the link was used and may reorder frames.
    pub(crate) fn arrival(
        &mut self,
        tx: Tx,
        to: Slot,
        len: usize,
        latency: Duration,
        extra: Option<Duration>,
        paced: bool,
    ) -> SimTime {
        let rate = self.rate.get(to).copied().unwrap_or(0);
        let Some(free) = self.down_free.get_mut(to) else {
            return tx.end + latency;
        };
        let start = (tx.start + latency).max(*free);
        let end = if paced {
            (start + wire_time(rate, len)).max(tx.end + latency)
        } else {
            start
        };
        *free = end;
        match extra {
            Some(d) => end + d,
            None => end,
        }
    }
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
    pub links: Links,
    rx_id: u16,
}

impl Fabric {
    pub(crate) fn new(cfg: FabricConfig) -> Fabric {
        Fabric {
            cfg,
            ports: Vec::new(),
            links: Links::default(),
            rx_id: 0,
        }
    }

    /// Adds a switch port whose link runs at `bytes_per_sec` (0 with
    /// `FabricConfig::bytes_per_sec` = 0: infinitely fast); returns its slot.
    pub(crate) fn attach(
        &mut self,
        wwpn: Wwn,
        wwnn: Wwn,
        cable: bool,
        target: bool,
        initiator: bool,
        bytes_per_sec: u64,
    ) -> Slot {
        let rate = if self.cfg.bytes_per_sec == 0 {
            0
        } else {
            bytes_per_sec
        };
        self.links.add(rate);
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

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1_000_000;

    fn links(rates: &[u64]) -> Links {
        let mut l = Links::default();
        for &r in rates {
            l.add(r);
        }
        l
    }

    #[test]
    fn a_sender_serialises_its_frames() {
        // 800 MB/s: a 2048 + 24 byte frame is 2108 wire bytes = 2635 ns.
        let mut l = links(&[800 * MB, 800 * MB]);
        let t0 = SimTime::from_micros(10);
        let a = l.send(t0, 0, 2072, true);
        let b = l.send(t0, 0, 2072, true);
        assert_eq!(a.start, t0);
        assert_eq!(a.end, t0 + Duration::from_nanos(2635));
        assert_eq!(b.start, a.end);
        assert_eq!(b.end, a.end + Duration::from_nanos(2635));
        assert_eq!(l.free_at(t0, 0), b.end);
        let lat = Duration::from_micros(1);
        // Cut-through at the same rate: each arrives one latency after it left.
        assert_eq!(l.arrival(a, 1, 2072, lat, None, true), a.end + lat);
        assert_eq!(l.arrival(b, 1, 2072, lat, None, true), b.end + lat);
    }

    #[test]
    fn senders_share_the_receivers_link() {
        // Two 32GFC senders into one 8GFC receiver: the receiver's link is the limit.
        let mut l = links(&[800 * MB, 3200 * MB, 3200 * MB]);
        let t0 = SimTime::ZERO;
        let lat = Duration::ZERO;
        let a = l.send(t0, 1, 2072, true);
        let b = l.send(t0, 2, 2072, true);
        assert_eq!(a.end, b.end, "separate uplinks");
        let ra = l.arrival(a, 0, 2072, lat, None, true);
        let rb = l.arrival(b, 0, 2072, lat, None, true);
        assert_eq!(ra, t0 + Duration::from_nanos(2635));
        assert_eq!(rb, ra + Duration::from_nanos(2635));
        // A delay fault delays that frame only, after it used the link.
        let c = l.send(t0, 1, 100, true);
        let rc = l.arrival(c, 0, 100, lat, Some(Duration::from_millis(1)), true);
        assert!(rc > rb + Duration::from_millis(1));
        let d = l.send(t0, 2, 100, true);
        assert!(l.arrival(d, 0, 100, lat, None, true) < rc, "overtakes it");
    }

    #[test]
    fn unpaced_links_deliver_after_the_latency_in_order() {
        let mut l = links(&[0, 0]);
        assert!(!l.paced(false));
        let mut m = links(&[800 * MB]);
        assert!(m.paced(false) && !m.paced(true), "threaded: not paced");
        let t0 = SimTime::from_micros(3);
        let a = m.send(t0, 0, 2072, false);
        assert_eq!(a, Tx::at(t0));
        let lat = Duration::from_micros(1);
        let x = l.send(t0, 0, 2072, false);
        assert_eq!(l.arrival(x, 1, 2072, lat, None, false), t0 + lat);
        // A later frame sent earlier in time still arrives in order.
        let y = Tx::at(SimTime::from_micros(2));
        assert_eq!(l.arrival(y, 1, 10, lat, None, false), t0 + lat);
        assert_eq!(
            link_bytes_per_sec(rscst_fw::async_event::LinkSpeed::Gbps32),
            3200 * MB
        );
    }
}
