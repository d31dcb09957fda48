//! A tree that breaks on demand, for the tests of how a run ends: the
//! simulated cloud with a credential store whose validity watch panics
//! once told to, and a config whose supervisors never restart, so that the
//! panic makes the tree give up.

use std::sync::Arc;

use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use muster::clock::SystemClock;
use muster::error::PollError;
use muster::model::CredentialApi;
use muster::sim::{Sim, SimConfig};
use muster_actors::Backends;
use musterd::config::DaemonConfig;
use tokio::sync::watch;

/// What the credential store's validity watch panics with.
pub const PANIC: &str = "the credential store broke";

/// The sim's credential store, whose validity watch panics once `broken`
/// says so: the gateway, which reads it from its start, panics with it.
pub struct Credentials {
    inner: Arc<dyn CredentialApi>,
    broken: watch::Receiver<bool>,
}

impl CredentialApi for Credentials {
    fn invalidate_model_credential(
        &self,
        reason: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        self.inner.invalidate_model_credential(reason)
    }

    fn watch_credential_validity(&self) -> BoxStream<'static, bool> {
        let mut broken = self.broken.clone();
        futures::stream::once(async move {
            let _ = broken.wait_for(|b| *b).await;
            panic!("{PANIC}");
        })
        .boxed()
    }
}

/// A config on free loopback ports whose supervisors never restart: the
/// first failure anywhere makes the tree give up.
pub fn config() -> DaemonConfig {
    let mut config = DaemonConfig::default();
    config.http.listen = ([127, 0, 0, 1], 0).into();
    config.agents.listen = ([127, 0, 0, 1], 0).into();
    config.supervision.max_restarts = 0;
    config
}

/// The simulated cloud, its credential store broken once `broken` says so.
pub fn backends(broken: watch::Receiver<bool>) -> Backends {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let mut backends = Backends::sim(&sim, Arc::new(SystemClock));
    backends.credentials = Arc::new(Credentials {
        inner: backends.credentials.clone(),
        broken,
    });
    backends
}

/// What `out` was written, shared with the test.
#[derive(Clone, Default)]
pub struct Out(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Out {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Out {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
