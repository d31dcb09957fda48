//! A model's machine watcher over the registry (docs/spec.md §9.4.1): the
//! first batch names every registered machine; each later one the machines
//! whose registration changed, removed ones included, as the simulated
//! model's watcher does.
//!
//! The watcher waits for the model's version to move, lets [`COALESCE`]
//! pass so that a burst of registrations makes one batch, then lists the
//! model and compares it with what it last reported.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use muster::error::PollError;
use muster::model::{Life, MachineBatches, MachineStatus};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::InstanceId;
use tokio::sync::watch;

use super::Registry;

/// How long the watcher lets changes gather after the first one before it
/// reads the model: a burst of registrations within it is one batch.
pub const COALESCE: Duration = Duration::from_millis(100);

/// What the watcher reports a change of.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Watched {
    incarnation: u64,
    life: Life,
    agent_status: MachineStatus,
    instance_id: Option<InstanceId>,
}

struct Watcher {
    registry: Registry,
    model: ModelUuid,
    version: watch::Receiver<u64>,
    /// What was last reported; `None` before the first batch.
    seen: Option<BTreeMap<MachineTag, Watched>>,
    /// The watch failed; the stream ends after the error.
    failed: bool,
}

/// The machine batches of `model`; an error reading the registry is the
/// last item.
pub(super) fn machine_batches(registry: Registry, model: ModelUuid) -> MachineBatches {
    let version = registry.backend().version(model);
    let watcher = Watcher {
        registry,
        model,
        version,
        seen: None,
        failed: false,
    };
    stream::unfold(watcher, |mut watcher| async move {
        if watcher.failed {
            return None;
        }
        let batch = watcher.next_batch().await;
        watcher.failed = batch.is_err();
        Some((batch, watcher))
    })
    .boxed()
}

impl Watcher {
    async fn next_batch(&mut self) -> Result<Vec<MachineTag>, PollError> {
        loop {
            // Marked before reading, so a change made meanwhile wakes us.
            self.version.borrow_and_update();
            let snapshot = self.snapshot().await?;
            let first = self.seen.is_none();
            let batch = match &self.seen {
                None => snapshot.keys().cloned().collect(),
                Some(seen) => changes(seen, &snapshot),
            };
            self.seen = Some(remember(snapshot, self.seen.as_ref()));
            if first || !batch.is_empty() {
                return Ok(batch);
            }
            if self.version.changed().await.is_err() {
                // The storage is gone: nothing will change any more.
                futures::future::pending::<()>().await;
            }
            tokio::time::sleep(COALESCE).await;
        }
    }

    async fn snapshot(&self) -> Result<BTreeMap<MachineTag, Watched>, PollError> {
        let machines = self
            .registry
            .registrations(self.model)
            .await
            .map_err(|e| PollError::other(e.what, e.source))?;
        Ok(machines
            .into_iter()
            .map(|m| {
                let watched = Watched {
                    incarnation: m.incarnation,
                    life: m.registration.life,
                    agent_status: m.registration.agent_status,
                    instance_id: m.registration.instance_id,
                };
                (m.tag, watched)
            })
            .collect())
    }
}

/// The machines of `now` that differ from `seen`, and those of `seen` that
/// are gone, in tag order.
fn changes(
    seen: &BTreeMap<MachineTag, Watched>,
    now: &BTreeMap<MachineTag, Watched>,
) -> Vec<MachineTag> {
    let mut batch: Vec<MachineTag> = now
        .iter()
        .filter(|(tag, watched)| seen.get(*tag) != Some(*watched))
        .map(|(tag, _)| tag.clone())
        .chain(seen.keys().filter(|tag| !now.contains_key(*tag)).cloned())
        .collect();
    batch.sort();
    batch
}

/// What to remember as reported: `now`, less the machines registered anew
/// since `seen` (a new incarnation). Those were just reported as a change,
/// which the poller's watcher takes as their removal, since their old
/// handles answer "not found"; left out here, they come again in the next
/// batch as new machines (docs/spec.md §9.4.2).
fn remember(
    mut now: BTreeMap<MachineTag, Watched>,
    seen: Option<&BTreeMap<MachineTag, Watched>>,
) -> BTreeMap<MachineTag, Watched> {
    if let Some(seen) = seen {
        now.retain(|tag, watched| {
            seen.get(tag)
                .is_none_or(|before| before.incarnation == watched.incarnation)
        });
    }
    now
}
