//! What every connection of a door shares, made once and kept across the
//! door's restarts, so that connections outlive a restart of the accept
//! loop that took them.

use std::sync::Arc;

use slog::Logger;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::ConnectionIds;
use super::config::AgentsConfig;
use super::disconnects::Disconnects;
use super::limiter::Limiter;
use super::metrics::DoorMetrics;
use super::passwords::{AgentPasswords, Live};
use super::tls_failures::TlsFailures;
use muster_actors::presence::PresenceHandle;

/// What every connection of a door shares.
pub(super) struct Shared {
    pub config: AgentsConfig,
    pub presence: PresenceHandle,
    pub ids: ConnectionIds,
    pub logger: Logger,
    pub websocket: WebSocketConfig,
    pub shutdown: watch::Receiver<bool>,
    pub enabled: watch::Receiver<bool>,
    pub metrics: DoorMetrics,
    /// The disconnects presence has not taken yet.
    pub disconnects: Arc<Disconnects>,
    /// Where each agent's password is found, with `auth = "password"`.
    pub passwords: Option<Arc<dyn AgentPasswords>>,
    /// The connections that logged in with a password.
    pub live: Arc<Live>,
    /// The failed logins of each source address.
    pub limiter: Limiter,
    /// The failed TLS handshakes not logged yet.
    pub tls_failures: TlsFailures,
}

impl Shared {
    /// The WebSocket settings of the door's connections: small buffers,
    /// since most agents send a frame a minute, and frames capped.
    pub fn websocket(config: &AgentsConfig) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024)
            .max_frame_size(Some(config.max_frame))
            .max_message_size(Some(config.max_frame))
    }
}

/// Resolves once `shutdown` says the door closes (at once if it does
/// already); never when its sender is gone.
pub(super) async fn closing(shutdown: &mut watch::Receiver<bool>) {
    if shutdown.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}
