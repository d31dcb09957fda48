//! The OpenStack provider end to end: against mimic (Rackspace's OpenStack
//! double) run as a child process behind a fault proxy, against a real
//! Keystone v3, and against canned Neutron answers, which mimic lacks.

mod conformance;
#[path = "../common/fault_proxy.rs"]
mod fault_proxy;
mod keystone;
mod keystone_v3;
mod mimic;
mod neutron;
mod plain_http;
mod support;
mod with_mimic;
