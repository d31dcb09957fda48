//! One connection as a server table stores it.

use std::time::SystemTime;

use super::{Status, Value};
use crate::names::{AgentTag, MachineTag, ModelUuid};

/// One connection as stored: the model and server are those of the group and
/// the table holding it, so they are not repeated per entry.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) agent: AgentTag,
    pub(crate) id: u64,
    pub(crate) user_data: UserData,
    pub(crate) last_seen: SystemTime,
    pub(crate) status: Status,
    pub(crate) controller_agent: bool,
}

impl Entry {
    pub(crate) fn to_value(&self, server: &MachineTag, model: &ModelUuid) -> Value {
        Value {
            model: *model,
            server: server.clone(),
            agent: self.agent.clone(),
            controller_agent: self.controller_agent,
            connection_id: self.id,
            status: self.status,
            user_data: self.user_data.as_str().to_owned(),
            last_seen: self.last_seen,
        }
    }
}

/// Bytes of user data kept inline: with the tag and the length, the type is
/// as big as the string it replaces plus one word.
const INLINE_USER_DATA: usize = 22;

/// The string an agent gave at login. Agents send short strings, which are
/// kept inline: nothing to allocate on connect, nothing to free on disconnect.
#[derive(Clone, Debug)]
pub(crate) enum UserData {
    Inline {
        len: u8,
        bytes: [u8; INLINE_USER_DATA],
    },
    Heap(Box<str>),
}

impl UserData {
    pub(crate) fn as_str(&self) -> &str {
        match self {
            // The bytes were copied whole from a `str`, so they are UTF-8.
            UserData::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            UserData::Heap(text) => text,
        }
    }
}

impl From<&str> for UserData {
    fn from(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE_USER_DATA => {
                let mut bytes = [0; INLINE_USER_DATA];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                UserData::Inline { len, bytes }
            }
            _ => UserData::Heap(text.into()),
        }
    }
}

impl From<String> for UserData {
    fn from(text: String) -> Self {
        if text.len() <= INLINE_USER_DATA {
            UserData::from(text.as_str())
        } else {
            UserData::Heap(text.into_boxed_str())
        }
    }
}
