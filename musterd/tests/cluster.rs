//! Several `musterd` processes sharing presence over one NATS server, with
//! agents logged in through their doors (docs/spec.md §11): every node
//! answers for every agent; a node killed makes its agents missing on the
//! others, and its restart brings them back; a restarted NATS server and a
//! lost message leave every node with the same table. Each test waits real
//! time only as long as the behaviour needs, polling with bounds.

mod support;

use std::time::{Duration, Instant};

use support::cluster::*;
use support::nats::NatsServer;

/// How long a node's agents may take to be missing on the others after it
/// died, polled for: down_after, a heartbeat, and room for a loaded
/// machine. The figure measured is printed.
const MISSING_WITHIN: Duration = Duration::from_secs(5);

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn three_nodes_answer_for_every_agent_and_a_killed_node_goes_missing_then_returns() {
    let nats = NatsServer::start("three_nodes");
    let urls = [nats.url()];
    let mut nodes: Vec<Node> = (0..3).map(|n| Node::start("three", n, &urls)).collect();
    let mut agents = Agents::default();
    for (n, node) in nodes.iter().enumerate() {
        agents.login(node, n as u64 * 100, 10).await;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    let took = converge(&all, &agents.truth());
    eprintln!("30 agents alive on every node after {took:?}");
    for node in &nodes {
        let bridge = node.bridge();
        assert_eq!(bridge["link"], "connected", "{bridge}");
        assert_eq!(bridge["peers"].as_array().unwrap().len(), 2, "{bridge}");
    }

    // SIGKILL machine-1: its agents turn missing on the others, and
    // nothing else changes.
    let truth = agents.truth();
    let killed_at = Instant::now();
    nodes[1].kill();
    let lost = agents.lost("machine-1");
    assert_eq!(lost.len(), 10);
    let want = marked(&truth, "machine-1", "missing");
    let others = [&nodes[0], &nodes[2]];
    let mut missing_after = Duration::ZERO;
    while killed_at.elapsed() < MISSING_WITHIN {
        if others.iter().all(|node| node.table() == want) {
            missing_after = killed_at.elapsed();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        missing_after > Duration::ZERO,
        "machine-1's agents not missing everywhere within {MISSING_WITHIN:?}: {:#?}",
        others.iter().map(|n| n.table()).collect::<Vec<_>>()
    );
    eprintln!(
        "machine-1's agents missing on the others {missing_after:?} after its SIGKILL \
         (down_after {DOWN_AFTER:?}, heartbeat {HEARTBEAT:?})"
    );
    assert!(
        missing_after >= DOWN_AFTER - HEARTBEAT,
        "marked missing before it could have been silent for down_after: {missing_after:?}"
    );
    for node in others {
        assert_eq!(node.peer("machine-1")["state"], "down");
    }

    // It comes back, its agents log in again: alive everywhere, and the
    // old run's connections are gone.
    nodes[1].run();
    agents.relogin(&nodes[1], lost).await;
    let all: Vec<&Node> = nodes.iter().collect();
    let took = converge(&all, &agents.truth());
    eprintln!("machine-1 back, its agents alive everywhere after {took:?}");
    assert_eq!(agents.len(), 30);
    for node in [&nodes[0], &nodes[2]] {
        let peer = node.peer("machine-1");
        assert_eq!(peer["state"], "up", "{peer}");
        assert!(peer["restarts"].as_u64() >= Some(1), "{peer}");
    }

    // Changes go on flowing both ways.
    agents.close("machine-0", |id| id % 2 == 0);
    agents.login(&nodes[2], 500, 3).await;
    converge(&all, &agents.truth());
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_restarted_nats_server_leaves_every_node_with_the_same_tables() {
    let mut nats = NatsServer::start("nats_restart");
    let urls = [nats.url()];
    let nodes: Vec<Node> = (0..3).map(|n| Node::start("restart", n, &urls)).collect();
    let mut agents = Agents::default();
    for (n, node) in nodes.iter().enumerate() {
        agents.login(node, n as u64 * 100, 8).await;
    }
    let all: Vec<&Node> = nodes.iter().collect();
    converge(&all, &agents.truth());

    // NATS goes away: each node marks its peers down, and keeps its own.
    nats.kill();
    for node in &nodes {
        let own = node.server();
        wait_until(&format!("{own} sees its peers down"), || {
            node.table()
                .iter()
                .all(|((server, _), (_, status))| (server == &own) == (status == "alive"))
        });
        assert_eq!(node.bridge()["link"], "disconnected");
    }
    // Agents come and go meanwhile.
    agents.close("machine-0", |id| id % 3 == 0);
    agents.login(&nodes[2], 900, 2).await;

    // NATS is back on the same port and store: every node converges on
    // the truth, nothing lost.
    nats.run();
    let took = converge(&all, &agents.truth());
    eprintln!("every node converged {took:?} after NATS came back");
    for node in &nodes {
        assert_eq!(node.bridge()["link"], "connected");
    }
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_lost_message_is_noticed_by_its_number_and_repaired_with_a_snapshot() {
    let nats = NatsServer::start("lost_message");
    let urls = [nats.url()];
    let nodes: Vec<Node> = (0..2).map(|n| Node::start("lost", n, &urls)).collect();
    let mut agents = Agents::default();
    agents.login(&nodes[1], 0, 5).await;
    let all: Vec<&Node> = nodes.iter().collect();
    converge(&all, &agents.truth());
    let before = nodes[0].peer("machine-1");

    // A change of machine-1 numbered past the next one, as machine-0 sees
    // it when the change before it was lost on the way: it must not be
    // applied, and machine-0 takes a snapshot instead.
    let bridge = nodes[1].bridge();
    let (incarnation, seq) = (
        bridge["incarnation"].clone(),
        bridge["seq"].as_u64().unwrap(),
    );
    let forged = serde_json::json!({
        "type": "events",
        "node": "machine-1",
        "incarnation": incarnation,
        "events": [{"seq": seq + 2, "connect": {
            "id": 999_999,
            "model": support::agents::MODEL,
            "agent": "unit-ghost-0",
        }}],
    });
    let client = async_nats::connect(nats.url()).await.unwrap();
    client
        .publish(
            "muster.test.presence.feed.machine-1",
            forged.to_string().into(),
        )
        .await
        .unwrap();
    // And a heartbeat that says a change was published that never came.
    let heartbeat = serde_json::json!({
        "type": "heartbeat", "node": "machine-1", "incarnation": incarnation, "seq": seq + 1,
    });
    client
        .publish(
            "muster.test.presence.feed.machine-1",
            heartbeat.to_string().into(),
        )
        .await
        .unwrap();
    client.flush().await.unwrap();
    wait_until("machine-0 notices the gap and takes a snapshot", || {
        let peer = nodes[0].peer("machine-1");
        peer["gaps"].as_u64() > before["gaps"].as_u64()
            && peer["snapshots_applied"].as_u64() > before["snapshots_applied"].as_u64()
            && peer["state"] == "up"
    });
    converge(&all, &agents.truth());

    // Its own changes still flow afterwards.
    agents.login(&nodes[1], 10, 2).await;
    agents.close("machine-1", |id| id % 2 == 1);
    converge(&all, &agents.truth());
}

#[test]
fn a_credentials_file_is_checked_with_the_config_and_never_shown() {
    use support::{ConfigFile, MUSTERD};
    let check = |credentials: &[u8]| {
        let file = ConfigFile::new("creds", "");
        let creds = file.0.with_file_name("nats.token");
        std::fs::write(&creds, credentials).unwrap();
        let text = format!("[cluster]\ncredentials = {:?}\n", creds.to_str().unwrap());
        std::fs::write(&file.0, text).unwrap();
        let out = std::process::Command::new(MUSTERD)
            .args(["check-config", file.path()])
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), said, creds.display().to_string())
    };
    let (code, said, _) = check(b"s3cret-token\n");
    assert_eq!(code, Some(0), "{said}");
    let (code, said, path) = check(b"two s3crets");
    assert_eq!(code, Some(2), "{said}");
    assert!(
        said.contains(&format!(
            "cluster.credentials = \"{path}\": holds whitespace inside"
        )),
        "{said}"
    );
    assert!(!said.contains("s3cret"), "{said}");
}

#[cfg_attr(missing_chromium, ignore = "needs chromium")]
#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn the_dashboard_shows_the_peers_with_their_state_and_last_heartbeat() {
    let nats = NatsServer::start("dashboard");
    let urls = [nats.url()];
    let mut nodes: Vec<Node> = (0..3).map(|n| Node::start("dashboard", n, &urls)).collect();
    let mut agents = Agents::default();
    agents.login(&nodes[1], 0, 3).await;
    let all: Vec<&Node> = nodes.iter().collect();
    converge(&all, &agents.truth());
    nodes[2].kill();
    wait_until("machine-0 sees machine-2 down", || {
        nodes[0].peer("machine-2")["state"] == "down"
    });
    let dom = rendered(&format!("http://127.0.0.1:{}/", nodes[0].http));
    assert!(dom.contains("id=\"cluster-panel\">"), "the panel is hidden");
    assert!(
        dom.contains(&format!(
            "id=\"cluster-link\" class=\"badge ok\">connected to 127.0.0.1:{}<",
            nats.port
        )),
        "{dom}"
    );
    let up = row(&dom, "data-peer", "machine-1");
    assert!(up.contains("class=\"state up\">up<"), "{up}");
    assert!(up.contains(" s ago)"), "no last heartbeat: {up}");
    let down = row(&dom, "data-peer", "machine-2");
    assert!(down.contains("class=\"state down\">down<"), "{down}");
}
