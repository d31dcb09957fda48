//! The gateway's settings and their ranges.

use std::time::Duration;

use muster::config::{Checker, Counts, Durations, MAILBOXES, Numbers, Validate, YEAR};
use serde::{Deserialize, Serialize};

/// How the gateway batches and paces provider calls.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// How long a request waits for others to share its provider call.
    #[serde(with = "humantime_serde")]
    pub window: Duration,
    /// The most instance ids in one provider call.
    pub max_batch: usize,
    /// Provider calls per second, sustained.
    pub calls_per_second: f64,
    /// Provider calls that may go at once after a quiet spell.
    pub burst: u32,
    /// How many batches may be waiting on the provider at once.
    pub max_concurrent_batches: usize,
    /// A provider call that has not answered after this long is abandoned.
    #[serde(with = "humantime_serde")]
    pub call_timeout: Duration,
    /// Capacity of the gateway's mailbox, which the pollers feed.
    pub mailbox: usize,
    /// The first wait after a throttled call that gave no retry-after; it
    /// doubles with each throttled call in a row.
    #[serde(with = "humantime_serde")]
    pub throttle_backoff: Duration,
    /// The longest wait after throttled calls that gave no retry-after.
    #[serde(with = "humantime_serde")]
    pub throttle_backoff_cap: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            window: Duration::from_millis(100),
            max_batch: 100,
            calls_per_second: 5.0,
            burst: 5,
            max_concurrent_batches: 4,
            call_timeout: Duration::from_secs(30),
            mailbox: 65_536,
            throttle_backoff: Duration::from_secs(1),
            throttle_backoff_cap: Duration::from_secs(60),
        }
    }
}

/// What `calls_per_second` may be: from one call in a quarter of an hour
/// to a million a second. Past either end the pacing interval stops being
/// a duration the clock can hold.
pub(super) const CALLS_PER_SECOND: Numbers = Numbers::new(1e-3, 1e6);

/// What `max_batch` may be: clouds take at most hundreds of ids a call.
const BATCH_SIZES: Counts = Counts::new(1, 10_000);

/// What `burst` may be.
const BURSTS: Counts = Counts::new(1, 10_000);

/// What `max_concurrent_batches` may be.
const CONCURRENT_BATCHES: Counts = Counts::new(1, 1_024);

impl Validate for GatewayConfig {
    /// Every count from 1 to its maximum, the rate from 0.001 to a million
    /// calls a second, every duration up to a year (`window` may be zero),
    /// `throttle_backoff <= throttle_backoff_cap`.
    fn check(&self, at: &mut Checker) {
        at.duration("window", self.window, Durations::up_to(YEAR));
        at.count("max_batch", self.max_batch, BATCH_SIZES);
        at.number("calls_per_second", self.calls_per_second, CALLS_PER_SECOND);
        at.count("burst", self.burst, BURSTS);
        at.count(
            "max_concurrent_batches",
            self.max_concurrent_batches,
            CONCURRENT_BATCHES,
        );
        let waits = Durations::positive(YEAR);
        at.duration("call_timeout", self.call_timeout, waits);
        at.count("mailbox", self.mailbox, MAILBOXES);
        let backoff = at.duration("throttle_backoff", self.throttle_backoff, waits);
        let cap = at.duration("throttle_backoff_cap", self.throttle_backoff_cap, waits);
        if backoff && cap {
            at.not_longer(
                "throttle_backoff",
                self.throttle_backoff,
                "throttle_backoff_cap",
                self.throttle_backoff_cap,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut GatewayConfig);
        const HUGE: Duration = Duration::from_secs(u64::MAX);
        let cases: [(&str, Spoil); 18] = [
            ("max_batch", |c| c.max_batch = 0),
            ("max_batch", |c| c.max_batch = usize::MAX),
            ("mailbox", |c| c.mailbox = 0),
            ("mailbox", |c| c.mailbox = (1 << 24) + 1),
            ("calls_per_second", |c| c.calls_per_second = 0.0),
            ("calls_per_second", |c| c.calls_per_second = f64::NAN),
            ("calls_per_second", |c| c.calls_per_second = 5e-324),
            ("calls_per_second", |c| c.calls_per_second = 1e308),
            ("burst", |c| c.burst = 0),
            ("burst", |c| c.burst = u32::MAX),
            ("call_timeout", |c| c.call_timeout = Duration::ZERO),
            ("call_timeout", |c| c.call_timeout = HUGE),
            ("max_concurrent_batches", |c| c.max_concurrent_batches = 0),
            ("window", |c| c.window = HUGE),
            ("throttle_backoff", |c| {
                c.throttle_backoff = Duration::from_secs(120)
            }),
            ("throttle_backoff", |c| c.throttle_backoff = HUGE),
            ("throttle_backoff_cap", |c| c.throttle_backoff_cap = HUGE),
            ("throttle_backoff_cap", |c| {
                c.throttle_backoff_cap = Duration::ZERO
            }),
        ];
        for (field, spoil) in cases {
            let mut config = GatewayConfig::default();
            spoil(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.keys(), [field], "{error}");
        }
        GatewayConfig::default().validate().unwrap();
        let zero_window = GatewayConfig {
            window: Duration::ZERO,
            ..GatewayConfig::default()
        };
        zero_window.validate().unwrap();
        let slow = GatewayConfig {
            calls_per_second: 5e-324,
            ..GatewayConfig::default()
        };
        assert_eq!(
            slow.validate().unwrap_err().to_string(),
            "calls_per_second = 5e-324: must be a number from 0.001 to 1000000"
        );
    }
}
