//! What roles, users and groups share: inline policies and managed-policy attachments
//! (all three), tags and permissions boundaries (roles and users). IAM offers the same
//! concepts under different operations; each kind says which in its `Principal` impl.

use crate::diff::DiffCx;
use crate::ops::Op;
use crate::ownership::{OWNER_TAG, with_owner_tag};
use crate::plan::{AttrChange, Change, DocChange};
use crate::policy::PolicyDocument;
use std::collections::{BTreeMap, BTreeSet};

pub trait Principal {
    /// The principal's inline and attached policies.
    fn policies(&self) -> Policies<'_>;
    fn put_policy(&self, name: &str, document: crate::policy::Json) -> Op;
    fn delete_policy(&self, name: &str) -> Op;
    fn attach(&self, arn: &str) -> Op;
    fn detach(&self, arn: &str) -> Op;
}

/// Principals that take tags and a permissions boundary (groups take neither).
pub trait Tagged: Principal {
    fn tags(&self) -> &BTreeMap<String, String>;
    fn boundary(&self) -> &Option<String>;
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
            fn policies(&self) -> crate::iam::principal::Policies<'_> {
                crate::iam::principal::Policies {
                    inline: &self.inline,
                    managed: &self.managed,
                }
            }
            fn put_policy(&self, name: &str, document: crate::policy::Json) -> Op {
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
            fn tags(&self) -> &std::collections::BTreeMap<String, String> {
                &self.tags
            }
            fn boundary(&self) -> &Option<String> {
                &self.permissions_boundary
            }
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

/// A new path, for the principals IAM can move (users and groups; a role is replaced).
pub fn diff_path(
    cx: &mut DiffCx,
    want: &str,
    have: &str,
    change: &mut Change,
    move_to: impl FnOnce(String) -> Op,
) {
    if want != have {
        change.attr(AttrChange::changed("path", have, want));
        cx.step(move_to(want.to_string()));
    }
}

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
            None => Some(DocChange::added(inline_label(n), doc.value())),
            Some(live) => doc_change(cx, inline_label(n), live, doc),
        };
        if let Some(c) = shown {
            change.documents.push(c);
            cx.step(p.put_policy(n, doc.json()));
        }
    }
    for (n, live) in have.inline {
        if !want.inline.contains_key(n) {
            change
                .documents
                .push(DocChange::removed(inline_label(n), live.value()));
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
        before: Some((&live.aligned_to(want, &cx.ctx.partition)).into()),
        after: Some(want.json()),
        access: None,
    })
}

/// Tags and permissions boundary. `owner`: the stack the live principal's marker names
/// (the read takes the marker out of the tags; adoption puts it in).
pub fn diff_tagged<T: Tagged>(
    cx: &mut DiffCx,
    want: &T,
    have: &T,
    owner: Option<&str>,
    change: &mut Change,
) {
    diff_boundary(cx, want, want.boundary(), have.boundary(), change);
    let have_tags = match owner {
        Some(owner) => with_owner_tag(have.tags(), owner),
        None => have.tags().clone(),
    };
    let want_tags = with_owner_tag(want.tags(), cx.stack);
    diff_tags(cx, want, &want_tags, &have_tags, change);
}

fn diff_boundary(
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
fn diff_tags(
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

/// A deleted principal's policies, shown as removed.
pub fn show_removed(p: Policies, change: &mut Change) {
    for arn in p.managed {
        change.attr(AttrChange::removed("managed_policy", arn.as_str()));
    }
    for (n, doc) in p.inline {
        change
            .documents
            .push(DocChange::removed(inline_label(n), doc.value()));
    }
}

/// The operations that empty a principal of its policies before it is deleted.
pub fn policy_teardown(p: &impl Principal) -> Vec<Op> {
    let pol = p.policies();
    let detach = pol.managed.iter().map(|arn| p.detach(arn));
    let delete = pol.inline.keys().map(|n| p.delete_policy(n));
    detach.chain(delete).collect()
}

/// The parts of a principal that GetAccountAuthorizationDetails returns alike for roles,
/// users and groups.
pub mod live {
    use super::inline_label;
    use crate::iam::UnreadableDocument;
    use crate::model::Kind;
    use crate::policy::PolicyDocument;
    use aws_sdk_iam::types::{AttachedPolicy, PolicyDetail, Tag};
    use std::collections::{BTreeMap, BTreeSet};

    /// Inline policies by name, but for those `skip` names (ownership markers).
    pub fn inline(
        kind: Kind,
        name: &str,
        list: &[PolicyDetail],
        partition: &str,
        skip: impl Fn(&str) -> bool,
    ) -> Result<BTreeMap<String, PolicyDocument>, UnreadableDocument> {
        let mut out = BTreeMap::new();
        for ip in list {
            let pname = ip.policy_name().unwrap_or_default();
            if skip(pname) {
                continue;
            }
            let doc = PolicyDocument::from_live(ip.policy_document().unwrap_or("{}"), partition)
                .map_err(UnreadableDocument::new(kind, name, &inline_label(pname)))?;
            out.insert(pname.to_string(), doc);
        }
        Ok(out)
    }

    pub fn managed(list: &[AttachedPolicy]) -> BTreeSet<String> {
        list.iter()
            .filter_map(|a| a.policy_arn().map(str::to_string))
            .collect()
    }

    pub fn tags(list: &[Tag]) -> BTreeMap<String, String> {
        list.iter()
            .map(|t| (t.key().to_string(), t.value().to_string()))
            .collect()
    }
}
