//! One chaos run: the world started, faults drawn from the seed and
//! healed one after another while agents come and go and the registry is
//! written through every node, and after each fault the invariants
//! checked: every node agrees on presence with what the agents hold open,
//! and every acknowledged registry write reads back from every node.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::block_in_place;

use super::faults::{Fault, Faults};
use super::swarm::{MODEL, Swarm, Truth};
use super::watch::{Polls, Seen, watch};
use super::world::{MODELS, Node, get, nats_cluster, request};

/// What a run is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    pub duration: Duration,
    /// The `musterd` program the nodes run.
    pub musterd: PathBuf,
    /// Agents on each node's door.
    pub agents: usize,
}

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    pub faults: usize,
    pub violations: Vec<String>,
    pub longest_convergence: Duration,
}

impl Outcome {
    /// The last line a run prints.
    pub fn summary(&self, options: &Options) -> String {
        format!(
            "chaos: seed {}, {}, faults {}, violations {}, longest convergence {:.1}s",
            options.seed,
            humantime::format_duration(options.duration),
            self.faults,
            self.violations.len(),
            self.longest_convergence.as_secs_f64()
        )
    }
}

/// How long the nodes have to agree again after a fault heals.
const CONVERGE_WITHIN: Duration = Duration::from_secs(30);

/// Acknowledged registry writes: (model, machine id) to the instance ids
/// it may hold now (one once a write was acknowledged; more while writes
/// whose answer never came may or may not have been applied).
type Ledger = BTreeMap<(String, u32), Acknowledged>;

/// What a machine's registration may hold now (`None`: not registered),
/// and through which node it was last written.
#[derive(Debug)]
struct Acknowledged {
    instances: BTreeSet<Option<String>>,
    through: String,
}

impl Default for Acknowledged {
    /// Never written: not registered.
    fn default() -> Self {
        Acknowledged {
            instances: BTreeSet::from([None]),
            through: String::new(),
        }
    }
}

/// Why the nodes do not agree yet, and what it is about: a disagreement
/// reported as a violation is left out of later checks, so that one
/// defect is reported once and the run goes on finding others.
#[derive(Debug)]
struct Disagreement {
    why: String,
    about: String,
}

impl Disagreement {
    fn new(about: impl Into<String>, why: impl Into<String>) -> Self {
        Disagreement {
            why: why.into(),
            about: about.into(),
        }
    }
}

/// Runs the world for `options.duration` of faults, then stops every
/// node with SIGTERM.
pub async fn run(options: &Options) -> Outcome {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("muster-chaos-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a directory for the configs");
    let mut faults = Faults::new(options.seed, 3, 3);
    let cloud = faults.cloud();
    let (tell, heard) = mpsc::channel();
    let seen = Seen::default();
    let polls = Polls::default();
    watch(heard, seen.clone(), polls.clone(), started);
    let (mut nats, mut nodes) = block_in_place(|| {
        let nats = nats_cluster("chaos");
        let urls: Vec<String> = nats.iter().map(|n| n.url()).collect();
        let nodes: Vec<Node> = (0..3)
            .map(|n| {
                Node::start(
                    &options.musterd,
                    &dir,
                    n,
                    &urls,
                    options.seed,
                    cloud,
                    tell.clone(),
                )
            })
            .collect();
        (nats, nodes)
    });
    drop(tell);
    println!(
        "chaos: 3 NATS servers, 3 nodes, {} models, {} agents a door; the clouds fail {:.1}% and throttle {:.1}% of calls",
        MODELS.len(),
        options.agents,
        cloud.0 * 100.0,
        cloud.1 * 100.0
    );
    let doors: Vec<String> = nodes.iter().map(Node::door).collect();
    let swarm = Swarm::start(&doors, options.agents);
    let mut ledger = Ledger::new();
    let mut writes = 0u32;
    let mut longest = Duration::ZERO;
    let mut count = 0;
    let mut known = BTreeSet::new();
    let violations = |seen: &Seen| seen.lock().expect("not poisoned").clone();
    // The world settles before the first fault.
    if let Err(disagreement) = converge(&nodes, &swarm, &ledger, &known).await {
        seen.lock()
            .expect("not poisoned")
            .push(format!("the world never settled: {}", disagreement.why));
        known.insert(disagreement.about);
    }
    while started.elapsed() < options.duration {
        let fault = faults.next();
        count += 1;
        println!(
            "fault {count} at {:.1}s: {fault}",
            started.elapsed().as_secs_f64()
        );
        inflict(fault, &mut nodes, &mut nats, &swarm).await;
        for _ in 0..3 {
            write(&nodes, &mut faults, &mut ledger, &mut writes);
        }
        match converge(&nodes, &swarm, &ledger, &known).await {
            Ok(took) => {
                println!("  converged in {:.1}s", took.as_secs_f64());
                longest = longest.max(took);
            }
            Err(disagreement) => {
                let violation = format!("after fault {count} ({fault}): {}", disagreement.why);
                known.insert(disagreement.about);
                println!("violation: {violation}");
                seen.lock().expect("not poisoned").push(violation);
                longest = longest.max(CONVERGE_WITHIN);
            }
        }
    }
    drop(swarm);
    for node in &mut nodes {
        let server = node.server();
        match block_in_place(|| node.terminate(Duration::from_secs(20))) {
            Ok(Some(0)) => {}
            Ok(code) => seen
                .lock()
                .expect("not poisoned")
                .push(format!("{server} exited with {code:?} on SIGTERM")),
            Err(why) => seen
                .lock()
                .expect("not poisoned")
                .push(format!("{server}: {why}")),
        }
    }
    // The log readers end with the processes; what they heard is in.
    std::thread::sleep(Duration::from_millis(200));
    println!(
        "chaos: {} polls watched, {} registry writes",
        polls.load(std::sync::atomic::Ordering::Relaxed),
        writes
    );
    let _ = std::fs::remove_dir_all(&dir);
    Outcome {
        faults: count,
        violations: violations(&seen),
        longest_convergence: longest,
    }
}

/// Inflicts `fault` and heals it.
async fn inflict(
    fault: Fault,
    nodes: &mut [Node],
    nats: &mut [super::nats::NatsServer],
    swarm: &Swarm,
) {
    match fault {
        Fault::KillNode { n, down } => {
            block_in_place(|| nodes[n].kill());
            tokio::time::sleep(down).await;
            block_in_place(|| nodes[n].run());
        }
        Fault::PauseNode { n, paused } => {
            block_in_place(|| nodes[n].pause());
            tokio::time::sleep(paused).await;
            block_in_place(|| nodes[n].resume());
        }
        Fault::KillNats { n, down } => {
            block_in_place(|| nats[n].kill());
            tokio::time::sleep(down).await;
            block_in_place(|| nats[n].run());
        }
        Fault::DropSwarm { n } => swarm.drop_all(n),
    }
}

/// Writes a machine's registration through a node that answers, and
/// records what was acknowledged.
fn write(nodes: &[Node], faults: &mut Faults, ledger: &mut Ledger, writes: &mut u32) {
    let answering: Vec<&Node> = nodes.iter().filter(|n| n.answers()).collect();
    if answering.is_empty() {
        return;
    }
    let node = answering[faults.pick(answering.len())];
    let model = MODELS[faults.pick(MODELS.len())].to_owned();
    let id = 100 + faults.pick(5) as u32;
    *writes += 1;
    let instance = format!("i-chaos-{writes}");
    let body = format!(r#"{{"instance_id": "{instance}"}}"#);
    let path = format!("/api/models/{model}/machines/{id}");
    let answer = block_in_place(|| request(node.http, "PUT", &path, &body));
    let held = ledger.entry((model, id)).or_default();
    held.through = node.server();
    match answer {
        Some((200 | 201, _)) => {
            held.instances = BTreeSet::from([Some(instance)]);
        }
        // Refused: nothing changed.
        Some((status, _)) if status < 500 || status == 503 => {}
        // No answer, or a failure after the write may have been made.
        _ => {
            held.instances.insert(Some(instance));
        }
    }
}

/// Waits (bounded) until every agent holds a connection, every node
/// answers presence as the agents hold it, and every node reads back the
/// acknowledged writes; answers how long it took, or why not.
async fn converge(
    nodes: &[Node],
    swarm: &Swarm,
    ledger: &Ledger,
    known: &BTreeSet<String>,
) -> Result<Duration, Disagreement> {
    let started = Instant::now();
    let mut last = Disagreement::new("", "");
    while started.elapsed() < CONVERGE_WITHIN {
        match block_in_place(|| agreed(nodes, swarm, ledger, known)) {
            Ok(()) => return Ok(started.elapsed()),
            Err(now) => last = now,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last.why = format!("not within {}s: {}", CONVERGE_WITHIN.as_secs(), last.why);
    Err(last)
}

fn agreed(
    nodes: &[Node],
    swarm: &Swarm,
    ledger: &Ledger,
    known: &BTreeSet<String>,
) -> Result<(), Disagreement> {
    if !swarm.whole() {
        return Err(Disagreement::new("agents", "not every agent is logged in"));
    }
    let truth = swarm.truth();
    for node in nodes {
        let about = format!("presence on {}", node.server());
        let table = presence(node).ok_or_else(|| {
            Disagreement::new(&about, format!("{} does not answer", node.server()))
        })?;
        if table != truth && !known.contains(&about) {
            let extra: Vec<_> = table
                .iter()
                .filter(|(k, v)| truth.get(*k) != Some(v))
                .take(3)
                .collect();
            let missing: Vec<_> = truth
                .iter()
                .filter(|(k, v)| table.get(*k) != Some(v))
                .take(3)
                .collect();
            return Err(Disagreement::new(
                about,
                format!(
                    "{} answers {} alive, the agents hold {} open; more: {extra:?}, missing: {missing:?}",
                    node.server(),
                    table.len(),
                    truth.len()
                ),
            ));
        }
        for ((model, id), held) in ledger {
            let tag = format!("machine-{id}");
            let about = format!("{tag} of {model} on {}", node.server());
            if known.contains(&about) {
                continue;
            }
            let machines =
                get(node.http, &format!("/api/models/{model}/machines")).ok_or_else(|| {
                    Disagreement::new(
                        &about,
                        format!("{} does not answer its registry", node.server()),
                    )
                })?;
            let found = machines["machines"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|m| m["tag"] == tag.as_str())
                .and_then(|m| m["instance_id"].as_str().map(str::to_owned));
            if !held.instances.contains(&found) {
                let all: Vec<String> = nodes
                    .iter()
                    .map(|n| {
                        let answer = get(n.http, &format!("/api/models/{model}/machines"));
                        let found = answer.as_ref().and_then(|a| {
                            a["machines"]
                                .as_array()?
                                .iter()
                                .find(|m| m["tag"] == tag.as_str())
                                .cloned()
                        });
                        format!(
                            "{}: {:?}",
                            n.server(),
                            found.map(|m| m["instance_id"].clone())
                        )
                    })
                    .collect();
                return Err(Disagreement::new(
                    about,
                    format!(
                        "{} answers {tag} of {model} with {found:?}, acknowledged {:?} through {} (every node: {all:?})",
                        node.server(),
                        held.instances,
                        held.through,
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// The connections `node` answers alive for the agents' model.
fn presence(node: &Node) -> Option<Truth> {
    let answer: Value = get(node.http, &format!("/api/presence?model={MODEL}"))?;
    let mut table = Truth::new();
    for c in answer["connections"].as_array()? {
        if c["status"] != "alive" {
            // Anything not alive is not what the agents hold open.
            table.insert(
                (
                    format!("{}!{}", c["server"].as_str()?, c["status"]),
                    c["connection_id"].as_u64()?,
                ),
                c["agent"].as_str()?.to_owned(),
            );
            continue;
        }
        table.insert(
            (
                c["server"].as_str()?.to_owned(),
                c["connection_id"].as_u64()?,
            ),
            c["agent"].as_str()?.to_owned(),
        );
    }
    Some(table)
}
