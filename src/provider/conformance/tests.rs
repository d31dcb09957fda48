//! The suite on the simulated cloud, and on environs that break one rule
//! each: it must pass the one and name the rule each of the others breaks.

use std::sync::Arc;

use futures::future::{BoxFuture, FutureExt};

use super::{Rule, run};
use crate::error::PollError;
use crate::provider::{Environ, Instance, InstanceId, NetworkInterface};
use crate::sim::{Sim, SimConfig, SimConformance};

fn sim() -> Sim {
    Sim::new(SimConfig::default()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_simulated_cloud_keeps_every_rule_but_the_secret() {
    let report = run(&SimConformance::new(sim())).await;
    report.assert_conforms(&[Rule::NoSecretShown]);
    assert_eq!(report.passed().len(), Rule::ALL.len() - 1, "{report}");
}

/// An environ on the simulation that answers `instances` through `change`.
struct Broken<F> {
    inner: Arc<dyn Environ>,
    change: F,
    interfaces: fn(Vec<Vec<NetworkInterface>>) -> Vec<Vec<NetworkInterface>>,
}

type Answer = Result<Vec<Option<Instance>>, PollError>;

impl<F> Environ for Broken<F>
where
    F: Fn(Vec<InstanceId>, Answer) -> Answer + Clone + Send + Sync + 'static,
{
    fn instances(&self, ids: &[InstanceId]) -> BoxFuture<'static, Answer> {
        let call = self.inner.instances(ids);
        let change = self.change.clone();
        let ids = ids.to_vec();
        async move { change(ids, call.await) }.boxed()
    }

    fn network_interfaces(
        &self,
        ids: &[InstanceId],
    ) -> BoxFuture<'static, Result<Vec<Vec<NetworkInterface>>, PollError>> {
        let call = self.inner.network_interfaces(ids);
        let change = self.interfaces;
        async move { call.await.map(change) }.boxed()
    }
}

async fn failures_of<F>(change: F) -> Vec<Rule>
where
    F: Fn(Vec<InstanceId>, Answer) -> Answer + Clone + Send + Sync + 'static,
{
    failures_with(change, |lists| lists).await
}

async fn failures_with<F>(
    change: F,
    interfaces: fn(Vec<Vec<NetworkInterface>>) -> Vec<Vec<NetworkInterface>>,
) -> Vec<Rule>
where
    F: Fn(Vec<InstanceId>, Answer) -> Answer + Clone + Send + Sync + 'static,
{
    let sim = sim();
    let environ = Arc::new(Broken {
        inner: sim.environ(),
        change,
        interfaces,
    });
    let report = run(&SimConformance::with_environ(sim, environ)).await;
    let failed: Vec<Rule> = report.failures().iter().map(|(rule, _)| *rule).collect();
    for (_, why) in report.failures() {
        assert!(!why.is_empty());
    }
    failed
}

#[tokio::test(start_paused = true)]
async fn answers_out_of_order_break_the_order_rule() {
    let failed = failures_of(|_, answer: Answer| {
        answer.map(|mut found| {
            found.reverse();
            found
        })
    })
    .await;
    assert!(failed.contains(&Rule::OneEntryPerId), "{failed:?}");
    assert!(failed.contains(&Rule::ManyIdsInOneCall), "{failed:?}");
}

#[tokio::test(start_paused = true)]
async fn an_id_asked_twice_answered_once_breaks_the_order_rule() {
    let failed = failures_of(|_, answer: Answer| {
        answer.map(|found| {
            let mut seen = Vec::new();
            found
                .into_iter()
                .filter(|f| match f {
                    Some(i) if seen.contains(&i.id) => false,
                    Some(i) => {
                        seen.push(i.id.clone());
                        true
                    }
                    None => true,
                })
                .collect()
        })
    })
    .await;
    assert_eq!(failed, [Rule::OneEntryPerId]);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_id_failing_the_call_breaks_the_gap_rules() {
    let failed = failures_of(|_, answer: Answer| {
        let found = answer?;
        if found.iter().any(Option::is_none) {
            return Err(PollError::other(
                "fetching instances",
                "InvalidInstanceID.NotFound",
            ));
        }
        Ok(found)
    })
    .await;
    assert_eq!(
        failed,
        [
            Rule::UnknownIsAGap,
            Rule::DeletedIsAGap,
            Rule::IncompleteAnswersAlign
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_answer_for_no_ids_breaks_the_empty_rule() {
    let failed = failures_of(|ids: Vec<InstanceId>, answer: Answer| {
        if ids.is_empty() {
            return Err(PollError::other("fetching instances", "no ids"));
        }
        answer
    })
    .await;
    assert_eq!(failed, [Rule::EmptyAsk]);
}

#[tokio::test(start_paused = true)]
async fn errors_of_the_wrong_kind_break_their_rules() {
    let failed = failures_of(|_, answer: Answer| {
        answer.map_err(|error| match error {
            PollError::Throttled { .. } => PollError::Throttled { retry_after: None },
            PollError::Unauthorised(why) => PollError::other("fetching instances", why),
            PollError::Other { .. } => PollError::NoInstances,
            other => other,
        })
    })
    .await;
    assert_eq!(
        failed,
        [Rule::Throttled, Rule::RefusedCredential, Rule::OtherFailure]
    );
}

#[tokio::test(start_paused = true)]
async fn a_status_out_of_thin_air_breaks_the_new_instance_rule() {
    let failed = failures_of(|_, answer: Answer| {
        answer.map(|found| {
            found
                .into_iter()
                .map(|f| {
                    f.map(|mut i| {
                        i.status.status = crate::provider::InstanceStatus::Stopped;
                        i
                    })
                })
                .collect()
        })
    })
    .await;
    assert_eq!(failed, [Rule::NewInstanceStatus]);
}

#[tokio::test(start_paused = true)]
async fn interfaces_out_of_device_order_or_for_unknown_ids_break_the_interface_rule() {
    let keep = |_: Vec<InstanceId>, answer: Answer| answer;
    let reversed = failures_with(keep, |lists| {
        lists
            .into_iter()
            .map(|list| {
                let mut doubled: Vec<NetworkInterface> = list
                    .iter()
                    .cloned()
                    .chain(list.iter().cloned().map(|mut i| {
                        i.device_index += 1;
                        i
                    }))
                    .collect();
                doubled.reverse();
                doubled
            })
            .collect()
    })
    .await;
    assert_eq!(reversed, [Rule::InterfacesPerId]);
    let filled = failures_with(keep, |lists| {
        let any = lists.iter().flatten().next().cloned().unwrap_or_default();
        lists.into_iter().map(|_| vec![any.clone()]).collect()
    })
    .await;
    assert_eq!(filled, [Rule::InterfacesPerId]);
}
