//! The model leases' bucket on a real nats-server, nodes in-process
//! (docs/spec.md §11.8): a node whose `lease_ttl` is not the bucket's
//! times its leases on the bucket, and a bucket deleted under the nodes
//! is made again and the models held again.

mod support;

use std::time::Duration;

use muster::names::ModelUuid;
use musterd::Hosted;
use musterd::config::DaemonConfig;
use serde_json::Value;
use slog::{Logger, o};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Node `n` of cluster `name` on `nats`, with `lease_ttl`, polling two
/// simulated models, in this process.
async fn node(nats: &str, name: &str, n: u32, lease_ttl: &str) -> Hosted {
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\
         [agents]\nlisten = \"127.0.0.1:0\"\nserver = \"machine-{n}\"\n\
         [cluster]\nname = \"{name}\"\nnats = [\"{nats}\"]\nheartbeat = \"100ms\"\n\
         down_after = \"1s\"\nlease_ttl = \"{lease_ttl}\"\n\
         [store]\npath = \":memory:\"\n\
         [[models]]\nuuid = \"{}\"\ncloud = \"sim\"\nregion = \"r\"\n\
         [[models]]\nuuid = \"{}\"\ncloud = \"sim\"\nregion = \"r\"\n",
        ModelUuid::from_u128(1),
        ModelUuid::from_u128(2),
    );
    let config = DaemonConfig::from_toml(&text).unwrap();
    let logger = Logger::root(slog::Discard, o!());
    let hosted = Hosted::start(&config, &logger).await.unwrap();
    hosted.muster.presence().enable().await.unwrap();
    hosted
}

/// The lease manager's own report.
async fn leases(hosted: &Hosted) -> Value {
    let report = serde_json::to_value(hosted.root.report().await.unwrap()).unwrap();
    support::child(&report, "leases")
        .map(|child| child["report"].clone())
        .unwrap_or(Value::Null)
}

fn held(report: &Value) -> usize {
    report["held"].as_array().map_or(0, Vec::len)
}

/// Waits (bounded) until the node's lease report satisfies `done`.
async fn until(hosted: &Hosted, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let mut report = Value::Null;
    for _ in 0..600 {
        report = leases(hosted).await;
        if done(&report) {
            return report;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what}: {report:#}");
}

/// `GET /readyz`: the status line and the body.
async fn readyz(hosted: &Hosted) -> (String, String) {
    let mut tcp = TcpStream::connect(hosted.listen).await.unwrap();
    let ask = "GET /readyz HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n";
    tcp.write_all(ask.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[actix_web::test]
async fn a_node_whose_lease_ttl_is_not_the_buckets_times_its_leases_on_the_bucket() {
    let nats = support::nats::NatsServer::start("lease_bucket_ttl");
    let a = node(&nats.url(), "ttl", 0, "3s").await;
    until(&a, "the first node holds both models", |r| held(r) == 2).await;
    // On its own lease_ttl the second node would renew every 4 s: the
    // bucket lets a lease go after 3 s, and the first node would take the
    // model while the second still polls it.
    let b = node(&nats.url(), "ttl", 1, "12s").await;
    until(&b, "the second node times its leases on the bucket", |r| {
        r["lease_ttl"] == "3s"
    })
    .await;
    let models = |r: &Value| -> Vec<Value> {
        r["held"]
            .as_array()
            .map(|held| held.iter().map(|h| h["model"].clone()).collect())
            .unwrap_or_default()
    };
    // For twice the second node's own renewal period, and more: no model
    // is ever held by both.
    for _ in 0..100 {
        let (on_a, on_b) = (models(&leases(&a).await), models(&leases(&b).await));
        assert!(
            on_a.iter().all(|m| !on_b.contains(m)),
            "held by both: {on_a:?} {on_b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settled = until(&b, "the second node holds its share", |r| held(r) >= 1).await;
    assert_eq!(settled["error"], Value::Null, "{settled:#}");
    let logger = Logger::root(slog::Discard, o!());
    b.stop(&logger).await.unwrap();
    a.stop(&logger).await.unwrap();
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[actix_web::test]
async fn a_lease_bucket_deleted_is_made_again_and_its_read_failures_are_counted() {
    let nats = support::nats::NatsServer::start("lease_bucket_deleted");
    let a = node(&nats.url(), "gone", 0, "3s").await;
    until(&a, "the node holds both models", |r| held(r) == 2).await;
    let client = async_nats::connect(nats.url()).await.unwrap();
    async_nats::jetstream::new(client.clone())
        .delete_stream("KV_muster_gone_leases")
        .await
        .unwrap();
    until(&a, "the renewals fail and the models stop", |r| {
        held(r) == 0
    })
    .await;
    let back = until(&a, "the node holds both models again", |r| held(r) == 2).await;
    assert!(
        back["counts"]["read_failed"].as_u64() >= Some(1),
        "{back:#}"
    );
    assert_eq!(back["error"], Value::Null, "{back:#}");
    assert_eq!(readyz(&a).await.0, "HTTP/1.1 200 OK");
    async_nats::jetstream::new(client)
        .get_key_value("muster_gone_leases")
        .await
        .expect("the bucket is there again");
    let logger = Logger::root(slog::Discard, o!());
    a.stop(&logger).await.unwrap();
}
