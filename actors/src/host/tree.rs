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

use crate::gateway::{GatewayMetrics, GatewayState, ProviderGateway};
use crate::machines::{MachinesHandle, machines_child};
use crate::mailbox::Mailbox;
use crate::presence::{PresenceHandle, presence_subtree};
use crate::supervisor::{ChildSpec, StatePolicy, StatusWatch, SupervisorError, SupervisorSpec};

use super::{Backends, Extensions, MusterConfig};

/// What reaches the parts of the tree from outside.
pub(super) struct Handles {
    /// Muster's supervisor, across its incarnations.
    pub(super) status: StatusWatch,
    pub(super) presence: PresenceHandle,
    pub(super) machines: MachinesHandle,
    pub(super) gateway: Mailbox<ProviderGateway>,
}

/// Muster's supervisor: the gateway, then the presence and machines
/// subtrees, the host's extra children in theirs. `config` must have been
/// validated.
pub(super) fn build(
    config: &MusterConfig,
    backends: Backends,
    extensions: Extensions,
    gateway_metrics: GatewayMetrics,
) -> Result<(SupervisorSpec, Handles), SupervisorError> {
    let gateway = Mailbox::new(config.gateway.mailbox);
    let gateway_config = config.gateway;
    let (environ, credentials) = (backends.environ.clone(), backends.credentials.clone());
    let gateway_child = ChildSpec::actor("gateway", &gateway, move |cx| {
        let kept = cx.kept(GatewayState::default)?;
        Ok(ProviderGateway::new(
            environ.clone(),
            credentials.clone(),
            gateway_config,
            gateway_metrics.clone(),
            cx.logger().clone(),
        )
        .keeping(kept))
    })
    .state(StatePolicy::Kept)
    .report(gateway.reporter(|gateway: &ProviderGateway| {
        serde_json::to_value(gateway.report()).unwrap_or_default()
    }));
    let (presence_child, presence) = presence_subtree(
        "presence",
        &config.presence,
        backends.clock.clone(),
        extensions.presence,
    )?;
    let (machines_child, machines) = machines_child(
        "machines",
        config.machines.clone(),
        backends.facade.clone(),
        gateway.clone(),
    )?;
    let (spec, status) = SupervisorSpec::new(config.supervision.clone())
        .child(gateway_child)
        .child(presence_child)
        .child(machines_child)
        .with_status();
    let handles = Handles {
        status,
        presence,
        machines,
        gateway,
    };
    Ok((spec, handles))
}
