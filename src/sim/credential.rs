//! The model's cloud credential: the cloud revoking and restoring it, and
//! the simulation as the API server's credential API.

use futures::future::{self, BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, StreamExt};

use super::Sim;
use crate::error::PollError;
use crate::model::CredentialApi;

impl Sim {
    /// Makes the cloud refuse the model's credential: every provider call
    /// fails as unauthorised until it is restored.
    pub fn revoke_credential(&self) {
        self.shared.with(|state| state.cloud_accepts = false);
    }

    /// Makes the cloud accept the model's credential again, and the model
    /// hold it valid, as when an operator updates it.
    pub fn restore_credential(&self) {
        self.shared.with(|state| state.cloud_accepts = true);
        self.shared.credential_valid.send_replace(true);
    }

    /// Makes the credential API's invalidation calls fail, or succeed.
    pub fn set_invalidation_fails(&self, fails: bool) {
        self.shared.with(|state| state.invalidation_fails = fails);
    }

    /// Whether the model holds its credential valid.
    pub fn model_credential_valid(&self) -> bool {
        *self.shared.credential_valid.borrow()
    }

    /// The reasons given to the credential API, oldest first.
    pub fn invalidation_reasons(&self) -> Vec<String> {
        self.shared.with(|state| state.invalidation_reasons.clone())
    }
}

impl CredentialApi for Sim {
    fn invalidate_model_credential(
        &self,
        reason: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        let result = self.shared.with(|state| {
            state.counters.credential_invalidations += 1;
            if state.invalidation_fails {
                return Err(state.fail(PollError::other(
                    "invalidating the model's credential",
                    "injected API server failure",
                )));
            }
            state.invalidation_reasons.push(reason);
            Ok(())
        });
        if result.is_ok() {
            self.shared.credential_valid.send_replace(false);
        }
        future::ready(result).boxed()
    }

    fn watch_credential_validity(&self) -> BoxStream<'static, bool> {
        let receiver = self.shared.credential_valid.subscribe();
        stream::unfold((receiver, true), |(mut receiver, first)| async move {
            if !first {
                receiver.changed().await.ok()?;
            }
            let valid = *receiver.borrow_and_update();
            Some((valid, (receiver, false)))
        })
        .boxed()
    }
}
