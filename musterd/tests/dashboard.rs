//! The dashboard in a real browser: a running `musterd demo` (loopback, a
//! free port, 20x speed, a token) and headless Chromium, which loads the
//! page with the token in its address (and what to show in its
//! `#fragment`), lets its script fetch the API for a few seconds of page
//! time, and dumps the DOM it rendered.
//!
//! Without Chromium the test is skipped, unless `CI=true`, where it fails:
//! `.ci/run` installs Chromium first.

mod support;

use std::cmp::Ordering;
use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use muster_http::lists::natural::natural_cmp;
use support::{MUSTERD, Process, lines};

/// More than two pages of machines.
const MACHINES: usize = 120;
/// Machines on one page of the dashboard.
const PAGE: usize = 50;
const TOKEN: &str = "t0ken";

fn chromium() -> PathBuf {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("chromium is needed (.ci/run installs it)")
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
    // Digits with thousands separators.
    dom[at + marker.len()..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == ',')
        .filter(char::is_ascii_digit)
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

/// The body of `GET path` on `port`, with the bearer token.
fn http_get(port: u16, path: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    body.to_owned()
}

/// Waits until the daemon's history holds `n` samples.
fn wait_for_samples(port: u16, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let history: serde_json::Value =
            serde_json::from_str(&http_get(port, "/api/history")).unwrap();
        if history["samples"].as_array().unwrap().len() >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} samples: {history}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The tags of the machine rows, in the order shown.
fn machine_rows(dom: &str) -> Vec<String> {
    let marker = "<tr class=\"machine\" data-machine=\"";
    dom.split(marker)
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect()
}

/// The value of attribute `name` in the opening tag `tag`.
fn tag_attribute(tag: &str, name: &str) -> String {
    let marker = format!(" {name}=\"");
    let start = tag
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {tag}"))
        + marker.len();
    tag[start..start + tag[start..].find('"').unwrap()].to_owned()
}

/// The value of attribute `name` on the element whose `id` is `id`.
fn attribute(dom: &str, id: &str, name: &str) -> String {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let start = dom[..at].rfind('<').unwrap();
    tag_attribute(&dom[start..at + dom[at..].find('>').unwrap()], name)
}

/// The chart `id` as drawn: the points it says it drew, and its lines'
/// path data.
fn chart(dom: &str, id: &str) -> (usize, Vec<String>) {
    let at = dom
        .find(&format!("data-chart=\"{id}\""))
        .unwrap_or_else(|| panic!("chart {id} not drawn"));
    let start = dom[..at].rfind("<svg").unwrap();
    let svg = &dom[start..start + dom[start..].find("</svg>").unwrap()];
    let points = tag_attribute(&svg[..svg.find('>').unwrap()], "data-points");
    let lines = svg
        .split("<path class=\"line\" d=\"")
        .skip(1)
        .map(|rest| rest[..rest.find('"').unwrap()].to_owned())
        .collect();
    (points.parse().unwrap(), lines)
}

/// The time labels of the chart `id`'s axis, in order.
fn axis_labels(dom: &str, id: &str) -> Vec<String> {
    let at = dom
        .find(&format!("data-chart=\"{id}\""))
        .unwrap_or_else(|| panic!("no chart {id}"));
    let start = dom[..at].rfind("<svg").unwrap();
    let svg = &dom[start..start + dom[start..].find("</svg>").unwrap()];
    svg.split("class=\"tick axis-time\"")
        .skip(1)
        .map(|rest| {
            let text = &rest[rest.find('>').unwrap() + 1..];
            text[..text.find('<').unwrap()].to_owned()
        })
        .collect()
}

/// Tags in natural order; machines of several models may share one.
fn assert_natural(tags: &[String]) {
    for pair in tags.windows(2) {
        assert_ne!(
            natural_cmp(&pair[0], &pair[1]),
            Ordering::Greater,
            "{} before {} in {tags:?}",
            pair[0],
            pair[1]
        );
    }
}

#[cfg_attr(missing_chromium, ignore = "needs chromium")]
#[test]
fn the_dashboard_shows_the_tree_agents_and_machines() {
    let browser = chromium();
    let mut demo = Process::spawn(
        Command::new(MUSTERD)
            .args(["demo", "--port", "0", "--speed", "20", "--duration", "60s"])
            .args(["--agents-port", "0"])
            .args(["--machines", &MACHINES.to_string(), "--agents", "150"])
            .args(["--token", TOKEN])
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

    // Three samples, so that every rate chart has two points to join.
    let port: u16 = url["http://127.0.0.1:".len()..url.rfind('/').unwrap()]
        .parse()
        .unwrap();
    wait_for_samples(port, 3);

    let profile = std::env::temp_dir().join(format!("musterd-chromium-{}", std::process::id()));
    let dom = dump_dom(&browser, &url, &profile);

    assert!(dom.contains("id=\"conn\" class=\"badge ok\">live"), "{dom}");
    // The charts of the history, each drawn from the samples the daemon
    // kept before the page was opened.
    for id in ["agents", "machines", "calls", "errors", "mailboxes"] {
        let (points, lines) = chart(&dom, id);
        assert!(points >= 2, "chart {id}: {points} points");
        assert!(
            lines.iter().any(|d| d.starts_with('M') && d.contains('L')),
            "chart {id} joins no two points: {lines:?}"
        );
    }
    let (points, _) = chart(&dom, "restarts");
    assert!(points >= 2, "restarts: {points} points");
    // Each chart's time axis: a few seconds of history, labelled to the
    // second, no label twice.
    for id in [
        "agents",
        "machines",
        "calls",
        "errors",
        "restarts",
        "mailboxes",
    ] {
        let labels = axis_labels(&dom, id);
        assert!(!labels.is_empty(), "chart {id}: no time label");
        let mut distinct = labels.clone();
        distinct.dedup();
        assert_eq!(distinct, labels, "chart {id} repeats a time label");
        assert!(
            labels.iter().all(|l| l.len() == "19:31:05".len()),
            "chart {id}: {labels:?}"
        );
    }
    // The supervision tree, with each actor's state.
    for actor in [
        "musterd",
        "muster",
        "history",
        "http",
        "door",
        "gateways",
        "sim-controller",
        "sim-workloads",
        "presence",
        "router",
        "models",
        "watcher",
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
    // Each model by its name, as the machines table names it.
    for model in ["controller", "workload-1", "workload-2", "workload-3"] {
        assert!(
            dom.contains(&format!("data-name=\"{model}\">{model}</td>")),
            "agents by status do not name {model}"
        );
    }
    // Machines by phase, with their addresses: every machine counted, one
    // page of them shown, in natural order.
    let phases = total(&dom, "short") + total(&dom, "long") + total(&dom, "manual");
    assert!(phases >= MACHINES, "{phases}");
    assert!(total(&dom, "long") > 0);
    // Each of the four models has a machine-0, named by its model.
    let first_page = machine_rows(&dom);
    assert_eq!(first_page.len(), PAGE, "{first_page:?}");
    assert_eq!(&first_page[..4], ["machine-0"; 4]);
    assert_natural(&first_page);
    for model in ["controller", "workload-1", "workload-2", "workload-3"] {
        assert!(
            dom.contains(&format!(">{model}</td>")),
            "no machine of {model}"
        );
    }
    assert_eq!(attribute(&dom, "machines-pager", "data-offset"), "0");
    let matched: usize = attribute(&dom, "machines-pager", "data-matched")
        .parse()
        .unwrap();
    assert!(matched >= MACHINES, "{matched}");
    assert!(
        dom.contains("<td>running</td>"),
        "no running instance shown"
    );
    assert!(dom.contains("10.0."), "no address shown");

    // The second page, asked for in the address's fragment: the next
    // machines in natural order (a machine that dies meanwhile only moves
    // later ones forward; its replacement is numbered after all).
    let dom = dump_dom(&browser, &format!("{url}#machines-page=2"), &profile);
    let second_page = machine_rows(&dom);
    assert_eq!(second_page.len(), PAGE, "{second_page:?}");
    assert_natural(&second_page);
    assert_eq!(attribute(&dom, "machines-pager", "data-offset"), "50");
    assert_ne!(
        natural_cmp(&second_page[0], first_page.last().unwrap()),
        Ordering::Less,
        "{second_page:?} after {first_page:?}"
    );

    // A filter and a phase: only machines whose tag holds the text.
    let dom = dump_dom(
        &browser,
        &format!("{url}#machines-filter=machine-1&phase=long"),
        &profile,
    );
    let _ = std::fs::remove_dir_all(&profile);
    let filtered = machine_rows(&dom);
    assert!(!filtered.is_empty());
    assert!(
        filtered.iter().all(|tag| tag.starts_with("machine-1")),
        "{filtered:?}"
    );
    assert_natural(&filtered);
    assert_eq!(
        dom.matches("<td class=\"long\">long</td>").count(),
        filtered.len()
    );

    // SIGTERM stops the demo cleanly.
    demo.terminate();
    assert_eq!(demo.wait_exit(Duration::from_secs(10)), Some(0));
}
