//! The checks of the suite, one per rule, in the order they run.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use super::{Conformance, Fault, Outcome, Report, Rule};
use crate::error::{ErrorKind, PollError};
use crate::provider::{
    Environ, Instance, InstanceId, InstanceStatus, MAX_IDS_PER_CALL, NetworkInterface,
};

/// Why a check did not pass.
enum Verdict {
    Fail(String),
    Skip(String),
}

type Check = Result<(), Verdict>;

fn fail<T>(why: impl Into<String>) -> Result<T, Verdict> {
    Err(Verdict::Fail(why.into()))
}

/// A fixture's own failure fails the rule it was setting up.
fn fixture<T>(doing: &str, result: Result<T, String>) -> Result<T, Verdict> {
    result.map_err(|e| Verdict::Fail(format!("the fixture failed {doing}: {e}")))
}

type Instances = Result<Vec<Option<Instance>>, PollError>;
type Interfaces = Result<Vec<Vec<NetworkInterface>>, PollError>;

pub(super) struct Suite<'a, C> {
    fixture: &'a C,
    environ: Arc<dyn Environ>,
    report: Report,
    /// Every error the environ answered, as its message and its `Debug`.
    shown: Vec<String>,
    /// Three instances made at the start, most checks' subjects.
    base: Vec<InstanceId>,
}

impl<'a, C: Conformance> Suite<'a, C> {
    pub(super) fn new(fixture: &'a C) -> Self {
        Suite {
            fixture,
            environ: fixture.environ(),
            report: Report::default(),
            shown: Vec::new(),
            base: Vec::new(),
        }
    }

    pub(super) async fn run(mut self) -> Report {
        match self.fixture.create_instances(3).await {
            Ok(ids) if ids.len() == 3 => self.base = ids,
            Ok(ids) => {
                return self.all_fail(&format!(
                    "the fixture made {} instances when asked for 3",
                    ids.len()
                ));
            }
            Err(e) => return self.all_fail(&format!("the fixture failed making instances: {e}")),
        }
        let outcome = self.empty_ask().await;
        self.record(Rule::EmptyAsk, outcome);
        let outcome = self.one_entry_per_id().await;
        self.record(Rule::OneEntryPerId, outcome);
        let many = self.many_ids_in_one_call().await;
        let (outcome, many) = match many {
            Ok(many) => (Ok(()), many),
            Err(verdict) => (Err(verdict), Vec::new()),
        };
        self.record(Rule::ManyIdsInOneCall, outcome);
        let outcome = self.unknown_is_a_gap().await;
        self.record(Rule::UnknownIsAGap, outcome);
        let outcome = self.none_known().await;
        self.record(Rule::NoneKnown, outcome);
        let outcome = self.deleted_is_a_gap().await;
        self.record(Rule::DeletedIsAGap, outcome);
        let outcome = self.new_instance_status().await;
        self.record(Rule::NewInstanceStatus, outcome);
        let outcome = self.interfaces_per_id().await;
        self.record(Rule::InterfacesPerId, outcome);
        let outcome = self.incomplete_answers_align(&many).await;
        self.record(Rule::IncompleteAnswersAlign, outcome);
        let outcome = self.throttled().await;
        self.record(Rule::Throttled, outcome);
        let outcome = self.refused_credential().await;
        self.record(Rule::RefusedCredential, outcome);
        let outcome = self.other_failure().await;
        self.record(Rule::OtherFailure, outcome);
        let outcome = self.no_secret_shown();
        self.record(Rule::NoSecretShown, outcome);
        self.report
    }

    fn all_fail(mut self, why: &str) -> Report {
        for rule in Rule::ALL {
            self.report.record(rule, Outcome::Failed(why.to_owned()));
        }
        self.report
    }

    fn record(&mut self, rule: Rule, outcome: Check) {
        let outcome = match outcome {
            Ok(()) => Outcome::Passed,
            Err(Verdict::Fail(why)) => Outcome::Failed(why),
            Err(Verdict::Skip(why)) => Outcome::NotChecked(why),
        };
        self.report.record(rule, outcome);
    }

    /// One provider call, given the fixture's time; its error kept for
    /// §12.1.13.
    async fn call<T: Debug>(
        &mut self,
        what: &str,
        call: impl Future<Output = Result<T, PollError>>,
    ) -> Result<Result<T, PollError>, Verdict> {
        let limit = self.fixture.call_timeout();
        match tokio::time::timeout(limit, call).await {
            Ok(result) => {
                if let Err(error) = &result {
                    self.shown.push(format!("{error}"));
                    self.shown.push(format!("{error:?}"));
                }
                Ok(result)
            }
            Err(_) => fail(format!(
                "{what} did not answer within {}",
                humantime::format_duration(limit)
            )),
        }
    }

    async fn instances(&mut self, ids: &[InstanceId]) -> Result<Instances, Verdict> {
        let call = self.environ.instances(ids);
        self.call("the instances call", call).await
    }

    async fn interfaces(&mut self, ids: &[InstanceId]) -> Result<Interfaces, Verdict> {
        let call = self.environ.network_interfaces(ids);
        self.call("the network_interfaces call", call).await
    }

    /// The instances call's answer, which must succeed.
    async fn answered(&mut self, ids: &[InstanceId]) -> Result<Vec<Option<Instance>>, Verdict> {
        match self.instances(ids).await? {
            Ok(found) => Ok(found),
            Err(error) => fail(format!("instances({}) failed: {error}", shown_ids(ids))),
        }
    }

    /// §12.1.1
    async fn empty_ask(&mut self) -> Check {
        match self.instances(&[]).await? {
            Ok(found) if found.is_empty() => {}
            Ok(found) => return fail(format!("instances([]) answered {} entries", found.len())),
            Err(error) => return fail(format!("instances([]) failed: {error}")),
        }
        match self.interfaces(&[]).await? {
            Ok(lists) if lists.is_empty() => Ok(()),
            Ok(lists) => fail(format!(
                "network_interfaces([]) answered {} lists",
                lists.len()
            )),
            Err(error) if !self.fixture.networking() && error.kind() == ErrorKind::NotSupported => {
                Ok(())
            }
            Err(error) => fail(format!("network_interfaces([]) failed: {error}")),
        }
    }

    /// §12.1.2
    async fn one_entry_per_id(&mut self) -> Check {
        let [a, b, c] = [0, 1, 2].map(|i| self.base[i].clone());
        let asked = vec![b, a.clone(), c, a];
        let found = self.answered(&asked).await?;
        aligned(&asked, &found, "instances")?;
        if let Some(at) = found.iter().position(Option::is_none) {
            return fail(format!(
                "instance {} was just made, yet answered as a gap",
                asked[at]
            ));
        }
        Ok(())
    }

    /// §12.1.3: answers the hundred ids for §12.1.9.
    async fn many_ids_in_one_call(&mut self) -> Result<Vec<InstanceId>, Verdict> {
        let more = fixture(
            "making instances",
            self.fixture
                .create_instances(MAX_IDS_PER_CALL - self.base.len())
                .await,
        )?;
        let mut many: Vec<InstanceId> = self.base.iter().chain(&more).cloned().collect();
        many.reverse();
        let before = self.fixture.requests().await;
        let found = self.answered(&many).await?;
        let after = self.fixture.requests().await;
        aligned(&many, &found, "instances")?;
        let gaps = found.iter().filter(|f| f.is_none()).count();
        if gaps > 0 {
            return fail(format!(
                "{gaps} of {} instances just made were answered as gaps",
                many.len()
            ));
        }
        if let (Some(before), Some(after)) = (before, after) {
            let made = after.saturating_sub(before);
            let most = self.fixture.requests_per_call();
            if made > most {
                return fail(format!(
                    "one call for {} ids made {made} requests to the cloud; the provider states \
                     at most {most}",
                    many.len()
                ));
            }
        }
        Ok(many)
    }

    /// §12.1.4
    async fn unknown_is_a_gap(&mut self) -> Check {
        let unknown = self.fixture.unknown_id();
        let asked = vec![self.base[0].clone(), unknown, self.base[1].clone()];
        let found = self.answered(&asked).await?;
        aligned(&asked, &found, "instances")?;
        match &found[..] {
            [Some(_), None, Some(_)] => Ok(()),
            _ => fail(format!(
                "asked {}, answered {}",
                shown_ids(&asked),
                shown_answer(&found)
            )),
        }
    }

    /// §12.1.5
    async fn none_known(&mut self) -> Check {
        let unknown = self.fixture.unknown_id();
        let asked = vec![unknown.clone(), unknown];
        match self.instances(&asked).await? {
            Err(error) if error.kind() == ErrorKind::NoInstances => Ok(()),
            Ok(found) if found.len() == 2 && found.iter().all(Option::is_none) => Ok(()),
            Ok(found) => fail(format!(
                "asked {}, answered {}",
                shown_ids(&asked),
                shown_answer(&found)
            )),
            Err(error) => fail(format!(
                "asked {}, failed {} ({error}) rather than no-instances",
                shown_ids(&asked),
                error.kind()
            )),
        }
    }

    /// §12.1.6
    async fn deleted_is_a_gap(&mut self) -> Check {
        let made = fixture("making an instance", self.fixture.create_instances(1).await)?;
        let Some(doomed) = made.first().cloned() else {
            return fail("the fixture made no instance when asked for 1");
        };
        let asked = vec![doomed.clone(), self.base[0].clone()];
        let found = self.answered(&asked).await?;
        if found.first().is_none_or(Option::is_none) {
            return fail(format!(
                "instance {doomed}, just made, was answered as a gap"
            ));
        }
        fixture(
            "deleting an instance",
            self.fixture.delete_instance(&doomed).await,
        )?;
        let found = self.answered(&asked).await?;
        aligned(&asked, &found, "instances")?;
        match &found[..] {
            [None, Some(_)] => Ok(()),
            _ => fail(format!(
                "instance {doomed} was deleted, yet answered {}",
                shown_answer(&found)
            )),
        }
    }

    /// §12.1.7
    async fn new_instance_status(&mut self) -> Check {
        let base = self.base.clone();
        let found = self.answered(&base).await?;
        for instance in found.iter().flatten() {
            let status = instance.status.status;
            if !matches!(
                status,
                InstanceStatus::Pending | InstanceStatus::Allocating | InstanceStatus::Running
            ) {
                return fail(format!(
                    "instance {}, just made, is {status} ({:?})",
                    instance.id, instance.status.message
                ));
            }
        }
        Ok(())
    }

    /// §12.1.8
    async fn interfaces_per_id(&mut self) -> Check {
        let unknown = self.fixture.unknown_id();
        let asked = vec![self.base[1].clone(), unknown, self.base[0].clone()];
        let lists = match self.interfaces(&asked).await? {
            Err(error) if error.kind() == ErrorKind::NotSupported => {
                return if self.fixture.networking() {
                    fail(format!(
                        "the provider has networking, yet network_interfaces failed: {error}"
                    ))
                } else {
                    Ok(())
                };
            }
            Err(error) => return fail(format!("network_interfaces failed: {error}")),
            Ok(_) if !self.fixture.networking() => {
                return fail("the provider has no networking, yet network_interfaces answered");
            }
            Ok(lists) => lists,
        };
        if lists.len() != asked.len() {
            return fail(format!(
                "asked interfaces of {} ids, answered {} lists",
                asked.len(),
                lists.len()
            ));
        }
        if !lists[1].is_empty() {
            return fail(format!(
                "the unknown id {} was answered {} interfaces",
                asked[1],
                lists[1].len()
            ));
        }
        for (id, list) in asked.iter().zip(&lists) {
            if list
                .windows(2)
                .any(|w| w[0].device_index > w[1].device_index)
            {
                let order: Vec<u32> = list.iter().map(|i| i.device_index).collect();
                return fail(format!(
                    "the interfaces of {id} are not in device order: {order:?}"
                ));
            }
        }
        Ok(())
    }

    /// §12.1.9
    async fn incomplete_answers_align(&mut self, many: &[InstanceId]) -> Check {
        if many.is_empty() {
            return fail("no instances to ask for: §12.1.3 made none");
        }
        if !fixture(
            "leaving instances out",
            self.fixture.inject(Fault::LeaveOut).await,
        )? {
            return Err(Verdict::Skip(
                "the fixture cannot make the cloud leave instances out".into(),
            ));
        }
        let checked = self.answers_align_while_left_out(many).await;
        fixture(
            "clearing the fault",
            self.fixture.clear(Fault::LeaveOut).await,
        )?;
        checked
    }

    async fn answers_align_while_left_out(&mut self, many: &[InstanceId]) -> Check {
        let mut gaps = 0;
        for _ in 0..3 {
            match self.instances(many).await? {
                Ok(found) => {
                    aligned(many, &found, "instances")?;
                    gaps += found.iter().filter(|f| f.is_none()).count();
                }
                Err(error) if error.kind() == ErrorKind::NoInstances => gaps += many.len(),
                Err(error) => return fail(format!("an incomplete answer failed: {error}")),
            }
        }
        if gaps == 0 {
            return fail("the cloud was to leave instances out, yet every answer was whole");
        }
        Ok(())
    }

    /// §12.1.10
    async fn throttled(&mut self) -> Check {
        let retry_after = std::time::Duration::from_secs(7);
        let fault = Fault::Throttle { retry_after };
        if !fixture("throttling", self.fixture.inject(fault).await)? {
            return Err(Verdict::Skip(
                "the fixture cannot make the cloud throttle".into(),
            ));
        }
        let expected = self.fixture.throttling_says_when().then_some(retry_after);
        let checked = self
            .each_call_fails(ErrorKind::Throttled, |error| {
                if error.retry_after() == expected {
                    Ok(())
                } else {
                    fail(format!(
                        "the cloud asked to wait {expected:?}, the error says {:?}",
                        error.retry_after()
                    ))
                }
            })
            .await;
        fixture("ending the throttling", self.fixture.clear(fault).await)?;
        checked?;
        self.answers_again("the throttling ended").await
    }

    /// §12.1.11
    async fn refused_credential(&mut self) -> Check {
        let fault = Fault::RefuseCredential;
        if !fixture("refusing the credential", self.fixture.inject(fault).await)? {
            return Err(Verdict::Skip(
                "the fixture cannot make the cloud refuse the credential".into(),
            ));
        }
        let checked = self
            .each_call_fails(ErrorKind::Unauthorised, |error| {
                if error.is_unauthorised() {
                    Ok(())
                } else {
                    fail(format!("{error:?} does not say it is unauthorised"))
                }
            })
            .await;
        fixture(
            "accepting the credential again",
            self.fixture.clear(fault).await,
        )?;
        checked?;
        self.answers_again("the cloud accepted the credential again")
            .await
    }

    /// §12.1.12
    async fn other_failure(&mut self) -> Check {
        let fault = Fault::ServerError;
        if !fixture("failing the cloud", self.fixture.inject(fault).await)? {
            return Err(Verdict::Skip(
                "the fixture cannot make the cloud fail".into(),
            ));
        }
        let names = self.fixture.error_names();
        let id = self.base[0].clone();
        let mut checked = match self.instances(std::slice::from_ref(&id)).await {
            Ok(Err(error)) => names_what_was_done(&error, "instances", &names),
            Ok(Ok(_)) => fail("the cloud failed, yet the instances call answered"),
            Err(verdict) => Err(verdict),
        };
        if checked.is_ok() {
            checked = match self.interfaces(std::slice::from_ref(&id)).await {
                Ok(Err(error)) if !self.fixture.networking() => {
                    if error.kind() == ErrorKind::NotSupported {
                        Ok(())
                    } else {
                        names_what_was_done(&error, "interfaces", &names)
                    }
                }
                Ok(Err(error)) => names_what_was_done(&error, "interfaces", &names),
                Ok(Ok(_)) => fail("the cloud failed, yet the network_interfaces call answered"),
                Err(verdict) => Err(verdict),
            };
        }
        fixture("ending the failure", self.fixture.clear(fault).await)?;
        checked?;
        self.answers_again("the cloud's failure ended").await
    }

    /// §12.1.13
    fn no_secret_shown(&mut self) -> Check {
        let Some(secret) = self.fixture.secret().filter(|s| !s.is_empty()) else {
            return Err(Verdict::Skip("the fixture names no secret".into()));
        };
        if self.shown.is_empty() {
            return fail("no error was seen to look for the secret in");
        }
        match self.shown.iter().find(|text| text.contains(&secret)) {
            Some(text) => fail(format!(
                "an error shows the secret: {}",
                text.replace(&secret, "<SECRET>")
            )),
            None => Ok(()),
        }
    }

    /// Both calls fail with `kind`, each error passing `also`.
    async fn each_call_fails(
        &mut self,
        kind: ErrorKind,
        also: impl Fn(&PollError) -> Check,
    ) -> Check {
        let id = self.base[0].clone();
        match self.instances(std::slice::from_ref(&id)).await? {
            Err(error) if error.kind() == kind => also(&error)?,
            Err(error) => {
                return fail(format!(
                    "instances failed {} ({error}), not {kind}",
                    error.kind()
                ));
            }
            Ok(_) => return fail(format!("instances answered where it should fail {kind}")),
        }
        match self.interfaces(std::slice::from_ref(&id)).await? {
            Err(error) if error.kind() == kind => also(&error),
            Err(error) if !self.fixture.networking() && error.kind() == ErrorKind::NotSupported => {
                Ok(())
            }
            Err(error) => fail(format!(
                "network_interfaces failed {} ({error}), not {kind}",
                error.kind()
            )),
            Ok(_) => fail(format!(
                "network_interfaces answered where it should fail {kind}"
            )),
        }
    }

    /// The environ answers the base instances again, after `what`.
    async fn answers_again(&mut self, what: &str) -> Check {
        let base = self.base.clone();
        match self.instances(&base).await? {
            Ok(found) if found.iter().all(Option::is_some) => Ok(()),
            Ok(found) => fail(format!(
                "after {what}, the environ answered {}",
                shown_answer(&found)
            )),
            Err(error) => fail(format!("after {what}, the environ still fails: {error}")),
        }
    }
}

/// One entry per id, each known one carrying the id asked at its place.
fn aligned(asked: &[InstanceId], found: &[Option<Instance>], what: &str) -> Check {
    if asked.len() != found.len() {
        return fail(format!(
            "asked {what} of {} ids, answered {} entries",
            asked.len(),
            found.len()
        ));
    }
    for (at, (id, instance)) in asked.iter().zip(found).enumerate() {
        if let Some(instance) = instance
            && &instance.id != id
        {
            return fail(format!(
                "entry {at} answers instance {}, where {id} was asked",
                instance.id
            ));
        }
    }
    Ok(())
}

fn names_what_was_done(error: &PollError, doing: &str, names: &[String]) -> Check {
    if !matches!(error.kind(), ErrorKind::Other | ErrorKind::Timeout) {
        return fail(format!(
            "a failure of the cloud came back {} ({error}), not other",
            error.kind()
        ));
    }
    let message = error.to_string();
    if !message.contains(doing) {
        return fail(format!("{message:?} does not say it was fetching {doing}"));
    }
    match names.iter().find(|name| !message.contains(name.as_str())) {
        Some(name) => fail(format!("{message:?} does not name {name:?}")),
        None => Ok(()),
    }
}

fn shown_ids(ids: &[InstanceId]) -> String {
    let ids: Vec<&str> = ids.iter().map(InstanceId::as_str).collect();
    format!("[{}]", ids.join(", "))
}

fn shown_answer(found: &[Option<Instance>]) -> String {
    let entries: Vec<&str> = found
        .iter()
        .map(|f| f.as_ref().map_or("(gap)", |i| i.id.as_str()))
        .collect();
    format!("[{}]", entries.join(", "))
}
