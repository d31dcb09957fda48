//! What the swarm counts, and the line it prints each second.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

/// The swarm's counts, shared by its agents and its reporter.
#[derive(Debug, Default)]
pub struct Stats {
    /// Agents in the swarm.
    pub agents: usize,
    /// Agents logged in now.
    pub connected: usize,
    /// Since when every agent has been logged in, while they all are.
    pub full_since: Option<Instant>,
    /// Logins answered since the start.
    pub logins: u64,
    /// Failures since the start, by kind: a close code (`4401`), an HTTP
    /// status (`http 503`), or `connect`, `tls`, `handshake`, `timeout`,
    /// `dropped`.
    pub failures: BTreeMap<String, u64>,
    /// Login latencies since the last line, in microseconds.
    window: Vec<u32>,
}

impl Stats {
    /// Counts for a swarm of `agents`.
    pub fn new(agents: usize) -> Self {
        Stats {
            agents,
            ..Stats::default()
        }
    }

    /// A login answered after `latency`.
    pub fn login(&mut self, latency: Duration) {
        self.connected += 1;
        if self.connected == self.agents {
            self.full_since = Some(Instant::now());
        }
        self.logins += 1;
        self.window
            .push(latency.as_micros().min(u32::MAX as u128) as u32);
    }

    /// A logged-in agent's connection ended.
    pub fn left(&mut self) {
        self.connected = self.connected.saturating_sub(1);
        self.full_since = None;
    }

    /// A failure of kind `kind`.
    pub fn failure(&mut self, kind: impl Into<String>) {
        *self.failures.entry(kind.into()).or_default() += 1;
    }

    /// Every failure since the start.
    pub fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    /// The line of the second that just ended, and a new window.
    pub fn line(&mut self, elapsed: Duration, window: Duration) -> String {
        let mut latencies = std::mem::take(&mut self.window);
        latencies.sort_unstable();
        let rate = latencies.len() as f64 / window.as_secs_f64().max(1e-9);
        let logins = if latencies.is_empty() {
            "logins 0/s".to_owned()
        } else {
            format!(
                "logins {rate:.0}/s p50 {} p99 {}",
                millis(percentile(&latencies, 50)),
                millis(percentile(&latencies, 99))
            )
        };
        format!(
            "t={}s connected {}/{} | {logins} | failures {}",
            elapsed.as_secs(),
            self.connected,
            self.agents,
            failures(&self.failures)
        )
    }
}

/// The `p`th percentile of sorted values (nearest rank).
fn percentile(sorted: &[u32], p: usize) -> u32 {
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

fn millis(micros: u32) -> String {
    format!("{:.1}ms", micros as f64 / 1000.0)
}

/// `none`, or `4401×3 dropped×1`.
pub fn failures(failures: &BTreeMap<String, u64>) -> String {
    if failures.is_empty() {
        return "none".into();
    }
    failures
        .iter()
        .map(|(kind, n)| format!("{kind}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_the_rate_percentiles_and_failures() {
        let mut stats = Stats::new(120);
        for ms in 1..=100 {
            stats.login(Duration::from_millis(ms));
        }
        stats.failure("4401");
        stats.failure("4401");
        stats.failure("dropped");
        let line = stats.line(Duration::from_secs(3), Duration::from_secs(1));
        assert_eq!(
            line,
            "t=3s connected 100/120 | logins 100/s p50 50.0ms p99 99.0ms | failures 4401×2 dropped×1"
        );
        // The next second starts a new window; the counts stay.
        let line = stats.line(Duration::from_secs(4), Duration::from_secs(1));
        assert_eq!(
            line,
            "t=4s connected 100/120 | logins 0/s | failures 4401×2 dropped×1"
        );
        assert_eq!(stats.failed(), 3);
    }

    #[test]
    fn percentiles_of_one_value() {
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[7], 99), 7);
        assert_eq!(percentile(&[1, 2], 50), 1);
        assert_eq!(percentile(&[1, 2], 99), 2);
    }
}
