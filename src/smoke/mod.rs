//! Smoke checks: prove an integration works as the third party will use it: start from
//! some credentials, assume roles (ExternalId, session tags), invoke a Lambda function with
//! the temporary credentials, and compare with what the plan expects. The only module
//! besides `aws` that talks to AWS; it assumes roles and invokes, and never writes IAM.

mod diagnose;
mod predict;
mod run;

pub use predict::{Predicted, Prediction, finding, predict};
pub use run::{CheckResult, LiveFacts, run_checks};

use crate::keys::Sink;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Serialize)]
pub struct SmokeCheck {
    pub name: String,
    pub description: Option<String>,
    /// The account whose endpoint and region the check uses.
    pub account: String,
    pub from: From,
    pub assume: Vec<Assume>,
    pub invoke: Option<Invoke>,
    pub expect: Expect,
    pub retry_seconds: u64,
    /// Where it was declared, for messages.
    pub origin: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum From {
    /// The credentials iamplan itself runs with.
    Caller,
    Profile(String),
    /// A plan user's key, read from its sink.
    User {
        name: String,
        sink: Sink,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Assume {
    pub role_arn: String,
    pub external_id: Option<String>,
    pub session_name: String,
    pub duration_seconds: Option<i32>,
    pub tags: BTreeMap<String, String>,
    /// What the plan says about this role's trust, for diagnosis (None: not in the plan).
    pub trust: Option<TrustFacts>,
}

/// What the declared trust policy requires, so that a denial can be explained.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TrustFacts {
    pub external_ids: Vec<String>,
    pub allows_tag_session: bool,
    pub principals: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Invoke {
    pub function: String,
    pub qualifier: Option<String>,
    pub payload: String,
    pub region: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Trust,
    ExternalId,
    TagSession,
    InvokePermission,
    NotFound,
    Key,
}

impl Reason {
    pub const ALL: [(&'static str, Reason); 6] = [
        ("trust", Reason::Trust),
        ("external_id", Reason::ExternalId),
        ("tag_session", Reason::TagSession),
        ("invoke_permission", Reason::InvokePermission),
        ("not_found", Reason::NotFound),
        ("key", Reason::Key),
    ];
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Expect {
    pub allow: bool,
    pub reason: Option<Reason>,
    pub status: Option<i32>,
    pub payload_contains: Option<String>,
}

impl Expect {
    pub fn describe(&self) -> String {
        match (self.allow, self.reason) {
            (true, _) => "allow".into(),
            (false, Some(r)) => format!("deny ({})", r.name()),
            (false, None) => "deny".into(),
        }
    }
}
