//! Each model's change counter, as a backend keeps them to answer
//! [`RegistryBackend::version`](crate::RegistryBackend::version): a watch
//! per model, made when someone first asks for it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use muster::names::ModelUuid;
use muster::sync::lock;
use tokio::sync::watch;

/// The change counters of the models; see the module's documentation.
#[derive(Debug, Default)]
pub struct Versions(Mutex<HashMap<ModelUuid, watch::Sender<u64>>>);

impl Versions {
    fn lock(&self) -> MutexGuard<'_, HashMap<ModelUuid, watch::Sender<u64>>> {
        // Each entry is inserted whole; a panic elsewhere leaves the map
        // usable.
        lock(&self.0)
    }

    /// The counter of `model`, from where it is now.
    pub fn subscribe(&self, model: ModelUuid) -> watch::Receiver<u64> {
        self.lock()
            .entry(model)
            .or_insert_with(|| watch::Sender::new(0))
            .subscribe()
    }

    /// Moves `model`'s counter. No entry: nobody watches the model, and a
    /// later watcher reads the registry after it subscribes.
    pub fn bump(&self, model: ModelUuid) {
        if let Some(sender) = self.lock().get(&model) {
            sender.send_modify(|version| *version += 1);
        }
    }

    /// Moves every model's counter: after a change whose models are not
    /// known, every watcher reads again.
    pub fn bump_all(&self) {
        for sender in self.lock().values() {
            sender.send_modify(|version| *version += 1);
        }
    }
}
