//! A cheap clock for timing handlers.
//!
//! Every metered message is timed, and reading `Instant::now` twice cost
//! about 60 ns on the machines muster was measured on, more than the rest of
//! the metering together. `quanta` reads the CPU's time-stamp counter where it
//! is steady (and falls back to the OS clock where it is not), calibrated once
//! when the first mailbox is made. Only the handling-time figures depend on
//! it.

use std::sync::OnceLock;

static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();

fn clock() -> &'static quanta::Clock {
    CLOCK.get_or_init(quanta::Clock::new)
}

/// Calibrates the clock now rather than on the first timed message.
pub(crate) fn calibrate() {
    clock();
}

/// A reading of the clock, in its own units.
#[inline]
pub(crate) fn now() -> u64 {
    clock().raw()
}

/// Nanoseconds since the reading `start`.
#[inline]
pub(crate) fn nanos_since(start: u64) -> u64 {
    nanos_between(start, now())
}

/// Nanoseconds from the reading `start` to the reading `end`.
#[inline]
pub(crate) fn nanos_between(start: u64, end: u64) -> u64 {
    clock().delta_as_nanos(start, end)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    #[test]
    fn ticks_measure_real_time() {
        super::calibrate();
        let start = super::now();
        let i0 = Instant::now();
        while i0.elapsed() < Duration::from_millis(5) {
            std::hint::spin_loop();
        }
        let real = i0.elapsed().as_nanos() as f64;
        let measured = super::nanos_since(start) as f64;
        assert!((measured / real - 1.0).abs() < 0.2, "{measured} vs {real}");
    }
}
