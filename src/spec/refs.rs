//! References to the plan's own resources: `${role.NAME.arn}`, `${policy.NAME.arn}`,
//! `${user.NAME.arn}`, `${group.NAME.arn}`, `${instance_profile.NAME.arn}` and
//! `${role.NAME.unique_id}`. An ARN is known before apply (account, path and name); a
//! unique ID only once IAM has made the resource, so it is for outputs only.

use crate::model::{AccountContext, Address, Kind};
use std::collections::BTreeMap;

/// The kinds a reference can name, as written: `role`, `policy`, `user`, `group`,
/// `instance_profile`.
pub const REF_KINDS: [&str; 5] = ["role", "policy", "user", "group", "instance_profile"];

/// What a reference asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefAttr {
    Arn,
    UniqueId,
    /// `${instance_profile.NAME.arn}`: its target is the role, whose own ARN it is not.
    InstanceProfileArn,
}

/// A declared resource a reference can point at.
#[derive(Debug, Clone)]
pub struct Target {
    /// The resource (for an instance profile: the role it is named after).
    pub address: Address,
    /// Its ARN as the plan makes it.
    pub arn: String,
    pub name: String,
}

/// A wrong reference: the message and what to do.
pub type Wrong = (String, String);

/// Every resource of the plan a reference can name, by (kind as written, lower-cased name).
#[derive(Debug, Clone, Default)]
pub struct Refs {
    targets: BTreeMap<(&'static str, String), Target>,
}

impl Refs {
    /// Records a resource: its ARN from the account, path and name.
    pub fn add(&mut self, kind: Kind, ctx: &AccountContext, path: &str, name: &str) {
        let (written, arn_type) = match kind {
            Kind::Role => ("role", "role"),
            Kind::ManagedPolicy => ("policy", "policy"),
            Kind::User => ("user", "user"),
            Kind::Group => ("group", "group"),
        };
        self.insert(written, arn_type, kind, ctx, path, name);
    }

    /// Records the instance profile a role declares (`instance_profile = true`).
    pub fn add_instance_profile(&mut self, ctx: &AccountContext, path: &str, role: &str) {
        self.insert(
            "instance_profile",
            "instance-profile",
            Kind::Role,
            ctx,
            path,
            role,
        );
    }

    fn insert(
        &mut self,
        written: &'static str,
        arn_type: &str,
        kind: Kind,
        ctx: &AccountContext,
        path: &str,
        name: &str,
    ) {
        let target = Target {
            address: Address::new(&ctx.alias, kind, name),
            arn: ctx.arn(arn_type, path, name),
            name: name.to_string(),
        };
        self.targets
            .insert((written, name.to_ascii_lowercase()), target);
    }

    /// A declared resource of a kind in an account, by name (whether or not its section
    /// built without errors, and wherever in the files it is declared).
    pub fn declared(&self, kind: Kind, account: &str, name: &str) -> Option<&Target> {
        let written = match kind {
            Kind::Role => "role",
            Kind::ManagedPolicy => "policy",
            Kind::User => "user",
            Kind::Group => "group",
        };
        self.targets
            .get(&(written, name.to_ascii_lowercase()))
            .filter(|t| t.address.account == account)
    }

    /// Resolves `KIND.NAME.ATTR` (a name may contain dots). `None`: not a reference form,
    /// so the caller treats it as a variable. `Some(Err((message, help)))`: a reference
    /// that is wrong.
    pub fn lookup(&self, text: &str) -> Option<Result<(&Target, RefAttr), Wrong>> {
        let (kind, rest) = text.split_once('.')?;
        let kind = REF_KINDS.iter().find(|k| **k == kind)?;
        let (name, attr) = rest.rsplit_once('.')?;
        let attr = match attr {
            "arn" if *kind == "instance_profile" => RefAttr::InstanceProfileArn,
            "arn" => RefAttr::Arn,
            "unique_id" if *kind != "instance_profile" => RefAttr::UniqueId,
            other => {
                let has = if *kind == "instance_profile" {
                    "`arn`"
                } else {
                    "`arn` and `unique_id`"
                };
                return Some(Err((
                    format!("`{kind}` has no attribute `{other}`"),
                    format!("a {kind} reference has {has}, e.g. ${{{kind}.{name}.arn}}"),
                )));
            }
        };
        match self.targets.get(&(*kind, name.to_ascii_lowercase())) {
            Some(t) => Some(Ok((t, attr))),
            None => {
                let names = self
                    .targets
                    .iter()
                    .filter(|((k, _), _)| k == kind)
                    .map(|(_, t)| t.name.as_str());
                let help = match super::nearest(name, names) {
                    Some(n) => format!("did you mean ${{{kind}.{n}.arn}}?"),
                    None if *kind == "instance_profile" => {
                        "an instance profile exists for a role with `instance_profile = true`"
                            .into()
                    }
                    None => format!("declare [{kind}.{name}] in the plan"),
                };
                Some(Err((
                    format!(
                        "{} `{name}` is not declared in this plan",
                        kind.replace('_', " ")
                    ),
                    help,
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> AccountContext {
        AccountContext {
            alias: "default".into(),
            account_id: "000000000000".into(),
            partition: "aws".into(),
            region: "us-east-1".into(),
        }
    }

    #[test]
    fn references_resolve_to_plan_arns() {
        let mut refs = Refs::default();
        refs.add(Kind::Role, &ctx(), "/integrations/", "My.Role");
        refs.add_instance_profile(&ctx(), "/", "web");
        let (t, attr) = refs.lookup("role.my.role.arn").unwrap().unwrap();
        assert_eq!(t.arn, "arn:aws:iam::000000000000:role/integrations/My.Role");
        assert_eq!(attr, RefAttr::Arn);
        let (t, _) = refs.lookup("instance_profile.web.arn").unwrap().unwrap();
        assert_eq!(t.arn, "arn:aws:iam::000000000000:instance-profile/web");
        assert!(matches!(
            refs.lookup("role.My.Role.unique_id"),
            Some(Ok((_, RefAttr::UniqueId)))
        ));
        // Not a reference: a variable.
        assert!(refs.lookup("account_id").is_none());
        assert!(refs.lookup("var.x").is_none());
        let (msg, help) = refs.lookup("role.my.rol.arn").unwrap().unwrap_err();
        assert_eq!(msg, "role `my.rol` is not declared in this plan");
        assert_eq!(help, "did you mean ${role.My.Role.arn}?");
        let (msg, _) = refs.lookup("role.My.Role.id").unwrap().unwrap_err();
        assert_eq!(msg, "`role` has no attribute `id`");
    }
}
