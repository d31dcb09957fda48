//! Models polled only while the host holds them (docs/spec.md §11.7): the
//! `held` child of `models` starts and stops each model's subtree as the
//! host's `ModelHolds` say, and a model held again resumes its machines'
//! phases. On tokio's paused clock.

mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use muster::clock::ManualClock;
use muster::names::{MachineTag, ModelUuid};
use muster::poll::Phase;
use muster::sim::{Sim, SimAccount, SimConfig};
use muster_actors::host::{HELD_CHILD, MODELS};
use muster_actors::{
    CloudAccount, Extensions, Fleet, ModelBackends, ModelHolds, Muster, MusterConfig,
};
use prometheus_client::registry::Registry;
use tokio::time::sleep;

use support::{logger, minutes, secs};

fn uuid(n: u128) -> ModelUuid {
    ModelUuid::from_u128(n)
}

/// Two simulated models of one account, five machines each, held by
/// `holds`.
fn start(holds: &ModelHolds) -> (Muster, Registry) {
    let mut account = SimAccount::new();
    let sims: Vec<Sim> = (0..2)
        .map(|_| account.add_model(SimConfig::default()).unwrap())
        .collect();
    for sim in &sims {
        for _ in 0..5 {
            sim.add_provisioned_machine();
        }
    }
    let fleet = Fleet {
        accounts: vec![CloudAccount {
            name: "shared".into(),
            environ: account.environ(),
        }],
        models: sims
            .iter()
            .enumerate()
            .map(|(n, sim)| ModelBackends {
                uuid: uuid(n as u128 + 1),
                name: None,
                account: "shared".into(),
                facade: sim.facade(),
                credentials: sim.credential_api(),
            })
            .collect(),
        clock: Arc::new(ManualClock::new(
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
        )),
    };
    let mut registry = Registry::default();
    let muster = Muster::start_with(
        &MusterConfig::default(),
        fleet,
        Extensions::new().hold_models(holds.clone()),
        logger(),
        &mut registry,
    )
    .expect("the tree starts");
    (muster, registry)
}

/// The polls of every machine of model `n` so far, and their phases.
async fn polls(muster: &Muster, n: u128) -> (u64, Vec<Option<Phase>>) {
    let machines = muster
        .model(&uuid(n))
        .unwrap()
        .machines()
        .machines()
        .await
        .unwrap();
    (
        machines.iter().map(|m| m.polls).sum(),
        machines.iter().map(|m| m.phase).collect(),
    )
}

/// The names of the children of `models` in the tree's report, sorted.
async fn running(muster: &Muster) -> Vec<String> {
    let report = serde_json::to_value(muster.report().await.unwrap()).unwrap();
    let models = report["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == MODELS)
        .unwrap();
    let mut names: Vec<String> = models["report"]["children"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_owned))
        .collect();
    names.sort();
    names
}

#[actix::test]
async fn only_held_models_poll_and_one_held_again_resumes_its_phases() {
    tokio::time::pause();
    let holds = ModelHolds::new();
    let (muster, _registry) = start(&holds);

    // Nothing held: nothing polls.
    sleep(minutes(5)).await;
    assert_eq!(polls(&muster, 1).await.0, 0);
    assert_eq!(polls(&muster, 2).await.0, 0);
    assert_eq!(running(&muster).await, [HELD_CHILD]);

    // Held: its subtree starts and polls until its machines settle; the
    // other model still does not poll.
    assert!(holds.hold(uuid(1)));
    assert!(!holds.hold(uuid(1)), "held once");
    sleep(minutes(30)).await;
    let (settled, phases) = polls(&muster, 1).await;
    assert!(settled > 0);
    assert_eq!(phases, [Some(Phase::Long); 5]);
    assert_eq!(polls(&muster, 2).await.0, 0);
    assert_eq!(running(&muster).await, [&uuid(1).to_string(), HELD_CHILD]);

    // Released: its subtree stops, and nothing of it polls any more.
    assert!(holds.release(&uuid(1)));
    assert!(!holds.release(&uuid(1)), "released once");
    sleep(secs(1)).await;
    assert_eq!(running(&muster).await, [HELD_CHILD]);
    let released = settled;
    sleep(minutes(60)).await;

    // Held again: its machines resume in the long phase where they were,
    // not from the short polls of a machine first seen, and none polled
    // while released.
    holds.hold(uuid(1));
    assert_eq!(
        polls(&muster, 1).await.0,
        released,
        "a released model polls"
    );
    holds.hold(uuid(2));
    sleep(secs(10)).await;
    let (_, phases) = polls(&muster, 1).await;
    assert_eq!(phases, [Some(Phase::Long); 5]);
    assert!(polls(&muster, 2).await.0 > 0);
    assert_eq!(
        running(&muster).await,
        [&uuid(1).to_string(), &uuid(2).to_string(), HELD_CHILD]
    );
    assert_eq!(holds.held().len(), 2);
    muster.shutdown();
}

#[actix::test]
async fn a_restart_of_the_models_supervisor_brings_the_held_models_back() {
    tokio::time::pause();
    let holds = ModelHolds::new();
    let (muster, _registry) = start(&holds);
    holds.hold(uuid(2));
    sleep(secs(10)).await;
    assert_eq!(running(&muster).await, [&uuid(2).to_string(), HELD_CHILD]);

    // A restart of `models` loses its dynamic children; the keeper,
    // started again with it, adds the held ones back.
    let answer = muster
        .machines()
        .supervisor()
        .mailbox()
        .call(|_, _| -> () { panic!("injected") })
        .await;
    assert!(answer.is_err());
    sleep(secs(10)).await;
    let report = serde_json::to_value(muster.report().await.unwrap()).unwrap();
    let models = report["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == MODELS)
        .unwrap();
    assert_eq!(models["start_count"], 2, "{models}");
    assert_eq!(running(&muster).await, [&uuid(2).to_string(), HELD_CHILD]);
    let (before, _) = polls(&muster, 2).await;
    sleep(minutes(30)).await;
    assert!(polls(&muster, 2).await.0 > before, "polls again");
    assert_eq!(polls(&muster, 1).await.0, 0);
    muster.shutdown();
}

#[actix::test]
async fn a_released_model_is_neither_listed_nor_counted_and_its_poller_is_named() {
    tokio::time::pause();
    let holds = ModelHolds::new();
    let (muster, _registry) = start(&holds);
    let me: MachineTag = "machine-0".parse().unwrap();
    let other: MachineTag = "machine-1".parse().unwrap();
    holds.hold(uuid(1));
    holds.note_holder(uuid(1), Some(me.clone()));
    sleep(minutes(30)).await;
    let model = muster.model(&uuid(1)).unwrap();
    assert!(model.polled_here());
    assert_eq!(model.polled_by(), Some(me));
    assert_eq!(muster.machines().count_by_phase().long, 5);
    assert_eq!(muster.machines().machines().await.unwrap().len(), 5);

    // Given back to another node: what this tree last saw of it is a
    // frozen copy, neither listed nor counted, and the other node is
    // named once the host notes it.
    holds.release(&uuid(1));
    assert_eq!(model.polled_by(), None, "not known until noted");
    holds.note_holder(uuid(1), Some(other.clone()));
    sleep(secs(1)).await;
    assert!(!model.polled_here());
    assert_eq!(model.polled_by(), Some(other));
    assert_eq!(muster.machines().count_by_phase(), Default::default());
    assert!(muster.machines().machines().await.unwrap().is_empty());
    assert!(model.machines().machines().await.unwrap().is_empty());
    let tag: MachineTag = "machine-0".parse().unwrap();
    assert_eq!(muster.machines().machine(&tag).await.unwrap(), None);

    // Held again, they are this tree's once more.
    holds.hold(uuid(1));
    assert_eq!(muster.machines().count_by_phase().long, 5);
    muster.shutdown();
}
