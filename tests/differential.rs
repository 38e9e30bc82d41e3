//! Differential test of the offline evaluator (`iamplan::access`) against MiniStack's own
//! enforcement (`AUTH=true`): random but valid identity and trust policies, real calls made
//! with the principal's own credentials, and the same requests evaluated offline.
//!
//! `IAMPLAN_DIFFERENTIAL_REQUESTS` sets how many requests run (600 by default, CI-sized);
//! `IAMPLAN_DIFFERENTIAL_SEED` the seed. Every decided disagreement must fall in one of the
//! named emulator differences of [`EMULATOR_DIFFERENCES`], each settled by AWS's documentation;
//! any other fails the test with the cases that show it. Method and figures:
//! docs/access-differential.md.

mod common;

use aws_credential_types::Credentials;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use futures::StreamExt;
use iamplan::access::{
    Caller, CallerKind, Context, Decision, Policy, PolicyKind, PolicySet, PolicySource, Request,
    evaluate,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Instant;

const ACCOUNT: &str = "000000000000";
const OTHER: &str = "111122223333";
const REGION: &str = "us-east-1";
const REQUESTS_PER_PRINCIPAL: usize = 25;
const IN_FLIGHT: usize = 16;

/// Where MiniStack departs from AWS, and the AWS documentation that says what AWS does.
/// A disagreement is put in one of these only when re-evaluating the request offline with
/// that departure modelled gives the emulator's answer (see `categorise`). The order is that
/// of the flags of [`Model`]: entry i is bit i of `Model::departures`.
const EMULATOR_DIFFERENCES: &[(&str, &str)] = &[
    (
        "policy-variables-not-substituted",
        "MiniStack matches `${aws:username}`, `${aws:PrincipalTag/..}` literally. AWS replaces \
         them in Resource and condition values of 2012-10-17 policies: \
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_variables.html",
    ),
    (
        "tag-session-identity-not-checked",
        "MiniStack checks sts:TagSession only against the role's trust policy. AWS requires \
         the caller's identity policy to allow sts:TagSession as well when the trust policy \
         does not name the caller itself: \
         https://docs.aws.amazon.com/IAM/latest/UserGuide/id_session-tags.html#id_session-tags_permissions-required",
    ),
    (
        "trust-naming-caller-needs-identity-allow",
        "MiniStack always requires the caller's identity policy to allow sts:AssumeRole. In \
         one account, a trust policy that names the IAM user's ARN is enough on its own (the \
         role's ARN: within the role's permissions boundary): \
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html \
         and https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html \
         (a resource-based policy that names an IAM user grants access without an identity policy)",
    ),
    (
        "principal-arn-is-session-arn",
        "MiniStack gives a role session's aws:PrincipalArn as the session's \
         (arn:aws:sts::..:assumed-role/ROLE/SESSION). AWS gives the role's ARN: \
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-principalarn",
    ),
    (
        "other-account-resource-as-own",
        "MiniStack authorizes a call on another account's resource (GetPolicy on \
         arn:aws:iam::111122223333:policy/..) by the caller's identity policies alone. AWS \
         also needs that account's resource-based policy to allow, and IAM managed policies \
         have none: \
         https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html",
    ),
];

// ---------------------------------------------------------------------------------------
// A deterministic generator (splitmix64: no dependency, the same cases on every machine).

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// One value or a list of them, as policies write either.
fn one_or_many(mut v: Vec<String>, rng: &mut Rng) -> Value {
    v.dedup();
    if v.len() == 1 && rng.chance(50) {
        json!(v[0])
    } else {
        json!(v)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    User,
    Role,
}

/// A principal whose credentials make the calls.
struct Principal {
    name: String,
    kind: Kind,
    tags: Vec<(String, String)>,
    /// Tags of the role session (roles only), passed to AssumeRole.
    session_tags: Vec<(String, String)>,
    /// Identity policies, and whether each is attached as a managed policy.
    policies: Vec<(Value, bool)>,
    /// The inline policy of a group the user is in (users only).
    group: Option<Value>,
    boundary: Option<Value>,
}

impl Principal {
    fn arn(&self) -> String {
        match self.kind {
            Kind::User => format!("arn:aws:iam::{ACCOUNT}:user/{}", self.name),
            Kind::Role => format!("arn:aws:iam::{ACCOUNT}:role/{}", self.name),
        }
    }
    /// The principal's tags as AWS sees them: session tags win over the role's own.
    fn principal_tags(&self) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        for (k, v) in self.tags.iter().chain(&self.session_tags) {
            t.insert(k.clone(), v.clone());
        }
        t
    }
}

/// A role to be assumed, with a generated trust policy.
struct Target {
    name: String,
    account: &'static str,
    trust: Value,
    external_id: String,
}

impl Target {
    fn arn(&self) -> String {
        format!("arn:aws:iam::{}:role/{}", self.account, self.name)
    }
}

#[derive(Clone, Debug)]
enum Call {
    GetUser(String),
    ListUserPolicies(String),
    ListGroupsForUser(String),
    ListAccessKeys(String),
    GetRole(String),
    ListRolePolicies(String),
    ListAttachedRolePolicies(String),
    GetGroup(String),
    GetPolicy(String),
    ListPolicyVersions(String),
    GetFunction(String),
    GetFunctionConfiguration(String),
    InvokeFunction(String),
    ListFunctions,
    /// An IAM call that names no resource ("*" in the Service Authorization Reference).
    ListAll(&'static str),
    AssumeRole {
        /// The role's ARN.
        role: String,
        external_id: Option<String>,
        tags: Vec<(String, String)>,
    },
}

impl Call {
    fn action(&self) -> &'static str {
        match self {
            Call::GetUser(_) => "iam:GetUser",
            Call::ListUserPolicies(_) => "iam:ListUserPolicies",
            Call::ListGroupsForUser(_) => "iam:ListGroupsForUser",
            Call::ListAccessKeys(_) => "iam:ListAccessKeys",
            Call::GetRole(_) => "iam:GetRole",
            Call::ListRolePolicies(_) => "iam:ListRolePolicies",
            Call::ListAttachedRolePolicies(_) => "iam:ListAttachedRolePolicies",
            Call::GetGroup(_) => "iam:GetGroup",
            Call::GetPolicy(_) => "iam:GetPolicy",
            Call::ListPolicyVersions(_) => "iam:ListPolicyVersions",
            Call::GetFunction(_) => "lambda:GetFunction",
            Call::GetFunctionConfiguration(_) => "lambda:GetFunctionConfiguration",
            Call::InvokeFunction(_) => "lambda:InvokeFunction",
            Call::ListFunctions => "lambda:ListFunctions",
            Call::ListAll(a) => a,
            Call::AssumeRole { .. } => "sts:AssumeRole",
        }
    }

    /// The resource AWS authorizes the call on (Service Authorization Reference).
    fn resource(&self) -> String {
        match self {
            Call::GetUser(n)
            | Call::ListUserPolicies(n)
            | Call::ListGroupsForUser(n)
            | Call::ListAccessKeys(n) => format!("arn:aws:iam::{ACCOUNT}:user/{n}"),
            Call::GetRole(n) | Call::ListRolePolicies(n) | Call::ListAttachedRolePolicies(n) => {
                format!("arn:aws:iam::{ACCOUNT}:role/{n}")
            }
            Call::AssumeRole { role, .. } => role.clone(),
            Call::GetGroup(n) => format!("arn:aws:iam::{ACCOUNT}:group/{n}"),
            Call::GetPolicy(a) | Call::ListPolicyVersions(a) => a.clone(),
            Call::GetFunction(n) | Call::GetFunctionConfiguration(n) | Call::InvokeFunction(n) => {
                format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{n}")
            }
            Call::ListFunctions | Call::ListAll(_) => "*".into(),
        }
    }
}

/// The actions the generated requests make: each is checked against the action database,
/// and each is one whose call is cheap and which MiniStack authorizes before it answers.
const CALLED: &[&str] = &[
    "iam:GetUser",
    "iam:ListUserPolicies",
    "iam:ListGroupsForUser",
    "iam:ListAccessKeys",
    "iam:GetRole",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
    "iam:GetGroup",
    "iam:GetPolicy",
    "iam:ListPolicyVersions",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:InvokeFunction",
    "lambda:ListFunctions",
    "iam:ListUsers",
    "iam:ListRoles",
    "iam:ListPolicies",
    "iam:ListGroups",
    "iam:GetAccountSummary",
    "iam:ListAccountAliases",
    "sts:AssumeRole",
    "sts:TagSession",
];

/// The IAM calls that name no resource.
const LIST_ALL: &[&str] = &[
    "iam:ListUsers",
    "iam:ListRoles",
    "iam:ListPolicies",
    "iam:ListGroups",
    "iam:GetAccountSummary",
    "iam:ListAccountAliases",
];

const TEAMS: &[&str] = &["dev", "ops", "dev-web"];
const ENVS: &[&str] = &["prod", "test"];
const PROJECTS: &[&str] = &["alpha", "alpha-2", "beta"];
const FUNCTIONS: &[&str] = &["swimlane-target", "diff-fn-a", "dev-worker", "ops-report"];

struct Generator {
    rng: Rng,
    /// Actions from the database: the called ones and others of the same services.
    db_actions: Vec<String>,
    users: Vec<String>,
    roles: Vec<String>,
}

impl Generator {
    fn new(seed: u64, db: &iamplan::lint::db::ActionDb) -> Generator {
        let mut db_actions = Vec::new();
        for called in CALLED {
            let (svc, name) = called.split_once(':').unwrap();
            let service = db.service(svc).expect("service in the action database");
            assert!(
                !service.matching(name).is_empty(),
                "{called} is not in the action database"
            );
        }
        for svc in ["iam", "lambda", "sts"] {
            for a in &db.service(svc).unwrap().actions {
                db_actions.push(format!("{svc}:{}", a.name));
            }
        }
        Generator {
            rng: Rng(seed),
            db_actions,
            users: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn action_pattern(&mut self) -> String {
        let r = &mut self.rng;
        match r.below(10) {
            0..=3 => r.pick(CALLED).to_string(),
            4 => r.pick(self.db_actions.as_slice()).clone(),
            5 => r
                .pick(&[
                    "iam:Get*",
                    "iam:List*",
                    "iam:*Role*",
                    "iam:*User*",
                    "iam:Get?ser",
                    "IAM:getrole",
                    "lambda:Get*",
                    "lambda:*",
                    "lambda:Invoke*",
                    "sts:*",
                    "sts:Assume*",
                    "*",
                ])
                .to_string(),
            6 => {
                // A wildcard built from a database action: a prefix of its name.
                let a = r.pick(self.db_actions.as_slice()).clone();
                let (svc, name) = a.split_once(':').unwrap();
                let cut = 1 + r.below(name.len().min(6));
                format!("{svc}:{}*", &name[..cut])
            }
            7 => "sts:AssumeRole".into(),
            8 => r
                .pick(&["iam:GetUser", "iam:GetRole", "iam:GetPolicy"])
                .to_string(),
            _ => r
                .pick(&[
                    "s3:GetObject",
                    "ec2:DescribeInstances",
                    "lambda:CreateFunction",
                ])
                .to_string(),
        }
    }

    fn resource_pattern(&mut self) -> String {
        let user = self.rng.pick(self.users.as_slice()).clone();
        let role = self.rng.pick(self.roles.as_slice()).clone();
        let r = &mut self.rng;
        let f = r.pick(FUNCTIONS);
        match r.below(24) {
            16 => "arn:aws:lambda:*:function:*".into(),
            17 => "arn:aws:lambda:us-*:function:dev-*".into(),
            18 => "arn:aws:iam:*:user/diff-u1*".into(),
            19 => "arn:aws:iam::*:role/DIFF-T*".into(),
            20 => format!("arn:aws:iam::{ACCOUNT}:user/diff-u?"),
            21 => "arn:aws:iam::*:policy/*".into(),
            22 => format!("arn:aws:iam::{ACCOUNT}:role/diff-*"),
            23 => "arn:aws:iam::*".into(),
            0..=2 => "*".into(),
            3 => format!("arn:aws:iam::{ACCOUNT}:user/{user}"),
            4 => format!("arn:aws:iam::{ACCOUNT}:role/{role}"),
            5 => format!("arn:aws:iam::{ACCOUNT}:user/*"),
            6 => "arn:aws:iam::*:role/diff-t*".into(),
            7 => format!("arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"),
            8 => format!("arn:aws:iam::{ACCOUNT}:role/${{aws:PrincipalTag/team}}-*"),
            9 => format!("arn:aws:iam::{OTHER}:role/*"),
            10 => "arn:aws:lambda:*:*:function:*".into(),
            11 => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{f}"),
            12 => format!("arn:aws:iam::{ACCOUNT}:policy/diff-*"),
            13 => format!("arn:aws:iam::{ACCOUNT}:group/*"),
            14 => format!("arn:aws:iam::{ACCOUNT}:*"),
            _ => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:dev-*"),
        }
    }

    /// One condition entry (operator, key, values) for an identity policy.
    fn identity_condition(&mut self) -> (String, String, Value) {
        let r = &mut self.rng;
        let team = r.pick(TEAMS).to_string();
        let env = r.pick(ENVS).to_string();
        let (op, key, vals): (&str, &str, Value) = match r.below(27) {
            24 => (
                if r.chance(50) {
                    "NumericGreaterThan"
                } else {
                    "NumericLessThan"
                },
                "aws:EpochTime",
                json!(if r.chance(50) {
                    "1500000000"
                } else {
                    "7000000000"
                }),
            ),
            25 => (
                "Null",
                "aws:TagKeys",
                json!(if r.chance(50) { "true" } else { "false" }),
            ),
            26 => (
                "StringLike",
                "aws:PrincipalTag/team",
                json!("${aws:PrincipalTag/team}"),
            ),
            14 => (
                "DateGreaterThan",
                "aws:CurrentTime",
                json!(if r.chance(50) {
                    "2020-01-01T00:00:00Z"
                } else {
                    "2199-01-01T00:00:00Z"
                }),
            ),
            15 => (
                if r.chance(50) {
                    "IpAddress"
                } else {
                    "NotIpAddress"
                },
                "aws:SourceIp",
                json!(if r.chance(50) {
                    "127.0.0.0/8"
                } else {
                    "10.0.0.0/8"
                }),
            ),
            16 => (
                "ArnLike",
                "aws:PrincipalArn",
                json!(r.pick(&[
                    "arn:aws:iam::000000000000:role/diff-*",
                    "arn:aws:iam::000000000000:user/*",
                    "arn:aws:sts::000000000000:assumed-role/*",
                ])),
            ),
            17 => (
                "StringEquals",
                "aws:PrincipalAccount",
                json!(if r.chance(70) { ACCOUNT } else { OTHER }),
            ),
            18 => (
                "StringNotLike",
                "aws:PrincipalTag/team",
                json!(["dev*", "x"]),
            ),
            19 => (
                "ForAllValues:StringLike",
                "aws:TagKeys",
                json!(["proj*", "cost"]),
            ),
            20 => ("StringEquals", "AWS:PrincipalTag/TEAM", json!(team)),
            21 => (
                "StringEquals",
                "aws:PrincipalTag/owner",
                json!("${aws:username}"),
            ),
            22 => (
                "StringNotEqualsIfExists",
                "aws:PrincipalTag/env",
                json!(env),
            ),
            23 => (
                "ForAnyValue:StringLike",
                "aws:PrincipalTag/team",
                json!("ops*"),
            ),
            0 => ("StringEquals", "aws:PrincipalTag/team", json!(team)),
            1 => ("StringLike", "aws:PrincipalTag/team", json!("dev*")),
            2 => ("StringEqualsIfExists", "aws:PrincipalTag/env", json!(env)),
            3 => (
                "Null",
                "aws:PrincipalTag/env",
                json!(if r.chance(50) { "true" } else { "false" }),
            ),
            4 => (
                "Bool",
                "aws:SecureTransport",
                json!(if r.chance(50) { "true" } else { "false" }),
            ),
            5 => ("BoolIfExists", "aws:MultiFactorAuthPresent", json!("false")),
            6 => ("StringLike", "aws:username", json!("diff-u1*")),
            7 => (
                "ForAnyValue:StringEquals",
                "aws:TagKeys",
                json!(["project", "cost"]),
            ),
            8 => ("StringLike", "aws:RequestTag/project", json!("alpha*")),
            9 => ("StringNotEquals", "aws:PrincipalTag/team", json!(team)),
            10 => (
                "StringEquals",
                "aws:RequestedRegion",
                json!(if r.chance(70) { REGION } else { "eu-west-1" }),
            ),
            11 => (
                "StringEquals",
                "aws:PrincipalTag/team",
                json!("${aws:PrincipalTag/team}"),
            ),
            12 => (
                "StringEqualsIgnoreCase",
                "aws:PrincipalTag/team",
                json!("DEV"),
            ),
            _ => (
                "StringEquals",
                "aws:PrincipalType",
                json!(["User", "AssumedRole"]),
            ),
        };
        (op.into(), key.into(), vals)
    }

    fn condition(&mut self, trust: bool) -> Value {
        let n = 1 + self.rng.below(2);
        let mut block = serde_json::Map::new();
        for _ in 0..n {
            let (op, key, vals) = if trust {
                self.trust_condition()
            } else {
                self.identity_condition()
            };
            let entry = block
                .entry(op)
                .or_insert_with(|| Value::Object(Default::default()));
            entry.as_object_mut().unwrap().insert(key, vals);
        }
        Value::Object(block)
    }

    fn statement(&mut self, allow_share: u64) -> Value {
        let effect = if self.rng.chance(allow_share) {
            "Allow"
        } else {
            "Deny"
        };
        let mut s = serde_json::Map::new();
        s.insert("Effect".into(), json!(effect));
        let actions: Vec<String> = (0..1 + self.rng.below(3))
            .map(|_| self.action_pattern())
            .collect();
        let a = one_or_many(actions, &mut self.rng);
        let na = self.rng.chance(12);
        s.insert((if na { "NotAction" } else { "Action" }).into(), a);
        let resources: Vec<String> = (0..1 + self.rng.below(2))
            .map(|_| self.resource_pattern())
            .collect();
        let res = one_or_many(resources, &mut self.rng);
        let nr = self.rng.chance(10);
        s.insert((if nr { "NotResource" } else { "Resource" }).into(), res);
        if self.rng.chance(40) {
            s.insert("Condition".into(), self.condition(false));
        }
        Value::Object(s)
    }

    fn identity_policy(&mut self) -> Value {
        let n = 1 + self.rng.below(3);
        let mut stmts: Vec<Value> = (0..n).map(|_| self.statement(78)).collect();
        // A broad Allow makes the Deny statements and conditions decide more often.
        if self.rng.chance(35) {
            stmts.push(json!({"Effect": "Allow", "Action": ["iam:*", "lambda:*", "sts:*"], "Resource": "*"}));
        }
        self.document(stmts)
    }

    /// The document around statements: mostly 2012-10-17, sometimes the 2008-10-17 language
    /// or no Version (policy variables are then literal text), one statement sometimes bare.
    fn document(&mut self, mut stmts: Vec<Value>) -> Value {
        let statement = if stmts.len() == 1 && self.rng.chance(25) {
            stmts.pop().unwrap()
        } else {
            json!(stmts)
        };
        match self.rng.below(10) {
            0 => json!({"Version": "2008-10-17", "Statement": statement}),
            1 => json!({"Statement": statement}),
            _ => json!({"Version": "2012-10-17", "Statement": statement}),
        }
    }

    fn tags(&mut self) -> Vec<(String, String)> {
        let r = &mut self.rng;
        let mut t = Vec::new();
        if r.chance(80) {
            t.push(("team".into(), r.pick(TEAMS).to_string()));
        }
        if r.chance(50) {
            t.push(("env".into(), r.pick(ENVS).to_string()));
        }
        if r.chance(20) {
            t.push(("owner".into(), format!("diff-u{}", r.below(20))));
        }
        t
    }

    fn principal(&mut self, i: usize) -> Principal {
        let kind = if self.rng.chance(60) {
            Kind::User
        } else {
            Kind::Role
        };
        let name = match kind {
            Kind::User => format!("diff-u{i}"),
            Kind::Role => format!("diff-r{i}"),
        };
        let tags = self.tags();
        let session_tags = if kind == Kind::Role {
            self.tags()
        } else {
            Vec::new()
        };
        let n = 1 + self.rng.below(2);
        let policies = (0..n)
            .map(|_| (self.identity_policy(), self.rng.chance(30)))
            .collect();
        let group = (kind == Kind::User && self.rng.chance(30)).then(|| self.identity_policy());
        let boundary = self.rng.chance(25).then(|| self.boundary());
        Principal {
            name,
            kind,
            tags,
            session_tags,
            policies,
            group,
            boundary,
        }
    }

    /// A permissions boundary: mostly broad, so that it narrows rather than blocks.
    fn boundary(&mut self) -> Value {
        let mut stmts: Vec<Value> = (0..1 + self.rng.below(2))
            .map(|_| self.statement(85))
            .collect();
        if self.rng.chance(60) {
            let broad = self
                .rng
                .pick(&["iam:*", "lambda:*", "sts:*", "iam:Get*", "*"])
                .to_string();
            stmts.push(json!({"Effect": "Allow", "Action": [broad, "sts:*"], "Resource": "*"}));
        }
        json!({"Version": "2012-10-17", "Statement": stmts})
    }

    fn trust_condition(&mut self) -> (String, String, Value) {
        let r = &mut self.rng;
        let team = r.pick(TEAMS).to_string();
        let (op, key, vals): (&str, &str, Value) = match r.below(13) {
            9 => (
                "StringLike",
                "sts:RoleSessionName",
                json!(if r.chance(50) { "di*" } else { "x*" }),
            ),
            10 => ("StringNotEquals", "sts:ExternalId", json!("EXT")),
            11 => ("StringEqualsIfExists", "sts:ExternalId", json!("EXT")),
            12 => (
                "ArnLike",
                "aws:PrincipalArn",
                json!("arn:aws:iam::000000000000:user/diff-u*"),
            ),
            0 | 1 => ("StringEquals", "sts:ExternalId", json!("EXT")),
            2 => ("Null", "sts:ExternalId", json!("false")),
            3 => ("StringEquals", "aws:PrincipalTag/team", json!(team)),
            4 => ("StringLike", "aws:RequestTag/project", json!("alpha*")),
            5 => (
                "ForAllValues:StringEquals",
                "aws:TagKeys",
                json!(["project", "cost"]),
            ),
            6 => ("StringEqualsIfExists", "aws:RequestTag/cost", json!("1")),
            7 => ("StringLike", "aws:PrincipalTag/env", json!("*")),
            _ => ("StringEquals", "aws:PrincipalType", json!("User")),
        };
        (op.into(), key.into(), vals)
    }

    /// A role to assume, in this account or (`account` OTHER) across accounts.
    fn target(&mut self, j: usize, principals: &[Principal], account: &'static str) -> Target {
        let external_id = format!("ext-{j}");
        let n = 1 + self.rng.below(2);
        let mut stmts = Vec::new();
        for k in 0..n {
            let user = principals
                .iter()
                .filter(|p| p.kind == Kind::User)
                .nth(self.rng.below(8))
                .map(|p| p.arn())
                .unwrap_or_else(|| format!("arn:aws:iam::{ACCOUNT}:root"));
            let role = self.roles[self.rng.below(self.roles.len().min(8))].clone();
            let r = &mut self.rng;
            let principal = match r.below(13) {
                // IAM resolves a named user to its unique ID: the name's case does not matter.
                11 => {
                    let (head, name) = user.rsplit_once('/').unwrap_or(("", &user));
                    json!({"AWS": format!("{head}/{}", name.to_uppercase())})
                }
                12 => json!({"AWS": [user.clone(), format!("arn:aws:iam::{ACCOUNT}:role/{role}")]}),
                8 => json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:role/{role}")}),
                9 => json!({"AWS": format!("arn:aws:sts::{ACCOUNT}:assumed-role/{role}/diff")}),
                10 => json!("*"),
                0..=2 => json!({"AWS": format!("arn:aws:iam::{ACCOUNT}:root")}),
                3 => json!({"AWS": ACCOUNT}),
                4 => json!({"AWS": user}),
                5 => json!({"AWS": format!("arn:aws:iam::{OTHER}:root")}),
                6 => {
                    json!({"AWS": [format!("arn:aws:iam::{ACCOUNT}:root"), format!("arn:aws:iam::{OTHER}:root")]})
                }
                _ => json!({"Service": "lambda.amazonaws.com"}),
            };
            let action = if r.chance(70) {
                json!(["sts:AssumeRole", "sts:TagSession"])
            } else {
                json!("sts:AssumeRole")
            };
            let effect = if k > 0 && r.chance(40) {
                "Deny"
            } else {
                "Allow"
            };
            let mut s = if r.chance(10) {
                // Everything but the tagging: AssumeRole without session tags.
                json!({"Effect": effect, "Principal": principal, "NotAction": "sts:TagSession"})
            } else {
                json!({"Effect": effect, "Principal": principal, "Action": action})
            };
            if self.rng.chance(65) {
                let mut c = self.condition(true);
                // The external ID of this role, not a shared one.
                for op in ["StringEquals", "StringNotEquals", "StringEqualsIfExists"] {
                    if let Some(v) = c.get_mut(op).and_then(|b| b.get_mut("sts:ExternalId")) {
                        *v = json!(external_id);
                    }
                }
                s["Condition"] = c;
            }
            stmts.push(s);
        }
        Target {
            name: if account == ACCOUNT {
                format!("diff-t{j}")
            } else {
                format!("diff-x{j}")
            },
            account,
            trust: json!({"Version": "2012-10-17", "Statement": stmts}),
            external_id,
        }
    }

    fn call(&mut self, me: &Principal, targets: &[Target]) -> Call {
        let user = if self.rng.chance(30) && me.kind == Kind::User {
            me.name.clone()
        } else {
            self.rng.pick(self.users.as_slice()).clone()
        };
        let role = self.rng.pick(self.roles.as_slice()).clone();
        let r = &mut self.rng;
        let policy = match r.below(4) {
            0 => format!("arn:aws:iam::{ACCOUNT}:policy/diff-p{}", r.below(50)),
            1 => format!("arn:aws:iam::{ACCOUNT}:policy/other"),
            2 => format!("arn:aws:iam::{OTHER}:policy/diff-x"),
            _ => format!("arn:aws:iam::{ACCOUNT}:policy/diff-missing"),
        };
        let function = r.pick(FUNCTIONS).to_string();
        match r.below(22) {
            20 | 21 => Call::ListAll(LIST_ALL[r.below(LIST_ALL.len())]),
            0 | 1 => Call::GetUser(user),
            2 => Call::ListUserPolicies(user),
            3 => Call::ListGroupsForUser(user),
            4 => Call::ListAccessKeys(user),
            5 | 6 => Call::GetRole(role),
            7 => Call::ListRolePolicies(role),
            8 => Call::ListAttachedRolePolicies(role),
            9 => Call::GetGroup(r.pick(&["diff-g", "dev-team"]).to_string()),
            10 => Call::GetPolicy(policy),
            11 => Call::ListPolicyVersions(policy),
            12 => Call::GetFunction(function),
            13 => Call::GetFunctionConfiguration(function),
            // Only functions that do not exist: the handler would cost a worker process.
            14 => Call::InvokeFunction(r.pick(&["diff-fn-a", "dev-worker"]).to_string()),
            15 => Call::ListFunctions,
            _ => {
                let t = r.pick(targets);
                let external_id = match r.below(3) {
                    0 => Some(t.external_id.clone()),
                    1 => Some("wrong".to_string()),
                    _ => None,
                };
                let mut tags = Vec::new();
                if r.chance(50) {
                    tags.push(("project".to_string(), r.pick(PROJECTS).to_string()));
                    if r.chance(30) {
                        tags.push(("cost".to_string(), r.pick(&["1", "2"]).to_string()));
                    }
                    if r.chance(15) {
                        tags.push(("owner".to_string(), "x".to_string()));
                    }
                }
                Call::AssumeRole {
                    role: t.arn(),
                    external_id,
                    tags,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Offline.

fn caller_of(p: &Principal) -> Caller {
    match p.kind {
        Kind::User => Caller::iam(CallerKind::User, &p.arn()),
        Kind::Role => {
            let mut c = Caller::iam(CallerKind::Role, &p.arn());
            c.session_arn = Some(format!(
                "arn:aws:sts::{ACCOUNT}:assumed-role/{}/diff",
                p.name
            ));
            c
        }
    }
}

/// Everything the request carries, as AWS would give it (the emulator speaks plain HTTP).
fn context_of(p: &Principal, call: &Call, caller: &Caller, model: Model) -> Context {
    let mut ctx = Context::new().complete();
    if model.session_principal_arn
        && let Some(s) = &caller.session_arn
    {
        ctx.add("aws:PrincipalArn", s);
    }
    for (k, v) in p.principal_tags() {
        ctx.add(&format!("aws:PrincipalTag/{k}"), &v);
    }
    ctx.add("aws:SecureTransport", "false");
    ctx.add("aws:SourceIp", "127.0.0.1");
    ctx.add(
        "aws:CurrentTime",
        &jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string(),
    );
    ctx.add("aws:RequestedRegion", REGION);
    ctx.add(
        "aws:EpochTime",
        &jiff::Timestamp::now().as_second().to_string(),
    );
    if p.kind == Kind::Role {
        // Temporary credentials carry the key; long-term keys do not.
        ctx.add("aws:MultiFactorAuthPresent", "false");
    }
    if let Call::AssumeRole {
        external_id, tags, ..
    } = call
    {
        if let Some(e) = external_id {
            ctx.add("sts:ExternalId", e);
        }
        ctx.add("sts:RoleSessionName", "diff");
        for (k, v) in tags {
            ctx.add(&format!("aws:RequestTag/{k}"), v);
            ctx.add("aws:TagKeys", k);
        }
    }
    caller.context_keys(&mut ctx);
    ctx
}

/// How the offline answer is computed: as AWS (all false), or with emulator departures
/// modelled, one per named difference.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
struct Model {
    literal_variables: bool,
    tag_session_trust_only: bool,
    identity_always_needed: bool,
    session_principal_arn: bool,
    other_account_as_own: bool,
}

const AWS: Model = Model {
    literal_variables: false,
    tag_session_trust_only: false,
    identity_always_needed: false,
    session_principal_arn: false,
    other_account_as_own: false,
};

impl Model {
    /// Every combination of departures, fewest first, with the names it stands for.
    fn departures() -> Vec<(Model, Vec<&'static str>)> {
        let mut all: Vec<(Model, Vec<&'static str>)> = (1..32u8)
            .map(|bits| {
                let m = Model {
                    literal_variables: bits & 1 != 0,
                    tag_session_trust_only: bits & 2 != 0,
                    identity_always_needed: bits & 4 != 0,
                    session_principal_arn: bits & 8 != 0,
                    other_account_as_own: bits & 16 != 0,
                };
                let names = EMULATOR_DIFFERENCES
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, (n, _))| *n)
                    .collect();
                (m, names)
            })
            .collect();
        all.sort_by_key(|(_, n)| n.len());
        all
    }
}

fn literal(doc: &Value) -> Value {
    let mut d = doc.clone();
    d["Version"] = json!("2008-10-17");
    d
}

fn offline(p: &Principal, call: &Call, targets: &[Target], model: Model) -> Decision {
    let caller = caller_of(p);
    let ctx = context_of(p, call, &caller, model);
    let as_modelled = |d: &Value| {
        if model.literal_variables {
            literal(d)
        } else {
            d.clone()
        }
    };
    let docs: Vec<Value> = p
        .policies
        .iter()
        .map(|(d, _)| d)
        .chain(&p.group)
        .map(as_modelled)
        .collect();
    let boundary = p.boundary.as_ref().map(as_modelled);
    let identity: Vec<Policy> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| Policy {
            source: PolicySource {
                kind: PolicyKind::Identity,
                name: format!("{} policy {i}", p.name),
            },
            document: Some(d),
        })
        .collect();
    let resource = call.resource();
    let resource_account = if model.other_account_as_own {
        Some(ACCOUNT.to_string())
    } else {
        iamplan::access::matcher::arn_account(&resource).map(str::to_string)
    };
    let one =
        |action: &str, trust: Option<&Value>, identity: &[Policy], boundary: Option<&Value>| {
            decide(
                &caller,
                &ctx,
                &resource,
                &resource_account,
                action,
                trust,
                identity,
                boundary,
            )
        };
    let b = boundary.as_ref();
    let Call::AssumeRole { role, tags, .. } = call else {
        return one(call.action(), None, &identity, b);
    };
    let target = targets.iter().find(|t| t.arn() == *role).unwrap();
    let trust = if model.literal_variables {
        literal(&target.trust)
    } else {
        target.trust.clone()
    };
    let mut d = one("sts:AssumeRole", Some(&trust), &identity, b);
    if model.identity_always_needed {
        d = both(d, one("sts:AssumeRole", None, &identity, b));
    }
    if !tags.is_empty() {
        let tag = if model.tag_session_trust_only {
            // The trust alone: as if the identity side allowed everything.
            let all = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]});
            let only = vec![Policy {
                source: PolicySource {
                    kind: PolicyKind::Identity,
                    name: "all".into(),
                },
                document: Some(&all),
            }];
            one("sts:TagSession", Some(&trust), &only, None)
        } else {
            one("sts:TagSession", Some(&trust), &identity, b)
        };
        d = both(d, tag);
    }
    d
}

#[allow(clippy::too_many_arguments)]
fn decide(
    caller: &Caller,
    ctx: &Context,
    resource: &str,
    resource_account: &Option<String>,
    action: &str,
    trust: Option<&Value>,
    identity: &[Policy],
    boundary: Option<&Value>,
) -> Decision {
    let set = PolicySet {
        identity: identity.to_vec(),
        boundary: boundary.map(|d| Policy {
            source: PolicySource {
                kind: PolicyKind::PermissionsBoundary,
                name: "boundary".into(),
            },
            document: Some(d),
        }),
        resource: trust.map(|t| Policy {
            source: PolicySource {
                kind: PolicyKind::Trust,
                name: "trust".into(),
            },
            document: Some(t),
        }),
        identity_known: true,
        resource_account: resource_account.clone(),
    };
    let req = Request {
        caller,
        action,
        resource,
        context: ctx,
    };
    evaluate(&req, &set).decision
}

fn both(a: Decision, b: Decision) -> Decision {
    match (a, b) {
        (Decision::ExplicitlyDenied, _) | (_, Decision::ExplicitlyDenied) => {
            Decision::ExplicitlyDenied
        }
        (Decision::ImplicitlyDenied, _) | (_, Decision::ImplicitlyDenied) => {
            Decision::ImplicitlyDenied
        }
        (u @ Decision::Unknown { .. }, _) | (_, u @ Decision::Unknown { .. }) => u,
        (Decision::Allowed, Decision::Allowed) => Decision::Allowed,
    }
}

/// The named emulator differences that together explain a disagreement (the fewest that
/// do, joined by `+`), or `unexplained`.
fn categorise(p: &Principal, call: &Call, targets: &[Target], emulator: bool) -> String {
    for (m, names) in Model::departures() {
        let d = offline(p, call, targets, m);
        if !matches!(d, Decision::Unknown { .. }) && d.is_allowed() == emulator {
            return names.join("+");
        }
    }
    "unexplained".into()
}

// ---------------------------------------------------------------------------------------
// Against the emulator.

struct Clients {
    iam: aws_sdk_iam::Client,
    sts: aws_sdk_sts::Client,
    lambda: aws_sdk_lambda::Client,
}

fn clients(base: &aws_config::SdkConfig, creds: Credentials) -> Clients {
    let iam = aws_sdk_iam::config::Builder::from(base)
        .credentials_provider(creds.clone())
        .build();
    let sts = aws_sdk_sts::config::Builder::from(base)
        .credentials_provider(creds.clone())
        .build();
    let lambda = aws_sdk_lambda::config::Builder::from(base)
        .credentials_provider(creds)
        .build();
    Clients {
        iam: aws_sdk_iam::Client::from_conf(iam),
        sts: aws_sdk_sts::Client::from_conf(sts),
        lambda: aws_sdk_lambda::Client::from_conf(lambda),
    }
}

/// Allowed (`Ok(true)`), denied (`Ok(false)`), or a failure that says neither.
fn outcome<T, E: ProvideErrorMetadata + std::fmt::Debug>(r: Result<T, E>) -> Result<bool, String> {
    match r {
        Ok(_) => Ok(true),
        Err(e) => match e.code() {
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation") => Ok(false),
            // The call passed authorization and failed on what it named.
            // (A validation error may come before the trust policy is read: not counted.)
            Some("NoSuchEntity" | "ResourceNotFoundException" | "NoSuchEntityException") => {
                Ok(true)
            }
            _ => Err(format!("{e:?}")),
        },
    }
}

async fn run_call(c: &Clients, call: &Call) -> Result<bool, String> {
    match call {
        Call::GetUser(n) => outcome(c.iam.get_user().user_name(n).send().await),
        Call::ListUserPolicies(n) => outcome(c.iam.list_user_policies().user_name(n).send().await),
        Call::ListGroupsForUser(n) => {
            outcome(c.iam.list_groups_for_user().user_name(n).send().await)
        }
        Call::ListAccessKeys(n) => outcome(c.iam.list_access_keys().user_name(n).send().await),
        Call::GetRole(n) => outcome(c.iam.get_role().role_name(n).send().await),
        Call::ListRolePolicies(n) => outcome(c.iam.list_role_policies().role_name(n).send().await),
        Call::ListAttachedRolePolicies(n) => outcome(
            c.iam
                .list_attached_role_policies()
                .role_name(n)
                .send()
                .await,
        ),
        Call::GetGroup(n) => outcome(c.iam.get_group().group_name(n).send().await),
        Call::GetPolicy(a) => outcome(c.iam.get_policy().policy_arn(a).send().await),
        Call::ListPolicyVersions(a) => {
            outcome(c.iam.list_policy_versions().policy_arn(a).send().await)
        }
        Call::GetFunction(n) => outcome(c.lambda.get_function().function_name(n).send().await),
        Call::GetFunctionConfiguration(n) => outcome(
            c.lambda
                .get_function_configuration()
                .function_name(n)
                .send()
                .await,
        ),
        Call::InvokeFunction(n) => outcome(c.lambda.invoke().function_name(n).send().await),
        Call::ListFunctions => outcome(c.lambda.list_functions().send().await),
        Call::ListAll(a) => match *a {
            "iam:ListUsers" => outcome(c.iam.list_users().send().await),
            "iam:ListRoles" => outcome(c.iam.list_roles().send().await),
            "iam:ListPolicies" => outcome(c.iam.list_policies().send().await),
            "iam:ListGroups" => outcome(c.iam.list_groups().send().await),
            "iam:GetAccountSummary" => outcome(c.iam.get_account_summary().send().await),
            "iam:ListAccountAliases" => outcome(c.iam.list_account_aliases().send().await),
            other => unreachable!("{other} is not generated"),
        },
        Call::AssumeRole {
            role,
            external_id,
            tags,
        } => {
            let mut req = c
                .sts
                .assume_role()
                .role_arn(role)
                .role_session_name("diff")
                .set_external_id(external_id.clone());
            for (k, v) in tags {
                req = req.tags(
                    aws_sdk_sts::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .unwrap(),
                );
            }
            outcome(req.send().await)
        }
    }
}

fn iam_tags(tags: &[(String, String)]) -> Vec<aws_sdk_iam::types::Tag> {
    tags.iter()
        .map(|(k, v)| {
            aws_sdk_iam::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
                .unwrap()
        })
        .collect()
}

/// Creates the principal (as the account root) and returns clients with its credentials.
async fn create(
    root: &aws_sdk_iam::Client,
    root_sts: &aws_sdk_sts::Client,
    base: &aws_config::SdkConfig,
    p: &Principal,
) -> Clients {
    let name = &p.name;
    match p.kind {
        Kind::User => {
            root.create_user()
                .user_name(name)
                .set_tags(Some(iam_tags(&p.tags)))
                .send()
                .await
                .expect("CreateUser as root");
        }
        Kind::Role => {
            let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
                "Action": ["sts:AssumeRole", "sts:TagSession"]}]});
            root.create_role()
                .role_name(name)
                .assume_role_policy_document(trust.to_string())
                .set_tags(Some(iam_tags(&p.tags)))
                .send()
                .await
                .expect("CreateRole as root");
        }
    }
    for (i, (doc, managed)) in p.policies.iter().enumerate() {
        let pname = format!("{name}-p{i}");
        if *managed {
            let arn = root
                .create_policy()
                .policy_name(&pname)
                .policy_document(doc.to_string())
                .send()
                .await
                .expect("CreatePolicy as root")
                .policy
                .and_then(|p| p.arn)
                .expect("a policy ARN");
            match p.kind {
                Kind::User => root
                    .attach_user_policy()
                    .user_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}")),
                Kind::Role => root
                    .attach_role_policy()
                    .role_name(name)
                    .policy_arn(arn)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}")),
            }
            .expect("attach as root");
        } else {
            match p.kind {
                Kind::User => root
                    .put_user_policy()
                    .user_name(name)
                    .policy_name(&pname)
                    .policy_document(doc.to_string())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}")),
                Kind::Role => root
                    .put_role_policy()
                    .role_name(name)
                    .policy_name(&pname)
                    .policy_document(doc.to_string())
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{e:?}")),
            }
            .expect("put inline policy as root");
        }
    }
    if let Some(doc) = &p.group {
        let g = format!("{name}-g");
        root.create_group()
            .group_name(&g)
            .send()
            .await
            .expect("CreateGroup as root");
        root.put_group_policy()
            .group_name(&g)
            .policy_name("p")
            .policy_document(doc.to_string())
            .send()
            .await
            .expect("PutGroupPolicy as root");
        root.add_user_to_group()
            .group_name(&g)
            .user_name(name)
            .send()
            .await
            .expect("AddUserToGroup as root");
    }
    if let Some(doc) = &p.boundary {
        let arn = root
            .create_policy()
            .policy_name(format!("{name}-boundary"))
            .policy_document(doc.to_string())
            .send()
            .await
            .expect("CreatePolicy (boundary) as root")
            .policy
            .and_then(|p| p.arn)
            .expect("a policy ARN");
        match p.kind {
            Kind::User => root
                .put_user_permissions_boundary()
                .user_name(name)
                .permissions_boundary(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}")),
            Kind::Role => root
                .put_role_permissions_boundary()
                .role_name(name)
                .permissions_boundary(arn)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| format!("{e:?}")),
        }
        .expect("put permissions boundary as root");
    }
    let creds = match p.kind {
        Kind::User => {
            let key = root
                .create_access_key()
                .user_name(name)
                .send()
                .await
                .expect("CreateAccessKey as root")
                .access_key
                .expect("an access key");
            Credentials::new(key.access_key_id, key.secret_access_key, None, None, "diff")
        }
        Kind::Role => {
            let mut req = root_sts
                .assume_role()
                .role_arn(p.arn())
                .role_session_name("diff");
            for (k, v) in &p.session_tags {
                req = req.tags(
                    aws_sdk_sts::types::Tag::builder()
                        .key(k)
                        .value(v)
                        .build()
                        .unwrap(),
                );
            }
            let c = req
                .send()
                .await
                .expect("AssumeRole as root")
                .credentials
                .expect("session credentials");
            Credentials::new(
                c.access_key_id,
                c.secret_access_key,
                Some(c.session_token),
                None,
                "diff",
            )
        }
    };
    clients(base, creds)
}

#[derive(Default)]
struct Tally {
    requests: usize,
    agree: usize,
    unknown: usize,
    allowed: usize,
    by_category: BTreeMap<String, usize>,
    by_action: BTreeMap<&'static str, (usize, usize, usize)>,
    examples: Vec<String>,
    unknown_why: BTreeMap<String, usize>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn offline_evaluator_agrees_with_the_emulators_enforcement() {
    let requests: usize = std::env::var("IAMPLAN_DIFFERENTIAL_REQUESTS")
        .ok()
        .map(|v| {
            v.parse()
                .expect("IAMPLAN_DIFFERENTIAL_REQUESTS is a number")
        })
        .unwrap_or(600);
    let seed: u64 = std::env::var("IAMPLAN_DIFFERENTIAL_SEED")
        .ok()
        .map(|v| v.parse().expect("IAMPLAN_DIFFERENTIAL_SEED is a number"))
        .unwrap_or(15);
    let started = Instant::now();
    let emu = common::Emulator::start("ministack");
    let base = emu
        .sdk_config(
            &emu.var("AWS_ACCESS_KEY_ID"),
            &emu.var("AWS_SECRET_ACCESS_KEY"),
        )
        .await;
    let root = aws_sdk_iam::Client::new(&base);
    let root_sts = aws_sdk_sts::Client::new(&base);

    let db = iamplan::lint::db::load();
    let mut g = Generator::new(seed, &db);
    let count = requests.div_ceil(REQUESTS_PER_PRINCIPAL);
    // Names first: the policies name each other's users and roles.
    for i in 0..count {
        g.users.push(format!("diff-u{i}"));
        g.roles.push(format!("diff-r{i}"));
    }
    g.users.push("nobody".into());
    g.roles
        .extend(["dev-app".into(), "ops-app".into(), "diff-t0".into()]);
    let principals: Vec<Principal> = (0..count).map(|i| g.principal(i)).collect();
    let mut targets: Vec<Target> = (0..12).map(|j| g.target(j, &principals, ACCOUNT)).collect();
    targets.extend((0..6).map(|j| g.target(j, &principals, OTHER)));
    // The emulator takes a 12-digit access key as that account's root.
    let other_root = aws_sdk_iam::Client::from_conf(
        aws_sdk_iam::config::Builder::from(&base)
            .credentials_provider(Credentials::new(OTHER, "test", None, None, "diff"))
            .build(),
    );
    for t in &targets {
        let root = if t.account == ACCOUNT {
            &root
        } else {
            &other_root
        };
        root.create_role()
            .role_name(&t.name)
            .assume_role_policy_document(t.trust.to_string())
            .send()
            .await
            .expect("CreateRole (target) as root");
    }
    let mut cases: Vec<(usize, Call)> = Vec::new();
    for (i, p) in principals.iter().enumerate() {
        for _ in 0..REQUESTS_PER_PRINCIPAL {
            if cases.len() < requests {
                cases.push((i, g.call(p, &targets)));
            }
        }
    }
    let setup_started = Instant::now();
    let all_clients: Vec<Clients> = futures::stream::iter(principals.iter())
        .map(|p| create(&root, &root_sts, &base, p))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let setup = setup_started.elapsed();

    let calls_started = Instant::now();
    let answers: Vec<Result<bool, String>> = futures::stream::iter(cases.iter())
        .map(|(i, call)| run_call(&all_clients[*i], call))
        .buffered(IN_FLIGHT)
        .collect()
        .await;
    let calls = calls_started.elapsed();

    let mut t = Tally::default();
    let mut failures = Vec::new();
    for ((i, call), answer) in cases.iter().zip(answers) {
        let p = &principals[*i];
        let emulator = match answer {
            Ok(a) => a,
            Err(e) => {
                failures.push(format!("{} {:?}: {e}", p.name, call));
                continue;
            }
        };
        t.requests += 1;
        let key = match call {
            Call::AssumeRole { role, .. } if !role.contains(ACCOUNT) => {
                "sts:AssumeRole (cross-account)"
            }
            _ => call.action(),
        };
        let entry = t.by_action.entry(key).or_default();
        entry.0 += 1;
        if emulator {
            t.allowed += 1;
            entry.1 += 1;
        }
        let d = offline(p, call, &targets, AWS);
        if let Decision::Unknown { reasons } = &d {
            t.unknown += 1;
            let why = reasons.first().cloned().unwrap_or_default();
            // One line per kind of reason, not per principal.
            let why = if why.contains("is in another account") {
                "a resource in another account (its resource policy is not known offline)".into()
            } else {
                why
            };
            *t.unknown_why.entry(why).or_default() += 1;
            continue;
        }
        if d.is_allowed() == emulator {
            t.agree += 1;
            continue;
        }
        entry.2 += 1;
        let cat = categorise(p, call, &targets, emulator);
        let unexplained = cat == "unexplained";
        *t.by_category.entry(cat).or_default() += 1;
        if unexplained && t.examples.len() < 10 {
            let trust = match call {
                Call::AssumeRole { role, .. } => targets
                    .iter()
                    .find(|x| x.arn() == *role)
                    .map(|x| x.trust.to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            };
            t.examples.push(format!(
                "{} ({:?}, tags {:?}) {:?}: emulator {}, offline {d:?}\n  policies: {}\n  group: {}\n  boundary: {}\n  trust: {trust}",
                p.name,
                p.kind,
                p.principal_tags(),
                call,
                if emulator { "allowed" } else { "denied" },
                p.policies
                    .iter()
                    .map(|(d, _)| d.to_string())
                    .collect::<Vec<_>>()
                    .join("\n            "),
                p.group.as_ref().map(|g| g.to_string()).unwrap_or_default(),
                p.boundary.as_ref().map(|g| g.to_string()).unwrap_or_default(),
            ));
        }
    }
    let decided = t.requests - t.unknown;
    let disagree: usize = t.by_category.values().sum();
    eprintln!(
        "differential (seed {seed}): {} requests ({} allowed by the emulator) over {} principals; \
         {} decided offline, {} agree ({:.2}%), {disagree} disagree {:?}, {} unknown; \
         setup {:.1?}, calls {:.1?}, total {:.1?}",
        t.requests,
        t.allowed,
        principals.len(),
        decided,
        t.agree,
        100.0 * t.agree as f64 / decided.max(1) as f64,
        t.by_category,
        t.unknown,
        setup,
        calls,
        started.elapsed()
    );
    eprintln!(
        "by action (requests, allowed by the emulator, disagreements): {:?}",
        t.by_action
    );
    eprintln!("unknown, by first reason: {:#?}", t.unknown_why);
    assert!(
        failures.is_empty(),
        "{} calls answered neither allowed nor denied:\n{}",
        failures.len(),
        failures[..failures.len().min(10)].join("\n")
    );
    let unexplained = t.by_category.get("unexplained").copied().unwrap_or(0);
    assert_eq!(
        unexplained,
        0,
        "disagreements that no named emulator difference explains:\n{}",
        t.examples.join("\n")
    );

    // The run must exercise both answers, or agreement says little.
    assert!(t.allowed > t.requests / 10 && t.allowed < t.requests * 9 / 10);
}
