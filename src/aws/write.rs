//! Runs one plan operation against IAM, with retries.

use super::{Account, error_text, retry};
use crate::ops::Op;
use aws_sdk_iam::types::Tag;
use std::collections::BTreeMap;

fn tags(map: &BTreeMap<String, String>) -> Option<Vec<Tag>> {
    if map.is_empty() {
        return None;
    }
    Some(
        map.iter()
            .map(|(k, v)| {
                Tag::builder()
                    .key(k)
                    .value(v)
                    .build()
                    .expect("key and value are set")
            })
            .collect(),
    )
}

/// Maps a finished call to `Result<(), message>`, treating "already in the wanted state"
/// answers as success so that a re-run after a half-finished apply converges.
macro_rules! call {
    ($acct:expr, $name:expr, $fut:expr, ok_if: [$($code:literal),*]) => {{
        $acct.stats.count($name);
        match retry($name, || $fut).await {
            Ok(_) => Ok(()),
            Err(e) => {
                use aws_sdk_iam::error::ProvideErrorMetadata;
                let code = e.code().map(str::to_string);
                match code.as_deref() {
                    $(Some($code) => {
                        tracing::info!("{}: {} (already done)", $name, error_text(&e));
                        Ok(())
                    })*
                    _ => Err(error_text(&e)),
                }
            }
        }
    }};
}

impl Account {
    /// Runs one operation. Errors are returned as the AWS code and message.
    pub async fn run(&self, op: &Op) -> Result<(), String> {
        let iam = &self.iam;
        match op {
            Op::CreatePolicy {
                name,
                path,
                description,
                document,
                tags: t,
            } => call!(self, "CreatePolicy",
                iam.create_policy().policy_name(name).path(path).description(description).policy_document(document).set_tags(tags(t)).send(),
                ok_if: []),
            Op::CreatePolicyVersion { arn, document } => call!(self, "CreatePolicyVersion",
                iam.create_policy_version().policy_arn(arn).policy_document(document).set_as_default(true).send(),
                ok_if: []),
            Op::DeletePolicyVersion { arn, version_id } => call!(self, "DeletePolicyVersion",
                iam.delete_policy_version().policy_arn(arn).version_id(version_id).send(),
                ok_if: ["NoSuchEntity"]),
            Op::DeletePolicy { arn } => call!(self, "DeletePolicy",
                iam.delete_policy().policy_arn(arn).send(),
                ok_if: ["NoSuchEntity"]),
            Op::CreateRole {
                name,
                path,
                description,
                max_session_duration,
                trust,
                permissions_boundary,
                tags: t,
            } => call!(self, "CreateRole",
                iam.create_role()
                    .role_name(name)
                    .path(path)
                    .description(description)
                    .max_session_duration(*max_session_duration)
                    .assume_role_policy_document(trust)
                    .set_permissions_boundary(permissions_boundary.clone())
                    .set_tags(tags(t))
                    .send(),
                ok_if: []),
            Op::UpdateRole {
                name,
                description,
                max_session_duration,
            } => call!(self, "UpdateRole",
                iam.update_role().role_name(name).description(description).max_session_duration(*max_session_duration).send(),
                ok_if: []),
            Op::UpdateAssumeRolePolicy { role, document } => call!(self, "UpdateAssumeRolePolicy",
                iam.update_assume_role_policy().role_name(role).policy_document(document).send(),
                ok_if: []),
            Op::PutRolePermissionsBoundary { role, arn } => {
                call!(self, "PutRolePermissionsBoundary",
                iam.put_role_permissions_boundary().role_name(role).permissions_boundary(arn).send(),
                ok_if: [])
            }
            Op::DeleteRolePermissionsBoundary { role } => {
                call!(self, "DeleteRolePermissionsBoundary",
                iam.delete_role_permissions_boundary().role_name(role).send(),
                ok_if: ["NoSuchEntity"])
            }
            Op::TagRole { role, tags: t } => call!(self, "TagRole",
                iam.tag_role().role_name(role).set_tags(tags(t)).send(),
                ok_if: []),
            Op::UntagRole { role, keys } => call!(self, "UntagRole",
                iam.untag_role().role_name(role).set_tag_keys(Some(keys.clone())).send(),
                ok_if: []),
            Op::PutRolePolicy {
                role,
                name,
                document,
            } => call!(self, "PutRolePolicy",
                iam.put_role_policy().role_name(role).policy_name(name).policy_document(document).send(),
                ok_if: []),
            Op::DeleteRolePolicy { role, name } => call!(self, "DeleteRolePolicy",
                iam.delete_role_policy().role_name(role).policy_name(name).send(),
                ok_if: ["NoSuchEntity"]),
            Op::AttachRolePolicy { role, arn } => call!(self, "AttachRolePolicy",
                iam.attach_role_policy().role_name(role).policy_arn(arn).send(),
                ok_if: []),
            Op::DetachRolePolicy { role, arn } => call!(self, "DetachRolePolicy",
                iam.detach_role_policy().role_name(role).policy_arn(arn).send(),
                ok_if: ["NoSuchEntity"]),
            Op::RemoveRoleFromInstanceProfile {
                role,
                instance_profile,
            } => call!(self, "RemoveRoleFromInstanceProfile",
                iam.remove_role_from_instance_profile().role_name(role).instance_profile_name(instance_profile).send(),
                ok_if: ["NoSuchEntity"]),
            Op::DeleteRole { name } => call!(self, "DeleteRole",
                iam.delete_role().role_name(name).send(),
                ok_if: ["NoSuchEntity"]),
        }
    }
}
