//! What the registry's bucket holds, key by key, and the reads and
//! revision-checked writes every operation is made of.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, ReplayPolicy, pull};
use async_nats::jetstream::kv;
use futures::StreamExt;
use muster::model::{Life, MachineStatus};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface};
use serde::{Deserialize, Serialize};

use muster_registry::{BackendError, MachineRecord, Recorded, Registered, Registration};

/// How many times a write reads again after finding another revision
/// before it gives up: only a key written this often at once runs out.
pub(super) const ATTEMPTS: usize = 64;

/// How long a listing's consumer lives on the server once unused, should
/// the listing not delete it.
const LISTING_IDLE: Duration = Duration::from_secs(30);

/// How long one try at making a listing's consumer may take.
const LISTING_TRY: Duration = Duration::from_secs(2);

/// How many tries a listing makes.
const LISTING_TRIES: usize = 5;

pub(super) fn machine_key(model: ModelUuid, tag: &MachineTag) -> String {
    format!("m.{model}.{}", tag.id())
}

pub(super) fn record_key(model: ModelUuid, tag: &MachineTag) -> String {
    format!("r.{model}.{}", tag.id())
}

pub(super) fn credential_key(model: ModelUuid) -> String {
    format!("c.{model}")
}

pub(super) const INCARNATIONS: &str = "incarnations";

/// A time as stored: milliseconds since the Unix epoch.
pub(super) fn to_millis(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

pub(super) fn storage(e: impl std::fmt::Display) -> BackendError {
    BackendError::Storage(e.to_string())
}

pub(super) fn corrupt(key: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Corrupt(format!("{key}: {e}"))
}

/// A machine's registration as stored under `m.MODEL.ID`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredMachine {
    pub(super) tag: String,
    pub(super) incarnation: u64,
    pub(super) instance_id: Option<String>,
    pub(super) life: String,
    pub(super) agent_status: String,
    pub(super) manual: bool,
    pub(super) registered_at: u64,
}

impl StoredMachine {
    pub(super) fn new(
        tag: &MachineTag,
        incarnation: u64,
        registration: &Registration,
        at: u64,
    ) -> Self {
        StoredMachine {
            tag: tag.to_string(),
            incarnation,
            instance_id: registration
                .instance_id
                .as_ref()
                .map(|id| id.as_str().to_owned()),
            life: registration.life.as_str().to_owned(),
            agent_status: registration.agent_status.as_str().to_owned(),
            manual: registration.manual,
            registered_at: at,
        }
    }

    pub(super) fn registered(&self, key: &str) -> Result<Registered, BackendError> {
        Ok(Registered {
            tag: self.tag.parse().map_err(|e| corrupt(key, e))?,
            incarnation: self.incarnation,
            registration: Registration {
                instance_id: self.instance_id.clone().map(InstanceId::from),
                life: self.life.parse::<Life>().map_err(|e| corrupt(key, e))?,
                agent_status: self
                    .agent_status
                    .parse::<MachineStatus>()
                    .map_err(|e| corrupt(key, e))?,
                manual: self.manual,
            },
        })
    }
}

/// What the pollers recorded, as stored under `r.MODEL.ID`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredRecord {
    pub(super) incarnation: u64,
    pub(super) instance_status: String,
    pub(super) instance_message: String,
    pub(super) addresses: Vec<Address>,
    pub(super) interfaces: Vec<NetworkInterface>,
    pub(super) recorded_at: Option<u64>,
}

impl StoredRecord {
    pub(super) fn empty(incarnation: u64) -> Self {
        StoredRecord {
            incarnation,
            instance_status: InstanceStatus::Pending.to_string(),
            instance_message: String::new(),
            addresses: Vec::new(),
            interfaces: Vec::new(),
            recorded_at: None,
        }
    }

    pub(super) fn recorded(&self, key: &str) -> Result<Recorded, BackendError> {
        let status = self
            .instance_status
            .parse::<InstanceStatus>()
            .map_err(|e| corrupt(key, e))?;
        Ok(Recorded {
            instance_status: InstanceStatusInfo::new(status, self.instance_message.clone()),
            addresses: self.addresses.clone(),
            interfaces: self.interfaces.clone(),
            recorded_at: self.recorded_at.map(from_millis),
        })
    }
}

/// A model's credential as stored under `c.MODEL`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredCredential {
    pub(super) valid: bool,
    pub(super) reason: String,
    pub(super) changed_at: Option<u64>,
}

/// A key's value and the revision to expect when writing it (0: never
/// written, or gone).
pub(super) struct Read<T> {
    pub(super) value: Option<T>,
    pub(super) revision: u64,
}

pub(super) async fn read<T: for<'de> Deserialize<'de>>(
    store: &kv::Store,
    key: &str,
) -> Result<Read<T>, BackendError> {
    let entry = store.entry(key.to_owned()).await.map_err(storage)?;
    let Some(entry) = entry else {
        return Ok(Read {
            value: None,
            revision: 0,
        });
    };
    let value = match entry.operation {
        kv::Operation::Put => {
            Some(serde_json::from_slice(&entry.value).map_err(|e| corrupt(key, e))?)
        }
        kv::Operation::Delete | kv::Operation::Purge => None,
    };
    Ok(Read {
        value,
        revision: entry.revision,
    })
}

/// Writes `value` under `key` if its revision is still `revision`; false
/// when another write came first.
pub(super) async fn write<T: Serialize>(
    store: &kv::Store,
    key: &str,
    value: &T,
    revision: u64,
) -> Result<bool, BackendError> {
    let bytes = serde_json::to_vec(value).map_err(storage)?;
    match store.update(key, bytes.into(), revision).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
        Err(e) => Err(storage(e)),
    }
}

pub(super) fn contended(key: &str) -> BackendError {
    BackendError::Storage(format!(
        "{key}: written by others {ATTEMPTS} times while this write was being decided"
    ))
}

/// A fresh incarnation, never given out before. A bucket's first one is
/// the wall clock's milliseconds, not 1: a bucket deleted and made again
/// gives out incarnations above every one the old bucket gave (fewer than
/// one a millisecond), so a handle of an old machine never matches a new
/// registration.
pub(super) async fn next_incarnation(store: &kv::Store) -> Result<u64, BackendError> {
    for _ in 0..ATTEMPTS {
        let last: Read<u64> = read(store, INCARNATIONS).await?;
        let next = last.value.unwrap_or_else(|| to_millis(SystemTime::now())) + 1;
        if write(store, INCARNATIONS, &next, last.revision).await? {
            return Ok(next);
        }
    }
    Err(contended(INCARNATIONS))
}

/// Every current value under `filter` (`m.MODEL.>`), by key: read with a
/// pull consumer, each batch asked for, so that nothing is pushed before
/// this node listens (a push consumer's first messages can be lost while
/// its interest crosses the NATS cluster's routes).
pub(super) async fn latest<T: for<'de> Deserialize<'de>>(
    store: &kv::Store,
    filter: &str,
) -> Result<Vec<(String, T)>, BackendError> {
    let prefix = format!("$KV.{}.", store.name);
    let config = pull::Config {
        filter_subject: format!("{prefix}{filter}"),
        deliver_policy: DeliverPolicy::LastPerSubject,
        ack_policy: AckPolicy::None,
        replay_policy: ReplayPolicy::Instant,
        inactive_threshold: LISTING_IDLE,
        memory_storage: true,
        ..Default::default()
    };
    // NATS 2.9 may place the consumer on a server of the stream that is
    // down, and then never answers: a try cut short lands elsewhere.
    let mut tries = 0;
    let consumer = loop {
        tries += 1;
        let create = store.stream.create_consumer(config.clone());
        match tokio::time::timeout(LISTING_TRY, create).await {
            Ok(Ok(consumer)) => break consumer,
            Ok(Err(e)) if tries >= LISTING_TRIES => return Err(storage(e)),
            Err(_) if tries >= LISTING_TRIES => {
                return Err(storage(format!(
                    "listing {filter}: no consumer made in {LISTING_TRIES} tries"
                )));
            }
            _ => {}
        }
    };
    let info = consumer.cached_info();
    let (total, name) = (info.num_pending as usize, info.name.clone());
    let mut values = Vec::new();
    let mut seen = 0;
    while seen < total {
        let mut batch = consumer
            .fetch()
            .max_messages((total - seen).min(1024))
            .messages()
            .await
            .map_err(storage)?;
        let mut got = 0;
        while let Some(message) = batch.next().await {
            let message = message.map_err(storage)?;
            got += 1;
            let key = message
                .subject
                .strip_prefix(&prefix)
                .unwrap_or(&message.subject)
                .to_owned();
            let deleted = message
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .is_some_and(|op| op.as_str() != "PUT");
            if !deleted {
                let value =
                    serde_json::from_slice(&message.payload).map_err(|e| corrupt(&key, e))?;
                values.push((key, value));
            }
        }
        if got == 0 {
            break;
        }
        seen += got;
    }
    // Gone by itself once idle, should this fail.
    let _ = store.stream.delete_consumer(&name).await;
    Ok(values)
}

/// A machine with what was recorded of its incarnation.
pub(super) fn merge(
    key: &str,
    machine: StoredMachine,
    record: Option<StoredRecord>,
    record_key: &str,
) -> Result<MachineRecord, BackendError> {
    let registered = machine.registered(key)?;
    let recorded = match record {
        Some(record) if record.incarnation == machine.incarnation => record.recorded(record_key)?,
        _ => Recorded::default(),
    };
    Ok(MachineRecord {
        tag: registered.tag,
        incarnation: registered.incarnation,
        registration: registered.registration,
        registered_at: from_millis(machine.registered_at),
        recorded,
    })
}
