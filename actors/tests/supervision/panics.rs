//! Panics anywhere in a child are failures; kept state and a keeping
//! mailbox survive them.

use std::time::Duration;

use muster_actors::{
    ChildSpec, ChildState, Exit, Kept, Mailbox, SendError, StatePolicy, SupervisorSpec,
};
use tokio::time::sleep;

use super::support::start_root;
use super::worker::{Boom, Log, Ping, Plan, Quit, Worker, first, worker};
use super::{config, report};

#[actix::test]
async fn a_panic_in_a_handler_is_a_failure_and_the_child_restarts() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(16);
    let other = Mailbox::new(16);
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("w", &mb, &log, |_| Plan::Run))
            .child(worker("other", &other, &log, |_| Plan::Run)),
    );
    sleep(Duration::from_millis(1)).await;
    assert_eq!(mb.send(Ping).await, Ok(1));
    let lost = mb.send(Boom).await;
    assert!(matches!(lost, Err(SendError::Lost { .. })), "{lost:?}");
    sleep(Duration::from_millis(1)).await;
    let r = report(&root).await;
    let w = r.child("w").unwrap();
    assert_eq!(w.state, ChildState::Failed);
    assert_eq!(w.last_error.as_deref(), Some("panicked: boom"));
    assert!(matches!(
        mb.do_send(Ping).map_err(SendError::from),
        Err(SendError::NotRunning { .. })
    ));
    // The rest of the tree kept running.
    assert_eq!(other.send(Ping).await, Ok(1));
    sleep(Duration::from_secs(4)).await;
    assert_eq!(log.count("w:start"), 2);
    assert_eq!(mb.send(Ping).await, Ok(1));
    assert_eq!(report(&root).await.child("w").unwrap().restarts.failure, 1);
}

#[actix::test]
async fn a_panic_in_started_is_a_failure_and_the_child_restarts() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(16);
    let child = worker("w", &mb, &log, first(Plan::PanicInStarted));
    let root = start_root(SupervisorSpec::new(config()).child(child));
    sleep(Duration::from_secs(4)).await;
    assert_eq!(log.count("w:start"), 2);
    let w = report(&root).await.child("w").cloned().unwrap();
    assert_eq!(w.state, ChildState::Started);
    assert_eq!(w.last_error.as_deref(), Some("panicked: w cannot start"));
    assert_eq!(mb.send(Ping).await, Ok(1));
}

#[actix::test]
async fn a_panic_in_an_interval_callback_is_a_failure_and_the_child_restarts() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(16);
    let child = worker("w", &mb, &log, first(Plan::PanicOnTick(3)));
    let root = start_root(SupervisorSpec::new(config()).child(child));
    sleep(Duration::from_millis(3500)).await;
    let w = report(&root).await.child("w").cloned().unwrap();
    assert_eq!(w.state, ChildState::Failed);
    assert_eq!(w.last_error.as_deref(), Some("panicked: tick 3 went wrong"));
    sleep(Duration::from_secs(4)).await;
    assert_eq!(log.count("w:start"), 2);
    assert_eq!(mb.send(Ping).await, Ok(1));
}

#[actix::test]
async fn a_panic_in_stopping_is_a_failure_too() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(8);
    let child = worker("w", &mb, &log, first(Plan::PanicInStopping));
    let root = start_root(SupervisorSpec::new(config()).child(child));
    sleep(Duration::from_millis(1)).await;
    mb.do_send(Quit(Exit::Bounce)).unwrap();
    sleep(Duration::from_millis(1)).await;
    let w = report(&root).await.child("w").cloned().unwrap();
    assert_eq!(w.last_error.as_deref(), Some("panicked: w cannot stop"));
    assert_eq!(w.state, ChildState::Failed);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(mb.send(Ping).await, Ok(1));
    // The host can wait on one handle and shut down through another.
    let waiter = root.clone();
    let waiting = actix::spawn(async move { waiter.wait().await });
    assert!(!root.is_stopped());
    root.shutdown();
    assert_eq!(waiting.await.unwrap(), Ok(()));
    assert!(root.is_stopped());
    assert_eq!(root.wait().await, Ok(()));
}

#[actix::test]
async fn a_panic_in_the_start_function_is_a_failure_too() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(8);
    let mut starts = 0;
    let log2 = log.clone();
    let spec = ChildSpec::actor("w", &mb, move |cx| {
        starts += 1;
        log2.push("w:attempt");
        if starts == 1 {
            panic!("no config");
        }
        Ok(Worker {
            name: "w".into(),
            exit: cx.exit_slot(),
            log: log2.clone(),
            kept: Kept::new(0),
            plan: Plan::Run,
            ticks: 0,
        })
    });
    let root = start_root(SupervisorSpec::new(config()).child(spec));
    sleep(Duration::from_millis(1)).await;
    let w = report(&root).await.child("w").cloned().unwrap();
    assert_eq!(w.last_error.as_deref(), Some("panicked: no config"));
    assert_eq!(w.state, ChildState::Failed);
    sleep(Duration::from_secs(4)).await;
    assert_eq!(log.count("w:attempt"), 2);
    assert_eq!(mb.send(Ping).await, Ok(1));
}

#[actix::test]
async fn kept_state_survives_a_panic_and_rebuilt_state_does_not() {
    tokio::time::pause();
    let log = Log::default();
    let kept = Mailbox::new(16);
    let rebuilt = Mailbox::new(16);
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("kept", &kept, &log, |_| Plan::Run).state(StatePolicy::Kept))
            .child(worker("rebuilt", &rebuilt, &log, |_| Plan::Run)),
    );
    sleep(Duration::from_millis(1)).await;
    for mb in [&kept, &rebuilt] {
        for _ in 0..3 {
            mb.send(Ping).await.unwrap();
        }
        let _ = mb.send(Boom).await;
    }
    sleep(Duration::from_secs(4)).await;
    assert_eq!(kept.send(Ping).await, Ok(4));
    assert_eq!(rebuilt.send(Ping).await, Ok(1));
    let r = report(&root).await;
    assert_eq!(r.child("kept").unwrap().state_policy, StatePolicy::Kept);
    assert_eq!(
        r.child("rebuilt").unwrap().state_policy,
        StatePolicy::Rebuilt
    );
}

#[actix::test]
async fn a_keeping_mailbox_loses_nothing_but_the_message_that_panicked() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::keeping(64);
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("kept", &mb, &log, |_| Plan::Run).state(StatePolicy::Kept)),
    );
    sleep(Duration::from_millis(1)).await;
    // Queued behind the panic: held for the next instance, not dropped.
    let before: Vec<_> = (0..3).map(|_| mb.send(Ping)).collect();
    mb.do_send(Boom).unwrap();
    let behind: Vec<_> = (0..5).map(|_| mb.send(Ping)).collect();
    let answers = futures::future::join_all(before).await;
    assert_eq!(answers, [Ok(1), Ok(2), Ok(3)]);
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        report(&root).await.child("kept").unwrap().state,
        ChildState::Failed
    );
    // Sent while the child waits to restart: held too, behind the others.
    let during: Vec<_> = (0..2).map(|_| mb.send(Ping)).collect();
    assert_eq!(mb.stats().depth, 7);

    let behind = futures::future::join_all(behind).await;
    let during = futures::future::join_all(during).await;
    assert_eq!(behind, [Ok(4), Ok(5), Ok(6), Ok(7), Ok(8)]);
    assert_eq!(during, [Ok(9), Ok(10)]);
    assert_eq!(log.count("kept:start"), 2);
    let stats = mb.stats();
    assert_eq!((stats.depth, stats.dropped), (0, 0));
}
