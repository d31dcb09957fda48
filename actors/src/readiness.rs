//! Whether a node can do its job now, as its parts say: what a readiness
//! probe (`/readyz`) answers, apart from whether the process lives
//! (`/healthz`). A part that cannot serve for a while (its bus lost, its
//! store refusing writes, its door full) says so under its own name, and
//! says so again when it can.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use muster::sync::lock;

/// The causes the parts of one node give for not being ready, by part.
/// Cheap to clone: clones share the causes. Ready when there is none.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<Mutex<BTreeMap<String, String>>>);

impl Readiness {
    /// A node every part of which is ready.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Part `part` cannot do its job now, because of `cause`; replaces
    /// what it said before.
    pub fn not_ready(&self, part: &str, cause: impl Into<String>) {
        lock(&self.0).insert(part.to_owned(), cause.into());
    }

    /// Part `part` can do its job again.
    pub fn ready(&self, part: &str) {
        lock(&self.0).remove(part);
    }

    /// Sets part `part` ready when `cause` is `None`, not ready for it
    /// otherwise.
    pub fn set(&self, part: &str, cause: Option<String>) {
        match cause {
            Some(cause) => self.not_ready(part, cause),
            None => self.ready(part),
        }
    }

    /// Each part not ready, with its cause, by part name.
    pub fn causes(&self) -> Vec<(String, String)> {
        lock(&self.0)
            .iter()
            .map(|(part, cause)| (part.clone(), cause.clone()))
            .collect()
    }

    /// Whether every part is ready.
    pub fn is_ready(&self) -> bool {
        lock(&self.0).is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_say_why_they_are_not_ready_until_they_are() {
        let readiness = Readiness::new();
        assert!(readiness.is_ready());
        let clone = readiness.clone();
        clone.not_ready("cluster", "NATS lost");
        clone.not_ready("door", "full: 10 of 10 connections");
        clone.not_ready("cluster", "NATS lost: nats://127.0.0.1:4222");
        assert!(!readiness.is_ready());
        assert_eq!(
            readiness.causes(),
            [
                (
                    "cluster".to_owned(),
                    "NATS lost: nats://127.0.0.1:4222".to_owned()
                ),
                ("door".to_owned(), "full: 10 of 10 connections".to_owned()),
            ]
        );
        readiness.set("door", None);
        readiness.ready("cluster");
        readiness.ready("never said");
        assert!(readiness.is_ready());
    }
}
