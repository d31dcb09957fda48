//! One model's registry as the instance poller sees it (docs/spec.md §9.4,
//! §9.5, §9.6): its [`ModelFacade`] with one [`Machine`] per registered
//! machine, and its [`CredentialApi`].
//!
//! A [`Machine`] handed out is bound to the machine's incarnation: once the
//! machine is removed or replaced (docs/spec.md §9.3.2) every call on it
//! answers "not found", as a removed machine does in Juju, and nothing it
//! writes lands on the new registration.

use muster::sync::lock;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt};
use futures::stream::{self, BoxStream, StreamExt};
use muster::error::PollError;
use muster::model::{CredentialApi, Life, Machine, MachineBatches, MachineStatus, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface};
use slog::warn;

use super::record::MachineRecord;
use super::{Registry, RegistryError, watch};

/// The wait before a failed read of a model's credential is tried again,
/// doubling up to [`CREDENTIAL_RETRY_MOST`]: a change it would have seen is
/// not lost with the failed read.
const CREDENTIAL_RETRY_FIRST: Duration = Duration::from_millis(250);

/// The longest wait between reads of a credential that keep failing.
const CREDENTIAL_RETRY_MOST: Duration = Duration::from_secs(10);

/// One model's machines and credential in the registry, as the instance
/// poller's model facade and credential API. Made by [`Registry::model`].
pub struct ModelRegistry {
    registry: Registry,
    model: ModelUuid,
}

impl ModelRegistry {
    pub(super) fn new(registry: Registry, model: ModelUuid) -> Self {
        ModelRegistry { registry, model }
    }

    /// The model.
    pub fn uuid(&self) -> ModelUuid {
        self.model
    }
}

fn failed(e: RegistryError) -> PollError {
    PollError::other(e.what, e.source)
}

fn not_found(model: ModelUuid, tag: &MachineTag) -> PollError {
    PollError::NotFound(format!("machine {} of model {model}", tag.id()))
}

impl ModelFacade for ModelRegistry {
    fn watch_model_machines(&self) -> MachineBatches {
        watch::machine_batches(self.registry.clone(), self.model)
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        let registry = self.registry.clone();
        let model = self.model;
        let tag = tag.clone();
        async move {
            let record = registry
                .machine(model, tag.clone())
                .await
                .map_err(failed)?
                .ok_or_else(|| not_found(model, &tag))?;
            Ok(Arc::new(RegisteredMachine {
                registry,
                model,
                tag,
                incarnation: record.incarnation,
                life: Arc::new(Mutex::new(record.registration.life)),
            }) as Arc<dyn Machine>)
        }
        .boxed()
    }
}

/// A registered machine, bound to the incarnation it was fetched as. Its
/// life is the copy taken at the fetch or the last refresh.
struct RegisteredMachine {
    registry: Registry,
    model: ModelUuid,
    tag: MachineTag,
    incarnation: u64,
    life: Arc<Mutex<Life>>,
}

impl RegisteredMachine {
    /// Reads the machine and answers `f` of it; "not found" when this
    /// incarnation is no longer registered.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(MachineRecord) -> Result<T, PollError> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, PollError>> {
        let registry = self.registry.clone();
        let (model, tag, incarnation) = (self.model, self.tag.clone(), self.incarnation);
        async move {
            match registry.machine(model, tag.clone()).await.map_err(failed)? {
                Some(record) if record.incarnation == incarnation => f(record),
                _ => Err(not_found(model, &tag)),
            }
        }
        .boxed()
    }
}

impl Machine for RegisteredMachine {
    fn tag(&self) -> MachineTag {
        self.tag.clone()
    }

    fn instance_id(&self) -> BoxFuture<'static, Result<InstanceId, PollError>> {
        self.read(|record| {
            record
                .registration
                .instance_id
                .ok_or(PollError::NotProvisioned(record.tag))
        })
    }

    fn set_provider_network_config(
        &self,
        interfaces: Vec<NetworkInterface>,
    ) -> BoxFuture<'static, Result<(Vec<Address>, bool), PollError>> {
        let registry = self.registry.clone();
        let (model, tag, incarnation) = (self.model, self.tag.clone(), self.incarnation);
        async move {
            registry
                .record_network(model, tag.clone(), incarnation, interfaces)
                .await
                .map_err(failed)?
                .ok_or_else(|| not_found(model, &tag))
        }
        .boxed()
    }

    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
        self.read(|record| Ok(record.recorded.instance_status))
    }

    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        let registry = self.registry.clone();
        let (model, tag, incarnation) = (self.model, self.tag.clone(), self.incarnation);
        async move {
            let info = InstanceStatusInfo { status, message };
            let recorded = registry
                .record_status(model, tag.clone(), incarnation, info)
                .await
                .map_err(failed)?;
            if recorded {
                Ok(())
            } else {
                Err(not_found(model, &tag))
            }
        }
        .boxed()
    }

    fn status(&self) -> BoxFuture<'static, Result<MachineStatus, PollError>> {
        self.read(|record| Ok(record.registration.agent_status))
    }

    fn life(&self) -> Life {
        *lock(&self.life)
    }

    fn is_manual(&self) -> BoxFuture<'static, Result<bool, PollError>> {
        self.read(|record| Ok(record.registration.manual))
    }

    fn refresh(&self) -> BoxFuture<'static, Result<(), PollError>> {
        let life = self.life.clone();
        self.read(move |record| {
            *lock(&life) = record.registration.life;
            Ok(())
        })
    }
}

impl CredentialApi for ModelRegistry {
    fn invalidate_model_credential(
        &self,
        reason: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        let registry = self.registry.clone();
        let model = self.model;
        async move {
            registry
                .set_credential_valid(model, false, reason)
                .await
                .map(|_| ())
                .map_err(failed)
        }
        .boxed()
    }

    fn watch_credential_validity(&self) -> BoxStream<'static, bool> {
        let registry = self.registry.clone();
        let model = self.model;
        let version = registry.backend().version(model);
        // `retry`: a read failed, and is tried again after this wait, with
        // no change needed to wake it.
        stream::unfold(
            (registry, version, None::<bool>, None::<Duration>),
            move |(registry, mut version, last, retry)| async move {
                let mut retry = retry;
                loop {
                    match retry {
                        Some(wait) => tokio::time::sleep(wait).await,
                        None if last.is_some() && version.changed().await.is_err() => {
                            return None;
                        }
                        None => {}
                    }
                    // Marked before reading, so a change made meanwhile wakes
                    // the next round.
                    version.borrow_and_update();
                    let valid = match registry.credential(model).await {
                        Ok(credential) => {
                            retry = None;
                            credential.valid
                        }
                        Err(e) => {
                            let wait = retry.map_or(CREDENTIAL_RETRY_FIRST, |w| {
                                (w * 2).min(CREDENTIAL_RETRY_MOST)
                            });
                            warn!(registry.log(), "cannot read the model's credential; reading it again";
                                "error" => %e, "in" => ?wait);
                            retry = Some(wait);
                            match last {
                                // The cloud has the last word: polling
                                // goes on until it denies the credential.
                                None => true,
                                Some(_) => continue,
                            }
                        }
                    };
                    if last != Some(valid) {
                        return Some((valid, (registry, version, Some(valid), retry)));
                    }
                }
            },
        )
        .boxed()
    }
}
