//! The tree's health: which static children are down, anywhere in the
//! tree, read without a message; on a paused clock.

mod support;

use std::time::Duration;

use actix::prelude::*;
use muster_actors::{
    ChildSpec, ChildState, DownChild, DynamicPolicy, Exit, ExitSlot, Mailbox, RestartConfig,
    RestartPolicy, StatePolicy, SupervisorRef, SupervisorSpec, TreeState,
};
use support::start_root;
use tokio::time::sleep;

/// An actor that exits with `exit` after `after` on the starts its plan
/// names, and runs on the others.
struct Flaky {
    exit_slot: ExitSlot,
    plan: Option<(Duration, Exit)>,
}

impl Actor for Flaky {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some((after, exit)) = self.plan.take() {
            let slot = self.exit_slot.clone();
            ctx.run_later(after, move |_, ctx| slot.stop(ctx, exit));
        }
    }
}
muster_actors::supervised!(Flaky);

fn flaky(name: &str, plan: impl Fn(u64) -> Option<(Duration, Exit)> + Send + 'static) -> ChildSpec {
    ChildSpec::actor(name, &Mailbox::new(4), move |cx| {
        Ok(Flaky {
            exit_slot: cx.exit_slot(),
            plan: plan(cx.start_count()),
        })
    })
}

/// Fails `after` its first start, runs after that.
fn fails_once(name: &str, after: Duration, error: &str) -> ChildSpec {
    let error = error.to_owned();
    flaky(name, move |start| {
        (start == 1).then(|| (after, Exit::failed(error.clone())))
    })
}

fn config() -> RestartConfig {
    RestartConfig {
        max_restarts: 1000,
        jitter_seed: Some(7),
        ..RestartConfig::default()
    }
}

fn down(path: &str, reason: &str) -> DownChild {
    DownChild {
        path: path.into(),
        state: ChildState::Failed,
        reason: Some(reason.into()),
    }
}

#[actix::test]
async fn static_children_count_anywhere_in_the_tree_and_dynamic_ones_never() {
    tokio::time::pause();
    let pool = SupervisorRef::new();
    let inner = SupervisorSpec::new(config())
        .child(fails_once("x", Duration::from_secs(2), "lost its disk"))
        .dynamic(DynamicPolicy {
            group: "pool".into(),
            restart: RestartPolicy::Permanent,
            state: StatePolicy::Rebuilt,
        });
    let root = start_root(
        SupervisorSpec::new(config())
            .child(fails_once("w", Duration::from_secs(1), "boom"))
            .child(ChildSpec::supervisor("inner", inner, &pool).unwrap()),
    );
    sleep(Duration::from_millis(10)).await;
    // A dynamic child that fails over and over.
    pool.add(flaky("d", |_| {
        Some((Duration::from_millis(100), Exit::failed("flaky")))
    }))
    .await
    .unwrap();
    sleep(Duration::from_millis(500)).await;
    let d = pool.report().await.unwrap().child("d").unwrap().clone();
    assert_eq!(d.state, ChildState::Failed);
    let health = root.health();
    assert!(health.is_healthy(), "{health:?}");
    assert_eq!(health.to_string(), "ok");

    sleep(Duration::from_millis(600)).await;
    let health = root.health();
    assert_eq!(health.tree, TreeState::Running);
    assert_eq!(health.down, [down("root/w", "boom")]);
    assert!(!health.is_healthy());
    assert_eq!(health.to_string(), "root/w failed: boom");

    sleep(Duration::from_secs(1)).await;
    assert_eq!(
        root.health().down,
        [
            down("root/inner/x", "lost its disk"),
            down("root/w", "boom")
        ]
    );

    // Both restart after the error delay (3 s ± 10 %) and stay up.
    sleep(Duration::from_secs(4)).await;
    let health = root.health();
    assert!(health.is_healthy(), "{health:?}");

    root.shutdown();
    root.wait().await.unwrap();
    let health = root.health();
    assert_eq!(health.tree, TreeState::Stopped);
    assert_eq!(health.to_string(), "tree stopped");
}

#[actix::test]
async fn a_child_waiting_for_an_input_is_down_and_one_that_finished_is_not() {
    tokio::time::pause();
    // `a` finishes normally and, being transient, stays stopped; `b`, which
    // needs it, is bounced and then waits for it.
    let a = flaky("a", |_| Some((Duration::from_secs(1), Exit::Done)))
        .restart(RestartPolicy::Transient);
    let b = ChildSpec::actor("b", &Mailbox::<Flaky>::new(4), |cx| {
        cx.input::<Mailbox<Flaky>>("a")?;
        Ok(Flaky {
            exit_slot: cx.exit_slot(),
            plan: None,
        })
    })
    .inputs(["a"]);
    let root = start_root(SupervisorSpec::new(config()).child(a).child(b));
    sleep(Duration::from_millis(100)).await;
    assert!(root.health().is_healthy());
    sleep(Duration::from_secs(5)).await;
    let health = root.health();
    assert_eq!(
        health.down,
        [DownChild {
            path: "root/b".into(),
            state: ChildState::Stopped,
            reason: Some("input a missing".into()),
        }]
    );
    assert_eq!(
        health.to_string(),
        "root/b waiting for an input: input a missing"
    );
    root.shutdown();
    root.wait().await.unwrap();
}

#[actix::test]
async fn a_tree_that_gives_up_is_unhealthy_with_its_error() {
    tokio::time::pause();
    let root = start_root(
        SupervisorSpec::new(RestartConfig {
            max_restarts: 0,
            ..config()
        })
        .child(fails_once("w", Duration::from_secs(1), "boom")),
    );
    assert!(root.wait().await.is_err());
    let health = root.health();
    let TreeState::GaveUp(error) = &health.tree else {
        panic!("{health:?}");
    };
    assert!(error.contains("restart intensity exceeded"), "{error}");
    assert!(!health.is_healthy());
    assert!(health.to_string().starts_with("tree gave up: "), "{health}");
}
