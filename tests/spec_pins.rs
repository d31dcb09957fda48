//! Every test `docs/spec.md` names under "Pinned by" exists: the file is
//! there and defines the function, so that a test renamed or moved cannot
//! leave a rule pinned by nothing.
//!
//! A pin is written `file::module::function`, or with sibling tests of one
//! file grouped in braces: `file::module::{a, b}`. The function is looked
//! for in the file, or in the module's own file beside it
//! (`tests/supervision/main.rs::restarts::x` in `tests/supervision/restarts.rs`).

use std::path::{Path, PathBuf};

/// The repository's top folder: this crate's manifest is there.
fn top() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The text of each "Pinned by" of the spec, up to the end of its paragraph.
fn pins(spec: &str) -> Vec<&str> {
    spec.split("Pinned by")
        .skip(1)
        .map(|rest| {
            let end = ["\n\n", "\n**§", "\n> "]
                .iter()
                .filter_map(|mark| rest.find(mark))
                .min()
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect()
}

/// The tests a pin names: (file, modules, function).
fn named(pin: &str) -> Vec<(String, Vec<String>, String)> {
    let mut tests = Vec::new();
    for span in pin.split('`').skip(1).step_by(2) {
        let Some((file, rest)) = span.split_once(".rs::") else {
            continue;
        };
        let file = format!("{file}.rs");
        let names: Vec<String> = match rest.split_once('{') {
            Some((prefix, group)) => group
                .trim_end_matches('}')
                .split(',')
                .map(|name| format!("{prefix}{}", name.trim()))
                .filter(|name| !name.ends_with("::"))
                .collect(),
            None => vec![rest.to_owned()],
        };
        for name in names {
            let mut segments: Vec<String> = name.split("::").map(str::to_owned).collect();
            let function = segments.pop().unwrap_or_default();
            tests.push((file.clone(), segments, function));
        }
    }
    tests
}

/// Whether `text` defines a function called `name`.
fn defines(text: &str, name: &str) -> bool {
    text.match_indices(&format!("fn {name}"))
        .any(|(at, matched)| {
            let after = text[at + matched.len()..].chars().next();
            !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
}

/// Where a test of `file` in `modules` may be defined.
fn places(file: &str, modules: &[String]) -> Vec<PathBuf> {
    let mut places = vec![top().join(file)];
    let folder = top()
        .join(file)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    for depth in 1..=modules.len() {
        let module = modules[..depth].iter().collect::<PathBuf>();
        places.push(folder.join(&module).with_extension("rs"));
        places.push(folder.join(&module).join("mod.rs"));
    }
    places
}

#[test]
fn every_pinned_test_exists() {
    let spec = std::fs::read_to_string(top().join("docs/spec.md")).unwrap();
    let mut missing = Vec::new();
    let mut count = 0;
    for pin in pins(&spec) {
        for (file, modules, function) in named(pin) {
            count += 1;
            let found = places(&file, &modules).iter().any(|place| {
                std::fs::read_to_string(place).is_ok_and(|text| defines(&text, &function))
            });
            if !found {
                missing.push(format!(
                    "{file}::{}{function}",
                    modules.iter().map(|m| format!("{m}::")).collect::<String>()
                ));
            }
        }
    }
    // The spec pins hundreds of tests: a reader that finds none is broken.
    assert!(count > 500, "only {count} pinned tests read");
    assert!(
        missing.is_empty(),
        "pinned by tests that do not exist: {missing:#?}"
    );
}

#[test]
fn the_reader_finds_grouped_and_single_pins_and_knows_a_missing_one() {
    let pin = ": `a/b.rs::tests::{one, two}`,\n`c.rs::three` (and prose `x`).\n\nnext";
    let tests = named(pins(&format!("Pinned by{pin}"))[0]);
    assert_eq!(
        tests,
        [
            (
                "a/b.rs".to_owned(),
                vec!["tests".to_owned()],
                "one".to_owned()
            ),
            (
                "a/b.rs".to_owned(),
                vec!["tests".to_owned()],
                "two".to_owned()
            ),
            ("c.rs".to_owned(), vec![], "three".to_owned()),
        ]
    );
    assert!(defines("fn three() {}", "three"));
    assert!(!defines("fn three_more() {}", "three"));
}
