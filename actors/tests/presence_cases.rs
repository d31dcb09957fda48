//! The behaviour cases of docs/spec.md §1.7 through the actors: the presence subtree
//! under a root of its own, driven through its handle. The same cases run on
//! the core `Recorder` in the core's `tests/presence_cases.rs`.

mod support;

use std::sync::Arc;

use muster::clock::ManualClock;
use muster::names::MachineTag;
use muster::presence::{Connections, PresenceError, Value};
use muster_actors::Root;
use muster_actors::presence::{PresenceConfig, PresenceHandle, UpdateServerError};
use support::presence_cases::{Presence, for_each_case};
use support::presence_tree;

/// The presence subtree of the actors, under a root supervisor of its own.
struct Actors {
    handle: PresenceHandle,
    _root: Root,
}

impl Presence for Actors {
    async fn start(clock: Arc<ManualClock>) -> Self {
        let (handle, root) = presence_tree(&PresenceConfig::default(), clock);
        Actors {
            handle,
            _root: root,
        }
    }
    async fn enable(&mut self) {
        self.handle.enable().await.unwrap()
    }
    async fn disable(&mut self) {
        self.handle.disable().await.unwrap()
    }
    async fn is_enabled(&self) -> bool {
        self.handle.is_enabled().await.unwrap()
    }
    async fn connect(&mut self, v: &Value) {
        self.handle
            .connect(
                &v.server,
                &v.model,
                &v.agent,
                v.connection_id,
                v.controller_agent,
                &v.user_data,
            )
            .await
            .unwrap()
    }
    async fn disconnect(&mut self, server: &MachineTag, id: u64) {
        self.handle.disconnect(server, id).await.unwrap()
    }
    async fn activity(&mut self, server: &MachineTag, id: u64) {
        self.handle.activity(server, id).await.unwrap()
    }
    async fn server_down(&mut self, server: &MachineTag) {
        self.handle.server_down(server).await.unwrap()
    }
    async fn update_server(
        &mut self,
        server: &MachineTag,
        values: Vec<Value>,
    ) -> Result<(), PresenceError> {
        match self.handle.update_server(server, values).await {
            Ok(()) => Ok(()),
            Err(UpdateServerError::Presence(error)) => Err(error),
            Err(error) => panic!("{error}"),
        }
    }
    async fn connections(&self) -> Connections {
        self.handle.connections().await.unwrap()
    }
}

/// Runs each named case through the actors.
macro_rules! through_the_actors {
    ($($case:ident),* $(,)?) => {
        mod through_the_actors {
            $(
                #[actix::test]
                async fn $case() {
                    super::support::presence_cases::$case::<super::Actors>().await;
                }
            )*
        }
    };
}

for_each_case!(through_the_actors);
