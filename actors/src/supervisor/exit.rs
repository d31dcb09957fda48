//! Why a child stops, and the slot through which a running actor says so.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use actix::{ActorContext, Context};
use muster::sync::lock;
use serde::{Deserialize, Serialize};

/// Why a child stopped. An actor reports it through its [`ExitSlot`]; a
/// start function returns it as its error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "exit", content = "detail")]
pub enum Exit {
    /// Finished normally. Permanent children are restarted after the bounce
    /// delay; transient and temporary ones stay stopped.
    Done,
    /// Asks to be restarted after the bounce delay (not for temporary
    /// children).
    Bounce,
    /// An input is not available: the child is started again when one of its
    /// inputs (re)starts.
    Missing {
        /// The input that was missing.
        input: String,
    },
    /// Remove the child for good.
    Uninstall,
    /// An error: restarted with backoff unless temporary. A panic is a
    /// failure whose message starts with `panicked: `.
    Failed(String),
    /// Stop the whole tree; the host learns this error.
    Fatal(String),
}

impl Exit {
    /// A failure carrying `error`'s message.
    pub fn failed(error: impl fmt::Display) -> Self {
        Exit::Failed(error.to_string())
    }

    /// A fatal error carrying `error`'s message.
    pub fn fatal(error: impl fmt::Display) -> Self {
        Exit::Fatal(error.to_string())
    }

    /// The input `input` is missing.
    pub fn missing(input: impl Into<String>) -> Self {
        Exit::Missing {
            input: input.into(),
        }
    }
}

impl fmt::Display for Exit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exit::Done => f.write_str("done"),
            Exit::Bounce => f.write_str("bounce"),
            Exit::Missing { input } => write!(f, "input {input} missing"),
            Exit::Uninstall => f.write_str("uninstall"),
            Exit::Failed(e) => write!(f, "failed: {e}"),
            Exit::Fatal(e) => write!(f, "fatal: {e}"),
        }
    }
}

/// Where a running actor leaves the reason it is about to stop. Cheap to
/// clone; handed out by [`StartCtx::exit_slot`](super::StartCtx::exit_slot).
/// An actor that stops without setting it exits with [`Exit::Done`].
///
/// It also tells the actor, in its `stopping`, whether its supervisor asked
/// it to stop ([`ExitSlot::stop_requested`]): actix runs `stopping` too
/// when an instance is killed, or dropped after a panic, and an actor that
/// hands its work over gracefully (closing its connections, say) does it
/// only when asked.
#[derive(Clone, Debug, Default)]
pub struct ExitSlot(Arc<Slot>);

#[derive(Debug, Default)]
struct Slot {
    exit: Mutex<Option<Exit>>,
    stop_requested: AtomicBool,
}

impl ExitSlot {
    /// Whether the supervisor asked this instance to stop: its tree is
    /// shutting down, the child is being removed, or an input of it
    /// stopped. False in a `stopping` run because the instance was killed
    /// or failed.
    pub fn stop_requested(&self) -> bool {
        self.0.stop_requested.load(Ordering::Relaxed)
    }

    pub(super) fn request_stop(&self) {
        self.0.stop_requested.store(true, Ordering::Relaxed);
    }

    /// Records `exit` as the reason of the coming stop (the last one set wins).
    pub fn set(&self, exit: Exit) {
        *lock(&self.0.exit) = Some(exit);
    }

    /// Records `exit` and stops the actor.
    pub fn stop<A>(&self, ctx: &mut Context<A>, exit: Exit)
    where
        A: actix::Actor<Context = Context<A>>,
    {
        self.set(exit);
        ctx.stop();
    }

    pub(super) fn take(&self) -> Option<Exit> {
        lock(&self.0.exit).take()
    }
}
