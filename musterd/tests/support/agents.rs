//! What the agents' door tests share: a tree with its HTTP surface and a
//! door in this process, and an agent that speaks the protocol with
//! tokio-tungstenite.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use actix_web::dev::{Service, ServiceResponse};
use actix_web::{App, test};
use futures::{SinkExt, StreamExt};
use muster::clock::{Clock, ManualClock};
use muster::names::ModelUuid;
use muster::sim::{Sim, SimConfig};
use muster_actors::{Backends, Metrics, Muster, MusterConfig, RestartConfig, Root, SupervisorSpec};
use muster_door::{AgentsConfig, ConnectionIds, Door, DoorMetrics};
use muster_http::{Inspector, StateGauges};
use prometheus_client::registry::Registry;
use serde_json::{Value, json};
use slog::{Logger, o};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// The model the tests' agents belong to.
pub const MODEL: &str = "deadbeef-0bad-400d-8000-4b1d0d06f00d";

pub fn model() -> ModelUuid {
    MODEL.parse().unwrap()
}

/// A config for tests: a free loopback port, the defaults otherwise.
pub fn config() -> AgentsConfig {
    let mut config = AgentsConfig::default();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config
}

/// [`config`] as `change` leaves it.
pub fn config_with(change: impl FnOnce(&mut AgentsConfig)) -> AgentsConfig {
    let mut config = config();
    change(&mut config);
    config
}

/// A tree recording presence (stamped by a manual clock), its HTTP
/// surface, and an open door.
pub struct Fixture {
    pub muster: Muster,
    /// The host's tree: muster and the door side by side.
    pub root: Root,
    pub door: Option<Door>,
    pub url: String,
    pub clock: Arc<ManualClock>,
    inspector: Inspector,
}

pub const EPOCH: SystemTime = SystemTime::UNIX_EPOCH;

impl Fixture {
    pub async fn start(config: AgentsConfig) -> Fixture {
        Fixture::start_with(MusterConfig::default(), config).await
    }

    /// A fixture whose tree has settings of its own.
    pub async fn start_with(tree: MusterConfig, config: AgentsConfig) -> Fixture {
        Fixture::start_in(RestartConfig::default(), tree, config).await
    }

    /// A fixture whose host restarts its children by `host`, and whose
    /// tree has settings of its own.
    pub async fn start_in(
        host: RestartConfig,
        tree: MusterConfig,
        config: AgentsConfig,
    ) -> Fixture {
        let sim = Sim::new(SimConfig::default()).unwrap();
        let clock = Arc::new(ManualClock::new(EPOCH + Duration::from_secs(1_000_000)));
        let mut registry = Registry::default();
        let logger = Logger::root(slog::Discard, o!());
        let tree_metrics = Metrics::register(&mut registry);
        let (muster_child, muster) = Muster::child(
            "muster",
            &tree,
            Backends::sim(&sim, clock.clone() as Arc<dyn Clock>),
            &mut registry,
        )
        .unwrap();
        let metrics = DoorMetrics::register(&mut registry);
        let gauges = StateGauges::register(&mut registry);
        let (door_child, door) = Door::bind(&config).unwrap().child(
            muster.presence().clone(),
            ConnectionIds::default(),
            metrics,
        );
        let spec = SupervisorSpec::new(host)
            .child(muster_child)
            .child(door_child);
        let root = Root::start("host", spec, logger, tree_metrics).unwrap();
        let inspector =
            Inspector::new(muster.clone(), registry, gauges, None).with_tree(root.clone());
        muster.presence().enable().await.unwrap();
        Fixture {
            url: door.url(),
            door: Some(door),
            muster,
            root,
            clock,
            inspector,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.door.as_ref().unwrap().local_addr()
    }

    /// `GET /api/presence?model=MODEL` from the HTTP surface.
    pub async fn api_presence(&self) -> Value {
        let body = self.http(&format!("/api/presence?model={MODEL}")).await;
        serde_json::from_str(&body).unwrap()
    }

    /// `GET path` from the HTTP surface: the body.
    pub async fn http(&self, path: &str) -> String {
        let inspector = self.inspector.clone();
        let app = test::init_service(App::new().configure(move |c| inspector.configure(c))).await;
        let response: ServiceResponse = app
            .call(test::TestRequest::get().uri(path).to_request())
            .await
            .unwrap();
        assert!(response.status().is_success());
        String::from_utf8(test::read_body(response).await.to_vec()).unwrap()
    }

    /// The value of one series in `/metrics`, 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.http("/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().unwrap())
    }

    /// Connections recorded for the tests' model.
    pub async fn count(&self) -> usize {
        let connections = self.muster.presence().connections().await.unwrap();
        connections.for_model(&model()).count()
    }

    /// Every connection recorded, of any model.
    pub async fn total(&self) -> usize {
        self.muster.presence().connections().await.unwrap().count()
    }

    /// Waits (bounded) until `count` connections are recorded for the
    /// model: a disconnect is recorded by the server's task, which may run
    /// after the client saw its socket close.
    pub async fn wait_count(&self, count: usize) {
        for _ in 0..500 {
            // A full router mailbox refuses the query too: ask again.
            let connections = self.muster.presence().connections().await;
            if connections.is_ok_and(|c| c.for_model(&model()).count() == count) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.count().await, count, "connections recorded");
    }

    /// Waits (bounded) until `total` connections are recorded, of any
    /// model.
    pub async fn wait_count_total(&self, total: usize) {
        for _ in 0..500 {
            if self.total().await == total {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.total().await, total, "connections recorded");
    }

    pub async fn stop(mut self) {
        if let Some(door) = self.door.take() {
            door.close().await;
        }
        self.root.shutdown();
        let _ = self.root.wait().await;
    }
}

pub type Agent = WebSocketStream<TcpStream>;

/// Connects and upgrades, without logging in.
pub async fn open(url: &str) -> Agent {
    let addr = url
        .trim_start_matches("ws://")
        .trim_end_matches("/agent")
        .to_owned();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await.unwrap();
    ws
}

/// A login frame for `agent`, with `extra` fields merged in.
pub fn login_frame(agent: &str, extra: Value) -> String {
    let mut login = json!({"model": MODEL, "agent": agent, "user_data": "4.0.1"});
    if let (Some(login), Some(extra)) = (login.as_object_mut(), extra.as_object()) {
        login.extend(extra.clone());
    }
    login.to_string()
}

/// What the server answered a login.
#[derive(Debug)]
pub enum Answer {
    /// Logged in, with this answer.
    In(Value),
    /// Closed with this code and reason.
    Closed(u16, String),
    /// The socket ended without a close frame.
    Dropped(String),
}

/// Reads frames until the login answer or the close.
pub async fn answer<S>(ws: &mut WebSocketStream<S>) -> Answer
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => {
                return Answer::In(serde_json::from_str(text.as_str()).unwrap());
            }
            Some(Ok(Message::Close(frame))) => {
                let (code, reason) = close_parts(frame);
                // Reading on sends the close reply.
                while let Some(Ok(_)) = ws.next().await {}
                return Answer::Closed(code, reason);
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Answer::Dropped(e.to_string()),
            None => return Answer::Dropped("end of stream".into()),
        }
    }
}

pub fn close_parts(frame: Option<CloseFrame>) -> (u16, String) {
    match frame {
        Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
        None => (1005, String::new()),
    }
}

/// Opens, sends `frame`, and reads the answer.
pub async fn login_with(url: &str, frame: &str) -> (Agent, Answer) {
    let mut ws = open(url).await;
    ws.send(Message::text(frame)).await.unwrap();
    let answer = answer(&mut ws).await;
    (ws, answer)
}

/// Logs `agent` in, and answers its connection and connection id.
pub async fn login(url: &str, agent: &str) -> (Agent, u64) {
    let (ws, answer) = login_with(url, &login_frame(agent, json!({}))).await;
    match answer {
        Answer::In(answer) => (ws, answer["connection_id"].as_u64().unwrap()),
        other => panic!("login of {agent} refused: {other:?}"),
    }
}

/// Waits for the close frame, skipping pings; the error is what else
/// ended the stream.
pub async fn closed<S>(ws: &mut WebSocketStream<S>) -> Result<(u16, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Close(frame))) => {
                let parts = close_parts(frame);
                while let Some(Ok(_)) = ws.next().await {}
                return Ok(parts);
            }
            Some(Ok(_)) => {}
            Some(Err(WsError::ConnectionClosed)) | None => return Err("end of stream".into()),
            Some(Err(e)) => return Err(e.to_string()),
        }
    }
}

/// Sends a ping and waits for its pong: once it is back, the server has
/// handled every frame sent before it.
pub async fn round_trip<S>(ws: &mut WebSocketStream<S>)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.send(Message::Ping(b"sync".to_vec().into()))
        .await
        .unwrap();
    loop {
        match ws.next().await {
            Some(Ok(Message::Pong(data))) if &data[..] == b"sync" => return,
            Some(Ok(_)) => {}
            other => panic!("no pong: {other:?}"),
        }
    }
}

/// A directory of PEM files, removed when dropped.
pub struct Pems(PathBuf);

impl Pems {
    /// A self-signed certificate for `localhost` and its key.
    pub fn new(name: &str) -> (Pems, CertificateDer<'static>) {
        let dir = std::env::temp_dir().join(format!("muster-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.join("cert.pem"), made.cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), made.signing_key.serialize_pem()).unwrap();
        (Pems(dir), made.cert.der().clone())
    }

    /// A self-signed certificate for `127.0.0.1` marked as an authority,
    /// as `openssl req -x509` makes one, and its key.
    pub fn authority(name: &str) -> Pems {
        let dir = std::env::temp_dir().join(format!("muster-tls-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
        Pems(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }

    pub fn config(&self) -> AgentsConfig {
        config_with(|c| {
            c.tls_cert = Some(self.path("cert.pem"));
            c.tls_key = Some(self.path("key.pem"));
        })
    }
}

impl Drop for Pems {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
