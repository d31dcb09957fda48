//! The dashboard in a real browser: a running `musterd demo` (loopback, a
//! free port, 20x speed, a token) and headless Chromium, which loads the
//! page with the token in its address, lets its script fetch the API for a
//! few seconds of page time, and dumps the DOM it rendered.
//!
//! Without Chromium the test is skipped, unless `CI=true`, where it fails:
//! `.ci/run` installs Chromium first.

mod support;

use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{MUSTERD, Process, lines};

const MACHINES: usize = 40;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// Runs `command`, killing it after `within`; answers its stdout.
fn run_bounded(mut command: Command, within: Duration) -> String {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut text);
        text
    });
    let deadline = Instant::now() + within;
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// The number in `<span ... data-total="label"><b>N</b>`.
fn total(dom: &str, label: &str) -> usize {
    let marker = format!("data-total=\"{label}\"><b>");
    let at = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no {label} total in the page"));
    dom[at + marker.len()..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

fn dump_dom(browser: &Path, url: &str, profile: &Path) -> String {
    let mut command = Command::new(browser);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command.args(["--virtual-time-budget=4000", "--dump-dom", url]);
    run_bounded(command, Duration::from_secs(60))
}

#[test]
fn the_dashboard_shows_the_tree_agents_and_machines() {
    let Some(browser) = chromium() else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium is not installed; .ci/run installs it");
        }
        eprintln!("skipped: chromium is not installed (apt-get install chromium)");
        return;
    };
    let mut demo = Process::spawn(
        Command::new(MUSTERD)
            .args(["demo", "--port", "0", "--speed", "20", "--duration", "60s"])
            .args(["--agents-port", "0"])
            .args(["--machines", &MACHINES.to_string(), "--agents", "150"])
            .args(["--token", "t0ken"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null()),
    );
    let lines = lines(demo.0.stdout.take().unwrap());
    let first = lines.recv_timeout(Duration::from_secs(15)).unwrap();
    let url = first
        .strip_prefix("dashboard: ")
        .unwrap_or_else(|| panic!("first line: {first}"))
        .to_owned();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.ends_with("/?token=t0ken"), "{url}");
    // Wait until every machine is in and some have settled (world time
    // past a minute: three seconds at 20x).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let line = lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("the demo keeps printing");
        if line.starts_with("t=")
            && line.contains(&format!("machines {MACHINES}:"))
            && !line.contains(" long 0 ")
        {
            break;
        }
    }

    let profile = std::env::temp_dir().join(format!("musterd-chromium-{}", std::process::id()));
    let dom = dump_dom(&browser, &url, &profile);
    let _ = std::fs::remove_dir_all(&profile);

    assert!(dom.contains("id=\"conn\" class=\"badge ok\">live"), "{dom}");
    // The supervision tree, with each actor's state.
    for actor in [
        "root", "gateway", "presence", "router", "machines", "watcher",
    ] {
        let row = format!("data-actor=\"{actor}\"");
        let at = dom
            .find(&row)
            .unwrap_or_else(|| panic!("no row for {actor}"));
        let rest = &dom[at..at + dom[at..].find("</tr>").unwrap()];
        assert!(rest.contains(">started<"), "{actor}: {rest}");
    }
    for server in ["machine-0", "machine-1", "machine-2"] {
        assert!(
            dom.contains(&format!("data-actor=\"{server}\"")),
            "{server}"
        );
    }
    // The pollers, one per machine, folded into one row.
    assert!(dom.contains(" dynamic children</td>"), "no pollers row");
    // Agents by status.
    assert!(total(&dom, "alive") > 0);
    let _ = total(&dom, "missing");
    assert!(
        dom.contains("data-status=\"alive\""),
        "no alive agent shown"
    );
    assert!(dom.contains("class=\"model"), "no model row");
    // Machines by phase, with their addresses.
    let phases = total(&dom, "short") + total(&dom, "long") + total(&dom, "manual");
    assert!(phases >= MACHINES, "{phases}");
    assert!(total(&dom, "long") > 0);
    assert!(dom.matches("class=\"machine\"").count() >= MACHINES);
    assert!(dom.contains("data-machine=\"machine-3\""));
    assert!(
        dom.contains("<td>running</td>"),
        "no running instance shown"
    );
    assert!(dom.contains("10.0."), "no address shown");

    // SIGTERM stops the demo cleanly.
    demo.terminate();
    assert_eq!(demo.wait_exit(Duration::from_secs(10)), Some(0));
}
