//! The provider contract (docs/spec.md §12.1) on the simulated cloud, as a
//! provider author runs it on theirs: one model's simulation, a cloud
//! account of several, and a simulation without networking.

use muster::provider::conformance::{Rule, run};
use muster::sim::{Sim, SimAccount, SimConfig, SimConformance};

#[tokio::test(start_paused = true)]
async fn the_simulated_cloud_keeps_the_provider_contract() {
    let sim = Sim::new(SimConfig::default()).unwrap();
    let fixture = SimConformance::new(sim);
    let report = run(&fixture).await;
    report.assert_conforms(&[Rule::NoSecretShown]);
    // One call for a hundred ids, and the calls of every other rule.
    assert_eq!(fixture.sim().counters().instances.max_ids, 100);
}

#[tokio::test(start_paused = true)]
async fn a_simulated_account_of_two_models_keeps_it() {
    let mut account = SimAccount::new();
    let first = account.add_model(SimConfig::default()).unwrap();
    let second = account.add_model(SimConfig::default()).unwrap();
    // The other model's instances are in the account too: the suite's ids
    // are asked among them.
    for _ in 0..20 {
        second.add_provisioned_machine();
    }
    let fixture = SimConformance::with_environ(first, account.environ());
    run(&fixture).await.assert_conforms(&[Rule::NoSecretShown]);
}

#[tokio::test(start_paused = true)]
async fn a_simulated_cloud_without_networking_keeps_it() {
    let sim = Sim::new(SimConfig {
        networking: false,
        ..SimConfig::default()
    })
    .unwrap();
    run(&SimConformance::new(sim))
        .await
        .assert_conforms(&[Rule::NoSecretShown]);
}
