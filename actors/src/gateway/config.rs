//! The gateway's settings and their validation.

use std::time::Duration;

use muster::error::ConfigError;
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

impl GatewayConfig {
    /// Checks every setting; the error names the first one that is wrong.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = [
            ("gateway.call_timeout", self.call_timeout),
            ("gateway.throttle_backoff", self.throttle_backoff),
            ("gateway.throttle_backoff_cap", self.throttle_backoff_cap),
        ];
        for (field, value) in positive {
            if value.is_zero() {
                return Err(ConfigError::new(field, "must be a positive duration"));
            }
        }
        if self.max_batch == 0 {
            return Err(ConfigError::new("gateway.max_batch", "must be at least 1"));
        }
        if !(self.calls_per_second.is_finite() && self.calls_per_second > 0.0) {
            return Err(ConfigError::new(
                "gateway.calls_per_second",
                format!("must be a positive number, not {}", self.calls_per_second),
            ));
        }
        if self.mailbox == 0 {
            return Err(ConfigError::new("gateway.mailbox", "must be at least 1"));
        }
        if self.burst == 0 {
            return Err(ConfigError::new("gateway.burst", "must be at least 1"));
        }
        if self.max_concurrent_batches == 0 {
            return Err(ConfigError::new(
                "gateway.max_concurrent_batches",
                "must be at least 1",
            ));
        }
        if self.throttle_backoff > self.throttle_backoff_cap {
            return Err(ConfigError::new(
                "gateway.throttle_backoff",
                "must not exceed gateway.throttle_backoff_cap",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_setting_is_named() {
        type Spoil = fn(&mut GatewayConfig);
        let cases: [(&str, Spoil); 8] = [
            ("gateway.max_batch", |c| c.max_batch = 0),
            ("gateway.mailbox", |c| c.mailbox = 0),
            ("gateway.calls_per_second", |c| c.calls_per_second = 0.0),
            ("gateway.calls_per_second", |c| {
                c.calls_per_second = f64::NAN
            }),
            ("gateway.burst", |c| c.burst = 0),
            ("gateway.call_timeout", |c| c.call_timeout = Duration::ZERO),
            ("gateway.max_concurrent_batches", |c| {
                c.max_concurrent_batches = 0
            }),
            ("gateway.throttle_backoff", |c| {
                c.throttle_backoff = Duration::from_secs(120)
            }),
        ];
        for (field, spoil) in cases {
            let mut config = GatewayConfig::default();
            spoil(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.field, field, "{error}");
        }
        GatewayConfig::default().validate().unwrap();
    }
}
