//! Behaviour of the supervision tree, on a paused tokio clock.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use muster_actors::{
    ChildSpec, ChildState, DynamicPolicy, Exit, ExitSlot, Kept, Mailbox, Metrics, Report,
    RestartConfig, RestartPolicy, Root, SendError, StartCtx, StatePolicy, SupervisorRef,
    SupervisorSpec, TreeError,
};
use slog::{Logger, o};
use support::{Capture, logger, start_root};
use tokio::time::{Instant, sleep};

fn config() -> RestartConfig {
    RestartConfig {
        max_restarts: 1000,
        jitter_seed: Some(42),
        ..RestartConfig::default()
    }
}

/// Events seen by the test actors, with the (virtual) time they happened.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<(String, Instant)>>>);

impl Log {
    fn push(&self, event: impl Into<String>) {
        self.0.lock().unwrap().push((event.into(), Instant::now()));
    }
    fn times(&self, event: &str) -> Vec<Instant> {
        let events = self.0.lock().unwrap();
        events
            .iter()
            .filter(|e| e.0 == event)
            .map(|e| e.1)
            .collect()
    }
    fn count(&self, event: &str) -> usize {
        self.times(event).len()
    }
    fn events(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|e| e.0.clone()).collect()
    }
}

/// What a worker does once started.
#[derive(Clone)]
enum Plan {
    Run,
    ExitAfter(Duration, Exit),
    PanicInStarted,
    PanicOnTick(u32),
    IgnoreStop,
    PanicInStopping,
}

struct Worker {
    name: String,
    exit: ExitSlot,
    log: Log,
    kept: Kept<u64>,
    plan: Plan,
    ticks: u32,
}

impl Actor for Worker {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.log.push(format!("{}:started", self.name));
        match self.plan.clone() {
            Plan::Run | Plan::IgnoreStop | Plan::PanicInStopping => {}
            Plan::ExitAfter(after, exit) => {
                if after.is_zero() {
                    self.exit.stop(ctx, exit);
                } else {
                    let slot = self.exit.clone();
                    ctx.run_later(after, move |_, ctx| slot.stop(ctx, exit));
                }
            }
            Plan::PanicInStarted => panic!("{} cannot start", self.name),
            Plan::PanicOnTick(n) => {
                ctx.run_interval(Duration::from_secs(1), move |act, _| {
                    act.ticks += 1;
                    if act.ticks == n {
                        panic!("tick {n} went wrong");
                    }
                });
            }
        }
    }

    fn stopping(&mut self, _: &mut Context<Self>) -> Running {
        match self.plan {
            Plan::IgnoreStop => return Running::Continue,
            Plan::PanicInStopping => panic!("{} cannot stop", self.name),
            _ => {}
        }
        Running::Stop
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.log.push(format!("{}:stopped", self.name));
    }
}
muster_actors::supervised!(Worker);

impl Worker {
    /// A worker that just runs, with fresh (not kept) state.
    fn running(name: &str, cx: &mut StartCtx<'_>, log: &Log) -> Worker {
        Worker {
            name: name.into(),
            exit: cx.exit_slot(),
            log: log.clone(),
            kept: Kept::new(0),
            plan: Plan::Run,
            ticks: 0,
        }
    }
}

/// Adds one to the worker's (possibly kept) counter and returns it.
#[derive(Message)]
#[rtype(result = "u64")]
struct Ping;

impl Handler<Ping> for Worker {
    type Result = u64;
    fn handle(&mut self, _: Ping, _: &mut Context<Self>) -> u64 {
        self.kept.with(|n| {
            *n += 1;
            *n
        })
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Boom;

impl Handler<Boom> for Worker {
    type Result = ();
    fn handle(&mut self, _: Boom, _: &mut Context<Self>) {
        panic!("boom");
    }
}

#[derive(Message)]
#[rtype(result = "()")]
struct Quit(Exit);

impl Handler<Quit> for Worker {
    type Result = ();
    fn handle(&mut self, Quit(exit): Quit, ctx: &mut Context<Self>) {
        self.exit.stop(ctx, exit);
    }
}

/// A worker child whose plan depends on its start count (1, 2, ...).
fn worker(
    name: &str,
    mailbox: &Mailbox<Worker>,
    log: &Log,
    plan: impl Fn(u64) -> Plan + Send + 'static,
) -> ChildSpec {
    let log = log.clone();
    let owned = name.to_owned();
    ChildSpec::actor(name, mailbox, move |cx| {
        log.push(format!("{owned}:start"));
        Ok(Worker {
            name: owned.clone(),
            exit: cx.exit_slot(),
            log: log.clone(),
            kept: cx.kept(|| 0u64)?,
            plan: plan(cx.start_count()),
            ticks: 0,
        })
    })
}

async fn report(root: &Root) -> Report {
    root.report().await.expect("root running")
}

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
    let stops: Vec<String> = log
        .events()
        .into_iter()
        .filter(|e| e.ends_with(":stopped"))
        .collect();
    assert_eq!(stops, ["x:stopped", "y:stopped", "a:stopped"]);
}

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
    let stops: Vec<String> = log
        .events()
        .into_iter()
        .filter(|e| e.ends_with(":stopped"))
        .collect();
    // b never got to `stopped`: it was killed, and a stopped only after that.
    assert_eq!(stops, ["c:stopped", "a:stopped"]);
    assert!(log.times("a:stopped")[0] - begun >= Duration::from_secs(5));
    assert!(!b.is_running());
}

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
    let root = start_root(
        SupervisorSpec::new(config()).child(worker("w", &mb, &log, |n| {
            if n == 1 {
                Plan::PanicInStarted
            } else {
                Plan::Run
            }
        })),
    );
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
    let root = start_root(
        SupervisorSpec::new(config()).child(worker("w", &mb, &log, |n| {
            if n == 1 {
                Plan::PanicOnTick(3)
            } else {
                Plan::Run
            }
        })),
    );
    sleep(Duration::from_millis(3500)).await;
    let w = report(&root).await.child("w").cloned().unwrap();
    assert_eq!(w.state, ChildState::Failed);
    assert_eq!(w.last_error.as_deref(), Some("panicked: tick 3 went wrong"));
    sleep(Duration::from_secs(4)).await;
    assert_eq!(log.count("w:start"), 2);
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
async fn a_thousand_dynamic_children_are_added_and_removed() {
    tokio::time::pause();
    let log = Log::default();
    let pollers = SupervisorRef::new();
    let spec = SupervisorSpec::new(config()).dynamic(DynamicPolicy {
        restart: RestartPolicy::Transient,
        ..DynamicPolicy::new("pollers")
    });
    let root = start_root(
        SupervisorSpec::new(config())
            .child(ChildSpec::supervisor("pollers", spec, &pollers).unwrap()),
    );
    sleep(Duration::from_millis(1)).await;
    let mailboxes: Vec<Mailbox<Worker>> = (0..1000).map(|_| Mailbox::new(8)).collect();
    let adds = mailboxes
        .iter()
        .enumerate()
        .map(|(i, mb)| pollers.add(worker(&format!("machine-{i}"), mb, &log, |_| Plan::Run)));
    for result in futures::future::join_all(adds).await {
        result.unwrap();
    }
    assert!(mailboxes.iter().all(Mailbox::is_running));
    let r = pollers.report().await.unwrap();
    assert_eq!(r.children.len(), 1000);
    assert!(
        r.children
            .iter()
            .all(|c| c.state == ChildState::Started && c.dynamic)
    );
    assert_eq!(
        r.child("machine-7").unwrap().restart,
        RestartPolicy::Transient
    );
    // The root's report nests the pollers' report.
    let nested = report(&root)
        .await
        .child("pollers")
        .unwrap()
        .report
        .clone()
        .unwrap();
    assert_eq!(nested["children"].as_array().unwrap().len(), 1000);

    let dup = pollers
        .add(worker("machine-3", &Mailbox::new(8), &log, |_| Plan::Run))
        .await
        .unwrap_err();
    assert!(dup.to_string().contains("machine-3"), "{dup}");

    let removes = (0..1000).map(|i| pollers.remove(&format!("machine-{i}")));
    for result in futures::future::join_all(removes).await {
        result.unwrap();
    }
    assert!(pollers.report().await.unwrap().children.is_empty());
    assert!(mailboxes.iter().all(|mb| !mb.is_running()));
    assert_eq!(log.count("machine-999:stopped"), 1);
    let missing = pollers.remove("machine-1").await.unwrap_err();
    assert!(
        missing
            .to_string()
            .contains("no dynamic child called machine-1")
    );
}

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
async fn bad_specs_are_refused_with_the_name_of_what_is_wrong() {
    let log = Log::default();
    let mb = Mailbox::new(1);
    let spec =
        SupervisorSpec::new(config()).child(worker("b", &mb, &log, |_| Plan::Run).inputs(["a"]));
    let err = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "child b of root needs a, which is not a child declared before it"
    );
    let spec = SupervisorSpec::new(RestartConfig {
        backoff_factor: f64::NAN,
        ..config()
    });
    let err = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap_err();
    assert!(err.to_string().contains("backoff_factor"), "{err}");
    let spec = SupervisorSpec::new(config())
        .child(worker("a", &mb, &log, |_| Plan::Run))
        .child(worker("a", &mb, &log, |_| Plan::Run));
    let err = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap_err();
    assert_eq!(err.to_string(), "root already has a child called a");
}

#[actix::test]
async fn restart_policies_decide_what_follows_an_exit() {
    tokio::time::pause();
    let log = Log::default();
    let mbs: Vec<Mailbox<Worker>> = (0..5).map(|_| Mailbox::new(8)).collect();
    let once = |exit: Exit| {
        move |n: u64| {
            if n == 1 {
                Plan::ExitAfter(Duration::from_secs(1), exit.clone())
            } else {
                Plan::Run
            }
        }
    };
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

#[test]
fn a_tree_started_outside_a_system_is_refused() {
    let err = Root::start(
        "root",
        SupervisorSpec::new(config()),
        logger(),
        Metrics::unregistered(),
    )
    .unwrap_err();
    assert_eq!(err, muster_actors::SupervisorError::NoSystem);
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

#[actix::test]
async fn a_panic_in_stopping_is_a_failure_too() {
    tokio::time::pause();
    let log = Log::default();
    let mb = Mailbox::new(8);
    let root = start_root(
        SupervisorSpec::new(config()).child(worker("w", &mb, &log, |n| {
            if n == 1 {
                Plan::PanicInStopping
            } else {
                Plan::Run
            }
        })),
    );
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
async fn a_thousand_dynamic_dependents_are_bounced_together() {
    tokio::time::pause();
    let log = Log::default();
    let gateway = Mailbox::new(8);
    let pollers = SupervisorRef::new();
    let spec = SupervisorSpec::new(config())
        .child(worker("gateway", &gateway, &log, |_| Plan::Run))
        .dynamic(DynamicPolicy::new("pollers"));
    let _root = start_root(
        SupervisorSpec::new(config())
            .child(ChildSpec::supervisor("pollers", spec, &pollers).unwrap()),
    );
    sleep(Duration::from_millis(1)).await;
    let specs: Vec<ChildSpec> = (0..1000)
        .map(|i| {
            let log = log.clone();
            ChildSpec::actor(format!("m{i}"), &Mailbox::new(8), move |cx| {
                let _: Mailbox<Worker> = cx.input("gateway")?;
                log.push("poller:start");
                Ok(Worker::running("poller", cx, &log))
            })
            .inputs(["gateway"])
        })
        .collect();
    pollers.add_all(specs).await.unwrap();
    assert_eq!(log.count("poller:start"), 1000);
    gateway
        .do_send(Quit(Exit::failed("provider down")))
        .unwrap();
    sleep(Duration::from_secs(1)).await;
    // Bounced, then waiting for the gateway, which restarts after 3 s.
    let r = pollers.report().await.unwrap();
    assert_eq!(
        r.children.iter().filter(|c| c.waiting_for_input).count(),
        1000
    );
    sleep(Duration::from_secs(4)).await;
    assert_eq!(log.count("poller:start"), 2000);
    let r = pollers.report().await.unwrap();
    assert!(r.children.iter().all(|c| c.state == ChildState::Started));
    assert!(
        r.children
            .iter()
            .filter(|c| c.dynamic)
            .all(|c| c.restarts.dependency == 1)
    );
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
