//! Desired x Live -> the plan's changes (what a user reads) and steps (what apply runs).
//! Pure. This module pairs each desired resource with its live self, decides ownership and
//! adoption, and orders the steps; what changes for one kind is in that kind's module
//! under `iam/`.

use crate::iam::IamKind;
use crate::keys::KeyContext;
use crate::model::{AccountContext, Address, Desired, Live, LiveResource, Resource};
use crate::ops::{Op, Step};
use crate::plan::{Action, AttrChange, Change, Conflict, KeyStatus};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub steps: Vec<Step>,
    pub conflicts: Vec<Conflict>,
    /// Users whose keys need nothing now: their keys and what happens to them next.
    pub key_status: Vec<KeyStatus>,
    /// Time spent classifying what the changes do to access (part of the diff's time;
    /// `--stats` shows it apart, the figure the access-analysis budget is about).
    pub access_time: std::time::Duration,
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
    /// Record each changed resource whole, before and after (for the JSON plan and saved
    /// plans; a text plan does without the memory).
    pub snapshots: bool,
    /// List unchanged resources too, as no-op changes (`--include-unchanged`).
    pub include_unchanged: bool,
    /// The stack's previous run died mid-apply (its lock was taken over): what it may have
    /// left half-made is taken over too (an empty, unmarked group; see also
    /// `KeyContext::recovering_since`).
    pub recovering: bool,
}

/// What a kind's diff of one resource works with, and where its results go.
pub struct DiffCx<'a> {
    pub addr: &'a Address,
    /// The resource as the plan shows it, for its steps: `role.ably-integration`.
    resource: String,
    pub ctx: &'a AccountContext,
    pub stack: &'a str,
    pub opts: &'a Options,
    /// The whole live state (a group's members are users).
    pub live: &'a Live,
    out: &'a mut Diff,
}

impl<'a> DiffCx<'a> {
    fn new(
        addr: &'a Address,
        name: &str,
        desired: &'a Desired,
        opts: &'a Options,
        live: &'a Live,
        out: &'a mut Diff,
    ) -> Self {
        DiffCx {
            addr,
            resource: crate::plan::resource_label(addr, name),
            ctx: &desired.accounts[&addr.account],
            stack: &desired.stack,
            opts,
            live,
            out,
        }
    }

    /// A step in its operation's own phase.
    pub fn step(&mut self, op: Op) {
        self.out
            .steps
            .push(Step::new(&self.addr.account, &self.resource, op));
    }

    /// A step that runs before anything is created (making room, replacing a role).
    pub fn step_before_creates(&mut self, op: Op) {
        self.out
            .steps
            .push(Step::before_creates(&self.addr.account, &self.resource, op));
    }

    /// A change shown in the plan.
    pub fn change(&mut self, c: Change) {
        self.out.changes.push(c);
    }

    /// A change for an existing resource: shown when anything is to change, or when it is
    /// being adopted (adoption always changes it: it adds the ownership marker).
    pub fn update(&mut self, adopting: bool, mut c: Change) {
        c.action = if adopting {
            Action::Adopt
        } else if c.is_empty() {
            Action::NoOp
        } else {
            Action::Update
        };
        if c.action != Action::NoOp || self.opts.include_unchanged {
            self.out.changes.push(c);
        }
    }

    pub fn key_status(&mut self, s: KeyStatus) {
        self.out.key_status.push(s);
    }

    /// The change that shows this resource's deletion, starting with the path it had.
    pub fn deletion(&self, name: &str, path: &str) -> Change {
        let mut c = Change::new(self.addr, name, Action::Delete);
        c.attributes
            .push(crate::plan::AttrChange::removed("path", path));
        c
    }

    /// A new, empty change for this resource.
    pub fn new_change(&self, name: &str, action: Action) -> Change {
        Change::new(self.addr, name, action)
    }
}

pub fn diff(desired: &Desired, live: &Live, opts: &Options) -> Diff {
    let mut d = Diff::default();
    let stack = &desired.stack;
    for (addr, want) in &desired.resources {
        let have = live.resources.get(addr);
        let adopting = match have {
            None => false,
            Some(h) if h.owner.as_deref() == Some(stack) => false,
            Some(h) => match conflict(addr, want, h, opts, live) {
                Some(c) => {
                    d.conflicts.push(c);
                    continue;
                }
                None => true,
            },
        };
        let first = d.changes.len();
        let mut cx = DiffCx::new(addr, want.resource.name(), desired, opts, live, &mut d);
        match &want.resource {
            Resource::Role(w) => plan_one(w, have, &mut cx, adopting),
            Resource::ManagedPolicy(w) => plan_one(w, have, &mut cx, adopting),
            Resource::User(w) => plan_one(w, have, &mut cx, adopting),
            Resource::Group(w) => plan_one(w, have, &mut cx, adopting),
        }
        let ctx = &desired.accounts[&addr.account];
        for c in &mut d.changes[first..] {
            describe(c, ctx, Some(&want.resource), have, opts.snapshots);
            c.allow_widening = want.allow_widening;
        }
    }
    missing_groups(desired, live, &mut d.conflicts);
    for (addr, have) in &live.resources {
        if desired.resources.contains_key(addr) || have.owner.as_deref() != Some(stack) {
            continue;
        }
        // Only accounts the plan still names are read, so the context exists.
        let first = d.changes.len();
        let mut cx = DiffCx::new(addr, have.resource.name(), desired, opts, live, &mut d);
        match &have.resource {
            Resource::Role(h) => h.delete(have, &mut cx),
            Resource::ManagedPolicy(h) => h.delete(have, &mut cx),
            Resource::User(h) => h.delete(have, &mut cx),
            Resource::Group(h) => h.delete(have, &mut cx),
        }
        let ctx = &desired.accounts[&addr.account];
        for c in &mut d.changes[first..] {
            describe(c, ctx, None, Some(have), opts.snapshots);
        }
    }
    attached_outside(desired, live, &mut d.conflicts);
    d.steps.sort_by_key(|s| s.phase);
    let started = std::time::Instant::now();
    crate::plan::access::classify_changes(&mut d.changes, &desired.accounts);
    d.access_time = started.elapsed();
    d
}

/// What every change says of its resource whatever the kind: its ARN (shown when it is
/// new or changes), and, when asked, the whole resource before and after.
fn describe(
    c: &mut Change,
    ctx: &AccountContext,
    want: Option<&Resource>,
    have: Option<&LiveResource>,
    snapshots: bool,
) {
    let new_arn = want.map(|w| ctx.arn(w.kind().arn_type(), w.path(), w.name()));
    match (c.action, &new_arn, have) {
        (Action::Create, Some(arn), _) => {
            c.attributes
                .insert(0, AttrChange::added("arn", arn.as_str()));
        }
        (Action::Replace, Some(arn), Some(h)) if *arn != h.arn => {
            c.attributes
                .insert(0, AttrChange::changed("arn", h.arn.as_str(), arn.as_str()));
            c.notes.push(format!(
                "the ARN changes: whoever was given {} (a partner's dashboard, a trust or resource policy in another account) must be given the new one",
                h.arn
            ));
        }
        _ => {}
    }
    c.arn = new_arn.or_else(|| have.map(|h| h.arn.clone()));
    if snapshots {
        c.before = have.map(|h| snapshot(&h.resource));
        c.after = want.map(snapshot);
    }
}

fn snapshot(r: &Resource) -> serde_json::Value {
    serde_json::to_value(r).expect("a resource always serialises")
}

fn plan_one<K: IamKind>(want: &K, have: Option<&LiveResource>, cx: &mut DiffCx, adopting: bool) {
    match have.and_then(|h| K::of(&h.resource).map(|k| (k, h))) {
        None => want.create(cx),
        Some((h, lr)) => want.update(h, lr, cx, adopting),
    }
}

/// A managed policy the plan deletes while a role, user or group outside the plan attaches
/// it: IAM refuses the deletion (`DeleteConflict`) on every apply, and detaching it would
/// take access from a principal this stack does not manage. Each such attachment is a
/// conflict, so nothing is applied until it is detached there (or the policy kept here).
fn attached_outside(desired: &Desired, live: &Live, conflicts: &mut Vec<Conflict>) {
    let stack = desired.stack.as_str();
    for (addr, policy) in &live.resources {
        if !matches!(policy.resource, Resource::ManagedPolicy(_))
            || desired.resources.contains_key(addr)
            || policy.owner.as_deref() != Some(stack)
        {
            continue;
        }
        let holders: Vec<String> = live
            .resources
            .iter()
            .filter(|(a, l)| {
                a.account == addr.account
                    && !desired.resources.contains_key(a)
                    && l.owner.as_deref() != Some(stack)
            })
            .filter_map(|(a, l)| {
                let managed = match &l.resource {
                    Resource::Role(r) => &r.managed,
                    Resource::User(u) => &u.managed,
                    Resource::Group(g) => &g.managed,
                    Resource::ManagedPolicy(_) => return None,
                };
                managed.contains(&policy.arn).then(|| {
                    let whose = match &l.owner {
                        Some(other) => format!("stack \"{other}\""),
                        None => "not managed by iamplan".to_string(),
                    };
                    format!("{} \"{}\" ({whose})", a.kind.label(), l.resource.name())
                })
            })
            .collect();
        if !holders.is_empty() {
            conflicts.push(Conflict {
                address: addr.clone(),
                name: policy.resource.name().to_string(),
                message: format!(
                    "this plan deletes the policy, but {} {} attached to it outside this stack; IAM refuses to delete an attached policy: detach it there first, or keep the policy in the plan",
                    holders.join(", "),
                    if holders.len() == 1 { "is" } else { "are" },
                ),
            });
        }
    }
}

/// A live group with no inline or attached policies and no members.
fn empty_group(addr: &Address, have: &LiveResource, live: &Live) -> bool {
    let Resource::Group(g) = &have.resource else {
        return false;
    };
    g.inline.is_empty()
        && g.managed.is_empty()
        && !live.resources.iter().any(|(a, lr)| {
            a.account == addr.account
                && matches!(&lr.resource, Resource::User(u) if u.groups.iter().any(|x| x.eq_ignore_ascii_case(&g.name)))
        })
}

/// A user may join a group of the plan or one that exists; a group that is neither would
/// fail AddUserToGroup after the user was created, so it stops the plan instead.
fn missing_groups(desired: &Desired, live: &Live, conflicts: &mut Vec<Conflict>) {
    for (addr, want) in &desired.resources {
        let Resource::User(u) = &want.resource else {
            continue;
        };
        for g in &u.groups {
            let group = Address::new(&addr.account, crate::model::Kind::Group, g);
            if desired.resources.contains_key(&group) || live.resources.contains_key(&group) {
                continue;
            }
            conflicts.push(Conflict {
                address: addr.clone(),
                name: u.name.clone(),
                message: format!(
                    "user \"{}\" joins group \"{g}\", which neither the plan nor the account has; declare [group.{g}] or create the group first ({})",
                    u.name, want.origin
                ),
            });
        }
    }
}

/// Why a declared resource that exists live cannot be taken over, if it cannot.
fn conflict(
    addr: &Address,
    want: &crate::model::DesiredResource,
    have: &LiveResource,
    opts: &Options,
    live: &Live,
) -> Option<Conflict> {
    let kind = addr.kind.label();
    let name = have.resource.name();
    // A group is made in two calls (CreateGroup, then its marker policy): a crash between
    // them leaves it empty and unmarked. After such a crash (this run took over the dead
    // run's lock), an empty group (no policies, no members: it grants nothing to anyone)
    // is adopted rather than refused.
    if opts.recovering && have.owner.is_none() && empty_group(addr, have, live) {
        return None;
    }
    let message = match &have.owner {
        Some(other) => format!(
            "{kind} \"{name}\" belongs to stack \"{other}\"; remove it from that stack's plan first, or rename it here"
        ),
        None if want.adopt || opts.adopt_all => return None,
        None => format!(
            "{kind} \"{name}\" already exists and is not managed by iamplan; to manage it, set `adopt = true` on it ({}) or pass --adopt",
            want.origin
        ),
    };
    Some(Conflict {
        address: addr.clone(),
        name: want.resource.name().to_string(),
        message,
    })
}

/// The live resources a plan depends on, each as a hash of a stable text form, by
/// address: a saved plan records them, and apply refuses (naming what changed) if the
/// account changed since. A declared resource that does not exist has no entry.
pub fn live_fingerprint<'a>(
    stack: &str,
    declared: impl IntoIterator<Item = &'a Address>,
    live: &Live,
) -> BTreeMap<String, String> {
    let mut keys: BTreeSet<&Address> = declared.into_iter().collect();
    keys.extend(
        live.resources
            .iter()
            .filter(|(_, l)| l.owner.as_deref() == Some(stack))
            .map(|(a, _)| a),
    );
    keys.into_iter()
        .filter_map(|a| {
            let l = live.resources.get(a)?;
            // Every attribute the read produced, documents included: the Debug form
            // covers each kind's fields without a list to keep in step.
            let mut hash = Fnv1a::default();
            hash.write(format!("{l:?}").as_bytes());
            Some((a.to_string(), format!("{:016x}", hash.0)))
        })
        .collect()
}

/// What differs between two fingerprints: each address, and how.
pub fn fingerprint_changes(
    then: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<String> {
    let addresses: BTreeSet<&String> = then.keys().chain(now.keys()).collect();
    addresses
        .into_iter()
        .filter_map(|a| match (then.get(a), now.get(a)) {
            (Some(x), Some(y)) if x == y => None,
            (Some(_), Some(_)) => Some(format!("{a} (changed)")),
            (Some(_), None) => Some(format!("{a} (deleted)")),
            (None, _) => Some(format!("{a} (appeared)")),
        })
        .collect()
}

/// FNV-1a: stable across builds and platforms, unlike std's hasher.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf29ce484222325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
}

#[cfg(test)]
mod tests;
