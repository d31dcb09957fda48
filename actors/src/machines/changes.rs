//! What one batch of the model's machine watcher does (docs/spec.md §2.3
//! "Machines"), as a list of steps: sort the batch into known and new
//! machines, refresh the known ones, fetch the new ones and settle the
//! manual ones, start the pollers that are missing, stop those of the
//! machines that are gone, and send the rest back to the short phase.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use muster::error::ErrorKind;
use muster::model::{Life, Machine};
use muster::names::MachineTag;
use muster::update::settle_manual_machine;
use slog::{Logger, debug, info, warn};
use tokio::time::Instant;

use crate::supervisor::ChildSpec;

use super::poller::Reset;
use super::registry::{PollerRef, Tracked, lock};
use super::watcher::Env;

/// How many model calls the watcher makes at once: a first batch may name
/// thousands of machines, and the API server should not get them all at
/// once.
const MODEL_CALLS_AT_ONCE: usize = 64;

/// Runs `calls` with at most [`MODEL_CALLS_AT_ONCE`] in flight; answers in
/// order.
async fn at_most_a_few<T, F>(calls: impl IntoIterator<Item = F>) -> Vec<T>
where
    F: Future<Output = T>,
{
    futures::stream::iter(calls)
        .buffered(MODEL_CALLS_AT_ONCE)
        .collect()
        .await
}

/// A machine with its tag.
type Tagged = (MachineTag, Arc<dyn Machine>);

/// The machines of a batch whose model calls failed, with why; the watcher
/// tries them again later.
#[derive(Default)]
struct Failures(Vec<(MachineTag, String)>);

impl Failures {
    fn add(&mut self, tag: MachineTag, why: String) {
        self.0.push((tag, why));
    }

    /// Logs each failure; answers the machines to try again.
    fn into_retries(self, log: &Logger) -> Vec<MachineTag> {
        for (tag, error) in &self.0 {
            warn!(log, "cannot handle a change of machine, will try again";
                "machine" => %tag, "error" => error);
        }
        self.0.into_iter().map(|(tag, _)| tag).collect()
    }
}

/// What refreshing the known machines of a batch showed.
#[derive(Default)]
struct Refreshed {
    /// Still there and not dead.
    alive: Vec<MachineTag>,
    /// Dead or removed, with which of the two.
    gone: Vec<(MachineTag, &'static str)>,
}

/// The new machines of a batch, by how they are followed.
#[derive(Default)]
struct NewMachines {
    manual: Vec<Tagged>,
    polled: Vec<Tagged>,
}

impl Env {
    /// Handles one batch of the machine watcher. `first` is the first
    /// batch of a new watch, which holds every machine: pollers lost with a
    /// restart of the machines supervisor are added again then (and
    /// whenever a known machine's poller is not running), and the known
    /// machines keep their phase, since that batch is what the model holds
    /// rather than a change to it (docs/spec.md §2.3.5). Answers the
    /// machines whose model calls failed, to be tried again later; an error
    /// (the supervisor refusing) is the watcher's failure.
    pub(super) async fn machines_changed(
        &self,
        tags: Vec<MachineTag>,
        first: bool,
        log: &Logger,
    ) -> Result<Vec<MachineTag>, String> {
        let mut failures = Failures::default();
        let (known, new) = self.split_known_from_new(tags);
        let Refreshed { alive, gone } = refresh_known(known, &mut failures).await;
        let fetched = self.fetch_new(new, &mut failures, log).await;
        let NewMachines { manual, polled } = sort_out_manual(fetched, &mut failures).await;
        self.settle_manual(manual, &mut failures, log).await;
        let lost = self.find_lost_pollers(&alive, first).await?;
        let mut pollers = self.track_polled(polled, log);
        pollers.extend(self.replace_lost(&lost, log));
        self.start_pollers(pollers).await?;
        self.forget_gone(&gone, log).await?;
        if !first {
            self.reset_alive(&alive, log);
        }
        Ok(failures.into_retries(log))
    }

    /// The batch's machines, each once and in tag order: those already
    /// tracked, with the machine the registry holds, and the new ones.
    fn split_known_from_new(&self, tags: Vec<MachineTag>) -> (Vec<Tagged>, Vec<MachineTag>) {
        let tags: BTreeSet<MachineTag> = tags.into_iter().collect();
        let registry = lock(&self.registry);
        let mut known = Vec::new();
        let mut new = Vec::new();
        for tag in tags {
            match registry.machine(&tag) {
                Some(machine) => known.push((tag, machine.clone())),
                None => new.push(tag),
            }
        }
        (known, new)
    }

    /// Fetches the new machines from the model; one that is already gone
    /// or dead is not tracked at all.
    async fn fetch_new(
        &self,
        new: Vec<MachineTag>,
        failures: &mut Failures,
        log: &Logger,
    ) -> Vec<Tagged> {
        let fetched = at_most_a_few(new.iter().map(|tag| self.facade.machine(tag))).await;
        let mut machines = Vec::new();
        for (tag, result) in new.into_iter().zip(fetched) {
            match result {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(log, "machine gone before it was tracked"; "machine" => %tag);
                }
                Err(e) => failures.add(tag, format!("fetching the machine: {e}")),
                Ok(machine) if machine.life() == Life::Dead => {
                    debug!(log, "machine dead before it was tracked"; "machine" => %tag);
                }
                Ok(machine) => machines.push((tag, machine)),
            }
        }
        machines
    }

    /// Marks the manual machines running and tracks them without a poller.
    async fn settle_manual(&self, manual: Vec<Tagged>, failures: &mut Failures, log: &Logger) {
        let settled = at_most_a_few(manual.iter().map(|(_, m)| settle_manual_machine(&**m))).await;
        for ((tag, machine), result) in manual.into_iter().zip(settled) {
            match result {
                Err(e) => failures.add(tag, format!("marking it running: {e}")),
                Ok(set) => {
                    info!(log, "machine is manually provisioned, not polling it";
                        "machine" => %tag, "set_running" => set);
                    lock(&self.registry).track(tag, machine, None);
                }
            }
        }
    }

    /// The live machines whose pollers the supervisor no longer holds.
    /// Pollers may have been lost with a restart of the machines
    /// supervisor, which also restarts this watcher: on a new watch every
    /// known machine is a suspect, later only those whose poller is not
    /// running (most likely just waiting to be restarted). The
    /// supervisor, asked about the suspects alone, settles it.
    async fn find_lost_pollers(
        &self,
        alive: &[MachineTag],
        first: bool,
    ) -> Result<Vec<MachineTag>, String> {
        let suspects: Vec<&MachineTag> = {
            let registry = lock(&self.registry);
            alive
                .iter()
                .filter(|tag| {
                    registry
                        .poller(tag)
                        .is_some_and(|p| first || !p.mailbox.is_running())
                })
                .collect()
        };
        if suspects.is_empty() {
            return Ok(Vec::new());
        }
        let absent = self
            .group
            .absent(&suspects)
            .await
            .map_err(|e| format!("listing pollers: {e}"))?;
        let absent: BTreeSet<String> = absent.into_iter().collect();
        Ok(suspects
            .into_iter()
            .filter(|tag| absent.contains(tag.as_str()))
            .cloned()
            .collect())
    }

    /// Records each new polled machine with a fresh schedule and answers
    /// its poller. Recorded before its poller is added, so that a restart
    /// between the two finds it known and adds the poller then.
    fn track_polled(&self, polled: Vec<Tagged>, log: &Logger) -> Vec<ChildSpec> {
        let now = Instant::now();
        let mut registry = lock(&self.registry);
        polled
            .into_iter()
            .map(|(tag, machine)| {
                let poller = PollerRef::new(&self.config, now);
                let spec = self.group.spec(&tag, &machine, &poller);
                info!(log, "polling new machine"; "machine" => %tag);
                registry.track(tag, machine, Some(poller));
                spec
            })
            .collect()
    }

    /// The pollers that replace the lost ones; each resumes from the
    /// status cell its machine kept.
    fn replace_lost(&self, lost: &[MachineTag], log: &Logger) -> Vec<ChildSpec> {
        let registry = lock(&self.registry);
        lost.iter()
            .filter_map(|tag| {
                let Some(Tracked {
                    machine,
                    poller: Some(poller),
                }) = registry.machines.get(tag)
                else {
                    return None;
                };
                info!(log, "polling machine again"; "machine" => %tag);
                Some(self.group.spec(tag, machine, poller))
            })
            .collect()
    }

    async fn start_pollers(&self, pollers: Vec<ChildSpec>) -> Result<(), String> {
        self.group
            .add(pollers)
            .await
            .map_err(|e| format!("adding pollers: {e}"))
    }

    /// Stops the pollers of the dead and removed machines, then stops
    /// tracking those machines.
    async fn forget_gone(
        &self,
        gone: &[(MachineTag, &'static str)],
        log: &Logger,
    ) -> Result<(), String> {
        let stopping: Vec<String> = {
            let registry = lock(&self.registry);
            gone.iter()
                .filter(|(tag, _)| registry.poller(tag).is_some())
                .map(|(tag, _)| tag.as_str().to_owned())
                .collect()
        };
        self.group
            .remove(stopping)
            .await
            .map_err(|e| format!("stopping pollers: {e}"))?;
        let mut registry = lock(&self.registry);
        for (tag, why) in gone {
            registry.forget(tag);
            info!(log, "machine is gone, stopped tracking it"; "machine" => %tag, "why" => *why);
        }
        Ok(())
    }

    /// Every other event about a known machine: back to the short phase.
    fn reset_alive(&self, alive: &[MachineTag], log: &Logger) {
        let registry = lock(&self.registry);
        for tag in alive {
            let Some(poller) = registry.poller(tag) else {
                continue;
            };
            if let Err(e) = poller.mailbox.do_send(Reset) {
                // Its mailbox is full: it has work queued and will poll
                // anyway.
                warn!(log, "could not reset machine's poller"; "machine" => %tag, "error" => %e);
            }
        }
    }
}

/// Refreshes the known machines; a removed or dead one is gone.
async fn refresh_known(known: Vec<Tagged>, failures: &mut Failures) -> Refreshed {
    let refreshed = at_most_a_few(known.iter().map(|(_, m)| m.refresh())).await;
    let mut result = Refreshed::default();
    for ((tag, machine), refresh) in known.into_iter().zip(refreshed) {
        match refresh {
            Err(e) if e.kind() == ErrorKind::NotFound => result.gone.push((tag, "removed")),
            Err(e) => failures.add(tag, format!("refreshing the machine: {e}")),
            Ok(()) if machine.life() == Life::Dead => result.gone.push((tag, "dead")),
            Ok(()) => result.alive.push(tag),
        }
    }
    result
}

/// Asks each new machine whether it was provisioned manually.
async fn sort_out_manual(machines: Vec<Tagged>, failures: &mut Failures) -> NewMachines {
    let manual = at_most_a_few(machines.iter().map(|(_, m)| m.is_manual())).await;
    let mut sorted = NewMachines::default();
    for ((tag, machine), is_manual) in machines.into_iter().zip(manual) {
        match is_manual {
            Err(e) => failures.add(tag, format!("asking whether it is manual: {e}")),
            Ok(true) => sorted.manual.push((tag, machine)),
            Ok(false) => sorted.polled.push((tag, machine)),
        }
    }
    sorted
}
