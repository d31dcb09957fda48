//! NATS servers for the tests: Debian's `nats-server`, with JetStream, on
//! free loopback ports and a temporary store directory each, stopped (and
//! the store removed) when dropped. One server, or three routed into one
//! NATS cluster; each can be killed and started again on the same ports
//! and store.
//!
//! A test that needs `nats-server` is marked
//! `#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]`: it is
//! ignored where the server is missing, and fails under `CI=true`
//! (`.ci/run` installs the package).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian puts the server, and the name to find on `PATH`.
const CANDIDATES: [&str; 3] = [
    "nats-server",
    "/usr/sbin/nats-server",
    "/usr/bin/nats-server",
];

/// How long a server has to start answering.
const READY_WITHIN: Duration = Duration::from_secs(15);

/// The `nats-server` program, if there is one. Under `CI=true` its
/// absence fails the test; elsewhere it prints why the test is skipped.
pub fn program(test: &str) -> PathBuf {
    for candidate in CANDIDATES {
        let runs = Command::new(candidate)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if runs {
            return candidate.into();
        }
    }
    // Tests that need it are ignored where it is missing (tests/tools/build.rs);
    // under CI=true they run, and fail here.
    panic!("{test}: nats-server is needed (.ci/run installs Debian's package)");
}

/// A free loopback port (free when asked; the server binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One `nats-server`, killed when dropped.
pub struct NatsServer {
    program: PathBuf,
    /// Its name in a NATS cluster, and in its store.
    pub name: String,
    /// The client port.
    pub port: u16,
    /// The monitoring port (`/varz`, `/routez`).
    pub monitor: u16,
    /// The route port, in a NATS cluster.
    pub route: Option<u16>,
    /// The other servers' route ports, in a NATS cluster.
    pub routes: Vec<u16>,
    store: PathBuf,
    child: Option<Child>,
    log: PathBuf,
}

impl NatsServer {
    /// One server with JetStream; panics without
    /// `nats-server`.
    pub fn start(test: &str) -> NatsServer {
        let program = program(test);
        let mut server = NatsServer::new(program, test, "n0", None, Vec::new());
        server.run();
        server
    }

    /// Three servers routed into one NATS cluster, JetStream on each, or
    /// `None` (the test is skipped) without `nats-server`. Answers once
    /// every server has its two routes.
    pub fn cluster(test: &str) -> Vec<NatsServer> {
        let program = program(test);
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let mut servers: Vec<NatsServer> = (0..3)
            .map(|n| {
                let others = routes
                    .iter()
                    .enumerate()
                    .filter(|(m, _)| *m != n)
                    .map(|(_, port)| *port)
                    .collect();
                NatsServer::new(
                    program.clone(),
                    test,
                    &format!("n{n}"),
                    Some(routes[n]),
                    others,
                )
            })
            .collect();
        for server in &mut servers {
            server.spawn();
        }
        for server in &servers {
            server.wait_ready();
        }
        for server in &servers {
            server.wait_routes(2);
        }
        servers
    }

    fn new(
        program: PathBuf,
        test: &str,
        name: &str,
        route: Option<u16>,
        routes: Vec<u16>,
    ) -> NatsServer {
        let base =
            std::env::temp_dir().join(format!("musterd-nats-{}-{test}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).unwrap();
        NatsServer {
            program,
            name: name.to_owned(),
            port: free_port(),
            monitor: free_port(),
            route,
            routes,
            store: base.join("store"),
            log: base.join("nats.log"),
            child: None,
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Whether it runs now.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} runs already", self.name);
        let mut args: Vec<String> = [
            "-a",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-m",
            &self.monitor.to_string(),
            "-n",
            &self.name,
            "-js",
            "-sd",
            self.store.to_str().unwrap(),
            "-l",
            self.log.to_str().unwrap(),
        ]
        .map(str::to_owned)
        .into();
        if let Some(route) = self.route {
            let routes: Vec<String> = self
                .routes
                .iter()
                .map(|port| format!("nats://127.0.0.1:{port}"))
                .collect();
            args.extend([
                "--cluster_name".into(),
                "muster-test".into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{route}"),
                "--routes".into(),
                routes.join(","),
            ]);
        }
        let child = Command::new(&self.program)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()));
        self.child = Some(child);
    }

    /// Starts it (again, on the same ports and store) and waits until it
    /// answers clients.
    pub fn run(&mut self) {
        self.spawn();
        self.wait_ready();
    }

    /// Waits (bounded) until a client is greeted with `INFO`.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + READY_WITHIN;
        while Instant::now() < deadline {
            if let Ok(tcp) = TcpStream::connect(("127.0.0.1", self.port)) {
                tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                let mut line = String::new();
                if BufReader::new(tcp).read_line(&mut line).is_ok() && line.starts_with("INFO ") {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "nats-server {} did not start: {}",
            self.name,
            self.log_tail()
        );
    }

    /// Waits (bounded) until the server has `n` routes to others.
    pub fn wait_routes(&self, n: u64) {
        let deadline = Instant::now() + READY_WITHIN;
        let mut last = serde_json::Value::Null;
        while Instant::now() < deadline {
            if let Some(routez) = self.monitoring("/routez") {
                if routez["num_routes"].as_u64() >= Some(n) {
                    return;
                }
                last = routez;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server {} has not {n} routes: {last}", self.name);
    }

    /// A monitoring endpoint's JSON, if it answers.
    pub fn monitoring(&self, path: &str) -> Option<serde_json::Value> {
        let mut tcp = TcpStream::connect(("127.0.0.1", self.monitor)).ok()?;
        tcp.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        write!(tcp, "GET {path} HTTP/1.0\r\nHost: nats\r\n\r\n").ok()?;
        let mut answer = String::new();
        tcp.read_to_string(&mut answer).ok()?;
        serde_json::from_str(answer.split("\r\n\r\n").nth(1)?).ok()
    }

    /// SIGKILL, and waits for the process to end.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same ports and store.
    pub fn restart(&mut self) {
        self.kill();
        self.run();
    }

    /// The store directory (JetStream's files).
    pub fn store(&self) -> &Path {
        &self.store
    }

    /// The end of its log, for a failure's message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        log.get(start..).unwrap_or_default().to_owned()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(base) = self.store.parent() {
            let _ = std::fs::remove_dir_all(base);
        }
    }
}
