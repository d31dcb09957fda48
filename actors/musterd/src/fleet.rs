//! The models of a config file as the tree's [`Fleet`]: a cloud account
//! (one provider gateway) for each cloud, region, endpoint and credential
//! source the models name, and each model's backends (docs/spec.md §10).
//!
//! A model on the simulated cloud is a simulation of its own (its
//! machines, its model facade, its credential), seeded by
//! `backend.sim.seed` plus its index in the file; the simulated models of
//! one account are on one [`SimAccount`], whose provider answers for all
//! of them.

use std::collections::BTreeMap;
use std::sync::Arc;

use muster::clock::Clock;
use muster::config::InvalidConfig;
use muster::names::ModelUuid;
use muster::sim::{Sim, SimAccount, SimConfig};
use muster_actors::{CloudAccount, Fleet, ModelBackends};

use crate::config::DaemonConfig;
use crate::config::models::{self, AccountKey, Cloud};

/// The simulated models of a fleet, each by its UUID, for the demo and for
/// the machines a config file asks them to hold at start.
pub type Sims = BTreeMap<ModelUuid, Sim>;

/// Why a fleet could not be made.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The simulated cloud refused its settings.
    #[error("backend.sim: {0}")]
    Sim(InvalidConfig),
    /// A model names a cloud this musterd cannot reach.
    #[error("models[{index}]: {reason}")]
    Cloud {
        /// The model's index in the file.
        index: usize,
        /// Why.
        reason: String,
    },
}

/// The config's `[[models]]` as a fleet, with the simulated models. The
/// config must have been checked.
pub fn build(config: &DaemonConfig, clock: Arc<dyn Clock>) -> Result<(Fleet, Sims), FleetError> {
    let (accounts, of_model) = models::accounts(&config.models);
    let mut sim_accounts: BTreeMap<usize, SimAccount> = BTreeMap::new();
    let mut sims = Sims::new();
    let mut backends = Vec::with_capacity(config.models.len());
    for (index, (model, account)) in config.models.iter().zip(&of_model).enumerate() {
        let (Some(uuid), Some(account)) = (model.uuid, *account) else {
            return Err(FleetError::Cloud {
                index,
                reason: "no UUID or no cloud: the config was not checked".to_owned(),
            });
        };
        let (name, key) = &accounts[account];
        match key.cloud {
            Cloud::Sim => {
                let sim_config = SimConfig {
                    seed: config.backend.sim.seed.wrapping_add(index as u64),
                    ..config.backend.sim.clone()
                };
                let sim = sim_accounts
                    .entry(account)
                    .or_default()
                    .add_model(sim_config)
                    .map_err(FleetError::Sim)?;
                backends.push(ModelBackends {
                    uuid,
                    name: model.name.clone(),
                    account: name.clone(),
                    facade: sim.facade(),
                    credentials: sim.credential_api(),
                });
                sims.insert(uuid, sim);
            }
            Cloud::Ec2 => {
                return Err(FleetError::Cloud {
                    index,
                    reason: "a model on EC2 needs the machine registry".to_owned(),
                });
            }
        }
    }
    let accounts = accounts
        .iter()
        .enumerate()
        .map(|(at, (name, key))| CloudAccount {
            name: name.clone(),
            environ: match key {
                AccountKey {
                    cloud: Cloud::Sim, ..
                } => sim_accounts
                    .get(&at)
                    .map(SimAccount::environ)
                    .unwrap_or_else(|| SimAccount::new().environ()),
                AccountKey {
                    cloud: Cloud::Ec2, ..
                } => SimAccount::new().environ(),
            },
        })
        .collect();
    Ok((
        Fleet {
            accounts,
            models: backends,
            clock,
        },
        sims,
    ))
}
