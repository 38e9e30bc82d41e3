//! The JSON plan: the documented, versioned view of a plan that other programs read
//! (`plan --json`, `show --json`). Field names follow Terraform's JSON plan representation
//! where the concept is the same. `docs/json-plan.md` documents every field; within a major
//! `format_version` fields are only ever added.

use super::{Action, Change, Plan};
use crate::keys::KeyReport;
use crate::model::{DEFAULT_ACCOUNT, Kind};
use crate::ops::Op;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The JSON plan's format: the major number changes only for an incompatible change.
pub const JSON_FORMAT_VERSION: &str = "1.1";

#[derive(Debug, Serialize)]
pub struct JsonPlan {
    pub format_version: &'static str,
    pub iamplan_version: &'static str,
    pub stack: String,
    pub accounts: Vec<JsonAccount>,
    pub resource_changes: Vec<ResourceChange>,
    pub output_changes: BTreeMap<String, OutputChange>,
    pub conflicts: Vec<JsonConflict>,
    /// Whether applying this plan changes anything.
    pub applyable: bool,
}

#[derive(Debug, Serialize)]
pub struct JsonAccount {
    pub alias: String,
    pub account_id: String,
    /// Who the credentials were (GetCallerIdentity), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_arn: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ResourceChange {
    /// `role.ably-integration`, `policy.invoke`, `role.deployer[tooling]` outside the
    /// default account, `access_key.robot.AKIA...`: as plan files and references name them.
    pub address: String,
    /// `role`, `managed_policy`, `user`, `group`, `access_key`.
    pub kind: &'static str,
    /// The Terraform AWS provider's type for the same IAM entity.
    #[serde(rename = "type")]
    pub tf_type: &'static str,
    pub name: String,
    pub account: String,
    /// The ARN after the change (before it, for a deletion); none for access keys.
    pub arn: Option<String>,
    pub change: ChangeBody,
    /// Why (access keys: the rotation rule's reason).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub action_reason: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The plan files acknowledge that the resource's access may widen
    /// (`allow_widening = true`; `--deny-widening` lets it through).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub allow_widening: bool,
}

#[derive(Debug, Serialize)]
pub struct ChangeBody {
    /// `["create"]`, `["update"]`, `["delete"]`, `["delete", "create"]` (replacement).
    pub actions: Vec<&'static str>,
    /// The whole resource before and after (null when absent on that side, or when the
    /// plan was made without them: a saved plan from `plan --out` has them).
    pub before: Value,
    pub after: Value,
    /// Attributes whose change forces the replacement, as paths.
    pub replace_paths: Vec<Vec<String>>,
    /// Adopting a resource no stack owned: it gets this stack's marker.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    /// The attributes and documents that change, as the text plan shows them.
    pub attributes: Vec<super::AttrChange>,
    pub documents: Vec<super::DocChange>,
}

#[derive(Debug, Serialize)]
pub struct OutputChange {
    pub actions: Vec<&'static str>,
    pub before: Option<String>,
    /// Null when unknown until apply or sensitive (see the two flags).
    pub after: Option<String>,
    pub after_unknown: bool,
    pub before_sensitive: bool,
    pub after_sensitive: bool,
}

#[derive(Debug, Serialize)]
pub struct JsonConflict {
    pub address: String,
    pub message: String,
}

fn address(kind: &str, name: &str, account: &str) -> String {
    if account == DEFAULT_ACCOUNT {
        format!("{kind}.{name}")
    } else {
        format!("{kind}.{name}[{account}]")
    }
}

fn kind_names(kind: Kind) -> (&'static str, &'static str) {
    match kind {
        Kind::Role => ("role", "aws_iam_role"),
        Kind::ManagedPolicy => ("managed_policy", "aws_iam_policy"),
        Kind::User => ("user", "aws_iam_user"),
        Kind::Group => ("group", "aws_iam_group"),
    }
}

fn actions(a: Action) -> Vec<&'static str> {
    match a {
        Action::Create => vec!["create"],
        Action::Update | Action::Adopt => vec!["update"],
        Action::Delete => vec!["delete"],
        Action::Replace => vec!["delete", "create"],
        Action::NoOp => vec!["no-op"],
    }
}

impl JsonPlan {
    /// The JSON plan as text, documents indented like the rest.
    pub fn pretty(&self) -> String {
        let value = serde_json::to_value(self).expect("a plan always serialises");
        serde_json::to_string_pretty(&value).expect("a JSON value always serialises")
    }

    pub fn new(plan: &Plan) -> Self {
        let mut resource_changes: Vec<ResourceChange> = plan.changes.iter().map(resource).collect();
        resource_changes.extend(access_keys(plan));
        let output_changes = plan
            .outputs
            .iter()
            .map(|o| {
                let actions = match (&o.before, &o.value) {
                    (Some(b), Some(a)) if b == a => vec!["no-op"],
                    (Some(_), _) => vec!["update"],
                    (None, _) => vec!["create"],
                };
                let hide = |v: &Option<String>| if o.sensitive { None } else { v.clone() };
                let change = OutputChange {
                    actions,
                    before: hide(&o.before),
                    after: hide(&o.value),
                    after_unknown: o.value.is_none(),
                    before_sensitive: o.sensitive,
                    after_sensitive: o.sensitive,
                };
                (o.name.clone(), change)
            })
            .collect();
        JsonPlan {
            format_version: JSON_FORMAT_VERSION,
            iamplan_version: env!("CARGO_PKG_VERSION"),
            stack: plan.stack.clone(),
            accounts: plan
                .accounts
                .iter()
                .map(|a| JsonAccount {
                    alias: a.alias.clone(),
                    account_id: a.account_id.clone(),
                    caller_arn: (!a.caller_arn.is_empty()).then(|| a.caller_arn.clone()),
                })
                .collect(),
            resource_changes,
            output_changes,
            conflicts: plan
                .conflicts
                .iter()
                .map(|c| JsonConflict {
                    address: super::resource_label(&c.address, &c.name),
                    message: c.message.clone(),
                })
                .collect(),
            applyable: plan.conflicts.is_empty() && plan.has_changes(),
        }
    }
}

fn resource(c: &Change) -> ResourceChange {
    let (kind, tf_type) = kind_names(c.address.kind);
    ResourceChange {
        address: super::resource_label(&c.address, &c.name),
        kind,
        tf_type,
        name: c.name.clone(),
        account: c.address.account.clone(),
        arn: c.arn.clone(),
        change: ChangeBody {
            actions: actions(c.action),
            before: c.before.clone().unwrap_or(Value::Null),
            after: c.after.clone().unwrap_or(Value::Null),
            replace_paths: c
                .attributes
                .iter()
                .filter(|a| a.forces_replacement)
                .map(|a| vec![a.name.clone()])
                .collect(),
            adopt: c.action == Action::Adopt,
            attributes: c.attributes.clone(),
            documents: c.documents.clone(),
        },
        action_reason: None,
        notes: c.notes.clone(),
        allow_widening: c.allow_widening,
    }
}

/// Access-key steps as changes of their own, with the rotation rule's reason.
fn access_keys(plan: &Plan) -> Vec<ResourceChange> {
    // Each key's facts, from the user changes that report them.
    let reports: BTreeMap<(&str, &str), &KeyReport> = plan
        .changes
        .iter()
        .flat_map(|c| {
            c.keys
                .iter()
                .map(move |k| ((c.name.as_str(), k.id.as_str()), k))
        })
        .collect();
    let deleted_users: Vec<&str> = plan
        .changes
        .iter()
        .filter(|c| c.address.kind == Kind::User && c.action == Action::Delete)
        .map(|c| c.name.as_str())
        .collect();
    let facts = |user: &str, id: &str| -> (Value, Option<String>) {
        match reports.get(&(user, id)) {
            Some(k) => (
                json!({"id": k.id, "status": k.status, "age_days": k.age_days,
                       "last_used": k.last_used, "in_sink": k.in_sink}),
                Some(k.outlook.clone()),
            ),
            None => (json!({ "id": id }), None),
        }
    };
    let mut out = Vec::new();
    for step in &plan.steps {
        let (user, id, action, before, after, reason) = match &step.op {
            Op::CreateAccessKey { user, sink, .. } => (
                user,
                "(new)".to_string(),
                "create",
                Value::Null,
                json!({ "status": "Active", "sink": sink.to_string() }),
                Some(format!("a new key, its secret handed to the {sink}")),
            ),
            Op::DeactivateAccessKey { user, id, .. } => {
                let (before, reason) = facts(user, id);
                let after = json!({ "id": id, "status": "Inactive" });
                (user, id.clone(), "update", before, after, reason)
            }
            Op::DeleteAccessKey { user, id, .. } => {
                let (before, reason) = facts(user, id);
                let reason = reason.or_else(|| {
                    deleted_users
                        .contains(&user.as_str())
                        .then(|| "the user is deleted".to_string())
                });
                (user, id.clone(), "delete", before, Value::Null, reason)
            }
            _ => continue,
        };
        out.push(ResourceChange {
            address: address("access_key", &format!("{user}.{id}"), &step.account),
            kind: "access_key",
            tf_type: "aws_iam_access_key",
            name: id,
            account: step.account.clone(),
            arn: None,
            change: ChangeBody {
                actions: vec![action],
                before,
                after,
                replace_paths: vec![],
                adopt: false,
                attributes: vec![],
                documents: vec![],
            },
            action_reason: reason,
            notes: vec![],
            allow_widening: false,
        });
    }
    out
}
