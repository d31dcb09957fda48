//! The lease manager's reads and writes of one lease, each with its
//! revision checked, and what each came to.

use std::time::Duration;

use async_nats::jetstream::kv;
use muster::names::ModelUuid;
use muster_actors::ModelHolds;
use tokio::time::Instant;

use super::plan::{Seen, Step};

/// What one step came to.
pub(super) enum Outcome {
    /// Written; the lease is this node's, at `revision`, as of `sent`.
    Written {
        model: ModelUuid,
        revision: u64,
        sent: Instant,
        acquired: bool,
    },
    /// Someone else holds it (or took it meanwhile).
    Taken { model: ModelUuid },
    /// Given back.
    Released,
    /// The write failed for another reason.
    Failed { model: ModelUuid, error: String },
}

/// The lease an entry says, if any: a deleted or purged key is vacant.
pub(super) fn read_entry(entry: Option<kv::Entry>) -> Option<Seen> {
    let entry = entry?;
    if entry.operation != kv::Operation::Put {
        return None;
    }
    let holder = std::str::from_utf8(&entry.value).ok()?.parse().ok()?;
    Some(Seen {
        holder,
        revision: entry.revision,
    })
}

/// Writes one step; a lease taken starts its model's polling, a renewal
/// refused stops it, at once. A lease written is held until `valid_for`
/// after the write was sent: past it, the model's calls and writes are
/// refused even if the manager has not yet noticed (a paused process).
pub(super) async fn carry_out(
    store: &kv::Store,
    node: &str,
    holds: &ModelHolds,
    step: Step,
    timeout: Duration,
    valid_for: Duration,
) -> Outcome {
    let sent = Instant::now();
    match step {
        Step::Renew { model, revision } => {
            let write = store.update(model.to_string(), node.to_owned().into(), revision);
            match tokio::time::timeout(timeout, write).await {
                Ok(Ok(revision)) => {
                    holds.hold_until(model, sent + valid_for);
                    Outcome::Written {
                        model,
                        revision,
                        sent,
                        acquired: false,
                    }
                }
                Ok(Err(e)) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    holds.release(&model);
                    Outcome::Taken { model }
                }
                Ok(Err(e)) => {
                    holds.release(&model);
                    Outcome::Failed {
                        model,
                        error: e.to_string(),
                    }
                }
                Err(_) => {
                    holds.release(&model);
                    Outcome::Failed {
                        model,
                        error: "the renewal timed out".into(),
                    }
                }
            }
        }
        Step::Acquire { model } => {
            let write = store.create(model.to_string(), node.to_owned().into());
            match tokio::time::timeout(timeout, write).await {
                Ok(Ok(revision)) => {
                    holds.hold_until(model, sent + valid_for);
                    Outcome::Written {
                        model,
                        revision,
                        sent,
                        acquired: true,
                    }
                }
                Ok(Err(e)) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                    Outcome::Taken { model }
                }
                Ok(Err(e)) => Outcome::Failed {
                    model,
                    error: e.to_string(),
                },
                Err(_) => Outcome::Failed {
                    model,
                    error: "taking the lease timed out".into(),
                },
            }
        }
        Step::Release { model, revision } => {
            let delete = store.delete_expect_revision(model.to_string(), Some(revision));
            match tokio::time::timeout(timeout, delete).await {
                Ok(Ok(())) => Outcome::Released,
                // It expires at the TTL anyway.
                Ok(Err(e)) => Outcome::Failed {
                    model,
                    error: e.to_string(),
                },
                Err(_) => Outcome::Failed {
                    model,
                    error: "giving the lease back timed out".into(),
                },
            }
        }
    }
}
