//! What the run watches the whole time: each node's polls of each model,
//! from the nodes' logs, so that two nodes polling one model at once is
//! seen as it happens; and panics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::world::{Heard, LONG_POLL};

/// A run of polls of one model by one node.
#[derive(Debug, Clone, Copy)]
struct Run {
    node: usize,
    first: Instant,
    last: Instant,
}

/// Violations seen so far, shared with the thread that watches.
pub type Seen = Arc<Mutex<Vec<String>>>;

/// Polls heard so far, over every node and model.
pub type Polls = Arc<AtomicU64>;

/// Watches what the nodes' logs say, on a thread of its own, until every
/// sender is gone; pushes each violation to `seen` and prints it.
pub fn watch(
    heard: mpsc::Receiver<(usize, Instant, Heard)>,
    seen: Seen,
    polls: Polls,
    started: Instant,
) {
    std::thread::spawn(move || {
        let mut runs: BTreeMap<String, Vec<Run>> = BTreeMap::new();
        for (node, at, what) in heard {
            let violation = match what {
                Heard::Panic(line) => Some(format!("machine-{node} panicked: {line}")),
                Heard::Polled { model } => {
                    polls.fetch_add(1, Ordering::Relaxed);
                    polled(runs.entry(model.clone()).or_default(), node, at).map(|(other, gap)| {
                        format!(
                            "{model} polled by machine-{node} at {:.1}s and by machine-{other} \
                             in the {}ms since machine-{node}'s poll before: both at once",
                            at.duration_since(started).as_secs_f64(),
                            gap.as_millis(),
                        )
                    })
                }
            };
            if let Some(violation) = violation {
                println!("violation: {violation}");
                seen.lock().expect("not poisoned").push(violation);
            }
        }
    });
}

/// Adds a poll of `node` at `at` to a model's runs; answers the node whose
/// polls went on around it, and their gap, when another node held the
/// model then: a node's polls between two of another's that are closer
/// than a lease could move there and back.
fn polled(runs: &mut Vec<Run>, node: usize, at: Instant) -> Option<(usize, Duration)> {
    match runs.last_mut() {
        Some(run) if run.node == node => {
            run.last = run.last.max(at);
            return None;
        }
        _ => runs.push(Run {
            node,
            first: at,
            last: at,
        }),
    }
    if runs.len() > 64 {
        runs.drain(..runs.len() - 64);
    }
    let [.., before, between, after] = runs.as_slice() else {
        return None;
    };
    let gap = after.first.saturating_duration_since(before.last);
    (before.node == after.node && between.node != after.node && gap < LONG_POLL * 3)
        .then_some((between.node, gap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_polling_between_anothers_polls_is_seen_and_a_hand_over_is_not() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let mut runs = Vec::new();
        // machine-0 polls, gives the model to machine-1, which polls on.
        for (node, at) in [(0, 0), (0, 200), (1, 300), (1, 500)] {
            assert_eq!(polled(&mut runs, node, ms(at)), None);
        }
        // machine-0 wakes and polls once more, 400 ms after its last:
        // too soon for the model to have come back to it, so machine-1
        // polled it meanwhile while machine-0 still did.
        assert_eq!(
            polled(&mut runs, 0, ms(600)),
            Some((1, Duration::from_millis(400)))
        );
        // A model that comes back after a lease's time is no violation.
        let mut runs = Vec::new();
        for (node, at) in [(0, 0), (1, 300), (1, 500), (0, 2500)] {
            assert_eq!(polled(&mut runs, node, ms(at)), None);
        }
    }
}
