//! One agent of the swarm: it logs in, keeps its connection alive with
//! pings, and logs in again whenever the connection ends.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use muster::names::{AgentTag, ModelUuid};
use rand::Rng;
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior, interval_at, sleep, timeout};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::stats::Stats;
use super::stream::Conn;

/// How long a login may take before it counts as failed.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long an agent waits after a failure before it tries again, at
/// least; a random part as long again spreads the retries.
const RETRY: Duration = Duration::from_secs(1);

/// What every agent of a swarm shares.
pub(super) struct Swarm {
    pub url: String,
    pub addr: std::net::SocketAddr,
    pub tls: Option<(TlsConnector, ServerName<'static>)>,
    pub token: Option<String>,
    pub ping: Duration,
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
    /// Asks the agent to close and log in again.
    pub churn: Notify,
}

impl Swarm {
    pub fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Agent `i`'s model and tag: machine and unit agents in turn, spread
    /// over the models, each tag used once per model.
    pub fn identity(&self, i: usize) -> (ModelUuid, AgentTag) {
        let model = self.models[i % self.models.len()];
        let k = i / self.models.len();
        let tag = if k.is_multiple_of(2) {
            format!("machine-{}", k / 2)
        } else {
            format!("unit-swarm-{}", k / 2)
        };
        (model, tag.parse().expect("a valid agent tag"))
    }
}

/// Why a held connection ended.
enum Ended {
    Stop,
    Churn,
    Storm,
    Failed(String),
}

type Ws = WebSocketStream<Conn>;

/// Runs agent `i` until the swarm stops.
pub(super) async fn run(swarm: Arc<Swarm>, i: usize) {
    let mut stop = swarm.stop.clone();
    let mut storm = swarm.storm.clone();
    loop {
        let attempt = async {
            let _permit = swarm.logins.acquire().await;
            let started = Instant::now();
            let result = match timeout(LOGIN_TIMEOUT, login(&swarm, i)).await {
                Ok(result) => result,
                Err(_) => Err("timeout".to_owned()),
            };
            result.map(|ws| (ws, started.elapsed()))
        };
        let attempt = tokio::select! {
            attempt = attempt => attempt,
            _ = stop.changed() => return,
        };
        let failure = match attempt {
            Ok((mut ws, latency)) => {
                swarm.stats().login(latency);
                // A storm that began while this agent logged in is over
                // for it.
                storm.borrow_and_update();
                let slot = &swarm.slots[i];
                slot.connected.store(true, Ordering::Relaxed);
                let ended = hold(&swarm, &mut ws, slot, &mut stop, &mut storm).await;
                slot.connected.store(false, Ordering::Relaxed);
                swarm.stats().left();
                match ended {
                    Ended::Stop => {
                        let _ = timeout(RETRY, ws.close(None)).await;
                        return;
                    }
                    Ended::Churn => {
                        let _ = timeout(RETRY, ws.close(None)).await;
                        continue;
                    }
                    // Dropped without a close frame, as a network blip
                    // would.
                    Ended::Storm => continue,
                    Ended::Failed(kind) => {
                        finish(&mut ws).await;
                        kind
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

/// Connects, upgrades and logs in; the error is the kind of failure.
async fn login(swarm: &Swarm, i: usize) -> Result<Ws, String> {
    let tcp = TcpStream::connect(swarm.addr)
        .await
        .map_err(|e| format!("connect: {}", e.kind()))?;
    let _ = tcp.set_nodelay(true);
    let conn = match &swarm.tls {
        None => Conn::Plain(tcp),
        Some((connector, name)) => Conn::Tls(Box::new(
            connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("tls: {e}"))?,
        )),
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024);
    let (mut ws, _) =
        tokio_tungstenite::client_async_with_config(swarm.url.as_str(), conn, Some(config))
            .await
            .map_err(|e| match e {
                WsError::Http(response) => format!("http {}", response.status().as_u16()),
                _ => "handshake".to_owned(),
            })?;
    let (model, agent) = swarm.identity(i);
    let mut login = serde_json::json!({
        "model": model,
        "agent": agent,
        "user_data": "swarm",
    });
    if let Some(token) = &swarm.token {
        login["token"] = token.as_str().into();
    }
    ws.send(Message::text(login.to_string()))
        .await
        .map_err(|_| "dropped".to_owned())?;
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(answer))) => {
                let answer: serde_json::Value =
                    serde_json::from_str(answer.as_str()).map_err(|_| "answer".to_owned())?;
                return match answer.get("connection_id").and_then(|id| id.as_u64()) {
                    Some(_) => Ok(ws),
                    None => Err("answer".to_owned()),
                };
            }
            Some(Ok(Message::Close(frame))) => {
                finish(&mut ws).await;
                return Err(close_kind(frame));
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => return Err("dropped".to_owned()),
        }
    }
}

/// Reads on after the server's close frame, which sends the reply and
/// lets the server end at once.
async fn finish(ws: &mut Ws) {
    let _ = timeout(RETRY, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

fn close_kind(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(frame) => u16::from(frame.code).to_string(),
        None => u16::from(CloseCode::Status).to_string(),
    }
}

/// Holds a logged-in connection: a ping every `ping` (the first at a
/// random point of the interval, so that the agents' pings spread out),
/// until the swarm or the server ends it.
async fn hold(
    swarm: &Swarm,
    ws: &mut Ws,
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
                if ws.send(Message::Ping(Default::default())).await.is_err() {
                    return Ended::Failed("dropped".into());
                }
            }
            message = ws.next() => match message {
                Some(Ok(Message::Close(frame))) => return Ended::Failed(close_kind(frame)),
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Ended::Failed("dropped".into()),
            },
        }
    }
}
