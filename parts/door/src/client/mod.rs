//! The agent's side of the door's protocol (`docs/agent-protocol.md`): a
//! [`Client`] that knows where a door is and how to reach it, plain or
//! TLS, and logs agents in, each login answering a [`Session`] held open
//! with pings until one side ends it.
//!
//! A Rust agent uses it as it is; `musterd swarm` drives thousands of
//! sessions with it.

mod pinned;
mod stream;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use muster::names::{AgentTag, ModelUuid};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::WebPkiServerVerifier;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use stream::Conn;

/// How long a session waits for the door's close reply, or drains what
/// follows its close frame.
const LINGER: Duration = Duration::from_secs(1);

/// What is wrong with where a client was told to connect, naming the
/// setting (`url` or `ca`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{setting}: {reason}")]
#[non_exhaustive]
pub struct ClientError {
    /// `url` or `ca`.
    pub setting: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

fn client_error(setting: &'static str, reason: impl Into<String>) -> ClientError {
    ClientError {
        setting,
        reason: reason.into(),
    }
}

/// A door, as agents reach it: its URL, its address (resolved once) and,
/// for `wss://`, the authority its certificate is checked against. Cheap
/// to share: one client serves any number of agents.
#[derive(Clone)]
pub struct Client {
    url: String,
    host: String,
    port: u16,
    /// The door's address, once resolved.
    addr: Option<SocketAddr>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("url", &self.url)
            .field("addr", &self.addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Client {
    /// A client of the door at `url` (`ws://HOST:PORT/agent`, or `wss://`
    /// with `ca`, the PEM file of the authority that signed the door's
    /// certificate, which may be the certificate itself). The host is
    /// looked up at each login until [`Client::resolved`].
    pub fn new(url: &str, ca: Option<&Path>) -> Result<Client, ClientError> {
        let uri: Uri = url
            .parse()
            .map_err(|e| client_error("url", format!("{url:?} is not a URL: {e}")))?;
        let secure = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            _ => {
                return Err(client_error(
                    "url",
                    format!("{url:?}: wants ws:// or wss://"),
                ));
            }
        };
        let host = uri
            .host()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| client_error("url", format!("{url:?} names no host")))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tls = match (secure, ca) {
            (true, Some(ca)) => Some(connector(ca, &host)?),
            (true, None) => {
                return Err(client_error(
                    "ca",
                    "wss:// wants the PEM file of the authority that signed the door's certificate",
                ));
            }
            (false, Some(_)) => return Err(client_error("ca", "only for wss://")),
            (false, None) => None,
        };
        Ok(Client {
            url: url.to_owned(),
            host,
            port,
            addr: None,
            tls,
        })
    }

    /// The same client, its host looked up once now, so that thousands of
    /// logins do not each look it up.
    pub async fn resolved(mut self) -> Result<Client, ClientError> {
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| client_error("url", format!("cannot resolve {:?}", self.host)))?;
        self.addr = Some(addr);
        Ok(self)
    }

    /// The door's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Connects, upgrades and logs `login` in; answers the session once
    /// the door has answered with the connection's id.
    pub async fn login(&self, login: &Login) -> Result<Session, LoginFailure> {
        let tcp = match self.addr {
            Some(addr) => TcpStream::connect(addr).await,
            None => TcpStream::connect((self.host.as_str(), self.port)).await,
        }
        .map_err(|e| LoginFailure::Connect(e.kind()))?;
        let _ = tcp.set_nodelay(true);
        let conn = match &self.tls {
            None => Conn::Plain(tcp),
            Some((connector, name)) => Conn::Tls(Box::new(
                connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(|e| LoginFailure::Tls(e.to_string()))?,
            )),
        };
        // Small buffers: an agent sends a frame a minute.
        let config = WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024);
        let (mut ws, _) =
            tokio_tungstenite::client_async_with_config(self.url.as_str(), conn, Some(config))
                .await
                .map_err(|e| match e {
                    WsError::Http(response) => LoginFailure::Http(response.status().as_u16()),
                    _ => LoginFailure::Handshake,
                })?;
        ws.send(Message::text(login.frame()))
            .await
            .map_err(|_| LoginFailure::Dropped)?;
        loop {
            match ws.next().await {
                Some(Ok(Message::Text(answer))) => {
                    let answer: serde_json::Value =
                        serde_json::from_str(answer.as_str()).map_err(|_| LoginFailure::Answer)?;
                    let id = answer.get("connection_id").and_then(|id| id.as_u64());
                    let server = answer.get("server").and_then(|s| s.as_str());
                    return match (id, server) {
                        (Some(connection_id), Some(server)) => Ok(Session {
                            ws,
                            connection_id,
                            server: server.to_owned(),
                        }),
                        _ => Err(LoginFailure::Answer),
                    };
                }
                Some(Ok(Message::Close(frame))) => {
                    drain(&mut ws).await;
                    return Err(LoginFailure::Closed(close_code(frame)));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return Err(LoginFailure::Dropped),
            }
        }
    }
}

/// The TLS settings of a client that trusts the authority in the PEM file
/// `ca`, or the door's own certificate given there (see `pinned.rs`), and
/// the name the door's certificate must hold.
fn connector(ca: &Path, host: &str) -> Result<(TlsConnector, ServerName<'static>), ClientError> {
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| client_error("ca", format!("{}: {e:?}", ca.display())))?;
    for cert in &certs {
        roots
            .add(cert.clone())
            .map_err(|e| client_error("ca", format!("{}: {e}", ca.display())))?;
    }
    if roots.is_empty() {
        return Err(client_error(
            "ca",
            format!("{}: holds no certificate", ca.display()),
        ));
    }
    let provider = Arc::new(ring::default_provider());
    let signed = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| client_error("ca", format!("{}: {e}", ca.display())))?;
    let verifier = pinned::SignedOrPinned {
        signed,
        pinned: certs,
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| client_error("ca", e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| client_error("url", format!("{host:?}: {e}")))?;
    Ok((TlsConnector::from(Arc::new(config)), name))
}

/// What an agent says as it logs in: the login frame of
/// `docs/agent-protocol.md`. Its `Debug` leaves the secrets out.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Login {
    /// The agent's model.
    pub model: ModelUuid,
    /// The agent.
    pub agent: AgentTag,
    /// Whatever the agent says of itself (its version, say).
    pub user_data: String,
    /// Whether the agent is a controller's own.
    pub controller_agent: bool,
    /// The door's shared token, when it wants one.
    pub token: Option<String>,
    /// The agent's own password, when the door wants one.
    pub password: Option<String>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &Option<String>| secret.as_ref().map(|_| "…");
        f.debug_struct("Login")
            .field("model", &self.model)
            .field("agent", &self.agent)
            .field("user_data", &self.user_data)
            .field("controller_agent", &self.controller_agent)
            .field("token", &hidden(&self.token))
            .field("password", &hidden(&self.password))
            .finish()
    }
}

impl Login {
    /// Agent `agent` of `model`, not a controller's, with no user data,
    /// no token and no password.
    pub fn new(model: ModelUuid, agent: AgentTag) -> Self {
        Login {
            model,
            agent,
            user_data: String::new(),
            controller_agent: false,
            token: None,
            password: None,
        }
    }

    /// The same login with the agent's own `password`.
    pub fn with_password(mut self, password: Option<String>) -> Self {
        self.password = password;
        self
    }

    /// The same login with `token`.
    pub fn with_token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// The same login with `user_data`.
    pub fn with_user_data(mut self, user_data: impl Into<String>) -> Self {
        self.user_data = user_data.into();
        self
    }

    /// The login frame's text.
    pub fn frame(&self) -> String {
        let mut frame = serde_json::json!({
            "model": self.model,
            "agent": self.agent,
            "user_data": self.user_data,
            "controller_agent": self.controller_agent,
        });
        if let Some(token) = &self.token {
            frame["token"] = token.as_str().into();
        }
        if let Some(password) = &self.password {
            frame["password"] = password.as_str().into();
        }
        frame.to_string()
    }
}

/// Why a login did not come through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginFailure {
    /// The TCP connection failed.
    Connect(std::io::ErrorKind),
    /// The TLS handshake failed.
    Tls(String),
    /// The door answered the upgrade with this HTTP status (503: it is
    /// full).
    Http(u16),
    /// The WebSocket upgrade failed otherwise.
    Handshake,
    /// The connection went before the door answered.
    Dropped,
    /// The door's answer did not read.
    Answer,
    /// The door closed the connection with this code (4400: a bad login,
    /// 4401: a wrong token or password, 4429: too many failed logins from
    /// this address, 4503: presence is not recording...).
    Closed(u16),
}

impl std::fmt::Display for LoginFailure {
    /// The kind as `musterd swarm` counts it: `connect: …`, `tls: …`,
    /// `http 503`, `handshake`, `dropped`, `answer`, or the close code.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoginFailure::Connect(kind) => write!(f, "connect: {kind}"),
            LoginFailure::Tls(e) => write!(f, "tls: {e}"),
            LoginFailure::Http(status) => write!(f, "http {status}"),
            LoginFailure::Handshake => f.write_str("handshake"),
            LoginFailure::Dropped => f.write_str("dropped"),
            LoginFailure::Answer => f.write_str("answer"),
            LoginFailure::Closed(code) => write!(f, "{code}"),
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionEnd {
    /// The door closed it with this code (1001: it shuts down; 4408: the
    /// agent was silent too long; 4401: its password changed).
    Closed(u16),
    /// The connection went without a close frame.
    Dropped,
}

impl std::fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SessionEnd::Closed(code) => write!(f, "{code}"),
            SessionEnd::Dropped => f.write_str("dropped"),
        }
    }
}

/// A logged-in agent's connection to the door.
pub struct Session {
    ws: WebSocketStream<Conn>,
    connection_id: u64,
    server: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("connection_id", &self.connection_id)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The id the door gave the connection.
    pub fn connection_id(&self) -> u64 {
        self.connection_id
    }

    /// The API server the door records the agent under.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Sends a ping, which counts as the agent's activity.
    pub async fn ping(&mut self) -> Result<(), SessionEnd> {
        self.ws
            .send(Message::Ping(Default::default()))
            .await
            .map_err(|_| SessionEnd::Dropped)
    }

    /// Reads the next frame from the door: `None` for an ordinary one, the
    /// end when the door closed the connection or it went. Cancel-safe, so
    /// that it can wait beside a ping timer.
    pub async fn next_end(&mut self) -> Option<SessionEnd> {
        match self.ws.next().await {
            Some(Ok(Message::Close(frame))) => Some(SessionEnd::Closed(close_code(frame))),
            Some(Ok(_)) => None,
            Some(Err(_)) | None => Some(SessionEnd::Dropped),
        }
    }

    /// Closes the session with a close frame, waiting a little for the
    /// door's reply.
    pub async fn close(mut self) {
        let _ = timeout(LINGER, self.ws.close(None)).await;
    }

    /// After the door's close frame: reads on, which sends the close reply
    /// and lets the door end at once.
    pub async fn finish(mut self) {
        drain(&mut self.ws).await;
    }
}

async fn drain(ws: &mut WebSocketStream<Conn>) {
    let _ = timeout(LINGER, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

fn close_code(frame: Option<CloseFrame>) -> u16 {
    match frame {
        Some(frame) => u16::from(frame.code),
        None => u16::from(CloseCode::Status),
    }
}
