//! Parsing arbitrary bytes never panics, and whatever parses can be displayed, visited and
//! emitted (the in-process counterpart of the cargo-fuzz targets in `fuzz/`).

use proptest::prelude::*;

use rscst_fw::async_event::AsyncEvent;
use rscst_fw::fc::els::ElsRepr;
use rscst_fw::fc::fcp::{FcpCmnd, FcpCmndRepr, FcpRspRepr};
use rscst_fw::fc::frame::{DelimitedFrame, FcFrameRepr};
use rscst_fw::fc::header::FcHeader;
use rscst_fw::icb::{Icb, IcbRepr, MidIcb, Nvram24xx};
use rscst_fw::iocb::{
    AbtsRecv, AnyEntry, Atio7, Atio7CmdRepr, Atio7Repr, ContinueA64, Ctio7, CtioCrc2, Dir,
    EntryIter, ImmedNotify, Loginout, Marker, MbxIocb, NotifyAck, StatusCont,
};
use rscst_fw::pci::IcbVariant;
use rscst_fw::port_db::{PortDatabase, PortDatabaseRepr};
use rscst_fw::{FieldVisitor, Value, Visit};

struct Sink(usize);

impl FieldVisitor for Sink {
    fn field(&mut self, name: &'static str, value: Value<'_>) {
        assert!(!name.is_empty());
        self.0 += format!("{value}").len();
    }
}

fn exercise(e: &AnyEntry) {
    let s = e.to_string();
    assert!(!s.is_empty() && !s.contains('\n'));
    let mut sink = Sink(0);
    e.visit(&mut sink);
    let mut out = vec![0u8; e.buffer_len()];
    e.emit(&mut out).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_64_bytes_any_entry(mut b in any::<[u8; 64]>(), t in proptest::sample::select(vec![
        0x02u8, 0x03, 0x04, 0x06, 0x0A, 0x0D, 0x0E, 0x10, 0x12, 0x39, 0x52, 0x54, 0x55, 0x7A, 0x99]), force in any::<bool>()) {
        if force {
            b[0] = t;
        }
        for dir in [Dir::Request, Dir::Response] {
            if let Ok(e) = AnyEntry::parse(&b, dir) {
                exercise(&e);
                // What was emitted parses back to the same entry.
                let mut out = vec![0u8; e.buffer_len().max(64)];
                e.emit(&mut out).unwrap();
                prop_assert_eq!(AnyEntry::parse(&out, dir).unwrap(), e);
            }
        }
        // Every view's Display copes with any bytes.
        let _ = format!("{} {} {}", Atio7::new_unchecked(&b[..]), Ctio7::new_unchecked(&b[..]), ImmedNotify::new_unchecked(&b[..]));
        let _ = (NotifyAck::new_checked(&b[..]).unwrap().flags(), AbtsRecv::new_checked(&b[..]).unwrap().header(),
            Marker::new_checked(&b[..]).unwrap().lun(), StatusCont::new_checked(&b[..]).unwrap().data().len(),
            ContinueA64::new_checked(&b[..]).unwrap().dsd(4), Loginout::new_checked(&b[..]).unwrap().io_parameter(10),
            MbxIocb::new_checked(&b[..]).unwrap().mb(27), CtioCrc2::new_checked(&b[..]).unwrap().expected_dif());
    }

    #[test]
    fn any_slots_any_entries(b in proptest::collection::vec(any::<u8>(), 0..400)) {
        for dir in [Dir::Request, Dir::Response] {
            for e in EntryIter::new(&b, dir).flatten() {
                exercise(&e.0);
            }
            let _ = AnyEntry::parse(&b, dir);
        }
        let _ = Atio7::new_checked(&b[..]).map(|a| a.to_string());
    }

    /// The borrowed command parse gives the verdict and the values of `Atio7Repr`.
    #[test]
    fn atio7_cmd_repr_agrees(mut b in proptest::collection::vec(any::<u8>(), 0..400), fix in any::<bool>()) {
        if fix && b.len() > 4 {
            // Mostly well-formed: ATIO7, a plausible length and entry count.
            b[0] = 0x06;
            b[1] %= 6;
            b[2] = 0x38u8.wrapping_add(b[2] % 8);
        }
        match (Atio7Repr::parse_bytes(&b), Atio7CmdRepr::parse_bytes(&b)) {
            (Ok(r), Ok(c)) => {
                prop_assert_eq!((c.attr, c.exchange_addr, c.s_id, c.ox_id),
                    (r.attr, r.exchange_addr, r.header.s_id, r.header.ox_id));
                prop_assert_eq!((c.lun, c.crn, c.task_attr, c.priority, c.tmf, c.dir),
                    (r.fcp.lun, r.fcp.crn, r.fcp.task_attr, r.fcp.priority, r.fcp.tmf, r.fcp.dir));
                prop_assert_eq!((c.cdb, c.data_len), (r.fcp.cdb.as_slice(), r.fcp.data_len));
                let _ = c.to_string();
            }
            (Err(x), Err(y)) => prop_assert_eq!(x, y),
            (x, y) => prop_assert!(false, "Atio7Repr {:?} but Atio7CmdRepr {:?}", x, y),
        }
    }

    #[test]
    fn any_fcp_cmnd(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(r) = FcpCmndRepr::parse_bytes(&b) {
            let _ = r.to_string();
            let mut out = vec![0u8; r.buffer_len()];
            r.emit_bytes(&mut out).unwrap();
            // Byte 9 bit 7 is reserved and not kept; every other byte comes back.
            let mut want = b[..r.buffer_len()].to_vec();
            want[9] &= 0x7F;
            prop_assert_eq!(&out[..], &want[..]);
        }
        let _ = FcpCmnd::new_unchecked(&b[..]).to_string();
    }

    #[test]
    fn any_frame(b in proptest::collection::vec(any::<u8>(), 0..300)) {
        if let Ok(f) = FcFrameRepr::parse(&b) {
            let _ = f.to_string();
            let mut sink = Sink(0);
            f.visit(&mut sink);
            let mut out = vec![0u8; f.buffer_len()];
            f.emit(&mut out).unwrap();
        }
        if let Ok(d) = DelimitedFrame::parse(&b) {
            let _ = d.crc_ok();
        }
        let _ = FcHeader::new_unchecked(&b[..]).to_string();
        if let Ok(r) = FcpRspRepr::parse_bytes(&b) {
            let _ = r.to_string();
        }
        if let Ok(e) = ElsRepr::parse(&b) {
            let _ = e.to_string();
            let mut out = vec![0u8; e.buffer_len()];
            e.emit(&mut out).unwrap();
        }
    }

    #[test]
    fn any_buffers(b in proptest::collection::vec(any::<u8>(), 0..600), mb in any::<[u16; 8]>()) {
        for v in [IcbVariant::Isp24xx, IcbVariant::Isp81xx] {
            if let Ok(i) = Icb::new_checked(&b[..]) {
                let r = IcbRepr::parse(&i, v).unwrap();
                let _ = r.to_string();
                r.visit(&mut Sink(0));
            }
        }
        if let Ok(m) = MidIcb::new_checked(&b[..]) {
            for i in 0..300 {
                let _ = m.vp_entry(i);
            }
        }
        if let Ok(n) = Nvram24xx::new_checked(&b[..]) {
            let _ = (n.is_valid(), n.model_name());
        }
        if let Ok(p) = PortDatabase::new_checked(&b[..]) {
            let r = PortDatabaseRepr::parse(&p).unwrap();
            let _ = (r.to_string(), r.prli_complete());
        }
        let e = AsyncEvent::parse(&mb);
        let _ = (e.to_string(), e.needs_marker(), e.needs_isp_reset());
        e.visit(&mut Sink(0));
    }
}
