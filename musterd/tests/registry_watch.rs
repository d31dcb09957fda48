//! One model's registry as the instance poller sees it (docs/spec.md §9.4,
//! §9.6): the machine watcher's batches, the machines it hands out, and the
//! credential's validity, on a paused clock.

mod support;

use std::time::Duration;

use futures::StreamExt;
use muster::error::{ErrorKind, PollError};
use muster::model::{CredentialApi, Life, MachineStatus, ModelFacade};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{InstanceId, InstanceStatus, InstanceStatusInfo};
use muster_registry::{PutOutcome, Registration};
use support::registry::{interface, memory, model, next, provisioned, put, tag};

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
    let not_found = |e: PollError| assert_eq!(e.kind(), ErrorKind::NotFound);
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
