//! `Mailbox::post`: messages queued beside the actix mailbox, taken in one
//! go, in order, metered one by one, and kept or dropped on a failure as
//! sent messages are.

use std::time::Duration;

use muster_actors::{Mailbox, SendError, StatePolicy, SupervisorSpec};
use tokio::time::sleep;

use super::config;
use super::support::start_root;
use super::worker::{Log, Note, Ping, Plan, worker};

fn notes(log: &Log) -> Vec<String> {
    log.events()
        .into_iter()
        .filter(|e| e.starts_with("note:"))
        .collect()
}

fn expected(ns: impl IntoIterator<Item = u32>) -> Vec<String> {
    ns.into_iter().map(|n| format!("note:{n}")).collect()
}

#[actix::test]
async fn posted_messages_come_in_order_before_what_is_sent_after_them() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(1000);
    let _root =
        start_root(SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)));
    sleep(Duration::from_millis(1)).await;
    for n in 0..100 {
        mb.post(Note(n)).unwrap();
        if n == 49 {
            // A message sent between posts comes after the ones before it.
            mb.do_send(Ping).unwrap();
        }
    }
    assert_eq!(mb.stats().depth, 101);
    // Sent after every post: answered once all of them have run.
    assert_eq!(mb.send(Ping).await, Ok(2));
    assert_eq!(notes(&log), expected(0..100));
    let stats = mb.stats();
    assert_eq!((stats.sent, stats.handled, stats.depth), (102, 102, 0));
}

#[actix::test]
async fn a_full_mailbox_refuses_a_post_and_hands_the_message_back() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(8);
    let _root =
        start_root(SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)));
    sleep(Duration::from_millis(1)).await;
    let mut refused = Vec::new();
    for n in 0..20 {
        if let Err(e) = mb.post(Note(n)) {
            assert!(matches!(
                e.error(),
                SendError::Overloaded { capacity: 8, .. }
            ));
            refused.push(e.into_message().0);
        }
    }
    assert_eq!(refused, (8..20).collect::<Vec<_>>());
    sleep(Duration::from_millis(1)).await;
    assert_eq!(notes(&log), expected(0..8));
    // Room again once they ran.
    mb.post(Note(8)).unwrap();
    mb.send(Ping).await.unwrap();
    assert_eq!(notes(&log), expected(0..9));
    assert_eq!(mb.stats().refused_overloaded, 12);
}

#[actix::test]
async fn a_keeping_mailbox_loses_only_the_posted_message_that_panicked() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::keeping(64);
    let _root = start_root(
        SupervisorSpec::new(config())
            .child(worker("kept", &mb, &log, |_| Plan::Run).state(StatePolicy::Kept)),
    );
    sleep(Duration::from_millis(1)).await;
    for n in [0, 1, 2, Note::BOOM, 3, 4] {
        mb.post(Note(n)).unwrap();
    }
    sleep(Duration::from_millis(1)).await;
    // Posted while the child waits to restart: held, behind the others.
    mb.post(Note(5)).unwrap();
    sleep(Duration::from_secs(10)).await;
    assert_eq!(log.count("kept:start"), 2);
    assert_eq!(notes(&log), expected(0..6));
    let stats = mb.stats();
    assert_eq!((stats.handled, stats.depth, stats.dropped), (7, 0, 0));
}

#[actix::test]
async fn a_plain_mailbox_drops_and_counts_what_was_posted_behind_a_panic() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(64);
    let _root =
        start_root(SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)));
    sleep(Duration::from_millis(1)).await;
    for n in [0, 1, Note::BOOM, 2, 3] {
        mb.post(Note(n)).unwrap();
    }
    sleep(Duration::from_millis(1)).await;
    let refused = mb.post(Note(4)).map_err(|e| e.error().clone());
    assert!(
        matches!(refused, Err(SendError::NotRunning { .. })),
        "{refused:?}"
    );
    sleep(Duration::from_secs(10)).await;
    assert_eq!(log.count("w:start"), 2);
    mb.post(Note(5)).unwrap();
    mb.send(Ping).await.unwrap();
    assert_eq!(notes(&log), expected([0, 1, 5]));
    let stats = mb.stats();
    assert_eq!(
        (stats.dropped, stats.depth, stats.refused_not_running),
        (2, 0, 1)
    );
}
