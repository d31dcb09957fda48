//! The few numbers the history keeps, read from the registry's text
//! exposition: the registry offers no other way to read a series, and the
//! text is what a Prometheus scrape reads too, so the history and the
//! scraper see the same counters.

use std::collections::BTreeMap;

/// The counters and gauges one sample needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Reading {
    /// Provider calls made, every method.
    pub(crate) calls: f64,
    /// Failed provider calls, every kind.
    pub(crate) errors: f64,
    /// Throttled provider calls.
    pub(crate) throttles: f64,
    /// Restarts for a failure, a bounce or a dependency, every child; a
    /// child that finished and was started again (`done`) is not counted,
    /// as the dashboard's tree does not count it either.
    pub(crate) restarts: f64,
    /// Mailbox depth by `child` label.
    pub(crate) depths: BTreeMap<String, f64>,
}

/// Reads `text`, in Prometheus' or OpenMetrics' text format. Lines that
/// do not read are skipped: a sample with a missing series is better than
/// no sample.
pub(crate) fn read(text: &str) -> Reading {
    let mut reading = Reading::default();
    for line in text.lines() {
        let Some((name, labels, value)) = series(line) else {
            continue;
        };
        match name {
            "muster_provider_calls_total" => reading.calls += value,
            "muster_provider_errors_total" => reading.errors += value,
            "muster_provider_throttles_total" => reading.throttles += value,
            "muster_child_restarts_total" => {
                if matches!(
                    label(labels, "reason"),
                    Some("failure" | "bounce" | "dependency")
                ) {
                    reading.restarts += value;
                }
            }
            "muster_mailbox_depth" => {
                if let Some(child) = label(labels, "child") {
                    *reading.depths.entry(child.to_owned()).or_default() += value;
                }
            }
            _ => {}
        }
    }
    reading
}

/// `name{labels} value [timestamp]`: the name, the text between the braces
/// and the value; `None` for comments and lines that do not read.
fn series(line: &str) -> Option<(&str, &str, f64)> {
    if line.starts_with('#') {
        return None;
    }
    let (name, labels, rest) = match line.find(['{', ' ']) {
        Some(at) if line.as_bytes()[at] == b'{' => {
            let close = line[at..].rfind('}')? + at;
            (&line[..at], &line[at + 1..close], &line[close + 1..])
        }
        Some(at) => (&line[..at], "", &line[at..]),
        None => return None,
    };
    let value: f64 = rest.split_whitespace().next()?.parse().ok()?;
    value.is_finite().then_some((name, labels, value))
}

/// The value of label `key` in `a="x",key="y"`. Label values here are
/// child paths and reasons, which hold no quotes; an escaped one ends the
/// value early and the series is merely mislabelled, never misread.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = labels;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let (value, after) = after.split_once('"')?;
        if name.trim_start_matches(',').trim() == key {
            return Some(value);
        }
        rest = after;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# HELP muster_provider_calls Provider calls made, by method.
# TYPE muster_provider_calls counter
muster_provider_calls_total{method="instances"} 12
muster_provider_calls_total{method="network_interfaces"} 5
# TYPE muster_provider_errors counter
muster_provider_errors_total{kind="throttled"} 2
muster_provider_errors_total{kind="timeout"} 1
# TYPE muster_provider_throttles counter
muster_provider_throttles_total 2
muster_mailbox_depth{child="root/gateway"} 7
muster_mailbox_depth{child="root/machines/pollers"} 30
muster_mailbox_depth_high_water{child="root/gateway"} 99
muster_child_restarts_total{child="root/gateway",reason="failure"} 3
muster_child_restarts_total{child="root/machines/pollers",reason="bounce"} 4
muster_child_restarts_total{child="root/machines/pollers",reason="done"} 50
muster_mailbox_handling_seconds_bucket{child="root/gateway",le="+Inf"} 9
muster_provider_calls_total{method="instances"} NaN
garbage line
muster_provider_calls_total{method="instances" 4
# EOF
"#;

    #[test]
    fn reads_the_series_it_needs_and_skips_the_rest() {
        let reading = read(TEXT);
        assert_eq!(reading.calls, 17.0);
        assert_eq!(reading.errors, 3.0);
        assert_eq!(reading.throttles, 2.0);
        assert_eq!(reading.restarts, 7.0);
        assert_eq!(
            reading.depths,
            BTreeMap::from([
                ("root/gateway".to_owned(), 7.0),
                ("root/machines/pollers".to_owned(), 30.0),
            ])
        );
    }

    #[test]
    fn labels_are_found_by_name() {
        assert_eq!(label(r#"child="a/b",reason="x""#, "reason"), Some("x"));
        assert_eq!(label(r#"child="a/b",reason="x""#, "child"), Some("a/b"));
        assert_eq!(label(r#"child="a/b""#, "reason"), None);
        assert_eq!(label("", "child"), None);
        assert_eq!(label(r#"child="unterminated"#, "child"), None);
    }

    #[test]
    fn an_empty_or_strange_page_reads_as_zeros() {
        assert_eq!(read(""), Reading::default());
        assert_eq!(read("{}\n}{ 1\n 1\nname{} inf\n"), Reading::default());
    }
}
