//! One connection as a server table stores it, packed into 40 bytes: a
//! million of them are held at once, and the fewer cache lines they take,
//! the fewer misses every connect, activity and disconnect pays.

use std::time::{Duration, SystemTime};

use super::agents::Agent;
use super::{Status, Value};
use crate::names::{AgentTag, MachineTag, ModelUuid};

/// One connection as stored: the model and server are those of the group and
/// the table holding it, so they are not repeated per entry; the agent is a
/// pointer to its tag, held once however many connections name it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) id: u64,
    /// When the connection was last seen.
    seen: Stamp,
    agent: Agent,
    /// The user data, the status and the controller flag.
    tail: Tail,
}

// The size the layout is chosen for; a change that grows it shows here.
const _: () = assert!(std::mem::size_of::<Entry>() == 40);

impl Entry {
    pub(crate) fn new(
        id: u64,
        agent: Agent,
        controller_agent: bool,
        user_data: &str,
        seen: SystemTime,
    ) -> Self {
        Entry {
            id,
            seen: Stamp::from(seen),
            agent,
            tail: Tail::new(user_data, flags(Status::Alive, controller_agent)),
        }
    }

    pub(crate) fn agent(&self) -> &AgentTag {
        self.agent.tag()
    }

    /// The agent's identity in the tally: one per distinct tag.
    pub(crate) fn agent_id(&self) -> usize {
        self.agent.id()
    }

    pub(crate) fn status(&self) -> Status {
        match self.tail.flags() & STATUS {
            ALIVE => Status::Alive,
            MISSING => Status::Missing,
            _ => Status::Unknown,
        }
    }

    /// Sets the status, answering the one it had.
    pub(crate) fn set_status(&mut self, status: Status) -> Status {
        let was = self.status();
        let flags = self.tail.flags_mut();
        *flags = (*flags & !STATUS) | status_bits(status);
        was
    }

    pub(crate) fn controller_agent(&self) -> bool {
        self.tail.flags() & CONTROLLER != 0
    }

    pub(crate) fn user_data(&self) -> &str {
        self.tail.text()
    }

    pub(crate) fn last_seen(&self) -> SystemTime {
        self.seen.time()
    }

    pub(crate) fn see(&mut self, now: SystemTime) {
        self.seen = Stamp::from(now);
    }

    pub(crate) fn to_value(&self, server: &MachineTag, model: &ModelUuid) -> Value {
        Value {
            model: *model,
            server: server.clone(),
            agent: self.agent().clone(),
            controller_agent: self.controller_agent(),
            connection_id: self.id,
            status: self.status(),
            user_data: self.user_data().to_owned(),
            last_seen: self.last_seen(),
        }
    }
}

/// A wall-clock time as nanoseconds from the Unix epoch: exact from 1677 to
/// 2262, and clamped to those years beyond them (docs/spec.md §1.1.2), in
/// half the room of a `SystemTime`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp(i64);

impl From<SystemTime> for Stamp {
    fn from(time: SystemTime) -> Self {
        Stamp(match time.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
        })
    }
}

impl Stamp {
    fn time(self) -> SystemTime {
        let from_epoch = Duration::from_nanos(self.0.unsigned_abs());
        let time = if self.0 >= 0 {
            SystemTime::UNIX_EPOCH.checked_add(from_epoch)
        } else {
            SystemTime::UNIX_EPOCH.checked_sub(from_epoch)
        };
        time.unwrap_or(SystemTime::UNIX_EPOCH)
    }
}

/// The status bits of the flags.
const STATUS: u8 = 0b011;
const ALIVE: u8 = 0b001;
const MISSING: u8 = 0b010;
/// The controller-agent bit.
const CONTROLLER: u8 = 0b100;

fn status_bits(status: Status) -> u8 {
    match status {
        Status::Unknown => 0,
        Status::Alive => ALIVE,
        Status::Missing => MISSING,
    }
}

fn flags(status: Status, controller_agent: bool) -> u8 {
    status_bits(status) | if controller_agent { CONTROLLER } else { 0 }
}

/// Bytes of user data kept inline: the rest of the 16 bytes hold the flags,
/// the length and the variant.
const INLINE_USER_DATA: usize = 13;

/// The string an agent gave at login, with the entry's flags beside it in
/// what would otherwise be padding. Agents send short strings (a version),
/// which are kept inline: nothing to allocate on connect, nothing to free on
/// disconnect; a longer one lives behind a one-word pointer.
#[derive(Clone, Debug)]
enum Tail {
    Inline {
        flags: u8,
        len: u8,
        bytes: [u8; INLINE_USER_DATA],
    },
    Heap {
        flags: u8,
        text: Box<Box<str>>,
    },
}

const _: () = assert!(std::mem::size_of::<Tail>() == 16);

impl Tail {
    fn new(text: &str, flags: u8) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= INLINE_USER_DATA => {
                let mut bytes = [0; INLINE_USER_DATA];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                Tail::Inline { flags, len, bytes }
            }
            _ => Tail::Heap {
                flags,
                text: Box::new(text.into()),
            },
        }
    }

    fn text(&self) -> &str {
        match self {
            // The bytes were copied whole from a `str`, so they are UTF-8.
            Tail::Inline { len, bytes, .. } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Tail::Heap { text, .. } => text,
        }
    }

    fn flags(&self) -> u8 {
        match self {
            Tail::Inline { flags, .. } | Tail::Heap { flags, .. } => *flags,
        }
    }

    fn flags_mut(&mut self) -> &mut u8 {
        match self {
            Tail::Inline { flags, .. } | Tail::Heap { flags, .. } => flags,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presence::agents::Agents;

    #[test]
    fn an_entry_gives_back_what_it_was_given() {
        let mut agents = Agents::default();
        let agent = agents.intern(&"unit-wordpress-0".parse().unwrap());
        let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        for (text, controller) in [
            ("", false),
            ("4.0.1", true),
            ("thirteen-byte", false),
            ("fourteen-bytes", true),
            ("é".repeat(300).as_str(), false),
        ] {
            let mut entry = Entry::new(u64::MAX, agent.clone(), controller, text, at);
            assert_eq!(entry.user_data(), text);
            assert_eq!(entry.controller_agent(), controller);
            assert_eq!(entry.status(), Status::Alive);
            assert_eq!(entry.set_status(Status::Missing), Status::Alive);
            assert_eq!(entry.status(), Status::Missing);
            assert_eq!(entry.controller_agent(), controller);
            assert_eq!(entry.user_data(), text);
            assert_eq!(entry.last_seen(), at);
            assert_eq!(entry.id, u64::MAX);
        }
    }

    #[test]
    fn times_are_exact_to_the_nanosecond_within_the_range_and_clamped_past_it() {
        let epoch = SystemTime::UNIX_EPOCH;
        for time in [
            epoch,
            epoch + Duration::from_nanos(1),
            epoch - Duration::from_nanos(1),
            epoch + Duration::new(9_000_000_000, 999_999_999),
            epoch - Duration::new(9_000_000_000, 1),
        ] {
            assert_eq!(Stamp::from(time).time(), time);
        }
        let far = Duration::from_secs(1 << 40);
        assert_eq!(
            Stamp::from(epoch + far).time(),
            epoch + Duration::from_nanos(i64::MAX as u64)
        );
        assert_eq!(
            Stamp::from(epoch - far).time(),
            epoch - Duration::from_nanos(i64::MIN.unsigned_abs())
        );
    }
}
