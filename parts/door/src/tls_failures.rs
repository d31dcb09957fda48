//! Failed TLS handshakes at the door: each is counted
//! (`muster_agents_logins_total{result="tls"}`), but logged at most once
//! per [`LOG_EVERY`], with how many failed since the last line, so that a
//! scanner or a misconfigured fleet cannot flood the log.

use std::sync::Mutex;
use std::time::Duration;

use muster::sync::lock;
use tokio::time::Instant;

/// At most one log line of failed handshakes per this.
pub(crate) const LOG_EVERY: Duration = Duration::from_secs(60);

/// The failed handshakes not logged yet, and when the last line was.
#[derive(Debug, Default)]
pub(crate) struct TlsFailures {
    state: Mutex<Unlogged>,
}

#[derive(Debug, Default)]
struct Unlogged {
    logged_at: Option<Instant>,
    count: u64,
}

impl TlsFailures {
    /// Notes one failed handshake at `now`. When a line is due, answers
    /// how many it reports: this one and those since the last line.
    pub(crate) fn failed(&self, now: Instant) -> Option<u64> {
        let mut state = lock(&self.state);
        state.count += 1;
        let due = state
            .logged_at
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_EVERY);
        if !due {
            return None;
        }
        state.logged_at = Some(now);
        Some(std::mem::take(&mut state.count))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_line_per_interval_reports_every_failure_since_the_last() {
        let failures = TlsFailures::default();
        let start = Instant::now();
        assert_eq!(failures.failed(start), Some(1), "the first is logged");
        for n in 1..=500 {
            assert_eq!(failures.failed(start + Duration::from_millis(n)), None);
        }
        let next = start + LOG_EVERY;
        assert_eq!(failures.failed(next), Some(501));
        assert_eq!(failures.failed(next + LOG_EVERY / 2), None);
        assert_eq!(failures.failed(next + LOG_EVERY * 3), Some(2));
    }
}
