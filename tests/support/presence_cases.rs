//! The behaviour cases of docs/spec.md §1.7, on Juju's fixture: a controller model with
//! three HA machines and a hosted model with two machines and two units.
//!
//! Each case is generic over [`Presence`], so that the same case runs on the
//! core `Recorder` (`tests/presence_cases.rs`) and, unchanged, through the
//! actors' handle (`actors/tests/presence_cases.rs`). [`for_each_case!`]
//! names every case once, for both.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use muster::clock::{Clock, ManualClock};
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Connections, PresenceError, Recorder, Status, Value};

pub const BOOTSTRAP_UUID: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";
pub const MODEL_UUID: &str = "c0ffee00-1234-4abc-9def-0123456789ab";

pub fn start() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

pub fn machine(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

pub fn agent(text: &str) -> AgentTag {
    text.parse().unwrap()
}

pub fn bootstrap_uuid() -> ModelUuid {
    BOOTSTRAP_UUID.parse().unwrap()
}

pub fn model_uuid() -> ModelUuid {
    MODEL_UUID.parse().unwrap()
}

pub fn value(model: ModelUuid, server: u32, agent_tag: &str, id: u64) -> Value {
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

pub fn ha0() -> Value {
    value(bootstrap_uuid(), 0, "machine-0", 1234)
}
pub fn ha1() -> Value {
    value(bootstrap_uuid(), 1, "machine-1", 1235)
}
pub fn ha2() -> Value {
    value(bootstrap_uuid(), 2, "machine-2", 1236)
}
pub fn model_machine0() -> Value {
    value(model_uuid(), 1, "machine-0", 1237)
}
pub fn model_machine1() -> Value {
    value(model_uuid(), 2, "machine-1", 1238)
}
pub fn model_unit1() -> Value {
    value(model_uuid(), 0, "unit-wordpress-0", 1239)
}
pub fn model_unit2() -> Value {
    value(model_uuid(), 0, "unit-mysql-0", 12409)
}

pub fn missing(mut v: Value) -> Value {
    v.status = Status::Missing;
    v
}

pub fn seen(mut v: Value, when: SystemTime) -> Value {
    v.last_seen = when;
    v
}

pub fn connect(r: &mut Recorder, v: &Value) {
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
pub async fn bootstrap<P: Presence>() -> (P, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start()));
    let mut r = P::start(clock.clone()).await;
    r.enable().await;
    r.connect(&ha0()).await;
    (r, clock)
}

pub async fn enable_ha<P: Presence>(r: &mut P) {
    r.connect(&ha1()).await;
    r.connect(&ha2()).await;
}

pub async fn deploy_model<P: Presence>(r: &mut P) {
    for v in [
        model_machine0(),
        model_machine1(),
        model_unit1(),
        model_unit2(),
    ] {
        r.connect(&v).await;
    }
}

pub async fn full<P: Presence>() -> (P, Arc<ManualClock>) {
    let (mut r, clock) = bootstrap::<P>().await;
    enable_ha(&mut r).await;
    deploy_model(&mut r).await;
    (r, clock)
}

/// `values()` is sorted by (server, connection id); sort the expectation the
/// same way so tests state sets.
pub fn sorted(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by(|a, b| (&a.server, a.connection_id).cmp(&(&b.server, b.connection_id)));
    values
}

pub fn assert_values(connections: &Connections, expected: Vec<Value>) {
    assert_eq!(connections.values(), sorted(expected));
}

pub fn assert_empty(connections: &Connections) {
    assert_eq!(connections.count(), 0);
    assert!(connections.models().is_empty());
    assert!(connections.servers().is_empty());
    assert!(connections.agents().is_empty());
    assert!(connections.values().is_empty());
}

/// The presence operations the behaviour cases use, so that each case runs
/// on the core `Recorder` and, unchanged, through the actors' handle.
pub trait Presence: Sized {
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

/// Calls `$run!(case_01_..., case_02_..., ...)` with the name of every case,
/// so that a new case runs on every implementation of [`Presence`].
// Only the tests that run the cases use it.
#[allow(unused_macros)]
macro_rules! for_each_case {
    ($run:ident) => {
        $run!(
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
    };
}
#[allow(unused_imports)]
pub(crate) use for_each_case;

pub async fn case_01_empty_recorder<P: Presence>() {
    let mut r = P::start(Arc::new(ManualClock::new(start()))).await;
    assert!(!r.is_enabled().await);
    r.enable().await;
    assert!(r.is_enabled().await);
    assert_empty(&r.connections().await);
}

pub async fn case_02_bootstrap<P: Presence>() {
    let (r, _) = bootstrap::<P>().await;
    let connections = r.connections().await;
    assert_values(&connections, vec![ha0()]);
    assert_values(&connections.for_model(&bootstrap_uuid()), vec![ha0()]);
    assert_empty(&connections.for_model(&model_uuid()));
}

pub async fn case_03_ha_controller<P: Presence>() {
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

pub async fn case_04_models<P: Presence>() {
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

pub async fn case_05_time_recording<P: Presence>() {
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

pub async fn case_06_activity<P: Presence>() {
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

pub async fn case_07_disconnect<P: Presence>() {
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

pub async fn case_08_disable_clears<P: Presence>() {
    let (mut r, _) = full::<P>().await;
    r.disable().await;
    assert!(!r.is_enabled().await);
    assert_empty(&r.connections().await);
    // Enabling again does not bring anything back.
    r.enable().await;
    assert_empty(&r.connections().await);
}

pub async fn case_09_server_down<P: Presence>() {
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

pub async fn case_10_server_down_then_reconnects<P: Presence>() {
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

pub async fn case_11_update_server_races_with_reconnects<P: Presence>() {
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

pub async fn case_12_update_server_after_server_down<P: Presence>() {
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

pub async fn case_13_update_server_with_a_mismatched_value<P: Presence>() {
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

pub async fn case_14_connections_after_server_down<P: Presence>() {
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
