//! What a plan says will happen to each resource, as typed values: attribute values and
//! policy documents are JSON values, so that the text renderer, the JSON plan and saved
//! plans are views of one value.

use crate::keys::KeyReport;
use crate::model::Address;
use crate::policy::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    /// Take ownership of an existing resource (and update it).
    Adopt,
    /// Nothing changes (listed only when asked: `plan --json --include-unchanged`).
    NoOp,
}

/// One attribute's value before and after (`None`: absent on that side).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// This attribute forces the resource to be replaced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

impl AttrChange {
    pub fn new(name: &str, before: Option<Value>, after: Option<Value>) -> Self {
        AttrChange {
            name: name.into(),
            before,
            after,
            forces_replacement: false,
        }
    }
    pub fn added(name: &str, after: impl Into<Value>) -> Self {
        Self::new(name, None, Some(after.into()))
    }
    pub fn removed(name: &str, before: impl Into<Value>) -> Self {
        Self::new(name, Some(before.into()), None)
    }
    pub fn changed(name: &str, before: impl Into<Value>, after: impl Into<Value>) -> Self {
        Self::new(name, Some(before.into()), Some(after.into()))
    }
}

/// A policy document before and after, as JSON values (the live side aligned to the
/// desired one, so that a diff of the two shows only real differences).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChange {
    pub label: String,
    pub before: Option<Json>,
    pub after: Option<Json>,
    /// What the change does to access (see `crate::plan::access`); none for a plan made
    /// before access analysis, or for a document it could not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<crate::access::Difference>,
}

impl DocChange {
    pub fn added(label: impl Into<String>, after: &Value) -> Self {
        DocChange {
            label: label.into(),
            before: None,
            after: Some(after.into()),
            access: None,
        }
    }
    pub fn removed(label: impl Into<String>, before: &Value) -> Self {
        DocChange {
            label: label.into(),
            before: Some(before.into()),
            after: None,
            access: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub name: String,
    pub action: Action,
    pub attributes: Vec<AttrChange>,
    pub documents: Vec<DocChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// For users: each access key, its facts and what happens to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyReport>,
    /// The resource's ARN after the change (before it, for a deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    /// The whole resource before and after, as the JSON plan shows it (only when asked
    /// for: `--json`, `--out`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
    /// The plan file acknowledges that this resource's access may widen
    /// (`allow_widening = true`): `--deny-widening` lets its widening changes through.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_widening: bool,
}

impl Change {
    pub fn new(address: &Address, name: &str, action: Action) -> Self {
        Change {
            address: address.clone(),
            name: name.to_string(),
            action,
            attributes: vec![],
            documents: vec![],
            notes: vec![],
            keys: vec![],
            arn: None,
            before: None,
            after: None,
            allow_widening: false,
        }
    }

    pub fn attr(&mut self, a: AttrChange) {
        self.attributes.push(a);
    }

    /// Whether anything is to change (an update with nothing in it is not shown).
    pub fn is_empty(&self) -> bool {
        self.attributes.is_empty()
            && self.documents.is_empty()
            && self.notes.is_empty()
            && self.keys.is_empty()
    }
}

/// What stops a plan from being applied: a declared resource that exists live but is not
/// this stack's, or a deletion IAM would refuse (a policy attached outside the stack).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub address: Address,
    pub name: String,
    pub message: String,
}

/// A user whose keys need nothing now: its keys and what happens to them next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    pub address: Address,
    pub name: String,
    pub keys: Vec<KeyReport>,
}
