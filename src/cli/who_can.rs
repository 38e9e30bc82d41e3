//! `iamplan who-can FILES --action A --resource ARN [--context K=V]`: the plan's roles and
//! users, and the outside principals its trust policies name, that can do the action on the
//! resource, directly or through chains of `sts:AssumeRole`, each with its path. Offline.

use super::explain::{check_action, context, warn_unknown_action};
use super::validate::print_all;
use super::{EXIT_ERROR, EXIT_OK};
use crate::access::{World, who_can};
use crate::spec;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct WhoCanArgs {
    pub files: Vec<PathBuf>,
    pub action: String,
    /// An ARN, or `role/NAME`/`user/NAME` of the plan.
    pub resource: String,
    pub context: Vec<String>,
    pub account: Option<String>,
    pub json: bool,
}

pub fn run(args: WhoCanArgs) -> Result<i32> {
    let (checked, found) = spec::check(&args.files);
    print_all("warning", &found.warnings);
    print_all("error", &found.errors);
    let Some((_, desired)) = checked.filter(|_| found.errors.is_empty()) else {
        eprintln!("who-can needs plan files without errors: fix them first (`iamplan validate`)");
        return Ok(EXIT_ERROR);
    };
    let world = World::new(&desired);
    check_action(&args.action)?;
    warn_unknown_action(&args.action);
    let mut ctx = context(&args.context)?;
    // "Who can" asks about every caller, not one request: what a caller chooses when it
    // assumes a role (an ExternalId, a session name) is not known to be absent. A trust
    // that wants an ExternalId then shows its principal as possible, with the condition,
    // rather than not at all; `--context sts:ExternalId=...` decides it.
    for key in [
        "sts:ExternalId",
        "sts:RoleSessionName",
        "sts:SourceIdentity",
        "aws:TagKeys",
    ] {
        if !args.context.iter().any(|pair| {
            pair.split('=')
                .next()
                .is_some_and(|k| k.trim().eq_ignore_ascii_case(key))
        }) {
            ctx.mark_unknown(key);
        }
    }
    let resource = world.resource(&args.resource, args.account.as_deref())?;
    let reach = who_can(&world, &args.action, &resource, &ctx);
    if args.json {
        let out = serde_json::json!({
            "format_version": "1",
            "action": args.action,
            "resource": resource,
            "principals": reach,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(EXIT_OK);
    }
    outln!("who can {} on {resource}:", args.action);
    for r in &reach {
        let path: Vec<String> = r
            .path
            .iter()
            .map(|s| {
                format!(
                    "{} {}{}",
                    s.action,
                    s.to,
                    if s.certain { "" } else { " (?)" }
                )
            })
            .collect();
        outln!(
            "  {}{}: {}",
            if r.certain { "" } else { "possibly " },
            r.principal,
            path.join(" -> ")
        );
        for why in &r.reasons {
            outln!("      because {why}");
        }
    }
    let certain = reach.iter().filter(|r| r.certain).count();
    outln!(
        "{} principal{} ({certain} certain, {} possible)",
        reach.len(),
        if reach.len() == 1 { "" } else { "s" },
        reach.len() - certain
    );
    Ok(EXIT_OK)
}
