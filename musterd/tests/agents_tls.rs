//! The door over TLS, with a certificate made in the test: `wss://` logs
//! in and is recorded, also with an ordinary self-signed certificate given
//! to the client as its authority; a plain client gets nowhere, and a
//! failed handshake is counted; unusable TLS files are refused naming
//! their key.

mod support;

use std::path::Path;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use muster_door::client::{Client, Login};
use muster_door::{AgentsConfig, Door, DoorError};
use serde_json::json;
use support::agents::*;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message;

fn connector(root: CertificateDer<'static>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    roots.add(root).unwrap();
    let config = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    TlsConnector::from(Arc::new(config))
}

#[actix_web::test]
async fn wss_logs_in_and_is_recorded() {
    let (pems, root) = Pems::new("login");
    let fixture = Fixture::start(pems.config()).await;
    assert!(
        fixture.url.starts_with("wss://127.0.0.1:"),
        "{}",
        fixture.url
    );
    let tcp = TcpStream::connect(fixture.addr()).await.unwrap();
    let tls = connector(root)
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    let (mut ws, _) = tokio_tungstenite::client_async(fixture.url.as_str(), tls)
        .await
        .unwrap();
    ws.send(Message::text(login_frame("unit-mysql-0", json!({}))))
        .await
        .unwrap();
    let Answer::In(answer) = answer(&mut ws).await else {
        panic!("refused")
    };
    assert_eq!(answer["server"], "machine-0");
    let presence = fixture.api_presence().await;
    assert_eq!(
        presence["agents"],
        json!([{"agent": "unit-mysql-0", "status": "alive", "controller": false}])
    );
    // Frames and the close travel encrypted just the same.
    round_trip(&mut ws).await;
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    fixture.wait_count(0).await;
    fixture.stop().await;
}

#[actix_web::test]
async fn a_plain_client_gets_nowhere_on_a_tls_door() {
    let (pems, _) = Pems::new("plain");
    let fixture = Fixture::start(pems.config()).await;
    let plain = fixture.url.replace("wss://", "ws://");
    let tcp = TcpStream::connect(fixture.addr()).await.unwrap();
    assert!(
        tokio_tungstenite::client_async(plain.as_str(), tcp)
            .await
            .is_err()
    );
    assert_eq!(fixture.total().await, 0);
    fixture.stop().await;
}

#[actix_web::test]
async fn a_failed_handshake_is_counted_as_a_tls_login() {
    let (pems, _) = Pems::new("counted");
    let fixture = Fixture::start(pems.config()).await;
    let series = "muster_agents_logins_total{result=\"tls\"}";
    assert_eq!(fixture.metric(series).await, 0.0);
    // A plain WebSocket client, then one that trusts another certificate.
    let plain = fixture.url.replace("wss://", "ws://");
    let tcp = TcpStream::connect(fixture.addr()).await.unwrap();
    assert!(
        tokio_tungstenite::client_async(plain.as_str(), tcp)
            .await
            .is_err()
    );
    let (_, stranger) = Pems::new("stranger");
    let tcp = TcpStream::connect(fixture.addr()).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    assert!(connector(stranger).connect(name, tcp).await.is_err());
    let mut counted = 0.0;
    for _ in 0..200 {
        counted = fixture.metric(series).await;
        if counted == 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(counted, 2.0);
    fixture.stop().await;
}

#[actix_web::test]
async fn a_self_signed_certificate_given_as_ca_is_trusted_as_it_is() {
    let pems = Pems::authority("self-signed");
    let fixture = Fixture::start(pems.config()).await;
    let client = Client::new(&fixture.url, Some(&pems.path("cert.pem"))).unwrap();
    let login = Login::new(model(), "machine-4".parse().unwrap());
    let session = client.login(&login).await.unwrap_or_else(|e| panic!("{e}"));
    fixture.wait_count(1).await;
    session.close().await;
    // Another certificate of the same kind is not trusted for it.
    let other = Pems::authority("self-signed-other");
    let stranger = Client::new(&fixture.url, Some(&other.path("cert.pem"))).unwrap();
    assert!(stranger.login(&login).await.is_err());
    fixture.wait_count(0).await;
    fixture.stop().await;
}

fn tls_problem(config: &AgentsConfig) -> (String, String) {
    match Door::bind(config) {
        Err(DoorError::Tls(problem)) => (problem.key.to_owned(), problem.reason),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("bound with bad TLS files"),
    }
}

#[actix_web::test]
async fn unusable_tls_files_are_refused_naming_the_key() {
    let (pems, _) = Pems::new("bad");
    let (other, _) = Pems::new("other");
    std::fs::write(pems.path("empty.pem"), "").unwrap();
    std::fs::write(
        pems.path("junk.pem"),
        "-----BEGIN CERTIFICATE-----\nnot base64!\n",
    )
    .unwrap();
    let with = |cert: &Path, key: &Path| {
        config_with(|c| {
            c.tls_cert = Some(cert.to_owned());
            c.tls_key = Some(key.to_owned());
        })
    };
    let (cert, key) = (pems.path("cert.pem"), pems.path("key.pem"));
    for (config, want_key, want) in [
        (
            with(&pems.path("nope.pem"), &key),
            "agents.tls_cert",
            "cannot read",
        ),
        (
            with(&pems.path("empty.pem"), &key),
            "agents.tls_cert",
            "holds no",
        ),
        (
            with(&pems.path("junk.pem"), &key),
            "agents.tls_cert",
            "not a valid PEM",
        ),
        (with(&key, &key), "agents.tls_cert", "holds no"),
        (with(&cert, &cert), "agents.tls_key", "holds no"),
        (
            with(&cert, &pems.path("nope.pem")),
            "agents.tls_key",
            "cannot read",
        ),
        (
            with(&cert, &other.path("key.pem")),
            "agents.tls_key",
            "does not go with the certificate",
        ),
    ] {
        let (key, reason) = tls_problem(&config);
        assert_eq!(key, want_key, "{config:?}: {reason}");
        assert!(reason.starts_with(want), "{config:?}: {reason}");
    }
}

#[test]
fn the_config_check_reads_the_tls_files() {
    let (pems, _) = Pems::new("check");
    let file = pems.path("muster.toml");
    let write = |cert: &str| {
        std::fs::write(
            &file,
            format!(
                "[agents]\ntls_cert = {:?}\ntls_key = {:?}\n",
                pems.path(cert),
                pems.path("key.pem")
            ),
        )
        .unwrap()
    };
    write("cert.pem");
    assert!(musterd::read_config(&file).is_ok());
    write("missing.pem");
    let error = musterd::read_config(&file).unwrap_err();
    assert_eq!(error.exit_code(), 2);
    let text = error.to_string();
    assert!(text.contains("agents.tls_cert = \""), "{text}");
    assert!(text.contains("missing.pem\": cannot read"), "{text}");
}
