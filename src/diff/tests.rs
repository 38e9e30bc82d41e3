use super::*;
use crate::iam::Role;
use crate::iam::managed_policy::PolicyVersion;
use crate::model::Kind;
use crate::ownership::OWNER_TAG;
use crate::policy::PolicyDocument;
use crate::spec;
use std::path::Path;

fn ctx() -> BTreeMap<String, AccountContext> {
    crate::model::test_accounts("us-east-1")
}

fn desired(src: &str) -> Desired {
    let s = spec::parse_str(Path::new("t.toml"), src).unwrap();
    s.build(&ctx()).unwrap()
}

const PLAN: &str = r#"
[stack]
name = "demo"
[policy.invoke]
[[policy.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:aws:lambda:us-east-1:000000000000:function:f"
[role.ably]
managed_policies = ["invoke"]
tags = { team = "data" }
[role.ably.trust]
accounts = ["203461409171"]
external_id = "x.y"
[role.ably.inline.logs]
document = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"*"}]}'
"#;

/// Live state equal to what applying `d` would create, owned by `owner`.
fn live_from(d: &Desired, owner: Option<&str>) -> Live {
    Live::from_desired(d, owner)
}

fn opts() -> Options {
    Options::default()
}

fn role_mut<'a>(live: &'a mut Live, name: &str) -> &'a mut Role {
    match &mut live
        .resources
        .get_mut(&Address::new("default", Kind::Role, name))
        .unwrap()
        .resource
    {
        Resource::Role(r) => r,
        _ => panic!(),
    }
}

#[test]
fn creates_in_dependency_order() {
    let d = desired(PLAN);
    let diff = diff(&d, &Live::default(), &opts());
    assert_eq!(diff.changes.len(), 2);
    assert!(diff.changes.iter().all(|c| c.action == Action::Create));
    let names: Vec<&str> = diff.steps.iter().map(|s| s.op.name()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("CreatePolicy") < pos("CreateRole"));
    assert!(pos("CreateRole") < pos("AttachRolePolicy"));
    assert!(pos("CreateRole") < pos("PutRolePolicy"));
    let Op::CreateRole { tags, .. } = &diff.steps[pos("CreateRole")].op else {
        panic!()
    };
    assert_eq!(tags.get(OWNER_TAG).map(String::as_str), Some("demo"));
}

#[test]
fn no_changes_when_live_matches_in_another_form() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    let trust = serde_json::json!({"Statement":[{"Action":["sts:assumerole"],"Effect":"Allow",
        "Condition":{"StringEquals":{"STS:ExternalId":["x.y"]}},"Principal":{"AWS":["203461409171"]}}],"Version":"2012-10-17"});
    role_mut(&mut live, "ably").trust = PolicyDocument::from_value(trust, "aws");
    let diff = diff(&d, &live, &opts());
    assert!(diff.changes.is_empty(), "{:#?}", diff.changes);
    assert!(diff.steps.is_empty());
}

#[test]
fn real_change_is_an_update_with_a_document_diff() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    let r = role_mut(&mut live, "ably");
    r.trust = PolicyDocument::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"111111111111"},"Action":"sts:AssumeRole"}]}"#, "aws").unwrap();
    r.tags.insert("extra".into(), "1".into());
    r.max_session_duration = 7200;
    let diff = diff(&d, &live, &opts());
    assert_eq!(diff.changes.len(), 1);
    let c = &diff.changes[0];
    assert_eq!(c.action, Action::Update);
    assert_eq!(c.documents[0].label, "trust policy");
    let ops: BTreeSet<&str> = diff.steps.iter().map(|s| s.op.name()).collect();
    assert_eq!(
        ops,
        BTreeSet::from(["UpdateAssumeRolePolicy", "UntagRole", "UpdateRole"])
    );
}

#[test]
fn deletes_only_what_the_stack_owns() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    let mut other = live_from(&d, None);
    for (a, mut l) in std::mem::take(&mut other.resources) {
        if let Resource::Role(r) = &mut l.resource {
            r.name = "unowned".into();
        }
        if a.kind == Kind::Role {
            live.resources
                .insert(Address::new("default", Kind::Role, "unowned"), l);
        }
    }
    let empty = desired("[stack]\nname = \"demo\"\n");
    let diff = diff(&empty, &live, &opts());
    let deleted: Vec<&str> = diff.changes.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(deleted, vec!["invoke", "ably"]);
    let names: Vec<&str> = diff.steps.iter().map(|s| s.op.name()).collect();
    let pos = |n: &str| names.iter().position(|x| *x == n).unwrap();
    assert!(pos("DetachRolePolicy") < pos("DeleteRole"));
    assert!(pos("DeleteRolePolicy") < pos("DeleteRole"));
    assert!(pos("DeleteRole") < pos("DeletePolicy"));
}

#[test]
fn unowned_same_name_is_a_conflict_until_adopted() {
    let d = desired(PLAN);
    let live = live_from(&d, None);
    let diff1 = diff(&d, &live, &opts());
    assert_eq!(diff1.conflicts.len(), 2);
    assert!(diff1.steps.is_empty());
    assert!(diff1.conflicts[0].message.contains("adopt = true"));
    let diff2 = diff(
        &d,
        &live,
        &Options {
            adopt_all: true,
            ..Options::default()
        },
    );
    assert!(diff2.conflicts.is_empty());
    assert!(diff2.changes.iter().all(|c| c.action == Action::Adopt));
    assert!(diff2.steps.iter().any(|s| matches!(&s.op, Op::TagRole { tags, .. } if tags.get(OWNER_TAG).map(String::as_str) == Some("demo"))));
}

#[test]
fn other_stacks_resources_are_conflicts_even_with_adopt() {
    let d = desired(PLAN);
    let live = live_from(&d, Some("other"));
    let diff = diff(
        &d,
        &live,
        &Options {
            adopt_all: true,
            ..Options::default()
        },
    );
    assert_eq!(diff.conflicts.len(), 2);
    assert!(
        diff.conflicts[0]
            .message
            .contains("belongs to stack \"other\"")
    );
}

#[test]
fn policy_update_prunes_the_oldest_non_default_version_at_the_limit() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    let p = live
        .resources
        .get_mut(&Address::new("default", Kind::ManagedPolicy, "invoke"))
        .unwrap();
    if let Resource::ManagedPolicy(m) = &mut p.resource {
        m.versions = (1..=5)
            .map(|i| PolicyVersion {
                id: format!("v{i}"),
                is_default: i == 5,
                created: i.to_string(),
            })
            .collect();
        m.versions.sort_by(|a, b| {
            b.is_default
                .cmp(&a.is_default)
                .then(a.created.cmp(&b.created))
        });
        m.document = PolicyDocument::parse(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#, "aws").unwrap();
    }
    let diff = diff(&d, &live, &opts());
    let ops: Vec<String> = diff.steps.iter().map(|s| s.op.to_string()).collect();
    assert_eq!(
        ops,
        vec![
            "DeletePolicyVersion policy arn:aws:iam::000000000000:policy/invoke version v1"
                .to_string(),
            "CreatePolicyVersion policy arn:aws:iam::000000000000:policy/invoke".to_string(),
        ]
    );
}

#[test]
fn path_change_replaces_the_role_delete_first() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    role_mut(&mut live, "ably").path = "/old/".into();
    let diff = diff(&d, &live, &opts());
    let c = diff.changes.iter().find(|c| c.name == "ably").unwrap();
    assert_eq!(c.action, Action::Replace);
    assert!(c.attributes[0].forces_replacement);
    let names: Vec<&str> = diff.steps.iter().map(|s| s.op.name()).collect();
    assert!(
        names.iter().position(|n| *n == "DeleteRole")
            < names.iter().position(|n| *n == "CreateRole")
    );
}

#[test]
fn deleted_principal_is_reported_and_repaired() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    role_mut(&mut live, "ably").broken_principals = vec!["AROAEXAMPLE123456789".into()];
    let diff = diff(&d, &live, &opts());
    assert!(diff.changes[0].notes[0].contains("AROAEXAMPLE123456789"));
    assert!(
        diff.steps
            .iter()
            .any(|s| s.op.name() == "UpdateAssumeRolePolicy")
    );
}

#[test]
fn fingerprint_changes_with_live_state() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    let a = live_fingerprint(&d.stack, d.resources.keys(), &live);
    role_mut(&mut live, "ably").description = "changed".into();
    assert_ne!(a, live_fingerprint(&d.stack, d.resources.keys(), &live));
}

/// A document's parse is cached on first use (rendering a plan fills it): the fingerprint
/// of the same live state must not depend on whether it was (issue 20: every saved plan
/// of an update was refused as "changed").
#[test]
fn fingerprint_ignores_whether_documents_were_parsed() {
    let d = desired(PLAN);
    let live = live_from(&d, Some("demo"));
    let before = live_fingerprint(&d.stack, d.resources.keys(), &live);
    for lr in live.resources.values() {
        match &lr.resource {
            Resource::Role(r) => {
                r.trust.value();
                r.inline.values().for_each(|doc| {
                    doc.value();
                });
            }
            Resource::ManagedPolicy(p) => {
                p.document.value();
            }
            _ => {}
        }
    }
    assert_eq!(
        before,
        live_fingerprint(&d.stack, d.resources.keys(), &live)
    );
}

/// Deleting a policy that a role outside the stack attaches is a conflict naming the role:
/// IAM would refuse the deletion on every apply.
#[test]
fn deleting_a_policy_attached_outside_the_stack_is_a_conflict() {
    let d = desired(PLAN);
    let mut live = live_from(&d, Some("demo"));
    let mut outsider = live.resources[&Address::new("default", Kind::Role, "ably")].clone();
    if let Resource::Role(r) = &mut outsider.resource {
        r.name = "outsider".into();
    }
    outsider.owner = Some("other".into());
    live.resources
        .insert(Address::new("default", Kind::Role, "outsider"), outsider);
    let without_policy = desired(&PLAN.replace("managed_policies = [\"invoke\"]\n", "").replace(
        "[policy.invoke]\n[[policy.invoke.statement]]\naction = \"lambda:InvokeFunction\"\nresource = \"arn:aws:lambda:us-east-1:000000000000:function:f\"\n",
        "",
    ));
    assert!(
        !without_policy
            .resources
            .keys()
            .any(|a| a.kind == Kind::ManagedPolicy)
    );
    let out = diff(&without_policy, &live, &opts());
    assert_eq!(out.conflicts.len(), 1, "{:?}", out.conflicts);
    assert_eq!(
        out.conflicts[0].message,
        "this plan deletes the policy, but role \"outsider\" (stack \"other\") is attached to it outside this stack; IAM refuses to delete an attached policy: detach it there first, or keep the policy in the plan"
    );
    // The stack's own role detaches it in the same apply: no conflict.
    let own = diff(&without_policy, &live_from(&d, Some("demo")), &opts());
    assert!(own.conflicts.is_empty(), "{:?}", own.conflicts);
}

#[test]
fn a_user_in_a_group_that_exists_nowhere_is_a_conflict() {
    let src = "[stack]\nname = \"demo\"\n[user.robot]\ngroups = [\"deployers\", \"readers\"]\n[group.readers]\n";
    let d = desired(src);
    let none = diff(&d, &Live::default(), &opts());
    assert_eq!(none.conflicts.len(), 1, "{:?}", none.conflicts);
    assert!(
        none.conflicts[0].message.starts_with(
            "user \"robot\" joins group \"deployers\", which neither the plan nor the account has"
        ),
        "{}",
        none.conflicts[0].message
    );
    // A group that exists in the account, owned by no stack, is fine to join.
    let with_group = desired("[stack]\nname = \"other\"\n[group.deployers]\n");
    let live = Live::from_desired(&with_group, None);
    assert!(diff(&d, &live, &opts()).conflicts.is_empty());
}

/// A crash between CreateGroup and its marker policy leaves an empty, unmarked group: the
/// run that takes over the dead run's lock adopts it instead of refusing (an empty group
/// grants nothing to anyone). A group with members or policies stays a conflict, and
/// without a crash an unmarked group is always one.
#[test]
fn an_empty_unmarked_group_is_adopted_but_a_used_one_is_a_conflict() {
    let d = desired(
        "[stack]\nname = \"demo\"\n[group.deployers]\nmanaged_policies = [\"arn:aws:iam::aws:policy/ReadOnlyAccess\"]\n",
    );
    let empty = desired("[stack]\nname = \"x\"\n[group.deployers]\n");
    let live = Live::from_desired(&empty, None);
    // Only after a crash of this stack's previous run.
    assert_eq!(diff(&d, &live, &opts()).conflicts.len(), 1);
    let recovering = Options {
        recovering: true,
        ..opts()
    };
    let plan = diff(&d, &live, &recovering);
    assert!(plan.conflicts.is_empty(), "{:?}", plan.conflicts);
    assert_eq!(plan.changes[0].action, Action::Adopt);
    let used = desired(
        "[stack]\nname = \"x\"\n[group.deployers]\n[user.someone]\ngroups = [\"deployers\"]\n",
    );
    let live = Live::from_desired(&used, None);
    assert_eq!(diff(&d, &live, &recovering).conflicts.len(), 1);
}
