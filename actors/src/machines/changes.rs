//! What one batch of the model's machine watcher does (SPEC §2
//! "Machines").

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use muster::error::ErrorKind;
use muster::model::{Life, Machine};
use muster::names::MachineTag;
use muster::poll::PollState;
use muster::update::settle_manual_machine;
use slog::{Logger, debug, info, warn};
use tokio::time::Instant;

use crate::mailbox::Mailbox;

use super::poller::Reset;
use super::registry::{PollerRef, PollerStatus, Tracked, lock};
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

impl Env {
    /// Handles one batch of the machine watcher (SPEC §2 "Machines").
    /// `first` is the first batch of a new watch, which holds every machine:
    /// pollers lost with a restart of the machines supervisor are added
    /// again then (and whenever a known machine's poller is not running).
    /// Answers the machines whose model calls failed, to be
    /// tried again later; an error (the supervisor refusing) is the
    /// watcher's failure.
    pub(super) async fn machines_changed(
        &self,
        tags: Vec<MachineTag>,
        first: bool,
        log: &Logger,
    ) -> Result<Vec<MachineTag>, String> {
        let tags: BTreeSet<MachineTag> = tags.into_iter().collect();
        let (known, new): (Vec<_>, Vec<_>) = {
            let registry = lock(&self.registry);
            tags.into_iter()
                .map(|tag| {
                    let machine = registry.machines.get(&tag).map(|t| t.machine.clone());
                    (tag, machine)
                })
                .partition(|(_, machine)| machine.is_some())
        };
        let known: Vec<(MachineTag, Arc<dyn Machine>)> = known
            .into_iter()
            .filter_map(|(tag, machine)| machine.map(|m| (tag, m)))
            .collect();
        let mut failed: Vec<(MachineTag, String)> = Vec::new();

        // Known machines: refresh, then forget the dead and the removed.
        let refreshed = at_most_a_few(known.iter().map(|(_, m)| m.refresh())).await;
        let mut gone = Vec::new();
        let mut alive = Vec::new();
        for ((tag, machine), result) in known.into_iter().zip(refreshed) {
            match result {
                Err(e) if e.kind() == ErrorKind::NotFound => gone.push((tag, "removed")),
                Err(e) => failed.push((tag, format!("refreshing the machine: {e}"))),
                Ok(()) if machine.life() == Life::Dead => gone.push((tag, "dead")),
                Ok(()) => alive.push(tag),
            }
        }

        // New machines: fetch them and sort out the manual ones.
        let fetched = at_most_a_few(new.iter().map(|(tag, _)| self.facade.machine(tag))).await;
        let mut candidates = Vec::new();
        for ((tag, _), result) in new.into_iter().zip(fetched) {
            match result {
                Err(e) if e.kind() == ErrorKind::NotFound => {
                    debug!(log, "machine gone before it was tracked"; "machine" => %tag);
                }
                Err(e) => failed.push((tag, format!("fetching the machine: {e}"))),
                Ok(machine) if machine.life() == Life::Dead => {
                    debug!(log, "machine dead before it was tracked"; "machine" => %tag);
                }
                Ok(machine) => candidates.push((tag, machine)),
            }
        }
        let manual = at_most_a_few(candidates.iter().map(|(_, m)| m.is_manual())).await;
        let mut manual_machines = Vec::new();
        let mut polled = Vec::new();
        for ((tag, machine), is_manual) in candidates.into_iter().zip(manual) {
            match is_manual {
                Err(e) => failed.push((tag, format!("asking whether it is manual: {e}"))),
                Ok(true) => manual_machines.push((tag, machine)),
                Ok(false) => polled.push((tag, machine)),
            }
        }
        let settled = at_most_a_few(
            manual_machines
                .iter()
                .map(|(_, m)| settle_manual_machine(&**m)),
        )
        .await;
        for ((tag, machine), result) in manual_machines.into_iter().zip(settled) {
            match result {
                Err(e) => failed.push((tag, format!("marking it running: {e}"))),
                Ok(set) => {
                    info!(log, "machine is manually provisioned, not polling it";
                        "machine" => %tag, "set_running" => set);
                    lock(&self.registry).machines.insert(
                        tag,
                        Tracked {
                            machine,
                            poller: None,
                        },
                    );
                }
            }
        }

        // Pollers may have been lost with a restart of the machines
        // supervisor, which also restarts this watcher: on a new watch every
        // known machine is a suspect, later only those whose poller is not
        // running (most likely just waiting to be restarted). The
        // supervisor's list settles it.
        let suspects: Vec<MachineTag> = {
            let registry = lock(&self.registry);
            alive
                .iter()
                .filter(|tag| {
                    registry
                        .machines
                        .get(*tag)
                        .and_then(|t| t.poller.as_ref())
                        .is_some_and(|p| first || !p.mailbox.is_running())
                })
                .cloned()
                .collect()
        };
        let present: BTreeSet<String> = if suspects.is_empty() {
            BTreeSet::new()
        } else {
            self.group
                .present()
                .await
                .map_err(|e| format!("listing pollers: {e}"))?
        };

        // Record the new pollers before adding them, so that a restart
        // between the two finds them known and adds them then.
        let now = Instant::now();
        let mut specs = Vec::new();
        {
            let mut registry = lock(&self.registry);
            for (tag, machine) in polled {
                let poller = PollerRef {
                    status: Arc::new(Mutex::new(PollerStatus {
                        state: PollState::new(&self.config.poll, now),
                        instance_id: None,
                        instance_status: None,
                        addresses: Vec::new(),
                        last_error: None,
                        polls: 0,
                    })),
                    mailbox: Mailbox::keeping(self.config.poller_mailbox),
                };
                specs.push(self.group.spec(&tag, &machine, &poller));
                info!(log, "polling new machine"; "machine" => %tag);
                registry.machines.insert(
                    tag,
                    Tracked {
                        machine,
                        poller: Some(poller),
                    },
                );
            }
            for tag in &suspects {
                if let Some(Tracked {
                    machine,
                    poller: Some(poller),
                }) = registry.machines.get(tag)
                    && !present.contains(tag.as_str())
                {
                    info!(log, "polling machine again"; "machine" => %tag);
                    specs.push(self.group.spec(tag, machine, poller));
                }
            }
        }
        self.group
            .add(specs)
            .await
            .map_err(|e| format!("adding pollers: {e}"))?;

        let stopping: Vec<String> = {
            let registry = lock(&self.registry);
            gone.iter()
                .filter(|(tag, _)| {
                    registry
                        .machines
                        .get(tag)
                        .is_some_and(|t| t.poller.is_some())
                })
                .map(|(tag, _)| tag.as_str().to_owned())
                .collect()
        };
        self.group
            .remove(stopping)
            .await
            .map_err(|e| format!("stopping pollers: {e}"))?;
        {
            let mut registry = lock(&self.registry);
            for (tag, why) in &gone {
                registry.machines.remove(tag);
                info!(log, "machine is gone, stopped tracking it"; "machine" => %tag, "why" => *why);
            }
        }

        // Every other event about a known machine: back to the short phase.
        {
            let registry = lock(&self.registry);
            for tag in &alive {
                let Some(Tracked {
                    poller: Some(poller),
                    ..
                }) = registry.machines.get(tag)
                else {
                    continue;
                };
                if let Err(e) = poller.mailbox.do_send(Reset) {
                    // Its mailbox is full: it has work queued and will poll
                    // anyway.
                    warn!(log, "could not reset machine's poller"; "machine" => %tag, "error" => %e);
                }
            }
        }

        for (tag, error) in &failed {
            warn!(log, "cannot handle a change of machine, will try again";
                "machine" => %tag, "error" => error);
        }
        Ok(failed.into_iter().map(|(tag, _)| tag).collect())
    }
}
