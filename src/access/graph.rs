//! Who can reach an action on a resource: the plan's roles and users, and the outside
//! principals its trust policies name, directly or through chains of `sts:AssumeRole`
//! through the plan's roles (as PMapper's graph, from the plan rather than live IAM).
//!
//! Every step is an evaluation with the same given context (so `--context
//! sts:ExternalId=...` applies to each assume step). A step whose answer is `Unknown`
//! (an outside account whose own policies decide, a condition on a key not given) is
//! kept, and every reach through it is reported as possible rather than certain.

use super::eval::{Caller, CallerKind, Decision};
use super::world::World;
use super::{Context, merge};
use crate::model::{Address, Kind};
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};

/// One step of a path: `from` may do `action` on `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub from: String,
    pub action: String,
    pub to: String,
    pub certain: bool,
}

/// A principal that can reach the action, with the shortest path it takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reach {
    /// `role.app`, `user.ci[prod]`, or an outside principal as its trust policy names it.
    pub principal: String,
    pub kind: CallerKind,
    /// Whether it is in the plan.
    pub in_plan: bool,
    /// The steps, the last one the action itself.
    pub path: Vec<Step>,
    /// Every step was `Allowed`; otherwise some step was `Unknown` (see `reasons`).
    pub certain: bool,
    pub reasons: Vec<String>,
}

struct Node<'a> {
    label: String,
    caller: Caller,
    addr: Option<&'a Address>,
}

/// The actions that take a role from one principal to another.
const ASSUME: &str = "sts:AssumeRole";

/// Everyone who can do `action` on `resource`, directly or by assuming roles of the plan.
/// Sorted: certain first, then by path length and name.
pub fn who_can(world: &World, action: &str, resource: &str, given: &Context) -> Vec<Reach> {
    let mut nodes: Vec<Node> = world
        .principals()
        .into_iter()
        .map(|(addr, caller)| Node {
            label: world.label(addr),
            caller,
            addr: Some(addr),
        })
        .collect();
    nodes.extend(outside_principals(world).into_iter().map(|caller| Node {
        label: caller.to_string(),
        caller,
        addr: None,
    }));
    let roles: Vec<(usize, String)> = nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| n.addr.is_some_and(|a| a.kind == Kind::Role))
        .filter_map(|(i, n)| Some((i, world.arn(n.addr?)?)))
        .collect();

    let eval = |n: &Node, action: &str, resource: &str| -> Decision {
        world
            .evaluate_as(&n.caller, n.addr, action, resource, given)
            .decision
    };

    // The best way found so far from each node to the goal: (certain, steps, reasons).
    let mut best: BTreeMap<usize, (bool, Vec<Step>, Vec<String>)> = BTreeMap::new();
    let mut queue = VecDeque::new();
    let has_resource_policy = world.policies(None, action, resource).resource.is_some();
    for (i, n) in nodes.iter().enumerate() {
        // An outside principal reaches a resource directly only through a resource policy
        // the plan holds; others (a function's, a bucket's) are not in the plan.
        if n.addr.is_none() && !has_resource_policy {
            continue;
        }
        match eval(n, action, resource) {
            Decision::Allowed => {
                best.insert(i, (true, vec![step(n, action, resource, true)], vec![]));
                queue.push_back(i);
            }
            Decision::Unknown { reasons } => {
                best.insert(i, (false, vec![step(n, action, resource, false)], reasons));
                queue.push_back(i);
            }
            _ => {}
        }
    }
    // Edges are found lazily, backwards from what reaches the goal: who may assume the
    // role `j`? Breadth first, so each path found first is a shortest one.
    let mut assumers: BTreeMap<usize, Vec<(usize, Decision)>> = BTreeMap::new();
    while let Some(j) = queue.pop_front() {
        let Some(arn) = roles.iter().find(|(r, _)| *r == j).map(|(_, a)| a.clone()) else {
            continue;
        };
        let edges = assumers.entry(j).or_insert_with(|| {
            nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != j)
                .filter_map(|(i, n)| match eval(n, ASSUME, &arn) {
                    d @ (Decision::Allowed | Decision::Unknown { .. }) => Some((i, d)),
                    _ => None,
                })
                .collect()
        });
        let (j_certain, j_path, j_reasons) = best[&j].clone();
        for (i, d) in edges.clone() {
            let sure = d == Decision::Allowed;
            let mut reasons = j_reasons.clone();
            if let Decision::Unknown { reasons: r } = d {
                merge(&mut reasons, r);
            }
            let certain = sure && j_certain;
            let better = match best.get(&i) {
                None => true,
                Some((c, p, _)) => certain && !c || (certain == *c && j_path.len() + 1 < p.len()),
            };
            if better {
                let mut path = vec![step(&nodes[i], ASSUME, &nodes[j].label, sure)];
                path.extend(j_path.iter().cloned());
                best.insert(i, (certain, path, reasons));
                queue.push_back(i);
            }
        }
    }
    let mut out: Vec<Reach> = best
        .into_iter()
        .map(|(i, (certain, path, reasons))| Reach {
            principal: nodes[i].label.clone(),
            kind: nodes[i].caller.kind,
            in_plan: nodes[i].addr.is_some(),
            path,
            certain,
            reasons,
        })
        .collect();
    out.sort_by(|a, b| {
        (!a.certain, a.path.len(), &a.principal).cmp(&(!b.certain, b.path.len(), &b.principal))
    });
    out
}

fn step(n: &Node, action: &str, to: &str, certain: bool) -> Step {
    Step {
        from: n.label.clone(),
        action: action.to_string(),
        to: to.to_string(),
        certain,
    }
}

/// The principals the plan's trust policies name that are not the plan's own roles and
/// users: accounts, outside roles and users, services, identity providers, anyone.
fn outside_principals(world: &World) -> Vec<Caller> {
    let mut out: BTreeMap<(CallerKind, String), Caller> = BTreeMap::new();
    for d in world.desired.resources.values() {
        let crate::model::Resource::Role(r) = &d.resource else {
            continue;
        };
        let Some(stmts) = crate::policy::statements(r.trust.value()) else {
            continue;
        };
        for s in stmts.iter() {
            let Some(p) = s.get("Principal") else {
                continue;
            };
            if p.as_str() == Some("*") {
                add(
                    &mut out,
                    Caller {
                        kind: CallerKind::Anyone,
                        id: "*".into(),
                        account: None,
                        session_arn: None,
                    },
                );
                continue;
            }
            let Some(map) = p.as_object() else { continue };
            for (kind, ids) in map {
                for id in super::condition::values_of(ids).unwrap_or_default() {
                    let caller = match kind.as_str() {
                        "AWS" if id == "*" => Caller {
                            kind: CallerKind::Anyone,
                            id,
                            account: None,
                            session_arn: None,
                        },
                        "AWS" => {
                            let arn = crate::policy::account_principal(&id, "aws");
                            if world.by_arn(&arn).is_some() {
                                continue;
                            }
                            let kind = match super::matcher::arn_parts(&arn).map(|p| p[5]) {
                                Some("root") => CallerKind::Account,
                                Some(r) if r.starts_with("user/") => CallerKind::User,
                                Some(r) if r.starts_with("role/") => CallerKind::Role,
                                _ => continue,
                            };
                            Caller::iam(kind, &arn)
                        }
                        "Service" => Caller {
                            kind: CallerKind::Service,
                            id,
                            account: None,
                            session_arn: None,
                        },
                        "Federated" => Caller {
                            kind: CallerKind::Federated,
                            id,
                            account: None,
                            session_arn: None,
                        },
                        _ => continue,
                    };
                    add(&mut out, caller);
                }
            }
        }
    }
    out.into_values().collect()
}

fn add(out: &mut BTreeMap<(CallerKind, String), Caller>, c: Caller) {
    out.entry((c.kind, c.id.clone())).or_insert(c);
}
