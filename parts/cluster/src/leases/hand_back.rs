//! A node that stops gives its leases back (docs/spec.md §11.8.6): its
//! models stop polling here, then their keys are deleted, each expecting
//! the revision this node wrote last, so that the nodes that own them
//! next take them at once instead of after the TTL.

use std::time::Duration;

use actix::prelude::*;
use futures::future::join_all;
use muster::names::ModelUuid;
use slog::info;

use super::LeaseManager;
use super::plan::Step;
use super::writes::{Outcome, carry_out};

/// The node stops: give back every lease held, and take none again.
/// Answers once every lease is given back, or after `wait` at most (a
/// lease not given back expires at the TTL, as after a crash).
pub struct HandBack {
    /// How long to wait for NATS.
    pub wait: Duration,
}

impl Message for HandBack {
    type Result = ();
}

impl Handler<HandBack> for LeaseManager {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, back: HandBack, _ctx: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        let held: Vec<(ModelUuid, u64)> = self.held.iter().map(|(m, h)| (*m, h.revision)).collect();
        self.held.clear();
        // Polling stops before the leases are given back.
        for (model, _) in &held {
            self.config.holds.release(model);
        }
        self.gauges();
        let store = self.store.clone().filter(|_| self.link == "connected");
        let node = self.config.node.to_string();
        let holds = self.config.holds.clone();
        let asked = held.len();
        let giving = async move {
            let Some(store) = store else {
                return Vec::new();
            };
            let steps = held.into_iter().map(|(model, revision)| {
                let step = Step::Release { model, revision };
                // A release holds nothing.
                carry_out(&store, &node, &holds, step, back.wait, Duration::ZERO)
            });
            tokio::time::timeout(back.wait, join_all(steps))
                .await
                .unwrap_or_default()
        };
        Box::pin(giving.into_actor(self).map(move |outcomes, manager, _ctx| {
            let given = outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Released))
                .count();
            manager.counts.released += given as u64;
            manager.config.metrics.changed("released", given as u64);
            info!(manager.log, "leases: given back as the node stops";
                "given" => given, "held" => asked);
        }))
    }
}
