//! What the nodes of a cluster say to each other over NATS, and on which
//! subjects (`docs/cluster-protocol.md` is the reference).
//!
//! Every message is one JSON document: JSON is already how musterd speaks
//! (its HTTP API, the agents' door), a person can read it with any NATS
//! client (`nats sub 'muster.>'`), and a node written in another language
//! needs nothing but a JSON parser. A compact binary form would save about
//! half the bytes of a connect (a model UUID and an agent tag are most of
//! it), which at a few hundred bytes per agent connect is not worth a
//! format of our own.
//!
//! A snapshot is cut into parts that each fit in the server's `max_payload`
//! ([`pack`]), and taken whole ([`Assembly`]) before it is applied.

use std::collections::BTreeMap;

use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster_actors::presence::ChangeKind;
use serde::{Deserialize, Serialize};

/// The subjects of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// The subjects of the cluster called `name` (one subject token).
    pub fn new(name: &str) -> Self {
        Subjects {
            prefix: format!("muster.{name}.presence"),
        }
    }

    /// Where `node` publishes its events and heartbeats, in order.
    pub fn feed(&self, node: &MachineTag) -> String {
        format!("{}.feed.{node}", self.prefix)
    }

    /// Every node's feed.
    pub fn feeds(&self) -> String {
        format!("{}.feed.*", self.prefix)
    }

    /// Where `node` is asked for a snapshot of its connections.
    pub fn snapshot(&self, node: &MachineTag) -> String {
        format!("{}.snapshot.{node}", self.prefix)
    }

    /// The node a feed subject is of, when it is one of this cluster's.
    pub fn feed_node(&self, subject: &str) -> Option<MachineTag> {
        subject
            .strip_prefix(&self.prefix)?
            .strip_prefix(".feed.")?
            .parse()
            .ok()
    }
}

/// Which run of a node a message comes from: a fresh random value each
/// time the daemon starts, so that a peer that restarted is told from one
/// that only went quiet. Written as 16 hexadecimal digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Incarnation(pub u64);

impl Incarnation {
    /// A new random incarnation.
    pub fn random() -> Self {
        Incarnation(rand::random())
    }
}

impl std::fmt::Display for Incarnation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl From<Incarnation> for String {
    fn from(incarnation: Incarnation) -> String {
        incarnation.to_string()
    }
}

impl TryFrom<String> for Incarnation {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text.len() != 16 {
            return Err(format!("incarnation {text:?} is not 16 hexadecimal digits"));
        }
        u64::from_str_radix(&text, 16)
            .map(Incarnation)
            .map_err(|_| format!("incarnation {text:?} is not 16 hexadecimal digits"))
    }
}

/// One connection as it travels: the server is the node that sends it, the
/// status is alive, and the last-seen time is the receiver's own now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conn {
    /// The connection id, unique on its server.
    pub id: u64,
    /// The agent's model.
    pub model: ModelUuid,
    /// The agent.
    pub agent: AgentTag,
    /// Whether it is a controller agent's connection.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller_agent: bool,
    /// What the agent gave at login.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_data: String,
}

/// A change a node publishes about its own server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// A connection was recorded.
    Connect(Conn),
    /// The connection with this id ended.
    Disconnect(u64),
}

impl Op {
    /// The change as published; a wholesale change is not published (its
    /// number is skipped, and peers take a snapshot).
    pub fn of(kind: ChangeKind) -> Option<Op> {
        match kind {
            ChangeKind::Connect {
                id,
                model,
                agent,
                controller_agent,
                user_data,
            } => Some(Op::Connect(Conn {
                id,
                model,
                agent,
                controller_agent,
                user_data,
            })),
            ChangeKind::Disconnect { id } => Some(Op::Disconnect(id)),
            ChangeKind::Reset => None,
        }
    }
}

/// A numbered change: `{"seq": 7, "connect": {...}}` or
/// `{"seq": 8, "disconnect": 41}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Its number in the node's sequence.
    pub seq: u64,
    /// What changed.
    #[serde(flatten)]
    pub op: Op,
}

/// What a node's feed carries, in the order it publishes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Feed {
    /// Changes, numbered one after another.
    Events {
        /// The sending node.
        node: MachineTag,
        /// Its run.
        incarnation: Incarnation,
        /// The changes, in order.
        events: Vec<Event>,
    },
    /// The node is alive; every change numbered up to `seq` was published
    /// before this.
    Heartbeat {
        /// The sending node.
        node: MachineTag,
        /// Its run.
        incarnation: Incarnation,
        /// The number of its last change.
        seq: u64,
    },
    /// The node stops: the others hold it down at once rather than after
    /// `down_after`, and nothing more of this run is taken from it.
    Leaving {
        /// The sending node.
        node: MachineTag,
        /// Its run.
        incarnation: Incarnation,
    },
}

impl Feed {
    /// The sending node.
    pub fn node(&self) -> &MachineTag {
        match self {
            Feed::Events { node, .. }
            | Feed::Heartbeat { node, .. }
            | Feed::Leaving { node, .. } => node,
        }
    }

    /// The sending node's run.
    pub fn incarnation(&self) -> Incarnation {
        match self {
            Feed::Events { incarnation, .. }
            | Feed::Heartbeat { incarnation, .. }
            | Feed::Leaving { incarnation, .. } => *incarnation,
        }
    }
}

/// A request for a node's snapshot; the answer goes to the request's reply
/// subject, in parts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRequest {
    /// The node asking.
    pub node: MachineTag,
}

/// One part of a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Part {
    /// The node whose connections these are.
    pub node: MachineTag,
    /// Its run.
    pub incarnation: Incarnation,
    /// The number of the last change the snapshot holds.
    pub seq: u64,
    /// This part's index, from 0.
    pub part: u32,
    /// How many parts the snapshot has.
    pub parts: u32,
    /// Its share of the connections.
    pub connections: Vec<Conn>,
}

/// The head of a part, written before its connections.
#[derive(Serialize)]
struct PartHead<'a> {
    node: &'a MachineTag,
    incarnation: Incarnation,
    seq: u64,
    part: u32,
    parts: u32,
}

/// The head of an events message, written before its events.
#[derive(Serialize)]
struct EventsHead<'a> {
    r#type: &'static str,
    node: &'a MachineTag,
    incarnation: Incarnation,
}

/// Room kept in every message for its head and the NATS protocol's own
/// line: a node tag is short, and the numbers are at most 20 digits.
pub const HEAD_ROOM: usize = 512;

/// A value too large for one message of the server's `max_payload`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} takes {size} bytes, more than a message of {limit} bytes can carry")]
pub struct TooLarge {
    /// What it is.
    pub what: String,
    /// Its size, encoded.
    pub size: usize,
    /// The server's `max_payload`.
    pub limit: usize,
}

/// Cuts `items` (each one JSON value, encoded) into runs whose encoding,
/// commas included, fits in `limit` less [`HEAD_ROOM`]; never an empty
/// run, but one empty run for no items.
pub fn pack(items: Vec<Vec<u8>>, limit: usize) -> Result<Vec<Vec<Vec<u8>>>, TooLarge> {
    let budget = limit.saturating_sub(HEAD_ROOM);
    let mut runs: Vec<Vec<Vec<u8>>> = vec![Vec::new()];
    let mut used = 0;
    for item in items {
        if item.len() > budget {
            return Err(TooLarge {
                what: "one value".into(),
                size: item.len() + HEAD_ROOM,
                limit,
            });
        }
        let run = runs.last_mut().expect("never empty");
        let cost = item.len() + usize::from(!run.is_empty());
        if used + cost > budget {
            used = item.len();
            runs.push(vec![item]);
        } else {
            used += cost;
            run.push(item);
        }
    }
    Ok(runs)
}

/// `{head without its closing brace},"key":[items]}`.
fn join(head: &[u8], key: &str, items: &[Vec<u8>]) -> Vec<u8> {
    let size = head.len() + key.len() + 8 + items.iter().map(|i| i.len() + 1).sum::<usize>();
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":[");
    for (n, item) in items.iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(b"]}");
    out
}

fn encoded(value: &impl Serialize) -> Vec<u8> {
    // Our own types serialise without fail: no maps with non-string keys,
    // no failing Serialize implementations.
    serde_json::to_vec(value).expect("serialisable")
}

/// A snapshot of `node`'s connections, numbered to `seq`, as the parts that
/// answer a request, each at most `limit` bytes.
pub fn snapshot_parts(
    node: &MachineTag,
    incarnation: Incarnation,
    seq: u64,
    connections: &[Conn],
    limit: usize,
) -> Result<Vec<Vec<u8>>, TooLarge> {
    let items = connections.iter().map(encoded).collect();
    let runs = pack(items, limit)?;
    let parts = u32::try_from(runs.len()).map_err(|_| TooLarge {
        what: format!("a snapshot of {} connections", connections.len()),
        size: usize::MAX,
        limit,
    })?;
    Ok(runs
        .iter()
        .enumerate()
        .map(|(part, run)| {
            let head = encoded(&PartHead {
                node,
                incarnation,
                seq,
                part: part as u32,
                parts,
            });
            join(&head, "connections", run)
        })
        .collect())
}

/// Events as the messages that carry them, each at most `limit` bytes.
pub fn events_messages(
    node: &MachineTag,
    incarnation: Incarnation,
    events: &[Event],
    limit: usize,
) -> Result<Vec<Vec<u8>>, TooLarge> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let head = encoded(&EventsHead {
        r#type: "events",
        node,
        incarnation,
    });
    let runs = pack(events.iter().map(encoded).collect(), limit)?;
    Ok(runs.iter().map(|run| join(&head, "events", run)).collect())
}

/// A heartbeat, encoded.
pub fn heartbeat(node: &MachineTag, incarnation: Incarnation, seq: u64) -> Vec<u8> {
    encoded(&Feed::Heartbeat {
        node: node.clone(),
        incarnation,
        seq,
    })
}

/// A node's word that it stops, encoded.
pub fn leaving(node: &MachineTag, incarnation: Incarnation) -> Vec<u8> {
    encoded(&Feed::Leaving {
        node: node.clone(),
        incarnation,
    })
}

/// A snapshot request, encoded.
pub fn snapshot_request(node: &MachineTag) -> Vec<u8> {
    encoded(&SnapshotRequest { node: node.clone() })
}

/// Why a part does not belong to the snapshot being assembled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadPart {
    /// Its node, run, number or count differs from the first part's.
    #[error("part {part} of {parts} does not match the parts before it")]
    Mismatch {
        /// The part.
        part: u32,
        /// The count it gave.
        parts: u32,
    },
    /// Its index is not below its count, or the count is 0.
    #[error("part {part} of {parts} is out of range")]
    OutOfRange {
        /// The part.
        part: u32,
        /// The count it gave.
        parts: u32,
    },
}

/// The parts of one snapshot, gathered until there are all of them.
#[derive(Debug, Clone, Default)]
pub struct Assembly {
    first: Option<(MachineTag, Incarnation, u64, u32)>,
    parts: BTreeMap<u32, Vec<Conn>>,
}

/// A whole snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whole {
    /// Whose.
    pub node: MachineTag,
    /// Its run.
    pub incarnation: Incarnation,
    /// The number of the last change it holds.
    pub seq: u64,
    /// Every connection, in the order of the parts.
    pub connections: Vec<Conn>,
}

impl Assembly {
    /// Adds a part; answers the whole snapshot once every part is in. A
    /// part heard twice counts once.
    pub fn add(&mut self, part: Part) -> Result<Option<Whole>, BadPart> {
        if part.parts == 0 || part.part >= part.parts {
            return Err(BadPart::OutOfRange {
                part: part.part,
                parts: part.parts,
            });
        }
        let key = (part.node.clone(), part.incarnation, part.seq, part.parts);
        match &self.first {
            Some(first) if *first != key => {
                return Err(BadPart::Mismatch {
                    part: part.part,
                    parts: part.parts,
                });
            }
            Some(_) => {}
            None => self.first = Some(key),
        }
        self.parts.insert(part.part, part.connections);
        let (node, incarnation, seq, parts) = self.first.clone().expect("set above");
        if self.parts.len() < parts as usize {
            return Ok(None);
        }
        let connections = std::mem::take(&mut self.parts)
            .into_values()
            .flatten()
            .collect();
        Ok(Some(Whole {
            node,
            incarnation,
            seq,
            connections,
        }))
    }

    /// How many parts are in.
    pub fn received(&self) -> usize {
        self.parts.len()
    }
}

#[cfg(test)]
mod tests;
