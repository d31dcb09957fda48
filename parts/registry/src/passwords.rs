//! Each agent's own password in the registry (docs/spec.md §14): only its
//! hash is stored, and every change is told on a feed, so that a door can
//! close the connections that logged in with a password no longer valid.

use muster::names::{AgentTag, ModelUuid};
use muster::password::{self, PasswordHash, RandomError};
use tokio::sync::broadcast;

use super::{BackendError, Registry, RegistryError};

/// How many changes the feed holds for a slow receiver before it lags (and
/// then takes every password as changed).
pub const FEED_CAPACITY: usize = 1024;

/// An agent whose password was set, rotated or removed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct PasswordChange {
    /// The agent's model.
    pub model: ModelUuid,
    /// The agent.
    pub agent: AgentTag,
}

impl PasswordChange {
    /// The change of `agent`'s password in `model`.
    pub fn new(model: ModelUuid, agent: AgentTag) -> Self {
        PasswordChange { model, agent }
    }
}

/// The sending side of a backend's password feed.
#[derive(Debug, Clone)]
pub struct PasswordFeed(broadcast::Sender<PasswordChange>);

impl Default for PasswordFeed {
    fn default() -> Self {
        PasswordFeed(broadcast::Sender::new(FEED_CAPACITY))
    }
}

impl PasswordFeed {
    /// Tells every receiver that `agent`'s password in `model` changed.
    pub fn changed(&self, model: ModelUuid, agent: AgentTag) {
        // No receiver: nobody holds a connection to close.
        let _ = self.0.send(PasswordChange::new(model, agent));
    }

    /// A receiver of the changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<PasswordChange> {
        self.0.subscribe()
    }
}

/// A password just made: shown this once, never stored.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Provisioned {
    /// The password itself.
    pub password: String,
    /// Whether it replaced one the agent had.
    pub rotated: bool,
}

impl std::fmt::Debug for Provisioned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provisioned")
            .field("rotated", &self.rotated)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Makes a new password for agent `agent` of `model`, from the
    /// operating system's random source, and stores its hash in place of
    /// any the agent had. The password is answered this once.
    pub async fn provision_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> Result<Provisioned, RegistryError> {
        let what = format!("setting the password of agent {agent} of model {model}");
        let password = password::generate().map_err(|e: RandomError| RegistryError {
            what: what.clone(),
            source: BackendError::Storage(e.to_string()),
        })?;
        let hash = PasswordHash::of(&password);
        let at = self.inner.clock.now();
        let set = self.inner.backend.set_password(model, agent, hash, at);
        let rotated = self.write(what, set.await)?;
        Ok(Provisioned { password, rotated })
    }

    /// Removes agent `agent`'s password; answers whether it had one.
    pub async fn remove_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> Result<bool, RegistryError> {
        let what = format!("removing the password of agent {agent} of model {model}");
        let delete = self.inner.backend.delete_password(model, agent);
        self.write(what, delete.await)
    }

    /// The hash of agent `agent`'s password; `None` when it has none.
    pub async fn password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> Result<Option<PasswordHash>, RegistryError> {
        let what = format!("reading the password of agent {agent} of model {model}");
        let read = self.inner.backend.password(model, agent);
        read.await.map_err(|source| RegistryError { what, source })
    }

    /// The agents whose password changes from now on, through any node
    /// sharing the storage.
    pub fn password_changes(&self) -> broadcast::Receiver<PasswordChange> {
        self.inner.backend.password_changes()
    }
}

#[cfg(test)]
mod tests;
