//! The plan file's top-level schema and the parts every kind shares, as serde types
//! (each kind's own section is in its module under `iam/`). Every table denies unknown keys so that a typo is
//! an error with a suggestion, never a silently ignored setting.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

pub use crate::iam::group::GroupSpec;
pub use crate::iam::managed_policy::PolicySpec;
pub use crate::iam::role::RoleSpec;
pub use crate::iam::user::UserSpec;
pub use crate::model::AccountSpec;

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
    #[serde(default)]
    pub output: BTreeMap<Spanned<String>, Spanned<OutputSpec>>,
    /// Sections that could not be read (their errors are reported), by table (`role`...,
    /// empty for `stack`) and name: still declared, so that a reference to one is not a
    /// second error.
    #[serde(skip)]
    pub unreadable: Vec<(String, Spanned<String>)>,
}

/// `[output.NAME]`: a value to show after apply and with `iamplan output`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub value: Str,
    pub description: Option<Str>,
    /// Shown as `<sensitive>` in plans and after apply; `iamplan output NAME` prints it.
    #[serde(default)]
    pub sensitive: bool,
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
    pub duration_seconds: Option<Spanned<i64>>,
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
pub struct StackSpec {
    pub name: Str,
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
pub struct StatementSpec {
    pub sid: Option<Str>,
    pub effect: Option<Str>,
    pub action: Option<Spanned<OneOrMany>>,
    pub not_action: Option<Spanned<OneOrMany>>,
    pub resource: Option<Spanned<OneOrMany>>,
    pub not_resource: Option<Spanned<OneOrMany>>,
    pub principal: Option<Spanned<toml::Value>>,
    pub not_principal: Option<Spanned<toml::Value>>,
    pub condition: Option<Spanned<toml::Value>>,
}

/// A string or a list of strings (`action = "s3:GetObject"` or `action = ["a", "b"]`).
#[derive(Debug, Clone)]
pub enum OneOrMany {
    One(String),
    Many(Vec<Str>),
}

/// By hand rather than `untagged`: serde's message for an untagged enum names the type
/// and not what was expected.
impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<OneOrMany, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<Str>()? {
                    out.push(s);
                }
                Ok(OneOrMany::Many(out))
            }
        }
        d.deserialize_any(Visitor)
    }
}
