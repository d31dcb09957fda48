//! Agents' own passwords shared by the nodes of a cluster (docs/spec.md
//! §14.3, §14.5): made through one node's HTTP API, kept in the shared
//! bucket as hashes, checked by every node's door, and a rotation through
//! one node closing the connection another node holds. Real processes on
//! a real NATS server.

mod support;

use std::time::{Duration, Instant};

use muster_door::client::{Client, Login, LoginFailure, Session, SessionEnd};
use support::cluster::*;
use support::nats::NatsServer;
use support::passwords::{REFUSED, bytes_of, holds, provision, refused};
use tokio::time::timeout;

const MODEL: &str = "99999999-9999-4999-8999-999999999999";

/// How long a rotation through one node may take to close a connection on
/// another.
const AT_ONCE: Duration = Duration::from_secs(2);

async fn log_in(node: &Node, agent: &str, password: &str) -> Result<Session, LoginFailure> {
    let client = Client::new(&node.door(), None).unwrap();
    let login = Login::new(MODEL.parse().unwrap(), agent.parse().unwrap())
        .with_password(Some(password.to_owned()));
    client.login(&login).await
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[tokio::test]
async fn a_password_made_through_one_node_logs_in_through_all_and_a_rotation_closes_it_everywhere()
{
    let nats = NatsServer::start("passwords_shared");
    let urls = [nats.url()];
    let door = "auth = \"password\"\nmax_login_failures = 1000\n";
    let nodes: Vec<Node> = (0..2)
        .map(|n| Node::with_models_door("passwords_shared", n, &urls, &[MODEL], door))
        .collect();

    let password = provision(nodes[0].http, MODEL, "machine-5");
    // Logged in through the other node, with what the first one made.
    let mut session = log_in(&nodes[1], "machine-5", &password).await.unwrap();
    assert_eq!(
        refused(&nodes[1].door(), MODEL, "machine-5", Some("wrong")).await,
        (4401, REFUSED.to_owned())
    );

    // Rotated through the first node: the connection the second holds is
    // closed at once, the old password refused by both, the new one let
    // in by both.
    let started = Instant::now();
    let rotated = provision(nodes[0].http, MODEL, "machine-5");
    let end = timeout(AT_ONCE, async {
        loop {
            if let Some(end) = session.next_end().await {
                return end;
            }
        }
    })
    .await;
    assert_eq!(
        end,
        Ok(SessionEnd::Closed(4401)),
        "after {:?}",
        started.elapsed()
    );
    for node in &nodes {
        assert_eq!(
            log_in(node, "machine-5", &password).await.unwrap_err(),
            LoginFailure::Closed(4401)
        );
        let again = log_in(node, "machine-5", &rotated).await;
        assert!(again.is_ok(), "machine-{}: {again:?}", node.n);
    }

    // The bucket's store holds hashes, never a password.
    let stored = bytes_of_tree(nats.store());
    assert!(!stored.is_empty());
    assert!(!holds(&stored, &password));
    assert!(!holds(&stored, &rotated));
}

/// Every byte of every file under `dir`.
fn bytes_of_tree(dir: &std::path::Path) -> Vec<u8> {
    let mut all = bytes_of(dir);
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(bytes_of_tree(&path));
        }
    }
    all
}
