//! The shared registry while its NATS is gone (docs/spec.md §11.9.7): its
//! calls fail at once with 503 and `Retry-After`, and work again once NATS
//! is back. A node in-process, NATS a real server.

mod support;

use std::time::Duration;

use muster::names::ModelUuid;
use musterd::Hosted;
use musterd::config::DaemonConfig;
use slog::{Logger, o};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `METHOD path` with `body`: the head and the body.
async fn call(hosted: &Hosted, method: &str, path: &str, body: &str) -> (String, String) {
    let mut tcp = TcpStream::connect(hosted.listen).await.unwrap();
    let ask = format!(
        "{method} {path} HTTP/1.1\r\nHost: muster\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(ask.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    (head.to_owned(), body.to_owned())
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[actix_web::test]
async fn registry_calls_fail_fast_with_503_and_retry_after_while_nats_is_gone() {
    let mut nats = support::nats::NatsServer::start("registry_link");
    let model = ModelUuid::from_u128(1);
    let text = format!(
        "[http]\nlisten = \"127.0.0.1:0\"\n\
         [agents]\nlisten = \"127.0.0.1:0\"\nserver = \"machine-0\"\n\
         [cluster]\nname = \"link\"\nnats = [\"{}\"]\nheartbeat = \"100ms\"\n\
         down_after = \"1s\"\nlease_ttl = \"3s\"\n\
         [[models]]\nuuid = \"{model}\"\ncloud = \"sim\"\nregion = \"r\"\n",
        nats.url()
    );
    let config = DaemonConfig::from_toml(&text).unwrap();
    let logger = Logger::root(slog::Discard, o!());
    let hosted = Hosted::start(&config, &logger).await.unwrap();
    let path = format!("/api/models/{model}/machines/7");
    let body = r#"{"agent_status": "started"}"#;
    let (head, _) = call(&hosted, "PUT", &path, body).await;
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");

    nats.kill();
    // The link notices the server gone at once (its socket closes).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (method, path) in [
        ("PUT", path.as_str()),
        ("DELETE", path.as_str()),
        ("GET", &format!("/api/models/{model}/machines")),
    ] {
        let answered =
            tokio::time::timeout(Duration::from_secs(5), call(&hosted, method, path, body)).await;
        let (head, text) = answered.unwrap_or_else(|_| panic!("{method} {path} hung"));
        assert!(
            head.starts_with("HTTP/1.1 503"),
            "{method} {path}: {head}\n{text}"
        );
        assert!(
            head.to_ascii_lowercase().contains("retry-after: 1"),
            "{head}"
        );
        assert!(text.contains("NATS"), "{text}");
    }

    nats.run();
    let mut head = String::new();
    for _ in 0..200 {
        head = call(&hosted, "GET", &format!("/api/models/{model}/machines"), "")
            .await
            .0;
        if head.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    hosted.stop(&logger).await.unwrap();
}
