//! What the machine registry's tests share: registries on a clock that
//! stands still, machines, interfaces, and what the HTTP layer does with a
//! registration.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use futures::StreamExt;
use muster::clock::ManualClock;
use muster::model::MachineBatches;
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{Address, AddressScope, InstanceId, NetworkInterface};
use muster_registry::{
    BodyError, PutOutcome, Registration, Registry, SqliteOptions, parse_machine_id,
    parse_registration,
};
use slog::{Discard, Logger, o};

/// When the registries' clocks stand.
pub const START: Duration = Duration::from_secs(1_700_000_000);

pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(UNIX_EPOCH + START))
}

pub fn logger() -> Logger {
    Logger::root(Discard, o!())
}

pub fn model() -> ModelUuid {
    ModelUuid::from_u128(1)
}

pub fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

pub fn memory() -> Registry {
    Registry::in_memory(clock(), logger()).unwrap()
}

pub fn file(path: &Path, options: &SqliteOptions) -> Registry {
    Registry::open(path, options, clock(), logger()).unwrap()
}

pub fn provisioned(id: &str) -> Registration {
    Registration {
        instance_id: Some(InstanceId::from(id)),
        ..Registration::default()
    }
}

pub fn interface(index: u32, address: &str) -> NetworkInterface {
    NetworkInterface {
        device_index: index,
        interface_name: format!("eth{index}"),
        mac_address: format!("02:00:00:00:00:{index:02x}"),
        provider_id: format!("eni-{index}"),
        subnet_id: "subnet-1".into(),
        addresses: vec![Address::new(address, AddressScope::CloudLocal)],
    }
}

/// What the HTTP layer does with `PUT /api/models/{uuid}/machines/{id}`.
pub async fn put(registry: &Registry, id: &str, body: &[u8]) -> Result<PutOutcome, BodyError> {
    let tag = parse_machine_id(id)?;
    let registration = parse_registration(body)?;
    Ok(registry.register(model(), tag, registration).await.unwrap())
}

/// The next batch, if one comes within a minute of virtual time.
pub async fn next(batches: &mut MachineBatches) -> Option<Vec<MachineTag>> {
    tokio::time::timeout(Duration::from_secs(60), batches.next())
        .await
        .ok()
        .map(|batch| batch.expect("the watch goes on").expect("a batch"))
}
