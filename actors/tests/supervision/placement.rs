//! Children on other arbiters (threads): placed there by the host, spread
//! over them by name, supervised as if they ran beside their supervisor.
//! Real threads, so real time here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use actix::prelude::*;
use muster_actors::{
    Arbiters, ChildSpec, ChildState, DynamicPolicy, ExitSlot, Mailbox, Metrics, Root,
    SupervisorRef, SupervisorSpec,
};

use super::config;
use super::support::logger;

/// An actor that says which thread it runs on.
struct Placed {
    exit: ExitSlot,
    stops: Arc<Mutex<Vec<(ThreadId, bool)>>>,
}

impl Actor for Placed {
    type Context = Context<Self>;

    fn stopping(&mut self, _ctx: &mut Context<Self>) -> Running {
        let asked = self.exit.stop_requested();
        self.stops
            .lock()
            .unwrap()
            .push((std::thread::current().id(), asked));
        Running::Stop
    }
}
muster_actors::supervised!(Placed);

struct WhereAreYou;

impl Message for WhereAreYou {
    type Result = ThreadId;
}

impl Handler<WhereAreYou> for Placed {
    type Result = MessageResult<WhereAreYou>;

    fn handle(&mut self, _: WhereAreYou, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(std::thread::current().id())
    }
}

type Stops = Arc<Mutex<Vec<(ThreadId, bool)>>>;

fn placed(name: &str, mailbox: &Mailbox<Placed>, stops: &Stops) -> ChildSpec {
    let stops = stops.clone();
    ChildSpec::actor(name, mailbox, move |cx| {
        Ok(Placed {
            exit: cx.exit_slot(),
            stops: stops.clone(),
        })
    })
}

/// Asks `mailbox` until its actor answers, within a few seconds.
async fn where_is(mailbox: &Mailbox<Placed>) -> ThreadId {
    for _ in 0..400 {
        if let Ok(thread) = mailbox.send(WhereAreYou).await {
            return thread;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the actor never answered");
}

#[actix::test]
async fn a_child_on_another_arbiter_runs_there_and_is_supervised_as_any() {
    let here = std::thread::current().id();
    let arbiters = Arbiters::start(2);
    let there = arbiters.handles()[1].clone();
    let stops = Stops::default();
    let (local, remote) = (Mailbox::new(16), Mailbox::new(16));
    let root = Root::start(
        "root",
        SupervisorSpec::new(config())
            .child(placed("local", &local, &stops))
            .child(placed("remote", &remote, &stops).on(there)),
        logger(),
        Metrics::unregistered(),
    )
    .unwrap();
    assert_eq!(where_is(&local).await, here);
    let elsewhere = where_is(&remote).await;
    assert_ne!(elsewhere, here);

    // Killed there, it is restarted there, as after a failure.
    root.supervisor().kill("remote").await.unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let report = root.report().await.unwrap();
    let child = report.child("remote").unwrap();
    assert_eq!((child.state, child.start_count), (ChildState::Started, 2));
    assert_eq!(child.restarts.failure, 1);
    assert_eq!(where_is(&remote).await, elsewhere);
    // A kill is no stop asked: the actor was dropped where it ran.
    assert_eq!(stops.lock().unwrap().as_slice(), [(elsewhere, false)]);

    // The tree's shutdown asks it to stop, there, and waits for it.
    root.shutdown();
    root.wait().await.unwrap();
    let stops = stops.lock().unwrap().clone();
    assert!(stops.contains(&(elsewhere, true)), "{stops:?}");
    assert!(stops.contains(&(here, true)), "{stops:?}");
    arbiters.stop();
}

#[actix::test]
async fn dynamic_children_spread_over_the_arbiters_in_turn() {
    let arbiters = Arbiters::start(3);
    let stops = Stops::default();
    let group = SupervisorRef::new();
    let spec = SupervisorSpec::new(config())
        .dynamic(DynamicPolicy::new("workers"))
        .spread(arbiters.clone());
    let root = Root::start(
        "root",
        SupervisorSpec::new(config()).child(ChildSpec::supervisor("group", spec, &group).unwrap()),
        logger(),
        Metrics::unregistered(),
    )
    .unwrap();
    for _ in 0..400 {
        if group.report().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut mailboxes = Vec::new();
    for n in 0..30 {
        let mailbox = Mailbox::new(16);
        group
            .add(placed(&format!("w{n}"), &mailbox, &stops))
            .await
            .unwrap();
        mailboxes.push(mailbox);
    }
    let mut threads: HashMap<ThreadId, usize> = HashMap::new();
    let mut first = Vec::new();
    for mailbox in &mailboxes {
        let thread = where_is(mailbox).await;
        *threads.entry(thread).or_default() += 1;
        first.push(thread);
    }
    // Thirty children over three arbiters: ten on each.
    assert_eq!(threads.len(), 3, "{threads:?}");
    assert!(threads.values().all(|n| *n == 10), "{threads:?}");
    // Killed, a child is restarted on the arbiter it ran on.
    group.kill("w7").await.unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(where_is(&mailboxes[7]).await, first[7]);
    group.remove("w0").await.unwrap();
    assert!(mailboxes[0].send(WhereAreYou).await.is_err());
    root.shutdown();
    root.wait().await.unwrap();
    // Thirty stops asked, and the one killed.
    assert_eq!(stops.lock().unwrap().len(), 31);
    arbiters.stop();
}
