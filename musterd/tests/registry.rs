//! The machine registry's storage through its public face (docs/spec.md
//! §9.1, §9.2, §9.5, §9.7): what survives a restart, concurrent writers,
//! bad bodies, and a full or locked database.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use muster::error::ErrorKind;
use muster::model::{CredentialApi, Life, MachineStatus, ModelFacade};
use muster::provider::{
    Address, AddressScope, InstanceId, InstanceStatus, InstanceStatusInfo, NetworkInterface,
};
use muster_registry::{MachineRecord, Recorded, Registration, Registry, SqliteOptions};
use support::registry::{START, clock, file, interface, logger, memory, model, next, put, tag};

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
