//! Every config key against the values that once broke the daemon (docs/spec.md
//! §7.3.5): each is refused with a problem naming that key, or accepted, and
//! then the tree built from it starts and stops on the paused clock with no
//! panic. A few of them also go through the real binary.

mod support;

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster::clock::SystemClock;
use muster::config::InvalidConfig;
use muster::sim::Sim;
use muster_actors::{Backends, Muster};
use musterd::config::DaemonConfig;
use prometheus_client::registry::Registry;
use slog::{Drain, Logger, Never, OwnedKVList, Record, o};
use support::{ConfigFile, MUSTERD, Process, musterd, text};

/// The values, as TOML writes them, that broke a setting once, and a few
/// at the edges of the ranges, so that accepted extremes run too.
const VALUES: &[&str] = &[
    "0",
    "-1",
    "nan",
    "inf",
    "-inf",
    "5e-324",
    "1e308",
    "\"18446744073709551615s\"",
    "\"\"",
    "\"   \"",
    "\"0s\"",
    "\"1ns\"",
    "\"1day\"",
    "\"1year\"",
    "\"none\"",
    "1",
    "0.001",
    "1000000",
    "16777216",
    "true",
];

/// Every key of the config: those its defaults write, and those the example
/// file shows commented out because they are unset by default.
fn every_key() -> Vec<Vec<String>> {
    let defaults = toml::Table::try_from(DaemonConfig::default()).unwrap();
    let example = include_str!("../muster.example.toml");
    let uncommented: String = example
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if rest.split_once(" = ").is_some_and(|(k, _)| bare(k)) => rest,
            _ => line,
        })
        .fold(String::new(), |mut text, line| {
            let _ = writeln!(text, "{line}");
            text
        });
    let example: toml::Table = toml::from_str(&uncommented).unwrap();
    let mut keys = Vec::new();
    leaves(&defaults, &mut Vec::new(), &mut keys);
    leaves(&example, &mut Vec::new(), &mut keys);
    keys.sort();
    keys.dedup();
    keys
}

fn bare(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn leaves(table: &toml::Table, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    for (key, value) in table {
        path.push(key.clone());
        match value.as_table() {
            Some(inner) => leaves(inner, path, out),
            None => out.push(path.clone()),
        }
        path.pop();
    }
}

/// The base the keys are tried on: a few machines, and a cloud that fails
/// and throttles now and then, so that the pollers, the gateway's throttle
/// backoff and the restarts all run.
fn base() -> toml::Table {
    toml::from_str(
        "[backend]\nmachines = 3\n\
         [backend.sim]\nseed = 7\n\
         [backend.sim.faults]\nerror_rate = 0.05\nthrottle_rate = 0.3\nretry_after = \"none\"\n\
         partial_rate = 0.05\nmodel_error_rate = 0.05\n",
    )
    .unwrap()
}

/// `base` with `key` set to `value`, as a config file's text.
fn with(key: &[String], value: &str) -> String {
    let value: toml::Value =
        toml::from_str::<toml::Table>(&format!("v = {value}")).unwrap()["v"].clone();
    let mut document = base();
    let mut table = &mut document;
    for segment in &key[..key.len() - 1] {
        table = table
            .entry(segment.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .unwrap();
    }
    table.insert(key[key.len() - 1].clone(), value);
    toml::to_string(&document).unwrap()
}

/// Whether each problem is the key's own, or a sibling's that names it (a
/// rule between two settings, such as `short_poll_cap <= long_poll`).
fn names_the_key(error: &InvalidConfig, key: &[String]) -> bool {
    let full = key.join(".");
    let (parent, field) = full.rsplit_once('.').unwrap_or(("", &full));
    error.more == 0
        && error.problems.iter().all(|problem| {
            problem.key == full
                || (problem.key.rsplit_once('.').map_or("", |(p, _)| p) == parent
                    && problem.reason.contains(field))
        })
}

/// A drain that keeps each record as one line, its pairs included.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Drain for Lines {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record, values: &OwnedKVList) -> Result<(), Never> {
        struct Pairs(String);
        impl slog::Serializer for Pairs {
            fn emit_arguments(
                &mut self,
                key: slog::Key,
                val: &std::fmt::Arguments,
            ) -> slog::Result {
                let _ = write!(self.0, " {key}={val}");
                Ok(())
            }
        }
        let mut pairs = Pairs(record.msg().to_string());
        let _ = slog::KV::serialize(&record.kv(), record, &mut pairs);
        let _ = slog::KV::serialize(values, record, &mut pairs);
        self.0.lock().unwrap().push(pairs.0);
        Ok(())
    }
}

/// Starts the tree `config` describes on its simulated cloud, lets it run
/// for a few virtual minutes, and stops it. Says what went wrong, if any.
async fn run_the_tree(config: &DaemonConfig) -> Result<(), String> {
    let sim = Sim::new(config.backend.sim.clone()).map_err(|e| e.to_string())?;
    // A million machines is the load binary's business; a few show whether
    // the tree copes with the setting.
    for _ in 0..config.backend.machines.min(5) {
        sim.add_provisioned_machine();
    }
    let lines = Lines::default();
    let logger = Logger::root(lines.clone().fuse(), o!());
    let backends = Backends::sim(&sim, Arc::new(SystemClock));
    let muster = Muster::start(&config.muster(), backends, logger, &mut Registry::default())
        .map_err(|e| format!("the tree did not start: {e}"))?;
    tokio::time::sleep(Duration::from_secs(300)).await;
    let report = serde_json::to_string(&muster.report().await.map_err(|e| e.to_string())?).unwrap();
    muster.shutdown();
    // A tree may give up on its own (max_restarts = 0 and a failing cloud):
    // that is its rule, not a fault; a panic is.
    let ended = tokio::time::timeout(Duration::from_secs(3 * 365 * 86_400), muster.wait())
        .await
        .map_err(|_| "the tree did not stop".to_owned())?;
    let panics: Vec<String> = lines
        .0
        .lock()
        .unwrap()
        .iter()
        .filter(|line| line.contains("panicked"))
        .cloned()
        .collect();
    if !panics.is_empty() || report.contains("panicked") {
        return Err(format!("a panic: {panics:#?}"));
    }
    if let Err(e) = ended
        && e.to_string().contains("panicked")
    {
        return Err(format!("the tree failed with a panic: {e}"));
    }
    Ok(())
}

#[actix::test]
async fn every_key_refuses_what_broke_it_or_runs_with_it() {
    tokio::time::pause();
    let keys = every_key();
    assert!(keys.len() > 70, "{} keys", keys.len());
    let mut failures = Vec::new();
    let (mut refused, mut ran) = (0, 0);
    for key in &keys {
        for value in VALUES {
            let text = with(key, value);
            let shown = format!("{} = {value}", key.join("."));
            match DaemonConfig::from_toml(&text) {
                Err(error) => {
                    refused += 1;
                    if !names_the_key(&error, key) {
                        failures.push(format!("{shown}: refused as {error}"));
                    }
                }
                Ok(config) => {
                    ran += 1;
                    if let Err(why) = run_the_tree(&config).await {
                        failures.push(format!("{shown}: {why}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // Both halves were exercised.
    assert!(refused > 1000 && ran > 100, "{refused} refused, {ran} ran");
}

/// The settings `check-config` once accepted and `run` then panicked on.
const BREAKERS: &str = "[supervision]\nmax_restarts = 0\nshutdown_timeout = \"18446744073709551615s\"\n\
    [gateway]\ncalls_per_second = 5e-324\nwindow = \"18446744073709551615s\"\n\
    throttle_backoff = \"18446744073709551615s\"\nthrottle_backoff_cap = \"18446744073709551615s\"\n\
    [backend.sim.faults]\nretry_after = \"18446744073709551615s\"\n";

#[test]
fn check_config_names_every_former_breaker() {
    let file = ConfigFile::new("check", BREAKERS.as_bytes());
    let out = musterd(&["check-config", file.path()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    for key in [
        "supervision.shutdown_timeout = \"18446744073709551615s\": must be at most 1year",
        "gateway.calls_per_second = 5e-324: must be a number from 0.001 to 1000000",
        "gateway.window = \"18446744073709551615s\"",
        "gateway.throttle_backoff = \"18446744073709551615s\"",
        "gateway.throttle_backoff_cap = \"18446744073709551615s\"",
        "backend.sim.faults.retry_after = \"18446744073709551615s\"",
    ] {
        assert!(
            err.contains(&format!("{}: {key}", file.path())),
            "{key}: {err}"
        );
    }
    assert_eq!(err.lines().count(), 6, "{err}");
}

#[test]
fn run_refuses_the_former_breakers_with_exit_2() {
    for (name, text) in [
        ("all", BREAKERS),
        (
            "rate",
            "[supervision]\nmax_restarts = 0\n[gateway]\ncalls_per_second = 5e-324\n",
        ),
        ("backoff", "[machines.poll]\nshort_poll_backoff = 1e308\n"),
        ("machines", "[backend]\nmachines = 18446744073709551615\n"),
    ] {
        let file = ConfigFile::new(name, text.as_bytes());
        let mut musterd = Process::spawn(
            std::process::Command::new(MUSTERD)
                .args(["run", "--config", file.path()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        );
        assert_eq!(
            musterd.wait_exit(Duration::from_secs(10)),
            Some(2),
            "{name}"
        );
    }
}

#[test]
fn an_endless_or_huge_file_is_refused_naming_the_limit() {
    let out = musterd(&["check-config", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        "/dev/zero: larger than 4 MiB, the most a config file may be\n"
    );
    let file = ConfigFile::new("huge", vec![b'#'; (4 << 20) + 1]);
    let out = musterd(&["check-config", file.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("larger than 4 MiB"));
}

#[test]
fn many_unknown_keys_are_counted_past_the_hundredth() {
    let keys: String = (0..20_000).map(|n| format!("key{n} = {n}\n")).collect();
    let file = ConfigFile::new("many", keys.as_bytes());
    let out = musterd(&["check-config", file.path()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(err.lines().count(), 101);
    assert!(
        err.ends_with(&format!("{}: ... and 19900 more\n", file.path())),
        "{}",
        &err[err.len().saturating_sub(200)..]
    );
}

#[test]
fn a_file_that_is_not_utf8_is_refused() {
    let file = ConfigFile::new("latin1", b"[http]\ntoken = \"caf\xe9\"\n");
    let out = musterd(&["check-config", file.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}: not UTF-8 text: a bad byte at line 2, column 13\n",
            file.path()
        )
    );
}
