//! What the simulation has been asked: calls and ids by provider method,
//! API server calls, and errors by kind.

use std::collections::BTreeMap;

use super::Sim;
use crate::error::ErrorKind;

/// Counts of what was asked of one provider method.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallStats {
    /// How many calls were made.
    pub calls: u64,
    /// How many ids they asked for, in all.
    pub ids: u64,
    /// The most ids asked for in one call.
    pub max_ids: usize,
}

impl CallStats {
    pub(super) fn record(&mut self, ids: usize) {
        self.calls += 1;
        self.ids += ids as u64;
        self.max_ids = self.max_ids.max(ids);
    }

    /// The mean number of ids per call; 0 before any call.
    pub fn mean_ids(&self) -> f64 {
        if self.calls == 0 {
            0.0
        } else {
            self.ids as f64 / self.calls as f64
        }
    }
}

/// What the simulation has been asked, for tests and benchmarks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SimCounters {
    /// Calls of [`Environ::instances`].
    ///
    /// [`Environ::instances`]: crate::provider::Environ::instances
    pub instances: CallStats,
    /// Calls of [`Environ::network_interfaces`].
    ///
    /// [`Environ::network_interfaces`]: crate::provider::Environ::network_interfaces
    pub network_interfaces: CallStats,
    /// Calls to the API server about machines (every [`Machine`] method
    /// that asks, and [`ModelFacade::machine`]).
    ///
    /// [`Machine`]: crate::model::Machine
    /// [`ModelFacade::machine`]: crate::model::ModelFacade::machine
    pub model_calls: u64,
    /// Calls of `set_instance_status`.
    pub set_instance_status: u64,
    /// Calls of `set_provider_network_config`.
    pub set_network_config: u64,
    /// Calls of [`CredentialApi::invalidate_model_credential`].
    ///
    /// [`CredentialApi::invalidate_model_credential`]:
    ///     crate::model::CredentialApi::invalidate_model_credential
    pub credential_invalidations: u64,
    /// Every error the simulation returned, by kind.
    pub errors: BTreeMap<ErrorKind, u64>,
}

impl SimCounters {
    /// How many errors of `kind` the simulation returned.
    pub fn errors_of(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).copied().unwrap_or(0)
    }
}

impl Sim {
    /// What the simulation has been asked so far.
    pub fn counters(&self) -> SimCounters {
        self.shared.with(|state| state.counters.clone())
    }

    /// Starts the counters over.
    pub fn reset_counters(&self) {
        self.shared
            .with(|state| state.counters = SimCounters::default());
    }
}
