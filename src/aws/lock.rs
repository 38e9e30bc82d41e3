//! The stack lock: two applies (or rotations) of one stack at once lose updates or leave
//! keys nobody holds. There is no state file to lock, so the lock is an IAM resource that
//! can be created only if absent: a managed policy `iamplan-lock-<stack>` under the path
//! `/iamplan/`, whose description says who holds it, from where and since when. It grants
//! and blocks nothing (it denies an action no service has, and is attached to no one).
//! `apply` and `rotate` take it in each account before they read, and delete it when done;
//! `plan` does not. A lock left by a run that died is reported with its holder, and
//! `iamplan force-unlock FILES` removes it.

use super::{Account, AwsError, retry};
use anyhow::{Result, anyhow};
use std::path::Path;

const PATH: &str = "/iamplan/";
const DOCUMENT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"StackLock","Effect":"Deny","Action":"iamplan:StackLock","Resource":"*"}]}"#;

pub fn name(stack: &str) -> String {
    format!("iamplan-lock-{stack}")
}

/// Whether a live policy is a stack lock (not a resource of any plan).
pub fn is_lock(policy_name: &str) -> bool {
    policy_name.starts_with("iamplan-lock-")
}

/// A lock this process holds in one account.
#[derive(Debug)]
pub struct Lock {
    arn: String,
}

/// Takes the stack's lock in the account, or says who holds it. A lock left by a process
/// of this host that no longer runs (a crash, a kill) is taken over, with a warning; the
/// flag says so (the dead run may have left something half-made).
pub async fn acquire(account: &Account, stack: &str) -> Result<(Lock, bool)> {
    match try_acquire(account, stack).await? {
        Ok(lock) => Ok((lock, false)),
        Err(held_by) => {
            if dead_here(&held_by) {
                eprintln!(
                    "warning: stack \"{stack}\" was locked in account {} by a run of this host that no longer runs ({held_by}): taking the lock over",
                    account.ctx.alias
                );
                force_unlock(account, stack).await?;
                if let Ok(lock) = try_acquire(account, stack).await? {
                    return Ok((lock, true));
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

/// Whether a holder's description names this host and a process that is gone.
fn dead_here(held_by: &str) -> bool {
    let host = hostname();
    let Some(rest) = held_by.split(&format!(" on {host} (pid ")).nth(1) else {
        return false;
    };
    let pid: Option<u32> = rest.split(')').next().and_then(|p| p.parse().ok());
    pid.is_some_and(|p| p != std::process::id() && !Path::new(&format!("/proc/{p}")).exists())
}

/// The lock, or (when another run holds it) its holder's description.
async fn try_acquire(account: &Account, stack: &str) -> Result<std::result::Result<Lock, String>> {
    let holder = format!(
        "held by {} on {} (pid {}) since {}",
        account.caller,
        hostname(),
        std::process::id(),
        jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .unwrap_or_else(|_| jiff::Timestamp::now())
    );
    let name = name(stack);
    let arn = account.ctx.arn("policy", PATH, &name);
    account.stats.count("CreatePolicy");
    let created = retry("CreatePolicy", || {
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
            Ok(Ok(Lock { arn }))
        }
        Err(e) => {
            let err = AwsError::from_sdk(&e);
            if !err.is("EntityAlreadyExists") {
                return Err(anyhow!(
                    "cannot take the lock of stack \"{stack}\" in account {} (creating the policy {name}): {err}",
                    account.ctx.alias
                ));
            }
            let held_by = account
                .iam
                .get_policy()
                .policy_arn(&arn)
                .send()
                .await
                .ok()
                .and_then(|o| o.policy().and_then(|p| p.description().map(str::to_string)))
                .unwrap_or_else(|| "held by an unknown run".into());
            // Our own create, whose answer was lost and which the SDK sent again.
            if held_by == holder {
                return Ok(Ok(Lock { arn }));
            }
            Ok(Err(held_by))
        }
    }
}

impl Lock {
    /// Gives the lock back. A failure is reported, not fatal: the work is done.
    pub async fn release(self, account: &Account) {
        account.stats.count("DeletePolicy");
        let deleted = retry("DeletePolicy", || {
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
    account.stats.count("DeletePolicy");
    retry("DeletePolicy", || {
        account.iam.delete_policy().policy_arn(&arn).send()
    })
    .await
    .map_err(|e| anyhow!("deleting the lock {arn}: {}", AwsError::from_sdk(&e)))?;
    Ok(Some(held_by.unwrap_or_else(|| "an unknown run".into())))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "an unknown host".into())
}
