//! The two text formats a Prometheus scraper reads, and which one it asks
//! for.
//!
//! `prometheus-client` writes OpenMetrics 1.0 only. The classic format
//! (0.0.4), which Prometheus asks for when its scrape protocols put it
//! first and which older scrapers and `promtool` read, differs from it in
//! what is written here: a counter family is named by its sample
//! (`x_total`, where OpenMetrics names it `x`), so that its `HELP` and
//! `TYPE` lines belong to the series; there is no `# UNIT`, no `# EOF`, no
//! `_created` sample and no exemplar. Names, labels, values and escaping
//! are the same in both.

use std::fmt::{self, Write};

use prometheus_client::registry::Registry;

/// A text format of `/metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4.
    Classic,
    /// OpenMetrics 1.0.
    OpenMetrics,
}

impl Format {
    /// The format an `Accept` header asks for: of the media ranges naming
    /// one of the two formats at a version written here, the one of highest
    /// quality, the first of equals; the classic format when none does (no
    /// header, `*/*`, or only other types), as Prometheus' own clients do.
    pub fn negotiate(accept: &str) -> Format {
        let mut best: Option<(f32, Format)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let mut quality = Some(1.0f32);
            let mut version = None;
            for parameter in parts {
                let Some((key, value)) = parameter.split_once('=') else {
                    continue;
                };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => quality = value.parse().ok(),
                    "version" => version = Some(value),
                    _ => {}
                }
            }
            // `q=0` refuses a type; a q that does not read (NaN
            // included) refuses it too; none is above 1.
            let Some(quality) = quality.filter(|q| *q > 0.0).map(|q| q.min(1.0)) else {
                continue;
            };
            let format = match (media.as_str(), version) {
                ("text/plain", None | Some("0.0.4" | "1.0.0")) => Format::Classic,
                ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => {
                    Format::OpenMetrics
                }
                _ => continue,
            };
            if best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, format));
            }
        }
        best.map_or(Format::Classic, |(_, format)| format)
    }

    /// The `Content-Type` of a page in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Classic => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Every series of `registry` in `format`.
pub fn encode(registry: &Registry, format: Format) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, registry)?;
    Ok(match format {
        Format::OpenMetrics => text,
        Format::Classic => classic(&text),
    })
}

/// The classic text of a page of OpenMetrics text as `prometheus-client`
/// writes it (which puts `HELP` just before `TYPE`, and no timestamps).
pub fn classic(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len() + openmetrics.len() / 16);
    let mut help: Option<(&str, &str)> = None;
    let mut family = "";
    for line in openmetrics.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            if let Some(rest) = comment.strip_prefix("HELP ") {
                help = Some(rest.split_once(' ').unwrap_or((rest, "")));
            } else if let Some(rest) = comment.strip_prefix("TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
                let (series, kind) = match kind {
                    "counter" => (format!("{name}_total"), "counter"),
                    "info" => (format!("{name}_info"), "gauge"),
                    "gauge" | "histogram" | "summary" => (name.to_owned(), kind),
                    _ => (name.to_owned(), "untyped"),
                };
                if let Some((_, text)) = help.take().filter(|(of, _)| *of == name) {
                    let _ = writeln!(out, "# HELP {series} {text}");
                }
                let _ = writeln!(out, "# TYPE {series} {kind}");
                family = name;
            }
            // `# UNIT` and `# EOF` have no place in the classic format.
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name = &line[..line.find(['{', ' ']).unwrap_or(line.len())];
        if name.strip_prefix(family) == Some("_created") {
            continue;
        }
        out.push_str(without_exemplar(line));
        out.push('\n');
    }
    out
}

/// A sample line without its OpenMetrics exemplar (` # {labels} value`),
/// which follows the value; a `#` inside a label value is not one.
fn without_exemplar(line: &str) -> &str {
    let mut labels_end = 0;
    if line.contains('{') {
        let (mut quoted, mut escaped) = (false, false);
        for (i, c) in line.char_indices() {
            match c {
                _ if escaped => escaped = false,
                '\\' if quoted => escaped = true,
                '"' => quoted = !quoted,
                '}' if !quoted => {
                    labels_end = i;
                    break;
                }
                _ => {}
            }
        }
    }
    match line[labels_end..].find(" # ") {
        Some(at) => &line[..labels_end + at],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scraper_gets_the_format_it_prefers() {
        use Format::*;
        for (accept, format) in [
            ("", Classic),
            ("*/*", Classic),
            ("application/json", Classic),
            ("text/plain", Classic),
            ("text/plain;version=0.0.4", Classic),
            ("application/openmetrics-text", OpenMetrics),
            ("Application/OpenMetrics-Text; version=1.0.0", OpenMetrics),
            ("application/openmetrics-text; version=0.0.1", OpenMetrics),
            // A version not written here is not a match.
            ("application/openmetrics-text; version=2.0.0", Classic),
            (
                "text/plain; version=0.0.5, application/openmetrics-text",
                OpenMetrics,
            ),
            // Prometheus 2's header, OpenMetrics first.
            (
                "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
                OpenMetrics,
            ),
            // Prometheus with the classic format first in its protocols.
            (
                "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1",
                Classic,
            ),
            // Prometheus 3's header.
            (
                "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
                OpenMetrics,
            ),
            ("application/openmetrics-text;q=0, text/plain", Classic),
            ("application/openmetrics-text;q=NaN", Classic),
            ("application/openmetrics-text;q=nope", Classic),
            ("text/plain;q=inf, application/openmetrics-text", Classic),
            (
                "text/plain;q=0.5, application/openmetrics-text;q=0.5",
                Classic,
            ),
            ("text/plain;q=0.1,".repeat(10_000).as_str(), Classic),
        ] {
            assert_eq!(Format::negotiate(accept), format, "{accept:?}");
        }
    }

    #[test]
    fn the_classic_text_names_counters_by_their_series() {
        let openmetrics = "\
# HELP jobs Jobs done.
# TYPE jobs counter
jobs_total{queue=\"a # {b}\"} 3 # {trace_id=\"x\"} 1.0
jobs_created{queue=\"a\"} 1700000000.0
# HELP size Bytes held.
# TYPE size gauge
# UNIT size bytes
size 12
# HELP build Build.
# TYPE build info
build_info{version=\"1\"} 1
# HELP wait Wait.
# TYPE wait histogram
wait_sum 0.5
wait_count 1
wait_bucket{le=\"0.1\"} 0
wait_bucket{le=\"+Inf\"} 1
# HELP other Other.
# TYPE other unknown
other 1
# EOF
";
        assert_eq!(
            classic(openmetrics),
            "\
# HELP jobs_total Jobs done.
# TYPE jobs_total counter
jobs_total{queue=\"a # {b}\"} 3
# HELP size Bytes held.
# TYPE size gauge
size 12
# HELP build_info Build.
# TYPE build_info gauge
build_info{version=\"1\"} 1
# HELP wait Wait.
# TYPE wait histogram
wait_sum 0.5
wait_count 1
wait_bucket{le=\"0.1\"} 0
wait_bucket{le=\"+Inf\"} 1
# HELP other Other.
# TYPE other untyped
other 1
"
        );
    }
}
