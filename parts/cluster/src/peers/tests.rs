use std::collections::BTreeMap;

use muster::names::ModelUuid;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::protocol::{Op, snapshot_parts};

const ME: &str = "machine-0";
const B: &str = "machine-1";
const RUN: Incarnation = Incarnation(1);
const SECOND_RUN: Incarnation = Incarnation(2);

fn tag(text: &str) -> MachineTag {
    text.parse().unwrap()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn settings() -> Settings {
    Settings {
        down_after: ms(600),
        patience: ms(2000),
        retry: ms(100),
        max_held: 10,
        forget_after: ms(60_000),
    }
}

fn peers() -> Peers {
    Peers::new(tag(ME), settings())
}

fn conn(id: u64) -> Conn {
    Conn {
        id,
        model: ModelUuid::from_u128(9),
        agent: format!("unit-app-{id}").parse().unwrap(),
        controller_agent: false,
        user_data: String::new(),
    }
}

fn connect(seq: u64, id: u64) -> Event {
    Event {
        seq,
        op: Op::Connect(conn(id)),
    }
}

fn disconnect(seq: u64, id: u64) -> Event {
    Event {
        seq,
        op: Op::Disconnect(id),
    }
}

fn events(run: Incarnation, events: Vec<Event>) -> Feed {
    Feed::Events {
        node: tag(B),
        incarnation: run,
        events,
    }
}

fn heartbeat(run: Incarnation, seq: u64) -> Feed {
    Feed::Heartbeat {
        node: tag(B),
        incarnation: run,
        seq,
    }
}

/// The parts of B's snapshot at `seq` holding `ids`, at most `limit`
/// bytes each.
fn parts(run: Incarnation, seq: u64, ids: &[u64], limit: usize) -> Vec<Part> {
    let connections: Vec<Conn> = ids.iter().copied().map(conn).collect();
    snapshot_parts(&tag(B), run, seq, &connections, limit)
        .unwrap()
        .iter()
        .map(|bytes| serde_json::from_slice(bytes).unwrap())
        .collect()
}

fn ask(request: u64) -> Action {
    Action::Ask {
        peer: tag(B),
        request,
    }
}

fn down() -> Action {
    Action::Down { peer: tag(B) }
}

fn apply(events: Vec<Event>) -> Action {
    Action::Apply {
        peer: tag(B),
        events,
    }
}

fn replace(seq: u64, ids: &[u64]) -> Action {
    Action::Replace {
        peer: tag(B),
        seq,
        connections: ids.iter().copied().map(conn).collect(),
    }
}

fn state(peers: &Peers) -> (&'static str, Option<u64>, usize) {
    let report = &peers.report(Instant::now())[0];
    (report.state, report.applied, report.held)
}

#[test]
fn a_new_peer_is_asked_and_what_comes_meanwhile_is_applied_on_top_of_its_snapshot() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    assert_eq!(peers.heard(t0, wall, heartbeat(RUN, 5)), [ask(1)]);
    // Changes 4 to 7 come before the snapshot, which holds up to 5.
    let held = vec![
        disconnect(4, 1),
        connect(5, 3),
        connect(6, 4),
        disconnect(7, 2),
    ];
    assert_eq!(peers.heard(t0, wall, events(RUN, held)), []);
    assert_eq!(state(&peers), ("syncing", None, 4));
    let snapshot = parts(RUN, 5, &[2, 3], 1 << 20);
    assert_eq!(snapshot.len(), 1);
    assert_eq!(
        peers.part(t0, 1, snapshot[0].clone()),
        [
            replace(5, &[2, 3]),
            apply(vec![connect(6, 4), disconnect(7, 2)])
        ]
    );
    assert_eq!(state(&peers), ("up", Some(7), 0));
    // From then on, changes are applied as they come; one heard twice
    // (NATS may redeliver after a reconnect) is applied once.
    assert_eq!(
        peers.heard(t0, wall, events(RUN, vec![disconnect(7, 2), connect(8, 5)])),
        [apply(vec![connect(8, 5)])]
    );
    assert_eq!(peers.heard(t0, wall, heartbeat(RUN, 8)), []);
    let report = &peers.report(t0)[0];
    assert_eq!(report.last_heartbeat, Some(wall));
    assert_eq!(
        (
            report.counts.snapshots_asked,
            report.counts.snapshots_applied,
            report.counts.events
        ),
        (1, 1, 3)
    );
}

#[test]
fn a_snapshot_in_many_parts_is_applied_only_once_whole() {
    let t0 = Instant::now();
    let mut peers = peers();
    peers.heard(t0, SystemTime::UNIX_EPOCH, heartbeat(RUN, 300));
    let ids: Vec<u64> = (1..=300).collect();
    let snapshot = parts(RUN, 300, &ids, 2048);
    assert!(snapshot.len() > 3, "{}", snapshot.len());
    let (last, first) = snapshot.split_last().unwrap();
    for part in first.iter().rev() {
        assert_eq!(peers.part(t0, 1, part.clone()), []);
    }
    assert_eq!(peers.part(t0, 1, last.clone()), [replace(300, &ids)]);
}

#[test]
fn a_gap_in_the_numbers_asks_for_a_snapshot_instead_of_a_wrong_table() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    peers.part(t0, 1, parts(RUN, 0, &[], 1 << 20).remove(0));
    // 2 is lost: 1 is applied; 3 and 4 were published before the peer
    // hears the request, so its snapshot holds them.
    assert_eq!(
        peers.heard(
            t0,
            wall,
            events(RUN, vec![connect(1, 1), connect(3, 3), connect(4, 4)])
        ),
        [apply(vec![connect(1, 1)]), ask(2)]
    );
    assert_eq!(state(&peers), ("syncing", None, 0));
    // What comes after the request is held and applied on top.
    peers.heard(t0, wall, events(RUN, vec![connect(5, 5)]));
    assert_eq!(
        peers.part(t0, 2, parts(RUN, 4, &[1, 2, 3, 4], 1 << 20).remove(0)),
        [replace(4, &[1, 2, 3, 4]), apply(vec![connect(5, 5)])]
    );
    // A change numbered far ahead (forged, or from a broken peer) costs
    // one snapshot, not one per heartbeat.
    assert_eq!(
        peers.heard(t0, wall, events(RUN, vec![connect(50, 50)])),
        [ask(3)]
    );
    assert_eq!(
        peers.part(t0, 3, parts(RUN, 5, &[1, 2, 3, 4, 5], 1 << 20).remove(0)),
        [replace(5, &[1, 2, 3, 4, 5])]
    );
    assert_eq!(peers.heard(t0, wall, heartbeat(RUN, 5)), []);
    // A lost last change shows in the next heartbeat.
    assert_eq!(peers.heard(t0, wall, heartbeat(RUN, 6)), [ask(4)]);
    assert_eq!(peers.report(t0)[0].counts.gaps, 3);
}

#[test]
fn a_heartbeat_past_the_snapshot_and_what_was_held_asks_again() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 2));
    peers.heard(t0, wall, heartbeat(RUN, 4));
    // The snapshot holds up to 2; 3 and 4 never came.
    assert_eq!(
        peers.part(t0, 1, parts(RUN, 2, &[1], 1 << 20).remove(0)),
        [replace(2, &[1]), ask(2)]
    );
}

#[test]
fn a_silent_peer_is_down_after_down_after_and_asked_again_when_heard() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    peers.part(t0, 1, parts(RUN, 0, &[1], 1 << 20).remove(0));
    assert_eq!(peers.tick(t0 + ms(599)), []);
    assert_eq!(peers.tick(t0 + ms(600)), [down()]);
    assert_eq!(peers.tick(t0 + ms(700)), [], "down once");
    assert_eq!(state(&peers).0, "down");
    // Changes from a down peer wait for its snapshot.
    assert_eq!(
        peers.heard(t0 + ms(800), wall, events(RUN, vec![connect(1, 1)])),
        [ask(2)]
    );
    assert_eq!(state(&peers), ("syncing", None, 1));
    assert_eq!(peers.report(t0 + ms(800))[0].counts.downs, 1);
}

#[test]
fn a_peer_that_restarted_is_marked_down_and_taken_anew() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    peers.part(t0, 1, parts(RUN, 0, &[1, 2], 1 << 20).remove(0));
    // Its numbers start again; its old connections ended with it.
    assert_eq!(
        peers.heard(t0, wall, events(SECOND_RUN, vec![connect(1, 7)])),
        [down(), ask(2)]
    );
    // A late part from the first run is not taken for the second's.
    assert_eq!(
        peers.part(t0, 2, parts(RUN, 5, &[1], 1 << 20).remove(0)),
        []
    );
    assert_eq!(
        peers.part(t0, 2, parts(SECOND_RUN, 0, &[], 1 << 20).remove(0)),
        [replace(0, &[]), apply(vec![connect(1, 7)])]
    );
    assert_eq!(peers.report(t0)[0].counts.restarts, 1);
}

#[test]
fn a_peer_that_says_it_leaves_is_down_at_once_and_nothing_more_of_its_run_is_taken() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    let leaving = |run| Feed::Leaving {
        node: tag(B),
        incarnation: run,
    };
    // A word from a run never heard changes nothing.
    assert_eq!(peers.heard(t0, wall, leaving(RUN)), []);
    peers.heard(t0, wall, heartbeat(RUN, 0));
    peers.part(t0, 1, parts(RUN, 0, &[1, 2], 1 << 20).remove(0));
    assert_eq!(state(&peers), ("up", Some(0), 0));
    assert!(peers.live().contains(&tag(B)));
    // Down at once, long before down_after; out of the live nodes.
    assert_eq!(peers.heard(t0, wall, leaving(RUN)), [down()]);
    assert_eq!(state(&peers).0, "down");
    assert!(!peers.live().contains(&tag(B)));
    // What that run sent before its word came is not taken, and it is not
    // asked for a snapshot; the word heard twice changes nothing.
    assert_eq!(peers.heard(t0, wall, events(RUN, vec![connect(1, 7)])), []);
    assert_eq!(peers.heard(t0, wall, heartbeat(RUN, 1)), []);
    assert_eq!(peers.heard(t0, wall, leaving(RUN)), []);
    // Its next run is heard as any restart.
    assert_eq!(peers.heard(t0, wall, heartbeat(SECOND_RUN, 0)), [ask(2)]);
    assert_eq!(peers.report(t0)[0].counts.downs, 1);
}

#[test]
fn losing_nats_marks_every_peer_down_and_its_return_asks_each() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    let c = Feed::Heartbeat {
        node: tag("machine-2"),
        incarnation: RUN,
        seq: 0,
    };
    peers.heard(t0, wall, c);
    let mut actions = peers.link_down();
    actions.sort_by_key(|a| format!("{a:?}"));
    assert_eq!(
        actions,
        [
            down(),
            Action::Down {
                peer: tag("machine-2")
            }
        ]
    );
    assert_eq!(peers.link_down(), []);
    assert_eq!(peers.counts(), (0, 0, 2));
    assert_eq!(
        peers.link_up(t0 + ms(5000)),
        [
            ask(3),
            Action::Ask {
                peer: tag("machine-2"),
                request: 4
            }
        ]
    );
    // Silence is counted from the link's return, not from before it.
    assert_eq!(peers.tick(t0 + ms(5500)), []);
}

#[test]
fn a_stalled_snapshot_is_asked_again_and_the_old_answer_ignored() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    // The peer keeps its heartbeats up, but the snapshot does not come.
    peers.heard(t0 + ms(1900), wall, heartbeat(RUN, 0));
    assert_eq!(peers.tick(t0 + ms(1999)), []);
    assert_eq!(peers.tick(t0 + ms(2000)), [ask(2)]);
    assert_eq!(peers.part(t0, 1, parts(RUN, 0, &[], 1 << 20).remove(0)), []);
    assert_eq!(
        peers.part(t0 + ms(2100), 2, parts(RUN, 0, &[], 1 << 20).remove(0)),
        [replace(0, &[])]
    );
}

#[test]
fn a_request_no_one_heard_is_asked_again_after_the_retry_wait() {
    let t0 = Instant::now();
    let mut peers = peers();
    peers.heard(t0, SystemTime::UNIX_EPOCH, heartbeat(RUN, 0));
    peers.unanswered(t0, 99);
    peers.unanswered(t0, 1);
    assert_eq!(peers.tick(t0 + ms(99)), []);
    assert_eq!(peers.tick(t0 + ms(100)), [ask(2)]);
    assert_eq!(peers.tick(t0 + ms(200)), [], "asked once");
}

#[test]
fn parts_that_do_not_fit_together_ask_again() {
    let t0 = Instant::now();
    let mut peers = peers();
    peers.heard(t0, SystemTime::UNIX_EPOCH, heartbeat(RUN, 9));
    let ids: Vec<u64> = (1..=100).collect();
    let first = parts(RUN, 9, &ids, 2048);
    let other = parts(RUN, 10, &ids, 2048);
    assert_eq!(peers.part(t0, 1, first[0].clone()), []);
    assert_eq!(peers.part(t0, 1, other[1].clone()), [ask(2)]);
}

#[test]
fn too_much_held_while_syncing_asks_for_a_newer_snapshot() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    let many: Vec<Event> = (1..=11).map(|n| connect(n, n)).collect();
    assert_eq!(peers.heard(t0, wall, events(RUN, many)), [ask(2)]);
    assert_eq!(state(&peers), ("syncing", None, 0));
}

#[test]
fn a_failure_to_apply_takes_the_peer_anew_and_its_own_feed_is_ignored() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    assert_eq!(peers.failed(t0, &tag(B)), [], "an unknown peer");
    peers.heard(t0, wall, heartbeat(RUN, 0));
    peers.part(t0, 1, parts(RUN, 0, &[], 1 << 20).remove(0));
    assert_eq!(peers.failed(t0, &tag(B)), [ask(2)]);
    let mine = Feed::Heartbeat {
        node: tag(ME),
        incarnation: RUN,
        seq: 3,
    };
    assert_eq!(peers.heard(t0, wall, mine), []);
    assert_eq!(peers.report(t0).len(), 1);
}

#[test]
fn a_down_presence_refused_is_carried_out_again_until_taken() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, 0));
    peers.part(t0, 1, parts(RUN, 0, &[1], 1 << 20).remove(0));
    // Silent, lost with the link, or gone with a word: each Down refused
    // is asked for again, for as long as presence refuses it.
    assert_eq!(peers.tick(t0 + ms(600)), [down()]);
    assert_eq!(peers.failed(t0 + ms(600), &tag(B)), [down()]);
    assert_eq!(peers.failed(t0 + ms(700), &tag(B)), [down()]);
    assert_eq!(state(&peers).0, "down");
    peers.heard(t0 + ms(800), wall, heartbeat(RUN, 0));
    peers.part(t0 + ms(800), 2, parts(RUN, 0, &[1], 1 << 20).remove(0));
    assert_eq!(peers.link_down(), [down()]);
    assert_eq!(peers.failed(t0 + ms(900), &tag(B)), [down()]);
    peers.link_up(t0 + ms(1000));
    peers.heard(t0 + ms(1000), wall, heartbeat(RUN, 0));
    let leaving = Feed::Leaving {
        node: tag(B),
        incarnation: RUN,
    };
    assert_eq!(peers.heard(t0 + ms(1100), wall, leaving), [down()]);
    assert_eq!(peers.failed(t0 + ms(1100), &tag(B)), [down()]);
}

#[test]
fn after_a_reconnect_only_peers_heard_again_are_live_and_the_long_silent_are_forgotten() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    let c = tag("machine-2");
    let d = tag("machine-3");
    for node in [tag(B), c.clone(), d.clone()] {
        let beat = Feed::Heartbeat {
            node,
            incarnation: RUN,
            seq: 0,
        };
        peers.heard(t0, wall, beat);
    }
    assert_eq!(peers.live().len(), 3);
    // D says it leaves; then NATS restarts.
    let leaving = Feed::Leaving {
        node: d.clone(),
        incarnation: RUN,
    };
    peers.heard(t0, wall, leaving);
    peers.link_down();
    let asked = peers.link_up(t0 + ms(100));
    // The peer that left is not asked; none is live before it speaks.
    assert_eq!(
        asked,
        [
            ask(4),
            Action::Ask {
                peer: c.clone(),
                request: 5
            }
        ]
    );
    assert!(peers.live().is_empty(), "{:?}", peers.live());
    peers.heard(t0 + ms(200), wall, heartbeat(RUN, 0));
    assert_eq!(peers.live().into_iter().collect::<Vec<_>>(), [tag(B)]);
    // C, dead meanwhile, is down once silent for down_after, and never
    // counted live on the way.
    peers.heard(t0 + ms(600), wall, heartbeat(RUN, 0));
    assert_eq!(peers.tick(t0 + ms(700)), [Action::Down { peer: c.clone() }]);
    assert_eq!(peers.live().into_iter().collect::<Vec<_>>(), [tag(B)]);
    // Down and silent past the horizon, C and D are forgotten; B, heard,
    // is kept.
    peers.heard(t0 + ms(60_000), wall, heartbeat(RUN, 0));
    peers.tick(t0 + ms(60_100));
    let known: Vec<MachineTag> = peers.report(t0).into_iter().map(|p| p.server).collect();
    assert_eq!(known, [tag(B)]);
}

/// What node A's presence holds of B, built by carrying out the actions.
#[derive(Default)]
struct Table {
    alive: BTreeMap<u64, Conn>,
    missing: BTreeMap<u64, Conn>,
}

impl Table {
    fn carry_out(&mut self, action: &Action) {
        match action {
            Action::Apply { events, .. } => {
                for event in events {
                    match &event.op {
                        Op::Connect(conn) => {
                            self.missing.remove(&conn.id);
                            self.alive.insert(conn.id, conn.clone());
                        }
                        Op::Disconnect(id) => {
                            self.alive.remove(id);
                            self.missing.remove(id);
                        }
                    }
                }
            }
            Action::Replace { connections, .. } => {
                self.missing.clear();
                self.alive = connections.iter().map(|c| (c.id, c.clone())).collect();
            }
            Action::Down { .. } => self.missing.append(&mut self.alive),
            Action::Ask { .. } => {}
        }
    }
}

#[test]
fn over_a_lossy_network_the_table_ends_as_the_peer_holds_it() {
    for seed in 0..40 {
        let mut rng = StdRng::seed_from_u64(seed);
        let t0 = Instant::now();
        let wall = SystemTime::UNIX_EPOCH;
        let mut a = Peers::new(
            tag(ME),
            Settings {
                max_held: 50,
                ..settings()
            },
        );
        let mut table = Table::default();
        // B's truth, and its number.
        let mut truth: BTreeMap<u64, Conn> = BTreeMap::new();
        let (mut seq, mut next_id) = (0u64, 1u64);
        // Requests A made, answered a few steps later from B's truth then.
        let mut asked: Vec<(u64, usize)> = Vec::new();
        let mut now = t0;
        for step in 0..400usize {
            now += ms(10);
            let mut batch = Vec::new();
            for _ in 0..rng.random_range(1..4) {
                seq += 1;
                if truth.is_empty() || rng.random_bool(0.6) {
                    truth.insert(next_id, conn(next_id));
                    batch.push(connect(seq, next_id));
                    next_id += 1;
                } else {
                    let id = *truth.keys().nth(rng.random_range(0..truth.len())).unwrap();
                    truth.remove(&id);
                    batch.push(disconnect(seq, id));
                }
            }
            // The network loses one message in ten and repeats one in
            // twenty.
            let copies = match rng.random_range(0..20) {
                0 | 1 => 0,
                2 => 2,
                _ => 1,
            };
            for _ in 0..copies {
                for action in a.heard(now, wall, events(RUN, batch.clone())) {
                    table.carry_out(&action);
                    if let Action::Ask { request, .. } = action {
                        asked.push((request, step + rng.random_range(1..6)));
                    }
                }
            }
            if step % 7 == 0 {
                for action in a.heard(now, wall, heartbeat(RUN, seq)) {
                    table.carry_out(&action);
                    if let Action::Ask { request, .. } = action {
                        asked.push((request, step + rng.random_range(1..6)));
                    }
                }
            }
            let due: Vec<u64> = asked
                .iter()
                .filter(|(_, at)| *at <= step)
                .map(|(r, _)| *r)
                .collect();
            asked.retain(|(_, at)| *at > step);
            for request in due {
                let ids: Vec<u64> = truth.keys().copied().collect();
                for part in parts(RUN, seq, &ids, 4096) {
                    // Parts are lost too, now and then; the request is then
                    // asked again when it stalls.
                    if rng.random_range(0..30) == 0 {
                        continue;
                    }
                    for action in a.part(now, request, part) {
                        table.carry_out(&action);
                        if let Action::Ask { request, .. } = action {
                            asked.push((request, step + rng.random_range(1..6)));
                        }
                    }
                }
            }
            for action in a.tick(now) {
                table.carry_out(&action);
                if let Action::Ask { request, .. } = action {
                    asked.push((request, step + 1));
                }
            }
        }
        // The network heals: heartbeats, answers and patience until A is up.
        for _ in 0..50 {
            now += ms(500);
            let mut actions = a.heard(now, wall, heartbeat(RUN, seq));
            actions.extend(a.tick(now));
            let requests: Vec<u64> = asked.drain(..).map(|(r, _)| r).collect();
            for request in requests {
                let ids: Vec<u64> = truth.keys().copied().collect();
                for part in parts(RUN, seq, &ids, 4096) {
                    actions.extend(a.part(now, request, part));
                }
            }
            for action in actions {
                table.carry_out(&action);
                if let Action::Ask { request, .. } = action {
                    asked.push((request, 0));
                }
            }
            if asked.is_empty() && state(&a).0 == "up" {
                break;
            }
        }
        assert_eq!(state(&a), ("up", Some(seq), 0), "seed {seed}");
        let counts = &a.report(now)[0].counts;
        assert!(
            counts.gaps > 5 && counts.snapshots_applied > 5,
            "seed {seed}: {counts:?}"
        );
        assert!(table.missing.is_empty(), "seed {seed}");
        assert_eq!(table.alive, truth, "seed {seed}");
    }
}

#[test]
fn numbers_at_the_end_of_the_range_neither_panic_nor_apply_out_of_order() {
    let t0 = Instant::now();
    let wall = SystemTime::UNIX_EPOCH;
    let mut peers = peers();
    peers.heard(t0, wall, heartbeat(RUN, u64::MAX));
    assert_eq!(
        peers.part(t0, 1, parts(RUN, u64::MAX, &[1], 1 << 20).remove(0)),
        [replace(u64::MAX, &[1])]
    );
    // Nothing can follow the last number; a change claiming to is a gap.
    assert_eq!(
        peers.heard(
            t0,
            wall,
            events(RUN, vec![connect(0, 2), connect(u64::MAX, 3)])
        ),
        []
    );
    assert_eq!(peers.heard(t0, wall, heartbeat(RUN, u64::MAX)), []);
    assert_eq!(state(&peers), ("up", Some(u64::MAX), 0));
}
