//! The machine watcher and pollers on the simulated cloud, on a paused clock:
//! the behaviour cases of docs/spec.md §2.6, through the actors.

mod support;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use muster::config::Validate;
use muster::error::{ErrorKind, PollError};
use muster::model::{Life, Machine, MachineBatches, MachineStatus, ModelFacade};
use muster::names::MachineTag;
use muster::poll::Phase;
use muster::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface};
use muster::sim::{FaultConfig, Sim, SimConfig};
use muster_actors::gateway::GatewayConfig;
use muster_actors::machines::{MachinesConfig, MachinesHandle, Reset, Tracking};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::machines::{start, start_with};
use support::{minutes, secs};
use tokio::time::sleep;

#[actix::test]
async fn a_new_machine_starts_short_backs_off_while_starting_and_settles_long() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, id) = sim.add_provisioned_machine();
    let tree = start(&sim);

    sleep(secs(1)).await;
    let state = tree.state(&tag).await.expect("tracked");
    assert_eq!(state.tracking, Tracking::Polled);
    assert_eq!(state.phase, Some(Phase::Short));
    assert_eq!(state.interval, Some(secs(3)));
    assert_eq!(state.polls, 0);

    // Polled at 3 s: allocating is recorded, and the interval doubles.
    sleep(secs(4)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.polls, 1);
    assert_eq!(state.instance_id, Some(id));
    assert_eq!(
        state.instance_status.unwrap().status,
        InstanceStatus::Allocating
    );
    assert_eq!(
        sim.model_view(&tag).unwrap().instance_status.status,
        InstanceStatus::Allocating
    );
    assert_eq!(state.interval, Some(secs(6)));
    sleep(secs(5)).await;
    assert_eq!(tree.interval(&tag).await, Some(secs(12)));
    assert_eq!(tree.phase(&tag).await, Some(Phase::Short));

    // Running, an address, the agent started: long phase, model in sync.
    sleep(secs(20)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Long));
    assert_eq!(state.interval, Some(minutes(15)));
    assert!(sim.in_sync(&tag));
    assert_eq!(state.addresses, sim.provider_view(&tag).unwrap().addresses);
    assert_eq!(tree.logged("has new addresses", &tag), 1);

    // Settled: polled once per long poll, and the status is set only when
    // it changes.
    let set = sim.counters().set_instance_status;
    let polls = state.polls;
    sleep(minutes(31)).await;
    assert_eq!(tree.state(&tag).await.unwrap().polls, polls + 2);
    assert_eq!(sim.counters().set_instance_status, set);
    assert_eq!(tree.logged("has new addresses", &tag), 1);
}

#[actix::test]
async fn a_watcher_event_moves_a_long_phase_machine_to_short_with_the_interval_reset() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    sleep(minutes(1)).await;
    assert_eq!(tree.phase(&tag).await, Some(Phase::Long));
    let poller = tree.handle.poller(&tag).await.unwrap().unwrap();

    sim.restart_agent(&tag).unwrap();
    sleep(Duration::from_millis(500)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Short));
    assert_eq!(state.interval, Some(secs(3)));
    assert!(state.next_poll_in.unwrap() <= secs(3));

    sleep(minutes(1)).await;
    assert_eq!(tree.phase(&tag).await, Some(Phase::Long));
    assert!(poller.is_running(), "the same poller carried on");
    assert_eq!(tree.starts(tag.as_str()).await, 1);
}

#[actix::test]
async fn a_watcher_event_during_a_poll_applies_after_the_polls_answer() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    // The first poll asks at 3 s; the gateway answers at the end of its
    // 100 ms window, which would bump the interval to 6 s.
    sleep(Duration::from_millis(3_050)).await;
    let poller = tree.handle.poller(&tag).await.unwrap().unwrap();
    poller.do_send(Reset).unwrap();
    sleep(Duration::from_millis(450)).await;

    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.polls, 1);
    assert_eq!(
        state.instance_status.unwrap().status,
        InstanceStatus::Allocating
    );
    assert_eq!(state.interval, Some(secs(3)), "the reset came last");
    assert!(state.next_poll_in.unwrap() > Duration::from_millis(2_500));
}

#[actix::test]
async fn a_poll_the_gateway_cannot_take_backs_off_and_the_poller_carries_on() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    sleep(Duration::from_millis(2_900)).await;
    let answer = tree.gateway.call(|_, _| -> () { panic!("injected") }).await;
    assert!(answer.is_err());

    // Due at 3 s while the gateway waits to be restarted.
    sleep(secs(1)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.polls, 1);
    assert!(
        state.last_error.as_deref().unwrap().contains("not running"),
        "{state:?}"
    );
    assert_eq!(state.interval, Some(secs(6)));
    assert!(tree.logged("polling instance failed", &tag) == 1);

    sleep(minutes(1)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Long));
    assert_eq!(state.last_error, None);
    assert!(sim.in_sync(&tag));
    let report = tree.root.report().await.unwrap();
    assert_eq!(report.child("gateway").unwrap().start_count, 2);
    assert_eq!(
        tree.starts(tag.as_str()).await,
        1,
        "the poller was not bounced"
    );
}

#[actix::test]
async fn a_long_phase_machine_that_loses_its_addresses_goes_back_to_short() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    sleep(minutes(1)).await;
    assert_eq!(tree.phase(&tag).await, Some(Phase::Long));

    sim.stop_instance(&tag).unwrap();
    // Seen at the next long poll.
    sleep(minutes(14)).await;
    assert_eq!(tree.phase(&tag).await, Some(Phase::Long));
    sleep(minutes(2)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Short));
    assert!(state.addresses.is_empty());
    assert!(sim.in_sync(&tag));
}

/// The model of `facade`, except that while `broken` holds it cannot say
/// a machine's recorded instance status.
struct StatusUnread {
    facade: Arc<dyn ModelFacade>,
    broken: Arc<AtomicBool>,
}

struct MachineUnread {
    machine: Arc<dyn Machine>,
    broken: Arc<AtomicBool>,
}

impl ModelFacade for StatusUnread {
    fn watch_model_machines(&self) -> MachineBatches {
        self.facade.watch_model_machines()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        let (found, broken) = (self.facade.machine(tag), self.broken.clone());
        Box::pin(async move {
            let machine = found.await?;
            Ok(Arc::new(MachineUnread { machine, broken }) as Arc<dyn Machine>)
        })
    }
}

impl Machine for MachineUnread {
    fn tag(&self) -> MachineTag {
        self.machine.tag()
    }
    fn instance_id(&self) -> BoxFuture<'static, Result<InstanceId, PollError>> {
        self.machine.instance_id()
    }
    fn set_provider_network_config(
        &self,
        interfaces: Vec<NetworkInterface>,
    ) -> BoxFuture<'static, Result<(Vec<Address>, bool), PollError>> {
        self.machine.set_provider_network_config(interfaces)
    }
    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
        if self.broken.load(Ordering::Relaxed) {
            return Box::pin(async {
                Err(PollError::other("instance status", "the record is gone"))
            });
        }
        self.machine.instance_status()
    }
    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        self.machine.set_instance_status(status, message)
    }
    fn status(&self) -> BoxFuture<'static, Result<MachineStatus, PollError>> {
        self.machine.status()
    }
    fn life(&self) -> Life {
        self.machine.life()
    }
    fn is_manual(&self) -> BoxFuture<'static, Result<bool, PollError>> {
        self.machine.is_manual()
    }
    fn refresh(&self) -> BoxFuture<'static, Result<(), PollError>> {
        self.machine.refresh()
    }
}

#[actix::test]
async fn an_unreadable_recorded_status_sends_a_settled_machine_to_the_short_poll_without_a_restart()
{
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (tag, _) = sim.add_provisioned_machine();
    let broken = Arc::new(AtomicBool::new(false));
    let facade = StatusUnread {
        facade: sim.facade(),
        broken: broken.clone(),
    };
    let tree = start_with(&sim, Arc::new(facade));
    sleep(minutes(1)).await;
    let settled = tree.state(&tag).await.unwrap();
    assert_eq!(settled.phase, Some(Phase::Long));

    // At the next long poll the record cannot be read: unknown, so the
    // short poll, interval reset; logged, shown, and nothing restarted.
    broken.store(true, Ordering::Relaxed);
    let set = sim.counters().set_network_config;
    let mut state = tree.state(&tag).await.unwrap();
    for _ in 0..(16 * 60) {
        if state.polls > settled.polls {
            break;
        }
        sleep(secs(1)).await;
        state = tree.state(&tag).await.unwrap();
    }
    assert_eq!(state.phase, Some(Phase::Short));
    assert_eq!(state.interval, Some(secs(3)));
    assert_eq!(state.polls, settled.polls + 1);
    assert_eq!(state.addresses, settled.addresses, "the last ones kept");
    assert!(
        state
            .last_error
            .as_deref()
            .unwrap()
            .contains("the record is gone"),
        "{state:?}"
    );
    assert_eq!(
        tree.logged(
            "cannot read the machine's recorded instance status, taking it as unknown",
            &tag
        ),
        1
    );
    assert_eq!(sim.counters().set_network_config, set, "nothing written");
    assert!(tree.pollers().await.iter().all(|c| c.start_count == 1));

    // Readable again: settled once more.
    broken.store(false, Ordering::Relaxed);
    sleep(secs(4)).await;
    let state = tree.state(&tag).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Long));
    assert_eq!(state.last_error, None);
}

#[actix::test]
async fn dead_and_reaped_machines_are_removed_and_their_pollers_stopped() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let (dead, _) = sim.add_provisioned_machine();
    let (reaped, _) = sim.add_provisioned_machine();
    let (kept, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    sleep(minutes(1)).await;
    let dead_poller = tree.handle.poller(&dead).await.unwrap().unwrap();
    let reaped_poller = tree.handle.poller(&reaped).await.unwrap().unwrap();

    sim.set_life(&dead, Life::Dead).unwrap();
    sim.remove(&reaped).unwrap();
    sleep(secs(1)).await;

    assert_eq!(tree.state(&dead).await, None);
    assert_eq!(tree.state(&reaped).await, None);
    assert!(!dead_poller.is_running());
    assert!(!reaped_poller.is_running());
    let pollers: Vec<String> = tree.pollers().await.into_iter().map(|c| c.name).collect();
    assert_eq!(pollers, [kept.to_string()]);
    let machines = tree.handle.machines().await.unwrap();
    assert_eq!(machines.len(), 1);
    assert_eq!(machines[0].tag, kept);
}

#[actix::test]
async fn manual_machines_are_set_running_and_never_polled() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let manual = sim.add_manual_machine();
    let tree = start(&sim);
    sleep(minutes(5)).await;

    let view = sim.model_view(&manual).unwrap();
    assert_eq!(view.instance_status.status, InstanceStatus::Running);
    assert_eq!(view.instance_status.message, "Manually provisioned machine");
    let state = tree.state(&manual).await.expect("tracked");
    assert_eq!(state.tracking, Tracking::Manual);
    assert_eq!((state.phase, state.polls), (None, 0));
    assert!(tree.handle.poller(&manual).await.unwrap().is_none());
    assert!(tree.pollers().await.is_empty());
    assert_eq!(sim.counters().instances.calls, 0);

    // Its agent restarting changes nothing, and it goes when it dies.
    sim.restart_agent(&manual).unwrap();
    sleep(secs(10)).await;
    assert_eq!(sim.counters().instances.calls, 0);
    sim.set_life(&manual, Life::Dead).unwrap();
    sleep(secs(1)).await;
    assert_eq!(tree.state(&manual).await, None);
}

#[actix::test]
async fn unprovisioned_machines_are_skipped_and_backed_off() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let waiting = sim.add_machine();
    let (provisioned, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    sleep(minutes(1)).await;

    // Skipped at 3, 9, 21 and 45 s; next at 93 s.
    let state = tree.state(&waiting).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Short));
    assert_eq!(state.interval, Some(secs(48)));
    assert_eq!((state.polls, state.instance_id), (0, None));
    // Only the provisioned machine's id was asked for.
    let provisioned_polls = tree.state(&provisioned).await.unwrap().polls;
    assert_eq!(sim.counters().instances.ids, provisioned_polls);

    sim.provision(&waiting).unwrap();
    sleep(minutes(2)).await;
    assert_eq!(tree.phase(&waiting).await, Some(Phase::Long));
    assert!(sim.in_sync(&waiting));
}

#[actix::test]
async fn a_provider_without_networking_falls_back_to_plain_addresses() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        networking: false,
        ..SimConfig::default()
    })
    .unwrap();
    let (tag, _) = sim.add_provisioned_machine();
    let tree = start(&sim);
    sleep(minutes(1)).await;

    assert_eq!(tree.phase(&tag).await, Some(Phase::Long));
    assert!(sim.in_sync(&tag));
    let view = sim.model_view(&tag).unwrap();
    let truth = sim.provider_view(&tag).unwrap();
    assert!(!truth.addresses.is_empty());
    assert_eq!(view.addresses, truth.addresses);
    assert_eq!(view.interfaces.len(), truth.addresses.len());
    assert!(sim.counters().errors_of(ErrorKind::NotSupported) > 0);
}

#[actix::test]
async fn partial_and_empty_answers_back_machines_off_and_kill_nothing() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig {
        seed: 5,
        faults: FaultConfig {
            partial_rate: 0.3,
            ..FaultConfig::default()
        },
        ..SimConfig::default()
    })
    .unwrap();
    let tags: Vec<MachineTag> = (0..20).map(|_| sim.add_provisioned_machine().0).collect();
    // An instance id the provider does not know: every answer about it is
    // empty.
    let stranger = sim.add_manual_machine();
    sim.set_manual(&stranger, false).unwrap();
    let tree = start(&sim);
    sleep(minutes(10)).await;

    for tag in &tags {
        assert!(sim.in_sync(tag), "{tag} is in sync");
        assert_eq!(tree.phase(tag).await, Some(Phase::Long), "{tag} settled");
    }
    let missed: usize = tags
        .iter()
        .map(|tag| tree.logged("unable to retrieve instance information for instance", tag))
        .sum();
    assert!(missed > 0, "some answers left instances out");
    let state = tree.state(&stranger).await.unwrap();
    assert_eq!(state.phase, Some(Phase::Short));
    assert_eq!(state.interval, Some(secs(60)));
    assert!(state.last_error.is_some());
    assert!(
        tree.logged(
            "unable to retrieve instance information for instance",
            &stranger
        ) > 0
    );

    // Nothing was restarted.
    let report = tree.root.report().await.unwrap();
    assert_eq!(report.child("gateway").unwrap().start_count, 1);
    assert_eq!(tree.starts("watcher").await, 1);
    for poller in tree.pollers().await {
        assert_eq!(poller.start_count, 1, "{} not restarted", poller.name);
    }
}

#[actix::test]
async fn a_thousand_machines_booting_at_random_times_settle_with_batched_calls() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    let tags: Vec<MachineTag> = (0..1000).map(|_| sim.add_machine()).collect();
    let tree = start(&sim);

    let mut rng = StdRng::seed_from_u64(11);
    let mut boots: Vec<(Duration, MachineTag)> = tags
        .iter()
        .map(|t| {
            (
                Duration::from_millis(rng.random_range(0..300_000)),
                t.clone(),
            )
        })
        .collect();
    boots.sort();
    let mut boots = VecDeque::from(boots);
    let begin = tokio::time::Instant::now();
    while let Some((at, tag)) = boots.pop_front() {
        tokio::time::sleep_until(begin + at).await;
        sim.provision(&tag).unwrap();
    }
    sleep(minutes(10)).await;

    let machines = tree.handle.machines().await.unwrap();
    assert_eq!(machines.len(), 1000);
    for state in &machines {
        assert_eq!(state.phase, Some(Phase::Long), "{} settled", state.tag);
        assert!(sim.in_sync(&state.tag), "{} in sync", state.tag);
    }
    let polls: u64 = machines.iter().map(|m| m.polls).sum();
    let counters = sim.counters();
    assert_eq!(counters.instances.ids, polls);
    assert!(
        counters.instances.calls * 5 < polls,
        "{} calls for {polls} polls",
        counters.instances.calls
    );
    assert!(counters.instances.max_ids <= GatewayConfig::default().max_batch);
    assert!(tree.pollers().await.iter().all(|c| c.start_count == 1));
}

#[actix::test]
async fn the_handle_lists_machines_sorted_and_serialises_them() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    for _ in 0..11 {
        sim.add_provisioned_machine();
    }
    let tree = start(&sim);
    sleep(minutes(1)).await;
    let machines = tree.handle.machines().await.unwrap();
    let tags: Vec<&MachineTag> = machines.iter().map(|m| &m.tag).collect();
    let mut sorted = tags.clone();
    sorted.sort();
    assert_eq!(tags, sorted);

    let json = serde_json::to_value(&machines[0]).unwrap();
    assert_eq!(json["tag"], "machine-0");
    assert_eq!(json["tracking"], "polled");
    assert_eq!(json["phase"], "long");
    assert_eq!(json["interval"], "15m");
    assert_eq!(json["instance_status"]["status"], "running");
}

#[actix::test]
async fn phase_counts_agree_with_the_listing() {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default()).unwrap();
    for _ in 0..3 {
        sim.add_provisioned_machine();
    }
    sim.add_manual_machine();
    let tree = start(&sim);
    for wait in [Duration::from_millis(100), minutes(1)] {
        sleep(wait).await;
        let machines = tree.handle.machines().await.unwrap();
        let of = |phase: Option<Phase>| machines.iter().filter(|m| m.phase == phase).count();
        let counts = tree.handle.count_by_phase();
        assert_eq!(
            (counts.short, counts.long, counts.manual),
            (of(Some(Phase::Short)), of(Some(Phase::Long)), of(None))
        );
        assert_eq!(counts.short + counts.long + counts.manual, 4);
        assert_eq!(counts.manual, 1);
    }
    assert_eq!(tree.handle.count_by_phase().long, 3);
}

#[test]
fn the_handle_can_be_shared_between_threads() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    shared::<MachinesHandle>();
}

#[test]
fn config_errors_name_the_field() {
    assert_eq!(MachinesConfig::default().validate(), Ok(()));
    assert_eq!(MachinesConfig::default().restart.max_restarts, 1000);

    let err = MachinesConfig {
        poller_mailbox: 0,
        ..MachinesConfig::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(err.keys(), ["poller_mailbox"]);

    let mut config = MachinesConfig::default();
    config.poll.short_poll = Duration::ZERO;
    config.restart.error_delay = Duration::ZERO;
    let err = config.validate().unwrap_err();
    assert_eq!(err.keys(), ["poll.short_poll", "restart.error_delay"]);
    assert!(
        err.to_string().starts_with("poll.short_poll = \"0s\": "),
        "{err}"
    );

    let parsed: MachinesConfig =
        serde_json::from_str(r#"{"poll": {"long_poll": "30m"}, "poller_mailbox": 8}"#).unwrap();
    assert_eq!(parsed.poll.long_poll, minutes(30));
    assert_eq!(parsed.poller_mailbox, 8);
    let err = serde_json::from_str::<MachinesConfig>(r#"{"pol": {}}"#).unwrap_err();
    assert!(err.to_string().contains("unknown field `pol`"), "{err}");
    // Reading checks the spelling; the range is the check's.
    let zero: MachinesConfig = serde_json::from_str(r#"{"poll": {"short_poll": "0s"}}"#).unwrap();
    assert_eq!(zero.validate().unwrap_err().keys(), ["poll.short_poll"]);
}
