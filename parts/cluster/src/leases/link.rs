//! The lease manager's own NATS connection, and its events told apart
//! from those of a connection it dropped.

use std::sync::atomic::{AtomicU64, Ordering};

use actix::prelude::*;
use slog::{info, warn};

use super::LeaseManager;
use crate::nats::{connection, with_events};

/// Connections made by every lease manager of the process, so that a
/// dropped connection's last events are told from the current one's.
static GENERATIONS: AtomicU64 = AtomicU64::new(0);

impl LeaseManager {
    fn link_event(&mut self, event: async_nats::Event) {
        match event {
            async_nats::Event::Connected => {
                info!(self.log, "leases: connected to NATS");
                self.link = "connected";
            }
            async_nats::Event::Disconnected | async_nats::Event::Closed => {
                if self.link == "connected" {
                    warn!(
                        self.log,
                        "leases: lost NATS; every model this node held stops polling"
                    );
                }
                self.link = "disconnected";
                self.drop_all("NATS lost");
            }
            _ => {}
        }
    }
    pub(super) fn connect(&mut self, ctx: &mut Context<Self>) {
        self.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed) + 1;
        let generation = self.generation;
        let config = &self.config;
        let (options, urls) =
            match connection(&config.cluster, &config.auth, &config.node, "leases") {
                Ok(connection) => connection,
                Err(e) => {
                    self.link = "failed";
                    self.error = Some(e);
                    return;
                }
            };
        let options = options
            .retry_on_initial_connect()
            .request_timeout(Some(self.op_timeout()));
        let (options, events) = with_events(options);
        // Its events come on this context, not through the mailbox: none
        // is lost to a full one.
        ctx.spawn(
            actix::fut::wrap_stream::<_, Self>(events)
                .map(move |event, manager, _ctx| {
                    if manager.generation == generation {
                        manager.link_event(event);
                    }
                })
                .finish(),
        );
        let connecting = async move { options.connect(urls).await };
        ctx.spawn(
            connecting
                .into_actor(self)
                .map(|connected, manager, _ctx| match connected {
                    Ok(client) => manager.client = Some(client),
                    Err(e) => {
                        manager.link = "failed";
                        manager.error = Some(format!("cannot connect to NATS: {e}"));
                    }
                }),
        );
    }
}
