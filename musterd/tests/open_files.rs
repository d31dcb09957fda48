//! `musterd run` under a low open-files limit (docs/spec.md §13.2.9): it
//! warns at start that `agents.max_connections` is more than the limit
//! leaves the door, and `/healthz` still answers while agents' sockets
//! take every descriptor the door may have. Starts the real binary under
//! `ulimit -n`.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::{ConfigFile, MUSTERD, Process, lines, wait_for_line};

#[test]
fn healthz_answers_while_agents_hold_every_socket_the_limit_allows() {
    let config = ConfigFile::new(
        "open-files",
        "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\n",
    );
    let mut process = Process::spawn(
        Command::new("sh")
            .args([
                "-c",
                "ulimit -n 512 && exec \"$0\" run --config \"$1\"",
                MUSTERD,
                config.path(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let out = lines(process.0.stdout.take().unwrap());
    let err = lines(process.0.stderr.take().unwrap());
    let said = wait_for_line(&out, "agents: ws://", Duration::from_secs(30));
    let address = |prefix: &str| -> String {
        let line = said.iter().find(|l| l.starts_with(prefix)).unwrap();
        let rest = line.trim_start_matches(prefix);
        rest.split('/').next().unwrap().to_owned()
    };
    let http = address("dashboard: http://");
    let door = address("agents: ws://");
    let warned = wait_for_line(
        &err,
        "agents.max_connections exceeds what the open-files limit leaves the door",
        Duration::from_secs(5),
    );
    let warning = warned.last().unwrap();
    assert!(warning.contains("door_takes_at_most: 192"), "{warning}");

    // Far more sockets than the limit allows, each left silent, as agents
    // stuck before their login would be.
    let mut held = Vec::new();
    for _ in 0..700 {
        if let Ok(socket) = TcpStream::connect(&door) {
            held.push(socket);
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut health = TcpStream::connect(&http).unwrap();
    health
        .set_read_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    write!(
        health,
        "GET /healthz HTTP/1.1\r\nHost: muster\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let read = health.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{read:?}: {answer:?} with {} sockets opened",
        held.len()
    );
    drop(held);
    process.terminate();
    assert_eq!(process.wait_exit(Duration::from_secs(20)), Some(0));
}
