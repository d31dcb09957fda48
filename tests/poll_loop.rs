//! The poll core end to end on the simulated cloud: a single-task poller
//! built from `PollState`, `update_machine` and the traits, run on a paused
//! clock. It checks that the pieces together do what docs/spec.md §2.2–§2.4 describes:
//! machines converge and settle in the long phase, provider calls are
//! batched, unprovisioned machines are skipped, dead and reaped machines are
//! dropped, manual machines are never polled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use muster::error::{ErrorKind, PollError};
use muster::model::{Life, Machine, MachineBatches};
use muster::names::MachineTag;
use muster::poll::{Phase, PollConfig, PollState};
use muster::provider::{InstanceId, InstanceStatus, MAX_IDS_PER_CALL};
use muster::sim::{FaultConfig, Sim, SimConfig};
use muster::update::{settle_manual_machine, update_machine};
use tokio::time::Instant;

struct Tracked {
    machine: Arc<dyn Machine>,
    state: PollState,
}

/// A poller over one model, in one task.
struct Poller {
    sim: Sim,
    config: PollConfig,
    watch: MachineBatches,
    tracked: BTreeMap<MachineTag, Tracked>,
    polls: u64,
}

impl Poller {
    fn new(sim: &Sim) -> Self {
        Poller {
            sim: sim.clone(),
            config: PollConfig::default(),
            watch: sim.facade().watch_model_machines(),
            tracked: BTreeMap::new(),
            polls: 0,
        }
    }

    /// Runs until `until` from now.
    async fn run_for(&mut self, until: Duration) {
        let end = Instant::now() + until;
        loop {
            let next = self
                .tracked
                .values()
                .map(|t| t.state.next_poll())
                .min()
                .map_or(end, |next| next.min(end));
            tokio::select! {
                batch = self.watch.next() => {
                    self.machines_changed(batch.unwrap().unwrap()).await;
                }
                () = tokio::time::sleep_until(next) => {
                    if Instant::now() >= end {
                        return;
                    }
                    self.poll_due().await;
                }
            }
        }
    }

    async fn machines_changed(&mut self, tags: Vec<MachineTag>) {
        let now = Instant::now();
        for tag in tags {
            if let Some(tracked) = self.tracked.get_mut(&tag) {
                match tracked.machine.refresh().await {
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        self.tracked.remove(&tag);
                    }
                    Err(e) => panic!("{e}"),
                    Ok(()) if tracked.machine.life() == Life::Dead => {
                        self.tracked.remove(&tag);
                    }
                    Ok(()) => tracked.state.watcher_event(now),
                }
                continue;
            }
            let machine = match self.sim.facade().machine(&tag).await {
                Ok(machine) => machine,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => panic!("{e}"),
            };
            if machine.is_manual().await.unwrap() {
                settle_manual_machine(&*machine).await.unwrap();
                continue;
            }
            let state = PollState::new(&self.config, now);
            self.tracked.insert(tag, Tracked { machine, state });
        }
    }

    async fn poll_due(&mut self) {
        let now = Instant::now();
        let mut batch: Vec<(MachineTag, InstanceId)> = Vec::new();
        for (tag, tracked) in &mut self.tracked {
            if !tracked.state.is_due(now) {
                continue;
            }
            self.polls += 1;
            match tracked.machine.instance_id().await {
                Ok(id) => batch.push((tag.clone(), id)),
                Err(PollError::NotProvisioned(_)) => tracked.state.bump(now),
                Err(e) => panic!("{e}"),
            }
        }
        for chunk in batch.chunks(MAX_IDS_PER_CALL) {
            let ids: Vec<InstanceId> = chunk.iter().map(|(_, id)| id.clone()).collect();
            let environ = self.sim.environ();
            let instances = match environ.instances(&ids).await {
                Ok(instances) => instances,
                Err(PollError::NoInstances) => {
                    for (tag, _) in chunk {
                        self.tracked
                            .get_mut(tag)
                            .unwrap()
                            .state
                            .instance_missing(now);
                    }
                    continue;
                }
                Err(e) => panic!("{e}"),
            };
            let mut interfaces = match environ.network_interfaces(&ids).await {
                Ok(lists) => lists.into_iter().map(Some).collect(),
                Err(e) if e.kind() == ErrorKind::NotSupported => vec![None; ids.len()],
                Err(e) => panic!("{e}"),
            };
            for (index, ((tag, _), instance)) in chunk.iter().zip(instances).enumerate() {
                let tracked = self.tracked.get_mut(tag).unwrap();
                let Some(instance) = instance else {
                    tracked.state.instance_missing(now);
                    continue;
                };
                let nics = interfaces[index].take();
                let update = update_machine(&*tracked.machine, &instance, nics)
                    .await
                    .unwrap();
                update.apply(&mut tracked.state, now);
            }
        }
    }

    fn phase(&self, tag: &MachineTag) -> Option<Phase> {
        self.tracked.get(tag).map(|t| t.state.phase())
    }
}

fn minutes(n: u64) -> Duration {
    Duration::from_secs(60 * n)
}

#[tokio::test(start_paused = true)]
async fn machines_converge_settle_and_leave() {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let booted: Vec<MachineTag> = (0..5).map(|_| sim.add_provisioned_machine().0).collect();
    let late = sim.add_machine();
    let never = sim.add_machine();
    let manual = sim.add_manual_machine();
    let mut poller = Poller::new(&sim);

    poller.run_for(minutes(1)).await;
    for tag in &booted {
        assert!(sim.in_sync(tag), "{tag} is in sync");
        assert_eq!(poller.phase(tag), Some(Phase::Long), "{tag} settled");
    }
    let counters = sim.counters();
    assert_eq!(
        counters.instances.max_ids, 5,
        "machines due together are asked for in one call"
    );
    assert!(counters.instances.calls < poller.polls / 4);
    assert_eq!(poller.phase(&late), Some(Phase::Short));
    assert!(sim.model_view(&late).unwrap().addresses.is_empty());

    // Provisioned later, found by the next poll of its backed-off schedule.
    sim.provision(&late).unwrap();
    poller.run_for(minutes(3)).await;
    assert!(sim.in_sync(&late));
    assert_eq!(poller.phase(&late), Some(Phase::Long));

    // Settled machines are polled once per long poll.
    sim.reset_counters();
    poller.run_for(minutes(30)).await;
    assert!(
        sim.counters().instances.calls <= 4,
        "{:?}",
        sim.counters().instances
    );

    // An agent restart brings a machine back to the short phase.
    sim.restart_agent(&booted[0]).unwrap();
    poller.run_for(Duration::from_secs(1)).await;
    assert_eq!(poller.phase(&booted[0]), Some(Phase::Short));
    poller.run_for(minutes(1)).await;
    assert_eq!(poller.phase(&booted[0]), Some(Phase::Long));

    // Dead and reaped machines are dropped.
    sim.set_life(&booted[1], Life::Dead).unwrap();
    sim.remove(&booted[2]).unwrap();
    poller.run_for(minutes(1)).await;
    assert_eq!(poller.phase(&booted[1]), None);
    assert_eq!(poller.phase(&booted[2]), None);
    assert_eq!(poller.tracked.len(), 5);

    // The manual machine is running and was never tracked; the unprovisioned
    // one is still backing off.
    let view = sim.model_view(&manual).unwrap();
    assert_eq!(view.instance_status.status, InstanceStatus::Running);
    assert_eq!(view.instance_status.message, "Manually provisioned machine");
    assert_eq!(poller.phase(&manual), None);
    assert_eq!(poller.phase(&never), Some(Phase::Short));
}

#[tokio::test(start_paused = true)]
async fn partial_answers_and_a_stopped_instance_do_not_stall_the_poller() {
    let sim = Sim::new(SimConfig {
        seed: 3,
        networking: false,
        faults: FaultConfig {
            partial_rate: 0.3,
            latency: Duration::from_millis(200),
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let tags: Vec<MachineTag> = (0..40).map(|_| sim.add_provisioned_machine().0).collect();
    let mut poller = Poller::new(&sim);
    poller.run_for(minutes(10)).await;
    for tag in &tags {
        assert!(sim.in_sync(tag), "{tag} is in sync");
    }
    assert!(sim.counters().errors_of(ErrorKind::NotSupported) > 0);

    // A stopped instance loses its addresses: back to the short phase at a
    // long poll that gets an answer for it, and the model follows.
    sim.stop_instance(&tags[0]).unwrap();
    for _ in 0..120 {
        poller.run_for(minutes(1)).await;
        if poller.phase(&tags[0]) == Some(Phase::Short) {
            break;
        }
    }
    assert_eq!(poller.phase(&tags[0]), Some(Phase::Short));
    let view = sim.model_view(&tags[0]).unwrap();
    assert_eq!(view.instance_status.status, InstanceStatus::Stopped);
    assert!(view.addresses.is_empty());
}
