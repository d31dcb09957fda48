//! The door's password store in musterd (docs/spec.md §14): the machine
//! registry of the `[[models]]`, for their agents only, an agent of
//! another model having none.

use std::collections::HashSet;

use futures::FutureExt;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use muster::names::{AgentTag, ModelUuid};
use muster::password::PasswordHash;
use muster_door::{AgentPasswords, PasswordChanged};
use muster_registry::Registry;
use tokio::sync::broadcast::error::RecvError;

/// The agents' passwords of the models musterd polls, in its registry.
pub struct RegistryPasswords {
    registry: Registry,
    models: HashSet<ModelUuid>,
}

impl RegistryPasswords {
    /// The passwords of the agents of `models`, kept in `registry`.
    pub fn new(registry: Registry, models: impl IntoIterator<Item = ModelUuid>) -> Self {
        RegistryPasswords {
            registry,
            models: models.into_iter().collect(),
        }
    }
}

impl AgentPasswords for RegistryPasswords {
    fn password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<Option<PasswordHash>, String>> {
        if !self.models.contains(&model) {
            return futures::future::ready(Ok(None)).boxed();
        }
        let registry = self.registry.clone();
        async move {
            registry
                .password(model, agent)
                .await
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn changes(&self) -> BoxStream<'static, PasswordChanged> {
        let changes = self.registry.password_changes();
        futures::stream::unfold(changes, |mut changes| async move {
            let change = match changes.recv().await {
                Ok(change) => PasswordChanged::Agent(change.model, change.agent),
                Err(RecvError::Lagged(_)) => PasswordChanged::Any,
                Err(RecvError::Closed) => return None,
            };
            Some((change, changes))
        })
        .boxed()
    }
}
