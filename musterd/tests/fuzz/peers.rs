//! A node's view of its peers under whatever the bus brings: feeds from
//! peers that restart, lie about their numbers, speak for others or for
//! this node, snapshot parts for requests never made, silences, and the
//! link going down and up. Whatever comes, presence is only ever told a
//! peer's changes in order, each once, on top of a snapshot it asked for.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use muster::names::MachineTag;
use muster_cluster::peers::{Action, Peers, Settings};
use muster_cluster::protocol::{Conn, Event, Feed, Incarnation, Op, Part};
use proptest::prelude::*;
use tokio::time::Instant;

use crate::protocol::{conn, node};
use crate::settings;

/// One thing that happens to the node.
#[derive(Debug, Clone)]
enum Happening {
    Events(MachineTag, u64, Vec<(u64, Option<Conn>)>),
    Heartbeat(MachineTag, u64, u64),
    Leaving(MachineTag, u64),
    /// A part for the `n`th request asked so far (or for one never asked).
    Part(usize, MachineTag, u64, u64, u32, u32, Vec<Conn>),
    Unanswered(usize),
    Failed(MachineTag),
    Time(u64),
    LinkDown,
    LinkUp,
}

fn happening() -> impl Strategy<Value = Happening> {
    let incarnation = 0u64..3;
    let seq = 0u64..12;
    prop_oneof![
        4 => (node(), incarnation.clone(), prop::collection::vec((seq.clone(), prop::option::of(conn())), 0..5))
            .prop_map(|(n, i, e)| Happening::Events(n, i, e)),
        3 => (node(), incarnation.clone(), seq.clone()).prop_map(|(n, i, s)| Happening::Heartbeat(n, i, s)),
        1 => (node(), incarnation.clone()).prop_map(|(n, i)| Happening::Leaving(n, i)),
        4 => (0usize..8, node(), incarnation, seq, 0u32..3, 0u32..3, prop::collection::vec(conn(), 0..3))
            .prop_map(|(r, n, i, s, p, c, conns)| Happening::Part(r, n, i, s, p, c, conns)),
        1 => (0usize..8).prop_map(Happening::Unanswered),
        1 => node().prop_map(Happening::Failed),
        2 => (0u64..20_000).prop_map(Happening::Time),
        1 => Just(Happening::LinkDown),
        1 => Just(Happening::LinkUp),
    ]
}

/// What presence holds of one peer, as the actions told it.
#[derive(Debug, Default)]
struct Told {
    /// The number of the last change applied, once a snapshot came.
    applied: Option<u64>,
}

proptest! {
    #![proptest_config(settings())]

    #[test]
    fn presence_is_told_each_peers_changes_once_in_order_on_a_snapshot(
        happenings in prop::collection::vec(happening(), 0..60),
    ) {
        let me: MachineTag = "machine-0".parse().expect("a machine tag");
        let mut peers = Peers::new(
            me.clone(),
            Settings::new(Duration::from_secs(1), Duration::from_secs(5)),
        );
        let mut now = Instant::now();
        let mut asked: Vec<(u64, MachineTag)> = Vec::new();
        let mut told: BTreeMap<MachineTag, Told> = BTreeMap::new();
        for happening in happenings {
            let actions = match happening {
                Happening::Events(node, incarnation, events) => peers.heard(
                    now,
                    SystemTime::UNIX_EPOCH,
                    Feed::Events {
                        node,
                        incarnation: Incarnation(incarnation),
                        events: events
                            .into_iter()
                            .map(|(seq, conn)| Event {
                                seq,
                                op: conn.map_or(Op::Disconnect(seq), Op::Connect),
                            })
                            .collect(),
                    },
                ),
                Happening::Heartbeat(node, incarnation, seq) => peers.heard(
                    now,
                    SystemTime::UNIX_EPOCH,
                    Feed::Heartbeat { node, incarnation: Incarnation(incarnation), seq },
                ),
                Happening::Leaving(node, incarnation) => peers.heard(
                    now,
                    SystemTime::UNIX_EPOCH,
                    Feed::Leaving { node, incarnation: Incarnation(incarnation) },
                ),
                Happening::Part(n, node, incarnation, seq, part, parts, connections) => {
                    let request = asked.get(n).map_or(1_000 + n as u64, |(request, _)| *request);
                    peers.part(now, request, Part {
                        node,
                        incarnation: Incarnation(incarnation),
                        seq,
                        part,
                        parts,
                        connections,
                    })
                }
                Happening::Unanswered(n) => {
                    if let Some((request, _)) = asked.get(n) {
                        peers.unanswered(now, *request);
                    }
                    Vec::new()
                }
                Happening::Failed(node) => peers.failed(now, &node),
                Happening::Time(ms) => {
                    now += Duration::from_millis(ms);
                    peers.tick(now)
                }
                Happening::LinkDown => peers.link_down(),
                Happening::LinkUp => peers.link_up(now),
            };
            for action in actions {
                match action {
                    Action::Ask { peer, request } => {
                        prop_assert_ne!(&peer, &me);
                        prop_assert!(asked.iter().all(|(r, _)| *r != request), "request {request} asked twice");
                        asked.push((request, peer));
                    }
                    Action::Replace { peer, seq, .. } => {
                        prop_assert_ne!(&peer, &me);
                        prop_assert!(asked.iter().any(|(_, p)| *p == peer), "a snapshot of {peer} never asked for");
                        told.entry(peer).or_default().applied = Some(seq);
                    }
                    Action::Apply { peer, events } => {
                        let told = told.entry(peer.clone()).or_default();
                        let Some(mut applied) = told.applied else {
                            return Err(TestCaseError::fail(format!("changes of {peer} applied without a snapshot")));
                        };
                        prop_assert!(!events.is_empty());
                        for event in events {
                            prop_assert_eq!(event.seq, applied + 1, "{}'s changes out of order", peer);
                            applied = event.seq;
                        }
                        told.applied = Some(applied);
                    }
                    Action::Down { peer } => {
                        prop_assert_ne!(&peer, &me);
                        told.entry(peer).or_default().applied = None;
                    }
                }
            }
        }
        // Whatever was heard, no peer is this node.
        let live: BTreeSet<MachineTag> = peers.live();
        prop_assert!(!live.contains(&me));
    }
}
