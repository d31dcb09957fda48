//! The presence subtree's failure semantics and report, on a paused clock.

mod support;

use std::sync::Arc;
use std::time::Duration;

use muster::clock::SystemClock;
use muster::names::ModelUuid;
use muster::presence::{Connections, ModelCounts, Status, StatusCounts, Value};
use muster_actors::presence::PresenceConfig;
use muster_actors::{ChildState, SendError};
use support::{presence_tree, server, unit};

#[actix::test]
async fn a_failed_server_actor_loses_nothing_and_other_servers_do_not_notice() {
    tokio::time::pause();
    let (presence, root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(1);
    for id in 0..300u64 {
        let at = server((id % 3) as u32);
        presence
            .connect(&at, &model, &unit(id), id, false, "")
            .await
            .unwrap();
    }
    let victim = presence.server_mailbox(&server(0)).await.unwrap().unwrap();
    let crashed = victim.call(|_, _| -> () { panic!("injected") }).await;
    assert!(
        matches!(crashed, Err(SendError::Lost { .. })),
        "{crashed:?}"
    );
    // Everything sent while the actor is down waits for it.
    for id in 300..330u64 {
        presence
            .connect(&server(0), &model, &unit(id), id, false, "")
            .await
            .unwrap();
    }
    for id in (0..30u64).map(|n| n * 3) {
        presence.disconnect(&server(0), id).await.unwrap();
    }
    presence.server_down(&server(1)).await.unwrap();

    let connections = presence.connections().await.unwrap();
    assert_eq!(connections.count(), 300);
    assert_eq!(connections.for_server(&server(0)).count(), 100);
    let model_view = connections.for_model(&model);
    assert_eq!(model_view.agent_status(&unit(3)), Ok(Status::Unknown));
    assert_eq!(model_view.agent_status(&unit(329)), Ok(Status::Alive));
    assert_eq!(model_view.agent_status(&unit(1)), Ok(Status::Missing));

    let report = root.report().await.unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let servers = &json["children"][0]["report"]["children"];
    let victim_report = servers
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "machine-0")
        .expect("machine-0 in the report");
    assert_eq!(victim_report["restarts"]["failure"], 1);
    assert_eq!(victim_report["last_error"], "panicked: injected");
    assert_eq!(
        victim_report["state"],
        serde_json::json!(ChildState::Started)
    );
    for other in servers.as_array().unwrap() {
        if other["name"] != "machine-0" && other["name"] != "router" {
            assert_eq!(other["start_count"], 1, "{other}");
        }
    }
}

#[actix::test]
async fn the_report_counts_connections_per_server_and_status() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(7);
    for id in 0..5u64 {
        let at = server(u32::from(id >= 3));
        presence
            .connect(&at, &model, &unit(id), id, false, "")
            .await
            .unwrap();
    }
    presence.server_down(&server(1)).await.unwrap();
    presence.connections().await.unwrap();
    let report = presence.report().await.unwrap();
    assert!(report.enabled);
    assert_eq!(report.total, 5);
    assert_eq!(
        report.servers.into_iter().collect::<Vec<_>>(),
        [
            (
                server(0),
                StatusCounts {
                    alive: 3,
                    missing: 0
                }
            ),
            (
                server(1),
                StatusCounts {
                    alive: 0,
                    missing: 2
                }
            ),
        ]
    );
}

#[actix::test]
async fn a_full_router_mailbox_refuses_at_once_and_loses_nothing_accepted() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(
        &PresenceConfig {
            router_mailbox: 8,
            ..PresenceConfig::default()
        },
        Arc::new(SystemClock),
    );
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(3);
    let mut accepted = 0;
    let mut refused = 0;
    for id in 0..100u64 {
        match presence
            .connect(&server(0), &model, &unit(id), id, false, "")
            .await
        {
            Ok(()) => accepted += 1,
            Err(SendError::Overloaded { capacity: 8, .. }) => refused += 1,
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!((accepted, refused), (8, 92));
    // Let the router drain its mailbox before asking it anything.
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(presence.connections().await.unwrap().count(), accepted);
}

#[actix::test]
async fn a_full_server_mailbox_holds_the_router_back_and_loses_nothing_accepted() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(
        &PresenceConfig {
            router_mailbox: 64,
            server_mailbox: 2,
            ..PresenceConfig::default()
        },
        Arc::new(SystemClock),
    );
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(4);
    // Far more than the server's actor can hold at once: the router waits
    // for room, its own mailbox fills, and the host is refused, never told
    // yes and then dropped.
    let mut accepted = Vec::new();
    let mut refused = 0;
    for id in 0..1_000u64 {
        match presence
            .connect(&server(0), &model, &unit(id), id, false, "")
            .await
        {
            Ok(()) => accepted.push(id),
            Err(SendError::Overloaded { .. }) => {
                refused += 1;
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(other) => panic!("{other}"),
        }
    }
    assert!(refused > 0, "the server's mailbox of 2 never filled");
    // A query, too, is refused while the server's mailbox is full.
    let mut connections = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(1)).await;
        if let Ok(answer) = presence.connections().await {
            connections = Some(answer);
            break;
        }
    }
    let connections = connections.expect("the server's actor catches up");
    assert_eq!(connections.count(), accepted.len());
    for id in accepted {
        assert_eq!(
            connections
                .for_model(&model)
                .agent_status(&unit(id))
                .unwrap(),
            Status::Alive
        );
    }
}

#[actix::test]
async fn a_restarted_router_keeps_its_servers_and_its_enabled_flag() {
    tokio::time::pause();
    let (presence, root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let model = ModelUuid::from_u128(5);
    presence
        .connect(&server(2), &model, &unit(1), 1, false, "")
        .await
        .unwrap();
    let crashed = presence
        .router_mailbox()
        .call(|_, _| -> () { panic!("router down") })
        .await;
    assert!(
        matches!(crashed, Err(SendError::Lost { .. })),
        "{crashed:?}"
    );
    presence
        .connect(&server(2), &model, &unit(2), 2, false, "")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(presence.is_enabled().await.unwrap());
    assert_eq!(presence.connections().await.unwrap().count(), 2);
    let report = root.report().await.unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let router_report = &json["children"][0]["report"]["children"][0];
    assert_eq!(router_report["name"], "router");
    assert_eq!(router_report["restarts"]["failure"], 1);
}

/// Each model's counts the long way, as `/api/models` once computed them:
/// every agent's status by `agent_status`, and whether all its connections
/// are controller-agent ones.
fn walk(connections: &Connections) -> Vec<ModelCounts> {
    connections
        .models()
        .into_iter()
        .map(|model| {
            let view = connections.for_model(&model);
            let agents = view.agents();
            let statuses: Vec<Status> = agents
                .iter()
                .map(|a| view.agent_status(a).unwrap())
                .collect();
            ModelCounts {
                model,
                connections: view.count(),
                agents: agents.len(),
                alive: statuses.iter().filter(|s| **s == Status::Alive).count(),
                missing: statuses.iter().filter(|s| **s == Status::Missing).count(),
                controller: agents
                    .iter()
                    .filter(|a| {
                        view.for_agent(a)
                            .values()
                            .iter()
                            .all(|v| v.controller_agent)
                    })
                    .count(),
            }
        })
        .collect()
}

#[actix::test]
async fn model_counts_agree_with_a_walk_of_every_connection() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let models = [ModelUuid::from_u128(1), ModelUuid::from_u128(2)];
    for id in 0..90u64 {
        let model = &models[(id % 2) as usize];
        let controller = id.is_multiple_of(7);
        presence
            .connect(
                &server((id % 3) as u32),
                model,
                &unit(id % 12),
                id,
                controller,
                "",
            )
            .await
            .unwrap();
    }
    // An agent seen only on a controller-agent connection.
    presence
        .connect(&server(0), &models[0], &unit(99), 500, true, "")
        .await
        .unwrap();
    presence.server_down(&server(1)).await.unwrap();
    let snapshot = vec![Value {
        model: models[0],
        server: server(2),
        agent: unit(40),
        controller_agent: false,
        connection_id: 1_000,
        status: Status::Alive,
        user_data: String::new(),
        last_seen: std::time::SystemTime::UNIX_EPOCH,
    }];
    presence.update_server(&server(2), snapshot).await.unwrap();
    for id in [0, 3, 6] {
        presence.disconnect(&server(0), id).await.unwrap();
    }
    // Asked right after the changes: the counts see all of them.
    let counts = presence.model_counts().await.unwrap();
    assert_eq!(counts, walk(&presence.connections().await.unwrap()));
    assert!(
        counts
            .iter()
            .any(|c| c.alive > 0 && c.missing > 0 && c.controller > 0),
        "{counts:?}"
    );
    assert_eq!(counts.iter().map(|c| c.connections).sum::<usize>(), 89);

    presence.disable().await.unwrap();
    assert_eq!(presence.model_counts().await.unwrap(), vec![]);
}
