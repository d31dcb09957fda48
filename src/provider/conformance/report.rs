//! What a run of the conformance suite found: each rule of the provider
//! contract with its outcome, and a text naming every rule that failed.

use std::fmt;

/// A rule of the provider contract, as `docs/spec.md` §12.1 states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// §12.1.1: asking for no ids answers nothing, on both calls.
    EmptyAsk,
    /// §12.1.2: one entry per id, in the order asked, each carrying the id
    /// asked at its place, an id asked twice answered at both places.
    OneEntryPerId,
    /// §12.1.3: [`MAX_IDS_PER_CALL`](crate::provider::MAX_IDS_PER_CALL) ids
    /// are answered by one call, at the cost in cloud requests the provider
    /// states.
    ManyIdsInOneCall,
    /// §12.1.4: an id the cloud does not know is a gap at its place; the
    /// others are answered.
    UnknownIsAGap,
    /// §12.1.5: a call for ids the cloud knows none of fails with
    /// `no-instances`, or answers nothing but gaps.
    NoneKnown,
    /// §12.1.6: a deleted instance is a gap.
    DeletedIsAGap,
    /// §12.1.7: an instance just made is pending, allocating or running.
    NewInstanceStatus,
    /// §12.1.8: interfaces come one list per id, in the order asked, empty
    /// for an unknown id, each list in device order; or the whole call
    /// fails `not-supported` when the provider has no networking.
    InterfacesPerId,
    /// §12.1.9: answers the cloud leaves incomplete still align with the
    /// ids asked.
    IncompleteAnswersAlign,
    /// §12.1.10: a throttled call fails `throttled`, with the wait the
    /// cloud asked for.
    Throttled,
    /// §12.1.11: a refused credential fails both calls `unauthorised`; the
    /// same environ answers again once the cloud accepts it.
    RefusedCredential,
    /// §12.1.12: any other failure of the cloud fails the call as `other`
    /// or `timeout`, saying what was being done.
    OtherFailure,
    /// §12.1.13: no error message and no `Debug` form shows the secret.
    NoSecretShown,
}

impl Rule {
    /// Every rule, in the order the suite checks them.
    pub const ALL: [Rule; 13] = [
        Rule::EmptyAsk,
        Rule::OneEntryPerId,
        Rule::ManyIdsInOneCall,
        Rule::UnknownIsAGap,
        Rule::NoneKnown,
        Rule::DeletedIsAGap,
        Rule::NewInstanceStatus,
        Rule::InterfacesPerId,
        Rule::IncompleteAnswersAlign,
        Rule::Throttled,
        Rule::RefusedCredential,
        Rule::OtherFailure,
        Rule::NoSecretShown,
    ];

    /// The rule's number in `docs/spec.md`.
    pub fn number(self) -> &'static str {
        match self {
            Rule::EmptyAsk => "§12.1.1",
            Rule::OneEntryPerId => "§12.1.2",
            Rule::ManyIdsInOneCall => "§12.1.3",
            Rule::UnknownIsAGap => "§12.1.4",
            Rule::NoneKnown => "§12.1.5",
            Rule::DeletedIsAGap => "§12.1.6",
            Rule::NewInstanceStatus => "§12.1.7",
            Rule::InterfacesPerId => "§12.1.8",
            Rule::IncompleteAnswersAlign => "§12.1.9",
            Rule::Throttled => "§12.1.10",
            Rule::RefusedCredential => "§12.1.11",
            Rule::OtherFailure => "§12.1.12",
            Rule::NoSecretShown => "§12.1.13",
        }
    }

    /// The rule in a few words.
    pub fn summary(self) -> &'static str {
        match self {
            Rule::EmptyAsk => "asking for no ids answers nothing",
            Rule::OneEntryPerId => "one entry per id, in the order asked",
            Rule::ManyIdsInOneCall => "many ids are answered by one call",
            Rule::UnknownIsAGap => "an unknown id is a gap",
            Rule::NoneKnown => "a call knowing none of its ids is no-instances or all gaps",
            Rule::DeletedIsAGap => "a deleted instance is a gap",
            Rule::NewInstanceStatus => "a new instance is pending, allocating or running",
            Rule::InterfacesPerId => "interfaces come one list per id, in device order",
            Rule::IncompleteAnswersAlign => "incomplete answers still align with the ids",
            Rule::Throttled => "a throttled call is throttled, with the cloud's wait",
            Rule::RefusedCredential => "a refused credential is unauthorised until accepted",
            Rule::OtherFailure => "another failure is other, saying what was done",
            Rule::NoSecretShown => "no message or Debug form shows the secret",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.number(), self.summary())
    }
}

/// What the suite found for one rule.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The provider keeps the rule.
    Passed,
    /// The provider breaks the rule, or the fixture failed to set the case
    /// up: what went wrong.
    Failed(String),
    /// The fixture cannot set the case up (a cloud that cannot be made to
    /// throttle, say): why the rule was not checked. Not a pass.
    NotChecked(String),
}

/// The outcome of every rule, in the order checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    outcomes: Vec<(Rule, Outcome)>,
}

impl Report {
    pub(super) fn record(&mut self, rule: Rule, outcome: Outcome) {
        self.outcomes.push((rule, outcome));
    }

    /// Every rule with its outcome, in the order checked.
    pub fn outcomes(&self) -> &[(Rule, Outcome)] {
        &self.outcomes
    }

    /// The outcome of `rule`, if it was run.
    pub fn outcome(&self, rule: Rule) -> Option<&Outcome> {
        self.outcomes
            .iter()
            .find(|(r, _)| *r == rule)
            .map(|(_, o)| o)
    }

    /// The rules broken, each with what went wrong.
    pub fn failures(&self) -> Vec<(Rule, &str)> {
        self.outcomes
            .iter()
            .filter_map(|(rule, outcome)| match outcome {
                Outcome::Failed(why) => Some((*rule, why.as_str())),
                _ => None,
            })
            .collect()
    }

    /// The rules the fixture could not set up.
    pub fn not_checked(&self) -> Vec<Rule> {
        self.outcomes
            .iter()
            .filter(|(_, o)| matches!(o, Outcome::NotChecked(_)))
            .map(|(rule, _)| *rule)
            .collect()
    }

    /// The rules kept.
    pub fn passed(&self) -> Vec<Rule> {
        self.outcomes
            .iter()
            .filter(|(_, o)| *o == Outcome::Passed)
            .map(|(rule, _)| *rule)
            .collect()
    }

    /// Whether no rule failed.
    pub fn ok(&self) -> bool {
        self.failures().is_empty()
    }

    /// Panics, naming every failed rule and what went wrong, unless every
    /// rule passed except those in `not_checked`, which must be exactly the
    /// rules the fixture could not set up: a rule quietly left unchecked
    /// fails the test too.
    #[track_caller]
    pub fn assert_conforms(&self, not_checked: &[Rule]) {
        let mut expected = not_checked.to_vec();
        expected.sort();
        let mut actual = self.not_checked();
        actual.sort();
        assert!(
            self.ok() && expected == actual && self.outcomes.len() == Rule::ALL.len(),
            "the provider does not conform (expected unchecked: {expected:?}):\n{self}"
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (rule, outcome) in &self.outcomes {
            match outcome {
                Outcome::Passed => writeln!(f, "passed       {rule}")?,
                Outcome::Failed(why) => writeln!(f, "FAILED       {rule}: {why}")?,
                Outcome::NotChecked(why) => writeln!(f, "not checked  {rule}: {why}")?,
            }
        }
        Ok(())
    }
}
