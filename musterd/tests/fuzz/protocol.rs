//! The cluster protocol as a buggy or hostile peer may send it: every
//! message decoded from arbitrary and mutated bytes, and the snapshot parts
//! cut, shuffled, repeated and mixed with strangers' parts.

use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster_cluster::protocol::{
    self, Assembly, Conn, Feed, HEAD_ROOM, Incarnation, Part, SnapshotRequest,
};
use proptest::prelude::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::json::{bytes, text};
use crate::settings;

pub fn node() -> impl Strategy<Value = MachineTag> {
    (0u32..4).prop_map(|n| format!("machine-{n}").parse().expect("a machine tag"))
}

pub fn conn() -> impl Strategy<Value = Conn> {
    (
        any::<u64>(),
        0u128..4,
        prop_oneof![
            "unit-[a-z]{1,8}-(0|[1-9][0-9]{0,2})",
            "machine-(0|[1-9][0-9]{0,3})"
        ],
        any::<bool>(),
        prop_oneof![Just(String::new()), text()],
    )
        .prop_map(|(id, model, agent, controller_agent, user_data)| Conn {
            id,
            model: ModelUuid::from_u128(model),
            agent: agent.parse::<AgentTag>().expect("an agent tag"),
            controller_agent,
            user_data,
        })
}

/// A value decoded from bytes it did not write reads back the same once
/// written again: nothing a peer sends is half-understood.
fn decodes_stably<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<T>(bytes) {
        let again: T = serde_json::from_slice(&serde_json::to_vec(&value).expect("encodes"))
            .expect("what it wrote, it reads");
        assert_eq!(again, value);
    }
}

proptest! {
    #![proptest_config(settings())]

    /// Any bytes on the feed, a snapshot subject or a request's: read or
    /// refused, never half-read.
    #[test]
    fn any_bytes_are_read_whole_or_refused(bytes in bytes()) {
        decodes_stably::<Feed>(&bytes);
        decodes_stably::<Part>(&bytes);
        decodes_stably::<SnapshotRequest>(&bytes);
    }

    /// A real message with one byte changed or cut short: read whole or
    /// refused.
    #[test]
    fn a_damaged_message_is_read_whole_or_refused(
        node in node(),
        conns in prop::collection::vec(conn(), 0..8),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<bool>(),
    ) {
        let events: Vec<_> = conns
            .iter()
            .enumerate()
            .map(|(n, conn)| protocol::Event {
                seq: n as u64 + 1,
                op: protocol::Op::Connect(conn.clone()),
            })
            .collect();
        let mut messages =
            protocol::events_messages(&node, Incarnation(7), &events, 1 << 20).expect("fits");
        messages.extend(protocol::snapshot_parts(&node, Incarnation(7), 3, &conns, 1 << 20).expect("fits"));
        messages.push(protocol::heartbeat(&node, Incarnation(7), 9));
        for mut message in messages {
            let at = at.index(message.len());
            if cut {
                message.truncate(at);
            } else {
                message[at] = byte;
            }
            decodes_stably::<Feed>(&message);
            decodes_stably::<Part>(&message);
        }
    }

    /// A snapshot cut for any message size fits it, and is taken whole
    /// however its parts come: shuffled, repeated, and mixed with parts
    /// that belong to no snapshot or to another one, which are refused
    /// without changing what was gathered.
    #[test]
    fn a_snapshot_is_taken_whole_whatever_comes_between_its_parts(
        conns in prop::collection::vec(conn(), 0..40),
        limit in (HEAD_ROOM + 1)..(HEAD_ROOM + 4096),
        order in any::<u64>(),
        strangers in prop::collection::vec((node(), any::<u64>(), 0u32..4, 0u32..4), 0..6),
    ) {
        let me: MachineTag = "machine-9".parse().expect("a machine tag");
        let encoded = match protocol::snapshot_parts(&me, Incarnation(1), 5, &conns, limit) {
            Ok(encoded) => encoded,
            Err(too_large) => {
                // Only a connection that alone cannot fit refuses the cut.
                prop_assert!(too_large.size > limit, "{too_large}");
                return Ok(());
            }
        };
        let mut parts: Vec<Part> = encoded
            .iter()
            .map(|bytes| {
                assert!(bytes.len() <= limit, "{} > {limit}", bytes.len());
                serde_json::from_slice(bytes).expect("a part")
            })
            .collect();
        // Shuffled by the seed drawn, every part once and some twice.
        let mut state = order;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 33) as usize
        };
        for n in (1..parts.len()).rev() {
            parts.swap(n, next() % (n + 1));
        }
        let repeats: Vec<Part> = parts.iter().filter(|_| next() % 3 == 0).cloned().collect();
        let count = parts[0].parts;
        let mut assembly = Assembly::default();
        let mut whole = None;
        let mut strangers = strangers.into_iter();
        for part in parts.into_iter().chain(repeats) {
            if let Some((node, seq, part_no, parts_no)) = strangers.next() {
                let before = assembly.received();
                let stranger = Part {
                    node,
                    incarnation: Incarnation(2),
                    seq,
                    part: part_no,
                    parts: parts_no,
                    connections: Vec::new(),
                };
                if whole.is_none() && before > 0 {
                    prop_assert!(assembly.add(stranger).is_err());
                    prop_assert_eq!(assembly.received(), before);
                }
            }
            if whole.is_none() {
                whole = assembly.add(part).expect("its own part fits");
            }
        }
        let whole = whole.expect("every part came");
        prop_assert_eq!(whole.seq, 5);
        prop_assert_eq!(whole.connections, conns);
        prop_assert!(count >= 1);
    }
}
