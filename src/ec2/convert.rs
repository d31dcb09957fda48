//! What EC2 says, in plain terms, and how it becomes muster's instances and
//! network interfaces. The SDK's types are copied into the plain ones here
//! at the edge (see `api`), so the mapping is tested without the SDK.

use std::collections::HashMap;
use std::net::Ipv6Addr;

use crate::provider::{
    Address, AddressScope, Instance, InstanceId, InstanceStatus, InstanceStatusInfo,
    NetworkInterface,
};

/// An instance as `DescribeInstances` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ec2Instance {
    /// Its id.
    pub id: String,
    /// Its state name: `pending`, `running`, `stopping`, `stopped`,
    /// `shutting-down`, `terminated`, or one EC2 adds later.
    pub state: String,
    /// The message of its state reason, when EC2 gives one.
    pub state_reason: Option<String>,
    /// Its primary private IPv4 address.
    pub private_ip: Option<String>,
    /// Its public IPv4 address.
    pub public_ip: Option<String>,
    /// Its primary IPv6 address.
    pub ipv6: Option<String>,
}

/// A private IPv4 address of an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ec2PrivateIp {
    /// The address.
    pub address: String,
    /// Whether it is the interface's primary address.
    pub primary: bool,
    /// The public IPv4 address associated with it.
    pub public_ip: Option<String>,
}

/// A network interface as `DescribeNetworkInterfaces` gives it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ec2Interface {
    /// The instance it is attached to.
    pub instance_id: Option<String>,
    /// Its device index on that instance.
    pub device_index: Option<i32>,
    /// Its id, e.g. `eni-0a1b`.
    pub id: Option<String>,
    /// Its MAC address.
    pub mac_address: Option<String>,
    /// Its subnet's id.
    pub subnet_id: Option<String>,
    /// Its private IPv4 addresses, in EC2's order.
    pub private_ips: Vec<Ec2PrivateIp>,
    /// The public IPv4 address of its primary private address, when EC2 gives
    /// it only at the interface level.
    pub public_ip: Option<String>,
    /// Its IPv6 addresses.
    pub ipv6: Vec<String>,
}

/// The status muster records for an EC2 state, with its message.
///
/// - `pending` is [`InstanceStatus::Allocating`]: EC2 has accepted the
///   instance and is building it (muster's `pending` is a request the
///   provider has not taken up yet). Both make the poller poll soon again.
/// - `running` is running; `stopping` and `stopped` are stopped.
/// - `shutting-down`, `terminated` and any state EC2 adds later are unknown.
///
/// The message is EC2's state reason where it gives one; otherwise the EC2
/// state's name where muster's status has another name (`pending`,
/// `stopping`, `shutting-down`, ...); otherwise empty, so that a steady
/// instance keeps one message and the model is not rewritten.
pub fn status(state: &str, reason: Option<&str>) -> InstanceStatusInfo {
    let status = match state {
        "pending" => InstanceStatus::Allocating,
        "running" => InstanceStatus::Running,
        "stopping" | "stopped" => InstanceStatus::Stopped,
        _ => InstanceStatus::Unknown,
    };
    let message = match reason.map(str::trim).filter(|r| !r.is_empty()) {
        Some(reason) => reason.to_owned(),
        None if state != status.as_str() => state.to_owned(),
        None => String::new(),
    };
    InstanceStatusInfo::new(status, message)
}

/// The instance muster sees, or `None` for a terminated one: EC2 lists a
/// terminated instance for a while after it is gone, but it will never come
/// back, so it counts as not found (a partial answer), as Juju's EC2 provider
/// does.
pub fn instance(raw: &Ec2Instance) -> Option<Instance> {
    if raw.state == "terminated" {
        return None;
    }
    let addresses = [
        (&raw.private_ip, AddressScope::CloudLocal),
        (&raw.public_ip, AddressScope::Public),
    ]
    .into_iter()
    .filter_map(|(address, scope)| nonempty(address).map(|a| Address::new(a, scope)))
    .chain(nonempty(&raw.ipv6).map(|a| Address::new(a, ipv6_scope(a))))
    .collect();
    Some(Instance {
        id: InstanceId::new(raw.id.as_str()),
        status: status(&raw.state, raw.state_reason.as_deref()),
        addresses,
    })
}

/// One interface: its private IPv4 addresses with the primary first, then
/// their public IPv4 addresses in the same order, then its IPv6 addresses.
pub fn interface(raw: &Ec2Interface) -> NetworkInterface {
    let mut private: Vec<&Ec2PrivateIp> = raw
        .private_ips
        .iter()
        .filter(|ip| !ip.address.is_empty())
        .collect();
    // Stable, so the secondary addresses keep EC2's order.
    private.sort_by_key(|ip| !ip.primary);
    let mut addresses: Vec<Address> = private
        .iter()
        .map(|ip| Address::new(ip.address.as_str(), AddressScope::CloudLocal))
        .collect();
    let mut public: Vec<&str> = private
        .iter()
        .filter_map(|ip| nonempty(&ip.public_ip))
        .collect();
    if public.is_empty()
        && let Some(ip) = nonempty(&raw.public_ip)
    {
        public.push(ip);
    }
    addresses.extend(
        public
            .into_iter()
            .map(|ip| Address::new(ip, AddressScope::Public)),
    );
    addresses.extend(
        raw.ipv6
            .iter()
            .filter(|ip| !ip.is_empty())
            .map(|ip| Address::new(ip.as_str(), ipv6_scope(ip))),
    );
    let mut unique: Vec<Address> = Vec::with_capacity(addresses.len());
    for address in addresses {
        if !unique.contains(&address) {
            unique.push(address);
        }
    }
    NetworkInterface {
        device_index: raw
            .device_index
            .and_then(|i| u32::try_from(i).ok())
            .unwrap_or(u32::MAX),
        interface_name: String::new(),
        mac_address: raw.mac_address.clone().unwrap_or_default(),
        provider_id: raw.id.clone().unwrap_or_default(),
        subnet_id: raw.subnet_id.clone().unwrap_or_default(),
        addresses: unique,
    }
}

/// The interfaces of each id, in the order of `ids`, each list ordered by
/// device index (an interface without one last); an id with no interface
/// gets an empty list.
pub fn interfaces_by_instance(
    ids: &[InstanceId],
    raw: &[Ec2Interface],
) -> Vec<Vec<NetworkInterface>> {
    let mut by_id: HashMap<&str, Vec<NetworkInterface>> = HashMap::new();
    for raw in raw {
        if let Some(instance) = raw.instance_id.as_deref() {
            by_id.entry(instance).or_default().push(interface(raw));
        }
    }
    for list in by_id.values_mut() {
        list.sort_by_key(|i| i.device_index);
    }
    ids.iter()
        .map(|id| by_id.get(id.as_str()).cloned().unwrap_or_default())
        .collect()
}

fn nonempty(text: &Option<String>) -> Option<&str> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty())
}

/// How far an EC2 IPv6 address reaches: EC2 hands out global unicast
/// addresses, reachable from anywhere the security groups allow.
fn ipv6_scope(address: &str) -> AddressScope {
    match address.parse::<Ipv6Addr>() {
        Ok(ip) if ip.is_loopback() => AddressScope::MachineLocal,
        Ok(ip) if ip.is_unicast_link_local() => AddressScope::LinkLocal,
        Ok(ip) if ip.is_unique_local() => AddressScope::CloudLocal,
        Ok(_) => AddressScope::Public,
        Err(_) => AddressScope::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(status: InstanceStatus, message: &str) -> InstanceStatusInfo {
        InstanceStatusInfo::new(status, message)
    }

    #[test]
    fn ec2_states_map_to_statuses() {
        use InstanceStatus::*;
        let cases = [
            ("pending", None, info(Allocating, "pending")),
            ("running", None, info(Running, "")),
            ("running", Some(""), info(Running, "")),
            ("stopping", None, info(Stopped, "stopping")),
            ("stopped", None, info(Stopped, "")),
            (
                "stopped",
                Some("Client.UserInitiatedShutdown: User initiated shutdown"),
                info(
                    Stopped,
                    "Client.UserInitiatedShutdown: User initiated shutdown",
                ),
            ),
            ("shutting-down", None, info(Unknown, "shutting-down")),
            (
                "shutting-down",
                Some("Server.SpotInstanceTermination: Spot instance termination"),
                info(
                    Unknown,
                    "Server.SpotInstanceTermination: Spot instance termination",
                ),
            ),
            ("terminated", None, info(Unknown, "terminated")),
            ("rebooting", None, info(Unknown, "rebooting")),
            ("", None, info(Unknown, "")),
        ];
        for (state, reason, expected) in cases {
            assert_eq!(status(state, reason), expected, "{state} {reason:?}");
        }
    }

    #[test]
    fn a_terminated_instance_is_not_found() {
        let raw = |state: &str| Ec2Instance {
            id: "i-1".into(),
            state: state.into(),
            private_ip: Some("10.0.0.4".into()),
            public_ip: Some("198.51.100.4".into()),
            ipv6: Some("2600:1f18::4".into()),
            ..Ec2Instance::default()
        };
        assert_eq!(instance(&raw("terminated")), None);
        let running = instance(&raw("running")).unwrap();
        assert_eq!(running.id.as_str(), "i-1");
        assert_eq!(running.status, info(InstanceStatus::Running, ""));
        assert_eq!(
            running.addresses,
            [
                Address::new("10.0.0.4", AddressScope::CloudLocal),
                Address::new("198.51.100.4", AddressScope::Public),
                Address::new("2600:1f18::4", AddressScope::Public),
            ]
        );
        let bare = instance(&Ec2Instance {
            id: "i-2".into(),
            state: "pending".into(),
            public_ip: Some(" ".into()),
            ..Ec2Instance::default()
        })
        .unwrap();
        assert!(bare.addresses.is_empty());
    }

    fn private(address: &str, primary: bool, public_ip: Option<&str>) -> Ec2PrivateIp {
        Ec2PrivateIp {
            address: address.into(),
            primary,
            public_ip: public_ip.map(Into::into),
        }
    }

    #[test]
    fn an_interface_lists_the_primary_address_first() {
        let raw = Ec2Interface {
            instance_id: Some("i-1".into()),
            device_index: Some(0),
            id: Some("eni-1".into()),
            mac_address: Some("0e:00:00:00:00:01".into()),
            subnet_id: Some("subnet-1".into()),
            private_ips: vec![
                private("10.0.0.9", false, None),
                private("10.0.0.4", true, Some("198.51.100.4")),
                private("10.0.0.7", false, Some("198.51.100.7")),
                private("", false, None),
            ],
            public_ip: Some("198.51.100.4".into()),
            ipv6: vec!["2600:1f18::4".into(), "fd00::4".into(), "fe80::4".into()],
        };
        let interface = interface(&raw);
        assert_eq!(interface.device_index, 0);
        assert_eq!(interface.provider_id, "eni-1");
        assert_eq!(interface.mac_address, "0e:00:00:00:00:01");
        assert_eq!(interface.subnet_id, "subnet-1");
        let scope = |a: &Address| (a.value.clone(), a.scope);
        let addresses: Vec<_> = interface.addresses.iter().map(scope).collect();
        let expected = [
            ("10.0.0.4", AddressScope::CloudLocal),
            ("10.0.0.9", AddressScope::CloudLocal),
            ("10.0.0.7", AddressScope::CloudLocal),
            ("198.51.100.4", AddressScope::Public),
            ("198.51.100.7", AddressScope::Public),
            ("2600:1f18::4", AddressScope::Public),
            ("fd00::4", AddressScope::CloudLocal),
            ("fe80::4", AddressScope::LinkLocal),
        ]
        .map(|(a, s)| (a.to_owned(), s));
        assert_eq!(addresses, expected);
    }

    #[test]
    fn the_interface_level_public_address_is_used_when_no_private_one_has_it() {
        let raw = Ec2Interface {
            private_ips: vec![private("10.0.0.4", true, None)],
            public_ip: Some("198.51.100.4".into()),
            ..Ec2Interface::default()
        };
        let values: Vec<String> = interface(&raw)
            .addresses
            .into_iter()
            .map(|a| a.value)
            .collect();
        assert_eq!(values, ["10.0.0.4", "198.51.100.4"]);
        let empty = interface(&Ec2Interface::default());
        assert!(empty.addresses.is_empty());
        assert_eq!(empty.device_index, u32::MAX);
        assert_eq!(empty.subnet_id, "");
    }

    #[test]
    fn interfaces_are_grouped_by_instance_and_ordered_by_device_index() {
        let raw = |instance: Option<&str>, index: Option<i32>, id: &str| Ec2Interface {
            instance_id: instance.map(Into::into),
            device_index: index,
            id: Some(id.into()),
            ..Ec2Interface::default()
        };
        let interfaces = [
            raw(Some("i-1"), Some(2), "eni-c"),
            raw(Some("i-2"), Some(0), "eni-x"),
            raw(Some("i-1"), None, "eni-z"),
            raw(Some("i-1"), Some(0), "eni-a"),
            raw(Some("i-1"), Some(-1), "eni-y"),
            raw(Some("i-1"), Some(1), "eni-b"),
            raw(None, Some(0), "eni-detached"),
            raw(Some("i-other"), Some(0), "eni-o"),
        ];
        let ids: Vec<InstanceId> = ["i-1", "i-3", "i-2", "i-1"].map(InstanceId::from).to_vec();
        let lists = interfaces_by_instance(&ids, &interfaces);
        let names: Vec<Vec<&str>> = lists
            .iter()
            .map(|l| l.iter().map(|i| i.provider_id.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [
                vec!["eni-a", "eni-b", "eni-c", "eni-z", "eni-y"],
                vec![],
                vec!["eni-x"],
                vec!["eni-a", "eni-b", "eni-c", "eni-z", "eni-y"],
            ]
        );
    }
}
