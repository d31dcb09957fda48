//! Pacing: the rate slots every provider call reserves, and the wait after
//! a throttled call.

use std::time::Duration;

use muster::clock::later;
use tokio::time::Instant;

use super::config::{CALLS_PER_SECOND, GatewayConfig};

/// Paces calls: `burst` calls may go at once, then one every
/// `1 / calls_per_second`, so no window of `t` seconds holds more than
/// `burst + t × calls_per_second` calls. Each call reserves its slot when its
/// batch is sent, so batches in flight together cannot overrun the limit.
#[derive(Debug)]
pub(super) struct RateSlots {
    emission: Duration,
    tolerance: Duration,
    /// When the next call would go if no burst were allowed.
    next: Instant,
    /// No call goes before this (the provider asked us to wait).
    blocked_until: Instant,
}

impl RateSlots {
    /// Slots at `config`'s rate, with the whole burst free at `now`. A
    /// config that was never checked is brought within range rather than
    /// trusted: a rate of 5e-324 would make the interval overflow.
    pub(super) fn new(config: &GatewayConfig, now: Instant) -> Self {
        let rate = CALLS_PER_SECOND.clamp(config.calls_per_second);
        let emission = Duration::from_secs_f64(1.0 / rate);
        RateSlots {
            emission,
            tolerance: emission.saturating_mul(config.burst.saturating_sub(1)),
            next: now,
            blocked_until: now,
        }
    }

    /// The time at which one more call may go, reserved for it.
    pub(super) fn reserve(&mut self, now: Instant) -> Instant {
        let next = self.next.max(now);
        let start = next
            .checked_sub(self.tolerance)
            .map_or(now, |start| start.max(now))
            .max(self.blocked_until);
        self.next = later(next.max(start), self.emission);
        start
    }

    /// Lets no call go before `until` (the provider asked us to wait).
    pub(super) fn block_until(&mut self, until: Instant) {
        self.blocked_until = self.blocked_until.max(until);
    }

    /// How long calls wait yet because the provider asked them to; `None`
    /// when they need not.
    pub(super) fn blocked_for(&self, now: Instant) -> Option<Duration> {
        (self.blocked_until > now).then(|| self.blocked_until - now)
    }
}

/// The wait after `in_a_row` throttled calls before this one that gave no
/// retry-after: the backoff, doubled each time, capped.
pub(super) fn throttle_wait(config: &GatewayConfig, in_a_row: u32) -> Duration {
    let doubled = config
        .throttle_backoff
        .saturating_mul(1u32 << in_a_row.min(16));
    doubled.min(config.throttle_backoff_cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_slots_allow_a_burst_then_pace() {
        let config = GatewayConfig {
            calls_per_second: 2.0,
            burst: 3,
            ..GatewayConfig::default()
        };
        let now = Instant::now();
        let mut slots = RateSlots::new(&config, now);
        let starts: Vec<Duration> = (0..6).map(|_| slots.reserve(now) - now).collect();
        let ms = |n| Duration::from_millis(n);
        assert_eq!(starts, [ms(0), ms(0), ms(0), ms(500), ms(1000), ms(1500)]);
    }

    #[test]
    fn rate_slots_refill_while_idle_and_honour_a_block() {
        let config = GatewayConfig {
            calls_per_second: 1.0,
            burst: 2,
            ..GatewayConfig::default()
        };
        let start = Instant::now();
        let mut slots = RateSlots::new(&config, start);
        slots.reserve(start);
        slots.reserve(start);
        let later = start + Duration::from_secs(10);
        assert_eq!(
            slots.reserve(later),
            later,
            "a quiet spell refills the burst"
        );
        assert_eq!(slots.reserve(later), later);
        assert_eq!(slots.reserve(later), later + Duration::from_secs(1));
        slots.block_until(later + Duration::from_secs(30));
        assert_eq!(slots.reserve(later), later + Duration::from_secs(30));
    }

    #[test]
    fn no_window_holds_more_calls_than_the_limit_allows() {
        let config = GatewayConfig {
            calls_per_second: 4.0,
            burst: 1,
            ..GatewayConfig::default()
        };
        let now = Instant::now();
        let mut slots = RateSlots::new(&config, now);
        let starts: Vec<Instant> = (0..100).map(|_| slots.reserve(now)).collect();
        for (i, first) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|at| **at < *first + Duration::from_secs(1))
                .count();
            assert!(in_window <= 4, "{in_window} calls within a second");
        }
    }

    #[test]
    fn settings_past_their_range_pace_without_panicking() {
        let now = Instant::now();
        let huge = Duration::from_secs(u64::MAX);
        for (rate, burst) in [
            (5e-324, u32::MAX),
            (0.0, 0),
            (-1.0, 1),
            (f64::NAN, 5),
            (f64::INFINITY, u32::MAX),
            (1e308, 1),
        ] {
            let config = GatewayConfig {
                calls_per_second: rate,
                burst,
                throttle_backoff: huge,
                throttle_backoff_cap: huge,
                ..GatewayConfig::default()
            };
            let mut slots = RateSlots::new(&config, now);
            slots.block_until(later(now, huge));
            for _ in 0..1000 {
                assert!(slots.reserve(now) >= now);
            }
            assert!(slots.blocked_for(now).is_some());
            assert_eq!(throttle_wait(&config, u32::MAX), huge);
        }
        // The slowest rate allowed paces at its own interval.
        let slowest = GatewayConfig {
            calls_per_second: 5e-324,
            burst: 1,
            ..GatewayConfig::default()
        };
        let mut slots = RateSlots::new(&slowest, now);
        slots.reserve(now);
        assert_eq!(slots.reserve(now) - now, Duration::from_secs(1000));
    }

    #[test]
    fn throttle_wait_doubles_up_to_its_cap() {
        let config = GatewayConfig::default();
        let waits: Vec<u64> = (0..40)
            .step_by(5)
            .chain(0..7)
            .map(|n| throttle_wait(&config, n).as_secs())
            .collect();
        assert_eq!(
            waits,
            [1, 32, 60, 60, 60, 60, 60, 60, 1, 2, 4, 8, 16, 32, 60]
        );
    }
}
