//! Reports that fold large dynamic groups into counts, on a paused clock.

mod support;

use std::time::Duration;

use actix::prelude::*;
use muster_actors::{
    ChildSpec, DynamicPolicy, DynamicSummary, Exit, Mailbox, ReportOptions, RestartConfig,
    RestartCounts, RestartPolicy, StateCounts, StatePolicy, SupervisorRef, SupervisorSpec,
};
use support::start_root;
use tokio::time::sleep;

struct Member {
    fail_after: Option<Duration>,
    exit: muster_actors::ExitSlot,
}

impl Actor for Member {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        if let Some(after) = self.fail_after {
            let exit = self.exit.clone();
            ctx.run_later(after, move |_, ctx| exit.stop(ctx, Exit::failed("down")));
        }
    }
}
muster_actors::supervised!(Member);

fn member(name: &str, fail_after: Option<Duration>) -> ChildSpec {
    ChildSpec::actor(name, &Mailbox::new(4), move |cx| {
        Ok(Member {
            fail_after,
            exit: cx.exit_slot(),
        })
    })
}

fn group() -> DynamicPolicy {
    DynamicPolicy {
        group: "pool".into(),
        restart: RestartPolicy::Permanent,
        state: StatePolicy::Rebuilt,
    }
}

#[actix::test]
async fn large_dynamic_groups_fold_into_counts_in_every_supervisor() {
    tokio::time::pause();
    let pool = SupervisorRef::new();
    let inner = SupervisorSpec::new(RestartConfig::default())
        .child(member("keeper", None))
        .dynamic(group());
    let root = start_root(
        SupervisorSpec::new(RestartConfig::default())
            .child(member("lone", None))
            .child(ChildSpec::supervisor("inner", inner, &pool).unwrap()),
    );
    sleep(Duration::from_millis(1)).await;
    let members: Vec<ChildSpec> = (0..5)
        .map(|n| {
            let fails = (n == 0).then_some(Duration::from_millis(10));
            member(&format!("m-{n}"), fails)
        })
        .collect();
    pool.add_all(members).await.unwrap();
    // m-0 fails once and waits out its restart delay.
    sleep(Duration::from_millis(50)).await;

    let full = root.report().await.unwrap();
    let inner_rows = &full.child("inner").unwrap().report.as_ref().unwrap()["children"];
    assert_eq!(
        inner_rows.as_array().unwrap().len(),
        6,
        "keeper and 5 members"
    );
    assert!(full.dynamic.is_none());

    let folded = root
        .report_with(ReportOptions::folding_over(3))
        .await
        .unwrap();
    let names: Vec<&str> = folded.children.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["lone", "inner"]);
    assert_eq!(folded.dynamic, None, "the root has no dynamic children");
    let inner = folded.child("inner").unwrap().report.clone().unwrap();
    let rows: Vec<&str> = inner["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(rows, ["keeper"], "only the static child keeps its row");
    let summary: DynamicSummary = serde_json::from_value(inner["dynamic"].clone()).unwrap();
    assert_eq!(
        summary,
        DynamicSummary {
            group: "pool".into(),
            children: 5,
            states: StateCounts {
                started: 4,
                failed: 1,
                ..StateCounts::default()
            },
            restarts: RestartCounts {
                failure: 1,
                ..RestartCounts::default()
            },
            mailbox_depth: 0,
        }
    );

    // A group no larger than the limit keeps its rows.
    let kept = pool
        .report_with(ReportOptions::folding_over(5))
        .await
        .unwrap();
    assert_eq!(kept.children.len(), 6);
    assert!(kept.dynamic.is_none());
    let json = serde_json::to_value(&kept).unwrap();
    assert!(json.get("dynamic").is_none(), "no key when not folded");

    root.shutdown();
    root.wait().await.unwrap();
}
