//! muster as one child of a host's own supervision tree (docs/spec.md §8),
//! on a paused clock: the host restarts it by its own policy, the handle
//! the host got once keeps working, and a restart keeps what it must.

#[path = "subsystem/harness.rs"]
mod harness;
mod support;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use harness::{
    Api, HostOptions, SilentCredentials, families, host, host_policy, series, start_host,
    wall_clock, within,
};
use muster::clock::Clock;
use muster::names::{MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::presence::Status;
use muster::sim::{Sim, SimConfig};
use muster_actors::{
    Backends, ChildSpec, ChildState, Exit, Mailbox, Metrics, Muster, MusterConfig, RestartConfig,
    Root, SendError, StartError, SupervisorError, SupervisorRef, SupervisorSpec, TreeError,
};
use prometheus_client::registry::Registry;
use support::{logger, minutes, secs, server, unit};
use tokio::time::{Instant, sleep};

#[actix::test]
async fn the_host_restarts_muster_by_its_own_policy_with_its_backoff() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    sim.add_provisioned_machine();
    let host = host(&sim, wall_clock(), 5);
    sleep(minutes(1)).await;

    let first = host.fail_muster(1).await;
    assert_eq!(first.state, ChildState::Failed);
    let restart_in = first.restart_in_ms.unwrap();
    assert!(within(restart_in, secs(5)), "{restart_in} ms");
    let error = first.last_error.unwrap();
    assert!(
        error.starts_with("restart intensity exceeded: more than 1 restarts within 1m (last: machines, failed: restart intensity exceeded"),
        "{error}"
    );
    assert!(
        error.contains("(last: watcher, failed: machine watcher failed: watching machines: the API server is down)"),
        "{error}"
    );
    host.running_again(2).await;

    // A second failure soon after: the host's backoff doubles the delay.
    let second = host.fail_muster(2).await;
    assert_eq!(second.recent_failures, 2);
    let restart_in = second.restart_in_ms.unwrap();
    assert!(within(restart_in, secs(10)), "{restart_in} ms");
    let again = host.running_again(3).await;

    // The host's other worker never noticed; muster's subtree is nested in
    // the host's report, and the restarts are counted under its name.
    assert_eq!(host.child("api").await.start_count, 1);
    let nested: muster_actors::Report = serde_json::from_value(again.report.unwrap()).unwrap();
    assert_eq!(nested.path, "host/muster");
    let names: Vec<&str> = nested.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["gateway", "presence", "machines"]);
    assert_eq!(
        series(
            &host.metrics(),
            "muster_child_restarts_total{child=\"host/muster\",reason=\"failure\"}"
        ),
        Some(2)
    );
    // The handle answers as before.
    assert_eq!(host.muster.report().await.unwrap().path, "host/muster");
    assert_eq!(host.muster.machines().machines().await.unwrap().len(), 1);
}

#[actix::test]
async fn the_handle_keeps_working_and_calls_made_during_the_restart_wait_for_it() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let clock = wall_clock();
    let host = host(&sim, clock.clone(), 5);
    let presence = host.muster.presence().clone();
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(7);
    let recorded_at = clock.now();
    for id in 0..20u64 {
        let at = server((id % 2) as u32);
        presence
            .connect(&at, &model, &unit(id), id, false, "4.0")
            .await
            .unwrap();
    }
    clock.advance(minutes(1));

    let failed = host.fail_muster(1).await;
    let failed_at = Instant::now();
    // Calls made now wait for muster: a query, and a change stamped when
    // it was made.
    let query = {
        let presence = presence.clone();
        actix::spawn(async move { (presence.connections().await, Instant::now()) })
    };
    let connected_at = clock.now();
    let change = {
        let presence = presence.clone();
        actix::spawn(async move {
            presence
                .connect(&server(0), &model, &unit(99), 99, false, "4.0")
                .await
        })
    };
    sleep(Duration::from_millis(10)).await;
    clock.advance(minutes(1));
    // A handle that does not wait answers at once; one that waits a second
    // gives up after it.
    let impatient = host.muster.clone().with_restart_wait(Duration::ZERO);
    let answer = impatient.gateway().await;
    assert!(
        matches!(&answer, Err(SendError::Unavailable { subsystem, reason })
            if subsystem == "muster" && reason == "it is not running and did not start within 0s"),
        "{answer:?}"
    );
    let asked = Instant::now();
    let answer = host
        .muster
        .clone()
        .with_restart_wait(secs(1))
        .presence()
        .is_enabled()
        .await;
    assert!(
        matches!(answer, Err(SendError::Unavailable { .. })),
        "{answer:?}"
    );
    // The timer's resolution is a millisecond.
    let waited = asked.elapsed();
    assert!(
        waited >= secs(1) && waited <= secs(1) + Duration::from_millis(1),
        "{waited:?}"
    );
    // A handle that waits for as long as muster may come back.
    let patient = {
        let muster = host.muster.clone().with_restart_wait(Duration::MAX);
        actix::spawn(async move { muster.gateway().await.map(|_| Instant::now()) })
    };

    let (connections, answered_at) = query.await.unwrap();
    let connections = connections.expect("answered once muster was back");
    change.await.unwrap().expect("applied once muster was back");
    let waited = answered_at - failed_at;
    let restart_in = Duration::from_millis(failed.restart_in_ms.unwrap());
    assert!(
        waited + Duration::from_millis(50) >= restart_in && waited <= restart_in + secs(1),
        "waited {waited:?} for a restart in {restart_in:?}"
    );
    assert_eq!(host.child("muster").await.start_count, 2);

    // What was recorded before the restart is answered after it, seen when
    // it was seen; the change made during the restart carries the time it
    // was made.
    let before: Vec<_> = (0..20).map(unit).collect();
    assert!(before.iter().all(|a| connections.agents().contains(a)));
    let connections = presence.connections().await.unwrap();
    assert_eq!(connections.count(), 21);
    let values = connections.values();
    for value in &values {
        let seen = if value.connection_id == 99 {
            connected_at
        } else {
            recorded_at
        };
        assert_eq!(value.last_seen, seen, "{value:?}");
        assert_eq!(value.status, Status::Alive);
    }
    assert_eq!(
        connections.for_model(&model).agent_status(&unit(99)),
        Ok(Status::Alive)
    );
    assert!(presence.is_enabled().await.unwrap());
    let patient_answered = patient
        .await
        .unwrap()
        .expect("answered once muster was back");
    assert!(
        patient_answered - failed_at + Duration::from_millis(50) >= restart_in,
        "answered before the restart"
    );
    host.muster.credential_valid(true).await.unwrap();
}

#[actix::test]
async fn a_call_under_way_when_muster_goes_down_is_answered_by_the_next_incarnation() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let host = host(&sim, wall_clock(), 5);
    let presence = host.muster.presence().clone();
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(7);
    for id in 0..3u64 {
        presence
            .connect(&server(0), &model, &unit(id), id, false, "")
            .await
            .unwrap();
    }
    // Server 0's actor fails: a query now waits for it, under way.
    let victim = presence.server_mailbox(&server(0)).await.unwrap().unwrap();
    let crashed = victim.call(|_, _| -> () { panic!("injected") }).await;
    assert!(
        matches!(crashed, Err(SendError::Lost { .. })),
        "{crashed:?}"
    );
    let asked = Instant::now();
    let query = {
        let presence = presence.clone();
        actix::spawn(async move { presence.connections().await })
    };
    sleep(Duration::from_millis(10)).await;
    assert!(!query.is_finished());

    host.fail_muster(1).await;
    host.running_again(2).await;
    let connections = query
        .await
        .unwrap()
        .expect("answered by the next incarnation");
    assert_eq!(connections.count(), 3);
    // Well before the failed actor's own restart, 30 s after its failure.
    assert!(asked.elapsed() < secs(20), "{:?}", asked.elapsed());
}

#[actix::test]
async fn pollers_resume_in_their_phase_and_interval_and_are_not_polled_early() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let tags: Vec<MachineTag> = (0..4).map(|_| sim.add_provisioned_machine().0).collect();
    let host = host(&sim, wall_clock(), 5);
    sleep(minutes(2)).await;
    let before = host.muster.machines().machines().await.unwrap();
    assert!(
        before.iter().all(|m| m.phase == Some(Phase::Long)),
        "{before:?}"
    );

    host.fail_muster(1).await;
    host.running_again(2).await;
    sleep(secs(5)).await;

    let after = host.muster.machines().machines().await.unwrap();
    assert_eq!(after.len(), tags.len());
    for (was, is) in before.iter().zip(&after) {
        assert_eq!(is.tag, was.tag);
        assert_eq!(is.phase, was.phase, "{}", is.tag);
        assert_eq!(is.interval, was.interval, "{}", is.tag);
        assert_eq!(is.polls, was.polls, "{} was not polled early", is.tag);
        assert_eq!(is.instance_status, was.instance_status, "{}", is.tag);
        assert_eq!(is.addresses, was.addresses, "{}", is.tag);
    }
    // Every machine has its poller again, each started once in this
    // incarnation.
    let report = host.muster.report().await.unwrap();
    let machines: muster_actors::Report =
        serde_json::from_value(report.child("machines").unwrap().report.clone().unwrap()).unwrap();
    let pollers: Vec<&str> = machines
        .children
        .iter()
        .filter(|c| c.dynamic)
        .map(|c| c.name.as_str())
        .collect();
    let want: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    assert_eq!(pollers, want);
}

#[actix::test]
async fn the_gateway_stays_paused_for_a_denied_credential_across_the_restart() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    sim.add_provisioned_machine();
    sim.revoke_credential();
    let options = HostOptions {
        policy: host_policy(5),
        credentials: Some(Arc::new(SilentCredentials(sim.credential_api()))),
    };
    let host = start_host(&sim, wall_clock(), options);
    sleep(secs(30)).await;
    let gateway = host.muster.gateway().await.unwrap();
    assert!(gateway.credential_paused);
    assert_eq!(sim.invalidation_reasons().len(), 1);

    host.fail_muster(1).await;
    host.running_again(2).await;
    sleep(minutes(1)).await;

    // Still paused, without a second invalidation: the restart said
    // nothing about the credential.
    let gateway = host.muster.gateway().await.unwrap();
    assert!(gateway.credential_paused);
    assert_eq!(gateway.calls.get("instances"), None);
    assert_eq!(sim.invalidation_reasons().len(), 1);

    sim.restore_credential();
    host.muster.credential_valid(true).await.unwrap();
    sleep(secs(30)).await;
    let gateway = host.muster.gateway().await.unwrap();
    assert!(!gateway.credential_paused);
    assert!(gateway.calls.get("instances").is_some_and(|n| *n > 0));
}

#[actix::test]
async fn when_the_host_gives_up_its_root_fails_with_musters_error_inside() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let host = host(&sim, wall_clock(), 1);
    host.model.set_down(true);

    let error = host.root.wait().await.unwrap_err();
    let TreeError::Failed(message) = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.starts_with("restart intensity exceeded: more than 1 restarts within 10m (last: muster, failed: restart intensity exceeded: more than 1 restarts within 1m (last: machines, failed: "),
        "{message}"
    );
    assert!(
        message.contains("machine watcher failed: watching machines: the API server is down"),
        "{message}"
    );

    // Nothing will start muster again: the handle says so at once, and
    // waiting on it ends with its last error.
    let asked = Instant::now();
    let answer = host.muster.presence().connections().await;
    assert!(
        matches!(&answer, Err(SendError::Unavailable { reason, .. }) if reason.starts_with("it stopped for good, its last exit: failed: restart intensity exceeded")),
        "{answer:?}"
    );
    assert_eq!(asked.elapsed(), Duration::ZERO);
    let ended = host.muster.wait().await.unwrap_err();
    assert!(
        matches!(&ended, TreeError::Failed(e) if e.contains("(last: machines, failed:")),
        "{ended:?}"
    );
}

#[actix::test]
async fn ten_restarts_register_nothing_twice_and_every_count_carries_on() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    sim.add_provisioned_machine();
    let policy = RestartConfig {
        max_delay: secs(5),
        ..host_policy(100)
    };
    let options = HostOptions {
        policy,
        credentials: None,
    };
    let host = start_host(&sim, wall_clock(), options);
    sleep(minutes(1)).await;

    host.model.set_down(true);
    host.muster_until("failed ten times", |m| m.restarts.failure == 10)
        .await;
    host.model.set_down(false);
    host.running_again(11).await;
    sleep(minutes(1)).await;

    let text = host.metrics();
    let families_now = families(&text);
    let mut expected: Vec<String> = [
        "muster_child_restarts",
        "muster_mailbox_depth",
        "muster_mailbox_depth_high_water",
        "muster_mailbox_dropped",
        "muster_mailbox_handled",
        "muster_mailbox_handling_seconds",
        "muster_mailbox_refused",
        "muster_mailbox_sent",
        "muster_provider_calls",
        "muster_provider_credential_invalidations",
        "muster_provider_credential_paused",
        "muster_provider_ids",
        "muster_provider_queued_requests",
        "muster_provider_throttles",
    ]
    .map(String::from)
    .to_vec();
    expected.sort();
    assert_eq!(families_now, expected, "each family once:\n{text}");
    for (child, restarts) in [
        ("host/muster", 10),
        // Each incarnation restarted the machines subtree once, and the
        // watcher once in each of the two incarnations of that.
        ("host/muster/machines", 10),
        ("host/muster/machines/watcher", 20),
    ] {
        let line = format!("muster_child_restarts_total{{child=\"{child}\",reason=\"failure\"}}");
        assert_eq!(series(&text, &line), Some(restarts), "{child}\n{text}");
    }
    // The gateway's series counted every incarnation's calls.
    let calls = series(&text, "muster_provider_calls_total{method=\"instances\"}").unwrap();
    let gateway = host.muster.gateway().await.unwrap();
    let this_incarnation = gateway.calls.get("instances").copied().unwrap_or(0);
    assert!(calls > this_incarnation, "{calls} > {this_incarnation}");
}

#[actix::test]
async fn a_bad_name_or_config_is_refused_and_registers_nothing() {
    let sim = Sim::new(SimConfig::default()).unwrap();
    for name in ["", "host/muster"] {
        let mut registry = Registry::default();
        let backends = Backends::sim(&sim, wall_clock());
        let refused = Muster::child(name, &MusterConfig::default(), backends, &mut registry);
        assert!(
            matches!(&refused, Err(StartError::Tree(SupervisorError::BadName(n))) if n == name),
            "{:?}",
            refused.map(|_| ())
        );
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert_eq!(text, "# EOF\n");
    }
    let mut config = MusterConfig::default();
    config.gateway.max_batch = 0;
    let mut registry = Registry::default();
    let refused = Muster::child(
        "muster",
        &config,
        Backends::sim(&sim, wall_clock()),
        &mut registry,
    );
    let error = refused.map(|_| ()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid config: gateway.max_batch"),
        "{error}"
    );
}

#[actix::test]
async fn a_muster_started_on_its_own_answers_unavailable_once_it_stopped() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (muster, _registry) = support::start_tree(&sim, &MusterConfig::default(), wall_clock());
    muster.presence().enable().await.unwrap();
    assert!(muster.shutdown());
    muster.wait().await.unwrap();
    let answer = muster
        .presence()
        .connect(&server(0), &ModelUuid::from_u128(1), &unit(1), 1, false, "")
        .await;
    assert!(
        matches!(&answer, Err(SendError::Unavailable { subsystem, reason })
            if subsystem == "root" && reason == "it stopped for good, its last exit: done"),
        "{answer:?}"
    );
}

#[actix::test]
async fn a_watched_supervisor_is_followed_across_its_incarnations_until_it_is_gone() {
    tokio::time::pause();
    let nested = SupervisorRef::new();
    let worker = Mailbox::new(4);
    let (spec, status) = SupervisorSpec::new(RestartConfig::default())
        .child(ChildSpec::actor("worker", &worker, |_| Ok(Api)))
        .with_status();
    assert_eq!(status.get().state, ChildState::Starting);
    assert_eq!(status.get().starts, 0);
    let child = ChildSpec::supervisor("nested", spec, &nested).unwrap();
    let root = Root::start(
        "host",
        SupervisorSpec::new(host_policy(5)).child(child),
        logger(),
        Metrics::unregistered(),
    )
    .unwrap();
    let running = status
        .wait_for(|s| s.state == ChildState::Started)
        .await
        .unwrap();
    assert_eq!((running.starts, running.last_exit), (1, None));
    assert!(worker.is_running());

    // It panics: failed, with nothing left running, until its parent
    // starts it again.
    let answer = nested
        .mailbox()
        .call(|_, _| -> () { panic!("injected") })
        .await;
    assert!(answer.is_err());
    let failed = status.get();
    assert_eq!(failed.state, ChildState::Failed);
    assert_eq!(
        failed.last_exit,
        Some(Exit::Failed(
            "the supervisor ended without shutting down: it panicked or was killed".to_owned()
        ))
    );
    assert!(!worker.is_running());
    let again = status
        .wait_for(|s| s.state == ChildState::Started)
        .await
        .unwrap();
    assert_eq!(again.starts, 2);
    assert!(!status.is_gone());

    // Its tree stops: it stops cleanly, and nothing can start it again.
    assert!(root.shutdown());
    root.wait().await.unwrap();
    let last = status.gone().await;
    assert_eq!(last.state, ChildState::Stopped);
    assert_eq!(last.last_exit, Some(Exit::Done));
    assert!(status.is_gone());
    assert_eq!(
        status.wait_for(|s| s.state == ChildState::Started).await,
        Err(last)
    );
}

#[test]
fn the_handles_calls_can_be_awaited_on_any_task() {
    fn sendable<F: Future + Send>(_: F) {}
    fn calls(muster: Muster) {
        let tag = server(0);
        let model = ModelUuid::from_u128(1);
        let agent = unit(1);
        sendable(
            muster
                .presence()
                .connect(&tag, &model, &agent, 1, false, ""),
        );
        sendable(muster.presence().connections());
        sendable(muster.presence().update_server(&tag, Vec::new()));
        sendable(muster.machines().machines());
        sendable(muster.machines().machine(&tag));
        sendable(muster.gateway());
        sendable(muster.credential_valid(true));
        sendable(muster.report());
        sendable(muster.wait());
    }
    let _ = calls;
}
