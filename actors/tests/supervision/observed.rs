//! What a tree tells its host: log lines with fields, and the report.

use std::time::Duration;

use muster_actors::{Mailbox, Metrics, Root, SupervisorSpec};
use slog::{Logger, o};
use tokio::time::sleep;

use super::support::{Capture, start_root};
use super::worker::{Boom, Log, Ping, Plan, Worker, worker};
use super::{config, report};

#[actix::test]
async fn starts_failures_restarts_and_shutdowns_are_logged_with_fields() {
    tokio::time::pause();
    let capture = Capture::default();
    let logger = Logger::root(capture.clone(), o!("host" => "test"));
    let log = Log::default();
    let mb = Mailbox::new(8);
    let root = Root::start(
        "root",
        SupervisorSpec::new(config()).child(worker("w", &mb, &log, |_| Plan::Run)),
        logger,
        Metrics::unregistered(),
    )
    .unwrap();
    sleep(Duration::from_millis(1)).await;
    let _ = mb.send(Boom).await;
    sleep(Duration::from_secs(4)).await;
    root.shutdown();
    root.wait().await.unwrap();
    let lines = capture.lines();
    let has = |parts: &[&str]| lines.iter().any(|l| parts.iter().all(|p| l.contains(p)));
    assert!(
        has(&[
            "INFO child started",
            "child=w",
            "start_count=1",
            "supervisor=root"
        ]),
        "{lines:#?}"
    );
    assert!(
        has(&[
            "ERRO child failed",
            "child=w",
            "error=panicked: boom",
            "recent_failures=1",
            "restart_in="
        ]),
        "{lines:#?}"
    );
    assert!(
        has(&["INFO child started", "child=w", "start_count=2"]),
        "{lines:#?}"
    );
    assert!(
        has(&["INFO supervisor shutting down", "supervisor=root"]),
        "{lines:#?}"
    );
    assert!(has(&["INFO child stopped", "child=w"]), "{lines:#?}");
}

#[actix::test]
async fn the_report_serialises_with_each_childs_state_and_own_report() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(8);
    let child = worker("w", &mb, &log, |_| Plan::Run)
        .report(mb.reporter(|w: &Worker| serde_json::json!({ "ticks": w.ticks })));
    let root = start_root(SupervisorSpec::new(config()).child(child));
    sleep(Duration::from_millis(1)).await;
    mb.send(Ping).await.unwrap();
    let json = serde_json::to_value(report(&root).await).unwrap();
    let w = &json["children"][0];
    assert_eq!(json["path"], "root");
    assert_eq!(w["name"], "w");
    assert_eq!(w["state"], "started");
    assert_eq!(w["restart"], "permanent");
    assert_eq!(w["start_count"], 1);
    assert_eq!(w["mailbox"]["handled"], 1);
    assert_eq!(w["report"], serde_json::json!({ "ticks": 0 }));
    assert!(w["started_at"].as_str().unwrap().ends_with('Z'));
    // The reporter's request is not counted as a message.
    assert_eq!(mb.stats().sent, 1);
}
