//! The storage under the registry, as a trait: the few primitives the
//! registry needs, so that a store shared between controllers can replace
//! the SQLite file (docs/spec.md §9.1).

use std::time::SystemTime;

use futures::future::BoxFuture;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::password::PasswordHash;
use muster::provider::{InstanceStatusInfo, NetworkInterface};
use tokio::sync::{broadcast, watch};

use super::passwords::PasswordChange;

use super::record::{
    AddressesChanged, Credential, MachineRecord, PutOutcome, Registered, Registration,
};

/// A failure of the storage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The storage refused or failed the operation: the database is locked,
    /// the disk full, the file unreadable. The text is the storage's own.
    #[error("{0}")]
    Storage(String),
    /// The storage cannot be reached now and the operation was not tried:
    /// a shared store whose link is down. Worth asking again shortly.
    #[error("{0}")]
    Unavailable(String),
    /// Something stored does not read back as what was written, e.g. a life
    /// the registry does not know.
    #[error("stored data does not read: {0}")]
    Corrupt(String),
}

/// The storage primitives of the machine registry.
///
/// Every operation is atomic: it happens whole or not at all, and
/// operations on one machine happen one after another. Each answers a
/// future, so that a backend whose calls block (a file) or wait (a network)
/// never holds up the caller's thread.
pub trait RegistryBackend: Send + Sync + 'static {
    /// Registers machine `tag` of `model`, or updates its registration,
    /// at `at` (docs/spec.md §9.3): a new machine gets a fresh incarnation
    /// and empty recorded values; a replaced one
    /// ([`Registration::replaced_by`]) too; otherwise the registration is
    /// updated in place and the recorded values kept.
    fn put(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        registration: Registration,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<PutOutcome, BackendError>>;

    /// Removes the machine with what was recorded for it; answers whether
    /// it was there.
    fn delete(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>>;

    /// The machine; `None` when it is not registered.
    fn get(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<Option<MachineRecord>, BackendError>>;

    /// Every machine of the model, in machine-number order.
    fn list(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<MachineRecord>, BackendError>>;

    /// Every machine of the model without what was recorded for it, in
    /// machine-number order: what a machine watcher reads after each
    /// change, so it costs less than [`Self::list`].
    fn registrations(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<Registered>, BackendError>>;

    /// Records the instance status of the machine's `incarnation`; answers
    /// `false`, writing nothing, when that incarnation is no longer
    /// registered.
    fn record_status(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        status: InstanceStatusInfo,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>>;

    /// Records the network configuration of the machine's `incarnation`;
    /// answers the machine's provider addresses now and whether they
    /// changed, or `None`, writing nothing, when that incarnation is no
    /// longer registered.
    fn record_network(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        interfaces: Vec<NetworkInterface>,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<Option<AddressesChanged>, BackendError>>;

    /// The model's credential; valid when nothing was ever stored for it.
    fn credential(&self, model: ModelUuid) -> BoxFuture<'static, Result<Credential, BackendError>>;

    /// Stores whether the model's credential is valid, and why not, at
    /// `at`; answers whether its validity changed.
    fn set_credential(
        &self,
        model: ModelUuid,
        valid: bool,
        reason: String,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>>;

    /// The model's change counter: it grows after every change of a
    /// registration of the model (a put that changed something, a delete)
    /// and of its credential's validity, made through this backend or any
    /// other sharing the storage. Recorded values do not move it.
    fn version(&self, model: ModelUuid) -> watch::Receiver<u64>;

    /// Stores the hash of agent `agent`'s password in `model` at `at`,
    /// in place of any it had; answers whether it had one.
    fn set_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
        hash: PasswordHash,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>>;

    /// Removes agent `agent`'s password; answers whether it had one.
    fn delete_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>>;

    /// The hash of agent `agent`'s password; `None` when it has none.
    fn password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<Option<PasswordHash>, BackendError>>;

    /// The agents whose password was set or removed from now on, through
    /// this backend or any other sharing the storage. A receiver that
    /// lags hears [`broadcast::error::RecvError::Lagged`], and should then
    /// take every agent's password as changed.
    fn password_changes(&self) -> broadcast::Receiver<PasswordChange>;

    /// Where the storage is, for reports: `sqlite:PATH`.
    fn location(&self) -> String;
}
