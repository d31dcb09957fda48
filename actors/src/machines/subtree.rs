//! Builds the machines subtree: the supervisor child with its watcher and
//! its dynamic group of pollers.

use std::sync::{Arc, Mutex};

use muster::model::ModelFacade;
use muster::names::ModelUuid;

use crate::gateway::ProviderGateway;
use crate::mailbox::Mailbox;
use crate::supervisor::{
    Arbiters, ChildSpec, DynamicPolicy, RestartPolicy, StatePolicy, SupervisorError, SupervisorRef,
    SupervisorSpec,
};

use super::config::MachinesConfig;
use super::group::PollerGroup;
use super::handle::MachinesHandle;
use super::registry::Registry;
use super::watcher::{Env, MachineWatcher};

/// The name of the dynamic group the pollers belong to.
pub const POLLERS_GROUP: &str = "pollers";

/// The name of the watcher child in the machines supervisor.
pub const WATCHER_CHILD: &str = "watcher";

/// Builds the nested supervisor child called `name`: a static child
/// "watcher" ([`MachineWatcher`]) and a dynamic group "pollers" (one
/// [`MachinePoller`](super::MachinePoller) per machine, named by machine
/// tag). `gateway` is the gateway's stable mailbox: pollers do not take it
/// as an input, so a gateway restart does not restart them; a poll that
/// cannot reach it is a failed poll. The config should have passed
/// its [`Validate`](muster::config::Validate) check; the restart timing is
/// checked here too.
pub fn machines_child(
    name: &str,
    config: MachinesConfig,
    facade: Arc<dyn ModelFacade>,
    gateway: Mailbox<ProviderGateway>,
) -> Result<(ChildSpec, MachinesHandle), SupervisorError> {
    subtree(name, None, config, facade, gateway, Arbiters::default())
}

/// Like [`machines_child`], for `model` of a gateway that serves many
/// ([`ProviderGateway::for_models`]): the pollers ask for its instances
/// with [`ModelFetch`](crate::gateway::ModelFetch), and the handle names the
/// model on each machine.
pub fn model_machines_child(
    name: &str,
    model: ModelUuid,
    config: MachinesConfig,
    facade: Arc<dyn ModelFacade>,
    gateway: Mailbox<ProviderGateway>,
) -> Result<(ChildSpec, MachinesHandle), SupervisorError> {
    subtree(
        name,
        Some(model),
        config,
        facade,
        gateway,
        Arbiters::default(),
    )
}

/// The machines subtree, its pollers spread over `arbiters`.
pub(crate) fn subtree(
    name: &str,
    model: Option<ModelUuid>,
    config: MachinesConfig,
    facade: Arc<dyn ModelFacade>,
    gateway: Mailbox<ProviderGateway>,
    arbiters: Arbiters,
) -> Result<(ChildSpec, MachinesHandle), SupervisorError> {
    let registry = Arc::new(Mutex::new(Registry::default()));
    let supervisor = SupervisorRef::new();
    let env = Arc::new(Env {
        facade,
        registry: registry.clone(),
        group: PollerGroup::new(model, supervisor.clone(), gateway),
        config: config.clone(),
    });
    let watcher_mailbox = Mailbox::new(16);
    let watcher = ChildSpec::actor(WATCHER_CHILD, &watcher_mailbox, move |cx| {
        Ok(MachineWatcher::new(
            env.clone(),
            cx.logger().clone(),
            cx.exit_slot(),
        ))
    });
    let spec = SupervisorSpec::new(config.restart)
        .child(watcher)
        .dynamic(DynamicPolicy {
            group: POLLERS_GROUP.to_owned(),
            restart: RestartPolicy::Permanent,
            state: StatePolicy::Kept,
        })
        .spread(arbiters);
    let child = ChildSpec::supervisor(name, spec, &supervisor)?;
    Ok((child, MachinesHandle::new(model, registry, supervisor)))
}
