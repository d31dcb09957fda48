//! Batching: the queue of pollers' requests, when its head may go, and a
//! batch that asks the provider once per distinct instance and answers each
//! request from the one reply.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::channel::oneshot;
use muster::clock::later;
use muster::error::PollError;
use muster::names::ModelUuid;
use muster::provider::{Instance, InstanceId, NetworkInterface};
use tokio::time::Instant;

use super::messages::Fetched;

/// Whose credential a request is made under: `None` for the gateway's
/// own model, `Some` for one of the models of a gateway serving many.
pub(super) type ModelKey = Option<ModelUuid>;

/// A poller's request, waiting for its provider call.
pub(super) struct Waiting {
    pub(super) model: ModelKey,
    pub(super) id: InstanceId,
    pub(super) since: Instant,
    pub(super) reply: oneshot::Sender<Result<Fetched, PollError>>,
}

/// The requests waiting for a provider call, oldest first.
#[derive(Default)]
pub(super) struct Queue(VecDeque<Waiting>);

impl Queue {
    /// Adds a request behind the others.
    pub(super) fn push(&mut self, waiting: Waiting) {
        self.0.push_back(waiting);
    }

    /// How many requests wait.
    pub(super) fn len(&self) -> usize {
        self.0.len()
    }

    /// When the oldest request arrived; `None` when none waits.
    pub(super) fn oldest(&self) -> Option<Instant> {
        self.0.front().map(|head| head.since)
    }

    /// Whether the request at the head of the queue may go now: it has
    /// waited its window, or a full batch is waiting.
    pub(super) fn head_ready(&self, now: Instant, window: Duration, max_batch: usize) -> bool {
        self.0.len() >= max_batch
            || self
                .oldest()
                .is_some_and(|since| now >= later(since, window))
    }

    /// The oldest requests, at most `max_batch` of them.
    pub(super) fn take(&mut self, max_batch: usize) -> Vec<Waiting> {
        let take = self.0.len().min(max_batch);
        self.0.drain(..take).collect()
    }

    /// Puts requests back at the head of the queue, in their order, to go
    /// again when the provider lets them.
    pub(super) fn requeue(&mut self, requests: Vec<Waiting>) {
        for waiting in requests.into_iter().rev() {
            self.0.push_front(waiting);
        }
    }

    /// How many requests of `model` wait.
    pub(super) fn count_of(&self, model: ModelKey) -> usize {
        self.0
            .iter()
            .filter(|waiting| waiting.model == model)
            .count()
    }

    /// Takes out the requests of `model`, in their order.
    pub(super) fn extract(&mut self, model: ModelKey) -> Vec<Waiting> {
        let (taken, kept): (VecDeque<Waiting>, VecDeque<Waiting>) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(|waiting| waiting.model == model);
        self.0 = kept;
        taken.into()
    }

    /// Puts requests that waited elsewhere back in the queue, every request
    /// in the order it arrived.
    pub(super) fn merge(&mut self, requests: Vec<Waiting>) {
        if requests.is_empty() {
            return;
        }
        self.0.extend(requests);
        // Stable: requests that arrived together keep their order.
        self.0
            .make_contiguous()
            .sort_by_key(|waiting| waiting.since);
    }
}

/// Requests that travel in one provider call.
pub(super) struct Batch {
    requests: Vec<Waiting>,
    /// Where each id is in the distinct ids asked for.
    index: HashMap<InstanceId, usize>,
}

impl Batch {
    /// A batch of `requests`, and the distinct ids they ask for in the
    /// order first asked: two pollers may ask for one instance, and the
    /// provider is asked once.
    pub(super) fn new(requests: Vec<Waiting>) -> (Self, Vec<InstanceId>) {
        let mut unique: Vec<InstanceId> = Vec::with_capacity(requests.len());
        let mut index: HashMap<InstanceId, usize> = HashMap::with_capacity(requests.len());
        for waiting in &requests {
            index.entry(waiting.id.clone()).or_insert_with(|| {
                unique.push(waiting.id.clone());
                unique.len() - 1
            });
        }
        (Batch { requests, index }, unique)
    }

    /// How many requests it holds.
    pub(super) fn len(&self) -> usize {
        self.requests.len()
    }

    /// Answers each request from the provider's answer, which is aligned
    /// with the distinct ids.
    pub(super) fn answer(
        self,
        instances: &[Option<Instance>],
        interfaces: &[Option<Vec<NetworkInterface>>],
    ) {
        for waiting in self.requests {
            let at = self.index[&waiting.id];
            let fetched = match instances[at].clone() {
                Some(instance) => Fetched::Known {
                    instance,
                    interfaces: interfaces[at].clone(),
                },
                None => Fetched::Unknown,
            };
            let _ = waiting.reply.send(Ok(fetched));
        }
    }

    /// Answers every request: the provider knew none of the instances.
    pub(super) fn none_known(self) {
        for waiting in self.requests {
            let _ = waiting.reply.send(Ok(Fetched::Unknown));
        }
    }

    /// Answers every request with `error`.
    pub(super) fn fail(self, error: &PollError) {
        for waiting in self.requests {
            let _ = waiting.reply.send(Err(error.clone()));
        }
    }

    /// The requests, to be queued again.
    pub(super) fn into_requests(self) -> Vec<Waiting> {
        self.requests
    }
}
