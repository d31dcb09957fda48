//! A host with a supervision tree of its own mounts muster in it: the host's
//! "api" worker records agent connections through muster's handle, and
//! muster runs next to it as one child. The example takes the model's API
//! server down until muster's supervisor gives up; the host restarts muster
//! by its own policy, and muster answers after the restart what it answered
//! before.
//!
//! Run with `cargo run -p muster-actors --example host_tree`. The world runs
//! on tokio's paused clock here, so its minutes pass in milliseconds.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix::prelude::*;
use futures::StreamExt;
use futures::future::BoxFuture;
use muster::clock::ManualClock;
use muster::error::PollError;
use muster::model::{Machine, MachineBatches, ModelFacade};
use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::sim::{Sim, SimConfig};
use muster_actors::presence::PresenceHandle;
use muster_actors::{
    Backends, ChildReport, ChildSpec, Mailbox, Metrics, Muster, MusterConfig, RestartConfig, Root,
    SendError, SupervisorSpec,
};
use prometheus_client::registry::Registry;
use slog::{Discard, Logger, o};
use tokio::sync::watch;
use tokio::time::{Instant, sleep};

/// The simulated model, behind an API server that can go down: while it
/// is down, watching the machines fails.
struct Model {
    sim: Arc<dyn ModelFacade>,
    down: watch::Sender<bool>,
}

impl ModelFacade for Model {
    fn watch_model_machines(&self) -> MachineBatches {
        let open = (self.sim.watch_model_machines(), self.down.subscribe());
        futures::stream::unfold(Some(open), |open| async move {
            let (mut batches, mut down) = open?;
            let next = tokio::select! {
                biased;
                _ = down.wait_for(|down| *down) => None,
                batch = batches.next() => Some(batch),
            };
            match next {
                None => Some((
                    Err(PollError::other("watching machines", "API server down")),
                    None,
                )),
                Some(batch) => batch.map(|batch| (batch, Some((batches, down)))),
            }
        })
        .boxed()
    }

    fn machine(&self, tag: &MachineTag) -> BoxFuture<'static, Result<Arc<dyn Machine>, PollError>> {
        self.sim.machine(tag)
    }
}

/// The host's API server, as far as muster is concerned: it records each
/// agent that logs in.
struct Api {
    presence: PresenceHandle,
    server: MachineTag,
}

impl Actor for Api {
    type Context = Context<Self>;
}
muster_actors::supervised!(Api);

/// An agent logged in to this API server.
struct LoggedIn {
    model: ModelUuid,
    agent: AgentTag,
    connection: u64,
}

impl Message for LoggedIn {
    type Result = Result<(), SendError>;
}

impl Handler<LoggedIn> for Api {
    type Result = ResponseFuture<Result<(), SendError>>;

    fn handle(&mut self, login: LoggedIn, _ctx: &mut Context<Self>) -> Self::Result {
        let presence = self.presence.clone();
        let server = self.server.clone();
        Box::pin(async move {
            presence
                .connect(
                    &server,
                    &login.model,
                    &login.agent,
                    login.connection,
                    false,
                    "4.0",
                )
                .await
        })
    }
}

/// Prints what muster answers about the agents and the machines.
async fn print_answers(when: &str, muster: &Muster) -> Result<(), SendError> {
    println!("{when}:");
    let connections = muster.presence().connections().await?;
    for value in connections.values() {
        let seen = value.last_seen.duration_since(SystemTime::UNIX_EPOCH);
        println!(
            "  {} is {}, last seen at {}s",
            value.agent,
            value.status,
            seen.map_or(0, |d| d.as_secs())
        );
    }
    for machine in muster.machines().machines().await? {
        println!(
            "  {}: {} phase, polled every {:?}, {} polls so far",
            machine.tag,
            machine.phase.map_or("no".to_owned(), |p| p.to_string()),
            machine.interval.unwrap_or_default(),
            machine.polls
        );
    }
    Ok(())
}

/// The host's report of muster, once `f` holds.
async fn muster_once(root: &Root, f: impl Fn(&ChildReport) -> bool) -> ChildReport {
    loop {
        let report = root.report().await.expect("the host runs");
        let muster = report.child("muster").expect("muster is the host's child");
        if f(muster) {
            return muster.clone();
        }
        sleep(Duration::from_millis(100)).await;
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tokio::time::pause();
    let sim = Sim::new(SimConfig::default())?;
    for _ in 0..3 {
        sim.add_provisioned_machine();
    }
    let model = Arc::new(Model {
        sim: sim.facade(),
        down: watch::Sender::new(false),
    });
    let clock = Arc::new(ManualClock::new(
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000),
    ));
    let backends = Backends {
        facade: model.clone(),
        ..Backends::sim(&sim, clock.clone())
    };

    // muster gives up quickly here: on the second failure of a subtree
    // within a minute.
    let quick = RestartConfig {
        error_delay: Duration::from_secs(1),
        max_restarts: 1,
        restart_window: Duration::from_secs(60),
        ..RestartConfig::default()
    };
    let mut config = MusterConfig {
        supervision: quick.clone(),
        ..MusterConfig::default()
    };
    config.machines.restart = quick;

    // The host's tree: its registry and metrics, its own worker, and
    // muster, restarted by the host's policy.
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (muster_child, muster) = Muster::child("muster", &config, backends, &mut registry)?;
    let api = Mailbox::new(64);
    let presence = muster.presence().clone();
    let server: MachineTag = "machine-0".parse()?;
    let api_child = ChildSpec::actor("api", &api, move |_| {
        Ok(Api {
            presence: presence.clone(),
            server: server.clone(),
        })
    });
    let host_policy = RestartConfig {
        error_delay: Duration::from_secs(5),
        max_restarts: 3,
        restart_window: Duration::from_secs(600),
        ..RestartConfig::default()
    };
    let spec = SupervisorSpec::new(host_policy)
        .child(api_child)
        .child(muster_child);
    let root = Root::start("host", spec, Logger::root(Discard, o!()), metrics)?;

    muster.presence().enable().await?;
    let model_uuid = ModelUuid::from_u128(42);
    for (connection, agent) in ["unit-wordpress-0", "unit-mysql-0"].into_iter().enumerate() {
        let login = LoggedIn {
            model: model_uuid,
            agent: agent.parse()?,
            connection: connection as u64,
        };
        api.send(login).await??;
    }
    sleep(Duration::from_secs(120)).await;
    clock.advance(Duration::from_secs(120));
    print_answers("before", &muster).await?;

    // The model's API server goes down: the machine watcher fails, its
    // subtree gives up, then muster's supervisor does, and the host's
    // supervisor schedules a restart of muster.
    model.down.send_replace(true);
    let failed = muster_once(&root, |m| m.restart_in_ms.is_some()).await;
    model.down.send_replace(false);
    println!(
        "muster failed: {}",
        failed.last_error.as_deref().unwrap_or("?")
    );
    println!(
        "the host restarts it in {} ms",
        failed.restart_in_ms.unwrap_or(0)
    );

    // A call made now waits for muster to be back.
    let asked = Instant::now();
    let count = muster.presence().connections().await?.count();
    println!(
        "a query made meanwhile waited {} ms and saw {count} connections",
        asked.elapsed().as_millis()
    );
    let again = muster_once(&root, |m| m.start_count == 2).await;
    sleep(Duration::from_secs(5)).await;
    print_answers("after", &muster).await?;

    let api_starts = root
        .report()
        .await?
        .child("api")
        .map_or(0, |c| c.start_count);
    println!(
        "host report: muster started {} times, restarted after {} failure(s); api started {api_starts} time(s)",
        again.start_count, again.restarts.failure
    );
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry)?;
    for line in text
        .lines()
        .filter(|l| l.starts_with("muster_child_restarts_total{child=\"host/muster"))
    {
        println!("  {line}");
    }

    root.shutdown();
    root.wait().await?;
    Ok(())
}
