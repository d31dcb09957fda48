//! Restart policies, restart delays and restart intensity.

use std::collections::VecDeque;
use std::time::Duration;

use muster::config::{Checker, Counts, Durations, Numbers, Validate, YEAR};
use rand::Rng;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

/// When a child is restarted after it exits on its own.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestartPolicy {
    /// Always restarted: after a failure (with backoff), after a bounce, and
    /// after a normal exit (after the bounce delay).
    #[default]
    Permanent,
    /// Restarted only after a failure or a bounce; a normal exit stops it.
    Transient,
    /// Never restarted.
    Temporary,
}

/// Whether a child's state outlives a restart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatePolicy {
    /// Each start builds the state afresh.
    #[default]
    Rebuilt,
    /// The state cell handed out by `StartCtx::kept` is the same on every
    /// start, so whatever the previous instance left in it (even when it
    /// panicked) is there for the next one.
    Kept,
}

/// A supervisor's timing: restart delays, restart intensity and shutdown.
/// Durations are written the human way (`3s`, `1m`, `250ms`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RestartConfig {
    /// Delay before the first restart after a failure.
    #[serde(with = "humantime_serde")]
    pub error_delay: Duration,
    /// Delay before a restart after a bounce or a normal exit.
    #[serde(with = "humantime_serde")]
    pub bounce_delay: Duration,
    /// Each further recent failure multiplies the delay by this factor.
    pub backoff_factor: f64,
    /// A child that ran longer than this before failing starts its count of
    /// recent failures again at one.
    #[serde(with = "humantime_serde")]
    pub backoff_reset_time: Duration,
    /// The longest delay, before jitter.
    #[serde(with = "humantime_serde")]
    pub max_delay: Duration,
    /// Restart intensity: more than this many restarts within
    /// `restart_window` and the supervisor gives up.
    pub max_restarts: u32,
    /// Restart intensity: the window `max_restarts` is counted over.
    #[serde(with = "humantime_serde")]
    pub restart_window: Duration,
    /// How long a child may take to stop before it is killed.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// Seed of the jitter; `None` seeds from the operating system. Tests set
    /// it to make delays repeatable.
    pub jitter_seed: Option<u64>,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            error_delay: Duration::from_secs(3),
            bounce_delay: Duration::from_millis(10),
            backoff_factor: 1.2,
            backoff_reset_time: Duration::from_secs(60),
            max_delay: Duration::from_secs(120),
            max_restarts: 5,
            restart_window: Duration::from_secs(10),
            shutdown_timeout: Duration::from_secs(5),
            jitter_seed: None,
        }
    }
}

/// What a restart delay may be.
const DELAYS: Durations = Durations::positive(YEAR);

/// What the restart backoff factor may be.
const FACTORS: Numbers = Numbers::new(1.0, 100.0);

/// What `max_restarts` may be.
const RESTARTS: Counts = Counts::new(0, 1_000_000);

impl Validate for RestartConfig {
    /// Every duration up to a year, those that are delays or windows above
    /// zero; the factor from 1 to 100; `max_delay >= error_delay`.
    fn check(&self, at: &mut Checker) {
        let error = at.duration("error_delay", self.error_delay, DELAYS);
        at.duration("bounce_delay", self.bounce_delay, Durations::up_to(YEAR));
        at.number("backoff_factor", self.backoff_factor, FACTORS);
        at.duration("backoff_reset_time", self.backoff_reset_time, DELAYS);
        let max = at.duration("max_delay", self.max_delay, DELAYS);
        if error && max {
            at.not_shorter("max_delay", self.max_delay, "error_delay", self.error_delay);
        }
        at.count("max_restarts", self.max_restarts, RESTARTS);
        at.duration("restart_window", self.restart_window, DELAYS);
        at.duration(
            "shutdown_timeout",
            self.shutdown_timeout,
            Durations::up_to(YEAR),
        );
    }
}

impl RestartConfig {
    /// The delay before the next restart after `recent_failures` recent
    /// failures (at least one): `error_delay × factor^(n−1)`, capped at
    /// `max_delay`, then jittered by ±10 %.
    pub fn failure_delay(&self, recent_failures: u32, rng: &mut impl Rng) -> Duration {
        let exp = recent_failures.saturating_sub(1).min(i32::MAX as u32) as i32;
        let base = self.error_delay.as_secs_f64() * self.backoff_factor.powi(exp);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter: f64 = rng.random_range(0.9..=1.1);
        // An unchecked config (a factor of NaN, a delay of u64::MAX
        // seconds) must not panic here: past what a Duration holds, the
        // delay is the longest one configured.
        Duration::try_from_secs_f64(capped * jitter).unwrap_or(self.max_delay)
    }
}

/// Counts restarts in a sliding window (OTP's restart intensity).
#[derive(Debug, Default)]
pub(crate) struct Intensity {
    times: VecDeque<Instant>,
}

impl Intensity {
    /// Records a restart at `now`; returns false when that makes more than
    /// `max` within `window`.
    pub(crate) fn record(&mut self, now: Instant, max: u32, window: Duration) -> bool {
        while let Some(first) = self.times.front() {
            if now.duration_since(*first) >= window {
                self.times.pop_front();
            } else {
                break;
            }
        }
        self.times.push_back(now);
        self.times.len() <= max as usize
    }

    pub(crate) fn recent(&self) -> usize {
        self.times.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn delays_grow_by_the_factor_within_jitter_and_cap() {
        let cfg = RestartConfig::default();
        let mut rng = StdRng::seed_from_u64(7);
        for n in 1..40u32 {
            let base = (3.0 * 1.2f64.powi(n as i32 - 1)).min(120.0);
            for _ in 0..50 {
                let d = cfg.failure_delay(n, &mut rng).as_secs_f64();
                assert!(d >= base * 0.9 - 1e-9 && d <= base * 1.1 + 1e-9, "{n}: {d}");
            }
        }
    }

    #[test]
    fn config_reads_human_durations_and_names_bad_fields() {
        let cfg: RestartConfig = serde_json::from_str(
            r#"{"error_delay":"250ms","max_delay":"1m","max_restarts":3,"restart_window":"30s"}"#,
        )
        .unwrap();
        assert_eq!(cfg.error_delay, Duration::from_millis(250));
        assert_eq!(cfg.max_delay, Duration::from_secs(60));
        assert_eq!(cfg.bounce_delay, Duration::from_millis(10));
        assert!(cfg.validate().is_ok());

        let bad = RestartConfig {
            backoff_factor: 0.5,
            ..RestartConfig::default()
        };
        let e = bad.validate().unwrap_err();
        assert_eq!(e.keys(), ["backoff_factor"]);
        assert_eq!(
            e.to_string(),
            "backoff_factor = 0.5: must be a number from 1 to 100"
        );
        let bad = RestartConfig {
            max_delay: Duration::from_secs(1),
            ..RestartConfig::default()
        };
        assert_eq!(
            bad.validate().unwrap_err().to_string(),
            "max_delay = \"1s\": must not be shorter than error_delay (1s < 3s)"
        );
    }

    #[test]
    fn every_setting_out_of_range_is_named() {
        let huge = Duration::from_secs(u64::MAX);
        let bad = RestartConfig {
            error_delay: Duration::ZERO,
            bounce_delay: huge,
            backoff_factor: f64::INFINITY,
            backoff_reset_time: Duration::ZERO,
            max_delay: huge,
            max_restarts: u32::MAX,
            restart_window: Duration::ZERO,
            shutdown_timeout: huge,
            jitter_seed: Some(u64::MAX),
        };
        assert_eq!(
            bad.validate().unwrap_err().keys(),
            [
                "error_delay",
                "bounce_delay",
                "backoff_factor",
                "backoff_reset_time",
                "max_delay",
                "max_restarts",
                "restart_window",
                "shutdown_timeout",
            ]
        );
    }

    #[test]
    fn an_unchecked_config_gives_a_delay_without_panicking() {
        let mut rng = StdRng::seed_from_u64(7);
        let huge = RestartConfig {
            error_delay: Duration::MAX,
            max_delay: Duration::MAX,
            backoff_factor: f64::NAN,
            ..RestartConfig::default()
        };
        for n in [1, 2, u32::MAX] {
            assert!(huge.failure_delay(n, &mut rng) <= Duration::MAX);
        }
        let zero = RestartConfig {
            error_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            backoff_factor: f64::INFINITY,
            ..RestartConfig::default()
        };
        assert_eq!(zero.failure_delay(40, &mut rng), Duration::ZERO);
    }

    #[test]
    fn intensity_counts_within_the_window() {
        let mut i = Intensity::default();
        let t0 = Instant::now();
        let w = Duration::from_secs(10);
        for k in 0..5 {
            assert!(i.record(t0 + Duration::from_secs(k), 5, w));
        }
        assert!(!i.record(t0 + Duration::from_secs(5), 5, w));
        let mut i = Intensity::default();
        for k in 0..20 {
            assert!(i.record(t0 + Duration::from_secs(3 * k), 5, w));
        }
    }
}
