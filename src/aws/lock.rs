//! The stack lock: two applies (or rotations) of one stack at once lose updates or leave
//! keys nobody holds. There is no state file to lock, so the lock is an IAM resource that
//! can be created only if absent: a managed policy `iamplan-lock-<stack>` under the path
//! `/iamplan/`, whose description says who holds it, from where and since when. It grants
//! and blocks nothing (it denies an action no service has, and is attached to no one).
//! `apply` and `rotate` take it in each account before they read, and delete it when done;
//! `plan` does not. A lock left by a run that died is reported with its holder, and
//! `iamplan force-unlock FILES` removes it.

use super::{Account, AwsError};
use crate::iam::managed_policy::LOCK_PREFIX;
use anyhow::{Result, anyhow};
use std::path::Path;

const PATH: &str = "/iamplan/";
const DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"StackLock","Effect":"Deny","Action":"iamplan:StackLock","Resource":"*"}]}"#;

pub fn name(stack: &str) -> String {
    format!("{LOCK_PREFIX}{stack}")
}

/// Whether a live policy is a stack lock (not a resource of any plan: plans may not use
/// the prefix).
pub fn is_lock(policy_name: &str) -> bool {
    policy_name.starts_with(LOCK_PREFIX)
}

/// Every lock this process holds, so that a signal handler can give them back before the
/// process ends (a Ctrl-C while the account is read, or at the prompt).
static HELD: std::sync::Mutex<Vec<(aws_sdk_iam::Client, String, String)>> =
    std::sync::Mutex::new(Vec::new());

fn held() -> std::sync::MutexGuard<'static, Vec<(aws_sdk_iam::Client, String, String)>> {
    HELD.lock().unwrap_or_else(|e| e.into_inner())
}

/// Gives back every lock this process holds (still its own), for a signal handler.
pub async fn release_all_held() {
    let locks: Vec<_> = std::mem::take(&mut *held());
    for (iam, arn, holder) in locks {
        if description(&iam, &arn).await.as_deref() == Some(holder.as_str()) {
            let _ = iam.delete_policy().policy_arn(&arn).send().await;
        }
    }
}

/// A lock this process holds in one account.
#[derive(Debug)]
pub struct Lock {
    arn: String,
    /// The description it was made with: only a lock that still says it is released.
    holder: String,
}

/// Takes the stack's lock in the account, or says who holds it. A lock left by a process
/// that provably no longer runs (same host and process namespace, no such pid) is taken
/// over, with a warning; then the time the dead run took it comes back too (what it made
/// since then may be half-made).
pub async fn acquire(account: &Account, stack: &str) -> Result<(Lock, Option<i64>)> {
    match try_acquire(account, stack).await? {
        Ok(lock) => Ok((lock, None)),
        Err((held_by, made)) => {
            if dead_here(&held_by) {
                eprintln!(
                    "warning: stack \"{stack}\" was locked in account {} by a run of this host that no longer runs ({}): taking the lock over",
                    account.ctx.alias,
                    shown(&held_by)
                );
                // Only the dead run's lock is removed: if another run took it over first,
                // the description differs and this run waits its turn like any other.
                remove_if_held_by(account, stack, &held_by).await?;
                if let Ok(lock) = try_acquire(account, stack).await? {
                    // Since the dead run took the lock, by IAM's clock; its own words (this
                    // host's clock) only when IAM gave no date.
                    let since = made.or_else(|| since(&held_by)).unwrap_or(0);
                    return Ok((lock, Some(since)));
                }
            }
            let arn = account.ctx.arn("policy", PATH, &name(stack));
            Err(anyhow!(
                "stack \"{stack}\" is locked in account {} ({}): another apply or rotate of this stack is running, or one on another machine ended without releasing the lock. Wait for it; if no run is left, `iamplan force-unlock` with the same plan files removes the lock (policy {arn})",
                account.ctx.alias,
                shown(&held_by)
            ))
        }
    }
}

/// A lock's description as it may be shown: written by whoever could create the policy,
/// so a control character (a line break that would print a forged line) is escaped.
pub fn shown(description: &str) -> String {
    description
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// Who this process is, as a lock's description says it.
fn holder(caller: &str) -> String {
    format!(
        "held by {caller} on {} (pid {}{}){} since {}",
        hostname(),
        std::process::id(),
        pid_namespace()
            .map(|n| format!(", {n}"))
            .unwrap_or_default(),
        boot_id().map(|b| format!(" boot {b}")).unwrap_or_default(),
        // Whole seconds, truncated: never later than the moment it names.
        jiff::Timestamp::from_second(jiff::Timestamp::now().as_second())
            .unwrap_or_else(|_| jiff::Timestamp::now())
    )
}

/// When the run a lock's description names took it.
fn since(held_by: &str) -> Option<i64> {
    let t = held_by.rsplit(" since ").next()?;
    t.trim()
        .parse::<jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

/// Whether a holder's description names a process of this very boot of this host, in this
/// process namespace, that no longer runs. Host names repeat (cloned images, default
/// names) and every host's initial pid namespace has the same inode: only the boot id
/// tells two machines apart. Anywhere liveness cannot be checked (no /proc, an unknown
/// host name, a lock that records no boot), a lock is never taken for dead.
fn dead_here(held_by: &str) -> bool {
    let host = hostname();
    let (Some(ns), Some(boot), true) = (pid_namespace(), boot_id(), host != UNKNOWN_HOST) else {
        return false;
    };
    let Some(rest) = held_by.split(&format!(" on {host} (pid ")).nth(1) else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(", ") else {
        return false;
    };
    let Some((their_ns, rest)) = rest.split_once(')') else {
        return false;
    };
    let same_boot = rest.starts_with(&format!(" boot {boot} since "));
    let pid: Option<u32> = pid.parse().ok();
    their_ns == ns
        && same_boot
        && pid
            .is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists())
}

/// What tells this boot of this machine from any other (Linux gives each boot a random id).
fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty() && b.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
}

/// This process's pid namespace (`pid:[4026531836]`): pids are comparable only within one.
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The lock, or (when another run holds it) its holder's description.
async fn try_acquire(
    account: &Account,
    stack: &str,
) -> Result<std::result::Result<Lock, (String, Option<i64>)>> {
    let holder = holder(&account.caller);
    let name = name(stack);
    let arn = account.ctx.arn("policy", PATH, &name);
    let created = account
        .call("CreatePolicy", || {
            account
                .iam
                .create_policy()
                .policy_name(&name)
                .path(PATH)
                .description(&holder)
                .policy_document(DOCUMENT)
                .send()
        })
        .await;
    match created {
        Ok(_) => {
            tracing::info!(
                "took the lock of stack {stack} in account {}",
                account.ctx.alias
            );
            held().push((account.iam.clone(), arn.clone(), holder.clone()));
            Ok(Ok(Lock { arn, holder }))
        }
        Err(e) => {
            let err = AwsError::from_sdk(&e);
            if !err.is("EntityAlreadyExists") {
                return Err(anyhow!(
                    "cannot take the lock of stack \"{stack}\" in account {} (creating the policy {name}): {err}",
                    account.ctx.alias
                ));
            }
            // Read as any other call is (retried): a failed read must not pass for
            // another holder, least of all when the lock is this run's own lost create.
            let policy = read_lock(account, &arn).await.map_err(|err| {
                anyhow!(
                    "cannot take the lock of stack \"{stack}\" in account {}: it exists, and who holds it cannot be read ({err})",
                    account.ctx.alias
                )
            })?;
            let held_by = policy
                .as_ref()
                .and_then(|p| p.description().map(str::to_string))
                .unwrap_or_else(|| "held by an unknown run".into());
            // Our own create, whose answer was lost and which the SDK sent again.
            if held_by == holder {
                held().push((account.iam.clone(), arn.clone(), holder.clone()));
                return Ok(Ok(Lock { arn, holder }));
            }
            // When IAM made it, on IAM's clock (the clock keys' creation times use).
            let made = policy.and_then(|p| p.create_date().map(|d| d.secs()));
            Ok(Err((held_by, made)))
        }
    }
}

impl Lock {
    /// Gives the lock back, if it is still this run's (a run that took it over as dead
    /// keeps it). A failure is reported, not fatal: the work is done.
    pub async fn release(self, account: &Account) {
        held().retain(|(_, arn, _)| *arn != self.arn);
        match read_lock(account, &self.arn).await {
            Ok(p) if p.as_ref().and_then(|p| p.description()) == Some(self.holder.as_str()) => {}
            Ok(_) => return,
            Err(err) => {
                eprintln!(
                    "warning: the stack lock {} could not be read to release it ({err}): remove it with `iamplan force-unlock`",
                    self.arn
                );
                return;
            }
        }
        let deleted = account
            .call("DeletePolicy", || {
                account.iam.delete_policy().policy_arn(&self.arn).send()
            })
            .await;
        if let Err(e) = deleted {
            let err = AwsError::from_sdk(&e);
            if !err.is("NoSuchEntity") {
                eprintln!(
                    "warning: the stack lock {} could not be released ({err}): remove it with `iamplan force-unlock`",
                    self.arn
                );
            }
        }
    }
}

/// The lock policy, if there is one; the read is retried as any other call.
async fn read_lock(
    account: &Account,
    arn: &str,
) -> Result<Option<aws_sdk_iam::types::Policy>, AwsError> {
    match account
        .call("GetPolicy", || {
            account.iam.get_policy().policy_arn(arn).send()
        })
        .await
    {
        Ok(o) => Ok(o.policy().cloned()),
        Err(e) => match AwsError::from_sdk(&e) {
            e if e.is("NoSuchEntity") => Ok(None),
            e => Err(e),
        },
    }
}

/// Who a lock says holds it (its description), if it can be read; for the signal handler,
/// which has a client and no time for retries.
async fn description(iam: &aws_sdk_iam::Client, arn: &str) -> Option<String> {
    let out = iam.get_policy().policy_arn(arn).send().await.ok()?;
    out.policy()?.description().map(str::to_string)
}

/// Removes the stack's lock only if it still names `held_by`.
async fn remove_if_held_by(account: &Account, stack: &str, held_by: &str) -> Result<()> {
    let arn = account.ctx.arn("policy", PATH, &name(stack));
    let policy = read_lock(account, &arn).await?;
    if policy.as_ref().and_then(|p| p.description()) == Some(held_by) {
        let _ = account
            .call("DeletePolicy", || {
                account.iam.delete_policy().policy_arn(&arn).send()
            })
            .await;
    }
    Ok(())
}

/// Removes the stack's lock in the account, whoever holds it; returns its holder (escaped
/// for display, see `shown`), if there was a lock.
///
/// A lock policy attached to something cannot be deleted (IAM's DeleteConflict). It is
/// then not detached but named, with the commands that detach it: force-unlock removes the
/// lock and writes to nothing else, and a policy at the lock's name that someone attached
/// may no longer be the lock's empty document.
pub async fn force_unlock(account: &Account, stack: &str) -> Result<Option<String>> {
    let arn = account.ctx.arn("policy", PATH, &name(stack));
    let Some(policy) = read_lock(account, &arn)
        .await
        .map_err(|err| anyhow!("reading the lock {arn}: {err}"))?
    else {
        return Ok(None);
    };
    let held_by = policy.description().map(shown);
    let deleted = account
        .call("DeletePolicy", || {
            account.iam.delete_policy().policy_arn(&arn).send()
        })
        .await;
    if let Err(e) = deleted {
        let err = AwsError::from_sdk(&e);
        if err.is("DeleteConflict") {
            let attached = attached_to(account, &arn).await?;
            if !attached.is_empty() {
                let names: Vec<String> = attached
                    .iter()
                    .map(|(kind, n)| format!("{kind} {n}"))
                    .collect();
                let commands: Vec<String> = attached
                    .iter()
                    .map(|(kind, n)| {
                        format!(
                            "  aws iam detach-{kind}-policy --{kind}-name {n} --policy-arn {arn}"
                        )
                    })
                    .collect();
                return Err(anyhow!(
                    "the lock {arn} of stack \"{stack}\" ({}) is attached to {}, and IAM deletes only a policy attached to nothing. Detach it, then run force-unlock again:\n{}",
                    held_by.as_deref().unwrap_or("an unknown run"),
                    names.join(", "),
                    commands.join("\n")
                ));
            }
        }
        return Err(anyhow!("deleting the lock {arn}: {err}"));
    }
    Ok(Some(held_by.unwrap_or_else(|| "an unknown run".into())))
}

/// The roles, users and groups a policy is attached to, as (kind, name).
async fn attached_to(account: &Account, arn: &str) -> Result<Vec<(&'static str, String)>> {
    let mut found = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let out = account
            .call("ListEntitiesForPolicy", || {
                account
                    .iam
                    .list_entities_for_policy()
                    .policy_arn(arn)
                    .set_marker(marker.clone())
                    .send()
            })
            .await
            .map_err(|e| {
                anyhow!(
                    "listing what the lock {arn} is attached to: {}",
                    AwsError::from_sdk(&e)
                )
            })?;
        found.extend(
            out.policy_roles()
                .iter()
                .filter_map(|r| r.role_name())
                .map(|n| ("role", n.to_string())),
        );
        found.extend(
            out.policy_users()
                .iter()
                .filter_map(|u| u.user_name())
                .map(|n| ("user", n.to_string())),
        );
        found.extend(
            out.policy_groups()
                .iter()
                .filter_map(|g| g.group_name())
                .map(|n| ("group", n.to_string())),
        );
        match out.marker() {
            Some(m) if out.is_truncated() => marker = Some(m.to_string()),
            _ => return Ok(found),
        }
    }
}

const UNKNOWN_HOST: &str = "an unknown host";

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| UNKNOWN_HOST.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_process_of_this_host_and_namespace_that_is_gone_is_dead() {
        let me = holder("arn:aws:iam::000000000000:user/ci");
        // This very process is alive.
        assert!(!dead_here(&me));
        let ns = pid_namespace().expect("a Linux test machine has /proc");
        let boot = boot_id().expect("a Linux test machine has a boot id");
        let gone = format!(
            "held by x on {} (pid 4194304, {ns}) boot {boot} since 2026-11-25T08:00:00Z",
            hostname()
        );
        assert!(dead_here(&gone));
        // Another boot (another machine of the same name), or no boot recorded: cannot
        // tell, never dead.
        let other_boot = format!(
            "held by x on {} (pid 4194304, {ns}) boot 00000000-0000-0000-0000-000000000000 since 2026-11-25T08:00:00Z",
            hostname()
        );
        assert!(!dead_here(&other_boot));
        let no_boot = format!(
            "held by x on {} (pid 4194304, {ns}) since 2026-11-25T08:00:00Z",
            hostname()
        );
        assert!(!dead_here(&no_boot));
        // Another namespace or host: cannot tell, never dead.
        let other_ns = format!(
            "held by x on {} (pid 4194304, pid:[1]) since 2026-11-25T08:00:00Z",
            hostname()
        );
        assert!(!dead_here(&other_ns));
        assert!(!dead_here(
            "held by x on build-7 (pid 4194304, pid:[1]) since 2026-11-25T08:00:00Z"
        ));
        assert_eq!(since(&gone), Some(1_795_593_600));
    }

    #[test]
    fn a_description_is_shown_without_control_characters() {
        assert_eq!(
            shown("held by x\nApply complete!\t\u{1b}[2J"),
            "held by x\\nApply complete!\\t\\u{1b}[2J"
        );
        assert_eq!(shown("held by é on h"), "held by é on h");
    }
}
