//! One agent's connection, from the upgrade to the last frame: the login,
//! activity, pings and the idle timeout. What presence hears of it is in
//! `record`, how it ends in `ending`.

use std::net::SocketAddr;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use slog::debug;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, watch};
use tokio::time::error::Elapsed;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::StatusCode;

use super::ending::{Ending, GOING_AWAY, TRY_AGAIN, broken, end, going_away};
use super::limiter::TOO_MANY_FAILURES;
use super::login::{self, BAD_TOKEN, NOT_RECORDING, Refusal, TIMED_OUT};
use super::passwords::{self, PASSWORD_CHANGED};
use super::record::{Coalesce, Recorded};
use super::shared::{Shared, closing};
use muster::clock::later;
use muster_actors::mailbox::SendError;

/// The path agents connect to.
pub const AGENT_PATH: &str = "/agent";

/// Serves one accepted socket: the upgrade and login within
/// `login_timeout` of `started`, then the connection until it ends.
pub(super) async fn serve<S>(shared: Arc<Shared>, stream: S, peer: SocketAddr, started: Instant)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let address = peer.ip();
    let peer = peer.to_string();
    let deadline = later(started, shared.config.login_timeout);
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
        () = closing(&mut shutdown) => return,
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
        () = closing(&mut shutdown) => Ok(Err(going_away())),
    };
    let login = match first {
        Err(_) => Err(Ending::Close(Refusal::new(
            TIMED_OUT,
            format!(
                "login: none within {}",
                humantime::format_duration(shared.config.login_timeout)
            ),
        ))),
        Ok(Ok(_)) if shared.limiter.locked(address, Instant::now()) => {
            Err(Ending::Close(Refusal::new(
                TOO_MANY_FAILURES,
                "login: too many failed logins from this address; try again later",
            )))
        }
        Ok(Ok(text)) => login::read(&text, shared.config.token.as_deref()).map_err(Ending::Close),
        Ok(Err(ending)) => Err(ending),
    };
    // With passwords, the login is checked against the agent's own, within
    // the login's deadline.
    let login = match login {
        Ok(login) if shared.config.passwords() => {
            let before = shared.live.changes();
            let checked = tokio::select! {
                checked = timeout_at(deadline, passwords::check(shared.passwords.as_ref(), &login)) => checked,
                () = closing(&mut shutdown) => Ok(Err(Refusal::new(GOING_AWAY, "server shutting down"))),
            };
            match checked {
                Ok(Ok(hash)) => Ok((login, Some((hash, before)))),
                Ok(Err(refusal)) => Err(Ending::Close(refusal)),
                Err(_) => Err(Ending::Close(Refusal::new(
                    TRY_AGAIN,
                    "the password store did not answer in time; try again later",
                ))),
            }
        }
        Ok(login) => Ok((login, None)),
        Err(ending) => Err(ending),
    };
    let mut enabled = shared.enabled.clone();
    let login = login.and_then(|(login, hash)| {
        if *enabled.borrow_and_update() {
            Ok((login, hash))
        } else {
            Err(Ending::Close(Refusal::new(
                NOT_RECORDING,
                "presence is not being recorded on this server; try again later",
            )))
        }
    });
    // The login is answered once presence has taken its connect: while
    // muster restarts, that waits, within the login's deadline.
    let recorded = match login {
        Ok((login, hash)) => {
            let id = shared.ids.next();
            tokio::select! {
                recorded = timeout_at(deadline, Recorded::connect(&shared, &login, id)) => {
                    not_taken(&shared, &peer, recorded).map(|record| (record, login, hash, id))
                }
                // The connect, not answered yet, was not sent.
                () = closing(&mut shutdown) => Err(going_away()),
            }
        }
        Err(ending) => Err(ending),
    };
    let (mut record, login, hash, id) = match recorded {
        Ok(recorded) => recorded,
        Err(ending) => {
            debug!(shared.logger, "agent login refused"; "peer" => &peer, "ending" => ?ending);
            if let Some(code) = ending.code() {
                shared.metrics.login(&code.to_string());
                if code == BAD_TOKEN && shared.limiter.failed(address, Instant::now()) {
                    debug!(shared.logger, "agent logins refused from this address for a while";
                        "peer" => &peer);
                }
            }
            end(&mut ws, ending).await;
            return;
        }
    };
    debug!(shared.logger, "agent connected";
        "peer" => &peer, "agent" => %login.agent, "model" => %login.model, "id" => id);
    // A change of the agent's password closes the connection.
    let (holding, revoked) = match hash {
        Some((hash, before)) => {
            let passwords = shared.passwords.as_ref();
            let (holding, revoked) = shared.live.hold(&login, id, hash, before, passwords).await;
            (Some(holding), Some(revoked))
        }
        None => (None, None),
    };
    // Presence holds what the login said; the connection need not.
    drop(login);
    let answer = format!(
        r#"{{"connection_id":{id},"server":"{}"}}"#,
        shared.config.server
    );
    let ending = match timeout(shared.config.ping_interval, ws.send(Message::text(answer))).await {
        Ok(Ok(())) => live(&shared, &mut ws, &mut enabled, &record, revoked).await,
        Ok(Err(_)) | Err(_) => Ending::Gone,
    };
    debug!(shared.logger, "agent disconnected"; "id" => id, "ending" => ?ending);
    record.reason = ending.reason();
    drop(holding);
    end(&mut ws, ending).await;
    drop(record);
}

/// The login's refusal when presence did not take its connect: 1013 when
/// its router's mailbox is full, 4503 when muster did not run again within
/// the login's deadline (or the handle's restart wait).
fn not_taken<T>(
    shared: &Shared,
    peer: &str,
    connected: Result<Result<T, SendError>, Elapsed>,
) -> Result<T, Ending> {
    let refusal = match connected {
        Ok(Ok(recorded)) => return Ok(recorded),
        Ok(Err(SendError::Overloaded { .. })) => {
            Refusal::new(TRY_AGAIN, "presence is overloaded; try again later")
        }
        Ok(Err(error)) => {
            debug!(shared.logger, "agent login not recorded"; "peer" => peer, "error" => %error);
            Refusal::new(NOT_RECORDING, UNAVAILABLE)
        }
        Err(_) => Refusal::new(NOT_RECORDING, UNAVAILABLE),
    };
    Err(Ending::Close(refusal))
}

/// Why a login presence did not take in time is refused.
const UNAVAILABLE: &str = "presence is unavailable on this server (restarting); try again later";

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

/// A logged-in connection: every frame is activity (coalesced), the
/// server pings, and silence, shutdown or presence being disabled ends
/// it.
async fn live<S>(
    shared: &Shared,
    ws: &mut WebSocketStream<S>,
    enabled: &mut watch::Receiver<bool>,
    record: &Recorded<'_>,
    revoked: Option<oneshot::Receiver<()>>,
) -> Ending
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Told once, when the password it logged in with is no longer valid.
    let revoked = async move {
        // A sender dropped unsent: the door let go of the connection's
        // password, which only happens as it ends.
        let told = match revoked {
            Some(revoked) => revoked.await.is_ok(),
            None => false,
        };
        if !told {
            std::future::pending::<()>().await;
        }
    };
    tokio::pin!(revoked);
    let config = &shared.config;
    let mut shutdown = shared.shutdown.clone();
    let now = Instant::now();
    let mut heard = now;
    let mut activity = Coalesce::new(config.activity_interval, now);
    let mut next_ping = later(now, config.ping_interval);
    // One timer for both the pings and the idle timeout: frames only move
    // the idle deadline later, so it is checked when the timer fires
    // rather than the timer being reset on every frame.
    let timer = sleep_until(next_ping.min(later(heard, config.idle_timeout)));
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            () = closing(&mut shutdown) => return going_away(),
            () = &mut revoked => {
                return Ending::Close(Refusal::new(BAD_TOKEN, PASSWORD_CHANGED));
            }
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
                let idle = later(heard, config.idle_timeout);
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
                    next_ping = later(now, config.ping_interval);
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
    let deadline = later(started, shared.config.login_timeout);
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
