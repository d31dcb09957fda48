//! A panic in a supervised child, in a process that installed the daemon's
//! panic hook as `musterd` does, is one log record: with JSON logs, every
//! line of standard error is still one JSON object.
//!
//! The hook is process-wide, so the daemon runs in a process of its own:
//! this test binary again, running only `panicking_daemon`.

mod support;

use std::process::{Command, Stdio};

use musterd::DaemonError;
use musterd::logging::{LogFormat, LogLevel, logger, panic_hook};
use support::breaking::{Out, PANIC, backends, config};
use support::text;
use tokio::sync::watch;

/// Set in the process that runs `panicking_daemon`.
const DAEMON: &str = "MUSTERD_TEST_PANICKING_DAEMON";

#[test]
fn a_childs_panic_is_one_json_log_record() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "panicking_daemon",
            "--include-ignored",
            "--nocapture",
        ])
        .env(DAEMON, "1")
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "{stdout}\n{stderr}");
    let records: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}\n{stderr}")))
        .collect();
    let panics: Vec<_> = records.iter().filter(|r| r["msg"] == "panicked").collect();
    assert_eq!(panics.len(), 1, "{stderr}");
    assert_eq!(panics[0]["message"], PANIC);
    assert_eq!(panics[0]["level"], "ERRO");
    assert!(
        panics[0]["at"]
            .as_str()
            .is_some_and(|at| at.contains("breaking.rs")),
        "{stderr}"
    );
    // RUST_BACKTRACE asked for one: it rides in the record.
    assert!(panics[0]["backtrace"].is_string(), "{stderr}");
    // The supervisor's own account of it, and the run's end, follow.
    assert!(
        records
            .iter()
            .any(|r| r["msg"] == "child failed" && r["child"] == "gateway"),
        "{stderr}"
    );
    assert!(
        records.iter().any(|r| r["msg"] == "shutting down"
            && r["error"]
                .as_str()
                .is_some_and(|e| e.contains("the tree failed"))),
        "{stderr}"
    );
}

#[test]
#[ignore = "the daemon of a_childs_panic_is_one_json_log_record, in a process of its own"]
fn panicking_daemon() {
    if std::env::var_os(DAEMON).is_none() {
        eprintln!("only run by a_childs_panic_is_one_json_log_record");
        return;
    }
    let (log, guard) = logger(LogFormat::Json, LogLevel::Info, std::io::stderr());
    std::panic::set_hook(panic_hook(log.clone()));
    let (_break, broken) = watch::channel(true);
    let result = actix::System::new().block_on(musterd::run_with(
        config(),
        backends(broken),
        log.clone(),
        Out::default(),
        futures::stream::pending(),
    ));
    drop(log);
    drop(guard);
    assert!(matches!(result, Err(DaemonError::Tree(_))), "{result:?}");
}
