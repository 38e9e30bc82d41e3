//! Plan files -> `Desired`: loading, the stack and accounts, variables, and the build of
//! each kind's sections (by the kind's module under `iam/`), with `file:line:col` errors.

mod builder;
mod error;
mod refs;
mod schema;
mod smoke;

pub use builder::{
    At, BuildCx, Builder, DocumentSource, one_or_many, valid_external_id, valid_name,
    valid_principal_arn,
};
pub use error::{SpecError, line_col, nearest};
pub use refs::{RefAttr, Refs};
pub use schema::{AccountSpec, DocumentSpec, StatementSpec, Str};

use crate::iam::{Group, ManagedPolicy, Role, User};
use crate::model::{AccountContext, DEFAULT_ACCOUNT, Desired, Kind};
use crate::output::Output;
use schema::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One parsed plan file with its source, kept for error excerpts.
#[derive(Debug)]
pub struct PlanFile {
    pub path: PathBuf,
    pub source: String,
    spec: FileSpec,
    /// Byte offsets where lines start: positions for thousands of resources without
    /// rescanning the file for each.
    line_starts: Vec<usize>,
}

fn line_starts(source: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(source.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// All plan files of one invocation.
#[derive(Debug)]
pub struct Spec {
    pub files: Vec<PlanFile>,
}

/// Expands directories to their `*.toml` files (sorted) and parses each.
pub fn load(paths: &[PathBuf]) -> Result<Spec, SpecError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| io_error(path, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            entries.sort();
            if entries.is_empty() {
                return Err(SpecError::at(
                    path,
                    "",
                    None,
                    "no plan files (*.toml) in this directory",
                ));
            }
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        return Err(
            SpecError::at(Path::new("."), "", None, "no plan files given").with_help(
                "pass one or more plan files or directories, e.g. `iamplan plan plans/ably`",
            ),
        );
    }
    let mut parsed = Vec::new();
    for path in files {
        let source = std::fs::read_to_string(&path).map_err(|e| io_error(&path, e))?;
        let spec = parse(&path, &source)?;
        let line_starts = line_starts(&source);
        parsed.push(PlanFile {
            path,
            source,
            spec,
            line_starts,
        });
    }
    Ok(Spec { files: parsed })
}

fn io_error(path: &Path, e: std::io::Error) -> SpecError {
    SpecError::at(
        path,
        "",
        None,
        format!("cannot read {}: {e}", path.display()),
    )
}

/// Parses one file's TOML into the schema; unknown keys get a suggestion.
pub fn parse_str(path: &Path, source: &str) -> Result<Spec, SpecError> {
    let spec = parse(path, source)?;
    Ok(Spec {
        files: vec![PlanFile {
            path: path.to_path_buf(),
            source: source.to_string(),
            spec,
            line_starts: line_starts(source),
        }],
    })
}

fn parse(path: &Path, source: &str) -> Result<FileSpec, SpecError> {
    toml::from_str::<FileSpec>(source).map_err(|e| {
        let msg = e.message().trim().to_string();
        let mut err = SpecError::at(path, source, e.span(), msg.clone());
        if let Some(help) = unknown_field_help(&msg) {
            err = err.with_help(help);
        }
        err
    })
}

/// Turns serde's "unknown field `x`, expected one of `a`, `b`" into a suggestion.
fn unknown_field_help(msg: &str) -> Option<String> {
    let rest = msg.strip_prefix("unknown field `")?;
    let (field, expected) = rest.split_once('`')?;
    let names: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    match nearest(field, names.iter().copied()) {
        Some(n) => Some(format!("did you mean `{n}`?")),
        None => Some(format!("valid keys here: {}", names.join(", "))),
    }
}

impl Spec {
    /// The stack name, declared once across the files.
    pub fn stack_name(&self) -> Result<String, SpecError> {
        let mut found: Option<(String, &PlanFile, Range<usize>)> = None;
        for f in &self.files {
            if let Some(stack) = &f.spec.stack {
                let name = stack.get_ref().name.get_ref().clone();
                let span = stack.get_ref().name.span();
                if let Some((prev, pf, _)) = &found
                    && *prev != name
                {
                    return Err(SpecError::at(
                        &f.path,
                        &f.source,
                        Some(span),
                        format!(
                            "stack name \"{name}\" differs from \"{prev}\" declared in {}",
                            pf.path.display()
                        ),
                    )
                    .with_help("all files of one plan belong to one stack"));
                }
                if !valid_name(&name, 64) {
                    return Err(SpecError::at(
                        &f.path,
                        &f.source,
                        Some(span),
                        format!("invalid stack name \"{name}\""),
                    )
                    .with_help("use letters, digits and + = , . @ - _ (at most 64)"));
                }
                found = Some((name, f, span));
            }
        }
        found.map(|(n, _, _)| n).ok_or_else(|| {
            let f = &self.files[0];
            SpecError::at(&f.path, &f.source, Some(0..0), "no [stack] table: the plan needs a stack name")
                .with_help("add\n\n[stack]\nname = \"my-stack\"\n\nthe name marks the resources this plan owns")
        })
    }

    /// The accounts the plan uses, by alias, with how to reach each.
    pub fn accounts(&self) -> Result<BTreeMap<String, AccountSpec>, SpecError> {
        let mut out = BTreeMap::new();
        out.insert(DEFAULT_ACCOUNT.to_string(), AccountSpec::default());
        for f in &self.files {
            for (alias, acct) in &f.spec.accounts {
                if alias.get_ref() == DEFAULT_ACCOUNT
                    && acct.get_ref().profile.is_none()
                    && acct.get_ref().assume_role.is_none()
                    && acct.get_ref().region.is_none()
                {
                    continue;
                }
                out.insert(alias.get_ref().clone(), acct.get_ref().clone());
            }
        }
        // Every resource's account must be declared.
        for f in &self.files {
            let s = &f.spec;
            let refs = (s.role.values().map(|r| &r.get_ref().account))
                .chain(s.policy.values().map(|p| &p.get_ref().account))
                .chain(s.user.values().map(|u| &u.get_ref().account))
                .chain(s.group.values().map(|g| &g.get_ref().account))
                .flatten();
            for a in refs {
                if !out.contains_key(a.get_ref()) {
                    let known: Vec<&str> = out.keys().map(String::as_str).collect();
                    let mut e = SpecError::at(
                        &f.path,
                        &f.source,
                        Some(a.span()),
                        format!("account \"{}\" is not declared", a.get_ref()),
                    );
                    e = match nearest(a.get_ref(), known.iter().copied()) {
                        Some(n) => e.with_help(format!(
                            "did you mean \"{n}\"? or declare [accounts.{}]",
                            a.get_ref()
                        )),
                        None => e.with_help(format!(
                            "declare it: [accounts.{}] with a profile or assume_role",
                            a.get_ref()
                        )),
                    };
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Accounts the plan can do without: the default one when nothing of the plan lives or
    /// runs there (its credentials need not work; if they do, the stack's leftovers there
    /// are still read and deleted).
    pub fn optional_accounts(&self) -> BTreeSet<String> {
        if self.uses_default_account() {
            BTreeSet::new()
        } else {
            BTreeSet::from([DEFAULT_ACCOUNT.to_string()])
        }
    }

    /// Whether any resource, smoke check or output is in the default account (smoke
    /// checks and outputs always are), or the files configure it.
    fn uses_default_account(&self) -> bool {
        self.files.iter().any(|f| {
            let s = &f.spec;
            let unplaced =
                |a: &Option<Str>| a.as_ref().is_none_or(|a| a.get_ref() == DEFAULT_ACCOUNT);
            s.role.values().any(|r| unplaced(&r.get_ref().account))
                || s.policy.values().any(|p| unplaced(&p.get_ref().account))
                || s.user.values().any(|u| unplaced(&u.get_ref().account))
                || s.group.values().any(|g| unplaced(&g.get_ref().account))
                || !s.smoke.is_empty()
                || !s.output.is_empty()
                || s.accounts.keys().any(|k| k.get_ref() == DEFAULT_ACCOUNT)
        })
    }

    /// Builds the desired state given each account's context (ID, partition, region).
    pub fn build(&self, accounts: &BTreeMap<String, AccountContext>) -> Result<Desired, SpecError> {
        let stack = self.stack_name()?;
        let vars = self.variables()?;
        let mut b = Builder {
            stack: stack.clone(),
            refs: Refs::default(),
            vars,
            accounts,
            resources: BTreeMap::new(),
        };
        b.refs = self.refs(&b);
        // Policies first so that roles can refer to them by name.
        for f in &self.files {
            for (name, p) in &f.spec.policy {
                b.add::<ManagedPolicy>(f, name, p)?;
            }
        }
        for f in &self.files {
            for (name, r) in &f.spec.role {
                b.add::<Role>(f, name, r)?;
            }
            for (name, g) in &f.spec.group {
                b.add::<Group>(f, name, g)?;
            }
            for (name, u) in &f.spec.user {
                b.add::<User>(f, name, u)?;
            }
        }
        let outputs = self.outputs(&b)?;
        Ok(Desired {
            stack,
            accounts: accounts.clone(),
            resources: b.resources,
            outputs,
        })
    }

    /// Every resource a reference can name, with its ARN, before anything is built: any
    /// string may name any resource, declared before or after it. (A path with an error
    /// is reported by the build itself.)
    pub(crate) fn refs(&self, b: &Builder) -> Refs {
        let mut refs = Refs::default();
        for f in &self.files {
            let at = At { file: f };
            let path = |p: &Option<Str>, ctx| b.path(&at, p, ctx).unwrap_or_else(|_| "/".into());
            let s = &f.spec;
            for (name, p) in &s.policy {
                let p = p.get_ref();
                let ctx = b.ctx(&p.account);
                refs.add(
                    Kind::ManagedPolicy,
                    ctx,
                    &path(&p.path, ctx),
                    name.get_ref(),
                );
            }
            for (name, r) in &s.role {
                let r = r.get_ref();
                let ctx = b.ctx(&r.account);
                let path = path(&r.path, ctx);
                refs.add(Kind::Role, ctx, &path, name.get_ref());
                if r.instance_profile {
                    refs.add_instance_profile(ctx, &path, name.get_ref());
                }
            }
            for (name, u) in &s.user {
                let u = u.get_ref();
                let ctx = b.ctx(&u.account);
                refs.add(Kind::User, ctx, &path(&u.path, ctx), name.get_ref());
            }
            for (name, g) in &s.group {
                let g = g.get_ref();
                let ctx = b.ctx(&g.account);
                refs.add(Kind::Group, ctx, &path(&g.path, ctx), name.get_ref());
            }
        }
        refs
    }

    /// `[output.NAME]` sections, in the default account's context.
    fn outputs(&self, b: &Builder) -> Result<Vec<Output>, SpecError> {
        let mut out: Vec<Output> = Vec::new();
        for f in &self.files {
            let at = At { file: f };
            for (name, o) in &f.spec.output {
                let ctx = b.ctx(&None);
                let o = o.get_ref();
                if out.iter().any(|x| x.name == *name.get_ref()) {
                    return Err(at.err(
                        name.span(),
                        format!("output \"{}\" is declared twice", name.get_ref()),
                    ));
                }
                let parts = b
                    .interp_parts(o.value.get_ref(), ctx)
                    .map_err(|(msg, help)| at.err(o.value.span(), msg).with_help(help))?;
                let description = o
                    .description
                    .as_ref()
                    .map(|d| b.interp(&at, d, ctx))
                    .transpose()?;
                out.push(Output {
                    name: name.get_ref().clone(),
                    description,
                    sensitive: o.sensitive,
                    parts,
                });
            }
        }
        Ok(out)
    }
}

impl Spec {
    pub(crate) fn variables(&self) -> Result<BTreeMap<String, String>, SpecError> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        for f in &self.files {
            for (k, v) in &f.spec.variables {
                if vars.insert(k.clone(), v.get_ref().clone()).is_some() {
                    return Err(SpecError::at(
                        &f.path,
                        &f.source,
                        Some(v.span()),
                        format!("variable \"{k}\" is defined twice"),
                    ));
                }
            }
        }
        Ok(vars)
    }
}

#[cfg(test)]
mod tests;
