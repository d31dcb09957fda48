//! The faults of a chaos run, drawn from a seeded generator: one seed, one
//! sequence of faults.

use std::fmt;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::world::LEASE_TTL;

/// One fault, and how long it lasts before it heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of node `n`; it is started again when the fault heals.
    KillNode { n: usize, down: Duration },
    /// SIGSTOP of node `n`, then SIGCONT: shorter or longer than the
    /// lease's TTL.
    PauseNode { n: usize, paused: Duration },
    /// SIGKILL of NATS server `n`; started again on its ports and store.
    KillNats { n: usize, down: Duration },
    /// Every agent of node `n`'s door dropped at once; they log in again.
    DropSwarm { n: usize },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: &Duration| d.as_millis();
        match self {
            Fault::KillNode { n, down } => {
                write!(f, "SIGKILL machine-{n}, restarted after {}ms", ms(down))
            }
            Fault::PauseNode { n, paused } => write!(f, "SIGSTOP machine-{n} for {}ms", ms(paused)),
            Fault::KillNats { n, down } => {
                write!(f, "SIGKILL nats n{n}, restarted after {}ms", ms(down))
            }
            Fault::DropSwarm { n } => write!(f, "every agent of machine-{n} dropped at once"),
        }
    }
}

/// The faults of one seed.
pub struct Faults {
    rng: StdRng,
    nodes: usize,
    nats: usize,
}

impl Faults {
    pub fn new(seed: u64, nodes: usize, nats: usize) -> Self {
        Faults {
            rng: StdRng::seed_from_u64(seed),
            nodes,
            nats,
        }
    }

    /// The next fault.
    pub fn next(&mut self) -> Fault {
        let rng = &mut self.rng;
        let node = rng.random_range(0..self.nodes);
        match rng.random_range(0..4) {
            0 => Fault::KillNode {
                n: node,
                down: Duration::from_millis(rng.random_range(200..3000)),
            },
            1 => {
                // As often shorter than the lease's TTL (nothing should
                // move) as longer (the model must move, and come back).
                let ttl = LEASE_TTL.as_millis() as u64;
                let paused = if rng.random_bool(0.5) {
                    rng.random_range(ttl / 4..ttl / 2)
                } else {
                    rng.random_range(ttl * 2..ttl * 4)
                };
                Fault::PauseNode {
                    n: node,
                    paused: Duration::from_millis(paused),
                }
            }
            2 => Fault::KillNats {
                n: rng.random_range(0..self.nats),
                down: Duration::from_millis(rng.random_range(200..3000)),
            },
            _ => Fault::DropSwarm { n: node },
        }
    }

    /// The chance of a provider call failing, and of one being throttled,
    /// for the whole run.
    pub fn cloud(&mut self) -> (f64, f64) {
        (
            self.rng.random_range(0.0..0.1),
            self.rng.random_range(0.0..0.1),
        )
    }

    /// A number for a registry write.
    pub fn pick(&mut self, below: usize) -> usize {
        self.rng.random_range(0..below)
    }
}
