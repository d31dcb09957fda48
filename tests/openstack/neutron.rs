//! Neutron's ports and floating IPs, which mimic does not serve, from a
//! loopback server answering Keystone v3, Nova and Neutron with canned
//! answers in the shape of the OpenStack API reference (a token with its
//! catalog, `servers/detail`, `ports` and `floatingips` filtered by the
//! query as Neutron filters them). It checks the interfaces and what a
//! batch costs with Neutron: one server page, one ports and one floating
//! IPs request.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use muster::openstack::{OpenStackConfig, OpenStackEnviron};
use muster::provider::{Address, AddressScope, Environ, InstanceId};
use serde_json::{Value, json};

use crate::support::{SECRET, TempDir};

const SERVER_A: &str = "2b1c6a5e-1f0a-4c3b-9d7e-0a1b2c3d4e5f";
const SERVER_B: &str = "7d4e2f10-3b2a-4e5c-8f9d-1a2b3c4d5e6f";

fn servers() -> Value {
    json!({"servers": [
        {"id": SERVER_A, "name": "juju-a-0", "status": "ACTIVE", "OS-EXT-STS:vm_state": "active",
         "addresses": {
            "internal": [
                {"addr": "10.0.0.12", "version": 4, "OS-EXT-IPS:type": "fixed",
                 "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4c:2c:30"},
                {"addr": "203.0.113.12", "version": 4, "OS-EXT-IPS:type": "floating",
                 "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:4c:2c:30"}],
            "storage": [
                {"addr": "192.168.50.12", "version": 4, "OS-EXT-IPS:type": "fixed",
                 "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:9a:01:7b"}]}},
        {"id": SERVER_B, "name": "juju-a-1", "status": "ERROR",
         "fault": {"code": 500, "message": "No valid host was found. There are not enough hosts available.",
                   "created": "2026-12-07T10:00:00Z"},
         "addresses": {}}
    ]})
}

fn ports() -> Vec<Value> {
    vec![
        // Listed first, made second: the storage port, device 1.
        json!({"id": "b3e1f2a4-0000-4000-8000-000000000002", "name": "storage-port",
               "device_id": SERVER_A, "device_owner": "compute:nova", "network_id": "net-storage",
               "mac_address": "fa:16:3e:9a:01:7b", "status": "ACTIVE",
               "created_at": "2026-12-07T10:00:05Z",
               "fixed_ips": [{"subnet_id": "subnet-storage", "ip_address": "192.168.50.12"}]}),
        json!({"id": "a7c0d9e8-0000-4000-8000-000000000001", "name": "",
               "device_id": SERVER_A, "device_owner": "compute:nova", "network_id": "net-internal",
               "mac_address": "fa:16:3e:4c:2c:30", "status": "ACTIVE",
               "created_at": "2026-12-07T10:00:01Z",
               "fixed_ips": [{"subnet_id": "subnet-internal-v4", "ip_address": "10.0.0.12"},
                             {"subnet_id": "subnet-internal-v6", "ip_address": "fd00:10::12"}]}),
        json!({"id": "c9f8e7d6-0000-4000-8000-000000000009", "name": "",
               "device_id": "someone-else", "mac_address": "fa:16:3e:00:00:09",
               "created_at": "2026-12-07T09:00:00Z",
               "fixed_ips": [{"subnet_id": "subnet-internal-v4", "ip_address": "10.0.0.99"}]}),
    ]
}

fn floating_ips() -> Vec<Value> {
    vec![
        json!({"id": "f1", "floating_ip_address": "203.0.113.12", "fixed_ip_address": "10.0.0.12",
               "port_id": "a7c0d9e8-0000-4000-8000-000000000001", "status": "ACTIVE"}),
        json!({"id": "f2", "floating_ip_address": "203.0.113.99", "port_id": null, "status": "DOWN"}),
    ]
}

/// The canned cloud, on its own thread until dropped.
struct Canned {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Canned {
    fn start() -> Canned {
        Canned::launch(false)
    }

    /// A cloud whose server list never ends.
    fn lying() -> Canned {
        Canned::launch(true)
    }

    fn launch(lying: bool) -> Canned {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log, stopping) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                answer(stream, addr, lying, &log);
            }
        });
        Canned {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for Canned {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(stream: TcpStream, addr: SocketAddr, lying: bool, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut length = 0;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    let _ = std::io::Read::read_exact(&mut reader, &mut body);
    let target = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    log.lock().unwrap().push(format!(
        "{} {target}",
        line.split_whitespace().next().unwrap_or_default()
    ));
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let values = |key: &str| -> Vec<String> {
        query
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.to_owned())
            .collect()
    };
    let (status, extra, body) = match path {
        "/identity/v3/auth/tokens" => {
            let sent: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let password = &sent["auth"]["identity"]["password"]["user"]["password"];
            if password != SECRET {
                (
                    401,
                    "",
                    json!({"error": {"code": 401, "message": "The request you have made requires authentication.", "title": "Unauthorized"}}),
                )
            } else {
                let endpoint = |kind: &str, url: String| {
                    json!({"type": kind, "name": kind, "endpoints": [
                        {"interface": "public", "region_id": "RegionOne", "region": "RegionOne", "url": url}]})
                };
                (
                    201,
                    "X-Subject-Token: canned-token\r\n",
                    json!({"token": {
                    "methods": ["password"], "issued_at": "2026-12-07T10:00:00.000000Z",
                    "expires_at": "2026-12-07T11:00:00.000000Z",
                    "catalog": [endpoint("compute", format!("http://{addr}/compute/v2.1")),
                                endpoint("network", format!("http://{addr}/network/"))]}}),
                )
            }
        }
        "/compute/v2.1/servers/detail" if lying => {
            // Every page says there is another, after the same server.
            let mut page = servers();
            page["servers_links"] = json!([{"rel": "next", "href": "again"}]);
            (200, "", page)
        }
        "/compute/v2.1/servers/detail" => (200, "", servers()),
        "/network/v2.0/ports" => {
            let devices = values("device_id");
            let ports: Vec<Value> = ports()
                .into_iter()
                .filter(|p| devices.iter().any(|d| p["device_id"] == d.as_str()))
                .collect();
            (200, "", json!({"ports": ports}))
        }
        "/network/v2.0/floatingips" => {
            let ports = values("port_id");
            let ips: Vec<Value> = floating_ips()
                .into_iter()
                .filter(|ip| ports.iter().any(|p| ip["port_id"] == p.as_str()))
                .collect();
            (200, "", json!({"floatingips": ips}))
        }
        _ => (
            404,
            "",
            json!({"itemNotFound": {"code": 404, "message": "no such path"}}),
        ),
    };
    let text = body.to_string();
    let mut stream = &stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n{extra}\
         Content-Length: {}\r\nConnection: close\r\n\r\n{text}",
        text.len()
    );
}

fn environ(canned: &Canned, dir: &TempDir) -> OpenStackEnviron {
    let file = dir.0.join("neutron.yaml");
    std::fs::write(
        &file,
        format!(
            "clouds:\n  canned:\n    auth:\n      username: muster\n      password: {SECRET}\n      \
             project_id: 8a3c1f\n"
        ),
    )
    .unwrap();
    let mut config =
        OpenStackConfig::with_auth_url("RegionOne", format!("http://{}/identity/v3", canned.addr));
    config.credential_file = Some(file);
    OpenStackEnviron::new(&config).unwrap()
}

#[tokio::test]
async fn neutron_ports_give_mac_subnet_device_order_and_floating_ips_in_one_request_each() {
    let canned = Canned::start();
    let dir = TempDir::new();
    let environ = environ(&canned, &dir);
    let asked: Vec<InstanceId> = [SERVER_A, "00000000-0000-0000-0000-000000000000", SERVER_B]
        .map(InstanceId::from)
        .to_vec();

    let found = environ.instances(&asked).await.unwrap();
    let b = found[2].as_ref().unwrap();
    assert_eq!(
        b.status.message,
        "No valid host was found. There are not enough hosts available."
    );
    assert!(found[1].is_none());
    let lists = environ.network_interfaces(&asked).await.unwrap();
    let a = &lists[0];
    assert_eq!(a.len(), 2, "{a:?}");
    assert_eq!(a[0].provider_id, "a7c0d9e8-0000-4000-8000-000000000001");
    assert_eq!(a[0].device_index, 0);
    assert_eq!(a[0].mac_address, "fa:16:3e:4c:2c:30");
    assert_eq!(a[0].subnet_id, "subnet-internal-v4");
    assert_eq!(
        a[0].addresses,
        [
            Address::new("10.0.0.12", AddressScope::CloudLocal),
            Address::new("fd00:10::12", AddressScope::CloudLocal),
            Address::new("203.0.113.12", AddressScope::Public),
        ]
    );
    assert_eq!(a[1].interface_name, "storage-port");
    assert_eq!(a[1].device_index, 1);
    assert_eq!(a[1].subnet_id, "subnet-storage");
    assert_eq!(
        a[1].addresses,
        [Address::new("192.168.50.12", AddressScope::CloudLocal)]
    );
    assert!(lists[1].is_empty() && lists[2].is_empty());

    // One sign-in, then a batch costs one page of servers, one ports and
    // one floating IPs request, every id in the same request.
    let requests = canned.requests();
    assert_eq!(requests.len(), 4, "{requests:?}");
    assert_eq!(requests[0], "POST /identity/v3/auth/tokens");
    assert!(requests[1].starts_with("GET /compute/v2.1/servers/detail?limit=1000"));
    assert!(
        requests[2].starts_with(&format!(
            "GET /network/v2.0/ports?device_id={SERVER_A}&device_id=00000000-0000-0000-0000-000000000000&device_id={SERVER_B}&limit=1000"
        )),
        "{requests:?}"
    );
    assert!(requests[3].starts_with("GET /network/v2.0/floatingips?port_id="));
    environ.network_interfaces(&asked).await.unwrap();
    assert_eq!(canned.requests().len(), 6);
}

#[tokio::test]
async fn a_wrong_password_is_refused_by_keystone_v3() {
    let canned = Canned::start();
    let dir = TempDir::new();
    let file = dir.0.join("wrong.yaml");
    std::fs::write(
        &file,
        "clouds:\n  canned:\n    auth:\n      username: muster\n      password: wrong\n      project_id: p\n",
    )
    .unwrap();
    let mut config =
        OpenStackConfig::with_auth_url("RegionOne", format!("http://{}/identity/v3", canned.addr));
    config.credential_file = Some(file);
    let environ = OpenStackEnviron::new(&config).unwrap();
    let error = environ
        .instances(&[InstanceId::from(SERVER_A)])
        .await
        .unwrap_err();
    assert!(error.is_unauthorised(), "{error}");
    assert!(
        error
            .to_string()
            .ends_with("The request you have made requires authentication."),
        "{error}"
    );
}

#[tokio::test]
async fn a_server_list_that_never_ends_is_an_error_not_a_loop() {
    let canned = Canned::lying();
    let dir = TempDir::new();
    let environ = environ(&canned, &dir);
    let asked: Vec<InstanceId> = [SERVER_A, "00000000-0000-0000-0000-000000000000"]
        .map(InstanceId::from)
        .to_vec();
    let error = environ.instances(&asked).await.unwrap_err();
    assert!(
        error
            .to_string()
            .ends_with("the cloud answered the same page again"),
        "{error}"
    );
    let lists: Vec<String> = canned
        .requests()
        .into_iter()
        .filter(|r| r.contains("/servers/detail"))
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
}
