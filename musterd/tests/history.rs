//! The dashboard's history: the sampler on tokio's paused clock (wall-clock
//! times from a manual clock) against a real tree on the simulated cloud,
//! and `/api/history` served in-process.

mod support;

use std::sync::Arc;
use std::time::Duration;

use actix_web::http::StatusCode;
use muster::clock::ManualClock;
use muster::names::ModelUuid;
use muster::sim::{FaultConfig, SimConfig};
use muster_actors::Metrics;
use muster_http::history::{EVERY, KEEP, MAILBOXES, Sample, Sampler};

use support::inprocess::{agent, bad, connect_three, get, host, server, service, start_time};

fn sum(samples: &[Sample], pick: impl Fn(&Sample) -> f64) -> f64 {
    samples.iter().map(pick).sum()
}

#[actix_web::test]
async fn the_sampler_keeps_the_last_30_minutes_every_2_seconds() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut history = None;
    let tree = host(
        12,
        SimConfig::default(),
        clock.clone(),
        |muster, metrics| {
            let (child, filled) =
                Sampler::new(muster.clone(), metrics.clone(), clock.clone()).child();
            history = Some(filled);
            vec![child]
        },
    )
    .await;
    let (muster, history) = (tree.muster.clone(), history.unwrap());
    connect_three(&muster, ModelUuid::from_u128(7)).await;

    // The first sample is taken as the tree starts.
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
    // Rates need a sample before.
    assert_eq!(first.provider, None);
    assert_eq!(first.restarts, None);
    let children: Vec<&str> = first.mailboxes.iter().map(|m| &*m.child).collect();
    assert!(children.contains(&"root/muster/gateway"), "{children:?}");
    assert!(children.len() <= MAILBOXES);

    // A minute later: 30 more samples, each stamped by the clock.
    for _ in 0..30 {
        clock.advance(EVERY);
        tokio::time::sleep(EVERY).await;
    }
    let second = &history.since(Some(0))[0];
    let agents = second.agents.unwrap();
    assert_eq!((agents.alive, agents.missing), (2, 1));
    let phases = second.machines.unwrap();
    assert_eq!((phases.short, phases.long, phases.manual), (12, 0, 1));
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
    tree.root.shutdown();
    tree.root.wait().await.unwrap();
    tokio::time::sleep(EVERY * 10).await;
    assert_eq!(history.latest(), Some(latest));
}

#[actix_web::test]
async fn rates_are_per_second_and_restarts_per_interval() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    // A cloud that fails and throttles now and then, so that every rate
    // moves.
    // Its instances stay pending, so that their machines keep being
    // polled every minute at most.
    let faulty = SimConfig {
        pending_for: Duration::from_secs(86_400),
        faults: FaultConfig {
            error_rate: 0.3,
            throttle_rate: 0.3,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    };
    let tree = host(20, faulty, clock.clone(), |_, _| Vec::new()).await;
    let sampler = Sampler::new(tree.muster.clone(), tree.metrics.clone(), clock);
    let history = sampler.history();
    // The sampler reads the counters before anything else runs.
    let before = tree.muster.provider_totals();
    let first = tokio::time::Instant::now();
    sampler.sample().await;
    // Two failures of muster, each restarted by the host.
    for _ in 0..2 {
        tree.root.supervisor().kill("muster").await.unwrap();
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    tokio::time::sleep_until(first + Duration::from_secs(1800)).await;
    let after = tree.muster.provider_totals();
    sampler.sample().await;

    let samples = history.since(None);
    let provider = samples[1].provider.unwrap();
    assert!(
        after.calls > before.calls && after.errors > before.errors,
        "{after:?}"
    );
    assert!(after.throttles > before.throttles, "{after:?}");
    // Per second of the time between the samples (tokio's timer rounds a
    // wake-up to the millisecond).
    let near = |rate: f64, now: u64, then: u64| {
        let expected = (now - then) as f64 / 1800.0;
        (rate - expected).abs() < expected * 0.001
    };
    assert!(
        near(provider.calls, after.calls, before.calls),
        "{provider:?}"
    );
    assert!(
        near(provider.errors, after.errors, before.errors),
        "{provider:?}"
    );
    assert!(
        near(provider.throttles, after.throttles, before.throttles),
        "{provider:?}"
    );
    // The two failures, and nothing else.
    assert_eq!(samples[1].restarts, Some(2));

    // Two samples at one instant: no rate rather than a division by zero.
    sampler.sample().await;
    let samples = history.since(None);
    assert_eq!(samples[2].provider, None);
    assert_eq!(samples[2].restarts, Some(0));
}

#[actix_web::test]
async fn a_sample_sees_the_mailboxes_as_they_were_when_it_was_taken() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let tree = host(0, SimConfig::default(), clock.clone(), |_, _| Vec::new()).await;
    let muster = tree.muster.clone();
    let sampler = Sampler::new(muster.clone(), tree.metrics.clone(), clock);
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
            .find(|m| &*m.child == "root/muster/presence/router")
            .map(|m| m.depth)
    };
    let samples = history.since(None);
    assert_eq!(depth(&samples[0]), Some(500), "{:?}", samples[0].mailboxes);
    assert_eq!(
        samples[0].mailboxes[0].child.as_ref(),
        "root/muster/presence/router"
    );
    // The sample's own question to presence was answered after the 500.
    assert_eq!(samples[0].agents.unwrap().alive, 500);
    tokio::time::sleep(EVERY).await;
    sampler.sample().await;
    assert_eq!(depth(&history.since(None)[1]), Some(0));
    tree.root.shutdown();
}

/// The actix-web test service of the HTTP surface.
#[actix_web::test]
async fn the_history_endpoint_answers_the_samples_after_the_one_asked() {
    tokio::time::pause();
    let clock = Arc::new(ManualClock::new(start_time()));
    let tree = host(2, SimConfig::default(), clock.clone(), |_, _| Vec::new()).await;
    let (muster, registry) = (tree.muster.clone(), tree.registry);
    connect_three(&muster, ModelUuid::from_u128(7)).await;
    let sampler = Sampler::new(muster.clone(), Metrics::unregistered(), clock.clone());
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
    tree.root.shutdown();
}
