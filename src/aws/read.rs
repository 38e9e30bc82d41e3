//! Reads an account's IAM state in a number of calls that grows with pages, not with
//! resources: GetAccountAuthorizationDetails for roles and customer-managed policies,
//! and ListRoles for the two role attributes it omits (description, max session duration).

use super::{Account, error_text, retry};
use crate::keys::{LastUsed, LiveKey};
use crate::model::{
    Address, DEACTIVATED_TAG_PREFIX, DELIVERED_TAG, GROUP_MARKER_PREFIX, Group, ISSUED_TAG_PREFIX,
    Kind, Live, LiveResource, ManagedPolicy, OWNER_TAG, PolicyVersion, Resource, Role, User,
};
use crate::policy::PolicyDocument;
use anyhow::{Result, anyhow};
use aws_sdk_iam::types::{EntityType, PolicyScopeType, StatusType};
use futures::StreamExt;
use std::collections::{BTreeMap, BTreeSet};

/// IAM's largest page.
const PAGE: i32 = 1000;

/// The marker iamplan appends to the description of managed policies it creates:
/// GetAccountAuthorizationDetails returns no policy tags, and the description is free.
pub fn policy_marker(stack: &str) -> String {
    format!("[{OWNER_TAG}={stack}]")
}

/// Splits a live policy description into the user's text and the owning stack.
pub fn split_policy_description(desc: &str) -> (String, Option<String>) {
    let prefix = format!("[{OWNER_TAG}=");
    if let Some(i) = desc.rfind(&prefix)
        && desc.ends_with(']')
    {
        let stack = desc[i + prefix.len()..desc.len() - 1].to_string();
        return (desc[..i].trim_end().to_string(), Some(stack));
    }
    (desc.to_string(), None)
}

/// A paged IAM listing: where the next page starts, if there is one.
trait Page {
    fn next_marker(&self) -> Option<String>;
}

macro_rules! page {
    ($($output:ty),*) => {$(
        impl Page for $output {
            // A page may be short while more remain: only IsTruncated says when to stop.
            fn next_marker(&self) -> Option<String> {
                self.marker().filter(|_| self.is_truncated()).map(str::to_string)
            }
        }
    )*};
}

page!(
    aws_sdk_iam::operation::get_account_authorization_details::GetAccountAuthorizationDetailsOutput,
    aws_sdk_iam::operation::list_roles::ListRolesOutput,
    aws_sdk_iam::operation::list_policies::ListPoliciesOutput
);

/// Calls `call` with each page's marker until the last page, handing every page to
/// `each`; each call is counted and retried.
async fn paged<P, E, F, Fut>(
    account: &Account,
    op: &'static str,
    call: F,
    mut each: impl FnMut(P),
) -> Result<()>
where
    P: Page,
    E: aws_sdk_iam::error::ProvideErrorMetadata + std::error::Error + 'static,
    F: Fn(Option<String>) -> Fut,
    Fut: std::future::Future<
            Output = Result<
                P,
                aws_sdk_iam::error::SdkError<
                    E,
                    aws_smithy_runtime_api::client::orchestrator::HttpResponse,
                >,
            >,
        >,
{
    let mut marker: Option<String> = None;
    loop {
        account.stats.count(op);
        let page = retry(op, || call(marker.clone())).await.map_err(|e| {
            anyhow!(
                "reading IAM in account \"{}\" ({op}): {}",
                account.ctx.alias,
                error_text(&e)
            )
        })?;
        marker = page.next_marker();
        each(page);
        if marker.is_none() {
            return Ok(());
        }
    }
}

/// What the plan needs to know about users' access keys, by lower-cased user name.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct KeyHints {
    pub users: BTreeMap<String, UserKeyHint>,
}

#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct UserKeyHint {
    /// The key whose secret the sink holds, if the sink can be read.
    pub sink_key: Option<String>,
    /// The rule rotates by age: every key's last use matters.
    pub rotating: bool,
}

/// Concurrent per-user key reads (ListAccessKeys is per user by IAM's design).
const KEY_READ_CONCURRENCY: usize = 8;

pub async fn read_live(
    account: &Account,
    stack: &str,
    hints: &KeyHints,
    live: &mut Live,
) -> Result<()> {
    let ctx = &account.ctx;
    let iam = &account.iam;
    // Description and MaxSessionDuration are only in ListRoles/GetRole: read them in
    // parallel with GetAccountAuthorizationDetails (both are per page).
    let list_roles = async {
        let mut role_attrs: BTreeMap<String, (String, i32)> = BTreeMap::new();
        paged(
            account,
            "ListRoles",
            |marker| iam.list_roles().max_items(PAGE).set_marker(marker).send(),
            |page| {
                for r in page.roles() {
                    let attrs = (
                        r.description().unwrap_or("").to_string(),
                        r.max_session_duration().unwrap_or(3600),
                    );
                    role_attrs.insert(r.role_name().to_ascii_lowercase(), attrs);
                }
            },
        )
        .await
        .map(|()| role_attrs)
    };
    let gaad = async {
        let (mut roles, mut policies, mut users, mut groups) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        paged(
            account,
            "GetAccountAuthorizationDetails",
            |marker| {
                iam.get_account_authorization_details()
                    .filter(EntityType::Role)
                    .filter(EntityType::User)
                    .filter(EntityType::Group)
                    .filter(EntityType::LocalManagedPolicy)
                    .max_items(PAGE)
                    .set_marker(marker)
                    .send()
            },
            |mut page| {
                // Take the page's entities rather than copy them: at thousands of roles
                // the documents are most of the memory.
                roles.append(&mut page.role_detail_list.take().unwrap_or_default());
                users.append(&mut page.user_detail_list.take().unwrap_or_default());
                groups.append(&mut page.group_detail_list.take().unwrap_or_default());
                policies.append(&mut page.policies.take().unwrap_or_default());
            },
        )
        .await
        .map(|()| (roles, policies, users, groups))
    };
    let (gaad, role_attrs) = tokio::join!(gaad, list_roles);
    let (roles, policies, users, groups) = gaad?;
    let role_attrs = role_attrs?;

    // GetAccountAuthorizationDetails should carry each policy's description (where the
    // ownership marker is); some emulators leave it out. ListPolicies (per page, not per
    // policy) then supplies the description and, where the emulator returns them, tags.
    let mut listed: BTreeMap<String, (String, Option<String>)> = BTreeMap::new();
    if policies.iter().any(|p| p.description().is_none()) {
        tracing::debug!(
            "GetAccountAuthorizationDetails returned policies without Description: reading them with ListPolicies"
        );
        paged(
            account,
            "ListPolicies",
            |marker| {
                iam.list_policies()
                    .scope(PolicyScopeType::Local)
                    .max_items(PAGE)
                    .set_marker(marker)
                    .send()
            },
            |page| {
                for p in page.policies() {
                    let owner = p
                        .tags()
                        .iter()
                        .find(|t| t.key() == OWNER_TAG)
                        .map(|t| t.value().to_string());
                    let description = p.description().unwrap_or("").to_string();
                    listed.insert(
                        p.arn().unwrap_or_default().to_string(),
                        (description, owner),
                    );
                }
            },
        )
        .await?;
    }

    for p in &policies {
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
            tracing::warn!("managed policy {arn}: no default version document returned; skipped");
            continue;
        };
        let document = PolicyDocument::from_live(doc, &ctx.partition)
            .map_err(|e| anyhow!("managed policy {arn}: cannot read its document: {e}"))?;
        let (description, owner) = match (p.description(), listed.get(&arn)) {
            (Some(d), _) => split_policy_description(d),
            (None, Some((d, tag_owner))) => {
                let (d, marker_owner) = split_policy_description(d);
                (d, marker_owner.or_else(|| tag_owner.clone()))
            }
            (None, None) => (String::new(), None),
        };
        live.resources.insert(
            Address::new(&ctx.alias, Kind::ManagedPolicy, &name),
            LiveResource {
                resource: Resource::ManagedPolicy(ManagedPolicy {
                    name,
                    path: p.path().unwrap_or("/").to_string(),
                    description,
                    document,
                }),
                arn,
                owner,
                versions,
                broken_principals: vec![],
                instance_profiles: vec![],
                access_keys: vec![],
                delivered_key: None,
            },
        );
    }

    drop(policies);
    read_users(account, stack, hints, &users, live).await?;
    drop(users);
    for g in &groups {
        let name = g.group_name().unwrap_or_default().to_string();
        let mut inline = BTreeMap::new();
        let mut owner = None;
        for ip in g.group_policy_list() {
            let pname = ip.policy_name().unwrap_or_default().to_string();
            if let Some(stack) = pname.strip_prefix(GROUP_MARKER_PREFIX) {
                owner = Some(stack.to_string());
                continue;
            }
            let doc =
                PolicyDocument::from_live(ip.policy_document().unwrap_or("{}"), &ctx.partition)
                    .map_err(|e| anyhow!("group {name} inline policy {pname}: {e}"))?;
            inline.insert(pname, doc);
        }
        live.resources.insert(
            Address::new(&ctx.alias, Kind::Group, &name),
            LiveResource {
                resource: Resource::Group(Group {
                    name,
                    path: g.path().unwrap_or("/").to_string(),
                    inline,
                    managed: g
                        .attached_managed_policies()
                        .iter()
                        .filter_map(|a| a.policy_arn().map(str::to_string))
                        .collect(),
                }),
                arn: g.arn().unwrap_or_default().to_string(),
                owner,
                versions: vec![],
                broken_principals: vec![],
                instance_profiles: vec![],
                access_keys: vec![],
                delivered_key: None,
            },
        );
    }

    for r in &roles {
        let name = r.role_name().unwrap_or_default().to_string();
        let arn = r.arn().unwrap_or_default().to_string();
        let trust_raw = r.assume_role_policy_document().unwrap_or("{}");
        let trust = PolicyDocument::from_live(trust_raw, &ctx.partition)
            .map_err(|e| anyhow!("role {name}: cannot read its trust policy: {e}"))?;
        let mut inline = BTreeMap::new();
        for ip in r.role_policy_list() {
            let pname = ip.policy_name().unwrap_or_default().to_string();
            let doc =
                PolicyDocument::from_live(ip.policy_document().unwrap_or("{}"), &ctx.partition)
                    .map_err(|e| anyhow!("role {name} inline policy {pname}: {e}"))?;
            inline.insert(pname, doc);
        }
        let managed: BTreeSet<String> = r
            .attached_managed_policies()
            .iter()
            .filter_map(|a| a.policy_arn().map(str::to_string))
            .collect();
        let mut tags: BTreeMap<String, String> = r
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        let owner = tags.remove(OWNER_TAG);
        let (description, max_session_duration) = role_attrs
            .get(&name.to_ascii_lowercase())
            .cloned()
            .unwrap_or_else(|| (String::new(), 3600));
        let broken_principals = unique_id_principals(&trust.value);
        let instance_profiles: Vec<String> = r
            .instance_profile_list()
            .iter()
            .map(|p| p.instance_profile_name().to_string())
            .collect();
        let instance_profile = instance_profiles
            .iter()
            .any(|p| p.eq_ignore_ascii_case(&name));
        live.resources.insert(
            Address::new(&ctx.alias, Kind::Role, &name),
            LiveResource {
                resource: Resource::Role(Role {
                    name,
                    path: r.path().unwrap_or("/").to_string(),
                    description,
                    max_session_duration,
                    permissions_boundary: r
                        .permissions_boundary()
                        .and_then(|b| b.permissions_boundary_arn().map(str::to_string)),
                    tags,
                    trust,
                    inline,
                    managed,
                    instance_profile,
                }),
                arn,
                owner,
                versions: vec![],
                broken_principals,
                instance_profiles: r
                    .instance_profile_list()
                    .iter()
                    .map(|p| p.instance_profile_name().to_string())
                    .collect(),
                access_keys: vec![],
                delivered_key: None,
            },
        );
    }
    Ok(())
}

/// Users from GetAccountAuthorizationDetails, with the access keys of the users the plan
/// manages (declared with a key rule, or owned by the stack).
async fn read_users(
    account: &Account,
    stack: &str,
    hints: &KeyHints,
    users: &[aws_sdk_iam::types::UserDetail],
    live: &mut Live,
) -> Result<()> {
    let ctx = &account.ctx;
    let mut want_keys = Vec::new();
    for u in users {
        let name = u.user_name().unwrap_or_default().to_string();
        let mut tags: BTreeMap<String, String> = u
            .tags()
            .iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect();
        let owner = tags.remove(OWNER_TAG);
        let delivered_key = tags.remove(DELIVERED_TAG);
        let deactivated: BTreeMap<String, i64> = tags
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix(DEACTIVATED_TAG_PREFIX)?.to_string(),
                    v.parse().ok()?,
                ))
            })
            .collect();
        let issued: BTreeMap<String, i64> = tags
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    k.strip_prefix(ISSUED_TAG_PREFIX)?.to_string(),
                    v.parse().ok()?,
                ))
            })
            .collect();
        tags.retain(|k, _| {
            !k.starts_with(DEACTIVATED_TAG_PREFIX) && !k.starts_with(ISSUED_TAG_PREFIX)
        });
        let mut inline = BTreeMap::new();
        for ip in u.user_policy_list() {
            let pname = ip.policy_name().unwrap_or_default().to_string();
            let doc =
                PolicyDocument::from_live(ip.policy_document().unwrap_or("{}"), &ctx.partition)
                    .map_err(|e| anyhow!("user {name} inline policy {pname}: {e}"))?;
            inline.insert(pname, doc);
        }
        let lower = name.to_ascii_lowercase();
        let hint = hints.users.get(&lower);
        if hint.is_some() || owner.as_deref() == Some(stack) {
            want_keys.push((name.clone(), hint.cloned(), (deactivated, issued)));
        }
        live.resources.insert(
            Address::new(&ctx.alias, Kind::User, &name),
            LiveResource {
                resource: Resource::User(User {
                    name,
                    path: u.path().unwrap_or("/").to_string(),
                    permissions_boundary: u
                        .permissions_boundary()
                        .and_then(|b| b.permissions_boundary_arn().map(str::to_string)),
                    tags,
                    inline,
                    managed: u
                        .attached_managed_policies()
                        .iter()
                        .filter_map(|a| a.policy_arn().map(str::to_string))
                        .collect(),
                    groups: u.group_list().iter().cloned().collect(),
                    keys: None,
                }),
                arn: u.arn().unwrap_or_default().to_string(),
                owner,
                versions: vec![],
                broken_principals: vec![],
                instance_profiles: vec![],
                access_keys: vec![],
                delivered_key,
            },
        );
    }
    let reads =
        futures::stream::iter(want_keys.into_iter().map(|(name, hint, times)| async move {
            read_keys(account, &name, &hint, &times)
                .await
                .map(|k| (name, k))
        }))
        .buffer_unordered(KEY_READ_CONCURRENCY)
        .collect::<Vec<_>>()
        .await;
    for r in reads {
        let (name, keys) = r?;
        if let Some(l) = live
            .resources
            .get_mut(&Address::new(&ctx.alias, Kind::User, &name))
        {
            l.access_keys = keys;
        }
    }
    Ok(())
}

/// Times iamplan recorded on the user, by key ID: (deactivated, issued under --now).
type KeyTimes = (BTreeMap<String, i64>, BTreeMap<String, i64>);

async fn read_keys(
    account: &Account,
    user: &str,
    hint: &Option<UserKeyHint>,
    (deactivated, issued): &KeyTimes,
) -> Result<Vec<LiveKey>> {
    let iam = &account.iam;
    account.stats.count("ListAccessKeys");
    let listed = retry("ListAccessKeys", || {
        iam.list_access_keys().user_name(user).send()
    })
    .await
    .map_err(|e| anyhow!("reading the access keys of user {user}: {}", error_text(&e)))?;
    let mut keys = Vec::new();
    let metas = listed.access_key_metadata();
    for m in metas {
        let id = m.access_key_id().unwrap_or_default().to_string();
        let active = m.status() == Some(&StatusType::Active);
        // Last use matters where a key may be deactivated: when the rule rotates, when
        // there is more than one key, or when a key is not the sink's. Users only being
        // deleted (owned, no longer declared) need none.
        let needs_last_used = hint.as_ref().is_some_and(|hint| {
            hint.rotating || metas.len() > 1 || hint.sink_key.as_deref() != Some(id.as_str())
        });
        let last_used = if needs_last_used {
            account.stats.count("GetAccessKeyLastUsed");
            let out = retry("GetAccessKeyLastUsed", || {
                iam.get_access_key_last_used().access_key_id(&id).send()
            })
            .await
            .map_err(|e| {
                anyhow!(
                    "reading when access key {id} was last used: {}",
                    error_text(&e)
                )
            })?;
            out.access_key_last_used().and_then(|u| {
                u.last_used_date().map(|d| LastUsed {
                    when: d.secs(),
                    service: u.service_name().to_string(),
                    region: u.region().to_string(),
                })
            })
        } else {
            None
        };
        keys.push(LiveKey {
            tagged: deactivated.contains_key(&id) || issued.contains_key(&id),
            deactivated: deactivated.get(&id).copied(),
            created: issued
                .get(&id)
                .copied()
                .unwrap_or_else(|| m.create_date().map(|d| d.secs()).unwrap_or(0)),
            id,
            active,
            last_used,
        });
    }
    Ok(keys)
}

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
    fn paging_follows_is_truncated_even_on_short_pages() {
        use aws_sdk_iam::operation::list_roles::ListRolesOutput;
        let page = |truncated: bool, marker: Option<&str>| {
            ListRolesOutput::builder()
                .set_roles(Some(vec![]))
                .is_truncated(truncated)
                .set_marker(marker.map(str::to_string))
                .build()
                .unwrap()
        };
        // An empty page that says more remain is not the end.
        assert_eq!(page(true, Some("m2")).next_marker().as_deref(), Some("m2"));
        assert_eq!(page(false, Some("stale")).next_marker(), None);
        assert_eq!(page(true, None).next_marker(), None);
    }

    #[test]
    fn policy_description_marker_round_trips() {
        let desc = format!("invoke one function {}", policy_marker("demo"));
        assert_eq!(
            split_policy_description(&desc),
            ("invoke one function".into(), Some("demo".into()))
        );
        assert_eq!(
            split_policy_description(&policy_marker("x")),
            (String::new(), Some("x".into()))
        );
        assert_eq!(split_policy_description("plain"), ("plain".into(), None));
    }

    #[test]
    fn finds_unique_id_principals() {
        let doc = serde_json::json!({"Statement":[{"Principal":{"AWS":["AROAABCDEFGHIJKLMNOP","arn:aws:iam::1:root"]}}]});
        assert_eq!(
            unique_id_principals(&doc),
            vec!["AROAABCDEFGHIJKLMNOP".to_string()]
        );
    }
}
