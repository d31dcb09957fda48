//! Muster's own tree, built once per handle: the specification every
//! incarnation of muster's supervisor is made from, and the handles that
//! reach its parts.
//!
//! Whatever must outlive a restart of the whole of muster is made here,
//! once, and reached from the specification: each incarnation is made from
//! a clone of it, and clones share their children's start functions and
//! kept state (docs/spec.md §8.2). So the presence router's known servers
//! and tables, the machines' record with each poller's schedule, and the
//! gateway's credential pause are the same cells in every incarnation.
//!
//! A tree of one model holds `gateway` and `machines` (docs/spec.md
//! §6.1.2); a tree of many holds `gateways`, a supervisor with a gateway
//! per cloud account, and `models`, a supervisor with each model's
//! machines subtree (docs/spec.md §10).

use std::sync::Arc;

use muster::clock::Clock;
use muster::model::ModelFacade;
use muster::names::ModelUuid;

use crate::gateway::{GatewayConfig, GatewayMetrics, GatewayState, ModelGate, ProviderGateway};
use crate::machines::{MachinesHandle, model_machines_child, subtree};
use crate::mailbox::Mailbox;
use crate::presence::{PresenceHandle, presence_subtree};
use crate::supervisor::{
    Arbiters, ChildSpec, DynamicPolicy, RestartPolicy, StatePolicy, StatusWatch, SupervisorError,
    SupervisorRef, SupervisorSpec,
};

use super::fenced::FencedModel;
use super::holds::{HELD_GROUP, ModelHolds, keeper_child};

use super::models::{Fleet, ModelHandle, ModelInfo};
use super::{Backends, Extensions, MusterConfig};

/// The name of the supervisor of the gateways, in a tree of many models.
pub const GATEWAYS: &str = "gateways";

/// The name of the supervisor of the models' subtrees, in a tree of many
/// models.
pub const MODELS: &str = "models";

/// What the tree talks to: one model, or many.
pub enum TreeBackends {
    /// One model, without a UUID, through one gateway: the tree of
    /// docs/spec.md §6.1.2.
    One(Backends),
    /// Many models through a gateway per cloud account (docs/spec.md §10).
    Many(Fleet),
}

impl TreeBackends {
    /// The wall clock that stamps presence.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        match self {
            TreeBackends::One(backends) => &backends.clock,
            TreeBackends::Many(fleet) => &fleet.clock,
        }
    }
}

impl From<Backends> for TreeBackends {
    fn from(backends: Backends) -> Self {
        TreeBackends::One(backends)
    }
}

impl From<Fleet> for TreeBackends {
    fn from(fleet: Fleet) -> Self {
        TreeBackends::Many(fleet)
    }
}

/// What reaches the parts of the tree from outside.
pub(super) struct Handles {
    /// Muster's supervisor, across its incarnations.
    pub(super) status: StatusWatch,
    pub(super) presence: PresenceHandle,
    /// Every model's machines.
    pub(super) machines: MachinesHandle,
    /// Each gateway, by name.
    pub(super) gateways: Vec<(String, Mailbox<ProviderGateway>)>,
    /// Each model of a tree of many.
    pub(super) models: Vec<ModelHandle>,
}

/// The child that runs one gateway; its credential pause is kept across
/// its restarts.
fn gateway_child(
    name: &str,
    mailbox: &Mailbox<ProviderGateway>,
    make: impl Fn(slog::Logger) -> ProviderGateway + Send + 'static,
) -> ChildSpec {
    ChildSpec::actor(name, mailbox, move |cx| {
        let kept = cx.kept(GatewayState::default)?;
        Ok(make(cx.logger().clone()).keeping(kept))
    })
    .state(StatePolicy::Kept)
    .report(mailbox.reporter(|gateway: &ProviderGateway| {
        serde_json::to_value(gateway.report()).unwrap_or_default()
    }))
}

/// Muster's supervisor: the gateway(s), then the presence subtree with the
/// host's extra children in it, then the machines of the model(s).
/// `config` must have been validated, and a fleet checked.
pub(super) fn build(
    config: &MusterConfig,
    backends: TreeBackends,
    extensions: Extensions,
    gateway_metrics: GatewayMetrics,
) -> Result<(SupervisorSpec, Handles), SupervisorError> {
    let clock = backends.clock().clone();
    let arbiters = extensions.arbiters;
    let (presence_child, presence) = presence_subtree(
        "presence",
        &config.presence,
        clock,
        extensions.presence,
        arbiters.clone(),
    )?;
    let (gateways_child, machines_child, parts) = match backends {
        TreeBackends::One(backends) => one(config, backends, gateway_metrics, arbiters)?,
        TreeBackends::Many(fleet) => {
            many(config, &fleet, extensions.holds, gateway_metrics, &arbiters)?
        }
    };
    let (spec, status) = SupervisorSpec::new(config.supervision.clone())
        .child(gateways_child)
        .child(presence_child)
        .child(machines_child)
        .with_status();
    let handles = Handles {
        status,
        presence,
        machines: parts.machines,
        gateways: parts.gateways,
        models: parts.models,
    };
    Ok((spec, handles))
}

/// The handles of the gateways and the machines.
struct Parts {
    machines: MachinesHandle,
    gateways: Vec<(String, Mailbox<ProviderGateway>)>,
    models: Vec<ModelHandle>,
}

/// One model: `gateway` and `machines` straight under muster's supervisor.
fn one(
    config: &MusterConfig,
    backends: Backends,
    metrics: GatewayMetrics,
    arbiters: Arbiters,
) -> Result<(ChildSpec, ChildSpec, Parts), SupervisorError> {
    let gateway = Mailbox::new(config.gateway.mailbox);
    let gateway_config = config.gateway;
    let (environ, credentials) = (backends.environ.clone(), backends.credentials.clone());
    let gateway_child = gateway_child("gateway", &gateway, move |log| {
        ProviderGateway::new(
            environ.clone(),
            credentials.clone(),
            gateway_config,
            metrics.clone(),
            log,
        )
    });
    // One model: its pollers are what there is to spread.
    let (machines_child, machines) = subtree(
        "machines",
        None,
        config.machines.clone(),
        backends.facade.clone(),
        gateway.clone(),
        arbiters,
    )?;
    let parts = Parts {
        machines,
        gateways: vec![("gateway".to_owned(), gateway)],
        models: Vec::new(),
    };
    Ok((gateway_child, machines_child, parts))
}

/// Many models: a `gateways` supervisor with a gateway per cloud account,
/// and a `models` supervisor with each model's machines subtree, named by
/// its UUID, so that each model has its own restart intensity. With
/// `holds`, the subtrees are dynamic children of `models` that its `held`
/// child adds and removes as the holds say.
fn many(
    config: &MusterConfig,
    fleet: &Fleet,
    holds: Option<ModelHolds>,
    metrics: GatewayMetrics,
    arbiters: &Arbiters,
) -> Result<(ChildSpec, ChildSpec, Parts), SupervisorError> {
    let mut gateways_spec = SupervisorSpec::new(config.supervision.clone());
    let mut mailboxes: Vec<(String, Mailbox<ProviderGateway>)> = Vec::new();
    // Held models are called for, and their polls written, only while
    // their holds are valid (docs/spec.md §11.7.3).
    let gate: Option<ModelGate> = holds
        .clone()
        .map(|holds| Arc::new(move |model: &ModelUuid| holds.is_valid(model)) as ModelGate);
    for (account, models) in fleet.by_account() {
        let environ = fleet
            .accounts
            .iter()
            .find(|a| a.name == account)
            .map(|a| a.environ.clone())
            .expect("a checked fleet names only accounts it gives");
        let served: Vec<_> = models
            .iter()
            .map(|m| (m.uuid, m.credentials.clone()))
            .collect();
        let mailbox = Mailbox::new(config.gateway.mailbox);
        let gateway_config: GatewayConfig = config.gateway;
        let metrics = metrics.clone();
        let gate = gate.clone();
        let mut child = gateway_child(account, &mailbox, move |log| {
            let gateway = ProviderGateway::for_models(
                environ.clone(),
                served.clone(),
                gateway_config,
                metrics.clone(),
                log,
            );
            match &gate {
                Some(gate) => gateway.gated_by(gate.clone()),
                None => gateway,
            }
        });
        if let Some(arbiter) = arbiters.nth(mailboxes.len()) {
            child = child.on(arbiter.clone());
        }
        gateways_spec = gateways_spec.child(child);
        mailboxes.push((account.to_owned(), mailbox));
    }
    let mut models_spec = SupervisorSpec::new(config.supervision.clone());
    let models_ref = SupervisorRef::new();
    let mut subtrees = std::collections::BTreeMap::new();
    let mut handles = Vec::new();
    let mut model_handles = Vec::new();
    for model in &fleet.models {
        let gateway = mailboxes
            .iter()
            .find(|(name, _)| *name == model.account)
            .map(|(_, mailbox)| mailbox.clone())
            .expect("a checked fleet names only accounts it gives");
        let name = model.uuid.to_string();
        let facade = match &gate {
            Some(gate) => Arc::new(FencedModel {
                inner: model.facade.clone(),
                model: model.uuid,
                gate: gate.clone(),
            }) as Arc<dyn ModelFacade>,
            None => model.facade.clone(),
        };
        let (mut child, mut machines) = model_machines_child(
            &name,
            model.uuid,
            config.machines.clone(),
            facade,
            gateway.clone(),
        )?;
        if let Some(holds) = &holds {
            machines = machines.held_by(holds.clone());
        }
        // A model's whole subtree, watcher and pollers, on one arbiter.
        if let Some(arbiter) = arbiters.nth(handles.len()) {
            child = child.on(arbiter.clone());
        }
        if holds.is_some() {
            subtrees.insert(model.uuid, child);
        } else {
            models_spec = models_spec.child(child);
        }
        let info = ModelInfo {
            uuid: model.uuid,
            name: model.name.clone(),
            account: model.account.clone(),
        };
        model_handles.push(ModelHandle::new(info, machines.clone(), gateway));
        handles.push(machines);
    }
    let holds_kept = holds.clone();
    if let Some(holds) = holds {
        models_spec = models_spec
            .child(keeper_child(holds, subtrees, models_ref.clone()))
            .dynamic(DynamicPolicy {
                group: HELD_GROUP.to_owned(),
                restart: RestartPolicy::Permanent,
                state: StatePolicy::Kept,
            });
    }
    let gateways_ref = SupervisorRef::new();
    let gateways_child = ChildSpec::supervisor(GATEWAYS, gateways_spec, &gateways_ref)?;
    let models_child = ChildSpec::supervisor(MODELS, models_spec, &models_ref)?;
    let mut machines = MachinesHandle::across(&handles, models_ref);
    if let Some(holds) = holds_kept {
        machines = machines.held_by(holds);
    }
    let parts = Parts {
        machines,
        gateways: mailboxes,
        models: model_handles,
    };
    Ok((gateways_child, models_child, parts))
}
