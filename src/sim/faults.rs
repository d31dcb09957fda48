//! The faults in force and how they are drawn: chances from the seeded
//! generator, the cloud's own rate limit, and the provider's latency.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::{FaultConfig, Sim, State};
use crate::config::{InvalidConfig, Validate};

impl Sim {
    /// Changes the faults injected from now on, e.g. to end a spell of
    /// provider errors; a bad setting is refused, naming the field, and the
    /// faults in force stay.
    pub fn set_faults(&self, faults: FaultConfig) -> Result<(), InvalidConfig> {
        faults.validate()?;
        self.shared.with(|state| state.faults = faults);
        Ok(())
    }

    /// The faults injected now.
    pub fn faults(&self) -> FaultConfig {
        self.shared.with(|state| state.faults)
    }
}

impl State {
    /// Draws whether an event with probability `rate` happens. Any rate is
    /// safe: NaN and rates outside 0..=1 never or always fire.
    pub(super) fn chance(&mut self, rate: f64) -> bool {
        rate > 0.0 && self.rng.random::<f64>() < rate
    }

    /// Counts a provider call against the rate limit; answers how long to
    /// wait when it is over the limit.
    pub(super) fn over_rate_limit(&mut self, limit: Option<u32>, now: Instant) -> Option<Duration> {
        let limit = limit?;
        let window = Duration::from_secs(1);
        let (start, calls) = match self.rate_window {
            Some((start, calls)) if now.duration_since(start) < window => (start, calls + 1),
            _ => (now, 1),
        };
        self.rate_window = Some((start, calls));
        (calls > limit).then(|| window.saturating_sub(now.duration_since(start)))
    }
}
