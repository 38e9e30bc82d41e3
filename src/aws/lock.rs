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
                    "warning: stack \"{stack}\" was locked in account {} by a run of this host that no longer runs ({held_by}): taking the lock over",
                    account.ctx.alias
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
                "stack \"{stack}\" is locked in account {} ({held_by}): another apply or rotate of this stack is running, or one on another machine ended without releasing the lock. Wait for it; if no run is left, `iamplan force-unlock` with the same plan files removes the lock (policy {arn})",
                account.ctx.alias
            ))
        }
    }
}

/// Who this process is, as a lock's description says it.
fn holder(caller: &str) -> String {
    format!(
        "held by {caller} on {} (pid {}{}) since {}",
        hostname(),
        std::process::id(),
        pid_namespace()
            .map(|n| format!(", {n}"))
            .unwrap_or_default(),
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

/// Whether a holder's description names a process of this host and process namespace that
/// no longer runs. Anywhere liveness cannot be checked (no /proc, an unknown host name), a
/// lock is never taken for dead.
fn dead_here(held_by: &str) -> bool {
    let host = hostname();
    let (Some(ns), true) = (pid_namespace(), host != UNKNOWN_HOST) else {
        return false;
    };
    let Some(rest) = held_by.split(&format!(" on {host} (pid ")).nth(1) else {
        return false;
    };
    let Some((pid, rest)) = rest.split_once(", ") else {
        return false;
    };
    let same_ns = rest.split(')').next() == Some(ns.as_str());
    let pid: Option<u32> = pid.parse().ok();
    same_ns
        && pid
            .is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists())
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
            let policy = account
                .iam
                .get_policy()
                .policy_arn(&arn)
                .send()
                .await
                .ok()
                .and_then(|o| o.policy().cloned());
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
        if description(&account.iam, &self.arn).await.as_deref() != Some(self.holder.as_str()) {
            return;
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

/// Who a lock says holds it (its description), if it can be read.
async fn description(iam: &aws_sdk_iam::Client, arn: &str) -> Option<String> {
    let out = iam.get_policy().policy_arn(arn).send().await.ok()?;
    out.policy()?.description().map(str::to_string)
}

/// Removes the stack's lock only if it still names `held_by`.
async fn remove_if_held_by(account: &Account, stack: &str, held_by: &str) -> Result<()> {
    let arn = account.ctx.arn("policy", PATH, &name(stack));
    if description(&account.iam, &arn).await.as_deref() == Some(held_by) {
        let _ = account
            .call("DeletePolicy", || {
                account.iam.delete_policy().policy_arn(&arn).send()
            })
            .await;
    }
    Ok(())
}

/// Removes the stack's lock in the account, whoever holds it; returns its holder, if there
/// was a lock.
pub async fn force_unlock(account: &Account, stack: &str) -> Result<Option<String>> {
    let arn = account.ctx.arn("policy", PATH, &name(stack));
    let held_by = match account.iam.get_policy().policy_arn(&arn).send().await {
        Ok(o) => o.policy().and_then(|p| p.description().map(str::to_string)),
        Err(e) => {
            let err = AwsError::from_sdk(&e);
            if err.is("NoSuchEntity") {
                return Ok(None);
            }
            return Err(anyhow!("reading the lock {arn}: {err}"));
        }
    };
    account
        .call("DeletePolicy", || {
            account.iam.delete_policy().policy_arn(&arn).send()
        })
        .await
        .map_err(|e| anyhow!("deleting the lock {arn}: {}", AwsError::from_sdk(&e)))?;
    Ok(Some(held_by.unwrap_or_else(|| "an unknown run".into())))
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
        let gone = format!(
            "held by x on {} (pid 4194304, {ns}) since 2026-11-25T08:00:00Z",
            hostname()
        );
        assert!(dead_here(&gone));
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
}
