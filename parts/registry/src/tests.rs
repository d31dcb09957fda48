use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use futures::future::{BoxFuture, FutureExt};
use muster::clock::ManualClock;
use muster::model::ModelFacade;
use muster::provider::{InstanceId, InstanceStatus};
use slog::{Drain, Never, OwnedKVList, Record, o};
use tokio::sync::watch;

use super::*;

/// The in-memory backend, whose writes fail while `fail` is set and whose
/// listings and credential reads fail while `fail_reads` is.
struct Failing {
    inner: SqliteBackend,
    fail: AtomicBool,
    fail_reads: AtomicBool,
}

impl Failing {
    fn new() -> Arc<Failing> {
        Arc::new(Failing {
            inner: SqliteBackend::in_memory().unwrap(),
            fail: AtomicBool::new(false),
            fail_reads: AtomicBool::new(false),
        })
    }

    fn read<T: Send + 'static>(
        &self,
        f: BoxFuture<'static, Result<T, BackendError>>,
    ) -> BoxFuture<'static, Result<T, BackendError>> {
        if self.fail_reads.load(Ordering::SeqCst) {
            futures::future::ready(Err(BackendError::Storage("disk I/O error".into()))).boxed()
        } else {
            f
        }
    }

    fn check(&self) -> Result<(), BackendError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(BackendError::Storage("disk I/O error".into()))
        } else {
            Ok(())
        }
    }

    fn write<T: Send + 'static>(
        &self,
        f: BoxFuture<'static, Result<T, BackendError>>,
    ) -> BoxFuture<'static, Result<T, BackendError>> {
        match self.check() {
            Ok(()) => f,
            Err(e) => futures::future::ready(Err(e)).boxed(),
        }
    }
}

impl RegistryBackend for Failing {
    fn put(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        registration: Registration,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<PutOutcome, BackendError>> {
        self.write(self.inner.put(model, tag, registration, at))
    }

    fn delete(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.write(self.inner.delete(model, tag))
    }

    fn get(
        &self,
        model: ModelUuid,
        tag: MachineTag,
    ) -> BoxFuture<'static, Result<Option<MachineRecord>, BackendError>> {
        self.inner.get(model, tag)
    }

    fn list(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<MachineRecord>, BackendError>> {
        self.inner.list(model)
    }

    fn registrations(
        &self,
        model: ModelUuid,
    ) -> BoxFuture<'static, Result<Vec<Registered>, BackendError>> {
        self.read(self.inner.registrations(model))
    }

    fn record_status(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        status: InstanceStatusInfo,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.write(
            self.inner
                .record_status(model, tag, incarnation, status, at),
        )
    }

    fn record_network(
        &self,
        model: ModelUuid,
        tag: MachineTag,
        incarnation: u64,
        interfaces: Vec<NetworkInterface>,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<Option<AddressesChanged>, BackendError>> {
        self.write(
            self.inner
                .record_network(model, tag, incarnation, interfaces, at),
        )
    }

    fn credential(&self, model: ModelUuid) -> BoxFuture<'static, Result<Credential, BackendError>> {
        self.read(self.inner.credential(model))
    }

    fn set_credential(
        &self,
        model: ModelUuid,
        valid: bool,
        reason: String,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.write(self.inner.set_credential(model, valid, reason, at))
    }

    fn version(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.inner.version(model)
    }

    fn set_password(
        &self,
        model: ModelUuid,
        agent: muster::names::AgentTag,
        hash: muster::password::PasswordHash,
        at: SystemTime,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.write(self.inner.set_password(model, agent, hash, at))
    }

    fn delete_password(
        &self,
        model: ModelUuid,
        agent: muster::names::AgentTag,
    ) -> BoxFuture<'static, Result<bool, BackendError>> {
        self.write(self.inner.delete_password(model, agent))
    }

    fn password(
        &self,
        model: ModelUuid,
        agent: muster::names::AgentTag,
    ) -> BoxFuture<'static, Result<Option<muster::password::PasswordHash>, BackendError>> {
        self.read(self.inner.password(model, agent))
    }

    fn password_changes(&self) -> tokio::sync::broadcast::Receiver<PasswordChange> {
        self.inner.password_changes()
    }

    fn location(&self) -> String {
        "failing".into()
    }
}

/// Keeps each record's message and pairs.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<String>>>);

impl Drain for Lines {
    type Ok = ();
    type Err = Never;

    fn log(&self, record: &Record, _: &OwnedKVList) -> Result<(), Never> {
        struct Pairs(String);
        impl slog::Serializer for Pairs {
            fn emit_arguments(
                &mut self,
                key: slog::Key,
                val: &std::fmt::Arguments,
            ) -> slog::Result {
                self.0.push_str(&format!(" {key}={val}"));
                Ok(())
            }
        }
        let mut pairs = Pairs(format!(
            "{} {}",
            record.level().as_short_str(),
            record.msg()
        ));
        let _ = slog::KV::serialize(&record.kv(), record, &mut pairs);
        self.0.lock().unwrap().push(pairs.0);
        Ok(())
    }
}

fn model() -> ModelUuid {
    ModelUuid::from_u128(7)
}

fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

#[tokio::test]
async fn a_failed_write_is_logged_counted_and_kept_for_the_report() {
    let backend = Failing::new();
    let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let clock = Arc::new(ManualClock::new(start));
    let lines = Lines::default();
    let log = Logger::root(lines.clone().fuse(), o!());
    let registry = Registry::new(backend.clone(), clock.clone(), log);
    let registration = Registration {
        instance_id: Some(InstanceId::from("i-1")),
        ..Registration::default()
    };
    registry
        .register(model(), tag(1), registration.clone())
        .await
        .unwrap();
    assert_eq!(
        registry.report(),
        RegistryReport {
            location: "failing".into(),
            write_failures: 0,
            last_write_error: None,
        }
    );

    backend.fail.store(true, Ordering::SeqCst);
    clock.advance(Duration::from_secs(60));
    let error = registry
        .register(model(), tag(2), Registration::default())
        .await
        .unwrap_err();
    let what = format!("registering machine 2 of model {}", model());
    assert_eq!(error.to_string(), format!("{what}: disk I/O error"));
    let handle = registry.model(model()).machine(&tag(1)).await.unwrap();
    let error = handle
        .set_instance_status(InstanceStatus::Running, String::new())
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "recording the instance status of machine 1 of model {}: disk I/O error",
            model()
        )
    );
    let report = registry.report();
    assert_eq!(report.write_failures, 2);
    assert_eq!(
        report.last_write_error,
        Some(WriteFailure {
            at: start + Duration::from_secs(60),
            what: format!(
                "recording the instance status of machine 1 of model {}",
                model()
            ),
            error: "disk I/O error".into(),
        })
    );
    assert_eq!(
        lines.0.lock().unwrap().first().unwrap(),
        &format!("WARN registry write failed error=disk I/O error what={what}")
    );

    // Reads still answer, and a later success keeps the last failure.
    backend.fail.store(false, Ordering::SeqCst);
    let stored = registry.machine(model(), tag(1)).await.unwrap().unwrap();
    assert_eq!(stored.registration, registration);
    assert_eq!(registry.machine(model(), tag(2)).await.unwrap(), None);
    registry.remove(model(), tag(1)).await.unwrap();
    assert_eq!(registry.report().write_failures, 2);
    let json = serde_json::to_value(registry.report()).unwrap();
    assert_eq!(json["last_write_error"]["error"], "disk I/O error");
    assert_eq!(json["location"], "failing");
}

#[tokio::test(start_paused = true)]
async fn a_failed_read_ends_the_machine_watch_and_the_credential_stream_starts_valid() {
    use futures::StreamExt;
    use muster::model::CredentialApi;

    let backend = Failing::new();
    let registry = Registry::new(
        backend.clone(),
        Arc::new(muster::clock::SystemClock),
        discard(),
    );
    let facade = registry.model(model());
    let mut batches = facade.watch_model_machines();
    assert_eq!(
        batches.next().await.unwrap().unwrap(),
        Vec::<MachineTag>::new()
    );
    backend.fail_reads.store(true, Ordering::SeqCst);
    registry
        .register(model(), tag(1), Registration::default())
        .await
        .unwrap();
    let error = batches.next().await.unwrap().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("listing the machines of model {}: disk I/O error", model())
    );
    assert!(
        batches.next().await.is_none(),
        "the watch ends after its error"
    );

    registry
        .set_credential_valid(model(), false, "denied".into())
        .await
        .unwrap();
    let mut validity = facade.watch_credential_validity();
    assert_eq!(validity.next().await, Some(true));
    backend.fail_reads.store(false, Ordering::SeqCst);
    registry
        .set_credential_valid(model(), true, String::new())
        .await
        .unwrap();
    registry
        .set_credential_valid(model(), false, "denied".into())
        .await
        .unwrap();
    assert_eq!(validity.next().await, Some(false));
}

#[tokio::test(start_paused = true)]
async fn a_credential_change_whose_read_failed_is_read_again_until_it_is_seen() {
    use futures::StreamExt;
    use muster::model::CredentialApi;

    let backend = Failing::new();
    let registry = Registry::new(
        backend.clone(),
        Arc::new(muster::clock::SystemClock),
        discard(),
    );
    let facade = registry.model(model());
    let mut validity = facade.watch_credential_validity();
    assert_eq!(validity.next().await, Some(true));
    // The credential is withdrawn while its reads fail; they work again
    // later, with no other change to wake the stream.
    backend.fail_reads.store(true, Ordering::SeqCst);
    registry
        .set_credential_valid(model(), false, "denied".into())
        .await
        .unwrap();
    let failing = tokio::time::timeout(Duration::from_secs(30), validity.next()).await;
    assert!(
        failing.is_err(),
        "nothing read while reads fail: {failing:?}"
    );
    backend.fail_reads.store(false, Ordering::SeqCst);
    let seen = tokio::time::timeout(Duration::from_secs(11), validity.next()).await;
    assert_eq!(seen, Ok(Some(false)), "the withdrawn credential is seen");
}

fn discard() -> Logger {
    Logger::root(slog::Discard, o!())
}

#[tokio::test]
async fn a_machine_record_serialises_as_one_flat_object() {
    let clock = Arc::new(ManualClock::new(
        UNIX_EPOCH + Duration::from_secs(1_700_000_000),
    ));
    let registry = Registry::in_memory(clock, discard()).unwrap();
    let registration = Registration {
        instance_id: Some(InstanceId::from("i-1")),
        ..Registration::default()
    };
    registry
        .register(model(), tag(3), registration)
        .await
        .unwrap();
    let record = registry.machine(model(), tag(3)).await.unwrap().unwrap();
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        serde_json::json!({
            "tag": "machine-3",
            "incarnation": record.incarnation,
            "instance_id": "i-1",
            "life": "alive",
            "agent_status": "pending",
            "manual": false,
            "registered_at": "2023-11-14T22:13:20Z",
            "instance_status": {"status": "pending", "message": ""},
            "addresses": [],
            "interfaces": [],
            "recorded_at": null,
        })
    );
}
