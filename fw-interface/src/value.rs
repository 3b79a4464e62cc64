//! Machine-readable output without allocation: a field visitor.
//!
//! Every parsed entry, frame and payload implements [`Visit`]: it calls
//! [`FieldVisitor::field`] once per field, in layout order, with the snake_case field name of
//! the reference tables and a typed [`Value`]. A tool renders JSON from that (the `rscst`
//! binary does, with serde_json); a firmware could render key=value lines.

use core::fmt;

use crate::{Lun, PortId, Wwn};

/// One field value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// A flag.
    Bool(bool),
    /// An 8-bit integer.
    U8(u8),
    /// A 16-bit integer.
    U16(u16),
    /// A 32-bit integer.
    U32(u32),
    /// A 64-bit integer.
    U64(u64),
    /// A port id (rendered as 6 hex digits).
    PortId(PortId),
    /// A LUN (rendered as 16 hex digits).
    Lun(Lun),
    /// A world-wide name (rendered as colon-separated hex).
    Wwn(Wwn),
    /// A byte string (rendered as hex).
    Bytes(&'a [u8]),
    /// A field that does not exist in this form of the entry (for example the mode-1 fields
    /// of a mode-0 CTIO7); listed so every entry of one type has the same keys. JSON `null`,
    /// text `-`.
    Absent,
    /// A code with its name when known (rendered as the name, or `UNKNOWN(0x..)`).
    Enum {
        /// The name, if this crate knows the value.
        name: Option<&'static str>,
        /// The raw value.
        raw: u32,
    },
}

impl fmt::Display for Value<'_> {
    /// The canonical text form: integers in decimal, port ids as 6 hex digits, LUNs as 16,
    /// byte strings as contiguous lowercase hex, codes by name.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::U8(x) => write!(f, "{x}"),
            Value::U16(x) => write!(f, "{x}"),
            Value::U32(x) => write!(f, "{x}"),
            Value::U64(x) => write!(f, "{x}"),
            Value::PortId(p) => write!(f, "{p}"),
            Value::Lun(l) => write!(f, "{l}"),
            Value::Wwn(w) => write!(f, "{w}"),
            Value::Bytes(b) => crate::bytes::write_hex(f, b, ""),
            Value::Absent => f.write_str("-"),
            Value::Enum { name: Some(n), .. } => f.write_str(n),
            Value::Enum { name: None, raw } => write!(f, "UNKNOWN({raw:#x})"),
        }
    }
}

/// Receives the fields of a [`Visit`] implementor.
pub trait FieldVisitor {
    /// Called once per field.
    fn field(&mut self, name: &'static str, value: Value<'_>);
}

/// Something whose fields can be listed.
pub trait Visit {
    /// Calls `v.field(..)` for every field, in layout order.
    fn visit(&self, v: &mut dyn FieldVisitor);
}

#[cfg(test)]
pub(crate) mod test_util {
    extern crate std;
    use super::*;
    use std::string::{String, ToString};
    use std::vec::Vec;

    /// Collects `(name, rendered value)` pairs.
    #[derive(Default)]
    pub struct Collect(pub Vec<(&'static str, String)>);

    impl FieldVisitor for Collect {
        fn field(&mut self, name: &'static str, value: Value<'_>) {
            self.0.push((name, value.to_string()));
        }
    }

    impl Collect {
        pub fn of(x: &dyn Visit) -> Collect {
            let mut c = Collect::default();
            x.visit(&mut c);
            c
        }
        /// The rendered value of `name`; panics (test failure) if absent.
        pub fn get(&self, name: &str) -> &str {
            self.0
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_else(|| panic!("field {name} missing in {:?}", self.0))
        }
        /// Every name is unique.
        pub fn assert_unique(&self) {
            for (i, (a, _)) in self.0.iter().enumerate() {
                assert!(
                    !self.0[i + 1..].iter().any(|(b, _)| a == b),
                    "duplicate field {a}"
                );
            }
        }
    }

    #[test]
    fn value_rendering() {
        assert_eq!(Value::Bool(true).to_string(), "true");
        assert_eq!(Value::U8(7).to_string(), "7");
        assert_eq!(Value::U16(0x100).to_string(), "256");
        assert_eq!(Value::U32(4096).to_string(), "4096");
        assert_eq!(Value::U64(1 << 40).to_string(), "1099511627776");
        assert_eq!(Value::PortId(PortId::new(0x0a0b0c)).to_string(), "0a0b0c");
        assert_eq!(Value::Lun(Lun::from_u64(1)).to_string(), "0000000000000001");
        assert_eq!(
            Value::Wwn(Wwn::from_u64(0x20)).to_string(),
            "00:00:00:00:00:00:00:20"
        );
        assert_eq!(Value::Bytes(&[0x28, 0, 0xff]).to_string(), "2800ff");
        assert_eq!(Value::Absent.to_string(), "-");
        assert_eq!(
            Value::Enum {
                name: Some("SIMPLE"),
                raw: 0
            }
            .to_string(),
            "SIMPLE"
        );
        assert_eq!(
            Value::Enum { name: None, raw: 7 }.to_string(),
            "UNKNOWN(0x7)"
        );
    }
}
