//! The OpenStack provider end to end: against mimic (Rackspace's OpenStack
//! double) run as a child process behind a fault proxy, and against a real
//! Keystone v3.

mod conformance;
#[path = "../common/fault_proxy.rs"]
mod fault_proxy;
mod keystone;
mod keystone_v3;
mod mimic;
mod plain_http;
mod support;
mod with_mimic;
