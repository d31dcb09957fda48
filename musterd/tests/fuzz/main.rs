//! Fuzzing every parser that takes outside input, with proptest: arbitrary
//! and structurally mutated inputs for the agents' login frame, the cluster
//! protocol (a buggy or hostile peer on NATS), the snapshot parts, the
//! registry's HTTP bodies and query strings, and the config file.
//!
//! Each target holds three properties: it never panics, a refusal says
//! what was wrong (naming the field or key where there is one), and
//! nothing already accepted changes.
//!
//! Every target runs [`CASES`] cases by default; `PROPTEST_CASES` sets
//! another number, e.g. a million in a release build:
//! `PROPTEST_CASES=1000000 cargo test --release -p musterd --test fuzz`.
//! A failure is shrunk and its seed kept in `musterd/proptest-regressions/`,
//! which every later run replays first.

mod config;
mod http;
mod json;
mod login;
#[path = "../support/models.rs"]
#[allow(dead_code)]
mod models;
mod peers;
mod protocol;

use proptest::test_runner::Config;

/// Cases per target when `PROPTEST_CASES` does not say.
const CASES: u32 = 2048;

/// The runner's settings for every target.
pub fn settings() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(CASES);
    // Failures persist where proptest keeps them by default:
    // musterd/proptest-regressions/, one file per target.
    Config {
        cases,
        ..Config::default()
    }
}
