//! The lease manager: one actor in muster's presence subtree that makes
//! each model of the cluster polled by exactly one node (docs/spec.md
//! §11.8).
//!
//! A model's lease is a key of a JetStream key-value bucket whose entries
//! expire `lease_ttl` after they were written (NATS 2.9 has no per-key
//! TTL: the bucket's `max_age` is the TTL). A node takes a vacant lease by
//! creating its key, and keeps it by writing it again every third of the
//! TTL, each write expecting the revision of its last: a write that finds
//! another revision has lost the lease. Only while it holds a model's
//! lease does the node poll that model ([`ModelHolds`]); it stops the
//! moment a renewal fails, NATS is lost, or two thirds of the TTL pass
//! without a renewal, so that the lease has never expired on the server
//! while its old holder still polls.
//!
//! Which node should hold a model is rendezvous hashing over the nodes the
//! bridge hears ([`LiveNodes`]): each takes the vacant leases it owns at
//! once, and any other vacant lease after a whole TTL. A node holding a
//! lease another live node owns gives it back, at most one per renewal
//! period, so a node that comes back takes its models back gradually.

mod bucket;
mod hand_back;
mod link;
mod metrics;
pub mod plan;
mod report;
mod writes;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use async_nats::jetstream::{self, kv};

use async_nats::Client;
use futures::StreamExt;
use muster::clock::Clock;
use muster::names::{MachineTag, ModelUuid};
use muster_actors::presence::PresenceHandle;
use muster_actors::{ChildSpec, Mailbox, ModelHolds, Readiness};
use serde::Serialize;
use slog::{Logger, info, warn};
use tokio::time::Instant;

use bucket::bucket_ttl;
pub use hand_back::HandBack;
pub use metrics::LeaseMetrics;
use plan::{Round, Seen, Step};
pub use report::{HeldShown, LeaseReport, LeaseShown};
use writes::{Outcome, carry_out, read_entry};

use super::NatsAuth;
use super::config::ClusterConfig;
use super::kv::open_bucket;
use super::live::LiveNodes;

/// The lease manager's name in the presence subtree.
pub const LEASES_CHILD: &str = "leases";

/// The lease manager's mailbox.
pub const LEASES_MAILBOX: usize = 256;

/// The rounds in one TTL: a round reads the leases this node does not hold
/// and acts on them, so a vacant lease is taken within a sixth of the TTL.
const ROUNDS_PER_TTL: u32 = 6;

/// The leases a round reads at once: one after another, a round of
/// thousands of models would take longer than the round's period.
const READS_AT_ONCE: usize = 64;

/// The quick rounds in one TTL: while a lease is held by a node this one
/// no longer hears, a quick round reads that lease alone, so that the
/// lease is taken within a thirtieth of the TTL of its expiry rather than
/// a sixth: the models of a dead node move within `lease_ttl` and a
/// little, plus a short poll.
const QUICK_ROUNDS_PER_TTL: u32 = 30;

/// The bucket of the model leases of cluster `name`.
pub fn bucket_name(name: &str) -> String {
    format!("muster_{name}_leases")
}

/// Everything a lease manager is made from; cheap to clone.
#[derive(Clone)]
pub struct LeaseConfig {
    /// This node.
    pub node: MachineTag,
    /// The `[cluster]` section, checked.
    pub cluster: ClusterConfig,
    /// The credentials its file holds.
    pub auth: NatsAuth,
    /// The models of the cluster, leased one by one.
    pub models: Vec<ModelUuid>,
    /// Where the manager says which models this node polls.
    pub holds: ModelHolds,
    /// The nodes the bridge hears.
    pub live: LiveNodes,
    /// The manager's series, registered once by the host.
    pub metrics: LeaseMetrics,
    /// The wall clock, for the report's times.
    pub clock: Arc<dyn Clock>,
    /// Where the manager says, as `leases`, why it cannot hand out the
    /// models (`/readyz`).
    pub readiness: Readiness,
}

/// What the manager counts, for its report.
#[derive(Debug, Clone, Default, Serialize)]
struct Counts {
    acquired: u64,
    renewed: u64,
    released: u64,
    lost: u64,
    /// Writes or reads that failed without saying who holds the lease.
    failed: u64,
    /// Reads of a lease that failed (the bucket gone, NATS slow): each
    /// also counted in `failed`.
    read_failed: u64,
}

/// A lease this node holds.
#[derive(Debug, Clone)]
struct Held {
    revision: u64,
    /// When the write that renewed it last was sent.
    renewed: Instant,
    since: SystemTime,
}

/// The lease manager actor. See the module's documentation.
pub struct LeaseManager {
    config: LeaseConfig,
    /// The bucket's `max_age`, once it is open.
    bucket_ttl: Option<Duration>,
    timers: Vec<SpawnHandle>,
    generation: u64,
    client: Option<Client>,
    store: Option<kv::Store>,
    link: &'static str,
    error: Option<String>,
    held: BTreeMap<ModelUuid, Held>,
    seen: BTreeMap<ModelUuid, Option<Seen>>,
    vacant: BTreeMap<ModelUuid, u32>,
    busy: bool,
    /// The node stops and gave its leases back: it takes none again.
    stopping: bool,
    last_release: Option<Instant>,
    counts: Counts,
    log: Logger,
}

muster_actors::supervised!(LeaseManager);

/// The lease manager as a child of the presence subtree, called `leases`,
/// with its own mailbox and report; give it to
/// [`Extensions::presence_child`](muster_actors::Extensions::presence_child),
/// with `config.holds` to
/// [`Extensions::hold_models`](muster_actors::Extensions::hold_models).
pub fn lease_child(config: LeaseConfig) -> impl FnOnce(&PresenceHandle) -> ChildSpec + Send {
    lease_child_on(config, Mailbox::new(LEASES_MAILBOX))
}

/// [`lease_child`] on `mailbox`, which the host keeps to have the leases
/// given back as the node stops ([`HandBack`]).
pub fn lease_child_on(
    config: LeaseConfig,
    mailbox: Mailbox<LeaseManager>,
) -> impl FnOnce(&PresenceHandle) -> ChildSpec + Send {
    move |_presence| {
        ChildSpec::actor(LEASES_CHILD, &mailbox, move |cx| {
            Ok(LeaseManager {
                config: config.clone(),
                bucket_ttl: None,
                timers: Vec::new(),
                generation: 0,
                client: None,
                store: None,
                link: "connecting",
                error: None,
                held: BTreeMap::new(),
                seen: BTreeMap::new(),
                vacant: BTreeMap::new(),
                busy: false,
                stopping: false,
                last_release: None,
                counts: Counts::default(),
                log: cx.logger().clone(),
            })
        })
        .report(mailbox.reporter(|manager: &LeaseManager| {
            serde_json::to_value(manager.report()).unwrap_or_default()
        }))
    }
}

impl Actor for LeaseManager {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // A new run knows no revision: whatever an earlier run held stops
        // polling, and comes back once its lease is taken over.
        for model in &self.config.models {
            self.config.holds.release(model);
        }
        self.gauges();
        self.schedule(ctx);
        self.connect(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.drop_all("the lease manager stopped");
    }
}

impl LeaseManager {
    /// The TTL of a lease: the bucket's `max_age` once the bucket is open,
    /// this node's `lease_ttl` until then. Expiry runs on the wall clock of
    /// the bucket's stream leader: the nodes' clocks need not agree, but
    /// each node's monotonic clock must run at the leader's rate to within
    /// a small part of the TTL.
    fn ttl(&self) -> Duration {
        self.bucket_ttl.unwrap_or(self.config.cluster.lease_ttl)
    }

    /// Times the rounds and the cut-off on the TTL, again when it changes.
    fn schedule(&mut self, ctx: &mut Context<Self>) {
        for timer in self.timers.drain(..) {
            ctx.cancel_future(timer);
        }
        let ttl = self.ttl();
        self.timers = vec![
            ctx.run_interval(ttl / ROUNDS_PER_TTL, |manager, ctx| manager.tick(ctx)),
            ctx.run_interval(ttl / QUICK_ROUNDS_PER_TTL, |manager, ctx| {
                manager.quick_tick(ctx)
            }),
            ctx.run_interval(ttl / 12, |manager, _ctx| manager.fence()),
        ];
    }

    /// How long one read or write of a lease may take.
    fn op_timeout(&self) -> Duration {
        self.ttl() / 3
    }

    /// The bucket as every node makes it: one value per key, each gone
    /// `lease_ttl` after it was written, on disk and on as many servers as
    /// the node is given, up to three.
    fn bucket(&self) -> kv::Config {
        kv::Config {
            bucket: bucket_name(&self.config.cluster.name),
            description: "muster: which node polls each model".into(),
            history: 1,
            max_age: self.config.cluster.lease_ttl,
            storage: jetstream::stream::StorageType::File,
            num_replicas: self.config.cluster.replicas(),
            ..Default::default()
        }
    }

    /// A round over every lease this node does not hold.
    fn tick(&mut self, ctx: &mut Context<Self>) {
        let unheld: Vec<ModelUuid> = self
            .config
            .models
            .iter()
            .filter(|m| !self.held.contains_key(m))
            .copied()
            .collect();
        self.round(unheld, true, ctx);
    }

    /// A round over the leases last seen held by a node that is not live:
    /// they are about to be vacant, and their models unpolled.
    fn quick_tick(&mut self, ctx: &mut Context<Self>) {
        let held: BTreeMap<ModelUuid, u64> =
            self.held.iter().map(|(m, h)| (*m, h.revision)).collect();
        let orphans = plan::orphans(
            &self.config.node,
            &self.seen,
            &held,
            &self.config.live.nodes(),
        );
        if !orphans.is_empty() {
            self.round(orphans, false, ctx);
        }
    }

    /// Reads the leases of `models` and acts on them. Only a `full` round
    /// counts how long a lease has been vacant, so that the patience of a
    /// node that is not a lease's owner stays a whole TTL.
    fn round(&mut self, models: Vec<ModelUuid>, full: bool, ctx: &mut Context<Self>) {
        if self.busy || self.stopping || self.link != "connected" {
            return;
        }
        let Some(client) = self.client.clone() else {
            return;
        };
        self.busy = true;
        let Some(store) = self.store.clone() else {
            let bucket = self.bucket();
            let opening = async move {
                let store = open_bucket(client, bucket).await?;
                let ttl = bucket_ttl(&store).await?;
                Ok::<_, String>((store, ttl))
            };
            ctx.spawn(opening.into_actor(self).map(|opened, manager, ctx| {
                manager.busy = false;
                match opened {
                    Ok((store, ttl)) => {
                        info!(manager.log, "leases: bucket open"; "bucket" => store.name.clone());
                        manager.store = Some(store);
                        manager.healthy();
                        manager.take_ttl(ttl, ctx);
                    }
                    Err(e) => manager
                        .unhealthy(e, "leases: cannot use the bucket; no model is polled here"),
                }
            }));
            return;
        };
        let timeout = self.op_timeout();
        let reading = async move {
            let reads = futures::stream::iter(models).map(|model| {
                let read = store.entry(model.to_string());
                async move { (model, tokio::time::timeout(timeout, read).await) }
            });
            let read: Vec<_> = reads.buffer_unordered(READS_AT_ONCE).collect().await;
            let mut failed = Vec::new();
            let seen = read
                .into_iter()
                // A lease that cannot be read is left for the next round.
                .filter_map(|(model, read)| match read {
                    Ok(Ok(entry)) => Some((model, read_entry(entry))),
                    Ok(Err(e)) => {
                        failed.push(e.to_string());
                        None
                    }
                    Err(_) => {
                        failed.push("the read timed out".to_owned());
                        None
                    }
                })
                .collect::<BTreeMap<_, _>>();
            (seen, failed)
        };
        ctx.spawn(
            reading
                .into_actor(self)
                .map(move |(seen, failed), manager, ctx| {
                    if !failed.is_empty() {
                        manager.read_failed(failed, seen.is_empty());
                    } else if !seen.is_empty() {
                        manager.healthy();
                    }
                    manager.decide(seen, full, ctx)
                }),
        );
    }

    /// Plans the round from what was read, and carries it out.
    fn decide(
        &mut self,
        seen: BTreeMap<ModelUuid, Option<Seen>>,
        full: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(store) = self.store.clone().filter(|_| self.link == "connected") else {
            self.busy = false;
            return;
        };
        for (model, lease) in &seen {
            let holder = lease.as_ref().map(|l| l.holder.clone());
            self.config.holds.note_holder(*model, holder);
            match lease {
                None if full => *self.vacant.entry(*model).or_default() += 1,
                None => {}
                Some(_) => {
                    self.vacant.remove(model);
                }
            }
        }
        self.seen.extend(seen.clone());
        let now = Instant::now();
        let renew_every = self.ttl() / 3;
        let live = self.config.live.nodes();
        let held: BTreeMap<ModelUuid, u64> =
            self.held.iter().map(|(m, h)| (*m, h.revision)).collect();
        let due: BTreeSet<ModelUuid> = self
            .held
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.renewed) >= renew_every)
            .map(|(m, _)| *m)
            .collect();
        let may_release = self
            .last_release
            .is_none_or(|at| now.saturating_duration_since(at) >= renew_every);
        let steps = plan::plan(&Round {
            me: &self.config.node,
            live: &live,
            models: &self.config.models,
            held: &held,
            due: &due,
            seen: &seen,
            vacant: &self.vacant,
            patience: ROUNDS_PER_TTL,
            may_release,
        });
        for step in &steps {
            if let Step::Release { model, .. } = step {
                // Polling stops before the lease is given back.
                self.config.holds.release(model);
                self.held.remove(model);
                self.last_release = Some(now);
                info!(self.log, "leases: giving a model back to its owner"; "model" => %model);
            }
        }
        self.gauges();
        if steps.is_empty() {
            self.busy = false;
            return;
        }
        let node = self.config.node.to_string();
        let holds = self.config.holds.clone();
        let timeout = self.op_timeout();
        // The cut-off of `fence`, which the holds apply by themselves.
        let valid_for = self.ttl() * 2 / 3;
        let writing = async move {
            let mut outcomes = Vec::with_capacity(steps.len());
            for step in steps {
                outcomes.push(carry_out(&store, &node, &holds, step, timeout, valid_for).await);
            }
            outcomes
        };
        ctx.spawn(
            writing
                .into_actor(self)
                .map(|outcomes, manager, _ctx| manager.apply(outcomes)),
        );
    }

    fn apply(&mut self, outcomes: Vec<Outcome>) {
        self.busy = false;
        if self.stopping {
            // A round under way when the leases were given back: what it
            // took is not polled, and expires at the TTL.
            for outcome in &outcomes {
                if let Outcome::Written { model, .. } = outcome {
                    self.config.holds.release(model);
                }
            }
            return;
        }
        let wall = self.config.clock.now();
        for outcome in outcomes {
            match outcome {
                Outcome::Written {
                    model,
                    revision,
                    sent,
                    acquired,
                } => {
                    let since = self.held.get(&model).map_or(wall, |h| h.since);
                    if !self.held.contains_key(&model) {
                        self.counts.acquired += 1;
                        self.config.metrics.changed("acquired", 1);
                        info!(self.log, "leases: holding a model"; "model" => %model,
                            "revision" => revision, "taken_over" => !acquired);
                    } else {
                        self.counts.renewed += 1;
                        self.config.metrics.changed("renewed", 1);
                    }
                    self.held.insert(
                        model,
                        Held {
                            revision,
                            renewed: sent,
                            since,
                        },
                    );
                    self.vacant.remove(&model);
                    let me = self.config.node.clone();
                    self.config.holds.note_holder(model, Some(me));
                }
                Outcome::Taken { model } => {
                    if self.held.remove(&model).is_some() {
                        self.lost(&model, "another node holds its lease");
                    }
                }
                Outcome::Released => {
                    self.counts.released += 1;
                    self.config.metrics.changed("released", 1);
                }
                Outcome::Failed { model, error } => {
                    self.counts.failed += 1;
                    if self.held.remove(&model).is_some() {
                        self.lost(&model, &error);
                    }
                }
            }
        }
        if self.link != "connected" {
            // Lost while the round was under way: what it wrote is not
            // kept either.
            self.drop_all("NATS lost");
        }
        self.gauges();
    }

    /// Stops polling every model whose lease was not renewed for two thirds
    /// of the TTL: the bucket lets it go at the TTL, and another node may
    /// take it then.
    fn fence(&mut self) {
        let limit = self.ttl() * 2 / 3;
        let now = Instant::now();
        let late: Vec<ModelUuid> = self
            .held
            .iter()
            .filter(|(_, h)| now.saturating_duration_since(h.renewed) >= limit)
            .map(|(m, _)| *m)
            .collect();
        for model in late {
            self.held.remove(&model);
            self.config.holds.release(&model);
            self.lost(&model, "not renewed in time");
        }
        self.gauges();
    }

    fn lost(&mut self, model: &ModelUuid, why: &str) {
        self.config.holds.release(model);
        self.counts.lost += 1;
        self.config.metrics.changed("lost", 1);
        warn!(self.log, "leases: lost a model's lease; it stops polling"; "model" => %model,
            "why" => why);
    }

    fn drop_all(&mut self, why: &str) {
        let held: Vec<ModelUuid> = self.held.keys().copied().collect();
        self.held.clear();
        for model in &held {
            self.lost(model, why);
        }
        self.gauges();
    }

    fn gauges(&self) {
        self.config.metrics.set_held(self.held.len());
    }
}
