use super::*;

fn server(json: &str) -> Server {
    serde_json::from_str(json).unwrap()
}

#[test]
fn nova_statuses_map_as_the_spec_says() {
    use InstanceStatus::*;
    let cases = [
        ("BUILD", None, Allocating, ""),
        ("ACTIVE", None, Running, ""),
        ("SHUTOFF", None, Stopped, ""),
        ("SUSPENDED", None, Stopped, "SUSPENDED"),
        ("PAUSED", None, Stopped, "PAUSED"),
        (
            "ERROR",
            Some("No valid host was found. "),
            ProvisioningError,
            "No valid host was found.",
        ),
        ("ERROR", None, ProvisioningError, "ERROR"),
        ("ERROR", Some(""), ProvisioningError, "ERROR"),
        ("REBOOT", None, Unknown, "REBOOT"),
        ("SHELVED_OFFLOADED", None, Unknown, "SHELVED_OFFLOADED"),
        ("", None, Unknown, ""),
    ];
    for (nova, fault, status, message) in cases {
        let server = Server {
            id: "s".into(),
            status: nova.into(),
            fault: fault.map(|m| Fault { message: m.into() }),
            addresses: Networks::default(),
        };
        assert_eq!(
            super::status(&server),
            InstanceStatusInfo::new(status, message),
            "{nova}"
        );
        assert!(instance(&server).is_some());
    }
    for gone in ["DELETED", "SOFT_DELETED"] {
        let server = server(&format!(r#"{{"id": "s", "status": "{gone}"}}"#));
        assert!(is_gone(&server) && instance(&server).is_none());
    }
}

#[test]
fn addresses_keep_nova_s_order_with_the_primary_first() {
    let server = server(
        r#"{"id": "s", "status": "ACTIVE", "addresses": {
          "public-net": [
            {"addr": "203.0.113.7", "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:02"},
            {"addr": "2001:db8::7", "version": 6, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:02"},
            {"addr": "10.1.0.7", "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "FA:16:3E:00:00:02"}],
          "admin-net": [
            {"addr": "192.168.0.7", "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:00:00:09"}]
        }}"#,
    );
    let interfaces = interfaces(&server);
    assert_eq!(interfaces.len(), 2);
    assert_eq!(interfaces[0].mac_address, "fa:16:3e:00:00:02");
    assert_eq!(interfaces[0].device_index, 0);
    assert_eq!(
        interfaces[0].addresses,
        [
            Address::new("10.1.0.7", AddressScope::CloudLocal),
            Address::new("2001:db8::7", AddressScope::CloudLocal),
            Address::new("203.0.113.7", AddressScope::Public),
        ]
    );
    assert_eq!(interfaces[1].device_index, 1);
    assert_eq!(
        interfaces[1].addresses,
        [Address::new("192.168.0.7", AddressScope::CloudLocal)]
    );
    let instance = instance(&server).unwrap();
    assert_eq!(instance.addresses[0].value, "10.1.0.7");
    assert_eq!(instance.addresses.len(), 4);
}

#[test]
fn addresses_without_a_type_are_scoped_by_what_they_are() {
    // As mimic and older Novas give them: no type, no MAC.
    let server = server(
        r#"{"id": "s", "status": "ACTIVE", "addresses": {
          "public": [{"addr": "198.101.241.7", "version": 4}, {"addr": "2001:4800:780e:510::7", "version": 6}],
          "private": [{"addr": "10.180.1.2", "version": 4}]}}"#,
    );
    let interfaces = interfaces(&server);
    assert_eq!(interfaces.len(), 2);
    assert_eq!(
        interfaces[0].addresses,
        [Address::new("10.180.1.2", AddressScope::CloudLocal)]
    );
    assert_eq!(
        interfaces[1].addresses,
        [
            Address::new("198.101.241.7", AddressScope::Public),
            Address::new("2001:4800:780e:510::7", AddressScope::Public),
        ]
    );
    for (ip, scope) in [
        ("127.0.0.1", AddressScope::MachineLocal),
        ("169.254.1.1", AddressScope::LinkLocal),
        ("172.16.0.1", AddressScope::CloudLocal),
        ("100.64.0.1", AddressScope::CloudLocal),
        ("fe80::1", AddressScope::LinkLocal),
        ("fd00::1", AddressScope::CloudLocal),
        ("::1", AddressScope::MachineLocal),
        ("8.8.8.8", AddressScope::Public),
        ("not an address", AddressScope::Unknown),
    ] {
        assert_eq!(scope_of_ip(ip), scope, "{ip}");
    }
}

#[test]
fn pages_say_where_the_next_one_starts() {
    let page: ServerPage = serde_json::from_str(
        r#"{"servers": [{"id": "a"}, {"id": "b"}], "servers_links": [{"href": "x", "rel": "next"}]}"#,
    )
    .unwrap();
    assert_eq!(page.next_marker(), Some("b"));
    let last: ServerPage = serde_json::from_str(r#"{"servers": [{"id": "a"}]}"#).unwrap();
    assert_eq!(last.next_marker(), None);
    let empty: ServerPage =
        serde_json::from_str(r#"{"servers": [], "servers_links": [{"rel": "next"}]}"#).unwrap();
    assert_eq!(empty.next_marker(), None);
    let odd: Server = serde_json::from_str(r#"{"id": "a", "addresses": null}"#).unwrap();
    assert!(odd.addresses.0.is_empty());
}
