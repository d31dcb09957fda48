//! The instance-poll schedule: when each machine is polled next, and how one
//! poll's observation moves it between the short- and long-poll phases.
//!
//! Everything here is a pure function of its inputs, time included: the
//! caller says what time it is, so the rules are tested without a clock.

mod config;

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

use crate::clock::later;
use crate::model::MachineStatus;
use crate::provider::InstanceStatus;

pub use config::PollConfig;

/// Which of the two polling rhythms a machine is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Polled often, backing off: the machine is still settling.
    Short,
    /// Polled every long-poll interval: the machine is running, its agent
    /// started, and it has an address.
    Long,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Short => "short",
            Phase::Long => "long",
        })
    }
}

/// What one poll saw of a machine: the input of the phase rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// The instance status the provider reported.
    pub instance_status: InstanceStatus,
    /// The status of the machine's agent. When it cannot be read, Juju
    /// takes it as pending.
    pub machine_status: MachineStatus,
    /// How many provider addresses the machine has after the poll.
    pub address_count: usize,
}

/// Which phase rule an observation matched, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Rule 1: the instance is pending or allocating; bumped, phase kept.
    StillStarting,
    /// Rule 2: a long-phase machine's status is unknown or it lost its
    /// addresses; back to the short phase, interval reset.
    BackToShort,
    /// Rule 3: it has an address and its agent started; long phase.
    Settled,
    /// Rule 4: in the short phase and nothing else matched; bumped.
    Bumped,
    /// No rule matched (a long-phase machine that is not settled, e.g. its
    /// agent is down): it stays in the long phase.
    Unchanged,
}

/// The poll schedule of one machine.
///
/// The short-poll interval backs off by the factor at each bump up to the
/// cap, and is reset to the short poll; in the long phase the machine is
/// polled every long poll, and its short-poll interval waits, unchanged, for
/// its return to the short phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PollState {
    config: PollConfig,
    phase: Phase,
    short_interval: Duration,
    next_poll: Instant,
}

impl PollState {
    /// A new machine's schedule: short phase, interval = short poll, first
    /// poll one interval from `now`.
    pub fn new(config: &PollConfig, now: Instant) -> Self {
        PollState {
            config: *config,
            phase: Phase::Short,
            short_interval: config.short_poll,
            next_poll: later(now, config.short_poll),
        }
    }

    /// The current phase.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The wait between the last poll and the next: the short-poll interval
    /// in the short phase, the long poll in the long phase.
    pub fn interval(&self) -> Duration {
        match self.phase {
            Phase::Short => self.short_interval,
            Phase::Long => self.config.long_poll,
        }
    }

    /// The short-poll interval, which backs off and resets.
    pub fn short_interval(&self) -> Duration {
        self.short_interval
    }

    /// When the machine is to be polled next.
    pub fn next_poll(&self) -> Instant {
        self.next_poll
    }

    /// Whether the machine's next poll is due at `now`.
    pub fn is_due(&self, now: Instant) -> bool {
        now >= self.next_poll
    }

    /// Backs off: interval = min(interval x factor, cap), next poll = now +
    /// interval (in the long phase, now + long poll).
    pub fn bump(&mut self, now: Instant) {
        let grown = Duration::try_from_secs_f64(
            self.short_interval.as_secs_f64() * self.config.short_poll_backoff,
        )
        .unwrap_or(self.config.short_poll_cap);
        // An unvalidated factor below 1 must not shrink the interval.
        self.short_interval = grown
            .max(self.short_interval)
            .min(self.config.short_poll_cap);
        self.schedule(now);
    }

    /// Starts over: interval = short poll, next poll = now + interval (in the
    /// long phase, now + long poll).
    pub fn reset(&mut self, now: Instant) {
        self.short_interval = self.config.short_poll;
        self.schedule(now);
    }

    /// Sets the next poll one interval of the current phase from `now`.
    pub fn schedule(&mut self, now: Instant) {
        self.next_poll = later(now, self.interval());
    }

    /// A watcher event about the machine (its agent restarted, an address may
    /// have changed): short phase, interval reset.
    pub fn watcher_event(&mut self, now: Instant) {
        self.phase = Phase::Short;
        self.reset(now);
    }

    /// The machine's instance status changed to `status` (the model's record
    /// differed from the provider's): becoming running resets the interval,
    /// so the agent's start and the addresses are seen soon.
    pub fn instance_status_changed(&mut self, status: InstanceStatus, now: Instant) {
        if status == InstanceStatus::Running {
            self.reset(now);
        }
    }

    /// The provider did not know the machine's instance, or the machine has
    /// no instance yet: in the short phase, bump; in the long phase, wait for
    /// the next long poll.
    pub fn instance_missing(&mut self, now: Instant) {
        match self.phase {
            Phase::Short => self.bump(now),
            Phase::Long => self.schedule(now),
        }
    }

    /// Applies the phase rules to what one poll saw, first match wins, and
    /// schedules the next poll:
    /// 1. instance pending or allocating: bump, phase kept;
    /// 2. long phase and status unknown or no address: short phase, reset;
    /// 3. an address and the agent started: long phase;
    /// 4. short phase: bump.
    pub fn observe(&mut self, seen: &Observation, now: Instant) -> Rule {
        let rule = match (seen.instance_status, self.phase) {
            (InstanceStatus::Pending | InstanceStatus::Allocating, _) => Rule::StillStarting,
            (InstanceStatus::Unknown, Phase::Long) => Rule::BackToShort,
            (_, Phase::Long) if seen.address_count == 0 => Rule::BackToShort,
            _ if seen.address_count > 0 && seen.machine_status == MachineStatus::Started => {
                Rule::Settled
            }
            (_, Phase::Short) => Rule::Bumped,
            (_, Phase::Long) => Rule::Unchanged,
        };
        match rule {
            Rule::StillStarting | Rule::Bumped => self.bump(now),
            Rule::BackToShort => self.watcher_event(now),
            Rule::Settled => {
                self.phase = Phase::Long;
                self.schedule(now);
            }
            Rule::Unchanged => self.schedule(now),
        }
        rule
    }
}

#[cfg(test)]
mod tests;
