//! The bridge's moving parts outside its handlers, each a future the
//! bridge runs on its own context (so that each ends with the instance
//! that started it): the NATS connection, the forwarders that bring what
//! NATS and the tap deliver into the bridge's mailbox, the publisher that
//! sends what the bridge says, in order, and the applier that carries its
//! peers' changes into presence, in order.

use std::sync::Arc;
use std::time::Duration;

use async_nats::{Client, Subscriber};
use futures::StreamExt;
use muster::clock::Clock;
use muster::names::MachineTag;
use muster::presence::{Status, Value};
use muster_actors::presence::{Change, PresenceHandle, Tap};
use muster_actors::{Mailbox, SendError};
use slog::{Logger, debug, warn};
use tokio::sync::mpsc;

use super::queue::ApplierQueue;
use super::{Answered, Asked, Bridge, Failed, Heard, Tapped, Unanswered};
use crate::NatsAuth;
use crate::config::ClusterConfig;
use crate::metrics::{ClusterMetrics, Kind};
use crate::nats::{connection, with_events};
use crate::peers::Action;
use crate::protocol::{Conn, Op, Part, Subjects};

/// The most changes the bridge takes from its tap at once.
const TAP_BATCH: usize = 1024;

/// The messages waiting to be published, at most; past it the bridge drops
/// its changes (peers see the gap and take a snapshot) and heartbeats.
pub(super) const OUTBOX: usize = 4096;

/// How long the applier waits, after presence refused a peer's change,
/// before the bridge asks again for what it refused.
const REFUSED_WAIT: Duration = Duration::from_millis(100);

/// One message for NATS.
#[derive(Debug)]
pub(super) struct Outgoing {
    pub subject: String,
    pub reply: Option<String>,
    pub payload: Vec<u8>,
    pub kind: Kind,
}

/// What the NATS connection gives the bridge.
pub(super) struct Linked {
    pub client: Client,
    pub feeds: Subscriber,
    pub asks: Subscriber,
    pub answers: Subscriber,
    /// The prefix of the subjects this node's snapshots come back on.
    pub inbox: String,
    pub tap: Tap,
}

/// How a node reaches NATS.
#[derive(Debug, Clone)]
pub(super) struct LinkOptions {
    pub node: MachineTag,
    pub subjects: Subjects,
    pub cluster: ClusterConfig,
    pub auth: NatsAuth,
}

/// The connection's options, and the receiver of its events.
pub(super) fn options(
    options: &LinkOptions,
) -> Result<
    (
        async_nats::ConnectOptions,
        Vec<async_nats::ServerAddr>,
        futures::channel::mpsc::UnboundedReceiver<async_nats::Event>,
    ),
    String,
> {
    let (connect, urls) = connection(&options.cluster, &options.auth, &options.node, "bridge")?;
    let connect = connect
        .retry_on_initial_connect()
        // A node hears its own feed in its own presence already.
        .no_echo();
    let (connect, events) = with_events(connect);
    Ok((connect, urls, events))
}

/// Connects with `connect` (in the background: the client comes back at
/// once and keeps trying) and subscribes to the feeds, this node's
/// snapshot requests and its answers.
pub(super) async fn connect(
    options: LinkOptions,
    connect: async_nats::ConnectOptions,
    urls: Vec<async_nats::ServerAddr>,
    tap: Tap,
) -> Result<Linked, String> {
    let client = connect
        .connect(urls)
        .await
        .map_err(|e| format!("cannot connect to NATS: {e}"))?;
    let subscribe = |subject: String| {
        let client = client.clone();
        async move {
            client
                .subscribe(subject.clone())
                .await
                .map_err(|e| format!("cannot subscribe to {subject}: {e}"))
        }
    };
    let feeds = subscribe(options.subjects.feeds()).await?;
    let asks = subscribe(options.subjects.snapshot(&options.node)).await?;
    let inbox = client.new_inbox();
    let answers = subscribe(format!("{inbox}.*")).await?;
    Ok(Linked {
        client,
        feeds,
        asks,
        answers,
        inbox,
        tap,
    })
}

/// Puts `message` in the bridge's mailbox once it has room: what comes
/// meanwhile waits in NATS's subscription or in the tap. A full mailbox is
/// waited out, even one filled by another thread between the look and the
/// send; false only once the bridge is gone.
pub(super) async fn forward<M>(mailbox: &Mailbox<Bridge>, message: M) -> bool
where
    Bridge: actix::Handler<M>,
    M: actix::Message + Send + 'static,
    M::Result: Send,
{
    let mut message = message;
    loop {
        match mailbox.do_send(message) {
            Ok(()) => return true,
            Err(refused) => match refused.into_parts() {
                (again, SendError::Overloaded { .. }) => message = again,
                _ => return false,
            },
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Brings the feeds' messages to the bridge, in the order NATS delivers
/// them.
pub(super) async fn follow_feeds(mut feeds: Subscriber, mailbox: Mailbox<Bridge>) {
    while let Some(message) = feeds.next().await {
        if !forward(&mailbox, Heard(message)).await {
            return;
        }
    }
}

/// Brings the requests for this node's snapshot to the bridge.
pub(super) async fn follow_asks(mut asks: Subscriber, mailbox: Mailbox<Bridge>) {
    while let Some(message) = asks.next().await {
        if !forward(&mailbox, Asked(message)).await {
            return;
        }
    }
}

/// Brings the parts of the snapshots this node asked for to the bridge,
/// read off the bridge's thread (a part is up to a megabyte of JSON), and
/// NATS's word that no one heard a request.
pub(super) async fn follow_answers(mut answers: Subscriber, mailbox: Mailbox<Bridge>) {
    while let Some(message) = answers.next().await {
        let Some(request) = message
            .subject
            .rsplit('.')
            .next()
            .and_then(|r| r.parse::<u64>().ok())
        else {
            continue;
        };
        let bytes = message.payload.len();
        let part = if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) {
            Err(Unanswered::NoOne)
        } else {
            tokio::task::spawn_blocking(move || {
                serde_json::from_slice::<Part>(&message.payload)
                    .map_err(|e| Unanswered::Unreadable(e.to_string()))
            })
            .await
            .unwrap_or_else(|e| Err(Unanswered::Unreadable(format!("could not be read: {e}"))))
        };
        let answered = Answered {
            request,
            part,
            bytes,
        };
        if !forward(&mailbox, answered).await {
            return;
        }
    }
}

/// Brings the changes of this node's own server to the bridge, as many at
/// once as are waiting (at most [`TAP_BATCH`]). When it took every change
/// waiting, it says the latest number the router gave out before: a number
/// up to it that did not come was skipped by a full tap.
pub(super) async fn follow_tap(mut tap: Tap, mailbox: Mailbox<Bridge>) {
    let mut carried: Option<Change> = None;
    loop {
        let first = match carried.take() {
            Some(change) => change,
            None => match tap.recv().await {
                Some(change) => change,
                None => return,
            },
        };
        let latest = tap.latest();
        let mut changes = vec![first];
        let mut drained = false;
        while changes.len() < TAP_BATCH {
            match tap.try_recv() {
                Some(change) => changes.push(change),
                None => {
                    drained = true;
                    break;
                }
            }
        }
        if !drained {
            match tap.try_recv() {
                Some(change) => carried = Some(change),
                None => drained = true,
            }
        }
        let tapped = Tapped {
            changes,
            latest: drained.then_some(latest),
        };
        if !forward(&mailbox, tapped).await {
            return;
        }
    }
}

/// Publishes what the bridge says, in the order it said it.
pub(super) async fn publish(
    client: Client,
    mut outbox: mpsc::Receiver<Outgoing>,
    metrics: ClusterMetrics,
    log: Logger,
) {
    while let Some(out) = outbox.recv().await {
        let size = out.payload.len();
        let sent = match out.reply {
            Some(reply) => {
                client
                    .publish_with_reply(out.subject, reply, out.payload.into())
                    .await
            }
            None => client.publish(out.subject, out.payload.into()).await,
        };
        match sent {
            Ok(()) => metrics.sent(out.kind, size),
            Err(e) => debug!(log, "could not publish"; "kind" => ?out.kind, "error" => %e),
        }
    }
}

/// What the applier needs.
pub(super) struct Applier {
    pub presence: PresenceHandle,
    pub clock: Arc<dyn Clock>,
    pub mailbox: Mailbox<Bridge>,
    pub metrics: ClusterMetrics,
    pub log: Logger,
}

impl Applier {
    /// Carries out the bridge's actions on presence, one after another, so
    /// that a peer's changes reach the router in the order it numbered
    /// them. What presence refuses makes the peer be taken anew.
    pub(super) async fn run(self, actions: Arc<ApplierQueue>) {
        loop {
            let action = actions.pop().await;
            let failed = match action {
                Action::Apply { peer, events } => {
                    let mut refused = None;
                    for event in events {
                        let done = match event.op {
                            Op::Connect(conn) => {
                                self.presence
                                    .connect(
                                        &peer,
                                        &conn.model,
                                        &conn.agent,
                                        conn.id,
                                        conn.controller_agent,
                                        &conn.user_data,
                                    )
                                    .await
                            }
                            Op::Disconnect(id) => self.presence.disconnect(&peer, id).await,
                        };
                        if let Err(e) = done {
                            refused = Some((peer.clone(), e.to_string()));
                            break;
                        }
                    }
                    refused
                }
                Action::Replace {
                    peer, connections, ..
                } => {
                    let values = self.values(&peer, connections);
                    // Everything held of the peer is replaced in one step
                    // (docs/spec.md §11.5.2): no query sees its agents
                    // missing on the way.
                    match self.presence.replace_server(&peer, values).await {
                        Ok(()) => {
                            self.metrics.snapshot("applied");
                            None
                        }
                        Err(e) => Some((peer, e.to_string())),
                    }
                }
                Action::Down { peer } => match self.presence.server_down(&peer).await {
                    Ok(()) => None,
                    Err(e) => Some((peer, e.to_string())),
                },
                Action::Ask { .. } => None,
            };
            if let Some((peer, error)) = failed {
                warn!(self.log, "presence refused a peer's change; taking the peer anew";
                    "peer" => %peer, "error" => %error);
                // Presence is busy or restarting: what is asked again
                // waits a little rather than spinning against it.
                tokio::time::sleep(REFUSED_WAIT).await;
                if !forward(&self.mailbox, Failed(peer)).await {
                    return;
                }
            }
        }
    }

    fn values(&self, peer: &MachineTag, connections: Vec<Conn>) -> Vec<Value> {
        let now = self.clock.now();
        connections
            .into_iter()
            .map(|conn| Value {
                model: conn.model,
                server: peer.clone(),
                agent: conn.agent,
                controller_agent: conn.controller_agent,
                connection_id: conn.id,
                status: Status::Alive,
                user_data: conn.user_data,
                last_seen: now,
            })
            .collect()
    }
}
