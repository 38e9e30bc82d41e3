//! The IAM write operations a plan is made of, and the phase each runs in. Pure data:
//! saved in plan files, run by `aws::Account::run`.

use crate::keys::Sink;
// Policy documents travel as compact JSON, sent as they are.
use crate::policy::Json;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "PascalCase")]
pub enum Op {
    CreatePolicy {
        name: String,
        path: String,
        description: String,
        document: Json,
        tags: BTreeMap<String, String>,
    },
    /// Creates a version and makes it the default.
    CreatePolicyVersion {
        arn: String,
        document: Json,
    },
    DeletePolicyVersion {
        arn: String,
        version_id: String,
    },
    /// Tags a policy: on adoption, the ownership tag (its description cannot change).
    TagPolicy {
        arn: String,
        tags: BTreeMap<String, String>,
    },
    DeletePolicy {
        arn: String,
    },
    CreateRole {
        name: String,
        path: String,
        description: String,
        max_session_duration: i32,
        trust: Json,
        permissions_boundary: Option<String>,
        tags: BTreeMap<String, String>,
    },
    UpdateRole {
        name: String,
        description: String,
        max_session_duration: i32,
    },
    UpdateAssumeRolePolicy {
        role: String,
        document: Json,
    },
    PutRolePermissionsBoundary {
        role: String,
        arn: String,
    },
    DeleteRolePermissionsBoundary {
        role: String,
    },
    TagRole {
        role: String,
        tags: BTreeMap<String, String>,
    },
    UntagRole {
        role: String,
        keys: Vec<String>,
    },
    PutRolePolicy {
        role: String,
        name: String,
        document: Json,
    },
    DeleteRolePolicy {
        role: String,
        name: String,
    },
    AttachRolePolicy {
        role: String,
        arn: String,
    },
    DetachRolePolicy {
        role: String,
        arn: String,
    },
    RemoveRoleFromInstanceProfile {
        role: String,
        instance_profile: String,
    },
    DeleteRole {
        name: String,
    },
    CreateUser {
        name: String,
        path: String,
        permissions_boundary: Option<String>,
        tags: BTreeMap<String, String>,
    },
    /// Moves a user to another path (users, unlike roles, can move).
    UpdateUser {
        name: String,
        new_path: String,
    },
    TagUser {
        user: String,
        tags: BTreeMap<String, String>,
    },
    UntagUser {
        user: String,
        keys: Vec<String>,
    },
    PutUserPermissionsBoundary {
        user: String,
        arn: String,
    },
    DeleteUserPermissionsBoundary {
        user: String,
    },
    PutUserPolicy {
        user: String,
        name: String,
        document: Json,
    },
    DeleteUserPolicy {
        user: String,
        name: String,
    },
    AttachUserPolicy {
        user: String,
        arn: String,
    },
    DetachUserPolicy {
        user: String,
        arn: String,
    },
    AddUserToGroup {
        user: String,
        group: String,
    },
    RemoveUserFromGroup {
        user: String,
        group: String,
    },
    /// Creates a key and hands its secret to the sink; if the sink fails, the key is
    /// deleted again. The secret itself is never part of a plan.
    CreateAccessKey {
        user: String,
        sink: Sink,
        /// Under `--now`: the simulated issue time to record on the user.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        issued_at: Option<i64>,
        /// The user's keys when the plan was made: after an answer that was lost, any
        /// other key is one this step made and nobody holds, and is deleted.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        known: Vec<String>,
    },
    /// Deactivates a key and records when, in a user tag (`at`: epoch seconds).
    DeactivateAccessKey {
        user: String,
        id: String,
        at: i64,
    },
    DeleteAccessKey {
        user: String,
        id: String,
        /// Also remove iamplan's tags about the key from the user.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        untag: bool,
    },
    /// Deletes a user after its login profile and MFA devices.
    DeleteUser {
        name: String,
    },
    CreateInstanceProfile {
        name: String,
        path: String,
        tags: BTreeMap<String, String>,
    },
    AddRoleToInstanceProfile {
        role: String,
        instance_profile: String,
    },
    DeleteInstanceProfile {
        name: String,
    },
    /// Creates a group and, in the same step, its ownership marker (groups cannot be
    /// tagged): an interrupted apply must not leave an unmarked group that the next plan
    /// would take for someone else's.
    CreateGroup {
        name: String,
        path: String,
        stack: String,
    },
    UpdateGroup {
        name: String,
        new_path: String,
    },
    PutGroupPolicy {
        group: String,
        name: String,
        document: Json,
    },
    DeleteGroupPolicy {
        group: String,
        name: String,
    },
    AttachGroupPolicy {
        group: String,
        arn: String,
    },
    DetachGroupPolicy {
        group: String,
        arn: String,
    },
    /// Deletes a group's ownership marker and then the group, in one step: the marker
    /// must not go while the group stays (the next plan would no longer know it).
    DeleteGroup {
        name: String,
        stack: String,
    },
}

/// Steps run phase by phase; steps within a phase are independent and run concurrently.
/// The phases encode IAM's dependencies: a policy exists before it is attached, a principal
/// is detached and emptied before it is deleted, a policy is detached before it is deleted.
/// A step's phase follows from its operation (`Op::phase`), except for the teardown that
/// must happen before anything is created (`Step::before_creates`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Room for what is created next (surplus policy versions and access keys), and the
    /// attachments of roles about to be replaced.
    MakeRoom,
    /// Roles being replaced are deleted before their successors are created.
    DeleteReplaced,
    CreatePolicies,
    UpdatePolicies,
    /// Roles, users, groups and instance profiles.
    CreatePrincipals,
    /// What is set on a principal: trust, tags, boundaries, inline policies, attachments,
    /// group memberships, new access keys.
    ConfigurePrincipals,
    /// Detachments, removals and key deactivations, once new grants are in place.
    Detach,
    DeletePrincipals,
    DeletePolicyVersions,
    DeletePolicies,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub account: String,
    /// The resource the step belongs to, as the plan shows it: `role.ably-integration`.
    #[serde(default)]
    pub resource: String,
    pub phase: Phase,
    #[serde(flatten)]
    pub op: Op,
}

impl Step {
    /// A step in its operation's own phase.
    pub fn new(account: &str, resource: &str, op: Op) -> Step {
        Step {
            account: account.to_string(),
            resource: resource.to_string(),
            phase: op.phase(),
            op,
        }
    }

    /// A step that must run before anything is created: making room, or tearing down a
    /// role that is being replaced.
    pub fn before_creates(account: &str, resource: &str, op: Op) -> Step {
        let phase = match op.phase() {
            Phase::DeletePrincipals => Phase::DeleteReplaced,
            _ => Phase::MakeRoom,
        };
        Step {
            phase,
            ..Step::new(account, resource, op)
        }
    }
}

impl Op {
    /// Where the operation runs in a plan's order.
    pub fn phase(&self) -> Phase {
        use Op::*;
        match self {
            CreatePolicy { .. } => Phase::CreatePolicies,
            CreatePolicyVersion { .. } | TagPolicy { .. } => Phase::UpdatePolicies,
            CreateRole { .. }
            | CreateUser { .. }
            | CreateGroup { .. }
            | CreateInstanceProfile { .. } => Phase::CreatePrincipals,
            UpdateRole { .. }
            | UpdateAssumeRolePolicy { .. }
            | PutRolePermissionsBoundary { .. }
            | DeleteRolePermissionsBoundary { .. }
            | TagRole { .. }
            | UntagRole { .. }
            | PutRolePolicy { .. }
            | AttachRolePolicy { .. }
            | AddRoleToInstanceProfile { .. }
            | UpdateUser { .. }
            | TagUser { .. }
            | UntagUser { .. }
            | PutUserPermissionsBoundary { .. }
            | DeleteUserPermissionsBoundary { .. }
            | PutUserPolicy { .. }
            | AttachUserPolicy { .. }
            | AddUserToGroup { .. }
            | CreateAccessKey { .. }
            | UpdateGroup { .. }
            | PutGroupPolicy { .. }
            | AttachGroupPolicy { .. } => Phase::ConfigurePrincipals,
            DeleteRolePolicy { .. }
            | DetachRolePolicy { .. }
            | RemoveRoleFromInstanceProfile { .. }
            | DeleteUserPolicy { .. }
            | DetachUserPolicy { .. }
            | RemoveUserFromGroup { .. }
            | DeactivateAccessKey { .. }
            | DeleteAccessKey { .. }
            | DeleteGroupPolicy { .. }
            | DetachGroupPolicy { .. } => Phase::Detach,
            DeleteRole { .. }
            | DeleteUser { .. }
            | DeleteGroup { .. }
            | DeleteInstanceProfile { .. } => Phase::DeletePrincipals,
            DeletePolicyVersion { .. } => Phase::DeletePolicyVersions,
            DeletePolicy { .. } => Phase::DeletePolicies,
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Op::CreatePolicy { .. } => "CreatePolicy",
            Op::CreatePolicyVersion { .. } => "CreatePolicyVersion",
            Op::DeletePolicyVersion { .. } => "DeletePolicyVersion",
            Op::TagPolicy { .. } => "TagPolicy",
            Op::DeletePolicy { .. } => "DeletePolicy",
            Op::CreateRole { .. } => "CreateRole",
            Op::UpdateRole { .. } => "UpdateRole",
            Op::UpdateAssumeRolePolicy { .. } => "UpdateAssumeRolePolicy",
            Op::PutRolePermissionsBoundary { .. } => "PutRolePermissionsBoundary",
            Op::DeleteRolePermissionsBoundary { .. } => "DeleteRolePermissionsBoundary",
            Op::TagRole { .. } => "TagRole",
            Op::UntagRole { .. } => "UntagRole",
            Op::PutRolePolicy { .. } => "PutRolePolicy",
            Op::DeleteRolePolicy { .. } => "DeleteRolePolicy",
            Op::AttachRolePolicy { .. } => "AttachRolePolicy",
            Op::DetachRolePolicy { .. } => "DetachRolePolicy",
            Op::RemoveRoleFromInstanceProfile { .. } => "RemoveRoleFromInstanceProfile",
            Op::DeleteRole { .. } => "DeleteRole",
            Op::CreateUser { .. } => "CreateUser",
            Op::UpdateUser { .. } => "UpdateUser",
            Op::TagUser { .. } => "TagUser",
            Op::UntagUser { .. } => "UntagUser",
            Op::PutUserPermissionsBoundary { .. } => "PutUserPermissionsBoundary",
            Op::DeleteUserPermissionsBoundary { .. } => "DeleteUserPermissionsBoundary",
            Op::PutUserPolicy { .. } => "PutUserPolicy",
            Op::DeleteUserPolicy { .. } => "DeleteUserPolicy",
            Op::AttachUserPolicy { .. } => "AttachUserPolicy",
            Op::DetachUserPolicy { .. } => "DetachUserPolicy",
            Op::AddUserToGroup { .. } => "AddUserToGroup",
            Op::RemoveUserFromGroup { .. } => "RemoveUserFromGroup",
            Op::CreateAccessKey { .. } => "CreateAccessKey",
            Op::DeactivateAccessKey { .. } => "UpdateAccessKey",
            Op::DeleteAccessKey { .. } => "DeleteAccessKey",
            Op::DeleteUser { .. } => "DeleteUser",
            Op::CreateInstanceProfile { .. } => "CreateInstanceProfile",
            Op::AddRoleToInstanceProfile { .. } => "AddRoleToInstanceProfile",
            Op::DeleteInstanceProfile { .. } => "DeleteInstanceProfile",
            Op::CreateGroup { .. } => "CreateGroup",
            Op::UpdateGroup { .. } => "UpdateGroup",
            Op::PutGroupPolicy { .. } => "PutGroupPolicy",
            Op::DeleteGroupPolicy { .. } => "DeleteGroupPolicy",
            Op::AttachGroupPolicy { .. } => "AttachGroupPolicy",
            Op::DetachGroupPolicy { .. } => "DetachGroupPolicy",
            Op::DeleteGroup { .. } => "DeleteGroup",
        }
    }

    /// The resource the operation acts on, for progress and error messages.
    pub fn target(&self) -> String {
        match self {
            Op::CreatePolicy { name, .. } => format!("policy {name}"),
            Op::CreatePolicyVersion { arn, .. }
            | Op::DeletePolicy { arn }
            | Op::TagPolicy { arn, .. } => {
                format!("policy {arn}")
            }
            Op::DeletePolicyVersion { arn, version_id } => {
                format!("policy {arn} version {version_id}")
            }
            Op::CreateRole { name, .. } | Op::UpdateRole { name, .. } | Op::DeleteRole { name } => {
                format!("role {name}")
            }
            Op::UpdateAssumeRolePolicy { role, .. }
            | Op::PutRolePermissionsBoundary { role, .. }
            | Op::DeleteRolePermissionsBoundary { role }
            | Op::TagRole { role, .. }
            | Op::UntagRole { role, .. } => format!("role {role}"),
            Op::PutRolePolicy { role, name, .. } | Op::DeleteRolePolicy { role, name } => {
                format!("role {role} inline policy {name}")
            }
            Op::AttachRolePolicy { role, arn } | Op::DetachRolePolicy { role, arn } => {
                format!("role {role} policy {arn}")
            }
            Op::RemoveRoleFromInstanceProfile {
                role,
                instance_profile,
            } => {
                format!("role {role} instance profile {instance_profile}")
            }
            Op::CreateUser { name, .. } | Op::UpdateUser { name, .. } | Op::DeleteUser { name } => {
                format!("user {name}")
            }
            Op::TagUser { user, .. }
            | Op::UntagUser { user, .. }
            | Op::PutUserPermissionsBoundary { user, .. }
            | Op::DeleteUserPermissionsBoundary { user } => format!("user {user}"),
            Op::PutUserPolicy { user, name, .. } | Op::DeleteUserPolicy { user, name } => {
                format!("user {user} inline policy {name}")
            }
            Op::AttachUserPolicy { user, arn } | Op::DetachUserPolicy { user, arn } => {
                format!("user {user} policy {arn}")
            }
            Op::AddUserToGroup { user, group } | Op::RemoveUserFromGroup { user, group } => {
                format!("user {user} group {group}")
            }
            Op::CreateAccessKey { user, sink, .. } => {
                format!("user {user} new access key -> {sink}")
            }
            Op::DeactivateAccessKey { user, id, .. } => {
                format!("user {user} access key {id} -> Inactive")
            }
            Op::DeleteAccessKey { user, id, .. } => format!("user {user} access key {id}"),
            Op::CreateGroup { name, .. }
            | Op::UpdateGroup { name, .. }
            | Op::DeleteGroup { name, .. } => format!("group {name}"),
            Op::CreateInstanceProfile { name, .. } | Op::DeleteInstanceProfile { name } => {
                format!("instance profile {name}")
            }
            Op::AddRoleToInstanceProfile {
                role,
                instance_profile,
            } => format!("role {role} instance profile {instance_profile}"),
            Op::PutGroupPolicy { group, name, .. } | Op::DeleteGroupPolicy { group, name } => {
                format!("group {group} inline policy {name}")
            }
            Op::AttachGroupPolicy { group, arn } | Op::DetachGroupPolicy { group, arn } => {
                format!("group {group} policy {arn}")
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name(), self.target())
    }
}
