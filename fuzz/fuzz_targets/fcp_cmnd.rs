//! Any bytes as an FCP_CMND IU (and as a whole FC frame): parsing never panics; a parsed
//! FCP_CMND re-emits to the same bytes (byte 9 bit 7, reserved, excepted).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rscst_fw::Visit;
use rscst_fw::fc::{FcFrameRepr, FcpCmnd, FcpCmndRepr};

struct Sink;

impl rscst_fw::FieldVisitor for Sink {
    fn field(&mut self, _: &'static str, value: rscst_fw::Value<'_>) {
        let _ = value.to_string();
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(r) = FcpCmndRepr::parse_bytes(data) {
        let _ = r.to_string();
        r.visit(&mut Sink);
        let mut out = vec![0u8; r.buffer_len()];
        r.emit_bytes(&mut out).expect("a parsed FCP_CMND re-emits");
        let mut want = data[..r.buffer_len()].to_vec();
        want[9] &= 0x7F;
        assert_eq!(out, want);
        assert_eq!(FcpCmndRepr::parse_bytes(&out).expect("re-parses"), r);
    }
    let _ = FcpCmnd::new_unchecked(data).to_string();
    if let Ok(f) = FcFrameRepr::parse(data) {
        let _ = f.to_string();
        f.visit(&mut Sink);
        let mut out = vec![0u8; f.buffer_len()];
        f.emit(&mut out).expect("a parsed frame re-emits");
    }
});
