//! Reads an account's IAM state in a number of calls that grows with pages, not with
//! resources: GetAccountAuthorizationDetails for roles and customer-managed policies,
//! and ListRoles for the two role attributes it omits (description, max session duration).

use super::{Account, error_text};
use crate::iam::{Group, ManagedPolicy, Role, User};
use crate::keys::{KeyHints, LastUsed, LiveKey, UserKeyHint};
use crate::model::{Address, Kind, Live, LiveResource, Resource};
use crate::ownership::{KeyHistory, OWNER_TAG};
use anyhow::{Result, anyhow};
use aws_sdk_iam::types::{EntityType, PolicyScopeType, StatusType};
use futures::StreamExt;
use std::collections::BTreeMap;

/// IAM's largest page.
const PAGE: i32 = 1000;

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
        let page = account
            .call(op, || call(marker.clone()))
            .await
            .map_err(|e| {
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

/// What an account's reads give before the plan's key hints are known: every role,
/// policy, group and user, converted page by page as GetAccountAuthorizationDetails
/// returns them (a page's SDK structures are dropped before the next arrives), and the
/// credential report if it was asked for. Users' keys come later (`read_live`).
pub struct Fetched {
    live: Live,
    report: Option<super::report::CredentialReport>,
}

/// Reads an account's state. A plan starts this alongside GetCallerIdentity
/// (`connect`'s prefetch): nothing here needs the account's ID, only its alias and
/// partition.
pub async fn fetch(account: &Account, want_report: bool) -> Result<Fetched> {
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
        let mut live = Live::default();
        let mut policies = Vec::new();
        let mut unreadable = None;
        let insert = |live: &mut Live, lr: LiveResource| {
            let addr = Address::new(&ctx.alias, lr.resource.kind(), lr.resource.name());
            live.resources.insert(addr, lr);
        };
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
            |page| {
                // Converted now, so that only the plan's own form of each entity is held:
                // at thousands of roles the SDK's copies would be most of the memory.
                let converted = page
                    .role_detail_list()
                    .iter()
                    .map(|r| Role::from_live(r, None, ctx))
                    .chain(
                        page.user_detail_list()
                            .iter()
                            .map(|u| User::from_live(u, ctx)),
                    )
                    .chain(
                        page.group_detail_list()
                            .iter()
                            .map(|g| Group::from_live(g, ctx)),
                    );
                for lr in converted {
                    match lr {
                        Ok(lr) => insert(&mut live, lr),
                        Err(e) => {
                            unreadable.get_or_insert(e);
                        }
                    }
                }
                // Policies wait for their descriptions (below); they are a tenth of roles.
                policies.extend(page.policies().iter().cloned());
            },
        )
        .await?;
        if let Some(e) = unreadable {
            return Err(e.into());
        }
        // GetAccountAuthorizationDetails should carry each policy's description (where the
        // ownership marker is); some emulators leave it out. ListPolicies (per page, not
        // per policy) then supplies it. It runs as soon as the pages are in, alongside the
        // report.
        let mut listed: BTreeMap<String, String> = BTreeMap::new();
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
                        listed.insert(
                            p.arn().unwrap_or_default().to_string(),
                            p.description().unwrap_or("").to_string(),
                        );
                    }
                },
            )
            .await?;
        }
        for p in &policies {
            match ManagedPolicy::from_live(p, p.arn().and_then(|a| listed.get(a)), ctx)? {
                Some(lr) => insert(&mut live, lr),
                None => tracing::warn!(
                    "managed policy {}: no default version document returned; skipped",
                    p.arn().unwrap_or_default()
                ),
            }
        }
        Ok::<Live, anyhow::Error>(live)
    };
    // Every user's keys in two calls, when there are enough users to be worth it.
    let report = async {
        if !want_report {
            return None;
        }
        match super::report::fetch(account).await {
            Ok(r) => Some(r),
            Err(e) => {
                tracing::debug!("{e}: reading access keys user by user");
                None
            }
        }
    };
    let (live, role_attrs, report) = tokio::join!(gaad, list_roles, report);
    let mut live = live?;
    let role_attrs = role_attrs?;
    for lr in live.resources.values_mut() {
        if let Resource::Role(role) = &mut lr.resource
            && let Some((description, max)) = role_attrs.get(&role.name.to_ascii_lowercase())
        {
            role.description = description.clone();
            role.max_session_duration = *max;
        }
    }
    Ok(Fetched { live, report })
}

/// Whether the credential report is worth asking for, for this many key-managed users.
pub fn wants_report(users_with_keys: usize) -> bool {
    users_with_keys >= super::report::MIN_USERS
}

/// The account's state as the plan needs it: what `fetch` read (or reads now, if no
/// prefetch ran), then what depends on the plan: adopted policies' owners and the keys
/// of the users it manages.
pub async fn read_live(
    account: &Account,
    stack: &str,
    hints: &KeyHints,
    live: &mut Live,
) -> Result<()> {
    let prefetched = account.prefetched.lock().expect("prefetch lock").take();
    let fetched = match prefetched {
        Some(f) => f?,
        None => fetch(account, wants_report(hints.users.len())).await?,
    };
    live.resources.extend(fetched.live.resources);
    adopted_policy_owners(account, hints, live).await?;
    read_keys_of_users(account, stack, hints, fetched.report.as_ref(), live).await
}

/// The owner of each policy the plan declares with `adopt = true` that has no marker in
/// its description: its tag (one ListPolicyTags each; only adopted policies need it).
pub async fn adopted_policy_owners(
    account: &Account,
    hints: &KeyHints,
    live: &mut Live,
) -> Result<()> {
    let ctx = &account.ctx;
    for name in &hints.adopted_policies {
        let addr = Address::new(&ctx.alias, Kind::ManagedPolicy, name);
        let Some(lr) = live.resources.get_mut(&addr) else {
            continue;
        };
        if lr.owner.is_some() {
            continue;
        }
        let arn = lr.arn.clone();
        let tags = account
            .call("ListPolicyTags", || {
                account.iam.list_policy_tags().policy_arn(&arn).send()
            })
            .await
            .map_err(|e| anyhow!("reading the tags of policy {arn}: {}", error_text(&e)))?;
        lr.owner = tags
            .tags()
            .iter()
            .find(|t| t.key() == OWNER_TAG)
            .map(|t| t.value().to_string());
    }
    Ok(())
}

/// The access keys of the users the plan manages (declared with a key rule, or owned by
/// the stack): from the credential report where it names them exactly, else one
/// ListAccessKeys each.
async fn read_keys_of_users(
    account: &Account,
    stack: &str,
    hints: &KeyHints,
    report: Option<&super::report::CredentialReport>,
    live: &mut Live,
) -> Result<()> {
    let ctx = &account.ctx;
    let mut want_keys = Vec::new();
    for lr in live.resources.values_mut() {
        let owned = lr.owner.as_deref() == Some(stack);
        let Resource::User(user) = &mut lr.resource else {
            continue;
        };
        let hint = hints.users.get(&user.name.to_ascii_lowercase());
        if hint.is_none() && !owned {
            continue;
        }
        match report.and_then(|r| r.keys_of(&user.name, &user.key_history, hint)) {
            Some(keys) => user.access_keys = keys,
            None => want_keys.push((user.name.clone(), hint.cloned(), user.key_history.clone())),
        }
    }
    let reads =
        futures::stream::iter(want_keys.into_iter().map(|(name, hint, times)| async move {
            read_keys(account, &name, &hint, &times)
                .await
                .map(|k| (name, k))
        }))
        // Per user by IAM's design; how many run at once is the API's adaptive limit.
        .buffer_unordered(account.limits.max())
        .collect::<Vec<_>>()
        .await;
    for r in reads {
        let (name, keys) = r?;
        if let Some(LiveResource {
            resource: Resource::User(u),
            ..
        }) = live
            .resources
            .get_mut(&Address::new(&ctx.alias, Kind::User, &name))
        {
            u.access_keys = keys;
        }
    }
    Ok(())
}

/// A user's access keys as IAM lists them (no last use): what `export` reports.
pub async fn access_keys(account: &Account, user: &str) -> Result<Vec<LiveKey>> {
    read_keys(account, user, &None, &KeyHistory::default()).await
}

async fn read_keys(
    account: &Account,
    user: &str,
    hint: &Option<UserKeyHint>,
    history: &KeyHistory,
) -> Result<Vec<LiveKey>> {
    let iam = &account.iam;
    let listed = account
        .call("ListAccessKeys", || {
            iam.list_access_keys().user_name(user).send()
        })
        .await
        .map_err(|e| anyhow!("reading the access keys of user {user}: {}", error_text(&e)))?;
    let mut keys = Vec::new();
    let metas = listed.access_key_metadata();
    for m in metas {
        let id = m.access_key_id().unwrap_or_default().to_string();
        let active = m.status() == Some(&StatusType::Active);
        let last_used = if needs_last_used(hint.as_ref(), metas.len(), &id) {
            let out = account
                .call("GetAccessKeyLastUsed", || {
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
            tagged: history.mentions(&id),
            pending: history.pending_made(&id),
            deactivated: history.deactivated.get(&id).copied(),
            created: history
                .issued
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

/// Whether a key's last use matters: where it may be deactivated, when the rule rotates,
/// when the user has more than one key, or when the key is not the sink's. Users only
/// being deleted (owned, no longer declared) need none.
pub(super) fn needs_last_used(hint: Option<&UserKeyHint>, keys: usize, id: &str) -> bool {
    hint.is_some_and(|hint| hint.rotating || keys > 1 || hint.sink_key.as_deref() != Some(id))
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
}
