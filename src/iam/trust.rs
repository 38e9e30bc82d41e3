//! A role's trust policy (`[role.NAME.trust]`): helpers for the common principals
//! (accounts, roles, users, services, ExternalId, session tags), or a raw document.

use crate::model::{AccountContext, Kind};
use crate::policy::{self, PolicyDocument};
use crate::spec::{
    At, Builder, DocumentSource, SpecError, StatementSpec, Str, one_or_many, valid_external_id,
    valid_principal_arn,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use toml::Spanned;

/// A trust policy: either helpers or a raw document (not both).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustSpec {
    #[serde(default)]
    pub accounts: Vec<Str>,
    #[serde(default)]
    pub roles: Vec<Str>,
    #[serde(default)]
    pub users: Vec<Str>,
    #[serde(default)]
    pub services: Vec<Str>,
    pub external_id: Option<Str>,
    #[serde(default)]
    pub session_tags: bool,
    pub document: Option<Str>,
    pub statement: Option<Vec<Spanned<StatementSpec>>>,
    pub version: Option<Str>,
}

/// Builds the trust policy from its section: the helpers, or a raw document.
pub fn build(
    b: &Builder,
    at: &At,
    t: &Spanned<TrustSpec>,
    ctx: &AccountContext,
) -> Result<PolicyDocument, SpecError> {
    let doc = document(b, at, t, ctx)?;
    // IAM's quota: 2,048 characters without white space by default, raisable to 4,096.
    let size = doc.inspect(policy::size_without_whitespace);
    if size > 4096 {
        return Err(at
            .err(t.span(), format!("the trust policy has {size} characters (without white space); IAM allows at most 4,096"))
            .with_help("trust whole accounts or fewer principals, or use conditions such as aws:PrincipalOrgID"));
    }
    if size > 2048 {
        b.found.borrow_mut().warnings.push(
            at.err(t.span(), format!("the trust policy has {size} characters (without white space): over IAM's default quota of 2,048"))
                .with_help("apply fails unless the account's quota (\"Role trust policy length\") was raised to 4,096"),
        );
    }
    Ok(doc)
}

fn document(
    b: &Builder,
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
        return b.document(
            at,
            "trust policy",
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
    // Findings about the helpers' document point at the first principal given.
    if let Some(first) = spec
        .accounts
        .iter()
        .chain(&spec.roles)
        .chain(&spec.users)
        .chain(&spec.services)
        .next()
    {
        b.place(at, "trust policy", None, None, first.span());
    }
    let mut aws = Vec::new();
    for a in &spec.accounts {
        let v = b.interp(at, a, ctx)?;
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
            let v = b.interp(at, p, ctx)?;
            if v.starts_with("arn:") {
                if !valid_principal_arn(&v, kind) {
                    return Err(at
                        .err(p.span(), format!("invalid {kind} ARN \"{v}\""))
                        .with_help(format!("expected arn:aws:iam::123456789012:{kind}/NAME")));
                }
                aws.push(v);
            } else {
                // A name is one of the plan's own roles or users (declared anywhere in the
                // files); anything else must be given as an ARN, so that a typo is not
                // trusted as a principal of the same account that does not exist.
                let k = if kind == "role" {
                    Kind::Role
                } else {
                    Kind::User
                };
                match b.refs.declared(k, &ctx.alias, &v) {
                    Some(t) => aws.push(t.arn.clone()),
                    None => {
                        return Err(at
                            .err(p.span(), format!("{kind} \"{v}\" is not declared in this plan"))
                            .with_help(format!(
                                "name a {kind} of the plan, or give the ARN of another one: arn:aws:iam::123456789012:{kind}/NAME"
                            )));
                    }
                }
            }
        }
    }
    let mut services = Vec::new();
    for s in &spec.services {
        let v = b.interp(at, s, ctx)?;
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
            let v = b.interp(at, x, ctx)?;
            if !valid_external_id(&v) {
                return Err(at
                    .err(x.span(), format!("invalid ExternalId \"{v}\""))
                    .with_help("an ExternalId is 2 to 1224 letters, digits or + = , . @ : / -"));
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
    Ok(b.policy_document(
        json!({"Version": version, "Statement": statements}),
        &ctx.partition,
    ))
}
