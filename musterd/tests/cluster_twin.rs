//! Two daemons given one `[agents] server` in one cluster (docs/spec.md
//! §11.6.7): the second refuses to start, naming the clash, and the first
//! carries on.

mod support;

use musterd::Hosted;
use musterd::config::DaemonConfig;
use slog::{Logger, o};

fn config(nats: &str, server: &str) -> DaemonConfig {
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\
         [agents]\nlisten = \"127.0.0.1:0\"\nserver = \"{server}\"\n\
         [cluster]\nname = \"twins\"\nnats = [\"{nats}\"]\nheartbeat = \"100ms\"\n\
         down_after = \"1s\"\n"
    );
    DaemonConfig::from_toml(&text).unwrap()
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[actix_web::test]
async fn a_second_daemon_with_the_same_server_refuses_to_start_naming_the_clash() {
    let nats = support::nats::NatsServer::start("cluster_twin");
    let logger = Logger::root(slog::Discard, o!());
    let first = Hosted::start(&config(&nats.url(), "machine-0"), &logger)
        .await
        .unwrap();
    first.muster.presence().enable().await.unwrap();
    // Its heartbeats are on its feed once its bridge is connected.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let Err(refused) = Hosted::start(&config(&nats.url(), "machine-0"), &logger).await else {
        panic!("a second daemon as machine-0 started");
    };
    assert_eq!(refused.exit_code(), 1);
    let text = refused.to_string();
    assert!(
        text.contains("machine-0") && text.contains("[agents] server"),
        "{text}"
    );
    // Another server name starts beside it.
    let other = Hosted::start(&config(&nats.url(), "machine-1"), &logger)
        .await
        .unwrap();
    other.stop(&logger).await.unwrap();
    first.stop(&logger).await.unwrap();
}
