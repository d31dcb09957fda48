//! The cloud provider as the instance poller sees it: instances, their
//! statuses and addresses, and their network interfaces; and
//! [`conformance`], the suite that holds any provider to that contract.

pub mod conformance;

use std::fmt;
use std::sync::Arc;

use futures::future::BoxFuture;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::PollError;

/// A cloud instance's id as the provider names it, e.g. `i-0a1b2c3d`.
///
/// Providers choose their own format, so any text is taken as it is; the
/// text lives in an `Arc<str>` so batching many ids copies no strings.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceId(Arc<str>);

impl InstanceId {
    /// The id with this text.
    pub fn new(id: impl Into<Arc<str>>) -> Self {
        InstanceId(id.into())
    }

    /// The text of the id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for InstanceId {
    fn from(id: &str) -> Self {
        InstanceId::new(id)
    }
}

impl From<String> for InstanceId {
    fn from(id: String) -> Self {
        InstanceId::new(id)
    }
}

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "InstanceId({:?})", &*self.0)
    }
}

impl Serialize for InstanceId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for InstanceId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(InstanceId::from)
    }
}

/// Display, FromStr and serde for a status enum, by its Juju name.
macro_rules! named_enum {
    ($name:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name Juju gives this value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::error::UnknownValue;

            fn from_str(s: &str) -> Result<Self, $crate::error::UnknownValue> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err($crate::error::UnknownValue { text: s.to_owned(), kind: $kind }),
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(deserializer)?;
                text.parse().map_err(<D::Error as ::serde::de::Error>::custom)
            }
        }
    };
}
pub(crate) use named_enum;

/// A cloud instance's status, as the provider reports it and as the model
/// records it for the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum InstanceStatus {
    /// Requested, not yet being built.
    Pending,
    /// Being built by the provider.
    Allocating,
    /// Up.
    Running,
    /// The provider failed to build it.
    ProvisioningError,
    /// Stopped.
    Stopped,
    /// The provider cannot tell.
    Unknown,
}

named_enum!(InstanceStatus, "instance status", {
    Pending => "pending",
    Allocating => "allocating",
    Running => "running",
    ProvisioningError => "provisioning error",
    Stopped => "stopped",
    Unknown => "unknown",
});

/// An instance status with the provider's message, as it is compared and
/// stored: a change to either is a change.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct InstanceStatusInfo {
    /// The status.
    pub status: InstanceStatus,
    /// The provider's message, often empty.
    pub message: String,
}

impl InstanceStatusInfo {
    /// The status with this message.
    pub fn new(status: InstanceStatus, message: impl Into<String>) -> Self {
        InstanceStatusInfo {
            status,
            message: message.into(),
        }
    }
}

/// How far an address can be reached from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressScope {
    /// From anywhere.
    Public,
    /// From inside the cloud.
    CloudLocal,
    /// From the machine itself.
    MachineLocal,
    /// From the link.
    LinkLocal,
    /// Not known.
    Unknown,
}

named_enum!(AddressScope, "address scope", {
    Public => "public",
    CloudLocal => "local-cloud",
    MachineLocal => "local-machine",
    LinkLocal => "link-local",
    Unknown => "unknown",
});

/// An address the provider gives an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Address {
    /// The address, e.g. `10.0.0.4`.
    pub value: String,
    /// Where it can be reached from.
    pub scope: AddressScope,
}

impl Address {
    /// The address `value` with `scope`.
    pub fn new(value: impl Into<String>, scope: AddressScope) -> Self {
        Address {
            value: value.into(),
            scope,
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.value, self.scope)
    }
}

/// A network interface of an instance, as the provider describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkInterface {
    /// The interface's position on the instance, from 0.
    pub device_index: u32,
    /// The name the provider gives it, e.g. `eth0`; empty when unknown.
    pub interface_name: String,
    /// Its hardware address; empty when unknown.
    pub mac_address: String,
    /// The provider's id for it; empty when unknown.
    pub provider_id: String,
    /// The provider's id for the subnet it is on; empty when unknown.
    #[serde(default)]
    pub subnet_id: String,
    /// The addresses on it.
    pub addresses: Vec<Address>,
}

/// The interfaces of a provider without networking support, made from an
/// instance's plain address list: one interface per address, indexed in
/// order.
pub fn interfaces_from_addresses(addresses: &[Address]) -> Vec<NetworkInterface> {
    addresses
        .iter()
        .zip(0u32..)
        .map(|(address, index)| NetworkInterface {
            device_index: index,
            addresses: vec![address.clone()],
            ..NetworkInterface::default()
        })
        .collect()
}

/// The addresses on a list of interfaces, in order, each once.
pub fn addresses_of(interfaces: &[NetworkInterface]) -> Vec<Address> {
    let mut addresses: Vec<Address> = Vec::new();
    for address in interfaces.iter().flat_map(|i| &i.addresses) {
        if !addresses.contains(address) {
            addresses.push(address.clone());
        }
    }
    addresses
}

/// A cloud instance as the provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Its id.
    pub id: InstanceId,
    /// Its status and the provider's message.
    pub status: InstanceStatusInfo,
    /// Its plain address list, used when the provider has no network
    /// interface support.
    pub addresses: Vec<Address>,
}

/// Says whether a provider's answer to [`Environ::instances`] is complete:
/// `Ok` when every id was known, [`PollError::PartialInstances`] when some
/// were not, [`PollError::NoInstances`] when none were (of at least one).
pub fn check_instances(found: &[Option<Instance>]) -> Result<(), PollError> {
    let missing = found.iter().filter(|i| i.is_none()).count();
    match missing {
        0 => Ok(()),
        n if n == found.len() => Err(PollError::NoInstances),
        n => Err(PollError::PartialInstances {
            missing: n,
            asked: found.len(),
        }),
    }
}

/// The most ids one provider call asks for: a gateway batching many
/// machines' polls splits larger batches, as cloud APIs cap their page sizes.
pub const MAX_IDS_PER_CALL: usize = 100;

/// The cloud provider ("environ" in Juju).
///
/// Both calls take many ids at once, so that one provider call serves many
/// machines, and answer in the order of the ids. Their futures own what they
/// need, so that an actor can spawn them.
pub trait Environ: Send + Sync {
    /// The instances with these ids: one entry per id, in the same order,
    /// `None` for an id the provider does not know. A provider that knows
    /// none of them may instead fail with [`PollError::NoInstances`].
    fn instances(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Option<Instance>>, PollError>>;

    /// The network interfaces of these instances: one list per id, in the
    /// same order, empty for an id the provider does not know. A provider
    /// without networking support fails with [`PollError::NotSupported`];
    /// the caller then falls back to [`Instance::addresses`] through
    /// [`interfaces_from_addresses`].
    fn network_interfaces(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Vec<NetworkInterface>>, PollError>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_statuses_use_the_juju_names() {
        let names: Vec<_> = InstanceStatus::ALL.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            names,
            [
                "pending",
                "allocating",
                "running",
                "provisioning error",
                "stopped",
                "unknown"
            ]
        );
        for status in InstanceStatus::ALL {
            assert_eq!(status.as_str().parse::<InstanceStatus>(), Ok(*status));
            let json = serde_json::to_string(status).unwrap();
            assert_eq!(
                serde_json::from_str::<InstanceStatus>(&json).unwrap(),
                *status
            );
        }
        let err = "Running".parse::<InstanceStatus>().unwrap_err();
        assert_eq!(
            err.to_string(),
            r#""Running" is not a valid instance status"#
        );
        assert!(serde_json::from_str::<InstanceStatus>(r#""booting""#).is_err());
    }

    #[test]
    fn fallback_gives_one_interface_per_address() {
        let addresses = vec![
            Address::new("10.0.0.4", AddressScope::CloudLocal),
            Address::new("198.18.0.4", AddressScope::Public),
        ];
        let interfaces = interfaces_from_addresses(&addresses);
        assert_eq!(interfaces.len(), 2);
        assert_eq!(interfaces[1].device_index, 1);
        assert_eq!(interfaces[1].addresses, [addresses[1].clone()]);
        assert_eq!(addresses_of(&interfaces), addresses);
        assert!(interfaces_from_addresses(&[]).is_empty());
    }

    #[test]
    fn addresses_of_keeps_order_and_drops_repeats() {
        let a = Address::new("10.0.0.4", AddressScope::CloudLocal);
        let b = Address::new("10.0.1.4", AddressScope::CloudLocal);
        let interfaces = vec![
            NetworkInterface {
                addresses: vec![b.clone(), a.clone()],
                ..Default::default()
            },
            NetworkInterface {
                addresses: vec![a.clone()],
                ..Default::default()
            },
        ];
        assert_eq!(addresses_of(&interfaces), [b, a]);
    }

    #[test]
    fn completeness_of_an_answer() {
        let instance = Instance {
            id: "i-1".into(),
            status: InstanceStatusInfo::new(InstanceStatus::Running, ""),
            addresses: vec![],
        };
        assert!(check_instances(&[Some(instance.clone())]).is_ok());
        assert!(check_instances(&[]).is_ok());
        assert!(matches!(
            check_instances(&[None, None]),
            Err(PollError::NoInstances)
        ));
        assert!(matches!(
            check_instances(&[None, Some(instance)]),
            Err(PollError::PartialInstances {
                missing: 1,
                asked: 2
            })
        ));
    }
}
