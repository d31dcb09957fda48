//! One agent of the swarm: it logs in, keeps its connection alive with
//! pings, and logs in again whenever the connection ends.

use muster::sync::lock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use muster::names::{AgentTag, ModelUuid};
use muster_door::client::{Client, Login, Session, SessionEnd};
use rand::Rng;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, timeout};

use super::stats::Stats;

/// How long a login may take before it counts as failed.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an agent waits after a failure before it tries again, at
/// least; a random part as long again spreads the retries.
const RETRY: Duration = Duration::from_secs(1);

/// What every agent of a swarm shares.
pub(super) struct Swarm {
    pub client: Client,
    pub token: Option<String>,
    pub ping: Duration,
    /// Each agent with its own password, when the door wants them.
    pub identities: Option<Vec<super::Identity>>,
    pub models: Vec<ModelUuid>,
    pub logins: Semaphore,
    pub stats: std::sync::Mutex<Stats>,
    pub stop: watch::Receiver<bool>,
    pub storm: watch::Receiver<u64>,
    pub slots: Vec<Slot>,
}

/// One agent as the swarm's driver sees it.
#[derive(Default)]
pub(super) struct Slot {
    /// Whether the agent is logged in.
    pub connected: AtomicBool,
    /// Whether it ever was.
    pub ever: AtomicBool,
    /// Asks the agent to close and log in again.
    pub churn: Notify,
}

impl Swarm {
    pub fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    /// Agent `i`'s model, tag and password: its identity's, or else
    /// machine and unit agents in turn, spread over the models, each tag
    /// used once per model.
    pub fn identity(&self, i: usize) -> (ModelUuid, AgentTag, Option<String>) {
        match &self.identities {
            Some(identities) => {
                let identity = &identities[i];
                let (model, agent) = (identity.model, identity.agent.clone());
                (model, agent, Some(identity.password.clone()))
            }
            None => {
                let (model, agent) = super::identity(&self.models, i);
                (model, agent, None)
            }
        }
    }
}

/// Why a held connection ended.
enum Ended {
    Stop,
    Churn,
    Storm,
    Failed(SessionEnd),
}

/// Runs agent `i` until the swarm stops.
pub(super) async fn run(swarm: Arc<Swarm>, i: usize) {
    let mut stop = swarm.stop.clone();
    let mut storm = swarm.storm.clone();
    loop {
        let attempt = async {
            let _permit = swarm.logins.acquire().await;
            let started = Instant::now();
            let (model, agent, password) = swarm.identity(i);
            let login = Login::new(model, agent)
                .with_user_data("swarm")
                .with_token(swarm.token.clone())
                .with_password(password);
            let result = match timeout(LOGIN_TIMEOUT, swarm.client.login(&login)).await {
                Ok(result) => result.map_err(|failure| failure.to_string()),
                Err(_) => Err("timeout".to_owned()),
            };
            result.map(|session| (session, started.elapsed()))
        };
        let attempt = tokio::select! {
            attempt = attempt => attempt,
            _ = stop.changed() => return,
        };
        let failure = match attempt {
            Ok((mut session, latency)) => {
                swarm.stats().login(latency);
                // A storm that began while this agent logged in is over
                // for it.
                storm.borrow_and_update();
                let slot = &swarm.slots[i];
                slot.connected.store(true, Ordering::Relaxed);
                slot.ever.store(true, Ordering::Relaxed);
                let ended = hold(&swarm, &mut session, slot, &mut stop, &mut storm).await;
                slot.connected.store(false, Ordering::Relaxed);
                swarm.stats().left();
                match ended {
                    Ended::Stop => {
                        session.close().await;
                        return;
                    }
                    Ended::Churn => {
                        session.close().await;
                        continue;
                    }
                    // Dropped without a close frame, as a network blip
                    // would.
                    Ended::Storm => continue,
                    Ended::Failed(end) => {
                        session.finish().await;
                        end.to_string()
                    }
                }
            }
            Err(kind) => kind,
        };
        swarm.stats().failure(failure);
        let wait = RETRY + RETRY.mul_f64(rand::rng().random::<f64>());
        tokio::select! {
            () = sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Holds a logged-in connection: a ping every `ping` (the first at a
/// random point of the interval, so that the agents' pings spread out),
/// until the swarm or the server ends it.
async fn hold(
    swarm: &Swarm,
    session: &mut Session,
    slot: &Slot,
    stop: &mut watch::Receiver<bool>,
    storm: &mut watch::Receiver<u64>,
) -> Ended {
    let offset = swarm.ping.mul_f64(rand::rng().random::<f64>());
    let mut ping = interval_at(Instant::now() + offset, swarm.ping);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.changed() => return Ended::Stop,
            _ = storm.changed() => return Ended::Storm,
            () = slot.churn.notified() => return Ended::Churn,
            _ = ping.tick() => {
                if let Err(end) = session.ping().await {
                    return Ended::Failed(end);
                }
            }
            end = session.next_end() => if let Some(end) = end {
                return Ended::Failed(end);
            },
        }
    }
}
