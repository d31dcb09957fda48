//! One poll's update of one machine: what docs/spec.md §2.4 says to do with the
//! provider's answer about a machine's instance, written once so that the
//! poller actors only schedule and log.

use crate::error::PollError;
use crate::model::{Life, MANUAL_MACHINE_MESSAGE, Machine, MachineStatus};
use crate::poll::{Observation, PollState, Rule};
use crate::provider::{
    Address, Instance, InstanceStatus, InstanceStatusInfo, NetworkInterface,
    interfaces_from_addresses,
};

/// What updating a machine from its instance did.
#[derive(Debug, Clone)]
pub struct Update {
    /// The instance status change recorded in the model, from and to; `None`
    /// when the model already had it.
    pub status_change: Option<(InstanceStatusInfo, InstanceStatusInfo)>,
    /// The machine's provider addresses after the update; empty for a dead
    /// machine, whose addresses are not updated.
    pub addresses: Vec<Address>,
    /// Whether the addresses changed ("has new addresses").
    pub addresses_changed: bool,
    /// Why the machine's agent status could not be read, when it could not:
    /// it was then taken as pending.
    pub machine_status_error: Option<PollError>,
    /// Why the model could not say the machine's recorded instance status,
    /// when it could not: as Juju does, the instance status was then taken
    /// as unknown (the machine goes to the short poll) and nothing was
    /// written.
    pub recorded_status_error: Option<PollError>,
    /// What the phase rules are to see.
    pub observation: Observation,
}

impl Update {
    /// Applies the update to the machine's schedule at `now`: becoming
    /// running resets the interval, then the phase rules run.
    pub fn apply(&self, state: &mut PollState, now: tokio::time::Instant) -> Rule {
        if let Some((_, to)) = &self.status_change {
            state.instance_status_changed(to.status, now);
        }
        state.observe(&self.observation, now)
    }
}

/// Updates the model's record of `machine` from the provider's `instance`:
/// the instance status when it differs (status or message), then, unless the
/// machine is dead, its network configuration. `interfaces` is the
/// provider's answer for the instance, or `None` when the provider does not
/// support networking, in which case the instance's plain addresses are used,
/// one interface each. The machine's agent status is read only when the
/// phase rules may need it.
///
/// A recorded instance status the model cannot read is not a failure: as
/// Juju does, it is taken as unknown, so the machine goes to the short
/// poll, and nothing is written ([`Update::recorded_status_error`] says
/// why). Any other error from the model is returned as it is; the poller
/// treats it as its own failure.
pub async fn update_machine(
    machine: &dyn Machine,
    instance: &Instance,
    interfaces: Option<Vec<NetworkInterface>>,
) -> Result<Update, PollError> {
    let recorded = match machine.instance_status().await {
        Ok(recorded) => recorded,
        Err(error) => {
            return Ok(Update {
                status_change: None,
                addresses: Vec::new(),
                addresses_changed: false,
                machine_status_error: None,
                recorded_status_error: Some(error),
                observation: Observation {
                    instance_status: InstanceStatus::Unknown,
                    machine_status: MachineStatus::Pending,
                    address_count: 0,
                },
            });
        }
    };
    let status_change = if recorded != instance.status {
        machine
            .set_instance_status(instance.status.status, instance.status.message.clone())
            .await?;
        Some((recorded, instance.status.clone()))
    } else {
        None
    };

    if machine.life() == Life::Dead {
        // Nothing more to learn of a dead machine; it goes when the watcher
        // reports it.
        return Ok(Update {
            status_change,
            addresses: Vec::new(),
            addresses_changed: false,
            machine_status_error: None,
            recorded_status_error: None,
            observation: Observation {
                instance_status: InstanceStatus::Unknown,
                machine_status: MachineStatus::Pending,
                address_count: 0,
            },
        });
    }

    let interfaces = interfaces.unwrap_or_else(|| interfaces_from_addresses(&instance.addresses));
    let (addresses, addresses_changed) = machine.set_provider_network_config(interfaces).await?;

    let status = instance.status.status;
    let needs_agent = !addresses.is_empty()
        && !matches!(status, InstanceStatus::Pending | InstanceStatus::Allocating);
    let (machine_status, machine_status_error) = if needs_agent {
        match machine.status().await {
            Ok(status) => (status, None),
            Err(error) => (MachineStatus::Pending, Some(error)),
        }
    } else {
        (MachineStatus::Pending, None)
    };

    Ok(Update {
        status_change,
        observation: Observation {
            instance_status: status,
            machine_status,
            address_count: addresses.len(),
        },
        addresses,
        addresses_changed,
        machine_status_error,
        recorded_status_error: None,
    })
}

/// Settles a manually provisioned machine, which is never polled: sets its
/// instance status to running, "Manually provisioned machine", unless it is
/// running already. Answers whether it set it.
pub async fn settle_manual_machine(machine: &dyn Machine) -> Result<bool, PollError> {
    let recorded = machine.instance_status().await?;
    if recorded.status == InstanceStatus::Running {
        return Ok(false);
    }
    machine
        .set_instance_status(InstanceStatus::Running, MANUAL_MACHINE_MESSAGE.to_owned())
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::*;
    use crate::poll::{Phase, PollConfig};
    use crate::provider::{AddressScope, Environ, InstanceId};
    use crate::sim::{Sim, SimConfig};

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// The provider's answer for one instance, with its interfaces when the
    /// provider supports networking.
    async fn ask(
        environ: &dyn Environ,
        id: &InstanceId,
    ) -> (Instance, Option<Vec<NetworkInterface>>) {
        let ids = std::slice::from_ref(id);
        let instance = environ
            .instances(ids)
            .await
            .unwrap()
            .pop()
            .unwrap()
            .unwrap();
        let interfaces = match environ.network_interfaces(ids).await {
            Ok(mut lists) => Some(lists.pop().unwrap()),
            Err(e) if e.kind() == crate::error::ErrorKind::NotSupported => None,
            Err(e) => panic!("{e}"),
        };
        (instance, interfaces)
    }

    #[tokio::test(start_paused = true)]
    async fn provisioning_to_running_sets_status_and_network_config() {
        let sim = Sim::new(SimConfig::default()).unwrap();
        let environ = sim.environ();
        let (tag, id) = sim.add_provisioned_machine();
        let machine = sim.facade().machine(&tag).await.unwrap();
        let mut state = PollState::new(&PollConfig::default(), Instant::now());

        // Allocating: recorded, and the schedule backs off.
        tokio::time::advance(secs(3)).await;
        let (instance, interfaces) = ask(&*environ, &id).await;
        let update = update_machine(&*machine, &instance, interfaces)
            .await
            .unwrap();
        let (from, to) = update.status_change.clone().unwrap();
        assert_eq!(from.status, InstanceStatus::Pending);
        assert_eq!(to.status, InstanceStatus::Allocating);
        assert_eq!(
            update.apply(&mut state, Instant::now()),
            Rule::StillStarting
        );
        assert_eq!(state.interval(), secs(6));

        // Running with addresses and a started agent: long phase.
        tokio::time::advance(secs(20)).await;
        let (instance, interfaces) = ask(&*environ, &id).await;
        let update = update_machine(&*machine, &instance, interfaces)
            .await
            .unwrap();
        assert_eq!(
            update.status_change.as_ref().unwrap().1.status,
            InstanceStatus::Running
        );
        assert!(update.addresses_changed);
        assert_eq!(update.observation.address_count, 2);
        assert_eq!(update.observation.machine_status, MachineStatus::Started);
        assert_eq!(update.apply(&mut state, Instant::now()), Rule::Settled);
        assert_eq!(state.phase(), Phase::Long);
        assert!(sim.in_sync(&tag));

        // Nothing changed: the status is not set again.
        let (instance, interfaces) = ask(&*environ, &id).await;
        let update = update_machine(&*machine, &instance, interfaces)
            .await
            .unwrap();
        assert!(update.status_change.is_none());
        assert!(!update.addresses_changed);
        assert_eq!(sim.counters().set_instance_status, 2);
        assert_eq!(sim.counters().set_network_config, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn running_without_addresses_resets_then_bumps() {
        let sim = Sim::new(SimConfig {
            address_delay: secs(600),
            ..SimConfig::default()
        })
        .unwrap();
        let (tag, id) = sim.add_provisioned_machine();
        let machine = sim.facade().machine(&tag).await.unwrap();
        let mut state = PollState::new(&PollConfig::default(), Instant::now());
        state.bump(Instant::now());
        state.bump(Instant::now());
        tokio::time::advance(secs(30)).await;
        let (instance, interfaces) = ask(&*sim.environ(), &id).await;
        let update = update_machine(&*machine, &instance, interfaces)
            .await
            .unwrap();
        assert_eq!(update.observation.address_count, 0);
        assert_eq!(update.apply(&mut state, Instant::now()), Rule::Bumped);
        assert_eq!(state.interval(), secs(6), "reset to 3 s, then bumped");
    }

    #[tokio::test(start_paused = true)]
    async fn a_dead_machine_gets_its_status_but_not_its_addresses() {
        let sim = Sim::new(SimConfig::default()).unwrap();
        let (tag, id) = sim.add_provisioned_machine();
        tokio::time::advance(secs(60)).await;
        sim.set_life(&tag, crate::model::Life::Dead).unwrap();
        let machine = sim.facade().machine(&tag).await.unwrap();
        let (instance, interfaces) = ask(&*sim.environ(), &id).await;
        let update = update_machine(&*machine, &instance, interfaces)
            .await
            .unwrap();
        assert!(update.status_change.is_some());
        assert_eq!(update.observation.address_count, 0);
        assert_eq!(update.observation.instance_status, InstanceStatus::Unknown);
        assert_eq!(sim.counters().set_network_config, 0);
        assert!(sim.model_view(&tag).unwrap().addresses.is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn without_networking_the_plain_addresses_are_used() {
        let sim = Sim::new(SimConfig {
            networking: false,
            ..SimConfig::default()
        })
        .unwrap();
        let (tag, id) = sim.add_provisioned_machine();
        tokio::time::advance(secs(60)).await;
        let machine = sim.facade().machine(&tag).await.unwrap();
        let (instance, interfaces) = ask(&*sim.environ(), &id).await;
        assert!(interfaces.is_none());
        let update = update_machine(&*machine, &instance, interfaces)
            .await
            .unwrap();
        assert_eq!(update.addresses, instance.addresses);
        let view = sim.model_view(&tag).unwrap();
        assert_eq!(view.interfaces.len(), 2, "one interface per address");
        assert_eq!(view.interfaces[1].device_index, 1);
        assert_eq!(
            view.interfaces[0].addresses,
            [Address::new("10.0.0.4", AddressScope::CloudLocal)]
        );
    }

    /// A machine whose recorded instance status the model cannot read.
    struct Unreadable(std::sync::Arc<dyn Machine>);

    impl Machine for Unreadable {
        fn tag(&self) -> crate::names::MachineTag {
            self.0.tag()
        }
        fn instance_id(
            &self,
        ) -> futures::future::BoxFuture<'static, Result<InstanceId, PollError>> {
            self.0.instance_id()
        }
        fn set_provider_network_config(
            &self,
            interfaces: Vec<NetworkInterface>,
        ) -> futures::future::BoxFuture<'static, Result<(Vec<Address>, bool), PollError>> {
            self.0.set_provider_network_config(interfaces)
        }
        fn instance_status(
            &self,
        ) -> futures::future::BoxFuture<'static, Result<InstanceStatusInfo, PollError>> {
            Box::pin(async {
                Err(PollError::other(
                    "reading the status",
                    "the API server is gone",
                ))
            })
        }
        fn set_instance_status(
            &self,
            status: InstanceStatus,
            message: String,
        ) -> futures::future::BoxFuture<'static, Result<(), PollError>> {
            self.0.set_instance_status(status, message)
        }
        fn status(&self) -> futures::future::BoxFuture<'static, Result<MachineStatus, PollError>> {
            self.0.status()
        }
        fn life(&self) -> Life {
            self.0.life()
        }
        fn is_manual(&self) -> futures::future::BoxFuture<'static, Result<bool, PollError>> {
            self.0.is_manual()
        }
        fn refresh(&self) -> futures::future::BoxFuture<'static, Result<(), PollError>> {
            self.0.refresh()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreadable_recorded_status_is_taken_as_unknown_and_moves_to_the_short_poll() {
        let sim = Sim::new(SimConfig::default()).unwrap();
        let (tag, id) = sim.add_provisioned_machine();
        tokio::time::advance(secs(60)).await;
        let machine = Unreadable(sim.facade().machine(&tag).await.unwrap());
        // A machine that had settled in the long phase.
        let mut state = PollState::new(&PollConfig::default(), Instant::now());
        state.observe(
            &Observation {
                instance_status: InstanceStatus::Running,
                machine_status: MachineStatus::Started,
                address_count: 1,
            },
            Instant::now(),
        );
        assert_eq!(state.phase(), Phase::Long);
        let (instance, interfaces) = ask(&*sim.environ(), &id).await;
        let update = update_machine(&machine, &instance, interfaces)
            .await
            .expect("not a failure of the poll");
        assert_eq!(
            update.recorded_status_error.as_ref().unwrap().to_string(),
            PollError::other("reading the status", "the API server is gone").to_string()
        );
        assert_eq!(update.observation.instance_status, InstanceStatus::Unknown);
        assert!(update.status_change.is_none());
        assert_eq!(update.apply(&mut state, Instant::now()), Rule::BackToShort);
        assert_eq!(state.phase(), Phase::Short);
        // Nothing was written on the strength of a record not read.
        assert_eq!(sim.counters().set_instance_status, 0);
        assert_eq!(sim.counters().set_network_config, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn manual_machines_are_set_running_once() {
        let sim = Sim::new(SimConfig::default()).unwrap();
        let tag = sim.add_manual_machine();
        let machine = sim.facade().machine(&tag).await.unwrap();
        assert!(settle_manual_machine(&*machine).await.unwrap());
        let view = sim.model_view(&tag).unwrap();
        assert_eq!(
            view.instance_status,
            InstanceStatusInfo::new(InstanceStatus::Running, "Manually provisioned machine")
        );
        assert!(!settle_manual_machine(&*machine).await.unwrap());
        assert_eq!(sim.counters().set_instance_status, 1);
        assert_eq!(sim.counters().instances.calls, 0, "never polled");
    }
}
