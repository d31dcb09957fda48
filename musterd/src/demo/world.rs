//! The scenario's record of its agents and API servers.

use muster::names::{AgentTag, MachineTag, ModelUuid};
use muster::presence::{Status, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{DemoOptions, demo_models};
use muster_actors::host::Muster;
use muster_door::ConnectionIds;

/// One agent of the scenario and where it is connected.
pub(super) struct DemoAgent {
    pub(super) agent: AgentTag,
    pub(super) model: ModelUuid,
    pub(super) controller: bool,
    /// The server and connection id while connected.
    pub(super) connection: Option<(usize, u64)>,
    /// The server it prefers.
    pub(super) home: usize,
}

/// The scenario's own record of the world, which is also what each API
/// server would report of its connections.
pub(super) struct World {
    pub(super) rng: StdRng,
    pub(super) servers: Vec<MachineTag>,
    pub(super) agents: Vec<DemoAgent>,
    pub(super) ids: ConnectionIds,
    /// The index of the server whose link is down, if any.
    pub(super) down: Option<usize>,
}

impl World {
    pub(super) fn new(options: &DemoOptions, ids: ConnectionIds) -> World {
        let mut rng = StdRng::seed_from_u64(options.seed);
        let servers: Vec<MachineTag> = (0..3)
            .map(|n| format!("machine-{n}").parse().expect("a machine tag"))
            .collect();
        let [controller_model, models @ ..] = demo_models(options.seed);
        let apps = ["wordpress", "mysql", "redis", "haproxy", "postgresql"];
        let mut agents = Vec::with_capacity(options.agents);
        for (n, server) in servers.iter().enumerate() {
            agents.push(DemoAgent {
                agent: AgentTag::Machine(server.clone()),
                model: controller_model,
                controller: true,
                connection: None,
                home: n,
            });
        }
        let mut units = vec![0usize; apps.len()];
        for i in 3..options.agents {
            // Machine agents for the machines there are, then units.
            let agent: AgentTag = if i < options.machines && i % 2 == 1 {
                format!("machine-{i}").parse().expect("an agent tag")
            } else {
                let app = i % apps.len();
                units[app] += 1;
                format!("unit-{}-{}", apps[app], units[app])
                    .parse()
                    .expect("an agent tag")
            };
            agents.push(DemoAgent {
                agent,
                model: models[i % models.len()],
                controller: false,
                connection: None,
                home: rng.random_range(0..3),
            });
        }
        World {
            rng,
            servers,
            agents,
            ids,
            down: None,
        }
    }

    pub(super) async fn connect(&mut self, muster: &Muster, i: usize) {
        let server = self.agents[i].home;
        if self.down == Some(server) || self.agents[i].connection.is_some() {
            return;
        }
        let id = self.ids.next();
        let a = &mut self.agents[i];
        a.connection = Some((server, id));
        let user_data = if a.controller { "controller" } else { "agent" };
        let _ = muster
            .presence()
            .connect(
                &self.servers[server],
                &a.model,
                &a.agent,
                id,
                a.controller,
                user_data,
            )
            .await;
    }

    pub(super) async fn disconnect(&mut self, muster: &Muster, i: usize) {
        let Some((server, id)) = self.agents[i].connection else {
            return;
        };
        if self.down == Some(server) || self.agents[i].controller {
            return;
        }
        self.agents[i].connection = None;
        let _ = muster
            .presence()
            .disconnect(&self.servers[server], id)
            .await;
    }

    pub(super) async fn ping(&mut self, muster: &Muster, i: usize) {
        if let Some((server, id)) = self.agents[i].connection
            && self.down != Some(server)
        {
            let _ = muster.presence().activity(&self.servers[server], id).await;
        }
    }

    /// What `server` reports of its own connections when its link comes
    /// back: every agent it holds, alive.
    pub(super) fn snapshot(&self, server: usize) -> Vec<Value> {
        let now = std::time::SystemTime::now();
        self.agents
            .iter()
            .filter_map(|a| match a.connection {
                Some((s, id)) if s == server => Some(Value {
                    model: a.model,
                    server: self.servers[server].clone(),
                    agent: a.agent.clone(),
                    controller_agent: a.controller,
                    connection_id: id,
                    status: Status::Alive,
                    user_data: if a.controller { "controller" } else { "agent" }.into(),
                    last_seen: now,
                }),
                _ => None,
            })
            .collect()
    }
}
