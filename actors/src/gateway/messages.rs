//! What pollers and the host send the gateway, and what it answers.

use std::collections::BTreeMap;
use std::time::Duration;

use actix::prelude::*;
use muster::error::PollError;
use muster::names::ModelUuid;
use muster::provider::{Instance, InstanceId, NetworkInterface};
use serde::Serialize;

/// What the provider said about one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Fetched {
    /// The provider knows the instance.
    Known {
        /// The instance, with its status and plain addresses.
        instance: Instance,
        /// Its network interfaces; `None` when the provider does not support
        /// networking, so the poller falls back to the plain addresses.
        interfaces: Option<Vec<NetworkInterface>>,
    },
    /// The provider does not know the instance (a partial or empty answer).
    Unknown,
}

/// Asks the gateway for one instance and its network interfaces, for the
/// gateway's own model (the one whose credential API
/// [`ProviderGateway::new`](super::ProviderGateway::new) took).
#[derive(Debug, Clone)]
pub struct Fetch {
    /// The instance.
    pub id: InstanceId,
}

impl Message for Fetch {
    type Result = Result<Fetched, PollError>;
}

/// Asks a gateway that serves many models for one instance of `model`: the
/// request waits while that model's credential is denied, and a denial
/// reaches that model's credential API.
#[derive(Debug, Clone)]
pub struct ModelFetch {
    /// The model whose machine polls.
    pub model: ModelUuid,
    /// The instance.
    pub id: InstanceId,
}

impl Message for ModelFetch {
    type Result = Result<Fetched, PollError>;
}

/// Tells the gateway whether the credential of every model it serves is
/// valid, as the host knows it; `true` resumes polling paused by a denied
/// credential.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct CredentialValid(pub bool);

/// Tells the gateway whether one model's credential is valid, as the host
/// knows it.
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "()")]
pub struct ModelCredentialValid {
    /// The model.
    pub model: ModelUuid,
    /// Whether its credential is valid.
    pub valid: bool,
}

/// Asks the gateway for its [`GatewayReport`].
#[derive(Debug, Clone, Copy, Message)]
#[rtype(result = "GatewayReport")]
pub struct GetGatewayReport;

/// What the gateway is doing, for the supervision report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GatewayReport {
    /// Requests waiting for a provider call, those of models paused for a
    /// denied credential included.
    pub queued: usize,
    /// Batches waiting on the provider.
    pub in_flight: usize,
    /// Whether polling is paused for some model because the cloud denied
    /// its credential.
    pub credential_paused: bool,
    /// How often the gateway invalidated a model's credential.
    pub credential_invalidations: u64,
    /// How long calls wait yet because the provider throttled them.
    #[serde(with = "humantime_serde")]
    pub throttled_for: Option<Duration>,
    /// Provider calls made, by method.
    pub calls: BTreeMap<&'static str, u64>,
    /// Instance ids asked for, by method.
    pub ids: BTreeMap<&'static str, u64>,
    /// Failed provider calls, by kind.
    pub errors: BTreeMap<String, u64>,
    /// Throttled provider calls.
    pub throttles: u64,
    /// Each model the gateway serves, by UUID; the gateway's own model
    /// (of a gateway serving one) has none.
    pub models: Vec<GatewayModel>,
}

/// One model a gateway serves, as its report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GatewayModel {
    /// The model; `None` for the gateway's own model.
    pub model: Option<ModelUuid>,
    /// Whether its polling is paused because its credential is denied.
    pub paused: bool,
    /// How often the gateway invalidated its credential.
    pub invalidations: u64,
    /// Its requests waiting for a provider call.
    pub queued: usize,
}
