//! How a connection ends: the close codes the server sends, and the close
//! itself, bounded in time, so that the agent hears why before the socket
//! goes.

use std::time::Duration;

use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::timeout;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Error as WsError;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::login::{BAD_TOKEN, NOT_RECORDING, Refusal};

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

/// How a connection ends.
#[derive(Debug)]
pub(super) enum Ending {
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

impl Ending {
    /// The close code the server sends, if it sends one.
    pub(super) fn code(&self) -> Option<u16> {
        match self {
            Ending::Close(refusal) => Some(refusal.code),
            Ending::Broken(code, _) => Some(*code),
            Ending::ClosedByAgent | Ending::Gone => None,
        }
    }

    /// The reason of a logged-in connection's end, for the metrics.
    pub(super) fn reason(&self) -> &'static str {
        match self {
            Ending::ClosedByAgent => "closed",
            Ending::Gone => "dropped",
            Ending::Broken(TOO_BIG, _) => "too_big",
            Ending::Broken(..) => "protocol",
            Ending::Close(refusal) => match refusal.code {
                GOING_AWAY => "shutdown",
                NOT_RECORDING => "disabled",
                BAD_TOKEN => "revoked",
                _ => "idle",
            },
        }
    }
}

pub(super) fn going_away() -> Ending {
    Ending::Close(Refusal::new(GOING_AWAY, "server shutting down"))
}

pub(super) fn broken(error: WsError) -> Ending {
    match error {
        // The socket ended without a close frame: dropped, not broken.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => Ending::Gone,
        WsError::Capacity(_) => Ending::Broken(TOO_BIG, "frame larger than max_frame"),
        WsError::Utf8(_) => Ending::Broken(INVALID_DATA, "text frame is not UTF-8"),
        WsError::Protocol(_) => Ending::Broken(PROTOCOL_ERROR, "protocol error"),
        _ => Ending::Gone,
    }
}

/// Ends a connection as `ending` says, within [`CLOSE_LINGER`].
pub(super) async fn end<S>(ws: &mut WebSocketStream<S>, ending: Ending)
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
