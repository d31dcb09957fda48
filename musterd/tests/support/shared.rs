//! What the nodes of a cluster share, as the tests look at it: each
//! node's model leases and the polls of each model it made, and the
//! machine registry through each node's API.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::cluster::{Node, PATIENCE};

/// The lease manager's report, from `/api/report`.
pub fn leases(node: &Node) -> Value {
    let report = node.get("/api/report");
    let presence =
        super::child(&report, "presence").unwrap_or_else(|| panic!("no presence in {report}"));
    presence["report"]["children"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "leases"))
        .map(|c| c["report"].clone())
        .unwrap_or_else(|| panic!("no leases child in {presence}"))
}

/// The models `node` holds, by its report.
pub fn held(node: &Node) -> Vec<String> {
    leases(node)["held"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["model"].as_str().unwrap().to_owned())
        .collect()
}

/// `/metrics` of `node`, as text.
pub fn metrics(node: &Node) -> String {
    use std::io::{Read, Write};
    let mut tcp = std::net::TcpStream::connect(("127.0.0.1", node.http)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET /metrics HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

/// The polls each model's machines had on `node` so far.
pub fn polls(node: &Node, models: &[&str]) -> BTreeMap<String, u64> {
    let mut polls: BTreeMap<String, u64> = models.iter().map(|m| (m.to_string(), 0)).collect();
    let answer = node.get("/api/machines");
    for machine in answer["machines"].as_array().into_iter().flatten() {
        if let Some(model) = machine["model"].as_str() {
            *polls.entry(model.to_owned()).or_default() += machine["polls"].as_u64().unwrap_or(0);
        }
    }
    polls
}

/// Whether every running node's leases are with the owner every node
/// names, and each model is held by exactly one of them.
pub fn settled(nodes: &[&Node], models: &[&str]) -> bool {
    let reports: Vec<Value> = nodes.iter().map(|n| leases(n)).collect();
    let mut holders: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (node, report) in nodes.iter().zip(&reports) {
        if report["live"].as_array().unwrap().len() != nodes.len() {
            return false;
        }
        for lease in report["leases"].as_array().unwrap() {
            if lease["owner"] == node.server() && lease["holder"] != node.server() {
                return false;
            }
        }
        for model in held(node) {
            holders.entry(model).or_default().push(node.server());
        }
    }
    holders.len() == models.len() && holders.values().all(|h| h.len() == 1)
}

/// Polls (bounded by [`PATIENCE`]) until [`settled`]; answers how long it
/// took, or fails showing every node's leases.
pub fn settle(nodes: &[&Node], models: &[&str], what: &str) -> Duration {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if settled(nodes, models) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let reports: Vec<Value> = nodes.iter().map(|n| leases(n)).collect();
    panic!("{what}: not within {PATIENCE:?}: {reports:#?}");
}

/// The nodes whose polls of each model grew over `window`.
pub fn pollers(
    nodes: &[&Node],
    models: &[&str],
    window: Duration,
) -> BTreeMap<String, Vec<String>> {
    let before: Vec<_> = nodes.iter().map(|n| polls(n, models)).collect();
    std::thread::sleep(window);
    let after: Vec<_> = nodes.iter().map(|n| polls(n, models)).collect();
    let mut pollers: BTreeMap<String, Vec<String>> =
        models.iter().map(|m| (m.to_string(), Vec::new())).collect();
    for ((node, before), after) in nodes.iter().zip(&before).zip(&after) {
        for (model, count) in after {
            if *count > before[model] {
                pollers.get_mut(model).unwrap().push(node.server());
            }
        }
    }
    pollers
}

/// `METHOD path` with `body` to the node whose HTTP port is `port`: the
/// status and the body as JSON (`null` when empty or not JSON).
pub fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, Value::Null);
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let Some((head, body)) = response.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Machine `tag` of `model` as `node` answers it, when it does.
pub fn machine(node: &Node, model: &str, tag: &str) -> Option<Value> {
    let (status, list) = request(
        node.http,
        "GET",
        &format!("/api/models/{model}/machines"),
        "",
    );
    if status != 200 {
        return None;
    }
    list["machines"]
        .as_array()?
        .iter()
        .find(|m| m["tag"] == tag)
        .cloned()
}

/// Polls (bounded by [`PATIENCE`]) until `node` answers machine `tag` of
/// `model` running at a provider address, and answers it.
pub fn polled(node: &Node, model: &str, tag: &str) -> Value {
    polled_within(node, model, tag, PATIENCE)
}

/// [`polled`], waiting at most `within`.
pub fn polled_within(node: &Node, model: &str, tag: &str, within: Duration) -> Value {
    let started = Instant::now();
    loop {
        if let Some(m) = machine(node, model, tag)
            && m["instance_status"]["status"] == "running"
            && !m["addresses"].as_array().is_none_or(Vec::is_empty)
        {
            return m;
        }
        assert!(
            started.elapsed() < within,
            "{} never answered {tag} of {model} polled: {:?}; the list: {:?}",
            node.server(),
            machine(node, model, tag),
            request(
                node.http,
                "GET",
                &format!("/api/models/{model}/machines"),
                ""
            )
            .1["machines"]
                .as_array()
                .map(|all| all.iter().map(|m| m["tag"].clone()).collect::<Vec<_>>())
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// What the registry holds of a machine, without when it was last polled
/// nor the answering node's own poller's state.
pub fn stable(machine: &Value) -> Value {
    let keep = [
        "tag",
        "incarnation",
        "instance_id",
        "life",
        "agent_status",
        "manual",
        "instance_status",
        "addresses",
    ];
    keep.iter()
        .map(|key| (key.to_string(), machine[*key].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
