//! The counts the demo's live summary prints.

use std::collections::BTreeMap;
use std::time::Duration;

use muster::presence::Status;

use muster_actors::host::Muster;
use muster_actors::supervisor::ReportOptions;

/// Counts shown by the live summary.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Machines by poll phase (`short`, `long`, `manual`).
    pub phases: BTreeMap<String, usize>,
    /// Machines whose instance the provider reports running.
    pub running: usize,
    /// Agents by status, over every model; controller agents are left out.
    pub agents: BTreeMap<String, usize>,
    /// Provider calls made.
    pub calls: u64,
    /// Instance ids asked for.
    pub ids: u64,
    /// Failed provider calls.
    pub errors: u64,
    /// Throttled provider calls.
    pub throttles: u64,
    /// Restarts in the whole tree.
    pub restarts: u64,
}

impl Summary {
    /// Reads the counts from the tree.
    pub async fn read(muster: &Muster) -> Summary {
        let mut summary = Summary::default();
        if let Ok(machines) = muster.machines().machines().await {
            for m in &machines {
                let phase = m.phase.map_or("manual".to_owned(), |p| p.to_string());
                *summary.phases.entry(phase).or_default() += 1;
                if m.instance_status
                    .as_ref()
                    .is_some_and(|s| s.status == muster::provider::InstanceStatus::Running)
                {
                    summary.running += 1;
                }
            }
        }
        // The per-model counts, not a walk of every agent: controller
        // agents, whose status never counts, are left out.
        if let Ok(models) = muster.presence().model_counts().await {
            for (status, n) in [
                (Status::Alive, models.iter().map(|m| m.alive).sum::<usize>()),
                (Status::Missing, models.iter().map(|m| m.missing).sum()),
            ] {
                if n > 0 {
                    summary.agents.insert(status.to_string(), n);
                }
            }
        }
        if let Ok(gateway) = muster.gateway().await {
            summary.calls = gateway.calls.values().sum();
            summary.ids = gateway.ids.values().sum();
            summary.errors = gateway.errors.values().sum();
            summary.throttles = gateway.throttles;
        }
        // Pollers folded into counts: their restarts are added up there.
        if let Ok(report) = muster.report_with(ReportOptions::folding_over(0)).await {
            summary.restarts = serde_json::to_value(report)
                .map(|v| restarts(&v))
                .unwrap_or(0);
        }
        summary
    }

    /// One compact line.
    pub fn line(&self, world: Duration) -> String {
        let count = |map: &BTreeMap<String, usize>, key: &str| map.get(key).copied().unwrap_or(0);
        let machines: usize = self.phases.values().sum();
        let agents: usize = self.agents.values().sum();
        format!(
            "t={:>6} machines {machines}: short {} long {} running {} | agents {agents}: alive {} missing {} | provider calls {} ids {} errors {} throttled {} | restarts {}",
            humantime::format_duration(Duration::from_secs(world.as_secs())).to_string(),
            count(&self.phases, "short"),
            count(&self.phases, "long"),
            self.running,
            count(&self.agents, "alive"),
            count(&self.agents, "missing"),
            self.calls,
            self.ids,
            self.errors,
            self.throttles,
            self.restarts,
        )
    }
}

/// The restarts in a serialized report, nested supervisors included.
pub(super) fn restarts(report: &serde_json::Value) -> u64 {
    let Some(children) = report.get("children").and_then(|c| c.as_array()) else {
        return 0;
    };
    children
        .iter()
        .map(|child| {
            let own: u64 = ["failure", "bounce", "dependency"]
                .iter()
                .filter_map(|k| child.get("restarts")?.get(k)?.as_u64())
                .sum();
            own + child.get("report").map_or(0, restarts)
        })
        .sum::<u64>()
        + report.get("dynamic").map_or(0, |group| {
            ["failure", "bounce", "dependency"]
                .iter()
                .filter_map(|k| group.get("restarts")?.get(k)?.as_u64())
                .sum()
        })
}
