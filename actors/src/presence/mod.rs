//! Presence as actors: a router and one `ServerPresence` per API server.
//!
//! The subtree is a nested supervisor with a static child `router` (the
//! [`PresenceActor`]) and a dynamic group `servers`: one [`ServerPresence`]
//! per API server, created on the first connection or snapshot of that
//! server, each owning that server's [`ServerTable`](muster::presence::ServerTable). The router routes every
//! event to its server's actor, and answers queries by combining the servers'
//! views into one [`Connections`](muster::presence::Connections).
//!
//! A server's table lives in a cell that outlives its actor, and the actor's
//! mailbox keeps its messages across a restart ([`Mailbox::keeping`]), so a
//! `ServerPresence` that fails loses nothing but the message it failed on,
//! and no other server notices. Events reach a server's actor in the order
//! they were sent, so a query sees every event sent before it.
//!
//! A host may follow one server's changes through a [`Tap`] and take a
//! copy of its table numbered to match ([`PresenceHandle::snapshot`]), to
//! share that server's connections with other processes; and it may mount
//! children of its own in the subtree, beside the router (see
//! [`Extensions`](crate::host::Extensions)).

mod handle;
mod router;
mod server;
mod tap;

pub use handle::PresenceHandle;
pub use router::{PresenceActor, PresenceReport, UpdateServerError};
pub use server::ServerPresence;
pub use tap::{Change, ChangeKind, TAP_CAPACITY, TableSnapshot, Tap};

use std::sync::Arc;

use muster::clock::Clock;
use muster::config::{Checker, MAILBOXES, Validate};
use muster::names::MachineTag;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::gate::Gate;
use crate::mailbox::Mailbox;
use crate::supervisor::{
    Arbiters, ChildSpec, DynamicPolicy, RestartConfig, RestartPolicy, StatePolicy, SupervisorError,
    SupervisorRef, SupervisorSpec,
};

use router::RouterState;

/// Makes one of the host's children of the presence subtree from the
/// subtree's own presence handle (see
/// [`Extensions::presence_child`](crate::host::Extensions::presence_child)).
pub(crate) type PresenceChild = Box<dyn FnOnce(&PresenceHandle) -> ChildSpec + Send>;

/// Settings of the presence subtree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// Capacity of the router's mailbox, which the host feeds: past it,
    /// events are refused with [`SendError::Overloaded`](crate::mailbox::SendError::Overloaded).
    pub router_mailbox: usize,
    /// Capacity of each server actor's mailbox, which the router feeds. It
    /// also bounds what a failed server actor holds until it is back.
    pub server_mailbox: usize,
    /// Restarts of the router and the server actors.
    pub restart: RestartConfig,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            router_mailbox: 65_536,
            server_mailbox: 1_048_576,
            restart: RestartConfig::default(),
        }
    }
}

impl Validate for PresenceConfig {
    /// Both mailboxes within [`MAILBOXES`], and the restart timing.
    fn check(&self, at: &mut Checker) {
        at.count("router_mailbox", self.router_mailbox, MAILBOXES);
        at.count("server_mailbox", self.server_mailbox, MAILBOXES);
        at.section("restart", &self.restart);
    }
}

/// Builds the presence subtree as a nested supervisor child called `name`,
/// and the handle that reaches it. Presence starts disabled, as a recorder
/// does.
pub fn presence_child(
    name: &str,
    config: &PresenceConfig,
    clock: Arc<dyn Clock>,
) -> Result<(ChildSpec, PresenceHandle), SupervisorError> {
    presence_subtree(name, config, clock, Vec::new(), Arbiters::default())
}

/// [`presence_child`] with the host's own children beside the router, each
/// made from the subtree's handle; they start after the router, in the
/// order given. A name the subtree's own children take (`router`, or a
/// machine tag, which names a server's actor) is refused as a duplicate.
pub(crate) fn presence_subtree(
    name: &str,
    config: &PresenceConfig,
    clock: Arc<dyn Clock>,
    extra: Vec<PresenceChild>,
    arbiters: Arbiters,
) -> Result<(ChildSpec, PresenceHandle), SupervisorError> {
    let subtree = SupervisorRef::new();
    let router = Mailbox::keeping(config.router_mailbox);
    let server_mailbox = config.server_mailbox;
    let start_servers = subtree.clone();
    let enabled = Arc::new(watch::channel(false).0);
    let router_enabled = enabled.clone();
    let router_child = ChildSpec::actor("router", &router, move |cx| {
        Ok(PresenceActor {
            state: cx.kept(RouterState::default)?,
            enabled: router_enabled.clone(),
            servers: start_servers.clone(),
            server_mailbox,
            log: cx.logger().clone(),
        })
    })
    .state(StatePolicy::Kept)
    .report(router.reporter(|router: &PresenceActor| {
        serde_json::to_value(router.report()).unwrap_or_default()
    }));
    let handle = PresenceHandle {
        router,
        clock,
        enabled,
        gate: Gate::default(),
    };
    let mut spec = SupervisorSpec::new(config.restart.clone()).child(router_child);
    for make in extra {
        let child = make(&handle);
        if child.name().parse::<MachineTag>().is_ok() {
            return Err(SupervisorError::Duplicate {
                supervisor: name.to_owned(),
                child: child.name().to_owned(),
            });
        }
        spec = spec.child(child);
    }
    // Each server's actor on one of the arbiters, by its name.
    let spec = spec
        .dynamic(DynamicPolicy {
            group: "servers".into(),
            restart: RestartPolicy::Permanent,
            state: StatePolicy::Kept,
        })
        .spread(arbiters);
    let child = ChildSpec::supervisor(name, spec, &subtree)?;
    Ok((child, handle))
}
