//! Several controllers' API servers sharing presence over NATS
//! (docs/spec.md §11, `docs/cluster-protocol.md`).
//!
//! Each `musterd` is one node: the API server named by `[agents] server`.
//! Its bridge, a child of muster's presence subtree, publishes the connects
//! and disconnects its door records ([`protocol`]), and applies what the
//! other nodes publish in the order they numbered it ([`peers`]), taking a
//! snapshot of a peer whenever its own picture of that peer may be wrong.

pub mod auth;
pub mod bridge;
pub mod config;
pub mod farewell;
pub mod kv;
pub mod leases;
pub mod live;
pub mod metrics;
mod mount;
mod nats;
pub mod peers;
pub mod protocol;
pub mod registry;
pub mod rendezvous;

pub use auth::{CredentialsProblem, NatsAuth};
pub use bridge::{Bridge, BridgeConfig, BridgeReport, bridge_child, bridge_child_on};
pub use config::ClusterConfig;
pub use farewell::Farewell;
pub use leases::{LeaseConfig, LeaseManager, LeaseMetrics, lease_child, lease_child_on};
pub use live::LiveNodes;
pub use metrics::ClusterMetrics;
pub use mount::Cluster;
pub use nats::reconnect_delay;
pub use registry::NatsBackend;
