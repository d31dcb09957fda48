//! muster's core: agent presence and the cloud instance-poll schedule.
//!
//! This crate holds the logic of muster as plain Rust, free of any actor
//! runtime: typed names, the presence model and its queries, the poll
//! schedule, the traits through which muster reaches the cloud provider and
//! the controller's model, and an embedded simulated cloud that the demo and
//! the tests run on. The crate `muster-actors` runs it as a supervision tree.

pub mod clock;
pub mod config;
#[cfg(feature = "ec2")]
pub mod ec2;
pub mod error;
pub mod model;
pub mod names;
#[cfg(feature = "openstack")]
pub mod openstack;
#[cfg(feature = "passwords")]
pub mod password;
pub mod poll;
pub mod presence;
pub mod provider;
pub mod sim;
pub mod sync;
pub mod token;
pub mod update;
