//! What checking each agent's own password costs at login, against the
//! shared token (docs/performance.md). Run in release:
//!
//! ```sh
//! cargo run --release -p musterd --example login_cost [LOGINS]
//! ```
//!
//! Prints:
//! - the check alone: hashing a given password with SHA-256 and comparing
//!   it in constant time, per login;
//! - the stored hash's lookup in the registry (SQLite in memory), per
//!   login;
//! - a reconnect storm of LOGINS (default 10,000) logins, 256 in flight,
//!   against a daemon in this process, once with `auth = "token"` and once
//!   with `auth = "password"`: the wall time, and the process's CPU time per
//!   login (the clients' included, the same in both). Each session closes
//!   once answered, so that the sockets fit the usual open-files limit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use muster::names::{AgentTag, ModelUuid};
use muster::password::{self, PasswordHash};
use muster_door::client::{Client, Login};
use musterd::Hosted;
use musterd::config::DaemonConfig;
use slog::{Discard, Logger, o};

const MODEL: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";

/// Logins in flight at once in the storm.
const IN_FLIGHT: usize = 256;

/// The process's CPU time so far (user and system), from /proc.
fn cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command's closing parenthesis: utime and stime
    // are the 12th and 13th, in clock ticks of 1/100 s.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_millis(ticks * 10)
}

fn per(total: Duration, n: usize) -> String {
    let ns = total.as_nanos() as f64 / n as f64;
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else {
        format!("{:.1} µs", ns / 1000.0)
    }
}

fn agent(i: usize) -> AgentTag {
    format!("machine-{i}").parse().unwrap()
}

/// The check alone: the hash of the given password, compared.
fn check_alone(n: usize) {
    let given = password::generate().unwrap();
    let stored = PasswordHash::of(&given);
    let started = Instant::now();
    let mut right = 0usize;
    for _ in 0..n {
        right += usize::from(stored.matches(std::hint::black_box(&given)));
    }
    let took = started.elapsed();
    assert_eq!(right, n);
    println!(
        "check alone (SHA-256 of the given password, constant-time compare): {} per login, {:.1} ms for {n}",
        per(took, n),
        took.as_secs_f64() * 1000.0
    );
}

async fn storm(auth: &str, logins: usize) {
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\
         [agents]\nlisten = \"127.0.0.1:0\"\nauth = \"{auth}\"\nmax_connections = 1000000\n\
         [store]\npath = \":memory:\"\n\
         [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n"
    );
    let config = DaemonConfig::from_toml(&text).unwrap();
    let logger = Logger::root(Discard, o!());
    let hosted = Hosted::start(&config, &logger).await.unwrap();
    // As `musterd run` does once started.
    hosted.muster.presence().enable().await.unwrap();
    let model: ModelUuid = MODEL.parse().unwrap();
    let mut passwords = vec![None; logins];
    if auth == "password" {
        let registry = hosted.registry.clone().unwrap();
        let started = Instant::now();
        for (i, slot) in passwords.iter_mut().enumerate() {
            *slot = Some(
                registry
                    .provision_password(model, agent(i))
                    .await
                    .unwrap()
                    .password,
            );
        }
        let took = started.elapsed();
        // The lookup a login makes, alone.
        let started = Instant::now();
        for i in 0..logins {
            assert!(registry.password(model, agent(i)).await.unwrap().is_some());
        }
        let looked = started.elapsed();
        println!(
            "provisioning {logins} passwords: {} each; the stored hash's lookup: {} per login",
            per(took, logins),
            per(looked, logins)
        );
    }
    let client = Arc::new(
        Client::new(&hosted.door.url(), None)
            .unwrap()
            .resolved()
            .await
            .unwrap(),
    );
    let (cpu_before, started) = (cpu(), Instant::now());
    let failed = futures::stream::iter(passwords.into_iter().enumerate())
        .map(|(i, password)| {
            let client = client.clone();
            async move {
                let login = Login::new(model, agent(i)).with_password(password);
                match client.login(&login).await {
                    Ok(session) => {
                        session.close().await;
                        0usize
                    }
                    Err(failure) => {
                        if i == 0 {
                            eprintln!("the first login failed: {failure}");
                        }
                        1
                    }
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .fold(0, |sum, failed| async move { sum + failed })
        .await;
    let (took, used) = (started.elapsed(), cpu() - cpu_before);
    println!(
        "storm of {logins} logins, auth = {auth:?}: {:.2} s ({} per login), CPU {:.2} s ({} per login), {failed} failed",
        took.as_secs_f64(),
        per(took, logins),
        used.as_secs_f64(),
        per(used, logins),
    );
    hosted.stop(&logger).await.unwrap();
}

fn main() {
    let logins: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("LOGINS is a number"))
        .unwrap_or(10_000);
    check_alone(1_000_000);
    actix::System::new().block_on(async move {
        storm("token", logins).await;
        storm("password", logins).await;
    });
}
