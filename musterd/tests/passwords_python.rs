//! Agents' own passwords (docs/spec.md §14.4) through a client library
//! nobody here wrote: Python's `websockets` against a real `musterd run`
//! with `auth = "password"`. The right password logs in; a wrong one, none,
//! another agent's, an unknown agent's and a removed one's are all
//! refused with 4401 and the same reason; a rotation closes the live
//! connection with 4401.
//!
//! Without Python or the package the test is skipped, unless `CI=true`,
//! where it fails: `.ci/run` installs the package first.

mod support;

use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::agents::MODEL;
use support::daemon::Musterd;
use support::passwords::{REFUSED, config, port, provision};
use support::shared::request;
use support::{ConfigFile, Process, lines};

const AGENT: &str = r#"
import json, sys
from contextlib import ExitStack
import websockets
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed

url, model = sys.argv[1], sys.argv[2]

def say(*words):
    print(*words, flush=True)

def login(agent, password):
    frame = {"model": model, "agent": agent}
    if password is not None:
        frame["password"] = password
    # Each connection in a context, kept open while the agent runs.
    ws = agents.enter_context(connect(url))
    ws.send(json.dumps(frame))
    try:
        answer = json.loads(ws.recv(timeout=10))
        return ws, answer
    except ConnectionClosed as closed:
        return None, (closed.rcvd.code, closed.rcvd.reason)

# One request per line of stdin: AGENT PASSWORD|- [hold]
agents = ExitStack()
held = None
for line in sys.stdin:
    words = line.split()
    if words[0] == "wait-close":
        try:
            held.recv(timeout=10)
            say("still open")
        except ConnectionClosed as closed:
            say("closed", closed.rcvd.code, closed.rcvd.reason)
        continue
    agent, password = words[0], None if words[1] == "-" else words[1]
    ws, answer = login(agent, password)
    if ws is None:
        say("refused", answer[0], answer[1])
    else:
        say("login", answer["connection_id"])
        if len(words) > 2:
            held = ws
        else:
            ws.close()
"#;

#[cfg_attr(missing_python_websockets, ignore = "needs Python's websockets")]
#[test]
fn a_python_websockets_agent_logs_in_with_its_password_and_nothing_else_does() {
    let store = tempfile::tempdir().unwrap();
    let file = ConfigFile::new(
        "passwords-python",
        config(&store.path().join("m.db"), "max_login_failures = 1000\n"),
    );
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    let http = port(&musterd.http_addr());
    let unit = provision(http, MODEL, "unit-python-0");
    let other = provision(http, MODEL, "machine-2");
    let removed = provision(http, MODEL, "machine-3");
    let path = format!("/api/models/{MODEL}/agents/machine-3/password");
    assert_eq!(request(http, "DELETE", &path, "").0, 204);

    let mut agent = Process(
        Command::new("python3")
            .args(["-c", AGENT, &musterd.agents, MODEL])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let said = lines(agent.0.stdout.take().unwrap());
    let stderr = agent.0.stderr.take().unwrap();
    let mut stdin = agent.0.stdin.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stderr), &mut text);
        text
    });
    let mut ask = move |line: &str| {
        stdin.write_all(format!("{line}\n").as_bytes()).unwrap();
        said.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the Python agent said nothing of {line:?}"))
    };
    let refusal = format!("refused 4401 {REFUSED}");
    for (line, what) in [
        ("unit-python-0 wrong".to_owned(), "a wrong password"),
        ("unit-python-0 -".to_owned(), "no password"),
        (format!("unit-python-0 {other}"), "another agent's"),
        (format!("machine-9 {unit}"), "an unknown agent's"),
        (format!("machine-3 {removed}"), "a removed one"),
    ] {
        assert_eq!(ask(&line), refusal, "{what}");
    }
    let login = ask(&format!("unit-python-0 {unit} hold"));
    assert!(login.starts_with("login "), "{login}");
    musterd.wait_presence(MODEL, 1);

    // Rotated: the held connection is closed with 4401.
    let rotated = provision(http, MODEL, "unit-python-0");
    assert_eq!(
        ask("wait-close"),
        "closed 4401 password changed or removed; log in again"
    );
    assert_eq!(ask(&format!("unit-python-0 {unit}")), refusal);
    assert!(ask(&format!("unit-python-0 {rotated}")).starts_with("login "));
    // Its stdin closed, the agent ends.
    drop(ask);
    assert_eq!(agent.wait_exit(Duration::from_secs(20)), Some(0));
    assert_eq!(errors.join().unwrap(), "");
    assert_eq!(musterd.terminate(), Some(0));
}
