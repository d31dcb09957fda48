//! The registry's change feed: a watch of the bucket's registrations and
//! credentials, whichever node wrote them, moving each model's version.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

use async_nats::jetstream::kv;
use futures::StreamExt;
use muster::names::ModelUuid;
use tokio::sync::watch;

/// How long the change feed waits before it watches again after NATS
/// dropped it.
const REWATCH: Duration = Duration::from_millis(250);

/// The models' change counters, as the feed and this node's writes move
/// them.
#[derive(Default)]
pub(super) struct Versions(Mutex<HashMap<ModelUuid, watch::Sender<u64>>>);

impl Versions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ModelUuid, watch::Sender<u64>>> {
        // Each entry is inserted whole; a panic elsewhere leaves the map
        // usable.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn subscribe(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.lock()
            .entry(model)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    pub(super) fn bump(&self, model: ModelUuid) {
        if let Some(sender) = self.lock().get(&model) {
            sender.send_modify(|version| *version += 1);
        }
    }

    fn bump_all(&self) {
        for sender in self.lock().values() {
            sender.send_modify(|version| *version += 1);
        }
    }
}

/// Moves each model's version when the bucket says its registrations or
/// its credential changed, whichever node wrote them. Watches again after
/// NATS dropped the watch, and then moves every version: what changed
/// meanwhile was not heard.
pub(super) async fn follow(store: kv::Store, versions: Weak<Versions>) {
    loop {
        let watches = futures::future::try_join(store.watch("m.>"), store.watch("c.>")).await;
        if let Ok((machines, credentials)) = watches {
            if let Some(versions) = versions.upgrade() {
                versions.bump_all();
            }
            let mut both = futures::stream::select(machines, credentials);
            while let Some(Ok(entry)) = both.next().await {
                let Some(versions) = versions.upgrade() else {
                    return;
                };
                if let Some(model) = model_of_key(&entry.key) {
                    versions.bump(model);
                }
            }
        }
        if versions.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(REWATCH).await;
    }
}

/// The model a key of the bucket is about.
fn model_of_key(key: &str) -> Option<ModelUuid> {
    key.split('.').nth(1)?.parse().ok()
}
