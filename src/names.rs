//! Typed identifiers of the entities muster tracks, parsed once at the boundary.
//!
//! Each tag keeps its canonical text in an `Arc<str>`, so a clone is one atomic
//! increment: the presence table holds millions of them. Ordering, equality and
//! hashing are those of the text, so sorted lists read alphabetically.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Text that is not a valid name of the kind that was asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a valid {kind}")]
pub struct NameError {
    /// The text as it was given.
    pub text: String,
    /// What was expected, e.g. `unit tag`.
    pub kind: &'static str,
}

impl NameError {
    fn new(text: &str, kind: &'static str) -> Self {
        NameError {
            text: text.to_owned(),
            kind,
        }
    }
}

/// A decimal number without leading zeros: `0`, `7`, `42`.
fn is_number(s: &str) -> bool {
    match s.as_bytes() {
        [] => false,
        [b'0'] => true,
        [b'0', ..] => false,
        bytes => bytes.iter().all(u8::is_ascii_digit),
    }
}

/// A container type in a machine id: a lowercase letter, then letters or digits.
fn is_container_type(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// An application name as Juju allows it: lowercase segments joined by single
/// hyphens, each segment holding at least one letter (so `wordpress-0` is a
/// unit, never an application), starting with a letter.
fn is_application_name(s: &str) -> bool {
    if !matches!(s.as_bytes().first(), Some(b'a'..=b'z')) {
        return false;
    }
    s.split('-').all(|segment| {
        !segment.is_empty()
            && segment
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            && segment.bytes().any(|b| b.is_ascii_lowercase())
    })
}

/// The machine id part of a machine tag, `3` or `3-lxd-1`: a number, then any
/// number of (container type, number) pairs.
fn is_machine_tag_id(s: &str) -> bool {
    let mut parts = s.split('-');
    if !parts.next().is_some_and(is_number) {
        return false;
    }
    loop {
        match (parts.next(), parts.next()) {
            (None, _) => return true,
            (Some(kind), Some(number)) if is_container_type(kind) && is_number(number) => {}
            _ => return false,
        }
    }
}

/// Serde and `FromStr`/`Display` plumbing shared by every string-backed tag.
macro_rules! string_tag {
    ($name:ident, $kind:literal, $valid:expr) => {
        impl $name {
            /// The canonical text of the tag.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = NameError;

            fn from_str(s: &str) -> Result<Self, NameError> {
                let valid: fn(&str) -> bool = $valid;
                if valid(s) {
                    Ok($name(Arc::from(s)))
                } else {
                    Err(NameError::new(s, $kind))
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

/// A machine's tag: `machine-0`, or `machine-3-lxd-1` for a container.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MachineTag(Arc<str>);

string_tag!(MachineTag, "machine tag", |s| s
    .strip_prefix("machine-")
    .is_some_and(is_machine_tag_id));

impl MachineTag {
    /// The machine id as Juju writes it: `0`, `3/lxd/1`.
    pub fn id(&self) -> String {
        self.0["machine-".len()..].replace('-', "/")
    }

    /// Whether this machine is a container inside another machine.
    pub fn is_container(&self) -> bool {
        self.0["machine-".len()..].contains('-')
    }
}

/// A unit's tag: `unit-wordpress-0`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnitTag(Arc<str>);

string_tag!(UnitTag, "unit tag", |s| s
    .strip_prefix("unit-")
    .and_then(|rest| rest.rsplit_once('-'))
    .is_some_and(
        |(app, number)| is_application_name(app) && is_number(number)
    ));

impl UnitTag {
    /// The unit name as Juju writes it: `wordpress/0`.
    pub fn id(&self) -> String {
        let (app, number) = self.split();
        format!("{app}/{number}")
    }

    /// The name of the application the unit belongs to: `wordpress`.
    pub fn application(&self) -> &str {
        self.split().0
    }

    fn split(&self) -> (&str, &str) {
        self.0["unit-".len()..]
            .rsplit_once('-')
            .expect("a parsed unit tag has an application and a number")
    }
}

/// An application's tag: `application-mysql`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApplicationTag(Arc<str>);

string_tag!(ApplicationTag, "application tag", |s| s
    .strip_prefix("application-")
    .is_some_and(is_application_name));

impl ApplicationTag {
    /// The application name: `mysql`.
    pub fn name(&self) -> &str {
        &self.0["application-".len()..]
    }
}

/// The tag of anything that runs an agent and connects to an API server.
///
/// The variants are declared in the alphabetical order of their prefixes, so
/// the derived ordering is the ordering of the text.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AgentTag {
    /// An application agent (`application-mysql`).
    Application(ApplicationTag),
    /// A machine agent (`machine-0`).
    Machine(MachineTag),
    /// A unit agent (`unit-wordpress-0`).
    Unit(UnitTag),
}

impl AgentTag {
    /// The canonical text of the tag.
    pub fn as_str(&self) -> &str {
        match self {
            AgentTag::Application(tag) => tag.as_str(),
            AgentTag::Machine(tag) => tag.as_str(),
            AgentTag::Unit(tag) => tag.as_str(),
        }
    }
}

impl FromStr for AgentTag {
    type Err = NameError;

    /// Text that looks like one kind of tag but breaks that kind's rules is
    /// reported as that kind: it says more about what was wrong.
    fn from_str(s: &str) -> Result<Self, NameError> {
        if s.starts_with("machine-") {
            s.parse().map(AgentTag::Machine)
        } else if s.starts_with("unit-") {
            s.parse().map(AgentTag::Unit)
        } else if s.starts_with("application-") {
            s.parse().map(AgentTag::Application)
        } else {
            Err(NameError::new(s, "agent tag"))
        }
    }
}

impl fmt::Display for AgentTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for AgentTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgentTag({:?})", self.as_str())
    }
}

impl Serialize for AgentTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for AgentTag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl From<MachineTag> for AgentTag {
    fn from(tag: MachineTag) -> Self {
        AgentTag::Machine(tag)
    }
}

impl From<UnitTag> for AgentTag {
    fn from(tag: UnitTag) -> Self {
        AgentTag::Unit(tag)
    }
}

impl From<ApplicationTag> for AgentTag {
    fn from(tag: ApplicationTag) -> Self {
        AgentTag::Application(tag)
    }
}

/// A model's UUID, e.g. `deadbeef-0bad-400d-8000-4b1d0d06f00d`.
///
/// Sixteen bytes held inline, so it is `Copy`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ModelUuid(uuid::Uuid);

impl ModelUuid {
    /// The model UUID with these bytes.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        ModelUuid(uuid::Uuid::from_bytes(bytes))
    }

    /// The model UUID for a number, for fixtures and generated load: the
    /// number's bytes in a version-4 layout, so distinct numbers give distinct
    /// UUIDs that print as ordinary UUIDs.
    pub fn from_u128(n: u128) -> Self {
        ModelUuid(uuid::Builder::from_random_bytes(n.to_be_bytes()).into_uuid())
    }

    /// The UUID.
    pub fn as_uuid(&self) -> &uuid::Uuid {
        &self.0
    }
}

impl FromStr for ModelUuid {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, NameError> {
        // Only the hyphenated form is a model UUID on the wire; uuid's parser
        // also takes braces, URNs and bare hex, which would not round-trip.
        if s.len() != 36 {
            return Err(NameError::new(s, "model UUID"));
        }
        uuid::Uuid::try_parse(s)
            .map(ModelUuid)
            .map_err(|_| NameError::new(s, "model UUID"))
    }
}

impl fmt::Display for ModelUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.hyphenated(), f)
    }
}

impl fmt::Debug for ModelUuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelUuid({})", self.0.hyphenated())
    }
}

impl Serialize for ModelUuid {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0.hyphenated())
    }
}

impl<'de> Deserialize<'de> for ModelUuid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests;
