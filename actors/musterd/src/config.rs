//! The daemon's configuration file: TOML, every setting of the tree plus the
//! backend, the HTTP surface and the agents' door, durations as human
//! strings (`"3s"`, `"1m"`).
//!
//! Reading a file never panics and never stops at the first problem it can
//! get past: [`DaemonConfig::from_toml`] answers every error it finds, each
//! naming its key and, where the file gave one, the value.

use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;

use muster::sim::SimConfig;
use serde::{Deserialize, Serialize};
use toml::de::DeTable;

use crate::agents::AgentsConfig;
use crate::token::validate_token;
use muster_actors::gateway::GatewayConfig;
use muster_actors::host::MusterConfig;
use muster_actors::machines::MachinesConfig;
use muster_actors::presence::PresenceConfig;
use muster_actors::supervisor::RestartConfig;

/// Everything `musterd run` reads from its config file. Every section and
/// every key may be left out; what is left out takes its default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DaemonConfig {
    /// Restarts of the root's own children.
    pub supervision: RestartConfig,
    /// The presence subtree.
    pub presence: PresenceConfig,
    /// The machine watcher, its pollers and the poll schedule.
    pub machines: MachinesConfig,
    /// The provider gateway.
    pub gateway: GatewayConfig,
    /// What the tree talks to.
    pub backend: BackendConfig,
    /// The HTTP inspection surface.
    pub http: HttpConfig,
    /// The agents' WebSocket door.
    pub agents: AgentsConfig,
}

/// Which cloud and model the tree talks to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackendConfig {
    /// The kind of backend; only the embedded simulation exists so far.
    pub kind: BackendKind,
    /// How many machines the simulated model holds at start, each
    /// provisioned then (the demo adds its own over time instead).
    pub machines: usize,
    /// Settings of the simulated cloud, used when `kind = "sim"`.
    pub sim: SimConfig,
}

/// The kinds of backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded simulated cloud and model.
    #[default]
    Sim,
}

/// Where the HTTP surface listens and who may use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The listen address; loopback unless the operator says otherwise.
    pub listen: SocketAddr,
    /// When set, every endpoint but `/healthz` wants
    /// `Authorization: Bearer <token>`.
    pub token: Option<String>,
}

/// The default listen address of the HTTP surface.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9180";

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            listen: DEFAULT_LISTEN.parse().expect("a valid socket address"),
            token: None,
        }
    }
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The dotted key, e.g. `machines.poll.short_poll`; empty when the file
    /// is not TOML at all.
    pub key: String,
    /// The value the file gave the key, as TOML, when there is one.
    pub value: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&*self.key, &self.value) {
            ("", _) => write!(f, "{}", self.reason),
            (key, Some(value)) => write!(f, "{key} = {value}: {}", self.reason),
            (key, None) => write!(f, "{key}: {}", self.reason),
        }
    }
}

impl DaemonConfig {
    /// The tree's own settings.
    pub fn muster(&self) -> MusterConfig {
        MusterConfig {
            supervision: self.supervision.clone(),
            presence: self.presence.clone(),
            machines: self.machines.clone(),
            gateway: self.gateway,
        }
    }

    /// Reads and checks a config file's text. On failure, answers every
    /// problem found: a file that is not TOML gives one; otherwise each key
    /// that does not read is reported and left out so the next one can be
    /// found, and then every setting out of range.
    pub fn from_toml(text: &str) -> Result<DaemonConfig, Vec<ConfigProblem>> {
        let mut text = text.to_owned();
        let mut problems = Vec::new();
        // Each round reports one key and blanks it; the bound is a guard
        // against a key that cannot be blanked.
        for _ in 0..64 {
            let document = match DeTable::parse(&text) {
                Ok(document) => document,
                // After a blank, a failure is of the blank's making (an
                // inline table left with a stray comma): stop there.
                Err(_) if !problems.is_empty() => return Err(problems),
                Err(error) => return Err(vec![not_toml(&text, &error)]),
            };
            match toml::from_str::<DaemonConfig>(&text) {
                Ok(config) => {
                    for (key, reason) in config.problems() {
                        let value = value_text(&text, document.get_ref(), &key);
                        problems.push(ConfigProblem { key, value, reason });
                    }
                    return if problems.is_empty() {
                        Ok(config)
                    } else {
                        Err(problems)
                    };
                }
                Err(error) => {
                    let (problem, blank) = key_problem(&text, document.get_ref(), &error);
                    problems.push(problem);
                    let Some(range) = blank else {
                        return Err(problems);
                    };
                    text.replace_range(range.clone(), &" ".repeat(range.len()));
                }
            }
        }
        Err(problems)
    }

    /// Every setting out of range, as (key, reason) pairs.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut problems = Vec::new();
        let restart = |problems: &mut Vec<(String, String)>, section: &str, c: &RestartConfig| {
            if let Err(e) = c.validate() {
                problems.push((format!("{section}.{}", e.field), e.problem));
            }
        };
        restart(&mut problems, "supervision", &self.supervision);
        let presence = PresenceConfig {
            restart: RestartConfig::default(),
            ..self.presence.clone()
        };
        if let Err(e) = presence.validate() {
            problems.push((e.field.to_owned(), e.reason));
        }
        restart(&mut problems, "presence.restart", &self.presence.restart);
        if let Err(e) = self.machines.poll.validate() {
            problems.push((format!("machines.poll.{}", e.field), e.reason));
        }
        restart(&mut problems, "machines.restart", &self.machines.restart);
        if self.machines.poller_mailbox == 0 {
            problems.push((
                "machines.poller_mailbox".into(),
                "must be at least 1".into(),
            ));
        }
        if let Err(e) = self.gateway.validate() {
            problems.push((e.field.to_owned(), e.reason));
        }
        if let Err(e) = self.backend.sim.validate() {
            problems.push((format!("backend.sim.{}", e.field), e.reason));
        }
        if let Some(Err(reason)) = self.http.token.as_deref().map(validate_token) {
            problems.push(("http.token".into(), reason));
        }
        problems.extend(self.agents.problems());
        // The tree's own check is the last word: anything it refuses that
        // the checks above missed is still reported.
        if problems.is_empty()
            && let Err(e) = self.muster().validate()
        {
            problems.push((e.key, e.reason));
        }
        problems
    }
}

/// The problem of a file that does not parse as TOML.
fn not_toml(text: &str, error: &toml::de::Error) -> ConfigProblem {
    let at = error
        .span()
        .map(|span| {
            let (line, column) = line_column(text, span.start);
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    ConfigProblem {
        key: String::new(),
        value: None,
        reason: format!("not a TOML file{at}: {}", error.message()),
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, column)
}

/// A key of the document, with the spans of its key and value.
struct Entry {
    path: Vec<String>,
    key: Range<usize>,
    value: Range<usize>,
    is_table: bool,
}

fn entries(table: &DeTable<'_>, path: &[String], out: &mut Vec<Entry>) {
    for (key, value) in table.iter() {
        let mut here = path.to_vec();
        here.push(key.get_ref().to_string());
        let inner = value.get_ref().as_table();
        if let Some(inner) = inner {
            entries(inner, &here, out);
        }
        out.push(Entry {
            path: here,
            key: key.span(),
            value: value.span(),
            is_table: inner.is_some(),
        });
    }
}

/// The entry at a dotted key.
fn find<'a>(all: &'a [Entry], key: &str) -> Option<&'a Entry> {
    all.iter().find(|e| e.path.join(".") == key)
}

/// The value the file gives `key`, as written, when it is a plain value.
fn value_text(text: &str, document: &DeTable<'_>, key: &str) -> Option<String> {
    let mut all = Vec::new();
    entries(document, &[], &mut all);
    shown(text, find(&all, key)?)
}

/// An entry's value as written; `None` for a table, which has no one value
/// to show.
fn shown(text: &str, entry: &Entry) -> Option<String> {
    let written = text.get(entry.value.clone())?.trim();
    (!entry.is_table && !written.is_empty()).then(|| written.to_owned())
}

/// Names the key a deserialization error is about, and the stretch of text
/// to blank so that parsing can go on past it.
fn key_problem(
    text: &str,
    document: &DeTable<'_>,
    error: &toml::de::Error,
) -> (ConfigProblem, Option<Range<usize>>) {
    let mut all = Vec::new();
    entries(document, &[], &mut all);
    let message = error.message().trim().to_owned();
    let Some(span) = error.span() else {
        let problem = ConfigProblem {
            key: String::new(),
            value: None,
            reason: message,
        };
        return (problem, None);
    };
    // The error points at a key (unknown field), at a value (bad type or
    // text), or at a table whose own check failed and whose message starts
    // with the field it is about, e.g. `short_poll: must be ...`.
    let at = all
        .iter()
        .filter(|e| e.key == span || e.value == span)
        .max_by_key(|e| e.path.len());
    let (mut path, entry) = match at {
        Some(entry) => (entry.path.clone(), Some(entry)),
        None => (Vec::new(), None),
    };
    let mut reason = message.clone();
    if entry.is_none_or(|e| e.is_table && e.value == span)
        && let Some((field, rest)) = message.split_once(": ")
        && !field.is_empty()
        && field.split('.').all(is_bare_key)
    {
        path = join_overlapping(&path, field.split('.'));
        reason = rest.to_owned();
    }
    if reason.contains("expected a duration") {
        reason.push_str(" such as \"3s\", \"1m\" or \"250ms\"");
    }
    // serde names the private type a table is read into; the reader of the
    // message knows it as a table.
    if let Some(at) = reason.find("expected struct ") {
        reason.truncate(at);
        reason.push_str("expected a table");
    }
    let key = path.join(".");
    if reason.ends_with("expected a string") && is_duration_key(&key) {
        reason.push_str(": a duration such as \"3s\", \"1m\" or \"250ms\"");
    }
    let named = find(&all, &key);
    let value = named.and_then(|e| shown(text, e));
    // Blank the whole `key = value`, a dotted key's leading segments
    // included; a table header alone cannot be blanked without changing
    // what the lines below it mean.
    let blank = named
        .filter(|e| value.is_some() && e.key.start < e.value.end)
        .map(|e| {
            let start = text[..e.key.start]
                .trim_end_matches(|c: char| is_bare_key(&c.to_string()) || c == '.' || c == ' ')
                .len();
            start..e.value.end
        });
    (ConfigProblem { key, value, reason }, blank)
}

/// Whether the key holds a duration: its default is written as one.
fn is_duration_key(key: &str) -> bool {
    let Ok(defaults) = toml::Table::try_from(DaemonConfig::default()) else {
        return false;
    };
    let mut value = None;
    let mut table = Some(&defaults);
    for segment in key.split('.') {
        value = table.and_then(|t| t.get(segment));
        table = value.and_then(toml::Value::as_table);
    }
    value
        .and_then(toml::Value::as_str)
        .is_some_and(|text| humantime::parse_duration(text).is_ok())
}

fn is_bare_key(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Joins a table's path and a field named relative to it, where the field's
/// name may repeat the table's last segments (`backend.sim.faults` and
/// `faults.error_rate` make `backend.sim.faults.error_rate`).
fn join_overlapping<'a>(path: &[String], field: impl Iterator<Item = &'a str>) -> Vec<String> {
    let field: Vec<String> = field.map(str::to_owned).collect();
    let overlap = (0..=path.len().min(field.len()))
        .rev()
        .find(|&n| path[path.len() - n..] == field[..n])
        .unwrap_or(0);
    let mut joined = path.to_vec();
    joined.extend(field[overlap..].iter().cloned());
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        DaemonConfig::from_toml(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn the_example_file_holds_every_default() {
        let text = include_str!("../muster.example.toml");
        let config = DaemonConfig::from_toml(text).unwrap();
        assert_eq!(config, DaemonConfig::default());
        assert_eq!(config.muster(), MusterConfig::default());
        // Every key the defaults serialize to is in the file, so the file
        // cannot fall behind a new setting.
        let defaults = toml::Table::try_from(DaemonConfig::default()).unwrap();
        let file: toml::Table = toml::from_str(text).unwrap();
        fn keys(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (k, v) in table {
                let key = format!("{prefix}{k}");
                match v.as_table() {
                    Some(inner) => keys(inner, &format!("{key}."), out),
                    None => out.push(key),
                }
            }
        }
        let (mut want, mut have) = (Vec::new(), Vec::new());
        keys(&defaults, "", &mut want);
        keys(&file, "", &mut have);
        for key in want {
            assert!(
                have.contains(&key)
                    || text.contains(&format!("# {}", key.rsplit('.').next().unwrap())),
                "{key} is missing from the example file"
            );
        }
    }

    #[test]
    fn an_empty_file_is_the_default() {
        assert_eq!(
            DaemonConfig::from_toml("").unwrap(),
            DaemonConfig::default()
        );
    }

    #[test]
    fn bad_values_name_key_and_value() {
        for (text, want) in [
            (
                "[machines.poll]\nshort_poll = \"10\"\n",
                "machines.poll.short_poll = \"10\": invalid duration \"10\"",
            ),
            (
                "[machines.poll]\nshort_poll = \"-3s\"\n",
                "machines.poll.short_poll = \"-3s\": invalid duration",
            ),
            (
                "[machines.poll]\nlong_poll = \"0s\"\n",
                "machines.poll.long_poll = \"0s\": must be a positive duration",
            ),
            (
                "[machines.poll]\nshort_poll = \"10s\"\nshort_poll_cap = \"5s\"\n",
                "machines.poll.short_poll = \"10s\": must not be longer than short_poll_cap (10s > 5s)",
            ),
            (
                "machines.poll.short_poll = \"10\"\n",
                "machines.poll.short_poll = \"10\": invalid duration",
            ),
            (
                "[machines.poll]\nbogus = 1\n",
                "machines.poll.bogus = 1: unknown field `bogus`",
            ),
            ("speed = 3\n", "speed = 3: unknown field `speed`"),
            (
                "[supervision]\nerror_delay = \"-1s\"\n",
                "supervision.error_delay = \"-1s\": invalid value: string \"-1s\", expected a duration",
            ),
            (
                "[supervision]\nerror_delay = \"0s\"\n",
                "supervision.error_delay = \"0s\": must be positive",
            ),
            (
                "[gateway]\ncall_timeout = \"0s\"\n",
                "gateway.call_timeout = \"0s\": must be a positive duration",
            ),
            (
                "[backend]\nkind = \"aws\"\n",
                "backend.kind = \"aws\": unknown variant `aws`, expected `sim`",
            ),
            (
                "[backend.sim.faults]\nerror_rate = 2.0\n",
                "backend.sim.faults.error_rate = 2.0: must be a rate from 0 to 1, got 2",
            ),
            (
                "[http]\nlisten = \"nope\"\n",
                "http.listen = \"nope\": invalid socket address syntax",
            ),
            (
                "[http]\ntoken = \"\"\n",
                "http.token = \"\": must not be empty",
            ),
            (
                "[machines.poll]\nshort_poll = 10\n",
                "machines.poll.short_poll = 10: invalid type: integer `10`, expected a string: a duration such as \"3s\"",
            ),
            (
                "[machines]\npoll = 3\n",
                "machines.poll = 3: invalid type: integer `3`, expected a table",
            ),
            (
                "this is not toml\n",
                "not a TOML file at line 1, column 6: key with no value",
            ),
        ] {
            let got = problems(text);
            assert_eq!(got.len(), 1, "{text}: {got:?}");
            assert!(got[0].starts_with(want), "{text}: {got:?}");
        }
    }

    #[test]
    fn every_problem_is_reported() {
        let got = problems(
            "bogus = 1\n[machines]\npoller_mailbox = 0\n[machines.poll]\nshort_poll = \"10\"\n\
             [gateway]\nwindow = \"soon\"\n[supervision]\nmax_delay = \"1s\"\n",
        );
        let mut keys: Vec<&str> = got.iter().map(|p| p.split(' ').next().unwrap()).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "bogus",
                "gateway.window",
                "machines.poll.short_poll",
                "machines.poller_mailbox",
                "supervision.max_delay",
            ],
            "{got:#?}"
        );
    }
}
