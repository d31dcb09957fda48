//! Settings past their ranges, built in code: `Muster::start` refuses them
//! all (docs/spec.md §6.1.1), and the parts of the tree that take them where
//! nothing checks them neither panic nor overflow the clock (§6.1.6). On a
//! paused clock.

mod support;

use std::time::Duration;

use actix::prelude::*;
use muster::clock::SystemClock;
use muster::sim::{FaultConfig, Sim, SimConfig};
use muster_actors::gateway::{Fetch, GatewayConfig, GetGatewayReport};
use muster_actors::machines::{MachinesConfig, machines_child};
use muster_actors::{
    Backends, ChildSpec, Mailbox, Metrics, Muster, MusterConfig, Report, RestartConfig, Root,
    StartError, SupervisorSpec,
};
use prometheus_client::registry::Registry;
use slog::{Drain, Logger, o};
use support::{Capture, minutes, sim_gateway};

const HUGE: Duration = Duration::from_secs(u64::MAX);

/// Whether a report, its nested supervisors' included, tells of a panic.
fn tells_of_a_panic(report: &Report) -> bool {
    serde_json::to_string(report).unwrap().contains("panicked")
}

fn capture() -> (Capture, Logger) {
    let logs = Capture::default();
    let logger = Logger::root(logs.clone().fuse(), o!());
    (logs, logger)
}

fn no_panic(logs: &Capture) {
    let panics: Vec<String> = logs
        .lines()
        .into_iter()
        .filter(|line| line.contains("panicked"))
        .collect();
    assert!(panics.is_empty(), "{panics:#?}");
}

#[actix::test]
async fn muster_start_refuses_every_setting_out_of_range_by_its_key() {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let mut config = MusterConfig::default();
    config.supervision.shutdown_timeout = HUGE;
    config.presence.router_mailbox = 0;
    config.machines.poll.short_poll_backoff = f64::NAN;
    config.machines.restart.error_delay = Duration::ZERO;
    config.gateway.calls_per_second = 5e-324;
    config.gateway.throttle_backoff = HUGE;
    let backends = Backends::sim(&sim, std::sync::Arc::new(SystemClock));
    let refused = Muster::start(
        &config,
        backends,
        support::logger(),
        &mut Registry::default(),
    );
    let Err(StartError::Config(error)) = refused else {
        panic!("the config was not refused");
    };
    assert_eq!(
        error.keys(),
        [
            "supervision.shutdown_timeout",
            "presence.router_mailbox",
            "machines.poll.short_poll_backoff",
            "machines.restart.error_delay",
            "gateway.calls_per_second",
            "gateway.throttle_backoff",
        ]
    );
    let message = StartError::Config(error).to_string();
    assert!(
        message.starts_with("invalid config: supervision.shutdown_timeout = \""),
        "{message}"
    );
    assert!(
        message.contains(
            "\": must be at most 1year; presence.router_mailbox = 0: \
             must be at least 1 and at most 16777216; machines.poll.short_poll_backoff = nan: "
        ),
        "{message}"
    );
}

struct Idle;

impl Actor for Idle {
    type Context = Context<Self>;
}

muster_actors::supervised!(Idle);

#[actix::test]
async fn a_stop_timeout_of_u64_max_seconds_waits_without_overflowing() {
    tokio::time::pause();
    let (logs, logger) = capture();
    let mailbox = Mailbox::new(1);
    let child = ChildSpec::actor("idle", &mailbox, |_| Ok(Idle)).shutdown_timeout(Some(HUGE));
    let root = Root::start(
        "root",
        SupervisorSpec::new(RestartConfig::default()).child(child),
        logger,
        Metrics::unregistered(),
    )
    .unwrap();
    tokio::time::sleep(minutes(1)).await;
    root.shutdown();
    root.wait().await.unwrap();
    no_panic(&logs);
}

#[actix::test]
async fn a_gateway_paced_past_its_ranges_answers_and_keeps_running() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        faults: FaultConfig {
            throttle_rate: 1.0,
            retry_after: None,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let (_, id) = sim.add_provisioned_machine();
    let (logs, logger) = capture();
    for (rate, burst) in [(5e-324, u32::MAX), (0.0, 0), (f64::NAN, 1), (1e308, 5)] {
        let config = GatewayConfig {
            calls_per_second: rate,
            burst,
            window: HUGE,
            call_timeout: HUGE,
            throttle_backoff: HUGE,
            throttle_backoff_cap: HUGE,
            ..GatewayConfig::default()
        };
        // A request waits its window, which never ends.
        let gateway = sim_gateway(&sim, config, logger.clone()).start();
        let fetch = gateway.send(Fetch { id: id.clone() });
        assert!(tokio::time::timeout(minutes(10), fetch).await.is_err());
        let report = gateway.send(GetGatewayReport).await.unwrap();
        assert_eq!(report.queued, 1, "{report:?}");
        // A full batch goes at once, is throttled, and then waits for the
        // longest wait there is; the gateway still answers.
        let config = GatewayConfig {
            max_batch: 1,
            ..config
        };
        let gateway = sim_gateway(&sim, config, logger.clone()).start();
        let fetch = gateway.send(Fetch { id: id.clone() });
        assert!(tokio::time::timeout(minutes(10), fetch).await.is_err());
        let report = gateway.send(GetGatewayReport).await.unwrap();
        assert!(report.throttled_for.is_some(), "{report:?}");
        assert!(report.throttles >= 1, "{report:?}");
    }
    no_panic(&logs);
}

#[actix::test]
async fn a_watcher_retrying_at_u64_max_seconds_does_not_overflow() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        faults: FaultConfig {
            model_error_rate: 1.0,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    for _ in 0..3 {
        sim.add_provisioned_machine();
    }
    let mut config = MachinesConfig::default();
    config.poll.short_poll = HUGE;
    config.poll.short_poll_cap = HUGE;
    config.poll.long_poll = HUGE;
    config.poll.short_poll_backoff = f64::INFINITY;
    let gateway = Mailbox::new(64);
    let cloud = sim.clone();
    let gateway_child = ChildSpec::actor("gateway", &gateway, move |cx| {
        Ok(sim_gateway(
            &cloud,
            GatewayConfig::default(),
            cx.logger().clone(),
        ))
    });
    let (machines, _handle) = machines_child("machines", config, sim.facade(), gateway).unwrap();
    let (logs, logger) = capture();
    let root = Root::start(
        "root",
        SupervisorSpec::new(RestartConfig::default())
            .child(gateway_child)
            .child(machines),
        logger,
        Metrics::unregistered(),
    )
    .unwrap();
    tokio::time::sleep(minutes(30)).await;
    let report = root.report().await.unwrap();
    assert!(!tells_of_a_panic(&report), "{report:#?}");
    root.shutdown();
    root.wait().await.unwrap();
    no_panic(&logs);
}
