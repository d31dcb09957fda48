//! Following one server from outside the tree (its tap and its numbered
//! snapshot), and the host's own children in the presence subtree: what a
//! bridge between API servers stands on (docs/spec.md §11.1, §11.2).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use futures::StreamExt;
use muster::clock::SystemClock;
use muster::names::ModelUuid;
use muster::sim::{Sim, SimConfig};
use muster_actors::presence::{ChangeKind, PresenceConfig, PresenceHandle, Tap};
use muster_actors::{
    Backends, ChildSpec, Extensions, Mailbox, Muster, MusterConfig, SendError, StartError,
    SupervisorError,
};
use prometheus_client::registry::Registry;
use support::{logger, presence_tree, server, unit};

fn model() -> ModelUuid {
    ModelUuid::from_u128(7)
}

/// Every change waiting on `tap`, as (number, kind).
fn drain(tap: &mut Tap) -> Vec<(u64, ChangeKind)> {
    std::iter::from_fn(|| tap.try_recv().map(|c| (c.seq, c.kind))).collect()
}

#[actix::test]
async fn a_tap_hears_its_servers_connects_and_disconnects_numbered_and_nothing_else() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    presence
        .connect(&server(0), &model(), &unit(1), 1, false, "")
        .await
        .unwrap();
    let mut tap = presence.tap(&server(0)).await.unwrap();
    assert_eq!(
        tap.start(),
        0,
        "numbers start when the server is first followed"
    );
    presence
        .connect(&server(0), &model(), &unit(2), 2, true, "data")
        .await
        .unwrap();
    presence.activity(&server(0), 2).await.unwrap();
    presence
        .connect(&server(1), &model(), &unit(3), 3, false, "")
        .await
        .unwrap();
    presence.disconnect(&server(0), 1).await.unwrap();
    presence.server_down(&server(0)).await.unwrap();
    presence.connections().await.unwrap();
    assert_eq!(
        drain(&mut tap),
        vec![
            (
                1,
                ChangeKind::Connect {
                    id: 2,
                    model: model(),
                    agent: unit(2),
                    controller_agent: true,
                    user_data: "data".into(),
                }
            ),
            (2, ChangeKind::Disconnect { id: 1 }),
            (3, ChangeKind::Reset),
        ]
    );
    assert_eq!(tap.latest(), 3);
    // Disabling empties every table: a wholesale change too.
    presence.disable().await.unwrap();
    assert_eq!(drain(&mut tap), vec![(4, ChangeKind::Reset)]);
    // While disabled nothing is recorded, so nothing is heard.
    presence
        .connect(&server(0), &model(), &unit(4), 4, false, "")
        .await
        .unwrap();
    presence.is_enabled().await.unwrap();
    assert_eq!(drain(&mut tap), vec![]);
}

#[actix::test]
async fn a_snapshot_holds_exactly_the_changes_numbered_up_to_its_own() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let unknown = presence.snapshot(&server(5)).await.unwrap();
    assert_eq!((unknown.seq, unknown.values.len()), (0, 0));
    let mut tap = presence.tap(&server(0)).await.unwrap();
    // Snapshots asked while connects stream in: each holds as many
    // connections as changes it says it holds, no more, no fewer.
    let mut asked = Vec::new();
    for id in 1..=2_000u64 {
        presence
            .connect(&server(0), &model(), &unit(id), id, false, "")
            .await
            .unwrap();
        if id % 250 == 0 {
            asked.push(tokio::spawn({
                let presence = presence.clone();
                async move { presence.snapshot(&server(0)).await }
            }));
        }
        tokio::task::yield_now().await;
    }
    let mut seqs = Vec::new();
    for snapshot in asked {
        let snapshot = snapshot.await.unwrap().unwrap();
        assert_eq!(snapshot.values.len() as u64, snapshot.seq);
        let ids: Vec<u64> = snapshot.values.iter().map(|v| v.connection_id).collect();
        assert_eq!(ids, (1..=snapshot.seq).collect::<Vec<_>>());
        seqs.push(snapshot.seq);
    }
    seqs.dedup();
    assert!(
        seqs.len() > 4,
        "the snapshots were taken along the way: {seqs:?}"
    );
    let last = presence.snapshot(&server(0)).await.unwrap();
    assert_eq!((last.seq, last.values.len()), (2_000, 2_000));
    assert_eq!(drain(&mut tap).len(), 2_000);
}

#[actix::test]
async fn the_numbers_go_on_across_a_restart_of_the_router() {
    tokio::time::pause();
    let (presence, _root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let mut tap = presence.tap(&server(0)).await.unwrap();
    presence
        .connect(&server(0), &model(), &unit(1), 1, false, "")
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
        .connect(&server(0), &model(), &unit(2), 2, false, "")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let seqs: Vec<u64> = drain(&mut tap).into_iter().map(|(seq, _)| seq).collect();
    assert_eq!(seqs, [1, 2], "the tap outlives the router's restart");
    assert_eq!(presence.snapshot(&server(0)).await.unwrap().seq, 2);
}

/// A host's child of the presence subtree: it follows `machine-0` through
/// the handle it was made with, and keeps the number of the last change it
/// heard.
struct Follower {
    presence: PresenceHandle,
    heard: Arc<AtomicU64>,
}

impl Actor for Follower {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let presence = self.presence.clone();
        let changes = futures::stream::once(async move { presence.tap(&server(0)).await.ok() })
            .filter_map(std::future::ready)
            .flat_map(|tap| {
                futures::stream::unfold(tap, |mut tap| async move {
                    tap.recv().await.map(|change| (change.seq, tap))
                })
            });
        ctx.add_stream(changes);
    }
}
muster_actors::supervised!(Follower);

impl StreamHandler<u64> for Follower {
    fn handle(&mut self, seq: u64, _ctx: &mut Context<Self>) {
        self.heard.store(seq, Ordering::SeqCst);
    }

    fn finished(&mut self, _ctx: &mut Context<Self>) {}
}

/// Extensions with one follower child called `name`.
fn with_follower(name: &str, mailbox: &Mailbox<Follower>, heard: &Arc<AtomicU64>) -> Extensions {
    let (name, mailbox, heard) = (name.to_owned(), mailbox.clone(), heard.clone());
    Extensions::new().presence_child(move |presence| {
        let presence = presence.clone();
        let reported = mailbox.reporter(|f: &Follower| f.heard.load(Ordering::SeqCst).into());
        ChildSpec::actor(name, &mailbox, move |_cx| {
            Ok(Follower {
                presence: presence.clone(),
                heard: heard.clone(),
            })
        })
        .report(reported)
    })
}

fn start_with(extensions: Extensions) -> Result<Muster, StartError> {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let backends = Backends::sim(&sim, Arc::new(SystemClock));
    let mut registry = Registry::default();
    Muster::start_with(
        &MusterConfig::default(),
        backends,
        extensions,
        logger(),
        &mut registry,
    )
}

#[actix::test]
async fn a_hosts_child_lives_and_restarts_in_the_presence_subtree() {
    tokio::time::pause();
    let heard = Arc::new(AtomicU64::new(0));
    let mailbox: Mailbox<Follower> = Mailbox::new(16);
    let muster = start_with(with_follower("follower", &mailbox, &heard)).unwrap();
    let presence = muster.presence().clone();
    presence.enable().await.unwrap();
    for id in 1..=3 {
        presence
            .connect(&server(0), &model(), &unit(id), id, false, "")
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(heard.load(Ordering::SeqCst), 3);

    let report = muster.report().await.unwrap();
    let subtree = report.child("presence").unwrap().report.clone().unwrap();
    let children: Vec<&str> = subtree["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(children, ["router", "follower", "machine-0"]);
    assert_eq!(subtree["children"][1]["report"], 3);
    assert!(subtree["children"][1]["mailbox"].is_object(), "{subtree}");

    // It fails and restarts as any child of the subtree does, and the
    // numbers it hears go on from where they were.
    let crashed = mailbox.call(|_, _| -> () { panic!("injected") }).await;
    assert!(
        matches!(crashed, Err(SendError::Lost { .. })),
        "{crashed:?}"
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    presence
        .connect(&server(0), &model(), &unit(4), 4, false, "")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(heard.load(Ordering::SeqCst), 4);
    let report = muster.report().await.unwrap();
    let subtree = report.child("presence").unwrap().report.clone().unwrap();
    assert_eq!(
        subtree["children"][1]["restarts"]["failure"], 1,
        "{subtree}"
    );
}

#[actix::test]
async fn a_child_named_as_the_subtrees_own_is_refused() {
    let heard = Arc::new(AtomicU64::new(0));
    for name in ["router", "machine-3"] {
        let mailbox: Mailbox<Follower> = Mailbox::new(16);
        let refused = start_with(with_follower(name, &mailbox, &heard)).err();
        assert!(
            matches!(
                &refused,
                Some(StartError::Tree(SupervisorError::Duplicate { supervisor, child }))
                    if supervisor == "presence" && child == name
            ),
            "{name}: {refused:?}"
        );
    }
}

/// A peer's connection as a bridge hands it over: alive, seen now.
fn peer_value(id: u64) -> muster::presence::Value {
    muster::presence::Value {
        model: model(),
        server: server(1),
        agent: unit(id),
        controller_agent: false,
        connection_id: id,
        status: muster::presence::Status::Alive,
        user_data: String::new(),
        last_seen: std::time::SystemTime::now(),
    }
}

/// The status of each of `server(1)`'s connections, by id.
async fn statuses(presence: &PresenceHandle) -> Vec<(u64, muster::presence::Status)> {
    let mut seen: Vec<(u64, muster::presence::Status)> = presence
        .connections()
        .await
        .unwrap()
        .values()
        .into_iter()
        .filter(|v| v.server == server(1))
        .map(|v| (v.connection_id, v.status))
        .collect();
    seen.sort();
    seen
}

#[actix::test]
async fn replacing_a_server_is_one_step_that_no_query_sees_half_done() {
    use muster::presence::Status::{Alive, Missing};
    let (presence, _root) = presence_tree(&PresenceConfig::default(), Arc::new(SystemClock));
    presence.enable().await.unwrap();
    let peer = server(1);
    presence
        .update_server(&peer, (1..=3).map(peer_value).collect())
        .await
        .unwrap();

    // In two steps, a query sent between them sees the peer's agents
    // missing although the snapshot that follows holds them.
    let (down, between, update) = futures::join!(
        presence.server_down(&peer),
        statuses(&presence),
        presence.update_server(&peer, (1..=3).map(peer_value).collect()),
    );
    down.unwrap();
    update.unwrap();
    assert_eq!(between, [(1, Missing), (2, Missing), (3, Missing)]);

    // In one, queries sent around it see the table before or after, never
    // between; a connection the snapshot no longer holds goes missing.
    for round in 0..50u64 {
        let kept = [1, 2, 3 + round % 2];
        let (before, replaced, after) = futures::join!(
            statuses(&presence),
            presence.replace_server(&peer, kept.iter().copied().map(peer_value).collect()),
            statuses(&presence),
        );
        replaced.unwrap();
        for seen in [&before, &after] {
            assert!(
                seen.contains(&(1, Alive)) && seen.contains(&(2, Alive)),
                "round {round}: a query saw the peer half replaced: {seen:?}"
            );
        }
        let gone = 3 + (round + 1) % 2;
        assert!(
            after.contains(&(kept[2], Alive)) && !after.contains(&(gone, Alive)),
            "round {round}: {after:?}"
        );
    }

    // A refused snapshot changes nothing.
    let mut foreign = peer_value(9);
    foreign.server = server(2);
    assert!(presence.replace_server(&peer, vec![foreign]).await.is_err());
    assert!(statuses(&presence).await.contains(&(1, Alive)));
}
