//! The behaviour cases of docs/spec.md §1.7 on the core `Recorder`, and what the
//! recorder and its views promise beyond them. The same cases run through
//! the actors in `actors/tests/presence_cases.rs`.

mod support;

use std::sync::Arc;
use std::time::Duration;

use futures::executor::block_on;
use muster::clock::{Clock, ManualClock};
use muster::names::{MachineTag, ModelUuid};
use muster::presence::{
    Connections, PresenceError, Recorder, ServerTable, Status, StatusCounts, Value,
};
use support::presence_cases::{
    agent, assert_empty, assert_values, bootstrap, bootstrap_uuid, connect, for_each_case, full,
    ha0, ha1, ha2, machine, missing, model_machine0, model_unit1, model_uuid, seen, start, value,
};

/// Runs each named case on the recorder.
macro_rules! on_the_recorder {
    ($($case:ident),* $(,)?) => {
        mod on_the_recorder {
            $(
                #[test]
                fn $case() {
                    futures::executor::block_on(
                        super::support::presence_cases::$case::<muster::presence::Recorder>(),
                    );
                }
            )*
        }
    };
}

for_each_case!(on_the_recorder);

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
    use support::reference;
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
