//! What can go wrong with a supervisor's specification, with a request to a
//! supervisor, and with a whole tree.

use muster::config::InvalidConfig;

use crate::mailbox::SendError;

/// What went wrong with a supervisor's specification or a request to it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SupervisorError {
    /// A restart config has settings out of range.
    #[error("invalid restart config: {0}")]
    Config(#[from] InvalidConfig),
    /// A child's name is empty or holds a `/` (paths use it).
    #[error("child name {0:?} is not valid: it must be non-empty and hold no '/'")]
    BadName(String),
    /// Two children of one supervisor share a name.
    #[error("{supervisor} already has a child called {child}")]
    Duplicate {
        /// The supervisor's path.
        supervisor: String,
        /// The name.
        child: String,
    },
    /// A child needs an input that is not declared before it (static
    /// children), or that is not a static child (dynamic children).
    #[error("child {child} of {supervisor} needs {input}, which is not {expected}")]
    UnknownInput {
        /// The supervisor's path.
        supervisor: String,
        /// The child.
        child: String,
        /// The input.
        input: String,
        /// What the input should have been.
        expected: &'static str,
    },
    /// The supervisor was declared without a dynamic group.
    #[error("{0} takes no dynamic children")]
    NotDynamic(String),
    /// Only dynamic children can be removed.
    #[error("{supervisor} has no dynamic child called {child}")]
    NoSuchChild {
        /// The supervisor's path.
        supervisor: String,
        /// The name.
        child: String,
    },
    /// A child to kill has no running instance, or no such child exists.
    #[error("{supervisor} has no running child called {child}")]
    NotRunning {
        /// The supervisor's path.
        supervisor: String,
        /// The name.
        child: String,
    },
    /// The supervisor is shutting down.
    #[error("{0} is shutting down")]
    ShuttingDown(String),
    /// [`Root::start`](super::Root::start) was called outside a running
    /// actix `System`.
    #[error("a supervision tree must be started inside a running actix System")]
    NoSystem,
    /// [`Root::run`](super::Root::run) was called on a root already
    /// started.
    #[error("the supervision tree {0} was started already")]
    AlreadyStarted(String),
    /// The supervisor could not be reached.
    #[error(transparent)]
    Send(#[from] SendError),
}

/// How a supervision tree ended badly.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TreeError {
    /// A child exited with [`Exit::Fatal`](super::Exit::Fatal); the message
    /// names it by path.
    #[error("fatal: {0}")]
    Fatal(String),
    /// The root failed: its restart intensity was exceeded, or it panicked.
    #[error("supervision tree failed: {0}")]
    Failed(String),
}
