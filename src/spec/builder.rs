//! The desired state under construction: variables, references between resources, and
//! the section parts every kind shares (paths, tags, documents, policy references), each
//! checked with the file, line and column of what it reads.

use super::PlanFile;
use super::error::{Diagnostics, SpecError, nearest};
use super::refs::{RefAttr, Refs};
use super::schema::*;
use super::strings;
use crate::iam::{IamKind, Section};
use crate::model::{
    AccountContext, Address, DEFAULT_ACCOUNT, DesiredResource, Kind, Place, Resource,
};
use crate::output::{Part, Reference};
use crate::policy::{self, PolicyDocument};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use toml::Spanned;

pub struct Builder<'a> {
    pub stack: String,
    /// The plan's resources by name, for `${role.NAME.arn}` and the like.
    pub refs: Refs,
    pub vars: BTreeMap<String, String>,
    pub accounts: &'a BTreeMap<String, AccountContext>,
    pub resources: BTreeMap<Address, DesiredResource>,
    /// Problems beyond the one a resource's build returns (a document with several), and
    /// warnings; the build goes on after each.
    pub found: RefCell<Diagnostics>,
    /// The offline check: documents are checked but not put in canonical form (nothing
    /// is compared), which is most of a build's work.
    pub offline: bool,
    /// The plan's own files (a key sink must not overwrite one).
    pub plan_files: Vec<std::path::PathBuf>,
    /// Key sink targets claimed so far (file, or file and profile) -> the user.
    pub sink_targets: RefCell<BTreeMap<String, String>>,
    /// Where the documents of the resource being built are written (taken by `add`).
    pub places: RefCell<Vec<Place>>,
}

/// Error helper bound to one file.
pub struct At<'f> {
    pub file: &'f PlanFile,
}

impl At<'_> {
    pub fn err(&self, span: Range<usize>, msg: impl Into<String>) -> SpecError {
        SpecError::at(&self.file.path, &self.file.source, Some(span), msg)
    }
}

impl Builder<'_> {
    /// A document of the desired state (compared later, so canonical, except offline).
    pub fn policy_document(&self, value: Value, partition: &str) -> PolicyDocument {
        if self.offline {
            PolicyDocument::uncompared(value)
        } else {
            PolicyDocument::from_value(value, partition)
        }
    }

    pub fn ctx(&self, account: &Option<Str>) -> &AccountContext {
        let alias = account
            .as_ref()
            .map(|a| a.get_ref().as_str())
            .unwrap_or(DEFAULT_ACCOUNT);
        // An undeclared alias is reported by the accounts check; the build goes on in the
        // default account so that the section's other problems are found too.
        self.accounts
            .get(alias)
            .or_else(|| self.accounts.get(DEFAULT_ACCOUNT))
            .or_else(|| self.accounts.values().next())
            .expect("a command reaches at least one account")
    }

    /// Replaces `${...}` references. IAM's own policy variables (`${aws:username}`,
    /// `${aws:PrincipalTag/x}`, `${*}`, `${?}`, `${$}`) contain `:` or are single
    /// characters and are left for IAM.
    pub fn interp(&self, at: &At, s: &Str, ctx: &AccountContext) -> Result<String, SpecError> {
        self.interp_text(s.get_ref(), ctx)
            .map_err(|(msg, help)| at.err(s.span(), msg).with_help(help))
    }

    pub fn interp_text(
        &self,
        text: &str,
        ctx: &AccountContext,
    ) -> Result<String, (String, String)> {
        let mut out = String::with_capacity(text.len());
        for part in self.interp_parts(text, ctx)? {
            match part {
                Part::Text(t) => out.push_str(&t),
                Part::Ref(r) if r.attr != RefAttr::UniqueId => out.push_str(&r.plan_arn),
                Part::Ref(r) => {
                    return Err((
                        format!("`${{{}.unique_id}}` is known only once IAM has made the {}", r.label, r.address.kind.label()),
                        "use it in an [output.NAME] value (outputs are read from live IAM), or use the ARN".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Splits a string into text (variables substituted; IAM's own `${aws:...}` kept) and
    /// references to the plan's resources, which outputs resolve from live IAM.
    pub fn interp_parts(
        &self,
        text: &str,
        ctx: &AccountContext,
    ) -> Result<Vec<Part>, (String, String)> {
        let mut parts = Vec::new();
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
            rest = &after[end + 1..];
            if name.contains(':') || matches!(name, "*" | "?" | "$") {
                out.push_str(&format!("${{{name}}}"));
                continue;
            }
            match self.refs.lookup(name) {
                Some(Ok((target, attr))) => {
                    if !out.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut out)));
                    }
                    let label = name.rsplit_once('.').map_or(name, |(l, _)| l).to_string();
                    parts.push(Part::Ref(Reference {
                        address: target.address.clone(),
                        attr,
                        plan_arn: target.arn.clone(),
                        label,
                    }));
                }
                Some(Err(e)) => return Err(e),
                None => out.push_str(&self.variable(name, ctx)?),
            }
        }
        out.push_str(rest);
        if !out.is_empty() || parts.is_empty() {
            parts.push(Part::Text(out));
        }
        Ok(parts)
    }

    pub fn variable(&self, name: &str, ctx: &AccountContext) -> Result<String, (String, String)> {
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
            None => "variables are ${account_id}, ${region}, ${partition}, ${stack}, ${account.ALIAS}, ${var.NAME} (from [variables]) and references such as ${role.NAME.arn}; IAM's own variables contain a colon, e.g. ${aws:username}".into(),
        };
        Err((format!("undefined variable `{name}`"), help))
    }

    pub fn insert(
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

    pub fn origin(at: &At, span: Range<usize>) -> String {
        let f = at.file;
        let line = f.line_starts.partition_point(|&s| s <= span.start);
        let start = f.line_starts[line - 1];
        let col = f.source[start..span.start.min(f.source.len())]
            .chars()
            .count()
            + 1;
        format!("{}:{line}:{col}", f.path.display())
    }

    pub fn opt_text(
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

    /// A role's, user's or group's path (`policy`: a managed policy's, which IAM
    /// restricts to fewer characters).
    pub fn path(
        &self,
        at: &At,
        path: &Option<Str>,
        ctx: &AccountContext,
        policy: bool,
    ) -> Result<String, SpecError> {
        let Some(p) = path else { return Ok("/".into()) };
        let v = self.interp(at, p, ctx)?;
        if !v.starts_with('/') || !v.ends_with('/') || v.len() > 512 || v.contains("//") {
            return Err(at
                .err(p.span(), format!("invalid path \"{v}\""))
                .with_help("a path starts and ends with `/`, e.g. \"/integrations/\""));
        }
        let shape = if policy {
            &strings::POLICY_PATH
        } else {
            &strings::PATH
        };
        strings::check_at(at, p.span(), &v, shape)?;
        Ok(v)
    }

    pub fn tags(
        &self,
        at: &At,
        tags: &BTreeMap<Spanned<String>, Str>,
        ctx: &AccountContext,
    ) -> Result<BTreeMap<String, String>, SpecError> {
        let mut out = BTreeMap::new();
        // Each tag's problems are independent: all are reported (the first is returned,
        // the others recorded).
        let mut errors = Vec::new();
        for (k, v) in tags {
            let lower = k.get_ref().to_ascii_lowercase();
            if lower.starts_with("iamplan:") || lower.starts_with("aws:") {
                errors.push(
                    at.err(k.span(), format!("tag key \"{}\" is reserved", k.get_ref()))
                        .with_help(
                            "`aws:` tags belong to AWS; `iamplan:` tags are set by iamplan itself",
                        ),
                );
            } else if let Err(e) = strings::check_at(at, k.span(), k.get_ref(), &strings::TAG_KEY) {
                errors.push(e);
            }
            match self.interp(at, v, ctx).and_then(|value| {
                strings::check_at(at, v.span(), &value, &strings::TAG_VALUE).map(|()| value)
            }) {
                Ok(value) => {
                    out.insert(k.get_ref().clone(), value);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            return Ok(out);
        }
        let first = errors.remove(0);
        self.found.borrow_mut().errors.extend(errors);
        Err(first)
    }

    pub fn managed_list(
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

    pub fn inline_map(
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
                &format!("inline policy {}", pname.get_ref()),
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

    /// A managed policy named in the plan, or an ARN.
    pub fn policy_ref(&self, at: &At, r: &Str, ctx: &AccountContext) -> Result<String, SpecError> {
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
        if let Some(DesiredResource {
            resource: Resource::ManagedPolicy(p),
            ..
        }) = self.resources.get(&addr)
        {
            return Ok(ctx.arn("policy", &p.path, &p.name));
        }
        // Declared, with an error of its own reported at its section.
        if let Some(t) = self.refs.declared(Kind::ManagedPolicy, &ctx.alias, &v) {
            return Ok(t.arn.clone());
        }
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

    /// A policy document from its section; `label` names it as lint does.
    pub fn document(
        &self,
        at: &At,
        label: &str,
        owner_span: Range<usize>,
        src: DocumentSource,
        ctx: &AccountContext,
        trust: bool,
    ) -> Result<PolicyDocument, SpecError> {
        // Problems found in the TOML statements themselves, and per statement the values
        // they are about (as JSON text): the grammar check below runs on the statements
        // as written and must not report those values a second time.
        let mut errors = Vec::new();
        let mut reported: Vec<Vec<String>> = Vec::new();
        let mut unresolved = false;
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
                // An undefined variable must not hide the document's other problems: the
                // document is checked as written, and what the grammar says of a value
                // holding a `${...}` is left out (the variable's error is about it).
                let text = match self.interp(at, doc, ctx) {
                    Ok(text) => text,
                    Err(e) => {
                        errors.push(e);
                        unresolved = true;
                        doc.get_ref().clone()
                    }
                };
                let value: Value = match serde_json::from_str(&text) {
                    Ok(value) => value,
                    Err(e) => {
                        // Point into the JSON text when it is a literal string in the file.
                        let pos =
                            json_error_offset(&at.file.source, doc.span(), e.line(), e.column());
                        errors.push(at.err(pos, format!("invalid policy JSON: {e}")));
                        let first = errors.remove(0);
                        self.found.borrow_mut().errors.extend(errors);
                        return Err(first);
                    }
                };
                self.place(at, label, None, None, doc.span());
                (value, doc.span())
            }
            (None, Some(stmts)) => {
                let mut out = Vec::new();
                for (i, s) in stmts.iter().enumerate() {
                    let (value, found, about) = self.statement(at, label, i, s, ctx);
                    out.push(value);
                    errors.extend(found);
                    reported.push(about);
                }
                let version = match src.version {
                    Some(v) => v.get_ref().clone(),
                    None => "2012-10-17".into(),
                };
                (json!({"Version": version, "Statement": out}), owner_span)
            }
        };
        let kind = if trust { "trust policy" } else { "policy" };
        for p in policy::check(&value, trust) {
            if let (Some(i), Some(needle)) = (p.statement, &p.needle)
                && reported.get(i).is_some_and(|r| r.contains(needle))
            {
                continue;
            }
            if unresolved && p.needle.as_deref().is_some_and(|n| n.contains("${")) {
                continue;
            }
            // TOML statements point at the value at fault in their table; a JSON document
            // at the text it is about.
            let (span, place) = match (p.statement, src.statement) {
                (Some(i), Some(stmts)) if i < stmts.len() => (
                    statement_place(at, &stmts[i], p.needle.as_deref()),
                    String::new(),
                ),
                (Some(i), _) => (span.clone(), format!(" (Statement[{i}])")),
                (None, _) => (span.clone(), String::new()),
            };
            let span = match (&p.needle, src.statement) {
                (Some(needle), None) => at.file.source[span.clone()]
                    .find(needle.as_str())
                    .map(|i| span.start + i..span.start + i + needle.len())
                    .unwrap_or(span),
                _ => span,
            };
            let mut e = at.err(span, format!("invalid {kind}{place}: {}", p.message));
            if let Some(h) = p.help {
                e = e.with_help(h);
            }
            match p.severity {
                policy::Severity::Error => errors.push(e),
                policy::Severity::Warning => self.found.borrow_mut().warnings.push(e),
            }
        }
        if !errors.is_empty() {
            let first = errors.remove(0);
            self.found.borrow_mut().errors.extend(errors);
            return Err(first);
        }
        Ok(self.policy_document(value, &ctx.partition))
    }

    /// One TOML statement as JSON, every problem of it, and the values those problems are
    /// about (JSON text). A value with a problem is kept as written, so that the rest of
    /// the statement is still checked.
    pub fn statement(
        &self,
        at: &At,
        label: &str,
        i: usize,
        s: &Spanned<StatementSpec>,
        ctx: &AccountContext,
    ) -> (Value, Vec<SpecError>, Vec<String>) {
        let st = s.get_ref();
        let mut m = Map::new();
        let errors = RefCell::new(Vec::new());
        let about = RefCell::new(Vec::new());
        self.place(at, label, Some(i), None, s.span());
        let text = |t: &str, span: Range<usize>| match self.interp_text(t, ctx) {
            Ok(v) => {
                self.place(at, label, Some(i), Some(v.clone()), span);
                v
            }
            Err((msg, help)) => {
                errors.borrow_mut().push(at.err(span, msg).with_help(help));
                about.borrow_mut().push(Value::String(t.into()).to_string());
                t.to_string()
            }
        };
        if let Some(sid) = &st.sid {
            m.insert("Sid".into(), json!(sid.get_ref()));
        }
        let effect = match &st.effect {
            None => "Allow".to_string(),
            Some(e) if e.get_ref() == "Allow" || e.get_ref() == "Deny" => e.get_ref().clone(),
            Some(e) => {
                errors.borrow_mut().push(at.err(
                    e.span(),
                    format!(
                        "effect must be \"Allow\" or \"Deny\", found \"{}\"",
                        e.get_ref()
                    ),
                ));
                about
                    .borrow_mut()
                    .push(Value::String(e.get_ref().clone()).to_string());
                e.get_ref().clone()
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
                let value = match v.get_ref() {
                    OneOrMany::One(x) => Value::String(text(x, v.span())),
                    OneOrMany::Many(xs) => Value::Array(
                        xs.iter()
                            .map(|x| Value::String(text(x.get_ref(), x.span())))
                            .collect(),
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
                let span = v.span();
                m.insert(
                    key.into(),
                    toml_to_json(v.get_ref(), &|t| text(t, span.clone())),
                );
            }
        }
        // Condition keys, where a finding about one points.
        if let Some(c) = &st.condition
            && let toml::Value::Table(ops) = c.get_ref()
        {
            let span = c.span();
            for keys in ops.values() {
                if let toml::Value::Table(keys) = keys {
                    for k in keys.keys() {
                        if let Some(j) = at.file.source[span.clone()].find(k.as_str()) {
                            let start = span.start + j;
                            self.place(at, label, Some(i), Some(k.clone()), start..start + k.len());
                        }
                    }
                }
            }
        }
        (Value::Object(m), errors.into_inner(), about.into_inner())
    }
}

impl Builder<'_> {
    /// Records where part of a document is written (see `Place`).
    pub fn place(
        &self,
        at: &At,
        document: &str,
        statement: Option<usize>,
        text: Option<String>,
        span: Range<usize>,
    ) {
        self.places.borrow_mut().push(Place {
            document: document.to_string(),
            statement,
            text,
            origin: Self::origin(at, span),
        });
    }
}

/// Where a problem of a TOML statement is: the value it is about (`needle`, JSON text:
/// a quoted value, or a key such as `"NotAction"` or a condition operator), else the
/// statement's table.
fn statement_place(at: &At, s: &Spanned<StatementSpec>, needle: Option<&str>) -> Range<usize> {
    let st = s.get_ref();
    let one = |v: &Option<Spanned<OneOrMany>>| v.as_ref().map(Spanned::span);
    let value = |v: &Option<Spanned<toml::Value>>| v.as_ref().map(Spanned::span);
    let fields = [
        ("Sid", st.sid.as_ref().map(Spanned::span)),
        ("Effect", st.effect.as_ref().map(Spanned::span)),
        ("Action", one(&st.action)),
        ("NotAction", one(&st.not_action)),
        ("Resource", one(&st.resource)),
        ("NotResource", one(&st.not_resource)),
        ("Principal", value(&st.principal)),
        ("NotPrincipal", value(&st.not_principal)),
        ("Condition", value(&st.condition)),
    ];
    let Some(needle) = needle else {
        return s.span();
    };
    let bare: String = serde_json::from_str(needle).unwrap_or_else(|_| needle.to_string());
    // A statement key: its value (the TOML key is spelt in snake case).
    if let Some((_, Some(span))) = fields.iter().find(|(k, _)| *k == bare) {
        return span.clone();
    }
    // A value, quoted as in TOML's basic strings, else bare (a key of a condition table).
    let source = &at.file.source;
    for (_, span) in fields.iter() {
        let Some(span) = span else { continue };
        let text = &source[span.clone()];
        if let Some(i) = text.find(needle) {
            return span.start + i..span.start + i + needle.len();
        }
        if let Some(i) = text.find(&format!("'{bare}'")) {
            return span.start + i..span.start + i + bare.len() + 2;
        }
        if !bare.is_empty()
            && let Some(i) = text.find(bare.as_str())
        {
            return span.start + i..span.start + i + bare.len();
        }
    }
    s.span()
}

pub struct DocumentSource<'a> {
    pub document: &'a Option<Str>,
    pub statement: &'a Option<Vec<Spanned<StatementSpec>>>,
    pub version: &'a Option<Str>,
}

pub fn toml_to_json(v: &toml::Value, text: &dyn Fn(&str) -> String) -> Value {
    match v {
        toml::Value::String(s) => Value::String(text(s)),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(|x| toml_to_json(x, text)).collect()),
        toml::Value::Table(t) => {
            let mut m = Map::new();
            for (k, x) in t {
                m.insert(k.clone(), toml_to_json(x, text));
            }
            Value::Object(m)
        }
    }
}

/// Maps a serde_json error position inside a TOML string to a byte offset in the file.
/// Exact for literal strings (`'''...'''`), approximate for strings with escapes.
pub fn json_error_offset(
    source: &str,
    span: Range<usize>,
    line: usize,
    column: usize,
) -> Range<usize> {
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
pub fn one_or_many(mut v: Vec<String>) -> Value {
    if v.len() == 1 {
        Value::String(v.remove(0))
    } else {
        Value::Array(v.into_iter().map(Value::String).collect())
    }
}

pub fn check_name(
    at: &At,
    name: &Spanned<String>,
    max: usize,
    what: &str,
) -> Result<(), SpecError> {
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

pub fn valid_external_id(s: &str) -> bool {
    (2..=1224).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@:/-".contains(c))
}

pub fn arn_parts(s: &str) -> Option<(&str, &str, &str, &str)> {
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

pub fn valid_policy_arn(s: &str) -> bool {
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

pub fn valid_principal_arn(s: &str, kind: &str) -> bool {
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

impl Builder<'_> {
    /// Builds one resource of kind `K` from its plan-file section and records it.
    pub fn add<K: IamKind>(
        &mut self,
        f: &PlanFile,
        name: &Spanned<String>,
        section: &Spanned<K::Section>,
    ) -> Result<(), SpecError> {
        let at = At { file: f };
        let s = section.get_ref();
        self.places.borrow_mut().clear();
        check_name(&at, name, K::MAX_NAME_LEN, K::KIND.label())?;
        let ctx = self.ctx(s.account()).clone();
        let cx = BuildCx {
            b: self,
            at: &at,
            name,
            ctx: &ctx,
        };
        let resource = K::build(&cx, s)?.into_resource();
        let addr = Address::new(&ctx.alias, K::KIND, name.get_ref());
        let origin = Self::origin(&at, name.span());
        let mut lint_ignore = BTreeMap::new();
        for (code, why) in s.lint_ignore() {
            if crate::lint::Code::parse(code.get_ref()).is_none() {
                let codes = crate::lint::Code::ALL.iter().map(|c| c.as_str());
                let help = match nearest(code.get_ref(), codes) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => "the codes are listed in the README, section \"Lint\"".into(),
                };
                return Err(at
                    .err(
                        code.span(),
                        format!("unknown lint code `{}`", code.get_ref()),
                    )
                    .with_help(help));
            }
            if why.get_ref().trim().is_empty() {
                return Err(at
                    .err(why.span(), format!("say why `{}` is ignored here", code.get_ref()))
                    .with_help("the reason is for the next reader: e.g. \"the partner cannot send an ExternalId\""));
            }
            lint_ignore.insert(code.get_ref().clone(), why.get_ref().clone());
        }
        self.insert(
            &at,
            name,
            addr,
            DesiredResource {
                resource,
                adopt: s.adopt(),
                allow_widening: s.allow_widening(),
                origin,
                lint_ignore,
                places: self.places.take(),
            },
        )
    }
}

/// What a kind's build works with: the plan so far, the file, the resource's name and its
/// account. Its methods read the section parts every kind shares.
pub struct BuildCx<'c> {
    pub b: &'c Builder<'c>,
    pub at: &'c At<'c>,
    pub name: &'c Spanned<String>,
    pub ctx: &'c AccountContext,
}

impl BuildCx<'_> {
    /// Records a part's error and passes the result on: a kind evaluates every part of
    /// its section through this before using any, so that all of a section's problems
    /// are reported, not only the first (the first is returned again; duplicates are
    /// dropped when the errors are sorted).
    pub fn keep<T>(&self, r: Result<T, SpecError>) -> Result<T, SpecError> {
        if let Err(e) = &r {
            self.b.found.borrow_mut().errors.push(e.clone());
        }
        r
    }
    pub fn err(&self, span: Range<usize>, msg: impl Into<String>) -> SpecError {
        self.at.err(span, msg)
    }
    pub fn text(&self, s: &Str) -> Result<String, SpecError> {
        self.b.interp(self.at, s, self.ctx)
    }
    /// Optional text (a description): empty when absent.
    pub fn opt_text(&self, s: &Option<Str>) -> Result<String, SpecError> {
        self.b.opt_text(self.at, s, self.ctx)
    }
    pub fn path(&self, p: &Option<Str>) -> Result<String, SpecError> {
        self.b.path(self.at, p, self.ctx, false)
    }
    /// A managed policy's path.
    pub fn policy_path(&self, p: &Option<Str>) -> Result<String, SpecError> {
        self.b.path(self.at, p, self.ctx, true)
    }
    /// A value as AWS takes it (`shape`: its pattern in the API model), at `span`.
    pub fn shaped(
        &self,
        span: Range<usize>,
        value: String,
        shape: &strings::Shape,
    ) -> Result<String, SpecError> {
        strings::check_at(self.at, span, &value, shape)?;
        Ok(value)
    }
    /// A description: empty when absent, at most IAM's 1,000 characters.
    pub fn description(&self, d: &Option<Str>) -> Result<String, SpecError> {
        let text = self.opt_text(d)?;
        match d {
            Some(d) if text.chars().count() > 1000 => Err(self
                .err(
                    d.span(),
                    format!(
                        "the description has {} characters; IAM allows 1,000",
                        text.chars().count()
                    ),
                )
                .with_help("shorten it")),
            _ => Ok(text),
        }
    }
    /// Inline policies, with IAM's quota on their total size (characters without white
    /// space, all of one principal's inline policies together).
    pub fn inline_within(
        &self,
        inline: &BTreeMap<Spanned<String>, Spanned<DocumentSpec>>,
        quota: usize,
        kind: &str,
    ) -> Result<BTreeMap<String, PolicyDocument>, SpecError> {
        let docs = self.inline(inline)?;
        let total: usize = docs
            .values()
            .map(|d| d.inspect(policy::size_without_whitespace))
            .sum();
        if total > quota {
            return Err(self
                .err(self.name.span(), format!("the inline policies of {kind} \"{}\" total {total} characters (without white space); IAM allows {quota}", self.name.get_ref()))
                .with_help("move statements into a managed policy ([policy.NAME], attached with managed_policies)"));
        }
        Ok(docs)
    }
    pub fn tags(
        &self,
        tags: &BTreeMap<Spanned<String>, Str>,
    ) -> Result<BTreeMap<String, String>, SpecError> {
        self.b.tags(self.at, tags, self.ctx)
    }
    pub fn managed(&self, list: &[Str]) -> Result<BTreeSet<String>, SpecError> {
        self.b.managed_list(self.at, list, self.ctx)
    }
    pub fn inline(
        &self,
        inline: &BTreeMap<Spanned<String>, Spanned<DocumentSpec>>,
    ) -> Result<BTreeMap<String, PolicyDocument>, SpecError> {
        self.b.inline_map(self.at, inline, self.ctx)
    }
    /// An optional reference to a managed policy (a permissions boundary).
    pub fn opt_policy_ref(&self, r: &Option<Str>) -> Result<Option<String>, SpecError> {
        r.as_ref()
            .map(|r| self.b.policy_ref(self.at, r, self.ctx))
            .transpose()
    }
    /// The resource's own policy document (`document` or `statement`).
    pub fn document(&self, src: DocumentSource, trust: bool) -> Result<PolicyDocument, SpecError> {
        let label = if trust {
            "trust policy"
        } else {
            "policy document"
        };
        self.b
            .document(self.at, label, self.name.span(), src, self.ctx, trust)
    }
}
