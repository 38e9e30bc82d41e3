//! `iamplan explain FILES --principal role/NAME --action A --resource ARN [--context K=V]`:
//! whether the plan's policies allow one request, and which statements decided it. Offline.
//! Exit 0 allowed, 3 denied, 4 unknown (`EXIT_DENIED`, `EXIT_UNKNOWN`), 1 on bad input.

use super::validate::print_all;
use super::{EXIT_DENIED, EXIT_ERROR, EXIT_OK, EXIT_UNKNOWN};
use crate::access::{AccessError, Context, Decision, World};
use crate::spec;
use anyhow::Result;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct ExplainArgs {
    pub files: Vec<PathBuf>,
    /// `role/NAME`, `user/NAME`, or an ARN of the plan's role or user.
    pub principal: String,
    pub action: String,
    /// An ARN, `*`, or `role/NAME`/`user/NAME` of the plan.
    pub resource: String,
    /// `KEY=VALUE` request context entries (a key given twice has two values).
    pub context: Vec<String>,
    /// The account alias the principal and resource names are in (default: the default).
    pub account: Option<String>,
    pub json: bool,
}

/// The request context from `KEY=VALUE` arguments.
pub(crate) fn context(pairs: &[String]) -> Result<Context, AccessError> {
    let mut ctx = Context::new();
    for p in pairs {
        let (k, v) = Context::parse_pair(p)?;
        ctx.add(&k, &v);
    }
    Ok(ctx)
}

/// A warning when the action database does not know the action (a typo is the likely
/// cause; a new action is possible, so the evaluation still runs).
pub(crate) fn warn_unknown_action(action: &str) {
    let Some((prefix, name)) = action.split_once(':') else {
        return;
    };
    let db = crate::lint::db::load();
    let hint = match db.service(prefix) {
        None => crate::spec::nearest(prefix, db.prefixes()).map(|p| format!("{p}:{name}")),
        Some(s) if s.matching(name).is_empty() => {
            crate::spec::nearest(name, s.actions.iter().map(|a| a.name.as_str()))
                .map(|n| format!("{}:{n}", s.prefix))
        }
        Some(_) => return,
    };
    match hint {
        Some(h) => eprintln!("warning: the action database has no `{action}`: did you mean `{h}`?"),
        None => eprintln!("warning: the action database has no `{action}`"),
    }
}

/// `SERVICE:ACTION`, checked by form (the action database is not needed to evaluate).
pub(crate) fn check_action(action: &str) -> Result<(), AccessError> {
    match action.split_once(':') {
        Some((s, a)) if !s.is_empty() && !a.is_empty() && !a.contains(':') => Ok(()),
        _ => Err(AccessError::BadAction(action.to_string())),
    }
}

pub fn run(args: ExplainArgs) -> Result<i32> {
    let (checked, found) = spec::check(&args.files);
    print_all("warning", &found.warnings);
    print_all("error", &found.errors);
    let Some((_, desired)) = checked.filter(|_| found.errors.is_empty()) else {
        eprintln!("explain needs plan files without errors: fix them first (`iamplan validate`)");
        return Ok(EXIT_ERROR);
    };
    let world = World::new(&desired);
    let account = args.account.as_deref();
    check_action(&args.action)?;
    warn_unknown_action(&args.action);
    let ctx = context(&args.context)?;
    let addr = world.principal(&args.principal, account)?;
    let resource = world.resource(&args.resource, account)?;
    let Some(eval) = world.explain(addr, &args.action, &resource, &ctx) else {
        return Err(AccessError::BadPrincipal(args.principal).into());
    };
    let who = world.label(addr);
    if args.json {
        let out = serde_json::json!({
            "format_version": "1",
            "principal": who,
            "action": args.action,
            "resource": resource,
            "evaluation": eval,
        });
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        let verdict = match &eval.decision {
            Decision::Allowed => "allowed",
            Decision::ImplicitlyDenied | Decision::ExplicitlyDenied => "denied",
            Decision::Unknown { .. } => "unknown",
        };
        outln!(
            "{verdict}: {who} {} {} on {resource}",
            match verdict {
                "allowed" => "may",
                "denied" => "may not",
                _ => "may or may not",
            },
            args.action
        );
        match &eval.decision {
            Decision::ImplicitlyDenied => outln!("  implicitly: no statement allows it"),
            Decision::ExplicitlyDenied => outln!("  explicitly, by a Deny statement"),
            _ => {}
        }
        if !eval.statements.is_empty() {
            outln!("  decided by:");
            for s in &eval.statements {
                outln!("    {s}");
            }
        }
        if let Decision::Unknown { reasons } = &eval.decision {
            outln!("  undecided because:");
            for r in reasons {
                outln!("    {r}");
            }
        }
        for n in &eval.notes {
            outln!("  note: {n}");
        }
    }
    Ok(match eval.decision {
        Decision::Allowed => EXIT_OK,
        Decision::ImplicitlyDenied | Decision::ExplicitlyDenied => EXIT_DENIED,
        Decision::Unknown { .. } => EXIT_UNKNOWN,
    })
}
