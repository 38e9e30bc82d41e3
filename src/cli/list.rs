//! `iamplan list`: what the stack owns in live IAM, by kind, with ARNs, including what the
//! plan files no longer declare (the next apply deletes it).

use super::{Common, EXIT_OK, read_stack};
use crate::model::Kind;
use anyhow::Result;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct ListArgs {
    pub files: Vec<PathBuf>,
    pub common: Common,
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct Owned {
    kind: &'static str,
    name: String,
    account: String,
    arn: String,
    /// Declared in the plan files (else the next apply deletes it).
    declared: bool,
}

pub async fn run(args: ListArgs) -> Result<i32> {
    let (desired, _session, live) = read_stack(&args.files, &args.common).await?;
    let mut owned: Vec<Owned> = live
        .resources
        .iter()
        .filter(|(a, l)| {
            l.owner.as_deref() == Some(desired.stack.as_str())
                // Adopted managed policies carry no marker: owned while declared.
                || (a.kind == Kind::ManagedPolicy && desired.resources.get(*a).is_some_and(|d| d.adopt))
        })
        .map(|(a, l)| Owned {
            kind: a.kind.label(),
            name: l.resource.name().to_string(),
            account: a.account.clone(),
            arn: l.arn.clone(),
            declared: desired.resources.contains_key(a),
        })
        .collect();
    owned.sort_by(|a, b| (a.kind, &a.account, &a.name).cmp(&(b.kind, &b.account, &b.name)));
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&owned)?);
        return Ok(EXIT_OK);
    }
    if owned.is_empty() {
        outln!("Stack \"{}\" owns nothing in live IAM.", desired.stack);
        return Ok(EXIT_OK);
    }
    outln!("Stack \"{}\" owns in live IAM:", desired.stack);
    let w_kind = owned.iter().map(|o| o.kind.len()).max().unwrap_or(0);
    let w_name = owned.iter().map(|o| o.name.len()).max().unwrap_or(0);
    for o in &owned {
        let gone = if o.declared {
            ""
        } else {
            "  (not in the plan files: the next apply deletes it)"
        };
        outln!("  {:w_kind$}  {:w_name$}  {}{gone}", o.kind, o.name, o.arn);
    }
    Ok(EXIT_OK)
}
