//! Random sequences of every presence operation, run on the recorder and on
//! the linear reference model side by side: every query must agree after
//! every step, on fresh views and on a view taken earlier, and so must the
//! per-model counts the recorder keeps as changes arrive.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use muster::clock::ManualClock;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{self, Connections, Status, Value};
use proptest::prelude::*;

#[allow(
    dead_code,
    reason = "each test target uses part of the reference model"
)]
#[path = "support/reference.rs"]
mod reference;

const SERVERS: usize = 3;
const MODELS: usize = 3;
const AGENT_TEXTS: [&str; 6] = [
    "machine-0",
    "machine-1",
    "machine-0-lxd-1",
    "unit-wordpress-0",
    "unit-mysql-0",
    "application-mysql",
];
const USER_DATA: [&str; 6] = [
    "",
    "juju-4.0",
    "agent ☃ 4.0",
    "xxxxxxxxxxxxxxxxxxxxxx",
    "yyyyyyyyyyyyyyyyyyyyyyy",
    "a user data string well past any inline size",
];

struct Pools {
    servers: Vec<MachineTag>,
    models: Vec<ModelUuid>,
    agents: Vec<AgentTag>,
}

impl Pools {
    fn new() -> Self {
        Pools {
            servers: (0..SERVERS)
                .map(|n| format!("machine-{n}").parse().unwrap())
                .collect(),
            models: (0..MODELS as u128).map(ModelUuid::from_u128).collect(),
            agents: AGENT_TEXTS.iter().map(|t| t.parse().unwrap()).collect(),
        }
    }
}

#[derive(Clone, Debug)]
struct SnapshotValue {
    /// Names another server than the snapshot's, to provoke the mismatch.
    foreign: bool,
    model: usize,
    agent: usize,
    id: u64,
    controller_agent: bool,
    status: Status,
    user_data: usize,
    last_seen_secs: u64,
}

#[derive(Clone, Debug)]
enum Op {
    Connect {
        server: usize,
        model: usize,
        agent: usize,
        id: u64,
        controller_agent: bool,
        user_data: usize,
    },
    Disconnect {
        server: usize,
        id: u64,
    },
    /// Many connections of one model, so that groups grow past a few entries.
    ConnectRange {
        server: usize,
        model: usize,
        agent: usize,
        start: u64,
        len: u64,
    },
    /// Every `step`-th id of a range: empties groups partly or wholly.
    DisconnectRange {
        server: usize,
        start: u64,
        len: u64,
        step: u64,
    },
    Activity {
        server: usize,
        id: u64,
    },
    ServerDown {
        server: usize,
    },
    UpdateServer {
        server: usize,
        values: Vec<SnapshotValue>,
    },
    Enable,
    Disable,
    Advance(u64),
    /// Keep a view across the following steps.
    HoldView,
}

/// Few ids, so that connections collide across servers and operations hit
/// known ids often; some in the range the bulk operations use; plus the
/// extreme value.
fn id() -> impl Strategy<Value = u64> {
    prop_oneof![8 => 0u64..6, 2 => 100u64..140, 1 => Just(u64::MAX)]
}

fn status() -> impl Strategy<Value = Status> {
    prop_oneof![
        Just(Status::Unknown),
        Just(Status::Missing),
        Just(Status::Alive)
    ]
}

fn snapshot_value() -> impl Strategy<Value = SnapshotValue> {
    (
        prop::bool::weighted(0.05),
        0..MODELS,
        0..AGENT_TEXTS.len(),
        id(),
        any::<bool>(),
        status(),
        0..USER_DATA.len(),
        0u64..1_000,
    )
        .prop_map(
            |(foreign, model, agent, id, controller_agent, status, user_data, last_seen_secs)| {
                SnapshotValue {
                    foreign,
                    model,
                    agent,
                    id,
                    controller_agent,
                    status,
                    user_data,
                    last_seen_secs,
                }
            },
        )
}

fn connect() -> impl Strategy<Value = Op> {
    (
        0..SERVERS,
        0..MODELS,
        0..AGENT_TEXTS.len(),
        id(),
        prop::bool::weighted(0.2),
        0..USER_DATA.len(),
    )
        .prop_map(
            |(server, model, agent, id, controller_agent, user_data)| Op::Connect {
                server,
                model,
                agent,
                id,
                controller_agent,
                user_data,
            },
        )
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => connect(),
        4 => (0..SERVERS, id()).prop_map(|(server, id)| Op::Disconnect { server, id }),
        1 => (0..SERVERS, 0..MODELS, 0..AGENT_TEXTS.len(), 100u64..120, 0u64..40).prop_map(
            |(server, model, agent, start, len)| Op::ConnectRange { server, model, agent, start, len }
        ),
        1 => (0..SERVERS, 100u64..140, 0u64..40, 1u64..4).prop_map(
            |(server, start, len, step)| Op::DisconnectRange { server, start, len, step }
        ),
        3 => (0..SERVERS, id()).prop_map(|(server, id)| Op::Activity { server, id }),
        2 => (0..SERVERS).prop_map(|server| Op::ServerDown { server }),
        3 => (0..SERVERS, prop::collection::vec(snapshot_value(), 0..6))
            .prop_map(|(server, values)| Op::UpdateServer { server, values }),
        1 => Just(Op::Enable),
        1 => Just(Op::Disable),
        3 => (1u64..600).prop_map(Op::Advance),
        1 => Just(Op::HoldView),
    ]
}

/// One filter step of a view chain.
#[derive(Clone, Copy, Debug)]
enum Narrow {
    Model(usize),
    Server(usize),
    Agent(usize),
}

fn narrows() -> Vec<Narrow> {
    (0..MODELS)
        .map(Narrow::Model)
        .chain((0..SERVERS).map(Narrow::Server))
        .chain((0..AGENT_TEXTS.len()).map(Narrow::Agent))
        .collect()
}

fn apply(
    pools: &Pools,
    narrow: Narrow,
    ours: &Connections,
    theirs: &reference::Connections,
) -> (Connections, reference::Connections) {
    match narrow {
        Narrow::Model(i) => (
            ours.for_model(&pools.models[i]),
            theirs.for_model(&pools.models[i]),
        ),
        Narrow::Server(i) => (
            ours.for_server(&pools.servers[i]),
            theirs.for_server(&pools.servers[i]),
        ),
        Narrow::Agent(i) => (
            ours.for_agent(&pools.agents[i]),
            theirs.for_agent(&pools.agents[i]),
        ),
    }
}

/// Every query on one view must give the reference's answer.
fn same_answers(
    pools: &Pools,
    ours: &Connections,
    theirs: &reference::Connections,
    path: &[Narrow],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(ours.count(), theirs.count(), "count {:?}", path);
    prop_assert_eq!(ours.models(), theirs.models(), "models {:?}", path);
    prop_assert_eq!(ours.servers(), theirs.servers(), "servers {:?}", path);
    prop_assert_eq!(ours.agents(), theirs.agents(), "agents {:?}", path);
    let values = theirs.values();
    prop_assert_eq!(ours.values(), values.clone(), "values {:?}", path);
    let counts = ours.count_by_status();
    let of = |status| values.iter().filter(|v| v.status == status).count();
    prop_assert_eq!(
        (counts.alive, counts.missing),
        (of(Status::Alive), of(Status::Missing)),
        "count_by_status {:?}",
        path
    );
    prop_assert_eq!(
        ours.agent_statuses(),
        theirs.agent_statuses(),
        "agent_statuses {:?}",
        path
    );
    let stranger: AgentTag = "unit-stranger-9".parse().unwrap();
    for agent in pools.agents.iter().chain([&stranger]) {
        prop_assert_eq!(
            ours.agent_status(agent),
            theirs.agent_status(agent),
            "agent_status({}) {:?}",
            agent,
            path
        );
    }
    Ok(())
}

/// The unnarrowed view and every chain of one or two filters, including
/// chains that narrow the same axis twice.
fn same_views(
    pools: &Pools,
    ours: &Connections,
    theirs: &reference::Connections,
) -> Result<(), TestCaseError> {
    same_answers(pools, ours, theirs, &[])?;
    let narrows = narrows();
    for &first in &narrows {
        let (ours1, theirs1) = apply(pools, first, ours, theirs);
        same_answers(pools, &ours1, &theirs1, &[first])?;
        for &second in &narrows {
            let (ours2, theirs2) = apply(pools, second, &ours1, &theirs1);
            same_answers(pools, &ours2, &theirs2, &[first, second])?;
        }
    }
    Ok(())
}

fn snapshot(pools: &Pools, server: usize, values: &[SnapshotValue]) -> Vec<Value> {
    values
        .iter()
        .map(|v| Value {
            model: pools.models[v.model],
            server: pools.servers[if v.foreign {
                (server + 1) % SERVERS
            } else {
                server
            }]
            .clone(),
            agent: pools.agents[v.agent].clone(),
            controller_agent: v.controller_agent,
            connection_id: v.id,
            status: v.status,
            user_data: USER_DATA[v.user_data].to_owned(),
            last_seen: SystemTime::UNIX_EPOCH + Duration::from_secs(v.last_seen_secs),
        })
        .collect()
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let pools = Pools::new();
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ));
    let mut ours = presence::Recorder::new(clock.clone());
    let mut theirs = reference::Recorder::new(clock.clone());
    ours.enable();
    theirs.enable();
    let mut held: Option<(Connections, reference::Connections)> = None;
    for op in ops {
        match &op {
            &Op::Connect {
                server,
                model,
                agent,
                id,
                controller_agent,
                user_data,
            } => {
                let args = (
                    &pools.servers[server],
                    &pools.models[model],
                    &pools.agents[agent],
                );
                ours.connect(
                    args.0,
                    args.1,
                    args.2,
                    id,
                    controller_agent,
                    USER_DATA[user_data],
                );
                theirs.connect(
                    args.0,
                    args.1,
                    args.2,
                    id,
                    controller_agent,
                    USER_DATA[user_data],
                );
            }
            &Op::Disconnect { server, id } => {
                ours.disconnect(&pools.servers[server], id);
                theirs.disconnect(&pools.servers[server], id);
            }
            &Op::ConnectRange {
                server,
                model,
                agent,
                start,
                len,
            } => {
                for id in start..start + len {
                    let server = &pools.servers[server];
                    let (model, agent) = (&pools.models[model], &pools.agents[agent]);
                    ours.connect(server, model, agent, id, false, "");
                    theirs.connect(server, model, agent, id, false, "");
                }
            }
            &Op::DisconnectRange {
                server,
                start,
                len,
                step,
            } => {
                for id in (start..start + len).step_by(step as usize) {
                    ours.disconnect(&pools.servers[server], id);
                    theirs.disconnect(&pools.servers[server], id);
                }
            }
            &Op::Activity { server, id } => {
                ours.activity(&pools.servers[server], id);
                theirs.activity(&pools.servers[server], id);
            }
            &Op::ServerDown { server } => {
                ours.server_down(&pools.servers[server]);
                theirs.server_down(&pools.servers[server]);
            }
            Op::UpdateServer { server, values } => {
                let values = snapshot(&pools, *server, values);
                let server = &pools.servers[*server];
                prop_assert_eq!(
                    ours.update_server(server, values.clone()),
                    theirs.update_server(server, values),
                    "update_server"
                );
            }
            Op::Enable => {
                ours.enable();
                theirs.enable();
            }
            Op::Disable => {
                ours.disable();
                theirs.disable();
            }
            &Op::Advance(secs) => clock.advance(Duration::from_secs(secs)),
            Op::HoldView => held = Some((ours.connections(), theirs.connections())),
        }
        prop_assert_eq!(ours.is_enabled(), theirs.is_enabled());
        same_views(&pools, &ours.connections(), &theirs.connections())?;
        prop_assert_eq!(
            ours.model_counts(),
            theirs.connections().model_counts(),
            "model_counts after {:?}",
            op
        );
        for server in &pools.servers {
            let expected = theirs.connections().for_server(server).values();
            let counts = ours
                .server_table(server)
                .map(|table| table.count_by_status())
                .unwrap_or_default();
            prop_assert_eq!(
                (counts.alive, counts.missing),
                (
                    expected
                        .iter()
                        .filter(|v| v.status == Status::Alive)
                        .count(),
                    expected
                        .iter()
                        .filter(|v| v.status == Status::Missing)
                        .count(),
                ),
                "count_by_status({})",
                server
            );
        }
        if let Some((ours_then, theirs_then)) = &held {
            same_answers(&pools, ours_then, theirs_then, &[])?;
            for narrow in narrows() {
                let (o, t) = apply(&pools, narrow, ours_then, theirs_then);
                same_answers(&pools, &o, &t, &[narrow])?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_recorder_answers_as_the_linear_model_does(ops in prop::collection::vec(op(), 1..60)) {
        run(ops)?;
    }
}
