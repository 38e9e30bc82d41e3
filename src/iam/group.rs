//! Groups: `[group.NAME]`. IAM groups cannot be tagged, so ownership is an inline marker
//! policy (`ownership::group_marker_name`), written in the step that creates the group and
//! removed in the step that deletes it, so that no apply, however interrupted, leaves an
//! unmarked group behind.

use super::principal::{
    Policies, Principal, diff_path, diff_policies, live, policy_teardown, principal_ops,
    show_removed,
};
use super::{IamKind, UnreadableDocument, resource_variant, section};
use crate::diff::DiffCx;
use crate::model::{AccountContext, Kind, LiveResource, Resource};
use crate::ops::Op;
use crate::ownership::{
    GROUP_MARKER_PREFIX, group_marker_document, group_marker_name, group_marker_stack,
};
use crate::plan::{Action, AttrChange};
use crate::policy::PolicyDocument;
use crate::spec::{BuildCx, DocumentSpec, SpecError, Str};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub path: String,
    pub inline: BTreeMap<String, PolicyDocument>,
    #[serde(rename = "managed_policies")]
    pub managed: BTreeSet<String>,
}

/// `[group.NAME]`.
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
    /// Acknowledges that a change may widen this resource's access (`plan --deny-widening`).
    #[serde(default)]
    pub allow_widening: bool,
    /// Lint findings not to report for this resource: code -> why.
    #[serde(default)]
    pub lint_ignore: BTreeMap<Spanned<String>, Str>,
}

section!(GroupSpec);

impl IamKind for Group {
    const KIND: Kind = Kind::Group;
    const MAX_NAME_LEN: usize = 128;
    type Section = GroupSpec;

    fn build(cx: &BuildCx, g: &GroupSpec) -> Result<Self, SpecError> {
        if let Some((n, _)) = g
            .inline
            .iter()
            .find(|(n, _)| n.get_ref().starts_with(GROUP_MARKER_PREFIX))
        {
            return Err(cx.err(
                n.span(),
                format!("inline policy names starting with `{GROUP_MARKER_PREFIX}` are iamplan's ownership markers"),
            ));
        }
        let path = cx.keep(cx.path(&g.path));
        let inline = cx.keep(cx.inline_within(&g.inline, 5120, "group"));
        let managed = cx.keep(cx.managed(&g.managed_policies));
        Ok(Group {
            name: cx.name.get_ref().clone(),
            path: path?,
            inline: inline?,
            managed: managed?,
        })
    }

    resource_variant!(Group);

    fn create(&self, cx: &mut DiffCx) {
        cx.step(Op::CreateGroup {
            name: self.name.clone(),
            path: self.path.clone(),
            stack: cx.stack.to_string(),
        });
        let mut change = cx.new_change(&self.name, Action::Create);
        change.attr(AttrChange::added("path", self.path.as_str()));
        diff_policies(cx, self, self.policies(), Policies::NONE, &mut change);
        cx.change(change);
    }

    fn update(&self, h: &Group, _lr: &LiveResource, cx: &mut DiffCx, adopting: bool) {
        let mut change = cx.new_change(&self.name, Action::Update);
        diff_path(cx, &self.path, &h.path, &mut change, |new_path| {
            Op::UpdateGroup {
                name: self.name.clone(),
                new_path,
            }
        });
        if adopting {
            self.mark(cx);
        }
        diff_policies(cx, self, self.policies(), h.policies(), &mut change);
        cx.update(adopting, change);
    }

    /// Members leave, policies go (the marker with them), then the group.
    fn delete(&self, _lr: &LiveResource, cx: &mut DiffCx) {
        let mut change = cx.deletion(&self.name, &self.path);
        let members: Vec<(String, Option<String>)> = cx
            .live
            .resources
            .iter()
            .filter(|(a, _)| a.account == cx.addr.account)
            .filter_map(|(_, l)| match &l.resource {
                Resource::User(u)
                    if u.groups.iter().any(|g| g.eq_ignore_ascii_case(&self.name)) =>
                {
                    Some((u.name.clone(), l.owner.clone()))
                }
                _ => None,
            })
            .collect();
        for (m, owner) in members {
            // IAM removes the members with the group: a user another stack (or nobody)
            // manages silently loses the group's access, so the plan says so.
            match owner.as_deref() {
                Some(o) if o == cx.stack => {}
                Some(o) => change.notes.push(format!(
                    "user \"{m}\" of stack \"{o}\" is a member: deleting the group removes it, and the access the group gave it"
                )),
                None => change.notes.push(format!(
                    "user \"{m}\" (not managed by iamplan) is a member: deleting the group removes it, and the access the group gave it"
                )),
            }
            change.attr(AttrChange::removed("member", m.as_str()));
            cx.step(Op::RemoveUserFromGroup {
                user: m,
                group: self.name.clone(),
            });
        }
        for op in policy_teardown(self) {
            cx.step(op);
        }
        show_removed(self.policies(), &mut change);
        // The marker goes with the group itself (one step).
        cx.step(Op::DeleteGroup {
            name: self.name.clone(),
            stack: cx.stack.to_string(),
        });
        cx.change(change);
    }
}

impl Group {
    /// The ownership marker: an inline policy that grants and denies nothing real.
    fn mark(&self, cx: &mut DiffCx) {
        let document = (&group_marker_document()).into();
        cx.step(self.put_policy(&group_marker_name(cx.stack), document));
    }

    /// The group as GetAccountAuthorizationDetails returns it; the marker policy names the
    /// owner and is not one of the group's own policies.
    pub fn from_live(
        g: &aws_sdk_iam::types::GroupDetail,
        ctx: &AccountContext,
    ) -> Result<LiveResource, UnreadableDocument> {
        let name = g.group_name().unwrap_or_default().to_string();
        let policies = g.group_policy_list();
        let owner = policies
            .iter()
            .find_map(|ip| group_marker_stack(ip.policy_name().unwrap_or_default()))
            .map(str::to_string);
        let is_marker = |n: &str| group_marker_stack(n).is_some();
        let inline = live::inline(Kind::Group, &name, policies, &ctx.partition, is_marker)?;
        Ok(LiveResource {
            arn: g.arn().unwrap_or_default().to_string(),
            unique_id: g.group_id().unwrap_or_default().to_string(),
            resource: Resource::Group(Group {
                path: g.path().unwrap_or("/").to_string(),
                inline,
                managed: live::managed(g.attached_managed_policies()),
                name,
            }),
            owner,
        })
    }
}

principal_ops!(
    Group,
    group,
    PutGroupPolicy,
    DeleteGroupPolicy,
    AttachGroupPolicy,
    DetachGroupPolicy
);
