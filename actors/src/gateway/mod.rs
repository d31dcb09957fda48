//! The provider gateway: the pollers' only path to the cloud.
//!
//! Pollers ask for one instance each. The gateway holds each request for a
//! short window so that the requests of pollers falling due together travel
//! in one provider call of at most `max_batch` ids (and one network-interface
//! call for the same ids), paces its calls under a rate limit, waits out
//! throttling, cuts off calls that hang, and pauses while the cloud refuses
//! the model's credential. Each poller gets its own instance back.
//!
//! One gateway serves one cloud account in one region: the models that
//! share the account share its batches and its rate limit, each with its
//! own credential API ([`ProviderGateway::for_models`]). A denial of the
//! account's credential pauses each of them and reaches each one's
//! credential API; each resumes when its own credential is valid again.
//!
//! ```text
//!  MachinePoller ── Fetch { id } ──▶ ProviderGateway (actor.rs)
//!                                      │ queues the request (batch.rs: Queue)
//!                                      │ once the head has waited `window`, or
//!                                      │ `max_batch` requests wait, and a batch may
//!                                      │ be in flight and the credential is valid:
//!                                      │   a Batch asks for each id once (batch.rs)
//!                                      │   its two calls reserve slots (pacing.rs)
//!                                      ▼
//!                        call_provider (call.rs): instances, then
//!                        network_interfaces for the known ids,
//!                        each in its slot, within `call_timeout`
//!                                      │ BatchOutcome
//!                                      ▼
//!          counted (metrics.rs) ◀── ProviderGateway ──▶ Fetched to each poller,
//!                                      │                or the error
//!                                      ├─ throttled: slots blocked (pacing.rs), requeued
//!                                      └─ denied: paused, credential invalidated, requeued
//! ```
//!
//! `config.rs` holds the settings; `messages.rs` what pollers and the host
//! send the gateway and what it answers; `credential.rs` each model's
//! credential state.

mod actor;
mod batch;
mod call;
mod config;
mod credential;
mod messages;
mod metrics;
mod pacing;

pub use actor::{ModelGate, ProviderGateway};
pub use config::GatewayConfig;
pub use credential::GatewayState;
pub use messages::{
    CredentialValid, Fetch, Fetched, GatewayModel, GatewayReport, GetGatewayReport,
    ModelCredentialValid, ModelFetch,
};
pub use metrics::{GatewayMetrics, ProviderTotals};
