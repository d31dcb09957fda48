//! Disconnects presence has not taken yet. A connection's disconnect is
//! sent at once when presence takes it; otherwise (muster restarting, the
//! router's mailbox full) it is queued, and one task sends the queue, in
//! order, each entry again until presence takes it, however long that is.
//!
//! The queue is made once per door and kept across the door child's
//! restarts; its task is the runtime's, not the door actor's, so it drains
//! whichever incarnation of the door runs, or none. It holds at most one
//! entry per connection presence recorded and has not heard the end of: a
//! connection is recorded only once presence took its connect, so while
//! presence takes nothing no new entry can appear. It is bounded by the
//! connections, not by time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use muster::names::MachineTag;
use muster::sync::lock;
use muster_actors::presence::PresenceHandle;
use tokio::sync::watch;

use super::metrics::DoorMetrics;

/// The first wait before a refused disconnect is sent again; each further
/// refusal in a row doubles it, up to [`LAST_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(10);
/// The longest wait between two tries.
const LAST_RETRY: Duration = Duration::from_secs(1);

/// The door's disconnects on their way to presence.
pub(super) struct Disconnects {
    presence: PresenceHandle,
    server: MachineTag,
    queue: Mutex<Queue>,
    /// The queue's length, for those who wait for it to drain.
    length: watch::Sender<usize>,
    metrics: DoorMetrics,
}

#[derive(Default)]
struct Queue {
    ids: VecDeque<u64>,
    /// Whether a task is sending the queue.
    draining: bool,
}

impl Disconnects {
    /// The disconnects of the connections `presence` records under
    /// `server`, their queue's length counted in `metrics`.
    pub fn new(presence: PresenceHandle, server: MachineTag, metrics: DoorMetrics) -> Arc<Self> {
        Arc::new(Disconnects {
            presence,
            server,
            queue: Mutex::default(),
            length: watch::Sender::new(0),
            metrics,
        })
    }

    /// Records the disconnect of connection `id`: at once when presence
    /// takes it now, else through the queue.
    pub fn record(self: &Arc<Self>, id: u64) {
        // Behind a queue, presence is refusing or waiting: join it rather
        // than be refused once more.
        if lock(&self.queue).ids.is_empty() {
            // A change the handle does not answer at once is waiting for
            // muster; dropping it unanswered has sent nothing.
            let sent = self.presence.disconnect(&self.server, id).now_or_never();
            if let Some(Ok(())) = sent {
                return;
            }
        }
        self.enqueue(id);
    }

    /// Disconnects queued now.
    pub fn len(&self) -> usize {
        *self.length.borrow()
    }

    /// Resolves once the queue is empty.
    pub async fn drained(&self) {
        let mut length = self.length.subscribe();
        // The sender lives as long as `self`: the wait ends only on empty.
        let _ = length.wait_for(|&n| n == 0).await;
    }

    fn enqueue(self: &Arc<Self>, id: u64) {
        let start = {
            let mut queue = lock(&self.queue);
            queue.ids.push_back(id);
            self.published(queue.ids.len());
            !std::mem::replace(&mut queue.draining, true)
        };
        if !start {
            return;
        }
        // Spawned outside the lock: a runtime shutting down drops the task
        // at once, and its guard takes the lock.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(Draining::new(self.clone()).run())),
            // Without a runtime nothing can send it now; the next
            // disconnect queued on one starts the task for both.
            Err(_) => lock(&self.queue).draining = false,
        }
    }

    fn published(&self, length: usize) {
        self.metrics.disconnects_queued(length);
        self.length.send_replace(length);
    }

    /// The oldest queued disconnect; when there is none, the task that
    /// asked ends.
    fn front(&self, task: &mut Draining) -> Option<u64> {
        let mut queue = lock(&self.queue);
        let front = queue.ids.front().copied();
        if front.is_none() {
            queue.draining = false;
            task.armed = false;
        }
        front
    }

    /// Takes `id`, the oldest, off the queue once presence has it.
    fn taken(&self, id: u64) {
        let mut queue = lock(&self.queue);
        // Only the draining task takes entries off, and only the front.
        debug_assert_eq!(queue.ids.front(), Some(&id));
        queue.ids.pop_front();
        self.published(queue.ids.len());
    }
}

/// The task that sends the queue. Dropped before the queue is empty (its
/// runtime shutting down), it lets the next disconnect queued start
/// another.
struct Draining {
    disconnects: Arc<Disconnects>,
    armed: bool,
}

impl Draining {
    fn new(disconnects: Arc<Disconnects>) -> Self {
        Draining {
            disconnects,
            armed: true,
        }
    }

    async fn run(mut self) {
        let disconnects = self.disconnects.clone();
        let mut retry = FIRST_RETRY;
        while let Some(id) = disconnects.front(&mut self) {
            // Waits while muster restarts, within the handle's restart
            // wait; refused when the router's mailbox is full.
            match disconnects
                .presence
                .disconnect(&disconnects.server, id)
                .await
            {
                Ok(()) => {
                    disconnects.taken(id);
                    retry = FIRST_RETRY;
                    // A long queue drains without starving the runtime.
                    tokio::task::consume_budget().await;
                }
                Err(_) => {
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(LAST_RETRY);
                }
            }
        }
    }
}

impl Drop for Draining {
    fn drop(&mut self) {
        if self.armed {
            lock(&self.disconnects.queue).draining = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use muster::clock::ManualClock;
    use muster_actors::presence::{PresenceConfig, presence_child};

    /// Presence never started, whose router's mailbox holds one event.
    fn unstarted() -> PresenceHandle {
        let config = PresenceConfig {
            router_mailbox: 1,
            ..PresenceConfig::default()
        };
        let clock = Arc::new(ManualClock::new(std::time::SystemTime::UNIX_EPOCH));
        presence_child("presence", &config, clock).unwrap().1
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
    }

    #[test]
    fn a_queue_whose_task_ended_with_its_runtime_is_sent_by_the_next() {
        let server: MachineTag = "machine-0".parse().unwrap();
        let disconnects = Disconnects::new(unstarted(), server, DoorMetrics::default());
        runtime().block_on(async {
            // Taken at once, then refused: the mailbox holds one.
            disconnects.record(1);
            disconnects.record(2);
            assert_eq!(disconnects.len(), 1);
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert_eq!(disconnects.len(), 1, "sent again, refused again");
        });
        assert!(!lock(&disconnects.queue).draining, "its task is gone");
        runtime().block_on(async {
            disconnects.record(3);
            assert_eq!(disconnects.len(), 2);
            assert!(lock(&disconnects.queue).draining, "a task sends them");
        });
        // Without a runtime the entry waits for the next one.
        disconnects.record(4);
        assert_eq!(disconnects.len(), 3);
        assert!(!lock(&disconnects.queue).draining);
    }
}
