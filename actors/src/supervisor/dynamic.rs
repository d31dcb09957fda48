//! Dynamic children: added and removed at run time under their group's
//! policy.

use std::sync::Arc;

use actix::Context;
use slog::info;
use tokio::sync::oneshot;

use super::actor::Supervisor;
use super::error::SupervisorError;
use super::lifecycle::StopReason;
use super::spec::{ChildSpec, check_name};

impl Supervisor {
    /// Adds a dynamic child under the group's policy, and starts it.
    pub(super) fn add_child(
        &mut self,
        spec: ChildSpec,
        ctx: &mut Context<Self>,
    ) -> Result<(), SupervisorError> {
        let Some(policy) = &self.dynamic else {
            return Err(SupervisorError::NotDynamic(self.path.to_string()));
        };
        if self.shutdown.is_some() {
            return Err(SupervisorError::ShuttingDown(self.path.to_string()));
        }
        check_name(&spec.name)?;
        if self.children.contains_key(&spec.name) {
            return Err(SupervisorError::Duplicate {
                supervisor: self.path.to_string(),
                child: spec.name.to_string(),
            });
        }
        for input in spec.inputs.iter() {
            if self.children.get(input.as_str()).is_none_or(|c| c.dynamic) {
                return Err(SupervisorError::UnknownInput {
                    supervisor: self.path.to_string(),
                    child: spec.name.to_string(),
                    input: input.clone(),
                    expected: "a static child of its supervisor",
                });
            }
        }
        let mut spec = spec;
        spec.restart = policy.restart;
        spec.state = policy.state;
        if spec.arbiter.is_none()
            && let Some(arbiter) = self.spread.nth(self.spread_next)
        {
            // Its arbiter for good: a restart runs it where it ran.
            spec.arbiter = Some(arbiter.clone());
            self.spread_next += 1;
        }
        let name = spec.name.clone();
        self.insert(spec, true, usize::MAX);
        self.start_child(&name, ctx);
        Ok(())
    }

    /// Removes a dynamic child: at once when it is not running, else once it
    /// has stopped. The receiver resolves when it is gone.
    pub(super) fn remove_child(
        &mut self,
        name: &str,
        ctx: &mut Context<Self>,
    ) -> Result<oneshot::Receiver<()>, SupervisorError> {
        let Some((key, child)) = self.children.get_key_value(name) else {
            return Err(self.no_such_child(name));
        };
        if !child.dynamic {
            return Err(self.no_such_child(name));
        }
        let key = key.clone();
        let (tx, rx) = oneshot::channel();
        let Some(child) = self.children.get_mut(&key) else {
            return Err(self.no_such_child(name));
        };
        child.removal_waiters.push(tx);
        if child.life.instance().is_some() {
            // A shutdown under way stops it anyway, and then answers every
            // waiter.
            if self.shutdown.is_none() {
                self.request_stop(&key, StopReason::Remove, ctx);
            }
        } else {
            self.remove_now(&key);
        }
        Ok(rx)
    }

    /// Removes a child that is not running, with its timers and its place
    /// among its inputs' dependents, and answers its removal waiters.
    pub(super) fn remove_now(&mut self, name: &Arc<str>) {
        let Some(mut child) = self.children.remove(name) else {
            return;
        };
        for key in [child.life.restart_timer(), child.life.deadline()]
            .into_iter()
            .flatten()
        {
            self.timers.cancel(key);
        }
        for input in child.spec.inputs.iter() {
            if let Some(set) = self.dependents.get_mut(input.as_str()) {
                set.remove(name);
            }
        }
        info!(self.logger, "child removed"; "child" => &**name);
        for waiter in child.removal_waiters.drain(..) {
            let _ = waiter.send(());
        }
    }

    /// Whether `name` is a dynamic child.
    pub(super) fn is_dynamic_child(&self, name: &str) -> bool {
        self.children.get(name).is_some_and(|c| c.dynamic)
    }

    pub(super) fn no_such_child(&self, name: &str) -> SupervisorError {
        SupervisorError::NoSuchChild {
            supervisor: self.path.to_string(),
            child: name.to_owned(),
        }
    }
}
