//! Many models in one tree: what a host gives for them ([`Fleet`]: the
//! cloud accounts and the models that poll through each), how that is
//! checked, and the handle on one model ([`ModelHandle`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use muster::clock::Clock;
use muster::model::{CredentialApi, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::Environ;
use serde::Serialize;

use crate::gate::Gate;
use crate::gateway::{GatewayReport, GetGatewayReport, ModelCredentialValid, ProviderGateway};
use crate::machines::MachinesHandle;
use crate::mailbox::{Mailbox, SendError};
use crate::supervisor::check_name;

/// One cloud account in one region, as the provider reaches it: the models
/// that poll through it share one gateway, so their polls share batches
/// and its rate limit.
#[derive(Clone)]
pub struct CloudAccount {
    /// The gateway's name in the tree (`gateways/NAME`): not empty, no `/`.
    pub name: String,
    /// The cloud provider, for this account and region.
    pub environ: Arc<dyn Environ>,
}

/// One model of the tree: the API server's view of its machines, its
/// credential, and the cloud account it polls through.
#[derive(Clone)]
pub struct ModelBackends {
    /// The model; the tree names its subtree by it (`models/UUID`).
    pub uuid: ModelUuid,
    /// A label for people, shown beside the UUID.
    pub name: Option<String>,
    /// The [`CloudAccount::name`] of the account it polls through.
    pub account: String,
    /// The API server's view of the model.
    pub facade: Arc<dyn ModelFacade>,
    /// Where a denied credential of the model is reported.
    pub credentials: Arc<dyn CredentialApi>,
}

/// What a tree of many models talks to: the cloud accounts, one gateway
/// each, the models that poll through them, and the wall clock that stamps
/// presence.
#[derive(Clone)]
pub struct Fleet {
    /// The cloud accounts, each serving at least one model.
    pub accounts: Vec<CloudAccount>,
    /// The models, at least one, each UUID once.
    pub models: Vec<ModelBackends>,
    /// The wall clock.
    pub clock: Arc<dyn Clock>,
}

/// A fleet that does not make a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// No model was given.
    #[error("a fleet needs at least one model")]
    NoModels,
    /// An account's name is not a child name.
    #[error("account name {0:?} is not valid: it must be non-empty and hold no '/'")]
    BadAccountName(String),
    /// Two accounts have one name.
    #[error("account {0:?} is given twice")]
    DuplicateAccount(String),
    /// Two models have one UUID.
    #[error("model {0} is given twice")]
    DuplicateModel(ModelUuid),
    /// A model names an account that is not given.
    #[error("model {model} polls through account {account:?}, which is not given")]
    UnknownAccount {
        /// The model.
        model: ModelUuid,
        /// The account it names.
        account: String,
    },
    /// An account serves no model: its gateway would have nothing to do.
    #[error("account {0:?} serves no model")]
    IdleAccount(String),
}

impl Fleet {
    /// Checks that the accounts and models make a tree: at least one model,
    /// names and UUIDs each once, every model's account given, and every
    /// account serving a model.
    pub fn check(&self) -> Result<(), FleetError> {
        if self.models.is_empty() {
            return Err(FleetError::NoModels);
        }
        let mut accounts = BTreeSet::new();
        for account in &self.accounts {
            if check_name(&account.name).is_err() {
                return Err(FleetError::BadAccountName(account.name.clone()));
            }
            if !accounts.insert(account.name.as_str()) {
                return Err(FleetError::DuplicateAccount(account.name.clone()));
            }
        }
        let mut models = BTreeSet::new();
        let mut served = BTreeSet::new();
        for model in &self.models {
            if !models.insert(model.uuid) {
                return Err(FleetError::DuplicateModel(model.uuid));
            }
            if !accounts.contains(model.account.as_str()) {
                return Err(FleetError::UnknownAccount {
                    model: model.uuid,
                    account: model.account.clone(),
                });
            }
            served.insert(model.account.as_str());
        }
        if let Some(idle) = accounts.difference(&served).next() {
            return Err(FleetError::IdleAccount((*idle).to_owned()));
        }
        Ok(())
    }

    /// The models of each account, in the order given.
    pub(super) fn by_account(&self) -> BTreeMap<&str, Vec<&ModelBackends>> {
        let mut by_account: BTreeMap<&str, Vec<&ModelBackends>> = BTreeMap::new();
        for model in &self.models {
            by_account
                .entry(model.account.as_str())
                .or_default()
                .push(model);
        }
        by_account
    }
}

/// A model of the tree, as [`Muster::models`](crate::Muster::models) lists
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    /// The model.
    pub uuid: ModelUuid,
    /// Its label, if it has one.
    pub name: Option<String>,
    /// The cloud account (and gateway) it polls through.
    pub account: String,
}

/// The host's handle on one model of a tree of many: its machines, its
/// gateway and its credential. Cheap to clone; `Send + Sync`; its calls
/// wait while the whole of muster restarts, as every call through
/// [`Muster`](crate::Muster) does.
#[derive(Clone)]
pub struct ModelHandle {
    info: ModelInfo,
    machines: MachinesHandle,
    gateway: Mailbox<ProviderGateway>,
    gate: Gate,
}

impl ModelHandle {
    pub(super) fn new(
        info: ModelInfo,
        machines: MachinesHandle,
        gateway: Mailbox<ProviderGateway>,
    ) -> Self {
        ModelHandle {
            info,
            machines,
            gateway,
            gate: Gate::default(),
        }
    }

    /// The same handle, its calls passing `gate`.
    pub(super) fn gated(mut self, gate: Gate) -> Self {
        self.machines = self.machines.gated(gate.clone());
        self.gate = gate;
        self
    }

    /// The model, its label and its account.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The model's UUID.
    pub fn uuid(&self) -> ModelUuid {
        self.info.uuid
    }

    /// The model's machines and what the cloud said about each; none
    /// while the host leaves the model to another node
    /// ([`ModelHolds`](crate::ModelHolds)).
    pub fn machines(&self) -> &MachinesHandle {
        &self.machines
    }

    /// Whether this tree polls the model now: always, unless the host
    /// decides by [`ModelHolds`](crate::ModelHolds), then while it holds
    /// the model.
    pub fn polled_here(&self) -> bool {
        self.machines
            .holds()
            .is_none_or(|holds| holds.is_held(&self.info.uuid))
    }

    /// The node that polls the model, as the host last noted it with
    /// [`ModelHolds::note_holder`](crate::ModelHolds::note_holder);
    /// `None` when none is known to, or the host does not decide.
    pub fn polled_by(&self) -> Option<MachineTag> {
        self.machines.holds()?.holder(&self.info.uuid)
    }

    /// What the gateway of the model's cloud account is doing; its
    /// `models` entry for this model says whether the model is paused.
    pub async fn gateway(&self) -> Result<GatewayReport, SendError> {
        self.gate
            .call_again(|| self.gateway.send(GetGatewayReport))
            .await
    }

    /// Tells the model's gateway whether the model's credential is valid:
    /// `true` resumes its polling paused by a denied credential, and
    /// touches no other model's.
    pub async fn credential_valid(&self, valid: bool) -> Result<(), SendError> {
        let word = ModelCredentialValid {
            model: self.info.uuid,
            valid,
        };
        self.gate
            .call_again(|| std::future::ready(self.gateway.do_send(word).map_err(SendError::from)))
            .await
    }
}
