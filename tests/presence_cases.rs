//! The behaviour cases of SPEC §1, on Juju's fixture: a controller model with
//! three HA machines and a hosted model with two machines and two units.

use std::sync::Arc;

use futures::executor::block_on;
use std::time::{Duration, SystemTime};

use muster::clock::{Clock, ManualClock};
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{
    Connections, PresenceError, Recorder, ServerTable, Status, StatusCounts, Value,
};
use muster_actors::presence::{PresenceConfig, PresenceHandle, UpdateServerError, presence_child};
use muster_actors::{Metrics, RestartConfig, Root, SupervisorSpec};
use slog::{Discard, Logger, o};

#[allow(
    dead_code,
    reason = "each test target uses part of the reference model"
)]
#[path = "support/reference.rs"]
mod reference;

const BOOTSTRAP_UUID: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";
const MODEL_UUID: &str = "c0ffee00-1234-4abc-9def-0123456789ab";

fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn machine(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

fn agent(text: &str) -> AgentTag {
    text.parse().unwrap()
}

fn bootstrap_uuid() -> ModelUuid {
    BOOTSTRAP_UUID.parse().unwrap()
}

fn model_uuid() -> ModelUuid {
    MODEL_UUID.parse().unwrap()
}

fn value(model: ModelUuid, server: u32, agent_tag: &str, id: u64) -> Value {
    Value {
        model,
        server: machine(server),
        agent: agent(agent_tag),
        // Juju's fixture records the HA machines without the controller
        // flag; with it, case 14 would find machine-0 Unknown, not Missing.
        controller_agent: false,
        connection_id: id,
        status: Status::Alive,
        user_data: String::new(),
        last_seen: start(),
    }
}

fn ha0() -> Value {
    value(bootstrap_uuid(), 0, "machine-0", 1234)
}
fn ha1() -> Value {
    value(bootstrap_uuid(), 1, "machine-1", 1235)
}
fn ha2() -> Value {
    value(bootstrap_uuid(), 2, "machine-2", 1236)
}
fn model_machine0() -> Value {
    value(model_uuid(), 1, "machine-0", 1237)
}
fn model_machine1() -> Value {
    value(model_uuid(), 2, "machine-1", 1238)
}
fn model_unit1() -> Value {
    value(model_uuid(), 0, "unit-wordpress-0", 1239)
}
fn model_unit2() -> Value {
    value(model_uuid(), 0, "unit-mysql-0", 12409)
}

fn missing(mut v: Value) -> Value {
    v.status = Status::Missing;
    v
}

fn seen(mut v: Value, when: SystemTime) -> Value {
    v.last_seen = when;
    v
}

fn connect(r: &mut Recorder, v: &Value) {
    r.connect(
        &v.server,
        &v.model,
        &v.agent,
        v.connection_id,
        v.controller_agent,
        &v.user_data,
    );
}

/// An enabled recorder holding ha0, and its clock.
async fn bootstrap<P: Presence>() -> (P, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let mut r = P::start(clock.clone()).await;
    r.enable().await;
    r.connect(&ha0()).await;
    (r, clock)
}

async fn enable_ha<P: Presence>(r: &mut P) {
    r.connect(&ha1()).await;
    r.connect(&ha2()).await;
}

async fn deploy_model<P: Presence>(r: &mut P) {
    for v in [
        model_machine0(),
        model_machine1(),
        model_unit1(),
        model_unit2(),
    ] {
        r.connect(&v).await;
    }
}

async fn full<P: Presence>() -> (P, Arc<ManualClock>) {
    let (mut r, clock) = bootstrap::<P>().await;
    enable_ha(&mut r).await;
    deploy_model(&mut r).await;
    (r, clock)
}

/// `values()` is sorted by (server, connection id); sort the expectation the
/// same way so tests state sets.
fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by(|a, b| (&a.server, a.connection_id).cmp(&(&b.server, b.connection_id)));
    values
}

fn assert_values(connections: &Connections, expected: Vec<Value>) {
    assert_eq!(connections.values(), sorted(expected));
}

fn assert_empty(connections: &Connections) {
    assert_eq!(connections.count(), 0);
    assert!(connections.models().is_empty());
    assert!(connections.servers().is_empty());
    assert!(connections.agents().is_empty());
    assert!(connections.values().is_empty());
}

/// The presence operations the behaviour cases use, so that each case runs
/// on the core `Recorder` and, unchanged, through the actors' handle.
trait Presence: Sized {
    async fn start(clock: Arc<ManualClock>) -> Self;
    async fn enable(&mut self);
    async fn disable(&mut self);
    async fn is_enabled(&self) -> bool;
    async fn connect(&mut self, v: &Value);
    async fn disconnect(&mut self, server: &MachineTag, id: u64);
    async fn activity(&mut self, server: &MachineTag, id: u64);
    async fn server_down(&mut self, server: &MachineTag);
    async fn update_server(
        &mut self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), PresenceError>;
    async fn connections(&self) -> Connections;
}

impl Presence for Recorder {
    async fn start(clock: Arc<ManualClock>) -> Self {
        Recorder::new(clock)
    }
    async fn enable(&mut self) {
        Recorder::enable(self)
    }
    async fn disable(&mut self) {
        Recorder::disable(self)
    }
    async fn is_enabled(&self) -> bool {
        Recorder::is_enabled(self)
    }
    async fn connect(&mut self, v: &Value) {
        connect(self, v)
    }
    async fn disconnect(&mut self, server: &MachineTag, id: u64) {
        Recorder::disconnect(self, server, id)
    }
    async fn activity(&mut self, server: &MachineTag, id: u64) {
        Recorder::activity(self, server, id)
    }
    async fn server_down(&mut self, server: &MachineTag) {
        Recorder::server_down(self, server)
    }
    async fn update_server(
        &mut self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), PresenceError> {
        Recorder::update_server(self, server, values)
    }
    async fn connections(&self) -> Connections {
        Recorder::connections(self)
    }
}

/// The presence subtree of the actors, under a root supervisor of its own.
struct Actors {
    handle: PresenceHandle,
    _root: Root,
}

impl Presence for Actors {
    async fn start(clock: Arc<ManualClock>) -> Self {
        let (child, handle) =
            presence_child("presence", &PresenceConfig::default(), clock).unwrap();
        let root = Root::start(
            "root",
            SupervisorSpec::new(RestartConfig::default()).child(child),
            Logger::root(Discard, o!()),
            Metrics::unregistered(),
        )
        .unwrap();
        Actors {
            handle,
            _root: root,
        }
    }
    async fn enable(&mut self) {
        self.handle.enable().await.unwrap()
    }
    async fn disable(&mut self) {
        self.handle.disable().await.unwrap()
    }
    async fn is_enabled(&self) -> bool {
        self.handle.is_enabled().await.unwrap()
    }
    async fn connect(&mut self, v: &Value) {
        self.handle
            .connect(
                &v.server,
                &v.model,
                &v.agent,
                v.connection_id,
                v.controller_agent,
                &v.user_data,
            )
            .await
            .unwrap()
    }
    async fn disconnect(&mut self, server: &MachineTag, id: u64) {
        self.handle.disconnect(server, id).await.unwrap()
    }
    async fn activity(&mut self, server: &MachineTag, id: u64) {
        self.handle.activity(server, id).await.unwrap()
    }
    async fn server_down(&mut self, server: &MachineTag) {
        self.handle.server_down(server).await.unwrap()
    }
    async fn update_server(
        &mut self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), PresenceError> {
        match self.handle.update_server(server, values).await {
            Ok(()) => Ok(()),
            Err(UpdateServerError::Presence(error)) => Err(error),
            Err(error) => panic!("{error}"),
        }
    }
    async fn connections(&self) -> Connections {
        self.handle.connections().await.unwrap()
    }
}

/// Runs each named case on the recorder and through the actors.
macro_rules! both {
    ($($case:ident),* $(,)?) => {
        mod on_the_recorder {
            $(
                #[test]
                fn $case() {
                    futures::executor::block_on(super::$case::<muster::presence::Recorder>());
                }
            )*
        }
        mod through_the_actors {
            $(
                #[actix::test]
                async fn $case() {
                    super::$case::<super::Actors>().await;
                }
            )*
        }
    };
}

both!(
    case_01_empty_recorder,
    case_02_bootstrap,
    case_03_ha_controller,
    case_04_models,
    case_05_time_recording,
    case_06_activity,
    case_07_disconnect,
    case_08_disable_clears,
    case_09_server_down,
    case_10_server_down_then_reconnects,
    case_11_update_server_races_with_reconnects,
    case_12_update_server_after_server_down,
    case_13_update_server_with_a_mismatched_value,
    case_14_connections_after_server_down,
);

async fn case_01_empty_recorder<P: Presence>() {
    let mut r = P::start(Arc::new(ManualClock::new(start()))).await;
    assert!(!r.is_enabled().await);
    r.enable().await;
    assert!(r.is_enabled().await);
    assert_empty(&r.connections().await);
}

async fn case_02_bootstrap<P: Presence>() {
    let (r, _) = bootstrap::<P>().await;
    let connections = r.connections().await;
    assert_values(&connections, vec![ha0()]);
    assert_values(&connections.for_model(&bootstrap_uuid()), vec![ha0()]);
    assert_empty(&connections.for_model(&model_uuid()));
}

async fn case_03_ha_controller<P: Presence>() {
    let (mut r, _) = bootstrap::<P>().await;
    enable_ha(&mut r).await;
    let connections = r.connections().await;
    assert_values(&connections, vec![ha0(), ha1(), ha2()]);
    assert_values(
        &connections.for_model(&bootstrap_uuid()),
        vec![ha0(), ha1(), ha2()],
    );
    assert_empty(&connections.for_model(&model_uuid()));
    assert_values(&connections.for_server(&machine(0)), vec![ha0()]);
    assert_values(&connections.for_server(&machine(1)), vec![ha1()]);
    assert_values(&connections.for_server(&machine(2)), vec![ha2()]);
}

async fn case_04_models<P: Presence>() {
    let (r, _) = full::<P>().await;
    let connections = r.connections().await;
    assert_eq!(connections.count(), 7);
    let mut models = vec![bootstrap_uuid(), model_uuid()];
    models.sort();
    assert_eq!(connections.models(), models);
    assert_eq!(
        connections.servers(),
        vec![machine(0), machine(1), machine(2)]
    );
    assert_eq!(
        connections.agents(),
        [
            "machine-0",
            "machine-1",
            "machine-2",
            "unit-mysql-0",
            "unit-wordpress-0"
        ]
        .map(agent)
        .to_vec()
    );
    assert_values(
        &connections.for_model(&bootstrap_uuid()),
        vec![ha0(), ha1(), ha2()],
    );
    assert_values(
        &connections.for_model(&model_uuid()),
        vec![
            model_machine0(),
            model_machine1(),
            model_unit1(),
            model_unit2(),
        ],
    );
    assert_values(
        &connections.for_server(&machine(0)),
        vec![ha0(), model_unit1(), model_unit2()],
    );
    assert_values(
        &connections.for_server(&machine(1)),
        vec![ha1(), model_machine0()],
    );
    assert_values(
        &connections.for_server(&machine(2)),
        vec![ha2(), model_machine1()],
    );
}

async fn case_05_time_recording<P: Presence>() {
    let (mut r, clock) = bootstrap::<P>().await;
    assert_eq!(r.connections().await.values()[0].last_seen, start());
    clock.advance(Duration::from_secs(60));
    let later = clock.now();
    enable_ha(&mut r).await;
    assert_values(
        &r.connections().await.for_model(&bootstrap_uuid()),
        vec![ha0(), seen(ha1(), later), seen(ha2(), later)],
    );
}

async fn case_06_activity<P: Presence>() {
    let (mut r, clock) = full::<P>().await;
    clock.advance(Duration::from_secs(5 * 60));
    r.activity(&machine(1), 1237).await;
    let mm0 = seen(model_machine0(), clock.now());
    let connections = r.connections().await;
    assert_values(
        &connections.for_model(&bootstrap_uuid()),
        vec![ha0(), ha1(), ha2()],
    );
    assert_values(
        &connections.for_model(&model_uuid()),
        vec![mm0.clone(), model_machine1(), model_unit1(), model_unit2()],
    );
    assert_values(&connections.for_server(&machine(1)), vec![ha1(), mm0]);
}

async fn case_07_disconnect<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.disconnect(&machine(0), 1234).await;
    r.disconnect(&machine(0), 1239).await;
    let connections = r.connections().await;
    assert_eq!(connections.count(), 5);
    assert_values(
        &connections.for_model(&bootstrap_uuid()),
        vec![ha1(), ha2()],
    );
    assert_values(
        &connections.for_model(&model_uuid()),
        vec![model_machine0(), model_machine1(), model_unit2()],
    );
}

async fn case_08_disable_clears<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.disable().await;
    assert!(!r.is_enabled().await);
    assert_empty(&r.connections().await);
    // Enabling again does not bring anything back.
    r.enable().await;
    assert_empty(&r.connections().await);
}

async fn case_09_server_down<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.server_down(&machine(0)).await;
    let connections = r.connections().await;
    assert_values(
        &connections.for_model(&bootstrap_uuid()),
        vec![missing(ha0()), ha1(), ha2()],
    );
    assert_values(
        &connections.for_model(&model_uuid()),
        vec![
            model_machine0(),
            model_machine1(),
            missing(model_unit1()),
            missing(model_unit2()),
        ],
    );
    assert_values(
        &connections.for_server(&machine(0)),
        vec![
            missing(ha0()),
            missing(model_unit1()),
            missing(model_unit2()),
        ],
    );
    assert_values(
        &connections.for_server(&machine(1)),
        vec![ha1(), model_machine0()],
    );
    assert_values(
        &connections.for_server(&machine(2)),
        vec![ha2(), model_machine1()],
    );
}

async fn case_10_server_down_then_reconnects<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.server_down(&machine(0)).await;
    for v in [ha0(), model_unit1(), model_unit2()] {
        r.connect(&v).await;
    }
    let connections = r.connections().await;
    assert_values(
        &connections,
        vec![
            ha0(),
            ha1(),
            ha2(),
            model_machine0(),
            model_machine1(),
            model_unit1(),
            model_unit2(),
        ],
    );
}

async fn case_11_update_server_races_with_reconnects<P: Presence>() {
    let (mut r, clock) = full::<P>().await;
    r.server_down(&machine(0)).await;
    clock.advance(Duration::from_secs(10));
    let reconnected = clock.now();
    r.connect(&ha0()).await;
    r.connect(&model_unit1()).await;
    clock.advance(Duration::from_secs(10));
    // The snapshot was taken before unit-wordpress-0 reconnected.
    r.update_server(&machine(0), vec![ha0()]).await.unwrap();
    assert_values(
        &r.connections().await.for_server(&machine(0)),
        vec![seen(ha0(), clock.now()), seen(model_unit1(), reconnected)],
    );
}

async fn case_12_update_server_after_server_down<P: Presence>() {
    let (mut r, clock) = full::<P>().await;
    r.server_down(&machine(0)).await;
    clock.advance(Duration::from_secs(30));
    r.update_server(&machine(0), vec![ha0()]).await.unwrap();
    let connections = r.connections().await;
    assert_values(
        &connections.for_server(&machine(0)),
        vec![seen(ha0(), clock.now())],
    );
    assert_values(
        &connections.for_server(&machine(1)),
        vec![ha1(), model_machine0()],
    );
    assert_values(
        &connections.for_server(&machine(2)),
        vec![ha2(), model_machine1()],
    );
}

async fn case_13_update_server_with_a_mismatched_value<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.server_down(&machine(0)).await;
    let before = r.connections().await.values();
    let err = r
        .update_server(&machine(0), vec![ha0(), ha1()])
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"connection server mismatch, got "machine-1" expected "machine-0""#
    );
    assert_eq!(
        err,
        PresenceError::ServerMismatch {
            got: machine(1),
            expected: machine(0)
        }
    );
    // All or nothing: the valid ha0 value was not applied either.
    assert_eq!(r.connections().await.values(), before);
}

async fn case_14_connections_after_server_down<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.server_down(&machine(0)).await;
    let connections = r.connections().await;
    assert_eq!(connections.count(), 7);
    let err = connections.agent_status(&agent("machine-0")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "connections not limited to a model, agent ambiguous"
    );
    let controller = connections.for_model(&bootstrap_uuid());
    assert_eq!(controller.count(), 3);
    assert_eq!(
        controller.agent_status(&agent("machine-0")),
        Ok(Status::Missing)
    );
    assert_eq!(
        controller.agent_status(&agent("machine-1")),
        Ok(Status::Alive)
    );
    assert_eq!(
        controller.agent_status(&agent("machine-4")),
        Ok(Status::Unknown)
    );
}

#[test]
fn the_report_counts_connections_per_server_and_status() {
    let (mut r, _) = block_on(full::<Recorder>());
    r.server_down(&machine(0));
    let counts = r.counts_by_server();
    let counts: Vec<(MachineTag, usize, usize)> = counts
        .into_iter()
        .map(|(server, c)| (server, c.alive, c.missing))
        .collect();
    assert_eq!(
        counts,
        vec![(machine(0), 0, 3), (machine(1), 2, 0), (machine(2), 2, 0)]
    );
}

#[test]
fn a_disabled_recorder_ignores_changes_and_refuses_snapshots() {
    let mut r = Recorder::new(Arc::new(ManualClock::new(start())));
    connect(&mut r, &ha0());
    r.activity(&machine(0), 1234);
    r.server_down(&machine(0));
    r.disconnect(&machine(0), 1234);
    assert_empty(&r.connections());
    let err = r.update_server(&machine(0), vec![ha0()]).unwrap_err();
    assert_eq!(err, PresenceError::NotEnabled);
    assert_eq!(err.to_string(), "recorder not enabled");
    assert_empty(&r.connections());
}

#[test]
fn a_reconnect_keeps_what_was_first_recorded() {
    let (mut r, clock) = block_on(bootstrap::<Recorder>());
    clock.advance(Duration::from_secs(1));
    r.connect(
        &machine(0),
        &model_uuid(),
        &agent("unit-other-1"),
        1234,
        true,
        "changed",
    );
    assert_values(&r.connections(), vec![seen(ha0(), clock.now())]);
}

#[test]
fn activity_does_not_revive_a_missing_connection() {
    let (mut r, clock) = block_on(bootstrap::<Recorder>());
    r.server_down(&machine(0));
    clock.advance(Duration::from_secs(1));
    r.activity(&machine(0), 1234);
    assert_values(&r.connections(), vec![seen(missing(ha0()), clock.now())]);
}

#[test]
fn unknown_connections_are_ignored() {
    let (mut r, _) = block_on(full::<Recorder>());
    r.disconnect(&machine(0), 999);
    r.disconnect(&machine(7), 1234);
    r.activity(&machine(0), 999);
    r.server_down(&machine(7));
    assert_eq!(r.connections().count(), 7);
}

#[test]
fn agent_status_ignores_controller_agent_connections() {
    let (mut r, _) = block_on(bootstrap::<Recorder>());
    r.connect(
        &machine(1),
        &bootstrap_uuid(),
        &agent("machine-1"),
        1235,
        true,
        "",
    );
    let controller = r.connections().for_model(&bootstrap_uuid());
    assert_eq!(controller.count(), 2);
    assert_eq!(
        controller.agent_status(&agent("machine-1")),
        Ok(Status::Unknown)
    );
}

#[test]
fn agent_status_is_the_highest_over_the_agents_connections() {
    let (mut r, _) = block_on(bootstrap::<Recorder>());
    // The same agent holds a connection to machine-1 too; machine-0 goes down.
    r.connect(
        &machine(1),
        &bootstrap_uuid(),
        &agent("machine-0"),
        77,
        false,
        "",
    );
    r.server_down(&machine(0));
    let controller = r.connections().for_model(&bootstrap_uuid());
    assert_eq!(
        controller.agent_status(&agent("machine-0")),
        Ok(Status::Alive)
    );
    assert_eq!(
        controller
            .for_server(&machine(0))
            .agent_status(&agent("machine-0")),
        Ok(Status::Missing)
    );
}

#[test]
fn filters_chain_in_any_order_and_keep_the_model() {
    let (r, _) = block_on(full::<Recorder>());
    let all = r.connections();
    let unit = agent("unit-wordpress-0");
    let a = all
        .for_model(&model_uuid())
        .for_server(&machine(0))
        .for_agent(&unit);
    let b = all
        .for_agent(&unit)
        .for_server(&machine(0))
        .for_model(&model_uuid());
    assert_eq!(a.values(), vec![model_unit1()]);
    assert_eq!(b.values(), a.values());
    // for_server and for_agent keep the parent's model.
    assert_eq!(a.model(), Some(&model_uuid()));
    assert_eq!(a.agent_status(&unit), Ok(Status::Alive));
    assert_eq!(
        all.for_server(&machine(0)).agent_status(&unit),
        Err(PresenceError::AgentAmbiguous)
    );
    assert_eq!(a.models(), vec![model_uuid()]);
    assert_eq!(a.servers(), vec![machine(0)]);
    assert_eq!(a.agents(), vec![unit.clone()]);
}

#[test]
fn conflicting_filters_select_nothing() {
    let (r, _) = block_on(full::<Recorder>());
    let all = r.connections();
    assert_empty(&all.for_server(&machine(0)).for_server(&machine(1)));
    assert_empty(
        &all.for_agent(&agent("machine-0"))
            .for_agent(&agent("machine-1")),
    );
    let crossed = all.for_model(&bootstrap_uuid()).for_model(&model_uuid());
    assert_empty(&crossed);
    // The later model is the view's model, so agent_status answers.
    assert_eq!(crossed.model(), Some(&model_uuid()));
    assert_eq!(
        crossed.agent_status(&agent("unit-wordpress-0")),
        Ok(Status::Unknown)
    );
}

#[test]
fn a_view_does_not_see_later_changes() {
    let (mut r, _) = block_on(full::<Recorder>());
    let before = r.connections();
    r.server_down(&machine(0));
    r.disconnect(&machine(1), 1237);
    connect(&mut r, &value(model_uuid(), 2, "unit-wordpress-1", 5000));
    assert_eq!(before.count(), 7);
    assert_eq!(
        before
            .for_model(&model_uuid())
            .agent_status(&agent("unit-wordpress-0")),
        Ok(Status::Alive)
    );
    assert_eq!(r.connections().count(), 7);
    assert_eq!(
        r.connections()
            .for_model(&model_uuid())
            .agent_status(&agent("unit-wordpress-0")),
        Ok(Status::Missing)
    );
}

#[test]
fn update_server_refreshes_a_kept_connection_without_replacing_it() {
    let (mut r, clock) = block_on(bootstrap::<Recorder>());
    clock.advance(Duration::from_secs(5));
    let mut stale = ha0();
    stale.user_data = "from the snapshot".into();
    stale.status = Status::Missing;
    r.update_server(&machine(0), vec![stale]).unwrap();
    assert_values(&r.connections(), vec![seen(ha0(), clock.now())]);
}

#[test]
fn update_server_adds_snapshot_values_as_alive() {
    let (mut r, clock) = block_on(bootstrap::<Recorder>());
    clock.advance(Duration::from_secs(5));
    // A peer's snapshot for a server this recorder has not seen yet.
    let mut peer = ha1();
    peer.status = Status::Missing;
    peer.user_data = "peer".into();
    peer.controller_agent = true;
    r.update_server(&machine(1), vec![peer.clone(), peer.clone()])
        .unwrap();
    let mut expected = seen(peer, clock.now());
    expected.status = Status::Alive;
    assert_values(&r.connections().for_server(&machine(1)), vec![expected]);
    assert_eq!(r.connections().count(), 2);
}

#[test]
fn a_refused_snapshot_for_a_new_server_leaves_no_trace() {
    let (mut r, _) = block_on(bootstrap::<Recorder>());
    assert!(r.update_server(&machine(5), vec![ha1()]).is_err());
    assert!(r.server_table(&machine(5)).is_none());
    assert_eq!(r.connections().servers(), vec![machine(0)]);
}

#[test]
fn connections_combine_views_of_separate_tables() {
    let mut tables: Vec<ServerTable> = (0..3).map(|n| ServerTable::new(machine(n))).collect();
    for v in [ha0(), ha1(), ha2(), model_machine0(), model_unit1()] {
        let table = tables.iter_mut().find(|t| *t.server() == v.server).unwrap();
        table.connect(
            &v.model,
            &v.agent,
            v.connection_id,
            v.controller_agent,
            &v.user_data,
            start(),
        );
    }
    tables[0].mark_down();
    assert_eq!(
        tables[0].count_by_status(),
        StatusCounts {
            alive: 0,
            missing: 2
        }
    );
    assert_eq!(tables[1].count_by_status().get(Status::Alive), 2);
    let connections = Connections::from_views(tables.iter().rev().map(ServerTable::view));
    assert_eq!(
        connections.servers(),
        vec![machine(0), machine(1), machine(2)]
    );
    assert_values(
        &connections,
        vec![
            missing(ha0()),
            ha1(),
            ha2(),
            model_machine0(),
            missing(model_unit1()),
        ],
    );
    assert_eq!(tables[1].get(1237), Some(model_machine0()));
    assert_eq!(tables[1].values(), vec![ha1(), model_machine0()]);
}

#[test]
fn status_orders_displays_and_serialises_in_lowercase() {
    assert!(Status::Unknown < Status::Missing && Status::Missing < Status::Alive);
    let texts: Vec<String> = [Status::Unknown, Status::Missing, Status::Alive]
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(texts, ["unknown", "missing", "alive"]);
    assert_eq!(serde_json::to_string(&Status::Alive).unwrap(), r#""alive""#);
    assert_eq!(
        serde_json::from_str::<Status>(r#""missing""#).unwrap(),
        Status::Missing
    );
}

#[test]
fn values_round_trip_through_json() {
    let v = model_unit1();
    let json = serde_json::to_string(&v).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap(), v);
}

#[test]
fn views_can_be_handed_between_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<muster::presence::ServerView>();
    shareable::<Connections>();
    let (r, _) = block_on(full::<Recorder>());
    let connections = r.connections();
    let count = std::thread::spawn(move || connections.count())
        .join()
        .unwrap();
    assert_eq!(count, 7);
}

#[test]
fn many_models_on_one_server_behave_like_few() {
    let clock = Arc::new(ManualClock::new(start()));
    let mut ours = Recorder::new(clock.clone());
    let mut theirs = reference::Recorder::new(clock.clone());
    ours.enable();
    theirs.enable();
    let server = machine(0);
    let unit = agent("unit-wordpress-0");
    let models: Vec<ModelUuid> = (0..300).map(ModelUuid::from_u128).collect();
    for (id, model) in (0..).zip(&models) {
        ours.connect(&server, model, &unit, id, false, "");
        theirs.connect(&server, model, &unit, id, false, "");
    }
    let held = (ours.connections(), theirs.connections());
    // Empty two models in three, then bring new models in: their slots are
    // reused while the held view still reads the old ones.
    for id in (0..300).filter(|id| id % 3 != 0) {
        ours.disconnect(&server, id);
        theirs.disconnect(&server, id);
    }
    clock.advance(Duration::from_secs(1));
    for (id, model) in (1000..).zip((300..450).map(ModelUuid::from_u128)) {
        ours.connect(&server, &model, &unit, id, false, "");
        theirs.connect(&server, &model, &unit, id, false, "");
    }
    ours.server_down(&server);
    theirs.server_down(&server);
    for (ours, theirs) in [held, (ours.connections(), theirs.connections())] {
        assert_eq!(ours.count(), theirs.count());
        assert_eq!(ours.models(), theirs.models());
        assert_eq!(ours.values(), theirs.values());
        for model in (0..450).map(ModelUuid::from_u128) {
            assert_eq!(
                ours.for_model(&model).agent_status(&unit),
                theirs.for_model(&model).agent_status(&unit)
            );
        }
    }
}
