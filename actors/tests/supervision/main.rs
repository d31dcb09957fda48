//! Behaviour of the supervision tree, on a paused tokio clock: one module
//! a concern, all starting the same test worker.

#[path = "../support/mod.rs"]
mod support;
mod worker;

mod dynamic;
mod escalation;
mod inputs;
mod mailboxes;
mod observed;
mod panics;
mod placement;
mod posting;
mod restarts;
mod shutdown;
mod specs;

use muster_actors::{Report, RestartConfig, Root};

/// The tests' restart settings: room for many restarts, and jitter from a
/// fixed seed so that the delays repeat.
fn config() -> RestartConfig {
    RestartConfig {
        max_restarts: 1000,
        jitter_seed: Some(42),
        ..RestartConfig::default()
    }
}

async fn report(root: &Root) -> Report {
    root.report().await.expect("root running")
}
