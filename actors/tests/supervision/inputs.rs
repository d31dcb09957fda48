//! Children that need others as inputs: bounced with them, waiting for them.

use std::time::Duration;

use muster_actors::{ChildSpec, ChildState, Exit, Mailbox, SendError, SupervisorSpec};
use tokio::time::sleep;

use super::support::start_root;
use super::worker::{Log, Ping, Plan, Quit, Worker, worker};
use super::{config, report};

#[actix::test]
async fn dependents_are_bounced_when_an_input_restarts() {
    tokio::time::pause();
    let log = Log::default();
    let a = Mailbox::new(16);
    let b = Mailbox::new(16);
    let log_b = log.clone();
    let b_spec = ChildSpec::actor("b", &b, move |cx| {
        let input: Mailbox<Worker> = cx.input("a")?;
        assert!(input.is_running());
        log_b.push("b:start");
        Ok(Worker::running("b", cx, &log_b))
    })
    .inputs(["a"]);
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("a", &a, &log, |_| Plan::Run))
            .child(b_spec),
    );
    sleep(Duration::from_millis(1)).await;
    assert_eq!(log.count("b:start"), 1);
    a.do_send(Quit(Exit::Bounce)).unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(log.count("a:start"), 2);
    assert_eq!(log.count("b:start"), 2);
    let r = report(&root).await;
    let rb = r.child("b").unwrap();
    assert_eq!(rb.restarts.dependency, 1);
    assert_eq!(rb.inputs, vec!["a".to_owned()]);
    assert_eq!(rb.state, ChildState::Started);
    assert_eq!(r.child("a").unwrap().restarts.bounce, 1);
    // The bounce delay: b restarts 10 ms after it was stopped (the timer
    // wheel rounds up to the next millisecond).
    let bounced = log.times("b:stopped")[0];
    let gap = log.times("b:start")[1] - bounced;
    assert!(
        gap >= Duration::from_millis(10) && gap <= Duration::from_millis(11),
        "{gap:?}"
    );
}

#[actix::test]
async fn a_child_missing_an_input_waits_until_the_input_starts() {
    tokio::time::pause();
    let log = Log::default();
    let a = Mailbox::new(16);
    let b = Mailbox::new(16);
    let log_b = log.clone();
    let b_spec = ChildSpec::actor("b", &b, move |cx| {
        log_b.push("b:attempt");
        let _: Mailbox<Worker> = cx.input("a")?;
        Ok(Worker::running("b", cx, &log_b))
    })
    .inputs(["a"]);
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("a", &a, &log, |_| Plan::Run))
            .child(b_spec),
    );
    sleep(Duration::from_millis(1)).await;
    a.do_send(Quit(Exit::failed("lost its database"))).unwrap();
    sleep(Duration::from_secs(1)).await;
    // b was bounced, found a missing, and waits without retrying.
    let r = report(&root).await;
    let rb = r.child("b").unwrap();
    assert!(rb.waiting_for_input);
    assert_eq!(rb.state, ChildState::Stopped);
    assert_eq!(rb.last_exit, Some(Exit::missing("a")));
    assert_eq!(log.count("b:attempt"), 2);
    assert!(matches!(
        b.do_send(Ping).map_err(SendError::from),
        Err(SendError::NotRunning { .. })
    ));
    sleep(Duration::from_secs(10)).await;
    // a restarted after its error delay; b started right after it.
    assert_eq!(log.count("a:start"), 2);
    assert_eq!(log.count("b:attempt"), 3);
    assert_eq!(log.times("b:started")[1], log.times("a:start")[1]);
    assert!(b.send(Ping).await.is_ok());
}
