//! Restart policies, restart delays and restart intensity.

use std::collections::VecDeque;
use std::time::Duration;

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

/// A field of [`RestartConfig`] that is out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid restart config: {field} {problem}")]
pub struct ConfigError {
    /// The field's name.
    pub field: &'static str,
    /// What is wrong with it.
    pub problem: String,
}

impl RestartConfig {
    /// Checks every field; the error names the first one out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |field, problem: &str| {
            Err(ConfigError {
                field,
                problem: problem.to_owned(),
            })
        };
        if self.error_delay.is_zero() {
            return err("error_delay", "must be positive");
        }
        if !self.backoff_factor.is_finite() || self.backoff_factor < 1.0 {
            return err("backoff_factor", "must be a finite number >= 1");
        }
        if self.backoff_reset_time.is_zero() {
            return err("backoff_reset_time", "must be positive");
        }
        if self.max_delay < self.error_delay {
            return err("max_delay", "must not be less than error_delay");
        }
        if self.restart_window.is_zero() {
            return err("restart_window", "must be positive");
        }
        Ok(())
    }

    /// The delay before the next restart after `recent_failures` recent
    /// failures (at least one): `error_delay × factor^(n−1)`, capped at
    /// `max_delay`, then jittered by ±10 %.
    pub fn failure_delay(&self, recent_failures: u32, rng: &mut impl Rng) -> Duration {
        let exp = recent_failures.saturating_sub(1).min(i32::MAX as u32) as i32;
        let base = self.error_delay.as_secs_f64() * self.backoff_factor.powi(exp);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter: f64 = rng.random_range(0.9..=1.1);
        Duration::from_secs_f64(capped * jitter)
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
        assert_eq!(e.field, "backoff_factor");
        assert!(e.to_string().contains("backoff_factor"));
        let bad = RestartConfig {
            max_delay: Duration::from_secs(1),
            ..RestartConfig::default()
        };
        assert_eq!(bad.validate().unwrap_err().field, "max_delay");
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
