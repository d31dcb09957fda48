//! The daemon's recent past, kept server-side so that a freshly opened
//! dashboard draws its charts at once: a fixed ring of samples, one taken
//! every [`EVERY`] by a task the daemon starts ([`sampler`]), served as
//! `/api/history`.
//!
//! Each sample holds agent connections by status, machines by phase,
//! provider calls, errors and throttles per second, restarts since the
//! sample before, and the deepest mailboxes. The ring holds [`KEEP`]
//! samples (30 minutes), about 300 KiB however large the fleet: a sample is
//! a fixed record plus at most [`MAILBOXES`] depths, whose names are shared
//! between samples.

pub mod sampler;

use muster::sync::lock;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::lists::paging::BadParameter;

pub use sampler::Sampler;

/// How often a sample is taken.
pub const EVERY: Duration = Duration::from_secs(2);

/// How many samples are kept: 30 minutes at [`EVERY`].
pub const KEEP: usize = 900;

/// How many mailboxes a sample keeps, the deepest first. The tree labels
/// its mailboxes by static child and by dynamic group, so this is every
/// label of the tree muster builds today.
pub const MAILBOXES: usize = 8;

/// Agent connections by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Agents {
    /// Connections alive.
    pub alive: u64,
    /// Connections missing.
    pub missing: u64,
}

/// Machines by poll phase.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Phases {
    /// Machines polled in the short phase.
    pub short: u64,
    /// Machines polled in the long phase.
    pub long: u64,
    /// Machines never polled (manually provisioned).
    pub manual: u64,
}

/// Provider calls per second since the sample before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Provider {
    /// Calls made.
    pub calls: f64,
    /// Calls that failed.
    pub errors: f64,
    /// Calls refused by throttling.
    pub throttles: f64,
}

/// One mailbox's depth, by the `child` label of the mailbox metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mailbox {
    /// The child's path, or its dynamic group's (`root/machines/pollers`).
    #[serde(serialize_with = "shared_str")]
    pub child: Arc<str>,
    /// Messages waiting, summed over a group's members.
    pub depth: u64,
}

fn shared_str<S: Serializer>(text: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(text)
}

/// What the daemon looked like at one moment. A part that could not be
/// read (the tree restarting it) is `None`, and drawn as a gap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sample {
    /// Numbers the samples in the order taken, from 0.
    pub seq: u64,
    /// When it was taken, by the daemon's wall clock (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    pub at: SystemTime,
    /// Agent connections by status.
    pub agents: Option<Agents>,
    /// Machines by phase.
    pub machines: Option<Phases>,
    /// Provider calls per second; `None` on the first sample.
    pub provider: Option<Provider>,
    /// Restarts since the sample before; `None` on the first sample.
    pub restarts: Option<u64>,
    /// The deepest mailboxes, deepest first, at most [`MAILBOXES`].
    pub mailboxes: Vec<Mailbox>,
}

/// Reads `after` of `/api/history?after=N`: the number of the newest
/// sample a page already has.
pub fn parse_after(query: &HashMap<String, String>) -> Result<Option<u64>, BadParameter> {
    let Some(text) = query.get("after") else {
        return Ok(None);
    };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(BadParameter::new(
            "after",
            format!("parameter `after`: {text:?} is not a sample number (a non-negative integer)"),
        ));
    }
    text.parse().map(Some).map_err(|_| {
        BadParameter::new(
            "after",
            format!(
                "parameter `after`: {text} is too large (at most {})",
                u64::MAX
            ),
        )
    })
}

/// RFC 3339 with milliseconds; `null` for a time the format cannot hold
/// (before 1970 or after 9999), which a wrong clock can give.
fn rfc3339<S: Serializer>(at: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    const YEAR_10000: Duration = Duration::from_secs(253_402_300_800);
    match at.duration_since(UNIX_EPOCH) {
        Ok(since) if since < YEAR_10000 => s.collect_str(&humantime::format_rfc3339_millis(*at)),
        _ => s.serialize_none(),
    }
}

/// The ring of samples, shared by the sampler that fills it and the HTTP
/// surface that serves it. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct History {
    ring: Arc<Mutex<Ring>>,
}

#[derive(Debug, Default)]
struct Ring {
    samples: VecDeque<Sample>,
    next_seq: u64,
    /// Mailbox names, shared by every sample that mentions them.
    names: HashMap<String, Arc<str>>,
}

/// More names than any tree has labels: past it, names are no longer
/// shared, so an unexpected flood of labels costs memory per sample but
/// never grows this table.
const MAX_NAMES: usize = 256;

impl History {
    /// An empty history.
    pub fn new() -> Self {
        History::default()
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while pushing leaves a ring that is still a ring.
        lock(&self.ring)
    }

    /// Adds a sample, numbered next, dropping the oldest past [`KEEP`].
    pub(crate) fn push(&self, sample: Sample) {
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.samples.len() == KEEP {
            ring.samples.pop_front();
        }
        ring.samples.push_back(Sample { seq, ..sample });
    }

    /// The shared name for a mailbox label.
    pub(crate) fn name(&self, child: &str) -> Arc<str> {
        let mut ring = self.lock();
        if let Some(name) = ring.names.get(child) {
            return name.clone();
        }
        let name: Arc<str> = Arc::from(child);
        if ring.names.len() < MAX_NAMES {
            ring.names.insert(child.to_owned(), name.clone());
        }
        name
    }

    /// The samples numbered after `after` (all of them for `None`), oldest
    /// first.
    pub fn since(&self, after: Option<u64>) -> Vec<Sample> {
        let ring = self.lock();
        let skip = match (after, ring.samples.front()) {
            (Some(after), Some(first)) => {
                usize::try_from(after.saturating_add(1).saturating_sub(first.seq))
                    .unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        ring.samples.iter().skip(skip).cloned().collect()
    }

    /// The number of the newest sample, if any.
    pub fn latest(&self) -> Option<u64> {
        self.lock().samples.back().map(|s| s.seq)
    }

    /// How many samples are kept now.
    pub fn len(&self) -> usize {
        self.lock().samples.len()
    }

    /// Whether no sample was taken yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The answer of `/api/history?after=N`: how samples are taken, the
    /// newest sample's number, and the samples after `after`.
    pub fn answer(&self, after: Option<u64>) -> serde_json::Value {
        serde_json::json!({
            "every": humantime::format_duration(EVERY).to_string(),
            "keep": KEEP,
            "latest": self.latest(),
            "samples": self.since(after),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at_secs: u64) -> Sample {
        Sample {
            seq: 0,
            at: UNIX_EPOCH + Duration::from_secs(at_secs),
            agents: Some(Agents {
                alive: at_secs,
                missing: 1,
            }),
            machines: None,
            provider: None,
            restarts: None,
            mailboxes: Vec::new(),
        }
    }

    #[test]
    fn the_ring_keeps_the_newest_and_numbers_them() {
        let history = History::new();
        assert!(history.is_empty());
        assert_eq!(history.latest(), None);
        for n in 0..(KEEP as u64 + 5) {
            history.push(sample(n));
        }
        assert_eq!(history.len(), KEEP);
        assert_eq!(history.latest(), Some(KEEP as u64 + 4));
        let all = history.since(None);
        assert_eq!(all.first().unwrap().seq, 5);
        assert_eq!(all.first().unwrap().agents.unwrap().alive, 5);
        assert_eq!(all.last().unwrap().seq, KEEP as u64 + 4);
    }

    #[test]
    fn after_answers_only_newer_samples() {
        let history = History::new();
        for n in 0..10 {
            history.push(sample(n));
        }
        let seqs = |after| -> Vec<u64> { history.since(after).iter().map(|s| s.seq).collect() };
        assert_eq!(seqs(Some(7)), [8, 9]);
        assert_eq!(seqs(Some(9)), Vec::<u64>::new());
        assert_eq!(seqs(Some(u64::MAX)), Vec::<u64>::new());
        assert_eq!(seqs(None).len(), 10);
        for n in 10..(KEEP as u64 + 10) {
            history.push(sample(n));
        }
        // Older than anything kept: everything kept.
        assert_eq!(seqs(Some(3)).len(), KEEP);
        assert_eq!(seqs(Some(3))[0], 10);
    }

    #[test]
    fn samples_serialize_with_rfc3339_times() {
        let history = History::new();
        history.push(Sample {
            at: UNIX_EPOCH + Duration::from_millis(1_700_000_000_123),
            mailboxes: vec![Mailbox {
                child: history.name("root/gateway"),
                depth: 3,
            }],
            ..sample(0)
        });
        history.push(Sample {
            at: UNIX_EPOCH + Duration::from_secs(253_402_300_800),
            ..sample(0)
        });
        let answer = history.answer(None);
        assert_eq!(answer["every"], "2s");
        assert_eq!(answer["keep"], KEEP);
        assert_eq!(answer["latest"], 1);
        let samples = answer["samples"].as_array().unwrap();
        assert_eq!(samples[0]["at"], "2023-11-14T22:13:20.123Z");
        assert_eq!(samples[0]["mailboxes"][0]["child"], "root/gateway");
        assert_eq!(samples[0]["mailboxes"][0]["depth"], 3);
        assert!(samples[0]["provider"].is_null());
        // A clock past year 9999 gives no time, not a panic.
        assert!(samples[1]["at"].is_null());
    }

    #[test]
    fn mailbox_names_are_shared_and_the_table_is_bounded() {
        let history = History::new();
        let a = history.name("root/gateway");
        let b = history.name("root/gateway");
        assert!(Arc::ptr_eq(&a, &b));
        for n in 0..MAX_NAMES * 2 {
            history.name(&format!("child-{n}"));
        }
        assert_eq!(history.lock().names.len(), MAX_NAMES);
    }
}
