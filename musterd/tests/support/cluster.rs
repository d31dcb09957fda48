//! Nodes of a cluster for the tests: `musterd` processes sharing presence
//! over NATS, each on fixed loopback ports (so that one started again is
//! where its agents left it), with short timings (heartbeat 100 ms, down
//! after 600 ms); agents logged in through their doors; and the tables the
//! nodes answer on `/api/presence`, to compare.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ConfigFile;
use super::agents::{Agent, MODEL, login};
use super::daemon::Musterd;
use super::nats::free_port;

/// How often a node says it is alive, in the tests.
pub const HEARTBEAT: Duration = Duration::from_millis(100);

/// How long a silent node has, in the tests.
pub const DOWN_AFTER: Duration = Duration::from_millis(600);

/// How long a model lease lasts unless renewed, in the tests.
pub const LEASE_TTL: Duration = Duration::from_millis(1500);

/// How long the tests' machines wait between polls once settled.
pub const LONG_POLL: Duration = Duration::from_millis(200);

/// How long anything that should happen at once may take on a loaded
/// machine before a test gives up on it.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// One `musterd` of the cluster: `machine-N`.
pub struct Node {
    pub n: u32,
    pub musterd: Option<Musterd>,
    config: ConfigFile,
    pub http: u16,
    pub agents: u16,
}

impl Node {
    /// Starts `machine-N` on NATS at `urls`.
    pub fn start(test: &str, n: u32, urls: &[String]) -> Node {
        Node::start_with(test, n, urls, "", "")
    }

    /// Starts `machine-N` on NATS at `urls`, with `cluster` (more keys of
    /// `[cluster]`) and `sections` (more sections) in its config.
    pub fn start_with(test: &str, n: u32, urls: &[String], cluster: &str, sections: &str) -> Node {
        Node::start_timed(test, n, urls, cluster, sections, DOWN_AFTER)
    }

    /// [`Node::start_with`], a peer silent for `down_after` held down.
    pub fn start_timed(
        test: &str,
        n: u32,
        urls: &[String],
        cluster: &str,
        sections: &str,
        down_after: Duration,
    ) -> Node {
        Node::start_configured(test, n, urls, cluster, sections, "", down_after)
    }

    /// [`Node::start_timed`] with `door` (more keys of `[agents]`).
    pub fn start_configured(
        test: &str,
        n: u32,
        urls: &[String],
        cluster: &str,
        sections: &str,
        door: &str,
        down_after: Duration,
    ) -> Node {
        // Two ports asked one after the other may be the same one.
        let http = free_port();
        let agents = std::iter::repeat_with(free_port)
            .find(|port| *port != http)
            .unwrap();
        let urls: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
        let text = format!(
            "{sections}\n[http]\nlisten = \"127.0.0.1:{http}\"\n\
             [agents]\nlisten = \"127.0.0.1:{agents}\"\nserver = \"machine-{n}\"\n{door}\n\
             [cluster]\nname = \"test\"\nnats = [{}]\nheartbeat = \"{}ms\"\ndown_after = \"{}ms\"\n{cluster}\n",
            urls.join(", "),
            HEARTBEAT.as_millis(),
            down_after.as_millis(),
        );
        let config = ConfigFile::new(&format!("{test}-{n}"), &text);
        let mut node = Node {
            n,
            musterd: None,
            config,
            http,
            agents,
        };
        node.run();
        node
    }

    /// Starts `machine-N` on NATS at `urls` with the simulated `models`,
    /// two machines each (the same on every node, whose simulations share
    /// one seed), polled every [`LONG_POLL`] once settled, and leases of
    /// [`LEASE_TTL`].
    pub fn with_models(test: &str, n: u32, urls: &[String], models: &[&str]) -> Node {
        Node::with_models_timed(test, n, urls, models, DOWN_AFTER, LEASE_TTL)
    }

    /// [`Node::with_models`] with `door` (more keys of `[agents]`).
    pub fn with_models_door(
        test: &str,
        n: u32,
        urls: &[String],
        models: &[&str],
        door: &str,
    ) -> Node {
        Node::with_models_configured(test, n, urls, models, door, DOWN_AFTER, LEASE_TTL)
    }

    /// [`Node::with_models`] with `down_after` and `lease_ttl` of its own.
    pub fn with_models_timed(
        test: &str,
        n: u32,
        urls: &[String],
        models: &[&str],
        down_after: Duration,
        lease_ttl: Duration,
    ) -> Node {
        Node::with_models_configured(test, n, urls, models, "", down_after, lease_ttl)
    }

    fn with_models_configured(
        test: &str,
        n: u32,
        urls: &[String],
        models: &[&str],
        door: &str,
        down_after: Duration,
        lease_ttl: Duration,
    ) -> Node {
        let mut sections = String::from(
            "[backend]\nmachines = 2\n\
             [backend.sim]\npending_for = \"0s\"\nallocating_for = \"0s\"\naddress_delay = \"0s\"\n",
        );
        // Calls paced as a cloud would (five a second) would leave a model
        // unpolled for longer than the windows the tests watch.
        sections.push_str("[gateway]\ncalls_per_second = 1000.0\nburst = 100\n");
        sections.push_str(&format!(
            "[machines.poll]\nshort_poll = \"100ms\"\nshort_poll_cap = \"{0}ms\"\nlong_poll = \"{0}ms\"\n",
            LONG_POLL.as_millis()
        ));
        for uuid in models {
            sections.push_str(&format!(
                "[[models]]\nuuid = \"{uuid}\"\ncloud = \"sim\"\nregion = \"local\"\n"
            ));
        }
        let cluster = format!("lease_ttl = \"{}ms\"\n", lease_ttl.as_millis());
        Node::start_configured(test, n, urls, &cluster, &sections, door, down_after)
    }

    /// Starts the daemon (again, on the same ports).
    pub fn run(&mut self) {
        self.run_with(&[]);
    }

    /// Starts the daemon (again, on the same ports) with `flags` before
    /// `run` (`--log-level debug`).
    pub fn run_with(&mut self, flags: &[&str]) {
        assert!(self.musterd.is_none(), "machine-{} runs already", self.n);
        let mut args = flags.to_vec();
        args.extend(["run", "--config", self.config.path()]);
        self.musterd = Some(Musterd::start(&args));
    }

    /// SIGTERM, and its exit code: a graceful stop, with its farewell.
    pub fn stop(&mut self) -> Option<i32> {
        self.musterd
            .take()
            .and_then(|mut musterd| musterd.terminate())
    }

    /// SIGKILL: no goodbye to anyone.
    pub fn kill(&mut self) {
        if let Some(mut musterd) = self.musterd.take() {
            let _ = musterd.process.0.kill();
            let _ = musterd.process.0.wait();
        }
    }

    /// `ws://127.0.0.1:PORT/agent`.
    pub fn door(&self) -> String {
        format!("ws://127.0.0.1:{}/agent", self.agents)
    }

    /// `machine-N`.
    pub fn server(&self) -> String {
        format!("machine-{}", self.n)
    }

    fn musterd(&self) -> &Musterd {
        self.musterd.as_ref().expect("the node runs")
    }

    /// `GET path` as JSON.
    pub fn get(&self, path: &str) -> Value {
        self.musterd().get(path)
    }

    /// Every connection of the test's model this node answers for.
    pub fn table(&self) -> Table {
        let answer = self.get(&format!("/api/presence?model={MODEL}"));
        let mut table = Table::new();
        for c in answer["connections"].as_array().into_iter().flatten() {
            let key = (
                c["server"].as_str().unwrap().to_owned(),
                c["connection_id"].as_u64().unwrap(),
            );
            let value = (
                c["agent"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            );
            table.insert(key, value);
        }
        table
    }

    /// The bridge's report, from `/api/report`.
    pub fn bridge(&self) -> Value {
        let report = self.get("/api/report");
        bridge_of(&report).unwrap_or_else(|| panic!("no cluster child in {report}"))
    }

    /// The bridge's report of one peer.
    pub fn peer(&self, server: &str) -> Value {
        let bridge = self.bridge();
        bridge["peers"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|p| p["server"] == server)
            .cloned()
            .unwrap_or(Value::Null)
    }
}

/// The bridge's report inside a tree's report.
pub fn bridge_of(report: &Value) -> Option<Value> {
    let presence = super::child(report, "presence")?;
    presence["report"]["children"]
        .as_array()?
        .iter()
        .find(|c| c["name"] == "cluster")
        .map(|c| c["report"].clone())
}

/// Connections by (server, id): (agent, status).
pub type Table = BTreeMap<(String, u64), (String, String)>;

/// Agents logged in through the doors, by (server, connection id).
#[derive(Default)]
pub struct Agents {
    open: BTreeMap<(String, u64), (String, Agent)>,
}

impl Agents {
    /// Logs in `unit-app-FIRST` to `unit-app-FIRST+COUNT-1` at `node`.
    pub async fn login(&mut self, node: &Node, first: u64, count: u64) {
        for n in first..first + count {
            let agent = format!("unit-app-{n}");
            let (ws, id) = login(&node.door(), &agent).await;
            self.open.insert((node.server(), id), (agent, ws));
        }
    }

    /// Closes the agents of `server` whose ids `pick` chooses; answers how
    /// many.
    pub fn close(&mut self, server: &str, mut pick: impl FnMut(u64) -> bool) -> usize {
        let closing: Vec<(String, u64)> = self
            .open
            .keys()
            .filter(|(s, id)| s == server && pick(*id))
            .cloned()
            .collect();
        for key in &closing {
            // Dropping the socket ends the TCP connection: the door records
            // the disconnect.
            self.open.remove(key);
        }
        closing.len()
    }

    /// Forgets the agents of `server` (its process died with them), and
    /// answers their names, to log them in again.
    pub fn lost(&mut self, server: &str) -> Vec<String> {
        let lost: Vec<(String, u64)> = self
            .open
            .keys()
            .filter(|(s, _)| s == server)
            .cloned()
            .collect();
        lost.into_iter()
            .filter_map(|key| self.open.remove(&key).map(|(agent, _)| agent))
            .collect()
    }

    /// Logs `agents` in again at `node`.
    pub async fn relogin(&mut self, node: &Node, agents: Vec<String>) {
        for agent in agents {
            let (ws, id) = login(&node.door(), &agent).await;
            self.open.insert((node.server(), id), (agent, ws));
        }
    }

    /// The table every node should answer: every open agent alive.
    pub fn truth(&self) -> Table {
        self.open
            .iter()
            .map(|(key, (agent, _))| (key.clone(), (agent.clone(), "alive".to_owned())))
            .collect()
    }

    /// How many are open.
    pub fn len(&self) -> usize {
        self.open.len()
    }
}

/// Polls (bounded by [`PATIENCE`]) until every running node answers
/// `want`; answers how long it took.
pub fn converge(nodes: &[&Node], want: &Table) -> Duration {
    let started = Instant::now();
    let mut last = Vec::new();
    while started.elapsed() < PATIENCE {
        last = nodes.iter().map(|node| node.table()).collect();
        if last.iter().all(|table| table == want) {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let reports: Vec<Value> = nodes.iter().map(|node| node.bridge()).collect();
    panic!(
        "the nodes did not converge within {PATIENCE:?}\nwant {want:?}\ngot {last:#?}\nbridges {reports:#?}"
    );
}

/// Polls (bounded by [`PATIENCE`]) until `ready` holds; answers how long
/// it took.
pub fn wait_until(what: &str, mut ready: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while started.elapsed() < PATIENCE {
        if ready() {
            return started.elapsed();
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not within {PATIENCE:?}");
}

/// `table` with the connections of `server` marked `status`.
pub fn marked(table: &Table, server: &str, status: &str) -> Table {
    table
        .iter()
        .map(|((s, id), (agent, st))| {
            let st = if s == server { status } else { st };
            ((s.clone(), *id), (agent.clone(), st.to_owned()))
        })
        .collect()
}

/// The page at `url` as headless Chromium renders it. A test that calls
/// it is marked `#[cfg_attr(missing_chromium, ignore = "needs chromium")]`.
pub fn rendered(url: &str) -> String {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("chromium is needed (.ci/run installs it)");
    let profile =
        std::env::temp_dir().join(format!("musterd-cluster-chromium-{}", std::process::id()));
    let mut child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(["--dump-dom", url])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&profile);
    reader.join().unwrap()
}

/// The `<tr>` of the page whose `attribute` is `value`.
pub fn row<'a>(dom: &'a str, attribute: &str, value: &str) -> &'a str {
    let marker = format!("{attribute}=\"{value}\"");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no row {marker} in the page"));
    &dom[at..at + dom[at..].find("</tr>").unwrap()]
}
