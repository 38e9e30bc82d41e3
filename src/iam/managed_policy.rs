//! Customer-managed policies: `[policy.NAME]`. A changed document becomes a new default
//! version (older ones deleted to stay within IAM's five); path and description cannot
//! change in IAM, so the plan says so rather than pretending.

use super::{IamKind, UnreadableDocument, resource_variant, section};
use crate::diff::DiffCx;
use crate::model::{AccountContext, Kind, LiveResource, Resource};
use crate::ops::Op;
use crate::ownership::{marked_description, owner_tags, split_policy_description};
use crate::plan::{Action, AttrChange, DocChange};
use crate::policy::{self, PolicyDocument};
use crate::spec::{BuildCx, DocumentSource, SpecError, StatementSpec, Str};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

/// The names of the stack locks (`aws::lock`): `iamplan-lock-STACK`. IAM compares
/// policy names without case, so a plan's policy may not start with it in any case.
pub const LOCK_PREFIX: &str = "iamplan-lock-";

/// IAM's quota on a managed policy document: characters without white space.
pub const MAX_SIZE: usize = 6144;

/// IAM keeps at most five versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManagedPolicy {
    pub name: String,
    pub path: String,
    pub description: String,
    pub document: PolicyDocument,
    /// Live only: version IDs, default first.
    #[serde(skip)]
    pub versions: Vec<PolicyVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub id: String,
    pub is_default: bool,
    pub created: String,
}

/// `[policy.NAME]`.
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
    /// Acknowledges that a change may widen this resource's access (`plan --deny-widening`).
    #[serde(default)]
    pub allow_widening: bool,
    /// Lint findings not to report for this resource: code -> why.
    #[serde(default)]
    pub lint_ignore: BTreeMap<Spanned<String>, Str>,
}

section!(PolicySpec);

const DOCUMENT: &str = "policy document";

impl IamKind for ManagedPolicy {
    const KIND: Kind = Kind::ManagedPolicy;
    const MAX_NAME_LEN: usize = 128;
    type Section = PolicySpec;

    fn build(cx: &BuildCx, p: &PolicySpec) -> Result<Self, SpecError> {
        let name = cx.name.get_ref();
        if let Some(stack) = name
            .get(..LOCK_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(LOCK_PREFIX))
            .and_then(|_| name.get(LOCK_PREFIX.len()..))
        {
            cx.keep::<()>(Err(cx
                .err(cx.name.span(), format!("the policy name \"{name}\" is reserved: it is the name of stack \"{stack}\"'s lock"))
                .with_help(format!("while this policy exists, stack \"{stack}\" counts as locked, and `iamplan force-unlock` of that stack deletes it; choose a name that does not start with {LOCK_PREFIX}"))))
            .ok();
        }
        let source = DocumentSource {
            document: &p.document,
            statement: &p.statement,
            version: &p.version,
        };
        let path = cx.keep(cx.policy_path(&p.path));
        let description = cx.keep(cx.description(&p.description));
        let document = cx.keep(cx.document(source, false));
        let description = description?;
        // The ownership marker shares IAM's 1,000 characters with the user's text.
        let marked = marked_description(&description, &cx.b.stack)
            .chars()
            .count();
        if let Some(d) = &p.description
            && marked > 1000
        {
            return Err(cx
                .err(d.span(), format!("the description with iamplan's ownership marker has {marked} characters; IAM allows 1,000"))
                .with_help(format!("shorten it by {} characters", marked - 1000)));
        }
        let document = document?;
        let size = document.inspect(policy::size_without_whitespace);
        if size > MAX_SIZE {
            return Err(cx
                .err(cx.name.span(), format!("the policy document has {size} characters (without white space); IAM allows {MAX_SIZE} in a managed policy"))
                .with_help("split it into two policies and attach both"));
        }
        Ok(ManagedPolicy {
            name: cx.name.get_ref().clone(),
            path: path?,
            description,
            document,
            versions: vec![],
        })
    }

    resource_variant!(ManagedPolicy);

    fn create(&self, cx: &mut DiffCx) {
        let mut change = cx.new_change(&self.name, Action::Create);
        change.attr(AttrChange::added("path", self.path.as_str()));
        change.attr(AttrChange::added("description", self.description.as_str()));
        change
            .documents
            .push(DocChange::added(DOCUMENT, self.document.value()));
        cx.change(change);
        cx.step(Op::CreatePolicy {
            name: self.name.clone(),
            path: self.path.clone(),
            description: marked_description(&self.description, cx.stack),
            document: self.document.json(),
            tags: owner_tags(cx.stack),
        });
    }

    fn update(&self, h: &ManagedPolicy, lr: &LiveResource, cx: &mut DiffCx, adopting: bool) {
        let mut change = cx.new_change(&self.name, Action::Update);
        if self.path != h.path {
            change.notes.push(format!(
                "path {:?} -> {:?} is not applied: IAM cannot move a managed policy, and policy names are unique across paths; rename the policy to recreate it under the new path",
                h.path, self.path
            ));
        }
        if self.description != h.description && !adopting {
            change.notes.push(format!(
                "description {:?} -> {:?} is not applied: IAM cannot change a managed policy's description; rename the policy to recreate it",
                h.description, self.description
            ));
        }
        if let Some(c) =
            super::principal::doc_change(cx, DOCUMENT.into(), &h.document, &self.document)
        {
            change.documents.push(c);
            // Make room: IAM keeps five versions; delete the oldest non-default ones first.
            let excess = (h.versions.len() + 1).saturating_sub(MAX_POLICY_VERSIONS);
            for v in h.versions.iter().filter(|v| !v.is_default).take(excess) {
                cx.step_before_creates(Op::DeletePolicyVersion {
                    arn: lr.arn.clone(),
                    version_id: v.id.clone(),
                });
            }
            cx.step(Op::CreatePolicyVersion {
                arn: lr.arn.clone(),
                document: self.document.json(),
            });
        }
        if adopting {
            // The description cannot take the marker: the ownership tag does, read back
            // for policies the plan declares with `adopt = true`.
            change.notes.push("a managed policy's description cannot change, so an adopted policy is marked by its tag only: it stays managed while the plan declares it with `adopt = true`, and is left in place (not deleted) when removed from the plan".into());
            change.attr(AttrChange::added("owner", "this stack (adopt = true)"));
            cx.step(Op::TagPolicy {
                arn: lr.arn.clone(),
                tags: owner_tags(cx.stack),
            });
        }
        cx.update(adopting, change);
    }

    fn delete(&self, lr: &LiveResource, cx: &mut DiffCx) {
        let mut change = cx.deletion(&self.name, &self.path);
        change
            .documents
            .push(DocChange::removed(DOCUMENT, self.document.value()));
        cx.change(change);
        for v in self.versions.iter().filter(|v| !v.is_default) {
            cx.step(Op::DeletePolicyVersion {
                arn: lr.arn.clone(),
                version_id: v.id.clone(),
            });
        }
        cx.step(Op::DeletePolicy {
            arn: lr.arn.clone(),
        });
    }
}

impl ManagedPolicy {
    /// The policy as GetAccountAuthorizationDetails returns it. `listed` is the description
    /// from ListPolicies, for emulators whose GetAccountAuthorizationDetails leaves it out. `Ok(None)`: no default version document came back.
    pub fn from_live(
        p: &aws_sdk_iam::types::ManagedPolicyDetail,
        listed: Option<&String>,
        ctx: &AccountContext,
    ) -> Result<Option<LiveResource>, UnreadableDocument> {
        let arn = p.arn().unwrap_or_default().to_string();
        // moto leaves PolicyName out of this call; the ARN ends with it.
        let name = p
            .policy_name()
            .map(str::to_string)
            .unwrap_or_else(|| arn.rsplit('/').next().unwrap_or_default().to_string());
        let mut versions: Vec<PolicyVersion> = p
            .policy_version_list()
            .iter()
            .map(|v| PolicyVersion {
                id: v.version_id().unwrap_or_default().to_string(),
                is_default: v.is_default_version(),
                created: v.create_date().map(|d| d.to_string()).unwrap_or_default(),
            })
            .collect();
        versions.sort_by(|a, b| {
            b.is_default
                .cmp(&a.is_default)
                .then(a.created.cmp(&b.created))
        });
        let default = p
            .policy_version_list()
            .iter()
            .find(|v| {
                v.is_default_version()
                    || Some(v.version_id().unwrap_or_default()) == p.default_version_id()
            })
            .and_then(|v| v.document());
        let Some(doc) = default else {
            return Ok(None);
        };
        let document = PolicyDocument::from_live(doc, &ctx.partition)
            .map_err(UnreadableDocument::new(Kind::ManagedPolicy, &arn, DOCUMENT))?;
        // Only the description's marker makes a policy the stack's: an adopted policy has
        // the owner tag alone, and stays managed only while the plan declares it with
        // `adopt = true` (its tag is read then). Taking the tag as ownership here would
        // delete an adopted policy removed from the plan on emulators whose listing
        // carries tags, and leave it in place on AWS.
        let (description, owner) = match (p.description(), listed) {
            (Some(d), _) => split_policy_description(d),
            (None, Some(d)) => split_policy_description(d),
            (None, None) => (String::new(), None),
        };
        Ok(Some(LiveResource {
            resource: Resource::ManagedPolicy(ManagedPolicy {
                name,
                path: p.path().unwrap_or("/").to_string(),
                description,
                document,
                versions,
            }),
            unique_id: p.policy_id().unwrap_or_default().to_string(),
            arn,
            owner,
        }))
    }
}
