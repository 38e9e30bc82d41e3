//! Roles: `[role.NAME]`, read from GetAccountAuthorizationDetails (plus ListRoles for the
//! two attributes it omits), created, updated in place, replaced when the path changes,
//! and torn down with their policies and instance profiles.

use super::principal::{
    Policies, Principal, diff_policies, diff_tagged, doc_change, live, policy_teardown,
    principal_ops, show_removed, tag_attrs, tagged_ops,
};
use super::trust::{self, TrustSpec};
use super::{IamKind, UnreadableDocument, resource_variant, section};
use crate::diff::DiffCx;
use crate::model::{AccountContext, Kind, LiveResource, Resource};
use crate::ops::Op;
use crate::ownership::{owner_tags, take_owner_tag, with_owner_tag};
use crate::plan::{Action, AttrChange, Change, DocChange};
use crate::policy::PolicyDocument;
use crate::spec::{BuildCx, DocumentSpec, ROLE_DESCRIPTION, SpecError, Str};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

/// A role. Serialised (the JSON plan's `before`/`after`) with the plan file's key names.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    #[serde(rename = "managed_policies")]
    pub managed: BTreeSet<String>,
    /// An instance profile named after the role holds it (for EC2).
    pub instance_profile: bool,
    /// Live only: the instance profiles that hold the role (they block its deletion).
    #[serde(skip)]
    pub instance_profiles: Vec<String>,
    /// Live only: the ARN of the instance profile named after the role, if one holds it
    /// (`${instance_profile.NAME.arn}` in outputs).
    #[serde(skip)]
    pub instance_profile_arn: Option<String>,
    /// Live only: principals the trust policy names by unique ID, because the role or user
    /// it named was deleted.
    #[serde(skip)]
    pub broken_principals: Vec<String>,
}

/// `[role.NAME]`.
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
    /// Acknowledges that a change may widen this resource's access (`plan --deny-widening`).
    #[serde(default)]
    pub allow_widening: bool,
    /// Lint findings not to report for this resource: code -> why.
    #[serde(default)]
    pub lint_ignore: BTreeMap<Spanned<String>, Str>,
}

section!(RoleSpec);

/// IAM's default and range for a role's maximum session duration, in seconds.
const DEFAULT_MAX_SESSION: i32 = 3600;

impl IamKind for Role {
    const KIND: Kind = Kind::Role;
    const MAX_NAME_LEN: usize = 64;
    type Section = RoleSpec;

    fn build(cx: &BuildCx, r: &RoleSpec) -> Result<Self, SpecError> {
        let max_session_duration = cx.keep(match &r.max_session_duration {
            None => Ok(DEFAULT_MAX_SESSION),
            Some(m) if (3600..=43200).contains(m.get_ref()) => Ok(*m.get_ref() as i32),
            Some(m) => Err(cx
                .err(
                    m.span(),
                    format!("max_session_duration {} is out of range", m.get_ref()),
                )
                .with_help("IAM accepts 3600 to 43200 seconds (1 to 12 hours)")),
        });
        let tags = cx.keep(cx.tags(&r.tags).and_then(|tags| {
            if tags.len() > 49 {
                Err(cx.err(
                    cx.name.span(),
                    "too many tags: IAM allows 50 per role, and iamplan uses one for ownership",
                ))
            } else {
                Ok(tags)
            }
        }));
        let path = cx.keep(cx.path(&r.path));
        let description = cx.keep(cx.description(&r.description).and_then(
            |d| match &r.description {
                Some(s) => cx.shaped(s.span(), d, &ROLE_DESCRIPTION),
                None => Ok(d),
            },
        ));
        let boundary = cx.keep(cx.opt_policy_ref(&r.permissions_boundary));
        let trust = cx.keep(trust::build(cx.b, cx.at, &r.trust, cx.ctx));
        let inline = cx.keep(cx.inline_within(&r.inline, 10240, "role"));
        let managed = cx.keep(cx.managed(&r.managed_policies));
        Ok(Role {
            name: cx.name.get_ref().clone(),
            path: path?,
            description: description?,
            max_session_duration: max_session_duration?,
            permissions_boundary: boundary?,
            tags: tags?,
            trust: trust?,
            inline: inline?,
            managed: managed?,
            instance_profile: r.instance_profile,
            instance_profiles: vec![],
            instance_profile_arn: None,
            broken_principals: vec![],
        })
    }

    resource_variant!(Role);

    fn create(&self, cx: &mut DiffCx) {
        let change = self.creation(cx, Action::Create);
        cx.change(change);
    }

    fn update(&self, h: &Role, lr: &LiveResource, cx: &mut DiffCx, adopting: bool) {
        let notes: Vec<String> = h.broken_principals.iter().map(|id| format!(
            "the live trust policy names {id}: a unique ID that IAM shows when the role or user it named was deleted; recreating that name does not restore the trust, so apply writes the trust policy again"
        )).collect();
        if self.path != h.path {
            // A role's path cannot change: replace it.
            h.teardown(cx, true);
            let mut change = self.creation(cx, Action::Replace);
            change.attributes[0] = AttrChange {
                forces_replacement: true,
                ..AttrChange::changed("path", h.path.as_str(), self.path.as_str())
            };
            change.notes = notes;
            cx.change(change);
            return;
        }
        let mut change = cx.new_change(&self.name, Action::Update);
        change.notes = notes;
        if self.description != h.description || self.max_session_duration != h.max_session_duration
        {
            if self.description != h.description {
                change.attr(AttrChange::changed(
                    "description",
                    h.description.as_str(),
                    self.description.as_str(),
                ));
            }
            if self.max_session_duration != h.max_session_duration {
                change.attr(AttrChange::changed(
                    "max_session_duration",
                    h.max_session_duration,
                    self.max_session_duration,
                ));
            }
            cx.step(Op::UpdateRole {
                name: self.name.clone(),
                description: self.description.clone(),
                max_session_duration: self.max_session_duration,
            });
        }
        diff_tagged(cx, self, h, lr.owner.as_deref(), &mut change);
        if self.instance_profile != h.instance_profile {
            change.attr(AttrChange::changed(
                "instance_profile",
                h.instance_profile,
                self.instance_profile,
            ));
            if self.instance_profile {
                self.add_instance_profile(cx);
            } else {
                cx.step(Op::RemoveRoleFromInstanceProfile {
                    role: self.name.clone(),
                    instance_profile: self.name.clone(),
                });
                cx.step(Op::DeleteInstanceProfile {
                    name: self.name.clone(),
                });
            }
        }
        let trust = doc_change(cx, "trust policy".into(), &h.trust, &self.trust);
        if trust.is_some() || !h.broken_principals.is_empty() {
            change.documents.extend(trust);
            cx.step(Op::UpdateAssumeRolePolicy {
                role: self.name.clone(),
                document: self.trust.json(),
            });
        }
        diff_policies(cx, self, self.policies(), h.policies(), &mut change);
        cx.update(adopting, change);
    }

    fn delete(&self, _lr: &LiveResource, cx: &mut DiffCx) {
        let mut change = cx.deletion(&self.name, &self.path);
        change
            .documents
            .push(DocChange::removed("trust policy", self.trust.value()));
        show_removed(self.policies(), &mut change);
        cx.change(change);
        self.teardown(cx, false);
    }
}

impl Role {
    /// Plans the role's creation and returns the change that shows it.
    fn creation(&self, cx: &mut DiffCx, action: Action) -> Change {
        let mut change = cx.new_change(&self.name, action);
        change.attr(AttrChange::added("path", self.path.as_str()));
        change.attr(AttrChange::added("description", self.description.as_str()));
        change.attr(AttrChange::added(
            "max_session_duration",
            self.max_session_duration,
        ));
        if let Some(b) = &self.permissions_boundary {
            change.attr(AttrChange::added("permissions_boundary", b.as_str()));
        }
        tag_attrs(&self.tags, &mut change);
        change
            .documents
            .push(DocChange::added("trust policy", self.trust.value()));
        cx.step(Op::CreateRole {
            name: self.name.clone(),
            path: self.path.clone(),
            description: self.description.clone(),
            max_session_duration: self.max_session_duration,
            trust: self.trust.json(),
            permissions_boundary: self.permissions_boundary.clone(),
            tags: with_owner_tag(&self.tags, cx.stack),
        });
        diff_policies(cx, self, self.policies(), Policies::NONE, &mut change);
        if self.instance_profile {
            change.attr(AttrChange::added("instance_profile", true));
            self.add_instance_profile(cx);
        }
        change
    }

    /// An instance profile named after the role, holding it (EC2 instances use the role
    /// through it). Creating it again when it exists is not an error.
    fn add_instance_profile(&self, cx: &mut DiffCx) {
        cx.step(Op::CreateInstanceProfile {
            name: self.name.clone(),
            path: self.path.clone(),
            tags: owner_tags(cx.stack),
        });
        cx.step(Op::AddRoleToInstanceProfile {
            role: self.name.clone(),
            instance_profile: self.name.clone(),
        });
    }

    /// Empties the live role (policies, instance profiles) and deletes it; before anything
    /// is created when the role is being replaced.
    fn teardown(&self, cx: &mut DiffCx, replacing: bool) {
        let role = || self.name.clone();
        let mut ops = policy_teardown(self);
        for ip in &self.instance_profiles {
            ops.push(Op::RemoveRoleFromInstanceProfile {
                role: role(),
                instance_profile: ip.clone(),
            });
        }
        ops.push(Op::DeleteRole { name: role() });
        if self.instance_profile {
            ops.push(Op::DeleteInstanceProfile { name: role() });
        }
        for op in ops {
            if replacing {
                cx.step_before_creates(op);
            } else {
                cx.step(op);
            }
        }
    }

    /// The role as GetAccountAuthorizationDetails returns it; `attrs` (description, maximum
    /// session duration) come from ListRoles, which GetAccountAuthorizationDetails omits.
    pub fn from_live(
        r: &aws_sdk_iam::types::RoleDetail,
        attrs: Option<&(String, i32)>,
        ctx: &AccountContext,
    ) -> Result<LiveResource, UnreadableDocument> {
        let name = r.role_name().unwrap_or_default().to_string();
        let trust = PolicyDocument::from_live(
            r.assume_role_policy_document().unwrap_or("{}"),
            &ctx.partition,
        )
        .map_err(UnreadableDocument::new(Kind::Role, &name, "trust policy"))?;
        let inline = live::inline(
            Kind::Role,
            &name,
            r.role_policy_list(),
            &ctx.partition,
            |_| false,
        )?;
        let mut tags = live::tags(r.tags());
        let owner = take_owner_tag(&mut tags);
        let (description, max_session_duration) = attrs
            .cloned()
            .unwrap_or_else(|| (String::new(), DEFAULT_MAX_SESSION));
        let instance_profiles: Vec<String> = r
            .instance_profile_list()
            .iter()
            .map(|p| p.instance_profile_name().to_string())
            .collect();
        let instance_profile_arn = r
            .instance_profile_list()
            .iter()
            .find(|p| p.instance_profile_name().eq_ignore_ascii_case(&name))
            .map(|p| p.arn().to_string());
        let role = Role {
            path: r.path().unwrap_or("/").to_string(),
            description,
            max_session_duration,
            permissions_boundary: r
                .permissions_boundary()
                .and_then(|b| b.permissions_boundary_arn().map(str::to_string)),
            tags,
            broken_principals: trust.inspect(unique_id_principals),
            trust,
            inline,
            managed: live::managed(r.attached_managed_policies()),
            instance_profile: instance_profile_arn.is_some(),
            instance_profile_arn,
            instance_profiles,
            name,
        };
        Ok(LiveResource {
            arn: r.arn().unwrap_or_default().to_string(),
            unique_id: r.role_id().unwrap_or_default().to_string(),
            resource: Resource::Role(role),
            owner,
        })
    }
}

principal_ops!(
    Role,
    role,
    PutRolePolicy,
    DeleteRolePolicy,
    AttachRolePolicy,
    DetachRolePolicy
);
tagged_ops!(
    Role,
    role,
    TagRole,
    UntagRole,
    PutRolePermissionsBoundary,
    DeleteRolePermissionsBoundary
);

/// `AROA...`/`AIDA...` principals: IAM shows these when the role or user a trust policy
/// named has been deleted. Recreating the name does not restore the trust.
pub fn unique_id_principals(doc: &serde_json::Value) -> Vec<String> {
    let mut out = Vec::new();
    let stmts = match doc.get("Statement") {
        Some(serde_json::Value::Array(a)) => a.clone(),
        Some(v) => vec![v.clone()],
        None => vec![],
    };
    for s in stmts {
        if let Some(aws) = s.get("Principal").and_then(|p| p.get("AWS")) {
            let ids: Vec<&serde_json::Value> = match aws {
                serde_json::Value::Array(a) => a.iter().collect(),
                v => vec![v],
            };
            for id in ids.into_iter().filter_map(|v| v.as_str()) {
                if (id.starts_with("AROA") || id.starts_with("AIDA")) && id.len() >= 16 {
                    out.push(id.to_string());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_unique_id_principals() {
        let doc = serde_json::json!({"Statement":[{"Principal":{"AWS":["AROAABCDEFGHIJKLMNOP","arn:aws:iam::1:root"]}}]});
        assert_eq!(
            unique_id_principals(&doc),
            vec!["AROAABCDEFGHIJKLMNOP".to_string()]
        );
    }

    #[test]
    fn live_role_separates_owner_and_reads_list_roles_attributes() {
        use aws_sdk_iam::types::{RoleDetail, Tag};
        let ctx = AccountContext {
            alias: "default".into(),
            account_id: "000000000000".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
        };
        let detail = RoleDetail::builder()
            .role_name("ably")
            .path("/integrations/")
            .arn("arn:aws:iam::000000000000:role/integrations/ably")
            .assume_role_policy_document(
                "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D",
            )
            .tags(
                Tag::builder()
                    .key("iamplan:stack")
                    .value("demo")
                    .build()
                    .unwrap(),
            )
            .tags(Tag::builder().key("team").value("data").build().unwrap())
            .build();
        let attrs = ("desc".to_string(), 7200);
        let lr = Role::from_live(&detail, Some(&attrs), &ctx).unwrap();
        assert_eq!(lr.owner.as_deref(), Some("demo"));
        let Resource::Role(r) = lr.resource else {
            panic!("a role")
        };
        assert_eq!(r.tags.len(), 1);
        assert_eq!(
            (r.description.as_str(), r.max_session_duration),
            ("desc", 7200)
        );
        assert_eq!(r.trust.value()["Version"], "2012-10-17");
    }
}
