//! A simulated machine and its instance over time: the instance's status,
//! addresses and interfaces, and its agent's start, all computed from when
//! it booted, stopped and restarted.

use tokio::time::Instant;

use super::{SimConfig, SimInstance, SimMachine};
use crate::model::MachineStatus;
use crate::provider::{Address, AddressScope, InstanceStatus, NetworkInterface};

impl SimInstance {
    /// When the instance starts running.
    fn running_at(&self, config: &SimConfig) -> Option<Instant> {
        self.booted_at
            .checked_add(config.pending_for)?
            .checked_add(config.allocating_for)
    }

    fn stopped_by(&self, now: Instant) -> bool {
        self.stopped_at.is_some_and(|at| at <= now)
    }

    pub(super) fn status(&self, config: &SimConfig, now: Instant) -> InstanceStatus {
        if self.stopped_by(now) {
            InstanceStatus::Stopped
        } else if self.running_at(config).is_some_and(|at| at <= now) {
            InstanceStatus::Running
        } else if self
            .booted_at
            .checked_add(config.pending_for)
            .is_some_and(|at| at <= now)
        {
            InstanceStatus::Allocating
        } else {
            InstanceStatus::Pending
        }
    }
}

impl SimMachine {
    /// The addresses the provider reports for the machine's instance now.
    pub(super) fn provider_addresses(&self, config: &SimConfig, now: Instant) -> Vec<Address> {
        let Some(instance) = &self.instance else {
            return Vec::new();
        };
        if instance.status(config, now) != InstanceStatus::Running {
            return Vec::new();
        }
        if let Some(addresses) = &instance.addresses {
            return addresses.clone();
        }
        let appear_at = instance
            .running_at(config)
            .and_then(|at| at.checked_add(config.address_delay));
        if appear_at.is_some_and(|at| at <= now) {
            vec![local_address(self.number), public_address(self.number)]
        } else {
            Vec::new()
        }
    }

    /// The network interfaces the provider reports for the instance now.
    pub(super) fn provider_interfaces(
        &self,
        config: &SimConfig,
        now: Instant,
    ) -> Vec<NetworkInterface> {
        let addresses = self.provider_addresses(config, now);
        let Some(instance) = &self.instance else {
            return Vec::new();
        };
        let n = self.number;
        vec![NetworkInterface {
            device_index: 0,
            interface_name: "eth0".to_owned(),
            mac_address: format!(
                "02:00:00:{:02x}:{:02x}:{:02x}",
                (n >> 16) & 0xff,
                (n >> 8) & 0xff,
                n & 0xff
            ),
            provider_id: format!("eni-{}", instance.id),
            subnet_id: String::new(),
            addresses,
        }]
    }

    /// When the machine's agent last started, if it has by `now`.
    pub(super) fn agent_started_at(&self, config: &SimConfig, now: Instant) -> Option<Instant> {
        if self.manual {
            return Some(self.added_at);
        }
        let instance = self.instance.as_ref()?;
        let up_until = instance.stopped_at.map_or(now, |at| at.min(now));
        let first = instance
            .running_at(config)
            .and_then(|at| at.checked_add(config.agent_start_delay))
            .filter(|at| *at <= up_until);
        let restarted = self.agent_restarted_at.filter(|at| *at <= up_until);
        first.max(restarted)
    }

    /// When the agent will first start, if that is still to come: the time a
    /// machine watcher must wake up to report it.
    pub(super) fn agent_starts_later(&self, config: &SimConfig, now: Instant) -> Option<Instant> {
        if self.manual {
            return None;
        }
        let instance = self.instance.as_ref()?;
        let first = instance
            .running_at(config)?
            .checked_add(config.agent_start_delay)?;
        let stopped_before = instance.stopped_at.is_some_and(|at| at < first);
        (first > now && !stopped_before).then_some(first)
    }

    pub(super) fn agent_status(&self, config: &SimConfig, now: Instant) -> MachineStatus {
        let stopped = self.instance.as_ref().is_some_and(|i| i.stopped_by(now));
        if stopped && !self.manual {
            MachineStatus::Down
        } else if self.agent_started_at(config, now).is_some() {
            MachineStatus::Started
        } else {
            MachineStatus::Pending
        }
    }
}

pub(super) fn local_address(n: u64) -> Address {
    Address::new(
        format!("10.{}.{}.4", (n >> 8) & 0xff, n & 0xff),
        AddressScope::CloudLocal,
    )
}

fn public_address(n: u64) -> Address {
    Address::new(
        format!(
            "198.{}.{}.{}",
            18 + ((n >> 16) & 1),
            (n >> 8) & 0xff,
            n & 0xff
        ),
        AddressScope::Public,
    )
}
