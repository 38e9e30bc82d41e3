//! What roles, users and groups share: inline policies and managed-policy attachments
//! (all three), tags and permissions boundaries (roles and users). IAM offers the same
//! concepts under different operations; each kind says which in its `Principal` impl.

use crate::diff::DiffCx;
use crate::ops::Op;
use crate::ownership::OWNER_TAG;
use crate::plan::{AttrChange, Change, DocChange};
use crate::policy::PolicyDocument;
use std::collections::{BTreeMap, BTreeSet};

pub trait Principal {
    fn put_policy(&self, name: &str, document: serde_json::Value) -> Op;
    fn delete_policy(&self, name: &str) -> Op;
    fn attach(&self, arn: &str) -> Op;
    fn detach(&self, arn: &str) -> Op;
}

/// Principals that take tags and a permissions boundary (groups take neither).
pub trait Tagged: Principal {
    fn tag(&self, tags: BTreeMap<String, String>) -> Op;
    fn untag(&self, keys: Vec<String>) -> Op;
    fn put_boundary(&self, arn: String) -> Op;
    fn delete_boundary(&self) -> Op;
}

/// Implements `Principal` for a kind from its four IAM operations, whose principal field
/// is named `$field` (`role`, `user`, `group`).
macro_rules! principal_ops {
    ($t:ty, $field:ident, $put:ident, $delete:ident, $attach:ident, $detach:ident) => {
        impl crate::iam::principal::Principal for $t {
            fn put_policy(&self, name: &str, document: serde_json::Value) -> Op {
                Op::$put {
                    $field: self.name.clone(),
                    name: name.into(),
                    document,
                }
            }
            fn delete_policy(&self, name: &str) -> Op {
                Op::$delete {
                    $field: self.name.clone(),
                    name: name.into(),
                }
            }
            fn attach(&self, arn: &str) -> Op {
                Op::$attach {
                    $field: self.name.clone(),
                    arn: arn.into(),
                }
            }
            fn detach(&self, arn: &str) -> Op {
                Op::$detach {
                    $field: self.name.clone(),
                    arn: arn.into(),
                }
            }
        }
    };
}
pub(crate) use principal_ops;

/// Implements `Tagged` likewise.
macro_rules! tagged_ops {
    ($t:ty, $field:ident, $tag:ident, $untag:ident, $put:ident, $delete:ident) => {
        impl crate::iam::principal::Tagged for $t {
            fn tag(&self, tags: std::collections::BTreeMap<String, String>) -> Op {
                Op::$tag {
                    $field: self.name.clone(),
                    tags,
                }
            }
            fn untag(&self, keys: Vec<String>) -> Op {
                Op::$untag {
                    $field: self.name.clone(),
                    keys,
                }
            }
            fn put_boundary(&self, arn: String) -> Op {
                Op::$put {
                    $field: self.name.clone(),
                    arn,
                }
            }
            fn delete_boundary(&self) -> Op {
                Op::$delete {
                    $field: self.name.clone(),
                }
            }
        }
    };
}
pub(crate) use tagged_ops;

/// A principal's policies: inline documents by name, attached managed policies by ARN.
#[derive(Clone, Copy)]
pub struct Policies<'a> {
    pub inline: &'a BTreeMap<String, PolicyDocument>,
    pub managed: &'a BTreeSet<String>,
}

impl Policies<'_> {
    pub const NONE: Policies<'static> = Policies {
        inline: &BTreeMap::new(),
        managed: &BTreeSet::new(),
    };
}

pub fn inline_label(name: &str) -> String {
    format!("inline policy {name}")
}

/// Inline policies and attachments: what to put, attach, delete and detach.
pub fn diff_policies(
    cx: &mut DiffCx,
    p: &impl Principal,
    want: Policies,
    have: Policies,
    change: &mut Change,
) {
    for (n, doc) in want.inline {
        let shown = match have.inline.get(n) {
            None => Some(DocChange::added(inline_label(n), &doc.value)),
            Some(live) => doc_change(cx, inline_label(n), live, doc),
        };
        if let Some(c) = shown {
            change.documents.push(c);
            cx.step(p.put_policy(n, doc.value.clone()));
        }
    }
    for (n, live) in have.inline {
        if !want.inline.contains_key(n) {
            change
                .documents
                .push(DocChange::removed(inline_label(n), &live.value));
            cx.step(p.delete_policy(n));
        }
    }
    for arn in want.managed.difference(have.managed) {
        change.attr(AttrChange::added("managed_policy", arn.as_str()));
        cx.step(p.attach(arn));
    }
    for arn in have.managed.difference(want.managed) {
        change.attr(AttrChange::removed("managed_policy", arn.as_str()));
        cx.step(p.detach(arn));
    }
}

/// A document that differs semantically, the live side aligned to the desired one so that
/// the diff shows only real differences.
pub fn doc_change(
    cx: &DiffCx,
    label: String,
    live: &PolicyDocument,
    want: &PolicyDocument,
) -> Option<DocChange> {
    if live == want {
        return None;
    }
    Some(DocChange {
        label,
        before: Some(live.aligned_to(want, &cx.ctx.partition)),
        after: Some(want.value.clone()),
    })
}

pub fn diff_boundary(
    cx: &mut DiffCx,
    p: &impl Tagged,
    want: &Option<String>,
    have: &Option<String>,
    change: &mut Change,
) {
    if want == have {
        return;
    }
    change.attr(AttrChange::new(
        "permissions_boundary",
        have.as_deref().map(Into::into),
        want.as_deref().map(Into::into),
    ));
    cx.step(match want {
        Some(arn) => p.put_boundary(arn.clone()),
        None => p.delete_boundary(),
    });
}

/// Tags, the ownership marker included in both maps (adopting adds it; the plan shows the
/// adoption rather than the tag).
pub fn diff_tags(
    cx: &mut DiffCx,
    p: &impl Tagged,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
    change: &mut Change,
) {
    let mut set = BTreeMap::new();
    for (k, v) in want {
        if have.get(k) != Some(v) {
            if k != OWNER_TAG {
                change.attr(AttrChange::new(
                    &format!("tags.{k}"),
                    have.get(k).map(|s| s.as_str().into()),
                    Some(v.as_str().into()),
                ));
            }
            set.insert(k.clone(), v.clone());
        }
    }
    let unset: Vec<String> = have
        .keys()
        .filter(|k| !want.contains_key(*k))
        .cloned()
        .collect();
    for k in &unset {
        change.attr(AttrChange::removed(&format!("tags.{k}"), have[k].as_str()));
    }
    if !set.is_empty() {
        cx.step(p.tag(set));
    }
    if !unset.is_empty() {
        cx.step(p.untag(unset));
    }
}

/// The attributes shown for tags on creation.
pub fn tag_attrs(tags: &BTreeMap<String, String>, change: &mut Change) {
    for (k, v) in tags {
        change.attr(AttrChange::added(&format!("tags.{k}"), v.as_str()));
    }
}

/// Documents of inline policies shown as removed (deletion).
pub fn removed_inline(inline: &BTreeMap<String, PolicyDocument>, change: &mut Change) {
    for (n, doc) in inline {
        change
            .documents
            .push(DocChange::removed(inline_label(n), &doc.value));
    }
}
