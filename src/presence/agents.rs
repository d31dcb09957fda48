//! Agent tags held once, however many connections name them.
//!
//! The same tags recur across connections, servers and models
//! (`machine-0`, `unit-mysql-0`), so each distinct tag is kept once, in an
//! [`Agent`], and every entry holds a pointer to it: one word an entry
//! instead of a tag and its text. An agent's address also identifies it in
//! the per-model counts, with no text to hash or compare there.

use std::borrow::Borrow;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::hash::FxSet;
use crate::names::AgentTag;

/// A shared agent tag, one word wide. Equality and hashing are the tag's
/// text, so that an [`Agents`] set finds it by `&str`.
#[derive(Clone, Debug)]
pub(crate) struct Agent(Arc<AgentTag>);

impl Agent {
    pub(crate) fn tag(&self) -> &AgentTag {
        &self.0
    }

    /// The agent's identity while it is held: tags held by one [`Agents`]
    /// have one address each, whichever connection holds them.
    pub(crate) fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as usize
    }
}

impl PartialEq for Agent {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }
}

impl Eq for Agent {}

impl Hash for Agent {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.as_str().hash(state)
    }
}

impl Borrow<str> for Agent {
    fn borrow(&self) -> &str {
        self.0.as_str()
    }
}

/// The distinct agent tags of the tables sharing it.
///
/// A tag no entry holds any more is not taken out at once: the set is swept
/// of them whenever it has doubled since the last sweep, which keeps it
/// within twice the tags in use at the cost of one pass per doubling.
#[derive(Debug, Default)]
pub(crate) struct Agents {
    set: FxSet<Agent>,
    swept_at: usize,
}

/// Below this many tags the set is never swept.
const SWEEP_FLOOR: usize = 64;

impl Agents {
    /// The shared form of `tag`, made if no entry holds it.
    #[inline]
    pub(crate) fn intern(&mut self, tag: &AgentTag) -> Agent {
        if let Some(agent) = self.set.get(tag.as_str()) {
            return agent.clone();
        }
        if self.set.len() >= 2 * self.swept_at.max(SWEEP_FLOOR) {
            // Only the set holds these: no entry, view or count names them.
            self.set.retain(|agent| Arc::strong_count(&agent.0) > 1);
            self.swept_at = self.set.len();
        }
        let agent = Agent(Arc::new(tag.clone()));
        self.set.insert(agent.clone());
        agent
    }

    /// How many tags the set holds, swept or not.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.set.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(n: usize) -> AgentTag {
        format!("unit-app-{n}").parse().unwrap()
    }

    #[test]
    fn one_tag_is_held_once() {
        let mut agents = Agents::default();
        let a = agents.intern(&tag(1));
        let b = agents.intern(&tag(1));
        assert_eq!(a.id(), b.id());
        assert_ne!(a.id(), agents.intern(&tag(2)).id());
        assert_eq!(a.tag(), &tag(1));
    }

    #[test]
    fn tags_no_one_holds_are_swept_as_the_set_grows() {
        let mut agents = Agents::default();
        let held: Vec<Agent> = (0..10).map(|n| agents.intern(&tag(n))).collect();
        for n in 10..10_000 {
            drop(agents.intern(&tag(n)));
            assert!(agents.len() <= 2 * SWEEP_FLOOR.max(held.len()) + 1);
        }
        // The tags still held kept their identity through every sweep.
        for (n, agent) in held.iter().enumerate() {
            assert_eq!(agents.intern(&tag(n)).id(), agent.id());
        }
    }
}
