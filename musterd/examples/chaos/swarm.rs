//! The agents of a chaos run: on every node's door, each agent a task that
//! logs in with the door's client library, pings, and logs in again
//! whenever its connection ends. What the agents hold open is the truth
//! every node's presence must come to.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use muster::names::ModelUuid;
use muster_door::client::{Client, Login};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The model the agents are in.
pub const MODEL: &str = "c1c1c1c1-0000-4000-8000-00000000a9e7";

/// Open connections by (server, connection id): the agent.
pub type Truth = BTreeMap<(String, u64), String>;

/// The agents of every node.
pub struct Swarm {
    truth: Arc<Mutex<Truth>>,
    /// Per node: bumping it drops every connection to that node at once.
    drops: Vec<watch::Sender<u64>>,
    tasks: Vec<JoinHandle<()>>,
    per_node: usize,
}

impl Swarm {
    /// `per_node` agents on each of `doors`.
    pub fn start(doors: &[String], per_node: usize) -> Swarm {
        let truth = Arc::new(Mutex::new(Truth::new()));
        let mut drops = Vec::new();
        let mut tasks = Vec::new();
        for (n, door) in doors.iter().enumerate() {
            let (drop_all, dropped) = watch::channel(0u64);
            drops.push(drop_all);
            let client = Client::new(door, None).expect("a door's URL");
            for k in 0..per_node {
                let agent = format!("unit-chaos{n}-{k}");
                tasks.push(tokio::spawn(agent_loop(
                    client.clone(),
                    agent,
                    truth.clone(),
                    dropped.clone(),
                )));
            }
        }
        Swarm {
            truth,
            drops,
            tasks,
            per_node,
        }
    }

    /// What the agents hold open now.
    pub fn truth(&self) -> Truth {
        self.truth.lock().expect("not poisoned").clone()
    }

    /// Whether every agent holds a connection.
    pub fn whole(&self) -> bool {
        self.truth.lock().expect("not poisoned").len() == self.per_node * self.drops.len()
    }

    /// Drops every connection to node `n` at once; the agents log in again.
    pub fn drop_all(&self, n: usize) {
        self.drops[n].send_modify(|count| *count += 1);
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn agent_loop(
    client: Client,
    agent: String,
    truth: Arc<Mutex<Truth>>,
    mut dropped: watch::Receiver<u64>,
) {
    let model: ModelUuid = MODEL.parse().expect("a model UUID");
    let login = Login::new(model, agent.parse().expect("an agent tag"));
    loop {
        let session = tokio::time::timeout(Duration::from_secs(3), client.login(&login)).await;
        let Ok(Ok(mut session)) = session else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let key = (session.server().to_owned(), session.connection_id());
        truth
            .lock()
            .expect("not poisoned")
            .insert(key.clone(), agent.clone());
        dropped.borrow_and_update();
        let mut ping = tokio::time::interval(Duration::from_secs(1));
        let ended = loop {
            tokio::select! {
                _ = ping.tick() => {
                    if session.ping().await.is_err() {
                        break true;
                    }
                }
                end = session.next_end() => if end.is_some() { break true },
                _ = dropped.changed() => break false,
            }
        };
        // Out of the truth before the door can hear of it, so that the
        // truth never holds a connection the door has let go.
        truth.lock().expect("not poisoned").remove(&key);
        drop(session);
        if ended {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
