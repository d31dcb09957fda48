//! How every connection of a node to NATS is made (the bridge's, the lease
//! manager's, the shared registry's): the cluster's servers, its
//! credentials, a name that says which node and which part, and the same
//! reconnection and liveness settings.

use std::time::Duration;

use async_nats::{ConnectOptions, Event, ServerAddr};
use futures::channel::mpsc;
use muster::names::MachineTag;

use crate::auth::NatsAuth;
use crate::config::{ClusterConfig, check_url};

/// The wait before the `attempts`th reconnect: from 25 ms, doubling, at
/// most a second, so that a NATS server that comes back is found within a
/// second and one that stays away costs a try a second.
pub fn reconnect_delay(attempts: usize) -> Duration {
    Duration::from_millis((25u64 << attempts.min(6)).min(1000))
}

/// A connection of node `node`'s `part` to the cluster's NATS: its
/// options, and the servers to connect to.
pub(crate) fn connection(
    cluster: &ClusterConfig,
    auth: &NatsAuth,
    node: &MachineTag,
    part: &str,
) -> Result<(ConnectOptions, Vec<ServerAddr>), String> {
    // The config was checked: every URL reads.
    let urls = cluster
        .nats
        .iter()
        .filter_map(|url| check_url(url).ok())
        .collect();
    let options = ConnectOptions::new()
        .name(format!("musterd {node} {part}"))
        .max_reconnects(None)
        // Two unanswered pings and the connection is taken for lost.
        .ping_interval(cluster.down_after)
        .connection_timeout(cluster.down_after.max(Duration::from_secs(1)))
        .reconnect_delay_callback(reconnect_delay);
    let options = auth
        .apply(options)
        .map_err(|e| format!("cluster.credentials: {e}"))?;
    Ok((options, urls))
}

/// Gives `options` a callback that hands every connection event to the
/// receiver answered, which the part reads on its own context: the events
/// never pass through the part's mailbox, so a mailbox full of forwarded
/// traffic cannot lose a `Connected` (and leave the part cut off) nor a
/// `Disconnected` (and leave it acting on a lost link).
pub(crate) fn with_events(
    options: ConnectOptions,
) -> (ConnectOptions, mpsc::UnboundedReceiver<Event>) {
    let (events, received) = mpsc::unbounded();
    let options = options.event_callback(move |event| {
        // Gone only with the part that reads them, which needs no more.
        let _ = events.unbounded_send(event);
        async {}
    });
    (options, received)
}
