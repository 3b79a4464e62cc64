//! The accessors and small helpers no golden or property test reaches (found with
//! `-C instrument-coverage`): set/get pairs on views, `into_inner`, `buffer_len`, flag-set
//! operators, and the `Display` of the probe types.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use rscst_fw::fc::fcp::{FcpCmnd, FcpRsp, FcpRspRepr, Residual, TmFlags};
use rscst_fw::icb::{Icb, MidIcb};
use rscst_fw::iocb::marker::Marker;
use rscst_fw::iocb::{
    Ctio7CompletionRepr, Ctio7Repr, ImmedNotifyRepr, MbxIocbRepr, NotifyAckRepr, NotifyStatus,
};
use rscst_fw::pci::{Generation, ProbeError, probe};
use rscst_fw::port_db::PortDatabase;
use rscst_fw::{FixedBytes, HexBytes};

fn hash_of<T: Hash>(x: &T) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

#[test]
fn flag_set_operators() {
    let mut f = TmFlags::LUN_RESET;
    f |= TmFlags::CLEAR_ACA;
    assert_eq!(f.bits(), 0x50);
    assert_eq!((f & TmFlags::CLEAR_ACA).bits(), 0x40);
    assert_eq!(TmFlags::from_bits_retain(0x81).unknown_bits(), 0x81);
    assert_eq!(TmFlags::KNOWN_BITS, 0x76);
    assert!(f.intersects(TmFlags::LUN_RESET) && !f.is_empty() && TmFlags::empty().is_empty());
    assert_eq!(f.difference(TmFlags::LUN_RESET), TmFlags::CLEAR_ACA);
    f.set(TmFlags::CLEAR_ACA, false);
    assert_eq!(f, TmFlags::LUN_RESET);
    assert_eq!(format!("{f:?}"), "TmFlags(LUN_RESET)");
    assert_eq!(format!("{}", TmFlags::from_bits_retain(0x81)), "0x81");
}

#[test]
fn probe_types_display() {
    assert_eq!(Generation::Isp27xx.to_string(), "ISP27xx");
    assert_eq!(
        ProbeError::NotQlogic(0x8086).to_string(),
        "vendor 0x8086 is not QLogic"
    );
    assert_eq!(
        probe(0x1077, 0x1234).unwrap_err().to_string(),
        "unknown QLogic device 0x1234"
    );
    assert!(
        probe(0x1077, 0x8021)
            .unwrap_err()
            .to_string()
            .starts_with("device 0x8021 not supported: ISP82xx")
    );
}

#[test]
fn byte_helpers() {
    assert_eq!(format!("{:?}", HexBytes(&[1, 0xab])), "[01 ab]");
    let a = FixedBytes::<8>::from_slice(&[1, 2]).unwrap();
    assert_eq!(
        hash_of(&a),
        hash_of(&FixedBytes::<8>::from_slice(&[1, 2]).unwrap())
    );
    assert_eq!(FixedBytes::<8>::zeroed(20).len(), 8);
}

#[test]
fn into_inner_and_buffer_len() {
    let b = [0u8; 128];
    assert_eq!(
        FcpCmnd::new_checked(&b[..32]).unwrap().into_inner().len(),
        32
    );
    assert_eq!(Icb::new_checked(&b[..]).unwrap().into_inner().len(), 128);
    let mut mid = [0u8; 0x84];
    assert_eq!(
        MidIcb::new_checked(&mut mid[..])
            .unwrap()
            .into_inner()
            .len(),
        0x84
    );
    assert_eq!(
        PortDatabase::new_checked(&b[..64])
            .unwrap()
            .into_inner()
            .len(),
        64
    );
    let r = FcpRspRepr::status(2, Residual::Over(7), &[0x70, 0, 5]).unwrap();
    let mut out = [0u8; 27];
    r.emit(&mut FcpRsp::new_unchecked(&mut out[..])).unwrap();
    let v = FcpRsp::new_checked(&out[..]).unwrap();
    assert_eq!(
        (v.resid(), v.sense(), v.scsi_status()),
        (7, &[0x70, 0, 5][..], 2)
    );
    assert_eq!(v.into_inner().len(), 27);
    let n = ImmedNotifyRepr::global(NotifyStatus::GlobalLogo);
    assert_eq!(n.buffer_len(), 64);
    assert_eq!(NotifyAckRepr::ack(&n, 0).buffer_len(), 64);
    let x = rscst_fw::iocb::Ctio7Exchange {
        nport_handle: rscst_fw::NportHandle(1),
        initiator_id: rscst_fw::PortId::new(1),
        exchange_addr: rscst_fw::ExchangeAddr(1),
        ox_id: rscst_fw::OxId(1),
        attr: 0,
        vp_index: 0,
    };
    let c = Ctio7Repr::terminate(&x);
    assert_eq!(c.buffer_len(), 64);
    assert_eq!(
        Ctio7CompletionRepr::for_request(&c, rscst_fw::iocb::CtioStatus::Success).buffer_len(),
        64
    );
    assert_eq!(
        MbxIocbRepr::from_mailboxes(0, &Default::default()).buffer_len(),
        64
    );
}

#[test]
fn marker_handle_count() {
    let mut b = [0u8; 64];
    let mut m = Marker::new_unchecked(&mut b[..]);
    m.set_handle_count(3);
    m.set_entry_count(1);
    m.set_entry_status_raw(0x04);
    assert_eq!(
        (m.handle_count(), m.entry_count(), m.entry_status_raw()),
        (3, 1, 4)
    );
}
