//! The poll schedule's settings, and how a configuration file spells them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{ConfigError, parse_duration};

/// The poll schedule's settings.
///
/// In a configuration file the durations are human strings (`"3s"`, `"1m"`,
/// `"15m"`) and any field left out takes its default; reading one validates
/// it, so a bad value is refused with the field's name.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawPollConfig")]
pub struct PollConfig {
    /// The first interval of the short-poll phase.
    #[serde(serialize_with = "humantime_serde::serialize")]
    pub short_poll: Duration,
    /// What each bump multiplies the short-poll interval by.
    pub short_poll_backoff: f64,
    /// The longest short-poll interval.
    #[serde(serialize_with = "humantime_serde::serialize")]
    pub short_poll_cap: Duration,
    /// The interval of the long-poll phase.
    #[serde(serialize_with = "humantime_serde::serialize")]
    pub long_poll: Duration,
}

impl Default for PollConfig {
    /// Juju's values: 3 s, x2, capped at 1 min; 15 min once settled.
    fn default() -> Self {
        PollConfig {
            short_poll: Duration::from_secs(3),
            short_poll_backoff: 2.0,
            short_poll_cap: Duration::from_secs(60),
            long_poll: Duration::from_secs(15 * 60),
        }
    }
}

impl PollConfig {
    /// Checks that every duration is positive, the backoff factor is a
    /// finite number of at least 1, and short poll <= cap <= long poll.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (field, value) in [
            ("short_poll", self.short_poll),
            ("short_poll_cap", self.short_poll_cap),
            ("long_poll", self.long_poll),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(
                    field,
                    "must be a positive duration, got 0s",
                ));
            }
        }
        // Written so that NaN fails too.
        if !(self.short_poll_backoff.is_finite() && self.short_poll_backoff >= 1.0) {
            return Err(ConfigError::new(
                "short_poll_backoff",
                format!(
                    "must be a finite number of at least 1, got {}",
                    self.short_poll_backoff
                ),
            ));
        }
        if self.short_poll > self.short_poll_cap {
            return Err(ConfigError::new(
                "short_poll",
                format!(
                    "must not be longer than short_poll_cap ({} > {})",
                    humantime::format_duration(self.short_poll),
                    humantime::format_duration(self.short_poll_cap)
                ),
            ));
        }
        if self.short_poll_cap > self.long_poll {
            return Err(ConfigError::new(
                "short_poll_cap",
                format!(
                    "must not be longer than long_poll ({} > {})",
                    humantime::format_duration(self.short_poll_cap),
                    humantime::format_duration(self.long_poll)
                ),
            ));
        }
        Ok(())
    }
}

/// [`PollConfig`] as a configuration file spells it, before validation.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPollConfig {
    short_poll: Option<String>,
    short_poll_backoff: Option<f64>,
    short_poll_cap: Option<String>,
    long_poll: Option<String>,
}

impl TryFrom<RawPollConfig> for PollConfig {
    type Error = ConfigError;

    fn try_from(raw: RawPollConfig) -> Result<Self, ConfigError> {
        let defaults = PollConfig::default();
        let duration = |field, text: Option<String>, default| match text {
            Some(text) => parse_duration(field, &text),
            None => Ok(default),
        };
        let config = PollConfig {
            short_poll: duration("short_poll", raw.short_poll, defaults.short_poll)?,
            short_poll_backoff: raw
                .short_poll_backoff
                .unwrap_or(defaults.short_poll_backoff),
            short_poll_cap: duration(
                "short_poll_cap",
                raw.short_poll_cap,
                defaults.short_poll_cap,
            )?,
            long_poll: duration("long_poll", raw.long_poll, defaults.long_poll)?,
        };
        config.validate()?;
        Ok(config)
    }
}
