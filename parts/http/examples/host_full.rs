//! A controller's own supervision tree with all of muster mounted in it:
//! the host's worker and its web app, muster's presence and pollers, the
//! agents' door, the history, and muster's HTTP surface as a scope of the
//! host's app under `/muster/`, beside a route of the host's own. With
//! `NATS_URL` set (`NATS_URL=nats://127.0.0.1:4222`), the cluster part
//! too: this node shares presence with the others on that NATS.
//!
//! It logs two agents in through the door, prints what it serves and what
//! muster answers, has its tree restart muster (as a host's policy would
//! after muster failed), and prints the answers again: the same agents,
//! the same machines, the host's route untouched.
//!
//! Run with `cargo run -p muster-http --example host_full`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use actix_web::{HttpResponse, web};
use muster::clock::SystemClock;
use muster::names::ModelUuid;
use muster::sim::{Sim, SimConfig};
use muster_actors::{
    Backends, ChildSpec, Extensions, Mailbox, Metrics, Muster, MusterConfig, RestartConfig, Root,
    SupervisorSpec,
};
use muster_cluster::{Cluster, ClusterConfig};
use muster_door::client::{Client, Login};
use muster_door::{AgentsConfig, BoundDoor, ConnectionIds, DoorMetrics};
use muster_http::{Inspector, Sampler, StateGauges};
use prometheus_client::registry::Registry;
use slog::{Drain, Logger, o};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The host's own worker: it counts, as a stand-in for whatever a
/// controller runs beside muster.
struct Ticker {
    ticks: Arc<AtomicU64>,
}

impl Actor for Ticker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(Duration::from_millis(100), |ticker, _| {
            ticker.ticks.fetch_add(1, Ordering::Relaxed);
        });
    }
}
muster_actors::supervised!(Ticker);

/// `GET path` from the host's web app: the status line and the body.
async fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut tcp = tokio::net::TcpStream::connect(addr)
        .await
        .expect("the app listens");
    let ask = format!("GET {path} HTTP/1.1\r\nHost: host\r\nConnection: close\r\n\r\n");
    tcp.write_all(ask.as_bytes()).await.expect("a request");
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.expect("an answer");
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    (
        head.lines().next().unwrap_or("").to_owned(),
        body.to_owned(),
    )
}

/// What muster answers, through the host's app.
async fn print_answers(when: &str, addr: std::net::SocketAddr, model: ModelUuid) {
    println!("{when}:");
    for path in [
        "/".to_owned(),
        "/muster/healthz".to_owned(),
        format!("/muster/api/presence?model={model}"),
        "/muster/api/machines?limit=3".to_owned(),
    ] {
        let (status, body) = get(addr, &path).await;
        let body = match serde_json::from_str::<serde_json::Value>(&body) {
            Ok(json) if json.get("agents").is_some() => format!(
                "{} connections: {}",
                json["count"],
                json["agents"]
                    .as_array()
                    .map(|a| a
                        .iter()
                        .map(|a| format!("{} {}", a["agent"], a["status"]))
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            Ok(json) if json.get("machines").is_some() => format!(
                "{} machines: {}",
                json["total"],
                json["machines"]
                    .as_array()
                    .map(|m| m
                        .iter()
                        .map(|m| format!("{} {}", m["tag"], m["phase"]))
                        .collect::<Vec<_>>()
                        .join(", "))
                    .unwrap_or_default()
            ),
            _ => body.trim().to_owned(),
        };
        println!("  GET {path} -> {status}: {body}");
    }
}

#[actix::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let logger = {
        let decorator = slog_term::PlainSyncDecorator::new(std::io::stderr());
        let drain = slog_term::FullFormat::new(decorator).build().fuse();
        let level = slog::LevelFilter::new(drain, slog::Level::Warning).fuse();
        Logger::root(level, o!("host" => "host_full"))
    };
    let sim = Sim::new(SimConfig::default())?;
    for _ in 0..3 {
        sim.add_provisioned_machine();
    }
    let clock = Arc::new(SystemClock);

    // One registry and one set of tree metrics for the host's whole tree.
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let node = "machine-0".parse()?;

    // With NATS, the cluster part shares this node's presence.
    let mut extensions = Extensions::new();
    let mut farewell = None;
    if let Ok(url) = std::env::var("NATS_URL") {
        let mut config = ClusterConfig::default();
        config.nats = vec![url.clone()];
        let cluster = Cluster::new(&config, node, clock.clone())?;
        let said;
        (extensions, said) = cluster.mount(extensions, &mut registry);
        farewell = Some(said);
        println!("cluster: sharing presence on {url}");
    }
    let (muster_child, muster) = Muster::child_with(
        "muster",
        &MusterConfig::default(),
        Backends::sim(&sim, clock.clone()),
        extensions,
        &mut registry,
    )?;

    // The agents' door, bound before anything starts.
    let mut agents = AgentsConfig::default();
    agents.listen = "127.0.0.1:0".parse()?;
    let bound = BoundDoor::bind(&agents)?;
    let (door_child, door) = bound.child(
        muster.presence().clone(),
        ConnectionIds::default(),
        DoorMetrics::register(&mut registry),
    );
    let (history_child, history) = Sampler::new(muster.clone(), metrics.clone(), clock).child();

    // The host's web app: its own page, and muster's surface under
    // /muster/, reporting the host's whole tree.
    let gauges = StateGauges::register(&mut registry);
    let root = Root::new("host")?;
    let inspector = Inspector::new(muster.clone(), registry, gauges, None)
        .with_history(history)
        .with_tree(root.clone());
    let listener = muster_http::bind("127.0.0.1:0".parse()?)?;
    let web_addr = listener.local_addr()?;
    let app = muster_http::serve("web", listener, move |routes| {
        routes.route(
            "/",
            web::get().to(|| async { HttpResponse::Ok().body("the host's own page\n") }),
        );
        routes.service(inspector.scope("/muster"));
    });

    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = ticks.clone();
        ChildSpec::actor("ticker", &Mailbox::new(16), move |_| {
            Ok(Ticker {
                ticks: ticks.clone(),
            })
        })
    };
    // The host restarts muster, or any child, after a second.
    let policy = RestartConfig {
        error_delay: Duration::from_secs(1),
        ..RestartConfig::default()
    };
    let spec = SupervisorSpec::new(policy)
        .child(ticker)
        .child(muster_child)
        .child(history_child)
        .child(app)
        .child(door_child);
    root.run(spec, logger, metrics)?;

    println!("the host's page: http://{web_addr}/");
    println!("muster's dashboard: http://{web_addr}/muster/");
    println!("agents: {}", door.url());

    // This host is an API server: it records presence, and two agents log
    // in through the door.
    muster.presence().enable().await?;
    let model = ModelUuid::from_u128(42);
    let client = Client::new(&door.url(), None)?;
    let mut sessions = Vec::new();
    for agent in ["machine-1", "unit-wordpress-0"] {
        let session = client
            .login(&Login::new(model, agent.parse()?))
            .await
            .map_err(|e| format!("{agent} did not log in: {e}"))?;
        sessions.push(session);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    print_answers("before", web_addr, model).await;

    // The host restarts muster, as its policy would after muster failed.
    root.supervisor().kill("muster").await?;
    println!("the host's tree killed muster; it restarts it in a second");
    let asked = std::time::Instant::now();
    let count = muster.presence().connections().await?.count();
    println!(
        "a query made meanwhile waited {} ms and saw {count} connections",
        asked.elapsed().as_millis()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    print_answers("after", web_addr, model).await;

    let report = root.report().await?;
    let starts = |name: &str| report.child(name).map_or(0, |c| c.start_count);
    println!(
        "host report: muster started {} times; ticker {}, web {}, door {}, history {} time(s); the ticker ticked {} times",
        starts("muster"),
        starts("ticker"),
        starts("web"),
        starts("door"),
        starts("history"),
        ticks.load(Ordering::Relaxed),
    );

    for session in sessions {
        session.close().await;
    }
    door.close().await;
    if let Some(farewell) = farewell {
        farewell.say().await;
    }
    root.shutdown();
    root.wait().await?;
    println!("stopped");
    Ok(())
}
