//! One batch's provider calls: `instances` for every id, then
//! `network_interfaces` for the ids the provider knew, each in its reserved
//! slot and cut off after the call timeout.

use std::sync::Arc;
use std::time::Duration;

use muster::error::{ErrorKind, PollError};
use muster::provider::{Environ, Instance, InstanceId, NetworkInterface};
use tokio::time::Instant;

use super::metrics::Method;

/// One provider call's fate, for the counters.
pub(super) struct CallRecord {
    pub(super) method: Method,
    pub(super) ids: usize,
    pub(super) error: Option<PollError>,
}

/// What a batch's calls came to.
pub(super) enum Answer {
    /// Aligned with the batch's unique ids.
    Instances {
        instances: Vec<Option<Instance>>,
        interfaces: Vec<Option<Vec<NetworkInterface>>>,
    },
    /// The provider knew none of the ids.
    NoneKnown,
}

/// The calls a batch made, and what they came to.
pub(super) struct BatchOutcome {
    pub(super) calls: Vec<CallRecord>,
    pub(super) answer: Result<Answer, PollError>,
}

/// Runs one batch's provider calls, each no earlier than its reserved slot
/// and for no longer than `timeout`.
pub(super) async fn call_provider(
    environ: Arc<dyn Environ>,
    ids: Vec<InstanceId>,
    slots: [Instant; 2],
    timeout: Duration,
) -> BatchOutcome {
    let mut calls = Vec::with_capacity(2);
    let mut record = |method, ids, error: Option<&PollError>| {
        calls.push(CallRecord {
            method,
            ids,
            error: error.cloned(),
        });
    };

    tokio::time::sleep_until(slots[0]).await;
    let instances = within(timeout, environ.instances(&ids)).await;
    let instances = instances.and_then(|found| aligned(found, ids.len(), "instances"));
    record(Method::instances, ids.len(), instances.as_ref().err());
    let instances = match instances {
        Ok(found) if found.iter().any(Option::is_some) => found,
        Ok(_) | Err(PollError::NoInstances) => {
            return BatchOutcome {
                calls,
                answer: Ok(Answer::NoneKnown),
            };
        }
        Err(error) => {
            return BatchOutcome {
                calls,
                answer: Err(error),
            };
        }
    };

    // Only the instances the provider knows are asked about again.
    let known: Vec<InstanceId> = ids
        .iter()
        .zip(&instances)
        .filter(|(_, found)| found.is_some())
        .map(|(id, _)| id.clone())
        .collect();
    tokio::time::sleep_until(slots[1]).await;
    let lists = within(timeout, environ.network_interfaces(&known)).await;
    let lists = lists.and_then(|lists| aligned(lists, known.len(), "network interfaces"));
    record(
        Method::network_interfaces,
        known.len(),
        lists.as_ref().err(),
    );
    let mut lists = match lists {
        Ok(lists) => lists.into_iter().map(Some).collect::<Vec<_>>().into_iter(),
        Err(error) if error.kind() == ErrorKind::NotSupported => {
            vec![None; known.len()].into_iter()
        }
        Err(error) => {
            return BatchOutcome {
                calls,
                answer: Err(error),
            };
        }
    };
    let interfaces = instances
        .iter()
        .map(|found| found.as_ref().and_then(|_| lists.next().flatten()))
        .collect();
    BatchOutcome {
        calls,
        answer: Ok(Answer::Instances {
            instances,
            interfaces,
        }),
    }
}

async fn within<T>(
    timeout: Duration,
    call: futures::future::BoxFuture<'static, Result<T, PollError>>,
) -> Result<T, PollError> {
    tokio::time::timeout(timeout, call)
        .await
        .unwrap_or_else(|_| {
            Err(PollError::Timeout {
                call: "provider call".to_owned(),
                after: timeout,
            })
        })
}

/// A provider answer must hold one entry per id asked for; anything else is
/// the provider's error, not a reason to misattribute results.
fn aligned<T>(answer: Vec<T>, asked: usize, what: &str) -> Result<Vec<T>, PollError> {
    if answer.len() == asked {
        Ok(answer)
    } else {
        Err(PollError::other(
            format!("fetching {what}"),
            format!("provider answered {} entries for {asked} ids", answer.len()),
        ))
    }
}
