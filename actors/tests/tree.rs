//! The whole tree through the host's handle, on the simulated cloud and a
//! paused clock: convergence at scale, batching under the rate limit, and a
//! day of faults.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use muster::clock::ManualClock;
use muster::error::ErrorKind;
use muster::model::Life;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::presence::Recorder;
use muster::provider::{Address, AddressScope};
use muster::sim::{FaultConfig, Sim, SimConfig};
use muster_actors::{Muster, MusterConfig, SendError};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;
use support::{minutes, start_tree};
use tokio::time::{Instant, sleep, sleep_until};

fn wall_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

/// Every live machine muster polls shows what the cloud holds, and the
/// model recorded the same.
async fn assert_truth(muster: &Muster, sim: &Sim, tags: &[MachineTag]) {
    for tag in tags {
        let truth = sim.provider_view(tag).expect("a provisioned machine");
        let seen = muster.machines().machine(tag).await.unwrap();
        let seen = seen.unwrap_or_else(|| panic!("{tag} is tracked"));
        let status = seen.instance_status.as_ref().map(|s| &s.status);
        assert_eq!(status, Some(&truth.status.status), "{tag}");
        assert_eq!(seen.addresses, truth.addresses, "{tag}");
        assert!(
            sim.in_sync(tag),
            "the model holds the cloud's truth for {tag}"
        );
    }
}

#[actix::test]
async fn a_thousand_machines_booting_at_random_times_all_settle_on_the_clouds_truth() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        seed: 7,
        ..SimConfig::default()
    })
    .unwrap();
    let tags: Vec<MachineTag> = (0..1_000).map(|_| sim.add_machine()).collect();
    let (muster, _registry) = start_tree(&sim, &MusterConfig::default(), wall_clock());

    // The provisioner gets to each machine at a random moment of the first
    // ten minutes.
    let mut rng = StdRng::seed_from_u64(1);
    let mut order: Vec<(Duration, &MachineTag)> = tags
        .iter()
        .map(|tag| (Duration::from_millis(rng.random_range(0..600_000)), tag))
        .collect();
    order.sort();
    let began = Instant::now();
    for (at, tag) in order {
        sleep_until(began + at).await;
        sim.provision(tag).unwrap();
    }
    sleep(minutes(20)).await;

    let states = muster.machines().machines().await.unwrap();
    assert_eq!(states.len(), 1_000);
    assert!(states.iter().all(|s| s.phase == Some(Phase::Long)));
    assert_truth(&muster, &sim, &tags).await;
    let counters = sim.counters();
    let polls: u64 = states.iter().map(|s| s.polls).sum();
    assert!(counters.instances.max_ids <= 100);
    assert!(
        counters.instances.calls * 5 < polls,
        "{} instance calls for {polls} polls",
        counters.instances.calls
    );
}

#[actix::test]
async fn machines_due_together_share_calls_and_the_rate_limit_holds() {
    tokio::time::pause();
    let config = MusterConfig::default();
    let (burst, rate) = (config.gateway.burst, config.gateway.calls_per_second as u32);
    // The cloud throttles past burst + rate - 1 calls in a second: the most
    // the gateway's pacing lets through.
    let sim = Sim::new(SimConfig {
        faults: FaultConfig {
            max_calls_per_second: Some(burst + rate - 1),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    for _ in 0..1_000 {
        sim.add_provisioned_machine();
    }
    let (muster, _registry) = start_tree(&sim, &config, wall_clock());

    // Every poller falls due 3 s after it started, all at once.
    sleep(Duration::from_secs(8)).await;
    let counters = sim.counters();
    let max_batch = config.gateway.max_batch as u64;
    let calls = 1_000_u64.div_ceil(max_batch);
    assert_eq!(counters.instances.calls, calls, "{counters:?}");
    assert_eq!(counters.instances.ids, 1_000);
    assert_eq!(counters.network_interfaces.calls, calls);

    sleep(minutes(60)).await;
    let counters = sim.counters();
    assert_eq!(counters.errors_of(ErrorKind::Throttled), 0, "{counters:?}");
    let states = muster.machines().machines().await.unwrap();
    assert!(states.iter().all(|s| s.phase == Some(Phase::Long)));
    // An hour of long polls for 1,000 machines: a handful of calls each
    // round instead of one per machine.
    let polls: u64 = states.iter().map(|s| s.polls).sum();
    assert!(
        counters.instances.calls * 50 < polls,
        "{counters:?} for {polls} polls"
    );
}

/// The presence traffic of the soak test, applied both through the handle
/// and to a plain `Recorder`, which says what the actors must hold.
struct Traffic {
    rng: StdRng,
    expected: Recorder,
    clock: Arc<ManualClock>,
    next_id: u64,
    open: Vec<(MachineTag, u64)>,
}

impl Traffic {
    fn servers() -> [MachineTag; 3] {
        ["machine-100", "machine-101", "machine-102"].map(|s| s.parse().unwrap())
    }

    async fn step(&mut self, muster: &Muster) {
        let presence = muster.presence();
        self.clock.advance(Duration::from_secs(1));
        let roll = self.rng.random_range(0..10);
        if roll < 5 || self.open.is_empty() {
            let server = Self::servers().choose(&mut self.rng).unwrap().clone();
            let model = ModelUuid::from_u128(self.rng.random_range(0..4));
            let agent: AgentTag = format!("unit-app-{}", self.next_id % 50).parse().unwrap();
            let id = self.next_id;
            self.next_id += 1;
            presence
                .connect(&server, &model, &agent, id, false, "")
                .await
                .unwrap();
            self.expected
                .connect(&server, &model, &agent, id, false, "");
            self.open.push((server, id));
        } else if roll < 8 {
            let (server, id) = self.open.choose(&mut self.rng).unwrap().clone();
            presence.activity(&server, id).await.unwrap();
            self.expected.activity(&server, id);
        } else {
            let at = self.rng.random_range(0..self.open.len());
            let (server, id) = self.open.swap_remove(at);
            presence.disconnect(&server, id).await.unwrap();
            self.expected.disconnect(&server, id);
        }
    }

    /// A server goes away and comes back: its agents are missing, then its
    /// snapshot makes them alive again.
    async fn server_bounces(&mut self, muster: &Muster, server: &MachineTag) {
        let presence = muster.presence();
        presence.server_down(server).await.unwrap();
        self.expected.server_down(server);
        let snapshot = self.expected.connections().for_server(server).values();
        presence
            .update_server(server, snapshot.clone())
            .await
            .unwrap();
        self.expected.update_server(server, snapshot).unwrap();
    }
}

/// The `restarts.failure` counts of a supervisor's children in the report.
fn failures(report: &Json, supervisor: &str) -> u64 {
    report["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == supervisor)
        .map(|s| {
            s["report"]["children"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|c| c["dynamic"] == true)
                .map(|c| c["restarts"]["failure"].as_u64().unwrap())
                .sum()
        })
        .unwrap()
}

fn metric(text: &str, prefix: &str) -> u64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no {prefix} in\n{text}")) as u64
}

#[actix::test]
async fn a_day_of_faults_ends_with_the_truth_and_every_restart_accounted_for() {
    tokio::time::pause();
    let faults = FaultConfig {
        error_rate: 0.2,
        throttle_rate: 0.05,
        retry_after: Some(Duration::from_secs(2)),
        partial_rate: 0.05,
        latency: Duration::from_millis(300),
        ..FaultConfig::default()
    };
    let sim = Sim::new(SimConfig {
        seed: 2026,
        faults,
        ..SimConfig::default()
    })
    .unwrap();
    let clock = wall_clock();
    let config = MusterConfig::default();
    let (muster, registry) = start_tree(&sim, &config, clock.clone());
    muster.presence().enable().await.unwrap();
    let mut traffic = Traffic {
        rng: StdRng::seed_from_u64(9),
        expected: Recorder::new(clock.clone()),
        clock,
        next_id: 0,
        open: Vec::new(),
    };
    traffic.expected.enable();

    let mut rng = StdRng::seed_from_u64(3);
    let mut live: Vec<MachineTag> = Vec::new();
    let mut panicked: Vec<MachineTag> = Vec::new();
    let mut presence_panics = 0u64;
    let began = Instant::now();
    // One step a minute of virtual time for a day.
    for minute in 0..24 * 60u64 {
        sleep_until(began + minutes(minute)).await;
        for _ in 0..5 {
            traffic.step(&muster).await;
        }
        if minute < 600 && minute % 3 == 0 {
            live.push(sim.add_provisioned_machine().0);
        }
        match minute {
            360 => sim.revoke_credential(),
            420 => sim.restore_credential(),
            m if m % 240 == 120 => {
                let server = Traffic::servers()[1].clone();
                traffic.server_bounces(&muster, &server).await;
            }
            _ => {}
        }
        if minute % 37 == 0 && live.len() > 10 {
            // The cloud and the operators change things under muster.
            let tag = live.choose(&mut rng).unwrap().clone();
            match rng.random_range(0..4) {
                0 => sim
                    .set_addresses(
                        &tag,
                        vec![Address::new(
                            format!("10.9.{minute}.1"),
                            AddressScope::CloudLocal,
                        )],
                    )
                    .unwrap(),
                1 => sim.restart_agent(&tag).unwrap(),
                2 => {
                    sim.set_life(&tag, Life::Dead).unwrap();
                    live.retain(|t| *t != tag);
                }
                _ => sim.stop_instance(&tag).unwrap(),
            }
        }
        if minute % 29 == 0 && minute > 0 {
            let tag = live.choose(&mut rng).unwrap();
            if let Some(poller) = muster.machines().poller(tag).await.unwrap() {
                let crashed = poller
                    .call(|_, _| -> () { panic!("injected poller panic") })
                    .await;
                if matches!(crashed, Err(SendError::Lost { .. })) {
                    panicked.push(tag.clone());
                }
            }
        }
        if minute % 181 == 90 {
            let server = Traffic::servers()[0].clone();
            let mailbox = muster
                .presence()
                .server_mailbox(&server)
                .await
                .unwrap()
                .unwrap();
            let crashed = mailbox
                .call(|_, _| -> () { panic!("injected presence panic") })
                .await;
            assert!(
                matches!(crashed, Err(SendError::Lost { .. })),
                "{crashed:?}"
            );
            presence_panics += 1;
            // Traffic while that server's actor waits to restart.
            for _ in 0..30 {
                traffic.step(&muster).await;
            }
        }
        if minute == 23 * 60 {
            // The faults end an hour before the check, so that every
            // machine has had its polls answered since the last change.
            sim.set_faults(FaultConfig::default()).unwrap();
        }
    }

    assert!(
        sim.counters().errors_of(ErrorKind::Other) > 100,
        "faults were injected"
    );
    assert_eq!(sim.counters().credential_invalidations, 1);
    assert_truth(&muster, &sim, &live).await;
    let dead_still_tracked = muster
        .machines()
        .machines()
        .await
        .unwrap()
        .iter()
        .filter(|s| !live.contains(&s.tag))
        .count();
    assert_eq!(dead_still_tracked, 0, "dead machines are no longer polled");

    // No presence entry lost, none invented, every last-seen time right.
    let held = muster.presence().connections().await.unwrap();
    assert_eq!(held.values(), traffic.expected.connections().values());
    assert!(held.count() > 100);

    // Every injected panic is a restart in the report and in the metrics.
    // A dead machine's poller leaves the report; its counts stay in its
    // group's metrics.
    let poller_panics = panicked.len() as u64;
    let of_live = panicked.iter().filter(|tag| live.contains(tag)).count() as u64;
    assert!(poller_panics > 20 && presence_panics >= 7);
    let report = serde_json::to_value(muster.report().await.unwrap()).unwrap();
    assert_eq!(failures(&report, "machines"), of_live);
    assert_eq!(failures(&report, "presence"), presence_panics);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    let restarts = |group: &str| {
        metric(
            &text,
            &format!("muster_child_restarts_total{{child=\"root/{group}\",reason=\"failure\"}}"),
        )
    };
    assert_eq!(restarts("machines/pollers"), poller_panics, "{text}");
    assert_eq!(restarts("presence/servers"), presence_panics);
}
