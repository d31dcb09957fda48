//! The door as an operator meets it in `musterd`: the printed addresses, an
//! agent seen on `/api/presence` over HTTP, 1001 on SIGTERM, the config
//! check that keeps a network door from going unguarded, and the demo's
//! door. These start real processes; each waits a few seconds at most.

mod support;

use std::process::{Command, Stdio};

use serde_json::json;
use support::agents::*;
use support::daemon::Musterd;
use support::{ConfigFile, MUSTERD};

const CONFIG: &str = "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\n";

#[tokio::test]
async fn run_serves_agents_and_closes_them_1001_on_sigterm() {
    let file = ConfigFile::new("run", CONFIG);
    let musterd = Musterd::start(&["run", "--config", file.path()]);
    assert!(
        musterd.dashboard.starts_with("http://127.0.0.1:") && musterd.dashboard.ends_with('/'),
        "{}",
        musterd.dashboard
    );
    assert!(
        musterd.agents.starts_with("ws://127.0.0.1:") && musterd.agents.ends_with("/agent"),
        "{}",
        musterd.agents
    );
    assert!(!musterd.agents.contains(":0/"), "the bound port is printed");
    let (mut ws, id) = login(&musterd.agents, "unit-mysql-0").await;
    let presence = musterd.wait_presence(MODEL, 1);
    assert_eq!(
        presence["agents"],
        json!([{"agent": "unit-mysql-0", "status": "alive", "controller": false}])
    );
    assert_eq!(presence["connections"][0]["connection_id"], id);
    let models = musterd.get("/api/models");
    assert_eq!(models["models"][0]["alive"], 1, "{models}");
    // SIGTERM: the agent hears 1001 before the process ends.
    let closing = tokio::spawn(async move { closed(&mut ws).await });
    let (musterd, code) = terminate(musterd).await;
    assert_eq!(code, Some(0));
    let (code, reason) = closing.await.unwrap().unwrap();
    assert_eq!((code, reason.as_str()), (1001, "server shutting down"));
    let log: Vec<String> = musterd.stderr.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains("agents door closed")),
        "{log:#?}"
    );
}

#[test]
fn a_network_door_without_token_or_tls_is_refused() {
    let file = ConfigFile::new(
        "open",
        "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"0.0.0.0:0\"\n",
    );
    for command in ["check-config", "run"] {
        let mut args = vec![command];
        if command == "run" {
            args.push("--config");
        }
        args.push(file.path());
        let out = Command::new(MUSTERD)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("agents.listen = \"0.0.0.0:0\": 0.0.0.0 is not a loopback address"),
            "{command}: {err}"
        );
        assert!(out.stdout.is_empty() || command == "check-config");
    }
    let guarded = ConfigFile::new(
        "guarded",
        "[agents]\nlisten = \"0.0.0.0:0\"\ntoken = \"s3cret\"\n",
    );
    let out = Command::new(MUSTERD)
        .args(["check-config", guarded.path()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn an_agents_port_in_use_is_exit_1_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let file = ConfigFile::new(
        "taken",
        format!("[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"{addr}\"\n"),
    );
    let out = Command::new(MUSTERD)
        .args(["run", "--config", file.path()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("musterd: agents: cannot listen on {addr}: ")),
        "{err}"
    );
    assert!(!err.contains("muster started"), "{err}");
}

#[test]
fn swarm_refuses_bad_options_with_exit_2() {
    for (args, want) in [
        (
            vec!["--url", "http://x/agent", "--agents", "3"],
            "--url: \"http://x/agent\": wants ws:// or wss://",
        ),
        (
            vec!["--url", "ws://127.0.0.1:1/agent", "--agents", "0"],
            "--agents: must be from 1",
        ),
        (
            vec![
                "--url",
                "ws://127.0.0.1:1/agent",
                "--agents",
                "3",
                "--churn",
                "NaN",
            ],
            "--churn: must be a fraction from 0 to 1, got NaN",
        ),
    ] {
        let out = Command::new(MUSTERD)
            .arg("swarm")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn the_demo_opens_the_door_and_counts_its_agents() {
    let demo = Musterd::start(&[
        "demo",
        "--port",
        "0",
        "--agents-port",
        "0",
        "--speed",
        "20",
        "--duration",
        "20s",
        "--machines",
        "10",
        "--agents",
        "30",
    ]);
    assert!(
        demo.agents.starts_with("ws://127.0.0.1:"),
        "{}",
        demo.agents
    );
    let (mut ws, _) = login(&demo.agents, "unit-python-0").await;
    let presence = demo.wait_presence(MODEL, 1);
    assert_eq!(presence["connections"][0]["server"], "machine-0");
    // A swarm process against the demo's door, for a moment.
    let out = Command::new(MUSTERD)
        .args(["swarm", "--url", &demo.agents, "--agents", "20"])
        .args(["--models", "2", "--ping", "1s", "--duration", "1500ms"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("all connected: 20 after "), "{text}");
    assert!(text.contains("final: 20 logins in "), "{text}");
    let closing = tokio::spawn(async move { closed(&mut ws).await });
    let (_demo, code) = terminate(demo).await;
    assert_eq!(code, Some(0));
    let (code, _) = closing.await.unwrap().unwrap();
    assert_eq!(code, 1001);
}

/// SIGTERM off the runtime's thread, so that this process's agents go on
/// answering while `musterd` stops.
async fn terminate(mut musterd: Musterd) -> (Musterd, Option<i32>) {
    tokio::task::spawn_blocking(move || {
        let code = musterd.terminate();
        (musterd, code)
    })
    .await
    .unwrap()
}
