//! Runs one plan operation against IAM, with retries.

use super::limit::Outcome;
use super::{Account, AwsError, ErrorKind};
use crate::iam::managed_policy::MAX_POLICY_VERSIONS;
use crate::keys::Sink;
use crate::keys::sink::{Secret, SinkError};
use crate::ops::Op;
use crate::ownership::{
    OWNER_TAG, created_tag, deactivated_tag, delivered_tag, delivering_tag_key,
    group_marker_document, group_marker_name, issued_tag, key_tag_keys, pending_key_tag,
};
use crate::policy::{Json, PolicyDocument};
use aws_sdk_iam::types::{StatusType, Tag};
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

/// Why a step failed.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Aws(#[from] AwsError),
    #[error(
        "the secret of new key {id} could not be handed to the {sink} ({source}); the new key was deleted again and the existing keys are untouched"
    )]
    SinkRolledBack {
        id: String,
        sink: String,
        source: SinkError,
    },
    #[error(
        "the secret of new key {id} could not be handed to the {sink} ({source}), and deleting the key again failed too ({rollback}): delete key {id} of user {user} by hand"
    )]
    SinkStranded {
        id: String,
        user: String,
        sink: String,
        source: SinkError,
        rollback: AwsError,
    },
    #[error("CreateAccessKey returned no key")]
    NoKeyReturned,
    #[error("the document of a new version of policy {arn} cannot be read ({reason})")]
    UnreadableDocument { arn: String, reason: String },
    #[error(
        "{what}: {create}, and whether this apply made it (an earlier answer may have been lost) could not be read: {read}. Run apply again: it plans from the live state"
    )]
    OwnershipUnknown {
        what: &'static str,
        create: AwsError,
        read: AwsError,
    },
}

/// A read of the entity a create names: `None` when it is gone (deleted since: not this
/// run's); any other failure is the caller's error, never an answer.
fn found<T, E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static>(
    read: Result<
        T,
        aws_sdk_iam::error::SdkError<E, aws_smithy_runtime_api::client::orchestrator::HttpResponse>,
    >,
) -> Result<Option<T>, AwsError> {
    match read {
        Ok(out) => Ok(Some(out)),
        Err(e) => match AwsError::from_sdk(&e) {
            e if e.is("NoSuchEntity") => Ok(None),
            e => Err(e),
        },
    }
}

/// Maps a finished call to `Result<(), AwsError>`, treating "already in the wanted state"
/// answers as success so that a re-run after a half-finished apply converges.
macro_rules! call {
    ($acct:expr, $name:expr, $fut:expr, ok_if: [$($code:literal),*]) => {{
        match $acct.call($name, || $fut).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let err = AwsError::from_sdk(&e);
                match err.code.as_deref() {
                    $(Some($code) => {
                        tracing::info!("{}: {err} (already done)", $name);
                        Ok(())
                    })*
                    _ => Err(StepError::from(err)),
                }
            }
        }
    }};
}

impl Account {
    /// Runs one operation.
    pub async fn run(&self, op: &Op) -> Result<(), StepError> {
        let result = self.run_once(op).await;
        match op {
            // A group's marker is written after its creation: `run_once` settles who made
            // it before that, so that the marker is written whichever attempt made it.
            Op::CreateRole { .. } | Op::CreateUser { .. } | Op::CreatePolicy { .. } => {
                self.own_if_exists(op, result).await
            }
            _ => result,
        }
    }

    /// A create's outcome, with "already exists" taken for success when the entity is the
    /// one this operation made. The SDK-less retry of `call` sends a create again after a
    /// lost answer, and IAM then says the entity exists: its own earlier success.
    async fn own_if_exists(
        &self,
        op: &Op,
        created: Result<(), StepError>,
    ) -> Result<(), StepError> {
        match created {
            Err(StepError::Aws(e)) if e.is("EntityAlreadyExists") => {
                // A failed read proves nothing either way: the step fails with it rather
                // than taking the entity for someone else's, or for this run's.
                if self
                    .made_by(op)
                    .await
                    .map_err(|read| StepError::OwnershipUnknown {
                        what: op.name(),
                        create: e.clone(),
                        read,
                    })?
                {
                    tracing::info!(
                        "{}: {e}: made by this apply (an earlier answer was lost)",
                        op.name()
                    );
                    Ok(())
                } else {
                    Err(StepError::Aws(e))
                }
            }
            other => other,
        }
    }

    /// Whether the entity a create operation names exists as that operation made it (its
    /// ownership marker for this stack; for a group, which cannot carry one until its
    /// marker policy is written, made moments ago and still empty). Its reads are retried
    /// as any other; an error is returned only once they gave up.
    async fn made_by(&self, op: &Op) -> Result<bool, AwsError> {
        let iam = &self.iam;
        let marked = |tags: &[Tag], want: Option<&String>| {
            want.is_some_and(|w| tags.iter().any(|t| t.key() == OWNER_TAG && t.value() == w))
        };
        match op {
            Op::CreateRole { name, tags: t, .. } => {
                let read = self
                    .call("GetRole", || iam.get_role().role_name(name).send())
                    .await;
                Ok(found(read)?
                    .as_ref()
                    .and_then(|out| out.role())
                    .is_some_and(|r| marked(r.tags(), t.get(OWNER_TAG))))
            }
            Op::CreateUser { name, tags: t, .. } => {
                let read = self
                    .call("GetUser", || iam.get_user().user_name(name).send())
                    .await;
                Ok(found(read)?
                    .as_ref()
                    .and_then(|out| out.user())
                    .is_some_and(|u| marked(u.tags(), t.get(OWNER_TAG))))
            }
            Op::CreatePolicy {
                name,
                path,
                description,
                tags: t,
                ..
            } => {
                let arn = self.ctx.arn("policy", path, name);
                let read = self
                    .call("GetPolicy", || iam.get_policy().policy_arn(&arn).send())
                    .await;
                Ok(found(read)?
                    .as_ref()
                    .and_then(|out| out.policy())
                    .is_some_and(|p| {
                        p.description() == Some(description.as_str())
                            || marked(p.tags(), t.get(OWNER_TAG))
                    }))
            }
            Op::CreateGroup { name, .. } => {
                let read = self
                    .call("GetGroup", || iam.get_group().group_name(name).send())
                    .await;
                let Some(out) = found(read)? else {
                    return Ok(false);
                };
                // Another stack's new group has its marker (an inline policy) or policies.
                let inline = self
                    .call("ListGroupPolicies", || {
                        iam.list_group_policies().group_name(name).send()
                    })
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))?;
                let attached = self
                    .call("ListAttachedGroupPolicies", || {
                        iam.list_attached_group_policies().group_name(name).send()
                    })
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))?;
                let bare =
                    inline.policy_names().is_empty() && attached.attached_policies().is_empty();
                let recent = out.group().is_some_and(|g| {
                    let made = g.create_date().secs();
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64);
                    (now - made).abs() < 15 * 60
                });
                Ok(bare && recent && out.users().is_empty())
            }
            _ => Ok(false),
        }
    }

    async fn run_once(&self, op: &Op) -> Result<(), StepError> {
        let iam = &self.iam;
        match op {
            Op::CreatePolicy {
                name,
                path,
                description,
                document,
                tags: t,
            } => call!(self, "CreatePolicy",
                iam.create_policy().policy_name(name).path(path).description(description).policy_document(document.text()).set_tags(tags(t)).send(),
                ok_if: []),
            Op::CreatePolicyVersion { arn, document } => {
                self.create_policy_version(arn, document).await
            }
            Op::TagPolicy { arn, tags: t } => call!(self, "TagPolicy",
                iam.tag_policy().policy_arn(arn).set_tags(tags(t)).send(),
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
                    .assume_role_policy_document(trust.text())
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
                iam.update_assume_role_policy().role_name(role).policy_document(document.text()).send(),
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
                iam.put_role_policy().role_name(role).policy_name(name).policy_document(document.text()).send(),
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
            Op::CreateUser {
                name,
                path,
                permissions_boundary,
                tags: t,
            } => call!(self, "CreateUser",
                iam.create_user().user_name(name).path(path).set_permissions_boundary(permissions_boundary.clone()).set_tags(tags(t)).send(),
                ok_if: []),
            Op::UpdateUser { name, new_path } => call!(self, "UpdateUser",
                iam.update_user().user_name(name).new_path(new_path).send(),
                ok_if: []),
            Op::TagUser { user, tags: t } => call!(self, "TagUser",
                iam.tag_user().user_name(user).set_tags(tags(t)).send(),
                ok_if: []),
            Op::UntagUser { user, keys } => call!(self, "UntagUser",
                iam.untag_user().user_name(user).set_tag_keys(Some(keys.clone())).send(),
                ok_if: []),
            Op::PutUserPermissionsBoundary { user, arn } => {
                call!(self, "PutUserPermissionsBoundary",
                iam.put_user_permissions_boundary().user_name(user).permissions_boundary(arn).send(),
                ok_if: [])
            }
            Op::DeleteUserPermissionsBoundary { user } => {
                call!(self, "DeleteUserPermissionsBoundary",
                iam.delete_user_permissions_boundary().user_name(user).send(),
                ok_if: ["NoSuchEntity"])
            }
            Op::PutUserPolicy {
                user,
                name,
                document,
            } => call!(self, "PutUserPolicy",
                iam.put_user_policy().user_name(user).policy_name(name).policy_document(document.text()).send(),
                ok_if: []),
            Op::DeleteUserPolicy { user, name } => call!(self, "DeleteUserPolicy",
                iam.delete_user_policy().user_name(user).policy_name(name).send(),
                ok_if: ["NoSuchEntity"]),
            Op::AttachUserPolicy { user, arn } => call!(self, "AttachUserPolicy",
                iam.attach_user_policy().user_name(user).policy_arn(arn).send(),
                ok_if: []),
            Op::DetachUserPolicy { user, arn } => call!(self, "DetachUserPolicy",
                iam.detach_user_policy().user_name(user).policy_arn(arn).send(),
                ok_if: ["NoSuchEntity"]),
            Op::AddUserToGroup { user, group } => call!(self, "AddUserToGroup",
                iam.add_user_to_group().user_name(user).group_name(group).send(),
                ok_if: []),
            Op::RemoveUserFromGroup { user, group } => call!(self, "RemoveUserFromGroup",
                iam.remove_user_from_group().user_name(user).group_name(group).send(),
                ok_if: ["NoSuchEntity"]),
            Op::CreateInstanceProfile {
                name,
                path,
                tags: t,
            } => call!(self, "CreateInstanceProfile",
                iam.create_instance_profile().instance_profile_name(name).path(path).set_tags(tags(t)).send(),
                ok_if: ["EntityAlreadyExists"]),
            Op::AddRoleToInstanceProfile {
                role,
                instance_profile,
            } => {
                let added = call!(self, "AddRoleToInstanceProfile",
                    iam.add_role_to_instance_profile().role_name(role).instance_profile_name(instance_profile).send(),
                    ok_if: []);
                match added {
                    // An instance profile holds one role: sent again after a lost answer,
                    // IAM says it is full (`LimitExceeded: ... already associated`). Full
                    // with this role is the wanted state.
                    Err(StepError::Aws(e))
                        if (e.is("LimitExceeded") || e.is("EntityAlreadyExists"))
                            && self.profile_holds(instance_profile, role).await? =>
                    {
                        tracing::info!("AddRoleToInstanceProfile: {e} (already done)");
                        Ok(())
                    }
                    other => other,
                }
            }
            Op::DeleteInstanceProfile { name } => call!(self, "DeleteInstanceProfile",
                iam.delete_instance_profile().instance_profile_name(name).send(),
                ok_if: ["NoSuchEntity"]),
            Op::CreateGroup { name, path, stack } => {
                let created = call!(self, "CreateGroup",
                    iam.create_group().group_name(name).path(path).send(),
                    ok_if: []);
                // Its own earlier success (see `own_if_exists`): the marker is still to
                // write, and is written whichever attempt made the group.
                self.own_if_exists(op, created).await?;
                let (marker, document) = (
                    group_marker_name(stack),
                    group_marker_document().to_string(),
                );
                call!(self, "PutGroupPolicy",
                    iam.put_group_policy().group_name(name).policy_name(&marker).policy_document(&document).send(),
                    ok_if: [])
            }
            Op::UpdateGroup { name, new_path } => call!(self, "UpdateGroup",
                iam.update_group().group_name(name).new_path(new_path).send(),
                ok_if: []),
            Op::PutGroupPolicy {
                group,
                name,
                document,
            } => call!(self, "PutGroupPolicy",
                iam.put_group_policy().group_name(group).policy_name(name).policy_document(document.text()).send(),
                ok_if: []),
            Op::DeleteGroupPolicy { group, name } => call!(self, "DeleteGroupPolicy",
                iam.delete_group_policy().group_name(group).policy_name(name).send(),
                ok_if: ["NoSuchEntity"]),
            Op::AttachGroupPolicy { group, arn } => call!(self, "AttachGroupPolicy",
                iam.attach_group_policy().group_name(group).policy_arn(arn).send(),
                ok_if: []),
            Op::DetachGroupPolicy { group, arn } => call!(self, "DetachGroupPolicy",
                iam.detach_group_policy().group_name(group).policy_arn(arn).send(),
                ok_if: ["NoSuchEntity"]),
            Op::DeleteGroup { name, stack } => {
                let marker = group_marker_name(stack);
                call!(self, "DeleteGroupPolicy",
                    iam.delete_group_policy().group_name(name).policy_name(&marker).send(),
                    ok_if: ["NoSuchEntity"])?;
                call!(self, "DeleteGroup",
                    iam.delete_group().group_name(name).send(),
                    ok_if: ["NoSuchEntity"])
            }
            Op::CreateAccessKey {
                user,
                sink,
                issued_at,
                known,
            } => self.create_access_key(user, sink, *issued_at, known).await,
            Op::DeactivateAccessKey { user, id, at } => {
                call!(self, "UpdateAccessKey",
                    iam.update_access_key().user_name(user).access_key_id(id).status(StatusType::Inactive).send(),
                    ok_if: [])?;
                crate::killpoint::hit("access-key-deactivated");
                let t = deactivated_tag(id, *at);
                call!(self, "TagUser", iam.tag_user().user_name(user).set_tags(tags(&t)).send(), ok_if: [])
            }
            Op::DeleteAccessKey { user, id, untag } => {
                call!(self, "DeleteAccessKey",
                    iam.delete_access_key().user_name(user).access_key_id(id).send(),
                    ok_if: ["NoSuchEntity"])?;
                crate::killpoint::hit("access-key-deleted");
                if *untag {
                    // Forget what iamplan recorded about the key.
                    let keys = key_tag_keys(id);
                    call!(self, "UntagUser", iam.untag_user().user_name(user).set_tag_keys(Some(keys.clone())).send(), ok_if: ["NoSuchEntity"])?;
                }
                Ok(())
            }
            Op::DeleteUser { name } => {
                // Most users have no console password or MFA device: try the delete first,
                // and clear those (which the plan does not list) only when IAM says so.
                match self
                    .call("DeleteUser", || iam.delete_user().user_name(name).send())
                    .await
                {
                    Ok(_) => return Ok(()),
                    Err(e) => {
                        let err = AwsError::from_sdk(&e);
                        match err.code.as_deref() {
                            Some("NoSuchEntity") => return Ok(()),
                            Some("DeleteConflict") => tracing::info!(
                                "DeleteUser {name}: {err}: removing its login profile and MFA devices first"
                            ),
                            _ => return Err(err.into()),
                        }
                    }
                }
                call!(self, "DeleteLoginProfile", iam.delete_login_profile().user_name(name).send(), ok_if: ["NoSuchEntity"])?;
                let devices = self
                    .call("ListMFADevices", || {
                        iam.list_mfa_devices().user_name(name).send()
                    })
                    .await
                    .map_err(|e| AwsError::from_sdk(&e))?;
                for d in devices.mfa_devices() {
                    let serial = d.serial_number();
                    call!(self, "DeactivateMFADevice", iam.deactivate_mfa_device().user_name(name).serial_number(serial).send(), ok_if: ["NoSuchEntity"])?;
                    if serial.starts_with("arn:") {
                        call!(self, "DeleteVirtualMFADevice", iam.delete_virtual_mfa_device().serial_number(serial).send(), ok_if: ["NoSuchEntity"])?;
                    }
                }
                call!(self, "DeleteUser", iam.delete_user().user_name(name).send(), ok_if: ["NoSuchEntity"])
            }
        }
    }

    /// Whether the instance profile holds the role.
    async fn profile_holds(&self, profile: &str, role: &str) -> Result<bool, StepError> {
        let out = self
            .call("GetInstanceProfile", || {
                self.iam
                    .get_instance_profile()
                    .instance_profile_name(profile)
                    .send()
            })
            .await
            .map_err(|e| AwsError::from_sdk(&e))?;
        Ok(out
            .instance_profile()
            .is_some_and(|p| p.roles().iter().any(|r| r.role_name() == role)))
    }

    /// CreatePolicyVersion is not idempotent: sent again after a lost answer it makes a
    /// second version, or at IAM's five versions fails with LimitExceeded though the
    /// document took effect. So it is sent without blind retries (throttling, a definite
    /// "not done", is sent again), and after an ambiguous failure the newest version is
    /// read: holding the document, it is this step's (made the default if it is not);
    /// otherwise room is made as the plan's own step does, and it is sent again.
    async fn create_policy_version(&self, arn: &str, document: &Json) -> Result<(), StepError> {
        const AMBIGUOUS_ATTEMPTS: u32 = 5;
        let want = PolicyDocument::parse(document.text(), &self.ctx.partition).map_err(|e| {
            StepError::UnreadableDocument {
                arn: arn.to_string(),
                reason: e.to_string(),
            }
        })?;
        let mut ambiguous_attempts = 0;
        loop {
            let sent = self
                .send_unretried("CreatePolicyVersion", || {
                    self.iam
                        .create_policy_version()
                        .policy_arn(arn)
                        .policy_document(document.text())
                        .set_as_default(true)
                        .send()
                })
                .await;
            let err = match sent {
                Ok(_) => return Ok(()),
                Err(e) => e,
            };
            if !matches!(err.kind, ErrorKind::Network | ErrorKind::Service) {
                return Err(err.into());
            }
            ambiguous_attempts += 1;
            tracing::info!(
                "CreatePolicyVersion {arn}: {err}; the version may have been made: checking (attempt {ambiguous_attempts})"
            );
            let versions = self.policy_versions(arn).await?;
            if let Some(newest) = versions.last()
                && self.version_holds(arn, &newest.0, &want).await?
            {
                if !newest.1 {
                    call!(self, "SetDefaultPolicyVersion",
                        self.iam.set_default_policy_version().policy_arn(arn).version_id(&newest.0).send(),
                        ok_if: [])?;
                }
                tracing::info!(
                    "CreatePolicyVersion {arn}: version {} holds the document (an earlier answer was lost)",
                    newest.0
                );
                return Ok(());
            }
            if ambiguous_attempts == AMBIGUOUS_ATTEMPTS {
                return Err(err.into());
            }
            if versions.len() >= MAX_POLICY_VERSIONS
                && let Some((oldest, _)) = versions.iter().find(|v| !v.1)
            {
                call!(self, "DeletePolicyVersion",
                    self.iam.delete_policy_version().policy_arn(arn).version_id(oldest).send(),
                    ok_if: ["NoSuchEntity"])?;
            }
        }
    }

    /// A policy's versions (id, whether default), oldest first.
    async fn policy_versions(&self, arn: &str) -> Result<Vec<(String, bool)>, StepError> {
        let out = self
            .call("ListPolicyVersions", || {
                self.iam.list_policy_versions().policy_arn(arn).send()
            })
            .await
            .map_err(|e| AwsError::from_sdk(&e))?;
        let mut versions: Vec<(i64, u64, String, bool)> = out
            .versions()
            .iter()
            .filter_map(|v| {
                let id = v.version_id()?.to_string();
                let n = id.trim_start_matches('v').parse().unwrap_or(0);
                let made = v.create_date().map_or(0, |d| d.secs());
                Some((made, n, id, v.is_default_version()))
            })
            .collect();
        // Creation times have one-second steps: the version number breaks ties.
        versions.sort();
        Ok(versions.into_iter().map(|(_, _, id, d)| (id, d)).collect())
    }

    /// Whether a version of the policy holds the document (compared as `plan` compares).
    async fn version_holds(
        &self,
        arn: &str,
        version: &str,
        want: &PolicyDocument,
    ) -> Result<bool, StepError> {
        let out = self
            .call("GetPolicyVersion", || {
                self.iam
                    .get_policy_version()
                    .policy_arn(arn)
                    .version_id(version)
                    .send()
            })
            .await
            .map_err(|e| AwsError::from_sdk(&e))?;
        let raw = out
            .policy_version()
            .and_then(|v| v.document())
            .unwrap_or_default();
        Ok(PolicyDocument::from_live(raw, &self.ctx.partition).is_ok_and(|d| d == *want))
    }

    /// One call without retries on ambiguous failures (those the caller must check first);
    /// throttling is waited out within the retry budget, as `call` does.
    async fn send_unretried<T, E, F, Fut>(
        &self,
        what: &'static str,
        mut call: F,
    ) -> Result<T, AwsError>
    where
        E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
        F: FnMut() -> Fut,
        Fut: std::future::Future<
                Output = Result<
                    T,
                    aws_sdk_iam::error::SdkError<
                        E,
                        aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                    >,
                >,
            >,
    {
        let started = std::time::Instant::now();
        let mut delay = std::time::Duration::from_millis(200);
        loop {
            let slot = self.limits.start(what).await;
            self.stats.count(what);
            let err = match call().await {
                Ok(v) => {
                    slot.finish(Outcome::Succeeded);
                    return Ok(v);
                }
                Err(e) => AwsError::from_sdk(&e),
            };
            if err.kind != ErrorKind::Throttled || started.elapsed() + delay > super::RETRY_BUDGET {
                slot.finish(Outcome::Failed);
                return Err(err);
            }
            self.stats.count_throttle();
            tracing::info!("retrying {what} in {:.1}s: {err}", delay.as_secs_f64());
            // As in `retry`: a throttled call keeps its slot while it waits.
            tokio::time::sleep(super::jitter(delay)).await;
            slot.finish(Outcome::Throttled);
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
    }

    /// Creates a key, hands the secret to the sink, and reports the key created only once
    /// the sink has it. If the sink fails, the new key is deleted again, so that the user's
    /// other keys stay as they were and no key exists whose secret nobody has.
    async fn create_access_key(
        &self,
        user: &str,
        sink: &Sink,
        issued_at: Option<i64>,
        known: &[String],
    ) -> Result<(), StepError> {
        // Which key this run makes is recorded before it exists: a run that takes the lock
        // over after a crash then tells it from the sink's key even within one second, and
        // a command sink's key counts as delivered only on the command's success.
        let t = BTreeMap::from([pending_key_tag(known)]);
        call!(self, "TagUser", self.iam.tag_user().user_name(user).set_tags(tags(&t)).send(), ok_if: [])?;
        let out = self.create_key_once(user, known).await?;
        crate::killpoint::hit("access-key-created");
        let key = out.access_key().ok_or(StepError::NoKeyReturned)?;
        let secret = Secret {
            user: user.to_string(),
            access_key_id: key.access_key_id().to_string(),
            secret_access_key: key.secret_access_key().to_string(),
        };
        let id = secret.access_key_id.clone();
        let created = key.create_date().map(|d| d.secs());
        let delivered = tokio::task::block_in_place(|| sink.deliver(&secret));
        drop(secret);
        if delivered.is_ok() {
            crate::killpoint::hit("access-key-delivered");
        }
        if let Err(source) = delivered {
            let rollback = call!(self, "DeleteAccessKey",
                self.iam.delete_access_key().user_name(user).access_key_id(&id).send(),
                ok_if: ["NoSuchEntity"]);
            if rollback.is_ok() {
                // The key is gone: nothing is pending any more. (Left in place, the record
                // is removed by the next plan.)
                let done = vec![delivering_tag_key()];
                let _ = call!(self, "UntagUser", self.iam.untag_user().user_name(user).set_tag_keys(Some(done.clone())).send(), ok_if: []);
            }
            return Err(match rollback {
                Ok(()) => StepError::SinkRolledBack {
                    id,
                    sink: sink.to_string(),
                    source,
                },
                Err(StepError::Aws(rollback)) => StepError::SinkStranded {
                    id,
                    user: user.to_string(),
                    sink: sink.to_string(),
                    source,
                    rollback,
                },
                Err(other) => other,
            });
        }
        let mut t: BTreeMap<String, String> =
            created.map(|c| created_tag(&id, c)).into_iter().collect();
        if !sink.readable() {
            t.extend([delivered_tag(&id)]);
        }
        if let Some(at) = issued_at {
            t.extend([issued_tag(&id, at)]);
        }
        let tagged = if t.is_empty() {
            Ok(())
        } else {
            call!(self, "TagUser", self.iam.tag_user().user_name(user).set_tags(tags(&t)).send(), ok_if: [])
        };
        match tagged {
            // The creation time only spares later plans a per-user read: without it the key
            // is read the slow way, so its loss does not fail a key already delivered.
            Err(e) if sink.readable() && issued_at.is_none() => tracing::warn!(
                "user {user}: could not record when access key {id} was made (later plans read this user's keys one call each): {e}"
            ),
            other => other?,
        }
        let done = vec![delivering_tag_key()];
        match call!(self, "UntagUser", self.iam.untag_user().user_name(user).set_tag_keys(Some(done.clone())).send(), ok_if: [])
        {
            // A file sink says which key it holds: a record left behind misleads no one, and
            // the next plan removes it.
            Err(e) if sink.readable() => tracing::warn!(
                "user {user}: could not remove the record of the key being made ({e}); the next apply removes it"
            ),
            other => other?,
        }
        tracing::info!("access key {id} of user {user} handed to the {sink}");
        Ok(())
    }

    /// CreateAccessKey is not idempotent: a retry after a lost answer (the key was made,
    /// the answer never came) makes a second key. So it is sent without the SDK's
    /// retries, and after an ambiguous failure (a dropped connection, a time-out, a 5xx)
    /// the user's keys are listed, every key the plan did not know (one this step made,
    /// whose secret nobody has) is deleted, and only then is it sent again.
    async fn create_key_once(
        &self,
        user: &str,
        known: &[String],
    ) -> Result<aws_sdk_iam::operation::create_access_key::CreateAccessKeyOutput, StepError> {
        // Lost answers are checked and sent again a few times; throttling (a definite
        // "not done") is sent again for as long as any call is retried.
        const AMBIGUOUS_ATTEMPTS: u32 = 5;
        let started = std::time::Instant::now();
        let mut delay = std::time::Duration::from_millis(200);
        let mut ambiguous_attempts = 0;
        loop {
            let began = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let slot = self.limits.start("CreateAccessKey").await;
            self.stats.count("CreateAccessKey");
            let result = self.iam.create_access_key().user_name(user).send().await;
            let err = match result {
                Ok(out) => {
                    slot.finish(Outcome::Succeeded);
                    return Ok(out);
                }
                Err(e) => AwsError::from_sdk(&e),
            };
            let ambiguous = matches!(err.kind, ErrorKind::Network | ErrorKind::Service);
            let throttled = err.kind == ErrorKind::Throttled;
            slot.finish(if throttled {
                Outcome::Throttled
            } else {
                Outcome::Failed
            });
            ambiguous_attempts += u32::from(ambiguous);
            let out_of_time = started.elapsed() + delay > super::RETRY_BUDGET;
            if !(ambiguous || throttled) || ambiguous_attempts == AMBIGUOUS_ATTEMPTS || out_of_time
            {
                return Err(err.into());
            }
            if throttled {
                self.stats.count_throttle();
            }
            if ambiguous {
                tracing::info!(
                    "CreateAccessKey for user {user}: {err}; the key may have been made: checking (attempt {ambiguous_attempts})"
                );
                self.delete_unknown_keys(user, known, began).await?;
            }
            tokio::time::sleep(super::jitter(delay)).await;
            delay = (delay * 2).min(std::time::Duration::from_secs(10));
        }
    }

    /// Deletes the user's keys that the plan did not know: made by a CreateAccessKey whose
    /// answer was lost, so their secret is nowhere.
    async fn delete_unknown_keys(
        &self,
        user: &str,
        known: &[String],
        began: i64,
    ) -> Result<(), StepError> {
        // Clocks differ: a key made more than this before the attempt is not its doing.
        const SKEW: i64 = 300;
        let listed = self
            .call("ListAccessKeys", || {
                self.iam.list_access_keys().user_name(user).send()
            })
            .await
            .map_err(|e| AwsError::from_sdk(&e))?;
        for k in listed.access_key_metadata() {
            let id = k.access_key_id().unwrap_or_default();
            if id.is_empty() || known.iter().any(|x| x == id) {
                continue;
            }
            if k.create_date().is_some_and(|d| d.secs() < began - SKEW) {
                continue;
            }
            tracing::warn!(
                "user {user}: access key {id} was made by a CreateAccessKey whose answer was lost; nobody has its secret: deleting it"
            );
            call!(self, "DeleteAccessKey",
                self.iam.delete_access_key().user_name(user).access_key_id(id).send(),
                ok_if: ["NoSuchEntity"])?;
        }
        Ok(())
    }
}
