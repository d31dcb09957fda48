//! Trees that cannot start: bad specs and no actix System.

use muster_actors::{Mailbox, Metrics, RestartConfig, Root, SupervisorSpec};

use super::config;
use super::support::logger;
use super::worker::{Log, Plan, worker};

#[actix::test]
async fn bad_specs_are_refused_with_the_name_of_what_is_wrong() {
    let log = Log::default();
    let mb = Mailbox::new(1);
    let spec =
        SupervisorSpec::new(config()).child(worker("b", &mb, &log, |_| Plan::Run).inputs(["a"]));
    let err = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "child b of root needs a, which is not a child declared before it"
    );
    let spec = SupervisorSpec::new(RestartConfig {
        backoff_factor: f64::NAN,
        ..config()
    });
    let err = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap_err();
    assert!(err.to_string().contains("backoff_factor"), "{err}");
    let spec = SupervisorSpec::new(config())
        .child(worker("a", &mb, &log, |_| Plan::Run))
        .child(worker("a", &mb, &log, |_| Plan::Run));
    let err = Root::start("root", spec, logger(), Metrics::unregistered()).unwrap_err();
    assert_eq!(err.to_string(), "root already has a child called a");
}

#[test]
fn a_tree_started_outside_a_system_is_refused() {
    let err = Root::start(
        "root",
        SupervisorSpec::new(config()),
        logger(),
        Metrics::unregistered(),
    )
    .unwrap_err();
    assert_eq!(err, muster_actors::SupervisorError::NoSystem);
}
