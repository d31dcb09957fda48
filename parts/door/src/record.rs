//! What presence hears of a connection: its connect, once presence has
//! taken it; its activity, coalesced and let go when presence cannot take
//! it at once; and, however the connection ends, its disconnect, once,
//! queued until presence takes it (`disconnects`).

use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use super::login::Login;
use super::shared::Shared;
use muster_actors::mailbox::SendError;

/// A connection recorded in presence; dropping it records the disconnect,
/// however the connection's task ends (aborted included).
pub(super) struct Recorded<'a> {
    shared: &'a Shared,
    id: u64,
    /// Why it ended, for the metrics; a task aborted before it could say
    /// is one the runtime dropped as it shut down.
    pub reason: &'static str,
}

impl<'a> Recorded<'a> {
    /// Records the connection, once presence has taken its connect: at
    /// once while muster runs, after muster's restart while it restarts.
    /// Refused when the router's mailbox is full or muster does not come
    /// back within the handle's restart wait, and then nothing is
    /// recorded. Dropped before it answers, it has sent nothing: the
    /// handle sends a change in the same poll that answers it.
    pub async fn connect(shared: &'a Shared, login: &Login, id: u64) -> Result<Self, SendError> {
        shared
            .presence
            .connect(
                &shared.config.server,
                &login.model,
                &login.agent,
                id,
                login.controller_agent,
                &login.user_data,
            )
            .await?;
        shared.metrics.connected();
        Ok(Recorded {
            shared,
            id,
            reason: "shutdown",
        })
    }

    /// Marks the connection seen now, when presence takes it at once. One
    /// refused by a full mailbox, or waiting while muster restarts, is let
    /// go: the next frame's will do.
    pub fn activity(&self) {
        let _ = self
            .shared
            .presence
            .activity(&self.shared.config.server, self.id)
            .now_or_never();
    }
}

impl Drop for Recorded<'_> {
    fn drop(&mut self) {
        self.shared.metrics.disconnected(self.reason);
        self.shared.disconnects.record(self.id);
    }
}

/// Activity, coalesced: at most one report per `every`, made by the first
/// frame after it has passed (the login counts as a report).
pub(super) struct Coalesce {
    every: Duration,
    last: Instant,
}

impl Coalesce {
    pub fn new(every: Duration, login: Instant) -> Self {
        Coalesce { every, last: login }
    }

    /// Whether a frame heard at `now` is reported.
    pub fn due(&mut self, now: Instant) -> bool {
        let due = now.saturating_duration_since(self.last) >= self.every;
        if due {
            self.last = now;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_is_reported_once_per_interval() {
        let login = Instant::now();
        let ms = Duration::from_millis;
        let mut activity = Coalesce::new(ms(1000), login);
        let reported: Vec<u64> = [400, 800, 1200, 1600, 2100, 2199, 2200, 5000]
            .into_iter()
            .filter(|&t| activity.due(login + ms(t)))
            .collect();
        assert_eq!(reported, [1200, 2200, 5000]);
        let mut every = Coalesce::new(Duration::ZERO, login);
        assert!(every.due(login) && every.due(login) && every.due(login + ms(1)));
    }
}
