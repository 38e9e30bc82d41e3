//! `[smoke.NAME]` sections: resolved against the desired state (roles by plan name, users'
//! key sinks), so a check names what the plan declares.

use super::builder::{At, Builder};
use super::schema::SmokeSpec;
use super::{PlanFile, SpecError, nearest, strings};
use crate::iam::User;
use crate::model::{Address, Kind, Resource};
use crate::smoke::{self, SmokeCheck};
use serde_json::Value;
use std::collections::BTreeMap;
use toml::Spanned;

impl Builder<'_> {
    /// The check, or `None` when it names a role or user of the plan whose own section
    /// has an error (reported there: the resource is declared, so naming it is no second
    /// error).
    pub fn smoke(
        &self,
        f: &PlanFile,
        name: &Spanned<String>,
        spec: &Spanned<SmokeSpec>,
    ) -> Result<Option<SmokeCheck>, SpecError> {
        let at = At { file: f };
        let s = spec.get_ref();
        let ctx = self.ctx(&None).clone();
        // Names a role or user whose section has an error: the rest is still checked.
        let mut broken = false;
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
                    _ if self.refs.declared(Kind::User, &ctx.alias, &user).is_some() => {
                        broken = true;
                        smoke::From::Caller
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
                        ctx.arn("role", &r.path, &r.name),
                        Some(trust_facts(r.trust.value())),
                    ),
                    _ if let Some(t) = self.refs.declared(Kind::Role, &ctx.alias, &role) => {
                        broken = true;
                        (t.arn.clone(), None)
                    }
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
                // The key is not spanned: its value's place names the line.
                strings::check_at(&at, v.span(), k, &strings::TAG_KEY)?;
                let value = self.interp(&at, v, &ctx)?;
                strings::check_at(&at, v.span(), &value, &strings::TAG_VALUE)?;
                tags.insert(k.clone(), value);
            }
            assume.push(smoke::Assume {
                role_arn,
                external_id: a
                    .external_id
                    .as_ref()
                    .map(|x| self.interp(&at, x, &ctx))
                    .transpose()?,
                session_name: match &a.session_name {
                    Some(n) => {
                        let name = self.interp(&at, n, &ctx)?;
                        strings::check_at(&at, n.span(), &name, &strings::SESSION_NAME)?;
                        name
                    }
                    None => "iamplan-smoke".into(),
                },
                duration_seconds: match &a.duration_seconds {
                    None => None,
                    Some(d) if (900..=43200).contains(d.get_ref()) => Some(*d.get_ref() as i32),
                    Some(d) => {
                        return Err(at
                            .err(d.span(), format!("duration_seconds {} is out of range", d.get_ref()))
                            .with_help("STS accepts 900 to 43200 seconds, and no more than the role's max_session_duration"));
                    }
                },
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
        if broken {
            return Ok(None);
        }
        Ok(Some(SmokeCheck {
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
        }))
    }
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
