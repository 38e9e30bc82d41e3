//! The plan as a value: what changes (typed before/after values) and the steps that make
//! it so. Rendering it is `render` (text) or serde (JSON); `saved` reads and writes it as
//! a file that `apply` runs later.

pub mod access;
mod change;
pub mod json;
pub mod render;
pub mod saved;

pub use change::{Action, AttrChange, Change, Conflict, DocChange, KeyStatus};
pub use render::{Style, render};

use crate::diff::Diff;
use crate::keys::KeyHints;
use crate::model::{AccountSpec, Address};
use crate::ops::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped when the saved-plan format changes incompatibly. 2: attribute values and
/// documents as JSON values rather than text; phases named for what they hold.
pub const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    pub stack: String,
    /// Account aliases and IDs the plan was made against.
    pub accounts: Vec<PlanAccount>,
    /// How to reach each account (profiles and role ARNs, never credentials).
    pub account_specs: BTreeMap<String, AccountSpec>,
    /// The declared resources: with the stack's owned ones, what the fingerprint covers.
    pub declared: Vec<Address>,
    /// Which users' access keys were read (the fingerprint covers them).
    #[serde(default)]
    pub key_hints: BTreeMap<String, KeyHints>,
    /// Hash of the live resources the plan was computed from.
    pub live_fingerprint: BTreeMap<String, String>,
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub steps: Vec<Step>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_status: Vec<KeyStatus>,
    /// The plan deletes every resource the stack owns (this many): a copied plan
    /// directory whose stack was not renamed looks like this. Apply asks for a flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletes_whole_stack: Option<usize>,
    /// The plan's outputs as known before apply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outputs: Vec<crate::output::OutputValue>,
}

/// A resource as plans and progress lines name it: `role.ably-integration`, with
/// `[ACCOUNT]` outside the default account.
pub fn resource_label(addr: &Address, name: &str) -> String {
    if addr.account == crate::model::DEFAULT_ACCOUNT {
        format!("{}.{name}", addr.kind.label())
    } else {
        format!("{}.{name}[{}]", addr.kind.label(), addr.account)
    }
}

/// An account the plan reads or writes, and who the credentials were.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanAccount {
    pub alias: String,
    pub account_id: String,
    /// The caller ARN (empty when unknown).
    #[serde(default)]
    pub caller_arn: String,
}

impl std::fmt::Display for PlanAccount {
    /// `account default = 000000000000 as arn:aws:iam::000000000000:user/ci`
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "account {} = {}", self.alias, self.account_id)?;
        if !self.caller_arn.is_empty() {
            write!(f, " as {}", self.caller_arn)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub add: usize,
    pub change: usize,
    pub destroy: usize,
}

impl Plan {
    pub fn new(
        stack: String,
        accounts: Vec<PlanAccount>,
        live_fingerprint: BTreeMap<String, String>,
        diff: Diff,
    ) -> Self {
        Plan {
            format_version: FORMAT_VERSION,
            stack,
            accounts,
            account_specs: BTreeMap::new(),
            declared: vec![],
            key_hints: BTreeMap::new(),
            live_fingerprint,
            changes: diff.changes,
            conflicts: diff.conflicts,
            steps: diff.steps,
            key_status: diff.key_status,
            deletes_whole_stack: None,
            outputs: vec![],
        }
    }

    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.add += 1,
                Action::Update | Action::Adopt => s.change += 1,
                Action::NoOp => {}
                Action::Delete => s.destroy += 1,
                Action::Replace => {
                    s.add += 1;
                    s.destroy += 1;
                }
            }
        }
        s
    }

    pub fn has_changes(&self) -> bool {
        !self.steps.is_empty() || self.changes().next().is_some()
    }

    /// Records whether the plan deletes everything the stack owns in `live`.
    pub fn check_whole_stack(&mut self, live: &crate::model::Live) {
        let owned = live
            .resources
            .values()
            .filter(|l| l.owner.as_deref() == Some(self.stack.as_str()))
            .count();
        let deleted = self
            .changes()
            .filter(|c| c.action == Action::Delete)
            .count();
        self.deletes_whole_stack = (owned > 0 && deleted == owned).then_some(owned);
    }

    /// The changes, without the unchanged resources a JSON plan may list.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.changes.iter().filter(|c| c.action != Action::NoOp)
    }
}
