//! The chaos run in the test suite: seed 11 for two minutes, with every
//! invariant held (docs/spec.md §15.2). The run itself is the `chaos`
//! example's; here the nodes run the `musterd` built for the tests.

#[path = "../examples/chaos/faults.rs"]
mod faults;
#[path = "support/nats.rs"]
#[allow(dead_code)]
mod nats;
#[path = "../examples/chaos/run.rs"]
mod run;
#[path = "../examples/chaos/swarm.rs"]
mod swarm;
#[path = "../examples/chaos/watch.rs"]
mod watch;
#[path = "../examples/chaos/world.rs"]
mod world;

use std::time::Duration;

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn seed_11_for_two_minutes_keeps_every_invariant() {
    let options = run::Options {
        seed: 11,
        duration: Duration::from_secs(120),
        musterd: env!("CARGO_BIN_EXE_musterd").into(),
        agents: 20,
    };
    let outcome = run::run(&options).await;
    println!("{}", outcome.summary(&options));
    assert!(outcome.faults > 0, "{outcome:?}");
    assert_eq!(
        outcome.violations,
        Vec::<String>::new(),
        "{}",
        outcome.summary(&options)
    );
}
