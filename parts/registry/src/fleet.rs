//! The models of a config file as the tree's [`Fleet`] (docs/spec.md §10):
//! a cloud account (one provider gateway) for each way of reaching a cloud
//! the models name (cloud, region, endpoint or Keystone, credential
//! source), and each model's machines and credential in the machine
//! registry.
//!
//! A model's cloud is Amazon EC2 (`muster::ec2`, in a musterd built with
//! the `ec2` feature), OpenStack (`muster::openstack`, with the
//! `openstack` feature) or the simulated cloud: each simulated model is a
//! simulation of its own, seeded by `backend.sim.seed` plus its index in
//! the file, and the simulated models of one account are on one
//! [`SimAccount`], whose provider answers for all of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use muster::clock::Clock;
use muster::config::InvalidConfig;
use muster::names::ModelUuid;
use muster::provider::Environ;
use muster::sim::{Sim, SimAccount, SimConfig};
use muster_actors::{CloudAccount, Fleet, ModelBackends};

use crate::Registry;
use crate::models::{self, AccountKey, Cloud, ModelConfig};

/// The simulated models of a fleet, by UUID, in the order of the file.
pub type Sims = Vec<(ModelUuid, Sim)>;

/// Why a fleet could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The simulated cloud refused its settings.
    #[error("backend.sim: {0}")]
    Sim(InvalidConfig),
    /// A model's cloud could not be reached as configured.
    #[error("models[{index}].{key}: {reason}")]
    Cloud {
        /// The model's index in the file.
        index: usize,
        /// The key of the model that is wrong.
        key: String,
        /// Why.
        reason: String,
    },
}

/// The `[[models]]` of a config as a fleet whose models' machines and
/// credentials are in `registry`, with the simulated models, each made
/// from `sim` with its own seed. The models must have been checked.
pub async fn build(
    models: &[ModelConfig],
    sim: &SimConfig,
    registry: &Registry,
    clock: Arc<dyn Clock>,
) -> Result<(Fleet, Sims), FleetError> {
    let (accounts, of_model) = models::accounts(models);
    let mut sim_accounts: BTreeMap<usize, SimAccount> = BTreeMap::new();
    let mut sims = Sims::new();
    let mut backends = Vec::with_capacity(models.len());
    for (index, (model, account)) in models.iter().zip(&of_model).enumerate() {
        let (Some(uuid), Some(account)) = (model.uuid, *account) else {
            return Err(FleetError::Cloud {
                index,
                key: "cloud".to_owned(),
                reason: "not given: the config was not checked".to_owned(),
            });
        };
        let (name, key) = &accounts[account];
        if key.cloud == Cloud::Sim {
            let sim_config = SimConfig {
                seed: sim.seed.wrapping_add(index as u64),
                ..sim.clone()
            };
            let sim = sim_accounts
                .entry(account)
                .or_default()
                .add_model(sim_config)
                .map_err(FleetError::Sim)?;
            sims.push((uuid, sim));
        }
        let store = registry.model(uuid);
        backends.push(ModelBackends {
            uuid,
            name: model.name.clone(),
            account: name.clone(),
            facade: store.clone(),
            credentials: store,
        });
    }
    let mut cloud_accounts = Vec::with_capacity(accounts.len());
    for (at, (name, key)) in accounts.iter().enumerate() {
        // The first model naming the account, for an error.
        let index = of_model
            .iter()
            .position(|a| *a == Some(at))
            .unwrap_or_default();
        let environ: Arc<dyn Environ> = match key.cloud {
            Cloud::Sim => sim_accounts
                .get(&at)
                .map_or_else(|| SimAccount::new().environ(), SimAccount::environ),
            Cloud::Ec2 => ec2_environ(key, index).await?,
            Cloud::OpenStack => openstack_environ(key, index)?,
        };
        cloud_accounts.push(CloudAccount {
            name: name.clone(),
            environ,
        });
    }
    let fleet = Fleet {
        accounts: cloud_accounts,
        models: backends,
        clock,
    };
    Ok((fleet, sims))
}

/// The EC2 provider of an account; `index` is the first model naming it,
/// for the error.
#[cfg(feature = "ec2")]
async fn ec2_environ(key: &AccountKey, index: usize) -> Result<Arc<dyn Environ>, FleetError> {
    match muster::ec2::Ec2Environ::new(&key.settings.ec2()).await {
        Ok(environ) => Ok(Arc::new(environ)),
        Err(problem) => Err(FleetError::Cloud {
            index,
            key: problem.key,
            reason: problem.reason,
        }),
    }
}

/// Without the `ec2` feature a model on EC2 is refused with the config.
#[cfg(not(feature = "ec2"))]
async fn ec2_environ(_key: &AccountKey, index: usize) -> Result<Arc<dyn Environ>, FleetError> {
    Err(FleetError::Cloud {
        index,
        key: "cloud".to_owned(),
        reason: format!(
            "this musterd was built without EC2; build one that speaks it with `{}`",
            models::EC2_BUILD
        ),
    })
}

/// The OpenStack provider of an account, its credential read now; `index`
/// is the first model naming it, for the error, which names the entry's
/// key and never the password.
#[cfg(feature = "openstack")]
fn openstack_environ(key: &AccountKey, index: usize) -> Result<Arc<dyn Environ>, FleetError> {
    match muster::openstack::OpenStackEnviron::new(&key.settings.openstack()) {
        Ok(environ) => Ok(Arc::new(environ)),
        Err(problems) => {
            let (key, reason) = match problems.problems.first() {
                Some(first) => (
                    models::openstack_entry_key(&first.key).to_owned(),
                    first.reason.clone(),
                ),
                None => ("cloud".to_owned(), problems.to_string()),
            };
            Err(FleetError::Cloud { index, key, reason })
        }
    }
}

/// Without the `openstack` feature a model on OpenStack is refused with
/// the config.
#[cfg(not(feature = "openstack"))]
fn openstack_environ(_key: &AccountKey, index: usize) -> Result<Arc<dyn Environ>, FleetError> {
    Err(FleetError::Cloud {
        index,
        key: "cloud".to_owned(),
        reason: format!(
            "this musterd was built without OpenStack; build one that speaks it with `{}`",
            models::OPENSTACK_BUILD
        ),
    })
}
