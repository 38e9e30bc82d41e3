//! `iamplan force-unlock FILES...`: removes the stack's lock (`aws::lock`) in each account the
//! plan names, whoever holds it: for a lock left by a run that ended on another machine.

use super::{Common, EXIT_OK, Session};
use crate::spec;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct UnlockArgs {
    pub files: Vec<PathBuf>,
    pub common: Common,
}

pub async fn run(args: UnlockArgs) -> Result<i32> {
    let spec = spec::load(&args.files)?;
    let stack = spec.stack_name()?;
    let specs = spec.accounts()?;
    let session = Session::connect(&specs, &args.common.target, &spec.optional_accounts()).await?;
    for (alias, account) in &session.accounts {
        match crate::aws::lock::force_unlock(account, &stack).await? {
            Some(held_by) => {
                outln!("account {alias}: removed the lock of stack \"{stack}\" ({held_by})")
            }
            None => outln!("account {alias}: stack \"{stack}\" was not locked"),
        }
    }
    Ok(EXIT_OK)
}
