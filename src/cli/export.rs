//! `iamplan export --stack NAME [--out DIR] [selection]`: plan files for resources that
//! already exist, read with the same paged read as `plan`, then planned against that read
//! before anything is written: every exported resource must come out as an adoption.

use super::{Common, EXIT_ERROR, EXIT_OK, Session};
use crate::export::{self, Export, Forced, Gap, Selection};
use crate::model::{AccountSpec, DEFAULT_ACCOUNT, Resource};
use anyhow::{Result, anyhow, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct ExportArgs {
    pub stack: String,
    pub out: Option<PathBuf>,
    pub selection: Selection,
    pub json: bool,
    /// Write the files even when something could not be represented.
    pub allow_partial: bool,
    /// Overwrite files that exist.
    pub overwrite: bool,
    pub common: Common,
}

pub async fn run(args: ExportArgs) -> Result<i32> {
    if !crate::spec::valid_name(&args.stack, 64) {
        bail!(
            "invalid stack name \"{}\": use letters, digits and + = , . @ - _ (at most 64)",
            args.stack
        );
    }
    let specs = BTreeMap::from([(DEFAULT_ACCOUNT.to_string(), AccountSpec::default())]);
    let mut session = Session::connect(&specs, &args.common.target, &BTreeSet::new()).await?;
    let mut live = session.read_live(&args.stack, &BTreeMap::new()).await?;
    let account = session
        .accounts
        .get(DEFAULT_ACCOUNT)
        .ok_or_else(|| anyhow!("the account could not be reached"))?;
    let ctx = account.ctx.clone();
    // Adopted policies are marked by their tag alone, which the bulk read does not return:
    // to export what a stack owns, read the tags of the policies without a marker.
    if args.selection.owned_by.is_some() {
        let hints = crate::keys::KeyHints {
            adopted_policies: live
                .resources
                .iter()
                .filter(|(a, lr)| a.kind == crate::model::Kind::ManagedPolicy && lr.owner.is_none())
                .map(|(a, _)| a.key.clone())
                .collect(),
            ..Default::default()
        };
        crate::aws::read::adopted_policy_owners(account, &hints, &mut live).await?;
    }
    let (chosen, skipped) = export::select(&live, DEFAULT_ACCOUNT, &args.selection);
    // The read lists the keys of users the stack owns already; the others' are listed here.
    let users: Vec<String> = chosen
        .iter()
        .filter(|(_, lr)| lr.owner.as_deref() != Some(args.stack.as_str()))
        .filter_map(|(_, lr)| match &lr.resource {
            Resource::User(u) => Some(u.name.clone()),
            _ => None,
        })
        .collect();
    // Keys are listed only for the users exported (the secrets are never read).
    let mut keys = BTreeMap::new();
    for u in users {
        keys.insert(u.clone(), crate::aws::read::access_keys(account, &u).await?);
    }
    for lr in live.resources.values_mut() {
        if let Resource::User(u) = &mut lr.resource
            && let Some(k) = keys.remove(&u.name)
        {
            u.access_keys = k;
        }
    }
    let (chosen, skipped_again) = export::select(&live, DEFAULT_ACCOUNT, &args.selection);
    debug_assert_eq!(skipped.len(), skipped_again.len());
    let mut forced = Forced::default();
    let mut e = export::export(&args.stack, &ctx, &chosen, skipped.clone(), &forced);
    // Trust helpers that do not say exactly what the live policy says: the document.
    let first = export::verify(&e, &live, &ctx)?;
    forced.trust_documents = first
        .iter()
        .filter(|m| m.address.kind == crate::model::Kind::Role)
        .map(|m| m.address.clone())
        .collect();
    if !forced.trust_documents.is_empty() {
        e = export::export(&args.stack, &ctx, &chosen, skipped, &forced);
    }
    for m in export::verify(&e, &live, &ctx)? {
        e.unrepresentable.push(Gap {
            resource: format!("{}.{}", m.address.kind.label(), m.address.key),
            reason: format!(
                "the exported section does not plan as a pure adoption: {}",
                m.what
            ),
        });
    }
    session.timing.render = std::time::Duration::ZERO;
    let partial = !e.unrepresentable.is_empty();
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.stack));
    // Refused before the report, which would otherwise say "exported N" first.
    if !args.json && !args.overwrite && !e.resources.is_empty() {
        let existing = existing(&e, &dir);
        if !existing.is_empty() {
            bail!(
                "{} already exist(s); nothing was written (choose another --out, or pass --overwrite)",
                existing.join(", ")
            );
        }
    }
    if args.json {
        outln!("{}", json(&e, &ctx)?);
    } else {
        report(&e);
    }
    if partial && !args.allow_partial {
        eprintln!(
            "error: {} thing(s) cannot be represented in plan files (listed above); nothing was written. Pass --allow-partial to write the files without them",
            e.unrepresentable.len()
        );
        return Ok(EXIT_ERROR);
    }
    if !args.json && e.resources.is_empty() {
        outln!("Nothing was written: no resource to adopt.");
    } else if !args.json {
        write(&e, &dir)?;
        outln!(
            "\nNext: `iamplan plan {}` shows one adoption per resource and no other change; `iamplan apply` marks them as stack \"{}\"'s.",
            dir.display(),
            args.stack
        );
    }
    if args.common.stats {
        session.print_stats();
    }
    Ok(EXIT_OK)
}

fn report(e: &Export) {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for a in &e.resources {
        *by_kind.entry(a.kind.label()).or_default() += 1;
    }
    let counts: Vec<String> = by_kind.iter().map(|(k, n)| format!("{n} {k}")).collect();
    if e.resources.is_empty() {
        outln!("Nothing to export: no IAM resource matches the selection.");
    } else {
        outln!(
            "exported {} resource(s){}",
            e.resources.len(),
            if counts.is_empty() {
                String::new()
            } else {
                format!(": {}", counts.join(", "))
            }
        );
    }
    for g in &e.skipped {
        outln!("skipped {}: {}", g.resource, g.reason);
    }
    for g in &e.unrepresentable {
        eprintln!("cannot represent {}: {}", g.resource, g.reason);
    }
}

/// `--format json`: the same content, each file's TOML as JSON.
fn json(e: &Export, ctx: &crate::model::AccountContext) -> Result<String> {
    let mut files = serde_json::Map::new();
    for f in &e.files {
        let v: toml::Value = toml::from_str(&f.text)?;
        files.insert(f.name.clone(), serde_json::to_value(v)?);
    }
    let resources: Vec<String> = e
        .resources
        .iter()
        .map(|a| format!("{}.{}", a.kind.label(), a.key))
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({
        "format_version": "1",
        "stack": e.stack,
        "account_id": ctx.account_id,
        "resources": resources,
        "files": files,
        "skipped": e.skipped,
        "unrepresentable": e.unrepresentable,
    }))?)
}

/// The files of the export that exist in `dir` already.
fn existing(e: &Export, dir: &std::path::Path) -> Vec<String> {
    e.files
        .iter()
        .map(|f| dir.join(&f.name))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect()
}

fn write(e: &Export, dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|err| anyhow!("cannot create {}: {err}", dir.display()))?;
    for f in &e.files {
        let path = dir.join(&f.name);
        crate::fsutil::write_atomic(&path, f.text.as_bytes(), 0o644)?;
        outln!("wrote {}", path.display());
    }
    Ok(())
}
