//! `iamplan export`: live IAM -> plan files that read like hand-written ones and plan
//! cleanly. Pure: it works on the live state the plan's own read returns; the command
//! (`cli/export.rs`) reads the account, verifies the files by planning them, and writes.
//!
//! How a resource is written: `render.rs` (one kind per function); which trust policies
//! become helpers: `trust.rs`.

mod render;
mod trust;

use crate::lint::db::glob;
use crate::model::{AccountContext, Address, Kind, Live, LiveResource, Resource};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Which live resources to export.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Kinds to export; empty: all.
    pub kinds: BTreeSet<Kind>,
    /// Name globs (`*`, `?`), any of which must match; empty: all.
    pub names: Vec<String>,
    /// Path prefix, e.g. `/integrations/`.
    pub path: Option<String>,
    /// Tags that must all be set (roles and users: IAM's read returns no policy tags, and
    /// groups have none).
    pub tags: BTreeMap<String, String>,
    /// Export what this stack owns, instead of what no stack owns.
    pub owned_by: Option<String>,
}

/// One plan file of the export.
#[derive(Debug, Clone, Serialize)]
pub struct File {
    pub name: String,
    pub text: String,
}

/// Something live the export leaves out or cannot express; the files are partial then.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Gap {
    /// `role.NAME` etc.
    pub resource: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Export {
    pub stack: String,
    pub files: Vec<File>,
    /// Resources exported, by address.
    pub resources: Vec<Address>,
    /// Left out on purpose (service-linked roles), with why.
    pub skipped: Vec<Gap>,
    /// What the files cannot represent: the export is partial.
    pub unrepresentable: Vec<Gap>,
}

/// Options of the rendering that the command's verification may change per resource.
#[derive(Debug, Clone, Default)]
pub struct Forced {
    /// Roles whose trust policy is written as a document even where helpers fit.
    pub trust_documents: BTreeSet<Address>,
}

impl Selection {
    fn wants(&self, lr: &LiveResource) -> Result<bool, Gap> {
        let r = &lr.resource;
        // A stack's lock (a policy of iamplan's own while an apply runs) is no resource.
        if r.kind() == Kind::ManagedPolicy && crate::aws::lock::is_lock(r.name()) {
            return Ok(false);
        }
        if !self.kinds.is_empty() && !self.kinds.contains(&r.kind()) {
            return Ok(false);
        }
        if !self.names.is_empty() && !self.names.iter().any(|g| glob(g, r.name())) {
            return Ok(false);
        }
        if let Some(p) = &self.path
            && !r.path().starts_with(p.as_str())
        {
            return Ok(false);
        }
        if !self.tags.is_empty() {
            let tags = match r {
                Resource::Role(x) => Some(&x.tags),
                Resource::User(x) => Some(&x.tags),
                _ => None,
            };
            let all = tags.is_some_and(|t| self.tags.iter().all(|(k, v)| t.get(k) == Some(v)));
            if !all {
                return Ok(false);
            }
        }
        if lr.owner != self.owned_by {
            return Ok(false);
        }
        if r.path().starts_with("/aws-service-role/") {
            return Err(Gap {
                resource: format!("{}.{}", r.kind().label(), r.name()),
                reason: "a service-linked role: AWS makes and changes it, so it is not exported"
                    .into(),
            });
        }
        Ok(true)
    }
}

/// The live resources of one account that the selection names, and those it skips.
pub fn select<'a>(
    live: &'a Live,
    account: &str,
    sel: &Selection,
) -> (Vec<(&'a Address, &'a LiveResource)>, Vec<Gap>) {
    let mut chosen = Vec::new();
    let mut skipped = Vec::new();
    for (addr, lr) in &live.resources {
        if addr.account != account {
            continue;
        }
        match sel.wants(lr) {
            Ok(true) => chosen.push((addr, lr)),
            Ok(false) => {}
            Err(gap) => skipped.push(gap),
        }
    }
    (chosen, skipped)
}

/// The plan files for the chosen resources of one account.
pub fn export(
    stack: &str,
    ctx: &AccountContext,
    chosen: &[(&Address, &LiveResource)],
    skipped: Vec<Gap>,
    forced: &Forced,
) -> Export {
    let names = render::Names::new(ctx, chosen);
    let mut out = render::Out::default();
    for (addr, lr) in chosen {
        match &lr.resource {
            Resource::ManagedPolicy(p) => render::policy(&mut out, &names, p),
            Resource::Role(r) => {
                render::role(&mut out, &names, r, forced.trust_documents.contains(*addr))
            }
            Resource::User(u) => render::user(&mut out, &names, u),
            Resource::Group(g) => render::group(&mut out, &names, g),
        }
    }
    Export {
        stack: stack.to_string(),
        files: out.files(stack, ctx),
        resources: chosen.iter().map(|(a, _)| (*a).clone()).collect(),
        skipped,
        unrepresentable: out.gaps,
    }
}

/// A resource whose exported section does not plan as a pure adoption, with what the plan
/// would change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub address: Address,
    pub what: String,
}

/// Plans the exported files against the live state they came from: each exported
/// resource must come out as an adoption (or no change) and nothing else.
pub fn verify(
    e: &Export,
    live: &Live,
    ctx: &AccountContext,
) -> Result<Vec<Mismatch>, crate::spec::SpecErrors> {
    let text: Vec<&str> = e.files.iter().map(|f| f.text.as_str()).collect();
    let spec = crate::spec::parse_str(std::path::Path::new("exported.toml"), &text.join("\n"))?;
    let contexts = BTreeMap::from([(ctx.alias.clone(), ctx.clone())]);
    let desired = spec.build(&contexts)?;
    let opts = crate::diff::Options {
        adopt_all: true,
        ..Default::default()
    };
    let d = crate::diff::diff(&desired, live, &opts);
    let exported: BTreeSet<&Address> = e.resources.iter().collect();
    let mut out = Vec::new();
    for c in d.changes.iter().filter(|c| exported.contains(&c.address)) {
        use crate::plan::Action;
        // Adoption adds the ownership marker (the `owner` attribute, with a note where the
        // marker is limited); anything else is a difference the export failed to carry.
        let changed: Vec<String> = c
            .attributes
            .iter()
            .filter(|a| a.name != "owner")
            .map(|a| a.name.clone())
            .chain(c.documents.iter().map(|d| d.label.clone()))
            .collect();
        let clean = matches!(c.action, Action::Adopt | Action::NoOp)
            && changed.is_empty()
            && c.keys.is_empty();
        if !clean {
            let what = changed;
            out.push(Mismatch {
                address: c.address.clone(),
                what: format!("{:?}: {}", c.action, what.join(", ")),
            });
        }
    }
    for c in d.conflicts.iter().filter(|c| exported.contains(&c.address)) {
        out.push(Mismatch {
            address: c.address.clone(),
            what: c.message.clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DEFAULT_ACCOUNT;

    /// Every example plan, as if made by hand (no owner), exports to files that plan as
    /// adoptions only.
    #[test]
    fn every_example_exports_and_plans_as_adoptions_only() {
        let contexts = crate::model::test_accounts("us-east-1");
        let ctx = &contexts[DEFAULT_ACCOUNT];
        for entry in std::fs::read_dir("plans").unwrap() {
            let dir = entry.unwrap().path();
            let spec = crate::spec::load(std::slice::from_ref(&dir)).unwrap();
            let accounts = spec.accounts().unwrap();
            let contexts: BTreeMap<String, AccountContext> = accounts
                .keys()
                .map(|a| {
                    let mut c = ctx.clone();
                    c.alias = a.clone();
                    if a != DEFAULT_ACCOUNT {
                        c.account_id = "111122223333".into();
                    }
                    (a.clone(), c)
                })
                .collect();
            let desired = spec.build(&contexts).unwrap();
            let live = Live::from_desired(&desired, None);
            let (chosen, skipped) = select(&live, DEFAULT_ACCOUNT, &Selection::default());
            let e = export("adopted", ctx, &chosen, skipped, &Forced::default());
            assert!(
                e.unrepresentable.is_empty(),
                "{}: {:?}",
                dir.display(),
                e.unrepresentable
            );
            let bad = verify(&e, &live, ctx).unwrap_or_else(|err| {
                let all: Vec<String> = e.files.iter().map(|f| f.text.clone()).collect();
                panic!("{}: {err}\n{}", dir.display(), all.join("\n"))
            });
            assert!(bad.is_empty(), "{}: {bad:?}", dir.display());
        }
    }

    #[test]
    fn trust_helpers_where_they_fit_and_names_for_exported_resources() {
        let src = r#"
[stack]
name = "hand-made"
[policy.invoke]
[[policy.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:aws:lambda:us-east-1:000000000000:function:f"
[role.partner]
path = "/integrations/"
managed_policies = ["invoke"]
tags = { team = "data" }
[role.partner.trust]
accounts = ["203461409171"]
external_id = "a1b2.demo"
session_tags = true
[role.odd.trust]
document = '{"Version":"2012-10-17","Statement":[{"Sid":"X","Effect":"Allow","Principal":{"AWS":"203461409171"},"Action":"sts:AssumeRole"}]}'
"#;
        let contexts = crate::model::test_accounts("us-east-1");
        let spec = crate::spec::parse_str(std::path::Path::new("t.toml"), src).unwrap();
        let live = Live::from_desired(&spec.build(&contexts).unwrap(), None);
        let ctx = &contexts[DEFAULT_ACCOUNT];
        let (chosen, skipped) = select(&live, DEFAULT_ACCOUNT, &Selection::default());
        let e = export("s", ctx, &chosen, skipped, &Forced::default());
        let roles = &e
            .files
            .iter()
            .find(|f| f.name == "roles.toml")
            .unwrap()
            .text;
        assert!(
            roles.contains("[role.partner]\npath = \"/integrations/\"\nmanaged_policies = [\"invoke\"]\ntags = { team = \"data\" }\nadopt = true\n\n[role.partner.trust]\naccounts = [\"203461409171\"]\nexternal_id = \"a1b2.demo\"\nsession_tags = true\n"),
            "{roles}"
        );
        // A Sid is not something the helpers write: statements.
        assert!(roles.contains("[[role.odd.trust.statement]]\nsid = \"X\"\naction = \"sts:AssumeRole\"\nprincipal = { AWS = \"203461409171\" }\n"), "{roles}");
        let policies = &e
            .files
            .iter()
            .find(|f| f.name == "policies.toml")
            .unwrap()
            .text;
        assert!(
            policies.contains(
                "resource = \"arn:${partition}:lambda:${region}:${account_id}:function:f\""
            ),
            "{policies}"
        );
        assert!(verify(&e, &live, ctx).unwrap().is_empty());
    }

    #[test]
    fn selection_by_kind_name_path_tag_and_owner_and_service_linked_roles() {
        let src = "[stack]\nname = \"x\"\n[role.a1]\npath = \"/integrations/\"\ntags = { team = \"data\" }\n[role.a1.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.b2.trust]\nservices = [\"ec2.amazonaws.com\"]\n[role.AWSServiceRoleForX]\npath = \"/aws-service-role/x.amazonaws.com/\"\n[role.AWSServiceRoleForX.trust]\nservices = [\"x.amazonaws.com\"]\n[group.g]\n";
        let contexts = crate::model::test_accounts("us-east-1");
        let spec = crate::spec::parse_str(std::path::Path::new("t.toml"), src).unwrap();
        let live = Live::from_desired(&spec.build(&contexts).unwrap(), None);
        let names = |sel: &Selection| {
            let (chosen, skipped) = select(&live, DEFAULT_ACCOUNT, sel);
            let n: Vec<String> = chosen.iter().map(|(a, _)| a.key.clone()).collect();
            (n, skipped.len())
        };
        assert_eq!(
            names(&Selection::default()),
            (vec!["a1".into(), "b2".into(), "g".into()], 1)
        );
        let roles = Selection {
            kinds: BTreeSet::from([Kind::Role]),
            ..Default::default()
        };
        assert_eq!(names(&roles).0, ["a1", "b2"]);
        let glob = Selection {
            names: vec!["A*".into()],
            ..Default::default()
        };
        assert_eq!(names(&glob).0, ["a1"]);
        let path = Selection {
            path: Some("/integrations/".into()),
            ..Default::default()
        };
        assert_eq!(names(&path).0, ["a1"]);
        let tag = Selection {
            tags: BTreeMap::from([("team".into(), "data".into())]),
            ..Default::default()
        };
        assert_eq!(names(&tag).0, ["a1"]);
        let owned = Selection {
            owned_by: Some("other".into()),
            ..Default::default()
        };
        assert_eq!(names(&owned).0, Vec::<String>::new());
    }

    #[test]
    fn what_plan_files_cannot_say_is_reported() {
        let src = r#"
[stack]
name = "hand-made"
[policy.odd]
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}'
[role.web]
instance_profile = true
[role.web.trust]
services = ["ec2.amazonaws.com"]
"#;
        let contexts = crate::model::test_accounts("us-east-1");
        let spec = crate::spec::parse_str(std::path::Path::new("t.toml"), src).unwrap();
        let mut live = Live::from_desired(&spec.build(&contexts).unwrap(), None);
        for lr in live.resources.values_mut() {
            match &mut lr.resource {
                // Text iamplan would read as its own variable.
                Resource::ManagedPolicy(p) => {
                    p.document = crate::policy::PolicyDocument::from_value(
                        serde_json::json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${bucket_key}"}]}),
                        "aws",
                    )
                }
                // A second instance profile and a deleted principal in the trust policy.
                Resource::Role(r) => {
                    r.instance_profiles = vec!["web".into(), "web-old".into()];
                    r.broken_principals = vec!["AROAEXAMPLEID00000001".into()];
                }
                _ => {}
            }
        }
        let ctx = &contexts[DEFAULT_ACCOUNT];
        let (chosen, skipped) = select(&live, DEFAULT_ACCOUNT, &Selection::default());
        let e = export("s", ctx, &chosen, skipped, &Forced::default());
        let gaps: Vec<(&str, &str)> = e
            .unrepresentable
            .iter()
            .map(|g| {
                (
                    g.resource.as_str(),
                    g.reason.split(':').next().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            gaps,
            [
                ("policy.odd", "the text \"arn"),
                ("role.web", "the instance profile web-old holds the role"),
                (
                    "role.web",
                    "the trust policy names AROAEXAMPLEID00000001, the unique ID IAM shows for a deleted role or user"
                ),
            ],
            "{:?}",
            e.unrepresentable
        );
        // IAM's own variables (with a colon) are fine.
        let ok = "arn:aws:s3:::b/${aws:username}/*";
        let names = render::Names::new(ctx, &[]);
        let mut g = render::Gaps::default();
        assert_eq!(
            names.text(ok, &mut g),
            "arn:${partition}:s3:::b/${aws:username}/*"
        );
    }

    /// A deleted principal's unique ID in a live trust policy is left out of the exported
    /// files (plan files refuse it), which still read and plan.
    #[test]
    fn a_deleted_principal_is_left_out_of_the_exported_trust() {
        let src = r#"
[stack]
name = "hand-made"
[role.web.trust]
accounts = ["203461409171"]
"#;
        let contexts = crate::model::test_accounts("us-east-1");
        let spec = crate::spec::parse_str(std::path::Path::new("t.toml"), src).unwrap();
        let mut live = Live::from_desired(&spec.build(&contexts).unwrap(), None);
        for lr in live.resources.values_mut() {
            if let Resource::Role(r) = &mut lr.resource {
                r.trust = crate::policy::PolicyDocument::from_value(
                    serde_json::json!({"Version":"2012-10-17","Statement":[
                        {"Effect":"Allow","Principal":{"AWS":["AROAEXAMPLEID00000001","arn:aws:iam::203461409171:root"]},"Action":"sts:AssumeRole"},
                        {"Effect":"Allow","Principal":{"AWS":"AIDAEXAMPLEID00000002"},"Action":"sts:AssumeRole"}]}),
                    "aws",
                );
                r.broken_principals = vec![
                    "AROAEXAMPLEID00000001".into(),
                    "AIDAEXAMPLEID00000002".into(),
                ];
            }
        }
        let ctx = &contexts[DEFAULT_ACCOUNT];
        let (chosen, skipped) = select(&live, DEFAULT_ACCOUNT, &Selection::default());
        let e = export("s", ctx, &chosen, skipped, &Forced::default());
        let text: String = e.files.iter().map(|f| f.text.as_str()).collect();
        assert!(!text.contains("EXAMPLEID"), "{text}");
        assert!(text.contains("203461409171"), "{text}");
        assert_eq!(e.unrepresentable.len(), 2, "{:?}", e.unrepresentable);
        // The files build; the trust policy differs from live (the plan drops the IDs).
        let mismatches = verify(&e, &live, ctx).expect("the exported files are valid");
        assert_eq!(mismatches.len(), 1, "{mismatches:?}");
    }
}
