//! OpenStack as the cloud provider (the `openstack` cargo feature): Keystone
//! for the token and the service catalog, Nova for the servers and their
//! addresses, and Neutron, when the catalog has it, for their ports.
//!
//! [`OpenStackEnviron::new`] takes an [`OpenStackConfig`]; [`credentials`]
//! says where the credential is read from, [`identity`] how a token is
//! got and kept, [`servers`] how Nova's servers become muster's instances,
//! [`ports`] how Neutron's ports become interfaces, and [`errors`] how
//! failures become [`crate::error::PollError`]s.

pub mod catalog;
pub mod clouds;
pub mod config;
pub mod credentials;
mod environ;
pub mod errors;
mod http;
pub mod identity;
pub mod ports;
pub mod servers;

pub use config::OpenStackConfig;
pub use environ::OpenStackEnviron;
