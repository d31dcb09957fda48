//! What a supervisor is told to run: its children's specifications, its
//! timing and its dynamic group, and their validation.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::ArbiterHandle;
use muster::config::Validate;

use super::context::{KeptSlot, StartCtx};
use super::error::SupervisorError;
use super::exit::Exit;
use super::handle::SupervisorRef;
use super::placement::Arbiters;
use super::policy::{RestartConfig, RestartPolicy, StatePolicy};
use super::report::Reporter;
use super::status::{StatusCell, StatusWatch, status};
use super::task::{ActorStarter, Starter};
use crate::mailbox::{Mailbox, Supervised};

/// A child: its name, inputs, restart and state policies, and how to start
/// it. Cheap to clone; clones share the start function and the kept state.
#[derive(Clone)]
pub struct ChildSpec {
    pub(super) name: Arc<str>,
    pub(super) inputs: Arc<[String]>,
    pub(super) restart: RestartPolicy,
    pub(super) state: StatePolicy,
    pub(super) shutdown_timeout: Option<Option<Duration>>,
    pub(super) starter: Arc<Mutex<dyn Starter>>,
    pub(super) kept: Arc<KeptSlot>,
    pub(super) reporter: Option<Reporter>,
    pub(super) is_supervisor: bool,
    /// A nested supervisor's handle, through which its report is asked.
    pub(super) nested: Option<SupervisorRef>,
    /// The arbiter it runs on; its supervisor's when `None`.
    pub(super) arbiter: Option<ArbiterHandle>,
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("inputs", &self.inputs)
            .field("restart", &self.restart)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl ChildSpec {
    /// An actor child. `start` builds a new instance on every (re)start; the
    /// supervisor runs it and points `mailbox` at it. Returning an [`Exit`]
    /// from `start` is the same as the instance exiting with it at once.
    pub fn actor<A, F>(name: impl Into<String>, mailbox: &Mailbox<A>, start: F) -> Self
    where
        A: Supervised,
        F: FnMut(&mut StartCtx<'_>) -> Result<A, Exit> + Send + 'static,
    {
        Self::from_starter(
            name.into(),
            Arc::new(Mutex::new(ActorStarter {
                mailbox: mailbox.clone(),
                start,
            })),
            false,
        )
    }

    pub(super) fn from_starter(
        name: String,
        starter: Arc<Mutex<dyn Starter>>,
        is_supervisor: bool,
    ) -> Self {
        ChildSpec {
            name: Arc::from(name),
            inputs: Arc::from(Vec::new()),
            restart: RestartPolicy::default(),
            state: StatePolicy::default(),
            shutdown_timeout: None,
            starter,
            kept: Arc::new(Mutex::new(None)),
            reporter: None,
            is_supervisor,
            nested: None,
            arbiter: None,
        }
    }

    /// The names of the children this one needs.
    pub fn inputs<I, S>(mut self, inputs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.inputs = inputs.into_iter().map(Into::into).collect();
        self
    }

    /// The restart policy (default [`RestartPolicy::Permanent`]). A dynamic
    /// child takes its group's policy instead.
    pub fn restart(mut self, policy: RestartPolicy) -> Self {
        self.restart = policy;
        self
    }

    /// Whether the child's state is kept across restarts (default
    /// [`StatePolicy::Rebuilt`]). A dynamic child takes its group's policy.
    pub fn state(mut self, policy: StatePolicy) -> Self {
        self.state = policy;
        self
    }

    /// How long the child may take to stop before it is killed; `None`
    /// waits for ever. Defaults to the supervisor's `shutdown_timeout` for
    /// actors and to waiting for ever for supervisors, which stop their own
    /// children within their own timeouts.
    pub fn shutdown_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.shutdown_timeout = Some(timeout);
        self
    }

    /// How to get the child's own report (see [`Mailbox::reporter`]).
    pub fn report(mut self, reporter: Reporter) -> Self {
        self.reporter = Some(reporter);
        self
    }

    /// Runs the child on `arbiter` (another thread) rather than on its
    /// supervisor's (see [`Arbiters`](super::Arbiters)).
    pub fn on(mut self, arbiter: ArbiterHandle) -> Self {
        self.arbiter = Some(arbiter);
        self
    }

    /// The child's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The shared policy of a supervisor's dynamic children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DynamicPolicy {
    /// The group's name; it labels the group's metrics series, which all its
    /// children share.
    pub group: String,
    /// The restart policy of every child of the group.
    pub restart: RestartPolicy,
    /// The state policy of every child of the group.
    pub state: StatePolicy,
}

impl DynamicPolicy {
    /// A group called `group` of permanent children whose state is rebuilt.
    pub fn new(group: impl Into<String>) -> Self {
        DynamicPolicy {
            group: group.into(),
            restart: RestartPolicy::Permanent,
            state: StatePolicy::Rebuilt,
        }
    }
}

/// A supervisor's static children, timing and dynamic group. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct SupervisorSpec {
    pub(super) children: Vec<ChildSpec>,
    pub(super) config: RestartConfig,
    pub(super) dynamic: Option<DynamicPolicy>,
    pub(super) status: Option<StatusCell>,
    /// Where its dynamic children run, each by its name.
    pub(super) spread: Arbiters,
}

impl SupervisorSpec {
    /// A supervisor with no children and the given timing.
    pub fn new(config: RestartConfig) -> Self {
        SupervisorSpec {
            children: Vec::new(),
            config,
            dynamic: None,
            status: None,
            spread: Arbiters::default(),
        }
    }

    /// Adds a static child; children start in the order they are added, and a
    /// child's inputs must be added before it.
    pub fn child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }

    /// Runs the dynamic children on `arbiters`, in turn as they are added,
    /// so that thousands of them share the threads (a static child goes
    /// where [`ChildSpec::on`] says).
    pub fn spread(mut self, arbiters: Arbiters) -> Self {
        self.spread = arbiters;
        self
    }

    /// Lets the supervisor take dynamic children under `policy`.
    pub fn dynamic(mut self, policy: DynamicPolicy) -> Self {
        self.dynamic = Some(policy);
        self
    }

    /// Publishes the supervisor's status, and answers a watch on it that
    /// outlives each incarnation: every supervisor made from this
    /// specification (the root, or each start of a nested supervisor by its
    /// parent) reports to the same watch. A host's handle waits on it while
    /// the supervisor's parent restarts it. Give a watched specification to
    /// one supervisor at a time.
    pub fn with_status(mut self) -> (Self, StatusWatch) {
        let (cell, watch) = status();
        self.status = Some(cell);
        (self, watch)
    }

    /// Checks the config, the names and the inputs.
    pub fn validate(&self, path: &str) -> Result<(), SupervisorError> {
        self.config.validate()?;
        let mut seen: Vec<&str> = Vec::with_capacity(self.children.len());
        for c in &self.children {
            check_name(&c.name)?;
            if seen.contains(&&*c.name) {
                return Err(SupervisorError::Duplicate {
                    supervisor: path.to_owned(),
                    child: c.name.to_string(),
                });
            }
            for input in c.inputs.iter() {
                if !seen.contains(&input.as_str()) {
                    return Err(SupervisorError::UnknownInput {
                        supervisor: path.to_owned(),
                        child: c.name.to_string(),
                        input: input.clone(),
                        expected: "a child declared before it",
                    });
                }
            }
            seen.push(&c.name);
        }
        Ok(())
    }
}

/// Checks a child's (or a root's) name: paths are made of names joined by `/`.
pub(crate) fn check_name(name: &str) -> Result<(), SupervisorError> {
    if name.is_empty() || name.contains('/') {
        return Err(SupervisorError::BadName(name.to_owned()));
    }
    Ok(())
}
