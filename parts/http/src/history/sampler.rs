//! The child that fills the history, called `history`: every
//! [`EVERY`](super::EVERY) it reads the tree through its handle's cheap
//! reads (connection counts kept per server, the machines' shared cells)
//! and the counters where the tree keeps them (the provider's totals, the
//! restarts and the mailbox depths), and pushes one sample.

use std::sync::Arc;

use actix::prelude::*;
use muster::clock::Clock;
use muster_actors::host::Muster;
use muster_actors::{ChildSpec, Kept, Mailbox, Metrics};
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior, interval};

use super::{Agents, History, MAILBOXES, Mailbox as Depth, Phases, Provider, Sample};

/// The history child's name in its host's tree.
pub const HISTORY_CHILD: &str = "history";

/// The child's mailbox: it hears only its supervisor and its report.
const MAILBOX: usize = 16;

/// The counters one sample needs.
#[derive(Debug, Clone, Default, PartialEq)]
struct Reading {
    calls: u64,
    errors: u64,
    throttles: u64,
    /// Restarts for a failure, a bounce or a dependency, every child; a
    /// child that finished and was started again (`done`) is not counted,
    /// as the dashboard's tree does not count it either.
    restarts: u64,
    /// Mailbox depth by `child` label.
    depths: Vec<(String, u64)>,
}

/// Takes samples of one tree into a [`History`].
pub struct Sampler {
    muster: Muster,
    metrics: Metrics,
    clock: Arc<dyn Clock>,
    history: History,
    /// The counters of the sample before, and when it was taken: kept
    /// across the child's restarts.
    last: Kept<Option<(Instant, Reading)>>,
}

impl Sampler {
    /// A sampler of `muster`, reading the supervision counters from
    /// `metrics` (the host's tree's, which muster's subtree counts in) and
    /// wall-clock times from `clock`.
    pub fn new(muster: Muster, metrics: Metrics, clock: Arc<dyn Clock>) -> Self {
        Sampler {
            muster,
            metrics,
            clock,
            history: History::new(),
            last: Kept::new(None),
        }
    }

    /// The history this sampler fills.
    pub fn history(&self) -> History {
        self.history.clone()
    }

    /// The sampler as a child called [`HISTORY_CHILD`] of the host's tree,
    /// taking a sample every [`EVERY`](super::EVERY), the first at once;
    /// the history it fills outlives the child's restarts.
    pub fn child(self) -> (ChildSpec, History) {
        let history = self.history();
        let sampler = Arc::new(self);
        let mailbox = Mailbox::new(MAILBOX);
        let spec = ChildSpec::actor(HISTORY_CHILD, &mailbox, move |_| {
            Ok(Sampling {
                sampler: sampler.clone(),
            })
        })
        .report(mailbox.reporter(|sampling: &Sampling| {
            serde_json::to_value(sampling.report()).unwrap_or_default()
        }));
        (spec, history)
    }

    /// Takes one sample now.
    pub async fn sample(&self) {
        let at = self.clock.now();
        let now = Instant::now();
        // The counters first: asking presence for its counts goes through
        // the router's mailbox, which would drain it before its depth is
        // read.
        let reading = self.read();
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
        let before = self.last.lock().replace((now, reading.clone()));
        let (provider, restarts) = match before {
            Some((then, before)) => {
                let seconds = now.duration_since(then).as_secs_f64();
                let rate = |now: u64, before: u64| increase(now, before) as f64 / seconds;
                let provider = (seconds > 0.0).then(|| Provider {
                    calls: rate(reading.calls, before.calls),
                    errors: rate(reading.errors, before.errors),
                    throttles: rate(reading.throttles, before.throttles),
                });
                (provider, Some(increase(reading.restarts, before.restarts)))
            }
            None => (None, None),
        };
        let mailboxes = self.deepest(reading.depths);
        self.history.push(Sample {
            seq: 0,
            at,
            agents,
            machines,
            provider,
            restarts,
            mailboxes,
        });
    }

    /// The counters, where the tree keeps them.
    fn read(&self) -> Reading {
        let provider = self.muster.provider_totals();
        let restarts = self.metrics.restarts();
        Reading {
            calls: provider.calls,
            errors: provider.errors,
            throttles: provider.throttles,
            restarts: restarts.failure + restarts.bounce + restarts.dependency,
            depths: self.metrics.depths(),
        }
    }

    /// The [`MAILBOXES`] deepest mailboxes, deepest first, ties by name.
    fn deepest(&self, depths: Vec<(String, u64)>) -> Vec<Depth> {
        deepest(depths)
            .into_iter()
            .map(|(child, depth)| Depth {
                child: self.history.name(&child),
                depth,
            })
            .collect()
    }
}

/// The [`MAILBOXES`] deepest of `depths`, deepest first, ties by name.
fn deepest(mut depths: Vec<(String, u64)>) -> Vec<(String, u64)> {
    depths.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    depths.truncate(MAILBOXES);
    depths
}

/// How much a counter grew; a counter that went down was reset, and all of
/// its value is new.
fn increase(now: u64, before: u64) -> u64 {
    now.checked_sub(before).unwrap_or(now)
}

/// The actor: it runs the sampling loop of one incarnation.
struct Sampling {
    sampler: Arc<Sampler>,
}

muster_actors::supervised!(Sampling);

/// The history child's part of its host's report.
#[derive(Debug, Serialize)]
struct SamplingReport {
    samples: usize,
    latest: Option<u64>,
}

impl Sampling {
    fn report(&self) -> SamplingReport {
        SamplingReport {
            samples: self.sampler.history.len(),
            latest: self.sampler.history.latest(),
        }
    }
}

impl Actor for Sampling {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let sampler = self.sampler.clone();
        let sampling = async move {
            let mut tick = interval(super::EVERY);
            // After a stall, one sample, not a burst of them.
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                sampler.sample().await;
            }
        };
        ctx.spawn(sampling.into_actor(self));
    }
}

#[cfg(test)]
mod tests {
    use super::{MAILBOXES, deepest, increase};

    #[test]
    fn the_deepest_mailboxes_come_first_ties_by_name() {
        let mut depths: Vec<(String, u64)> =
            (0..10).map(|n| (format!("child-{n}"), n * 10)).collect();
        depths.push(("a-tie".to_owned(), 90));
        let kept = deepest(depths);
        assert_eq!(kept.len(), MAILBOXES);
        let names: Vec<&str> = kept.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "a-tie", "child-9", "child-8", "child-7", "child-6", "child-5", "child-4",
                "child-3"
            ]
        );
        assert!(deepest(Vec::new()).is_empty());
    }

    #[test]
    fn a_counter_that_went_down_was_reset() {
        assert_eq!(increase(10, 4), 6);
        assert_eq!(increase(3, 40), 3);
        assert_eq!(increase(0, 0), 0);
    }
}
