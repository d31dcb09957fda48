//! The bridge: one actor in muster's presence subtree that carries this
//! node's connects and disconnects to the other nodes over NATS, and
//! theirs into this node's presence (docs/spec.md §11.4 to §11.6).
//!
//! Losing NATS is a state the bridge reports, not a failure: the client
//! reconnects on its own, the bridge marks every peer down meanwhile, and
//! asks each for a snapshot when the connection is back. What the bridge
//! knows of its peers is kept across its own restarts, and a restart
//! counts as a lost connection.

mod link;
mod messages;
mod queue;
mod report;
mod traffic;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use async_nats::Client;
use muster::clock::Clock;
use muster::names::MachineTag;
use muster_actors::presence::PresenceHandle;
use muster_actors::{ChildSpec, Kept, Mailbox, StatePolicy};
use serde::Serialize;
use slog::{Logger, info, warn};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::NatsAuth;
use super::config::ClusterConfig;
use super::live::LiveNodes;
use super::metrics::{ClusterMetrics, Kind};
use super::peers::{Peers, Settings};
use super::protocol::{self, Incarnation, Subjects};
use link::{Applier, LinkOptions, Linked, OUTBOX, Outgoing};
use queue::{APPLIER_QUEUE, ApplierQueue};

pub use messages::Leave;
pub(super) use messages::{Answered, Asked, Failed, Heard, Tapped, Unanswered};
pub use report::{BridgeReport, PeerShown};

/// The bridge's mailbox: what NATS brings waits in its subscriptions
/// while this is full.
pub const BRIDGE_MAILBOX: usize = 4096;

/// How long the bridge waits before it tries again a connection it could
/// not even set up (its credentials file became unreadable).
const RETRY_SETUP: Duration = Duration::from_secs(5);

/// Everything a bridge is made from; cheap to clone.
#[derive(Clone)]
pub struct BridgeConfig {
    /// This node: the API server the door records under.
    pub node: MachineTag,
    /// The `[cluster]` section, checked.
    pub cluster: ClusterConfig,
    /// The credentials its file holds.
    pub auth: NatsAuth,
    /// The bridge's series, registered once by the host.
    pub metrics: ClusterMetrics,
    /// The wall clock, for the report's times.
    pub clock: Arc<dyn Clock>,
    /// Where the bridge says which peers are not down.
    pub live: LiveNodes,
}

/// Where the bridge's NATS connection is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum LinkState {
    /// Presence is not recording yet; nothing to share.
    WaitingForPresence,
    /// Trying to reach a server.
    Connecting,
    /// Connected.
    Connected,
    /// Lost; trying again.
    Disconnected,
    /// The connection could not even be set up; tried again a little later.
    Failed(String),
}

impl LinkState {
    fn name(&self) -> &'static str {
        match self {
            LinkState::WaitingForPresence => "waiting for presence",
            LinkState::Connecting => "connecting",
            LinkState::Connected => "connected",
            LinkState::Disconnected => "disconnected",
            LinkState::Failed(_) => "failed",
        }
    }
}

/// What the bridge counts, for its report.
#[derive(Debug, Clone, Default, Serialize)]
struct Counts {
    /// Changes of this node published.
    events_published: u64,
    /// Changes not published: NATS was away, or the outbox was full.
    events_unpublished: u64,
    /// Heartbeats published.
    heartbeats: u64,
    /// Messages dropped because the outbox was full.
    outbox_full: u64,
    /// Messages heard that did not read, or came from the wrong subject.
    refused: u64,
    /// Snapshots asked of peers.
    snapshots_asked: u64,
    /// Snapshots of this node served to peers.
    snapshots_served: u64,
}

/// What the bridge keeps across its restarts.
struct Memory {
    incarnation: Incarnation,
    peers: Peers,
    generation: u64,
    /// The number of this node's last change, published or skipped.
    seq: u64,
    counts: Counts,
    link_since: Option<SystemTime>,
}

/// The bridge actor. See the module's documentation.
pub struct Bridge {
    config: BridgeConfig,
    subjects: Subjects,
    presence: PresenceHandle,
    mailbox: Mailbox<Bridge>,
    memory: Kept<Memory>,
    generation: u64,
    link: LinkState,
    client: Option<Client>,
    outbox: Option<mpsc::Sender<Outgoing>>,
    inbox: String,
    applier: Arc<ApplierQueue>,
    applier_running: bool,
    twin_warned: Option<Instant>,
    /// The connections set up by this instance, the last one current: a
    /// dropped one's last events are told apart.
    links: u64,
    /// It said it stops ([`Leave`]): it sends nothing more.
    left: bool,
    log: Logger,
}

muster_actors::supervised!(Bridge);

/// The bridge as a child of the presence subtree, called `cluster`, with
/// its own mailbox and report; give it to
/// [`Extensions::presence_child`](muster_actors::Extensions::presence_child).
pub fn bridge_child(config: BridgeConfig) -> impl FnOnce(&PresenceHandle) -> ChildSpec + Send {
    bridge_child_on(config, Mailbox::new(BRIDGE_MAILBOX))
}

/// [`bridge_child`] on `mailbox`, which the host keeps to tell the bridge
/// that the node stops ([`Leave`]).
pub fn bridge_child_on(
    config: BridgeConfig,
    mailbox: Mailbox<Bridge>,
) -> impl FnOnce(&PresenceHandle) -> ChildSpec + Send {
    move |presence| {
        let presence = presence.clone();
        let start_mailbox = mailbox.clone();
        ChildSpec::actor("cluster", &mailbox, move |cx| {
            let node = config.node.clone();
            let settings = Settings::new(config.cluster.heartbeat, config.cluster.down_after);
            let memory = cx.kept(|| Memory {
                incarnation: Incarnation::random(),
                peers: Peers::new(node, settings),
                generation: 0,
                seq: 0,
                counts: Counts::default(),
                link_since: None,
            })?;
            let applier = Arc::new(ApplierQueue::new(APPLIER_QUEUE));
            Ok(Bridge {
                subjects: Subjects::new(&config.cluster.name),
                config: config.clone(),
                presence: presence.clone(),
                mailbox: start_mailbox.clone(),
                memory,
                generation: 0,
                link: LinkState::WaitingForPresence,
                client: None,
                outbox: None,
                inbox: String::new(),
                applier,
                applier_running: false,
                twin_warned: None,
                links: 0,
                left: false,
                log: cx.logger().clone(),
            })
        })
        .state(StatePolicy::Kept)
        .report(
            mailbox.reporter(|bridge: &Bridge| {
                serde_json::to_value(bridge.report()).unwrap_or_default()
            }),
        )
    }
}

impl Actor for Bridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let downs = {
            let mut memory = self.memory.lock();
            memory.generation += 1;
            self.generation = memory.generation;
            // A restart of the bridge is a lost link: what it knew of its
            // peers may be stale.
            memory.peers.link_down()
        };
        if !self.applier_running {
            self.applier_running = true;
            let applier = Applier {
                presence: self.presence.clone(),
                clock: self.config.clock.clone(),
                mailbox: self.mailbox.clone(),
                metrics: self.config.metrics.clone(),
                log: self.log.clone(),
            };
            ctx.spawn(applier.run(self.applier.clone()).into_actor(self));
        }
        self.carry_out(downs);
        let cluster = &self.config.cluster;
        ctx.run_interval(cluster.heartbeat, |bridge, _ctx| bridge.heartbeat());
        let check = cluster.heartbeat.min(cluster.down_after / 4);
        ctx.run_interval(check, |bridge, _ctx| bridge.tick());
        self.link_up(ctx);
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        self.config
            .metrics
            .set(false, self.memory.lock().peers.counts());
    }
}

impl Bridge {
    /// Waits for presence to record, follows this node's server, and
    /// connects to NATS.
    fn link_up(&mut self, ctx: &mut Context<Self>) {
        let presence = self.presence.clone();
        let options = LinkOptions {
            node: self.config.node.clone(),
            subjects: self.subjects.clone(),
            cluster: self.config.cluster.clone(),
            auth: self.config.auth.clone(),
        };
        self.links += 1;
        let attempt = self.links;
        let (connect, urls, events) = match link::options(&options) {
            Ok(made) => made,
            Err(reason) => {
                self.linked(Err(reason), ctx);
                return;
            }
        };
        // The connection's events come on this context, not through the
        // mailbox: none is lost to a full one.
        ctx.spawn(
            actix::fut::wrap_stream::<_, Self>(events)
                .map(move |event, bridge, _ctx| {
                    if bridge.links == attempt {
                        bridge.link_event(event);
                    }
                })
                .finish(),
        );
        let linking = async move {
            let mut enabled = presence.watch_enabled();
            enabled
                .wait_for(|on| *on)
                .await
                .map_err(|_| "presence is gone".to_owned())?;
            let tap = presence
                .tap(&options.node)
                .await
                .map_err(|e| format!("cannot follow this node's presence: {e}"))?;
            link::connect(options, connect, urls, tap).await
        };
        ctx.spawn(
            linking
                .into_actor(self)
                .map(|linked, bridge, ctx| bridge.linked(linked, ctx)),
        );
    }

    fn linked(&mut self, linked: Result<Linked, String>, ctx: &mut Context<Self>) {
        let linked = match linked {
            Ok(linked) => linked,
            Err(reason) => {
                warn!(self.log, "cluster link not set up; trying again"; "error" => %reason,
                    "in" => %humantime::format_duration(RETRY_SETUP));
                self.link = LinkState::Failed(reason);
                ctx.run_later(RETRY_SETUP, |bridge, ctx| bridge.link_up(ctx));
                return;
            }
        };
        self.memory.lock().seq = linked.tap.start();
        let (outbox, queued) = mpsc::channel(OUTBOX);
        ctx.spawn(
            link::publish(
                linked.client.clone(),
                queued,
                self.config.metrics.clone(),
                self.log.clone(),
            )
            .into_actor(self),
        );
        ctx.spawn(link::follow_feeds(linked.feeds, self.mailbox.clone()).into_actor(self));
        ctx.spawn(link::follow_asks(linked.asks, self.mailbox.clone()).into_actor(self));
        ctx.spawn(link::follow_answers(linked.answers, self.mailbox.clone()).into_actor(self));
        ctx.spawn(link::follow_tap(linked.tap, self.mailbox.clone()).into_actor(self));
        self.inbox = linked.inbox;
        self.outbox = Some(outbox);
        self.client = Some(linked.client);
        if self.link == LinkState::WaitingForPresence || matches!(self.link, LinkState::Failed(_)) {
            self.link = LinkState::Connecting;
        }
        info!(self.log, "cluster link set up"; "node" => %self.config.node,
            "cluster" => &self.config.cluster.name);
    }

    fn connected(&self) -> bool {
        self.link == LinkState::Connected
    }

    /// Queues a message; false when the outbox is full (it is dropped).
    fn send(&mut self, out: Outgoing) -> bool {
        let Some(outbox) = self.outbox.as_ref().filter(|_| !self.left) else {
            return false;
        };
        match outbox.try_send(out) {
            Ok(()) => true,
            Err(_) => {
                self.memory.lock().counts.outbox_full += 1;
                false
            }
        }
    }

    fn max_payload(&self) -> usize {
        self.client
            .as_ref()
            .map_or(1 << 20, |client| client.max_payload())
    }

    fn heartbeat(&mut self) {
        if !self.connected() {
            return;
        }
        let (incarnation, seq) = {
            let memory = self.memory.lock();
            (memory.incarnation, memory.seq)
        };
        let payload = protocol::heartbeat(&self.config.node, incarnation, seq);
        let out = Outgoing {
            subject: self.subjects.feed(&self.config.node),
            reply: None,
            payload,
            kind: Kind::Heartbeat,
        };
        if self.send(out) {
            self.memory.lock().counts.heartbeats += 1;
        }
    }

    fn tick(&mut self) {
        let actions = self.memory.lock().peers.tick(Instant::now());
        self.carry_out(actions);
        self.gauges();
    }

    fn gauges(&self) {
        let (counts, live) = {
            let memory = self.memory.lock();
            (memory.peers.counts(), memory.peers.live())
        };
        self.config.metrics.set(self.connected(), counts);
        self.config.live.set_peers(live);
    }

    fn link_event(&mut self, event: async_nats::Event) {
        let now = Instant::now();
        match event {
            async_nats::Event::Connected => {
                let server = self
                    .client
                    .as_ref()
                    .map(|c| c.server_info())
                    .map(|info| format!("{}:{}", info.host, info.port))
                    .unwrap_or_default();
                info!(self.log, "connected to NATS"; "server" => server);
                self.link = LinkState::Connected;
                self.memory.lock().link_since = Some(self.config.clock.now());
                // Peers hear this node at once, and it asks each of them.
                self.heartbeat();
                let actions = self.memory.lock().peers.link_up(now);
                self.carry_out(actions);
            }
            async_nats::Event::Disconnected | async_nats::Event::Closed => {
                if self.link == LinkState::Connected {
                    warn!(self.log, "lost NATS: every peer is down until it is back");
                    self.memory.lock().link_since = Some(self.config.clock.now());
                }
                self.link = LinkState::Disconnected;
                let actions = self.memory.lock().peers.link_down();
                self.carry_out(actions);
            }
            other => info!(self.log, "NATS"; "event" => %other),
        }
        self.gauges();
    }
}
