//! The task that fills the history: every [`EVERY`](super::EVERY) it reads
//! the tree through its handle's cheap reads (connection counts kept per
//! server, the machines' shared cells) and the registry's counters, and
//! pushes one sample.

use std::sync::Arc;

use muster::clock::Clock;
use muster_actors::host::Muster;
use prometheus_client::registry::Registry;
use tokio::time::{Instant, MissedTickBehavior, interval};

use super::exposition::{self, Reading};
use super::{Agents, History, MAILBOXES, Mailbox, Phases, Provider, Sample};

/// Takes samples of one tree into a [`History`].
pub struct Sampler {
    muster: Muster,
    registry: Arc<Registry>,
    clock: Arc<dyn Clock>,
    history: History,
    /// The counters of the sample before, and when it was taken.
    last: Option<(Instant, Reading)>,
}

impl Sampler {
    /// A sampler of `muster`, reading counters from `registry` (the one the
    /// tree registered its metrics in) and wall-clock times from `clock`.
    pub fn new(muster: Muster, registry: Arc<Registry>, clock: Arc<dyn Clock>) -> Self {
        Sampler {
            muster,
            registry,
            clock,
            history: History::new(),
            last: None,
        }
    }

    /// The history this sampler fills.
    pub fn history(&self) -> History {
        self.history.clone()
    }

    /// Takes a sample every [`EVERY`](super::EVERY), the first at once, on
    /// a task of the current actix system (or tokio `LocalSet`) until the
    /// tree stops. Answers the history it fills.
    pub fn spawn(mut self) -> History {
        let history = self.history();
        tokio::task::spawn_local(async move {
            let muster = self.muster.clone();
            let stopped = async move { muster.wait().await };
            tokio::pin!(stopped);
            let mut tick = interval(super::EVERY);
            // After a stall, one sample, not a burst of them.
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tick.tick() => self.sample().await,
                }
            }
        });
        history
    }

    /// Takes one sample now.
    pub async fn sample(&mut self) {
        let at = self.clock.now();
        let now = Instant::now();
        // The registry first: asking presence for its counts goes through
        // the router's mailbox, which would drain it before its depth is
        // read.
        let mut text = String::new();
        // Encoding into a String fails only if a collector does; the
        // counters of this sample are then unknown, not zero.
        let reading = prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .ok()
            .map(|()| exposition::read(&text));
        let agents = match self.muster.presence().connections().await {
            Ok(connections) => {
                let counts = connections.count_by_status();
                Some(Agents {
                    alive: counts.alive as u64,
                    missing: counts.missing as u64,
                })
            }
            Err(_) => None,
        };
        // Counted in place, whatever the fleet: no machine's state is built.
        let counts = self.muster.machines().count_by_phase();
        let machines = Some(Phases {
            short: counts.short as u64,
            long: counts.long as u64,
            manual: counts.manual as u64,
        });
        let (provider, restarts) = match (&reading, &self.last) {
            (Some(reading), Some((then, before))) => {
                let seconds = now.duration_since(*then).as_secs_f64();
                let rate = |now: f64, before: f64| increase(now, before) / seconds;
                let provider = (seconds > 0.0).then(|| Provider {
                    calls: rate(reading.calls, before.calls),
                    errors: rate(reading.errors, before.errors),
                    throttles: rate(reading.throttles, before.throttles),
                });
                let restarts = increase(reading.restarts, before.restarts) as u64;
                (provider, Some(restarts))
            }
            _ => (None, None),
        };
        let mailboxes = reading
            .as_ref()
            .map(|reading| self.deepest(reading))
            .unwrap_or_default();
        self.history.push(Sample {
            seq: 0,
            at,
            agents,
            machines,
            provider,
            restarts,
            mailboxes,
        });
        if let Some(reading) = reading {
            self.last = Some((now, reading));
        }
    }

    /// The [`MAILBOXES`] deepest mailboxes, deepest first, ties by name.
    fn deepest(&self, reading: &Reading) -> Vec<Mailbox> {
        let mut depths: Vec<(&String, f64)> = reading.depths.iter().map(|(k, v)| (k, *v)).collect();
        // The map is sorted by name, and the sort is stable.
        depths.sort_by(|a, b| b.1.total_cmp(&a.1));
        depths
            .into_iter()
            .take(MAILBOXES)
            .map(|(child, depth)| Mailbox {
                child: self.history.name(child),
                depth: depth.max(0.0) as u64,
            })
            .collect()
    }
}

/// How much a counter grew; a counter that went down was reset, and all of
/// its value is new.
fn increase(now: f64, before: f64) -> f64 {
    if now >= before { now - before } else { now }
}

#[cfg(test)]
mod tests {
    use super::increase;

    #[test]
    fn a_counter_that_went_down_was_reset() {
        assert_eq!(increase(10.0, 4.0), 6.0);
        assert_eq!(increase(3.0, 40.0), 3.0);
        assert_eq!(increase(0.0, 0.0), 0.0);
    }
}
