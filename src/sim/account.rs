//! [`SimAccount`]: several simulated models on one cloud account, whose
//! provider answers for the instances of all of them, as one cloud account
//! of a real provider holds the instances of every model that uses it.

use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt, join_all};

use super::{Sim, SimConfig};
use crate::config::InvalidConfig;
use crate::error::PollError;
use crate::provider::{Environ, Instance, InstanceId, NetworkInterface};

/// One simulated cloud account holding many models' instances.
///
/// Each model is a [`Sim`] of its own (its machines, its model facade, its
/// credential API, its faults), made by [`SimAccount::add_model`] so that
/// its instance ids are its own: model `n` numbers its instances
/// `i-n-00000001`, … . [`SimAccount::environ`] is the account's provider: a
/// call for ids of several models asks each model's simulation for its own
/// ids, at once, and answers them together, aligned with the ids asked; an
/// id no model holds is left out of the answer. When one model's part of
/// the call fails (its faults, its credential), the whole call fails with
/// that error, as a call to one account fails whole.
#[derive(Debug, Clone, Default)]
pub struct SimAccount {
    models: Vec<Sim>,
}

impl SimAccount {
    /// An account with no model yet.
    pub fn new() -> Self {
        SimAccount::default()
    }

    /// Adds a model on the account, simulated with `config` (validated).
    pub fn add_model(&mut self, config: SimConfig) -> Result<Sim, InvalidConfig> {
        let prefix = format!("{}-", self.models.len());
        let sim = Sim::with_instance_prefix(config, prefix)?;
        self.models.push(sim.clone());
        Ok(sim)
    }

    /// The models on the account, in the order they were added.
    pub fn models(&self) -> &[Sim] {
        &self.models
    }

    /// The account's provider, answering for every model's instances.
    pub fn environ(&self) -> Arc<dyn Environ> {
        Arc::new(self.clone())
    }

    /// The ids asked, sorted by the model holding each: for each model with
    /// some, the model and where its ids stand in the call.
    fn owners(&self, ids: &[InstanceId]) -> Vec<(Sim, Vec<usize>)> {
        let mut owners: Vec<(Sim, Vec<usize>)> = Vec::new();
        for (at, id) in ids.iter().enumerate() {
            let Some(owner) = self.models.iter().position(|sim| sim.knows(id)) else {
                continue;
            };
            match owners
                .iter_mut()
                .find(|(sim, _)| Arc::ptr_eq(&sim.shared, &self.models[owner].shared))
            {
                Some((_, positions)) => positions.push(at),
                None => owners.push((self.models[owner].clone(), vec![at])),
            }
        }
        owners
    }

    /// One call per owning model, each with its own ids, each answer
    /// tagged with where its ids stand in the call.
    fn scatter<T: Send + 'static>(
        &self,
        ids: &[InstanceId],
        call: impl Fn(&Sim, &[InstanceId]) -> BoxFuture<'static, Result<Vec<T>, PollError>>,
    ) -> Vec<BoxFuture<'static, Part<T>>> {
        self.owners(ids)
            .into_iter()
            .map(|(sim, positions)| {
                let own: Vec<InstanceId> = positions.iter().map(|&at| ids[at].clone()).collect();
                let answer = call(&sim, &own);
                async move { (positions, answer.await) }.boxed()
            })
            .collect()
    }
}

/// One model's part of a call: where its ids stand in the call, and its
/// answer.
type Part<T> = (Vec<usize>, Result<Vec<T>, PollError>);

/// Each model's part of a call, put back in the order of the ids asked.
fn gather<T: Clone + Default>(
    asked: usize,
    parts: Vec<Part<T>>,
    none_known: impl Fn(usize) -> Vec<T>,
) -> Result<Vec<T>, PollError> {
    let mut answer = vec![T::default(); asked];
    for (positions, part) in parts {
        let part = match part {
            Ok(part) => part,
            Err(PollError::NoInstances) => none_known(positions.len()),
            Err(error) => return Err(error),
        };
        for (at, value) in positions.into_iter().zip(part) {
            answer[at] = value;
        }
    }
    Ok(answer)
}

impl Environ for SimAccount {
    fn instances(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Option<Instance>>, PollError>> {
        let asked = ids.len();
        let calls = self.scatter(ids, |sim, own| sim.instances(own));
        async move {
            let found = gather(asked, join_all(calls).await, |n| vec![None; n])?;
            if !found.is_empty() && found.iter().all(Option::is_none) {
                return Err(PollError::NoInstances);
            }
            Ok(found)
        }
        .boxed()
    }

    fn network_interfaces(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Vec<NetworkInterface>>, PollError>> {
        let asked = ids.len();
        let calls = self.scatter(ids, |sim, own| sim.network_interfaces(own));
        async move { gather(asked, join_all(calls).await, |n| vec![Vec::new(); n]) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn quick() -> SimConfig {
        SimConfig {
            pending_for: std::time::Duration::ZERO,
            allocating_for: std::time::Duration::ZERO,
            address_delay: std::time::Duration::ZERO,
            ..SimConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn one_call_answers_every_models_instances_in_the_order_asked() {
        let mut account = SimAccount::new();
        let a = account.add_model(quick()).unwrap();
        let b = account.add_model(quick()).unwrap();
        let (_, a1) = a.add_provisioned_machine();
        let (_, b1) = b.add_provisioned_machine();
        let (_, a2) = a.add_provisioned_machine();
        assert_ne!(a1, b1, "each model numbers its own instances");
        let unknown = InstanceId::from("i-9-00000001");
        let ids = vec![b1.clone(), unknown, a1.clone(), a2.clone()];
        let environ = account.environ();
        let found = environ.instances(&ids).await.unwrap();
        let got: Vec<Option<&InstanceId>> =
            found.iter().map(|i| i.as_ref().map(|i| &i.id)).collect();
        assert_eq!(got, [Some(&b1), None, Some(&a1), Some(&a2)]);
        let lists = environ.network_interfaces(&ids).await.unwrap();
        assert_eq!(lists.len(), 4);
        assert!(lists[1].is_empty());
        assert!(!lists[0].is_empty() && !lists[2].is_empty());
        // Each model's simulation was asked once, for its own ids.
        assert_eq!(a.counters().instances.calls, 1);
        assert_eq!(a.counters().instances.ids, 2);
        assert_eq!(b.counters().instances.calls, 1);
        assert_eq!(b.counters().instances.ids, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_models_refused_credential_fails_the_accounts_call() {
        let mut account = SimAccount::new();
        let a = account.add_model(quick()).unwrap();
        let b = account.add_model(quick()).unwrap();
        let (_, a1) = a.add_provisioned_machine();
        let (_, b1) = b.add_provisioned_machine();
        b.revoke_credential();
        let error = account.environ().instances(&[a1, b1]).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unauthorised);
        let none = account
            .environ()
            .instances(&[InstanceId::from("i-nobody")])
            .await
            .unwrap_err();
        assert_eq!(none.kind(), ErrorKind::NoInstances);
    }
}
