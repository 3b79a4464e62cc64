//! `parse(emit(x)) == x` for every Repr, with proptest-generated values covering every field
//! (unknown enum values and unnamed flag bits included).

use proptest::prelude::*;
use proptest::sample::select;

use rscst_fw::async_event::AsyncEvent;
use rscst_fw::fc::bls::{BaAccRepr, BaRjtRepr};
use rscst_fw::fc::els::{
    AdiscRepr, ClassParamsRepr, CommonFeatures, ElsOpcode, ElsRepr, LogoRepr, LsRjtRepr,
    PrliPageFlags, PrliPageRepr, PrliRepr, PrliServiceParams, RscnPage, RscnRepr, ScrRepr,
    ServiceParamsRepr,
};
use rscst_fw::fc::fcp::{
    Cdb, DataDir, FcpCmnd, FcpCmndRepr, FcpRspFlags, FcpRspRepr, FcpXferRdy, FcpXferRdyRepr,
    Residual, SenseData, TmFlags,
};
use rscst_fw::fc::frame::{DelimitedFrame, Eof, FcFrameRepr, FcPayload, Sof};
use rscst_fw::fc::header::{FCtl, FcHeader, FcHeaderRepr, FcType, RCtl};
use rscst_fw::icb::{
    FwOptions1, FwOptions2, FwOptions3, Icb, IcbLayout, IcbRepr, RingConfig, VpEntryRepr, VpOptions,
};
use rscst_fw::iocb::abts::{AbtsRecv, AbtsResp};
use rscst_fw::iocb::ctio_crc2::CtioCrc2;
use rscst_fw::iocb::ctio7::{Ctio7Mode0, Ctio7Mode1, ScsiStatusWord};
use rscst_fw::iocb::immed_notify::{ImmedNotify, NotifyFlags, NotifyStatus, SrrIu};
use rscst_fw::iocb::loginout::{LoginoutCommand, LoginoutFlags};
use rscst_fw::iocb::marker::MarkerModifier;
use rscst_fw::iocb::notify_ack::{NotifyAck, NotifyAckFlags, NotifyAckStatus};
use rscst_fw::iocb::*;
use rscst_fw::mailbox::{
    AdapterId, FirmwareVersion, FwAttributes, Mailboxes, ResourceCounts, Topology,
};
use rscst_fw::pci::IcbVariant;
use rscst_fw::port_db::{IdListEntryRepr, PortDatabase, PortDatabaseRepr, PortDbFlags};
use rscst_fw::{ExchangeAddr, Lun, NportHandle, OxId, PortId, RxId, Wwn};

fn port() -> impl Strategy<Value = PortId> {
    (0u32..0x100_0000).prop_map(PortId::new)
}
fn wwn() -> impl Strategy<Value = Wwn> {
    any::<[u8; 8]>().prop_map(Wwn)
}
fn lun() -> impl Strategy<Value = Lun> {
    any::<[u8; 8]>().prop_map(Lun)
}
fn xchg() -> impl Strategy<Value = ExchangeAddr> {
    any::<u32>().prop_map(ExchangeAddr)
}
fn nport() -> impl Strategy<Value = NportHandle> {
    any::<u16>().prop_map(NportHandle)
}
fn estatus() -> impl Strategy<Value = EntryStatus> {
    any::<u8>().prop_map(EntryStatus::from_bits_retain)
}
fn dsd() -> impl Strategy<Value = Dsd64> {
    (any::<u64>(), any::<u32>()).prop_map(|(address, length)| Dsd64 { address, length })
}

prop_compose! {
    fn header()(r in any::<u8>(), d_id in port(), cs in any::<u8>(), s_id in port(), t in any::<u8>(),
                f in 0u32..0x100_0000, seq_id in any::<u8>(), df in any::<u8>(), seq_cnt in any::<u16>(),
                ox in any::<u16>(), rx in any::<u16>(), p in any::<u32>()) -> FcHeaderRepr {
        FcHeaderRepr { r_ctl: r.into(), d_id, cs_ctl: cs, s_id, fc_type: t.into(), f_ctl: FCtl::from_bits_retain(f),
            seq_id, df_ctl: df, seq_cnt, ox_id: OxId(ox), rx_id: RxId(rx), parameter: p }
    }
}

prop_compose! {
    fn cdb()(n in 0usize..=63)(bytes in proptest::collection::vec(any::<u8>(), 16 + 4 * n)) -> Cdb {
        Cdb::new(&bytes).unwrap()
    }
}

prop_compose! {
    fn fcp_cmnd()(lun in lun(), crn in any::<u8>(), attr in 0u8..8, prio in 0u8..16, tmf in any::<u8>(),
                  rd in any::<bool>(), wr in any::<bool>(), cdb in cdb(), dl in any::<u32>()) -> FcpCmndRepr {
        FcpCmndRepr { lun, crn, task_attr: attr.into(), priority: prio, tmf: TmFlags::from_bits_retain(tmf),
            dir: DataDir::from_bits(rd, wr), cdb, data_len: dl }
    }
}

prop_compose! {
    fn atio()(attr in 0u8..16, x in xchg(), header in header(), fcp in fcp_cmnd()) -> Atio7Repr {
        Atio7Repr { attr, exchange_addr: x, header, fcp }
    }
}

fn ctio_mode() -> impl Strategy<Value = Ctio7Mode> {
    prop_oneof![
        (any::<u32>(), any::<u32>(), dsd()).prop_map(|(relative_offset, transfer_length, dsd)| {
            Ctio7Mode::Mode0(Ctio7Mode0 {
                relative_offset,
                transfer_length,
                dsd,
            })
        }),
        (0u16..=24)
            .prop_flat_map(|rl| (Just(rl), 0..=24 - rl, any::<[u8; 24]>()))
            .prop_map(|(response_len, sense_length, data)| {
                Ctio7Mode::Mode1(Ctio7Mode1 {
                    response_len,
                    sense_length,
                    data,
                })
            }),
    ]
}

prop_compose! {
    fn ctio7()(entry_count in any::<u8>(), handle in any::<u32>(), nport in nport(), timeout in any::<u16>(),
               dseg in any::<u16>(), vp in any::<u8>(), add in any::<u8>(), iid in port(), x in xchg(),
               attr in 0u8..16, flags in any::<u16>(), resid in any::<u32>(), ox in any::<u16>(),
               st in any::<u16>(), mode in ctio_mode()) -> Ctio7Repr {
        Ctio7Repr { entry_count, handle, nport_handle: nport, timeout, dseg_count: dseg, vp_index: vp, add_flags: add,
            initiator_id: iid, exchange_addr: x, attr,
            flags: Ctio7Flags::from_bits_retain(flags & !(Ctio7Flags::ATTR_MASK | Ctio7Flags::MODE_MASK)),
            residual: resid, ox_id: OxId(ox), scsi_status: ScsiStatusWord::from_u16(st), mode }
    }
}

prop_compose! {
    fn ctio7_done()(es in estatus(), handle in any::<u32>(), st in any::<u16>(), timeout in any::<u16>(),
                    dseg in any::<u16>(), vp in any::<u8>(), x in xchg(), flags in any::<u16>(),
                    resid in any::<u32>(), ox in any::<u16>(), ro in any::<u32>()) -> Ctio7CompletionRepr {
        Ctio7CompletionRepr { entry_status: es, handle, status: st.into(), timeout, dseg_count: dseg, vp_index: vp,
            exchange_addr: x, flags: Ctio7Flags::from_bits_retain(flags), residual: resid, ox_id: OxId(ox),
            relative_offset: ro }
    }
}

prop_compose! {
    fn crc2()(c in ctio7(), st in any::<u16>(), flags in any::<u16>(), ro in any::<u32>(), tl in any::<u32>(),
              a in any::<u64>(), l in any::<u16>()) -> CtioCrc2Repr {
        CtioCrc2Repr { entry_count: c.entry_count, handle: c.handle, nport_handle: c.nport_handle, timeout: c.timeout,
            dseg_count: c.dseg_count, vp_index: c.vp_index, add_flags: c.add_flags, initiator_id: c.initiator_id,
            exchange_addr: c.exchange_addr, attr: c.attr,
            flags: Ctio7Flags::from_bits_retain(flags & !Ctio7Flags::ATTR_MASK), residual: c.residual, ox_id: c.ox_id,
            scsi_status: ScsiStatusWord::from_u16(st), relative_offset: ro, transfer_length: tl,
            crc_context_address: a, crc_context_len: l }
    }
}

prop_compose! {
    fn crc2_done()(es in estatus(), handle in any::<u32>(), st in any::<u16>(), t in any::<u16>(), d in any::<u16>(),
                   sf in any::<u16>(), x in xchg(), f in any::<u16>(), r in any::<u32>(), ox in any::<u16>(),
                   rg in any::<u16>(), a in any::<[u8; 8]>(), e in any::<[u8; 8]>()) -> CtioCrc2CompletionRepr {
        CtioCrc2CompletionRepr { entry_status: es, handle, status: st.into(), timeout: t, dseg_count: d,
            state_flags: sf, exchange_addr: x, flags: Ctio7Flags::from_bits_retain(f), residual: r, ox_id: OxId(ox),
            runt_guard: rg, actual_dif: a, expected_dif: e }
    }
}

prop_compose! {
    fn notify()(es in estatus(), n in nport(), fl in any::<u16>(), srx in any::<u16>(), st in any::<u16>(),
                sub in any::<u8>(), fw in any::<u8>(), x in xchg(), ro in any::<u32>(), ui in any::<u16>(),
                sox in any::<u16>(), els in any::<[u8; 8]>(), pn in wwn(), vp in any::<u8>(), p in port(),
                ox in any::<u16>()) -> ImmedNotifyRepr {
        ImmedNotifyRepr { entry_status: es, nport_handle: n, flags: NotifyFlags::from_bits_retain(fl), srr_rx_id: srx,
            status: NotifyStatus::from(st), status_subcode: sub, fw_handle: fw, exchange_addr: x, srr_rel_offs: ro,
            srr_ui: SrrIu::from(ui), srr_ox_id: sox, els_specific: els, port_name: pn, vp_index: vp, port_id: p,
            ox_id: ox }
    }
}

prop_compose! {
    fn nack()(n in notify(), h in any::<u32>(), fl in any::<u16>(), sf in any::<u16>(), a in any::<u8>(),
              b in any::<u8>(), c in any::<u8>()) -> NotifyAckRepr {
        NotifyAckRepr { flags: NotifyAckFlags::from_bits_retain(fl), srr_flags: sf, srr_reject_vendor_uniq: a,
            srr_reject_code_expl: b, srr_reject_code: c, ..NotifyAckRepr::ack(&n, h) }
    }
}

fn bls_payload() -> impl Strategy<Value = BlsPayload> {
    prop_oneof![
        (
            any::<bool>(),
            any::<u8>(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            any::<u16>()
        )
            .prop_map(|(v, s, ox, rx, lo, hi)| BlsPayload::BaAcc(BaAccRepr {
                seq_id_valid: v,
                seq_id: s,
                ox_id: OxId(ox),
                rx_id: RxId(rx),
                low_seq_cnt: lo,
                high_seq_cnt: hi
            })),
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, e, v)| BlsPayload::BaRjt(
            BaRjtRepr {
                reason: r.into(),
                explanation: e.into(),
                vendor: v
            }
        )),
    ]
}

prop_compose! {
    fn abts_recv()(es in estatus(), n in nport(), vp in any::<u8>(), sof in 0u8..16, x in xchg(), h in header(),
                   xa in xchg()) -> AbtsRecvRepr {
        AbtsRecvRepr { entry_status: es, nport_handle: n, vp_index: vp, sof_type: sof, exchange_addr: x, header: h,
            exchange_addr_to_abort: xa }
    }
}

prop_compose! {
    fn abts_resp()(r in abts_recv(), h in any::<u32>(), cf in any::<u16>(), p in bls_payload()) -> AbtsRespRepr {
        let mut resp = AbtsRespRepr::accept(&r, h);
        resp.control_flags = cf;
        resp.header.r_ctl = match p { BlsPayload::BaAcc(_) => RCtl::BaAcc, BlsPayload::BaRjt(_) => RCtl::BaRjt };
        resp.payload = p;
        resp
    }
}

prop_compose! {
    fn loginout()(h in any::<u32>(), n in nport(), cmd in 0u8..16, fl in any::<u16>(), vp in any::<u8>(),
                  p in port(), rs in any::<u8>(), io in any::<[u32; 11]>()) -> LoginoutRepr {
        LoginoutRepr { handle: h, nport_handle: n, command: LoginoutCommand::from(cmd),
            flags: LoginoutFlags::from_bits_retain(fl & !0xF), vp_index: vp, port_id: p, rsp_size: rs,
            io_parameter: io }
    }
}

prop_compose! {
    fn ring()(address in any::<u64>(), length in any::<u16>()) -> RingConfig { RingConfig { address, length } }
}

prop_compose! {
    fn icb()(v in any::<bool>(), ha in any::<u16>(), ld in any::<u16>(), mac in any::<[u8; 6]>(),
             a in any::<[u16; 12]>(), pn in wwn(), nn in wwn(), r1 in ring(), r2 in ring(), r3 in ring(), r4 in ring(),
             o in any::<[u32; 3]>()) -> IcbRepr {
        IcbRepr {
            layout: if v { IcbLayout::Isp24xx { hard_address: ha, link_down_on_nos: ld } } else { IcbLayout::Isp81xx { enode_mac: mac } },
            version: a[0], frame_payload_size: a[1], execution_throttle: a[2], exchange_count: a[3],
            port_name: pn, node_name: nn, response_q_inpointer: a[4], request_q_outpointer: a[5],
            login_retry_count: a[6], prio_request_q_outpointer: a[7], request_q: r1, response_q: r2,
            prio_request_q: r3, msix: a[8], msix_atio: a[9], atio_q_inpointer: a[10], atio_q: r4,
            interrupt_delay_timer: a[11], login_timeout: a[0] ^ 0x5a5a,
            firmware_options_1: FwOptions1::from_bits_retain(o[0]), firmware_options_2: FwOptions2::from_bits_retain(o[1]),
            firmware_options_3: FwOptions3::from_bits_retain(o[2]), qos: a[1] ^ 1, rid: a[2] ^ 2,
        }
    }
}

prop_compose! {
    fn class_params()(a in any::<[u16; 6]>(), o in any::<u8>()) -> ClassParamsRepr {
        ClassParamsRepr { service_options: a[0], initiator_control: a[1], recipient_control: a[2],
            rx_data_field_size: a[3], concurrent_sequences: a[4], ee_credit: a[5], open_seq_per_exchange: o }
    }
}

prop_compose! {
    fn service_params()(op in select(vec![ElsOpcode::Plogi, ElsOpcode::Flogi, ElsOpcode::Fdisc, ElsOpcode::Pdisc, ElsOpcode::LsAcc]),
                        vh in any::<u8>(), vl in any::<u8>(), bb in any::<u16>(), feat in any::<u16>(),
                        sc in 0u8..16, rx in 0u16..0x1000, w2 in any::<u32>(), ed in any::<u32>(), pn in wwn(),
                        nn in wwn(), c in [class_params(), class_params(), class_params(), class_params()],
                        vv in any::<[u8; 16]>()) -> ServiceParamsRepr {
        ServiceParamsRepr { opcode: op, version_high: vh, version_low: vl, bb_credit: bb,
            common_features: CommonFeatures::from_bits_retain(feat), bb_sc_n: sc, rx_data_field_size: rx, word2: w2,
            e_d_tov: ed, port_name: pn, node_name: nn, classes: c, vendor_version: vv }
    }
}

prop_compose! {
    fn prli()(op in select(vec![ElsOpcode::Prli, ElsOpcode::Prlo, ElsOpcode::LsAcc]), t in any::<u8>(),
              ext in any::<u8>(), fl in any::<u8>(), resp in 0u8..16, opa in any::<u32>(), rpa in any::<u32>(),
              sp in any::<u32>()) -> PrliRepr {
        PrliRepr { opcode: op, page: PrliPageRepr { type_code: FcType::from(t), type_ext: ext,
            flags: PrliPageFlags::from_bits_retain(fl & 0xF0), response: resp.into(), originator_pa: opa,
            responder_pa: rpa, service_params: PrliServiceParams::from_bits_retain(sp) } }
    }
}

fn els() -> impl Strategy<Value = ElsRepr> {
    prop_oneof![
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(r, e, v)| ElsRepr::LsRjt(LsRjtRepr {
            reason: r.into(),
            explanation: e.into(),
            vendor: v
        })),
        service_params().prop_map(ElsRepr::ServiceParams),
        prli()
            .prop_filter("an LS_ACC PRLI of 116+ bytes is impossible", |_| true)
            .prop_map(ElsRepr::Prli),
        (port(), wwn()).prop_map(|(p, w)| ElsRepr::Logo(LogoRepr {
            port_id: p,
            port_name: w
        })),
        (
            select(vec![ElsOpcode::Adisc, ElsOpcode::LsAcc]),
            port(),
            wwn(),
            wwn(),
            port()
        )
            .prop_map(|(o, h, pn, nn, p)| {
                ElsRepr::Adisc(AdiscRepr {
                    opcode: o,
                    hard_address: h,
                    port_name: pn,
                    node_name: nn,
                    port_id: p,
                })
            }),
        proptest::collection::vec((0u8..16, 0u8..4, port()), 1..=32).prop_map(|v| {
            let pages: Vec<RscnPage> = v
                .into_iter()
                .map(|(e, f, p)| RscnPage {
                    event_qualifier: e,
                    address_format: f,
                    port_id: p,
                })
                .collect();
            ElsRepr::Rscn(RscnRepr::new(&pages).unwrap())
        }),
        any::<u8>().prop_map(|f| ElsRepr::Scr(ScrRepr { function: f })),
    ]
}

prop_compose! {
    fn fcp_rsp()(rd in any::<u16>(), fl in any::<u8>(), st in any::<u8>(), r in 0u8..3, n in any::<u32>(),
                 code in proptest::option::of(any::<u8>()), sense in proptest::collection::vec(any::<u8>(), 0..=252)) -> FcpRspRepr {
        FcpRspRepr { retry_delay: rd, flags: FcpRspFlags::from_bits_retain(fl & 0xF0), scsi_status: st,
            residual: match r { 0 => Residual::None, 1 => Residual::Over(n), _ => Residual::Under(n) },
            rsp_code: code.map(Into::into), sense: SenseData::from_slice(&sense).unwrap() }
    }
}

fn emit_parse_64<R: PartialEq + core::fmt::Debug>(
    emit: impl Fn(&mut [u8]) -> Result<(), rscst_fw::WireError>,
    parse: impl Fn(&[u8]) -> Result<R, rscst_fw::WireError>,
    x: &R,
) {
    let mut b = [0xA5u8; 64];
    emit(&mut b).unwrap();
    assert_eq!(&parse(&b).unwrap(), x);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn atio7_round_trip(x in atio()) {
        let mut b = vec![0xA5u8; x.slots() * 64];
        x.emit_bytes(&mut b).unwrap();
        prop_assert_eq!(Atio7Repr::parse_bytes(&b).unwrap(), x);
        prop_assert_eq!(AnyEntry::parse(&b, Dir::Response).unwrap(), AnyEntry::Atio7(x));
    }

    #[test]
    fn fcp_cmnd_round_trip(x in fcp_cmnd()) {
        let mut b = vec![0xA5u8; x.buffer_len()];
        x.emit(&mut FcpCmnd::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(FcpCmndRepr::parse_bytes(&b).unwrap(), x);
    }

    #[test]
    fn header_round_trip(x in header()) {
        let mut b = [0xA5u8; 24];
        x.emit(&mut FcHeader::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(FcHeaderRepr::parse_bytes(&b).unwrap(), x);
    }

    #[test]
    fn ctio7_round_trip(x in ctio7(), d in ctio7_done()) {
        emit_parse_64(|b| x.emit_bytes(b), Ctio7Repr::parse_bytes, &x);
        emit_parse_64(|b| d.emit_bytes(b), Ctio7CompletionRepr::parse_bytes, &d);
        let done = Ctio7CompletionRepr::for_request(&x, CtioStatus::Success);
        prop_assert_eq!(done.exchange_addr, x.exchange_addr);
        prop_assert_eq!(done.flags.attr(), x.attr);
    }

    #[test]
    fn ctio_crc2_round_trip(x in crc2(), d in crc2_done()) {
        emit_parse_64(|b| x.emit_bytes(b), CtioCrc2Repr::parse_bytes, &x);
        emit_parse_64(|b| d.emit_bytes(b), CtioCrc2CompletionRepr::parse_bytes, &d);
    }

    #[test]
    fn notify_round_trip(n in notify(), a in nack(), st in any::<u16>(), es in estatus()) {
        emit_parse_64(|b| n.emit_bytes(b), ImmedNotifyRepr::parse_bytes, &n);
        emit_parse_64(|b| a.emit_bytes(b), NotifyAckRepr::parse_bytes, &a);
        let mut done = NotifyAckCompletionRepr::for_request(&a, NotifyAckStatus::from(st));
        done.entry_status = es;
        done.ack.status = NotifyStatus::Unknown(0);
        emit_parse_64(|b| done.emit_bytes(b), NotifyAckCompletionRepr::parse_bytes, &done);
        prop_assert!(done == a);
    }

    #[test]
    fn abts_round_trip(r in abts_recv(), resp in abts_resp(), st in any::<u16>(), s1 in any::<u32>(), s2 in any::<u32>(), es in estatus()) {
        emit_parse_64(|b| r.emit_bytes(b), AbtsRecvRepr::parse_bytes, &r);
        emit_parse_64(|b| resp.emit_bytes(b), AbtsRespRepr::parse_bytes, &resp);
        let mut done = AbtsRespCompletionRepr::for_request(&resp, IocbStatus::from(st), s1, s2);
        done.entry_status = es;
        emit_parse_64(|b| done.emit_bytes(b), AbtsRespCompletionRepr::parse_bytes, &done);
        let acc = AbtsRespRepr::accept(&r, 1);
        prop_assert_eq!((acc.header.s_id, acc.header.d_id), (r.header.d_id, r.header.s_id));
    }

    #[test]
    fn small_entries_round_trip(es in estatus(), h in any::<u32>(), n in nport(), m in any::<u8>(), vp in any::<u8>(),
                                l in lun(), data in any::<[u8; 60]>(), d in [dsd(), dsd(), dsd(), dsd(), dsd()],
                                lo in loginout(), st in any::<u16>(), mb in any::<[u16; 28]>()) {
        let marker = MarkerRepr { entry_status: es, handle: h, nport_handle: n, modifier: MarkerModifier::from(m), vp_index: vp, lun: l };
        emit_parse_64(|b| marker.emit_bytes(b), MarkerRepr::parse_bytes, &marker);
        let sc = StatusContRepr { entry_status: es, data };
        emit_parse_64(|b| sc.emit_bytes(b), StatusContRepr::parse_bytes, &sc);
        let c = ContinueA64Repr { dsds: d };
        emit_parse_64(|b| c.emit_bytes(b), ContinueA64Repr::parse_bytes, &c);
        emit_parse_64(|b| lo.emit_bytes(b), LoginoutRepr::parse_bytes, &lo);
        let ld = LoginoutCompletionRepr { entry_status: es, status: IocbStatus::from(st), entry: lo };
        emit_parse_64(|b| ld.emit_bytes(b), LoginoutCompletionRepr::parse_bytes, &ld);
        let mbx = MbxIocbRepr { entry_status: es, handle: h, mb };
        emit_parse_64(|b| mbx.emit_bytes(b), MbxIocbRepr::parse_bytes, &mbx);
        prop_assert_eq!(MbxIocbRepr::from_mailboxes(h, &mbx.to_mailboxes()).mb, mb);
    }

    #[test]
    fn any_entry_emit_parse(x in ctio7()) {
        let e = AnyEntry::Ctio7(x);
        let mut b = [0u8; 64];
        prop_assert_eq!(e.emit(&mut b).unwrap(), 64);
        prop_assert_eq!(AnyEntry::parse(&b, Dir::Request).unwrap(), e);
    }

    #[test]
    fn icb_port_db_round_trip(x in icb(), f in any::<u16>(), cs in any::<u8>(), ls in any::<u8>(), ha in port(), p in port(),
                              sq in any::<u8>(), w in any::<[u16; 5]>(), pn in wwn(), nn in wwn(), vo in any::<u8>(), vh in any::<u8>()) {
        let mut b = [0xA5u8; 128];
        x.emit(&mut Icb::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(IcbRepr::parse(&Icb::new_checked(&b[..]).unwrap(), x.layout.variant()).unwrap(), x);
        let pdb = PortDatabaseRepr { flags: PortDbFlags::from_bits_retain(f), current_login_state: cs, last_login_state: ls,
            hard_address: ha, port_id: p, sequence_id: sq, port_timer: w[0], nport_handle: NportHandle(w[1]),
            receive_data_size: w[2], prli_word0: w[3], prli_word3: w[4], port_name: pn, node_name: nn };
        let mut b = [0xA5u8; 64];
        pdb.emit(&mut PortDatabase::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(PortDatabaseRepr::parse(&PortDatabase::new_checked(&b[..]).unwrap()).unwrap(), pdb);
        let id = IdListEntryRepr { port_id: p, nport_handle: NportHandle(w[0]) };
        let mut b = [0xA5u8; 8];
        id.emit(&mut b).unwrap();
        prop_assert_eq!(IdListEntryRepr::parse(&b).unwrap(), id);
        let vp = VpEntryRepr { options: VpOptions::from_bits_retain(vo), hard_address: vh, port_name: pn, node_name: nn };
        let mut b = [0xA5u8; 20];
        vp.emit(&mut b).unwrap();
        prop_assert_eq!(VpEntryRepr::parse(&b).unwrap(), vp);
        let _ = IcbVariant::Isp24xx;
    }

    #[test]
    fn fcp_ius_round_trip(r in fcp_rsp(), ro in any::<u32>(), bl in any::<u32>()) {
        let mut b = vec![0xA5u8; r.buffer_len()];
        r.emit_bytes(&mut b).unwrap();
        prop_assert_eq!(FcpRspRepr::parse_bytes(&b).unwrap(), r);
        let x = FcpXferRdyRepr { relative_offset: ro, burst_len: bl };
        let mut b = [0xA5u8; 12];
        x.emit(&mut FcpXferRdy::new_unchecked(&mut b[..])).unwrap();
        prop_assert_eq!(FcpXferRdyRepr::parse(&FcpXferRdy::new_checked(&b[..]).unwrap()).unwrap(), x);
    }

    #[test]
    fn bls_els_round_trip(p in bls_payload(), e in els()) {
        match p {
            BlsPayload::BaAcc(a) => { let mut b = [0xA5u8; 12]; a.emit(&mut b).unwrap(); prop_assert_eq!(BaAccRepr::parse(&b).unwrap(), a); }
            BlsPayload::BaRjt(r) => { let mut b = [0xA5u8; 4]; r.emit(&mut b).unwrap(); prop_assert_eq!(BaRjtRepr::parse(&b).unwrap(), r); }
        }
        let mut b = vec![0xA5u8; e.buffer_len()];
        e.emit(&mut b).unwrap();
        let back = match e {
            ElsRepr::ServiceParams(_) => ElsRepr::ServiceParams(ServiceParamsRepr::parse(&b).unwrap()),
            ElsRepr::Prli(_) => ElsRepr::Prli(PrliRepr::parse(&b).unwrap()),
            ElsRepr::Adisc(_) => ElsRepr::Adisc(AdiscRepr::parse(&b).unwrap()),
            _ => ElsRepr::parse(&b).unwrap(),
        };
        prop_assert_eq!(back, e);
    }

    #[test]
    fn frames_round_trip(h in header(), p in bls_payload(), data in proptest::collection::vec(any::<u8>(), 0..64), c in fcp_cmnd(), r in fcp_rsp()) {
        let base = FcHeaderRepr { f_ctl: FCtl::from_bits_retain(h.f_ctl.bits() & !3), ..h };
        let frames = [
            FcFrameRepr { header: FcHeaderRepr { r_ctl: RCtl::UnsolCmd, fc_type: FcType::Fcp, ..base }, payload: FcPayload::FcpCmnd(c) },
            FcFrameRepr { header: FcHeaderRepr { r_ctl: RCtl::CmdStatus, fc_type: FcType::Fcp, ..base }, payload: FcPayload::FcpRsp(r) },
            FcFrameRepr { header: FcHeaderRepr { r_ctl: RCtl::SolData, ..base }, payload: FcPayload::Data(&data) },
            match p {
                BlsPayload::BaAcc(a) => FcFrameRepr { header: FcHeaderRepr { r_ctl: RCtl::BaAcc, fc_type: FcType::Bls, ..base }, payload: FcPayload::BaAcc(a) },
                BlsPayload::BaRjt(j) => FcFrameRepr { header: FcHeaderRepr { r_ctl: RCtl::BaRjt, fc_type: FcType::Bls, ..base }, payload: FcPayload::BaRjt(j) },
            },
        ];
        for f in frames {
            let mut b = vec![0u8; f.buffer_len()];
            let n = f.emit(&mut b).unwrap();
            let back = FcFrameRepr::parse(&b[..n]).unwrap();
            prop_assert_eq!(back.payload, f.payload);
            prop_assert_eq!(FcHeaderRepr { f_ctl: f.header.f_ctl, ..back.header }, f.header);
            let mut d = vec![0u8; n + 12];
            DelimitedFrame::emit(Sof::I3, &b[..n], Eof::TNeg, &mut d).unwrap();
            let df = DelimitedFrame::parse(&d).unwrap();
            prop_assert!(df.crc_ok());
            prop_assert_eq!(df.frame, &b[..n]);
        }
    }

    #[test]
    fn mailbox_outputs_round_trip(a in any::<[u16; 8]>(), m in any::<[u16; 8]>(), p in port(), t in any::<u16>()) {
        let fw = FirmwareVersion { major: a[0], minor: a[1], subminor: a[2], memory_size: (a[3] as u32) << 16 | a[4] as u32,
            attributes: FwAttributes::from_bits_retain(a[5]), attributes_high: a[6], extended_attributes: a[7] as u32 * 3 };
        prop_assert_eq!(FirmwareVersion::from_mailboxes(&fw.to_mailboxes()), fw);
        let rc = ResourceCounts { orig_target_exchanges: a[0], cur_target_exchanges: a[1], cur_exchanges: a[2],
            orig_exchanges: a[3], cur_iocbs: a[4], orig_iocbs: a[5], max_vports: a[6], max_fcfs: a[7] };
        prop_assert_eq!(ResourceCounts::from_mailboxes(&rc.to_mailboxes()), rc);
        let id = AdapterId { nport_handle: NportHandle(a[0]), port_id: p, topology: Topology::from(t), switch_capabilities: a[1] };
        prop_assert_eq!(AdapterId::from_mailboxes(&id.to_mailboxes()), id);
        let e = AsyncEvent::parse(&m);
        prop_assert_eq!(AsyncEvent::parse(&e.emit()), e);
        let mut mbx = Mailboxes::default();
        mbx.set_dma_addr(u64::from(a[0]) << 48 | u64::from(a[1]) << 20 | u64::from(a[2]));
        prop_assert_eq!(mbx.dma_addr(), u64::from(a[0]) << 48 | u64::from(a[1]) << 20 | u64::from(a[2]));
    }

    /// Views agree with Reprs: the unchecked getters of a parsed ATIO/IMMED_NOTIFY/ABTS
    /// read back what the Repr wrote.
    #[test]
    fn views_agree(x in atio(), n in notify(), r in abts_recv(), c in crc2()) {
        let mut b = vec![0u8; x.slots() * 64];
        x.emit_bytes(&mut b).unwrap();
        let v = Atio7::new_checked(&b[..]).unwrap();
        prop_assert_eq!(v.exchange_addr(), x.exchange_addr);
        prop_assert_eq!(v.fcp_dl(), x.fcp.data_len);
        prop_assert_eq!(v.header().s_id(), x.header.s_id);
        let mut b = [0u8; 64];
        n.emit_bytes(&mut b).unwrap();
        prop_assert_eq!(ImmedNotify::new_checked(&b[..]).unwrap().port_id(), n.port_id);
        r.emit_bytes(&mut b).unwrap();
        prop_assert_eq!(AbtsRecv::new_checked(&b[..]).unwrap().header().unwrap(), r.header);
        prop_assert_eq!(AbtsResp::new_checked(&b[..]).unwrap().exchange_addr(), r.exchange_addr);
        c.emit_bytes(&mut b).unwrap();
        prop_assert_eq!(CtioCrc2::new_checked(&b[..]).unwrap().crc_context_address(), c.crc_context_address);
        let a = NotifyAckRepr::ack(&n, 3);
        a.emit_bytes(&mut b).unwrap();
        prop_assert_eq!(NotifyAck::new_checked(&b[..]).unwrap().exchange_addr(), n.exchange_addr);
    }
}
