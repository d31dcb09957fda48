//! What a node does with the model leases at one round (docs/spec.md
//! §11.8): a pure function of what it holds, what it read of the bucket
//! and the live nodes, so the rules are tested without NATS or a clock.

use std::collections::{BTreeMap, BTreeSet};

use muster::names::{MachineTag, ModelUuid};

use crate::rendezvous;

/// A lease as read from the bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The node that holds it.
    pub holder: MachineTag,
    /// The revision of its last write.
    pub revision: u64,
}

/// One thing to do with one model's lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Write the lease again, expecting `revision`: a lease this node
    /// holds (or that the bucket says it holds, from its previous run).
    Renew {
        /// The model.
        model: ModelUuid,
        /// The revision expected.
        revision: u64,
    },
    /// Create the lease, which nobody holds.
    Acquire {
        /// The model.
        model: ModelUuid,
    },
    /// Stop polling and delete the lease, expecting `revision`, for the
    /// node that should hold it.
    Release {
        /// The model.
        model: ModelUuid,
        /// The revision expected.
        revision: u64,
    },
}

/// What one round decides from.
#[derive(Debug, Clone)]
pub struct Round<'a> {
    /// This node.
    pub me: &'a MachineTag,
    /// The live nodes, this one among them.
    pub live: &'a BTreeSet<MachineTag>,
    /// Every model of the cluster.
    pub models: &'a [ModelUuid],
    /// The leases this node holds, with the revision of its last write.
    pub held: &'a BTreeMap<ModelUuid, u64>,
    /// The held leases whose renewal is due.
    pub due: &'a BTreeSet<ModelUuid>,
    /// What the bucket holds of the leases this node does not hold (none:
    /// vacant).
    pub seen: &'a BTreeMap<ModelUuid, Option<Seen>>,
    /// For how many rounds each lease has been seen vacant in a row.
    pub vacant: &'a BTreeMap<ModelUuid, u32>,
    /// The rounds a lease stays vacant before a node that is not its owner
    /// takes it: the owner's view of the live nodes may differ for a
    /// moment, and no model must stay unpolled for long.
    pub patience: u32,
    /// Whether this round may give a lease back to its owner: at most one
    /// per renewal period, so that a node that comes back takes its models
    /// back gradually.
    pub may_release: bool,
}

/// The steps of one round, in the order of the models.
pub fn plan(round: &Round<'_>) -> Vec<Step> {
    let mut steps = Vec::new();
    let mut released = !round.may_release;
    for model in round.models {
        let owner = rendezvous::owner(model, round.live);
        let mine = owner == Some(round.me);
        if let Some(revision) = round.held.get(model) {
            if !mine && !released {
                released = true;
                steps.push(Step::Release {
                    model: *model,
                    revision: *revision,
                });
            } else if round.due.contains(model) {
                steps.push(Step::Renew {
                    model: *model,
                    revision: *revision,
                });
            }
            continue;
        }
        match round.seen.get(model) {
            // This node's name on it: its previous run's lease, taken over.
            Some(Some(seen)) if seen.holder == *round.me => steps.push(Step::Renew {
                model: *model,
                revision: seen.revision,
            }),
            Some(Some(_)) => {}
            Some(None) => {
                let waited = round.vacant.get(model).copied().unwrap_or(0);
                if mine || waited >= round.patience {
                    steps.push(Step::Acquire { model: *model });
                }
            }
            // Not read this round.
            None => {}
        }
    }
    steps
}

/// The leases read between rounds, so that their models are taken the
/// moment they can be: those this node does not hold and last saw held by
/// a node that is not live (vacant once they expire, or given back), or
/// saw vacant and now owns (their owner then was a node that left).
pub fn orphans(
    me: &MachineTag,
    seen: &BTreeMap<ModelUuid, Option<Seen>>,
    held: &BTreeMap<ModelUuid, u64>,
    live: &BTreeSet<MachineTag>,
) -> Vec<ModelUuid> {
    seen.iter()
        .filter(|(model, lease)| {
            !held.contains_key(model)
                && match lease {
                    Some(lease) => !live.contains(&lease.holder),
                    None => rendezvous::owner(model, live) == Some(me),
                }
        })
        .map(|(model, _)| *model)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(n: u32) -> MachineTag {
        format!("machine-{n}").parse().unwrap()
    }

    struct Case {
        me: MachineTag,
        live: BTreeSet<MachineTag>,
        models: Vec<ModelUuid>,
        held: BTreeMap<ModelUuid, u64>,
        due: BTreeSet<ModelUuid>,
        seen: BTreeMap<ModelUuid, Option<Seen>>,
        vacant: BTreeMap<ModelUuid, u32>,
        may_release: bool,
    }

    impl Case {
        fn new(me: u32, live: &[u32], models: u128) -> Case {
            Case {
                me: node(me),
                live: live.iter().map(|n| node(*n)).collect(),
                models: (1..=models).map(ModelUuid::from_u128).collect(),
                held: BTreeMap::new(),
                due: BTreeSet::new(),
                seen: BTreeMap::new(),
                vacant: BTreeMap::new(),
                may_release: true,
            }
        }

        fn steps(&self) -> Vec<Step> {
            plan(&Round {
                me: &self.me,
                live: &self.live,
                models: &self.models,
                held: &self.held,
                due: &self.due,
                seen: &self.seen,
                vacant: &self.vacant,
                patience: 3,
                may_release: self.may_release,
            })
        }

        fn owned(&self, by: u32) -> Vec<ModelUuid> {
            self.models
                .iter()
                .filter(|m| rendezvous::owner(m, &self.live) == Some(&node(by)))
                .copied()
                .collect()
        }
    }

    #[test]
    fn a_node_acquires_the_vacant_leases_it_owns_and_waits_for_the_others() {
        let mut case = Case::new(1, &[1, 2, 3], 30);
        for model in case.models.clone() {
            case.seen.insert(model, None);
        }
        let mine = case.owned(1);
        assert!(!mine.is_empty() && mine.len() < 30);
        let want: Vec<Step> = mine.iter().map(|m| Step::Acquire { model: *m }).collect();
        assert_eq!(case.steps(), want);

        // Vacant for as long as the patience, the others' are taken too.
        let theirs = case.owned(2)[0];
        case.vacant.insert(theirs, 3);
        assert!(case.steps().contains(&Step::Acquire { model: theirs }));
    }

    #[test]
    fn held_leases_are_renewed_when_due_and_others_holders_left_alone() {
        let mut case = Case::new(1, &[1, 2], 20);
        let mine = case.owned(1);
        let theirs = case.owned(2);
        case.held.insert(mine[0], 7);
        case.held.insert(mine[1], 8);
        case.due.insert(mine[1]);
        for model in &theirs {
            case.seen.insert(
                *model,
                Some(Seen {
                    holder: node(2),
                    revision: 3,
                }),
            );
        }
        assert_eq!(
            case.steps(),
            [Step::Renew {
                model: mine[1],
                revision: 8
            }]
        );
    }

    #[test]
    fn a_lease_of_this_nodes_previous_run_is_taken_over() {
        let mut case = Case::new(1, &[1, 2], 10);
        let theirs = case.owned(2)[0];
        case.seen.insert(
            theirs,
            Some(Seen {
                holder: node(1),
                revision: 41,
            }),
        );
        assert_eq!(
            case.steps(),
            [Step::Renew {
                model: theirs,
                revision: 41
            }]
        );
    }

    #[test]
    fn leases_go_back_to_their_owner_one_per_renewal_period() {
        // machine-1 held everything while machine-2 was away.
        let mut case = Case::new(1, &[1, 2], 20);
        for (n, model) in case.models.clone().iter().enumerate() {
            case.held.insert(*model, n as u64 + 1);
            case.due.insert(*model);
        }
        let back = case.owned(2);
        assert!(back.len() > 1);
        let steps = case.steps();
        let releases: Vec<&Step> = steps
            .iter()
            .filter(|s| matches!(s, Step::Release { .. }))
            .collect();
        assert_eq!(
            releases,
            [&Step::Release {
                model: back[0],
                revision: case.held[&back[0]]
            }]
        );
        // Every other lease is renewed meanwhile, the owner's included.
        assert_eq!(steps.len(), 20);

        // A round that may not release renews them all.
        case.may_release = false;
        assert!(case.steps().iter().all(|s| matches!(s, Step::Renew { .. })));
    }

    #[test]
    fn alone_a_node_takes_every_vacant_lease() {
        let mut case = Case::new(3, &[3], 12);
        for model in case.models.clone() {
            case.seen.insert(model, None);
        }
        assert_eq!(case.steps().len(), 12);
    }

    #[test]
    fn leases_of_nodes_not_live_and_vacant_leases_of_its_own_are_read_between_rounds() {
        let case = Case::new(1, &[1, 2], 20);
        let (mine, theirs) = (case.owned(1), case.owned(2));
        let (a, b, d, e) = (theirs[0], theirs[1], theirs[2], theirs[3]);
        let c = mine[0];
        let by = |n: u32| {
            Some(Seen {
                holder: node(n),
                revision: 1,
            })
        };
        let seen = BTreeMap::from([(a, by(2)), (b, by(3)), (c, None), (d, by(3)), (e, None)]);
        let held = BTreeMap::from([(d, 9)]);
        // machine-3 is not live: its lease of b is read, and so is c, vacant
        // and this node's own; not a (its holder is live), d (held here),
        // nor e (vacant, but machine-2's).
        let mut want = vec![b, c];
        want.sort();
        assert_eq!(orphans(&node(1), &seen, &held, &case.live), want);
        // machine-3 live again: b is not read; c only if machine-1 still
        // owns it among the three.
        let three = [1, 2, 3].map(node).into();
        let read = orphans(&node(1), &seen, &held, &three);
        assert!(read.iter().all(|m| *m == c), "{read:?}");
    }
}
