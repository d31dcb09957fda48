//! The muster supervision tree on actix.
//!
//! This crate runs the core of [`muster`] as a tree of supervised actors: a
//! presence actor with one sub-actor per API server, and a machine watcher
//! with one poller actor per machine, under a root supervisor.

pub use muster;
pub mod gateway;
