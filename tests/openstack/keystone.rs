//! A real Keystone (the `keystone` package from PyPI) as a child process:
//! SQLite, `keystone-manage bootstrap`, uWSGI on a free loopback port,
//! stopped on drop, its files in a temporary directory. The test adds what
//! it needs through Keystone's own v3 API.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::plain_http::request;
use crate::support::TempDir;

/// How long Keystone may take to answer its first request.
const STARTUP: Duration = Duration::from_secs(120);

/// The admin's password, set at bootstrap.
const ADMIN_PASSWORD: &str = "muster-admin-5c1d";

/// The region bootstrap makes.
pub const REGION: &str = "RegionOne";

/// The venv holding Keystone and uWSGI: `MUSTER_KEYSTONE_VENV`, else the
/// one `.ci/run` makes.
fn venv() -> PathBuf {
    std::env::var("MUSTER_KEYSTONE_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from("/opt/muster/keystone"))
}

pub struct Keystone {
    child: Child,
    addr: SocketAddr,
    admin_token: String,
    _dir: TempDir,
}

impl Keystone {
    /// A running Keystone. A test that starts one is marked
    /// `#[cfg_attr(missing_keystone, ignore = "needs Keystone")]`: ignored
    /// where Keystone is missing, failing here under `CI=true`.
    pub fn start(token_expiration: Duration) -> Keystone {
        let bin = venv().join("bin");
        assert!(
            bin.join("keystone-manage").is_file() && bin.join("uwsgi").is_file(),
            "Keystone is needed in {} (.ci/run installs it: \
             tests/openstack/keystone-requirements.txt)",
            venv().display()
        );
        let dir = TempDir::new();
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let conf = dir.0.join("keystone.conf");
        let d = dir.0.display();
        std::fs::write(
            &conf,
            format!(
                "[DEFAULT]\nlog_file = {d}/keystone.log\n\
                 [database]\nconnection = sqlite:///{d}/keystone.db\n\
                 [token]\nprovider = fernet\nexpiration = {}\n\
                 [fernet_tokens]\nkey_repository = {d}/fernet-keys\n\
                 [fernet_receipts]\nkey_repository = {d}/fernet-receipts\n\
                 [credential]\nkey_repository = {d}/credential-keys\n",
                token_expiration.as_secs()
            ),
        )
        .expect("writing keystone.conf");
        let manage = |args: &[&str]| {
            let output = Command::new(bin.join("keystone-manage"))
                .arg("--config-file")
                .arg(&conf)
                .args(args)
                .stdin(Stdio::null())
                .output()
                .expect("running keystone-manage");
            assert!(
                output.status.success(),
                "keystone-manage {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        manage(&["db_sync"]);
        for setup in ["fernet_setup", "credential_setup"] {
            manage(&[setup, "--keystone-user", "root", "--keystone-group", "root"]);
        }
        let url = format!("http://{addr}/v3");
        manage(&[
            "bootstrap",
            "--bootstrap-password",
            ADMIN_PASSWORD,
            "--bootstrap-admin-url",
            &url,
            "--bootstrap-public-url",
            &url,
            "--bootstrap-region-id",
            REGION,
        ]);
        let child = Command::new(bin.join("uwsgi"))
            .arg("--http-socket")
            .arg(addr.to_string())
            .args(["--module", "keystone.wsgi.api:application", "--master"])
            .args([
                "--processes",
                "1",
                "--threads",
                "2",
                "--die-on-term",
                "--no-orphans",
            ])
            .arg("--home")
            .arg(venv())
            .env("OS_KEYSTONE_CONFIG_FILES", &conf)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.0.join("uwsgi.log")).expect("a log file"))
            .spawn()
            .expect("starting uwsgi");
        let mut keystone = Keystone {
            child,
            addr,
            admin_token: String::new(),
            _dir: dir,
        };
        keystone.wait_until_ready();
        keystone.admin_token = keystone.sign_in_admin();
        keystone
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(status) = self.child.try_wait().expect("polling uwsgi") {
                panic!(
                    "uwsgi exited with {status} before answering: {}",
                    self.log()
                );
            }
            if request(self.addr, "GET", "/v3", &[], None).is_some_and(|(s, _)| s == 200) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "Keystone did not answer within {STARTUP:?}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._dir.0.join("uwsgi.log")).unwrap_or_default()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn sign_in_admin(&self) -> String {
        let body = json!({"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": ADMIN_PASSWORD}}},
            "scope": {"project": {"name": "admin", "domain": {"id": "default"}}}}});
        let mut stream = std::net::TcpStream::connect(self.addr).expect("keystone answers");
        let text = body.to_string();
        use std::io::{Read, Write};
        write!(
            stream,
            "POST /v3/auth/tokens HTTP/1.0\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{text}",
            self.addr,
            text.len()
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-subject-token")
                    .then(|| value.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no admin token: {answer}"))
    }

    /// Calls Keystone's API as the admin.
    pub fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, text) = request(
            self.addr,
            method,
            path,
            &[("X-Auth-Token", &self.admin_token)],
            body.map(|b| b.to_string()),
        )
        .unwrap_or_else(|| panic!("Keystone does not answer {method} {path}"));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {text}"
        );
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
        }
    }

    /// A user `name` with `password` in a new domain `domain`, a member of
    /// a new project `project` of that domain.
    pub fn add_user(&self, domain: &str, project: &str, name: &str, password: &str) {
        let domain_id = self.admin(
            "POST",
            "/v3/domains",
            Some(json!({"domain": {"name": domain}})),
        )["domain"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let project_id = self.admin(
            "POST",
            "/v3/projects",
            Some(json!({"project": {"name": project, "domain_id": domain_id}})),
        )["project"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let user_id = self.admin(
            "POST",
            "/v3/users",
            Some(json!({"user": {"name": name, "domain_id": domain_id, "password": password}})),
        )["user"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let roles = self.admin("GET", "/v3/roles?name=member", None);
        let role = roles["roles"][0]["id"]
            .as_str()
            .expect("bootstrap's member role");
        self.admin(
            "PUT",
            &format!("/v3/projects/{project_id}/users/{user_id}/roles/{role}"),
            None,
        );
    }

    /// A service of `kind` named `name` with a public endpoint at `url` in
    /// the region.
    pub fn add_service(&self, kind: &str, name: &str, url: &str) {
        let service = self.admin(
            "POST",
            "/v3/services",
            Some(json!({"service": {"type": kind, "name": name}})),
        );
        let id = service["service"]["id"].as_str().unwrap();
        self.admin(
            "POST",
            "/v3/endpoints",
            Some(json!({"endpoint": {"service_id": id, "interface": "public",
                                     "region_id": REGION, "url": url}})),
        );
    }
}

impl Drop for Keystone {
    /// SIGTERM first, so that uWSGI's master stops its worker too; SIGKILL
    /// if it is still there after five seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
