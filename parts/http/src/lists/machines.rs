//! `/api/machines`, one page at a time: the machines in natural order,
//! narrowed by `filter` and `phase`, with the count of every phase so that
//! the page's totals need no other request.

use std::collections::HashMap;

use muster_actors::machines::MachineState;
use serde_json::{Value, json};

use super::natural::sort_naturally;
use super::paging::{BadParameter, PageQuery};
use crate::json::{MachineJson, phase_name};

/// The phases, as `phase` names them.
const PHASES: [&str; 3] = ["short", "long", "manual"];

/// The query of `/api/machines`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachinesQuery {
    /// Which rows.
    pub page: PageQuery,
    /// Only machines in this phase (`short`, `long` or `manual`).
    pub phase: Option<&'static str>,
}

impl MachinesQuery {
    /// Reads `offset`, `limit`, `filter` (part of the tag) and `phase`.
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, BadParameter> {
        let page = PageQuery::parse(query)?;
        let phase = match query.get("phase") {
            None => None,
            Some(text) => Some(PHASES.into_iter().find(|p| p == text).ok_or_else(|| {
                BadParameter::new(
                    "phase",
                    format!("parameter `phase`: {text:?} is not one of short, long, manual"),
                )
            })?),
        };
        Ok(MachinesQuery { page, phase })
    }

    /// The answer: `machines` (the page), `total`, `matched`, `offset`,
    /// `limit`, and `phases` (every machine counted by phase, unfiltered).
    pub fn answer(&self, mut machines: Vec<MachineState>) -> Value {
        let mut phases: HashMap<&str, usize> = PHASES.iter().map(|p| (*p, 0)).collect();
        for machine in &machines {
            *phases.entry(phase_name(machine)).or_default() += 1;
        }
        let total = machines.len();
        if let Some(phase) = self.phase {
            machines.retain(|m| phase_name(m) == phase);
        }
        sort_naturally(&mut machines, |m| m.tag.as_str());
        let page = self.page.apply(machines, |m| m.tag.as_str().into());
        let machines: Vec<MachineJson> = page.items.into_iter().map(Into::into).collect();
        json!({
            "machines": machines,
            "total": total,
            "matched": page.matched,
            "offset": page.offset,
            "limit": page.limit,
            "phases": phases,
        })
    }
}
