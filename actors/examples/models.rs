//! Provider calls for many models; run in release:
//!
//! ```sh
//! cargo run --release -p muster-actors --example models
//! ```
//!
//! 3 models of 1,000 machines each, on tokio's paused clock: the first hour
//! (every machine boots, settles and is polled long), then an hour of long
//! polls. Once with the three models sharing one cloud account, so one
//! gateway batches their polls together, and once with an account, and so
//! a gateway, per model, as batching per model would do. Each against one
//! provider call per machine per poll. The machines come all at once (a
//! model deployed in one go), or one every 100 ms, in turn over the
//! models, for five minutes (machines added as units are).

use std::sync::Arc;
use std::time::Duration;

use muster::clock::SystemClock;
use muster::names::ModelUuid;
use muster::sim::{Sim, SimAccount, SimConfig};
use muster_actors::{CloudAccount, Fleet, ModelBackends, Muster, MusterConfig};
use prometheus_client::registry::Registry;
use slog::{Discard, Logger, o};

const MODELS: usize = 3;
const MACHINES: usize = 1_000;

/// Calls and polls in one stretch of time.
struct Figures {
    instance_calls: u64,
    interface_calls: u64,
    polls: u64,
}

async fn total_polls(muster: &Muster) -> u64 {
    let machines = muster.machines().machines().await.unwrap();
    machines.iter().map(|s| s.polls).sum()
}

async fn calls(muster: &Muster) -> (u64, u64) {
    let gateway = muster.gateway().await.unwrap();
    let get = |method: &str| gateway.calls.get(method).copied().unwrap_or(0);
    (get("instances"), get("network_interfaces"))
}

/// The first hour and the next, with the models on one account or on one
/// each, the machines all there at once or coming one by one.
fn run(shared: bool, at_once: bool) -> (Figures, Figures) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    actix::System::with_tokio_rt(|| runtime).block_on(async move {
        let mut accounts: Vec<(String, SimAccount)> = Vec::new();
        let mut models = Vec::new();
        let mut sims = Vec::new();
        for n in 0..MODELS {
            if !shared || n == 0 {
                accounts.push((format!("account-{n}"), SimAccount::new()));
            }
            let (name, account) = accounts.last_mut().unwrap();
            let sim: Sim = account.add_model(SimConfig::default()).unwrap();
            if at_once {
                for _ in 0..MACHINES {
                    sim.add_provisioned_machine();
                }
            }
            sims.push(sim.clone());
            models.push(ModelBackends {
                uuid: ModelUuid::from_u128(n as u128 + 1),
                name: None,
                account: name.clone(),
                facade: sim.facade(),
                credentials: sim.credential_api(),
            });
        }
        let fleet = Fleet {
            accounts: accounts
                .iter()
                .map(|(name, account)| CloudAccount {
                    name: name.clone(),
                    environ: account.environ(),
                })
                .collect(),
            models,
            clock: Arc::new(SystemClock),
        };
        let muster = Muster::start(
            &MusterConfig::default(),
            fleet,
            Logger::root(Discard, o!()),
            &mut Registry::default(),
        )
        .unwrap();
        if !at_once {
            tokio::task::spawn_local(async move {
                for n in 0..MODELS * MACHINES {
                    sims[n % MODELS].add_provisioned_machine();
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        }
        let mut figures = Vec::new();
        let (mut polls, mut seen) = (0, (0, 0));
        for _ in 0..2 {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            let now_polls = total_polls(&muster).await;
            let now = calls(&muster).await;
            figures.push(Figures {
                instance_calls: now.0 - seen.0,
                interface_calls: now.1 - seen.1,
                polls: now_polls - polls,
            });
            (polls, seen) = (now_polls, now);
        }
        muster.shutdown();
        let _ = muster.wait().await;
        let second = figures.pop().unwrap();
        (figures.pop().unwrap(), second)
    })
}

fn print(what: &str, figures: &Figures) {
    let calls = figures.instance_calls + figures.interface_calls;
    println!(
        "  {what}: {} polls, {calls} provider calls ({} instances + {} interfaces); \
         one call per machine per poll: {}, {:.0}x more",
        figures.polls,
        figures.instance_calls,
        figures.interface_calls,
        2 * figures.polls,
        (2 * figures.polls) as f64 / calls.max(1) as f64
    );
}

fn main() {
    for (at_once, coming) in [(true, "all at once"), (false, "one every 100 ms")] {
        for (shared, title) in [
            (true, "one cloud account shared by the models"),
            (false, "a cloud account (a gateway) per model"),
        ] {
            let (first, second) = run(shared, at_once);
            println!(
                "{MODELS} models x {MACHINES} machines coming {coming}, {title} (paused clock):"
            );
            print("first hour (boot, settle)", &first);
            print("second hour (long polls)", &second);
        }
    }
}
