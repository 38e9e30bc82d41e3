//! Desired x Live -> changes (what a user reads) and steps (what apply runs).

use crate::aws::read::policy_marker;
use crate::keys::{KeyContext, KeyReport};
use crate::model::{
    AccountContext, Address, Desired, Live, LiveResource, ManagedPolicy, OWNER_TAG, Resource, Role,
};
use crate::ops::{Op, Phase, Step};
use crate::policy::{PolicyDocument, pretty};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// IAM keeps at most five versions of a managed policy.
pub const MAX_POLICY_VERSIONS: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
    /// Take ownership of an existing resource (and update it).
    Adopt,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrChange {
    pub name: String,
    pub before: Option<String>,
    pub after: Option<String>,
    /// This attribute forces the resource to be replaced.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forces_replacement: bool,
}

/// A policy document change, as pretty-printed JSON on both sides.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocChange {
    pub label: String,
    pub before: Option<String>,
    pub after: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub name: String,
    pub action: Action,
    pub attributes: Vec<AttrChange>,
    pub documents: Vec<DocChange>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// For users: each access key, its facts and what happens to it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<KeyReport>,
}

/// A declared resource that exists live but is not this stack's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub address: Address,
    pub name: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
    /// Users whose keys need nothing now: their keys and what happens to them next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_status: Vec<KeyStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyStatus {
    pub address: Address,
    pub name: String,
    pub keys: Vec<KeyReport>,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Adopt every unowned same-named resource (the `--adopt` flag).
    pub adopt_all: bool,
    /// When rotation rules are evaluated, and `--force`.
    pub keys: KeyContext,
    /// Users to rotate now (`iamplan rotate`), by lower-cased name.
    pub rotate: BTreeSet<String>,
    /// The key each declared user's file sink holds, by address.
    pub sink_keys: BTreeMap<Address, Option<String>>,
}

pub fn diff(desired: &Desired, live: &Live, opts: &Options) -> Diff {
    let mut d = Diff::default();
    let stack = &desired.stack;
    for (addr, want) in &desired.resources {
        let ctx = &desired.accounts[&addr.account];
        let have = live.resources.get(addr);
        let adopting = match have {
            None => false,
            Some(h) if h.owner.as_deref() == Some(stack) => false,
            Some(h) => {
                if let Some(other) = &h.owner {
                    d.conflicts.push(Conflict {
                        address: addr.clone(),
                        name: want.resource.name().to_string(),
                        message: format!(
                            "{} \"{}\" belongs to stack \"{other}\"; remove it from that stack's plan first, or rename it here",
                            addr.kind.label(),
                            h.resource.name()
                        ),
                    });
                    continue;
                }
                if !(want.adopt || opts.adopt_all) {
                    d.conflicts.push(Conflict {
                        address: addr.clone(),
                        name: want.resource.name().to_string(),
                        message: format!(
                            "{} \"{}\" already exists and is not managed by iamplan; to manage it, set `adopt = true` on it ({}) or pass --adopt",
                            addr.kind.label(),
                            h.resource.name(),
                            want.origin
                        ),
                    });
                    continue;
                }
                true
            }
        };
        match (&want.resource, have.map(|h| (&h.resource, h))) {
            (Resource::Role(w), None) => create_role(&mut d, addr, w, stack),
            (Resource::Role(w), Some((Resource::Role(h), lr))) => {
                update_role(&mut d, addr, w, h, lr, ctx, stack, adopting)
            }
            (Resource::ManagedPolicy(w), None) => create_policy(&mut d, addr, w, stack),
            (Resource::ManagedPolicy(w), Some((Resource::ManagedPolicy(h), lr))) => {
                update_policy(&mut d, addr, w, h, lr, ctx, adopting)
            }
            (Resource::User(w), None) => users::create_user(&mut d, addr, w, stack, opts),
            (Resource::User(w), Some((Resource::User(h), lr))) => {
                users::update_user(&mut d, addr, w, h, lr, ctx, stack, adopting, opts)
            }
            (Resource::Group(w), None) => groups::create_group(&mut d, addr, w, stack),
            (Resource::Group(w), Some((Resource::Group(h), _))) => {
                groups::update_group(&mut d, addr, w, h, ctx, stack, adopting)
            }
            _ => unreachable!("addresses include the kind"),
        }
    }
    for (addr, have) in &live.resources {
        if desired.resources.contains_key(addr) || have.owner.as_deref() != Some(stack) {
            continue;
        }
        // Only accounts the plan still names are read, so `ctx` exists.
        match &have.resource {
            Resource::Role(h) => delete_role(&mut d, addr, h, have),
            Resource::ManagedPolicy(h) => delete_policy(&mut d, addr, h, have),
            Resource::User(h) => users::delete_user(&mut d, addr, h, have),
            Resource::Group(h) => {
                let members: Vec<String> = live
                    .resources
                    .iter()
                    .filter(|(a, _)| a.account == addr.account)
                    .filter_map(|(_, l)| match &l.resource {
                        Resource::User(u)
                            if u.groups.iter().any(|g| g.eq_ignore_ascii_case(&h.name)) =>
                        {
                            Some(u.name.clone())
                        }
                        _ => None,
                    })
                    .collect();
                groups::delete_group(&mut d, addr, h, &members, stack)
            }
        }
    }
    d.steps.sort_by_key(|s| s.phase);
    d
}

fn step(d: &mut Diff, addr: &Address, phase: Phase, op: Op) {
    d.steps.push(Step {
        account: addr.account.clone(),
        phase,
        op,
    });
}

fn attr(name: &str, before: Option<String>, after: Option<String>) -> AttrChange {
    AttrChange {
        name: name.into(),
        before,
        after,
        forces_replacement: false,
    }
}

fn quoted(s: &str) -> String {
    format!("{s:?}")
}

fn owned_tags(tags: &BTreeMap<String, String>, stack: &str) -> BTreeMap<String, String> {
    let mut t = tags.clone();
    t.insert(OWNER_TAG.into(), stack.into());
    t
}

fn role_create_view(w: &Role) -> (Vec<AttrChange>, Vec<DocChange>) {
    let mut attrs = vec![
        attr("path", None, Some(quoted(&w.path))),
        attr("description", None, Some(quoted(&w.description))),
        attr(
            "max_session_duration",
            None,
            Some(w.max_session_duration.to_string()),
        ),
    ];
    if let Some(b) = &w.permissions_boundary {
        attrs.push(attr("permissions_boundary", None, Some(quoted(b))));
    }
    for (k, v) in &w.tags {
        attrs.push(attr(&format!("tags.{k}"), None, Some(quoted(v))));
    }
    for arn in &w.managed {
        attrs.push(attr("managed_policy", None, Some(quoted(arn))));
    }
    if w.instance_profile {
        attrs.push(attr("instance_profile", None, Some("true".into())));
    }
    let mut docs = vec![DocChange {
        label: "trust policy".into(),
        before: None,
        after: Some(w.trust.pretty()),
    }];
    for (n, doc) in &w.inline {
        docs.push(DocChange {
            label: format!("inline policy {n}"),
            before: None,
            after: Some(doc.pretty()),
        });
    }
    (attrs, docs)
}

fn create_role_steps(d: &mut Diff, addr: &Address, w: &Role, stack: &str) {
    step(
        d,
        addr,
        Phase::CreateRoles,
        Op::CreateRole {
            name: w.name.clone(),
            path: w.path.clone(),
            description: w.description.clone(),
            max_session_duration: w.max_session_duration,
            trust: w.trust.to_wire(),
            permissions_boundary: w.permissions_boundary.clone(),
            tags: owned_tags(&w.tags, stack),
        },
    );
    for (n, doc) in &w.inline {
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::PutRolePolicy {
                role: w.name.clone(),
                name: n.clone(),
                document: doc.to_wire(),
            },
        );
    }
    for arn in &w.managed {
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::AttachRolePolicy {
                role: w.name.clone(),
                arn: arn.clone(),
            },
        );
    }
    if w.instance_profile {
        add_instance_profile(d, addr, w, stack);
    }
}

/// An instance profile named after the role, holding it (EC2 instances use the role
/// through it). Creating it again when it exists is not an error.
fn add_instance_profile(d: &mut Diff, addr: &Address, w: &Role, stack: &str) {
    step(
        d,
        addr,
        Phase::CreateRoles,
        Op::CreateInstanceProfile {
            name: w.name.clone(),
            path: w.path.clone(),
            tags: owned_tags(&BTreeMap::new(), stack),
        },
    );
    step(
        d,
        addr,
        Phase::UpdateRoles,
        Op::AddRoleToInstanceProfile {
            role: w.name.clone(),
            instance_profile: w.name.clone(),
        },
    );
}

fn create_role(d: &mut Diff, addr: &Address, w: &Role, stack: &str) {
    let (attributes, documents) = role_create_view(w);
    d.changes.push(Change {
        address: addr.clone(),
        name: w.name.clone(),
        action: Action::Create,
        attributes,
        documents,
        notes: vec![],
        keys: vec![],
    });
    create_role_steps(d, addr, w, stack);
}

fn teardown_role_steps(
    d: &mut Diff,
    addr: &Address,
    h: &Role,
    lr: &LiveResource,
    detach: Phase,
    delete: Phase,
) {
    for arn in &h.managed {
        step(
            d,
            addr,
            detach,
            Op::DetachRolePolicy {
                role: h.name.clone(),
                arn: arn.clone(),
            },
        );
    }
    for n in h.inline.keys() {
        step(
            d,
            addr,
            detach,
            Op::DeleteRolePolicy {
                role: h.name.clone(),
                name: n.clone(),
            },
        );
    }
    for ip in &lr.instance_profiles {
        step(
            d,
            addr,
            detach,
            Op::RemoveRoleFromInstanceProfile {
                role: h.name.clone(),
                instance_profile: ip.clone(),
            },
        );
    }
    step(
        d,
        addr,
        delete,
        Op::DeleteRole {
            name: h.name.clone(),
        },
    );
    if h.instance_profile {
        step(
            d,
            addr,
            delete,
            Op::DeleteInstanceProfile {
                name: h.name.clone(),
            },
        );
    }
}

fn delete_role(d: &mut Diff, addr: &Address, h: &Role, lr: &LiveResource) {
    let mut attributes = vec![attr("path", Some(quoted(&h.path)), None)];
    attributes.extend(
        h.managed
            .iter()
            .map(|a| attr("managed_policy", Some(quoted(a)), None)),
    );
    let trust = DocChange {
        label: "trust policy".into(),
        before: Some(h.trust.pretty()),
        after: None,
    };
    push_delete(d, addr, &h.name, attributes, Some(trust), &h.inline);
    teardown_role_steps(d, addr, h, lr, Phase::Detach, Phase::DeleteRoles);
}

/// Records a deletion: the attributes going, and each document shown as removed.
fn push_delete(
    d: &mut Diff,
    addr: &Address,
    name: &str,
    attributes: Vec<AttrChange>,
    first: Option<DocChange>,
    inline: &BTreeMap<String, PolicyDocument>,
) {
    let documents = first
        .into_iter()
        .chain(inline.iter().map(|(n, doc)| DocChange {
            label: format!("inline policy {n}"),
            before: Some(doc.pretty()),
            after: None,
        }))
        .collect();
    d.changes.push(Change {
        address: addr.clone(),
        name: name.to_string(),
        action: Action::Delete,
        attributes,
        documents,
        notes: vec![],
        keys: vec![],
    });
}

/// Records an in-place update, or an adoption, when anything is to change (an adoption
/// always is: it adds the ownership marker).
fn push_update(d: &mut Diff, adopting: bool, mut change: Change) {
    let changed = !change.attributes.is_empty()
        || !change.documents.is_empty()
        || !change.notes.is_empty()
        || !change.keys.is_empty();
    if adopting || changed {
        change.action = if adopting {
            Action::Adopt
        } else {
            Action::Update
        };
        d.changes.push(change);
    }
}

/// The principal whose attributes change: roles and users share tags, boundaries and
/// policies, under different API operations.
enum Who {
    Role(String),
    User(String),
    Group(String),
}

const GROUPS_HAVE_NO_TAGS: &str = "groups have no tags or permissions boundary";

impl Who {
    fn put_boundary(&self, arn: String) -> Op {
        match self {
            Who::Role(r) => Op::PutRolePermissionsBoundary {
                role: r.clone(),
                arn,
            },
            Who::User(u) => Op::PutUserPermissionsBoundary {
                user: u.clone(),
                arn,
            },
            Who::Group(_) => unreachable!("{GROUPS_HAVE_NO_TAGS}"),
        }
    }
    fn delete_boundary(&self) -> Op {
        match self {
            Who::Role(r) => Op::DeleteRolePermissionsBoundary { role: r.clone() },
            Who::User(u) => Op::DeleteUserPermissionsBoundary { user: u.clone() },
            Who::Group(_) => unreachable!("{GROUPS_HAVE_NO_TAGS}"),
        }
    }
    fn tag(&self, tags: BTreeMap<String, String>) -> Op {
        match self {
            Who::Role(r) => Op::TagRole {
                role: r.clone(),
                tags,
            },
            Who::User(u) => Op::TagUser {
                user: u.clone(),
                tags,
            },
            Who::Group(_) => unreachable!("{GROUPS_HAVE_NO_TAGS}"),
        }
    }
    fn untag(&self, keys: Vec<String>) -> Op {
        match self {
            Who::Role(r) => Op::UntagRole {
                role: r.clone(),
                keys,
            },
            Who::User(u) => Op::UntagUser {
                user: u.clone(),
                keys,
            },
            Who::Group(_) => unreachable!("{GROUPS_HAVE_NO_TAGS}"),
        }
    }
    fn put_policy(&self, name: &str, doc: &PolicyDocument) -> Op {
        let (name, document) = (name.to_string(), doc.to_wire());
        match self {
            Who::Role(r) => Op::PutRolePolicy {
                role: r.clone(),
                name,
                document,
            },
            Who::User(u) => Op::PutUserPolicy {
                user: u.clone(),
                name,
                document,
            },
            Who::Group(g) => Op::PutGroupPolicy {
                group: g.clone(),
                name,
                document,
            },
        }
    }
    fn delete_policy(&self, name: &str) -> Op {
        let name = name.to_string();
        match self {
            Who::Role(r) => Op::DeleteRolePolicy {
                role: r.clone(),
                name,
            },
            Who::User(u) => Op::DeleteUserPolicy {
                user: u.clone(),
                name,
            },
            Who::Group(g) => Op::DeleteGroupPolicy {
                group: g.clone(),
                name,
            },
        }
    }
    fn attach(&self, arn: &str) -> Op {
        let arn = arn.to_string();
        match self {
            Who::Role(r) => Op::AttachRolePolicy {
                role: r.clone(),
                arn,
            },
            Who::User(u) => Op::AttachUserPolicy {
                user: u.clone(),
                arn,
            },
            Who::Group(g) => Op::AttachGroupPolicy {
                group: g.clone(),
                arn,
            },
        }
    }
    fn detach(&self, arn: &str) -> Op {
        let arn = arn.to_string();
        match self {
            Who::Role(r) => Op::DetachRolePolicy {
                role: r.clone(),
                arn,
            },
            Who::User(u) => Op::DetachUserPolicy {
                user: u.clone(),
                arn,
            },
            Who::Group(g) => Op::DetachGroupPolicy {
                group: g.clone(),
                arn,
            },
        }
    }
}

/// Live tags with the ownership marker put back (the read separates it).
fn with_owner(tags: &BTreeMap<String, String>, lr: &LiveResource) -> BTreeMap<String, String> {
    let mut t = tags.clone();
    if let Some(owner) = &lr.owner {
        t.insert(OWNER_TAG.into(), owner.clone());
    }
    t
}

fn diff_boundary(
    d: &mut Diff,
    addr: &Address,
    who: &Who,
    want: &Option<String>,
    have: &Option<String>,
    attributes: &mut Vec<AttrChange>,
) {
    if want == have {
        return;
    }
    attributes.push(attr(
        "permissions_boundary",
        have.as_deref().map(quoted),
        want.as_deref().map(quoted),
    ));
    let op = match want {
        Some(arn) => who.put_boundary(arn.clone()),
        None => who.delete_boundary(),
    };
    step(d, addr, Phase::UpdateRoles, op);
}

/// Tags, including the ownership marker that adoption adds (shown as the adoption itself).
fn diff_tags(
    d: &mut Diff,
    addr: &Address,
    who: &Who,
    want: &BTreeMap<String, String>,
    have: &BTreeMap<String, String>,
    attributes: &mut Vec<AttrChange>,
) {
    let mut set = BTreeMap::new();
    for (k, v) in want {
        if have.get(k) != Some(v) {
            if k != OWNER_TAG {
                attributes.push(attr(
                    &format!("tags.{k}"),
                    have.get(k).map(|s| quoted(s)),
                    Some(quoted(v)),
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
        attributes.push(attr(&format!("tags.{k}"), Some(quoted(&have[k])), None));
    }
    if !set.is_empty() {
        step(d, addr, Phase::UpdateRoles, who.tag(set));
    }
    if !unset.is_empty() {
        step(d, addr, Phase::UpdateRoles, who.untag(unset));
    }
}

type Inline<'a> = (
    &'a BTreeMap<String, PolicyDocument>,
    &'a BTreeMap<String, PolicyDocument>,
);
type Managed<'a> = (&'a BTreeSet<String>, &'a BTreeSet<String>);

/// Inline policies and managed-policy attachments: (wanted, live) pairs.
#[allow(clippy::too_many_arguments)]
fn diff_policies(
    d: &mut Diff,
    addr: &Address,
    who: &Who,
    inline: Inline,
    managed: Managed,
    ctx: &AccountContext,
    attributes: &mut Vec<AttrChange>,
    documents: &mut Vec<DocChange>,
) {
    let (want_inline, have_inline) = inline;
    for (n, doc) in want_inline {
        let change = match have_inline.get(n) {
            None => Some(DocChange {
                label: format!("inline policy {n}"),
                before: None,
                after: Some(doc.pretty()),
            }),
            Some(live) => doc_change(format!("inline policy {n}"), live, doc, ctx),
        };
        if let Some(c) = change {
            documents.push(c);
            step(d, addr, Phase::UpdateRoles, who.put_policy(n, doc));
        }
    }
    for (n, live) in have_inline {
        if !want_inline.contains_key(n) {
            documents.push(DocChange {
                label: format!("inline policy {n}"),
                before: Some(live.pretty()),
                after: None,
            });
            step(d, addr, Phase::Detach, who.delete_policy(n));
        }
    }
    let (want_managed, have_managed) = managed;
    for arn in want_managed.difference(have_managed) {
        attributes.push(attr("managed_policy", None, Some(quoted(arn))));
        step(d, addr, Phase::UpdateRoles, who.attach(arn));
    }
    for arn in have_managed.difference(want_managed) {
        attributes.push(attr("managed_policy", Some(quoted(arn)), None));
        step(d, addr, Phase::Detach, who.detach(arn));
    }
}

fn doc_change(
    label: String,
    live: &PolicyDocument,
    want: &PolicyDocument,
    ctx: &AccountContext,
) -> Option<DocChange> {
    if live == want {
        return None;
    }
    Some(DocChange {
        label,
        before: Some(pretty(&live.aligned_to(want, &ctx.partition))),
        after: Some(want.pretty()),
    })
}

#[allow(clippy::too_many_arguments)]
fn update_role(
    d: &mut Diff,
    addr: &Address,
    w: &Role,
    h: &Role,
    lr: &LiveResource,
    ctx: &AccountContext,
    stack: &str,
    adopting: bool,
) {
    let mut notes = Vec::new();
    for id in &lr.broken_principals {
        notes.push(format!(
            "the live trust policy names {id}: a unique ID that IAM shows when the role or user it named was deleted; recreating that name does not restore the trust, so apply writes the trust policy again"
        ));
    }
    if w.path != h.path {
        // A role's path cannot change: replace it.
        let (mut attributes, documents) = role_create_view(w);
        attributes[0] = AttrChange {
            name: "path".into(),
            before: Some(quoted(&h.path)),
            after: Some(quoted(&w.path)),
            forces_replacement: true,
        };
        d.changes.push(Change {
            address: addr.clone(),
            name: w.name.clone(),
            action: Action::Replace,
            attributes,
            documents,
            notes,
            keys: vec![],
        });
        teardown_role_steps(d, addr, h, lr, Phase::Prepare, Phase::ReplaceDelete);
        create_role_steps(d, addr, w, stack);
        return;
    }
    let mut attributes = Vec::new();
    let mut documents = Vec::new();
    let role = || w.name.clone();
    if w.description != h.description || w.max_session_duration != h.max_session_duration {
        if w.description != h.description {
            attributes.push(attr(
                "description",
                Some(quoted(&h.description)),
                Some(quoted(&w.description)),
            ));
        }
        if w.max_session_duration != h.max_session_duration {
            attributes.push(attr(
                "max_session_duration",
                Some(h.max_session_duration.to_string()),
                Some(w.max_session_duration.to_string()),
            ));
        }
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::UpdateRole {
                name: role(),
                description: w.description.clone(),
                max_session_duration: w.max_session_duration,
            },
        );
    }
    let who = Who::Role(w.name.clone());
    let have_tags = with_owner(&h.tags, lr);
    diff_boundary(
        d,
        addr,
        &who,
        &w.permissions_boundary,
        &h.permissions_boundary,
        &mut attributes,
    );
    diff_tags(
        d,
        addr,
        &who,
        &owned_tags(&w.tags, stack),
        &have_tags,
        &mut attributes,
    );
    if w.instance_profile != h.instance_profile {
        attributes.push(attr(
            "instance_profile",
            Some(h.instance_profile.to_string()),
            Some(w.instance_profile.to_string()),
        ));
        if w.instance_profile {
            add_instance_profile(d, addr, w, stack);
        } else {
            let (role, name) = (w.name.clone(), w.name.clone());
            step(
                d,
                addr,
                Phase::Detach,
                Op::RemoveRoleFromInstanceProfile {
                    role,
                    instance_profile: name.clone(),
                },
            );
            step(
                d,
                addr,
                Phase::DeleteRoles,
                Op::DeleteInstanceProfile { name },
            );
        }
    }
    if let Some(c) = doc_change("trust policy".into(), &h.trust, &w.trust, ctx) {
        documents.push(c);
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::UpdateAssumeRolePolicy {
                role: role(),
                document: w.trust.to_wire(),
            },
        );
    } else if !lr.broken_principals.is_empty() {
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::UpdateAssumeRolePolicy {
                role: role(),
                document: w.trust.to_wire(),
            },
        );
    }
    diff_policies(
        d,
        addr,
        &who,
        (&w.inline, &h.inline),
        (&w.managed, &h.managed),
        ctx,
        &mut attributes,
        &mut documents,
    );
    push_update(
        d,
        adopting,
        Change {
            address: addr.clone(),
            name: w.name.clone(),
            action: Action::Update,
            attributes,
            documents,
            notes,
            keys: vec![],
        },
    );
}

fn create_policy(d: &mut Diff, addr: &Address, w: &ManagedPolicy, stack: &str) {
    let attributes = vec![
        attr("path", None, Some(quoted(&w.path))),
        attr("description", None, Some(quoted(&w.description))),
    ];
    let documents = vec![DocChange {
        label: "policy document".into(),
        before: None,
        after: Some(w.document.pretty()),
    }];
    d.changes.push(Change {
        address: addr.clone(),
        name: w.name.clone(),
        action: Action::Create,
        attributes,
        documents,
        notes: vec![],
        keys: vec![],
    });
    let description = if w.description.is_empty() {
        policy_marker(stack)
    } else {
        format!("{} {}", w.description, policy_marker(stack))
    };
    step(
        d,
        addr,
        Phase::CreatePolicies,
        Op::CreatePolicy {
            name: w.name.clone(),
            path: w.path.clone(),
            description,
            document: w.document.to_wire(),
            tags: owned_tags(&BTreeMap::new(), stack),
        },
    );
}

fn update_policy(
    d: &mut Diff,
    addr: &Address,
    w: &ManagedPolicy,
    h: &ManagedPolicy,
    lr: &LiveResource,
    ctx: &AccountContext,
    adopting: bool,
) {
    let mut attributes = Vec::new();
    let mut notes = Vec::new();
    let mut documents = Vec::new();
    if w.path != h.path {
        notes.push(format!(
            "path {:?} -> {:?} is not applied: IAM cannot move a managed policy, and policy names are unique across paths; rename the policy to recreate it under the new path",
            h.path, w.path
        ));
    }
    if w.description != h.description && !adopting {
        notes.push(format!(
            "description {:?} -> {:?} is not applied: IAM cannot change a managed policy's description; rename the policy to recreate it",
            h.description, w.description
        ));
    }
    if let Some(c) = doc_change("policy document".into(), &h.document, &w.document, ctx) {
        documents.push(c);
        // Make room: IAM keeps five versions; delete the oldest non-default ones first.
        let non_default: Vec<_> = lr.versions.iter().filter(|v| !v.is_default).collect();
        let excess = (lr.versions.len() + 1).saturating_sub(MAX_POLICY_VERSIONS);
        for v in non_default.iter().take(excess) {
            step(
                d,
                addr,
                Phase::Prepare,
                Op::DeletePolicyVersion {
                    arn: lr.arn.clone(),
                    version_id: v.id.clone(),
                },
            );
        }
        step(
            d,
            addr,
            Phase::UpdatePolicies,
            Op::CreatePolicyVersion {
                arn: lr.arn.clone(),
                document: w.document.to_wire(),
            },
        );
    }
    if adopting {
        notes.push("a managed policy's description cannot change, so an adopted policy carries no ownership marker: it stays managed while the plan declares it with `adopt = true`, and is left in place (not deleted) when removed from the plan".into());
        attributes.push(attr(
            "owner",
            None,
            Some("this stack (adopt = true)".into()),
        ));
    }
    push_update(
        d,
        adopting,
        Change {
            address: addr.clone(),
            name: w.name.clone(),
            action: Action::Update,
            attributes,
            documents,
            notes,
            keys: vec![],
        },
    );
}

fn delete_policy(d: &mut Diff, addr: &Address, h: &ManagedPolicy, lr: &LiveResource) {
    let document = DocChange {
        label: "policy document".into(),
        before: Some(h.document.pretty()),
        after: None,
    };
    let attributes = vec![attr("path", Some(quoted(&h.path)), None)];
    push_delete(
        d,
        addr,
        &h.name,
        attributes,
        Some(document),
        &BTreeMap::new(),
    );
    for v in lr.versions.iter().filter(|v| !v.is_default) {
        step(
            d,
            addr,
            Phase::DeletePolicyVersions,
            Op::DeletePolicyVersion {
                arn: lr.arn.clone(),
                version_id: v.id.clone(),
            },
        );
    }
    step(
        d,
        addr,
        Phase::DeletePolicies,
        Op::DeletePolicy {
            arn: lr.arn.clone(),
        },
    );
}

/// The live resources that a plan depends on, in a stable text form: a saved plan records
/// its hash and apply refuses if the account changed since.
pub fn live_fingerprint<'a>(
    stack: &str,
    declared: impl IntoIterator<Item = &'a Address>,
    live: &Live,
) -> String {
    let mut keys: BTreeSet<&Address> = declared.into_iter().collect();
    keys.extend(
        live.resources
            .iter()
            .filter(|(_, l)| l.owner.as_deref() == Some(stack))
            .map(|(a, _)| a),
    );
    let mut text = String::new();
    for a in keys {
        text.push_str(&format!("{a}\n"));
        if let Some(l) = live.resources.get(a) {
            text.push_str(&format!(
                "{:?}|{:?}|{:?}|{:?}|{:?}\n",
                l.owner, l.versions, l.instance_profiles, l.access_keys, l.delivered_key
            ));
            match &l.resource {
                Resource::Group(g) => {
                    text.push_str(&format!("{}|{:?}\n", g.path, g.managed));
                    for (n, doc) in &g.inline {
                        text.push_str(&format!("{n}={}\n", doc.canonical));
                    }
                }
                Resource::User(u) => {
                    text.push_str(&format!(
                        "{}|{:?}|{:?}|{:?}|{:?}\n",
                        u.path, u.permissions_boundary, u.tags, u.managed, u.groups
                    ));
                    for (n, doc) in &u.inline {
                        text.push_str(&format!("{n}={}\n", doc.canonical));
                    }
                }
                Resource::Role(r) => {
                    text.push_str(&format!(
                        "{}|{}|{}|{:?}|{:?}|{:?}|{}\n",
                        r.path,
                        r.description,
                        r.max_session_duration,
                        r.permissions_boundary,
                        r.tags,
                        r.managed,
                        r.trust.canonical
                    ));
                    for (n, doc) in &r.inline {
                        text.push_str(&format!("{n}={}\n", doc.canonical));
                    }
                }
                Resource::ManagedPolicy(p) => {
                    text.push_str(&format!(
                        "{}|{}|{}\n",
                        p.path, p.description, p.document.canonical
                    ));
                }
            }
        }
    }
    format!("{:016x}", fnv1a(text.as_bytes()))
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

mod groups;
mod users;

#[cfg(test)]
mod tests;
