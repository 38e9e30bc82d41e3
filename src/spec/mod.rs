//! Plan files -> `Desired`: parsing, variables, validation with `file:line:col`.

mod error;
mod schema;

pub use error::{SpecError, line_col, nearest};
pub use schema::AccountSpec;

use crate::keys::{KeyRule, Sink};
use crate::model::{
    AccountContext, Address, DEFAULT_ACCOUNT, Desired, DesiredResource, GROUP_MARKER_PREFIX, Group,
    Kind, ManagedPolicy, Resource, Role, User, policy_arn, role_arn,
};
use crate::policy::{self, PolicyDocument};
use crate::smoke::{self, SmokeCheck};
use schema::*;
use serde_json::{Map, Value, json};
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

    /// Builds the desired state given each account's context (ID, partition, region).
    pub fn build(&self, accounts: &BTreeMap<String, AccountContext>) -> Result<Desired, SpecError> {
        let stack = self.stack_name()?;
        let vars = self.variables()?;
        let mut b = Builder {
            stack: stack.clone(),
            vars,
            accounts,
            resources: BTreeMap::new(),
        };
        // Policies first so that roles can refer to them by name.
        for f in &self.files {
            for (name, p) in &f.spec.policy {
                b.policy(f, name, p)?;
            }
        }
        for f in &self.files {
            for (name, r) in &f.spec.role {
                b.role(f, name, r)?;
            }
            for (name, g) in &f.spec.group {
                b.group(f, name, g)?;
            }
            for (name, u) in &f.spec.user {
                b.user(f, name, u)?;
            }
        }
        Ok(Desired {
            stack,
            accounts: accounts.clone(),
            resources: b.resources,
        })
    }
}

impl Spec {
    fn variables(&self) -> Result<BTreeMap<String, String>, SpecError> {
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

    /// The smoke checks the files declare, resolved against the desired state.
    pub fn smoke_checks(&self, desired: &Desired) -> Result<Vec<SmokeCheck>, SpecError> {
        let b = Builder {
            stack: desired.stack.clone(),
            vars: self.variables()?,
            accounts: &desired.accounts,
            resources: desired.resources.clone(),
        };
        let mut out = Vec::new();
        for f in &self.files {
            for (name, s) in &f.spec.smoke {
                out.push(b.smoke(f, name, s)?);
            }
        }
        Ok(out)
    }
}

struct Builder<'a> {
    stack: String,
    vars: BTreeMap<String, String>,
    accounts: &'a BTreeMap<String, AccountContext>,
    resources: BTreeMap<Address, DesiredResource>,
}

/// Error helper bound to one file.
struct At<'f> {
    file: &'f PlanFile,
}

impl At<'_> {
    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> SpecError {
        SpecError::at(&self.file.path, &self.file.source, Some(span), msg)
    }
}

impl Builder<'_> {
    fn ctx(&self, account: &Option<Str>) -> &AccountContext {
        let alias = account
            .as_ref()
            .map(|a| a.get_ref().as_str())
            .unwrap_or(DEFAULT_ACCOUNT);
        self.accounts
            .get(alias)
            .expect("accounts are resolved before the build")
    }

    /// Replaces `${...}` references. IAM's own policy variables (`${aws:username}`,
    /// `${aws:PrincipalTag/x}`, `${*}`, `${?}`, `${$}`) contain `:` or are single
    /// characters and are left for IAM.
    fn interp(&self, at: &At, s: &Str, ctx: &AccountContext) -> Result<String, SpecError> {
        self.interp_text(s.get_ref(), ctx)
            .map_err(|(msg, help)| at.err(s.span(), msg).with_help(help))
    }

    fn interp_text(&self, text: &str, ctx: &AccountContext) -> Result<String, (String, String)> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            let value = if name.contains(':') || matches!(name, "*" | "?" | "$") {
                format!("${{{name}}}")
            } else {
                self.variable(name, ctx)?
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }

    fn variable(&self, name: &str, ctx: &AccountContext) -> Result<String, (String, String)> {
        let builtin = match name {
            "account_id" => Some(ctx.account_id.clone()),
            "region" => Some(ctx.region.clone()),
            "partition" => Some(ctx.partition.clone()),
            "stack" => Some(self.stack.clone()),
            _ => None,
        };
        if let Some(v) = builtin {
            return Ok(v);
        }
        if let Some(var) = name.strip_prefix("var.") {
            return self.vars.get(var).cloned().ok_or_else(|| {
                let help = match nearest(var, self.vars.keys().map(String::as_str)) {
                    Some(n) => format!("did you mean `${{var.{n}}}`?"),
                    None => format!("define it under [variables]: {var} = \"...\""),
                };
                (format!("undefined variable `{var}`"), help)
            });
        }
        if let Some(alias) = name.strip_prefix("account.") {
            return self
                .accounts
                .get(alias)
                .map(|a| a.account_id.clone())
                .ok_or_else(|| {
                    (
                        format!("undefined account `{alias}`"),
                        format!("declare [accounts.{alias}] with a profile or assume_role"),
                    )
                });
        }
        let all = ["account_id", "region", "partition", "stack"];
        let help = match nearest(name, all) {
            Some(n) => format!("did you mean `${{{n}}}`?"),
            None => "variables are ${account_id}, ${region}, ${partition}, ${stack}, ${account.ALIAS} and ${var.NAME} (from [variables]); IAM's own variables contain a colon, e.g. ${aws:username}".into(),
        };
        Err((format!("undefined variable `{name}`"), help))
    }

    fn insert(
        &mut self,
        at: &At,
        name: &Spanned<String>,
        addr: Address,
        resource: DesiredResource,
    ) -> Result<(), SpecError> {
        if let Some(prev) = self.resources.get(&addr) {
            return Err(at
                .err(
                    name.span(),
                    format!(
                        "{} \"{}\" is declared twice (IAM names are case-insensitive)",
                        addr.kind.label(),
                        name.get_ref()
                    ),
                )
                .with_help(format!(
                    "the other one is \"{}\" at {}",
                    prev.resource.name(),
                    prev.origin
                )));
        }
        self.resources.insert(addr, resource);
        Ok(())
    }

    fn origin(at: &At, span: Range<usize>) -> String {
        let f = at.file;
        let line = f.line_starts.partition_point(|&s| s <= span.start);
        let start = f.line_starts[line - 1];
        let col = f.source[start..span.start.min(f.source.len())]
            .chars()
            .count()
            + 1;
        format!("{}:{line}:{col}", f.path.display())
    }

    fn policy(
        &mut self,
        f: &PlanFile,
        name: &Spanned<String>,
        spec: &Spanned<PolicySpec>,
    ) -> Result<(), SpecError> {
        let at = At { file: f };
        let p = spec.get_ref();
        check_name(&at, name, 128, "policy")?;
        let ctx = self.ctx(&p.account).clone();
        let path = self.path(&at, &p.path, &ctx)?;
        let document = self.document(
            &at,
            name.span(),
            DocumentSource {
                document: &p.document,
                statement: &p.statement,
                version: &p.version,
            },
            &ctx,
            false,
        )?;
        let resource = ManagedPolicy {
            name: name.get_ref().clone(),
            path,
            description: self.opt_text(&at, &p.description, &ctx)?,
            document,
        };
        let addr = Address::new(&ctx.alias, Kind::ManagedPolicy, name.get_ref());
        let origin = Self::origin(&at, name.span());
        self.insert(
            &at,
            name,
            addr,
            DesiredResource {
                resource: Resource::ManagedPolicy(resource),
                adopt: p.adopt,
                origin,
            },
        )
    }

    fn opt_text(
        &self,
        at: &At,
        s: &Option<Str>,
        ctx: &AccountContext,
    ) -> Result<String, SpecError> {
        match s {
            Some(s) => self.interp(at, s, ctx),
            None => Ok(String::new()),
        }
    }

    fn path(&self, at: &At, path: &Option<Str>, ctx: &AccountContext) -> Result<String, SpecError> {
        let Some(p) = path else { return Ok("/".into()) };
        let v = self.interp(at, p, ctx)?;
        if !v.starts_with('/') || !v.ends_with('/') || v.len() > 512 || v.contains("//") {
            return Err(at
                .err(p.span(), format!("invalid path \"{v}\""))
                .with_help("a path starts and ends with `/`, e.g. \"/integrations/\""));
        }
        Ok(v)
    }

    fn role(
        &mut self,
        f: &PlanFile,
        name: &Spanned<String>,
        spec: &Spanned<RoleSpec>,
    ) -> Result<(), SpecError> {
        let at = At { file: f };
        let r = spec.get_ref();
        check_name(&at, name, 64, "role")?;
        let ctx = self.ctx(&r.account).clone();
        let path = self.path(&at, &r.path, &ctx)?;
        let max = match &r.max_session_duration {
            None => 3600,
            Some(m) if (3600..=43200).contains(m.get_ref()) => *m.get_ref() as i32,
            Some(m) => {
                return Err(at
                    .err(
                        m.span(),
                        format!("max_session_duration {} is out of range", m.get_ref()),
                    )
                    .with_help("IAM accepts 3600 to 43200 seconds (1 to 12 hours)"));
            }
        };
        let permissions_boundary = match &r.permissions_boundary {
            None => None,
            Some(b) => Some(self.policy_ref(&at, b, &ctx)?),
        };
        let tags = self.tags(&at, &r.tags, &ctx)?;
        if tags.len() > 49 {
            return Err(at.err(
                name.span(),
                "too many tags: IAM allows 50 per role, and iamplan uses one for ownership",
            ));
        }
        let trust = self.trust(&at, &r.trust, &ctx)?;
        let inline = self.inline_map(&at, &r.inline, &ctx)?;
        let managed = self.managed_list(&at, &r.managed_policies, &ctx)?;
        let role = Role {
            name: name.get_ref().clone(),
            path,
            description: self.opt_text(&at, &r.description, &ctx)?,
            max_session_duration: max,
            permissions_boundary,
            tags,
            trust,
            inline,
            managed,
            instance_profile: r.instance_profile,
        };
        let addr = Address::new(&ctx.alias, Kind::Role, name.get_ref());
        let origin = Self::origin(&at, name.span());
        self.insert(
            &at,
            name,
            addr,
            DesiredResource {
                resource: Resource::Role(role),
                adopt: r.adopt,
                origin,
            },
        )
    }

    fn tags(
        &self,
        at: &At,
        tags: &BTreeMap<Spanned<String>, Str>,
        ctx: &AccountContext,
    ) -> Result<BTreeMap<String, String>, SpecError> {
        let mut out = BTreeMap::new();
        for (k, v) in tags {
            let lower = k.get_ref().to_ascii_lowercase();
            if lower.starts_with("iamplan:") || lower.starts_with("aws:") {
                return Err(at
                    .err(k.span(), format!("tag key \"{}\" is reserved", k.get_ref()))
                    .with_help(
                        "`aws:` tags belong to AWS; `iamplan:` tags are set by iamplan itself",
                    ));
            }
            out.insert(k.get_ref().clone(), self.interp(at, v, ctx)?);
        }
        Ok(out)
    }

    fn managed_list(
        &self,
        at: &At,
        list: &[Str],
        ctx: &AccountContext,
    ) -> Result<BTreeSet<String>, SpecError> {
        let mut managed = BTreeSet::new();
        for m in list {
            let arn = self.policy_ref(at, m, ctx)?;
            if !managed.insert(arn.clone()) {
                return Err(at.err(m.span(), format!("managed policy {arn} is attached twice")));
            }
        }
        if managed.len() > 20 {
            return Err(at.err(
                list[20].span(),
                "more than 20 managed policies: IAM's hard limit is 20 (10 by default)",
            ));
        }
        Ok(managed)
    }

    fn inline_map(
        &self,
        at: &At,
        inline: &BTreeMap<Spanned<String>, Spanned<DocumentSpec>>,
        ctx: &AccountContext,
    ) -> Result<BTreeMap<String, PolicyDocument>, SpecError> {
        let mut out = BTreeMap::new();
        for (pname, doc) in inline {
            check_name(at, pname, 128, "inline policy")?;
            let d = doc.get_ref();
            let document = self.document(
                at,
                pname.span(),
                DocumentSource {
                    document: &d.document,
                    statement: &d.statement,
                    version: &d.version,
                },
                ctx,
                false,
            )?;
            out.insert(pname.get_ref().clone(), document);
        }
        Ok(out)
    }

    fn user(
        &mut self,
        f: &PlanFile,
        name: &Spanned<String>,
        spec: &Spanned<UserSpec>,
    ) -> Result<(), SpecError> {
        let at = At { file: f };
        let u = spec.get_ref();
        check_name(&at, name, 64, "user")?;
        let ctx = self.ctx(&u.account).clone();
        let path = self.path(&at, &u.path, &ctx)?;
        let permissions_boundary = match &u.permissions_boundary {
            None => None,
            Some(b) => Some(self.policy_ref(&at, b, &ctx)?),
        };
        let mut groups = BTreeSet::new();
        for g in &u.groups {
            let v = self.interp(&at, g, &ctx)?;
            if !valid_name(&v, 128) {
                return Err(at.err(g.span(), format!("invalid group name \"{v}\"")));
            }
            groups.insert(v);
        }
        let keys = match &u.access_keys {
            None => None,
            Some(k) => Some(self.key_rule(&at, name, k)?),
        };
        let user = User {
            name: name.get_ref().clone(),
            path,
            permissions_boundary,
            tags: self.tags(&at, &u.tags, &ctx)?,
            inline: self.inline_map(&at, &u.inline, &ctx)?,
            managed: self.managed_list(&at, &u.managed_policies, &ctx)?,
            groups,
            keys,
        };
        let addr = Address::new(&ctx.alias, Kind::User, name.get_ref());
        let origin = Self::origin(&at, name.span());
        self.insert(
            &at,
            name,
            addr,
            DesiredResource {
                resource: Resource::User(user),
                adopt: u.adopt,
                origin,
            },
        )
    }

    fn group(
        &mut self,
        f: &PlanFile,
        name: &Spanned<String>,
        spec: &Spanned<GroupSpec>,
    ) -> Result<(), SpecError> {
        let at = At { file: f };
        let g = spec.get_ref();
        check_name(&at, name, 128, "group")?;
        let ctx = self.ctx(&g.account).clone();
        if let Some((n, _)) = g
            .inline
            .iter()
            .find(|(n, _)| n.get_ref().starts_with(GROUP_MARKER_PREFIX))
        {
            return Err(at.err(n.span(), format!("inline policy names starting with `{GROUP_MARKER_PREFIX}` are iamplan's ownership markers")));
        }
        let group = Group {
            name: name.get_ref().clone(),
            path: self.path(&at, &g.path, &ctx)?,
            inline: self.inline_map(&at, &g.inline, &ctx)?,
            managed: self.managed_list(&at, &g.managed_policies, &ctx)?,
        };
        let addr = Address::new(&ctx.alias, Kind::Group, name.get_ref());
        let origin = Self::origin(&at, name.span());
        self.insert(
            &at,
            name,
            addr,
            DesiredResource {
                resource: Resource::Group(group),
                adopt: g.adopt,
                origin,
            },
        )
    }

    fn smoke(
        &self,
        f: &PlanFile,
        name: &Spanned<String>,
        spec: &Spanned<SmokeSpec>,
    ) -> Result<SmokeCheck, SpecError> {
        let at = At { file: f };
        let s = spec.get_ref();
        let ctx = self.ctx(&None).clone();
        let from = match (&s.from_profile, &s.from_user) {
            (Some(_), Some(u)) => {
                return Err(at.err(
                    u.span(),
                    "a check starts from a profile or from a user, not both",
                ));
            }
            (Some(p), None) => smoke::From::Profile(self.interp(&at, p, &ctx)?),
            (None, Some(u)) => {
                let user = self.interp(&at, u, &ctx)?;
                let addr = Address::new(&ctx.alias, Kind::User, &user);
                match self.resources.get(&addr).map(|d| &d.resource) {
                    Some(Resource::User(User {
                        keys: Some(rule), ..
                    })) if rule.sink.readable() => smoke::From::User {
                        name: user,
                        sink: rule.sink.clone(),
                    },
                    Some(Resource::User(_)) => {
                        return Err(at.err(
                            u.span(),
                            format!(
                                "user \"{user}\" has no access key in a file sink to start from"
                            ),
                        ));
                    }
                    _ => {
                        return Err(at.err(
                            u.span(),
                            format!("user \"{user}\" is not declared in this plan"),
                        ));
                    }
                }
            }
            (None, None) => smoke::From::Caller,
        };
        let mut assume = Vec::new();
        for a in &s.assume {
            let a = a.get_ref();
            let role = self.interp(&at, &a.role, &ctx)?;
            let (role_arn, trust) = if role.starts_with("arn:") {
                (role, None)
            } else {
                match self
                    .resources
                    .get(&Address::new(&ctx.alias, Kind::Role, &role))
                    .map(|d| &d.resource)
                {
                    Some(Resource::Role(r)) => (
                        role_arn(&ctx, &r.path, &r.name),
                        Some(trust_facts(&r.trust.value)),
                    ),
                    _ => {
                        let help = match nearest(
                            &role,
                            self.resources
                                .values()
                                .filter(|d| d.resource.kind() == Kind::Role)
                                .map(|d| d.resource.name()),
                        ) {
                            Some(n) => format!("did you mean \"{n}\"?"),
                            None => "give a role of this plan by name, or a role ARN".into(),
                        };
                        return Err(at
                            .err(
                                a.role.span(),
                                format!("role \"{role}\" is not declared in this plan"),
                            )
                            .with_help(help));
                    }
                }
            };
            let mut tags = BTreeMap::new();
            for (k, v) in &a.tags {
                tags.insert(k.clone(), self.interp(&at, v, &ctx)?);
            }
            assume.push(smoke::Assume {
                role_arn,
                external_id: a
                    .external_id
                    .as_ref()
                    .map(|x| self.interp(&at, x, &ctx))
                    .transpose()?,
                session_name: match &a.session_name {
                    Some(n) => self.interp(&at, n, &ctx)?,
                    None => "iamplan-smoke".into(),
                },
                duration_seconds: a.duration_seconds,
                tags,
                trust,
            });
        }
        let invoke = match &s.invoke {
            None => None,
            Some(i) => {
                let i = i.get_ref();
                let payload = match &i.payload {
                    Some(p) => self.interp(&at, p, &ctx)?,
                    None => "{}".into(),
                };
                if let Some(p) = &i.payload
                    && let Err(e) = serde_json::from_str::<serde_json::Value>(&payload)
                {
                    return Err(at.err(p.span(), format!("the invoke payload is not JSON: {e}")));
                }
                Some(smoke::Invoke {
                    function: self.interp(&at, &i.function, &ctx)?,
                    qualifier: i
                        .qualifier
                        .as_ref()
                        .map(|q| self.interp(&at, q, &ctx))
                        .transpose()?,
                    payload,
                    region: i
                        .region
                        .as_ref()
                        .map(|r| self.interp(&at, r, &ctx))
                        .transpose()?,
                })
            }
        };
        let e = s.expect.get_ref();
        let allow = match e.result.get_ref().as_str() {
            "allow" => true,
            "deny" => false,
            other => {
                return Err(at.err(
                    e.result.span(),
                    format!("expect.result must be \"allow\" or \"deny\", found \"{other}\""),
                ));
            }
        };
        let reason = match &e.reason {
            None => None,
            Some(r) => match smoke::Reason::ALL.iter().find(|(n, _)| *n == r.get_ref()) {
                Some((_, reason)) => Some(*reason),
                None => {
                    let names: Vec<&str> = smoke::Reason::ALL.iter().map(|(n, _)| *n).collect();
                    return Err(at
                        .err(r.span(), format!("unknown reason \"{}\"", r.get_ref()))
                        .with_help(format!("one of: {}", names.join(", "))));
                }
            },
        };
        Ok(SmokeCheck {
            name: name.get_ref().clone(),
            description: s.description.clone(),
            account: ctx.alias.clone(),
            from,
            assume,
            invoke,
            expect: smoke::Expect {
                allow,
                reason,
                status: e.status,
                payload_contains: e
                    .payload_contains
                    .as_ref()
                    .map(|p| self.interp(&at, p, &ctx))
                    .transpose()?,
            },
            retry_seconds: s.retry_seconds.unwrap_or(if allow { 60 } else { 0 }),
            origin: Self::origin(&at, name.span()),
        })
    }

    fn key_rule(
        &self,
        at: &At,
        user: &Spanned<String>,
        k: &Spanned<AccessKeysSpec>,
    ) -> Result<KeyRule, SpecError> {
        let spec = k.get_ref();
        let num = |v: &Option<Spanned<i64>>,
                   default: i64,
                   range: std::ops::RangeInclusive<i64>,
                   what: &str|
         -> Result<i64, SpecError> {
            match v {
                None => Ok(default),
                Some(n) if range.contains(n.get_ref()) => Ok(*n.get_ref()),
                Some(n) => Err(at.err(
                    n.span(),
                    format!(
                        "{what} {} is out of range ({}..={})",
                        n.get_ref(),
                        range.start(),
                        range.end()
                    ),
                )),
            }
        };
        let count = num(&spec.count, 1, 0..=1, "count")? as u8;
        let rotate_after_days = match &spec.rotate_after_days {
            None => None,
            Some(_) => Some(num(
                &spec.rotate_after_days,
                90,
                1..=3650,
                "rotate_after_days",
            )?),
        };
        let deactivate_after_days = num(
            &spec.deactivate_after_days,
            7,
            0..=3650,
            "deactivate_after_days",
        )?;
        let delete_after_days = num(&spec.delete_after_days, 7, 0..=3650, "delete_after_days")?;
        let in_use_hours = num(&spec.in_use_hours, 24, 0..=8760, "in_use_hours")?;
        let base = at.file.path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf {
            if Path::new(p).is_absolute() {
                PathBuf::from(p)
            } else {
                base.join(p)
            }
        };
        let sink = match &spec.sink {
            None if count == 0 => Sink::Command { argv: vec![] },
            None => {
                return Err(at.err(k.span(), format!("user \"{}\" wants an access key but names no sink for its secret", user.get_ref()))
                    .with_help("add sink = { type = \"json\", path = \"secrets/robot.json\" } (or credentials, colon, command)"));
            }
            Some(s) => match s.get_ref() {
                SinkSpec::Json { path } => Sink::Json {
                    path: resolve(path),
                },
                SinkSpec::Colon { path } => Sink::Colon {
                    path: resolve(path),
                },
                SinkSpec::Credentials { path, profile } => Sink::Credentials {
                    path: resolve(path),
                    profile: profile.clone(),
                },
                SinkSpec::Command { argv } if argv.is_empty() => {
                    return Err(at.err(s.span(), "the sink command is empty"));
                }
                SinkSpec::Command { argv } => Sink::Command { argv: argv.clone() },
            },
        };
        Ok(KeyRule {
            count,
            rotate_after_days,
            deactivate_after_days,
            delete_after_days,
            in_use_hours,
            sink,
        })
    }

    /// A managed policy named in the plan, or an ARN.
    fn policy_ref(&self, at: &At, r: &Str, ctx: &AccountContext) -> Result<String, SpecError> {
        let v = self.interp(at, r, ctx)?;
        if v.starts_with("arn:") {
            return if valid_policy_arn(&v) {
                Ok(v)
            } else {
                Err(at.err(r.span(), format!("invalid managed policy ARN \"{v}\""))
                    .with_help("expected arn:aws:iam::aws:policy/NAME or arn:aws:iam::123456789012:policy/PATH/NAME"))
            };
        }
        let addr = Address::new(&ctx.alias, Kind::ManagedPolicy, &v);
        match self.resources.get(&addr) {
            Some(DesiredResource {
                resource: Resource::ManagedPolicy(p),
                ..
            }) => Ok(policy_arn(ctx, &p.path, &p.name)),
            _ => {
                let names: Vec<&str> = self
                    .resources
                    .iter()
                    .filter(|(a, _)| a.kind == Kind::ManagedPolicy && a.account == ctx.alias)
                    .map(|(_, d)| d.resource.name())
                    .collect();
                let help = match nearest(&v, names.iter().copied()) {
                    Some(n) => format!("did you mean \"{n}\"?"),
                    None => "declare it as [policy.NAME] or give the policy's ARN".into(),
                };
                Err(at
                    .err(
                        r.span(),
                        format!("managed policy \"{v}\" is not defined in this plan"),
                    )
                    .with_help(help))
            }
        }
    }

    fn trust(
        &self,
        at: &At,
        t: &Spanned<TrustSpec>,
        ctx: &AccountContext,
    ) -> Result<PolicyDocument, SpecError> {
        let spec = t.get_ref();
        let helpers = !spec.accounts.is_empty()
            || !spec.roles.is_empty()
            || !spec.users.is_empty()
            || !spec.services.is_empty();
        let raw = spec.document.is_some() || spec.statement.is_some();
        if helpers && raw {
            return Err(at.err(t.span(), "a trust policy takes either helpers (accounts, roles, users, services) or a document/statement, not both")
                .with_help("move the extra principals into the document, or drop the document"));
        }
        if raw {
            if spec.external_id.is_some() || spec.session_tags {
                return Err(at.err(t.span(), "external_id and session_tags go with the helpers; in a raw document write the condition and action yourself"));
            }
            return self.document(
                at,
                t.span(),
                DocumentSource {
                    document: &spec.document,
                    statement: &spec.statement,
                    version: &spec.version,
                },
                ctx,
                true,
            );
        }
        if !helpers {
            return Err(at.err(t.span(), "the trust policy names no principal")
                .with_help("add accounts = [\"123456789012\"], roles, users or services = [\"ec2.amazonaws.com\"], or a document"));
        }
        let mut aws = Vec::new();
        for a in &spec.accounts {
            let v = self.interp(at, a, ctx)?;
            if policy::is_account_id(&v) {
                aws.push(format!("arn:{}:iam::{v}:root", ctx.partition));
            } else if v.starts_with("arn:")
                && v.ends_with(":root")
                && policy::is_account_id(v.split(':').nth(4).unwrap_or(""))
            {
                aws.push(v);
            } else {
                return Err(at
                    .err(a.span(), format!("invalid account ID \"{v}\""))
                    .with_help("an account ID has 12 digits, e.g. \"203461409171\""));
            }
        }
        for (list, kind) in [(&spec.roles, "role"), (&spec.users, "user")] {
            for p in list {
                let v = self.interp(at, p, ctx)?;
                if v.starts_with("arn:") {
                    if !valid_principal_arn(&v, kind) {
                        return Err(at
                            .err(p.span(), format!("invalid {kind} ARN \"{v}\""))
                            .with_help(format!("expected arn:aws:iam::123456789012:{kind}/NAME")));
                    }
                    aws.push(v);
                } else if kind == "role" {
                    let addr = Address::new(&ctx.alias, Kind::Role, &v);
                    match self.resources.get(&addr).map(|d| &d.resource) {
                        Some(Resource::Role(r)) => aws.push(role_arn(ctx, &r.path, &r.name)),
                        _ if valid_name(&v, 64) => aws.push(role_arn(ctx, "/", &v)),
                        _ => {
                            return Err(at
                                .err(p.span(), format!("invalid role \"{v}\""))
                                .with_help("give a role name or ARN"));
                        }
                    }
                } else if valid_name(&v, 64) {
                    aws.push(format!(
                        "arn:{}:iam::{}:user/{v}",
                        ctx.partition, ctx.account_id
                    ));
                } else {
                    return Err(at
                        .err(p.span(), format!("invalid user \"{v}\""))
                        .with_help("give a user name or ARN"));
                }
            }
        }
        let mut services = Vec::new();
        for s in &spec.services {
            let v = self.interp(at, s, ctx)?;
            let ok = (v.ends_with(".amazonaws.com") || v.ends_with(".amazonaws.com.cn"))
                && v.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-');
            if !ok {
                return Err(at
                    .err(s.span(), format!("invalid service principal \"{v}\""))
                    .with_help("a service principal looks like \"ec2.amazonaws.com\""));
            }
            services.push(v);
        }
        let mut actions = vec![json!("sts:AssumeRole")];
        if spec.session_tags {
            actions.push(json!("sts:TagSession"));
        }
        let mut statements = Vec::new();
        if !aws.is_empty() {
            let mut st = Map::new();
            st.insert("Effect".into(), json!("Allow"));
            st.insert("Principal".into(), json!({ "AWS": one_or_many(aws) }));
            st.insert(
                "Action".into(),
                one_or_many(
                    actions
                        .iter()
                        .map(|a| a.as_str().unwrap_or_default().to_string())
                        .collect(),
                ),
            );
            if let Some(x) = &spec.external_id {
                let v = self.interp(at, x, ctx)?;
                if !valid_external_id(&v) {
                    return Err(at
                        .err(x.span(), format!("invalid ExternalId \"{v}\""))
                        .with_help(
                            "an ExternalId is 2 to 1224 letters, digits or + = , . @ : / -",
                        ));
                }
                st.insert(
                    "Condition".into(),
                    json!({"StringEquals": {"sts:ExternalId": v}}),
                );
            }
            statements.push(Value::Object(st));
        } else if spec.external_id.is_some() {
            return Err(at.err(
                t.span(),
                "external_id applies to accounts, roles or users, and none is named",
            ));
        }
        if !services.is_empty() {
            statements.push(json!({
                "Effect": "Allow",
                "Principal": { "Service": one_or_many(services) },
                "Action": "sts:AssumeRole",
            }));
        }
        let version = match &spec.version {
            Some(v) => v.get_ref().clone(),
            None => "2012-10-17".into(),
        };
        Ok(PolicyDocument::from_value(
            json!({"Version": version, "Statement": statements}),
            &ctx.partition,
        ))
    }

    fn document(
        &self,
        at: &At,
        owner_span: Range<usize>,
        src: DocumentSource,
        ctx: &AccountContext,
        trust: bool,
    ) -> Result<PolicyDocument, SpecError> {
        let (value, span) = match (src.document, src.statement) {
            (Some(_), Some(_)) => {
                return Err(at.err(
                    owner_span,
                    "give either `document` (JSON) or `statement` tables, not both",
                ));
            }
            (None, None) => {
                return Err(at.err(owner_span, "no policy document")
                    .with_help("add document = '''{ \"Version\": \"2012-10-17\", \"Statement\": [...] }''' or [[...statement]] tables"));
            }
            (Some(doc), None) => {
                if src.version.is_some() {
                    return Err(at.err(owner_span, "`version` goes with `statement` tables; a JSON document carries its own Version"));
                }
                let text = self.interp(at, doc, ctx)?;
                let value: Value = serde_json::from_str(&text).map_err(|e| {
                    // Point into the JSON text when it is a literal string in the file.
                    let pos = json_error_offset(&at.file.source, doc.span(), e.line(), e.column());
                    at.err(pos, format!("invalid policy JSON: {e}"))
                })?;
                (value, doc.span())
            }
            (None, Some(stmts)) => {
                let mut out = Vec::new();
                for s in stmts {
                    out.push(self.statement(at, s, ctx)?);
                }
                let version = match src.version {
                    Some(v) => v.get_ref().clone(),
                    None => "2012-10-17".into(),
                };
                (json!({"Version": version, "Statement": out}), owner_span)
            }
        };
        policy::validate(&value, trust).map_err(|m| {
            let kind = if trust { "trust policy" } else { "policy" };
            at.err(span, format!("invalid {kind}: {m}"))
        })?;
        Ok(PolicyDocument::from_value(value, &ctx.partition))
    }

    fn statement(
        &self,
        at: &At,
        s: &Spanned<StatementSpec>,
        ctx: &AccountContext,
    ) -> Result<Value, SpecError> {
        let st = s.get_ref();
        let mut m = Map::new();
        let text = |t: &str| {
            self.interp_text(t, ctx)
                .map_err(|(msg, help)| at.err(s.span(), msg).with_help(help))
        };
        if let Some(sid) = &st.sid {
            m.insert("Sid".into(), json!(sid));
        }
        let effect = match &st.effect {
            None => "Allow".to_string(),
            Some(e) if e.get_ref() == "Allow" || e.get_ref() == "Deny" => e.get_ref().clone(),
            Some(e) => {
                return Err(at.err(
                    e.span(),
                    format!(
                        "effect must be \"Allow\" or \"Deny\", found \"{}\"",
                        e.get_ref()
                    ),
                ));
            }
        };
        m.insert("Effect".into(), json!(effect));
        for (key, v) in [
            ("Action", &st.action),
            ("NotAction", &st.not_action),
            ("Resource", &st.resource),
            ("NotResource", &st.not_resource),
        ] {
            if let Some(v) = v {
                let value = match v {
                    OneOrMany::One(x) => Value::String(text(x)?),
                    OneOrMany::Many(xs) => Value::Array(
                        xs.iter()
                            .map(|x| text(x).map(Value::String))
                            .collect::<Result<_, _>>()?,
                    ),
                };
                m.insert(key.into(), value);
            }
        }
        for (key, v) in [
            ("Principal", &st.principal),
            ("NotPrincipal", &st.not_principal),
            ("Condition", &st.condition),
        ] {
            if let Some(v) = v {
                m.insert(key.into(), toml_to_json(v, &text)?);
            }
        }
        Ok(Value::Object(m))
    }
}

struct DocumentSource<'a> {
    document: &'a Option<Str>,
    statement: &'a Option<Vec<Spanned<StatementSpec>>>,
    version: &'a Option<Str>,
}

fn toml_to_json(
    v: &toml::Value,
    text: &dyn Fn(&str) -> Result<String, SpecError>,
) -> Result<Value, SpecError> {
    Ok(match v {
        toml::Value::String(s) => Value::String(text(s)?),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(
            a.iter()
                .map(|x| toml_to_json(x, text))
                .collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => {
            let mut m = Map::new();
            for (k, x) in t {
                m.insert(k.clone(), toml_to_json(x, text)?);
            }
            Value::Object(m)
        }
    })
}

/// Maps a serde_json error position inside a TOML string to a byte offset in the file.
/// Exact for literal strings (`'''...'''`), approximate for strings with escapes.
fn json_error_offset(source: &str, span: Range<usize>, line: usize, column: usize) -> Range<usize> {
    let token = &source[span.clone()];
    let quote_len = if token.starts_with("'''") || token.starts_with("\"\"\"") {
        3
    } else {
        1
    };
    let mut start = span.start + quote_len.min(token.len());
    // A newline right after a multi-line opener is not part of the string.
    if quote_len == 3 && source[start..].starts_with('\n') {
        start += 1;
    }
    let body = &source[start..span.end];
    let mut offset = start;
    let mut l = 1;
    for (i, ch) in body.char_indices() {
        if l == line {
            offset = start + i;
            break;
        }
        if ch == '\n' {
            l += 1;
        }
    }
    let col_off: usize = source[offset..span.end]
        .chars()
        .take(column.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    let at = (offset + col_off).min(span.end);
    at..at + 1
}

/// What a trust policy requires, for explaining denials: ExternalIds, sts:TagSession,
/// and the AWS principals it names.
fn trust_facts(doc: &Value) -> smoke::TrustFacts {
    let mut facts = smoke::TrustFacts::default();
    let stmts: Vec<&Value> = match doc.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v) => vec![v],
        None => vec![],
    };
    let strings = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect(),
            _ => vec![],
        }
    };
    for s in stmts {
        if strings(s.get("Action"))
            .iter()
            .any(|a| a.eq_ignore_ascii_case("sts:TagSession"))
        {
            facts.allows_tag_session = true;
        }
        if let Some(Value::Object(ops)) = s.get("Condition") {
            for keys in ops.values() {
                if let Value::Object(keys) = keys {
                    for (k, v) in keys {
                        if k.eq_ignore_ascii_case("sts:ExternalId") {
                            facts.external_ids.extend(strings(Some(v)));
                        }
                    }
                }
            }
        }
        facts
            .principals
            .extend(strings(s.get("Principal").and_then(|p| p.get("AWS"))));
    }
    facts
}

fn one_or_many(mut v: Vec<String>) -> Value {
    if v.len() == 1 {
        Value::String(v.remove(0))
    } else {
        Value::Array(v.into_iter().map(Value::String).collect())
    }
}

fn check_name(at: &At, name: &Spanned<String>, max: usize, what: &str) -> Result<(), SpecError> {
    if valid_name(name.get_ref(), max) {
        Ok(())
    } else {
        Err(at
            .err(
                name.span(),
                format!("invalid {what} name \"{}\"", name.get_ref()),
            )
            .with_help(format!(
                "IAM names are 1 to {max} letters, digits and + = , . @ - _"
            )))
    }
}

pub fn valid_name(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c))
}

fn valid_external_id(s: &str) -> bool {
    (2..=1224).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-".contains(c))
}

fn arn_parts(s: &str) -> Option<(&str, &str, &str, &str)> {
    // arn:partition:iam::account:resource
    let mut it = s.splitn(6, ':');
    let (arn, partition, service, region, account, resource) = (
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    );
    if arn != "arn" || !matches!(partition, "aws" | "aws-cn" | "aws-us-gov") || !region.is_empty() {
        return None;
    }
    Some((partition, service, account, resource))
}

fn valid_policy_arn(s: &str) -> bool {
    match arn_parts(s) {
        Some((_, "iam", account, resource)) => {
            (account == "aws" || policy::is_account_id(account))
                && resource
                    .strip_prefix("policy/")
                    .is_some_and(|n| !n.is_empty() && !n.ends_with('/'))
        }
        _ => false,
    }
}

fn valid_principal_arn(s: &str, kind: &str) -> bool {
    match arn_parts(s) {
        Some((_, "iam", account, resource)) if policy::is_account_id(account) => {
            resource == "root"
                || resource
                    .strip_prefix(kind)
                    .and_then(|r| r.strip_prefix('/'))
                    .is_some_and(|n| {
                        let name = n.rsplit('/').next().unwrap_or("");
                        valid_name(name, 64)
                    })
        }
        Some((_, "sts", account, resource)) if policy::is_account_id(account) => {
            resource.starts_with("assumed-role/")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests;
