//! The files a config names, checked when it is read, after its values, so
//! that `check-config` refuses what `run` would and every problem is said
//! at once: the models' credential files, the door's TLS files, the
//! cluster's credentials, and the registry's SQLite file (checked without
//! writing to it).

use muster::config::{Checker, ConfigError};
use muster_cluster::NatsAuth;
use muster_registry::SqliteBackend;

use super::DaemonConfig;

/// Reports each problem of the files `config` names in `at`: the paths
/// must have been resolved against the config file's folder.
pub(crate) fn check(config: &DaemonConfig, at: &mut Checker) {
    if let Err(problems) = muster_registry::models::check_files(&config.models) {
        for problem in problems.problems {
            at.report(problem);
        }
        at.count_more(problems.more);
    }
    check_tls(config, at);
    if let Some(cluster) = &config.cluster
        && let Err(problem) = NatsAuth::read(cluster)
    {
        at.problem(
            "cluster.credentials",
            Some(quoted(&problem.path)),
            problem.reason,
        );
    }
    check_store(config, at);
}

/// Each TLS file that cannot be read, then, when both can, what the
/// door's acceptor finds wrong with them.
fn check_tls(config: &DaemonConfig, at: &mut Checker) {
    let agents = &config.agents;
    let (Some(cert), Some(key)) = (&agents.tls_cert, &agents.tls_key) else {
        return;
    };
    let mut readable = true;
    for (name, path) in [("agents.tls_cert", cert), ("agents.tls_key", key)] {
        if let Err(e) = std::fs::File::open(path) {
            at.report(ConfigError::new(
                name,
                Some(quoted(&path.display().to_string())),
                format!("cannot read: {e}"),
            ));
            readable = false;
        }
    }
    if readable && let Err(problem) = muster_door::tls::acceptor(agents) {
        at.report(ConfigError::new(
            problem.key,
            Some(quoted(&problem.path)),
            problem.reason,
        ));
    }
}

/// The SQLite file of the registry, when `run` would open one: with
/// `[[models]]`, outside a cluster, not in memory.
fn check_store(config: &DaemonConfig, at: &mut Checker) {
    let store = &config.store;
    if config.models.is_empty() || config.cluster.is_some() || store.in_memory() {
        return;
    }
    if let Err(e) = SqliteBackend::check(&store.path) {
        let shown = store.path.display().to_string();
        let text = e.to_string();
        let reason = text
            .strip_prefix(&format!("{shown}: "))
            .unwrap_or(&text)
            .to_owned();
        at.report(ConfigError::new("store.path", Some(quoted(&shown)), reason));
    }
}

fn quoted(text: &str) -> String {
    format!("{text:?}")
}
