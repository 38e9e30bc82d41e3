//! Condition blocks and policy variables against a request context.
//!
//! Every function answers three-valued: an operator it does not know, a key whose absence
//! it cannot know, or a value it cannot read gives `Unknown` with the reason, never a guess.

use super::matcher::{Tok, arn_like, glob_tokens};
use super::{Context, Lookup, Tri};
use serde_json::Value;
use std::net::IpAddr;

/// A policy value after its variables were replaced.
pub(crate) enum Subst {
    /// Wildcards of the policy text are `Star`/`One`; substituted text is literal.
    Tokens(Vec<Tok>),
    /// A variable names a key the request does not have (and no default is given).
    Absent(String),
    Unknown(String),
}

/// Replaces `${...}` variables in `text` (only when `vars`: the 2012-10-17 language).
pub(crate) fn substitute(text: &str, ctx: &Context, vars: bool) -> Subst {
    let mut out = Vec::new();
    let mut rest = text;
    let lit = |s: &str, out: &mut Vec<Tok>| out.extend(super::matcher::tokens(s));
    if !vars {
        lit(text, &mut out);
        return Subst::Tokens(out);
    }
    while let Some(i) = rest.find("${") {
        lit(&rest[..i], &mut out);
        let Some(end) = rest[i..].find('}') else {
            lit(&rest[i..], &mut out);
            return Subst::Tokens(out);
        };
        let inner = &rest[i + 2..i + end];
        rest = &rest[i + end + 1..];
        match inner {
            "*" | "?" | "$" => {
                out.extend(inner.chars().map(Tok::Char));
                continue;
            }
            _ => {}
        }
        let (key, default) = match inner.split_once(',') {
            Some((k, d)) => {
                let d = d.trim();
                match d.strip_prefix('\'').and_then(|d| d.strip_suffix('\'')) {
                    Some(d) => (k.trim(), Some(d)),
                    None => {
                        return Subst::Unknown(format!(
                            "the policy variable ${{{inner}}} has a default that is not quoted"
                        ));
                    }
                }
            }
            None => (inner.trim(), None),
        };
        match ctx.lookup(key) {
            Lookup::Values([one]) => out.extend(one.chars().map(Tok::Char)),
            Lookup::Values(_) => {
                return Subst::Unknown(format!(
                    "the policy variable ${{{key}}} has several values in the request"
                ));
            }
            Lookup::Absent => match default {
                Some(d) => out.extend(d.chars().map(Tok::Char)),
                None => return Subst::Absent(key.to_string()),
            },
            // Even with a default: the key may be in the real request.
            Lookup::Unknown(why) => return Subst::Unknown(why),
        }
    }
    lit(rest, &mut out);
    Subst::Tokens(out)
}

fn plain(tokens: &[Tok]) -> String {
    tokens
        .iter()
        .map(|t| match t {
            Tok::Char(c) => *c,
            Tok::Star => '*',
            Tok::One => '?',
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringEqualsIgnoreCase,
    StringLike,
    Numeric(NumOp),
    Date(NumOp),
    Bool,
    IpAddress,
    Arn,
    Null,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NumOp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetOp {
    AnyValue,
    AllValues,
}

#[derive(Debug, Clone, Copy)]
struct Operator {
    base: Base,
    negated: bool,
    if_exists: bool,
    set: Option<SetOp>,
}

fn parse_operator(name: &str) -> Option<Operator> {
    let lower = name.to_ascii_lowercase();
    let (set, rest) = if let Some(r) = lower.strip_prefix("foranyvalue:") {
        (Some(SetOp::AnyValue), r)
    } else if let Some(r) = lower.strip_prefix("forallvalues:") {
        (Some(SetOp::AllValues), r)
    } else {
        (None, lower.as_str())
    };
    let (rest, if_exists) = match rest.strip_suffix("ifexists") {
        Some(r) => (r, true),
        None => (rest, false),
    };
    let num = |s: &str| match s {
        "equals" => Some((NumOp::Eq, false)),
        "notequals" => Some((NumOp::Eq, true)),
        "lessthan" => Some((NumOp::Lt, false)),
        "lessthanequals" => Some((NumOp::Le, false)),
        "greaterthan" => Some((NumOp::Gt, false)),
        "greaterthanequals" => Some((NumOp::Ge, false)),
        _ => None,
    };
    let (base, negated) = match rest {
        "stringequals" => (Base::StringEquals, false),
        "stringnotequals" => (Base::StringEquals, true),
        "stringequalsignorecase" => (Base::StringEqualsIgnoreCase, false),
        "stringnotequalsignorecase" => (Base::StringEqualsIgnoreCase, true),
        "stringlike" => (Base::StringLike, false),
        "stringnotlike" => (Base::StringLike, true),
        "bool" => (Base::Bool, false),
        "ipaddress" => (Base::IpAddress, false),
        "notipaddress" => (Base::IpAddress, true),
        "arnequals" | "arnlike" => (Base::Arn, false),
        "arnnotequals" | "arnnotlike" => (Base::Arn, true),
        // `Null` takes no IfExists and no set prefix.
        "null" if !if_exists && set.is_none() => (Base::Null, false),
        r => {
            if let Some((op, neg)) = r.strip_prefix("numeric").and_then(num) {
                (Base::Numeric(op), neg)
            } else if let Some((op, neg)) = r.strip_prefix("date").and_then(num) {
                (Base::Date(op), neg)
            } else {
                return None;
            }
        }
    };
    Some(Operator {
        base,
        negated,
        if_exists,
        set,
    })
}

/// A condition value as text: `true` equals `"true"`, numbers their decimal form.
pub(crate) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub(crate) fn values_of(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => scalar(other).map(|s| vec![s]),
    }
}

/// A whole `Condition` block: every operator and every key must hold.
pub(crate) fn evaluate(block: &Value, ctx: &Context, vars: bool) -> Tri {
    let Value::Object(ops) = block else {
        return Tri::unknown("a Condition that is not an object");
    };
    let mut out = Tri::Yes;
    for (op_name, keys) in ops {
        let Some(op) = parse_operator(op_name) else {
            out = out.and(Tri::unknown(format!(
                "the condition operator {op_name} is not modelled"
            )));
            continue;
        };
        let Value::Object(keys) = keys else {
            out = out.and(Tri::unknown(format!(
                "{op_name}: its keys are not an object"
            )));
            continue;
        };
        for (key, values) in keys {
            let Some(values) = values_of(values) else {
                out = out.and(Tri::unknown(format!(
                    "{op_name} {key}: a value is not a string"
                )));
                continue;
            };
            out = out.and(one(op_name, op, key, &values, ctx, vars));
            if out == Tri::No {
                return Tri::No;
            }
        }
    }
    out
}

fn one(name: &str, op: Operator, key: &str, wanted: &[String], ctx: &Context, vars: bool) -> Tri {
    let found = ctx.lookup(key);
    if op.base == Base::Null {
        let present = match found {
            Lookup::Values(_) => true,
            Lookup::Absent => false,
            Lookup::Unknown(why) => return Tri::Unknown(vec![why]),
        };
        return wanted.iter().fold(Tri::No, |acc, w| {
            let m = match w.to_ascii_lowercase().as_str() {
                "true" => Tri::from_bool(!present),
                "false" => Tri::from_bool(present),
                _ => Tri::unknown(format!("Null {key}: `{w}` is neither true nor false")),
            };
            acc.or(m)
        });
    }
    let values = match found {
        Lookup::Unknown(why) => return Tri::Unknown(vec![why]),
        Lookup::Absent => {
            return Tri::from_bool(op.if_exists || op.negated || op.set == Some(SetOp::AllValues));
        }
        Lookup::Values(v) => v,
    };
    let pred = |v: &str| -> Tri {
        let any = wanted
            .iter()
            .fold(Tri::No, |acc, w| acc.or(matches(op, key, v, w, ctx, vars)));
        if op.negated { any.not() } else { any }
    };
    match op.set {
        None if values.len() > 1 => Tri::unknown(format!(
            "{name} {key}: the key has several values in the request; use ForAnyValue: or ForAllValues:"
        )),
        None => pred(&values[0]),
        Some(SetOp::AnyValue) => values.iter().fold(Tri::No, |acc, v| acc.or(pred(v))),
        Some(SetOp::AllValues) => values.iter().fold(Tri::Yes, |acc, v| acc.and(pred(v))),
    }
}

/// One request value against one policy value, under the operator's positive form.
fn matches(op: Operator, key: &str, value: &str, wanted: &str, ctx: &Context, vars: bool) -> Tri {
    let tokens = match substitute(wanted, ctx, vars) {
        Subst::Tokens(t) => t,
        // A variable without a value matches nothing; under a negated operator that would
        // make the condition true, which AWS does not document: undecided.
        Subst::Absent(_) if !op.negated => return Tri::No,
        Subst::Absent(k) => {
            return Tri::unknown(format!(
                "the policy variable ${{{k}}} has no value in the request, under a negated operator"
            ));
        }
        Subst::Unknown(why) => return Tri::unknown(why),
    };
    match op.base {
        Base::StringEquals => Tri::from_bool(value == plain(&tokens)),
        Base::StringEqualsIgnoreCase => {
            Tri::from_bool(value.to_lowercase() == plain(&tokens).to_lowercase())
        }
        Base::StringLike => Tri::from_bool(glob_tokens(&tokens, value, false)),
        Base::Bool => Tri::from_bool(value.eq_ignore_ascii_case(&plain(&tokens))),
        Base::Arn => {
            Tri::from_bool(super::matcher::arn_parts(value).is_some() && arn_like(&tokens, value))
        }
        Base::Numeric(n) => {
            match (
                value.trim().parse::<f64>(),
                plain(&tokens).trim().parse::<f64>(),
            ) {
                (Ok(a), Ok(b)) => Tri::from_bool(compare(n, a, b)),
                _ => Tri::unknown(format!("{key}: `{value}` or `{wanted}` is not a number")),
            }
        }
        Base::Date(n) => match (date(value), date(&plain(&tokens))) {
            (Some(a), Some(b)) => Tri::from_bool(compare(n, a as f64, b as f64)),
            _ => Tri::unknown(format!("{key}: `{value}` or `{wanted}` is not a date")),
        },
        Base::IpAddress => match (value.trim().parse::<IpAddr>(), cidr(&plain(&tokens))) {
            (Ok(ip), Some((net, bits))) => Tri::from_bool(in_cidr(ip, net, bits)),
            _ => Tri::unknown(format!(
                "{key}: `{value}` or `{wanted}` is not an IP address or range"
            )),
        },
        Base::Null => Tri::unknown("Null is decided before values"),
    }
}

fn compare(op: NumOp, a: f64, b: f64) -> bool {
    match op {
        NumOp::Eq => a == b,
        NumOp::Lt => a < b,
        NumOp::Le => a <= b,
        NumOp::Gt => a > b,
        NumOp::Ge => a >= b,
    }
}

/// Seconds since the epoch of an ISO 8601 time, a date, or an epoch number.
fn date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_second());
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_datetime(jiff::civil::Time::midnight())
            .to_zoned_datetime(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_second());
    }
    s.parse::<i64>().ok()
}

fn cidr(s: &str) -> Option<(IpAddr, u32)> {
    let s = s.trim();
    match s.split_once('/') {
        Some((ip, bits)) => {
            let ip: IpAddr = ip.parse().ok()?;
            let bits: u32 = bits.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            (bits <= max).then_some((ip, bits))
        }
        None => {
            let ip: IpAddr = s.parse().ok()?;
            Some((ip, if ip.is_ipv4() { 32 } else { 128 }))
        }
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(b) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(b)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(b) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx(pairs: &[(&str, &str)]) -> Context {
        let mut c = Context::new();
        for (k, v) in pairs {
            c.add(k, v);
        }
        c
    }

    #[test]
    fn operators() {
        let c = ctx(&[
            ("sts:ExternalId", "abc"),
            ("aws:SourceIp", "10.1.2.3"),
            ("aws:CurrentTime", "2027-01-01T00:00:00Z"),
            ("aws:MultiFactorAuthPresent", "true"),
            ("s3:max-keys", "10"),
        ]);
        let yes = |b: Value| assert_eq!(evaluate(&b, &c, true), Tri::Yes, "{b}");
        let no = |b: Value| assert_eq!(evaluate(&b, &c, true), Tri::No, "{b}");
        yes(json!({"StringEquals": {"STS:externalid": ["x", "abc"]}}));
        no(json!({"StringEquals": {"sts:ExternalId": "ABC"}}));
        yes(json!({"StringEqualsIgnoreCase": {"sts:ExternalId": "ABC"}}));
        yes(json!({"StringNotEquals": {"sts:ExternalId": ["x", "y"]}}));
        no(json!({"StringNotLike": {"sts:ExternalId": "a*"}}));
        yes(json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}));
        no(json!({"NotIpAddress": {"aws:SourceIp": ["10.0.0.0/8"]}}));
        yes(json!({"DateLessThan": {"aws:CurrentTime": "2027-06-01"}}));
        no(json!({"DateGreaterThan": {"aws:CurrentTime": "2027-06-01T00:00:00Z"}}));
        yes(json!({"Bool": {"aws:MultiFactorAuthPresent": true}}));
        yes(json!({"NumericLessThanEquals": {"s3:max-keys": 10}}));
        no(json!({"NumericGreaterThan": {"s3:max-keys": "10"}}));
        // Several keys: AND.
        no(json!({"StringEquals": {"sts:ExternalId": "abc", "aws:SourceIp": "1.1.1.1"}}));
    }

    #[test]
    fn absent_keys_and_set_operators() {
        let c = ctx(&[]);
        assert_eq!(
            evaluate(&json!({"StringEquals": {"sts:ExternalId": "a"}}), &c, true),
            Tri::No
        );
        assert_eq!(
            evaluate(
                &json!({"StringNotEquals": {"sts:ExternalId": "a"}}),
                &c,
                true
            ),
            Tri::Yes
        );
        assert_eq!(
            evaluate(
                &json!({"StringEqualsIfExists": {"aws:RequestTag/t": "a"}}),
                &c,
                true
            ),
            Tri::Yes
        );
        assert_eq!(
            evaluate(
                &json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}),
                &c,
                true
            ),
            Tri::Yes,
            "ForAllValues on an empty set is true"
        );
        assert_eq!(
            evaluate(
                &json!({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}),
                &c,
                true
            ),
            Tri::No
        );
        assert_eq!(
            evaluate(&json!({"Null": {"aws:RequestTag/t": "true"}}), &c, true),
            Tri::Yes
        );
        // A key the caller does not decide and the context does not give: undecided.
        assert!(matches!(
            evaluate(
                &json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                &c,
                true
            ),
            Tri::Unknown(_)
        ));
        assert_eq!(
            evaluate(
                &json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}),
                &c.clone().complete(),
                true
            ),
            Tri::No
        );
        let tags = ctx(&[("aws:TagKeys", "a"), ("aws:TagKeys", "b")]);
        assert_eq!(
            evaluate(
                &json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b", "c"]}}),
                &tags,
                true
            ),
            Tri::Yes
        );
        assert_eq!(
            evaluate(
                &json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}),
                &tags,
                true
            ),
            Tri::No
        );
        assert_eq!(
            evaluate(
                &json!({"ForAnyValue:StringLike": {"aws:TagKeys": ["b*"]}}),
                &tags,
                true
            ),
            Tri::Yes
        );
        assert!(matches!(
            evaluate(&json!({"StringEquals": {"aws:TagKeys": "a"}}), &tags, true),
            Tri::Unknown(_)
        ));
    }

    #[test]
    fn unknown_operators_are_unknown() {
        let c = ctx(&[("aws:SourceIp", "1.2.3.4")]);
        let r = evaluate(&json!({"BinaryEquals": {"aws:SourceIp": "AAAA"}}), &c, true);
        assert!(
            matches!(&r, Tri::Unknown(w) if w[0].contains("BinaryEquals")),
            "{r:?}"
        );
        let r = evaluate(
            &json!({"StringFrobnicates": {"aws:SourceIp": "x"}}),
            &c,
            true,
        );
        assert!(matches!(r, Tri::Unknown(_)));
    }

    #[test]
    fn variables() {
        let c = ctx(&[("aws:username", "alice"), ("aws:PrincipalTag/team", "red")]);
        let sub = |s: &str, vars| match substitute(s, &c, vars) {
            Subst::Tokens(t) => plain(&t),
            Subst::Absent(k) => format!("absent {k}"),
            Subst::Unknown(w) => format!("unknown {w}"),
        };
        assert_eq!(sub("home/${aws:username}/*", true), "home/alice/*");
        assert_eq!(
            sub("home/${aws:username}/*", false),
            "home/${aws:username}/*"
        );
        assert_eq!(sub("${aws:principaltag/TEAM}", true), "red");
        assert_eq!(sub("${aws:PrincipalTag/dept, 'none'}", true), "none");
        assert_eq!(
            sub("${aws:PrincipalTag/dept}", true),
            "absent aws:PrincipalTag/dept"
        );
        assert!(sub("${aws:SourceIp}", true).starts_with("unknown"));
        // `${*}` is a literal star: it matches only a star.
        let Subst::Tokens(t) = substitute("a${*}", &c, true) else {
            panic!()
        };
        assert!(glob_tokens(&t, "a*", false));
        assert!(!glob_tokens(&t, "ab", false));
        assert_eq!(
            evaluate(
                &json!({"StringLike": {"s3:prefix": "home/${aws:username}/*"}}),
                &ctx(&[("aws:username", "alice"), ("s3:prefix", "home/alice/x")]),
                true
            ),
            Tri::Yes
        );
    }
}
