//! A host's tree with muster in it, for the subsystem tests: a model whose
//! API server the test takes down, a credential API that stays silent, the
//! host's own worker, the timings, and what the tests read from the host.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use futures::StreamExt;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use muster::clock::{Clock, ManualClock};
use muster::error::PollError;
use muster::model::{CredentialApi, Machine, MachineBatches, ModelFacade};
use muster::names::MachineTag;
use muster::sim::Sim;
use muster_actors::{
    Backends, ChildReport, ChildSpec, ChildState, Mailbox, Metrics, Muster, MusterConfig,
    RestartConfig, Root, SupervisorSpec,
};
use prometheus_client::registry::Registry;
use tokio::sync::watch;
use tokio::time::sleep;

use crate::support::{logger, minutes, secs};

/// The sim's model, with an API server the test can take down: while it
/// is down every watch of the machines fails at once, and an open one
/// fails as it goes down.
pub struct FlakyModel {
    inner: Arc<dyn ModelFacade>,
    down: watch::Sender<bool>,
}

impl FlakyModel {
    pub fn new(inner: Arc<dyn ModelFacade>) -> Arc<Self> {
        Arc::new(FlakyModel {
            inner,
            down: watch::Sender::new(false),
        })
    }

    pub fn set_down(&self, down: bool) {
        self.down.send_replace(down);
    }
}

impl ModelFacade for FlakyModel {
    fn watch_model_machines(&self) -> MachineBatches {
        let open = (self.inner.watch_model_machines(), self.down.subscribe());
        futures::stream::unfold(Some(open), |open| async move {
            let (mut inner, mut down) = open?;
            let batch = tokio::select! {
                biased;
                _ = down.wait_for(|down| *down) => None,
                batch = inner.next() => Some(batch),
            };
            match batch {
                None => Some((
                    Err(PollError::other(
                        "watching machines",
                        "the API server is down",
                    )),
                    None,
                )),
                Some(batch) => batch.map(|b| (b, Some((inner, down)))),
            }
        })
        .boxed()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        self.inner.machine(tag)
    }
}

/// The sim's credential API, whose validity watch has not reported yet.
pub struct SilentCredentials(pub Arc<dyn CredentialApi>);

impl CredentialApi for SilentCredentials {
    fn invalidate_model_credential(
        &self,
        reason: String,
    ) -> BoxFuture<'static, Result<(), PollError>> {
        self.0.invalidate_model_credential(reason)
    }

    fn watch_credential_validity(&self) -> BoxStream<'static, bool> {
        futures::stream::pending().boxed()
    }
}

/// The host's own worker, muster's sibling.
pub struct Api;

impl Actor for Api {
    type Context = Context<Self>;
}
muster_actors::supervised!(Api);

/// muster's own timing: its supervisor gives up on the second failure of
/// the machines subtree within a minute, which gives up on the watcher's
/// second failure within a minute.
pub fn muster_config() -> MusterConfig {
    let quick = |seed| RestartConfig {
        error_delay: secs(1),
        max_restarts: 1,
        restart_window: minutes(1),
        jitter_seed: Some(seed),
        ..RestartConfig::default()
    };
    let mut config = MusterConfig {
        supervision: quick(1),
        ..MusterConfig::default()
    };
    config.machines.restart = quick(2);
    // A failed server actor waits long before its own restart, so that a
    // restart of muster comes first.
    config.presence.restart = RestartConfig {
        error_delay: secs(30),
        jitter_seed: Some(4),
        ..RestartConfig::default()
    };
    config
}

/// The host's policy for its children: 5 s after a first failure, doubled
/// after each further one, at most `max_restarts` within ten minutes.
pub fn host_policy(max_restarts: u32) -> RestartConfig {
    RestartConfig {
        error_delay: secs(5),
        backoff_factor: 2.0,
        max_restarts,
        restart_window: minutes(10),
        jitter_seed: Some(3),
        ..RestartConfig::default()
    }
}

pub fn wall_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ))
}

pub struct Host {
    pub root: Root,
    pub muster: Muster,
    pub registry: Registry,
    pub model: Arc<FlakyModel>,
}

pub struct HostOptions {
    pub policy: RestartConfig,
    pub credentials: Option<Arc<dyn CredentialApi>>,
}

pub fn start_host(sim: &Sim, clock: Arc<dyn Clock>, options: HostOptions) -> Host {
    let model = FlakyModel::new(sim.facade());
    let backends = Backends {
        environ: sim.environ(),
        facade: model.clone(),
        credentials: options.credentials.unwrap_or_else(|| sim.credential_api()),
        clock,
    };
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (muster_child, muster) =
        Muster::child("muster", &muster_config(), backends, &mut registry).expect("valid config");
    let api = Mailbox::new(16);
    let spec = SupervisorSpec::new(options.policy)
        .child(ChildSpec::actor("api", &api, |_| Ok(Api)))
        .child(muster_child);
    let root = Root::start("host", spec, logger(), metrics).expect("valid spec");
    Host {
        root,
        muster,
        registry,
        model,
    }
}

pub fn host(sim: &Sim, clock: Arc<dyn Clock>, max_restarts: u32) -> Host {
    let options = HostOptions {
        policy: host_policy(max_restarts),
        credentials: None,
    };
    start_host(sim, clock, options)
}

impl Host {
    pub async fn child(&self, name: &str) -> ChildReport {
        let report = self.root.report().await.expect("the host runs");
        report.child(name).expect("a child of the host").clone()
    }

    /// Polls the host's report of muster every 50 ms until `f` holds.
    pub async fn muster_until(&self, what: &str, f: impl Fn(&ChildReport) -> bool) -> ChildReport {
        for _ in 0..12_000 {
            let muster = self.child("muster").await;
            if f(&muster) {
                return muster;
            }
            sleep(Duration::from_millis(50)).await;
        }
        panic!("muster never {what}");
    }

    /// Takes the model's API server down until muster has failed `n`
    /// times in all, then brings it back; answers the host's report of
    /// muster then, with the restart it scheduled.
    pub async fn fail_muster(&self, n: u64) -> ChildReport {
        self.model.set_down(true);
        let failed = self
            .muster_until("failed", |m| {
                m.restarts.failure == n && m.restart_in_ms.is_some()
            })
            .await;
        self.model.set_down(false);
        failed
    }

    pub async fn running_again(&self, starts: u64) -> ChildReport {
        self.muster_until("started again", |m| {
            m.state == ChildState::Started && m.start_count == starts
        })
        .await
    }

    pub fn metrics(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text
    }
}

/// The value of the series that `line_start` begins, e.g.
/// `muster_child_restarts_total{child="host/muster",reason="failure"}`.
pub fn series(text: &str, line_start: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(line_start))
        .and_then(|rest| rest.trim().parse().ok())
}

pub fn within(delay_ms: u64, expected: Duration) -> bool {
    // The jitter is ±10 %; the report is read at most 50 ms after the
    // restart was scheduled.
    let expected = expected.as_millis() as u64;
    delay_ms >= expected * 9 / 10 - 50 && delay_ms <= expected * 11 / 10
}

/// The metric families in an exposition, in order.
pub fn families(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .map(|rest| rest.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    names.sort();
    names
}
