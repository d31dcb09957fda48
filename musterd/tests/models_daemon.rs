//! `musterd run` with `[[models]]`, as an operator meets it: the registry
//! kept in a file next to the config survives a restart and is answered at
//! once, and the write API is refused off loopback without a token. These
//! start real processes; each waits a few seconds at most.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{Process, musterd, spawn, text, wait_for_line};

const MODEL: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";

/// A folder of its own for a test's config and store, removed when dropped.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir =
            std::env::temp_dir().join(format!("musterd-models-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Folder(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A request to `port` with `body`; the status code and the body as JSON
/// (`null` when empty).
fn request(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
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
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head[9..12].parse().unwrap();
    let json = if body.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
    };
    (status, json)
}

/// `musterd run` on `config`, and the port of its HTTP surface.
fn run(config: &Path) -> (Process, u16) {
    let (mut process, _stderr) = spawn(&["run", "--config", config.to_str().unwrap()]);
    let stdout = process.0.stdout.take().unwrap();
    let lines = support::lines(stdout);
    let seen = wait_for_line(&lines, "dashboard: http://", Duration::from_secs(30));
    let line = seen.last().unwrap();
    let address = line
        .trim_start_matches("dashboard: http://")
        .trim_end_matches('/');
    let port = address.rsplit(':').next().unwrap().parse().unwrap();
    (process, port)
}

/// Machine `tag` of the model, as `GET /api/models/{uuid}/machines` has it.
fn machine(port: u16, tag: &str) -> Option<Value> {
    let (status, list) = request(port, "GET", &format!("/api/models/{MODEL}/machines"), "");
    assert_eq!(status, 200, "{list}");
    list["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["tag"] == tag)
        .cloned()
}

#[test]
fn the_registry_survives_a_restart_and_is_answered_at_once() {
    let folder = Folder::new("restart");
    // One simulated model, whose simulation provisions two machines and
    // whose instances run at once.
    let config = folder.write(
        "muster.toml",
        &format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\n\
             [store]\npath = \"registry.db\"\n\
             [backend]\nmachines = 2\n\
             [backend.sim]\npending_for = \"0s\"\nallocating_for = \"0s\"\naddress_delay = \"0s\"\n\
             [machines.poll]\nshort_poll = \"100ms\"\nshort_poll_cap = \"1s\"\nlong_poll = \"15m\"\n\
             [[models]]\nuuid = \"{MODEL}\"\nname = \"test\"\ncloud = \"sim\"\nregion = \"local\"\n"
        ),
    );
    let (mut daemon, port) = run(&config);
    // A client registers a machine on the first simulated instance.
    let (status, body) = request(
        port,
        "PUT",
        &format!("/api/models/{MODEL}/machines/7"),
        r#"{"instance_id": "i-0-00000001", "agent_status": "down"}"#,
    );
    assert_eq!(status, 201, "{body}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let seen = loop {
        if let Some(m) = machine(port, "machine-7")
            && m["instance_status"]["status"] == "running"
            && !m["addresses"].as_array().unwrap().is_empty()
        {
            break m;
        }
        assert!(
            Instant::now() < deadline,
            "never running: {:?}",
            machine(port, "machine-7")
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    // The simulation's own machines are registered too.
    assert!(machine(port, "machine-0").is_some());
    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
    assert!(
        folder.0.join("registry.db").exists(),
        "the store is next to the config"
    );

    // Started again, the first answer holds what was recorded.
    let (mut daemon, port) = run(&config);
    let again = machine(port, "machine-7").expect("registered before the restart");
    assert_eq!(again["instance_status"], seen["instance_status"]);
    assert_eq!(again["addresses"], seen["addresses"]);
    assert_eq!(again["agent_status"], "down");
    assert_eq!(again["life"], "alive");
    // Its poller resumes in the short phase (the agent is down: it stays
    // there) and polls it again.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let m = machine(port, "machine-7").unwrap();
        if m["phase"] == "short" && m["polls"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "not polled again: {m}");
        std::thread::sleep(Duration::from_millis(100));
    }
    daemon.terminate();
    assert_eq!(daemon.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn the_write_api_is_refused_off_loopback_without_a_token() {
    let folder = Folder::new("open");
    let config = folder.write(
        "muster.toml",
        &format!(
            "[http]\nlisten = \"0.0.0.0:0\"\n\
             [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n"
        ),
    );
    for command in [
        vec!["check-config", config.to_str().unwrap()],
        vec!["run", "--config", config.to_str().unwrap()],
    ] {
        let out = musterd(&command);
        assert_eq!(out.status.code(), Some(2), "{command:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(
                "http.token: must be set: with [[models]] the HTTP surface takes writes, and \
                 http.listen = \"0.0.0.0:0\" is not a loopback address"
            ),
            "{err}"
        );
    }
    // With a token it runs; nothing was opened for the refused runs.
    assert!(!folder.0.join("muster.db").exists());
    let config = folder.write(
        "token.toml",
        &format!(
            "[http]\nlisten = \"0.0.0.0:0\"\ntoken = \"t0ken\"\n\
             [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n"
        ),
    );
    let out = musterd(&["check-config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[cfg(not(feature = "ec2"))]
#[test]
fn a_model_on_ec2_says_how_to_build_a_musterd_that_speaks_it() {
    let folder = Folder::new("ec2");
    let config = folder.write(
        "muster.toml",
        &format!("[[models]]\nuuid = \"{MODEL}\"\ncloud = \"ec2\"\nregion = \"us-east-1\"\n"),
    );
    let out = musterd(&["check-config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("models[0].cloud = \"ec2\": this musterd was built without EC2; build one that speaks it with `cargo build --release -p musterd --features ec2`"),
        "{err}"
    );
}

#[cfg(not(feature = "openstack"))]
#[test]
fn a_model_on_openstack_says_how_to_build_a_musterd_that_speaks_it() {
    let folder = Folder::new("openstack");
    let config = folder.write(
        "muster.toml",
        &format!(
            "[[models]]\nuuid = \"{MODEL}\"\ncloud = \"openstack\"\nregion = \"RegionOne\"\n\
             os_cloud = \"mycloud\"\n"
        ),
    );
    let refusal = "models[0].cloud = \"openstack\": this musterd was built without OpenStack; \
                   build one that speaks it with `cargo build --release -p musterd --features openstack`";
    for args in [
        ["check-config", config.to_str().unwrap()].as_slice(),
        ["run", "--config", config.to_str().unwrap()].as_slice(),
    ] {
        let out = musterd(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.contains(refusal), "{args:?}: {err}");
    }
}
