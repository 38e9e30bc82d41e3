//! The shared vocabulary: addresses, accounts, and the desired and live state, both made
//! of the same per-kind types (`crate::iam`), so that the diff compares like with like.

use crate::iam::{Group, ManagedPolicy, Role, User};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

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
    /// The resource type in the kind's ARNs: `arn:aws:iam::123456789012:policy/NAME`.
    pub fn arn_type(self) -> &'static str {
        match self {
            Kind::ManagedPolicy => "policy",
            Kind::Role => "role",
            Kind::User => "user",
            Kind::Group => "group",
        }
    }

    /// The plan-file table name: `[policy.NAME]`, `[role.NAME]`, ...
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

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.account == DEFAULT_ACCOUNT {
            write!(f, "{}.{}", self.kind.label(), self.key)
        } else {
            write!(f, "{}.{}[{}]", self.kind.label(), self.key, self.account)
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

impl AccountContext {
    /// The ARN of an IAM entity of this account, e.g. `arn("role", "/x/", "name")`.
    pub fn arn(&self, resource: &str, path: &str, name: &str) -> String {
        format!(
            "arn:{}:iam::{}:{resource}{path}{name}",
            self.partition, self.account_id
        )
    }
}

/// How to reach an account (`[accounts.ALIAS]` in a plan file, and recorded in saved
/// plans): profiles and role ARNs, never credentials.
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

/// One resource of any kind. Each kind's behaviour lives in its module under `iam/`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
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
    pub fn path(&self) -> &str {
        match self {
            Resource::Role(r) => &r.path,
            Resource::ManagedPolicy(p) => &p.path,
            Resource::User(u) => &u.path,
            Resource::Group(g) => &g.path,
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
    /// `allow_widening = true`: a change that widens its access is acknowledged.
    pub allow_widening: bool,
    /// Where it was declared, for messages: `file:line:col`.
    pub origin: String,
    /// Lint findings not to report for it: code -> the reason given.
    pub lint_ignore: BTreeMap<String, String>,
    /// Where its documents' statements and values are written, so that a lint finding
    /// points at the value at fault rather than at the resource's table.
    pub places: Vec<Place>,
}

/// Where part of one of a resource's policy documents is written in the plan files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The document, as lint names it (`trust policy`, `policy document`, `inline policy X`).
    pub document: String,
    /// The statement (0-based); `None`: the document as a whole.
    pub statement: Option<usize>,
    /// A value of the statement (an action, a resource, a condition key), as built.
    pub text: Option<String>,
    /// `file:line:col`.
    pub origin: String,
}

/// A resource as read from the account. What only the live side knows about one kind
/// (policy versions, access keys, ...) is in that kind's own type.
#[derive(Debug, Clone)]
pub struct LiveResource {
    pub resource: Resource,
    pub arn: String,
    /// IAM's unique ID (`AROA...`, `AIDA...`, `AGPA...`, `ANPA...`).
    pub unique_id: String,
    /// The stack named by the ownership marker, if any.
    pub owner: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub stack: String,
    pub accounts: BTreeMap<String, AccountContext>,
    pub resources: BTreeMap<Address, DesiredResource>,
    pub outputs: Vec<crate::output::Output>,
    /// The smoke checks the files declare, resolved against the resources.
    pub smoke: Vec<crate::smoke::SmokeCheck>,
}

#[derive(Debug, Clone, Default)]
pub struct Live {
    pub resources: BTreeMap<Address, LiveResource>,
}

impl Live {
    /// Whether the stack owns anything in the account.
    pub fn has_stack(&self, stack: &str) -> bool {
        self.resources
            .values()
            .any(|l| l.owner.as_deref() == Some(stack))
    }

    /// The live state that applying `desired` to an empty account would leave, every
    /// resource owned by `owner`: a recorded account for tests and previews.
    pub fn from_desired(desired: &Desired, owner: Option<&str>) -> Live {
        let resources = desired
            .resources
            .iter()
            .map(|(addr, d)| {
                let ctx = &desired.accounts[&addr.account];
                let mut resource = d.resource.clone();
                let arn = match &mut resource {
                    Resource::Role(r) => {
                        if r.instance_profile {
                            r.instance_profile_arn =
                                Some(ctx.arn("instance-profile", &r.path, &r.name));
                        }
                        ctx.arn("role", &r.path, &r.name)
                    }
                    Resource::ManagedPolicy(p) => {
                        p.versions = vec![crate::iam::managed_policy::PolicyVersion {
                            id: "v1".into(),
                            is_default: true,
                            created: "1".into(),
                        }];
                        ctx.arn("policy", &p.path, &p.name)
                    }
                    Resource::User(u) => {
                        u.keys = None;
                        ctx.arn("user", &u.path, &u.name)
                    }
                    Resource::Group(g) => ctx.arn("group", &g.path, &g.name),
                };
                let live = LiveResource {
                    resource,
                    unique_id: String::new(),
                    arn,
                    owner: owner.map(str::to_string),
                };
                (addr.clone(), live)
            })
            .collect();
        Live { resources }
    }
}

/// The default account as the emulators have it (ID 000000000000), for unit tests.
#[cfg(test)]
pub(crate) fn test_accounts(region: &str) -> BTreeMap<String, AccountContext> {
    let ctx = AccountContext {
        alias: DEFAULT_ACCOUNT.into(),
        account_id: "000000000000".into(),
        partition: "aws".into(),
        region: region.into(),
    };
    BTreeMap::from([(DEFAULT_ACCOUNT.to_string(), ctx)])
}
