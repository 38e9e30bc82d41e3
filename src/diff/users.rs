//! Users and their access keys.

use super::*;
use crate::keys::{KeyAction, KeyReport, plan_keys};
use crate::model::User;

/// The key each declared user's sink holds: read from the sink file, or for a command
/// sink, the key recorded on the user when it was delivered.
fn sink_key(
    addr: &Address,
    rule: &crate::keys::KeyRule,
    lr: Option<&LiveResource>,
    opts: &Options,
) -> Option<String> {
    if rule.sink.readable() {
        opts.sink_keys.get(addr).cloned().flatten()
    } else {
        lr.and_then(|l| l.delivered_key.clone())
    }
}

/// Plans the user's keys; returns the per-key report and notes for the plan.
fn key_steps(
    d: &mut Diff,
    addr: &Address,
    w: &User,
    lr: Option<&LiveResource>,
    opts: &Options,
) -> (Vec<KeyReport>, Vec<String>) {
    let Some(rule) = &w.keys else {
        return (vec![], vec![]);
    };
    let live_keys = lr.map(|l| l.access_keys.as_slice()).unwrap_or(&[]);
    let mut cx = opts.keys;
    cx.rotate_now = opts.rotate.contains(&addr.key);
    let plan = plan_keys(
        rule,
        live_keys,
        sink_key(addr, rule, lr, opts).as_deref(),
        cx,
    );
    let user = w.name.clone();
    for a in &plan.actions {
        match a {
            KeyAction::Delete { id } => step(
                d,
                addr,
                Phase::Prepare,
                Op::DeleteAccessKey {
                    user: user.clone(),
                    id: id.clone(),
                    untag: live_keys.iter().any(|k| k.id == *id && k.tagged),
                },
            ),
            KeyAction::Create => step(
                d,
                addr,
                Phase::UpdateRoles,
                Op::CreateAccessKey {
                    user: user.clone(),
                    sink: rule.sink.clone(),
                    issued_at: cx.simulated.then_some(cx.now),
                },
            ),
            KeyAction::Deactivate { id } => step(
                d,
                addr,
                Phase::Detach,
                Op::DeactivateAccessKey {
                    user: user.clone(),
                    id: id.clone(),
                    at: cx.now,
                },
            ),
        }
    }
    let notes = if plan.actions.is_empty() && !cx.rotate_now {
        vec![]
    } else {
        plan.notes
    };
    if plan.actions.is_empty() {
        // Nothing happens to the keys now: still show them, and when something will.
        if !plan.reports.is_empty() {
            d.key_status.push(KeyStatus {
                address: addr.clone(),
                name: w.name.clone(),
                keys: plan.reports,
            });
        }
        return (vec![], notes);
    }
    (plan.reports, notes)
}

pub(super) fn create_user(d: &mut Diff, addr: &Address, w: &User, stack: &str, opts: &Options) {
    step(
        d,
        addr,
        Phase::CreateRoles,
        Op::CreateUser {
            name: w.name.clone(),
            path: w.path.clone(),
            permissions_boundary: w.permissions_boundary.clone(),
            tags: owned_tags(&w.tags, stack),
        },
    );
    let who = Who::User(w.name.clone());
    let mut attributes = vec![attr("path", None, Some(quoted(&w.path)))];
    if let Some(b) = &w.permissions_boundary {
        attributes.push(attr("permissions_boundary", None, Some(quoted(b))));
    }
    attributes.extend(
        w.tags
            .iter()
            .map(|(k, v)| attr(&format!("tags.{k}"), None, Some(quoted(v)))),
    );
    let mut documents = Vec::new();
    let (no_inline, no_managed) = (BTreeMap::new(), BTreeSet::new());
    let ctx = &AccountContext {
        alias: addr.account.clone(),
        account_id: String::new(),
        partition: String::new(),
        region: String::new(),
    };
    diff_policies(
        d,
        addr,
        &who,
        (&w.inline, &no_inline),
        (&w.managed, &no_managed),
        ctx,
        &mut attributes,
        &mut documents,
    );
    for g in &w.groups {
        attributes.push(attr("group", None, Some(quoted(g))));
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::AddUserToGroup {
                user: w.name.clone(),
                group: g.clone(),
            },
        );
    }
    let (keys, notes) = key_steps(d, addr, w, None, opts);
    d.changes.push(Change {
        address: addr.clone(),
        name: w.name.clone(),
        action: Action::Create,
        attributes,
        documents,
        notes,
        keys,
    });
}

#[allow(clippy::too_many_arguments)]
pub(super) fn update_user(
    d: &mut Diff,
    addr: &Address,
    w: &User,
    h: &User,
    lr: &LiveResource,
    ctx: &AccountContext,
    stack: &str,
    adopting: bool,
    opts: &Options,
) {
    let who = Who::User(w.name.clone());
    let mut attributes = Vec::new();
    let mut documents = Vec::new();
    if w.path != h.path {
        attributes.push(attr("path", Some(quoted(&h.path)), Some(quoted(&w.path))));
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::UpdateUser {
                name: w.name.clone(),
                new_path: w.path.clone(),
            },
        );
    }
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
        &with_owner(&h.tags, lr),
        &mut attributes,
    );
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
    for g in w.groups.difference(&h.groups) {
        attributes.push(attr("group", None, Some(quoted(g))));
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::AddUserToGroup {
                user: w.name.clone(),
                group: g.clone(),
            },
        );
    }
    for g in h.groups.difference(&w.groups) {
        attributes.push(attr("group", Some(quoted(g)), None));
        step(
            d,
            addr,
            Phase::Detach,
            Op::RemoveUserFromGroup {
                user: w.name.clone(),
                group: g.clone(),
            },
        );
    }
    let (keys, notes) = key_steps(d, addr, w, Some(lr), opts);
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
            keys,
        },
    );
}

/// Removes, in the order IAM requires, what a user holds, then the user (whose login
/// profile and MFA devices `DeleteUser` removes first).
pub(super) fn delete_user(d: &mut Diff, addr: &Address, h: &User, lr: &LiveResource) {
    let user = || h.name.clone();
    let mut attributes = vec![attr("path", Some(quoted(&h.path)), None)];
    for k in &lr.access_keys {
        attributes.push(attr("access_key", Some(quoted(&k.id)), None));
        step(
            d,
            addr,
            Phase::Detach,
            Op::DeleteAccessKey {
                user: user(),
                id: k.id.clone(),
                untag: false,
            },
        );
    }
    for n in h.inline.keys() {
        step(
            d,
            addr,
            Phase::Detach,
            Op::DeleteUserPolicy {
                user: user(),
                name: n.clone(),
            },
        );
    }
    for arn in &h.managed {
        attributes.push(attr("managed_policy", Some(quoted(arn)), None));
        step(
            d,
            addr,
            Phase::Detach,
            Op::DetachUserPolicy {
                user: user(),
                arn: arn.clone(),
            },
        );
    }
    for g in &h.groups {
        attributes.push(attr("group", Some(quoted(g)), None));
        step(
            d,
            addr,
            Phase::Detach,
            Op::RemoveUserFromGroup {
                user: user(),
                group: g.clone(),
            },
        );
    }
    step(d, addr, Phase::DeleteRoles, Op::DeleteUser { name: user() });
    push_delete(d, addr, &h.name, attributes, None, &h.inline);
}
