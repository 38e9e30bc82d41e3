//! Users: `[user.NAME]`, with group memberships and an access-key rule (`access_key.rs`).
//! Deleting a user follows IAM's order: keys, policies, memberships, then the user.

use super::access_key::{self, AccessKeysSpec};
use super::principal::{
    Policies, Principal, diff_path, diff_policies, diff_tagged, live, policy_teardown,
    principal_ops, show_removed, tag_attrs, tagged_ops,
};
use super::{IamKind, UnreadableDocument, resource_variant, section};
use crate::diff::DiffCx;
use crate::keys::{KeyRule, LiveKey};
use crate::model::{AccountContext, Kind, LiveResource, Resource};
use crate::ops::Op;
use crate::ownership::{KeyHistory, take_owner_tag, with_owner_tag};
use crate::plan::{Action, AttrChange};
use crate::policy::PolicyDocument;
use crate::spec::{BuildCx, DocumentSpec, SpecError, Str, valid_name};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use toml::Spanned;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct User {
    pub name: String,
    pub path: String,
    pub permissions_boundary: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub inline: BTreeMap<String, PolicyDocument>,
    #[serde(rename = "managed_policies")]
    pub managed: BTreeSet<String>,
    /// Groups the user is a member of (by name).
    pub groups: BTreeSet<String>,
    /// Desired only: the access-key rule.
    #[serde(rename = "access_keys", skip_serializing_if = "Option::is_none")]
    pub keys: Option<KeyRule>,
    /// Live only: the access keys (read only for users the plan manages; the JSON plan
    /// shows them as access_key changes).
    #[serde(skip)]
    pub access_keys: Vec<LiveKey>,
    /// Live only: what iamplan recorded on the user about its keys.
    #[serde(skip)]
    pub key_history: KeyHistory,
}

/// `[user.NAME]`.
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
    /// Acknowledges that a change may widen this resource's access (`plan --deny-widening`).
    #[serde(default)]
    pub allow_widening: bool,
    /// Lint findings not to report for this resource: code -> why.
    #[serde(default)]
    pub lint_ignore: BTreeMap<Spanned<String>, Str>,
}

section!(UserSpec);

impl IamKind for User {
    const KIND: Kind = Kind::User;
    const MAX_NAME_LEN: usize = 64;
    type Section = UserSpec;

    fn build(cx: &BuildCx, u: &UserSpec) -> Result<Self, SpecError> {
        let groups = cx.keep(
            u.groups
                .iter()
                .map(|g| {
                    let v = cx.text(g)?;
                    if valid_name(&v, 128) {
                        Ok(v)
                    } else {
                        Err(cx.err(g.span(), format!("invalid group name \"{v}\"")))
                    }
                })
                .collect::<Result<BTreeSet<String>, SpecError>>(),
        );
        let keys = cx.keep(
            u.access_keys
                .as_ref()
                .map(|k| {
                    let rule = access_key::build(cx.at, cx.name, k)?;
                    if rule.count > 0 {
                        access_key::check_target(cx, k, &rule.sink)?;
                    }
                    Ok(rule)
                })
                .transpose(),
        );
        let path = cx.keep(cx.path(&u.path));
        let boundary = cx.keep(cx.opt_policy_ref(&u.permissions_boundary));
        let tags = cx.keep(cx.tags(&u.tags));
        let inline = cx.keep(cx.inline_within(&u.inline, 2048, "user"));
        let managed = cx.keep(cx.managed(&u.managed_policies));
        Ok(User {
            name: cx.name.get_ref().clone(),
            path: path?,
            permissions_boundary: boundary?,
            tags: tags?,
            inline: inline?,
            managed: managed?,
            groups: groups?,
            keys: keys?,
            access_keys: vec![],
            key_history: KeyHistory::default(),
        })
    }

    resource_variant!(User);

    fn create(&self, cx: &mut DiffCx) {
        cx.step(Op::CreateUser {
            name: self.name.clone(),
            path: self.path.clone(),
            permissions_boundary: self.permissions_boundary.clone(),
            tags: with_owner_tag(&self.tags, cx.stack),
        });
        let mut change = cx.new_change(&self.name, Action::Create);
        change.attr(AttrChange::added("path", self.path.as_str()));
        if let Some(b) = &self.permissions_boundary {
            change.attr(AttrChange::added("permissions_boundary", b.as_str()));
        }
        tag_attrs(&self.tags, &mut change);
        diff_policies(cx, self, self.policies(), Policies::NONE, &mut change);
        for g in &self.groups {
            change.attr(AttrChange::added("group", g.as_str()));
            cx.step(self.join(g));
        }
        let (keys, notes) = access_key::plan(cx, self, None);
        change.keys = keys;
        change.notes = notes;
        cx.change(change);
    }

    fn update(&self, h: &User, lr: &LiveResource, cx: &mut DiffCx, adopting: bool) {
        let mut change = cx.new_change(&self.name, Action::Update);
        diff_path(cx, &self.path, &h.path, &mut change, |new_path| {
            Op::UpdateUser {
                name: self.name.clone(),
                new_path,
            }
        });
        diff_tagged(cx, self, h, lr.owner.as_deref(), &mut change);
        diff_policies(cx, self, self.policies(), h.policies(), &mut change);
        for g in self.groups.difference(&h.groups) {
            change.attr(AttrChange::added("group", g.as_str()));
            cx.step(self.join(g));
        }
        for g in h.groups.difference(&self.groups) {
            change.attr(AttrChange::removed("group", g.as_str()));
            cx.step(self.leave(g));
        }
        let (keys, notes) = access_key::plan(cx, self, Some(h));
        change.keys = keys;
        change.notes = notes;
        cx.update(adopting, change);
    }

    /// Removes, in the order IAM requires, what a user holds, then the user (whose login
    /// profile and MFA devices `DeleteUser` removes first).
    fn delete(&self, _lr: &LiveResource, cx: &mut DiffCx) {
        let mut change = cx.deletion(&self.name, &self.path);
        for k in &self.access_keys {
            change.attr(AttrChange::removed("access_key", k.id.as_str()));
            cx.step(Op::DeleteAccessKey {
                user: self.name.clone(),
                id: k.id.clone(),
                untag: false,
            });
        }
        for op in policy_teardown(self) {
            cx.step(op);
        }
        for g in &self.groups {
            change.attr(AttrChange::removed("group", g.as_str()));
            cx.step(self.leave(g));
        }
        cx.step(Op::DeleteUser {
            name: self.name.clone(),
        });
        show_removed(self.policies(), &mut change);
        cx.change(change);
    }
}

impl User {
    fn join(&self, group: &str) -> Op {
        Op::AddUserToGroup {
            user: self.name.clone(),
            group: group.into(),
        }
    }

    fn leave(&self, group: &str) -> Op {
        Op::RemoveUserFromGroup {
            user: self.name.clone(),
            group: group.into(),
        }
    }

    /// The user as GetAccountAuthorizationDetails returns it, without its access keys
    /// (IAM lists those per user; the reader adds them for the users the plan manages).
    pub fn from_live(
        u: &aws_sdk_iam::types::UserDetail,
        ctx: &AccountContext,
    ) -> Result<LiveResource, UnreadableDocument> {
        let name = u.user_name().unwrap_or_default().to_string();
        let mut tags = live::tags(u.tags());
        let owner = take_owner_tag(&mut tags);
        let key_history = KeyHistory::take_from(&mut tags);
        let inline = live::inline(
            Kind::User,
            &name,
            u.user_policy_list(),
            &ctx.partition,
            |_| false,
        )?;
        Ok(LiveResource {
            arn: u.arn().unwrap_or_default().to_string(),
            unique_id: u.user_id().unwrap_or_default().to_string(),
            resource: Resource::User(User {
                path: u.path().unwrap_or("/").to_string(),
                permissions_boundary: u
                    .permissions_boundary()
                    .and_then(|b| b.permissions_boundary_arn().map(str::to_string)),
                tags,
                inline,
                managed: live::managed(u.attached_managed_policies()),
                groups: u.group_list().iter().cloned().collect(),
                keys: None,
                access_keys: vec![],
                key_history,
                name,
            }),
            owner,
        })
    }
}

principal_ops!(
    User,
    user,
    PutUserPolicy,
    DeleteUserPolicy,
    AttachUserPolicy,
    DetachUserPolicy
);
tagged_ops!(
    User,
    user,
    TagUser,
    UntagUser,
    PutUserPermissionsBoundary,
    DeleteUserPermissionsBoundary
);
