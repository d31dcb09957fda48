//! The machine registry through its public face (docs/spec.md §9): what
//! the HTTP layer registers, what the poller's model facade answers and
//! writes, what survives a restart, and what a failing disk does.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use muster::clock::ManualClock;
use muster::error::ErrorKind;
use muster::model::{CredentialApi, Life, MachineBatches, MachineStatus, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{
    Address, AddressScope, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface,
};
use musterd::registry::{
    BodyError, MachineRecord, PutOutcome, Recorded, Registration, Registry, SqliteOptions,
    parse_machine_id, parse_registration,
};
use slog::{Discard, Logger, o};

const START: Duration = Duration::from_secs(1_700_000_000);

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(UNIX_EPOCH + START))
}

fn logger() -> Logger {
    Logger::root(Discard, o!())
}

fn model() -> ModelUuid {
    ModelUuid::from_u128(1)
}

fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

fn memory() -> Registry {
    Registry::in_memory(clock(), logger()).unwrap()
}

fn file(path: &Path, options: &SqliteOptions) -> Registry {
    Registry::open(path, options, clock(), logger()).unwrap()
}

fn provisioned(id: &str) -> Registration {
    Registration {
        instance_id: Some(InstanceId::from(id)),
        ..Registration::default()
    }
}

fn interface(index: u32, address: &str) -> NetworkInterface {
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
async fn put(registry: &Registry, id: &str, body: &[u8]) -> Result<PutOutcome, BodyError> {
    let tag = parse_machine_id(id)?;
    let registration = parse_registration(body)?;
    Ok(registry.register(model(), tag, registration).await.unwrap())
}

/// The next batch, if one comes within a minute of virtual time.
async fn next(batches: &mut MachineBatches) -> Option<Vec<MachineTag>> {
    tokio::time::timeout(Duration::from_secs(60), batches.next())
        .await
        .ok()
        .map(|batch| batch.expect("the watch goes on").expect("a batch"))
}

#[tokio::test(start_paused = true)]
async fn registered_machines_come_in_the_first_batch_with_their_fields() {
    let registry = memory();
    put(
        &registry,
        "0",
        br#"{"instance_id": "i-0", "agent_status": "started"}"#,
    )
    .await
    .unwrap();
    put(&registry, "1", b"{}").await.unwrap();
    put(
        &registry,
        "10",
        br#"{"manual": true, "instance_id": "manual:10.0.0.9"}"#,
    )
    .await
    .unwrap();
    registry
        .register(ModelUuid::from_u128(2), tag(5), Registration::default())
        .await
        .unwrap();
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    assert_eq!(
        next(&mut batches).await,
        Some(vec![tag(0), tag(1), tag(10)])
    );

    let machine = facade.machine(&tag(0)).await.unwrap();
    assert_eq!(machine.tag(), tag(0));
    assert_eq!(
        machine.instance_id().await.unwrap(),
        InstanceId::from("i-0")
    );
    assert_eq!(machine.life(), Life::Alive);
    assert_eq!(machine.status().await.unwrap(), MachineStatus::Started);
    assert!(!machine.is_manual().await.unwrap());
    assert_eq!(
        machine.instance_status().await.unwrap(),
        InstanceStatusInfo::new(InstanceStatus::Pending, "")
    );
    assert!(
        facade
            .machine(&tag(10))
            .await
            .unwrap()
            .is_manual()
            .await
            .unwrap()
    );

    let unprovisioned = facade.machine(&tag(1)).await.unwrap();
    let error = unprovisioned.instance_id().await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotProvisioned);
    let error = facade.machine(&tag(5)).await.err().unwrap();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(
        error.to_string(),
        format!("machine 5 of model {} not found", model())
    );
}

#[tokio::test(start_paused = true)]
async fn a_change_of_life_agent_status_or_instance_is_a_batch_naming_the_machine() {
    let registry = memory();
    put(&registry, "0", br#"{"instance_id": "i-0"}"#)
        .await
        .unwrap();
    put(&registry, "1", b"{}").await.unwrap();
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    next(&mut batches).await.unwrap();
    let machine = facade.machine(&tag(1)).await.unwrap();

    put(&registry, "1", br#"{"life": "dying"}"#).await.unwrap();
    assert_eq!(next(&mut batches).await, Some(vec![tag(1)]));
    machine.refresh().await.unwrap();
    assert_eq!(machine.life(), Life::Dying, "refresh re-reads the life");

    put(
        &registry,
        "0",
        br#"{"instance_id": "i-0", "agent_status": "started"}"#,
    )
    .await
    .unwrap();
    assert_eq!(next(&mut batches).await, Some(vec![tag(0)]));
    put(
        &registry,
        "1",
        br#"{"life": "dying", "instance_id": "i-1"}"#,
    )
    .await
    .unwrap();
    assert_eq!(next(&mut batches).await, Some(vec![tag(1)]));
    assert_eq!(
        machine.instance_id().await.unwrap(),
        InstanceId::from("i-1")
    );
    put(&registry, "2", b"{}").await.unwrap();
    assert_eq!(next(&mut batches).await, Some(vec![tag(2)]));

    // Neither the same registration again nor a poll's record is a change.
    let outcome = put(
        &registry,
        "1",
        br#"{"life": "dying", "instance_id": "i-1"}"#,
    )
    .await;
    assert_eq!(outcome, Ok(PutOutcome::Unchanged));
    machine
        .set_instance_status(InstanceStatus::Running, String::new())
        .await
        .unwrap();
    machine
        .set_provider_network_config(vec![interface(0, "10.0.0.1")])
        .await
        .unwrap();
    assert_eq!(next(&mut batches).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_registrations_makes_few_batches() {
    let registry = memory();
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    assert_eq!(next(&mut batches).await, Some(Vec::new()));

    let puts = (0..200).map(|n| {
        let registry = registry.clone();
        async move {
            let id = format!("i-{n}");
            registry.register(model(), tag(n), provisioned(&id)).await
        }
    });
    for outcome in futures::future::join_all(puts).await {
        assert_eq!(outcome, Ok(PutOutcome::Created));
    }
    let mut seen = Vec::new();
    let mut count = 0;
    while let Some(batch) = next(&mut batches).await {
        count += 1;
        seen.extend(batch);
    }
    seen.sort();
    let mut all: Vec<MachineTag> = (0..200).map(tag).collect();
    all.sort();
    assert_eq!(seen, all);
    assert!(count <= 2, "200 registrations made {count} batches");
}

#[tokio::test(start_paused = true)]
async fn a_removed_machine_is_a_batch_and_then_not_found() {
    let registry = memory();
    put(&registry, "4", br#"{"instance_id": "i-4"}"#)
        .await
        .unwrap();
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    next(&mut batches).await.unwrap();
    let machine = facade.machine(&tag(4)).await.unwrap();

    assert_eq!(registry.remove(model(), tag(4)).await, Ok(true));
    assert_eq!(next(&mut batches).await, Some(vec![tag(4)]));
    let not_found = |e: muster::error::PollError| assert_eq!(e.kind(), ErrorKind::NotFound);
    not_found(machine.refresh().await.unwrap_err());
    not_found(machine.instance_id().await.unwrap_err());
    not_found(machine.instance_status().await.unwrap_err());
    not_found(machine.status().await.unwrap_err());
    not_found(machine.is_manual().await.unwrap_err());
    not_found(
        machine
            .set_instance_status(InstanceStatus::Running, String::new())
            .await
            .unwrap_err(),
    );
    not_found(
        machine
            .set_provider_network_config(Vec::new())
            .await
            .unwrap_err(),
    );
    not_found(facade.machine(&tag(4)).await.err().unwrap());
    assert_eq!(registry.remove(model(), tag(4)).await, Ok(false));
    assert_eq!(next(&mut batches).await, None);
}

#[tokio::test(start_paused = true)]
async fn a_machine_registered_anew_is_reported_gone_then_new() {
    let registry = memory();
    put(&registry, "3", br#"{"instance_id": "i-old"}"#)
        .await
        .unwrap();
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    next(&mut batches).await.unwrap();
    let old = facade.machine(&tag(3)).await.unwrap();
    old.set_instance_status(InstanceStatus::Running, String::new())
        .await
        .unwrap();

    let outcome = put(&registry, "3", br#"{"instance_id": "i-new"}"#).await;
    assert_eq!(outcome, Ok(PutOutcome::Replaced));
    // Named twice: the poller's watcher finds the old machine gone, then
    // the new one.
    assert_eq!(next(&mut batches).await, Some(vec![tag(3)]));
    assert_eq!(old.refresh().await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(next(&mut batches).await, Some(vec![tag(3)]));
    let new = facade.machine(&tag(3)).await.unwrap();
    assert_eq!(new.instance_id().await.unwrap(), InstanceId::from("i-new"));
    assert_eq!(
        new.instance_status().await.unwrap().status,
        InstanceStatus::Pending,
        "nothing recorded for the old instance carries over"
    );
    assert_eq!(next(&mut batches).await, None);

    // Removed and registered again at once: the same.
    registry.remove(model(), tag(3)).await.unwrap();
    put(&registry, "3", br#"{"instance_id": "i-new"}"#)
        .await
        .unwrap();
    assert_eq!(next(&mut batches).await, Some(vec![tag(3)]));
    assert_eq!(new.refresh().await.unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(next(&mut batches).await, Some(vec![tag(3)]));
    assert_eq!(next(&mut batches).await, None);
}

#[tokio::test(start_paused = true)]
async fn poll_results_and_the_credential_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    let interfaces = vec![interface(0, "10.0.0.7"), interface(1, "10.0.1.7")];
    let written = {
        let clock = clock();
        let registry =
            Registry::open(&path, &SqliteOptions::default(), clock.clone(), logger()).unwrap();
        put(
            &registry,
            "7",
            br#"{"instance_id": "i-7", "agent_status": "started"}"#,
        )
        .await
        .unwrap();
        let facade = registry.model(model());
        let machine = facade.machine(&tag(7)).await.unwrap();
        clock.advance(Duration::from_secs(30));
        machine
            .set_instance_status(InstanceStatus::Running, "up".into())
            .await
            .unwrap();
        let (addresses, changed) = machine
            .set_provider_network_config(interfaces.clone())
            .await
            .unwrap();
        assert!(changed);
        assert_eq!(
            addresses,
            [
                Address::new("10.0.0.7", AddressScope::CloudLocal),
                Address::new("10.0.1.7", AddressScope::CloudLocal)
            ]
        );
        let (_, changed) = machine
            .set_provider_network_config(interfaces.clone())
            .await
            .unwrap();
        assert!(!changed, "the same addresses again");
        facade
            .invalidate_model_credential("cloud denied access: expired".into())
            .await
            .unwrap();
        registry.machine(model(), tag(7)).await.unwrap().unwrap()
    };

    let registry = file(&path, &SqliteOptions::default());
    let read = registry.machine(model(), tag(7)).await.unwrap().unwrap();
    assert_eq!(read, written);
    assert_eq!(
        read.recorded,
        Recorded {
            instance_status: InstanceStatusInfo::new(InstanceStatus::Running, "up"),
            addresses: vec![
                Address::new("10.0.0.7", AddressScope::CloudLocal),
                Address::new("10.0.1.7", AddressScope::CloudLocal)
            ],
            interfaces,
            recorded_at: Some(UNIX_EPOCH + START + Duration::from_secs(30)),
        }
    );
    assert_eq!(read.registration.agent_status, MachineStatus::Started);
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    assert_eq!(next(&mut batches).await, Some(vec![tag(7)]));
    let machine = facade.machine(&tag(7)).await.unwrap();
    assert_eq!(
        machine.instance_status().await.unwrap(),
        InstanceStatusInfo::new(InstanceStatus::Running, "up")
    );
    let credential = registry.credential(model()).await.unwrap();
    assert!(!credential.valid);
    assert_eq!(credential.reason, "cloud denied access: expired");
    let mut validity = facade.watch_credential_validity();
    assert_eq!(validity.next().await, Some(false));
}

#[tokio::test(start_paused = true)]
async fn the_credential_watch_streams_each_change_of_validity() {
    let registry = memory();
    let facade = registry.model(model());
    let mut validity = facade.watch_credential_validity();
    assert_eq!(validity.next().await, Some(true));
    facade
        .invalidate_model_credential("denied".into())
        .await
        .unwrap();
    assert_eq!(validity.next().await, Some(false));
    // Invalid again, or another model's change: nothing to say.
    facade
        .invalidate_model_credential("denied again".into())
        .await
        .unwrap();
    let other = ModelUuid::from_u128(2);
    registry
        .set_credential_valid(other, false, "elsewhere".into())
        .await
        .unwrap();
    assert_eq!(
        registry
            .set_credential_valid(model(), true, String::new())
            .await,
        Ok(true)
    );
    assert_eq!(validity.next().await, Some(true));
    let quiet = tokio::time::timeout(Duration::from_secs(60), validity.next()).await;
    assert!(quiet.is_err(), "no change, no value");
}

#[tokio::test]
async fn concurrent_writers_leave_one_consistent_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    // Two connections to one file, as two processes would have.
    let registries = [
        file(&path, &SqliteOptions::default()),
        file(&path, &SqliteOptions::default()),
    ];
    let writes: Vec<Registration> = (0..64u32)
        .map(|n| Registration {
            instance_id: (n % 4 != 0).then(|| InstanceId::from(format!("i-{n}"))),
            life: Life::ALL[n as usize % 3],
            agent_status: MachineStatus::ALL[n as usize % 5],
            manual: n % 2 == 0,
        })
        .collect();
    let tasks: Vec<_> = writes
        .iter()
        .enumerate()
        .map(|(n, registration)| {
            let registry = registries[n % 2].clone();
            let registration = registration.clone();
            tokio::spawn(async move { registry.register(model(), tag(9), registration).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let rows: Vec<MachineRecord> = registries[0].machines(model()).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert!(
        writes.contains(&rows[0].registration),
        "{:?} is none of the writes",
        rows[0].registration
    );
    assert_eq!(registries[1].machines(model()).await.unwrap(), rows);
}

#[tokio::test]
async fn bad_bodies_are_refused_naming_the_field_and_change_nothing() {
    let registry = memory();
    put(
        &registry,
        "2",
        br#"{"instance_id": "i-2", "life": "dying"}"#,
    )
    .await
    .unwrap();
    let before = registry.machines(model()).await.unwrap();
    let mut version = registry.backend().version(model());
    version.borrow_and_update();

    let megabyte = format!(r#"{{"instance_id": "{}"}}"#, "i".repeat(1 << 20));
    let cases: Vec<(&str, Vec<u8>, Option<&str>)> = vec![
        ("2", b"instance_id=i-2".to_vec(), None),
        (
            "2",
            br#"{"instance_id": "i-2", "colour": "red"}"#.to_vec(),
            Some("colour"),
        ),
        ("2", br#"{"life": "undead"}"#.to_vec(), Some("life")),
        ("2", br#"{"instance_id": 2}"#.to_vec(), Some("instance_id")),
        ("2", br#"{"instance_id": ""}"#.to_vec(), Some("instance_id")),
        (
            "2",
            br#"{"agent_status": "running"}"#.to_vec(),
            Some("agent_status"),
        ),
        ("2", br#"{"manual": "no"}"#.to_vec(), Some("manual")),
        ("2", megabyte.into_bytes(), None),
        ("2/lxd/0", b"{}".to_vec(), Some("id")),
        ("two", b"{}".to_vec(), Some("id")),
    ];
    for (id, body, field) in cases {
        let error = put(&registry, id, &body).await.unwrap_err();
        assert_eq!(error.field.as_deref(), field, "{error}");
        assert!(!error.error.is_empty());
    }
    assert_eq!(registry.machines(model()).await.unwrap(), before);
    assert!(!version.has_changed().unwrap());
}

#[tokio::test]
async fn a_full_database_fails_the_pollers_write_and_keeps_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        max_size: Some(48 * 1024),
        ..SqliteOptions::default()
    };
    let registry = file(&dir.path().join("muster.db"), &options);
    put(&registry, "0", br#"{"instance_id": "i-0"}"#)
        .await
        .unwrap();
    let machine = registry.model(model()).machine(&tag(0)).await.unwrap();
    let before = registry.machine(model(), tag(0)).await.unwrap();

    // Many interfaces: more than the database has room for.
    let interfaces: Vec<NetworkInterface> = (0..2_000)
        .map(|n| interface(n, &format!("10.{}.{}.4", n / 256, n % 256)))
        .collect();
    let error = machine
        .set_provider_network_config(interfaces)
        .await
        .unwrap_err();
    let what = format!(
        "recording the network config of machine 0 of model {}",
        model()
    );
    assert_eq!(error.kind(), ErrorKind::Other);
    assert_eq!(
        error.to_string(),
        format!("{what}: database or disk is full")
    );
    let report = registry.report();
    assert_eq!(report.write_failures, 1);
    let failure = report.last_write_error.unwrap();
    assert_eq!(failure.what, what);
    assert_eq!(failure.error, "database or disk is full");
    assert_eq!(failure.at, SystemTime::UNIX_EPOCH + START);
    assert_eq!(registry.machine(model(), tag(0)).await.unwrap(), before);
    // What fits is still written.
    machine
        .set_provider_network_config(vec![interface(0, "10.0.0.4")])
        .await
        .unwrap();
}

#[tokio::test]
async fn a_locked_database_fails_writes_with_a_clear_error_until_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(20),
        ..SqliteOptions::default()
    };
    let registry = file(&path, &options);
    put(&registry, "0", br#"{"instance_id": "i-0"}"#)
        .await
        .unwrap();
    let machine = registry.model(model()).machine(&tag(0)).await.unwrap();

    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let error = machine
        .set_instance_status(InstanceStatus::Running, String::new())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "recording the instance status of machine 0 of model {}: database is locked",
            model()
        )
    );
    let error = registry
        .register(model(), tag(1), Registration::default())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "registering machine 1 of model {}: database is locked",
            model()
        )
    );
    assert_eq!(registry.report().write_failures, 2);
    holder.execute_batch("COMMIT").unwrap();

    machine
        .set_instance_status(InstanceStatus::Running, String::new())
        .await
        .unwrap();
    assert_eq!(
        machine.instance_status().await.unwrap().status,
        InstanceStatus::Running
    );
}
