//! Failures that outgrow a supervisor: the restart intensity and fatal exits.

use std::time::Duration;

use muster_actors::{
    ChildSpec, Exit, Mailbox, RestartConfig, SupervisorRef, SupervisorSpec, TreeError,
};
use tokio::time::sleep;

use super::config;
use super::support::start_root;
use super::worker::{Log, Plan, Quit, worker};

#[actix::test]
async fn exceeded_intensity_fails_to_the_parent_and_the_root_reports_it() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(16);
    let fast = RestartConfig {
        error_delay: Duration::from_millis(100),
        max_restarts: 2,
        restart_window: Duration::from_secs(10),
        ..config()
    };
    let inner = SupervisorSpec::new(fast.clone()).child(worker("w", &mb, &log, |_| {
        Plan::ExitAfter(Duration::ZERO, Exit::failed("broken"))
    }));
    let inner_ref = SupervisorRef::new();
    let outer = RestartConfig {
        max_restarts: 1,
        restart_window: Duration::from_secs(60),
        ..fast
    };
    let root = start_root(
        SupervisorSpec::new(outer)
            .child(ChildSpec::supervisor("inner", inner, &inner_ref).unwrap()),
    );
    let err = root.wait().await.unwrap_err();
    match &err {
        TreeError::Failed(msg) => {
            assert!(msg.contains("restart intensity exceeded"), "{msg}");
            assert!(msg.contains("inner"), "{msg}");
        }
        other => panic!("unexpected {other:?}"),
    }
    // The inner supervisor gave up twice (3 failures each), the root once.
    assert_eq!(log.count("w:start"), 6);
    assert!(!mb.is_running());
}

#[actix::test]
async fn a_fatal_exit_stops_the_whole_tree_and_the_host_learns_it() {
    tokio::time::pause();
    let log = Log::default();
    let (a, x, y) = (Mailbox::new(16), Mailbox::new(16), Mailbox::new(16));
    let inner_ref = SupervisorRef::new();
    let inner = SupervisorSpec::new(config())
        .child(worker("x", &x, &log, |_| Plan::Run))
        .child(worker("y", &y, &log, |_| Plan::Run));
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("a", &a, &log, |_| Plan::Run))
            .child(ChildSpec::supervisor("inner", inner, &inner_ref).unwrap()),
    );
    sleep(Duration::from_millis(1)).await;
    x.do_send(Quit(Exit::fatal("disk gone"))).unwrap();
    let err = root.wait().await.unwrap_err();
    assert_eq!(err, TreeError::Fatal("root/inner/x: disk gone".into()));
    assert!(!a.is_running() && !y.is_running() && !inner_ref.mailbox().is_running());
    let stops = log.stops();
    assert_eq!(stops, ["x:stopped", "y:stopped", "a:stopped"]);
}
