//! Wall-clock time, injected so that tests can move it; and deadlines on
//! tokio's clock that no duration can overflow.

use crate::sync::lock;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

/// The furthest a deadline is set from now: tokio's own horizon for its
/// timers, beyond any setting, and near enough that no `Instant` overflows.
pub const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// `by` after `now`, but never further than [`FAR_FUTURE`]: whatever the
/// duration (a setting nobody checked, a provider's retry-after), the
/// deadline neither panics nor wraps.
pub fn later(now: Instant, by: Duration) -> Instant {
    now.checked_add(by.min(FAR_FUTURE))
        .or_else(|| now.checked_add(Duration::from_secs(86_400)))
        .unwrap_or(now)
}

/// A source of wall-clock time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that stands still until it is told to move.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    /// A clock that reads `now` until it is set or advanced.
    pub fn new(now: SystemTime) -> Self {
        ManualClock {
            now: Mutex::new(now),
        }
    }

    /// Makes the clock read `now`.
    pub fn set(&self, now: SystemTime) {
        *self.lock() = now;
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        *self.lock() += by;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SystemTime> {
        // A poisoned lock still holds a valid time: a panic elsewhere must not
        // stop the clock.
        lock(&self.now)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.lock()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deadline_never_overflows() {
        let now = Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
        assert_eq!(later(now, Duration::MAX), now + FAR_FUTURE);
        assert_eq!(later(now, Duration::from_secs(u64::MAX)), now + FAR_FUTURE);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_secs(300));
        assert_eq!(clock.now(), start + Duration::from_secs(300));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }

    #[test]
    fn system_clock_reads_the_system_time() {
        let before = SystemTime::now();
        let read = SystemClock.now();
        assert!(read >= before);
    }
}
