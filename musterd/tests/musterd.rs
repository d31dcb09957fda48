//! The `musterd` binary as an operator meets it: exit codes, messages on bad
//! input, a port in use, and a graceful stop on SIGTERM. These start real
//! processes; each waits a few seconds at most.

mod support;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{ConfigFile, MUSTERD, Process, musterd, spawn, text, wait_for_line};

#[test]
fn check_config_accepts_the_example_file() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/muster.example.toml");
    let out = musterd(&["check-config", example]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).ends_with(": ok\n"));
}

#[test]
fn check_config_prints_every_error_naming_key_and_value() {
    let file = ConfigFile::new(
        "many",
        "colour = \"blue\"\n[machines.poll]\nshort_poll = \"10\"\n[gateway]\nwindow = \"0s\"\nburst = 0\n",
    );
    let out = musterd(&["check-config", file.0.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let path = file.0.display().to_string();
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(
        lines.iter().all(|l| l.starts_with(&format!("{path}: "))),
        "{err}"
    );
    assert!(
        err.contains("colour = \"blue\": unknown field `colour`"),
        "{err}"
    );
    assert!(
        err.contains("machines.poll.short_poll = \"10\": invalid duration \"10\""),
        "{err}"
    );
    assert!(
        err.contains("gateway.burst = 0: must be at least 1"),
        "{err}"
    );
}

#[test]
fn bad_config_files_exit_2_and_start_nothing() {
    for (name, config, want) in [
        (
            "unit",
            "[machines.poll]\nshort_poll = \"10\"\n",
            "machines.poll.short_poll = \"10\": invalid duration",
        ),
        (
            "unknown",
            "[machines]\npoll_every = \"3s\"\n",
            "machines.poll_every = \"3s\": unknown field `poll_every`",
        ),
        (
            "negative",
            "[machines.poll]\nlong_poll = \"-15m\"\n",
            "machines.poll.long_poll = \"-15m\": invalid duration",
        ),
        (
            "zero",
            "[machines.poll]\nshort_poll = \"0s\"\n",
            "machines.poll.short_poll = \"0s\": must be a positive duration",
        ),
        (
            "cap",
            "[machines.poll]\nshort_poll = \"10s\"\nshort_poll_cap = \"5s\"\n",
            "machines.poll.short_poll = \"10s\": must not be longer than short_poll_cap (10s > 5s)",
        ),
        (
            "json",
            "{\"machines\": {\"poll\": {}}}\n",
            "not a TOML file at line 1, column 1",
        ),
    ] {
        let file = ConfigFile::new(name, config);
        let out = musterd(&["run", "--config", file.0.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("muster started"), "{name}: {err}");
    }
    let out = musterd(&["run", "--config", "/nonexistent/muster.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("/nonexistent/muster.toml: cannot read"));
}

/// A config on free loopback ports.
const FREE_PORTS: &str = "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\n";

#[test]
fn sigterm_stops_run_gracefully_with_exit_0() {
    let file = ConfigFile::new("sigterm", format!("{FREE_PORTS}[backend]\nmachines = 5\n"));
    let (mut musterd, lines) = spawn(&["run", "--config", file.0.to_str().unwrap()]);
    wait_for_line(&lines, "http listening", Duration::from_secs(10));
    musterd.terminate();
    assert_eq!(musterd.wait_exit(Duration::from_secs(10)), Some(0));
    let rest: Vec<String> = lines.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("signal: SIGTERM")),
        "{rest:#?}"
    );
    assert!(rest.iter().any(|l| l.contains("INFO stopped")), "{rest:#?}");
}

#[test]
fn every_stop_signal_stops_run_while_starting_and_while_serving() {
    let file = ConfigFile::new("signals", FREE_PORTS);
    for signal in ["INT", "TERM", "HUP"] {
        // The tree's first log line comes while it starts, after the
        // handlers are installed; the dashboard line once it serves.
        for (moment, wait) in [
            ("starting", "muster started"),
            ("serving", "presence recording enabled"),
        ] {
            let mut command = Command::new(MUSTERD);
            command
                .args([
                    "--log-level",
                    "debug",
                    "run",
                    "--config",
                    file.0.to_str().unwrap(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut musterd = Process::spawn(&mut command);
            let lines = support::lines(musterd.0.stderr.take().unwrap());
            wait_for_line(&lines, wait, Duration::from_secs(10));
            musterd.signal(signal);
            let code = musterd.wait_exit(Duration::from_secs(10));
            let rest: Vec<String> = lines.try_iter().collect();
            assert_eq!(code, Some(0), "SIG{signal} while {moment}: {rest:#?}");
            assert!(
                rest.iter()
                    .any(|l| l.contains(&format!("signal: SIG{signal}"))),
                "SIG{signal} while {moment}: {rest:#?}"
            );
        }
    }
}

#[test]
fn json_logs_carry_actix_records_too() {
    let file = ConfigFile::new("json", FREE_PORTS);
    let (mut musterd, lines) = spawn(&[
        "--log-format",
        "json",
        "run",
        "--config",
        file.0.to_str().unwrap(),
    ]);
    let mut seen = wait_for_line(&lines, "http listening", Duration::from_secs(10));
    musterd.terminate();
    assert_eq!(musterd.wait_exit(Duration::from_secs(10)), Some(0));
    seen.extend(lines.try_iter());
    let records: Vec<serde_json::Value> = seen
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(records.iter().any(|r| r["msg"] == "muster started"));
    // actix-server logs through the `log` crate; the bridge brings it here.
    assert!(
        records.iter().any(|r| r["target"]
            .as_str()
            .is_some_and(|t| t.starts_with("actix_server"))),
        "{seen:#?}"
    );
    assert!(records.iter().any(|r| r["msg"] == "stopped"), "{seen:#?}");
}

#[test]
fn a_port_in_use_is_a_clear_error_with_exit_1() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let file = ConfigFile::new("port", format!("[http]\nlisten = \"{addr}\"\n"));
    let mut musterd = Process::spawn(
        Command::new(MUSTERD)
            .args(["run", "--config", file.0.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::piped()),
    );
    let code = musterd.wait_exit(Duration::from_secs(10));
    let mut err = String::new();
    musterd
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!("musterd: cannot listen on {addr}: ")),
        "{err}"
    );
    assert!(err.to_lowercase().contains("in use"), "{err}");
    assert!(!err.contains("muster started"), "{err}");
    drop(taken);
}

#[test]
fn demo_flags_out_of_range_exit_2_naming_flag_and_range() {
    let speed = "must be from 0.01 to 1000";
    let machines = "must be from 3 to 100000";
    let agents = "must be from 3 to 1000000";
    let token = "must not ";
    for (flag, value, want) in [
        ("--speed", "1e20", speed),
        ("--speed", "1e-20", speed),
        ("--speed", "1e300", speed),
        ("--speed", "1e308", speed),
        ("--speed", "5e-324", speed),
        ("--speed", "NaN", speed),
        ("--speed", "inf", speed),
        ("--speed", "-inf", speed),
        ("--speed", "0", speed),
        ("--speed", "-1", speed),
        ("--speed", "", speed),
        ("--speed", " ", speed),
        ("--speed", "fast", speed),
        ("--machines", "2", machines),
        ("--machines", "-1", machines),
        ("--machines", "100001", machines),
        ("--machines", "18446744073709551616", machines),
        ("--agents", "0", agents),
        ("--agents", "1000001", agents),
        ("--agents", "1e3", agents),
        ("--token", "", token),
        ("--token", " \t ", token),
        ("--token", " s3cret", token),
        ("--token", "s3cret ", token),
    ] {
        let out = musterd(&["demo", flag, value, "--port", "0", "--agents-port", "0"]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value:?}: {err}");
        assert!(
            err.contains(&format!("for '{flag} <")),
            "{flag} {value:?}: {err}"
        );
        assert!(err.contains(want), "{flag} {value:?}: {err}");
        assert!(!err.contains("panicked"), "{flag} {value:?}: {err}");
    }
}

#[test]
fn config_file_tokens_follow_the_flag_rule() {
    for (config, key) in [
        ("[http]\ntoken = \" s3cret\"\n", "http.token"),
        ("[http]\ntoken = \"s3cret\\n\"\n", "http.token"),
        ("[http]\ntoken = \"  \"\n", "http.token"),
        ("[agents]\ntoken = \"s3cret \"\n", "agents.token"),
        ("[agents]\ntoken = \"s3\\u0000cret\"\n", "agents.token"),
    ] {
        let file = ConfigFile::new("tokens", config);
        let out = musterd(&["check-config", file.0.to_str().unwrap()]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {err}");
        // The key is named; the secret itself is never printed.
        assert!(err.contains(&format!("{key}: ")), "{config}: {err}");
        assert!(!err.contains("s3"), "{config}: {err}");
    }
}

#[test]
fn the_printed_dashboard_address_percent_encodes_the_token() {
    let out = musterd(&[
        "demo",
        "--port",
        "0",
        "--agents-port",
        "0",
        "--machines",
        "3",
        "--agents",
        "3",
        "--duration",
        "1ms",
        "--token",
        "s3 cr&t=/?#%+",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.ends_with("/?token=s3%20cr%26t%3D%2F%3F%23%25%2B"),
        "{stdout}"
    );
}

#[test]
fn an_address_on_every_interface_is_printed_as_one_a_browser_can_open() {
    let out = musterd(&[
        "demo",
        "--listen",
        "0.0.0.0:0",
        "--agents-port",
        "0",
        "--machines",
        "3",
        "--agents",
        "3",
        "--duration",
        "1ms",
        "--token",
        "t0ken",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("dashboard: http://127.0.0.1:"),
        "{stdout}"
    );
    let port = first
        .trim_start_matches("dashboard: http://127.0.0.1:")
        .split('/')
        .next()
        .unwrap();
    assert!(
        stdout.contains(&format!(
            "dashboard: listening on 0.0.0.0:{port}, every address of this host"
        )),
        "{stdout}"
    );
}

#[test]
fn demo_prints_a_summary_a_second_and_the_outage() {
    let out = musterd(&[
        "demo",
        "--port",
        "0",
        "--agents-port",
        "0",
        "--speed",
        "50",
        "--duration",
        "4s",
        "--machines",
        "30",
        "--agents",
        "90",
    ]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].starts_with("dashboard: http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(lines[0].ends_with('/'), "{stdout}");
    let summaries: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| l.starts_with("t="))
        .collect();
    assert!(summaries.len() >= 3, "{stdout}");
    for part in [
        "machines ",
        ": short ",
        " long ",
        " running ",
        "| agents ",
        "alive ",
        "missing ",
        "| provider calls ",
        "throttled ",
        "| restarts ",
    ] {
        assert!(summaries.last().unwrap().contains(part), "{part}: {stdout}");
    }
    // World time 2m55s: the link to machine-1 went down at 1m30s and came
    // back at 2m.
    assert!(
        stdout.contains("event: machine-1 down: its agents are missing"),
        "{stdout}"
    );
    assert!(
        stdout.contains("event: machine-1 back: snapshot of "),
        "{stdout}"
    );
    // The injected faults are left out of a terminal at the demo's level.
    assert!(
        !text(&out.stderr).contains("injected"),
        "{}",
        text(&out.stderr)
    );
}
