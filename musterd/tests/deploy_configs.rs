//! The example deployment under `docs/deploy/` (docs/deploy.md) stays
//! true: every musterd config there is one `check-config` accepts, the
//! three nodes agree on the cluster and differ in their server, and every
//! NATS config is one nats-server accepts.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use musterd::config::DaemonConfig;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/deploy")
}

/// The files of `docs/deploy` whose names end with `ext`, sorted.
fn files(ext: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .expect("docs/deploy is there")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == ext))
        .collect();
    found.sort();
    found
}

#[test]
fn every_musterd_config_under_docs_deploy_is_accepted_and_the_nodes_agree() {
    let configs = files("toml");
    assert_eq!(configs.len(), 3, "{configs:?}");
    let mut nodes = Vec::new();
    for path in &configs {
        let text = std::fs::read_to_string(path).unwrap();
        let config = match DaemonConfig::from_toml(&text) {
            Ok(config) => config,
            Err(error) => {
                // A musterd built without EC2 refuses the EC2 models, and
                // only them.
                let other: Vec<String> = error
                    .lines()
                    .into_iter()
                    .filter(|line| cfg!(feature = "ec2") || !line.contains("built without EC2"))
                    .collect();
                assert!(other.is_empty(), "{}: {other:#?}", path.display());
                let text = text.replace("cloud = \"ec2\"", "cloud = \"sim\"");
                let text = text
                    .lines()
                    .filter(|line| !line.starts_with("credential_file"))
                    .collect::<Vec<_>>()
                    .join("\n");
                DaemonConfig::from_toml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            }
        };
        let cluster = config
            .cluster
            .clone()
            .unwrap_or_else(|| panic!("{}: no [cluster]", path.display()));
        assert_eq!(cluster.nats.len(), 3, "{}", path.display());
        assert_eq!(config.models.len(), 2, "{}", path.display());
        nodes.push((config, cluster));
    }
    let (first, cluster) = &nodes[0];
    let mut servers: Vec<String> = nodes
        .iter()
        .map(|(c, _)| c.agents.server.to_string())
        .collect();
    servers.sort();
    servers.dedup();
    assert_eq!(servers.len(), 3, "each node its own [agents] server");
    for (config, other) in &nodes[1..] {
        assert_eq!(other.name, cluster.name);
        assert_eq!(
            (other.heartbeat, other.down_after, other.lease_ttl),
            (cluster.heartbeat, cluster.down_after, cluster.lease_ttl)
        );
        let mut mine = other.nats.clone();
        let mut theirs = cluster.nats.clone();
        mine.sort();
        theirs.sort();
        assert_eq!(mine, theirs, "the same NATS servers");
        let uuids = |c: &DaemonConfig| c.models.iter().map(|m| m.uuid).collect::<Vec<_>>();
        assert_eq!(uuids(config), uuids(first), "the same models");
    }
}

#[cfg_attr(missing_nats_server, ignore = "needs nats-server")]
#[test]
fn every_nats_config_under_docs_deploy_is_accepted_by_nats_server() {
    let configs = files("conf");
    assert_eq!(configs.len(), 3, "{configs:?}");
    let server = support::nats::program("deploy_configs");
    for path in configs {
        let out = Command::new(&server)
            .arg("-c")
            .arg(&path)
            .arg("-t")
            .output()
            .expect("nats-server runs");
        assert!(
            out.status.success(),
            "{}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
