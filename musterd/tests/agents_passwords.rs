//! Each agent's own password (docs/spec.md §14), through a real `musterd
//! run` with `auth = "password"`: made over HTTP, checked at the door with
//! the door's Rust client and a raw WebSocket, every wrong login refused
//! alike, a rotation or removal closing the live connection, the
//! brute-force limit, and the passwords surviving a restart in a SQLite
//! file that never holds one.

mod support;

use std::time::{Duration, Instant};

use muster_door::client::{Client, Login, LoginFailure, Session, SessionEnd};
use support::agents::{Answer, MODEL};
use support::daemon::Musterd;
use support::passwords::*;
use support::shared::request;
use support::{ConfigFile, text};
use tokio::time::timeout;

/// Another model, which musterd does not poll.
const OTHER_MODEL: &str = "0ddba11e-0bad-400d-8000-4b1d0d06f00d";

/// How long a rotation may take to close a live connection.
const AT_ONCE: Duration = Duration::from_secs(2);

async fn log_in(url: &str, agent: &str, password: &str) -> Result<Session, LoginFailure> {
    let client = Client::new(url, None).unwrap();
    let login = Login::new(MODEL.parse().unwrap(), agent.parse().unwrap())
        .with_password(Some(password.to_owned()));
    client.login(&login).await
}

/// Waits (bounded) for the door to close `session`; answers how.
async fn ended(session: &mut Session, within: Duration) -> Option<SessionEnd> {
    timeout(within, async {
        loop {
            if let Some(end) = session.next_end().await {
                return end;
            }
        }
    })
    .await
    .ok()
}

#[tokio::test]
async fn each_agent_logs_in_with_its_own_password_and_every_other_is_refused_alike() {
    let store = tempfile::tempdir().unwrap();
    let file = ConfigFile::new(
        "passwords",
        config(&store.path().join("m.db"), "max_login_failures = 1000\n"),
    );
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let http = port(&musterd.http_addr());
    let url = musterd.agents.clone();

    let machine = provision(http, MODEL, "machine-1");
    let unit = provision(http, MODEL, "unit-app-0");
    assert_ne!(machine, unit);
    assert!(machine.len() >= 22, "{machine}");

    // The right password logs in, with the Rust client.
    let mut machine_session = log_in(&url, "machine-1", &machine).await.unwrap();
    let mut unit_session = log_in(&url, "unit-app-0", &unit).await.unwrap();
    musterd.wait_presence(MODEL, 2);

    // Every other login is refused with 4401 and the same reason: a wrong
    // password, none, another agent's, an agent without one, an agent of a
    // model musterd does not poll.
    for (model, agent, password) in [
        (MODEL, "machine-1", Some("wrong")),
        (MODEL, "machine-1", Some("")),
        (MODEL, "machine-1", None),
        (MODEL, "machine-1", Some(unit.as_str())),
        (MODEL, "machine-9", Some(machine.as_str())),
        (MODEL, "machine-9", None),
        (OTHER_MODEL, "machine-1", Some(machine.as_str())),
    ] {
        assert_eq!(
            refused(&url, model, agent, password).await,
            (4401, REFUSED.to_owned()),
            "{agent} of {model}, password {:?}",
            password.map(|_| "given")
        );
    }
    // The Rust client hears the same code.
    assert_eq!(
        log_in(&url, "unit-app-0", &machine).await.unwrap_err(),
        LoginFailure::Closed(4401)
    );

    // A rotation closes the connection that logged in with the old
    // password at once; the old one fails, the new one works.
    let started = Instant::now();
    let rotated = provision(http, MODEL, "unit-app-0");
    assert_eq!(
        ended(&mut unit_session, AT_ONCE).await,
        Some(SessionEnd::Closed(4401))
    );
    assert!(started.elapsed() < AT_ONCE);
    assert_eq!(
        refused(&url, MODEL, "unit-app-0", Some(&unit)).await,
        (4401, REFUSED.to_owned())
    );
    let _unit_again = log_in(&url, "unit-app-0", &rotated).await.unwrap();

    // A removal closes its connections too, and the password no longer
    // logs in; removing it again is not found.
    let path = format!("/api/models/{MODEL}/agents/machine-1/password");
    assert_eq!(request(http, "DELETE", &path, "").0, 204);
    assert_eq!(
        ended(&mut machine_session, AT_ONCE).await,
        Some(SessionEnd::Closed(4401))
    );
    assert_eq!(
        refused(&url, MODEL, "machine-1", Some(&machine)).await,
        (4401, REFUSED.to_owned())
    );
    let (status, body) = request(http, "DELETE", &path, "");
    assert_eq!((status, &body["field"]), (404, &"tag".into()), "{body}");
    // The other connection's agent was not touched.
    musterd.wait_presence(MODEL, 1);

    // The metrics count the refusals and the revocations; nothing the
    // surface answers, nor anything logged, holds a password.
    let metrics = raw_get(http, "/metrics");
    assert!(
        metrics.contains("muster_agents_logins_total{result=\"4401\"} 10"),
        "{metrics}"
    );
    assert!(
        metrics.contains("muster_agents_disconnects_total{reason=\"revoked\"} 2"),
        "{metrics}"
    );
    let report = raw_get(http, "/api/report");
    let presence = raw_get(http, &format!("/api/presence?model={MODEL}"));
    assert_eq!(musterd.terminate(), Some(0));
    let logged: Vec<String> = musterd.stderr.try_iter().collect();
    let logged = logged.join("\n");
    for password in [&machine, &unit, &rotated] {
        for (what, text) in [
            ("metrics", &metrics),
            ("report", &report),
            ("presence", &presence),
            ("log", &logged),
        ] {
            assert!(
                !text.contains(password.as_str()),
                "the {what} holds a password"
            );
        }
    }
}

#[tokio::test]
async fn the_http_api_refuses_a_bad_tag_or_uuid_and_an_unknown_model() {
    let store = tempfile::tempdir().unwrap();
    let file = ConfigFile::new("passwords-http", config(&store.path().join("m.db"), ""));
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let http = port(&musterd.http_addr());
    for (path, status, field) in [
        (
            format!("/api/models/{MODEL}/agents/agent-1/password"),
            400,
            "tag",
        ),
        (
            format!("/api/models/{MODEL}/agents/machine-x/password"),
            400,
            "tag",
        ),
        (
            "/api/models/nope/agents/machine-1/password".to_owned(),
            400,
            "uuid",
        ),
        (
            format!("/api/models/{OTHER_MODEL}/agents/machine-1/password"),
            404,
            "uuid",
        ),
    ] {
        for method in ["POST", "DELETE"] {
            let (got, body) = request(http, method, &path, "");
            assert_eq!(
                (got, &body["field"]),
                (status, &field.into()),
                "{method} {path}: {body}"
            );
            assert!(body["error"].is_string(), "{body}");
        }
    }
    // Another method is not one the path answers.
    let path = format!("/api/models/{MODEL}/agents/machine-1/password");
    assert_eq!(request(http, "GET", &path, "").0, 405);
    // The answer carrying a password is never to be cached.
    let answer = {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect(("127.0.0.1", http)).unwrap();
        write!(
            tcp,
            "POST {path} HTTP/1.1\r\nHost: muster\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).unwrap();
        answer
    };
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer
            .to_ascii_lowercase()
            .contains("cache-control: no-store"),
        "{answer}"
    );
    assert_eq!(musterd.terminate(), Some(0));
}

#[tokio::test]
async fn passwords_survive_a_restart_and_the_store_never_holds_one() {
    let store = tempfile::tempdir().unwrap();
    let db = store.path().join("muster.db");
    let file = ConfigFile::new("passwords-restart", config(&db, ""));
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let http = port(&musterd.http_addr());
    let passwords: Vec<(String, String)> = (0..5)
        .map(|n| {
            let agent = format!("machine-{n}");
            let password = provision(http, MODEL, &agent);
            (agent, password)
        })
        .collect();
    assert_eq!(musterd.terminate(), Some(0));
    let stored = bytes_of(store.path());
    assert!(!stored.is_empty());
    for (agent, password) in &passwords {
        assert!(!holds(&stored, password), "{agent}'s password is stored");
    }

    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let mut sessions = Vec::new();
    for (agent, password) in &passwords {
        let session = log_in(&musterd.agents, agent, password).await;
        assert!(session.is_ok(), "{agent}: {session:?}");
        sessions.push(session);
    }
    musterd.wait_presence(MODEL, 5);
    assert_eq!(musterd.terminate(), Some(0));
}

#[tokio::test]
async fn failed_logins_past_the_limit_are_refused_4429_then_let_in_again() {
    let store = tempfile::tempdir().unwrap();
    let agents = "max_login_failures = 3\nlogin_failure_window = \"1m\"\nlogin_lockout = \"2s\"\n";
    let file = ConfigFile::new(
        "passwords-limit",
        config(&store.path().join("m.db"), agents),
    );
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let http = port(&musterd.http_addr());
    let url = musterd.agents.clone();
    let password = provision(http, MODEL, "machine-1");
    for _ in 0..3 {
        assert_eq!(
            refused(&url, MODEL, "machine-1", Some("guess")).await.0,
            4401
        );
    }
    // Locked out: even the right password is refused, with 4429.
    let (code, reason) = refused(&url, MODEL, "machine-1", Some(&password)).await;
    assert_eq!(code, 4429, "{reason}");
    assert!(reason.contains("too many failed logins"), "{reason}");
    let metrics = raw_get(http, "/metrics");
    assert!(
        metrics.contains("muster_agents_logins_total{result=\"4429\"} 1"),
        "{metrics}"
    );
    // Released after the lockout.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    match try_login(&url, MODEL, "machine-1", Some(&password)).await {
        Answer::In(_) => {}
        other => panic!("not let in again: {other:?}"),
    }
    assert_eq!(musterd.terminate(), Some(0));
}

#[test]
fn password_auth_without_a_registry_is_refused_naming_the_key() {
    let file = ConfigFile::new("passwords-no-registry", "[agents]\nauth = \"password\"\n");
    let out = support::musterd(&["check-config", file.path()]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("agents.auth"), "{err}");
    assert!(err.contains("[[models]]"), "{err}");
    let file = ConfigFile::new(
        "passwords-and-token",
        "[agents]\nauth = \"password\"\ntoken = \"s3cret\"\n",
    );
    let out = support::musterd(&["check-config", file.path()]);
    let err = text(&out.stderr);
    assert!(err.contains("agents.token"), "{err}");
    assert!(!err.contains("s3cret"), "{err}");
    let file = ConfigFile::new("passwords-bad-auth", "[agents]\nauth = \"magic\"\n");
    let out = support::musterd(&["check-config", file.path()]);
    let err = text(&out.stderr);
    assert!(err.contains("agents.auth"), "{err}");
}
