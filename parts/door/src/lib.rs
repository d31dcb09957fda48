//! The agents' door: a WebSocket listener, separate from the inspection
//! surface, where each agent holds one connection and presence records it
//! for as long as the connection lasts. `docs/agent-protocol.md` states
//! the protocol; [`client`] is its agent's side.
//!
//! A host mounts the door in its own supervision tree, beside muster:
//!
//! ```no_run
//! # use muster_actors::{ChildSpec, Muster};
//! # use muster_door::{AgentsConfig, BoundDoor, ConnectionIds, DoorMetrics};
//! # fn mount(muster: &Muster, registry: &mut prometheus_client::registry::Registry) -> Result<ChildSpec, muster_door::DoorError> {
//! // Bound first, so that a port in use is found before anything starts.
//! let bound = BoundDoor::bind(&AgentsConfig::default())?;
//! let metrics = DoorMetrics::register(registry);
//! let (door_child, door) = bound.child(muster.presence().clone(), ConnectionIds::default(), metrics);
//! println!("agents: {}", door.url());
//! # Ok(door_child)
//! # }
//! ```
//!
//! The child, called `door`, accepts one task per socket within
//! `max_connections`; a failure of its accept loop restarts it on the same
//! listener while the connections carry on. [`Door::close`], or the tree
//! stopping it, closes every connection with 1001 and records each
//! disconnect.

mod child;
pub mod client;
pub mod config;
mod connection;
mod disconnects;
mod ending;
mod limiter;
mod listen;
pub mod login;
pub mod metrics;
pub mod passwords;
mod record;
mod repeated;
mod shared;
pub mod tls;
mod tls_failures;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use child::{DOOR_CHILD, Door};
pub use config::{AgentAuth, AgentsConfig};
pub use connection::AGENT_PATH;
pub use ending::{GOING_AWAY, TOO_BIG, TRY_AGAIN};
pub use limiter::{MAX_TRACKED, TOO_MANY_FAILURES};
pub use listen::{BoundDoor, REFUSING};
pub use metrics::DoorMetrics;
pub use muster::error::BindError;
pub use passwords::{AgentPasswords, PasswordChanged};
pub use tls::TlsProblem;

/// Connection ids, unique for the life of the process: the door and any
/// other recorder in the process (the demo's scenario) draw from one.
#[derive(Debug, Clone)]
pub struct ConnectionIds(Arc<AtomicU64>);

impl Default for ConnectionIds {
    fn default() -> Self {
        ConnectionIds(Arc::new(AtomicU64::new(1)))
    }
}

impl ConnectionIds {
    /// The next id.
    pub fn next(&self) -> u64 {
        self.0.fetch_add(1, Ordering::Relaxed)
    }
}

/// Why the door did not open.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoorError {
    /// The listen address could not be bound.
    #[error("agents: {0}")]
    Bind(BindError),
    /// A TLS file could not be used.
    #[error(transparent)]
    Tls(#[from] TlsProblem),
}
