//! The machine watcher and pollers through failures, on a paused clock: a
//! poller's panic, the watcher's stream failing, the machines supervisor
//! restarted, the model's calls failing (docs/spec.md §2.3, §6.5).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::future::BoxFuture;
use muster::error::PollError;
use muster::model::{Machine, MachineBatches, ModelFacade};
use muster::names::MachineTag;
use muster::poll::Phase;
use muster::sim::{FaultConfig, Sim, SimConfig};
use muster_actors::SendError;
use muster_actors::machines::Tracking;
use support::machines::{start, start_with};
use support::{minutes, secs};
use tokio::time::sleep;

#[actix::test]
async fn a_poller_that_panics_restarts_and_resumes_from_its_phase_and_interval() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (settled, _) = sim.add_provisioned_machine();
    let waiting = sim.add_machine();
    let tree = start(&sim);
    sleep(minutes(1)).await;
    let before = [
        tree.state(&settled).await.unwrap(),
        tree.state(&waiting).await.unwrap(),
    ];
    assert_eq!(before[0].phase, Some(Phase::Long));
    assert_eq!(before[1].interval, Some(secs(48)));

    for tag in [&settled, &waiting] {
        let poller = tree.handle.poller(tag).await.unwrap().unwrap();
        let answer = poller.call(|_, _| -> () { panic!("injected") }).await;
        assert!(matches!(answer, Err(SendError::Lost { .. })), "{answer:?}");
    }
    sleep(secs(5)).await;

    for (tag, before) in [&settled, &waiting].into_iter().zip(before) {
        assert!(tree.handle.poller(tag).await.unwrap().unwrap().is_running());
        assert_eq!(tree.starts(tag.as_str()).await, 2);
        let after = tree.state(tag).await.unwrap();
        assert_eq!(after.phase, before.phase, "{tag}");
        assert_eq!(after.interval, before.interval, "{tag}");
        assert_eq!(after.polls, before.polls, "{tag} not polled early");
    }
    // The settled machine is next polled at its long poll, not at once.
    let polls = tree.state(&settled).await.unwrap().polls;
    sleep(minutes(16)).await;
    assert_eq!(tree.state(&settled).await.unwrap().polls, polls + 1);
}

/// How the test ends the current watch.
enum Cut {
    End,
    Fail,
}

/// The sim's facade, with watches the test can end or break.
struct CutFacade {
    inner: Arc<dyn ModelFacade>,
    watches: AtomicUsize,
    cut: Mutex<Option<tokio::sync::oneshot::Sender<Cut>>>,
}

impl CutFacade {
    fn cut(&self, how: Cut) {
        let sender = self.cut.lock().unwrap().take().expect("a watch is open");
        let _ = sender.send(how);
    }
}

impl ModelFacade for CutFacade {
    fn watch_model_machines(&self) -> MachineBatches {
        self.watches.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = tokio::sync::oneshot::channel();
        *self.cut.lock().unwrap() = Some(tx);
        let inner = self.inner.watch_model_machines();
        futures::stream::unfold(Some((inner, rx)), |open| async move {
            let (mut inner, mut rx) = open?;
            tokio::select! {
                batch = inner.next() => batch.map(|b| (b, Some((inner, rx)))),
                cut = &mut rx => match cut {
                    Ok(Cut::Fail) => Some((
                        Err(PollError::other("watching machines", "connection reset")),
                        None,
                    )),
                    _ => None,
                },
            }
        })
        .boxed()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        self.inner.machine(tag)
    }
}

#[actix::test]
async fn the_watcher_restarts_when_its_stream_fails_or_ends_without_duplicating_pollers() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let tags: Vec<MachineTag> = (0..3).map(|_| sim.add_provisioned_machine().0).collect();
    let facade = Arc::new(CutFacade {
        inner: sim.facade(),
        watches: AtomicUsize::new(0),
        cut: Mutex::new(None),
    });
    let tree = start_with(&sim, facade.clone());
    sleep(minutes(1)).await;
    let mut expected = tags.clone();

    for (round, how) in [Cut::Fail, Cut::End].into_iter().enumerate() {
        facade.cut(how);
        // A machine that arrives while the watcher is down is found by the
        // next watch's first batch.
        sleep(Duration::from_millis(10)).await;
        expected.push(sim.add_provisioned_machine().0);
        sleep(secs(5)).await;
        assert_eq!(facade.watches.load(Ordering::SeqCst), round + 2);
        assert_eq!(tree.starts("watcher").await, round as u64 + 2);

        let pollers = tree.pollers().await;
        let names: Vec<String> = pollers.iter().map(|c| c.name.clone()).collect();
        let mut want: Vec<String> = expected.iter().map(|t| t.to_string()).collect();
        want.sort();
        assert_eq!(names, want);
        assert!(pollers.iter().all(|c| c.start_count == 1));
    }

    sleep(minutes(1)).await;
    for tag in &expected {
        assert_eq!(tree.phase(tag).await, Some(Phase::Long), "{tag}");
        assert!(sim.in_sync(tag));
    }
}

#[actix::test]
async fn a_restarted_machines_supervisor_polls_every_machine_again_with_its_state() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let tags: Vec<MachineTag> = (0..3).map(|_| sim.add_provisioned_machine().0).collect();
    let manual = sim.add_manual_machine();
    let tree = start(&sim);
    sleep(minutes(2)).await;
    let mut before = Vec::new();
    for tag in &tags {
        before.push(tree.state(tag).await.unwrap());
    }
    assert!(
        before
            .iter()
            .all(|m| m.phase == Some(Phase::Long) && m.polls > 0)
    );

    let answer = tree
        .handle
        .supervisor()
        .mailbox()
        .call(|_, _| -> () { panic!("injected") })
        .await;
    assert!(answer.is_err());
    sleep(secs(8)).await;

    let report = tree.root.report().await.unwrap();
    assert_eq!(report.child("machines").unwrap().start_count, 2);
    let names: Vec<String> = tree.pollers().await.into_iter().map(|c| c.name).collect();
    let want: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
    assert_eq!(names, want);
    // What the pollers knew was kept: the new watch's first batch is what
    // the model holds, not a change, so no machine goes back to the short
    // phase or is polled early.
    for was in &before {
        let is = tree.state(&was.tag).await.unwrap();
        assert_eq!(
            (is.phase, is.interval, is.polls),
            (was.phase, was.interval, was.polls),
            "{}",
            was.tag
        );
    }
    assert_eq!(
        tree.state(&manual).await.unwrap().tracking,
        Tracking::Manual
    );
    sleep(minutes(1)).await;
    for tag in &tags {
        assert_eq!(tree.phase(tag).await, Some(Phase::Long), "{tag}");
    }
}

#[actix::test]
async fn failed_model_calls_are_retried_without_restarting_the_watcher() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        seed: 2,
        faults: FaultConfig {
            model_error_rate: 0.05,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let tags: Vec<MachineTag> = (0..30).map(|_| sim.add_provisioned_machine().0).collect();
    let tree = start(&sim);
    sleep(minutes(10)).await;

    for tag in &tags {
        assert_eq!(tree.phase(tag).await, Some(Phase::Long), "{tag} settled");
        assert!(sim.in_sync(tag), "{tag} in sync");
    }
    assert_eq!(tree.starts("watcher").await, 1);
    let retried: usize = tags
        .iter()
        .map(|tag| tree.logged("cannot handle a change of machine, will try again", tag))
        .sum();
    let restarted = tree
        .pollers()
        .await
        .iter()
        .filter(|c| c.start_count > 1)
        .count();
    assert!(retried > 0, "some watcher calls failed and were retried");
    // A failed model call during a poll is the poller's failure.
    assert!(restarted > 0);
}
