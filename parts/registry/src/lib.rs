//! The machine registry musterd owns when no controller embeds muster
//! (docs/spec.md §9): which machines each model has, as clients register
//! them, and what the pollers last recorded about their instances, kept
//! across restarts.
//!
//! ```text
//!  client (HTTP)                         MachineWatcher, MachinePollers
//!      │ parse_machine_id,                      │ ModelFacade, Machine,
//!      │ parse_registration (body.rs)           │ CredentialApi (facade.rs)
//!      ▼                                        ▼
//!  Registry (this file): writes counted, the last failure kept
//!      │                       ▲ batches of machine tags (watch.rs)
//!      ▼                       │ after a model's version moves
//!  RegistryBackend (backend.rs): put, delete, get, list, record, version
//!      │
//!      ▼
//!  SqliteBackend (sqlite.rs): one file in WAL mode, or one in memory
//! ```
//!
//! [`Registry`] is the front: the HTTP layer registers and removes machines
//! through it, and [`Registry::model`] gives one model's registry as the
//! instance poller's model facade and credential API. Its storage is a
//! [`RegistryBackend`], so that a store shared between controllers can
//! replace the SQLite file.

mod backend;
mod body;
mod facade;
pub mod fleet;
pub mod models;
mod passwords;
mod record;
mod sqlite;
pub mod store;
mod versions;
mod watch;

use muster::sync::lock;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use muster::clock::Clock;
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{InstanceStatusInfo, NetworkInterface};
use serde::Serialize;
use slog::{Logger, warn};

pub use backend::{BackendError, RegistryBackend};
pub use body::{
    BodyError, FIELDS, MAX_BODY_BYTES, MAX_INSTANCE_ID_CHARS, MAX_MACHINE_ID_CHARS,
    parse_machine_id, parse_model_uuid, parse_registration,
};
pub use facade::ModelRegistry;
pub use passwords::{FEED_CAPACITY, PasswordChange, PasswordFeed, Provisioned};
pub use record::{
    AddressesChanged, Credential, MachineRecord, PutOutcome, Recorded, Registered, Registration,
};
pub use sqlite::{LONGEST_BUSY_TIMEOUT, SCHEMA_VERSION, SqliteBackend, SqliteOptions};
pub use versions::Versions;
pub use watch::COALESCE;

/// An operation of the registry that failed: what it was doing, and the
/// storage's failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what}: {source}")]
#[non_exhaustive]
pub struct RegistryError {
    /// What the registry was doing, e.g. `registering machine 3 of model
    /// UUID`.
    pub what: String,
    /// Why it failed.
    #[source]
    pub source: BackendError,
}

/// A write that failed, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct WriteFailure {
    /// When it failed, by the registry's clock.
    #[serde(with = "humantime_serde")]
    pub at: SystemTime,
    /// What the registry was writing.
    pub what: String,
    /// Why it failed.
    pub error: String,
}

/// The registry's part of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegistryReport {
    /// Where the storage is: `sqlite:PATH`, `sqlite::memory:`.
    pub location: String,
    /// How many writes failed since the registry was opened.
    pub write_failures: u64,
    /// The last of them.
    pub last_write_error: Option<WriteFailure>,
}

/// The machine registry. See the [module documentation](self). Clones
/// share one registry.
#[derive(Clone)]
pub struct Registry {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Arc<dyn RegistryBackend>,
    clock: Arc<dyn Clock>,
    log: Logger,
    failures: Mutex<Failures>,
}

#[derive(Default)]
struct Failures {
    count: u64,
    last: Option<WriteFailure>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("location", &self.location())
            .finish_non_exhaustive()
    }
}

fn machine_of(model: ModelUuid, tag: &MachineTag) -> String {
    format!("machine {} of model {model}", tag.id())
}

impl Registry {
    /// A registry on `backend`; `clock` dates what is written, `log` gets a
    /// warning for each write that fails.
    pub fn new(backend: Arc<dyn RegistryBackend>, clock: Arc<dyn Clock>, log: Logger) -> Self {
        Registry {
            inner: Arc::new(Inner {
                backend,
                clock,
                log,
                failures: Mutex::default(),
            }),
        }
    }

    /// A registry in the SQLite file at `path` (created when missing).
    /// Blocks while it opens the file: open it before serving.
    pub fn open(
        path: &Path,
        options: &SqliteOptions,
        clock: Arc<dyn Clock>,
        log: Logger,
    ) -> Result<Self, BackendError> {
        let backend = SqliteBackend::open(path, options)?;
        Ok(Registry::new(Arc::new(backend), clock, log))
    }

    /// A registry in memory, gone when the last clone is dropped.
    pub fn in_memory(clock: Arc<dyn Clock>, log: Logger) -> Result<Self, BackendError> {
        Ok(Registry::new(
            Arc::new(SqliteBackend::in_memory()?),
            clock,
            log,
        ))
    }

    /// Where the storage is: `sqlite:PATH`, `sqlite::memory:`.
    pub fn location(&self) -> String {
        self.inner.backend.location()
    }

    /// The storage.
    pub fn backend(&self) -> &Arc<dyn RegistryBackend> {
        &self.inner.backend
    }

    /// Registers machine `tag` of `model`, or updates its registration
    /// (docs/spec.md §9.3). A failure is counted and kept for the report.
    pub async fn register(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        registration: Registration,
    ) -> Result<PutOutcome, RegistryError> {
        let what = format!("registering {}", machine_of(model, &tag));
        let at = self.inner.clock.now();
        let put = self.inner.backend.put(model, tag, registration, at);
        self.write(what, put.await)
    }

    /// Removes machine `tag` of `model` with what was recorded for it;
    /// answers whether it was registered.
    pub async fn remove(&self, model: ModelUuid, tag: MachineTag) -> Result<bool, RegistryError> {
        let what = format!("removing {}", machine_of(model, &tag));
        let delete = self.inner.backend.delete(model, tag);
        self.write(what, delete.await)
    }

    /// Machine `tag` of `model`; `None` when it is not registered.
    pub async fn machine(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> Result<Option<MachineRecord>, RegistryError> {
        let what = format!("reading {}", machine_of(model, &tag));
        let get = self.inner.backend.get(model, tag);
        get.await.map_err(|source| RegistryError { what, source })
    }

    /// Every machine of `model`, in machine-number order.
    pub async fn machines(&self, model: ModelUuid) -> Result<Vec<MachineRecord>, RegistryError> {
        let list = self.inner.backend.list(model);
        list.await.map_err(|source| RegistryError {
            what: format!("listing the machines of model {model}"),
            source,
        })
    }

    /// Every machine of `model` without what was recorded for it, in
    /// machine-number order.
    pub async fn registrations(&self, model: ModelUuid) -> Result<Vec<Registered>, RegistryError> {
        let list = self.inner.backend.registrations(model);
        list.await.map_err(|source| RegistryError {
            what: format!("listing the machines of model {model}"),
            source,
        })
    }

    /// The model's credential.
    pub async fn credential(&self, model: ModelUuid) -> Result<Credential, RegistryError> {
        let read = self.inner.backend.credential(model);
        read.await.map_err(|source| RegistryError {
            what: format!("reading the credential of model {model}"),
            source,
        })
    }

    /// Marks the model's credential valid, or invalid for `reason`; answers
    /// whether its validity changed. Polling paused for an invalid
    /// credential resumes when it is marked valid again.
    pub async fn set_credential_valid(
        &self,
        model: ModelUuid,
        valid: bool,
        reason: String,
    ) -> Result<bool, RegistryError> {
        let what = if valid {
            format!("marking the credential of model {model} valid")
        } else {
            format!("invalidating the credential of model {model}")
        };
        let at = self.inner.clock.now();
        let set = self.inner.backend.set_credential(model, valid, reason, at);
        self.write(what, set.await)
    }

    /// Records the instance status of `tag`'s `incarnation`; `false` when
    /// that incarnation is gone.
    async fn record_status(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        status: InstanceStatusInfo,
    ) -> Result<bool, RegistryError> {
        let what = format!(
            "recording the instance status of {}",
            machine_of(model, &tag)
        );
        let at = self.inner.clock.now();
        let record = self
            .inner
            .backend
            .record_status(model, tag, incarnation, status, at);
        self.write(what, record.await)
    }

    /// Records the network configuration of `tag`'s `incarnation`; `None`
    /// when that incarnation is gone.
    async fn record_network(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        interfaces: Vec<NetworkInterface>,
    ) -> Result<Option<AddressesChanged>, RegistryError> {
        let what = format!(
            "recording the network config of {}",
            machine_of(model, &tag)
        );
        let at = self.inner.clock.now();
        let record = self
            .inner
            .backend
            .record_network(model, tag, incarnation, interfaces, at);
        self.write(what, record.await)
    }

    /// One model's registry: the instance poller's model facade and
    /// credential API for `model`.
    pub fn model(&self, model: ModelUuid) -> Arc<ModelRegistry> {
        Arc::new(ModelRegistry::new(self.clone(), model))
    }

    /// The registry's part of `/api/report`.
    pub fn report(&self) -> RegistryReport {
        let failures = self.failures();
        RegistryReport {
            location: self.location(),
            write_failures: failures.count,
            last_write_error: failures.last.clone(),
        }
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, Failures> {
        // Each update is whole; a panic elsewhere leaves them readable.
        lock(&self.inner.failures)
    }

    /// Hands on a write's result; a failure is logged, counted and kept.
    fn write<T>(&self, what: String, result: Result<T, BackendError>) -> Result<T, RegistryError> {
        result.map_err(|source| {
            warn!(self.inner.log, "registry write failed"; "what" => &what, "error" => %source);
            let mut failures = self.failures();
            failures.count += 1;
            failures.last = Some(WriteFailure {
                at: self.inner.clock.now(),
                what: what.clone(),
                error: source.to_string(),
            });
            RegistryError { what, source }
        })
    }

    fn log(&self) -> &Logger {
        &self.inner.log
    }
}

#[cfg(test)]
mod tests;
