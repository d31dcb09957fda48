//! The gateway's counts: the Prometheus series the host registers, which
//! outlive the gateway's restarts, and the tally its report shows.

use std::collections::BTreeMap;

use muster::error::ErrorKind;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::call::CallRecord;

/// A provider method, as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub(super) enum Method {
    instances,
    network_interfaces,
}

impl Method {
    /// The method's name, as the report's keys spell it.
    pub(super) fn name(self) -> &'static str {
        match self {
            Method::instances => "instances",
            Method::network_interfaces => "network_interfaces",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct MethodLabel {
    method: Method,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ErrorLabel {
    kind: &'static str,
}

/// The gateway's Prometheus metrics. Made once by the host and handed to
/// every incarnation of the gateway, so a restart neither re-registers nor
/// resets them.
#[derive(Debug, Clone, Default)]
pub struct GatewayMetrics {
    calls: Family<MethodLabel, Counter>,
    ids: Family<MethodLabel, Counter>,
    errors: Family<ErrorLabel, Counter>,
    throttles: Counter,
    invalidations: Counter,
    /// Calls and failed calls over every method and kind, unregistered:
    /// what [`GatewayMetrics::totals`] reads without walking the families.
    calls_total: Counter,
    errors_total: Counter,
    pub(super) queued: Gauge,
    pub(super) paused: Gauge,
}

impl GatewayMetrics {
    /// Metrics registered in `registry`, under the `muster_provider_` prefix.
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = GatewayMetrics::default();
        let provider = registry.sub_registry_with_prefix("muster_provider");
        provider.register(
            "calls",
            "Provider calls made, by method",
            metrics.calls.clone(),
        );
        provider.register(
            "ids",
            "Instance ids asked of the provider, by method",
            metrics.ids.clone(),
        );
        provider.register(
            "errors",
            "Failed provider calls, by kind",
            metrics.errors.clone(),
        );
        provider.register(
            "throttles",
            "Provider calls refused by throttling",
            metrics.throttles.clone(),
        );
        provider.register(
            "credential_invalidations",
            "Times the model's credential was invalidated after the cloud denied access",
            metrics.invalidations.clone(),
        );
        provider.register(
            "queued_requests",
            "Instance requests waiting for a provider call",
            metrics.queued.clone(),
        );
        provider.register(
            "credential_paused",
            "1 while polling is paused for a denied credential",
            metrics.paused.clone(),
        );
        metrics
    }
}

/// What one incarnation of the gateway has counted, for its report.
/// What the provider was asked, over every gateway sharing the series:
/// counters since they were registered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProviderTotals {
    /// Calls made, every method.
    pub calls: u64,
    /// Calls that failed, every kind.
    pub errors: u64,
    /// Calls refused by throttling.
    pub throttles: u64,
}

impl GatewayMetrics {
    /// The totals of the counters, read where they are kept.
    pub fn totals(&self) -> ProviderTotals {
        ProviderTotals {
            calls: self.calls_total.get(),
            errors: self.errors_total.get(),
            throttles: self.throttles.get(),
        }
    }
}

#[derive(Debug, Default)]
pub(super) struct Tally {
    /// Provider calls made, by method.
    pub(super) calls: BTreeMap<&'static str, u64>,
    /// Instance ids asked for, by method.
    pub(super) ids: BTreeMap<&'static str, u64>,
    /// Failed provider calls, by kind.
    pub(super) errors: BTreeMap<&'static str, u64>,
    /// Throttled provider calls.
    pub(super) throttles: u64,
    /// Times the gateway invalidated the model's credential.
    pub(super) invalidations: u64,
}

impl Tally {
    /// Counts one provider call here and in `metrics`.
    pub(super) fn count_call(&mut self, call: &CallRecord, metrics: &GatewayMetrics) {
        let label = MethodLabel {
            method: call.method,
        };
        *self.calls.entry(call.method.name()).or_default() += 1;
        *self.ids.entry(call.method.name()).or_default() += call.ids as u64;
        metrics.calls.get_or_create(&label).inc();
        metrics.calls_total.inc();
        metrics.ids.get_or_create(&label).inc_by(call.ids as u64);
        if let Some(error) = &call.error {
            // One name per kind, the same in the report and the metrics.
            let kind = error.kind().as_str();
            *self.errors.entry(kind).or_default() += 1;
            metrics.errors.get_or_create(&ErrorLabel { kind }).inc();
            metrics.errors_total.inc();
            if error.kind() == ErrorKind::Throttled {
                self.throttles += 1;
                metrics.throttles.inc();
            }
        }
    }

    /// Counts one invalidation of the model's credential here and in
    /// `metrics`.
    pub(super) fn count_invalidation(&mut self, metrics: &GatewayMetrics) {
        self.invalidations += 1;
        metrics.invalidations.inc();
    }
}
