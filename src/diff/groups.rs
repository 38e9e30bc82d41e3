//! Groups. IAM groups cannot be tagged, so ownership is an inline marker policy.

use super::*;
use crate::model::{GROUP_MARKER_PREFIX, Group, group_marker_document};

fn marker(d: &mut Diff, addr: &Address, group: &str, stack: &str) {
    step(
        d,
        addr,
        Phase::UpdateRoles,
        Op::PutGroupPolicy {
            group: group.to_string(),
            name: format!("{GROUP_MARKER_PREFIX}{stack}"),
            document: group_marker_document(),
        },
    );
}

pub(super) fn create_group(d: &mut Diff, addr: &Address, w: &Group, stack: &str) {
    // Groups are created with the roles, before users join them.
    step(
        d,
        addr,
        Phase::CreateRoles,
        Op::CreateGroup {
            name: w.name.clone(),
            path: w.path.clone(),
        },
    );
    marker(d, addr, &w.name, stack);
    let who = Who::Group(w.name.clone());
    let mut attributes = vec![attr("path", None, Some(quoted(&w.path)))];
    let mut documents = Vec::new();
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
        (&w.inline, &BTreeMap::new()),
        (&w.managed, &BTreeSet::new()),
        ctx,
        &mut attributes,
        &mut documents,
    );
    d.changes.push(Change {
        address: addr.clone(),
        name: w.name.clone(),
        action: Action::Create,
        attributes,
        documents,
        notes: vec![],
        keys: vec![],
    });
}

#[allow(clippy::too_many_arguments)]
pub(super) fn update_group(
    d: &mut Diff,
    addr: &Address,
    w: &Group,
    h: &Group,
    ctx: &AccountContext,
    stack: &str,
    adopting: bool,
) {
    let who = Who::Group(w.name.clone());
    let mut attributes = Vec::new();
    let mut documents = Vec::new();
    if w.path != h.path {
        attributes.push(attr("path", Some(quoted(&h.path)), Some(quoted(&w.path))));
        step(
            d,
            addr,
            Phase::UpdateRoles,
            Op::UpdateGroup {
                name: w.name.clone(),
                new_path: w.path.clone(),
            },
        );
    }
    if adopting {
        marker(d, addr, &w.name, stack);
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
            notes: vec![],
            keys: vec![],
        },
    );
}

/// Members leave, policies go (the marker last of all, with the group), then the group.
pub(super) fn delete_group(
    d: &mut Diff,
    addr: &Address,
    h: &Group,
    members: &[String],
    stack: &str,
) {
    let mut attributes = vec![attr("path", Some(quoted(&h.path)), None)];
    for m in members {
        attributes.push(attr("member", Some(quoted(m)), None));
        step(
            d,
            addr,
            Phase::Detach,
            Op::RemoveUserFromGroup {
                user: m.clone(),
                group: h.name.clone(),
            },
        );
    }
    for n in h
        .inline
        .keys()
        .cloned()
        .chain(std::iter::once(format!("{GROUP_MARKER_PREFIX}{stack}")))
    {
        step(
            d,
            addr,
            Phase::Detach,
            Op::DeleteGroupPolicy {
                group: h.name.clone(),
                name: n,
            },
        );
    }
    for arn in &h.managed {
        attributes.push(attr("managed_policy", Some(quoted(arn)), None));
        step(
            d,
            addr,
            Phase::Detach,
            Op::DetachGroupPolicy {
                group: h.name.clone(),
                arn: arn.clone(),
            },
        );
    }
    step(
        d,
        addr,
        Phase::DeleteRoles,
        Op::DeleteGroup {
            name: h.name.clone(),
        },
    );
    push_delete(d, addr, &h.name, attributes, None, &h.inline);
}
