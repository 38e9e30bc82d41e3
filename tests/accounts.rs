//! Real accounts (issue 9): which credentials and account a run uses, and the guards on
//! what a run may do. Against the default emulator (MiniStack with IAM enforcement on),
//! except where the point is that nothing is called.

mod common;

use common::{Emulator, write};
use std::process::Command;

const ROLE: &str = r#"
[stack]
name = "acct"
[role.deployer]
[role.deployer.trust]
accounts = ["000000000000"]
"#;

/// The first line of a plan: the account written and who the credentials are.
fn account_line(stdout: &str) -> &str {
    stdout.lines().next().unwrap_or("")
}

/// A profile that assumes a role from another profile (`role_arn` + `source_profile`),
/// the way most engineers reach accounts, through `--profile`, `AWS_PROFILE` and
/// `[accounts.X] profile`. It failed with "missing signing region".
#[test]
fn a_role_profile_with_a_source_profile_works() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    // The role may do anything in IAM (the emulator enforces identity policies).
    let admin = format!(
        "{ROLE}[role.deployer.inline.iam]\n[[role.deployer.inline.iam.statement]]\naction = \"iam:*\"\nresource = \"*\"\n"
    );
    let base = write(dir.path(), "role.toml", &admin);
    emu.iamplan(&["apply", base.to_str().unwrap(), "--auto-approve"])
        .expect(0, "the role to assume");
    let config = write(
        dir.path(),
        "config",
        "[profile base]\nregion = us-east-1\n\n[profile chained]\nregion = us-east-1\nrole_arn = arn:aws:iam::000000000000:role/deployer\nsource_profile = base\n",
    );
    let creds = write(
        dir.path(),
        "credentials",
        "[base]\naws_access_key_id = test\naws_secret_access_key = test\n",
    );
    let files = [
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
    ];
    let other = write(
        dir.path(),
        "other.toml",
        "[stack]\nname = \"other\"\n[role.app]\n[role.app.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
    );
    let o = other.to_str().unwrap();
    let assumed = "as arn:aws:sts::000000000000:assumed-role/deployer/";

    let via_flag = emu
        .iamplan_env(&["plan", o, "--profile", "chained"], &files)
        .expect(0, "--profile chained");
    assert!(
        account_line(&via_flag.stdout).contains(assumed),
        "{}",
        via_flag.stdout
    );

    let mut env = files.to_vec();
    env.push(("AWS_PROFILE", "chained"));
    // AWS_PROFILE gives way to keys in the environment (below); without them it is used.
    env.push(("AWS_ACCESS_KEY_ID", ""));
    env.push(("AWS_SECRET_ACCESS_KEY", ""));
    let via_env = emu
        .iamplan_env(&["plan", o], &env)
        .expect(0, "AWS_PROFILE=chained");
    assert!(
        account_line(&via_env.stdout).contains(assumed),
        "{}",
        via_env.stdout
    );

    // credential_process, as a profile of its own.
    let script = write(
        dir.path(),
        "creds.sh",
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"203461409171\", \"SecretAccessKey\": \"test\"}'\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let process_config = write(
        dir.path(),
        "config-process",
        &format!(
            "[profile vended]\nregion = us-east-1\ncredential_process = {}\n",
            script.display()
        ),
    );
    let vended = emu
        .iamplan_env(
            &["plan", o, "--profile", "vended"],
            &[("AWS_CONFIG_FILE", process_config.to_str().unwrap())],
        )
        .expect(0, "credential_process");
    assert!(
        account_line(&vended.stdout).starts_with("account default = 203461409171"),
        "{}",
        vended.stdout
    );

    let in_plan = write(
        dir.path(),
        "in-plan.toml",
        "[stack]\nname = \"other2\"\n[accounts.ops]\nprofile = \"chained\"\n[role.app]\naccount = \"ops\"\n[role.app.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
    );
    let via_plan = emu
        .iamplan_env(&["plan", in_plan.to_str().unwrap()], &files)
        .expect(0, "[accounts.ops] profile = chained");
    assert!(
        via_plan.stdout.contains(
            "account ops = 000000000000 as arn:aws:sts::000000000000:assumed-role/deployer/"
        ),
        "{}",
        via_plan.stdout
    );
}

/// As in the AWS CLI: keys in the environment win over AWS_PROFILE (an explicit
/// `--profile` wins over both). AWS_PROFILE used to win, so iamplan wrote to another
/// account than `aws sts get-caller-identity` showed.
#[test]
fn environment_keys_win_over_aws_profile_and_the_plan_names_the_account() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "role.toml", ROLE);
    let p = plan.to_str().unwrap();
    // The emulator kit's profile "ably" is account 203461409171; the environment's keys
    // are account 000000000000.
    let env_wins = emu
        .iamplan_env(&["plan", p], &[("AWS_PROFILE", "ably")])
        .expect(0, "AWS_PROFILE with keys in the environment");
    assert_eq!(
        account_line(&env_wins.stdout),
        "account default = 000000000000 as arn:aws:iam::000000000000:root",
        "{}",
        env_wins.stdout
    );
    let flag_wins = emu
        .iamplan(&["plan", p, "--profile", "ably"])
        .expect(0, "--profile ably");
    assert!(
        account_line(&flag_wins.stdout).starts_with("account default = 203461409171 as "),
        "{}",
        flag_wins.stdout
    );
    let applied = emu
        .iamplan(&["apply", p, "--auto-approve"])
        .expect(0, "apply");
    assert!(
        applied
            .stdout
            .contains("in account default = 000000000000 as arn:aws:iam::000000000000:root."),
        "{}",
        applied.stdout
    );
}

/// A copy of a plan directory that keeps its stack name plans to delete its sibling's
/// resources: apply refuses unless asked, and the plan says why.
#[test]
fn a_plan_that_deletes_its_whole_stack_needs_a_flag() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let original = write(dir.path(), "a.toml", ROLE);
    emu.iamplan(&["apply", original.to_str().unwrap(), "--auto-approve"])
        .expect(0, "the original");
    let copy_dir = tempfile::tempdir().unwrap();
    let copy = write(
        copy_dir.path(),
        "a.toml",
        &ROLE.replace("deployer", "builder"),
    );
    let c = copy.to_str().unwrap();
    let plan = emu.iamplan(&["plan", c]).expect(0, "plan of the copy");
    assert!(
        plan.stdout
            .contains("this plan deletes every resource stack \"acct\" owns (1)"),
        "{}",
        plan.stdout
    );
    let refused = emu
        .iamplan(&["apply", c, "--auto-approve"])
        .expect(1, "apply of the copy");
    assert!(
        refused.stderr.contains("--allow-delete-all"),
        "{}",
        refused.stderr
    );
    // Nothing was applied: the original's role is still there, the copy's is not.
    let listed = emu.iamplan(&["list", c]).expect(0, "list");
    assert!(listed.stdout.contains("deployer"), "{}", listed.stdout);
    assert!(!listed.stdout.contains("builder"), "{}", listed.stdout);
    emu.iamplan(&["apply", c, "--auto-approve", "--allow-delete-all"])
        .expect(0, "on purpose");
}

/// A saved plan records sink paths as absolute paths: applied from another directory, it
/// delivers the secret to the same file.
#[test]
fn a_saved_plan_delivers_to_the_same_sink_from_another_directory() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let plan = write(
        dir.path(),
        "robot.toml",
        "[stack]\nname = \"sinks\"\n[user.robot]\n[user.robot.access_keys]\nsink = { type = \"json\", path = \"secrets/robot.json\" }\n",
    );
    let saved = dir.path().join("robot.plan");
    emu.iamplan(&[
        "plan",
        plan.to_str().unwrap(),
        "--out",
        saved.to_str().unwrap(),
    ])
    .expect(0, "plan --out");
    let elsewhere = tempfile::tempdir().unwrap();
    let out = emu
        .command(&["apply", saved.to_str().unwrap()])
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(dir.path().join("secrets/robot.json").exists());
    assert!(!elsewhere.path().join("secrets").exists());
}

fn iamplan_without_emulator(args: &[&str]) -> std::process::Output {
    common::iamplan_command(args)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_IAM")
        .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
        .env("AWS_SECRET_ACCESS_KEY", "example")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

/// These are refused before any call: no emulator, and no network, is involved.
#[test]
fn refused_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let plan = write(dir.path(), "role.toml", ROLE);
    let p = plan.to_str().unwrap();

    // Usage errors exit 1: 2 means "changes" with --detailed-exitcode.
    let usage = iamplan_without_emulator(&["plan", p, "--detailed-exitcod"]);
    assert_eq!(usage.status.code(), Some(1), "{usage:?}");
    let help = iamplan_without_emulator(&["plan", "--help"]);
    assert_eq!(help.status.code(), Some(0));

    let region = iamplan_without_emulator(&["plan", p, "--region", "us-eats-1"]);
    assert_eq!(region.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&region.stderr);
    assert!(
        stderr.contains("\"us-eats-1\" is not an AWS region; did you mean \"us-east-1\"?"),
        "{stderr}"
    );

    // --now previews; applying under it against real AWS needs a flag.
    let now = iamplan_without_emulator(&[
        "apply",
        p,
        "--auto-approve",
        "--now",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(now.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&now.stderr);
    assert!(stderr.contains("--allow-simulated-time"), "{stderr}");
    // Credential problems are named as such, with the fix, not as unreachable endpoints.
    let config = write(
        dir.path(),
        "config",
        "[default]\nregion = us-east-1\n[profile ops]\nregion = us-east-1\n",
    );
    let empty = write(dir.path(), "credentials", "");
    let no_creds = |extra: &[&str]| {
        let mut args = vec!["plan", p];
        args.extend_from_slice(extra);
        let out = common::iamplan_command(&args)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_WEB_IDENTITY_TOKEN_FILE")
            .env_remove("AWS_CONTAINER_CREDENTIALS_FULL_URI")
            .env_remove("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
            // Nothing leaves this machine: no instance metadata, an endpoint on loopback.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
            .env("AWS_CONFIG_FILE", &config)
            .env("AWS_SHARED_CREDENTIALS_FILE", &empty)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let unknown = no_creds(&["--profile", "opps"]);
    assert!(
        unknown.contains("profile \"opps\" is not in the AWS config or credentials files")
            && unknown.contains("did you mean \"ops\"?"),
        "{unknown}"
    );
    let none = no_creds(&[]);
    assert!(
        none.contains("no usable credentials") && !none.contains("cannot reach"),
        "{none}"
    );

    // An impossible date is refused by the argument parser.
    let bad = iamplan_without_emulator(&["plan", p, "--now", "2027-02-30T00:00:00Z"]);
    assert_eq!(bad.status.code(), Some(1));
}

/// A test CA and a certificate for 127.0.0.1 signed by it (openssl), in `dir`.
fn test_ca(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl, to make the test CA");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=iamplan test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "front.key",
        "-out",
        "front.csr",
    ]);
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "front.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "front.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("front.pem"),
        dir.join("front.key"),
    )
}

/// Behind a TLS-inspecting proxy (here a TLS front with its own CA before the emulator),
/// the CA given by AWS_CA_BUNDLE or a profile's ca_bundle is trusted; without it the error
/// says what to do.
#[test]
fn a_ca_bundle_is_trusted_from_the_environment_or_the_profile() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(dir.path());
    let (front, port) = common::start_forwarder(&[
        "front",
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        &emu.endpoint(),
    ]);
    let url = format!("https://127.0.0.1:{port}");
    let plan = write(dir.path(), "role.toml", ROLE);
    let p = plan.to_str().unwrap();
    let through = |extra: &[(&str, &str)]| {
        let mut env = vec![("AWS_ENDPOINT_URL", url.as_str())];
        env.extend_from_slice(extra);
        emu.iamplan_env(&["plan", p], &env)
    };

    let untrusted = through(&[("AWS_CA_BUNDLE", "")]).expect(1, "no CA bundle");
    assert!(
        untrusted.stderr.contains("AWS_CA_BUNDLE") && untrusted.stderr.contains(&url),
        "{}",
        untrusted.stderr
    );
    let trusted = through(&[("AWS_CA_BUNDLE", ca.to_str().unwrap())]).expect(0, "AWS_CA_BUNDLE");
    assert!(
        trusted.stdout.starts_with("account default = 000000000000"),
        "{}",
        trusted.stdout
    );

    let config = write(
        dir.path(),
        "config",
        &format!(
            "[profile corp]\nregion = us-east-1\nca_bundle = {}\n",
            ca.display()
        ),
    );
    // AWS_CA_BUNDLE wins over the profile's (as in the AWS CLI): empty it here, since this
    // machine may set it to the system's bundle.
    through(&[
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_PROFILE", "corp"),
        ("AWS_CA_BUNDLE", ""),
    ])
    .expect(0, "ca_bundle in the profile");
    drop(front);
}

/// A plan whose resources all live in another account needs no working default
/// credentials: the default account is left out, with a warning.
#[test]
fn a_plan_wholly_in_another_account_needs_no_default_credentials() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let creds = write(
        dir.path(),
        "credentials",
        "[tooling]\naws_access_key_id = 111122223333\naws_secret_access_key = test\n",
    );
    let config = write(
        dir.path(),
        "config",
        "[default]\nregion = us-east-1\n[profile tooling]\nregion = us-east-1\n",
    );
    let plan = write(
        dir.path(),
        "plan.toml",
        "[stack]\nname = \"elsewhere\"\n[accounts.tooling]\nprofile = \"tooling\"\n[role.app]\naccount = \"tooling\"\n[role.app.trust]\nservices = [\"ec2.amazonaws.com\"]\n",
    );
    let env = [
        ("AWS_SHARED_CREDENTIALS_FILE", creds.to_str().unwrap()),
        ("AWS_CONFIG_FILE", config.to_str().unwrap()),
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let out = emu
        .iamplan_env(&["apply", plan.to_str().unwrap(), "--auto-approve"], &env)
        .expect(0, "apply without default credentials");
    assert_eq!(
        account_line(&out.stdout),
        "account tooling = 111122223333 as arn:aws:iam::111122223333:root",
        "{}",
        out.stdout
    );
    assert!(
        out.stderr
            .contains("account \"default\" is not reachable, and nothing of the plan lives there"),
        "{}",
        out.stderr
    );
}

/// A key sink inside a git work tree that does not ignore it gets a warning: the secret
/// could be committed.
#[test]
fn a_sink_git_would_commit_gets_a_warning() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| {
        let ok = Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .expect("git")
            .status
            .success();
        assert!(ok, "git {args:?}");
    };
    git(&["init", "-q"]);
    let plan = write(
        dir.path(),
        "plan.toml",
        "[stack]\nname = \"gitsink\"\n[user.robot]\n[user.robot.access_keys]\nsink = { type = \"json\", path = \"secrets/robot.json\" }\n",
    );
    let p = plan.to_str().unwrap();
    let warned = emu
        .iamplan(&["plan", p])
        .expect(0, "plan in a git work tree");
    assert!(
        warned.stderr.contains("is inside the git work tree")
            && warned.stderr.contains("add it to .gitignore"),
        "{}",
        warned.stderr
    );
    write(dir.path(), ".gitignore", "secrets/\n");
    let quiet = emu
        .iamplan(&["plan", p])
        .expect(0, "plan with the sink ignored");
    assert!(!quiet.stderr.contains("git work tree"), "{}", quiet.stderr);
}

/// HTTP_PROXY/NO_PROXY apply as in the SDK (and with a CA bundle configured, whose client
/// iamplan builds itself).
#[test]
fn proxies_from_the_environment_are_used() {
    let emu = Emulator::start("ministack");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("proxy.log");
    let (_proxy, port) = common::start_forwarder(&["proxy", log.to_str().unwrap()]);
    let proxy = format!("http://127.0.0.1:{port}");
    let plan = write(dir.path(), "role.toml", ROLE);
    let p = plan.to_str().unwrap();
    let used = || {
        std::fs::read_to_string(&log)
            .unwrap_or_default()
            .lines()
            .count()
    };
    for bundle in ["", "/etc/ssl/certs/ca-certificates.crt"] {
        if !bundle.is_empty() && !std::path::Path::new(bundle).exists() {
            continue;
        }
        let before = used();
        let env = [
            ("HTTP_PROXY", proxy.as_str()),
            ("NO_PROXY", ""),
            ("AWS_CA_BUNDLE", bundle),
        ];
        emu.iamplan_env(&["plan", p], &env)
            .expect(0, "through the proxy");
        assert!(
            used() > before,
            "the proxy was not used (AWS_CA_BUNDLE={bundle:?})"
        );
        let before = used();
        let env = [
            ("HTTP_PROXY", proxy.as_str()),
            ("NO_PROXY", "127.0.0.1"),
            ("AWS_CA_BUNDLE", bundle),
        ];
        emu.iamplan_env(&["plan", p], &env).expect(0, "NO_PROXY");
        assert_eq!(
            used(),
            before,
            "NO_PROXY was not honoured (AWS_CA_BUNDLE={bundle:?})"
        );
    }
}
