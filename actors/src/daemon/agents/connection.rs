//! One agent's connection, from the upgrade to the last frame: the login,
//! the connect record, activity, pings, the idle timeout and every way it
//! can end, each of which records the disconnect exactly once.

use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, SinkExt, StreamExt};
use slog::{Logger, debug};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::ConnectionIds;
use super::config::AgentsConfig;
use super::login::{self, Login, NOT_RECORDING, Refusal, TIMED_OUT};
use super::metrics::DoorMetrics;
use crate::mailbox::SendError;
use crate::presence::PresenceHandle;

/// The path agents connect to.
pub const AGENT_PATH: &str = "/agent";

/// Close code of a server going away.
pub const GOING_AWAY: u16 = 1001;
/// Close code of a frame that breaks the protocol.
const PROTOCOL_ERROR: u16 = 1002;
/// Close code of a text frame that is not UTF-8.
const INVALID_DATA: u16 = 1007;
/// Close code of a frame over `max_frame`.
pub const TOO_BIG: u16 = 1009;
/// Close code of a login presence could not take now.
pub const TRY_AGAIN: u16 = 1013;

/// How long a closing connection waits for the agent's close reply, so
/// that the close frame is not lost to a reset.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// What every connection of a door shares.
pub(super) struct Shared {
    pub config: AgentsConfig,
    pub presence: PresenceHandle,
    pub ids: ConnectionIds,
    pub logger: Logger,
    pub websocket: WebSocketConfig,
    pub shutdown: watch::Receiver<bool>,
    pub enabled: watch::Receiver<bool>,
    pub metrics: DoorMetrics,
}

impl Shared {
    /// The WebSocket settings of the door's connections: small buffers,
    /// since most agents send a frame a minute, and frames capped.
    pub fn websocket(config: &AgentsConfig) -> WebSocketConfig {
        WebSocketConfig::default()
            .read_buffer_size(1024)
            .write_buffer_size(0)
            .max_write_buffer_size(64 * 1024)
            .max_frame_size(Some(config.max_frame))
            .max_message_size(Some(config.max_frame))
    }
}

/// Serves one accepted socket: the upgrade and login within
/// `login_timeout` of `started`, then the connection until it ends.
pub(super) async fn serve<S>(shared: Arc<Shared>, stream: S, peer: String, started: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let deadline = started + shared.config.login_timeout;
    // tungstenite's callback answers its refusal as a whole HTTP response.
    #[allow(clippy::result_large_err)]
    let check_path = |request: &Request, response: Response| {
        if request.uri().path() == AGENT_PATH {
            Ok(response)
        } else {
            Err(http_error(
                StatusCode::NOT_FOUND,
                &format!(
                    "no such path: {}; agents connect to {AGENT_PATH}",
                    request.uri().path()
                ),
            ))
        }
    };
    let upgrade =
        tokio_tungstenite::accept_hdr_async_with_config(stream, check_path, Some(shared.websocket));
    let mut shutdown = shared.shutdown.clone();
    let upgraded = tokio::select! {
        upgraded = timeout_at(deadline, upgrade) => upgraded,
        _ = shutdown.changed() => return,
    };
    let mut ws = match upgraded {
        Ok(Ok(ws)) => ws,
        Ok(Err(e)) => {
            debug!(shared.logger, "agent upgrade failed"; "peer" => &peer, "error" => %e);
            return;
        }
        Err(_) => {
            debug!(shared.logger, "agent upgrade timed out"; "peer" => &peer);
            return;
        }
    };
    let first = tokio::select! {
        first = timeout_at(deadline, first_text(&mut ws)) => first,
        _ = shutdown.changed() => Ok(Err(going_away())),
    };
    let login = match first {
        Err(_) => Err(Ending::Close(Refusal::new(
            TIMED_OUT,
            format!(
                "login: none within {}",
                humantime::format_duration(shared.config.login_timeout)
            ),
        ))),
        Ok(Ok(text)) => login::read(&text, shared.config.token.as_deref()).map_err(Ending::Close),
        Ok(Err(ending)) => Err(ending),
    };
    let mut enabled = shared.enabled.clone();
    let login = login.and_then(|login| {
        if *enabled.borrow_and_update() {
            Ok(login)
        } else {
            Err(Ending::Close(Refusal::new(
                NOT_RECORDING,
                "presence is not being recorded on this server; try again later",
            )))
        }
    });
    let login = match login {
        Ok(login) => login,
        Err(ending) => {
            debug!(shared.logger, "agent login refused"; "peer" => &peer, "ending" => ?ending);
            if let Some(code) = ending.code() {
                shared.metrics.login(&code.to_string());
            }
            end(&mut ws, ending).await;
            return;
        }
    };
    let id = shared.ids.next();
    let mut record = match Recorded::connect(&shared, &login, id) {
        Ok(record) => record,
        Err(e) => {
            debug!(shared.logger, "agent login not recorded"; "peer" => &peer, "error" => %e);
            let refusal = Refusal::new(TRY_AGAIN, "presence is overloaded; try again later");
            shared.metrics.login(&TRY_AGAIN.to_string());
            end(&mut ws, Ending::Close(refusal)).await;
            return;
        }
    };
    debug!(shared.logger, "agent connected";
        "peer" => &peer, "agent" => %login.agent, "model" => %login.model, "id" => id);
    // Presence holds what the login said; the connection need not.
    drop(login);
    let answer = format!(
        r#"{{"connection_id":{id},"server":"{}"}}"#,
        shared.config.server
    );
    let ending = match timeout(shared.config.ping_interval, ws.send(Message::text(answer))).await {
        Ok(Ok(())) => live(&shared, &mut ws, &mut enabled, &record).await,
        Ok(Err(_)) | Err(_) => Ending::Gone,
    };
    debug!(shared.logger, "agent disconnected"; "id" => id, "ending" => ?ending);
    record.reason = ending.reason();
    end(&mut ws, ending).await;
    drop(record);
}

/// How a connection ends.
#[derive(Debug)]
enum Ending {
    /// The server closes it with this code and reason.
    Close(Refusal),
    /// The agent closed it; the close handshake is finished by reading on.
    ClosedByAgent,
    /// The socket is gone, or unusable: nothing more is sent.
    Gone,
    /// The agent sent a frame that may not be read further (too big, or
    /// broken): close with this code, then discard what follows unread.
    Broken(u16, &'static str),
}

/// The agent's first text frame; pings and pongs before it are answered
/// and passed over.
async fn first_text<S>(ws: &mut WebSocketStream<S>) -> Result<String, Ending>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => return Ok(text.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => {
                return Err(Ending::Close(Refusal::new(
                    login::BAD_LOGIN,
                    "login: expected a text frame of JSON, got a binary one",
                )));
            }
            Some(Ok(Message::Close(_))) => return Err(Ending::ClosedByAgent),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(broken(e)),
            None => return Err(Ending::Gone),
        }
    }
}

impl Ending {
    /// The close code the server sends, if it sends one.
    fn code(&self) -> Option<u16> {
        match self {
            Ending::Close(refusal) => Some(refusal.code),
            Ending::Broken(code, _) => Some(*code),
            Ending::ClosedByAgent | Ending::Gone => None,
        }
    }

    /// The reason of a logged-in connection's end, for the metrics.
    fn reason(&self) -> &'static str {
        match self {
            Ending::ClosedByAgent => "closed",
            Ending::Gone => "dropped",
            Ending::Broken(TOO_BIG, _) => "too_big",
            Ending::Broken(..) => "protocol",
            Ending::Close(refusal) => match refusal.code {
                GOING_AWAY => "shutdown",
                NOT_RECORDING => "disabled",
                _ => "idle",
            },
        }
    }
}

fn going_away() -> Ending {
    Ending::Close(Refusal::new(GOING_AWAY, "server shutting down"))
}

fn broken(error: WsError) -> Ending {
    match error {
        // The socket ended without a close frame: dropped, not broken.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ending::Gone,
        WsError::Capacity(_) => Ending::Broken(TOO_BIG, "frame larger than max_frame"),
        WsError::Utf8(_) => Ending::Broken(INVALID_DATA, "text frame is not UTF-8"),
        WsError::Protocol(_) => Ending::Broken(PROTOCOL_ERROR, "protocol error"),
        _ => Ending::Gone,
    }
}

/// A connection recorded in presence; dropping it records the disconnect,
/// however the connection's task ends (aborted included).
struct Recorded<'a> {
    shared: &'a Shared,
    id: u64,
    /// Why it ended, for the metrics; a task aborted before it could say
    /// is one the runtime dropped as it shut down.
    reason: &'static str,
}

impl<'a> Recorded<'a> {
    /// Records the connection; refused when the router's mailbox is full
    /// or the router is gone, and then nothing is recorded.
    fn connect(shared: &'a Shared, login: &Login, id: u64) -> Result<Self, SendError> {
        // The handle's changes complete on their first poll: they only put
        // the event in the router's mailbox.
        shared
            .presence
            .connect(
                &shared.config.server,
                &login.model,
                &login.agent,
                id,
                login.controller_agent,
                &login.user_data,
            )
            .now_or_never()
            .unwrap_or(Ok(()))?;
        shared.metrics.connected();
        Ok(Recorded {
            shared,
            id,
            reason: "shutdown",
        })
    }

    fn activity(&self) {
        let _ = self
            .shared
            .presence
            .activity(&self.shared.config.server, self.id)
            .now_or_never();
    }
}

impl Drop for Recorded<'_> {
    fn drop(&mut self) {
        self.shared.metrics.disconnected(self.reason);
        let server = &self.shared.config.server;
        let refused = matches!(
            self.shared
                .presence
                .disconnect(server, self.id)
                .now_or_never(),
            Some(Err(_))
        );
        // A full mailbox must not leave the connection alive for ever: try
        // again a little later, for a while.
        if refused && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (presence, server, id) = (self.shared.presence.clone(), server.clone(), self.id);
            runtime.spawn(async move {
                for _ in 0..DISCONNECT_TRIES {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if presence.disconnect(&server, id).await.is_ok() {
                        return;
                    }
                }
            });
        }
    }
}

/// How often a refused disconnect is sent again, 50 ms apart.
const DISCONNECT_TRIES: usize = 200;

/// A logged-in connection: every frame is activity (coalesced), the
/// server pings, and silence, shutdown or presence being disabled ends
/// it.
async fn live<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    enabled: &mut watch::Receiver<bool>,
    record: &Recorded<'_>,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = &shared.config;
    let mut shutdown = shared.shutdown.clone();
    let now = Instant::now();
    let mut heard = now;
    let mut activity = Coalesce::new(config.activity_interval, now);
    let mut next_ping = now + config.ping_interval;
    // One timer for both the pings and the idle timeout: frames only move
    // the idle deadline later, so it is checked when the timer fires
    // rather than the timer being reset on every frame.
    let timer = sleep_until(next_ping.min(heard + config.idle_timeout));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.changed() => return going_away(),
            changed = enabled.changed() => {
                if changed.is_err() || !*enabled.borrow_and_update() {
                    return Ending::Close(Refusal::new(
                        NOT_RECORDING,
                        "presence is no longer recorded on this server",
                    ));
                }
            }
            frame = ws.next() => match frame {
                Some(Ok(Message::Close(_))) => return Ending::ClosedByAgent,
                Some(Ok(_)) => {
                    heard = Instant::now();
                    if activity.due(heard) {
                        record.activity();
                    }
                }
                Some(Err(e)) => return broken(e),
                None => return Ending::Gone,
            },
            () = &mut timer => {
                let now = Instant::now();
                let idle = heard + config.idle_timeout;
                if now >= idle {
                    return Ending::Close(Refusal::new(
                        TIMED_OUT,
                        format!(
                            "idle: nothing received for {}",
                            humantime::format_duration(config.idle_timeout)
                        ),
                    ));
                }
                if now >= next_ping {
                    next_ping = now + config.ping_interval;
                    // An agent that does not read its socket holds up the
                    // write; it is silent, so the idle deadline ends it.
                    match timeout_at(idle, ws.send(Message::Ping(Default::default()))).await {
                        Ok(Ok(())) => {}
                        Ok(Err(_)) => return Ending::Gone,
                        Err(_) => return Ending::Close(Refusal::new(
                            TIMED_OUT,
                            "idle: not reading its pings",
                        )),
                    }
                }
                timer.as_mut().reset(next_ping.min(heard + config.idle_timeout));
            }
        }
    }
}

/// Activity, coalesced: at most one report per `every`, made by the first
/// frame after it has passed (the login counts as a report).
struct Coalesce {
    every: Duration,
    last: Instant,
}

impl Coalesce {
    fn new(every: Duration, login: Instant) -> Self {
        Coalesce { every, last: login }
    }

    /// Whether a frame heard at `now` is reported.
    fn due(&mut self, now: Instant) -> bool {
        let due = now.saturating_duration_since(self.last) >= self.every;
        if due {
            self.last = now;
        }
        due
    }
}

/// Ends a connection as `ending` says, within [`CLOSE_LINGER`].
async fn end<S>(ws: &mut WebSocketStream<S>, ending: Ending)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _ = timeout(CLOSE_LINGER, async {
        match ending {
            Ending::Gone => {}
            Ending::ClosedByAgent => {
                // Reading on sends the close reply, then ends.
                while let Some(Ok(_)) = ws.next().await {}
            }
            Ending::Close(refusal) => {
                if ws.close(Some(close_frame(refusal))).await.is_ok() {
                    while let Some(Ok(_)) = ws.next().await {}
                }
            }
            Ending::Broken(code, reason) => {
                let _ = ws
                    .close(Some(close_frame(Refusal::new(code, reason))))
                    .await;
                // The frame that broke it may still be arriving: discard it
                // from the socket itself, never through the WebSocket
                // reader, which would buffer it whole.
                let stream = ws.get_mut();
                let _ = stream.shutdown().await;
                let mut sink = vec![0u8; 4096];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            }
        }
    })
    .await;
}

fn close_frame(refusal: Refusal) -> CloseFrame {
    CloseFrame {
        code: CloseCode::from(refusal.code),
        reason: refusal.reason.into(),
    }
}

/// An HTTP answer in place of the upgrade.
pub(super) fn http_error(status: StatusCode, message: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(format!("{message}\n")));
    *response.status_mut() = status;
    response
}

/// Answers a socket past `max_connections`: HTTP 503 to its upgrade
/// request, within `login_timeout` of `started`.
pub(super) async fn refuse<S>(shared: Arc<Shared>, stream: S, started: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let deadline = started + shared.config.login_timeout;
    let max = shared.config.max_connections;
    shared.metrics.login("http_503");
    #[allow(clippy::result_large_err)]
    let full = move |_: &Request, _: Response| {
        let mut response = http_error(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("this server holds its most agent connections ({max}); try again later"),
        );
        response
            .headers_mut()
            .insert("Retry-After", "5".parse().expect("a header value"));
        Err(response)
    };
    let _ = timeout_at(
        deadline,
        tokio_tungstenite::accept_hdr_async_with_config(stream, full, Some(shared.websocket)),
    )
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_reported_once_per_interval() {
        let login = Instant::now();
        let ms = Duration::from_millis;
        let mut activity = Coalesce::new(ms(1000), login);
        let reported: Vec<u64> = [400, 800, 1200, 1600, 2100, 2199, 2200, 5000]
            .into_iter()
            .filter(|&t| activity.due(login + ms(t)))
            .collect();
        assert_eq!(reported, [1200, 2200, 5000]);
        let mut every = Coalesce::new(Duration::ZERO, login);
        assert!(every.due(login) && every.due(login) && every.due(login + ms(1)));
    }
}
