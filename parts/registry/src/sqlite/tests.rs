use std::time::UNIX_EPOCH;

use muster::model::Life;
use muster::provider::{Address, AddressScope, InstanceId, InstanceStatus};
use rusqlite::Connection;

use super::statements::{from_millis, to_millis};
use super::*;
use crate::Recorded;

fn model() -> ModelUuid {
    ModelUuid::from_u128(1)
}

fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn provisioned(id: &str) -> Registration {
    Registration {
        instance_id: Some(InstanceId::from(id)),
        ..Registration::default()
    }
}

fn interface(address: &str) -> NetworkInterface {
    NetworkInterface {
        device_index: 0,
        interface_name: "eth0".into(),
        addresses: vec![Address::new(address, AddressScope::CloudLocal)],
        ..NetworkInterface::default()
    }
}

fn user_version(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_new_file_gets_the_schema_in_wal_mode_and_a_newer_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    let backend = SqliteBackend::open(&path, &SqliteOptions::default()).unwrap();
    assert_eq!(backend.location(), format!("sqlite:{}", path.display()));
    drop(backend);
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let mode: String = Connection::open(&path)
        .unwrap()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");

    // Opened again, as it is.
    SqliteBackend::open(&path, &SqliteOptions::default()).unwrap();

    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 7)
        .unwrap();
    let error = SqliteBackend::open(&path, &SqliteOptions::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "{}: the registry's schema version is 7, newer than this musterd reads (2)",
            path.display()
        )
    );
    assert_eq!(user_version(&path), 7, "the newer file is left alone");
}

#[test]
fn a_file_that_is_not_a_registry_is_refused_naming_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "x".repeat(4096)).unwrap();
    let error = SqliteBackend::open(&path, &SqliteOptions::default()).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("{}: file is not a database", path.display())
    );

    let error = SqliteBackend::open(dir.path(), &SqliteOptions::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", dir.path().display())),
        "{error}"
    );
    let missing = dir.path().join("no/such/dir/muster.db");
    let error = SqliteBackend::open(&missing, &SqliteOptions::default()).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with(&format!("{}: ", missing.display())),
        "{error}"
    );
}

#[test]
fn another_programs_database_is_refused_naming_its_path_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE users (name TEXT); INSERT INTO users VALUES ('ann');")
        .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();
    let want = format!(
        "{}: not a machine registry musterd wrote (schema version 0, tables: users); \
         left as it is: give [store] path another file",
        path.display()
    );
    let error = SqliteBackend::open(&path, &SqliteOptions::default()).unwrap_err();
    assert_eq!(error.to_string(), want);
    assert_eq!(SqliteBackend::check(&path).unwrap_err().to_string(), want);
    // Not a byte changed: no write-ahead log, no schema version.
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert!(!dir.path().join("app.db-wal").exists());
    assert_eq!(user_version(&path), 0);

    // A file of the registry's version without its tables is not its own.
    let stranger = dir.path().join("stranger.db");
    let conn = Connection::open(&stranger).unwrap();
    conn.execute_batch("CREATE TABLE machines (x); PRAGMA user_version = 1;")
        .unwrap();
    drop(conn);
    let error = SqliteBackend::open(&stranger, &SqliteOptions::default()).unwrap_err();
    assert!(
        error.to_string().contains("tables: none of its own"),
        "{error}"
    );

    // The check writes nothing: a new file is not made, its folder must be
    // there; the registry's own file passes.
    let new = dir.path().join("new.db");
    SqliteBackend::check(&new).unwrap();
    assert!(!new.exists());
    let nowhere = dir.path().join("no/such/muster.db");
    assert_eq!(
        SqliteBackend::check(&nowhere).unwrap_err().to_string(),
        format!(
            "{}: the folder {} does not exist",
            nowhere.display(),
            dir.path().join("no/such").display()
        )
    );
    drop(SqliteBackend::open(&new, &SqliteOptions::default()).unwrap());
    SqliteBackend::check(&new).unwrap();
}

#[tokio::test]
async fn extreme_options_open_without_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    for (n, (busy_timeout, max_size)) in [
        (Duration::MAX, Some(u64::MAX)),
        (Duration::ZERO, Some(0)),
        (Duration::from_nanos(1), Some(1)),
        (LONGEST_BUSY_TIMEOUT + Duration::from_millis(1), None),
    ]
    .into_iter()
    .enumerate()
    {
        let options = SqliteOptions {
            busy_timeout,
            max_size,
        };
        let backend = SqliteBackend::open(&dir.path().join(format!("{n}.db")), &options)
            .unwrap_or_else(|e| panic!("{options:?}: {e}"));
        // A limit is never below the size the new file has, whose pages
        // have room for a first registration.
        let put = backend.put(model(), tag(1), Registration::default(), at(0));
        assert_eq!(put.await, Ok(PutOutcome::Created), "{options:?}");
    }
}

#[tokio::test]
async fn registering_creates_updates_and_replaces() {
    let backend = SqliteBackend::in_memory().unwrap();
    let put = |registration: Registration| backend.put(model(), tag(3), registration, at(0));

    assert_eq!(put(Registration::default()).await, Ok(PutOutcome::Created));
    let first = backend.get(model(), tag(3)).await.unwrap().unwrap();
    assert_eq!(first.tag, tag(3));
    assert_eq!(first.id(), "3");
    assert_eq!(first.registration, Registration::default());
    assert_eq!(first.registered_at, at(0));
    assert_eq!(first.recorded, Recorded::default());

    assert_eq!(
        put(Registration::default()).await,
        Ok(PutOutcome::Unchanged)
    );
    // Provisioning is an update of the same machine.
    assert_eq!(put(provisioned("i-1")).await, Ok(PutOutcome::Updated));
    let status = InstanceStatusInfo::new(InstanceStatus::Running, "up");
    let recorded = backend.record_status(model(), tag(3), first.incarnation, status.clone(), at(5));
    assert_eq!(recorded.await, Ok(true));
    let dying = Registration {
        life: Life::Dying,
        ..provisioned("i-1")
    };
    assert_eq!(put(dying.clone()).await, Ok(PutOutcome::Updated));
    let updated = backend.get(model(), tag(3)).await.unwrap().unwrap();
    assert_eq!(updated.incarnation, first.incarnation);
    assert_eq!(updated.registration, dying);
    assert_eq!(
        updated.recorded.instance_status, status,
        "kept by an update"
    );
    assert_eq!(updated.recorded.recorded_at, Some(at(5)));

    // Another instance: a new machine to the poller, recorded values gone.
    assert_eq!(put(provisioned("i-2")).await, Ok(PutOutcome::Replaced));
    let replaced = backend.get(model(), tag(3)).await.unwrap().unwrap();
    assert!(replaced.incarnation > first.incarnation);
    assert_eq!(replaced.recorded, Recorded::default());
    // Unprovisioned again, or manual: replaced too.
    assert_eq!(put(Registration::default()).await, Ok(PutOutcome::Replaced));
    let manual = Registration {
        manual: true,
        ..Registration::default()
    };
    assert_eq!(put(manual).await, Ok(PutOutcome::Replaced));

    // Removed and registered again: a fresh incarnation, never an old one.
    let last = backend.get(model(), tag(3)).await.unwrap().unwrap();
    assert_eq!(backend.delete(model(), tag(3)).await, Ok(true));
    assert_eq!(backend.delete(model(), tag(3)).await, Ok(false));
    assert_eq!(backend.get(model(), tag(3)).await, Ok(None));
    assert_eq!(put(Registration::default()).await, Ok(PutOutcome::Created));
    let again = backend.get(model(), tag(3)).await.unwrap().unwrap();
    assert!(again.incarnation > last.incarnation);
}

#[tokio::test]
async fn records_for_a_gone_incarnation_write_nothing() {
    let backend = SqliteBackend::in_memory().unwrap();
    backend
        .put(model(), tag(1), provisioned("i-1"), at(0))
        .await
        .unwrap();
    let old = backend.get(model(), tag(1)).await.unwrap().unwrap();
    backend
        .put(model(), tag(1), provisioned("i-9"), at(1))
        .await
        .unwrap();
    let status = InstanceStatusInfo::new(InstanceStatus::Stopped, "");
    let record = backend.record_status(model(), tag(1), old.incarnation, status, at(2));
    assert_eq!(record.await, Ok(false));
    let record = backend.record_network(
        model(),
        tag(1),
        old.incarnation,
        vec![interface("10.0.0.1")],
        at(2),
    );
    assert_eq!(record.await, Ok(None));
    let now = backend.get(model(), tag(1)).await.unwrap().unwrap();
    assert_eq!(now.recorded, Recorded::default());
    // Another model's machine of the same number is another machine.
    let other = ModelUuid::from_u128(2);
    let record = backend.record_status(
        other,
        tag(1),
        now.incarnation,
        InstanceStatusInfo::new(InstanceStatus::Running, ""),
        at(3),
    );
    assert_eq!(record.await, Ok(false));
    assert_eq!(backend.list(other).await, Ok(Vec::new()));
}

#[tokio::test]
async fn network_records_answer_the_addresses_and_whether_they_changed() {
    let backend = SqliteBackend::in_memory().unwrap();
    backend
        .put(model(), tag(1), provisioned("i-1"), at(0))
        .await
        .unwrap();
    let incarnation = backend
        .get(model(), tag(1))
        .await
        .unwrap()
        .unwrap()
        .incarnation;
    let record = |interfaces: Vec<NetworkInterface>, secs| {
        backend.record_network(model(), tag(1), incarnation, interfaces, at(secs))
    };
    let local = Address::new("10.0.0.1", AddressScope::CloudLocal);

    assert_eq!(record(Vec::new(), 1).await, Ok(Some((Vec::new(), false))));
    let interfaces = vec![interface("10.0.0.1"), interface("10.0.0.1")];
    assert_eq!(
        record(interfaces.clone(), 2).await,
        Ok(Some((vec![local.clone()], true)))
    );
    assert_eq!(
        record(interfaces.clone(), 3).await,
        Ok(Some((vec![local.clone()], false)))
    );
    let stored = backend.get(model(), tag(1)).await.unwrap().unwrap();
    assert_eq!(stored.recorded.addresses, vec![local]);
    assert_eq!(stored.recorded.interfaces, interfaces);
    assert_eq!(stored.recorded.recorded_at, Some(at(3)));
}

#[tokio::test]
async fn a_model_lists_in_machine_number_order() {
    let backend = SqliteBackend::in_memory().unwrap();
    for n in [10, 2, 100, 0, 9] {
        backend
            .put(model(), tag(n), Registration::default(), at(0))
            .await
            .unwrap();
    }
    backend
        .put(
            ModelUuid::from_u128(2),
            tag(5),
            Registration::default(),
            at(0),
        )
        .await
        .unwrap();
    let ids: Vec<String> = backend
        .list(model())
        .await
        .unwrap()
        .iter()
        .map(MachineRecord::id)
        .collect();
    assert_eq!(ids, ["0", "2", "9", "10", "100"]);
    let listed = backend.list(model()).await.unwrap();
    let registered: Vec<Registered> = listed
        .into_iter()
        .map(|m| Registered {
            tag: m.tag,
            incarnation: m.incarnation,
            registration: m.registration,
        })
        .collect();
    assert_eq!(backend.registrations(model()).await.unwrap(), registered);
}

#[tokio::test]
async fn the_version_moves_with_registrations_and_credentials_only() {
    let backend = SqliteBackend::in_memory().unwrap();
    let mut version = backend.version(model());
    let mut other = backend.version(ModelUuid::from_u128(2));
    let mut moved = || {
        let changed = version.has_changed().unwrap();
        version.borrow_and_update();
        changed
    };

    backend
        .put(model(), tag(1), provisioned("i-1"), at(0))
        .await
        .unwrap();
    assert!(moved());
    backend
        .put(model(), tag(1), provisioned("i-1"), at(1))
        .await
        .unwrap();
    assert!(!moved(), "an unchanged registration");
    let incarnation = backend
        .get(model(), tag(1))
        .await
        .unwrap()
        .unwrap()
        .incarnation;
    let status = InstanceStatusInfo::new(InstanceStatus::Running, "");
    backend
        .record_status(model(), tag(1), incarnation, status, at(2))
        .await
        .unwrap();
    backend
        .record_network(
            model(),
            tag(1),
            incarnation,
            vec![interface("10.0.0.1")],
            at(2),
        )
        .await
        .unwrap();
    assert!(!moved(), "recorded values");
    backend
        .set_credential(model(), false, "denied".into(), at(3))
        .await
        .unwrap();
    assert!(moved());
    backend
        .set_credential(model(), false, "denied again".into(), at(4))
        .await
        .unwrap();
    assert!(!moved(), "still invalid");
    backend.delete(model(), tag(2)).await.unwrap();
    assert!(!moved(), "nothing removed");
    backend.delete(model(), tag(1)).await.unwrap();
    assert!(moved());
    assert!(!other.has_changed().unwrap(), "another model");
    other.borrow_and_update();
}

#[tokio::test]
async fn a_credential_is_valid_until_invalidated() {
    let backend = SqliteBackend::in_memory().unwrap();
    assert_eq!(backend.credential(model()).await, Ok(Credential::default()));
    let set = |valid, reason: &str, secs| {
        backend.set_credential(model(), valid, reason.to_owned(), at(secs))
    };
    assert_eq!(set(true, "", 1).await, Ok(false));
    assert_eq!(set(false, "cloud denied access", 2).await, Ok(true));
    assert_eq!(set(false, "again", 3).await, Ok(false));
    assert_eq!(
        backend.credential(model()).await,
        Ok(Credential {
            valid: false,
            reason: "cloud denied access".into(),
            changed_at: Some(at(2)),
        })
    );
    assert_eq!(set(true, "ignored", 4).await, Ok(true));
    assert_eq!(
        backend.credential(model()).await,
        Ok(Credential {
            valid: true,
            reason: String::new(),
            changed_at: Some(at(4)),
        })
    );
    assert_eq!(
        backend.credential(ModelUuid::from_u128(2)).await,
        Ok(Credential::default())
    );
}

#[tokio::test]
async fn a_full_database_refuses_writes_and_keeps_what_it_had() {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        max_size: Some(64 * 1024),
        ..SqliteOptions::default()
    };
    let backend = SqliteBackend::open(&dir.path().join("full.db"), &options).unwrap();
    let long_id = "i".repeat(255);
    let mut registered = 0;
    let error = loop {
        let registration = provisioned(&format!("{long_id}{registered}"));
        match backend
            .put(model(), tag(registered), registration, at(0))
            .await
        {
            Ok(_) => registered += 1,
            Err(e) => break e,
        }
        assert!(registered < 10_000, "the size limit never bit");
    };
    assert_eq!(
        error,
        BackendError::Storage("database or disk is full".into())
    );
    assert!(registered > 10, "only {registered} machines fit");
    assert_eq!(
        backend.list(model()).await.unwrap().len(),
        registered as usize
    );
    assert_eq!(backend.get(model(), tag(registered)).await, Ok(None));
}

#[tokio::test]
async fn a_locked_database_fails_writes_after_the_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("locked.db");
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(20),
        ..SqliteOptions::default()
    };
    let backend = SqliteBackend::open(&path, &options).unwrap();
    backend
        .put(model(), tag(1), Registration::default(), at(0))
        .await
        .unwrap();

    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let error = backend
        .put(model(), tag(2), Registration::default(), at(1))
        .await
        .unwrap_err();
    assert_eq!(error, BackendError::Storage("database is locked".into()));
    other.execute_batch("COMMIT").unwrap();

    assert_eq!(
        backend
            .put(model(), tag(2), Registration::default(), at(2))
            .await,
        Ok(PutOutcome::Created)
    );
    assert_eq!(backend.list(model()).await.unwrap().len(), 2);
}

#[tokio::test]
async fn a_corrupt_row_is_an_error_naming_the_machine_and_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muster.db");
    let backend = SqliteBackend::open(&path, &SqliteOptions::default()).unwrap();
    backend
        .put(model(), tag(4), Registration::default(), at(0))
        .await
        .unwrap();
    Connection::open(&path)
        .unwrap()
        .execute("UPDATE machines SET life = 'zombie'", [])
        .unwrap();
    assert_eq!(
        backend.get(model(), tag(4)).await,
        Err(BackendError::Corrupt(
            "machine 4: life: \"zombie\" is not a valid life".into()
        ))
    );
    assert!(backend.list(model()).await.is_err());
}

#[test]
fn times_are_stored_to_the_millisecond_and_never_panic() {
    let at = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
    assert_eq!(from_millis(to_millis(at)), at);
    assert_eq!(to_millis(UNIX_EPOCH - Duration::from_secs(1)), 0);
    assert_eq!(from_millis(-5), UNIX_EPOCH);
    assert_eq!(
        from_millis(i64::MAX),
        UNIX_EPOCH + Duration::from_millis(i64::MAX as u64)
    );
}
