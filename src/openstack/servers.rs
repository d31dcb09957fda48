//! What Nova says of a server, and how it becomes muster's instance and,
//! without Neutron, its interfaces.

use std::fmt;
use std::net::IpAddr;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use crate::provider::{
    Address, AddressScope, Instance, InstanceId, InstanceStatus, InstanceStatusInfo,
    NetworkInterface,
};

/// A page of `GET /servers/detail`.
#[derive(Debug, Deserialize)]
pub struct ServerPage {
    /// The servers of the page.
    pub servers: Vec<Server>,
    /// Its links; one `rel: next` when there are more servers.
    #[serde(default)]
    pub servers_links: Vec<Link>,
}

impl ServerPage {
    /// The marker of the next page: the last server's id, when Nova says
    /// there is a next page.
    pub fn next_marker(&self) -> Option<&str> {
        let more = self.servers_links.iter().any(|l| l.rel == "next");
        more.then(|| self.servers.last().map(|s| s.id.as_str()))
            .flatten()
    }
}

/// One server, `GET /servers/{id}`.
#[derive(Debug, Deserialize)]
pub struct OneServer {
    /// The server.
    pub server: Server,
}

/// A link of a listing.
#[derive(Debug, Deserialize)]
pub struct Link {
    /// `next`, `self`, ...
    #[serde(default)]
    pub rel: String,
}

/// A server as Nova describes it; the fields muster reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Server {
    /// Its id.
    pub id: String,
    /// Its status: `BUILD`, `ACTIVE`, `ERROR`, ...
    #[serde(default)]
    pub status: String,
    /// Why it is in `ERROR`, when Nova says.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Its addresses, by network name, in Nova's order.
    #[serde(default)]
    pub addresses: Networks,
}

/// A server's fault.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Fault {
    /// Nova's message, e.g. `No valid host was found.`
    #[serde(default)]
    pub message: String,
}

/// One address of a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct NovaAddress {
    /// The address.
    pub addr: String,
    /// 4 or 6.
    #[serde(default)]
    pub version: Option<u8>,
    /// `fixed` or `floating`.
    #[serde(default, rename = "OS-EXT-IPS:type")]
    pub kind: Option<String>,
    /// The MAC address of the port it is on.
    #[serde(default, rename = "OS-EXT-IPS-MAC:mac_addr")]
    pub mac: Option<String>,
}

/// A server's addresses by network name, in the order Nova wrote them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Networks(pub Vec<(String, Vec<NovaAddress>)>);

impl<'de> Deserialize<'de> for Networks {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;

        impl<'de> Visitor<'de> for InOrder {
            type Value = Networks;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of network names to address lists")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Networks, A::Error> {
                let mut networks = Vec::new();
                while let Some((name, addresses)) = map.next_entry::<String, Vec<NovaAddress>>()? {
                    networks.push((name, addresses));
                }
                Ok(Networks(networks))
            }

            fn visit_unit<E>(self) -> Result<Networks, E> {
                Ok(Networks::default())
            }
        }

        deserializer.deserialize_any(InOrder)
    }
}

/// The status muster records for a Nova status, with its message:
///
/// - `BUILD` is allocating; `ACTIVE` running; `SHUTOFF` stopped, and
///   `SUSPENDED` and `PAUSED` stopped with the status as the message;
/// - `ERROR` is a provisioning error with the server's `fault.message`
///   (the status itself when Nova gives no fault);
/// - any other status (`REBOOT`, `RESIZE`, `MIGRATING`, `SHELVED`, ...) is
///   unknown, with the status as the message.
///
/// `DELETED` and `SOFT_DELETED` never get here: the server is not found.
pub fn status(server: &Server) -> InstanceStatusInfo {
    let nova = server.status.as_str();
    let (status, message) = match nova {
        "BUILD" => (InstanceStatus::Allocating, String::new()),
        "ACTIVE" => (InstanceStatus::Running, String::new()),
        "SHUTOFF" => (InstanceStatus::Stopped, String::new()),
        "SUSPENDED" | "PAUSED" => (InstanceStatus::Stopped, nova.to_owned()),
        "ERROR" => {
            let fault = server
                .fault
                .as_ref()
                .map(|f| f.message.trim())
                .filter(|m| !m.is_empty());
            (
                InstanceStatus::ProvisioningError,
                fault.unwrap_or(nova).to_owned(),
            )
        }
        _ => (InstanceStatus::Unknown, nova.to_owned()),
    };
    InstanceStatusInfo::new(status, message)
}

/// Whether Nova holds the server as gone: it is then not found.
pub fn is_gone(server: &Server) -> bool {
    matches!(server.status.as_str(), "DELETED" | "SOFT_DELETED")
}

/// The instance muster sees, or `None` for a deleted server.
pub fn instance(server: &Server) -> Option<Instance> {
    if is_gone(server) {
        return None;
    }
    Some(Instance {
        id: InstanceId::new(server.id.as_str()),
        status: status(server),
        addresses: crate::provider::addresses_of(&interfaces(server)),
    })
}

/// The scope of an address of Nova's: `fixed` is cloud-local, `floating`
/// public; without a type (older Novas, some doubles), as the address is:
/// private and unique-local ranges cloud-local, loopback machine-local,
/// link-local link-local, the rest public.
pub fn scope(address: &NovaAddress) -> AddressScope {
    match address.kind.as_deref() {
        Some("fixed") => AddressScope::CloudLocal,
        Some("floating") => AddressScope::Public,
        _ => scope_of_ip(&address.addr),
    }
}

/// The scope of a bare IP address.
pub fn scope_of_ip(text: &str) -> AddressScope {
    match text.parse::<IpAddr>() {
        Ok(IpAddr::V4(ip)) if ip.is_loopback() => AddressScope::MachineLocal,
        Ok(IpAddr::V4(ip)) if ip.is_link_local() => AddressScope::LinkLocal,
        Ok(IpAddr::V4(ip))
            if ip.is_private() || ip.octets()[0] == 100 && ip.octets()[1] & 0xc0 == 64 =>
        {
            AddressScope::CloudLocal
        }
        Ok(IpAddr::V6(ip)) if ip.is_loopback() => AddressScope::MachineLocal,
        Ok(IpAddr::V6(ip)) if ip.is_unicast_link_local() => AddressScope::LinkLocal,
        Ok(IpAddr::V6(ip)) if ip.is_unique_local() => AddressScope::CloudLocal,
        Ok(_) => AddressScope::Public,
        Err(_) => AddressScope::Unknown,
    }
}

/// The server's interfaces as its addresses tell them: one per MAC address
/// (`OS-EXT-IPS-MAC:mac_addr`), or per network for addresses without one,
/// in Nova's order; on each, the fixed addresses (IPv4 first) before the
/// floating ones. The first fixed IPv4 address is the primary, and comes
/// first of all.
pub fn interfaces(server: &Server) -> Vec<NetworkInterface> {
    let mut groups: Vec<(String, Vec<&NovaAddress>)> = Vec::new();
    for (network, addresses) in &server.addresses.0 {
        for address in addresses.iter().filter(|a| !a.addr.trim().is_empty()) {
            let key = match address.mac.as_deref().filter(|m| !m.is_empty()) {
                Some(mac) => format!("mac {}", mac.to_ascii_lowercase()),
                None => format!("network {network}"),
            };
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, group)) => group.push(address),
                None => groups.push((key, vec![address])),
            }
        }
    }
    let mut interfaces: Vec<NetworkInterface> = groups
        .into_iter()
        .map(|(_, mut group)| {
            // Stable: Nova's order within fixed v4, fixed v6, floating, ...
            group.sort_by_key(|a| (scope(a) == AddressScope::Public, is_v6(a)));
            let mac = group
                .iter()
                .find_map(|a| a.mac.as_deref())
                .map(str::to_ascii_lowercase)
                .unwrap_or_default();
            let mut addresses: Vec<Address> = Vec::new();
            for address in group {
                let address = Address::new(address.addr.trim(), scope(address));
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
            NetworkInterface {
                device_index: 0,
                interface_name: String::new(),
                mac_address: mac,
                provider_id: String::new(),
                subnet_id: String::new(),
                addresses,
            }
        })
        .collect();
    // The interface holding the primary address first, the rest in order.
    if let Some(primary) = interfaces.iter().position(|i| {
        i.addresses
            .first()
            .is_some_and(|a| a.scope != AddressScope::Public && !a.value.contains(':'))
    }) {
        let first = interfaces.remove(primary);
        interfaces.insert(0, first);
    }
    for (interface, index) in interfaces.iter_mut().zip(0u32..) {
        interface.device_index = index;
    }
    interfaces
}

fn is_v6(address: &NovaAddress) -> bool {
    address.version == Some(6) || address.addr.contains(':')
}

#[cfg(test)]
mod tests;
