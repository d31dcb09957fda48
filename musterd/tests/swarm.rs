//! The swarm against a door in this process, on tokio's paused clock: its
//! agents are recorded by presence, spread over the models; churn and a
//! storm bring them back; refusals are counted by close code.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use musterd::swarm::{self, SwarmOptions, SwarmSummary};
use support::agents::*;

fn options(url: &str, agents: usize) -> SwarmOptions {
    SwarmOptions {
        url: url.to_owned(),
        agents,
        models: 3,
        ping: Duration::from_secs(1),
        churn: 0.0,
        duration: Some(Duration::from_secs(10)),
        ..SwarmOptions::default()
    }
}

/// Runs the swarm to its end on the paused clock, and answers its summary
/// and output.
async fn run(options: SwarmOptions) -> (SwarmSummary, String) {
    let mut out = Vec::new();
    let summary = swarm::run(options, &mut out, std::future::pending())
        .await
        .unwrap();
    (summary, String::from_utf8(out).unwrap())
}

#[actix_web::test]
async fn the_swarm_is_recorded_spread_over_its_models() {
    let fixture = Fixture::start(config()).await;
    tokio::time::pause();
    let options = options(&fixture.url, 60);
    let check = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let view = fixture.muster.presence().connections().await.unwrap();
        let mut per_model = BTreeMap::new();
        for model in view.models() {
            let agents = view.for_model(&model).agents();
            per_model.insert(model, agents.len());
            let tags: Vec<String> = agents.iter().map(|a| a.to_string()).collect();
            assert!(tags.contains(&"machine-0".to_owned()), "{tags:?}");
            assert!(tags.contains(&"unit-swarm-9".to_owned()), "{tags:?}");
        }
        per_model
    };
    let ((summary, out), per_model) = futures::join!(run(options), check);
    assert_eq!(
        per_model.values().copied().collect::<Vec<_>>(),
        [20, 20, 20]
    );
    assert_eq!(summary.logins, 60, "{out}");
    assert_eq!(summary.connected, 60, "{out}");
    assert!(summary.failures.is_empty(), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].starts_with("swarm: 60 agents over 3 models to ws://"),
        "{out}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("all connected: 60 after ") && l.ends_with("; 0 logins failed")),
        "{out}"
    );
    let seconds: Vec<&&str> = lines.iter().filter(|l| l.starts_with("t=")).collect();
    assert!(seconds.len() >= 9, "{out}");
    assert!(
        seconds[0].starts_with("t=1s connected 60/60 | logins 60/s p50 "),
        "{out}"
    );
    assert!(seconds[0].ends_with("| failures none"), "{out}");
    assert!(
        lines.last().unwrap().starts_with("final: 60 logins in "),
        "{out}"
    );
    // The swarm closed its agents on the way out.
    fixture.wait_count_total(0).await;
    fixture.stop().await;
}

#[actix_web::test]
async fn churn_closes_and_reopens_agents() {
    let fixture = Fixture::start(config()).await;
    tokio::time::pause();
    // Half of 60 agents a minute: one every two seconds, five in the ten
    // seconds' ticks.
    let (summary, out) = run(SwarmOptions {
        churn: 0.5,
        duration: Some(Duration::from_millis(10_500)),
        ..options(&fixture.url, 60)
    })
    .await;
    assert_eq!(summary.logins, 65, "{out}");
    assert!(summary.failures.is_empty(), "{out}");
    fixture.stop().await;
}

#[actix_web::test]
async fn a_storm_drops_everyone_and_everyone_comes_back() {
    let fixture = Fixture::start(config()).await;
    tokio::time::pause();
    let (summary, out) = run(SwarmOptions {
        storm_after: Some(Duration::from_secs(3)),
        duration: Some(Duration::from_secs(6)),
        ..options(&fixture.url, 40)
    })
    .await;
    assert!(
        out.contains("storm: every connection dropped at once"),
        "{out}"
    );
    assert!(out.contains("storm: all back: 40 after "), "{out}");
    assert_eq!(summary.logins, 80, "{out}");
    assert!(summary.failures.is_empty(), "{out}");
    fixture.stop().await;
}

#[actix_web::test]
async fn refusals_are_counted_by_close_code() {
    let fixture = Fixture::start(config_with(|c| c.token = Some("s3cret".into()))).await;
    tokio::time::pause();
    let (summary, out) = run(SwarmOptions {
        duration: Some(Duration::from_millis(2500)),
        ..options(&fixture.url, 5)
    })
    .await;
    assert_eq!(summary.logins, 0, "{out}");
    // Each agent tries again after one to two seconds.
    let refused = summary.failures.get("4401").copied().unwrap_or(0);
    assert!((5..=15).contains(&refused), "{out}");
    // And none of them ever got in.
    assert_eq!(
        summary.failures.get(swarm::NEVER_CONNECTED),
        Some(&5),
        "{out}"
    );
    assert_eq!(summary.failures.len(), 2, "{out}");
    assert!(
        out.contains("connected 0/5 | logins 0/s | failures 4401×"),
        "{out}"
    );
    // With the token they get in.
    let (summary, out) = run(SwarmOptions {
        token: Some("s3cret".into()),
        duration: Some(Duration::from_secs(2)),
        ..options(&fixture.url, 5)
    })
    .await;
    assert_eq!(summary.logins, 5, "{out}");
    fixture.stop().await;
}

#[actix_web::test]
async fn agents_that_never_connected_are_counted_as_failures() {
    // A door that takes the sockets and never answers: every login is
    // still under way when the swarm stops.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/agent", silent.local_addr().unwrap());
    tokio::time::pause();
    let (summary, out) = run(SwarmOptions {
        duration: Some(Duration::from_secs(2)),
        ..options(&url, 7)
    })
    .await;
    assert_eq!(summary.logins, 0, "{out}");
    assert_eq!(
        summary.failures,
        BTreeMap::from([(swarm::NEVER_CONNECTED.to_owned(), 7)]),
        "{out}"
    );
    assert!(
        out.lines()
            .last()
            .unwrap()
            .ends_with("| failures never_connected×7"),
        "{out}"
    );
}

#[actix_web::test]
async fn swarms_of_different_seeds_log_in_agents_of_different_models() {
    let fixture = Fixture::start(config()).await;
    tokio::time::pause();
    let swarm = |seed| {
        run(SwarmOptions {
            models: 1,
            seed,
            duration: Some(Duration::from_secs(3)),
            ..options(&fixture.url, 4)
        })
    };
    let check = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let view = fixture.muster.presence().connections().await.unwrap();
        view.models()
            .iter()
            .map(|m| view.for_model(m).agents().len())
            .collect::<Vec<_>>()
    };
    let ((one, _), (two, _), per_model) = futures::join!(swarm(1), swarm(2), check);
    assert_eq!(per_model, [4, 4]);
    assert_eq!((one.logins, two.logins), (4, 4));
    fixture.stop().await;
}

#[actix_web::test]
async fn the_swarm_speaks_wss_with_a_ca() {
    let (pems, _) = Pems::new("swarm");
    let fixture = Fixture::start(pems.config()).await;
    let url = fixture.url.replace("127.0.0.1", "localhost");
    tokio::time::pause();
    let (summary, out) = run(SwarmOptions {
        ca: Some(pems.path("cert.pem")),
        duration: Some(Duration::from_secs(2)),
        ..options(&url, 6)
    })
    .await;
    assert_eq!(summary.logins, 6, "{out}");
    assert!(summary.failures.is_empty(), "{out}");
    fixture.stop().await;
}

#[actix_web::test]
async fn bad_options_name_the_flag() {
    let good = options("ws://127.0.0.1:1/agent", 10);
    for (options, flag) in [
        (
            SwarmOptions {
                url: "http://127.0.0.1:1/agent".into(),
                ..good.clone()
            },
            "--url",
        ),
        (
            SwarmOptions {
                url: "not a url".into(),
                ..good.clone()
            },
            "--url",
        ),
        (
            SwarmOptions {
                url: "ws:///agent".into(),
                ..good.clone()
            },
            "--url",
        ),
        (
            SwarmOptions {
                agents: 0,
                ..good.clone()
            },
            "--agents",
        ),
        (
            SwarmOptions {
                models: 11,
                ..good.clone()
            },
            "--models",
        ),
        (
            SwarmOptions {
                models: 0,
                ..good.clone()
            },
            "--models",
        ),
        (
            SwarmOptions {
                ping: Duration::ZERO,
                ..good.clone()
            },
            "--ping",
        ),
        (
            SwarmOptions {
                churn: f64::NAN,
                ..good.clone()
            },
            "--churn",
        ),
        (
            SwarmOptions {
                churn: -0.1,
                ..good.clone()
            },
            "--churn",
        ),
        (
            SwarmOptions {
                churn: f64::INFINITY,
                ..good.clone()
            },
            "--churn",
        ),
        (
            SwarmOptions {
                duration: Some(Duration::ZERO),
                ..good.clone()
            },
            "--duration",
        ),
        (
            SwarmOptions {
                token: Some(" ".into()),
                ..good.clone()
            },
            "--token",
        ),
        (
            SwarmOptions {
                url: "wss://localhost:1/agent".into(),
                ..good.clone()
            },
            "--ca",
        ),
        (
            SwarmOptions {
                ca: Some("ca.pem".into()),
                ..good.clone()
            },
            "--ca",
        ),
        (
            SwarmOptions {
                concurrency: 0,
                ..good.clone()
            },
            "--concurrency",
        ),
    ] {
        let error = options.validate().unwrap_err();
        assert!(error.to_string().starts_with(flag), "{flag}: {error}");
        assert_eq!(error.exit_code(), 2);
    }
    assert!(good.validate().is_ok());
}
