//! The simulated models' machines are seeded into the registry once, when
//! a model has none (docs/spec.md §10.1.4): a restart leaves what clients
//! registered and removed as they left it. In-process, on a registry file
//! of its own.

use std::path::PathBuf;
use std::time::Duration;

use muster::model::MachineStatus;
use muster::names::{MachineTag, ModelUuid};
use muster_registry::Registration;
use musterd::Hosted;
use slog::{Logger, o};

const MODEL: &str = "4f1c6a1e-2d3b-4c5d-8e9f-0a1b2c3d4e5f";

fn tag(text: &str) -> MachineTag {
    text.parse().unwrap()
}

/// A config file with one simulated model of two machines, its registry
/// in `dir`.
fn config(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("muster.toml");
    std::fs::write(
        &path,
        format!(
            "[http]\nlisten = \"127.0.0.1:0\"\n[agents]\nlisten = \"127.0.0.1:0\"\n\
             [store]\npath = \"registry.db\"\n[backend]\nmachines = 2\n\
             [[models]]\nuuid = \"{MODEL}\"\ncloud = \"sim\"\nregion = \"local\"\n"
        ),
    )
    .unwrap();
    path
}

async fn start(config: &std::path::Path, logger: &Logger) -> Hosted {
    let config = musterd::read_config(config).unwrap_or_else(|e| panic!("{e}"));
    Hosted::start(&config, logger)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[actix_web::test]
async fn a_restart_leaves_what_clients_registered_and_removed() {
    let dir = std::env::temp_dir().join(format!("musterd-seeding-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = config(&dir);
    let logger = Logger::root(slog::Discard, o!());
    let model: ModelUuid = MODEL.parse().unwrap();

    // First start: the model has no machine, so the simulation's two are
    // registered.
    let hosted = start(&config, &logger).await;
    let registry = hosted.registry.clone().unwrap();
    let tags: Vec<String> = registry
        .machines(model)
        .await
        .unwrap()
        .iter()
        .map(|m| m.tag.to_string())
        .collect();
    assert_eq!(tags, ["machine-0", "machine-1"]);
    // A client registers machine 0 otherwise and removes machine 1.
    let mine = Registration {
        instance_id: Some(muster::provider::InstanceId::from("i-client")),
        agent_status: MachineStatus::Down,
        ..Registration::default()
    };
    registry
        .register(model, tag("machine-0"), mine.clone())
        .await
        .unwrap();
    assert!(registry.remove(model, tag("machine-1")).await.unwrap());
    hosted.stop(&logger).await.unwrap();

    // Started again, over several rounds of the simulated controller:
    // nothing of that is undone.
    let hosted = start(&config, &logger).await;
    let registry = hosted.registry.clone().unwrap();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let machines = registry.machines(model).await.unwrap();
    let tags: Vec<String> = machines.iter().map(|m| m.tag.to_string()).collect();
    assert_eq!(tags, ["machine-0"], "a removed machine came back");
    assert_eq!(
        machines[0].registration, mine,
        "a client's registration was overwritten"
    );
    hosted.stop(&logger).await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
