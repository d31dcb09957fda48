//! Reading a config file so that every problem is found in one pass: a key
//! that does not read is read again alone, reported under its full key with
//! the value as the file wrote it, and left out, so the rest can be read.
//!
//! Each key is read alone once, so a file of many bad keys costs time in
//! proportion to its size; the problems past
//! [`MAX_PROBLEMS`](muster::config::MAX_PROBLEMS) are counted, not listed.

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};

use muster::config::{Checker, ConfigError, InvalidConfig};

use super::DaemonConfig;

/// The longest key segment, value or reason shown in a problem: a file
/// of megabytes must not make a message of megabytes.
const SHOWN: usize = 120;

/// What a config file's text read as.
pub(super) struct Reading<'i> {
    /// The config: the file's keys that read, defaults for the rest; `None`
    /// when even that does not read.
    pub(super) config: Option<DaemonConfig>,
    /// The document as written, to show a key's value as the file wrote it.
    pub(super) document: DeTable<'i>,
    /// Each key that does not read.
    pub(super) problems: Checker,
}

/// Reads `text` as a [`DaemonConfig`], without checking any range: every
/// key that does not read is a problem, and left out. Refuses only text
/// that is not TOML.
pub(super) fn read(text: &str) -> Result<Reading<'_>, InvalidConfig> {
    let document = DeTable::parse(text).map_err(|error| not_toml(text, &error))?;
    let span = document.span();
    let table = document.into_inner();
    let mut problems = Checker::new();
    let config = match deserialize(Spanned::new(span.clone(), table.clone())) {
        Ok(config) => Some(config),
        Err(_) => {
            let kept = keep_what_reads(text, table.clone(), &mut Vec::new(), &mut problems);
            match deserialize(Spanned::new(span, kept)) {
                Ok(config) => Some(config),
                // What reads alone reads together, as each section takes
                // its keys one by one; were it not so, this says why.
                Err(error) => {
                    let reason = shorten(error.message().trim());
                    problems.report(ConfigError::new("", None, reason));
                    None
                }
            }
        }
    };
    Ok(Reading {
        config,
        document: table,
        problems,
    })
}

fn deserialize(document: Spanned<DeTable<'_>>) -> Result<DaemonConfig, toml::de::Error> {
    DaemonConfig::deserialize(Deserializer::from(document))
}

/// The problem of a file that does not parse as TOML.
fn not_toml(text: &str, error: &toml::de::Error) -> InvalidConfig {
    let at = error
        .span()
        .map(|span| {
            let (line, column) = line_column(text, span.start);
            format!(" at line {line}, column {column}")
        })
        .unwrap_or_default();
    let reason = format!("not a TOML file{at}: {}", error.message().trim());
    ConfigError::new("", None, shorten(&reason)).into()
}

/// The line and column, from 1, of a byte offset.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
    (line, column)
}

/// `table` (at `path`) without the entries that do not read, each of them
/// reported; in the order of the file.
fn keep_what_reads<'i>(
    text: &str,
    table: DeTable<'i>,
    path: &mut Vec<String>,
    at: &mut Checker,
) -> DeTable<'i> {
    let mut entries: Vec<_> = table.into_iter().collect();
    entries.sort_by_key(|(key, _)| key.span().start);
    let mut kept = DeTable::new();
    for (key, value) in entries {
        path.push(key.get_ref().to_string());
        let is_table = value.get_ref().as_table().is_some();
        // A table is first tried empty: if its name is wrong, that is one
        // problem, not one per key inside it.
        let alone = if is_table {
            Spanned::new(value.span(), DeValue::Table(DeTable::new()))
        } else {
            value.clone()
        };
        let tables = array_of_tables(value.get_ref());
        // An array of tables is first tried empty, for the same reason.
        let alone = if tables {
            Spanned::new(value.span(), DeValue::Array(DeArray::new()))
        } else {
            alone
        };
        match deserialize(nested(path, alone)) {
            Err(error) => {
                let shown = (!is_table && !tables && !names_a_secret(key.get_ref()))
                    .then(|| written(text, &value))
                    .flatten();
                let reason = reason(error.message(), value.get_ref());
                at.report(ConfigError::new(key_of(path), shown, reason));
            }
            Ok(_) => {
                let span = value.span();
                let value = match value.into_inner() {
                    DeValue::Table(inner) => DeValue::Table(keep_what_reads(text, inner, path, at)),
                    DeValue::Array(items) if tables => {
                        DeValue::Array(keep_entries_that_read(text, items, path, at))
                    }
                    other => other,
                };
                kept.insert(key, Spanned::new(span, value));
            }
        }
        path.pop();
    }
    kept
}

/// Whether a key's name says it holds a password or a secret: its value
/// is not shown when it does not read, so that a password written where
/// none is read (an OpenStack model's is read from its credential file)
/// reaches no log.
fn names_a_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password") || key.contains("secret")
}

/// Whether `value` is an array holding tables only (`[[models]]`), whose
/// entries are read one by one, as tables are.
fn array_of_tables(value: &DeValue<'_>) -> bool {
    match value {
        DeValue::Array(items) => {
            !items.is_empty() && items.iter().all(|item| item.get_ref().as_table().is_some())
        }
        _ => false,
    }
}

/// The entries of an array of tables (at `path`), each without the keys
/// that do not read; an entry that does not read even empty is reported
/// and left out. Entries are named `path[N]`, from 0.
fn keep_entries_that_read<'i>(
    text: &str,
    items: DeArray<'i>,
    path: &mut Vec<String>,
    at: &mut Checker,
) -> DeArray<'i> {
    let mut kept = DeArray::new();
    for (n, item) in items.into_iter().enumerate() {
        path.push(format!("[{n}]"));
        let span = item.span();
        let empty = Spanned::new(span.clone(), DeValue::Table(DeTable::new()));
        match (deserialize(nested(path, empty)), item.into_inner()) {
            (Ok(_), DeValue::Table(inner)) => {
                let inner = keep_what_reads(text, inner, path, at);
                kept.push(Spanned::new(span, DeValue::Table(inner)));
            }
            (Err(error), value) => {
                let reason = reason(error.message(), &value);
                at.report(ConfigError::new(key_of(path), None, reason));
            }
            (Ok(_), _) => {}
        }
        path.pop();
    }
    kept
}

/// A document holding only `value`, at `path`; an entry `[N]` of an
/// array of tables is the only entry of its array.
fn nested<'i>(path: &[String], value: Spanned<DeValue<'i>>) -> Spanned<DeTable<'i>> {
    let mut value = value;
    for segment in path.iter().rev() {
        if is_entry(segment) {
            let mut array = DeArray::new();
            array.push(value);
            value = Spanned::new(0..0, DeValue::Array(array));
            continue;
        }
        let mut table = DeTable::new();
        table.insert(Spanned::new(0..0, segment.clone().into()), value);
        value = Spanned::new(0..0, DeValue::Table(table));
    }
    match value.into_inner() {
        DeValue::Table(table) => Spanned::new(0..0, table),
        // An empty path is the whole document, which is a table.
        _ => Spanned::new(0..0, DeTable::new()),
    }
}

/// The value as the file wrote it, shortened.
fn written(text: &str, value: &Spanned<DeValue<'_>>) -> Option<String> {
    let written = text.get(value.span())?.trim();
    (!written.is_empty()).then(|| shorten(written))
}

/// The value the file gives `key`, as written, when it is a plain value;
/// `models[2].region` reaches into the third `[[models]]` entry.
pub(super) fn value_at(text: &str, document: &DeTable<'_>, key: &str) -> Option<String> {
    let mut table = document;
    let mut segments = key.split('.').peekable();
    while let Some(segment) = segments.next() {
        let (name, entry) = match segment.strip_suffix(']').and_then(|s| s.split_once('[')) {
            Some((name, n)) => (name, Some(n.parse::<usize>().ok()?)),
            None => (segment, None),
        };
        let mut value = table.get(name)?;
        if let Some(n) = entry {
            match value.get_ref() {
                DeValue::Array(items) => value = items.get(n)?,
                _ => return None,
            }
        }
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ if segments.peek().is_none() => return written(text, value),
            _ => return None,
        }
    }
    None
}

/// Whether a segment of a path is an entry of an array of tables, `[N]`.
fn is_entry(segment: &str) -> bool {
    segment.starts_with('[') && segment.ends_with(']')
}

/// A dotted key, each segment shortened, and quoted unless bare; an
/// entry of an array of tables follows its array's name: `models[2].uuid`.
fn key_of(path: &[String]) -> String {
    let mut key = String::new();
    for segment in path {
        if is_entry(segment) {
            key.push_str(segment);
            continue;
        }
        if !key.is_empty() {
            key.push('.');
        }
        let segment = shorten(segment);
        if is_bare_key(&segment) {
            key.push_str(&segment);
        } else {
            key.push_str(&format!("{segment:?}"));
        }
    }
    key
}

fn is_bare_key(word: &str) -> bool {
    !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// serde's message, in the words of a config file's reader.
fn reason(message: &str, value: &DeValue<'_>) -> String {
    let message = message.trim();
    let none = message.ends_with("expected a duration or \"none\"");
    if none || message.ends_with("expected a duration") {
        let or_none = if none { ", or \"none\"" } else { "" };
        return match value {
            DeValue::String(text) => {
                let why = humantime::parse_duration(text)
                    .err()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default();
                shorten(&format!(
                    "invalid duration {text:?} (expected e.g. \"3s\" or \"15m\"{or_none}){why}"
                ))
            }
            _ => {
                let comma = if none { "," } else { "" };
                shorten(&format!(
                    "{message}{comma} such as \"3s\", \"1m\" or \"250ms\""
                ))
            }
        };
    }
    // The keys a table takes are the file's help, and as few as its
    // fields: only the unknown key, which the file wrote, is shortened.
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((key, expected)) = rest.rsplit_once("`, expected ")
    {
        return format!("unknown field `{}`, expected {expected}", shorten(key));
    }
    // serde names the private type a table is read into; the reader of the
    // file knows it as a table.
    if let Some(at) = message.find("expected struct ") {
        return format!("{}expected a table", &message[..at]);
    }
    shorten(message)
}

/// `text`, cut to [`SHOWN`] characters with an ellipsis.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(SHOWN) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
