//! mimic (Rackspace's OpenStack double) as a child process on a free
//! loopback port, stopped on drop, and the calls a test makes to it
//! directly: signing in, making, deleting and changing servers, and making
//! Keystone refuse a user.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::plain_http::request;

/// How long mimic may take to answer its first request.
const STARTUP: Duration = Duration::from_secs(60);

/// The region of mimic's catalog the tests use.
pub const REGION: &str = "ORD";

/// The name of mimic's Nova in its catalog (it also lists its control
/// API under the type `compute`).
pub const COMPUTE: &str = "cloudServersOpenStack";

/// The twistd that runs mimic: `MUSTER_MIMIC_TWISTD`, else the venv that
/// `.ci/run` makes, else `twistd` on the path.
fn twistd() -> PathBuf {
    if let Ok(path) = std::env::var("MUSTER_MIMIC_TWISTD") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from("/opt/muster/mimic/bin/twistd");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("twistd")
}

pub struct Mimic {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

/// A user's view of mimic: its token and its Nova's URLs.
pub struct Account {
    pub token: String,
    /// Nova, `…/v2/TENANT`.
    pub compute: String,
    /// mimic's control API for Nova, `…/v2/TENANT`.
    pub control: String,
}

impl Mimic {
    /// A running mimic. A test that starts one is marked
    /// `#[cfg_attr(missing_mimic, ignore = "needs mimic")]`: ignored where
    /// mimic is missing, failing here under `CI=true`.
    pub fn start() -> Mimic {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let spawned = Command::new(twistd())
            .args(["-n", "--pidfile=", "mimic", "--listen"])
            .arg(format!("tcp:{port}:interface=127.0.0.1"))
            .current_dir(std::env::temp_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
                "mimic is needed (.ci/run installs it: tests/openstack/mimic-requirements.txt)"
            ),
            Err(error) => panic!("cannot start mimic: {error}"),
        };
        let log = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                lines.lock().unwrap().push(line);
            }
        });
        let mut mimic = Mimic {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            log,
        };
        mimic.wait_until_ready();
        mimic
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling mimic") {
                panic!(
                    "mimic exited with {status} before answering:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
            if request(self.addr, "GET", "/", &[], None).is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "mimic did not answer within {STARTUP:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Signs `user` in to `tenant`, directly, as the environ will through
    /// its own address: the same user and tenant see the same servers.
    pub fn account(&self, user: &str, tenant: &str) -> Account {
        let body = json!({"auth": {"passwordCredentials": {"username": user, "password": "any"},
                                   "tenantName": tenant}});
        let answer = self.call("POST", "/identity/v2.0/tokens", None, Some(body));
        let token = answer["access"]["token"]["id"]
            .as_str()
            .expect("a token")
            .to_owned();
        let endpoint = |name: &str| {
            answer["access"]["serviceCatalog"]
                .as_array()
                .expect("a catalog")
                .iter()
                .filter(|s| s["name"] == name)
                .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
                .find(|e| e["region"] == REGION)
                .and_then(|e| e["publicURL"].as_str().map(str::to_owned))
                .unwrap_or_else(|| panic!("mimic's catalog has no {name} in {REGION}: {answer}"))
        };
        Account {
            compute: path_of(&endpoint(COMPUTE)),
            control: path_of(&endpoint("cloudServersBehavior")),
            token,
        }
    }

    /// Makes a server, answering its id; `metadata` steers mimic
    /// (`{"server_building": "3600"}` keeps it in BUILD an hour of mimic's
    /// clock, `{"server_error": "1"}` puts it in ERROR).
    pub fn create_server(&self, account: &Account, name: &str, metadata: Value) -> String {
        let body = json!({"server": {"name": name, "imageRef": "image-1", "flavorRef": "2",
                                     "metadata": metadata}});
        let answer = self.call(
            "POST",
            &format!("{}/servers", account.compute),
            Some(&account.token),
            Some(body),
        );
        answer["server"]["id"]
            .as_str()
            .expect("a server id")
            .to_owned()
    }

    pub fn delete_server(&self, account: &Account, id: &str) {
        let (status, _) = request(
            self.addr,
            "DELETE",
            &format!("{}/servers/{id}", account.compute),
            &[("X-Auth-Token", &account.token)],
            None,
        )
        .expect("mimic answers");
        assert_eq!(status, 204, "deleting {id}");
    }

    /// Sets servers' statuses through mimic's control API.
    pub fn set_status(&self, account: &Account, statuses: &[(&str, &str)]) {
        let status: serde_json::Map<String, Value> = statuses
            .iter()
            .map(|(id, status)| ((*id).to_owned(), json!(status)))
            .collect();
        let (code, _) = request(
            self.addr,
            "POST",
            &format!("{}/attributes/", account.control),
            &[("X-Auth-Token", &account.token)],
            Some(json!({"status": status}).to_string()),
        )
        .expect("mimic answers");
        assert_eq!(code, 201, "setting statuses");
    }

    /// Makes Keystone refuse users whose name matches `pattern` (401, with
    /// `message`); answers the behaviour's id.
    pub fn refuse_users(&self, pattern: &str, message: &str) -> String {
        let body = json!({"criteria": [{"username": pattern}], "name": "fail",
                          "parameters": {"code": 401, "message": message}});
        let answer = self.call(
            "POST",
            "/mimic/v1.1/IdentityControlAPI/behaviors/auth",
            None,
            Some(body),
        );
        answer["id"].as_str().expect("a behaviour id").to_owned()
    }

    /// Ends a refusal made by [`Mimic::refuse_users`].
    pub fn accept_users_again(&self, behaviour: &str) {
        let (status, _) = request(
            self.addr,
            "DELETE",
            &format!("/mimic/v1.1/IdentityControlAPI/behaviors/auth/{behaviour}"),
            &[],
            None,
        )
        .expect("mimic answers");
        assert_eq!(status, 204, "deleting behaviour {behaviour}");
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Value {
        let headers: Vec<(&str, &str)> = token.map(|t| ("X-Auth-Token", t)).into_iter().collect();
        let (status, text) = request(
            self.addr,
            method,
            path,
            &headers,
            body.map(|b| b.to_string()),
        )
        .unwrap_or_else(|| panic!("mimic does not answer {method} {path}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
    }
}

impl Drop for Mimic {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a URL of mimic's (its host is whatever the caller used).
fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/')
        .map_or("/".to_owned(), |at| rest[at..].to_owned())
}
