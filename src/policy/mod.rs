//! Policy documents: decode what IAM returns, normalise to a canonical form so that
//! equivalent documents compare equal, and pretty-print for display.
//!
//! The rules follow `shared/iam-facts.md`, "When two policy documents are the same".

mod grammar;
pub mod wildcard;

pub use grammar::{Problem, STATEMENT_KEYS, Severity, check, size_without_whitespace};

use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

/// The policy language version IAM assumes when `Version` is omitted.
pub const DEFAULT_VERSION: &str = "2008-10-17";

/// A policy document as the user wrote it (or as IAM returned it), plus its canonical form.
#[derive(Clone)]
pub struct PolicyDocument {
    /// The document as written, as compact JSON text.
    text: Box<str>,
    /// The document parsed, for display and checks: parsed on first use. A plan holds
    /// thousands of documents and, when nothing changed, shows none of them: as text they
    /// take a fraction of the memory (lint and the quota checks look through `inspect`).
    tree: OnceLock<Value>,
    /// Canonical form, as compact JSON text: equal for equivalent documents.
    pub canonical: String,
}

/// The canonical form only: a document's identity. The parse cache is filled on first
/// use, so showing it would make two reads of one account look different (saved plans
/// fingerprint the live state through this form).
impl std::fmt::Debug for PolicyDocument {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PolicyDocument")
            .field(&self.canonical)
            .finish()
    }
}

/// A document is shown (JSON plan) as the document itself.
impl serde::Serialize for PolicyDocument {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

impl PartialEq for PolicyDocument {
    fn eq(&self, other: &Self) -> bool {
        self.canonical == other.canonical
    }
}

impl PolicyDocument {
    /// Parses a document the user wrote. `partition` resolves bare account principals.
    pub fn parse(text: &str, partition: &str) -> Result<Self, serde_json::Error> {
        let value: Value = serde_json::from_str(text)?;
        Ok(Self::from_value(value, partition))
    }

    /// A document that is only read, never compared (the offline check): no canonical form.
    pub fn uncompared(value: Value) -> Self {
        PolicyDocument {
            text: value.to_string().into(),
            tree: OnceLock::from(value),
            canonical: String::new(),
        }
    }

    /// A document of the plan files. Like live ones it is kept as text: thousands are
    /// held at once, and only changed ones are shown.
    pub fn from_value(value: Value, partition: &str) -> Self {
        PolicyDocument {
            text: value.to_string().into(),
            tree: OnceLock::new(),
            canonical: canonicalize(&value, partition).to_string(),
        }
    }

    /// Decodes a document as IAM (or an emulator) returns it: URL-encoded or plain JSON.
    /// Only its text and canonical form are kept; the tree is parsed again if needed.
    pub fn from_live(raw: &str, partition: &str) -> Result<Self, LiveDocumentError> {
        let text = decode_live(raw)?;
        let value: Value = serde_json::from_str(&text).map_err(LiveDocumentError::Json)?;
        Ok(PolicyDocument {
            text: value.to_string().into(),
            tree: OnceLock::new(),
            canonical: canonicalize(&value, partition).to_string(),
        })
    }

    /// `f` of the document parsed, without keeping the parse (for a look at a live
    /// document while it is read).
    pub fn inspect<R>(&self, f: impl FnOnce(&Value) -> R) -> R {
        match self.tree.get() {
            Some(v) => f(v),
            None => f(&serde_json::from_str(&self.text).unwrap_or(Value::Null)),
        }
    }

    /// The document parsed.
    pub fn value(&self) -> &Value {
        // The text was written from a parsed value, so it parses.
        self.tree
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }

    /// The document as the plan holds it: JSON, compact.
    pub fn json(&self) -> Json {
        Json::from(self.value())
    }

    /// Compact JSON to send to IAM.
    pub fn to_wire(&self) -> String {
        self.text.to_string()
    }

    pub fn pretty(&self) -> String {
        pretty(self.value())
    }

    /// The live document re-arranged for display next to `desired`: a live statement that is
    /// equivalent to a desired one is shown in the desired statement's words and position,
    /// so that a diff shows only real differences.
    pub fn aligned_to(&self, desired: &PolicyDocument, partition: &str) -> Value {
        let (Some(live_stmts), Some(want_stmts)) = (
            statements(self.value()).map(|s| s.into_owned()),
            statements(desired.value()).map(|s| s.into_owned()),
        ) else {
            return self.value().clone();
        };
        let mut remaining: Vec<(Value, Value)> = live_stmts
            .into_iter()
            .map(|s| (canonical_statement(&s, partition), s))
            .collect();
        let mut out = Vec::new();
        for want in &want_stmts {
            let canon = canonical_statement(want, partition);
            if let Some(i) = remaining.iter().position(|(c, _)| *c == canon) {
                remaining.remove(i);
                out.push(want.clone());
            }
        }
        out.extend(remaining.into_iter().map(|(_, s)| s));
        let mut doc = match self.value() {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        doc.insert("Statement".into(), Value::Array(out));
        let mut ordered = Map::new();
        // Display keys in the desired document's order where possible.
        if let Value::Object(want) = desired.value() {
            for k in want.keys() {
                if let Some(v) = doc.remove(k) {
                    ordered.insert(k.clone(), v);
                }
            }
        }
        ordered.extend(doc);
        Value::Object(ordered)
    }
}

/// Decodes an RFC 3986 URL-encoded document; plain JSON passes through unchanged.
/// `+` is not a space here: IAM encodes a space as `%20`.
pub fn decode_live(raw: &str) -> Result<String, LiveDocumentError> {
    let trimmed = raw.trim_start();
    if trimmed.starts_with('{') {
        return Ok(raw.to_string());
    }
    percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(LiveDocumentError::Utf8)
}

/// A document IAM returned that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum LiveDocumentError {
    #[error("not valid UTF-8 after URL-decoding: {0}")]
    Utf8(std::str::Utf8Error),
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
}

pub fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).expect("a JSON value always serialises")
}

pub(crate) fn statements(doc: &Value) -> Option<std::borrow::Cow<'_, [Value]>> {
    match doc.get("Statement")? {
        Value::Array(a) => Some(std::borrow::Cow::Borrowed(a.as_slice())),
        v @ Value::Object(_) => Some(std::borrow::Cow::Owned(vec![v.clone()])),
        _ => None,
    }
}

/// The canonical form of a whole document.
pub fn canonicalize(doc: &Value, partition: &str) -> Value {
    let Value::Object(map) = doc else {
        return doc.clone();
    };
    // Keys are collected sorted, so that the canonical text is stable.
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let canon = match k.as_str() {
            "Statement" => {
                let mut stmts: Vec<Value> = statements(doc)
                    .map(|s| {
                        s.iter()
                            .map(|s| canonical_statement(s, partition))
                            .collect()
                    })
                    .unwrap_or_else(|| vec![sort_keys(v.clone())]);
                // Statement order carries no meaning: sort by canonical text.
                stmts.sort_by_cached_key(|s| s.to_string());
                Value::Array(stmts)
            }
            _ => sort_keys(v.clone()),
        };
        out.insert(k.clone(), canon);
    }
    out.entry("Version".to_string())
        .or_insert_with(|| Value::String(DEFAULT_VERSION.into()));
    Value::Object(out.into_iter().collect())
}

/// Object keys in sorted order at every level, so that the canonical text is stable.
fn sort_keys(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let sorted: std::collections::BTreeMap<String, Value> =
                m.into_iter().map(|(k, v)| (k, sort_keys(v))).collect();
            Value::Object(sorted.into_iter().collect())
        }
        Value::Array(a) => Value::Array(a.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn canonical_statement(stmt: &Value, partition: &str) -> Value {
    let Value::Object(map) = stmt else {
        return stmt.clone();
    };
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let canon = match k.as_str() {
            "Sid" if v.as_str() == Some("") => continue,
            // An empty condition block sets no requirement: the same as none.
            "Condition" if v.as_object().is_some_and(Map::is_empty) => continue,
            "Action" | "NotAction" => string_set(v, |s| s.to_ascii_lowercase()),
            "Resource" | "NotResource" => string_set(v, str::to_string),
            "Principal" | "NotPrincipal" => canonical_principal(v, partition),
            "Condition" => canonical_condition(v),
            _ => sort_keys(v.clone()),
        };
        out.insert(k.clone(), canon);
    }
    Value::Object(out.into_iter().collect())
}

/// A string or array of scalars as a sorted, de-duplicated array.
fn string_set(v: &Value, f: impl Fn(&str) -> String) -> Value {
    let set: BTreeSet<String> = match v {
        Value::Array(items) => items.iter().map(|i| f(&scalar_text(i))).collect(),
        other => std::iter::once(f(&scalar_text(other))).collect(),
    };
    Value::Array(set.into_iter().map(Value::String).collect())
}

/// `true` equals `"true"` and numbers equal their string form.
fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn canonical_principal(v: &Value, partition: &str) -> Value {
    match v {
        // "*" equals {"AWS": "*"} for comparison (never rewritten when sent).
        Value::String(s) if s == "*" => {
            let mut m = Map::new();
            m.insert("AWS".into(), Value::Array(vec![Value::String("*".into())]));
            Value::Object(m)
        }
        Value::Object(map) => {
            let mut out = BTreeMap::new();
            for (kind, ids) in map {
                let canon = if kind == "AWS" {
                    string_set(ids, |s| account_principal(s, partition))
                } else {
                    string_set(ids, str::to_string)
                };
                out.insert(kind.clone(), canon);
            }
            Value::Object(out.into_iter().collect())
        }
        other => other.clone(),
    }
}

/// A bare 12-digit account ID equals `arn:<partition>:iam::<id>:root`.
pub fn account_principal(s: &str, partition: &str) -> String {
    if is_account_id(s) {
        format!("arn:{partition}:iam::{s}:root")
    } else {
        s.to_string()
    }
}

pub fn is_account_id(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

fn canonical_condition(v: &Value) -> Value {
    let Value::Object(ops) = v else {
        return v.clone();
    };
    let mut out = BTreeMap::new();
    for (op, keys) in ops {
        let Value::Object(keys) = keys else {
            out.insert(op.clone(), sort_keys(keys.clone()));
            continue;
        };
        let ignore_case = op.to_ascii_lowercase().contains("ignorecase");
        // Condition-key names compare without case, but two names in one block that differ
        // only in case are still two requirements that must both hold: keep every value
        // set under the shared name rather than letting one replace the other.
        // Per lower-cased key, its value sets by canonical text (equal sets count once).
        let mut canon_keys: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
        for (key, values) in keys {
            // Values compare with or without case as the operator does.
            let values = if ignore_case {
                string_set(values, |s| s.to_lowercase())
            } else {
                string_set(values, str::to_string)
            };
            canon_keys
                .entry(key.to_ascii_lowercase())
                .or_default()
                .insert(values.to_string(), values);
        }
        let canon_keys = canon_keys.into_iter().map(|(key, sets)| {
            let mut sets: Vec<Value> = sets.into_values().collect();
            let value = if sets.len() == 1 {
                sets.remove(0)
            } else {
                serde_json::json!({ "all of": sets })
            };
            (key, value)
        });
        out.insert(op.clone(), Value::Object(canon_keys.collect()));
    }
    Value::Object(out.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(a: Value, b: Value) -> bool {
        PolicyDocument::from_value(a, "aws") == PolicyDocument::from_value(b, "aws")
    }

    #[test]
    fn json_documents_round_trip_inside_tagged_and_flattened_data() {
        use crate::ops::{Op, Step};
        let doc = serde_json::json!({"Version": "2012-10-17", "Statement": []});
        let step = Step::new(
            "default",
            "role.r",
            Op::PutRolePolicy {
                role: "r".into(),
                name: "p".into(),
                document: Json::from(&doc),
            },
        );
        let text = serde_json::to_string(&step).unwrap();
        assert!(
            text.contains(r#""document":{"Version":"2012-10-17","Statement":[]}"#),
            "{text}"
        );
        let back: Step = serde_json::from_str(&text).unwrap();
        assert_eq!(back, step);
        let via_value: Step = serde_json::from_value(serde_json::to_value(&step).unwrap()).unwrap();
        assert_eq!(via_value, step);
    }

    #[test]
    fn statement_and_value_order_do_not_matter() {
        let a = json!({"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"*"},
            {"Effect":"Deny","Action":"iam:*","Resource":["b","a"]}]});
        let b = json!({"Version":"2012-10-17","Statement":[
            {"Effect":"Deny","Action":["iam:*"],"Resource":["a","b"]},
            {"Resource":["*"],"Action":["s3:PutObject","s3:GetObject"],"Effect":"Allow"}]});
        assert!(same(a, b));
    }

    #[test]
    fn single_statement_object_equals_array() {
        let a = json!({"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["a:b"],"Resource":["*"]}]});
        assert!(same(a, b));
    }

    #[test]
    fn account_id_equals_root_arn_but_not_other_account() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"203461409171"},"Action":"sts:AssumeRole"}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::203461409171:root"]},"Action":"sts:AssumeRole"}]});
        let c = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::203461409172:root"},"Action":"sts:AssumeRole"}]});
        assert!(same(a.clone(), b));
        assert!(!same(a, c));
    }

    #[test]
    fn unique_id_principal_is_not_the_role_arn() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/x"},"Action":"sts:AssumeRole"}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"AROAEXAMPLEID"},"Action":"sts:AssumeRole"}]});
        assert!(!same(a, b));
    }

    #[test]
    fn version_omitted_is_2008() {
        let a = json!({"Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]});
        let b = json!({"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]});
        let c = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]});
        assert!(same(a.clone(), b));
        assert!(!same(a, c));
    }

    #[test]
    fn action_and_condition_key_case_do_not_matter_but_values_do() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"STS:AssumeRole","Principal":{"AWS":"*"},
            "Condition":{"StringEquals":{"sts:ExternalId":"Abc"}}}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:assumerole","Principal":"*",
            "Condition":{"StringEquals":{"STS:externalid":["Abc"]}}}]});
        let c = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:assumerole","Principal":"*",
            "Condition":{"StringEquals":{"sts:ExternalId":"abc"}}}]});
        assert!(same(a.clone(), b));
        assert!(!same(a, c));
    }

    #[test]
    fn condition_keys_differing_only_in_case_are_two_requirements() {
        let cond = |c: Value| json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":c}]});
        let both = cond(
            json!({"StringEquals": {"aws:PrincipalTag/team": "data", "aws:principaltag/TEAM": "ops"}}),
        );
        let one = cond(json!({"StringEquals": {"aws:PrincipalTag/team": "data"}}));
        let other = cond(json!({"StringEquals": {"aws:PrincipalTag/team": "ops"}}));
        assert!(!same(both.clone(), one.clone()));
        assert!(!same(both.clone(), other));
        // The same pair in another order and case is the same requirement.
        let swapped = cond(
            json!({"StringEquals": {"AWS:PrincipalTag/Team": "ops", "aws:PrincipalTag/team": ["data"]}}),
        );
        assert!(same(both, swapped));
        // The same requirement twice is one requirement.
        let twice = cond(
            json!({"StringEquals": {"aws:PrincipalTag/team": "data", "AWS:PRINCIPALTAG/TEAM": "data"}}),
        );
        assert!(same(twice, one));
    }

    /// A corpus of statement pairs: (a, b, equivalent). Each pair is wrapped in a 2012-10-17
    /// identity document (or a trust document when it has a Principal).
    #[test]
    fn equivalence_corpus() {
        let pairs: Vec<(Value, Value, bool)> = vec![
            // Same meaning, other words.
            (
                json!({"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}),
                json!({"Effect":"Allow","Action":["S3:getobject"],"Resource":["*"]}),
                true,
            ),
            (
                json!({"Effect":"Allow","Action":["a:b","a:b"],"Resource":"*"}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*"}),
                true,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*"}),
                true,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"AWS:UserName":"x"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"aws:username":["x"]}}}),
                true,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":10}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericLessThan":{"s3:max-keys":"10"}}}),
                true,
            ),
            (
                json!({"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}),
                json!({"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::111122223333:root"]},"Action":"sts:AssumeRole"}),
                true,
            ),
            (
                json!({"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}),
                json!({"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}),
                true,
            ),
            (
                json!({"Sid":"","Effect":"Allow","Action":"a:b","Resource":"*"}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*"}),
                true,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"aws:username":"Bob"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEqualsIgnoreCase":{"aws:username":"BOB"}}}),
                true,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v","K":"v"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v"}}}),
                true,
            ),
            // Different meaning.
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v","K":"w"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v"}}}),
                false,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v","K":"w"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":["v","w"]}}}),
                false,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"V"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v"}}}),
                false,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringEquals":{"k":"v"}}}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"StringLike":{"k":"v"}}}),
                false,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"arn:aws:s3:::B"}),
                json!({"Effect":"Allow","Action":"a:b","Resource":"arn:aws:s3:::b"}),
                false,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*"}),
                json!({"Effect":"Deny","Action":"a:b","Resource":"*"}),
                false,
            ),
            (
                json!({"Effect":"Allow","Action":"a:b","Resource":"*"}),
                json!({"Effect":"Allow","NotAction":"a:b","Resource":"*"}),
                false,
            ),
            (
                json!({"Effect":"Allow","Principal":{"AWS":"111122223333"},"Action":"sts:AssumeRole"}),
                json!({"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/x"},"Action":"sts:AssumeRole"}),
                false,
            ),
            (
                json!({"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}),
                json!({"Effect":"Allow","Principal":{"AWS":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}),
                false,
            ),
            (
                json!({"Sid":"A","Effect":"Allow","Action":"a:b","Resource":"*"}),
                json!({"Sid":"B","Effect":"Allow","Action":"a:b","Resource":"*"}),
                false,
            ),
        ];
        for (i, (a, b, equal)) in pairs.into_iter().enumerate() {
            let doc = |s: Value| json!({"Version": "2012-10-17", "Statement": [s]});
            assert_eq!(
                same(doc(a.clone()), doc(b.clone())),
                equal,
                "pair {i}: {a} / {b}"
            );
        }
    }

    #[test]
    fn an_empty_condition_is_no_condition() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{}}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]});
        let c = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]});
        assert!(same(a.clone(), b));
        assert!(!same(a, c));
    }

    #[test]
    fn ignore_case_operator_values_compare_without_case() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*",
            "Condition":{"StringEqualsIgnoreCase":{"aws:username":"Bob"}}}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*",
            "Condition":{"StringEqualsIgnoreCase":{"aws:username":"bob"}}}]});
        assert!(same(a, b));
    }

    #[test]
    fn booleans_and_numbers_equal_their_strings() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":true},"NumericLessThan":{"s3:max-keys":10}}}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*",
            "Condition":{"Bool":{"aws:SecureTransport":"true"},"NumericLessThan":{"s3:max-keys":"10"}}}]});
        assert!(same(a, b));
    }

    #[test]
    fn empty_sid_equals_no_sid_but_sids_differ() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Sid":"","Effect":"Allow","Action":"a:b","Resource":"*"}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"*"}]});
        let c = json!({"Version":"2012-10-17","Statement":[{"Sid":"X","Effect":"Allow","Action":"a:b","Resource":"*"}]});
        assert!(same(a.clone(), b));
        assert!(!same(a, c));
    }

    #[test]
    fn resource_case_matters() {
        let a = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"arn:aws:s3:::Bucket"}]});
        let b = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"arn:aws:s3:::bucket"}]});
        assert!(!same(a, b));
    }

    #[test]
    fn url_encoded_documents_decode_strictly() {
        let raw = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22a%3Ab%22%2C%22Resource%22%3A%22arn%3Aaws%3As3%3A%3A%3Ab%2Fa+b%20c%22%7D%5D%7D";
        let live = PolicyDocument::from_live(raw, "aws").unwrap();
        assert_eq!(
            live.value()["Statement"][0]["Resource"],
            json!("arn:aws:s3:::b/a+b c")
        );
        // Plain JSON containing a percent sign is left alone.
        let plain = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"a:b","Resource":"x%41"}]}"#;
        let live = PolicyDocument::from_live(plain, "aws").unwrap();
        assert_eq!(live.value()["Statement"][0]["Resource"], json!("x%41"));
    }

    #[test]
    fn principal_star_is_not_rewritten_for_the_wire() {
        let doc = PolicyDocument::parse(
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"sts:AssumeRole"}]}"#,
            "aws",
        )
        .unwrap();
        assert!(doc.to_wire().contains(r#""Principal":"*""#));
    }

    #[test]
    fn aligned_display_uses_the_desired_words() {
        let want = PolicyDocument::from_value(
            json!({"Version":"2012-10-17","Statement":[{"Sid":"A","Effect":"Allow","Action":"a:b","Resource":"*"},
                                                        {"Sid":"B","Effect":"Allow","Action":"c:d","Resource":"*"}]}),
            "aws",
        );
        let live = PolicyDocument::from_value(
            json!({"Version":"2012-10-17","Statement":[{"Sid":"B","Effect":"Allow","Action":["c:d"],"Resource":["*"]},
                                                        {"Sid":"A","Effect":"Allow","Action":["a:b"],"Resource":["x"]}]}),
            "aws",
        );
        let shown = live.aligned_to(&want, "aws");
        assert_eq!(shown["Statement"][0], want.value()["Statement"][1]);
        assert_eq!(shown["Statement"][1]["Resource"], json!(["x"]));
    }
}

/// A JSON document held as its compact text: the plan's changes and operations carry
/// thousands of documents, and text takes a fraction of a parsed tree's memory (a tree is
/// built again only to display one). Serialised as JSON itself, never as a string.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(transparent)]
pub struct Json(Box<serde_json::value::RawValue>);

/// Read through a value: inside tagged or flattened data (a saved plan's operations) serde
/// buffers what it reads, and a raw value cannot be read from a buffer.
impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Json::from(&Value::deserialize(d)?))
    }
}

impl Json {
    /// The compact JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }

    pub fn to_value(&self) -> Value {
        serde_json::from_str(self.0.get()).expect("a Json holds valid JSON")
    }
}

impl From<&Value> for Json {
    fn from(v: &Value) -> Self {
        Json(serde_json::value::to_raw_value(v).expect("a JSON value always serialises"))
    }
}

impl PartialEq for Json {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for Json {}
