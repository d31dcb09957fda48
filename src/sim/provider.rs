//! The simulation as the cloud provider: each call is counted and its faults
//! drawn when it is made, in call order, so a seed gives one run; the
//! answer is read after the call's latency.

use futures::future::{BoxFuture, FutureExt};
use tokio::time::Instant;

use super::{Shared, Sim};
use crate::error::PollError;
use crate::provider::{Environ, Instance, InstanceId, InstanceStatusInfo, NetworkInterface};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Method {
    Instances,
    NetworkInterfaces,
}

impl Shared {
    /// Starts a provider call: counts it, then refuses it or draws its
    /// faults. On success, answers which ids to leave out of the answer.
    fn begin_provider_call(&self, method: Method, ids: usize) -> Result<Vec<bool>, PollError> {
        let context = match method {
            Method::Instances => "fetching instances",
            Method::NetworkInterfaces => "fetching network interfaces",
        };
        let now = Instant::now();
        self.with(|state| {
            let faults = state.faults;
            match method {
                Method::Instances => state.counters.instances.record(ids),
                Method::NetworkInterfaces => state.counters.network_interfaces.record(ids),
            }
            if method == Method::NetworkInterfaces && !self.config.networking {
                return Err(state.fail(PollError::NotSupported("network interfaces".into())));
            }
            if !state.cloud_accepts {
                return Err(state.fail(PollError::Unauthorised(
                    "the model's cloud credential was revoked".into(),
                )));
            }
            if let Some(wait) = state.over_rate_limit(faults.max_calls_per_second, now) {
                return Err(state.fail(PollError::Throttled {
                    retry_after: Some(wait),
                }));
            }
            if state.chance(faults.throttle_rate) {
                return Err(state.fail(PollError::Throttled {
                    retry_after: faults.retry_after,
                }));
            }
            if state.chance(faults.error_rate) {
                return Err(state.fail(PollError::other(context, "injected provider failure")));
            }
            Ok(match method {
                Method::Instances => (0..ids)
                    .map(|_| state.chance(faults.partial_rate))
                    .collect(),
                Method::NetworkInterfaces => vec![false; ids],
            })
        })
    }

    async fn latency(&self) {
        let latency = self.with(|state| state.faults.latency);
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }
}

impl Environ for Sim {
    fn instances(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Option<Instance>>, PollError>> {
        let begun = self
            .shared
            .begin_provider_call(Method::Instances, ids.len());
        let shared = self.shared.clone();
        let ids = ids.to_vec();
        async move {
            shared.latency().await;
            let dropped = begun?;
            let now = Instant::now();
            let config = &shared.config;
            shared.with(|state| {
                let found: Vec<Option<Instance>> = ids
                    .iter()
                    .zip(dropped)
                    .map(|(id, dropped)| {
                        if dropped {
                            return None;
                        }
                        let machine = state.machines.get(state.instances.get(id)?)?;
                        let instance = machine.instance.as_ref()?;
                        Some(Instance {
                            id: id.clone(),
                            status: InstanceStatusInfo::new(instance.status(config, now), ""),
                            addresses: machine.provider_addresses(config, now),
                        })
                    })
                    .collect();
                if !found.is_empty() && found.iter().all(Option::is_none) {
                    return Err(state.fail(PollError::NoInstances));
                }
                Ok(found)
            })
        }
        .boxed()
    }

    fn network_interfaces(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Vec<NetworkInterface>>, PollError>> {
        let begun = self
            .shared
            .begin_provider_call(Method::NetworkInterfaces, ids.len());
        let shared = self.shared.clone();
        let ids = ids.to_vec();
        async move {
            shared.latency().await;
            begun?;
            let now = Instant::now();
            let config = &shared.config;
            Ok(shared.with(|state| {
                ids.iter()
                    .map(|id| {
                        state
                            .instances
                            .get(id)
                            .and_then(|tag| state.machines.get(tag))
                            .map(|machine| machine.provider_interfaces(config, now))
                            .unwrap_or_default()
                    })
                    .collect()
            }))
        }
        .boxed()
    }
}
