//! The plan-file schema as serde types. Every table denies unknown keys so that a typo is
//! an error with a suggestion, never a silently ignored setting.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

pub type Str = Spanned<String>;

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    pub stack: Option<Spanned<StackSpec>>,
    #[serde(default)]
    pub variables: BTreeMap<String, Str>,
    #[serde(default)]
    pub accounts: BTreeMap<Spanned<String>, Spanned<AccountSpec>>,
    #[serde(default)]
    pub role: BTreeMap<Spanned<String>, Spanned<RoleSpec>>,
    #[serde(default)]
    pub policy: BTreeMap<Spanned<String>, Spanned<PolicySpec>>,
    #[serde(default)]
    pub user: BTreeMap<Spanned<String>, Spanned<UserSpec>>,
    #[serde(default)]
    pub group: BTreeMap<Spanned<String>, Spanned<GroupSpec>>,
    #[serde(default)]
    pub smoke: BTreeMap<Spanned<String>, Spanned<SmokeSpec>>,
}

/// A smoke check: start from some credentials, assume roles, invoke a function.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmokeSpec {
    /// Start from a named AWS profile (e.g. the trusted account of a cross-account trust).
    pub from_profile: Option<Str>,
    /// Start from a plan user's access key, read from its sink.
    pub from_user: Option<Str>,
    #[serde(default)]
    pub assume: Vec<Spanned<AssumeSpec>>,
    pub invoke: Option<Spanned<InvokeSpec>>,
    pub expect: Spanned<ExpectSpec>,
    /// How long a check expected to pass is retried while fresh roles and keys propagate.
    pub retry_seconds: Option<u64>,
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssumeSpec {
    /// A role of the plan by name, or any role ARN.
    pub role: Str,
    pub external_id: Option<Str>,
    pub session_name: Option<Str>,
    pub duration_seconds: Option<i32>,
    #[serde(default)]
    pub tags: BTreeMap<String, Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvokeSpec {
    /// Function name or ARN.
    pub function: Str,
    pub qualifier: Option<Str>,
    pub payload: Option<Str>,
    /// Region of the client (default: the account's region).
    pub region: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectSpec {
    /// "allow" or "deny".
    pub result: Spanned<String>,
    /// For a denial: the link that must refuse (trust, external_id, tag_session,
    /// invoke_permission, not_found, key).
    pub reason: Option<Spanned<String>>,
    pub status: Option<i32>,
    pub payload_contains: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub account: Option<Str>,
    pub path: Option<Str>,
    #[serde(default)]
    pub managed_policies: Vec<Str>,
    #[serde(default)]
    pub inline: BTreeMap<Spanned<String>, Spanned<DocumentSpec>>,
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub account: Option<Str>,
    pub path: Option<Str>,
    pub permissions_boundary: Option<Str>,
    #[serde(default)]
    pub tags: BTreeMap<Spanned<String>, Str>,
    #[serde(default)]
    pub managed_policies: Vec<Str>,
    #[serde(default)]
    pub inline: BTreeMap<Spanned<String>, Spanned<DocumentSpec>>,
    #[serde(default)]
    pub groups: Vec<Str>,
    pub access_keys: Option<Spanned<AccessKeysSpec>>,
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKeysSpec {
    /// Active keys wanted at rest: 0 or 1.
    pub count: Option<Spanned<i64>>,
    pub rotate_after_days: Option<Spanned<i64>>,
    pub deactivate_after_days: Option<Spanned<i64>>,
    pub delete_after_days: Option<Spanned<i64>>,
    pub in_use_hours: Option<Spanned<i64>>,
    pub sink: Option<Spanned<SinkSpec>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, tag = "type", rename_all = "snake_case")]
pub enum SinkSpec {
    Json { path: String },
    Credentials { path: String, profile: String },
    Colon { path: String },
    Command { argv: Vec<String> },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    pub name: Str,
}

/// How to reach an account other than the default credentials' one.
#[derive(Debug, Deserialize, Serialize, Clone, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    /// A named profile from the AWS config files.
    pub profile: Option<String>,
    /// A role to assume (from the default credentials, or from `profile`).
    pub assume_role: Option<String>,
    pub external_id: Option<String>,
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub account: Option<Str>,
    pub path: Option<Str>,
    pub description: Option<Str>,
    pub max_session_duration: Option<Spanned<i64>>,
    pub permissions_boundary: Option<Str>,
    #[serde(default)]
    pub tags: BTreeMap<Spanned<String>, Str>,
    pub trust: Spanned<TrustSpec>,
    #[serde(default)]
    pub managed_policies: Vec<Str>,
    #[serde(default)]
    pub inline: BTreeMap<Spanned<String>, Spanned<DocumentSpec>>,
    /// Create an instance profile of the same name holding the role (for EC2).
    #[serde(default)]
    pub instance_profile: bool,
    #[serde(default)]
    pub adopt: bool,
}

/// A trust policy: either helpers or a raw document (not both).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    #[serde(default)]
    pub accounts: Vec<Str>,
    #[serde(default)]
    pub roles: Vec<Str>,
    #[serde(default)]
    pub users: Vec<Str>,
    #[serde(default)]
    pub services: Vec<Str>,
    pub external_id: Option<Str>,
    #[serde(default)]
    pub session_tags: bool,
    pub document: Option<Str>,
    pub statement: Option<Vec<Spanned<StatementSpec>>>,
    pub version: Option<Str>,
}

/// A policy document, as raw JSON text or as TOML statements.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentSpec {
    pub document: Option<Str>,
    pub statement: Option<Vec<Spanned<StatementSpec>>>,
    pub version: Option<Str>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySpec {
    pub account: Option<Str>,
    pub path: Option<Str>,
    pub description: Option<Str>,
    pub document: Option<Str>,
    pub statement: Option<Vec<Spanned<StatementSpec>>>,
    pub version: Option<Str>,
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatementSpec {
    pub sid: Option<String>,
    pub effect: Option<Str>,
    pub action: Option<OneOrMany>,
    pub not_action: Option<OneOrMany>,
    pub resource: Option<OneOrMany>,
    pub not_resource: Option<OneOrMany>,
    pub principal: Option<toml::Value>,
    pub not_principal: Option<toml::Value>,
    pub condition: Option<toml::Value>,
}

#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}
