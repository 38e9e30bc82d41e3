//! The offline commands (validate, lint, fmt) through the built binary, with an empty
//! environment: no credentials, no AWS variables, no network.

mod common;

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
        text(&out).contains("main.toml:7:13: security warning TRUST_WITHOUT_EXTERNAL_ID: role.partner (trust policy, Statement[0]): account 203461409171 may assume this role without an ExternalId"),
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
    assert_eq!(v["findings"][0]["line"], 7);

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

    // A prefix near a service's is suggested; a word two letters from a three-letter
    // prefix is not (it once suggested `sso:Bar` for `foo:Bar`).
    for (action, said) in [
        (
            "lamda:InvokeFunction",
            Some("did you mean `lambda:InvokeFunction`?"),
        ),
        ("foo:Bar", None),
    ] {
        let dir = plan_dir(&format!(
            "[policy.p]\n\n[[policy.p.statement]]\naction = \"{action}\"\nresource = \"*\"\n"
        ));
        let out = iamplan(&["lint", dir.path().to_str().unwrap()]);
        assert!(text(&out).contains("UNKNOWN_SERVICE"), "{}", text(&out));
        match said {
            Some(s) => assert!(text(&out).contains(s), "{}", text(&out)),
            None => assert!(!text(&out).contains("did you mean"), "{}", text(&out)),
        }
    }
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

/// `secrets/a.json` and `alias/a.json` with `alias -> secrets` are one file: two users
/// writing it would replace each other's key on every apply.
#[test]
fn two_users_sharing_a_sink_through_a_symlinked_directory_are_refused() {
    let plan = plan_dir(
        "[user.robot-a.access_keys]\nsink = { type = \"json\", path = \"secrets/a.json\" }\n\n[user.robot-b.access_keys]\nsink = { type = \"json\", path = \"alias/a.json\" }\n",
    );
    std::fs::create_dir(plan.path().join("secrets")).unwrap();
    std::os::unix::fs::symlink("secrets", plan.path().join("alias")).unwrap();
    let out = iamplan(&["validate", plan.path().to_str().unwrap()]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("user \"robot-b\" writes its key to")
            && said.contains("as user \"robot-a\" does"),
        "{said}"
    );
    // A link to the file itself (not yet written) is the same file too.
    let plan = plan_dir(
        "[user.robot-a.access_keys]\nsink = { type = \"colon\", path = \"a.key\" }\n\n[user.robot-b.access_keys]\nsink = { type = \"colon\", path = \"b.key\" }\n",
    );
    std::os::unix::fs::symlink("a.key", plan.path().join("b.key")).unwrap();
    let out = iamplan(&["validate", plan.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

const CHAIN: &str = r#"[user.ci]

[[user.ci.inline.assume.statement]]
action = "sts:AssumeRole"
resource = "${role.deployer.arn}"

[role.deployer]

[role.deployer.trust]
users = ["ci"]

[[role.deployer.inline.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:aws:lambda:us-east-1:${account_id}:function:f"

[[role.deployer.inline.invoke.statement]]
sid = "NoProd"
effect = "Deny"
action = "lambda:*"
resource = "arn:aws:lambda:us-east-1:${account_id}:function:prod-*"
"#;

const F: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

#[test]
fn explain_says_allowed_denied_or_unknown_with_the_deciding_statements() {
    let dir = plan_dir(CHAIN);
    let path = dir.path().to_str().unwrap();
    let explain = |principal: &str, action: &str, resource: &str| {
        iamplan(&[
            "explain",
            path,
            "--principal",
            principal,
            "--action",
            action,
            "--resource",
            resource,
        ])
    };
    let out = explain("role/deployer", "lambda:InvokeFunction", F);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).starts_with(&format!(
            "allowed: role.deployer may lambda:InvokeFunction on {F}\n  decided by:\n    role.deployer inline policy invoke Statement[0] (Allow)"
        )),
        "{}",
        text(&out)
    );
    let prod = "arn:aws:lambda:us-east-1:000000000000:function:prod-1";
    let out = explain("role/deployer", "lambda:InvokeFunction", prod);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        text(&out).contains("role.deployer inline policy invoke Statement[1] \"NoProd\" (Deny)"),
        "{}",
        text(&out)
    );
    let out = explain("user/ci", "sts:AssumeRole", "role/deployer");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("role.deployer trust policy Statement[0]"),
        "{}",
        text(&out)
    );
    let out = explain(
        "role/deployer",
        "s3:GetObject",
        "arn:aws:s3:::other-account-bucket/x",
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    // Unknown: a condition on a key the request does not give.
    let cond = plan_dir(
        "[role.r]\n\n[role.r.trust]\nservices = [\"lambda.amazonaws.com\"]\n\n[[role.r.inline.p.statement]]\naction = \"s3:GetObject\"\nresource = \"*\"\ncondition = { IpAddress = { \"aws:SourceIp\" = \"10.0.0.0/8\" } }\n",
    );
    let cpath = cond.path().to_str().unwrap();
    let args = [
        "explain",
        cpath,
        "--principal",
        "role/r",
        "--action",
        "s3:GetObject",
        "--resource",
        "arn:aws:s3:::b/k",
    ];
    let out = iamplan(&args);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        // As the policy writes the key, not lower-cased.
        text(&out).contains(
            "aws:SourceIp is not in the request context (give --context aws:SourceIp=VALUE)"
        ),
        "{}",
        text(&out)
    );
    let mut with_ip = args.to_vec();
    with_ip.extend(["--context", "aws:SourceIp=10.1.2.3"]);
    assert_eq!(iamplan(&with_ip).status.code(), Some(0));

    let json = iamplan(&[
        "explain",
        path,
        "--principal",
        "role/deployer",
        "--action",
        "lambda:InvokeFunction",
        "--resource",
        F,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(v["evaluation"]["decision"], "allowed");
    assert_eq!(v["evaluation"]["statements"][0]["index"], 0);
}

#[test]
fn explain_and_who_can_reject_bad_input_in_one_line() {
    let dir = plan_dir(CHAIN);
    let path = dir.path().to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (
            &[
                "explain",
                path,
                "--principal",
                "role/deployr",
                "--action",
                "s3:GetObject",
                "--resource",
                "*",
            ],
            "error: no role named `deployr` in the plan: did you mean `role/deployer`?",
        ),
        (
            &[
                "explain",
                path,
                "--principal",
                "deployer",
                "--action",
                "s3:GetObject",
                "--resource",
                "*",
            ],
            "error: `deployer` is not a principal: give role/NAME, user/NAME or a role or user ARN",
        ),
        (
            &[
                "explain",
                path,
                "--principal",
                "role/deployer",
                "--action",
                "GetObject",
                "--resource",
                "*",
            ],
            "error: `GetObject` is not an action: give SERVICE:ACTION, e.g. lambda:InvokeFunction",
        ),
        (
            &[
                "explain",
                path,
                "--principal",
                "role/deployer",
                "--action",
                "s3:GetObject",
                "--resource",
                "*",
                "--context",
                "novalue",
            ],
            "error: `novalue` is not a context entry: give KEY=VALUE, e.g. sts:ExternalId=abc",
        ),
        (
            &[
                "explain",
                path,
                "--principal",
                "role/deployer",
                "--action",
                "s3:GetObject",
                "--resource",
                "*",
                "--account",
                "prd",
            ],
            "error: no account `prd` in the plan",
        ),
        (
            &[
                "who-can",
                path,
                "--action",
                "sts:AssumeRole",
                "--resource",
                "role/deploy",
            ],
            "error: no role named `deploy` in the plan: did you mean `role/deployer`?",
        ),
    ];
    for (args, want) in cases {
        let out = iamplan(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert_eq!(text(&out).trim_end(), want, "{args:?}");
    }
    let missing = iamplan(&[
        "who-can",
        "/nonexistent/plan",
        "--action",
        "s3:GetObject",
        "--resource",
        "*",
    ]);
    assert_eq!(missing.status.code(), Some(1), "{}", text(&missing));
}

/// A third party that must send an ExternalId is listed as possible, with the condition,
/// until `--context` gives the ExternalId (then it is decided: a wrong one reaches nothing).
#[test]
fn who_can_lists_a_principal_whose_trust_wants_an_external_id() {
    let who = |extra: &[&str]| {
        let mut args = vec![
            "who-can",
            "plans/ably-lambda",
            "--action",
            "sts:AssumeRole",
            "--resource",
            "role/ably-integration",
        ];
        args.extend_from_slice(extra);
        let out = iamplan(&args);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        text(&out)
    };
    let open = who(&[]);
    assert!(
        open.contains("possibly arn:aws:iam::203461409171:root") && open.contains("sts:ExternalId"),
        "{open}"
    );
    assert!(
        who(&["--context", "sts:ExternalId=wrong"])
            .ends_with("0 principals (0 certain, 0 possible)\n")
    );
    assert!(
        who(&["--context", "sts:ExternalId=a1b2c3.demo-app"])
            .contains("possibly arn:aws:iam::203461409171:root")
    );
}

#[test]
fn who_can_prints_chains_of_assume_role() {
    let dir = plan_dir(CHAIN);
    let path = dir.path().to_str().unwrap();
    let out = iamplan(&[
        "who-can",
        path,
        "--action",
        "lambda:InvokeFunction",
        "--resource",
        F,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(
        text(&out),
        format!(
            "who can lambda:InvokeFunction on {F}:\n  role.deployer: lambda:InvokeFunction {F}\n  user.ci: sts:AssumeRole role.deployer -> lambda:InvokeFunction {F}\n2 principals (2 certain, 0 possible)\n"
        )
    );
    // On the example plans: the Swimlane connector reaches its function through the role.
    let out = iamplan(&[
        "who-can",
        "plans/swimlane",
        "--action",
        "lambda:InvokeFunction",
        "--resource",
        "arn:aws:lambda:us-east-1:000000000000:function:swimlane-target",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["principals"][1]["principal"], "user.swimlane-connector");
    assert_eq!(
        v["principals"][1]["path"][0]["to"],
        "role.swimlane-lambda-invoker"
    );
    // And who may assume the cross-account role: EC2 surely, the other account if it allows.
    let out = iamplan(&[
        "who-can",
        "plans/cross-account",
        "--action",
        "sts:AssumeRole",
        "--resource",
        "role/deployer",
    ]);
    assert!(
        text(&out).contains("  service ec2.amazonaws.com: sts:AssumeRole"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("  possibly arn:aws:iam::111122223333:root:"),
        "{}",
        text(&out)
    );
}

#[test]
fn plan_files_that_are_not_regular_files_are_refused_not_read() {
    let dir = plan_dir("");
    let fifo = dir.path().join("fifo.toml");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero.toml")).unwrap();
    std::fs::create_dir(dir.path().join("sub.toml")).unwrap();
    // A link to a regular file is read as the file.
    std::fs::write(dir.path().join("real"), "[variables]\nx = \"1\"\n").unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link.toml")).unwrap();
    for cmd in [&["validate"][..], &["fmt", "--check"]] {
        let out = iamplan(&[cmd, &[dir.path().to_str().unwrap()]].concat());
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{cmd:?}: {t}");
        for (file, what) in [
            ("fifo.toml", "a FIFO (named pipe)"),
            ("zero.toml", "a character device"),
        ] {
            assert!(
                t.contains(&format!("{file}: it is {what}, not a regular file")),
                "{cmd:?}: {t}"
            );
        }
    }
    let out = iamplan(&["validate", dir.path().to_str().unwrap()]);
    let t = text(&out);
    assert!(
        t.contains("sub.toml: it is a directory, not a regular file"),
        "{t}"
    );
    assert!(!t.contains("link.toml"), "{t}");
}

#[test]
fn a_plan_file_over_the_size_limit_is_refused_naming_it() {
    let dir = plan_dir("");
    let big = dir.path().join("big.toml");
    let mut body = String::from("# padding\n");
    body.push_str(&"#".repeat(4 * 1024 * 1024));
    std::fs::write(&big, body).unwrap();
    let out = iamplan(&["validate", dir.path().to_str().unwrap()]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("big.toml: it is larger than 4 MiB, the limit for a plan file"),
        "{t}"
    );
}

/// `iamplan ... | head -1`: a reader that has read enough closes the pipe; every command
/// then ends as it would have, quietly (it used to panic with exit 101).
#[test]
fn commands_end_quietly_when_their_output_is_closed() {
    let plan = "plans/ably-lambda";
    let runs: &[&[&str]] = &[
        &["validate", plan],
        &["lint", plan],
        &["lint", plan, "--json"],
        &["fmt", "--check", "plans"],
        &[
            "explain",
            plan,
            "--principal",
            "role/ably-integration",
            "--action",
            "lambda:InvokeFunction",
            "--resource",
            "arn:aws:lambda:us-east-1:000000000000:function:chat",
        ],
        &[
            "who-can",
            plan,
            "--action",
            "lambda:InvokeFunction",
            "--resource",
            "arn:aws:lambda:us-east-1:000000000000:function:chat",
        ],
        &["show", "plans/ably-lambda/main.toml"],
        &["--help"],
        &["--version"],
    ];
    for args in runs {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_iamplan"));
        cmd.args(*args).env_clear();
        let read = common::same_with_closed_stdout(cmd, &args.join(" "));
        // Each run printed something, or the closed pipe was never written to.
        assert!(
            !read.stdout.is_empty() || args[0] == "fmt" || args[0] == "show",
            "{}: {}",
            args.join(" "),
            text(&read)
        );
    }
}

/// `--out main.toml` once replaced the plan file with the saved plan's JSON; it is refused
/// before anything is read (no credentials here), and the file is left as it was.
#[test]
fn plan_out_refuses_to_replace_a_plan_file_and_show_does_not_suggest_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("main.toml");
    let body = "[stack]\nname = \"s\"\n[role.r.trust]\nservices = [\"ec2.amazonaws.com\"]\n";
    std::fs::write(&file, body).unwrap();
    let f = file.to_str().unwrap();
    let out = iamplan(&["plan", f, "--out", f]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out)
            .contains("is not a saved plan (a plan file?), and a saved plan would replace it"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), body);

    let shown = iamplan(&["show", f]);
    assert_eq!(shown.status.code(), Some(1));
    let said = text(&shown);
    assert!(!said.contains(&format!("--out {f}")), "{said}");
    assert!(said.contains("is plan files, not a saved plan"), "{said}");
    assert!(said.contains("--out plan.json"), "{said}");
}

/// A parent of plan directories is one clear error that names them, not an error cascade.
#[test]
fn a_parent_of_plan_directories_is_one_error_naming_them() {
    for command in ["validate", "lint", "plan"] {
        let out = iamplan(&[command, "plans"]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", text(&out));
        let said = text(&out);
        assert_eq!(said.matches("error: ").count(), 1, "{command}: {said}");
        assert!(
            said.contains("it holds plan directories (ably-lambda, ably-sqs-kinesis,"),
            "{command}: {said}"
        );
        assert!(said.contains("e.g. plans/ably-lambda"), "{command}: {said}");
    }
}
