//! Golden tests: the rendered plan (text and JSON) of each example in `plans/` against a
//! recorded account, and the whole error text of bad plan files. No emulator: the desired
//! state is built with fixed account IDs and the live state is a fixture.
//!
//! Fixtures are in `tests/golden/`; review them as text. After an intended change, rewrite
//! them with `UPDATE_GOLDEN=1 cargo test --test golden` and read the diff before committing.

use iamplan::diff::{self, Options};
use iamplan::keys::KeyContext;
use iamplan::model::{AccountContext, DEFAULT_ACCOUNT, Desired, Live};
use iamplan::plan::json::JsonPlan;
use iamplan::plan::{Plan, Style, render};
use iamplan::spec;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const GOLDEN: &str = "tests/golden";

/// A fixed point in time, so that key ages and rotation dates do not drift.
const NOW: i64 = 1_800_000_000; // 2027-01-15T08:00:00Z

/// Account IDs for every alias a plan names (the default one is the emulators').
fn contexts(aliases: impl IntoIterator<Item = String>) -> BTreeMap<String, AccountContext> {
    aliases
        .into_iter()
        .enumerate()
        .map(|(i, alias)| {
            let account_id = if alias == DEFAULT_ACCOUNT {
                "000000000000".to_string()
            } else {
                format!("{:012}", 111_122_223_333u64 + i as u64)
            };
            let ctx = AccountContext {
                alias: alias.clone(),
                account_id,
                partition: "aws".into(),
                region: "us-east-1".into(),
            };
            (alias, ctx)
        })
        .collect()
}

fn build(paths: &[PathBuf]) -> Result<Desired, spec::SpecErrors> {
    let spec = spec::load(paths)?;
    let accounts = spec.accounts()?;
    spec.build(&contexts(accounts.into_keys()))
}

fn options(now: i64) -> Options {
    Options {
        keys: KeyContext {
            now,
            ..KeyContext::default()
        },
        snapshots: true,
        ..Options::default()
    }
}

fn plan_of(desired: &Desired, live: &Live) -> Plan {
    plan_with(desired, live, &options(NOW))
}

fn plan_with(desired: &Desired, live: &Live, opts: &Options) -> Plan {
    let d = diff::diff(desired, live, opts);
    let accounts = desired
        .accounts
        .iter()
        .map(|(k, c)| iamplan::plan::PlanAccount {
            alias: k.clone(),
            account_id: c.account_id.clone(),
            caller_arn: String::new(),
        })
        .collect();
    let mut plan = Plan::new(desired.stack.clone(), accounts, Default::default(), d);
    let applied = live.has_stack(&desired.stack);
    plan.outputs = desired
        .outputs
        .iter()
        .map(|o| o.planned(live, applied))
        .collect();
    plan
}

/// Compares `actual` with the fixture `name`, or rewrites it under UPDATE_GOLDEN=1.
fn check(name: &str, actual: &str, failures: &mut Vec<String>) {
    // Sink paths are absolute: the checkout's own path is not part of the fixture.
    let repo = std::env::current_dir().unwrap();
    let actual = actual.replace(repo.to_str().unwrap(), "<repo>");
    let actual = actual.as_str();
    let path = Path::new(GOLDEN).join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    match std::fs::read_to_string(&path) {
        Ok(expected) if expected == actual => {}
        Ok(expected) => {
            let first = expected
                .lines()
                .zip(actual.lines())
                .position(|(e, a)| e != a)
                .unwrap_or(expected.lines().count().min(actual.lines().count()));
            failures.push(format!(
                "{} differs from the output, first at line {}:\n  expected: {:?}\n  actual:   {:?}",
                path.display(),
                first + 1,
                expected.lines().nth(first).unwrap_or("<end>"),
                actual.lines().nth(first).unwrap_or("<end>"),
            ));
        }
        Err(e) => failures.push(format!(
            "{}: {e} (write it with UPDATE_GOLDEN=1 and review it)",
            path.display()
        )),
    }
}

fn finish(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{}\n\nIf the change is intended: UPDATE_GOLDEN=1 cargo test --test golden, then review the diff",
        failures.join("\n\n")
    );
}

fn examples() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("plans")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 6, "the examples in plans/: {names:?}");
    names
}

/// The `*.toml` files of a fixture folder, sorted.
fn toml_files(folder: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(GOLDEN).join(folder))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// The plan as text and as JSON, against the fixtures `NAME.txt` and `NAME.json`; the JSON
/// plan also against its documented schema.
fn check_plan(name: &str, plan: &Plan, failures: &mut Vec<String>) {
    let text = render(plan, Style { color: false });
    check(&format!("{name}.txt"), &text, failures);
    let value = serde_json::to_value(JsonPlan::new(plan)).unwrap();
    for e in schema().iter_errors(&value) {
        failures.push(format!(
            "{name}: the JSON plan breaks docs/json-plan.schema.json at {}: {e}",
            e.instance_path()
        ));
    }
    let json = serde_json::to_string_pretty(&value).unwrap() + "\n";
    check(&format!("{name}.json"), &json, failures);
}

fn schema() -> jsonschema::Validator {
    let text = std::fs::read_to_string("docs/json-plan.schema.json").unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

/// The schema is not vacuous: it refuses a plan with a document inside a string.
#[test]
fn the_json_plan_schema_refuses_what_it_should() {
    let desired = build(&[PathBuf::from("plans/ably-lambda")]).unwrap();
    let mut value =
        serde_json::to_value(JsonPlan::new(&plan_of(&desired, &Live::default()))).unwrap();
    assert!(schema().is_valid(&value));
    let after = &mut value["resource_changes"][1]["change"]["documents"][0]["after"];
    *after = serde_json::Value::String(after.to_string());
    assert!(!schema().is_valid(&value));
}

fn stem(path: &Path) -> String {
    path.file_stem().unwrap().to_string_lossy().into_owned()
}

#[test]
fn every_example_plans_its_creation_in_an_empty_account() {
    let mut failures = Vec::new();
    for name in examples() {
        let desired = build(&[PathBuf::from("plans").join(&name)])
            .unwrap_or_else(|e| panic!("plans/{name}: {e}"));
        let plan = plan_of(&desired, &Live::default());
        check_plan(&format!("create/{name}"), &plan, &mut failures);
    }
    finish(failures);
}

#[test]
fn every_example_plans_no_change_once_applied() {
    for name in examples() {
        let desired = build(&[PathBuf::from("plans").join(&name)]).unwrap();
        let live = Live::from_desired(&desired, Some(&desired.stack));
        let plan = plan_of(&desired, &live);
        let text = render(&plan, Style { color: false });
        // Users with key rules still show their keys' outlook; nothing else may change.
        assert!(
            plan.changes
                .iter()
                .all(|c| c.attributes.is_empty() && c.documents.is_empty()),
            "plans/{name} is not stable against its own result:\n{text}"
        );
        // Asked for, the JSON plan lists every declared resource, unchanged ones as no-op.
        let mut opts = options(NOW);
        opts.include_unchanged = true;
        let plan = plan_with(&desired, &live, &opts);
        let json = serde_json::to_value(JsonPlan::new(&plan)).unwrap();
        assert!(schema().is_valid(&json), "plans/{name}");
        let listed = json["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] != "access_key")
            .count();
        assert_eq!(listed, desired.resources.len(), "plans/{name}: {json}");
        if name != "robot-user" && name != "swimlane" {
            assert_eq!(render(&plan, Style { color: false }), text, "plans/{name}");
            assert!(
                json["resource_changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["change"]["actions"][0] == "no-op")
            );
        }
    }
}

/// Each `tests/golden/live/NAME.toml` records an account (a plan file whose resources
/// are taken as live and owned by the stack); the example `plans/NAME` is planned
/// against it: updates, replacements, deletions and adoptions.
#[test]
fn examples_plan_against_recorded_accounts() {
    let mut failures = Vec::new();
    let recorded = toml_files("live");
    assert!(
        !recorded.is_empty(),
        "no recorded accounts in {GOLDEN}/live"
    );
    for live_file in recorded {
        let name = stem(&live_file);
        let desired = build(&[PathBuf::from("plans").join(&name)]).unwrap();
        let recorded = build(std::slice::from_ref(&live_file))
            .unwrap_or_else(|e| panic!("{}: {e}", live_file.display()));
        let live = Live::from_desired(&recorded, Some(&recorded.stack));
        let plan = plan_of(&desired, &live);
        check_plan(&format!("live/{name}"), &plan, &mut failures);
    }
    finish(failures);
}

/// Each `tests/golden/errors/NAME.toml` is a bad plan file; `NAME.txt` is the whole
/// text `iamplan validate` prints for it, run with no environment at all (no credentials,
/// no AWS variables, no network needed): every error, each at its place.
#[test]
fn bad_plan_files_give_these_errors() {
    let mut failures = Vec::new();
    let cases = toml_files("errors");
    assert!(
        cases.len() >= 10,
        "bad plan files in {GOLDEN}/errors: {cases:?}"
    );
    for case in cases {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_iamplan"))
            .arg("validate")
            .arg(&case)
            .env_clear()
            .output()
            .expect("run iamplan validate");
        let text = format!(
            "exit {}\n{}{}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let name = stem(&case);
        check(&format!("errors/{name}.txt"), &text, &mut failures);
    }
    finish(failures);
}

/// plans/robot-user's key rotation, against an account where the user has one key, 100
/// days old, held by the sink: the rotation is due; 8 days after the new key, the old one
/// is deactivated; 7 days later it is deleted.
#[test]
fn robot_user_key_rotation() {
    use iamplan::iam::User;
    use iamplan::keys::{DAY, LiveKey};
    use iamplan::model::{Address, Kind, Resource};
    let desired = build(&[PathBuf::from("plans/robot-user")]).unwrap();
    let addr = Address::new("default", Kind::User, "ably-robot");
    let key = |id: &str, age_days: i64, active: bool, deactivated: Option<i64>| LiveKey {
        id: id.into(),
        active,
        created: NOW - age_days * DAY,
        deactivated,
        tagged: deactivated.is_some(),
        last_used: None,
        pending: false,
    };
    let with_keys = |keys: Vec<LiveKey>| {
        let mut live = Live::from_desired(&desired, Some(&desired.stack));
        if let Some(Resource::User(u)) = live.resources.get_mut(&addr).map(|l| &mut l.resource) {
            let u: &mut User = u;
            u.access_keys = keys;
        }
        live
    };
    let holding = |id: &str, now: i64| {
        let mut opts = options(now);
        opts.sink_keys.insert(addr.clone(), Some(id.to_string()));
        opts
    };
    let mut failures = Vec::new();
    let old = "AKIAOLDKEY0000000001";
    let new = "AKIANEWKEY0000000002";
    let due = plan_with(
        &desired,
        &with_keys(vec![key(old, 100, true, None)]),
        &holding(old, NOW),
    );
    check_plan("rotation/robot-user-due", &due, &mut failures);
    let retire = plan_with(
        &desired,
        &with_keys(vec![key(old, 108, true, None), key(new, 8, true, None)]),
        &holding(new, NOW),
    );
    check_plan("rotation/robot-user-retire", &retire, &mut failures);
    let delete = plan_with(
        &desired,
        &with_keys(vec![
            key(old, 115, false, Some(NOW - 7 * DAY)),
            key(new, 15, true, None),
        ]),
        &holding(new, NOW),
    );
    check_plan("rotation/robot-user-delete", &delete, &mut failures);
    finish(failures);
}

/// Access analysis in the plan: `tests/golden/access/plan.toml` against the account
/// recorded in `live.toml` widens one document, changes a trust policy, narrows a managed
/// policy and drops a Deny; `--deny-widening` refuses it (the error is a fixture too)
/// until `acknowledged.toml` says `allow_widening = true` on the role.
#[test]
fn plans_classify_each_document_change_and_deny_widening_needs_acknowledgement() {
    let dir = Path::new(GOLDEN).join("access");
    let recorded = build(&[dir.join("live.toml")]).unwrap();
    let live = Live::from_desired(&recorded, Some(&recorded.stack));
    let desired = build(&[dir.join("plan.toml")]).unwrap();
    let plan = plan_of(&desired, &live);
    let mut failures = Vec::new();
    check_plan("access/plan", &plan, &mut failures);
    let refused = plan
        .deny_widening()
        .expect_err("role.app widens without an acknowledgement");
    check(
        "access/deny-widening.txt",
        &format!("{refused}\n"),
        &mut failures,
    );
    finish(failures);

    let text = render(&plan, Style { color: false });
    assert!(
        text.contains("# widens access: + s3:DeleteObject on arn:aws:s3:::bucket/*"),
        "{text}"
    );
    assert!(
        text.contains("# narrows access: - s3:ListBucket on *"),
        "{text}"
    );
    let json = serde_json::to_value(JsonPlan::new(&plan)).unwrap();
    let classes: Vec<(&str, &str)> = json["resource_changes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| {
            c["change"]["documents"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| {
                    (
                        d["label"].as_str().unwrap(),
                        d["access"]["classification"].as_str().unwrap(),
                    )
                })
        })
        .collect();
    assert!(
        classes.contains(&("inline policy data", "widens")),
        "{classes:?}"
    );
    assert!(
        classes.contains(&("trust policy", "changes")),
        "{classes:?}"
    );
    assert!(
        classes.contains(&("policy document", "narrows")),
        "{classes:?}"
    );

    let acknowledged = build(&[dir.join("acknowledged.toml")]).unwrap();
    let plan = plan_of(&acknowledged, &live);
    assert_eq!(plan.deny_widening(), Ok(()));
    assert!(plan.widenings().iter().all(|w| w.acknowledged));
    let json = serde_json::to_value(JsonPlan::new(&plan)).unwrap();
    assert!(schema().is_valid(&json));
    assert!(
        json["resource_changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["address"] == "role.app" && c["allow_widening"] == true),
        "{json}"
    );
}
