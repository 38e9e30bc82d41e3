//! The offline commands (validate, lint, fmt) through the built binary, with an empty
//! environment: no credentials, no AWS variables, no network.

use std::process::{Command, Output};

fn iamplan(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iamplan"))
        .args(args)
        .env_clear()
        .output()
        .expect("run iamplan")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn every_example_plan_validates_with_no_environment() {
    for entry in std::fs::read_dir("plans").unwrap() {
        let dir = entry.unwrap().path();
        let out = iamplan(&["validate", dir.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            dir.display(),
            text(&out)
        );
        assert!(
            text(&out).starts_with("valid: 1 plan file"),
            "{}",
            text(&out)
        );
    }
}

#[test]
fn example_plans_are_in_the_canonical_layout() {
    let out = iamplan(&["fmt", "--check", "plans"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

#[test]
fn fmt_rewrites_a_file_keeping_comments_and_check_says_which() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.toml");
    std::fs::write(
        &file,
        "[role.r]   \ndescription=\"x\"  # why\n\n\n\n# the stack comes first\n[stack]\nname = \"s\"\n",
    )
    .unwrap();
    let check = iamplan(&["fmt", "--check", file.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(1));
    assert!(
        text(&check).contains("main.toml is not formatted"),
        "{}",
        text(&check)
    );
    let fmt = iamplan(&["fmt", file.to_str().unwrap()]);
    assert_eq!(fmt.status.code(), Some(0), "{}", text(&fmt));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "# the stack comes first\n[stack]\nname = \"s\"\n\n[role.r]\ndescription = \"x\"  # why\n"
    );
    assert_eq!(
        iamplan(&["fmt", "--check", file.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
}

fn plan_dir(body: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.toml"),
        format!("[stack]\nname = \"lint\"\n\n{body}"),
    )
    .unwrap();
    dir
}

const THIRD_PARTY: &str = "[role.partner]\n\n[role.partner.trust]\naccounts = [\"203461409171\"]\n";

#[test]
fn lint_reports_findings_and_fails_only_when_asked_or_on_errors() {
    let dir = plan_dir(THIRD_PARTY);
    let path = dir.path().to_str().unwrap();
    let out = iamplan(&["lint", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("main.toml:4:7: security warning TRUST_WITHOUT_EXTERNAL_ID: role.partner (trust policy, Statement[0]): account 203461409171 may assume this role without an ExternalId"),
        "{}",
        text(&out)
    );
    assert_eq!(
        iamplan(&["lint", path, "--deny-warnings"]).status.code(),
        Some(1)
    );
    let json = iamplan(&["lint", path, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["format_version"], "1");
    assert_eq!(v["findings"][0]["code"], "TRUST_WITHOUT_EXTERNAL_ID");
    assert_eq!(v["findings"][0]["severity"], "security_warning");
    assert_eq!(v["findings"][0]["line"], 4);

    let unknown = plan_dir(
        "[policy.p]\n\n[[policy.p.statement]]\naction = \"s3:GetObjekt\"\nresource = \"*\"\n",
    );
    let out = iamplan(&["lint", unknown.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("did you mean `s3:GetObject`?"),
        "{}",
        text(&out)
    );
}

#[test]
fn lint_ignore_silences_one_code_on_one_resource_with_a_reason() {
    let ignored = THIRD_PARTY.replace(
        "[role.partner]\n",
        "[role.partner]\nlint_ignore = { TRUST_WITHOUT_EXTERNAL_ID = \"our own second account\" }\n",
    );
    let dir = plan_dir(&ignored);
    let out = iamplan(&["lint", dir.path().to_str().unwrap(), "--deny-warnings"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(text(&out).contains("no findings"), "{}", text(&out));

    let typo = plan_dir(&THIRD_PARTY.replace(
        "[role.partner]\n",
        "[role.partner]\nlint_ignore = { TRUST_WITHOUT_EXTERNALID = \"x\" }\n",
    ));
    let out = iamplan(&["validate", typo.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("unknown lint code `TRUST_WITHOUT_EXTERNALID`"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("did you mean `TRUST_WITHOUT_EXTERNAL_ID`?"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_key_sink_may_not_replace_the_aws_files_iamplan_reads() {
    let dir = tempfile::tempdir().unwrap();
    let aws = dir.path().join("aws");
    std::fs::create_dir(&aws).unwrap();
    let credentials = aws.join("credentials");
    let config = aws.join("config");
    std::fs::write(&credentials, "[default]\n").unwrap();
    std::fs::write(&config, "[default]\nregion = us-east-1\n").unwrap();
    let check = |sink: String| {
        let plan = plan_dir(&format!("[user.robot.access_keys]\nsink = {sink}\n"));
        let out = Command::new(env!("CARGO_BIN_EXE_iamplan"))
            .args(["validate", plan.path().to_str().unwrap()])
            .env_clear()
            .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
            .env("AWS_CONFIG_FILE", &config)
            .output()
            .unwrap();
        (out.status.code(), text(&out))
    };
    let (code, out) = check(format!("{{ type = \"json\", path = {:?} }}", credentials));
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("is the AWS credentials file, and the sink would replace it"),
        "{out}"
    );
    let (code, out) = check(format!(
        "{{ type = \"credentials\", path = {:?}, profile = \"robot\" }}",
        config
    ));
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("is the AWS config file"), "{out}");
    // Merging a profile into the credentials file is what the credentials sink is for.
    let (code, out) = check(format!(
        "{{ type = \"credentials\", path = {:?}, profile = \"robot\" }}",
        credentials
    ));
    assert_eq!(code, Some(0), "{out}");
}
