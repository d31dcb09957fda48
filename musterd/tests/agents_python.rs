//! The door driven by a client library nobody here wrote, as an agent in
//! another language would: Python's `websockets` package (its synchronous
//! client) against a real `musterd run`. It logs in, sends a frame and a
//! ping, is seen on `/api/presence`, and closes; a bad login and a wrong
//! token are refused with their close codes.
//!
//! Without Python or the package the test is skipped, unless `CI=true`,
//! where it fails: `.ci/run` installs the package first.

mod support;

use std::io::{BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::agents::MODEL;
use support::daemon::Musterd;
use support::{ConfigFile, Process, lines};

const AGENT: &str = r#"
import json, sys
import websockets
from websockets.sync.client import connect
from websockets.exceptions import ConnectionClosed

url, model = sys.argv[1], sys.argv[2]

def say(*words):
    print(*words, flush=True)

def refused(login):
    with connect(url) as ws:
        ws.send(json.dumps(login))
        try:
            ws.recv(timeout=10)
            say("answered")
        except ConnectionClosed as closed:
            say("refused", closed.rcvd.code, closed.rcvd.reason)

refused({"model": model, "agent": "machine-7", "colour": "blue"})
refused({"model": model, "agent": "machine-7"})
with connect(url) as ws:
    ws.send(json.dumps({
        "model": model,
        "agent": "unit-python-0",
        "user_data": "websockets " + websockets.__version__,
        "token": "s3cret",
    }))
    answer = json.loads(ws.recv(timeout=10))
    say("login", answer["connection_id"], answer["server"])
    ws.send(json.dumps({"request": "status"}))
    ws.ping().wait(10)
    say("pong")
    sys.stdin.readline()
say("closed", ws.close_code)
"#;

#[cfg_attr(missing_python_websockets, ignore = "needs Python's websockets")]
#[test]
fn a_python_websockets_agent_logs_in_and_out() {
    let python = "python3";
    let file = ConfigFile::new(
        "python",
        "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\ntoken = \"s3cret\"\n",
    );
    let mut musterd = Musterd::start(&["run", "--config", file.path()]);
    // Killed if the test fails before it ends.
    let mut agent = Process(
        Command::new(python)
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
    let next = |what: &str| {
        said.recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the Python agent said nothing of {what}"))
    };
    assert_eq!(
        next("the bad login"),
        "refused 4400 \"colour\": unknown field; expected model, agent, user_data, controller_agent, token, password"
    );
    assert_eq!(next("the missing token"), "refused 4401 token: missing");
    let login = next("its login");
    let words: Vec<&str> = login.split(' ').collect();
    assert_eq!((words[0], words[2]), ("login", "machine-0"), "{login}");
    assert_eq!(next("its ping"), "pong");
    let presence = musterd.wait_presence(MODEL, 1);
    assert_eq!(
        presence["agents"][0]["agent"], "unit-python-0",
        "{presence}"
    );
    assert_eq!(presence["agents"][0]["status"], "alive", "{presence}");
    assert_eq!(
        presence["connections"][0]["connection_id"].to_string(),
        words[1]
    );
    assert!(
        presence["connections"][0]["user_data"]
            .as_str()
            .unwrap()
            .starts_with("websockets "),
        "{presence}"
    );
    stdin.write_all(b"close\n").unwrap();
    assert_eq!(next("its close"), "closed 1000");
    assert_eq!(agent.wait_exit(Duration::from_secs(20)), Some(0));
    assert_eq!(errors.join().unwrap(), "");
    musterd.wait_presence(MODEL, 0);
    assert_eq!(musterd.terminate(), Some(0));
}
