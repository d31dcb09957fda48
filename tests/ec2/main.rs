//! The EC2 provider end to end: against moto, a local EC2 double run as a
//! child process, and against a local server answering canned EC2 errors.

mod canned;
mod canned_server;
mod conformance;
#[path = "../common/fault_proxy.rs"]
mod fault_proxy;
mod moto;
mod support;
mod with_moto;
