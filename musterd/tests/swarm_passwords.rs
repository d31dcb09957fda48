//! `musterd swarm` against a door with `auth = "password"` (docs/spec.md
//! §14.7): `--provision` makes each agent's password through the HTTP API
//! and logs every agent in with its own; `--passwords FILE` reads them,
//! and a wrong one is counted as the 4401 it is.

mod support;

use std::time::Duration;

use musterd::swarm::{self, SwarmOptions, SwarmSummary};
use support::ConfigFile;
use support::agents::MODEL;
use support::daemon::Musterd;
use support::passwords::{config, port, provision};

async fn run(options: SwarmOptions) -> (SwarmSummary, String) {
    let mut out = Vec::new();
    let summary = swarm::run(options, &mut out, std::future::pending())
        .await
        .unwrap();
    (summary, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn a_provisioned_swarm_logs_every_agent_in_with_its_own_password() {
    let store = tempfile::tempdir().unwrap();
    let file = ConfigFile::new("swarm-provision", config(&store.path().join("m.db"), ""));
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let (summary, out) = run(SwarmOptions {
        url: musterd.agents.clone(),
        agents: 6,
        duration: Some(Duration::from_secs(2)),
        model_uuids: vec![MODEL.parse().unwrap()],
        provision: Some(musterd.dashboard.clone()),
        ..SwarmOptions::default()
    })
    .await;
    assert!(out.contains("provisioned: 6 passwords"), "{out}");
    assert_eq!(summary.connected, 6, "{out}");
    assert!(summary.failures.is_empty(), "{out}");
    // Each agent's password is its own: none is printed.
    assert!(!out.contains("password\""), "{out}");
    assert_eq!(musterd.terminate(), Some(0));
}

#[tokio::test]
async fn a_swarm_reads_its_agents_and_passwords_from_a_file() {
    let store = tempfile::tempdir().unwrap();
    let file = ConfigFile::new("swarm-file", config(&store.path().join("m.db"), ""));
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let http = port(&musterd.http_addr());
    let mut lines = String::from("# model,agent,password\n");
    for agent in ["machine-0", "unit-app-0", "unit-app-1"] {
        let password = provision(http, MODEL, agent);
        lines.push_str(&format!("{MODEL},{agent},{password}\n"));
    }
    provision(http, MODEL, "machine-1");
    lines.push_str(&format!("{MODEL},machine-1,not-its-password\n"));
    let passwords = store.path().join("passwords");
    std::fs::write(&passwords, lines).unwrap();
    let (summary, out) = run(SwarmOptions {
        url: musterd.agents.clone(),
        duration: Some(Duration::from_millis(1500)),
        passwords: Some(passwords),
        ..SwarmOptions::default()
    })
    .await;
    assert!(out.starts_with("swarm: 4 agents over 1 models"), "{out}");
    assert_eq!(summary.connected, 3, "{out}");
    assert!(
        summary.failures.get("4401").is_some_and(|n| *n >= 1),
        "{out}"
    );
    assert_eq!(musterd.terminate(), Some(0));
}

#[test]
fn provisioning_and_a_passwords_file_are_one_or_the_other() {
    let both = SwarmOptions {
        provision: Some("http://127.0.0.1:1".into()),
        passwords: Some("passwords".into()),
        ..SwarmOptions::default()
    };
    let error = both.validate().unwrap_err().to_string();
    assert!(error.starts_with("--provision: "), "{error}");
    let bad = SwarmOptions {
        provision: Some("https://127.0.0.1:1".into()),
        ..SwarmOptions::default()
    };
    let error = bad.validate().unwrap_err().to_string();
    assert!(error.contains("wants http://"), "{error}");
}
