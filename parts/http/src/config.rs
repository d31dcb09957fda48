//! `[http]`: where the HTTP surface listens and who may use it, when a
//! child of the host's tree serves it ([`Inspector::child`](crate::Inspector::child)).

use std::net::SocketAddr;

use muster::config::{Checker, Validate};
use muster::token::validate_token;
use serde::{Deserialize, Serialize};

/// Where the HTTP surface listens and who may use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct HttpConfig {
    /// The listen address; loopback unless the operator says otherwise.
    pub listen: SocketAddr,
    /// When set, every endpoint but `/healthz` wants
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// The default listen address of the HTTP surface.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9180";

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN.parse().expect("a valid socket address"),
            token: None,
        }
    }
}

impl Validate for HttpConfig {
    /// A token, when set, that follows the rule of every token
    /// ([`validate_token`]).
    fn check(&self, at: &mut Checker) {
        if let Some(token) = &self.token {
            // The token itself stays out of the message.
            if let Err(reason) = validate_token(token) {
                at.problem("token", None, reason);
            }
        }
    }
}
