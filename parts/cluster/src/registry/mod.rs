//! The registry in a JetStream key-value bucket (docs/spec.md §11.9): the
//! storage every node of a cluster shares, in place of its own SQLite
//! file.
//!
//! One bucket, `muster_NAME_registry`, on disk and replicated, keeps:
//! - `m.MODEL.ID`: machine `ID`'s registration and incarnation;
//! - `r.MODEL.ID`: what the pollers recorded of it, with the incarnation it
//!   is of (a record of another incarnation reads as nothing recorded);
//! - `c.MODEL`: the model's credential;
//! - `p.MODEL.AGENT`: the hash of an agent's password (`passwords.rs`);
//! - `incarnations`: the last incarnation given out, never given twice.
//!
//! Each write reads the key, decides, and writes expecting the revision it
//! read; a write that finds another revision reads again and decides
//! anew, so concurrent writers through any node end with one consistent
//! value. Registrations and records are apart so that a poll's record
//! never contends with a client's registration, and so that the change
//! feed, a watch of `m.>` and `c.>`, hears registrations and credentials
//! only (records do not move a model's version, as §9 says).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_nats::jetstream::kv;
use futures::FutureExt;
use futures::future::BoxFuture;
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::password::PasswordHash;
use muster::provider::{InstanceStatusInfo, NetworkInterface, addresses_of};
use tokio::sync::{broadcast, watch};

use crate::kv::open_bucket;
use crate::nats::connection;
use crate::{ClusterConfig, NatsAuth};
use muster_registry::{
    AddressesChanged, BackendError, Credential, MachineRecord, PasswordChange, PasswordFeed,
    PutOutcome, Registered, Registration, RegistryBackend,
};

mod feed;
mod passwords;
mod stored;

use feed::follow;
use muster_registry::Versions;
use stored::ATTEMPTS;
use stored::{
    Read, StoredCredential, StoredMachine, StoredRecord, contended, credential_key, from_millis,
    latest, machine_key, merge, next_incarnation, read, record_key, storage, to_millis, write,
};

/// How long a node keeps trying to open the registry's bucket at start.
pub const OPEN_WITHIN: Duration = Duration::from_secs(30);

/// The registry's bucket of cluster `name`.
pub fn bucket_name(name: &str) -> String {
    format!("muster_{name}_registry")
}

/// The registry in a key-value bucket. See the module's documentation.
pub struct NatsBackend {
    store: kv::Store,
    /// The connection the store uses, when this backend made it: while it
    /// is down, calls fail at once instead of waiting out their timeouts.
    link: Option<async_nats::Client>,
    versions: Arc<Versions>,
    /// The agents whose password changed, whichever node changed it.
    passwords: PasswordFeed,
    feed: tokio::task::JoinHandle<()>,
    location: String,
}

impl Drop for NatsBackend {
    fn drop(&mut self) {
        self.feed.abort();
    }
}

impl NatsBackend {
    /// Connects to the NATS servers of `cluster` and opens (making it when
    /// missing) the cluster's registry bucket: on disk, with a replica on
    /// each server listed, up to three. A NATS that cannot be reached now,
    /// or whose JetStream refuses the bucket for [`OPEN_WITHIN`], is an
    /// error; one lost later is reconnected to, and meanwhile the
    /// registry's calls fail.
    pub async fn connect(
        cluster: &ClusterConfig,
        auth: &NatsAuth,
        node: &MachineTag,
        log: &slog::Logger,
    ) -> Result<NatsBackend, BackendError> {
        let (options, urls) = connection(cluster, auth, node, "registry").map_err(storage)?;
        let client = options
            .connect(urls)
            .await
            .map_err(|e| storage(format!("cannot reach NATS for the registry: {e}")))?;
        let bucket = kv::Config {
            bucket: bucket_name(&cluster.name),
            description: "muster: the machine registry".into(),
            history: 1,
            storage: async_nats::jetstream::stream::StorageType::File,
            num_replicas: cluster.replicas(),
            ..Default::default()
        };
        // A JetStream cluster just started elects its leaders for a few
        // seconds, and refuses meanwhile.
        let started = tokio::time::Instant::now();
        let store = loop {
            match open_bucket(client.clone(), bucket.clone()).await {
                Ok(store) => break store,
                Err(e) if started.elapsed() < OPEN_WITHIN => {
                    slog::debug!(log, "registry bucket not open yet; trying again"; "error" => %e);
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(storage(e)),
            }
        };
        let mut backend = NatsBackend::new(store);
        backend.link = Some(client);
        Ok(backend)
    }

    /// The registry in `store` (which holds its NATS connection); follows its
    /// change feed from now on.
    pub fn new(store: kv::Store) -> NatsBackend {
        let versions = Arc::new(Versions::default());
        let passwords = PasswordFeed::default();
        let feed = tokio::spawn(follow(
            store.clone(),
            Arc::downgrade(&versions),
            passwords.clone(),
        ));
        NatsBackend {
            location: format!("nats:{}", store.name),
            store,
            link: None,
            versions,
            passwords,
            feed,
        }
    }
}

impl NatsBackend {
    /// Why a call cannot be tried now: the link to NATS is down.
    fn unavailable(&self) -> Option<BackendError> {
        let link = self.link.as_ref()?;
        let state = link.connection_state();
        (state != async_nats::connection::State::Connected).then(|| {
            BackendError::Unavailable(format!(
                "the registry's NATS link is {state}: try again shortly"
            ))
        })
    }
}

/// Answers `error` at once, as a backend call does.
fn refused<T: Send + 'static>(error: BackendError) -> BoxFuture<'static, Result<T, BackendError>> {
    futures::future::ready(Err(error)).boxed()
}

/// Machines in machine-number order: shorter ids first, then by id.
fn machine_order(id: &str) -> (usize, String) {
    (id.len(), id.to_owned())
}

impl NatsBackend {
    fn registered_of(
        &self,
        model: ModelUuid,
    ) -> impl Future<Output = Result<Vec<(String, StoredMachine)>, BackendError>> + use<> {
        let store = self.store.clone();
        async move {
            let prefix = format!("m.{model}.");
            let mut machines: Vec<(String, StoredMachine)> =
                latest(&store, &format!("{prefix}>")).await?;
            for (key, _) in &mut machines {
                *key = key.trim_start_matches(&prefix).to_owned();
            }
            machines.sort_by_key(|(id, _)| machine_order(id));
            Ok(machines)
        }
    }
}

impl RegistryBackend for NatsBackend {
    fn put(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        registration: Registration,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<PutOutcome, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let (store, versions) = (self.store.clone(), self.versions.clone());
        async move {
            let key = machine_key(model, &tag);
            for _ in 0..ATTEMPTS {
                let stored: Read<StoredMachine> = read(&store, &key).await?;
                let (doc, outcome) = match &stored.value {
                    None => {
                        let incarnation = next_incarnation(&store).await?;
                        let doc =
                            StoredMachine::new(&tag, incarnation, &registration, to_millis(at));
                        (doc, PutOutcome::Created)
                    }
                    Some(old) => {
                        let before = old.registered(&key)?.registration;
                        if before.replaced_by(&registration) {
                            let incarnation = next_incarnation(&store).await?;
                            let doc =
                                StoredMachine::new(&tag, incarnation, &registration, to_millis(at));
                            (doc, PutOutcome::Replaced)
                        } else if before == registration {
                            return Ok(PutOutcome::Unchanged);
                        } else {
                            let mut doc =
                                StoredMachine::new(&tag, old.incarnation, &registration, 0);
                            doc.registered_at = old.registered_at;
                            (doc, PutOutcome::Updated)
                        }
                    }
                };
                if write(&store, &key, &doc, stored.revision).await? {
                    versions.bump(model);
                    return Ok(outcome);
                }
            }
            Err(contended(&key))
        }
        .boxed()
    }

    fn delete(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let (store, versions) = (self.store.clone(), self.versions.clone());
        async move {
            let key = machine_key(model, &tag);
            for _ in 0..ATTEMPTS {
                let stored: Read<StoredMachine> = read(&store, &key).await?;
                if stored.value.is_none() {
                    return Ok(false);
                }
                // A revision that moved meanwhile refuses the delete; read
                // again and decide anew.
                if store
                    .delete_expect_revision(&key, Some(stored.revision))
                    .await
                    .is_ok()
                {
                    // The record goes with it; one left behind by a racing
                    // poll is of an incarnation that never comes back.
                    let _ = store.delete(record_key(model, &tag)).await;
                    versions.bump(model);
                    return Ok(true);
                }
            }
            Err(contended(&key))
        }
        .boxed()
    }

    fn get(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<Option<MachineRecord>, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let store = self.store.clone();
        async move {
            let key = machine_key(model, &tag);
            let stored: Read<StoredMachine> = read(&store, &key).await?;
            let Some(machine) = stored.value else {
                return Ok(None);
            };
            let rkey = record_key(model, &tag);
            let record: Read<StoredRecord> = read(&store, &rkey).await?;
            Ok(Some(merge(&key, machine, record.value, &rkey)?))
        }
        .boxed()
    }

    fn list(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<MachineRecord>, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let machines = self.registered_of(model);
        let store = self.store.clone();
        async move {
            let machines = machines.await?;
            let prefix = format!("r.{model}.");
            let records: HashMap<String, StoredRecord> = latest(&store, &format!("{prefix}>"))
                .await?
                .into_iter()
                .map(|(key, record)| (key.trim_start_matches(&prefix).to_owned(), record))
                .collect();
            machines
                .into_iter()
                .map(|(id, machine)| {
                    let record = records.get(&id).cloned();
                    merge(
                        &format!("m.{model}.{id}"),
                        machine,
                        record,
                        &format!("{prefix}{id}"),
                    )
                })
                .collect()
        }
        .boxed()
    }

    fn registrations(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<Registered>, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let machines = self.registered_of(model);
        async move {
            machines
                .await?
                .into_iter()
                .map(|(id, machine)| machine.registered(&format!("m.{model}.{id}")))
                .collect()
        }
        .boxed()
    }

    fn record_status(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        status: InstanceStatusInfo,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let store = self.store.clone();
        async move {
            let recorded = record(&store, model, &tag, incarnation, |record| {
                record.instance_status = status.status.to_string();
                record.instance_message = status.message.clone();
                record.recorded_at = Some(to_millis(at));
            })
            .await?;
            Ok(recorded.is_some())
        }
        .boxed()
    }

    fn record_network(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        interfaces: Vec<NetworkInterface>,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<Option<AddressesChanged>, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let store = self.store.clone();
        async move {
            let addresses = addresses_of(&interfaces);
            let recorded = record(&store, model, &tag, incarnation, |record| {
                record.addresses = addresses.clone();
                record.interfaces = interfaces.clone();
                record.recorded_at = Some(to_millis(at));
            })
            .await?;
            Ok(recorded.map(|before| {
                let changed = before.addresses != addresses;
                (addresses, changed)
            }))
        }
        .boxed()
    }

    fn credential(&self, model: ModelUuid) -> BoxFuture<'static, Result<Credential, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let store = self.store.clone();
        async move {
            let stored: Read<StoredCredential> = read(&store, &credential_key(model)).await?;
            Ok(stored
                .value
                .map_or_else(Credential::default, |c| Credential {
                    valid: c.valid,
                    reason: c.reason,
                    changed_at: c.changed_at.map(from_millis),
                }))
        }
        .boxed()
    }

    fn set_credential(
        &self,
        model: ModelUuid,
        valid: bool,
        reason: String,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        if let Some(error) = self.unavailable() {
            return refused(error);
        }
        let (store, versions) = (self.store.clone(), self.versions.clone());
        async move {
            let key = credential_key(model);
            for _ in 0..ATTEMPTS {
                let stored: Read<StoredCredential> = read(&store, &key).await?;
                if stored.value.as_ref().is_none_or(|c| c.valid) == valid {
                    return Ok(false);
                }
                let doc = StoredCredential {
                    valid,
                    reason: if valid { String::new() } else { reason.clone() },
                    changed_at: Some(to_millis(at)),
                };
                if write(&store, &key, &doc, stored.revision).await? {
                    versions.bump(model);
                    return Ok(true);
                }
            }
            Err(contended(&key))
        }
        .boxed()
    }

    fn version(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.versions.subscribe(model)
    }

    fn set_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
        hash: PasswordHash,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let (store, feed) = (self.store.clone(), self.passwords.clone());
        async move {
            let had = passwords::set(&store, model, &agent, &hash, at).await?;
            // The other nodes hear it from the bucket; this one at once.
            feed.changed(model, agent);
            Ok(had)
        }
        .boxed()
    }

    fn delete_password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        let (store, feed) = (self.store.clone(), self.passwords.clone());
        async move {
            let had = passwords::delete(&store, model, &agent).await?;
            if had {
                feed.changed(model, agent);
            }
            Ok(had)
        }
        .boxed()
    }

    fn password(
        &self,
        model: ModelUuid,
        agent: AgentTag,
    ) -> BoxFuture<'static, Result<Option<PasswordHash>, BackendError>> {
        let store = self.store.clone();
        async move { passwords::get(&store, model, &agent).await }.boxed()
    }

    fn password_changes(&self) -> broadcast::Receiver<PasswordChange> {
        self.passwords.subscribe()
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// Changes what is recorded of `tag`'s `incarnation` with `change`;
/// answers what was recorded before, or `None`, writing nothing, when that
/// incarnation is no longer registered. Both are checked again on every
/// attempt, after the record is read: a write that lost a race to the
/// machine's next registration never writes over the new incarnation's
/// record.
async fn record(
    store: &kv::Store,
    model: ModelUuid,
    tag: &MachineTag,
    incarnation: u64,
    mut change: impl FnMut(&mut StoredRecord),
) -> Result<Option<StoredRecord>, BackendError> {
    let key = record_key(model, tag);
    for _ in 0..ATTEMPTS {
        let stored: Read<StoredRecord> = read(store, &key).await?;
        if stored
            .value
            .as_ref()
            .is_some_and(|r| r.incarnation > incarnation)
        {
            return Ok(None);
        }
        let machine: Read<StoredMachine> = read(store, &machine_key(model, tag)).await?;
        if machine.value.is_none_or(|m| m.incarnation != incarnation) {
            return Ok(None);
        }
        let before = stored
            .value
            .filter(|r| r.incarnation == incarnation)
            .unwrap_or_else(|| StoredRecord::empty(incarnation));
        let mut after = before.clone();
        change(&mut after);
        if write(store, &key, &after, stored.revision).await? {
            return Ok(Some(before));
        }
    }
    Err(contended(&key))
}
