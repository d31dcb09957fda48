//! Mailboxes: exact counts, refusals when full or down, one child each.

use std::time::Duration;

use muster_actors::{
    ChildState, Exit, Mailbox, Metrics, RestartPolicy, Root, SendError, StatePolicy, SupervisorSpec,
};
use tokio::time::sleep;

use super::support::{logger, start_root};
use super::worker::{Boom, Log, Ping, Plan, Quit, Worker, worker};
use super::{config, report};

#[actix::test]
async fn mailbox_counts_are_exact_after_a_known_sequence() {
    tokio::time::pause();
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let log = Log::default();
    let mb = Mailbox::new(64);
    let root = Root::start(
        "root",
        SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)),
        logger(),
        metrics,
    )
    .unwrap();
    sleep(Duration::from_millis(1)).await;
    for _ in 0..10 {
        mb.do_send(Ping).unwrap();
    }
    assert_eq!(mb.stats().depth, 10);
    for _ in 0..5 {
        mb.send(Ping).await.unwrap();
    }
    let _ = mb.send(Boom).await;
    sleep(Duration::from_secs(4)).await;
    mb.send(Ping).await.unwrap();

    let stats = mb.stats();
    assert_eq!(stats.sent, 17);
    assert_eq!(stats.handled, 17);
    assert_eq!(stats.dropped, 0);
    assert_eq!(stats.depth, 0);
    assert_eq!(stats.high_water, 11);
    let r = report(&root).await;
    assert_eq!(r.child("w").unwrap().mailbox.as_ref(), Some(&stats));

    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    for line in [
        r#"muster_mailbox_sent_total{child="root/w"} 17"#,
        r#"muster_mailbox_handled_total{child="root/w"} 17"#,
        r#"muster_mailbox_depth{child="root/w"} 0"#,
        r#"muster_mailbox_depth_high_water{child="root/w"} 11"#,
        r#"muster_mailbox_handling_seconds_count{child="root/w"} 17"#,
        r#"muster_child_restarts_total{child="root/w",reason="failure"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
}

#[actix::test]
async fn a_full_mailbox_refuses_with_overloaded_at_once() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(3);
    let before = Mailbox::<Worker>::new(3);
    assert!(matches!(
        before.do_send(Ping).map_err(SendError::from),
        Err(SendError::NotRunning { .. })
    ));
    let _root =
        start_root(SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)));
    sleep(Duration::from_millis(1)).await;
    for _ in 0..3 {
        mb.do_send(Ping).unwrap();
    }
    let err = SendError::from(mb.do_send(Ping).unwrap_err());
    assert_eq!(
        err,
        SendError::Overloaded {
            child: "root/w".into(),
            capacity: 3
        }
    );
    assert_eq!(
        err.to_string(),
        "root/w is overloaded: its mailbox is full (3 messages)"
    );
    assert!(matches!(
        mb.send(Ping).await,
        Err(SendError::Overloaded { .. })
    ));
    sleep(Duration::from_millis(1)).await;
    // Once handled, there is room again.
    assert_eq!(mb.send(Ping).await, Ok(4));
    let stats = mb.stats();
    assert_eq!((stats.sent, stats.refused_overloaded), (4, 2));
}

#[actix::test]
async fn a_refused_message_is_handed_back_and_can_be_sent_again() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(1);
    let down = Mailbox::<Worker>::new(1);
    let refused = down.do_send(Quit(Exit::failed("first"))).unwrap_err();
    assert!(matches!(refused.error(), SendError::NotRunning { .. }));
    let Quit(exit) = refused.into_message();
    assert_eq!(exit, Exit::failed("first"));

    let root =
        start_root(SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)));
    sleep(Duration::from_millis(1)).await;
    mb.do_send(Ping).unwrap();
    let refused = mb
        .do_send(Quit(Exit::failed("lost its database")))
        .unwrap_err();
    assert_eq!(
        refused.to_string(),
        "root/w is overloaded: its mailbox is full (1 messages)"
    );
    let (quit, error) = refused.into_parts();
    assert!(matches!(error, SendError::Overloaded { capacity: 1, .. }));
    sleep(Duration::from_millis(1)).await;
    // Sent again once there is room, the very message takes effect.
    mb.do_send(quit).unwrap();
    sleep(Duration::from_millis(1)).await;
    let w = report(&root).await.child("w").unwrap().clone();
    assert_eq!(w.last_error.as_deref(), Some("lost its database"));
}

#[actix::test]
async fn a_mailbox_serves_one_child_only() {
    tokio::time::pause();
    let log = Log::default();
    let shared = Mailbox::new(8);
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("a", &shared, &log, |_| Plan::Run))
            .child(worker("b", &shared, &log, |_| Plan::Run).restart(RestartPolicy::Temporary)),
    );
    sleep(Duration::from_millis(1)).await;
    let r = report(&root).await;
    assert_eq!(r.child("a").unwrap().state, ChildState::Started);
    let b = r.child("b").unwrap();
    assert_eq!(b.state, ChildState::Failed);
    assert_eq!(
        b.last_error.as_deref(),
        Some("the mailbox given to root/b already belongs to root/a")
    );
    assert_eq!(shared.send(Ping).await, Ok(1));
}

#[actix::test]
async fn a_keeping_mailbox_of_a_child_that_stays_down_fills_and_refuses() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::keeping(4);
    let _root = start_root(
        SupervisorSpec::new(config()).child(
            worker("once", &mb, &log, |_| Plan::Run)
                .state(StatePolicy::Kept)
                .restart(RestartPolicy::Temporary),
        ),
    );
    sleep(Duration::from_millis(1)).await;
    let _ = mb.send(Boom).await;
    for _ in 0..4 {
        mb.do_send(Ping).unwrap();
    }
    assert!(matches!(
        mb.do_send(Ping).map_err(SendError::from),
        Err(SendError::Overloaded { capacity: 4, .. })
    ));
}
