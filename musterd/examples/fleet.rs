//! Resident memory of musterd's many-model tree at 10,000 registered
//! machines; run in release:
//!
//! ```sh
//! cargo run --release -p musterd --example fleet
//! ```
//!
//! A machine registry in a SQLite file, 10,000 machines registered in it
//! over 4 simulated models (2,500 each, on one cloud account), and the tree
//! of those models polling them from the registry until every machine is in
//! the long phase, on the real clock. Prints the process's resident memory
//! before, with the registry filled, and with the tree settled, and the
//! file's size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use muster::clock::{Clock, SystemClock};
use muster::model::MachineStatus;
use muster::names::ModelUuid;
use muster::poll::Phase;
use muster::sim::{SimAccount, SimConfig};
use muster_actors::{CloudAccount, Fleet, ModelBackends, Muster, MusterConfig};
use muster_registry::{Registration, Registry, SqliteOptions};
use slog::{Discard, Logger, o};

const MODELS: usize = 4;
const MACHINES: usize = 10_000;

/// Resident memory, from /proc.
fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

fn main() {
    let dir = std::env::temp_dir().join(format!("musterd-fleet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("muster.db");
    let before = rss_bytes();
    actix::System::new().block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let log = Logger::root(Discard, o!());
        let registry =
            Registry::open(&path, &SqliteOptions::default(), clock.clone(), log.clone()).unwrap();
        let quick = SimConfig {
            pending_for: Duration::from_secs(1),
            allocating_for: Duration::from_secs(1),
            address_delay: Duration::from_secs(1),
            agent_start_delay: Duration::from_secs(1),
            ..SimConfig::default()
        };
        let mut account = SimAccount::new();
        let mut models = Vec::new();
        let started = Instant::now();
        for m in 0..MODELS {
            let uuid = ModelUuid::from_u128(m as u128 + 1);
            let sim = account.add_model(quick.clone()).unwrap();
            for _ in 0..MACHINES / MODELS {
                let (tag, instance) = sim.add_provisioned_machine();
                let registration = Registration {
                    instance_id: Some(instance),
                    agent_status: MachineStatus::Started,
                    ..Registration::default()
                };
                registry.register(uuid, tag, registration).await.unwrap();
            }
            let store = registry.model(uuid);
            models.push(ModelBackends {
                uuid,
                name: None,
                account: "sim".to_owned(),
                facade: store.clone(),
                credentials: store,
            });
        }
        let registered = rss_bytes();
        println!(
            "{MACHINES} machines registered in {:.1?} over {MODELS} models",
            started.elapsed()
        );
        let fleet = Fleet {
            accounts: vec![CloudAccount {
                name: "sim".to_owned(),
                environ: account.environ(),
            }],
            models,
            clock,
        };
        let muster = Muster::start(
            &MusterConfig::default(),
            fleet,
            log,
            &mut prometheus_client::registry::Registry::default(),
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(300);
        let long = loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let machines = muster.machines().machines().await.unwrap();
            let long = machines
                .iter()
                .filter(|m| m.phase == Some(Phase::Long))
                .count();
            if long == MACHINES || Instant::now() > deadline {
                break long;
            }
        };
        let settled = rss_bytes();
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0)
            + std::fs::metadata(path.with_extension("db-wal"))
                .map(|m| m.len())
                .unwrap_or(0);
        println!("resident memory of the process:");
        println!("  before anything: {:.1} MiB", mib(before));
        println!(
            "  with {MACHINES} machines registered (and simulated): {:.1} MiB",
            mib(registered)
        );
        println!(
            "  with the tree polling them ({long} in the long phase after {:.0?}): {:.1} MiB",
            started.elapsed(),
            mib(settled)
        );
        println!(
            "registry file with its WAL: {:.1} MiB ({} bytes a machine, with what the pollers recorded)",
            mib(size),
            size / MACHINES as u64
        );
        muster.shutdown();
        let _ = muster.wait().await;
    });
    let _ = std::fs::remove_dir_all(&dir);
}
