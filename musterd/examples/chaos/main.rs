//! A seeded chaos run of a muster cluster (docs/operations.md, "Chaos
//! runs"): three `musterd` nodes on a routed cluster of three NATS
//! servers, agents on every door, simulated models whose clouds fail and
//! throttle, registry writes through every node; faults drawn from the
//! seed (SIGKILL and restart of a node or a NATS server, SIGSTOP of a node
//! for longer or shorter than the lease, every agent of a door dropped at
//! once) and healed, with the invariants checked the whole time.
//!
//! ```text
//! cargo run --release -p musterd --example chaos -- --duration 2m --seed 11
//! ```
//!
//! The nodes run the `musterd` beside this program (`target/release/`),
//! built first when it is missing, or the one `--musterd` names. It
//! prints the faults and any violation as they happen, and last
//! `chaos: seed S, D, faults F, violations V, longest convergence T`; it
//! exits with 1 when V > 0. It needs `nats-server` on `PATH`.

mod faults;
#[path = "../../tests/support/nats.rs"]
#[allow(dead_code)]
mod nats;
mod run;
mod swarm;
mod watch;
mod world;

use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;

use run::Options;

fn usage() -> ! {
    eprintln!("usage: chaos [--duration 2m] [--seed 11] [--agents 20] [--musterd PATH]");
    std::process::exit(2)
}

fn options() -> Options {
    let mut options = Options {
        seed: 11,
        duration: Duration::from_secs(120),
        musterd: PathBuf::new(),
        agents: 20,
    };
    let mut musterd = None;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().unwrap_or_else(|| usage());
        let bad = |what: &str| -> ! {
            eprintln!("chaos: {flag} {value:?}: {what}");
            std::process::exit(2)
        };
        match flag.as_str() {
            "--duration" => {
                options.duration =
                    humantime::parse_duration(&value).unwrap_or_else(|e| bad(&e.to_string()));
            }
            "--seed" => options.seed = value.parse().unwrap_or_else(|_| bad("not a number")),
            "--agents" => match value.parse() {
                Ok(n) if (1..=1000).contains(&n) => options.agents = n,
                _ => bad("wants 1 to 1000"),
            },
            "--musterd" => musterd = Some(PathBuf::from(value)),
            _ => usage(),
        }
    }
    options.musterd = musterd.unwrap_or_else(beside);
    options
}

/// The `musterd` built beside this example, built now when missing.
fn beside() -> PathBuf {
    let me = std::env::current_exe().expect("the program's path");
    let profile = me
        .parent()
        .and_then(|examples| examples.parent())
        .expect("examples/ under a profile's directory");
    let musterd = profile.join("musterd");
    if !musterd.exists() {
        let release = profile.ends_with("release");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "musterd", "--bin", "musterd"]);
        if release {
            build.arg("--release");
        }
        let built = build.status().is_ok_and(|s| s.success());
        if !built || !musterd.exists() {
            eprintln!(
                "chaos: no {} and it could not be built; give --musterd",
                musterd.display()
            );
            std::process::exit(2);
        }
    }
    musterd
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() -> ExitCode {
    let options = options();
    let outcome = run::run(&options).await;
    println!("{}", outcome.summary(&options));
    if outcome.violations.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
