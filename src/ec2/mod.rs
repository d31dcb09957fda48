//! Amazon EC2 as the cloud provider, on the official AWS SDK (the `ec2`
//! cargo feature).
//!
//! [`Ec2Environ::new`] takes an [`Ec2Config`]: the region, optionally
//! another endpoint and a credential file (see [`credentials`] for its
//! format), and the SDK's connect and operation timeouts. The environ then
//! answers the instance poller's batched calls as [`crate::provider::Environ`]
//! describes; [`convert`] says how EC2's states and addresses become
//! muster's, and [`errors`] how EC2's failures become [`crate::error::PollError`]s.

pub mod config;
pub mod convert;
pub mod credentials;
mod environ;
pub mod errors;

pub use config::Ec2Config;
pub use environ::Ec2Environ;
