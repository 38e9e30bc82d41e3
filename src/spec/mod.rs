//! Plan files -> `Desired`: loading, the stack and accounts, variables, and the build of
//! each kind's sections (by the kind's module under `iam/`), with `file:line:col` errors.

mod builder;
mod error;
mod parse;
mod refs;
mod schema;
mod smoke;
mod strings;

pub use builder::{
    At, BuildCx, Builder, DocumentSource, arn_parts, one_or_many, valid_external_id, valid_name,
    valid_principal_arn,
};
pub use error::{Diagnostics, SpecError, SpecErrors, levenshtein, line_col, nearest};
pub use refs::{RefAttr, Refs};
pub use schema::{AccountSpec, DocumentSpec, StatementSpec, Str};
pub use strings::{ROLE_DESCRIPTION, Shape};

use crate::iam::{Group, ManagedPolicy, Role, User};
use crate::model::{AccountContext, DEFAULT_ACCOUNT, Desired, Kind};
use crate::output::Output;
use schema::*;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use toml::Spanned;

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

/// Expands directories to their `*.toml` files (sorted) and parses each; every file's
/// error is reported, not only the first file's.
pub fn load(paths: &[PathBuf]) -> Result<Spec, SpecErrors> {
    let (spec, errors) = load_all(paths);
    match spec {
        Some(spec) if errors.is_empty() => Ok(spec),
        _ => Err(SpecErrors::new(errors)),
    }
}

/// The subdirectories of `dir` that hold plan files (`*.toml`), sorted.
fn plan_directories(dir: &Path) -> Vec<PathBuf> {
    let has_toml = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|mut it| {
            it.any(|e| e.is_ok_and(|e| e.path().extension().is_some_and(|x| x == "toml")))
        })
    };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| {
            it.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_dir() && has_toml(p))
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// The files as far as they can be read, and every error found reading them. `None`: a
/// file is not TOML at all, so the plan as a whole cannot be checked further.
pub fn load_all(paths: &[PathBuf]) -> (Option<Spec>, Vec<SpecError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
                Ok(dir) => dir
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect(),
                Err(e) => {
                    errors.push(io_error(path, e));
                    continue;
                }
            };
            entries.sort();
            if entries.is_empty() {
                let err = SpecError::at(path, "", None, "no plan files (*.toml) in this directory");
                // A parent of plan directories (`plans/`): each of them is a stack of its
                // own, and files of several stacks never form one plan.
                let stacks = plan_directories(path);
                errors.push(match stacks.first() {
                    Some(first) => err.with_help(format!(
                        "it holds plan directories ({}), each one stack: give one of them, e.g. {}",
                        stacks
                            .iter()
                            .filter_map(|d| d.file_name())
                            .map(|n| n.to_string_lossy())
                            .collect::<Vec<_>>()
                            .join(", "),
                        first.display()
                    )),
                    None => err,
                });
            }
            files.extend(entries);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() && errors.is_empty() {
        errors.push(
            SpecError::at(Path::new("."), "", None, "no plan files given").with_help(
                "pass one or more plan files or directories, e.g. `iamplan plan plans/ably`",
            ),
        );
    }
    let mut parsed = Vec::new();
    let mut broken = !errors.is_empty();
    for path in files {
        let source = match read_source(&path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                broken = true;
                continue;
            }
        };
        let (spec, found) = parse::parse(&path, &source);
        errors.extend(found);
        match spec {
            Some(spec) => {
                let line_starts = line_starts(&source);
                parsed.push(PlanFile {
                    path,
                    source,
                    spec,
                    line_starts,
                });
            }
            None => broken = true,
        }
    }
    let spec = (!broken).then_some(Spec { files: parsed });
    (spec, errors)
}

/// Every check that needs no AWS, on the files as given: reading, then (when every file
/// is TOML) the build with a stand-in for each account. Every problem of every file.
pub fn check(paths: &[PathBuf]) -> (Option<(Spec, Desired)>, Diagnostics) {
    let (spec, errors) = load_all(paths);
    let Some(spec) = spec else {
        return (
            None,
            Diagnostics {
                errors: SpecErrors::new(errors).0,
                warnings: vec![],
            },
        );
    };
    let (desired, mut found) = spec.check_offline();
    found.errors.extend(errors);
    error::sort(&mut found.errors);
    (Some((spec, desired)), found)
}

/// The largest plan file read: far above any real plan (a thousand roles take about
/// 300 KiB), and small enough that a wrong path (a log, an image) fails at once.
pub const MAX_PLAN_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A plan file's text; bytes that are not UTF-8 are reported at their line and column.
/// Only regular files (or links to one) are read: a FIFO would block for ever and a
/// device such as /dev/zero would be read until memory runs out.
pub fn read_source(path: &Path) -> Result<String, SpecError> {
    use std::io::Read;
    let refuse = |what: String| {
        SpecError::at(
            path,
            "",
            None,
            format!("cannot read {}: {what}", path.display()),
        )
    };
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, e))?;
    if !meta.is_file() {
        return Err(
            refuse(format!("it is {}, not a regular file", file_type(&meta))).with_help(
                "a plan file is a regular file (or a link to one); remove or rename this one",
            ),
        );
    }
    let too_big = || {
        refuse(format!(
            "it is larger than {} MiB, the limit for a plan file",
            MAX_PLAN_FILE_BYTES / (1024 * 1024)
        ))
        .with_help("split the plan into several files in one directory")
    };
    if meta.len() > MAX_PLAN_FILE_BYTES {
        return Err(too_big());
    }
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    // The size can change between the look and the read (a file still being written):
    // the limit holds for what is read, whatever the metadata said.
    let mut bytes = Vec::new();
    file.take(MAX_PLAN_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_PLAN_FILE_BYTES {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
        // The lossy text has the same bytes up to the first invalid one.
        SpecError::at(
            path,
            &text,
            Some(valid..valid + 1),
            "the file is not valid UTF-8 here",
        )
        .with_help("plan files are UTF-8 text; re-save the file as UTF-8")
    })
}

/// What a file that is not a regular file is, in words.
fn file_type(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
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
pub fn parse_str(path: &Path, source: &str) -> Result<Spec, SpecErrors> {
    let spec = match parse::parse(path, source) {
        (Some(spec), errors) if errors.is_empty() => spec,
        (_, errors) => return Err(SpecErrors::new(errors)),
    };
    Ok(Spec {
        files: vec![PlanFile {
            path: path.to_path_buf(),
            source: source.to_string(),
            spec,
            line_starts: line_starts(source),
        }],
    })
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
    pub fn accounts(&self) -> Result<BTreeMap<String, AccountSpec>, SpecErrors> {
        let (out, errors) = self.accounts_found();
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(SpecErrors::new(errors))
        }
    }

    /// The accounts declared, and every problem with them or with a resource's `account`.
    fn accounts_found(&self) -> (BTreeMap<String, AccountSpec>, Vec<SpecError>) {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        out.insert(DEFAULT_ACCOUNT.to_string(), AccountSpec::default());
        for f in &self.files {
            for (alias, acct) in &f.spec.accounts {
                let spec = acct.get_ref();
                if let Some(region) = &spec.region
                    && let Err(e) = crate::aws::region::check(region)
                {
                    errors.push(SpecError::at(
                        &f.path,
                        &f.source,
                        Some(acct.span()),
                        format!("account \"{}\": {e}", alias.get_ref()),
                    ));
                }
                if alias.get_ref() == DEFAULT_ACCOUNT
                    && spec.profile.is_none()
                    && spec.assume_role.is_none()
                    && spec.region.is_none()
                {
                    continue;
                }
                out.insert(alias.get_ref().clone(), spec.clone());
            }
        }
        // Every resource's account must be declared (an [accounts.ALIAS] table that could
        // not be read is declared, with an error of its own).
        let unreadable: BTreeSet<&str> = self
            .files
            .iter()
            .flat_map(|f| &f.spec.unreadable)
            .filter(|(section, _)| section == "accounts")
            .map(|(_, name)| name.get_ref().as_str())
            .collect();
        for f in &self.files {
            let s = &f.spec;
            let refs = (s.role.values().map(|r| &r.get_ref().account))
                .chain(s.policy.values().map(|p| &p.get_ref().account))
                .chain(s.user.values().map(|u| &u.get_ref().account))
                .chain(s.group.values().map(|g| &g.get_ref().account))
                .flatten();
            for a in refs {
                if !out.contains_key(a.get_ref()) && !unreadable.contains(a.get_ref().as_str()) {
                    let known: Vec<&str> = out.keys().map(String::as_str).collect();
                    let e = SpecError::at(
                        &f.path,
                        &f.source,
                        Some(a.span()),
                        format!("account \"{}\" is not declared", a.get_ref()),
                    );
                    errors.push(match nearest(a.get_ref(), known.iter().copied()) {
                        Some(n) => e.with_help(format!(
                            "did you mean \"{n}\"? or declare [accounts.{}]",
                            a.get_ref()
                        )),
                        None => e.with_help(format!(
                            "declare it: [accounts.{}] with a profile or assume_role",
                            a.get_ref()
                        )),
                    });
                }
            }
        }
        (out, errors)
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

    /// How many users declare access keys, per account alias (before the plan is built:
    /// whether reading the account should ask for the credential report).
    pub fn users_with_keys(&self) -> BTreeMap<String, usize> {
        let mut n = BTreeMap::new();
        for f in &self.files {
            for u in f.spec.user.values() {
                let u = u.get_ref();
                if u.access_keys.is_some() {
                    let account = u
                        .account
                        .as_ref()
                        .map_or(DEFAULT_ACCOUNT, |a| a.get_ref().as_str());
                    *n.entry(account.to_string()).or_insert(0) += 1;
                }
            }
        }
        n
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

    /// Builds the desired state given each account's context (ID, partition, region), or
    /// every error found.
    pub fn build(
        &self,
        accounts: &BTreeMap<String, AccountContext>,
    ) -> Result<Desired, SpecErrors> {
        let (desired, found) = self.build_all(accounts);
        found.into_result()?;
        Ok(desired)
    }

    /// Builds what it can and reports every problem: a section with an error is left out
    /// and the build goes on with the next, so that one run shows every mistake.
    pub fn build_all(&self, accounts: &BTreeMap<String, AccountContext>) -> (Desired, Diagnostics) {
        self.build_with(accounts, false)
    }

    fn build_with(
        &self,
        accounts: &BTreeMap<String, AccountContext>,
        offline: bool,
    ) -> (Desired, Diagnostics) {
        let mut errors = Vec::new();
        // An unreadable [stack] table has its own error already.
        let stack_unreadable = self
            .files
            .iter()
            .any(|f| f.spec.unreadable.iter().any(|(s, _)| s == "stack"));
        let stack = self.stack_name().unwrap_or_else(|e| {
            if !stack_unreadable {
                errors.push(e);
            }
            String::new()
        });
        let (vars, found) = self.variables_found();
        errors.extend(found);
        errors.extend(self.accounts_found().1);
        let mut b = Builder {
            stack: stack.clone(),
            refs: Refs::default(),
            vars,
            accounts,
            resources: BTreeMap::new(),
            found: Default::default(),
            offline,
            plan_files: self.files.iter().map(|f| f.path.clone()).collect(),
            sink_targets: Default::default(),
            places: Default::default(),
        };
        b.refs = self.refs(&b);
        let mut push = |r: Result<(), SpecError>| {
            if let Err(e) = r {
                errors.push(e);
            }
        };
        // Policies first so that roles can refer to them by name.
        for f in &self.files {
            for (name, p) in &f.spec.policy {
                push(b.add::<ManagedPolicy>(f, name, p));
            }
        }
        // IAM's quota on roles per account: 1,000 by default, 5,000 at most.
        let mut roles: BTreeMap<String, usize> = BTreeMap::new();
        for f in &self.files {
            for (name, r) in &f.spec.role {
                let alias = r
                    .get_ref()
                    .account
                    .as_ref()
                    .map_or(DEFAULT_ACCOUNT, |a| a.get_ref());
                let n = roles.entry(alias.to_string()).or_insert(0);
                *n += 1;
                if let Some(e) = role_quota(f, name, alias, *n) {
                    match e {
                        Ok(warning) => b.found.borrow_mut().warnings.push(warning),
                        Err(error) => push(Err(error)),
                    }
                }
                push(b.add::<Role>(f, name, r));
            }
            for (name, g) in &f.spec.group {
                push(b.add::<Group>(f, name, g));
            }
            for (name, u) in &f.spec.user {
                push(b.add::<User>(f, name, u));
            }
        }
        let outputs = self.outputs(&b, &mut errors);
        let mut smoke = Vec::new();
        for f in &self.files {
            for (name, s) in &f.spec.smoke {
                match b.smoke(f, name, s) {
                    Ok(check) => smoke.extend(check),
                    Err(e) => errors.push(e),
                }
            }
        }
        let mut found = b.found.into_inner();
        found.errors.extend(errors);
        error::sort(&mut found.errors);
        error::sort(&mut found.warnings);
        let desired = Desired {
            stack,
            accounts: accounts.clone(),
            resources: b.resources,
            outputs,
            smoke,
        };
        (desired, found)
    }

    /// Every check that needs no AWS: the build with a stand-in for each account (a
    /// 12-digit placeholder ID, the account's declared region or us-east-1, and its
    /// partition). `${account_id}`, `${region}` and `${partition}` stay checked by form.
    pub fn check_offline(&self) -> (Desired, Diagnostics) {
        let (specs, _) = self.accounts_found();
        let contexts = specs
            .iter()
            .enumerate()
            .map(|(i, (alias, spec))| {
                let region = spec.region.clone().unwrap_or_else(|| "us-east-1".into());
                let ctx = AccountContext {
                    alias: alias.clone(),
                    account_id: format!("{:012}", i),
                    partition: crate::aws::region::partition_of(&region).to_string(),
                    region,
                };
                (alias.clone(), ctx)
            })
            .collect();
        self.build_with(&contexts, true)
    }

    /// Every resource a reference can name, with its ARN, before anything is built: any
    /// string may name any resource, declared before or after it. (A path with an error
    /// is reported by the build itself.)
    pub(crate) fn refs(&self, b: &Builder) -> Refs {
        let mut refs = Refs::default();
        for f in &self.files {
            let at = At { file: f };
            let path =
                |p: &Option<Str>, ctx| b.path(&at, p, ctx, false).unwrap_or_else(|_| "/".into());
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
            // Unreadable sections are still declared (their account and path unknown).
            for (section, name) in &s.unreadable {
                let kind = match section.as_str() {
                    "policy" => Kind::ManagedPolicy,
                    "role" => Kind::Role,
                    "user" => Kind::User,
                    "group" => Kind::Group,
                    _ => continue,
                };
                let ctx = b.ctx(&None);
                refs.add(kind, ctx, "/", name.get_ref());
                if kind == Kind::Role {
                    refs.add_instance_profile(ctx, "/", name.get_ref());
                }
            }
        }
        refs
    }

    /// `[output.NAME]` sections, in the default account's context.
    fn outputs(&self, b: &Builder, errors: &mut Vec<SpecError>) -> Vec<Output> {
        let mut out: Vec<Output> = Vec::new();
        for f in &self.files {
            let at = At { file: f };
            for (name, o) in &f.spec.output {
                let ctx = b.ctx(&None);
                let o = o.get_ref();
                if out.iter().any(|x| x.name == *name.get_ref()) {
                    errors.push(at.err(
                        name.span(),
                        format!("output \"{}\" is declared twice", name.get_ref()),
                    ));
                    continue;
                }
                let parts = b
                    .interp_parts(o.value.get_ref(), ctx)
                    .map_err(|(msg, help)| at.err(o.value.span(), msg).with_help(help));
                let description = o
                    .description
                    .as_ref()
                    .map(|d| b.interp(&at, d, ctx))
                    .transpose();
                match (parts, description) {
                    (Ok(parts), Ok(description)) => out.push(Output {
                        name: name.get_ref().clone(),
                        description,
                        sensitive: o.sensitive,
                        parts,
                    }),
                    (parts, description) => {
                        errors.extend(parts.err());
                        errors.extend(description.err());
                    }
                }
            }
        }
        out
    }
}

/// The quota on roles per account, at the role that goes past it: past IAM's default
/// (1,000) a warning (`Ok`), past the maximum it can be raised to (5,000) an error.
fn role_quota(
    f: &PlanFile,
    name: &Spanned<String>,
    alias: &str,
    n: usize,
) -> Option<Result<SpecError, SpecError>> {
    let at = At { file: f };
    match n {
        ROLES_DEFAULT_QUOTA_NEXT => Some(Ok(at
            .err(name.span(), format!("account \"{alias}\" has more than 1,000 roles in this plan: over IAM's default quota of 1,000 roles per account"))
            .with_help("apply fails unless the account's quota (\"Roles per account\") was raised, up to 5,000; roles outside this plan count too"))),
        ROLES_MAX_QUOTA_NEXT => Some(Err(at
            .err(name.span(), format!("account \"{alias}\" has more than 5,000 roles in this plan; IAM allows at most 5,000 roles per account"))
            .with_help("spread the roles over several accounts ([accounts.ALIAS] and `account` on each role)"))),
        _ => None,
    }
}

/// The first role past IAM's default quota of roles per account, and past its maximum.
const ROLES_DEFAULT_QUOTA_NEXT: usize = 1_001;
const ROLES_MAX_QUOTA_NEXT: usize = 5_001;

impl Spec {
    /// The variables (the first definition of each), and one error per variable defined
    /// again: the build goes on with the first, so that its uses are not errors too.
    fn variables_found(&self) -> (BTreeMap<String, String>, Vec<SpecError>) {
        let mut vars: BTreeMap<String, (String, String)> = BTreeMap::new();
        let mut errors = Vec::new();
        for f in &self.files {
            let at = At { file: f };
            for (k, v) in &f.spec.variables {
                if let Some((_, first)) = vars.get(k) {
                    errors.push(
                        at.err(
                            v.span(),
                            format!("variable \"{k}\" is defined twice: here and at {first}"),
                        )
                        .with_help(
                            "keep one definition; a variable has one value for the whole plan",
                        ),
                    );
                    continue;
                }
                let place = Builder::origin(&at, v.span());
                vars.insert(k.clone(), (v.get_ref().clone(), place));
            }
        }
        let vars = vars.into_iter().map(|(k, (v, _))| (k, v)).collect();
        (vars, errors)
    }
}

#[cfg(test)]
mod tests;
