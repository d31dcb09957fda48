//! The poll schedule's settings and their ranges.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Checker, Durations, Numbers, Validate, YEAR};

/// What each of the schedule's intervals may be: above zero, at most a year.
const INTERVALS: Durations = Durations::positive(YEAR);

/// What the short-poll backoff factor may be.
const BACKOFFS: Numbers = Numbers::new(1.0, 100.0);

/// The poll schedule's settings.
///
/// In a configuration file the durations are human strings (`"3s"`, `"1m"`,
/// `"15m"`) and any field left out takes its default. Reading one checks
/// nothing but the spelling: [`Validate`] checks the ranges.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PollConfig {
    /// The first interval of the short-poll phase.
    #[serde(with = "humantime_serde")]
    pub short_poll: Duration,
    /// What each bump multiplies the short-poll interval by.
    pub short_poll_backoff: f64,
    /// The longest short-poll interval.
    #[serde(with = "humantime_serde")]
    pub short_poll_cap: Duration,
    /// The interval of the long-poll phase.
    #[serde(with = "humantime_serde")]
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

impl Validate for PollConfig {
    /// Every interval above zero and at most a year, the factor from 1 to
    /// 100, and short poll <= cap <= long poll.
    fn check(&self, at: &mut Checker) {
        let short = at.duration("short_poll", self.short_poll, INTERVALS);
        at.number("short_poll_backoff", self.short_poll_backoff, BACKOFFS);
        let cap = at.duration("short_poll_cap", self.short_poll_cap, INTERVALS);
        let long = at.duration("long_poll", self.long_poll, INTERVALS);
        if short && cap {
            at.not_longer(
                "short_poll",
                self.short_poll,
                "short_poll_cap",
                self.short_poll_cap,
            );
        }
        if cap && long {
            at.not_longer(
                "short_poll_cap",
                self.short_poll_cap,
                "long_poll",
                self.long_poll,
            );
        }
    }
}
