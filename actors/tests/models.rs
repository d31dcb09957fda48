//! Many models in one tree (docs/spec.md §10): a gateway per cloud
//! account whose batches span its models, a machines subtree per model,
//! and a denied credential or a failing model that leaves the others
//! polling. On tokio's paused clock.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;
use futures::stream;
use muster::clock::ManualClock;
use muster::error::PollError;
use muster::model::{Machine, MachineBatches, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::sim::{Sim, SimAccount, SimConfig};
use muster_actors::host::{FleetError, GATEWAYS, MODELS};
use muster_actors::{CloudAccount, Fleet, ModelBackends, Muster, MusterConfig, StartError};
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio::time::sleep;

use support::{logger, minutes, secs};

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

fn uuid(n: u128) -> ModelUuid {
    ModelUuid::from_u128(n)
}

fn model(n: u128, account: &str, sim: &Sim) -> ModelBackends {
    ModelBackends {
        uuid: uuid(n),
        name: Some(format!("model-{n}")),
        account: account.to_owned(),
        facade: sim.facade(),
        credentials: sim.credential_api(),
    }
}

fn account(name: &str, environ: Arc<dyn muster::provider::Environ>) -> CloudAccount {
    CloudAccount {
        name: name.to_owned(),
        environ,
    }
}

fn start(fleet: Fleet) -> (Muster, Registry) {
    let mut registry = Registry::default();
    let muster = Muster::start(&MusterConfig::default(), fleet, logger(), &mut registry)
        .expect("the tree starts");
    (muster, registry)
}

/// The polls of every machine of `model` so far.
async fn polls(muster: &Muster, n: u128) -> u64 {
    let machines = muster.model(&uuid(n)).unwrap().machines();
    machines
        .machines()
        .await
        .unwrap()
        .iter()
        .map(|m| m.polls)
        .sum()
}

/// The report's child at `path` (names below the root).
fn child<'a>(report: &'a Value, path: &[&str]) -> &'a Value {
    let mut at = report;
    for name in path {
        let children = at
            .get("children")
            .or_else(|| at.get("report").and_then(|r| r.get("children")))
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("no children at {name}: {at}"));
        at = children
            .iter()
            .find(|c| c["name"] == *name)
            .unwrap_or_else(|| panic!("no child {name}"));
    }
    at
}

fn failures(child: &Value) -> u64 {
    child["restarts"]["failure"].as_u64().unwrap()
}

#[actix::test]
async fn models_of_one_account_share_its_batches_and_each_settles() {
    tokio::time::pause();
    let mut shared = SimAccount::new();
    let sims: Vec<Sim> = (0..3)
        .map(|_| shared.add_model(SimConfig::default()).unwrap())
        .collect();
    for sim in &sims {
        for _ in 0..50 {
            sim.add_provisioned_machine();
        }
    }
    let fleet = Fleet {
        accounts: vec![account("shared", shared.environ())],
        models: (0..3)
            .map(|n| model(n + 1, "shared", &sims[n as usize]))
            .collect(),
        clock: clock(),
    };
    let (muster, _registry) = start(fleet);

    // Every poller falls due 3 s after it started, all 150 together: two
    // calls of at most 100 ids, where batching by model would take three.
    sleep(secs(8)).await;
    let gateway = muster.gateway().await.unwrap();
    assert_eq!(gateway.calls["instances"], 2, "{gateway:?}");
    assert_eq!(gateway.ids["instances"], 150);
    assert_eq!(muster.gateways().await.unwrap().len(), 1);

    sleep(minutes(30)).await;
    let all = muster.machines().machines().await.unwrap();
    assert_eq!(all.len(), 150);
    assert!(all.iter().all(|m| m.phase == Some(Phase::Long)), "{all:?}");
    // Each model's handle answers its own machines, named by its model.
    let listed: Vec<_> = muster.models().iter().map(|m| m.uuid).collect();
    assert_eq!(listed, [uuid(1), uuid(2), uuid(3)]);
    for n in 1..=3 {
        let own = muster.model(&uuid(n)).unwrap().machines().machines().await;
        let own = own.unwrap();
        assert_eq!(own.len(), 50);
        assert!(own.iter().all(|m| m.model == Some(uuid(n))));
    }
    assert!(muster.model(&uuid(9)).is_none());
    // The tree: a gateway per account, a subtree per model.
    let report = serde_json::to_value(muster.report().await.unwrap()).unwrap();
    let names: Vec<&str> = report["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [GATEWAYS, "presence", MODELS]);
    child(&report, &[GATEWAYS, "shared"]);
    child(&report, &[MODELS, &uuid(2).to_string(), "watcher"]);
    muster.shutdown();
}

#[actix::test]
async fn a_denied_credential_pauses_its_account_while_the_others_poll() {
    tokio::time::pause();
    let east = Sim::new(SimConfig::default()).unwrap();
    let mut west = SimAccount::new();
    let b = west.add_model(SimConfig::default()).unwrap();
    let c = west.add_model(SimConfig::default()).unwrap();
    for sim in [&east, &b, &c] {
        for _ in 0..5 {
            sim.add_provisioned_machine();
        }
    }
    east.revoke_credential();
    let fleet = Fleet {
        accounts: vec![
            account("east", east.environ()),
            account("west", west.environ()),
        ],
        models: vec![
            model(1, "east", &east),
            model(2, "west", &b),
            model(3, "west", &c),
        ],
        clock: clock(),
    };
    let (muster, _registry) = start(fleet);
    sleep(secs(10)).await;
    // The east model's credential was invalidated once; its polls wait.
    assert_eq!(east.invalidation_reasons().len(), 1);
    let denied = muster.model(&uuid(1)).unwrap().gateway().await.unwrap();
    assert!(denied.credential_paused);
    assert_eq!(denied.models.len(), 1);
    assert!(denied.models[0].paused);
    assert_eq!(denied.models[0].queued, 5);
    let paused_polls = polls(&muster, 1).await;
    let (b_polls, c_polls) = (polls(&muster, 2).await, polls(&muster, 3).await);

    // An hour on, the other account's models have polled on and settled;
    // the east model has not polled at all meanwhile.
    sleep(minutes(60)).await;
    assert_eq!(polls(&muster, 1).await, paused_polls);
    assert!(polls(&muster, 2).await > b_polls && polls(&muster, 3).await > c_polls);
    for n in [2, 3] {
        let machines = muster.model(&uuid(n)).unwrap().machines();
        let machines = machines.machines().await.unwrap();
        assert!(machines.iter().all(|m| m.phase == Some(Phase::Long)));
    }
    assert_eq!(east.invalidation_reasons().len(), 1, "invalidated once");
    assert!(b.invalidation_reasons().is_empty() && c.invalidation_reasons().is_empty());

    // The credential restored, the east model's polls go and settle.
    east.restore_credential();
    sleep(minutes(30)).await;
    let machines = muster.model(&uuid(1)).unwrap().machines();
    let machines = machines.machines().await.unwrap();
    assert!(
        machines.iter().all(|m| m.phase == Some(Phase::Long)),
        "{machines:?}"
    );
    assert!(
        !muster
            .model(&uuid(1))
            .unwrap()
            .gateway()
            .await
            .unwrap()
            .credential_paused
    );
    muster.shutdown();
}

#[actix::test]
async fn a_denial_reaches_every_model_of_the_account_once_and_each_resumes_on_its_own() {
    tokio::time::pause();
    let mut shared = SimAccount::new();
    let b = shared.add_model(SimConfig::default()).unwrap();
    let c = shared.add_model(SimConfig::default()).unwrap();
    for sim in [&b, &c] {
        for _ in 0..5 {
            sim.add_provisioned_machine();
        }
    }
    // The account's credential is denied: the cloud refuses b's part of
    // every call, and so the whole call.
    b.revoke_credential();
    let fleet = Fleet {
        accounts: vec![account("shared", shared.environ())],
        models: vec![model(2, "shared", &b), model(3, "shared", &c)],
        clock: clock(),
    };
    let (muster, _registry) = start(fleet);
    sleep(secs(10)).await;
    assert_eq!(b.invalidation_reasons().len(), 1);
    assert_eq!(c.invalidation_reasons().len(), 1);
    let report = muster.gateway().await.unwrap();
    assert_eq!(report.credential_invalidations, 2);
    assert!(report.models.iter().all(|m| m.paused), "{report:?}");

    // The host says c's credential is valid again: c alone resumes, and
    // its calls, holding only its own ids, are answered.
    let c_polls = polls(&muster, 3).await;
    muster
        .model(&uuid(3))
        .unwrap()
        .credential_valid(true)
        .await
        .unwrap();
    sleep(minutes(30)).await;
    assert!(polls(&muster, 3).await > c_polls);
    let report = muster.gateway().await.unwrap();
    let paused: Vec<_> = report
        .models
        .iter()
        .filter(|m| m.paused)
        .map(|m| m.model)
        .collect();
    assert_eq!(paused, [Some(uuid(2))]);
    assert_eq!(b.invalidation_reasons().len(), 1, "not invalidated again");
    muster.shutdown();
}

/// A model facade whose machine watch always fails at once.
struct BrokenWatch;

impl ModelFacade for BrokenWatch {
    fn watch_model_machines(&self) -> MachineBatches {
        Box::pin(stream::iter([Err(PollError::other(
            "watching machines",
            "the API server is gone",
        ))]))
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        let tag = tag.clone();
        Box::pin(async move { Err(PollError::NotFound(tag.to_string())) })
    }
}

#[actix::test]
async fn a_model_that_keeps_failing_restarts_alone() {
    tokio::time::pause();
    let broken = Sim::new(SimConfig::default()).unwrap();
    let healthy = Sim::new(SimConfig::default()).unwrap();
    for _ in 0..5 {
        healthy.add_provisioned_machine();
    }
    let mut failing = model(1, "one", &broken);
    failing.facade = Arc::new(BrokenWatch);
    let fleet = Fleet {
        accounts: vec![
            account("one", broken.environ()),
            account("two", healthy.environ()),
        ],
        models: vec![failing, model(2, "two", &healthy)],
        clock: clock(),
    };
    let (muster, _registry) = start(fleet);
    sleep(minutes(30)).await;
    let report = serde_json::to_value(muster.report().await.unwrap()).unwrap();
    let broken_watcher = child(&report, &[MODELS, &uuid(1).to_string(), "watcher"]);
    assert!(failures(broken_watcher) > 5, "{broken_watcher}");
    // Neither the healthy model nor the supervisor of the models noticed.
    assert_eq!(failures(child(&report, &[MODELS])), 0);
    assert_eq!(failures(child(&report, &[MODELS, &uuid(2).to_string()])), 0);
    assert_eq!(
        failures(child(&report, &[MODELS, &uuid(2).to_string(), "watcher"])),
        0
    );
    let machines = muster.model(&uuid(2)).unwrap().machines();
    let machines = machines.machines().await.unwrap();
    assert_eq!(machines.len(), 5);
    assert!(machines.iter().all(|m| m.phase == Some(Phase::Long)));
    muster.shutdown();
}

#[actix::test]
async fn a_fleet_that_makes_no_tree_is_refused_naming_why() {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let base = || Fleet {
        accounts: vec![account("a", sim.environ())],
        models: vec![model(1, "a", &sim)],
        clock: clock(),
    };
    let mut cases: Vec<(Fleet, FleetError)> = Vec::new();
    let mut f = base();
    f.models.clear();
    cases.push((f, FleetError::NoModels));
    let mut f = base();
    f.models.push(model(1, "a", &sim));
    cases.push((f, FleetError::DuplicateModel(uuid(1))));
    let mut f = base();
    f.accounts.push(account("a", sim.environ()));
    cases.push((f, FleetError::DuplicateAccount("a".into())));
    let mut f = base();
    f.models.push(model(2, "nowhere", &sim));
    cases.push((
        f,
        FleetError::UnknownAccount {
            model: uuid(2),
            account: "nowhere".into(),
        },
    ));
    let mut f = base();
    f.accounts.push(account("idle", sim.environ()));
    cases.push((f, FleetError::IdleAccount("idle".into())));
    let mut f = base();
    f.accounts[0].name = "a/b".into();
    f.models[0].account = "a/b".into();
    cases.push((f, FleetError::BadAccountName("a/b".into())));
    for (fleet, expected) in cases {
        let mut registry = Registry::default();
        let refused = Muster::start(&MusterConfig::default(), fleet, logger(), &mut registry);
        match refused {
            Err(StartError::Fleet(error)) => {
                assert_eq!(error, expected);
                assert!(
                    StartError::Fleet(error.clone())
                        .to_string()
                        .starts_with("invalid fleet: "),
                );
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("started with {expected}"),
        }
        // Nothing was registered for a refused fleet.
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert_eq!(text.trim(), "# EOF");
    }
}
