//! Every connect and disconnect the agents' door accepts reaches presence:
//! in a host's tree with the door beside muster, while the host restarts
//! muster, while presence's router is held with its mailbox full, and
//! while the door itself restarts. Presence ends up holding exactly the
//! connections that are open: no agent left alive after it went, none told
//! it is in and never recorded.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use actix::prelude::*;
use futures::SinkExt;
use muster::clock::Clock;
use muster::names::MachineTag;
use muster::presence::Status;
use muster_actors::mailbox::SendError;
use muster_actors::presence::PresenceActor;
use muster_actors::{ChildState, MusterConfig, RestartConfig};
use muster_door::client::{Client, Login, LoginFailure, Session};
use support::agents::*;
use tokio_tungstenite::tungstenite::Message;

/// The host restarts muster slowly enough that what agents do meanwhile
/// lands while it is down.
fn host(error_delay: Duration, backoff_factor: f64) -> RestartConfig {
    RestartConfig {
        error_delay,
        backoff_factor,
        jitter_seed: Some(7),
        ..RestartConfig::default()
    }
}

/// The door's settings: logins may wait `login_timeout`; no pings, so
/// that agents that do not read stay as long as the test runs.
fn door(login_timeout: Duration) -> muster_door::AgentsConfig {
    config_with(|c| {
        c.login_timeout = login_timeout;
        c.ping_interval = Duration::from_secs(3600);
        c.idle_timeout = Duration::from_secs(7200);
    })
}

fn agent(n: usize) -> Login {
    Login::new(model(), format!("machine-{n}").parse().unwrap())
}

/// The connection ids presence holds for the tests' model.
async fn recorded(fixture: &Fixture) -> BTreeSet<u64> {
    try_recorded(fixture).await.unwrap()
}

/// [`recorded`], or why presence did not answer (a full router mailbox).
async fn try_recorded(fixture: &Fixture) -> Result<BTreeSet<u64>, SendError> {
    let connections = fixture.muster.presence().connections().await?;
    Ok(connections
        .for_model(&model())
        .values()
        .into_iter()
        .map(|v| v.connection_id)
        .collect())
}

/// Waits (bounded, on the paused clock) until presence holds exactly
/// `live`, asking again while its router's mailbox is full; then says
/// what it holds.
async fn holds_exactly(fixture: &Fixture, live: &BTreeMap<u64, Session>) {
    let want: BTreeSet<u64> = live.keys().copied().collect();
    for _ in 0..600 {
        if try_recorded(fixture).await.is_ok_and(|held| held == want) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = recorded(fixture).await;
    let ghosts: Vec<_> = held.difference(&want).collect();
    let missing: Vec<_> = want.difference(&held).collect();
    panic!("presence holds ghosts {ghosts:?} and misses agents {missing:?}");
}

/// muster's state and start count in the host's report.
async fn muster_state(fixture: &Fixture) -> (ChildState, u64) {
    let report = fixture.root.report().await.unwrap();
    let muster = report.child("muster").unwrap();
    (muster.state, muster.start_count)
}

/// Kills muster and waits until its router is down: from here until the
/// host restarts it, every call through the handle waits.
async fn kill_muster(fixture: &Fixture) {
    fixture.root.supervisor().kill("muster").await.unwrap();
    let router = fixture.muster.presence().router_mailbox();
    for _ in 0..1000 {
        if !router.is_running() {
            return;
        }
        tokio::task::yield_now().await;
    }
    panic!("muster's router still runs after muster was killed");
}

/// Waits (bounded, moving the paused clock a millisecond at a time) until
/// `check` holds.
async fn until(what: &str, mut check: impl FnMut() -> bool) {
    for _ in 0..2000 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("never: {what}");
}

#[actix_web::test]
async fn presence_holds_exactly_the_live_connections_across_restarts_of_muster() {
    let fixture = Fixture::start_in(
        host(Duration::from_secs(5), 1.2),
        MusterConfig::default(),
        door(Duration::from_secs(30)),
    )
    .await;
    let queued = {
        let door = fixture.door.clone().unwrap();
        move || door.disconnects_queued()
    };
    tokio::time::pause();
    let client = Client::new(&fixture.url, None).unwrap();
    let mut live = BTreeMap::new();
    let mut agents = 0;
    for _ in 0..60 {
        let session = client.login(&agent(agents)).await.unwrap();
        live.insert(session.connection_id(), session);
        agents += 1;
    }
    holds_exactly(&fixture, &live).await;
    for round in 1..=4u64 {
        kill_muster(&fixture).await;
        // Agents log in while muster is down: each login waits for it.
        let joining: Vec<_> = (agents..agents + 20)
            .map(|n| {
                let client = client.clone();
                tokio::spawn(async move { client.login(&agent(n)).await })
            })
            .collect();
        agents += 20;
        // A third of the agents leave meanwhile, half of them with a close
        // frame and half by dropping the socket.
        let leaving: Vec<u64> = live.keys().copied().step_by(3).collect();
        for (n, id) in leaving.iter().enumerate() {
            let session = live.remove(id).unwrap();
            if n % 2 == 0 {
                session.close().await;
            } else {
                drop(session);
            }
        }
        let all = leaving.len();
        until("the door holds every disconnect for presence", || {
            queued() == all
        })
        .await;
        let (state, starts) = muster_state(&fixture).await;
        assert_ne!(state, ChildState::Started, "round {round}");
        assert_eq!(starts, round, "muster is still down in round {round}");
        for joined in joining {
            let session = joined.await.unwrap().unwrap();
            live.insert(session.connection_id(), session);
        }
        assert_eq!(muster_state(&fixture).await.1, round + 1);
    }
    holds_exactly(&fixture, &live).await;
    assert_eq!(queued(), 0);
    assert_eq!(
        fixture.metric("muster_agents_disconnects_queued").await,
        0.0
    );
    fixture.stop().await;
}

#[actix_web::test]
async fn a_login_waits_for_muster_and_past_login_timeout_is_refused_4503() {
    // The first restart after 1 s, the second after 3 s (±10 %).
    let fixture = Fixture::start_in(
        host(Duration::from_secs(1), 3.0),
        MusterConfig::default(),
        door(Duration::from_secs(2)),
    )
    .await;
    tokio::time::pause();
    let client = Client::new(&fixture.url, None).unwrap();
    kill_muster(&fixture).await;
    let session = client.login(&agent(1)).await.unwrap();
    // Told it is in once presence holds it, not before.
    assert_eq!(
        recorded(&fixture).await,
        BTreeSet::from([session.connection_id()])
    );
    kill_muster(&fixture).await;
    let refused = client.login(&agent(2)).await.unwrap_err();
    assert!(matches!(refused, LoginFailure::Closed(4503)), "{refused:?}");
    assert_ne!(muster_state(&fixture).await.0, ChildState::Started);
    // Once muster runs again, presence holds the first agent alone: the
    // refused login's connect was never sent.
    let mut live = BTreeMap::new();
    live.insert(session.connection_id(), session);
    holds_exactly(&fixture, &live).await;
    for (series, value) in [
        ("muster_agents_logins_total{result=\"ok\"}", 1.0),
        ("muster_agents_logins_total{result=\"4503\"}", 1.0),
    ] {
        assert_eq!(fixture.metric(series).await, value, "{series}");
    }
    fixture.stop().await;
}

/// Presence's router, held: it handles nothing until released, as when it
/// waits for room at a server's actor, and its mailbox is full.
struct Held {
    release: tokio::sync::oneshot::Sender<()>,
    /// How many events filled the mailbox.
    filled: usize,
}

impl Held {
    fn release(self) {
        self.release.send(()).unwrap();
    }
}

/// Holds presence's router, then fills its mailbox with activity through
/// the handle, so that the door is refused at once.
async fn hold_router(fixture: &Fixture) -> Held {
    let presence = fixture.muster.presence();
    let (release, released) = tokio::sync::oneshot::channel::<()>();
    presence
        .router_mailbox()
        .call(move |router: &mut PresenceActor, ctx| {
            ctx.wait(
                async {
                    let _ = released.await;
                }
                .into_actor(router),
            );
        })
        .await
        .unwrap();
    let server: MachineTag = "machine-0".parse().unwrap();
    let mut filled = 0;
    while presence.activity(&server, 0).await.is_ok() {
        filled += 1;
        assert!(filled <= 1000, "the router's mailbox never filled");
    }
    Held { release, filled }
}

/// A tree whose router takes at most 16 events at a time.
fn small_router() -> MusterConfig {
    let mut tree = MusterConfig::default();
    tree.presence.router_mailbox = 16;
    tree
}

#[actix_web::test]
async fn disconnects_wait_for_a_router_held_full_longer_than_any_retry_window() {
    let fixture = Fixture::start_in(
        RestartConfig::default(),
        small_router(),
        door(Duration::from_secs(10)),
    )
    .await;
    let door = fixture.door.clone().unwrap();
    tokio::time::pause();
    let client = Client::new(&fixture.url, None).unwrap();
    let mut sessions = Vec::new();
    for n in 0..30 {
        sessions.push(client.login(&agent(n)).await.unwrap());
    }
    let staying = sessions.split_off(20);
    assert_eq!(recorded(&fixture).await.len(), 30);
    let held = hold_router(&fixture).await;
    assert_eq!(held.filled, 16);
    for (n, session) in sessions.into_iter().enumerate() {
        if n % 2 == 0 {
            session.close().await;
        } else {
            drop(session);
        }
    }
    until("twenty disconnects queued", || {
        door.disconnects_queued() == 20
    })
    .await;
    assert_eq!(
        fixture.metric("muster_agents_disconnects_queued").await,
        20.0
    );
    // The door restarts meanwhile, 3 s after its kill (the report, which
    // would ask the held router too, says so once it is released): its
    // queue is kept.
    fixture.root.supervisor().kill("door").await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(door.disconnects_queued(), 20, "still held, still queued");
    // A minute later, far past any retry window, the router takes its
    // mailbox again: the queue drains.
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert_eq!(door.disconnects_queued(), 20);
    held.release();
    let live: BTreeMap<u64, Session> = staying
        .into_iter()
        .map(|s| (s.connection_id(), s))
        .collect();
    holds_exactly(&fixture, &live).await;
    assert_eq!(door.disconnects_queued(), 0);
    let report = fixture.root.report().await.unwrap();
    assert_eq!(report.child("door").unwrap().start_count, 2);
    assert_eq!(
        fixture.metric("muster_agents_disconnects_queued").await,
        0.0
    );
    fixture.stop().await;
}

#[actix_web::test]
async fn closing_the_door_records_every_queued_disconnect_before_it_answers() {
    let mut fixture = Fixture::start_with(small_router(), door(Duration::from_secs(10))).await;
    tokio::time::pause();
    let client = Client::new(&fixture.url, None).unwrap();
    let mut sessions = Vec::new();
    for n in 0..10 {
        sessions.push(client.login(&agent(n)).await.unwrap());
    }
    let held = hold_router(&fixture).await;
    // Each agent reads its close frame, so that the door's close is not
    // held up by agents that do not answer.
    let reading: Vec<_> = sessions
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move {
                let end = loop {
                    if let Some(end) = s.next_end().await {
                        break end;
                    }
                };
                s.finish().await;
                end
            })
        })
        .collect();
    let door = fixture.door.take().unwrap();
    let release = async {
        until("every disconnect queued", || {
            door.disconnects_queued() == 10
        })
        .await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        held.release();
    };
    futures::join!(door.close(), release);
    assert_eq!(door.disconnects_queued(), 0);
    assert_eq!(fixture.total().await, 0);
    for read in reading {
        assert_eq!(read.await.unwrap().to_string(), "1001");
    }
    fixture.stop().await;
}

#[actix_web::test]
async fn activity_presence_cannot_take_is_let_go_and_the_next_frame_reports_it() {
    let fixture = Fixture::start_in(
        RestartConfig::default(),
        small_router(),
        config_with(|c| c.activity_interval = Duration::ZERO),
    )
    .await;
    let (mut ws, id) = login(&fixture.url, "machine-1").await;
    let login_stamp = fixture.clock.now();
    tokio::time::pause();
    let held = hold_router(&fixture).await;
    fixture.clock.advance(Duration::from_secs(1));
    ws.send(Message::text("{\"rpc\":1}")).await.unwrap();
    round_trip(&mut ws).await;
    tokio::time::sleep(Duration::from_secs(20)).await;
    held.release();
    fixture.wait_count(1).await;
    // The connection is still alive; the frame heard while the router was
    // full was not reported.
    assert_eq!(last_seen(&fixture, id).await, login_stamp);
    fixture.clock.advance(Duration::from_secs(1));
    ws.send(Message::text("{\"rpc\":2}")).await.unwrap();
    round_trip(&mut ws).await;
    assert_eq!(
        last_seen(&fixture, id).await,
        login_stamp + Duration::from_secs(2)
    );
    drop(ws);
    fixture.stop().await;
}

/// Connection `id`'s last-seen stamp; it must be alive.
async fn last_seen(fixture: &Fixture, id: u64) -> std::time::SystemTime {
    let connections = fixture.muster.presence().connections().await.unwrap();
    let value = connections
        .values()
        .into_iter()
        .find(|v| v.connection_id == id)
        .expect("recorded");
    assert_eq!(value.status, Status::Alive);
    value.last_seen
}
