//! `/metrics` in both text formats a scraper may ask for, each page read by
//! a parser not written here: Prometheus' `promtool check metrics` for the
//! classic format, the Python `prometheus_client` parsers for both. A
//! check whose tool is missing is ignored, and fails under `CI=true`.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use actix_web::http::{Method, StatusCode, header};
use serde_json::Value;
use support::inspector::{call, service};

const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What Prometheus 2 sends by default: OpenMetrics first.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// The page `/metrics` answers to `accept` (none when empty), once the
/// provider has been called so that every family has series, with its
/// content type.
async fn page(accept: &str) -> (String, String) {
    let (app, muster) = service(None).await;
    for _ in 0..250 {
        if muster.gateway().await.unwrap().calls.values().sum::<u64>() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let headers: Vec<(&str, &str)> = if accept.is_empty() {
        vec![]
    } else {
        vec![("accept", accept)]
    };
    let (status, response, text) = call(&app, Method::GET, "/metrics", &headers).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(response.get(header::VARY).unwrap(), "Accept");
    let content_type = response
        .get(header::CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    muster.shutdown();
    (content_type, text)
}

/// The series the test tree has, in both formats.
const SERIES: [&str; 12] = [
    "muster_presence_connections{status=\"alive\"} 2",
    "muster_presence_connections{status=\"missing\"} 1",
    "muster_machines{phase=\"short\"} 1",
    "muster_machines{phase=\"manual\"} 1",
    "muster_machines{phase=\"long\"} 0",
    "muster_mailbox_sent_total{child=",
    "muster_mailbox_handled_total{child=",
    "muster_mailbox_depth{child=",
    "muster_mailbox_depth_high_water{child=",
    "muster_mailbox_handling_seconds_bucket{le=\"+Inf\",child=",
    "muster_provider_calls_total{method=\"instances\"} ",
    "muster_provider_throttles_total ",
];

#[actix_web::test]
async fn the_classic_format_unless_openmetrics_is_asked_for() {
    for accept in ["", "*/*", "text/plain;version=0.0.4", "application/json"] {
        let (content_type, text) = page(accept).await;
        assert_eq!(content_type, CLASSIC, "{accept:?}");
        for series in SERIES {
            assert!(
                text.contains(series),
                "{accept:?}: {series} not in:\n{text}"
            );
        }
        // A counter's HELP and TYPE name its series, as promtool wants.
        for family in ["muster_mailbox_sent", "muster_provider_calls"] {
            assert!(
                text.contains(&format!("# HELP {family}_total ")),
                "{family}:\n{text}"
            );
            assert!(
                text.contains(&format!("# TYPE {family}_total counter\n")),
                "{family}:\n{text}"
            );
        }
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
    }
}

#[actix_web::test]
async fn openmetrics_when_the_scraper_prefers_it() {
    for accept in ["application/openmetrics-text", PROMETHEUS_ACCEPT] {
        let (content_type, text) = page(accept).await;
        assert_eq!(content_type, OPENMETRICS, "{accept:?}");
        for series in SERIES {
            assert!(text.contains(series), "{series} not in:\n{text}");
        }
        assert!(
            text.contains("# TYPE muster_mailbox_sent counter\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}

/// Runs `program` with `input` on its standard input: its exit status,
/// standard output and standard error.
fn run(program: &str, args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_owned();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Parses a page with one of `prometheus_client`'s parsers (`parser` for
/// the classic format, `openmetrics.parser`) and answers each family's
/// type and samples.
const PYTHON: &str = r#"
import importlib, json, sys
parser = importlib.import_module("prometheus_client." + sys.argv[1])
families = {}
for f in parser.text_string_to_metric_families(sys.stdin.read()):
    families[f.name] = {"type": f.type, "samples": [[s.name, s.labels] for s in f.samples]}
print(json.dumps(families))
"#;

fn python(module: &str, page: &str) -> Value {
    let (ok, out, err) = run("python3", &["-c", PYTHON, module], page);
    assert!(
        ok,
        "prometheus_client.{module} refused the page: {err}\n{page}"
    );
    serde_json::from_str(&out).unwrap()
}

/// The histogram's buckets in a parsed page end with `+Inf`.
fn assert_inf_bucket(families: &Value, page: &str) {
    let histogram = &families["muster_mailbox_handling_seconds"];
    assert_eq!(histogram["type"], "histogram", "{page}");
    let samples = histogram["samples"].as_array().unwrap();
    assert!(
        samples
            .iter()
            .any(|s| s[0] == "muster_mailbox_handling_seconds_bucket" && s[1]["le"] == "+Inf"),
        "{page}"
    );
}

#[cfg_attr(missing_promtool, ignore = "needs promtool")]
#[actix_web::test]
async fn the_classic_page_passes_prometheus_own_linter() {
    let (_, classic) = page("text/plain;version=0.0.4").await;
    let (ok, out, err) = run("promtool", &["check", "metrics"], &classic);
    assert!(
        ok && out.is_empty() && err.is_empty(),
        "{out}{err}\n{classic}"
    );
}

#[cfg_attr(missing_prometheus_client, ignore = "needs Python's prometheus_client")]
#[actix_web::test]
async fn both_pages_pass_the_python_client_parsers() {
    let (_, classic) = page("text/plain;version=0.0.4").await;
    let (_, openmetrics) = page("application/openmetrics-text;version=1.0.0").await;
    let families = python("parser", &classic);
    assert_inf_bucket(&families, &classic);
    assert_eq!(families["muster_mailbox_sent"]["type"], "counter");
    let families = python("openmetrics.parser", &openmetrics);
    assert_inf_bucket(&families, &openmetrics);
    assert_eq!(families["muster_mailbox_sent"]["type"], "counter");
    assert_eq!(families["muster_machines"]["type"], "gauge");
}
