//! The plan as access analysis sees it: every role and user as a caller, with the policies
//! that apply to its requests (its own, its groups', its boundary, the target role's trust).

use super::eval::{Caller, CallerKind, Policy, PolicyKind, PolicySet, PolicySource};
use super::matcher::arn_account;
use super::{AccessError, Context, Evaluation, Request, evaluate};
use crate::model::{Address, DEFAULT_ACCOUNT, Desired, Kind, Resource};
use crate::plan::resource_label;
use crate::policy::PolicyDocument;
use std::collections::HashMap;

/// An index over a desired state, for evaluating its principals' requests.
pub struct World<'a> {
    pub desired: &'a Desired,
    /// Lower-cased ARN -> the plan's role, user, group or managed policy.
    by_arn: HashMap<String, &'a Address>,
}

impl<'a> World<'a> {
    pub fn new(desired: &'a Desired) -> World<'a> {
        let mut by_arn = HashMap::new();
        for addr in desired.resources.keys() {
            if let Some(arn) = arn_of(desired, addr) {
                by_arn.insert(arn.to_ascii_lowercase(), addr);
            }
        }
        World { desired, by_arn }
    }

    /// The ARN of a resource of the plan.
    pub fn arn(&self, addr: &Address) -> Option<String> {
        arn_of(self.desired, addr)
    }

    /// `role.NAME` or `role.NAME[account]`.
    pub fn label(&self, addr: &Address) -> String {
        match self.desired.resources.get(addr) {
            Some(d) => resource_label(addr, d.resource.name()),
            None => addr.to_string(),
        }
    }

    /// The plan's resource with this ARN (without regard to case, as IAM names are).
    pub fn by_arn(&self, arn: &str) -> Option<&'a Address> {
        self.by_arn.get(&arn.to_ascii_lowercase()).copied()
    }

    /// A principal as given on the command line: `role/NAME`, `user/NAME` (in `account`,
    /// the default account when `None`) or a role or user ARN of the plan.
    pub fn principal(&self, spec: &str, account: Option<&str>) -> Result<&'a Address, AccessError> {
        self.entity(spec, account, &[Kind::Role, Kind::User])
    }

    fn entity(
        &self,
        spec: &str,
        account: Option<&str>,
        kinds: &[Kind],
    ) -> Result<&'a Address, AccessError> {
        let account = self.account(account)?;
        if spec.starts_with("arn:") {
            return self
                .by_arn(spec)
                .filter(|a| kinds.contains(&a.kind))
                .ok_or_else(|| AccessError::UnknownPrincipal {
                    kind: "role or user".into(),
                    name: spec.to_string(),
                    did_you_mean: None,
                });
        }
        let (kind, name) = match spec.split_once(['/', '.']) {
            Some(("role", n)) => (Kind::Role, n),
            Some(("user", n)) => (Kind::User, n),
            _ => return Err(AccessError::BadPrincipal(spec.to_string())),
        };
        if !kinds.contains(&kind) || name.is_empty() {
            return Err(AccessError::BadPrincipal(spec.to_string()));
        }
        let addr = Address::new(&account, kind, name);
        match self.desired.resources.get_key_value(&addr) {
            Some((a, _)) => Ok(a),
            None => {
                let names: Vec<&str> = self
                    .desired
                    .resources
                    .iter()
                    .filter(|(a, _)| a.kind == kind && a.account == account)
                    .map(|(_, d)| d.resource.name())
                    .collect();
                Err(AccessError::UnknownPrincipal {
                    kind: kind.label().into(),
                    name: name.to_string(),
                    did_you_mean: crate::spec::nearest(name, names)
                        .map(|n| format!("{}/{n}", kind.label())),
                })
            }
        }
    }

    fn account(&self, alias: Option<&str>) -> Result<String, AccessError> {
        let alias = alias.unwrap_or(DEFAULT_ACCOUNT);
        if self.desired.accounts.contains_key(alias) || alias == DEFAULT_ACCOUNT {
            Ok(alias.to_string())
        } else {
            Err(AccessError::UnknownAccount {
                alias: alias.to_string(),
                did_you_mean: crate::spec::nearest(
                    alias,
                    self.desired.accounts.keys().map(String::as_str),
                )
                .map(str::to_string),
            })
        }
    }

    /// A resource as given on the command line: an ARN or `*` as is; `role/NAME` or
    /// `user/NAME` of the plan as its ARN.
    pub fn resource(&self, spec: &str, account: Option<&str>) -> Result<String, AccessError> {
        if spec.starts_with("arn:") || spec == "*" {
            return Ok(spec.to_string());
        }
        if spec.starts_with("role/") || spec.starts_with("user/") {
            let addr = self.entity(spec, account, &[Kind::Role, Kind::User])?;
            return self
                .arn(addr)
                .ok_or_else(|| AccessError::BadResource(spec.to_string()));
        }
        Err(AccessError::BadResource(spec.to_string()))
    }

    /// A role or user of the plan as a caller.
    pub fn caller(&self, addr: &Address) -> Option<Caller> {
        let kind = match addr.kind {
            Kind::Role => CallerKind::Role,
            Kind::User => CallerKind::User,
            _ => return None,
        };
        Some(Caller::iam(kind, &self.arn(addr)?))
    }

    /// The plan's roles and users, as callers.
    pub fn principals(&self) -> Vec<(&'a Address, Caller)> {
        self.desired
            .resources
            .keys()
            .filter_map(|a| self.caller(a).map(|c| (a, c)))
            .collect()
    }

    /// The request context of a plan principal: what was given, then what the principal
    /// supplies itself (ARN, account, user name, tags; given session tags win over the
    /// principal's own tags, as in AWS).
    pub fn context(&self, addr: &Address, caller: &Caller, given: &Context) -> Context {
        let mut ctx = given.clone();
        caller.context_keys(&mut ctx);
        let tags = match self.desired.resources.get(addr).map(|d| &d.resource) {
            Some(Resource::Role(r)) => Some(&r.tags),
            Some(Resource::User(u)) => Some(&u.tags),
            _ => None,
        };
        for (k, v) in tags.into_iter().flatten() {
            ctx.set_default(&format!("aws:PrincipalTag/{k}"), vec![v.clone()]);
        }
        ctx
    }

    /// Every policy that applies when `caller` (a plan principal at `addr`, or an outside
    /// principal when `None`) asks for `action` on `resource`.
    pub fn policies(&self, addr: Option<&Address>, action: &str, resource: &str) -> PolicySet<'a> {
        let mut set = PolicySet {
            identity_known: addr.is_some(),
            resource_account: arn_account(resource).map(str::to_string),
            ..Default::default()
        };
        if let Some(addr) = addr {
            let label = self.label(addr);
            let add_principal = |owner: &Address, owner_label: &str, set: &mut PolicySet<'a>| {
                let Some(d) = self.desired.resources.get(owner) else {
                    return;
                };
                let (inline, managed) = match &d.resource {
                    Resource::Role(r) => (&r.inline, &r.managed),
                    Resource::User(u) => (&u.inline, &u.managed),
                    Resource::Group(g) => (&g.inline, &g.managed),
                    Resource::ManagedPolicy(_) => return,
                };
                for (name, doc) in inline {
                    set.identity.push(Policy {
                        source: PolicySource {
                            kind: PolicyKind::Identity,
                            name: format!("{owner_label} inline policy {name}"),
                        },
                        document: Some(doc.value()),
                    });
                }
                for arn in managed {
                    set.identity.push(self.managed(arn, PolicyKind::Identity));
                }
            };
            add_principal(addr, &label, &mut set);
            if let Some(Resource::User(u)) = self.desired.resources.get(addr).map(|d| &d.resource) {
                for g in &u.groups {
                    let ga = Address::new(&addr.account, Kind::Group, g);
                    let gl = self.label(&ga);
                    add_principal(&ga, &gl, &mut set);
                }
            }
            let boundary = match self.desired.resources.get(addr).map(|d| &d.resource) {
                Some(Resource::Role(r)) => r.permissions_boundary.as_ref(),
                Some(Resource::User(u)) => u.permissions_boundary.as_ref(),
                _ => None,
            };
            set.boundary = boundary.map(|arn| self.managed(arn, PolicyKind::PermissionsBoundary));
        }
        if action.to_ascii_lowercase().starts_with("sts:")
            && let Some(target) = self.by_arn(resource).filter(|a| a.kind == Kind::Role)
            && let Some(Resource::Role(r)) = self.desired.resources.get(target).map(|d| &d.resource)
        {
            set.resource = Some(Policy {
                source: PolicySource {
                    kind: PolicyKind::Trust,
                    name: format!("{} trust policy", self.label(target)),
                },
                document: Some(r.trust.value()),
            });
        }
        set
    }

    fn managed(&self, arn: &str, kind: PolicyKind) -> Policy<'a> {
        let found = self
            .by_arn(arn)
            .and_then(|a| match &self.desired.resources.get(a)?.resource {
                Resource::ManagedPolicy(p) => Some((a, &p.document)),
                _ => None,
            });
        let what = match kind {
            PolicyKind::PermissionsBoundary => "permissions boundary ",
            _ => "",
        };
        match found {
            Some((a, doc)) => Policy {
                source: PolicySource {
                    kind,
                    name: format!("{what}{}", self.label(a)),
                },
                document: Some(doc_value(doc)),
            },
            None => Policy {
                source: PolicySource {
                    kind,
                    name: format!("{what}managed policy {arn}"),
                },
                document: None,
            },
        }
    }

    /// `iamplan explain`: may the plan's principal at `addr` do `action` on `resource`?
    /// `None` when `addr` is not a role or user of the plan.
    pub fn explain(
        &self,
        addr: &Address,
        action: &str,
        resource: &str,
        given: &Context,
    ) -> Option<Evaluation> {
        let caller = self.caller(addr)?;
        Some(self.evaluate_as(&caller, Some(addr), action, resource, given))
    }

    /// Any caller's request: a plan principal (`addr`) with its policies and keys, or an
    /// outside one (`None`: a profile's user, another account's role, a service) whose own
    /// policies are unknown, so that at most the trust policy decides. For `smoke`: predict
    /// each step of a check (each assume with its session tags in `given`, then the call).
    pub fn evaluate_as(
        &self,
        caller: &Caller,
        addr: Option<&Address>,
        action: &str,
        resource: &str,
        given: &Context,
    ) -> Evaluation {
        let ctx = match addr {
            Some(a) => self.context(a, caller, given),
            None => {
                let mut c = given.clone();
                caller.context_keys(&mut c);
                c
            }
        };
        let mut set = self.policies(addr, action, resource);
        if matches!(caller.kind, CallerKind::Service | CallerKind::Federated) {
            // A service or an identity provider has no identity policies to be unknown.
            set.identity_known = true;
        }
        evaluate(
            &Request {
                caller,
                action,
                resource,
                context: &ctx,
            },
            &set,
        )
    }
}

fn doc_value(d: &PolicyDocument) -> &serde_json::Value {
    d.value()
}

fn arn_of(desired: &Desired, addr: &Address) -> Option<String> {
    let ctx = desired.accounts.get(&addr.account)?;
    let r = &desired.resources.get(addr)?.resource;
    Some(ctx.arn(addr.kind.arn_type(), r.path(), r.name()))
}
