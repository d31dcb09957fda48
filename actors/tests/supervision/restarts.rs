//! Restart delays, their back-off and its reset, and the restart policies.

use std::time::Duration;

use muster_actors::{
    ChildSpec, ChildState, Exit, Mailbox, RestartConfig, RestartPolicy, SendError, SupervisorRef,
    SupervisorSpec,
};
use tokio::time::{Instant, sleep};

use super::support::start_root;
use super::worker::{Log, Ping, Plan, Quit, Worker, first, worker};
use super::{config, report};

fn gaps(times: &[Instant]) -> Vec<f64> {
    times
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect()
}

fn within_jitter(actual: f64, base: f64) -> bool {
    actual >= base * 0.9 - 1e-6 && actual <= base * 1.1 + 1e-6
}

#[actix::test]
async fn restart_delays_grow_by_the_factor_up_to_the_cap() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(16);
    let cfg = RestartConfig {
        max_delay: Duration::from_secs(10),
        ..config()
    };
    let root = start_root(SupervisorSpec::new(cfg).child(worker("w", &mb, &log, |_| {
        Plan::ExitAfter(Duration::ZERO, Exit::failed("broken"))
    })));
    sleep(Duration::from_secs(80)).await;
    let starts = log.times("w:start");
    assert!(starts.len() >= 10, "{} starts", starts.len());
    let expected = [3.0, 3.6, 4.32, 5.184, 6.2208, 7.46496, 8.957952, 10.0, 10.0];
    for (gap, base) in gaps(&starts).iter().zip(expected) {
        assert!(within_jitter(*gap, base), "gap {gap} for base {base}");
    }
    let r = report(&root).await;
    let w = r.child("w").unwrap();
    assert_eq!(w.last_error.as_deref(), Some("broken"));
    assert_eq!(w.restarts.failure as usize, starts.len());
    assert_eq!(w.state, ChildState::Failed);
}

#[actix::test]
async fn recent_failures_reset_after_a_long_run() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(16);
    let root = start_root(
        SupervisorSpec::new(config()).child(worker("w", &mb, &log, |n| {
            // Runs for two minutes on its fourth start, fails at once otherwise.
            let run = if n == 4 { 120 } else { 0 };
            Plan::ExitAfter(Duration::from_secs(run), Exit::failed("broken"))
        })),
    );
    sleep(Duration::from_secs(150)).await;
    let starts = log.times("w:start");
    assert!(starts.len() >= 6);
    let g = gaps(&starts);
    assert!(within_jitter(g[0], 3.0));
    assert!(within_jitter(g[1], 3.6));
    assert!(within_jitter(g[2], 4.32));
    // 120 s of running, then the count starts again at one.
    assert!(within_jitter(g[3] - 120.0, 3.0), "{}", g[3]);
    assert!(within_jitter(g[4], 3.6));
    drop(root);
}

#[actix::test]
async fn restart_policies_decide_what_follows_an_exit() {
    tokio::time::pause();
    let log = Log::default();
    let mbs: Vec<Mailbox<Worker>> = (0..5).map(|_| Mailbox::new(8)).collect();
    let once = |exit: Exit| first(Plan::ExitAfter(Duration::from_secs(1), exit));
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("perm-done", &mbs[0], &log, once(Exit::Done)))
            .child(
                worker("trans-done", &mbs[1], &log, once(Exit::Done))
                    .restart(RestartPolicy::Transient),
            )
            .child(
                worker("trans-failed", &mbs[2], &log, once(Exit::failed("x")))
                    .restart(RestartPolicy::Transient),
            )
            .child(
                worker("temp-failed", &mbs[3], &log, once(Exit::failed("x")))
                    .restart(RestartPolicy::Temporary),
            )
            .child(
                worker("temp-bounce", &mbs[4], &log, once(Exit::Bounce))
                    .restart(RestartPolicy::Temporary),
            ),
    );
    sleep(Duration::from_secs(10)).await;
    let r = report(&root).await;
    let state = |name: &str| {
        let c = r.child(name).unwrap();
        (c.state, c.start_count)
    };
    assert_eq!(state("perm-done"), (ChildState::Started, 2));
    assert_eq!(state("trans-done"), (ChildState::Stopped, 1));
    assert_eq!(state("trans-failed"), (ChildState::Started, 2));
    assert_eq!(state("temp-failed"), (ChildState::Failed, 1));
    assert_eq!(state("temp-bounce"), (ChildState::Stopped, 1));
    assert_eq!(r.child("perm-done").unwrap().restarts.done, 1);
    let gap = log.times("perm-done:start")[1] - log.times("perm-done:stopped")[0];
    assert!(
        gap >= Duration::from_millis(10) && gap <= Duration::from_millis(11),
        "{gap:?}"
    );
}

#[actix::test]
async fn uninstall_removes_the_child_for_good() {
    tokio::time::pause();
    let log = Log::default();
    let a = Mailbox::new(16);
    let root =
        start_root(SupervisorSpec::new(config()).child(worker("a", &a, &log, |_| Plan::Run)));
    sleep(Duration::from_millis(1)).await;
    a.do_send(Quit(Exit::Uninstall)).unwrap();
    sleep(Duration::from_secs(600)).await;
    assert_eq!(log.count("a:start"), 1);
    assert!(report(&root).await.child("a").is_none());
    assert!(matches!(
        a.do_send(Ping).map_err(SendError::from),
        Err(SendError::NotRunning { .. })
    ));
}

#[actix::test]
async fn a_killed_child_is_restarted_as_after_a_failure_and_its_siblings_run_on() {
    tokio::time::pause();
    let log = Log::default();
    let (a, b) = (Mailbox::new(16), Mailbox::new(16));
    let root = start_root(
        SupervisorSpec::new(config())
            .child(worker("a", &a, &log, |_| Plan::Run))
            .child(worker("b", &b, &log, |_| Plan::Run)),
    );
    sleep(Duration::from_millis(1)).await;
    root.supervisor().kill("a").await.unwrap();
    sleep(Duration::from_secs(10)).await;
    let r = report(&root).await;
    let killed = r.child("a").unwrap();
    assert_eq!((killed.state, killed.start_count), (ChildState::Started, 2));
    assert_eq!(killed.restarts.failure, 1);
    assert_eq!(killed.last_error.as_deref(), Some("killed on request"));
    // Killed, the instance is dropped where it ran: actix runs its
    // `stopping` and `stopped` once, before the restart.
    assert_eq!(log.count("a:stopped"), 1);
    assert!(log.times("a:stopped")[0] <= log.times("a:start")[1]);
    let sibling = r.child("b").unwrap();
    assert_eq!(
        (sibling.state, sibling.start_count),
        (ChildState::Started, 1)
    );
    a.send(Ping).await.unwrap();
    // Nothing by that name runs: refused, naming it.
    let refused = root.supervisor().kill("c").await.unwrap_err();
    assert_eq!(refused.to_string(), "root has no running child called c");
}

#[actix::test]
async fn a_child_of_a_nested_supervisor_is_killed_by_its_path() {
    tokio::time::pause();
    let log = Log::default();
    let inner = Mailbox::new(16);
    let nested = SupervisorSpec::new(config()).child(worker("w", &inner, &log, |_| Plan::Run));
    let nested = ChildSpec::supervisor("sub", nested, &SupervisorRef::new()).unwrap();
    let root = start_root(SupervisorSpec::new(config()).child(nested));
    sleep(Duration::from_millis(1)).await;
    root.supervisor().kill("sub/w").await.unwrap();
    sleep(Duration::from_secs(10)).await;
    let r = report(&root).await;
    let sub = r.child("sub").unwrap();
    // The nested supervisor ran on; its child was restarted by it.
    assert_eq!(sub.start_count, 1);
    let w = sub.report.as_ref().and_then(|r| r.get("children")).unwrap();
    assert_eq!(w[0]["start_count"], 2, "{w}");
    assert_eq!(w[0]["restarts"]["failure"], 1, "{w}");
    let refused = root.supervisor().kill("sub/x/y").await.unwrap_err();
    assert_eq!(
        refused.to_string(),
        "root/sub has no running child called x"
    );
}
