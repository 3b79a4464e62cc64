//! JSON rendering of anything that implements [`rscst_fw::Visit`]: one object whose keys are
//! the field names in layout order. Integers stay numbers; port ids are 6 hex digits, LUNs 16,
//! WWNs colon-separated, byte strings contiguous hex, codes their names, absent fields null.

use rscst_fw::{FieldVisitor, Value, Visit};
use serde_json::{Map, Value as Json};

/// Collects fields into a JSON object.
#[derive(Debug, Default)]
pub struct JsonVisitor(pub Map<String, Json>);

impl FieldVisitor for JsonVisitor {
    fn field(&mut self, name: &'static str, value: Value<'_>) {
        self.0.insert(name.to_owned(), to_json(value));
    }
}

/// One field value as JSON.
pub fn to_json(value: Value<'_>) -> Json {
    match value {
        Value::Bool(b) => Json::Bool(b),
        Value::U8(x) => Json::from(x),
        Value::U16(x) => Json::from(x),
        Value::U32(x) => Json::from(x),
        Value::U64(x) => Json::from(x),
        Value::Absent => Json::Null,
        other => Json::String(other.to_string()),
    }
}

/// The fields of `x` as a JSON object.
pub fn object(x: &dyn Visit) -> Map<String, Json> {
    let mut v = JsonVisitor::default();
    x.visit(&mut v);
    v.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rscst_fw::{Lun, PortId, Wwn};

    #[test]
    fn renders_each_value_kind() {
        assert_eq!(to_json(Value::Bool(true)), Json::Bool(true));
        assert_eq!(to_json(Value::U8(1)), Json::from(1));
        assert_eq!(to_json(Value::U16(2)), Json::from(2));
        assert_eq!(to_json(Value::U32(3)), Json::from(3));
        assert_eq!(to_json(Value::U64(u64::MAX)), Json::from(u64::MAX));
        assert_eq!(
            to_json(Value::PortId(PortId::new(0x010203))),
            Json::from("010203")
        );
        assert_eq!(
            to_json(Value::Lun(Lun::from_u64(1))),
            Json::from("0000000000000001")
        );
        assert_eq!(
            to_json(Value::Wwn(Wwn::from_u64(0x2100))),
            Json::from("00:00:00:00:00:00:21:00")
        );
        assert_eq!(to_json(Value::Bytes(&[0xde, 0xad])), Json::from("dead"));
        assert_eq!(
            to_json(Value::Enum {
                name: Some("CTIO7"),
                raw: 0x12
            }),
            Json::from("CTIO7")
        );
        assert_eq!(
            to_json(Value::Enum {
                name: None,
                raw: 0x77
            }),
            Json::from("UNKNOWN(0x77)")
        );
        assert_eq!(to_json(Value::Absent), Json::Null);
    }

    #[test]
    fn keeps_layout_order() {
        let e = rscst_fw::async_event::AsyncEvent::parse(&[0x8014, 1, 6, 0, 0, 0, 0, 0]);
        let o = object(&e);
        let keys: Vec<&str> = o.keys().map(String::as_str).collect();
        assert_eq!(keys, ["code", "nport_handle", "login_state", "vp_index"]);
    }
}
