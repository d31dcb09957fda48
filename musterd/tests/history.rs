//! The dashboard's history: the sampler on tokio's paused clock (wall-clock
//! times from a manual clock) against a real tree on the simulated cloud,
//! and `/api/history` served in-process.

mod support;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use muster::clock::ManualClock;
use muster::names::ModelUuid;
use muster_http::history::{EVERY, KEEP, MAILBOXES, Sample, Sampler};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use support::inprocess::{agent, bad, connect_three, get, server, service, start_time, tree};

fn sum(samples: &[Sample], pick: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(pick).sum()
}

#[actix_web::test]
async fn the_sampler_keeps_the_last_30_minutes_every_2_seconds() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (muster, _sim, registry) = tree(12, clock.clone()).await;
    connect_three(&muster, ModelUuid::from_u128(7)).await;

    let history = Sampler::new(muster.clone(), Arc::new(registry), clock.clone()).spawn();
    // The first sample is taken at once.
    tokio::time::sleep(Duration::from_millis(1)).await;
    let first = history.since(None);
    assert_eq!(first.len(), 1);
    let first = &first[0];
    assert_eq!(first.seq, 0);
    assert_eq!(
        first.at,
        start_time(),
        "wall-clock time from the clock given"
    );
    let agents = first.agents.unwrap();
    assert_eq!((agents.alive, agents.missing), (2, 1));
    let phases = first.machines.unwrap();
    assert_eq!((phases.short, phases.long, phases.manual), (12, 0, 1));
    // Rates need a sample before.
    assert_eq!(first.provider, None);
    assert_eq!(first.restarts, None);
    let children: Vec<&str> = first.mailboxes.iter().map(|m| &*m.child).collect();
    assert!(children.contains(&"root/gateway"), "{children:?}");
    assert!(children.len() <= MAILBOXES);

    // A minute later: 30 more samples, each stamped by the clock.
    for _ in 0..30 {
        clock.advance(EVERY);
        tokio::time::sleep(EVERY).await;
    }
    let samples = history.since(None);
    assert_eq!(samples.len(), 31);
    assert_eq!(
        samples.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (0..31).collect::<Vec<_>>()
    );
    assert_eq!(samples[30].at, start_time() + EVERY * 30);
    assert!(samples[1..].iter().all(|s| s.provider.is_some()));
    assert!(samples[1..].iter().all(|s| s.restarts == Some(0)));
    // The pollers called the provider, and the sim has no faults.
    let calls = sum(&samples[1..], |s| {
        s.provider.unwrap().calls * EVERY.as_secs_f64()
    });
    assert!(calls >= 1.0, "{calls}");
    assert_eq!(sum(&samples[1..], |s| s.provider.unwrap().errors), 0.0);
    assert_eq!(sum(&samples[1..], |s| s.provider.unwrap().throttles), 0.0);
    let seen = muster.gateway().await.unwrap().calls.values().sum::<u64>() as f64;
    assert!(calls <= seen, "{calls} counted of {seen} made");

    // Thirty minutes on, the ring holds 900 samples and no more.
    tokio::time::sleep(EVERY * KEEP as u32).await;
    assert_eq!(history.len(), KEEP);
    let latest = history.latest().unwrap();
    assert_eq!(latest, 30 + KEEP as u64);
    assert_eq!(history.since(None)[0].seq, latest + 1 - KEEP as u64);

    // The sampler stops with the tree.
    muster.shutdown();
    muster.wait().await.unwrap();
    tokio::time::sleep(EVERY * 10).await;
    assert_eq!(history.latest(), Some(latest));
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RestartLabel {
    child: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChildLabel {
    child: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: String,
}

#[actix_web::test]
async fn rates_are_per_second_and_restarts_per_interval() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (muster, _sim, _tree_registry) = tree(0, clock.clone()).await;
    // Counters under the names the tree uses, moved by the test alone.
    let mut registry = Registry::default();
    let calls = Counter::<u64>::default();
    let errors = Family::<KindLabel, Counter>::default();
    let throttles = Counter::<u64>::default();
    let restarts = Family::<RestartLabel, Counter>::default();
    let depth = Family::<ChildLabel, Gauge>::default();
    let provider = registry.sub_registry_with_prefix("muster_provider");
    provider.register("calls", "calls", calls.clone());
    provider.register("errors", "errors", errors.clone());
    provider.register("throttles", "throttles", throttles.clone());
    registry.register("muster_child_restarts", "restarts", restarts.clone());
    registry.register("muster_mailbox_depth", "depth", depth.clone());
    let restart = |reason: &str| RestartLabel {
        child: "root/machines/pollers".into(),
        reason: reason.into(),
    };

    let mut sampler = Sampler::new(muster.clone(), Arc::new(registry), clock);
    let history = sampler.history();
    calls.inc_by(1000);
    restarts.get_or_create(&restart("failure")).inc_by(9);
    let first = tokio::time::Instant::now();
    sampler.sample().await;

    calls.inc_by(40);
    errors
        .get_or_create(&KindLabel {
            kind: "timeout".into(),
        })
        .inc_by(3);
    errors
        .get_or_create(&KindLabel {
            kind: "throttled".into(),
        })
        .inc_by(1);
    throttles.inc_by(2);
    restarts.get_or_create(&restart("failure")).inc_by(2);
    restarts.get_or_create(&restart("bounce")).inc_by(1);
    restarts.get_or_create(&restart("done")).inc_by(50);
    for n in 0..10 {
        depth
            .get_or_create(&ChildLabel {
                child: format!("child-{n}"),
            })
            .set(n * 10);
    }
    // Four seconds from the first sample's start to the second's.
    tokio::time::sleep_until(first + Duration::from_secs(4)).await;
    sampler.sample().await;

    let samples = history.since(None);
    let provider = samples[1].provider.unwrap();
    // Per second of the time between the samples (tokio's timer rounds a
    // wake-up to the millisecond).
    let near = |rate: f64, expected: f64| (rate - expected).abs() < expected * 0.001;
    assert!(near(provider.calls, 10.0), "{provider:?}");
    assert!(near(provider.errors, 1.0), "{provider:?}");
    assert!(near(provider.throttles, 0.5), "{provider:?}");
    // A failure and a bounce restart count; a child done and started
    // again does not.
    assert_eq!(samples[1].restarts, Some(3));
    let deepest: Vec<(&str, u64)> = samples[1]
        .mailboxes
        .iter()
        .map(|m| (&*m.child, m.depth))
        .collect();
    assert_eq!(
        deepest,
        [
            ("child-9", 90),
            ("child-8", 80),
            ("child-7", 70),
            ("child-6", 60),
            ("child-5", 50),
            ("child-4", 40),
            ("child-3", 30),
            ("child-2", 20),
        ]
    );

    // Two samples at one instant: no rate rather than a division by zero.
    sampler.sample().await;
    let samples = history.since(None);
    assert_eq!(samples[2].provider, None);
    assert_eq!(samples[2].restarts, Some(0));
    muster.shutdown();
}

#[actix_web::test]
async fn a_sample_sees_the_mailboxes_as_they_were_when_it_was_taken() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (muster, _sim, registry) = tree(0, clock.clone()).await;
    let mut sampler = Sampler::new(muster.clone(), Arc::new(registry), clock);
    let history = sampler.history();
    // Accepted into the router's mailbox, not yet handled: nothing here
    // yields to the router.
    for id in 0..500 {
        muster
            .presence()
            .connect(
                &server(0),
                &ModelUuid::from_u128(1),
                &agent("unit-app-0"),
                id,
                false,
                "",
            )
            .await
            .unwrap();
    }
    sampler.sample().await;
    let depth = |sample: &Sample| {
        sample
            .mailboxes
            .iter()
            .find(|m| &*m.child == "root/presence/router")
            .map(|m| m.depth)
    };
    let samples = history.since(None);
    assert_eq!(depth(&samples[0]), Some(500), "{:?}", samples[0].mailboxes);
    assert_eq!(
        samples[0].mailboxes[0].child.as_ref(),
        "root/presence/router"
    );
    // The sample's own question to presence was answered after the 500.
    assert_eq!(samples[0].agents.unwrap().alive, 500);
    tokio::time::sleep(EVERY).await;
    sampler.sample().await;
    assert_eq!(depth(&history.since(None)[1]), Some(0));
    muster.shutdown();
}

/// The actix-web test service of the HTTP surface.
#[actix_web::test]
async fn the_history_endpoint_answers_the_samples_after_the_one_asked() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let (muster, _sim, registry) = tree(2, clock.clone()).await;
    connect_three(&muster, ModelUuid::from_u128(7)).await;
    let mut sampler = Sampler::new(muster.clone(), Arc::new(Registry::default()), clock.clone());
    for _ in 0..3 {
        sampler.sample().await;
        clock.advance(EVERY);
        tokio::time::sleep(EVERY).await;
    }
    let app = service(&muster, registry, sampler.history()).await;

    let (status, all) = get(&app, "/api/history").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["every"], "2s");
    assert_eq!(all["keep"], KEEP);
    assert_eq!(all["latest"], 2);
    let samples = all["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 3);
    assert_eq!(samples[0]["at"], "2023-11-14T22:13:20.000Z");
    assert_eq!(samples[2]["at"], "2023-11-14T22:13:24.000Z");
    assert_eq!(samples[0]["agents"]["alive"], 2);
    assert_eq!(samples[0]["agents"]["missing"], 1);
    assert_eq!(samples[0]["machines"]["short"], 2);
    assert_eq!(samples[0]["machines"]["manual"], 1);
    assert!(samples[0]["provider"].is_null());
    assert_eq!(samples[1]["provider"]["calls"], 0.0);
    assert_eq!(samples[1]["restarts"], 0);

    let (_, newer) = get(&app, "/api/history?after=0").await;
    let seqs: Vec<u64> = newer["samples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["seq"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2]);
    let (_, none) = get(&app, "/api/history?after=2").await;
    assert_eq!(none["samples"].as_array().unwrap().len(), 0);
    assert_eq!(none["latest"], 2);

    for value in ["-1", "", "abc", "1.5", "NaN", "1e3"] {
        bad(
            &app,
            &format!("/api/history?after={value}"),
            "after",
            &format!(
                "parameter `after`: {value:?} is not a sample number (a non-negative integer)"
            ),
        )
        .await;
    }
    bad(
        &app,
        "/api/history?after=18446744073709551616",
        "after",
        "parameter `after`: 18446744073709551616 is too large (at most 18446744073709551615)",
    )
    .await;
    muster.shutdown();
}
