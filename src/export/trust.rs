//! Which trust policies the trust helpers (`accounts`, `roles`, `users`, `services`,
//! `external_id`, `session_tags`) say exactly: the shapes `iam::trust` writes. Anything
//! else is written as the document itself. (The command also plans the files and falls
//! back to the document for any role whose helpers do not compare equal.)

use super::render::{Gaps, Names, q};
use crate::model::Kind;
use crate::policy::{PolicyDocument, is_account_id};
use serde_json::Value;
use std::fmt::Write;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Helpers {
    accounts: Vec<String>,
    roles: Vec<String>,
    users: Vec<String>,
    services: Vec<String>,
    external_id: Option<String>,
    session_tags: bool,
}

fn strings(v: &Value) -> Option<Vec<&str>> {
    match v {
        Value::String(s) => Some(vec![s]),
        Value::Array(a) => a.iter().map(Value::as_str).collect(),
        _ => None,
    }
}

/// The trust policy without the given AWS principals (unique IDs of deleted principals,
/// which plan files refuse); a statement left with no principal is left out.
pub fn without_principals(doc: &PolicyDocument, ids: &[String], partition: &str) -> PolicyDocument {
    let mut value = doc.value().clone();
    let gone = |v: &Value| v.as_str().is_some_and(|s| ids.iter().any(|id| id == s));
    let keep = |st: &mut Value| {
        let Some(principal) = st.get_mut("Principal").and_then(Value::as_object_mut) else {
            return true;
        };
        match principal.get_mut("AWS") {
            Some(Value::Array(a)) => {
                a.retain(|v| !gone(v));
                if a.is_empty() {
                    principal.remove("AWS");
                }
            }
            Some(v) if gone(v) => {
                principal.remove("AWS");
            }
            _ => {}
        }
        !principal.is_empty()
    };
    let emptied = match value.get_mut("Statement") {
        Some(Value::Array(statements)) => {
            statements.retain_mut(keep);
            false
        }
        Some(st) => !keep(st),
        None => false,
    };
    if emptied {
        value["Statement"] = Value::Array(vec![]);
    }
    PolicyDocument::from_value(value, partition)
}

/// The helpers that write exactly this trust policy, if there are such.
pub fn helpers(doc: &PolicyDocument, names: &Names) -> Option<Helpers> {
    let map = doc.value().as_object()?;
    if map.get("Version").and_then(Value::as_str) != Some("2012-10-17") || map.len() != 2 {
        return None;
    }
    let mut h = Helpers::default();
    let (mut seen_aws, mut seen_service) = (false, false);
    for st in crate::policy::statements(doc.value())?.iter() {
        let st = st.as_object()?;
        if st.get("Effect")? != "Allow" || st.contains_key("Sid") && st["Sid"] != "" {
            return None;
        }
        let principal = st.get("Principal")?.as_object()?;
        if principal.len() != 1 {
            return None;
        }
        let mut actions = strings(st.get("Action")?)?;
        actions.sort_unstable();
        let allowed = st.keys().all(|k| {
            matches!(
                k.as_str(),
                "Effect" | "Principal" | "Action" | "Condition" | "Sid"
            )
        });
        if !allowed {
            return None;
        }
        if let Some(services) = principal.get("Service") {
            if seen_service || actions != ["sts:AssumeRole"] || st.contains_key("Condition") {
                return None;
            }
            seen_service = true;
            h.services = strings(services)?.into_iter().map(str::to_string).collect();
            continue;
        }
        let aws = principal.get("AWS")?;
        if seen_aws {
            return None;
        }
        seen_aws = true;
        h.session_tags = match actions.as_slice() {
            ["sts:AssumeRole"] => false,
            ["sts:AssumeRole", "sts:TagSession"] => true,
            _ => return None,
        };
        if let Some(c) = st.get("Condition") {
            let ops = c.as_object()?;
            let keys = ops.get("StringEquals")?.as_object()?;
            if ops.len() != 1 || keys.len() != 1 {
                return None;
            }
            h.external_id = Some(keys.get("sts:ExternalId")?.as_str()?.to_string());
        }
        for p in strings(aws)? {
            if is_account_id(p) {
                h.accounts.push(p.to_string());
                continue;
            }
            let Some((_, "iam", account, res)) = crate::spec::arn_parts(p) else {
                return None;
            };
            if res == "root" && is_account_id(account) {
                h.accounts.push(account.to_string());
            } else if res.starts_with("role/") {
                h.roles
                    .push(names.name_of(Kind::Role, p).unwrap_or(p).to_string());
            } else if res.starts_with("user/") {
                h.users
                    .push(names.name_of(Kind::User, p).unwrap_or(p).to_string());
            } else {
                return None;
            }
        }
    }
    (seen_aws || seen_service).then_some(h)
}

impl Helpers {
    pub fn render(&self, names: &Names, g: &mut Gaps) -> String {
        let mut s = String::new();
        let mut list = |s: &mut String, key: &str, items: &[String]| {
            if !items.is_empty() {
                let l: Vec<String> = items.iter().map(|i| q(&names.text(i, g))).collect();
                let _ = writeln!(s, "{key} = [{}]", l.join(", "));
            }
        };
        list(&mut s, "accounts", &self.accounts);
        list(&mut s, "roles", &self.roles);
        list(&mut s, "users", &self.users);
        list(&mut s, "services", &self.services);
        if let Some(x) = &self.external_id {
            let _ = writeln!(s, "external_id = {}", q(&names.text(x, g)));
        }
        if self.session_tags {
            let _ = writeln!(s, "session_tags = true");
        }
        s
    }
}
