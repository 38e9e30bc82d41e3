//! The shared vocabulary: desired and live IAM state are both made of these types, so the
//! diff compares like with like.

use crate::keys::{KeyRule, LiveKey};
use crate::policy::PolicyDocument;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The tag that marks a resource as owned by a stack (see README, "Ownership").
pub const OWNER_TAG: &str = "iamplan:stack";

/// User tags iamplan keeps for itself: when it deactivated a key, which key a command
/// sink received. They live on the user, so nothing is kept on local disk.
pub const DEACTIVATED_TAG_PREFIX: &str = "iamplan:deactivated:";
pub const DELIVERED_TAG: &str = "iamplan:delivered";
/// Under `--now`, when a key was issued in simulated time (its age counts from then).
pub const ISSUED_TAG_PREFIX: &str = "iamplan:issued:";

/// The alias of the account a resource lives in when the plan names none.
pub const DEFAULT_ACCOUNT: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ManagedPolicy,
    Role,
    User,
    Group,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::ManagedPolicy => "policy",
            Kind::Role => "role",
            Kind::User => "user",
            Kind::Group => "group",
        }
    }
}

/// Where a resource lives: account alias, kind and name. IAM names are unique
/// case-insensitively, so the key compares lower-cased names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Address {
    pub account: String,
    pub kind: Kind,
    /// Lower-cased name: the identity IAM uses.
    pub key: String,
}

impl Address {
    pub fn new(account: &str, kind: Kind, name: &str) -> Self {
        Address {
            account: account.to_string(),
            kind,
            key: name.to_ascii_lowercase(),
        }
    }
}

/// What is known about an account: its alias in the plan, its ID and partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountContext {
    pub alias: String,
    pub account_id: String,
    pub partition: String,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Role {
    pub name: String,
    pub path: String,
    pub description: String,
    pub max_session_duration: i32,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub trust: PolicyDocument,
    /// Inline policies by name.
    pub inline: BTreeMap<String, PolicyDocument>,
    /// Attached managed policies by ARN.
    pub managed: BTreeSet<String>,
    /// An instance profile named after the role holds it (for EC2).
    pub instance_profile: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub name: String,
    pub path: String,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub inline: BTreeMap<String, PolicyDocument>,
    pub managed: BTreeSet<String>,
    /// Groups the user is a member of (by name).
    pub groups: BTreeSet<String>,
    /// Declared access-key rule (desired state only).
    pub keys: Option<KeyRule>,
}

/// IAM groups cannot be tagged: the ownership marker of a group is an inline policy named
/// `iamplan-stack-<stack>` that denies an action no service has (see README).
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub inline: BTreeMap<String, PolicyDocument>,
    pub managed: BTreeSet<String>,
}

pub const GROUP_MARKER_PREFIX: &str = "iamplan-stack-";

/// The marker policy's document: it denies an action that no AWS service has.
pub fn group_marker_document() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"IamplanOwnershipMarker","Effect":"Deny","Action":"iamplan:OwnershipMarker","Resource":"*"}]}"#.to_string()
}

#[derive(Debug, Clone, PartialEq)]
pub struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub description: String,
    pub document: PolicyDocument,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Resource {
    Role(Role),
    ManagedPolicy(ManagedPolicy),
    User(User),
    Group(Group),
}

impl Resource {
    pub fn name(&self) -> &str {
        match self {
            Resource::Role(r) => &r.name,
            Resource::ManagedPolicy(p) => &p.name,
            Resource::User(u) => &u.name,
            Resource::Group(g) => &g.name,
        }
    }
    pub fn kind(&self) -> Kind {
        match self {
            Resource::Role(_) => Kind::Role,
            Resource::ManagedPolicy(_) => Kind::ManagedPolicy,
            Resource::User(_) => Kind::User,
            Resource::Group(_) => Kind::Group,
        }
    }
}

/// A resource as declared in the plan files.
#[derive(Debug, Clone)]
pub struct DesiredResource {
    pub resource: Resource,
    /// Take over a same-named live resource that no stack owns.
    pub adopt: bool,
    /// Where it was declared, for messages: `file:line:col`.
    pub origin: String,
}

/// A resource as read from the account.
#[derive(Debug, Clone)]
pub struct LiveResource {
    pub resource: Resource,
    pub arn: String,
    /// The stack named by the ownership marker, if any.
    pub owner: Option<String>,
    /// For managed policies: version IDs, default first.
    pub versions: Vec<PolicyVersion>,
    /// Roles or users trusted by unique ID because the named principal was deleted.
    pub broken_principals: Vec<String>,
    /// For roles: instance profiles that hold the role (they block its deletion).
    pub instance_profiles: Vec<String>,
    /// For users: access keys (read only for users the plan manages).
    pub access_keys: Vec<LiveKey>,
    /// For users: the key last delivered to a command sink (recorded in a user tag).
    pub delivered_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    pub created: String,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub stack: String,
    pub accounts: BTreeMap<String, AccountContext>,
    pub resources: BTreeMap<Address, DesiredResource>,
}

#[derive(Debug, Clone, Default)]
pub struct Live {
    pub resources: BTreeMap<Address, LiveResource>,
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.account == DEFAULT_ACCOUNT {
            write!(f, "{}.{}", self.kind.label(), self.key)
        } else {
            write!(f, "{}.{}[{}]", self.kind.label(), self.key, self.account)
        }
    }
}

pub fn policy_arn(ctx: &AccountContext, path: &str, name: &str) -> String {
    format!(
        "arn:{}:iam::{}:policy{}{}",
        ctx.partition, ctx.account_id, path, name
    )
}

pub fn role_arn(ctx: &AccountContext, path: &str, name: &str) -> String {
    format!(
        "arn:{}:iam::{}:role{}{}",
        ctx.partition, ctx.account_id, path, name
    )
}
