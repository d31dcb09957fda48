//! The controller's model as the instance poller sees it: the machines, what
//! it records about their instances, and the model's cloud credential.

use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;

use crate::error::PollError;
use crate::names::MachineTag;
use crate::provider::{
    Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface, named_enum,
};

/// Where a machine is in its life in the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Life {
    /// In use.
    Alive,
    /// Being taken down.
    Dying,
    /// Done with; about to be removed.
    Dead,
}

named_enum!(Life, "life", {
    Alive => "alive",
    Dying => "dying",
    Dead => "dead",
});

/// The status of a machine's agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MachineStatus {
    /// The agent has not started yet.
    Pending,
    /// The agent is up.
    Started,
    /// The agent was stopped.
    Stopped,
    /// The agent failed.
    Error,
    /// The agent stopped reporting.
    Down,
}

named_enum!(MachineStatus, "machine status", {
    Pending => "pending",
    Started => "started",
    Stopped => "stopped",
    Error => "error",
    Down => "down",
});

/// One machine of the model, through the API server.
///
/// Its life is read from a copy taken when the machine was fetched and
/// updated by [`Machine::refresh`], as in Juju; everything else is asked for.
pub trait Machine: Send + Sync {
    /// The machine's tag.
    fn tag(&self) -> MachineTag;

    /// The id of the machine's instance; [`PollError::NotProvisioned`] when
    /// it has none yet.
    fn instance_id(&self) -> BoxFuture<'static, Result<InstanceId, PollError>>;

    /// Stores the provider's network configuration of the machine; answers
    /// the machine's resulting provider addresses and whether they changed.
    fn set_provider_network_config(
        &self,
        interfaces: Vec<NetworkInterface>,
    ) -> BoxFuture<'static, Result<(Vec<Address>, bool), PollError>>;

    /// The instance status the model records for the machine.
    fn instance_status(&self) -> BoxFuture<'static, Result<InstanceStatusInfo, PollError>>;

    /// Records the machine's instance status.
    fn set_instance_status(
        &self,
        status: InstanceStatus,
        message: String,
    ) -> BoxFuture<'static, Result<(), PollError>>;

    /// The status of the machine's agent.
    fn status(&self) -> BoxFuture<'static, Result<MachineStatus, PollError>>;

    /// The machine's life as of the last fetch or refresh.
    fn life(&self) -> Life;

    /// Whether the machine was provisioned by hand, outside the provider.
    fn is_manual(&self) -> BoxFuture<'static, Result<bool, PollError>>;

    /// Reloads the machine's life; [`PollError::NotFound`] when the machine
    /// has been removed.
    fn refresh(&self) -> BoxFuture<'static, Result<(), PollError>>;
}

/// A stream of batches of machine tags, as [`ModelFacade::watch_model_machines`]
/// gives them.
pub type MachineBatches = BoxStream<'static, Result<Vec<MachineTag>, PollError>>;

/// The API server's view of the model's machines.
pub trait ModelFacade: Send + Sync {
    /// Watches the model's machines (not containers). The first batch holds
    /// every machine; each later one the machines whose life or agent start
    /// time changed, including removed ones. An error ends the watch.
    fn watch_model_machines(&self) -> MachineBatches;

    /// The machine with this tag; [`PollError::NotFound`] when it is not in
    /// the model.
    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>>;
}

/// The model's cloud credential, through the API server.
pub trait CredentialApi: Send + Sync {
    /// Marks the model's cloud credential invalid, for `reason`; the poller
    /// calls this once when the cloud denies access.
    fn invalidate_model_credential(
        &self,
        reason: String,
    ) -> BoxFuture<'static, Result<(), PollError>>;

    /// Whether the model's credential is valid: the current value first,
    /// then each change. Polling that stopped for an invalid credential
    /// resumes when this says `true` again.
    fn watch_credential_validity(&self) -> BoxStream<'static, bool>;
}

/// The text a manually provisioned machine's instance status is set to.
pub const MANUAL_MACHINE_MESSAGE: &str = "Manually provisioned machine";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_life_use_the_juju_names() {
        let names: Vec<_> = MachineStatus::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(names, ["pending", "started", "stopped", "error", "down"]);
        let names: Vec<_> = Life::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(names, ["alive", "dying", "dead"]);
        for status in MachineStatus::ALL {
            assert_eq!(status.to_string().parse::<MachineStatus>(), Ok(*status));
        }
        assert_eq!(
            "gone".parse::<Life>().unwrap_err().to_string(),
            r#""gone" is not a valid life"#
        );
        assert_eq!(
            "".parse::<MachineStatus>().unwrap_err().to_string(),
            r#""" is not a valid machine status"#
        );
    }
}
