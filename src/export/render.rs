//! Live resources as plan-file sections: the account's own ID, region and partition as
//! variables, references between exported resources by plan name, statements as TOML
//! tables where they fit and JSON where not, `adopt = true` everywhere.

use super::{File, Gap, trust};
use crate::iam::{Group, ManagedPolicy, Role, User};
use crate::model::{AccountContext, Address, Kind, LiveResource};
use crate::policy::PolicyDocument;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt::Write;

/// What the export knows while writing: the account, and the ARN -> plan name of every
/// exported resource (so that a reference is a name, not an ARN).
pub struct Names<'a> {
    pub ctx: &'a AccountContext,
    by_arn: BTreeMap<String, (Kind, String)>,
}

impl<'a> Names<'a> {
    pub fn new(ctx: &'a AccountContext, chosen: &[(&Address, &LiveResource)]) -> Self {
        let by_arn = chosen
            .iter()
            .map(|(_, lr)| {
                (
                    lr.arn.clone(),
                    (lr.resource.kind(), lr.resource.name().to_string()),
                )
            })
            .collect();
        Names { ctx, by_arn }
    }

    /// The plan name of an exported resource of this kind with this ARN.
    pub fn name_of(&self, kind: Kind, arn: &str) -> Option<&str> {
        self.by_arn
            .get(arn)
            .filter(|(k, _)| *k == kind)
            .map(|(_, n)| n.as_str())
    }

    /// A policy reference: the plan name of an exported policy, else its ARN.
    fn policy_ref(&self, arn: &str, gaps: &mut Gaps) -> String {
        match self.name_of(Kind::ManagedPolicy, arn) {
            Some(n) => n.to_string(),
            None => self.text(arn, gaps),
        }
    }

    /// Text with the account's own ID, region and partition as `${account_id}`,
    /// `${region}`, `${partition}`. Text iamplan would read as one of its own variables
    /// (`${name}` without a colon) cannot be written: it is reported.
    pub fn text(&self, s: &str, gaps: &mut Gaps) -> String {
        let mut rest = s;
        while let Some(i) = rest.find("${") {
            let after = &rest[i + 2..];
            let Some(end) = after.find('}') else { break };
            let name = &after[..end];
            if !name.contains(':') && !matches!(name, "*" | "?" | "$") {
                gaps.add(format!(
                    "the text {s:?} holds `${{{name}}}`, which iamplan would read as its own variable; plan files have no escape for it"
                ));
            }
            rest = &after[end + 1..];
        }
        let ctx = self.ctx;
        s.replace(&format!("arn:{}:", ctx.partition), "arn:${partition}:")
            .replace(&format!(":{}:", ctx.region), ":${region}:")
            .replace(&ctx.account_id, "${account_id}")
    }
}

/// The problems of the resource being written.
#[derive(Default)]
pub struct Gaps {
    resource: String,
    found: Vec<Gap>,
}

impl Gaps {
    pub fn add(&mut self, reason: String) {
        self.found.push(Gap {
            resource: self.resource.clone(),
            reason,
        });
    }
}

/// The sections written so far, by file, and the gaps found.
#[derive(Default)]
pub struct Out {
    sections: BTreeMap<&'static str, Vec<String>>,
    pub gaps: Vec<Gap>,
}

impl Out {
    fn add(&mut self, file: &'static str, section: String, gaps: Gaps) {
        self.sections.entry(file).or_default().push(section);
        self.gaps.extend(gaps.found);
    }

    pub fn files(&self, stack: &str, ctx: &AccountContext) -> Vec<File> {
        let header = format!(
            "# Exported by `iamplan export` from account {} ({}). Every resource has `adopt = true`:\n# `iamplan plan` shows each adoption and no other change; `iamplan apply` marks them as this\n# stack's.\n",
            ctx.account_id, ctx.alias
        );
        let mut files = vec![File {
            name: "stack.toml".into(),
            // ${region} in these files means the region the export read: pinned here, so
            // that planning them from another region does not change what they say.
            text: format!(
                "{header}\n[stack]\nname = {}\n\n[accounts.default]\nregion = {}\n",
                q(stack),
                q(&ctx.region)
            ),
        }];
        for name in ["policies.toml", "groups.toml", "roles.toml", "users.toml"] {
            if let Some(sections) = self.sections.get(name) {
                files.push(File {
                    name: name.into(),
                    text: format!("{header}\n{}", sections.join("\n")),
                });
            }
        }
        files
    }
}

fn gaps_for(kind: Kind, name: &str) -> Gaps {
    Gaps {
        resource: format!("{}.{name}", kind.label()),
        found: Vec::new(),
    }
}

pub fn policy(out: &mut Out, names: &Names, p: &ManagedPolicy) {
    let mut g = gaps_for(Kind::ManagedPolicy, &p.name);
    let head = table(&["policy", &p.name]);
    let mut s = format!("[{head}]\n");
    common(&mut s, names, &mut g, &p.path);
    if !p.description.is_empty() {
        let _ = writeln!(
            s,
            "description = {}",
            q(&names.text(&p.description, &mut g))
        );
    }
    let _ = writeln!(s, "adopt = true");
    document(&mut s, &head, true, &p.document, names, &mut g);
    out.add("policies.toml", s, g);
}

pub fn role(out: &mut Out, names: &Names, r: &Role, trust_document: bool) {
    let mut g = gaps_for(Kind::Role, &r.name);
    let head = table(&["role", &r.name]);
    let mut s = format!("[{head}]\n");
    common(&mut s, names, &mut g, &r.path);
    if !r.description.is_empty() {
        let _ = writeln!(
            s,
            "description = {}",
            q(&names.text(&r.description, &mut g))
        );
    }
    if r.max_session_duration != 3600 {
        let _ = writeln!(s, "max_session_duration = {}", r.max_session_duration);
    }
    attached(
        &mut s,
        names,
        &mut g,
        &r.permissions_boundary,
        &r.managed,
        &r.tags,
    );
    if r.instance_profile {
        let _ = writeln!(s, "instance_profile = true");
    }
    for ip in r
        .instance_profiles
        .iter()
        .filter(|p| !p.eq_ignore_ascii_case(&r.name))
    {
        g.add(format!(
            "the instance profile {ip} holds the role: plan files declare only a profile named after its role"
        ));
    }
    for id in &r.broken_principals {
        g.add(format!(
            "the trust policy names {id}, the unique ID IAM shows for a deleted role or user: plan files refuse it (it trusts no one), so the exported trust policy leaves it out"
        ));
    }
    let stripped;
    let r_trust = if r.broken_principals.is_empty() {
        &r.trust
    } else {
        stripped =
            super::trust::without_principals(&r.trust, &r.broken_principals, &names.ctx.partition);
        &stripped
    };
    let _ = writeln!(s, "adopt = true");
    let trust_head = format!("{head}.trust");
    match trust::helpers(r_trust, names).filter(|_| !trust_document) {
        Some(h) => {
            let _ = write!(s, "\n[{trust_head}]\n{}", h.render(names, &mut g));
        }
        None => document(&mut s, &trust_head, false, r_trust, names, &mut g),
    }
    inline_docs(&mut s, &head, &r.inline, names, &mut g);
    out.add("roles.toml", s, g);
}

pub fn user(out: &mut Out, names: &Names, u: &User) {
    let mut g = gaps_for(Kind::User, &u.name);
    let head = table(&["user", &u.name]);
    let mut s = format!("[{head}]\n");
    common(&mut s, names, &mut g, &u.path);
    attached(
        &mut s,
        names,
        &mut g,
        &u.permissions_boundary,
        &u.managed,
        &u.tags,
    );
    if !u.groups.is_empty() {
        let list: Vec<String> = u.groups.iter().map(|x| q(x)).collect();
        let _ = writeln!(s, "groups = [{}]", list.join(", "));
    }
    let _ = writeln!(s, "adopt = true");
    inline_docs(&mut s, &head, &u.inline, names, &mut g);
    let active = u.access_keys.iter().filter(|k| k.active).count();
    if !u.access_keys.is_empty() {
        // No secret is ever read: the rule is left for the user to switch on, with a sink
        // that will receive the next key.
        let _ = write!(
            s,
            "\n# The user has {} access key(s), {active} active. To let iamplan rotate them, uncomment\n# and choose where the next secret goes (the current secrets are not known to iamplan):\n# [{head}.access_keys]\n# count = 1\n# rotate_after_days = 90\n# sink = {{ type = \"json\", path = \"secrets/{}.json\" }}\n",
            u.access_keys.len(),
            u.name
        );
    }
    out.add("users.toml", s, g);
}

pub fn group(out: &mut Out, names: &Names, gr: &Group) {
    let mut g = gaps_for(Kind::Group, &gr.name);
    let head = table(&["group", &gr.name]);
    let mut s = format!("[{head}]\n");
    common(&mut s, names, &mut g, &gr.path);
    attached(&mut s, names, &mut g, &None, &gr.managed, &BTreeMap::new());
    let _ = writeln!(s, "adopt = true");
    inline_docs(&mut s, &head, &gr.inline, names, &mut g);
    out.add("groups.toml", s, g);
}

/// `[head.inline.NAME]` for each inline policy.
fn inline_docs(
    s: &mut String,
    head: &str,
    inline: &BTreeMap<String, PolicyDocument>,
    names: &Names,
    g: &mut Gaps,
) {
    for (pname, doc) in inline {
        let table = format!("{head}.inline.{}", key(pname));
        document(s, &table, false, doc, names, g);
    }
}

fn common(s: &mut String, names: &Names, g: &mut Gaps, path: &str) {
    if path != "/" {
        let _ = writeln!(s, "path = {}", q(&names.text(path, g)));
    }
}

fn attached(
    s: &mut String,
    names: &Names,
    g: &mut Gaps,
    boundary: &Option<String>,
    managed: &std::collections::BTreeSet<String>,
    tags: &BTreeMap<String, String>,
) {
    if let Some(b) = boundary {
        let _ = writeln!(s, "permissions_boundary = {}", q(&names.policy_ref(b, g)));
    }
    if !managed.is_empty() {
        let list: Vec<String> = managed.iter().map(|m| q(&names.policy_ref(m, g))).collect();
        let _ = writeln!(s, "managed_policies = [{}]", list.join(", "));
    }
    if !tags.is_empty() {
        let list: Vec<String> = tags
            .iter()
            .map(|(k, v)| format!("{} = {}", key(k), q(&names.text(v, g))))
            .collect();
        let _ = writeln!(s, "tags = {{ {} }}", list.join(", "));
    }
}

/// A document under `[head]` (`open`: that table is the one being written, a policy's own):
/// TOML statements where every statement fits, else JSON.
fn document(
    s: &mut String,
    head: &str,
    open: bool,
    doc: &PolicyDocument,
    names: &Names,
    g: &mut Gaps,
) {
    if let Some(text) = statements(head, open, doc.value(), names, g) {
        s.push_str(&text);
        return;
    }
    let json = names.text(&doc.pretty(), g);
    if !open {
        let _ = write!(s, "\n[{head}]\n");
    }
    if json.contains("'''") {
        let _ = writeln!(s, "document = {}", q(&json));
    } else {
        let _ = writeln!(s, "document = '''\n{json}\n'''");
    }
}

/// `[[head.statement]]` tables, if the document has nothing TOML statements cannot say.
fn statements(head: &str, open: bool, doc: &Value, names: &Names, g: &mut Gaps) -> Option<String> {
    let map = doc.as_object()?;
    if map.keys().any(|k| k != "Version" && k != "Statement") {
        return None;
    }
    let stmts = crate::policy::statements(doc)?;
    let mut out = if open {
        String::new()
    } else {
        format!("\n[{head}]\n")
    };
    match map.get("Version").and_then(Value::as_str) {
        Some("2012-10-17") => {}
        Some(v) => {
            let _ = writeln!(out, "version = {}", q(v));
        }
        None => {
            let _ = writeln!(out, "version = \"2008-10-17\"");
        }
    }
    for st in stmts.iter() {
        let st = st.as_object()?;
        let _ = writeln!(out, "[[{head}.statement]]");
        for (json_key, toml_key) in [
            ("Sid", "sid"),
            ("Effect", "effect"),
            ("Action", "action"),
            ("NotAction", "not_action"),
            ("Resource", "resource"),
            ("NotResource", "not_resource"),
            ("Principal", "principal"),
            ("NotPrincipal", "not_principal"),
            ("Condition", "condition"),
        ] {
            let Some(v) = st.get(json_key) else { continue };
            if json_key == "Effect" && v == "Allow" {
                continue;
            }
            let fits = match json_key {
                "Sid" | "Effect" => v.is_string(),
                "Action" | "NotAction" | "Resource" | "NotResource" => {
                    v.is_string() || v.as_array().is_some_and(|a| a.iter().all(Value::is_string))
                }
                _ => true,
            };
            if !fits {
                return None;
            }
            let _ = writeln!(out, "{toml_key} = {}", inline(v, names, g)?);
        }
        if st
            .keys()
            .any(|k| !crate::policy::STATEMENT_KEYS.contains(&k.as_str()))
        {
            return None;
        }
    }
    Some(out)
}

/// A JSON value as a TOML inline value; `None` for what TOML has no word for (null).
fn inline(v: &Value, names: &Names, g: &mut Gaps) -> Option<String> {
    Some(match v {
        Value::String(s) => q(&names.text(s, g)),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => return None,
        Value::Array(a) => {
            let items: Option<Vec<String>> = a.iter().map(|x| inline(x, names, g)).collect();
            format!("[{}]", items?.join(", "))
        }
        Value::Object(m) => {
            let items: Option<Vec<String>> = m
                .iter()
                .map(|(k, x)| inline(x, names, g).map(|x| format!("{} = {x}", key(k))))
                .collect();
            format!("{{ {} }}", items?.join(", "))
        }
    })
}

/// A TOML string.
pub fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare where TOML allows it, quoted otherwise.
pub fn key(k: &str) -> String {
    if !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        k.to_string()
    } else {
        q(k)
    }
}

/// A table header from its keys.
fn table(keys: &[&str]) -> String {
    keys.iter().map(|k| key(k)).collect::<Vec<_>>().join(".")
}
