//! The config file: the example file with one value replaced by an awkward
//! one, a line repeated, a key made up, or the text cut or damaged. Every
//! problem is reported naming its key; nothing panics.

use musterd::config::DaemonConfig;
use proptest::prelude::*;

use crate::json::text;
use crate::settings;

const EXAMPLE: &str = include_str!("../../muster.example.toml");

/// Every `key = value` line of `text` that is not commented out: its line
/// number, its dotted key and where its value starts.
fn keys(text: &str) -> Vec<(usize, String, usize)> {
    let mut table = String::new();
    let mut keys = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line_code = line.split('#').next().unwrap_or_default().trim();
        if let Some(name) = line_code
            .strip_prefix("[[")
            .and_then(|l| l.strip_suffix("]]"))
        {
            table = name.to_owned();
        } else if let Some(name) = line_code
            .strip_prefix('[')
            .and_then(|l| l.strip_suffix(']'))
        {
            table = name.to_owned();
        } else if let Some((key, _)) = line_code.split_once('=') {
            let at = line.find('=').expect("split there") + 1;
            keys.push((n, format!("{table}.{}", key.trim()), at));
        }
    }
    keys
}

/// TOML values that test a key's range and type.
fn awkward() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_owned()),
        Just("-1".to_owned()),
        Just("nan".to_owned()),
        Just("inf".to_owned()),
        Just("-inf".to_owned()),
        Just("5e-324".to_owned()),
        Just("1e308".to_owned()),
        Just("9223372036854775807".to_owned()),
        Just("\"\"".to_owned()),
        Just("\" \"".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"-1s\"".to_owned()),
        Just("\"18446744073709551615s\"".to_owned()),
        Just("\"584942417355y\"".to_owned()),
        Just("true".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just(format!("\"{}\"", "x".repeat(1 << 20))),
        text().prop_map(|t| toml::Value::String(t).to_string()),
    ]
}

/// A change to the example file.
#[derive(Debug, Clone)]
enum Change {
    /// The `n`th key's value replaced.
    Value(prop::sample::Index, String),
    /// The `n`th key's line written twice.
    Twice(prop::sample::Index),
    /// A key made up, in the `n`th key's table.
    Unknown(prop::sample::Index, String),
    /// The text cut at a byte.
    Cut(prop::sample::Index),
    /// One byte changed.
    Byte(prop::sample::Index, u8),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => (any::<prop::sample::Index>(), awkward()).prop_map(|(n, v)| Change::Value(n, v)),
        1 => any::<prop::sample::Index>().prop_map(Change::Twice),
        1 => (any::<prop::sample::Index>(), "[a-z_]{1,10}").prop_map(|(n, k)| Change::Unknown(n, k)),
        1 => any::<prop::sample::Index>().prop_map(Change::Cut),
        1 => (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(n, b)| Change::Byte(n, b)),
    ]
}

#[test]
fn the_example_file_reads() {
    DaemonConfig::from_toml(EXAMPLE).unwrap();
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn every_problem_of_a_changed_file_names_its_key(change in change()) {
        let keys = keys(EXAMPLE);
        let mut lines: Vec<String> = EXAMPLE.lines().map(str::to_owned).collect();
        // The key whose problem the reading must name, if any.
        let mut named = None;
        let text = match &change {
            Change::Value(n, value) => {
                let (line, key, at) = &keys[n.index(keys.len())];
                lines[*line] = format!("{}= {value}", &lines[*line][..*at - 1]);
                named = Some(key.clone());
                lines.join("\n")
            }
            Change::Twice(n) => {
                let (line, _, _) = &keys[n.index(keys.len())];
                let again = lines[*line].clone();
                lines.insert(*line, again);
                lines.join("\n")
            }
            Change::Unknown(n, name) => {
                let (line, key, _) = &keys[n.index(keys.len())];
                let table = key.rsplit_once('.').map_or("", |(table, _)| table);
                lines.insert(*line, format!("{name} = 1"));
                if !EXAMPLE.lines().any(|l| l.trim_start().starts_with(&format!("{name} ")) || l.trim_start().starts_with(&format!("{name}="))) {
                    named = Some(format!("{table}.{name}"));
                }
                lines.join("\n")
            }
            Change::Cut(at) => {
                let mut bytes = EXAMPLE.as_bytes().to_vec();
                bytes.truncate(at.index(bytes.len() + 1));
                String::from_utf8_lossy(&bytes).into_owned()
            }
            Change::Byte(at, byte) => {
                let mut bytes = EXAMPLE.as_bytes().to_vec();
                let at = at.index(bytes.len());
                bytes[at] = *byte;
                String::from_utf8_lossy(&bytes).into_owned()
            }
        };
        match DaemonConfig::from_toml(&text) {
            Ok(_) => {
                // A repeated key is never taken silently.
                prop_assert!(!matches!(change, Change::Twice(_)), "a key given twice was taken");
            }
            Err(invalid) => {
                prop_assert!(!invalid.problems.is_empty());
                for line in invalid.lines() {
                    prop_assert!(!line.trim().is_empty());
                }
                if let Some(key) = named {
                    // The key, or a key of its table that its value
                    // contradicts, is named.
                    let table = key.rsplit_once('.').map_or("", |(table, _)| table).to_owned();
                    let keys = invalid.keys();
                    prop_assert!(
                        keys.iter().any(|k| *k == key || k.starts_with(&format!("{table}.")) || *k == table),
                        "{key} not named: {invalid}"
                    );
                }
            }
        }
    }
}
