//! Outputs: values a plan declares for people and scripts, such as the role ARN and
//! ExternalId to paste into a partner's dashboard. References in them are resolved from
//! live IAM where the resource exists (ARNs as IAM reports them, unique IDs), and from the
//! plan before apply (an ARN is known; a unique ID is not).

use crate::model::{Address, Live, Resource};
use crate::spec::RefAttr;
use serde::{Deserialize, Serialize};

/// A reference to one of the plan's resources inside a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub address: Address,
    pub attr: RefAttr,
    /// The ARN as the plan makes it (known before apply).
    pub plan_arn: String,
    /// As written, without the attribute: `role.ably-integration`.
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(String),
    Ref(Reference),
}

/// `[output.NAME]`, resolved but for references.
#[derive(Debug, Clone)]
pub struct Output {
    pub name: String,
    pub description: Option<String>,
    pub sensitive: bool,
    pub parts: Vec<Part>,
}

/// An output's value as a plan or apply reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputValue {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub sensitive: bool,
    /// The value from live IAM now, if every resource it names exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// After apply. `None`: known only then (a unique ID of a resource not made yet).
    pub value: Option<String>,
}

/// A referenced resource that live IAM does not have.
#[derive(Debug, thiserror::Error)]
#[error("output \"{output}\": {label} does not exist in the account (not applied yet?)")]
pub struct Missing {
    pub output: String,
    pub label: String,
}

impl Output {
    /// Whether the value needs live IAM after apply: a unique ID, which only IAM knows
    /// (an ARN is known from the plan).
    pub fn needs_live(&self) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Ref(r) if r.attr == RefAttr::UniqueId))
    }

    /// The value after apply: ARNs as the plan makes them (apply makes them so), unique
    /// IDs from live IAM; `None` when a part is known only after apply.
    /// `before` is the value live IAM gives now, when the stack has been applied at all
    /// (`applied`): iamplan keeps no record of earlier outputs.
    pub fn planned(&self, live: &Live, applied: bool) -> OutputValue {
        let value = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => Some(t.clone()),
                Part::Ref(r) => match r.attr {
                    RefAttr::Arn | RefAttr::InstanceProfileArn => Some(r.plan_arn.clone()),
                    RefAttr::UniqueId => {
                        live.resources.get(&r.address).map(|l| l.unique_id.clone())
                    }
                },
            })
            .collect::<Option<String>>();
        OutputValue {
            name: self.name.clone(),
            description: self.description.clone(),
            sensitive: self.sensitive,
            before: applied.then(|| self.live(live).ok()).flatten(),
            value,
        }
    }

    /// The value strictly from live IAM (`iamplan output`): every referenced resource
    /// must exist.
    pub fn live(&self, live: &Live) -> Result<String, Missing> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Ref(r) => {
                    let missing = || Missing {
                        output: self.name.clone(),
                        label: r.label.clone(),
                    };
                    let l = live.resources.get(&r.address).ok_or_else(missing)?;
                    out.push_str(match r.attr {
                        RefAttr::Arn => &l.arn,
                        RefAttr::UniqueId => &l.unique_id,
                        // The reference's address is the role; the profile is its own
                        // resource, which may be missing while the role exists.
                        RefAttr::InstanceProfileArn => match &l.resource {
                            Resource::Role(role) => role.instance_profile_arn.as_deref(),
                            _ => None,
                        }
                        .ok_or_else(missing)?,
                    });
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iam::Group;
    use crate::model::{Kind, LiveResource};

    fn output() -> Output {
        let address = Address::new("default", Kind::Group, "ops");
        let r = |attr| {
            Part::Ref(Reference {
                address: address.clone(),
                attr,
                plan_arn: "arn:aws:iam::000000000000:group/ops".into(),
                label: "group.ops".into(),
            })
        };
        Output {
            name: "ops".into(),
            description: None,
            sensitive: false,
            parts: vec![
                r(RefAttr::Arn),
                Part::Text(" ".into()),
                r(RefAttr::UniqueId),
            ],
        }
    }

    #[test]
    fn values_come_from_live_iam_then_from_the_plan() {
        let o = output();
        let empty = Live::default();
        assert_eq!(
            o.planned(&empty, false).value,
            None,
            "a unique ID needs live IAM"
        );
        assert_eq!(o.live(&empty).unwrap_err().label, "group.ops");
        let mut live = Live::default();
        live.resources.insert(
            Address::new("default", Kind::Group, "ops"),
            LiveResource {
                resource: Resource::Group(Group {
                    name: "ops".into(),
                    path: "/teams/".into(),
                    inline: Default::default(),
                    managed: Default::default(),
                }),
                arn: "arn:aws:iam::000000000000:group/teams/ops".into(),
                unique_id: "AGPAEXAMPLE".into(),
                owner: None,
            },
        );
        // After apply the group is where the plan puts it; now it is where IAM has it.
        let after = "arn:aws:iam::000000000000:group/ops AGPAEXAMPLE";
        let now = "arn:aws:iam::000000000000:group/teams/ops AGPAEXAMPLE";
        let planned = o.planned(&live, true);
        assert_eq!(planned.value.as_deref(), Some(after));
        assert_eq!(planned.before.as_deref(), Some(now));
        assert_eq!(o.live(&live).unwrap(), now);
    }

    #[test]
    fn an_instance_profile_reference_is_the_profile_not_its_role() {
        let address = Address::new("default", Kind::Role, "web");
        let o = Output {
            name: "profile".into(),
            description: None,
            sensitive: false,
            parts: vec![Part::Ref(Reference {
                address: address.clone(),
                attr: RefAttr::InstanceProfileArn,
                plan_arn: "arn:aws:iam::000000000000:instance-profile/app/web".into(),
                label: "instance_profile.web".into(),
            })],
        };
        let mut role = crate::iam::Role {
            name: "web".into(),
            path: "/app/".into(),
            description: String::new(),
            max_session_duration: 3600,
            permissions_boundary: None,
            tags: Default::default(),
            trust: crate::policy::PolicyDocument::from_live("{}", "aws").unwrap(),
            inline: Default::default(),
            managed: Default::default(),
            instance_profile: false,
            instance_profiles: vec![],
            instance_profile_arn: None,
            broken_principals: vec![],
        };
        let live_with = |role: &crate::iam::Role| {
            let mut live = Live::default();
            live.resources.insert(
                address.clone(),
                LiveResource {
                    resource: Resource::Role(role.clone()),
                    arn: "arn:aws:iam::000000000000:role/app/web".into(),
                    unique_id: "AROAEXAMPLE".into(),
                    owner: None,
                },
            );
            live
        };
        // The role exists, its profile not yet: missing, not the role's ARN.
        let live = live_with(&role);
        assert_eq!(o.live(&live).unwrap_err().label, "instance_profile.web");
        role.instance_profile = true;
        role.instance_profile_arn =
            Some("arn:aws:iam::000000000000:instance-profile/app/web".into());
        let live = live_with(&role);
        let want = "arn:aws:iam::000000000000:instance-profile/app/web";
        assert_eq!(o.live(&live).unwrap(), want);
        let planned = o.planned(&live, true);
        assert_eq!(planned.before.as_deref(), Some(want));
        assert_eq!(planned.value.as_deref(), Some(want), "no change to show");
    }
}
