//! Dynamic children: added and removed at run time, bounced with their inputs.

use std::time::Duration;

use muster_actors::{
    ChildSpec, ChildState, DynamicPolicy, Exit, Mailbox, RestartPolicy, SupervisorRef,
    SupervisorSpec,
};
use tokio::time::sleep;

use super::support::start_root;
use super::worker::{Log, Plan, Quit, Worker, worker};
use super::{config, report};

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
