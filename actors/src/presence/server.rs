//! One API server's connections as an actor, and the changes it applies.

use std::time::SystemTime;

use actix::prelude::*;
use muster::names::{AgentTag, ModelUuid};
use muster::presence::{ServerTable, ServerView, Value};
use slog::{Logger, debug, warn};

use super::ChangeKind;
use crate::supervisor::Kept;

/// A change to one server's connections, stamped by the host when it
/// happened.
#[derive(Debug, Clone)]
pub(super) enum ServerEvent {
    Connect {
        model: ModelUuid,
        agent: AgentTag,
        id: u64,
        controller_agent: bool,
        user_data: UserText,
        at: SystemTime,
    },
    Disconnect {
        id: u64,
    },
    Activity {
        id: u64,
        at: SystemTime,
    },
    Down,
    Snapshot {
        values: Vec<Value>,
        at: SystemTime,
    },
    /// Marked down and then given the snapshot, in one step: no query sees
    /// the server between the two.
    Replace {
        values: Vec<Value>,
        at: SystemTime,
    },
    Clear,
}

/// The user data of a connect on its way to the table: short strings (an
/// agent's version) travel inline, so that a connect allocates nothing on
/// the host's thread for the table's to free.
#[derive(Debug, Clone)]
pub(super) enum UserText {
    Inline { len: u8, bytes: [u8; 22] },
    Heap(Box<str>),
}

impl UserText {
    pub(super) fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `str`, so UTF-8.
            UserText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            UserText::Heap(text) => text,
        }
    }
}

impl From<&str> for UserText {
    fn from(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= 22 => {
                let mut bytes = [0; 22];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                UserText::Inline { len, bytes }
            }
            _ => UserText::Heap(text.into()),
        }
    }
}

impl Message for ServerEvent {
    type Result = ();
}

impl ServerEvent {
    /// The change a follower of the server hears of; activity stays local.
    pub(super) fn change(&self) -> Option<ChangeKind> {
        match self {
            ServerEvent::Connect {
                model,
                agent,
                id,
                controller_agent,
                user_data,
                ..
            } => Some(ChangeKind::Connect {
                id: *id,
                model: *model,
                agent: agent.clone(),
                controller_agent: *controller_agent,
                user_data: user_data.as_str().to_owned(),
            }),
            ServerEvent::Disconnect { id } => Some(ChangeKind::Disconnect { id: *id }),
            ServerEvent::Activity { .. } => None,
            ServerEvent::Down
            | ServerEvent::Snapshot { .. }
            | ServerEvent::Replace { .. }
            | ServerEvent::Clear => Some(ChangeKind::Reset),
        }
    }
}

/// Events for one server's actor, in the order they are to be applied: what
/// the router hands on at once.
#[derive(Debug)]
pub(super) struct ServerEvents(pub(super) Vec<ServerEvent>);

impl Message for ServerEvents {
    type Result = ();
}

/// Asks a server actor for a view of its table.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "ServerView")]
pub(super) struct ViewTable;

/// Answers once a server actor has applied every event sent before it.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub(super) struct CaughtUp;

/// One API server's connections, as an actor. Its table is kept across
/// restarts.
pub struct ServerPresence {
    pub(super) table: Kept<ServerTable>,
    pub(super) log: Logger,
}

impl Actor for ServerPresence {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        debug!(self.log, "server presence started"; "connections" => self.table.lock().count());
    }
}
crate::supervised!(ServerPresence);

impl Handler<ServerEvent> for ServerPresence {
    type Result = ();

    fn handle(&mut self, event: ServerEvent, _ctx: &mut Context<Self>) {
        let mut table = self.table.lock();
        apply(&mut table, event, &self.log);
    }
}

impl Handler<ServerEvents> for ServerPresence {
    type Result = ();

    fn handle(&mut self, events: ServerEvents, _ctx: &mut Context<Self>) {
        let mut table = self.table.lock();
        for event in events.0 {
            apply(&mut table, event, &self.log);
        }
    }
}

/// Applies one change to the server's table.
fn apply(table: &mut ServerTable, event: ServerEvent, log: &Logger) {
    match event {
        ServerEvent::Connect {
            model,
            agent,
            id,
            controller_agent,
            user_data,
            at,
        } => table.connect(&model, &agent, id, controller_agent, user_data.as_str(), at),
        ServerEvent::Disconnect { id } => {
            table.disconnect(id);
        }
        ServerEvent::Activity { id, at } => {
            table.activity(id, at);
        }
        ServerEvent::Down => table.mark_down(),
        ServerEvent::Snapshot { values, at } => {
            // The router validated the snapshot before routing it.
            if let Err(error) = table.apply_snapshot(values, at) {
                warn!(log, "snapshot refused"; "error" => %error);
            }
        }
        ServerEvent::Replace { values, at } => {
            // Alive entries the snapshot no longer holds go missing
            // (docs/spec.md §1.4.3); both steps under one lock, in one
            // handler, so no query sees the table between them.
            table.mark_down();
            if let Err(error) = table.apply_snapshot(values, at) {
                warn!(log, "snapshot refused"; "error" => %error);
            }
        }
        ServerEvent::Clear => table.clear(),
    }
}

impl Handler<CaughtUp> for ServerPresence {
    type Result = ();

    fn handle(&mut self, _: CaughtUp, _ctx: &mut Context<Self>) {}
}

impl Handler<ViewTable> for ServerPresence {
    type Result = MessageResult<ViewTable>;

    fn handle(&mut self, _: ViewTable, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.table.lock().view())
    }
}

#[cfg(test)]
mod tests {
    use super::UserText;

    #[test]
    fn user_text_gives_back_what_it_was_given() {
        for text in [
            "",
            "4.0.1",
            "twenty-two bytes long!",
            "twenty-three bytes long",
            "é",
        ] {
            assert_eq!(UserText::from(text).as_str(), text);
        }
        let long = "ü".repeat(100_000);
        assert_eq!(UserText::from(long.as_str()).as_str(), long);
        assert!(matches!(UserText::from("4.0.1"), UserText::Inline { .. }));
    }
}
