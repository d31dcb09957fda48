//! The provider kit's conformance suite: any [`Environ`] run through the
//! provider contract of `docs/spec.md` §12.1, from the provider author's
//! own tests.
//!
//! A provider's test implements [`Conformance`] for its cloud (or a double
//! of it): it hands over the environ under test and makes, deletes and
//! breaks things in the cloud when the suite asks. [`run`] then checks
//! every [`Rule`] and answers a [`Report`] naming each rule broken and
//! what went wrong:
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_cloud_keeps_the_provider_contract() {
//!     let fixture = MyCloudFixture::start().await;
//!     let report = muster::provider::conformance::run(&fixture).await;
//!     report.assert_conforms(&[]);
//! }
//! ```
//!
//! The suite makes 101 instances in all (100 for the batching rule, one
//! to delete) and leaves them; give it a cloud of its own.

mod checks;
mod report;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use report::{Outcome, Report, Rule};

use super::{Environ, InstanceId};

/// A failure the suite asks the fixture to make the cloud answer with,
/// until [`Conformance::clear`] is called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The cloud throttles every call (HTTP 429 or the cloud's own code),
    /// asking the caller to wait this long where its API can say so.
    Throttle {
        /// The wait the cloud asks for.
        retry_after: Duration,
    },
    /// The cloud refuses the environ's credential (or the token made from
    /// it): HTTP 401 or 403, or the cloud's own code for it.
    RefuseCredential,
    /// The cloud fails every call with an error of its own (HTTP 500).
    ServerError,
    /// The cloud leaves some instances out of its answers.
    LeaveOut,
}

/// A provider's test fixture: the environ under test and its cloud.
///
/// The methods that change the cloud answer `Err` with a description when
/// the fixture itself fails, which fails the rule being checked.
pub trait Conformance: Send + Sync {
    /// The environ under test. The suite asks for it once and keeps it, so
    /// that a credential refused and accepted again is seen by the same
    /// environ.
    fn environ(&self) -> Arc<dyn Environ>;

    /// Makes `count` new instances in the cloud and answers their ids. They
    /// need not run yet.
    fn create_instances(
        &self,
        count: usize,
    ) -> impl Future<Output = Result<Vec<InstanceId>, String>> + Send;

    /// Deletes the instance (terminates it) so that the cloud no longer
    /// holds it as a live instance.
    fn delete_instance(&self, id: &InstanceId) -> impl Future<Output = Result<(), String>> + Send;

    /// An id in the cloud's own format that it never made.
    fn unknown_id(&self) -> InstanceId;

    /// Makes the cloud answer with `fault` from now on: `Ok(true)` when it
    /// does, `Ok(false)` when this fixture cannot make it (the rule is then
    /// reported not checked).
    fn inject(&self, fault: Fault) -> impl Future<Output = Result<bool, String>> + Send;

    /// Makes the cloud answer normally again after `fault`.
    fn clear(&self, fault: Fault) -> impl Future<Output = Result<(), String>> + Send;

    /// The requests the cloud has answered so far, when the fixture counts
    /// them: with it, §12.1.3 checks what one call costs.
    fn requests(&self) -> impl Future<Output = Option<u64>> + Send {
        async { None }
    }

    /// The most cloud requests one `instances` call for at most
    /// [`MAX_IDS_PER_CALL`](super::MAX_IDS_PER_CALL) ids may make, the
    /// provider's own statement (pages included, the token fetched first
    /// not).
    fn requests_per_call(&self) -> u64 {
        1
    }

    /// Whether the provider answers network interfaces; without, every
    /// `network_interfaces` call must fail `not-supported`.
    fn networking(&self) -> bool {
        true
    }

    /// Whether the cloud's throttling answer can carry how long to wait
    /// (`Retry-After`); when it cannot, a throttled call must say no wait.
    fn throttling_says_when(&self) -> bool {
        true
    }

    /// Text that no error message and no `Debug` form may show: the
    /// password or secret key the environ was given.
    fn secret(&self) -> Option<String> {
        None
    }

    /// What an error message of a failed call must name besides what was
    /// being done (the region, the endpoint), when the provider says so.
    fn error_names(&self) -> Vec<String> {
        Vec::new()
    }

    /// How long one provider call may take before the suite gives up on it.
    fn call_timeout(&self) -> Duration {
        Duration::from_secs(60)
    }
}

/// Runs every rule of the provider contract against the fixture's environ
/// and reports each one. The cloud is left with the instances the suite
/// made.
pub async fn run<C: Conformance>(fixture: &C) -> Report {
    checks::Suite::new(fixture).run().await
}

#[cfg(test)]
mod tests;
