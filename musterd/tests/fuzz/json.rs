//! JSON values as an outsider may send them: every type, the awkward
//! numbers and strings, nesting, and big ones now and then.

use proptest::prelude::*;
use serde_json::{Map, Number, Value};

/// Strings a parser must read without a hitch: empty, white space,
/// control characters, quotes, long ones, and anything at all.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        1 => Just(" ".to_owned()),
        1 => Just("\t\n \u{a0}".to_owned()),
        1 => Just("\u{0}".to_owned()),
        1 => Just("\"'\\".to_owned()),
        1 => Just("x".repeat(300)),
        1 => Just("é".repeat(5000)),
        2 => "[a-z0-9/._-]{0,12}",
        4 => any::<String>(),
    ]
}

/// Numbers at the edges: zero, minus one, the smallest and largest
/// doubles, the integer limits.
pub fn number() -> impl Strategy<Value = Number> {
    prop_oneof![
        Just(Number::from(0)),
        Just(Number::from(-1)),
        Just(Number::from(u64::MAX)),
        Just(Number::from(i64::MIN)),
        Just(Number::from_f64(5e-324).expect("finite")),
        Just(Number::from_f64(1e308).expect("finite")),
        Just(Number::from_f64(-0.5).expect("finite")),
        any::<i64>().prop_map(Number::from),
        any::<f64>().prop_filter_map("finite", Number::from_f64),
    ]
}

/// Any JSON value, nested a few levels.
pub fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number().prop_map(Value::Number),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(text(), inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Bytes that are sometimes JSON and sometimes not: a value's text cut
/// short or with a byte changed, or arbitrary bytes.
pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        value().prop_map(|v| serde_json::to_vec(&v).expect("a value")),
        (value(), any::<prop::sample::Index>()).prop_map(|(v, at)| {
            let mut bytes = serde_json::to_vec(&v).expect("a value");
            bytes.truncate(at.index(bytes.len() + 1));
            bytes
        }),
        (value(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, byte)| {
            let mut bytes = serde_json::to_vec(&v).expect("a value");
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] = byte;
            }
            bytes
        }),
        prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// What to do with one field of an object a test builds: leave it out,
/// give it a good value, or give it any value at all.
#[derive(Debug, Clone)]
pub enum Field {
    Absent,
    Good,
    Any(Value),
}

/// Mostly good fields, so that one bad field at a time is tried often.
pub fn field() -> impl Strategy<Value = Field> {
    prop_oneof![
        1 => Just(Field::Absent),
        6 => Just(Field::Good),
        2 => value().prop_map(Field::Any),
    ]
}
