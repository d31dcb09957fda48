//! Settings and their ranges: one way to check a configuration.
//!
//! Every section of a configuration implements [`Validate`]: it reports each
//! of its settings that is out of range to a [`Checker`], by the setting's
//! own name. The checker knows where the section sits (`machines.poll`), so
//! every problem carries its full key, and it collects every problem rather
//! than stopping at the first. The range helpers ([`Durations`], [`Counts`],
//! [`Numbers`]) state each bound once, and word every refusal alike.
//!
//! Reading a section is serde's job alone (`#[serde(default,
//! deny_unknown_fields)]`, durations through `humantime_serde`); nothing is
//! range-checked while it is read, so a file and a host that builds a config
//! in code are checked by the same code.

use std::fmt;
use std::time::Duration;

/// The most problems an [`InvalidConfig`] lists; past it they are counted.
pub const MAX_PROBLEMS: usize = 100;

/// A day.
pub const DAY: Duration = Duration::from_secs(86_400);

/// A year as humantime counts it (365.25 days), so that it is written
/// `1year` and reads back: the longest of most durations, far enough from
/// what an `Instant` can hold that adding it to now never overflows.
pub const YEAR: Duration = Duration::from_secs(31_557_600);

/// What the capacity of a mailbox may be, in messages, in any section: at
/// least one, and few enough that a full one fits in memory.
pub const MAILBOXES: Counts = Counts::new(1, 1 << 24);

/// One setting that is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The dotted key from the top of the configuration, e.g.
    /// `machines.poll.short_poll`; empty when the problem is the whole
    /// input's (a file that is not TOML).
    pub key: String,
    /// The value, written as a configuration file writes it (`"3s"`, `2.0`,
    /// `16`), when there is one to show.
    pub value: Option<String>,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// A problem with `key`, whose value is `value`.
    pub fn new(key: impl Into<String>, value: Option<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            key: key.into(),
            value,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&*self.key, &self.value) {
            ("", _) => write!(f, "{}", self.reason),
            (key, Some(value)) => write!(f, "{key} = {value}: {}", self.reason),
            (key, None) => write!(f, "{key}: {}", self.reason),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Every problem of a configuration, each once, in the order found; at most
/// [`MAX_PROBLEMS`] of them, the rest counted in `more`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidConfig {
    /// The problems, at least one.
    pub problems: Vec<ConfigError>,
    /// How many more problems there were past [`MAX_PROBLEMS`].
    pub more: usize,
}

impl InvalidConfig {
    /// The keys of the problems listed, in order.
    pub fn keys(&self) -> Vec<&str> {
        self.problems.iter().map(|p| p.key.as_str()).collect()
    }

    /// One line per problem, then `... and N more` when some were left out.
    pub fn lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        if self.more > 0 {
            lines.push(format!("... and {} more", self.more));
        }
        lines
    }
}

impl fmt::Display for InvalidConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines().join("; "))
    }
}

impl std::error::Error for InvalidConfig {}

impl From<ConfigError> for InvalidConfig {
    fn from(problem: ConfigError) -> Self {
        InvalidConfig {
            problems: vec![problem],
            more: 0,
        }
    }
}

/// A section of a configuration that can say what in it is out of range.
pub trait Validate {
    /// Reports every setting out of range to `at`, each by its own name
    /// (`short_poll`), nested sections through [`Checker::section`].
    fn check(&self, at: &mut Checker);

    /// Checks the whole, keys counted from this section; the error holds
    /// every problem.
    fn validate(&self) -> Result<(), InvalidConfig> {
        let mut at = Checker::new();
        self.check(&mut at);
        at.finish()
    }
}

/// Collects the problems of a configuration, each under its full key.
#[derive(Debug, Default)]
pub struct Checker {
    path: String,
    problems: Vec<ConfigError>,
    more: usize,
}

impl Checker {
    /// A checker at the top of a configuration, with no problem yet.
    pub fn new() -> Self {
        Checker::default()
    }

    /// Checks `section` as the table `name` of the section being checked.
    pub fn section(&mut self, name: &str, section: &impl Validate) {
        let len = self.path.len();
        if !self.path.is_empty() {
            self.path.push('.');
        }
        self.path.push_str(name);
        section.check(self);
        self.path.truncate(len);
    }

    /// The full key of `field` of the section being checked.
    pub fn key(&self, field: &str) -> String {
        if self.path.is_empty() {
            field.to_owned()
        } else {
            format!("{}.{field}", self.path)
        }
    }

    /// Reports that `field` of the section being checked, whose value is
    /// `value`, is wrong.
    pub fn problem(&mut self, field: &str, value: Option<String>, reason: impl Into<String>) {
        let key = self.key(field);
        self.report(ConfigError::new(key, value, reason));
    }

    /// Reports a problem whose key is already in full.
    pub fn report(&mut self, problem: ConfigError) {
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        } else {
            self.more += 1;
        }
    }

    /// Whether a problem of the full key `key` was reported.
    pub fn has(&self, key: &str) -> bool {
        self.problems.iter().any(|problem| problem.key == key)
    }

    /// Counts `n` problems that were found but left out of a list that was
    /// already full, such as another checker's past [`MAX_PROBLEMS`].
    pub fn count_more(&mut self, n: usize) {
        self.more += n;
    }

    /// Whether no problem was reported.
    pub fn is_empty(&self) -> bool {
        self.problems.is_empty()
    }

    /// Checks a duration against its range; true when it is within.
    pub fn duration(&mut self, field: &str, value: Duration, range: Durations) -> bool {
        let ok = range.contains(value);
        if !ok {
            self.problem(field, Some(duration_value(value)), range.to_string());
        }
        ok
    }

    /// Checks a count against its range; true when it is within.
    pub fn count<T>(&mut self, field: &str, value: T, range: Counts) -> bool
    where
        T: TryInto<u64> + fmt::Display + Copy,
    {
        let ok = value.try_into().is_ok_and(|n| range.contains(n));
        if !ok {
            self.problem(field, Some(value.to_string()), range.to_string());
        }
        ok
    }

    /// Checks a number against its range, NaN and infinities refused; true
    /// when it is within.
    pub fn number(&mut self, field: &str, value: f64, range: Numbers) -> bool {
        let ok = range.contains(value);
        if !ok {
            self.problem(field, Some(float_value(value)), range.to_string());
        }
        ok
    }

    /// Checks a chance, from 0 to 1; true when it is one.
    pub fn rate(&mut self, field: &str, value: f64) -> bool {
        // Written so that NaN fails too.
        let ok = (0.0..=1.0).contains(&value);
        if !ok {
            self.problem(
                field,
                Some(float_value(value)),
                "must be a rate from 0 to 1",
            );
        }
        ok
    }

    /// Checks that `field` is no longer than the setting `than`.
    pub fn not_longer(&mut self, field: &str, value: Duration, than: &str, limit: Duration) {
        if value > limit {
            self.problem(
                field,
                Some(duration_value(value)),
                format!(
                    "must not be longer than {than} ({} > {})",
                    humantime::format_duration(value),
                    humantime::format_duration(limit)
                ),
            );
        }
    }

    /// Checks that `field` is no shorter than the setting `than`.
    pub fn not_shorter(&mut self, field: &str, value: Duration, than: &str, limit: Duration) {
        if value < limit {
            self.problem(
                field,
                Some(duration_value(value)),
                format!(
                    "must not be shorter than {than} ({} < {})",
                    humantime::format_duration(value),
                    humantime::format_duration(limit)
                ),
            );
        }
    }

    /// The problems found, if any.
    pub fn finish(self) -> Result<(), InvalidConfig> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(InvalidConfig {
                problems: self.problems,
                more: self.more,
            })
        }
    }
}

/// The durations a setting accepts, from `min` to `max` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Durations {
    /// The shortest.
    pub min: Duration,
    /// The longest.
    pub max: Duration,
}

impl Durations {
    /// Any duration from zero to `max`.
    pub const fn up_to(max: Duration) -> Self {
        Durations {
            min: Duration::ZERO,
            max,
        }
    }

    /// Any duration above zero up to `max`.
    pub const fn positive(max: Duration) -> Self {
        Durations {
            min: Duration::from_nanos(1),
            max,
        }
    }

    /// Any duration from `min` to `max`.
    pub const fn between(min: Duration, max: Duration) -> Self {
        Durations { min, max }
    }

    /// Whether `value` is in the range.
    pub fn contains(&self, value: Duration) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// Says what the range accepts: `must be at most 1year`.
impl fmt::Display for Durations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let max = humantime::format_duration(self.max);
        if self.min.is_zero() {
            write!(f, "must be at most {max}")
        } else if self.min == Duration::from_nanos(1) {
            write!(f, "must be a positive duration of at most {max}")
        } else {
            let min = humantime::format_duration(self.min);
            write!(f, "must be at least {min} and at most {max}")
        }
    }
}

/// The whole numbers a setting accepts, from `min` to `max` inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// The least.
    pub min: u64,
    /// The most.
    pub max: u64,
}

impl Counts {
    /// From `min` to `max`.
    pub const fn new(min: u64, max: u64) -> Self {
        Counts { min, max }
    }

    /// Whether `value` is in the range.
    pub fn contains(&self, value: u64) -> bool {
        (self.min..=self.max).contains(&value)
    }
}

/// Says what the range accepts: `must be at least 1 and at most 16`.
impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.min == 0 {
            write!(f, "must be at most {}", self.max)
        } else {
            write!(f, "must be at least {} and at most {}", self.min, self.max)
        }
    }
}

/// The numbers a setting accepts, from `min` to `max` inclusive; never NaN
/// nor an infinity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Numbers {
    /// The least.
    pub min: f64,
    /// The most.
    pub max: f64,
}

impl Numbers {
    /// From `min` to `max`, both finite.
    pub const fn new(min: f64, max: f64) -> Self {
        Numbers { min, max }
    }

    /// Whether `value` is in the range; NaN is not.
    pub fn contains(&self, value: f64) -> bool {
        (self.min..=self.max).contains(&value)
    }

    /// `value` brought into the range, NaN to the least: for code that must
    /// not trust that its config was checked.
    pub fn clamp(&self, value: f64) -> f64 {
        if value.is_nan() {
            self.min
        } else {
            value.clamp(self.min, self.max)
        }
    }
}

/// Says what the range accepts: `must be a number from 1 to 100`.
impl fmt::Display for Numbers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "must be a number from {} to {}", self.min, self.max)
    }
}

/// Text as an error message shows it: quoted, and cut after 64 characters
/// (with its length in bytes), so that a pasted blob cannot flood a log.
pub fn shown(text: &str) -> String {
    const SHOWN_CHARS: usize = 64;
    if text.chars().count() <= SHOWN_CHARS {
        format!("{text:?}")
    } else {
        let head: String = text.chars().take(SHOWN_CHARS).collect();
        format!("{head:?}... ({} bytes)", text.len())
    }
}

/// A duration as a configuration file writes it: `"1m 30s"`.
pub fn duration_value(value: Duration) -> String {
    format!("\"{}\"", humantime::format_duration(value))
}

/// A number as a configuration file writes it: `2.0`, `5e-324`, `nan`.
pub fn float_value(value: f64) -> String {
    if value.is_nan() {
        "nan".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        format!("{value:?}")
    }
}

#[cfg(test)]
mod tests;
