//! Why a message was not delivered, and a refused message handed back.

use std::fmt;

/// Why a message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The mailbox already holds `capacity` messages; the message was refused
    /// at once rather than queued.
    #[error("{child} is overloaded: its mailbox is full ({capacity} messages)")]
    Overloaded {
        /// The child the mailbox belongs to.
        child: String,
        /// The mailbox's capacity.
        capacity: usize,
    },
    /// The actor is not running: it is waiting to be restarted, waiting for an
    /// input, or stopped for good.
    #[error("{child} is not running")]
    NotRunning {
        /// The child the mailbox belongs to.
        child: String,
    },
    /// The message was accepted, but the actor stopped (or failed) before it
    /// answered.
    #[error("{child} stopped before answering")]
    Lost {
        /// The child the mailbox belongs to.
        child: String,
    },
    /// The whole subsystem the call goes to is not running: it did not
    /// start again within the handle's wait, or nothing will start it again
    /// (see `Muster::with_restart_wait`).
    #[error("{subsystem} is unavailable: {reason}")]
    Unavailable {
        /// The subsystem, by the name its host gave it.
        subsystem: String,
        /// Why.
        reason: String,
    },
}

/// A message [`Mailbox::do_send`](super::Mailbox::do_send) refused, handed back with why, as
/// tokio's `TrySendError` hands back what it could not send: the sender
/// decides whether to send it again later, keep it, or drop it.
pub struct TrySendError<M> {
    pub(super) message: M,
    pub(super) error: SendError,
}

impl<M> TrySendError<M> {
    /// Why the message was refused: [`SendError::Overloaded`] or
    /// [`SendError::NotRunning`].
    pub fn error(&self) -> &SendError {
        &self.error
    }

    /// The refused message.
    pub fn into_message(self) -> M {
        self.message
    }

    /// The refused message and why.
    pub fn into_parts(self) -> (M, SendError) {
        (self.message, self.error)
    }
}

impl<M> From<TrySendError<M>> for SendError {
    fn from(refused: TrySendError<M>) -> Self {
        refused.error
    }
}

impl<M> fmt::Debug for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The message need not be Debug; why it was refused is what matters.
        f.debug_struct("TrySendError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<M> fmt::Display for TrySendError<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl<M> std::error::Error for TrySendError<M> {}
