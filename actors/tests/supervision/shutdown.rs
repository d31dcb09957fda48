//! Shutdown: reverse start order, and the kill that follows a timeout.

use std::time::Duration;

use muster_actors::{ChildSpec, Mailbox, SupervisorRef, SupervisorSpec};
use tokio::time::{Instant, sleep};

use super::config;
use super::support::start_root;
use super::worker::{Log, Plan, worker};

#[actix::test]
async fn shutdown_stops_children_in_reverse_start_order_killing_the_slow() {
    tokio::time::pause();
    let log = Log::default();
    let (a, b, c) = (Mailbox::new(16), Mailbox::new(16), Mailbox::new(16));
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("a", &a, &log, |_| Plan::Run))
            .child(worker("b", &b, &log, |_| Plan::IgnoreStop))
            .child(worker("c", &c, &log, |_| Plan::Run)),
    );
    sleep(Duration::from_millis(1)).await;
    let begun = Instant::now();
    assert!(root.shutdown());
    root.wait().await.unwrap();
    // b ignored the stop; it was killed after the 5 s shutdown timeout.
    let took = Instant::now() - begun;
    assert!(
        took >= Duration::from_secs(5) && took <= Duration::from_millis(5002),
        "{took:?}"
    );
    let stops = log.stops();
    // b never got to `stopped`: it was killed, and a stopped only after that.
    assert_eq!(stops, ["c:stopped", "a:stopped"]);
    assert!(log.times("a:stopped")[0] - begun >= Duration::from_secs(5));
    assert!(!b.is_running());
}

#[actix::test]
async fn a_killed_supervisor_takes_its_children_with_it() {
    tokio::time::pause();
    let log = Log::default();
    let stuck = Mailbox::new(8);
    let inner_ref = SupervisorRef::new();
    let inner =
        SupervisorSpec::new(config()).child(worker("stuck", &stuck, &log, |_| Plan::IgnoreStop));
    let root = start_root(
        SupervisorSpec::new(config()).child(
            ChildSpec::supervisor("inner", inner, &inner_ref)
                .unwrap()
                .shutdown_timeout(Some(Duration::from_secs(1))),
        ),
    );
    sleep(Duration::from_millis(1)).await;
    let begun = Instant::now();
    root.shutdown();
    root.wait().await.unwrap();
    // The inner supervisor waited for its child (5 s) longer than its parent
    // waited for it (1 s): it was killed, and its child with it.
    let took = Instant::now() - begun;
    assert!(
        took >= Duration::from_secs(1) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert!(!inner_ref.mailbox().is_running());
    assert!(!stuck.is_running());
}
