//! What Neutron says of a server's ports and their floating IPs, and how
//! they become muster's interfaces.

use std::collections::HashMap;

use serde::Deserialize;

use super::servers::scope_of_ip;
use crate::provider::{Address, AddressScope, InstanceId, NetworkInterface};

/// A page of `GET /v2.0/ports`.
#[derive(Debug, Deserialize)]
pub struct PortPage {
    /// The ports.
    pub ports: Vec<Port>,
    /// Its links; one `rel: next` when there are more.
    #[serde(default)]
    pub ports_links: Vec<super::servers::Link>,
}

/// A page of `GET /v2.0/floatingips`.
#[derive(Debug, Deserialize)]
pub struct FloatingIpPage {
    /// The floating IPs.
    pub floatingips: Vec<FloatingIp>,
    /// Its links; one `rel: next` when there are more.
    #[serde(default)]
    pub floatingips_links: Vec<super::servers::Link>,
}

/// A port; the fields muster reads.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Port {
    /// Its id.
    pub id: String,
    /// Its name, often empty.
    #[serde(default)]
    pub name: String,
    /// The server it is attached to.
    #[serde(default)]
    pub device_id: String,
    /// Its MAC address.
    #[serde(default)]
    pub mac_address: String,
    /// Its fixed addresses, each on a subnet.
    #[serde(default)]
    pub fixed_ips: Vec<FixedIp>,
    /// When it was made (RFC 3339), which orders a server's ports.
    #[serde(default)]
    pub created_at: Option<String>,
}

/// A fixed address of a port.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FixedIp {
    /// The subnet's id.
    #[serde(default)]
    pub subnet_id: String,
    /// The address.
    #[serde(default)]
    pub ip_address: String,
}

/// A floating IP.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct FloatingIp {
    /// Its id.
    #[serde(default)]
    pub id: String,
    /// The public address.
    #[serde(default)]
    pub floating_ip_address: String,
    /// The port it is associated with.
    #[serde(default)]
    pub port_id: Option<String>,
}

/// The marker of the next page of a Neutron listing: the last item's id,
/// when the links say there is a next page.
pub fn next_marker<'a>(
    links: &[super::servers::Link],
    last_id: Option<&'a str>,
) -> Option<&'a str> {
    links
        .iter()
        .any(|l| l.rel == "next")
        .then_some(last_id)
        .flatten()
}

/// Each id's interfaces, in the order of `ids`: one per port attached to
/// the server, in device order (the order the ports were made, by
/// `created_at`, then by id), each with its MAC, its first subnet, its
/// fixed addresses (cloud-local; the first is the primary) and then the
/// floating IPs associated with it (public). An id with no port gets an
/// empty list.
pub fn interfaces_by_server(
    ids: &[InstanceId],
    ports: &[Port],
    floating: &[FloatingIp],
) -> Vec<Vec<NetworkInterface>> {
    let mut public: HashMap<&str, Vec<&str>> = HashMap::new();
    for ip in floating {
        if let Some(port) = ip.port_id.as_deref()
            && !ip.floating_ip_address.trim().is_empty()
        {
            public
                .entry(port)
                .or_default()
                .push(ip.floating_ip_address.trim());
        }
    }
    let mut by_server: HashMap<&str, Vec<&Port>> = HashMap::new();
    for port in ports {
        by_server
            .entry(port.device_id.as_str())
            .or_default()
            .push(port);
    }
    for list in by_server.values_mut() {
        list.sort_by(|a, b| {
            let made = |p: &Port| {
                p.created_at
                    .as_deref()
                    .and_then(super::identity::parse_time)
            };
            made(a).cmp(&made(b)).then_with(|| a.id.cmp(&b.id))
        });
    }
    ids.iter()
        .map(|id| {
            by_server
                .get(id.as_str())
                .map(|ports| {
                    ports
                        .iter()
                        .zip(0u32..)
                        .map(|(port, index)| interface(port, index, &public))
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect()
}

fn interface(port: &Port, index: u32, public: &HashMap<&str, Vec<&str>>) -> NetworkInterface {
    let mut addresses: Vec<Address> = Vec::new();
    let fixed = port
        .fixed_ips
        .iter()
        .filter(|ip| !ip.ip_address.trim().is_empty())
        .map(|ip| Address::new(ip.ip_address.trim(), fixed_scope(&ip.ip_address)));
    let floating = public
        .get(port.id.as_str())
        .into_iter()
        .flatten()
        .map(|ip| Address::new(*ip, AddressScope::Public));
    for address in fixed.chain(floating) {
        if !addresses.contains(&address) {
            addresses.push(address);
        }
    }
    NetworkInterface {
        device_index: index,
        interface_name: port.name.clone(),
        mac_address: port.mac_address.clone(),
        provider_id: port.id.clone(),
        subnet_id: port
            .fixed_ips
            .first()
            .map(|ip| ip.subnet_id.clone())
            .unwrap_or_default(),
        addresses,
    }
}

/// A fixed address is cloud-local, as Nova's `fixed` type says, unless the
/// address itself says it reaches less far (link-local, loopback).
fn fixed_scope(address: &str) -> AddressScope {
    match scope_of_ip(address) {
        AddressScope::LinkLocal => AddressScope::LinkLocal,
        AddressScope::MachineLocal => AddressScope::MachineLocal,
        _ => AddressScope::CloudLocal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(id: &str, device: &str, made: &str, ips: &[(&str, &str)]) -> Port {
        Port {
            id: id.into(),
            name: format!("{id}-name"),
            device_id: device.into(),
            mac_address: format!("fa:16:3e:00:00:{}", &id[id.len() - 2..]),
            fixed_ips: ips
                .iter()
                .map(|(subnet, ip)| FixedIp {
                    subnet_id: (*subnet).into(),
                    ip_address: (*ip).into(),
                })
                .collect(),
            created_at: Some(made.into()),
        }
    }

    #[test]
    fn ports_become_interfaces_in_device_order_with_their_floating_ips() {
        let ports = [
            port(
                "port-02",
                "srv-a",
                "2026-01-01T00:00:02Z",
                &[("sub-2", "10.0.2.5")],
            ),
            port(
                "port-01",
                "srv-a",
                "2026-01-01T00:00:01Z",
                &[("sub-1", "10.0.1.5"), ("sub-6", "fd00::5")],
            ),
            port(
                "port-09",
                "srv-b",
                "2026-01-01T00:00:09Z",
                &[("sub-1", "10.0.1.9")],
            ),
            port(
                "port-77",
                "elsewhere",
                "2026-01-01T00:00:00Z",
                &[("sub-1", "10.0.1.77")],
            ),
        ];
        let floating = [
            FloatingIp {
                id: "fip".into(),
                floating_ip_address: "203.0.113.5".into(),
                port_id: Some("port-01".into()),
            },
            FloatingIp {
                id: "fip".into(),
                floating_ip_address: "203.0.113.99".into(),
                port_id: None,
            },
        ];
        let ids = ["srv-a", "srv-none", "srv-b"].map(InstanceId::from);
        let lists = interfaces_by_server(&ids, &ports, &floating);
        assert_eq!(lists.len(), 3);
        let a = &lists[0];
        assert_eq!(
            a.iter().map(|i| i.provider_id.as_str()).collect::<Vec<_>>(),
            ["port-01", "port-02"]
        );
        assert_eq!(a.iter().map(|i| i.device_index).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(a[0].mac_address, "fa:16:3e:00:00:01");
        assert_eq!(a[0].subnet_id, "sub-1");
        assert_eq!(a[0].interface_name, "port-01-name");
        assert_eq!(
            a[0].addresses,
            [
                Address::new("10.0.1.5", AddressScope::CloudLocal),
                Address::new("fd00::5", AddressScope::CloudLocal),
                Address::new("203.0.113.5", AddressScope::Public),
            ]
        );
        assert!(lists[1].is_empty());
        assert_eq!(lists[2].len(), 1);
    }
}
