//! A cheap clock for timing handlers.
//!
//! Every metered message is timed, and reading `Instant::now` twice cost
//! about 60 ns on the machines muster was measured on, more than the rest of
//! the metering together. On x86_64 the time-stamp counter is read instead
//! (about 10 ns) and converted with a factor measured once, over a
//! millisecond, when the first mailbox is made. Handler times are only as
//! right as the counter is steady across cores, which holds on CPUs with an
//! invariant TSC (every x86_64 server CPU of the last decade); nothing but
//! the handling-time figures depends on it. Elsewhere `Instant` is used.

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    static NANOS_PER_TICK: OnceLock<f64> = OnceLock::new();

    #[inline]
    pub(crate) fn now() -> u64 {
        // SAFETY: RDTSC exists on every x86_64 CPU and has no preconditions.
        unsafe { core::arch::x86_64::_rdtsc() }
    }

    pub(crate) fn calibrate() {
        NANOS_PER_TICK.get_or_init(|| {
            let (i0, t0) = (Instant::now(), now());
            while i0.elapsed() < Duration::from_millis(1) {
                std::hint::spin_loop();
            }
            let (ns, t1) = (i0.elapsed().as_nanos() as f64, now());
            if t1 > t0 { ns / (t1 - t0) as f64 } else { 0.0 }
        });
    }

    #[inline]
    pub(crate) fn nanos_since(start: u64) -> u64 {
        let ticks = now().saturating_sub(start);
        calibrate();
        let factor = NANOS_PER_TICK.get().copied().unwrap_or(0.0);
        (ticks as f64 * factor) as u64
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use std::sync::OnceLock;
    use std::time::Instant;

    static BASE: OnceLock<Instant> = OnceLock::new();

    #[inline]
    pub(crate) fn now() -> u64 {
        let base = BASE.get_or_init(Instant::now);
        u64::try_from(base.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub(crate) fn calibrate() {
        BASE.get_or_init(Instant::now);
    }

    #[inline]
    pub(crate) fn nanos_since(start: u64) -> u64 {
        now().saturating_sub(start)
    }
}

pub(crate) use imp::{calibrate, nanos_since, now};

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
