//! Any bytes as any queue entry (both directions, and as a run of consecutive slots): parsing
//! never panics, and whatever parses can be displayed, visited, emitted and parsed back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rscst_fw::iocb::{AnyEntry, Dir, EntryIter};
use rscst_fw::{FieldVisitor, Value, Visit};

struct Sink;

impl FieldVisitor for Sink {
    fn field(&mut self, name: &'static str, value: Value<'_>) {
        assert!(!name.is_empty());
        let _ = value.to_string();
    }
}

fn exercise(e: &AnyEntry, dir: Dir) {
    let line = e.to_string();
    assert!(!line.contains('\n'));
    e.visit(&mut Sink);
    let mut out = vec![0u8; e.buffer_len().max(64)];
    let n = e.emit(&mut out).expect("a parsed entry re-emits");
    assert_eq!(n, e.buffer_len());
    assert_eq!(
        AnyEntry::parse(&out, dir).expect("an emitted entry parses"),
        *e
    );
}

fuzz_target!(|data: &[u8]| {
    for dir in [Dir::Request, Dir::Response] {
        if let Ok(e) = AnyEntry::parse(data, dir) {
            exercise(&e, dir);
        }
        for (e, _bytes) in EntryIter::new(data, dir).flatten() {
            exercise(&e, dir);
        }
    }
});
