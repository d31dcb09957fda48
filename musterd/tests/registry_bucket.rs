//! The shared registry's bucket on a real nats-server, through its backend
//! alone (docs/spec.md §11.9): a record written for a machine's old
//! incarnation never replaces its new incarnation's, and a bucket deleted
//! and made again is noticed by every node's change feed.

mod support;

use std::time::{Duration, SystemTime};

use async_nats::jetstream::{self, kv};
use muster::names::{MachineTag, ModelUuid};
use muster::provider::{InstanceStatus, InstanceStatusInfo};
use muster_cluster::NatsBackend;
use muster_cluster::kv::open_bucket;
use muster_registry::{Registration, RegistryBackend};
use support::nats::NatsServer;

/// The registry bucket `name` on the server at `url`, made when missing.
async fn bucket(url: &str, name: &str) -> kv::Store {
    let client = async_nats::connect(url).await.unwrap();
    let config = kv::Config {
        bucket: name.to_owned(),
        history: 1,
        storage: jetstream::stream::StorageType::File,
        ..Default::default()
    };
    open_bucket(client, config).await.unwrap()
}

fn tag(n: u32) -> MachineTag {
    format!("machine-{n}").parse().unwrap()
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_record_of_an_old_incarnation_never_replaces_the_new_ones() {
    let nats = NatsServer::start("registry_bucket_incarnation");
    let store = bucket(&nats.url(), "incarnations").await;
    let backend = NatsBackend::new(store.clone());
    let model = ModelUuid::from_u128(1);
    let now = SystemTime::now();
    backend
        .put(model, tag(1), Registration::default(), now)
        .await
        .unwrap();
    let old = backend
        .get(model, tag(1))
        .await
        .unwrap()
        .unwrap()
        .incarnation;
    let key = format!("m.{model}.1");
    let old_registration = store.get(&key).await.unwrap().unwrap();
    // The machine is registered anew, and its new incarnation's poller
    // records what it found.
    backend.delete(model, tag(1)).await.unwrap();
    backend
        .put(model, tag(1), Registration::default(), now)
        .await
        .unwrap();
    let new = backend
        .get(model, tag(1))
        .await
        .unwrap()
        .unwrap()
        .incarnation;
    assert!(new > old, "{new} after {old}");
    let running = InstanceStatusInfo::new(InstanceStatus::Running, "");
    assert!(
        backend
            .record_status(model, tag(1), new, running.clone(), now)
            .await
            .unwrap()
    );
    // The old incarnation's last poll read the registration before it was
    // replaced: it sees the old registration and the new record, as the
    // store stood for it in that race.
    let new_registration = store.get(&key).await.unwrap().unwrap();
    store.put(&key, old_registration).await.unwrap();
    let error = InstanceStatusInfo::new(InstanceStatus::ProvisioningError, "gone");
    let written = backend
        .record_status(model, tag(1), old, error, now)
        .await
        .unwrap();
    assert!(!written, "the old incarnation's record was written");
    store.put(&key, new_registration).await.unwrap();
    let record = backend.get(model, tag(1)).await.unwrap().unwrap();
    assert_eq!(record.incarnation, new);
    assert_eq!(record.recorded.instance_status, running);
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_bucket_deleted_and_made_again_is_heard_by_the_change_feed() {
    let nats = NatsServer::start("registry_bucket_made_again");
    let long_running = NatsBackend::new(bucket(&nats.url(), "again").await);
    let model = ModelUuid::from_u128(2);
    let mut version = long_running.version(model);
    let now = SystemTime::now();
    // Revisions well past what the new bucket will reach.
    for n in 0..10 {
        long_running
            .put(model, tag(n), Registration::default(), now)
            .await
            .unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), version.changed())
        .await
        .expect("the feed hears the first bucket")
        .unwrap();
    let old = long_running.get(model, tag(9)).await.unwrap().unwrap();

    version.borrow_and_update();
    let client = async_nats::connect(nats.url()).await.unwrap();
    jetstream::new(client)
        .delete_stream("KV_again")
        .await
        .unwrap();
    let other = NatsBackend::new(bucket(&nats.url(), "again").await);
    other
        .put(model, tag(1), Registration::default(), now)
        .await
        .unwrap();
    let made = other.get(model, tag(1)).await.unwrap().unwrap();
    assert!(
        made.incarnation > old.incarnation,
        "a new bucket's incarnation {} is not above the old one's {}",
        made.incarnation,
        old.incarnation
    );
    // The long-running node's feed moves the model's version, and what it
    // then lists is the new bucket's.
    let heard = tokio::time::timeout(Duration::from_secs(20), version.changed()).await;
    assert!(
        heard.is_ok(),
        "the feed stayed silent after the bucket was made again"
    );
    let listed = long_running.registrations(model).await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].incarnation, made.incarnation);
}
