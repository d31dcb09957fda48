//! The agents' door, in process: a connection is recorded from its login
//! to its end, however it ends, and a bad login or frame is refused with
//! the close code the protocol gives it and leaves nothing recorded.

mod support;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use muster::clock::Clock;
use muster::presence::Status;
use muster_actors::MusterConfig;
use serde_json::json;
use support::agents::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

#[actix_web::test]
async fn a_login_is_alive_on_api_presence_until_the_agent_closes() {
    let fixture = Fixture::start(config()).await;
    let (mut ws, answer) = login_with(
        &fixture.url,
        &login_frame(
            "unit-mysql-0",
            json!({"user_data": "4.0.1", "controller_agent": false}),
        ),
    )
    .await;
    let Answer::In(answer) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(answer["server"], "machine-0");
    let id = answer["connection_id"].as_u64().unwrap();
    let presence = fixture.api_presence().await;
    assert_eq!(presence["count"], 1, "{presence}");
    assert_eq!(
        presence["agents"],
        json!([{"agent": "unit-mysql-0", "status": "alive", "controller": false}])
    );
    let connection = &presence["connections"][0];
    assert_eq!(connection["connection_id"], id);
    assert_eq!(connection["server"], "machine-0");
    assert_eq!(connection["user_data"], "4.0.1");
    ws.close(None).await.unwrap();
    while let Some(Ok(_)) = ws.next().await {}
    fixture.wait_count(0).await;
    let presence = fixture.api_presence().await;
    assert_eq!(presence["count"], 0, "{presence}");
    fixture.stop().await;
}

#[actix_web::test]
async fn a_dropped_socket_is_disconnected() {
    let fixture = Fixture::start(config()).await;
    let (ws, _) = login(&fixture.url, "machine-3").await;
    let (other, _) = login(&fixture.url, "machine-4").await;
    assert_eq!(fixture.count().await, 2);
    // No close frame: the TCP connection just ends.
    drop(ws.into_inner());
    fixture.wait_count(1).await;
    let view = fixture.muster.presence().connections().await.unwrap();
    let left: Vec<String> = view
        .for_model(&model())
        .agents()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(left, ["machine-4"]);
    drop(other);
    fixture.wait_count(0).await;
    fixture.stop().await;
}

#[actix_web::test]
async fn connection_ids_are_never_reused() {
    let fixture = Fixture::start(config()).await;
    let mut seen = std::collections::BTreeSet::new();
    for round in 0..3 {
        let (a, first) = login(&fixture.url, "machine-1").await;
        let (b, second) = login(&fixture.url, "machine-1").await;
        assert!(seen.insert(first) && seen.insert(second), "round {round}");
        // The same agent twice: two connections, one agent.
        assert_eq!(fixture.count().await, 2);
        drop((a, b));
        fixture.wait_count(0).await;
    }
    fixture.stop().await;
}

#[actix_web::test]
async fn an_idle_connection_is_closed_4408_and_forgotten() {
    let fixture = Fixture::start(config()).await;
    let (mut ws, _) = login(&fixture.url, "machine-2").await;
    assert_eq!(fixture.count().await, 1);
    // The agent reads nothing from here on, so it answers no ping. Time
    // moves only when everything waits: the pings at 30s and 60s go
    // unanswered, and at 90s the server closes.
    tokio::time::pause();
    tokio::time::sleep(Duration::from_secs(89)).await;
    assert_eq!(fixture.count().await, 1, "still within idle_timeout");
    // Read while the server waits for the close reply.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (code, reason) = closed(&mut ws).await.unwrap();
    assert_eq!(code, 4408);
    assert_eq!(reason, "idle: nothing received for 1m 30s");
    fixture.wait_count(0).await;
    fixture.stop().await;
}

#[actix_web::test]
async fn an_agent_that_answers_pings_stays() {
    let fixture = Fixture::start(config()).await;
    let (mut ws, _) = login(&fixture.url, "machine-2").await;
    tokio::time::pause();
    // Reading answers the server's pings with pongs, which are activity.
    let read = async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    };
    let waited = tokio::time::timeout(Duration::from_secs(600), read).await;
    assert!(waited.is_err(), "ten minutes of pings and pongs");
    assert_eq!(fixture.count().await, 1);
    fixture.stop().await;
}

/// The last-seen stamp of connection `id`.
async fn last_seen(fixture: &Fixture, id: u64) -> std::time::SystemTime {
    let view = fixture.muster.presence().connections().await.unwrap();
    let value = view
        .values()
        .into_iter()
        .find(|v| v.connection_id == id)
        .expect("recorded");
    assert_eq!(value.status, Status::Alive);
    value.last_seen
}

#[actix_web::test]
async fn every_frame_is_activity_when_nothing_is_coalesced() {
    let fixture = Fixture::start(config_with(|c| c.activity_interval = Duration::ZERO)).await;
    let (mut ws, id) = login(&fixture.url, "unit-wordpress-0").await;
    let start = fixture.clock.now();
    assert_eq!(last_seen(&fixture, id).await, start);
    let second = Duration::from_secs(1);
    for (n, frame) in [
        Message::text("{\"rpc\":1}"),
        Message::binary(vec![1, 2, 3]),
        Message::Pong(Default::default()),
    ]
    .into_iter()
    .enumerate()
    {
        fixture.clock.advance(second);
        ws.send(frame).await.unwrap();
        round_trip(&mut ws).await;
        assert_eq!(
            last_seen(&fixture, id).await,
            start + second * (n as u32 + 1),
            "frame {n}"
        );
    }
    drop(ws);
    fixture.stop().await;
}

#[actix_web::test]
async fn frames_within_the_activity_interval_are_not_reported() {
    let fixture = Fixture::start(config_with(|c| {
        c.activity_interval = Duration::from_secs(3600)
    }))
    .await;
    let (mut ws, id) = login(&fixture.url, "unit-wordpress-0").await;
    let start = fixture.clock.now();
    for _ in 0..50 {
        fixture.clock.advance(Duration::from_secs(1));
        ws.send(Message::text("{\"rpc\":1}")).await.unwrap();
    }
    round_trip(&mut ws).await;
    // Fifty frames within the hour: the login's stamp stands.
    assert_eq!(last_seen(&fixture, id).await, start);
    drop(ws);
    fixture.stop().await;
}

/// Sends `frame` as the login and expects a close with `code` and a reason
/// starting with `reason`.
async fn refused(fixture: &Fixture, frame: Message, code: u16, reason: &str) {
    let before = fixture.total().await;
    let mut ws = open(&fixture.url).await;
    ws.send(frame.clone()).await.unwrap();
    match answer(&mut ws).await {
        Answer::Closed(got, why) => {
            assert_eq!(got, code, "{frame:.60}: {why}");
            assert!(why.starts_with(reason), "{frame:.60}: {why}");
        }
        other => panic!("{frame:.60}: {other:?}"),
    }
    assert_eq!(fixture.total().await, before, "{frame:.60} left a record");
}

#[actix_web::test]
async fn every_bad_login_is_closed_4400_naming_the_field() {
    let fixture = Fixture::start(config()).await;
    let text = |s: String| Message::text(s);
    for (frame, reason) in [
        (text("hello".into()), "login: not JSON"),
        (text("".into()), "login: not JSON"),
        (text("   ".into()), "login: not JSON"),
        (text("[]".into()), "login: not a JSON object"),
        (
            text(json!({"agent": "machine-1"}).to_string()),
            "model: missing",
        ),
        (text(json!({"model": MODEL}).to_string()), "agent: missing"),
        (
            text(json!({"model": "not-a-uuid", "agent": "machine-1"}).to_string()),
            "model: \"not-a-uuid\" is not a model UUID",
        ),
        (
            text(json!({"model": MODEL, "agent": "machine-01"}).to_string()),
            "agent: \"machine-01\" is not an agent tag",
        ),
        (
            text(json!({"model": MODEL, "agent": "user-bob"}).to_string()),
            "agent: \"user-bob\" is not an agent tag",
        ),
        (
            text(login_frame("machine-1", json!({"colour": "blue"}))),
            "\"colour\": unknown field",
        ),
        (
            text(login_frame(
                "machine-1",
                json!({"user_data": "x".repeat(1025)}),
            )),
            "user_data: longer than 1024 bytes",
        ),
        (
            text(login_frame("machine-1", json!({"controller_agent": 1}))),
            "controller_agent: not true or false",
        ),
        (
            Message::binary(login_frame("machine-1", json!({})).into_bytes()),
            "login: expected a text frame",
        ),
    ] {
        refused(&fixture, frame, 4400, reason).await;
    }
    // The door still lets a good login in.
    let (ws, _) = login(&fixture.url, "machine-1").await;
    assert_eq!(fixture.count().await, 1);
    drop(ws);
    fixture.stop().await;
}

#[actix_web::test]
async fn a_missing_or_wrong_token_is_closed_4401() {
    let fixture = Fixture::start(config_with(|c| c.token = Some("s3cret".into()))).await;
    for (extra, reason) in [
        (json!({}), "token: missing"),
        (json!({"token": "s3cre"}), "token: wrong"),
        (json!({"token": "s3cret "}), "token: wrong"),
        (json!({"token": ""}), "token: wrong"),
    ] {
        refused(
            &fixture,
            Message::text(login_frame("machine-1", extra)),
            4401,
            reason,
        )
        .await;
    }
    let (_, answer) = login_with(
        &fixture.url,
        &login_frame("machine-1", json!({"token": "s3cret"})),
    )
    .await;
    assert!(matches!(answer, Answer::In(_)), "{answer:?}");
    assert_eq!(fixture.count().await, 1);
    fixture.stop().await;
}

#[actix_web::test]
async fn no_login_in_time_is_closed_4408() {
    let fixture = Fixture::start(config()).await;
    let mut ws = open(&fixture.url).await;
    tokio::time::pause();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let (code, reason) = closed(&mut ws).await.unwrap();
    assert_eq!((code, reason.as_str()), (4408, "login: none within 10s"));
    // A socket that never even upgrades is dropped at the same deadline.
    let mut silent = TcpStream::connect(fixture.addr()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut rest = Vec::new();
    assert_eq!(silent.read_to_end(&mut rest).await.unwrap(), 0);
    assert_eq!(fixture.total().await, 0);
    fixture.stop().await;
}

#[actix_web::test]
async fn a_frame_over_max_frame_is_closed_1009() {
    let fixture = Fixture::start(config()).await;
    // As the login...
    let huge = "x".repeat(64 * 1024 + 1);
    refused(
        &fixture,
        Message::text(huge),
        1009,
        "frame larger than max_frame",
    )
    .await;
    // ...and later: a megabyte, which the server does not read whole.
    let (mut ws, _) = login(&fixture.url, "machine-1").await;
    assert_eq!(fixture.count().await, 1);
    let _ = ws.send(Message::binary(vec![7u8; 1 << 20])).await;
    let (code, _) = closed(&mut ws).await.unwrap();
    assert_eq!(code, 1009);
    drop(ws);
    fixture.wait_count(0).await;
    // Exactly max_frame is fine.
    let (mut ws, _) = login(&fixture.url, "machine-1").await;
    ws.send(Message::binary(vec![7u8; 64 * 1024]))
        .await
        .unwrap();
    round_trip(&mut ws).await;
    assert_eq!(fixture.count().await, 1);
    drop(ws);
    fixture.stop().await;
}

#[actix_web::test]
async fn presence_not_recorded_is_closed_4503() {
    let fixture = Fixture::start(config()).await;
    let (mut before, _) = login(&fixture.url, "machine-1").await;
    fixture.muster.presence().disable().await.unwrap();
    // A connection open when the host disables presence is closed too: its
    // record was dropped, and it would not be recorded again.
    let (code, reason) = closed(&mut before).await.unwrap();
    assert_eq!(code, 4503, "{reason}");
    refused(
        &fixture,
        Message::text(login_frame("machine-1", json!({}))),
        4503,
        "presence is not being recorded",
    )
    .await;
    fixture.muster.presence().enable().await.unwrap();
    let (ws, _) = login(&fixture.url, "machine-1").await;
    assert_eq!(fixture.count().await, 1);
    drop(ws);
    fixture.stop().await;
}

/// The HTTP status line answered to an upgrade request of `path`.
async fn upgrade_status(addr: std::net::SocketAddr, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 1024];
    let n = tcp.read(&mut answer).await.unwrap();
    String::from_utf8_lossy(&answer[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[actix_web::test]
async fn past_max_connections_the_upgrade_is_answered_503() {
    let fixture = Fixture::start(config_with(|c| c.max_connections = 2)).await;
    let (_logged_in, _) = login(&fixture.url, "machine-1").await;
    // A socket still logging in holds its place too.
    let logging_in = open(&fixture.url).await;
    assert_eq!(
        upgrade_status(fixture.addr(), "/agent").await,
        "HTTP/1.1 503 Service Unavailable"
    );
    assert_eq!(fixture.door.as_ref().unwrap().open(), 2);
    drop(logging_in);
    // Its place is free once the server has seen it go.
    let mut status = String::new();
    for _ in 0..500 {
        status = upgrade_status(fixture.addr(), "/agent").await;
        if status.contains("101") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(status, "HTTP/1.1 101 Switching Protocols");
    assert_eq!(fixture.count().await, 1);
    fixture.stop().await;
}

#[actix_web::test]
async fn other_paths_and_garbage_are_refused_without_harm() {
    let fixture = Fixture::start(config()).await;
    assert_eq!(
        upgrade_status(fixture.addr(), "/").await,
        "HTTP/1.1 404 Not Found"
    );
    assert_eq!(
        upgrade_status(fixture.addr(), "/agents").await,
        "HTTP/1.1 404 Not Found"
    );
    // Not HTTP; megabytes of header; a request that is not an upgrade.
    for junk in [
        b"\x00\x01\x02garbage\r\n\r\n".to_vec(),
        [
            b"GET /agent HTTP/1.1\r\nX: ".as_slice(),
            &vec![b'a'; 4 << 20],
        ]
        .concat(),
        b"GET /agent HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
    ] {
        let mut tcp = TcpStream::connect(fixture.addr()).await.unwrap();
        let _ = tcp.write_all(&junk).await;
        let mut rest = Vec::new();
        // The server ends the connection; a reset is as good as an end.
        let _ = tcp.read_to_end(&mut rest).await;
        assert!(!String::from_utf8_lossy(&rest).contains("101"));
    }
    let (ws, _) = login(&fixture.url, "machine-1").await;
    assert_eq!(fixture.count().await, 1);
    drop(ws);
    fixture.stop().await;
}

#[actix_web::test]
async fn stopping_the_door_closes_every_agent_1001_and_records_it() {
    let mut fixture = Fixture::start(config()).await;
    let mut agents = Vec::new();
    for n in 0..20 {
        agents.push(login(&fixture.url, &format!("machine-{n}")).await.0);
    }
    let mut waiting = open(&fixture.url).await;
    assert_eq!(fixture.count().await, 20);
    let addr = fixture.addr();
    let door = fixture.door.take().unwrap();
    let closing = async {
        let mut codes = Vec::new();
        for ws in &mut agents {
            codes.push(closed(ws).await.unwrap().0);
        }
        codes.push(closed(&mut waiting).await.unwrap().0);
        codes
    };
    let ((), codes) = futures::join!(door.close(), closing);
    assert!(codes.iter().all(|&c| c == 1001), "{codes:?}");
    // Recorded before the tree is told anything.
    assert_eq!(fixture.count().await, 0);
    assert!(TcpStream::connect(addr).await.is_err());
    fixture.stop().await;
}

#[actix_web::test]
async fn what_presence_cannot_take_is_refused_1013_and_never_left_recorded() {
    // A router mailbox of one event: logins arriving together overflow it.
    let mut tree = MusterConfig::default();
    tree.presence.router_mailbox = 1;
    let fixture = Fixture::start_with(tree, config()).await;
    let logins = (0..50).map(|n| {
        let url = fixture.url.clone();
        async move { login_with(&url, &login_frame(&format!("machine-{n}"), json!({}))).await }
    });
    let answers = futures::future::join_all(logins).await;
    let mut open = Vec::new();
    for (ws, answer) in answers {
        match answer {
            Answer::In(_) => open.push(ws),
            Answer::Closed(1013, reason) => {
                assert_eq!(reason, "presence is overloaded; try again later")
            }
            other => panic!("{other:?}"),
        }
    }
    // Every agent told it is in is recorded, and no other.
    fixture.wait_count(open.len()).await;
    // One by one, agents get in (trying again as told).
    while open.len() < 20 {
        let (ws, answer) = login_with(&fixture.url, &login_frame("unit-a-0", json!({}))).await;
        match answer {
            Answer::In(_) => open.push(ws),
            Answer::Closed(1013, _) => {}
            other => panic!("{other:?}"),
        }
    }
    fixture.wait_count(20).await;
    // All leave at once: their disconnects overflow the mailbox too, and
    // are sent again until taken.
    drop(open);
    fixture.wait_count(0).await;
    fixture.stop().await;
}

#[actix_web::test]
async fn the_door_counts_logins_and_disconnects_in_metrics() {
    let fixture = Fixture::start(config()).await;
    let (mut closing, _) = login(&fixture.url, "machine-1").await;
    let (dropping, _) = login(&fixture.url, "machine-2").await;
    let (_staying, _) = login(&fixture.url, "machine-3").await;
    refused(&fixture, Message::text("nope"), 4400, "login: not JSON").await;
    let _waiting = open(&fixture.url).await;
    assert_eq!(fixture.metric("muster_agents_connections").await, 3.0);
    assert_eq!(fixture.metric("muster_agents_sockets").await, 4.0);
    closing.close(None).await.unwrap();
    while let Some(Ok(_)) = closing.next().await {}
    drop(dropping.into_inner());
    fixture.wait_count(1).await;
    for (series, value) in [
        ("muster_agents_connections", 1.0),
        ("muster_agents_logins_total{result=\"ok\"}", 3.0),
        ("muster_agents_logins_total{result=\"4400\"}", 1.0),
        ("muster_agents_disconnects_total{reason=\"closed\"}", 1.0),
        ("muster_agents_disconnects_total{reason=\"dropped\"}", 1.0),
    ] {
        assert_eq!(fixture.metric(series).await, value, "{series}");
    }
    fixture.stop().await;
}

/// A socket upgraded by hand, for frames no WebSocket library would send.
async fn raw_upgrade(addr: std::net::SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(
        b"GET /agent HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        head.push(tcp.read_u8().await.unwrap());
    }
    assert!(head.starts_with(b"HTTP/1.1 101"));
    tcp
}

/// The close code of the server's close frame, read by hand.
async fn raw_close_code(tcp: &mut TcpStream) -> u16 {
    let mut frame = [0u8; 4];
    tcp.read_exact(&mut frame).await.unwrap();
    assert_eq!(frame[0], 0x88, "a close frame");
    u16::from_be_bytes([frame[2], frame[3]])
}

#[actix_web::test]
async fn frames_that_break_the_protocol_are_closed_1002_and_1007() {
    let fixture = Fixture::start(config()).await;
    // A text frame that is not UTF-8 (masked with zeros).
    let mut tcp = raw_upgrade(fixture.addr()).await;
    tcp.write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1007);
    // An unmasked frame from a client.
    let mut tcp = raw_upgrade(fixture.addr()).await;
    tcp.write_all(&[0x81, 0x02, b'{', b'}']).await.unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1002);
    // A frame header claiming an exabyte.
    let mut tcp = raw_upgrade(fixture.addr()).await;
    tcp.write_all(&[
        0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0,
    ])
    .await
    .unwrap();
    assert_eq!(raw_close_code(&mut tcp).await, 1009);
    assert_eq!(fixture.total().await, 0);
    let (ws, _) = login(&fixture.url, "machine-1").await;
    assert_eq!(fixture.count().await, 1);
    drop(ws);
    fixture.stop().await;
}
