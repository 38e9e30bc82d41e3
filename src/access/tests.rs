//! Hand-written cases with known answers: classification pairs (one test each), the
//! evaluator, and the plan-level questions (explain, who-can).

use super::*;
use crate::lint::db::ActionDb;
use Classification::*;
use serde_json::{Value, json};
use std::sync::OnceLock;

fn db() -> &'static ActionDb {
    static DB: OnceLock<ActionDb> = OnceLock::new();
    DB.get_or_init(crate::lint::db::load)
}

fn doc(stmts: Value) -> Value {
    json!({"Version": "2012-10-17", "Statement": stmts})
}

fn allow(action: Value, resource: Value) -> Value {
    json!({"Effect": "Allow", "Action": action, "Resource": resource})
}

fn deny(action: Value, resource: Value) -> Value {
    json!({"Effect": "Deny", "Action": action, "Resource": resource})
}

fn with_cond(mut s: Value, cond: Value) -> Value {
    s["Condition"] = cond;
    s
}

fn trust(principal: Value) -> Value {
    json!({"Effect": "Allow", "Principal": principal, "Action": "sts:AssumeRole"})
}

const B: &str = "arn:aws:s3:::bucket/*";
const OWN: &str = "000000000000";

/// Identity-policy pairs: (old statements, new statements) -> expected.
macro_rules! pair {
    ($name:ident, $old:expr, $new:expr, $want:expr) => {
        #[test]
        fn $name() {
            let d = classify(&doc($old), &doc($new), db());
            assert_eq!(d.classification, $want, "{:#?}", d.lines());
        }
    };
}

/// Trust-policy pairs, the role in account 000000000000.
macro_rules! trust_pair {
    ($name:ident, $old:expr, $new:expr, $want:expr) => {
        #[test]
        fn $name() {
            let d = classify_trust(&doc($old), &doc($new), db(), Some(OWN));
            assert_eq!(d.classification, $want, "{:#?}", d.lines());
        }
    };
}

// --- Actions and wildcards ---
pair!(
    same_document_is_equivalent,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Equivalent
);
pair!(
    action_case_is_equivalent,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("S3:getobject"), json!(B))]),
    Equivalent
);
pair!(
    single_string_equals_array,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!(["s3:GetObject"]), json!([B]))]),
    Equivalent
);
pair!(
    reordered_actions_are_equivalent,
    json!([allow(json!(["s3:GetObject", "s3:PutObject"]), json!(B))]),
    json!([allow(json!(["s3:PutObject", "s3:GetObject"]), json!(B))]),
    Equivalent
);
pair!(
    reordered_statements_are_equivalent,
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        allow(json!("sqs:SendMessage"), json!("*"))
    ]),
    json!([
        allow(json!("sqs:SendMessage"), json!("*")),
        allow(json!("s3:GetObject"), json!(B))
    ]),
    Equivalent
);
pair!(
    split_statement_is_equivalent,
    json!([allow(json!(["s3:GetObject", "s3:PutObject"]), json!(B))]),
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        allow(json!("s3:PutObject"), json!(B))
    ]),
    Equivalent
);
pair!(
    merged_statements_are_equivalent,
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        allow(json!("s3:PutObject"), json!(B))
    ]),
    json!([allow(json!(["s3:GetObject", "s3:PutObject"]), json!(B))]),
    Equivalent
);
pair!(
    adding_an_action_widens,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!(["s3:GetObject", "s3:DeleteObject"]), json!(B))]),
    Widens
);
pair!(
    removing_an_action_narrows,
    json!([allow(json!(["s3:GetObject", "s3:DeleteObject"]), json!(B))]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Narrows
);
pair!(
    replacing_an_action_changes,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("s3:PutObject"), json!(B))]),
    Changes
);
pair!(
    get_star_to_star_widens,
    json!([allow(json!("s3:Get*"), json!(B))]),
    json!([allow(json!("s3:*"), json!(B))]),
    Widens
);
pair!(
    star_to_get_star_narrows,
    json!([allow(json!("s3:*"), json!(B))]),
    json!([allow(json!("s3:Get*"), json!(B))]),
    Narrows
);
pair!(
    wildcard_to_its_expansion_is_equivalent_or_narrower,
    json!([allow(json!("sqs:SendMessage*"), json!("*"))]),
    json!([allow(
        json!(["sqs:SendMessage", "sqs:SendMessageBatch"]),
        json!("*")
    )]),
    Equivalent
);
pair!(
    naming_an_action_a_wildcard_already_grants_is_equivalent,
    json!([allow(json!("s3:Get*"), json!(B))]),
    json!([allow(json!(["s3:Get*", "s3:GetObject"]), json!(B))]),
    Equivalent
);
pair!(
    question_mark_wildcard_naming_the_same_action_is_equivalent,
    json!([allow(json!("iam:PassRole"), json!("*"))]),
    json!([allow(json!("iam:Pass????"), json!("*"))]),
    Equivalent
);
pair!(
    all_actions_widens,
    json!([allow(json!("s3:*"), json!("*"))]),
    json!([allow(json!("*"), json!("*"))]),
    Widens
);
pair!(
    all_actions_to_one_service_narrows,
    json!([allow(json!("*"), json!("*"))]),
    json!([allow(json!("s3:*"), json!("*"))]),
    Narrows
);
pair!(
    unknown_action_added_widens,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!(["s3:GetObject", "frob:Nicate"]), json!(B))]),
    Widens
);
pair!(
    new_service_added_widens,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        allow(json!("lambda:InvokeFunction"), json!("*"))
    ]),
    Widens
);

// --- Resources ---
pair!(
    wider_resource_widens,
    json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::bucket/logs/*")
    )]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Widens
);
pair!(
    narrower_resource_narrows,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::bucket/logs/*")
    )]),
    Narrows
);
pair!(
    resource_case_matters,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("s3:GetObject"), json!("arn:aws:s3:::Bucket/*"))]),
    Changes
);
pair!(
    other_bucket_changes,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("s3:GetObject"), json!("arn:aws:s3:::other/*"))]),
    Changes
);
pair!(
    star_resource_widens,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("s3:GetObject"), json!("*"))]),
    Widens
);
pair!(
    added_resource_widens,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(
        json!("s3:GetObject"),
        json!([B, "arn:aws:s3:::other/*"])
    )]),
    Widens
);
pair!(
    reordered_resources_are_equivalent,
    json!([allow(
        json!("s3:GetObject"),
        json!([B, "arn:aws:s3:::other/*"])
    )]),
    json!([allow(
        json!("s3:GetObject"),
        json!(["arn:aws:s3:::other/*", B])
    )]),
    Equivalent
);
pair!(
    redundant_resource_is_equivalent,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(
        json!("s3:GetObject"),
        json!([B, "arn:aws:s3:::bucket/x"])
    )]),
    Equivalent
);
pair!(
    lambda_qualifier_wildcard_widens,
    json!([allow(
        json!("lambda:InvokeFunction"),
        json!("arn:aws:lambda:us-east-1:000000000000:function:f")
    )]),
    json!([allow(
        json!("lambda:InvokeFunction"),
        json!("arn:aws:lambda:us-east-1:000000000000:function:f*")
    )]),
    Widens
);

// The old pattern's star stays in the region and never matched the account: the new one
// is no narrowing of it (and never `Equivalent`).
pair!(
    region_star_does_not_reach_the_account,
    json!([allow(
        json!("lambda:InvokeFunction"),
        json!("arn:aws:lambda:*:function:f")
    )]),
    json!([allow(
        json!("lambda:InvokeFunction"),
        json!("arn:aws:lambda:us-east-1:000000000000:function:f")
    )]),
    Changes
);
pair!(
    any_region_covers_one_region,
    json!([allow(
        json!("lambda:InvokeFunction"),
        json!("arn:aws:lambda:*:000000000000:function:f")
    )]),
    json!([allow(
        json!("lambda:InvokeFunction"),
        json!("arn:aws:lambda:eu-west-1:000000000000:function:f")
    )]),
    Narrows
);

// --- NotAction, NotResource ---
pair!(
    allow_to_not_action_widens,
    json!([allow(json!("s3:GetObject"), json!("*"))]),
    json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]),
    Widens
);
pair!(
    not_action_excluding_more_narrows,
    json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]),
    json!([{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}]),
    Narrows
);
pair!(
    not_action_excluding_less_widens,
    json!([{"Effect": "Allow", "NotAction": ["iam:*", "organizations:*"], "Resource": "*"}]),
    json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]),
    Widens
);
pair!(
    not_action_to_star_widens,
    json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]),
    json!([allow(json!("*"), json!("*"))]),
    Widens
);
pair!(
    not_action_to_one_action_narrows,
    json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}]),
    json!([allow(json!("s3:GetObject"), json!("*"))]),
    Narrows
);
pair!(
    not_resource_widens,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]),
    Widens
);
pair!(
    not_resource_excluding_more_narrows,
    json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]),
    json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": ["arn:aws:s3:::secret/*", "arn:aws:s3:::keys/*"]}]),
    Narrows
);
pair!(
    not_resource_to_disjoint_resource_narrows,
    json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Narrows
);
pair!(
    not_resource_to_excluded_resource_changes,
    json!([{"Effect": "Allow", "Action": "s3:GetObject", "NotResource": "arn:aws:s3:::secret/*"}]),
    json!([allow(json!("s3:GetObject"), json!("arn:aws:s3:::secret/a"))]),
    Changes
);

// --- Conditions ---
pair!(
    adding_a_condition_narrows,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"Bool": {"aws:SecureTransport": "true"}})
    )]),
    Narrows
);
pair!(
    removing_a_condition_widens,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"Bool": {"aws:SecureTransport": "true"}})
    )]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Widens
);
pair!(
    changing_a_condition_value_changes,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "blue"}})
    )]),
    Changes
);
pair!(
    adding_a_condition_value_widens,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": ["red", "blue"]}})
    )]),
    Widens
);
pair!(
    removing_a_condition_value_narrows,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": ["red", "blue"]}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    Narrows
);
pair!(
    adding_a_negated_value_narrows,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringNotEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringNotEquals": {"aws:PrincipalTag/team": ["red", "blue"]}})
    )]),
    Narrows
);
pair!(
    adding_a_second_condition_key_narrows,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red", "aws:RequestedRegion": "eu-west-1"}})
    )]),
    Narrows
);
pair!(
    condition_key_case_is_equivalent,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"AWS:principaltag/team": "red"}})
    )]),
    Equivalent
);
pair!(
    condition_value_case_matters,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "Red"}})
    )]),
    Changes
);
pair!(
    ignore_case_values_are_equivalent,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEqualsIgnoreCase": {"aws:PrincipalTag/team": "RED"}})
    )]),
    Equivalent
);
pair!(
    numeric_limit_change_is_unordered,
    json!([with_cond(
        allow(json!("s3:ListBucket"), json!("*")),
        json!({"NumericLessThanEquals": {"s3:max-keys": "10"}})
    )]),
    json!([with_cond(
        allow(json!("s3:ListBucket"), json!("*")),
        json!({"NumericLessThanEquals": {"s3:max-keys": "100"}})
    )]),
    Changes
);
pair!(
    operator_change_is_unordered,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringEquals": {"aws:PrincipalTag/team": "red"}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"StringLike": {"aws:PrincipalTag/team": "r*"}})
    )]),
    Changes
);
pair!(
    true_and_string_true_are_equivalent,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"Bool": {"aws:SecureTransport": true}})
    )]),
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"Bool": {"aws:SecureTransport": "true"}})
    )]),
    Equivalent
);
pair!(
    unconditional_statement_added_beside_conditional_widens,
    json!([with_cond(
        allow(json!("s3:GetObject"), json!(B)),
        json!({"Bool": {"aws:SecureTransport": "true"}})
    )]),
    json!([
        with_cond(
            allow(json!("s3:GetObject"), json!(B)),
            json!({"Bool": {"aws:SecureTransport": "true"}})
        ),
        allow(json!("s3:GetObject"), json!(B))
    ]),
    Widens
);

// --- Deny statements ---
pair!(
    adding_a_deny_narrows,
    json!([allow(json!("s3:*"), json!(B))]),
    json!([
        allow(json!("s3:*"), json!(B)),
        deny(json!("s3:DeleteObject"), json!(B))
    ]),
    Narrows
);
pair!(
    removing_a_deny_widens,
    json!([
        allow(json!("s3:*"), json!(B)),
        deny(json!("s3:DeleteObject"), json!(B))
    ]),
    json!([allow(json!("s3:*"), json!(B))]),
    Widens
);
pair!(
    adding_a_deny_of_nothing_allowed_is_equivalent,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        deny(json!("iam:*"), json!("*"))
    ]),
    Equivalent
);
pair!(
    removing_a_deny_of_nothing_allowed_is_equivalent,
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        deny(json!("iam:*"), json!("*"))
    ]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Equivalent
);
pair!(
    conditional_deny_becoming_unconditional_narrows,
    json!([
        allow(json!("s3:*"), json!(B)),
        with_cond(
            deny(json!("s3:*"), json!(B)),
            json!({"Bool": {"aws:SecureTransport": "false"}})
        )
    ]),
    json!([
        allow(json!("s3:*"), json!(B)),
        deny(json!("s3:*"), json!(B))
    ]),
    Narrows
);
pair!(
    deny_gaining_a_condition_widens,
    json!([
        allow(json!("s3:*"), json!(B)),
        deny(json!("s3:DeleteObject"), json!(B))
    ]),
    json!([
        allow(json!("s3:*"), json!(B)),
        with_cond(
            deny(json!("s3:DeleteObject"), json!(B)),
            json!({"Bool": {"aws:MultiFactorAuthPresent": "false"}})
        )
    ]),
    Widens
);
pair!(
    allow_masked_by_an_unconditional_deny_is_equivalent,
    json!([
        allow(json!("s3:GetObject"), json!(B)),
        deny(json!("s3:DeleteObject"), json!(B))
    ]),
    json!([
        allow(json!(["s3:GetObject", "s3:DeleteObject"]), json!(B)),
        deny(json!("s3:DeleteObject"), json!(B))
    ]),
    Equivalent
);
pair!(
    deny_not_action_added_narrows,
    json!([allow(json!("*"), json!("*"))]),
    json!([allow(json!("*"), json!("*")), {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"}]),
    Narrows
);
pair!(
    deny_moved_to_other_action_changes,
    json!([
        allow(json!("s3:*"), json!(B)),
        deny(json!("s3:DeleteObject"), json!(B))
    ]),
    json!([
        allow(json!("s3:*"), json!(B)),
        deny(json!("s3:PutObject"), json!(B))
    ]),
    Changes
);

// --- Odd documents ---
pair!(
    unreadable_statement_is_never_equivalent,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([allow(json!("s3:GetObject"), json!(B)), {"Effect": "Perhaps", "Action": "s3:*", "Resource": "*"}]),
    Changes
);
pair!(
    emptied_policy_narrows,
    json!([allow(json!("s3:GetObject"), json!(B))]),
    json!([]),
    Narrows
);
pair!(
    policy_from_nothing_widens,
    json!([]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Widens
);
pair!(
    variable_resource_compares_as_text,
    json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::bucket/${aws:username}/*")
    )]),
    json!([allow(json!("s3:GetObject"), json!(B))]),
    Widens
);

#[test]
fn a_created_or_deleted_document_widens_or_narrows() {
    let empty = json!({"Statement": []});
    let new = doc(json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::b/${aws:username}")
    )]));
    assert_eq!(classify(&empty, &new, db()).classification, Widens);
    assert_eq!(classify(&new, &empty, db()).classification, Narrows);
}

#[test]
fn version_change_with_variables_is_never_equivalent() {
    let old = json!({"Statement": [allow(json!("s3:GetObject"), json!("arn:aws:s3:::b/${aws:username}"))]});
    let new = doc(json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::b/${aws:username}")
    )]));
    assert_eq!(classify(&old, &new, db()).classification, Changes);
}

// --- Trust policies ---
trust_pair!(
    trust_same_is_equivalent,
    json!([trust(json!({"AWS": "arn:aws:iam::111122223333:root"}))]),
    json!([trust(json!({"AWS": "arn:aws:iam::111122223333:root"}))]),
    Equivalent
);
trust_pair!(
    trust_account_id_equals_root_arn,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([trust(json!({"AWS": "arn:aws:iam::111122223333:root"}))]),
    Equivalent
);
trust_pair!(
    trust_adding_an_account_widens,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([trust(json!({"AWS": ["111122223333", "444455556666"]}))]),
    Widens
);
trust_pair!(
    trust_removing_an_account_narrows,
    json!([trust(json!({"AWS": ["111122223333", "444455556666"]}))]),
    json!([trust(json!({"AWS": "111122223333"}))]),
    Narrows
);
trust_pair!(
    trust_account_to_its_role_narrows,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([trust(
        json!({"AWS": "arn:aws:iam::111122223333:role/deployer"})
    )]),
    Narrows
);
trust_pair!(
    trust_own_account_to_own_role_is_not_a_narrowing,
    json!([trust(json!({"AWS": OWN}))]),
    json!([trust(json!({"AWS": "arn:aws:iam::000000000000:role/ci"}))]),
    Changes
);
trust_pair!(
    trust_role_to_its_account_widens,
    json!([trust(
        json!({"AWS": "arn:aws:iam::111122223333:role/deployer"})
    )]),
    json!([trust(json!({"AWS": "111122223333"}))]),
    Widens
);
trust_pair!(
    trust_anyone_widens,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([trust(json!("*"))]),
    Widens
);
trust_pair!(
    trust_star_forms_are_equivalent,
    json!([trust(json!("*"))]),
    json!([trust(json!({"AWS": "*"}))]),
    Equivalent
);
trust_pair!(
    trust_adding_a_service_widens,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([trust(
        json!({"AWS": "111122223333", "Service": "ec2.amazonaws.com"})
    )]),
    Widens
);
trust_pair!(
    trust_service_replaced_changes,
    json!([trust(json!({"Service": "lambda.amazonaws.com"}))]),
    json!([trust(json!({"Service": "ec2.amazonaws.com"}))]),
    Changes
);
trust_pair!(
    trust_federated_added_widens,
    json!([trust(json!({"Service": "lambda.amazonaws.com"}))]),
    json!([trust(json!({"Service": "lambda.amazonaws.com"})), {"Effect": "Allow", "Principal": {"Federated": "arn:aws:iam::000000000000:oidc-provider/token.actions.githubusercontent.com"}, "Action": "sts:AssumeRoleWithWebIdentity"}]),
    Widens
);
trust_pair!(
    trust_external_id_added_narrows,
    json!([trust(json!({"AWS": "203461409171"}))]),
    json!([with_cond(
        trust(json!({"AWS": "203461409171"})),
        json!({"StringEquals": {"sts:ExternalId": "000000000000.app"}})
    )]),
    Narrows
);
trust_pair!(
    trust_external_id_removed_widens,
    json!([with_cond(
        trust(json!({"AWS": "203461409171"})),
        json!({"StringEquals": {"sts:ExternalId": "000000000000.app"}})
    )]),
    json!([trust(json!({"AWS": "203461409171"}))]),
    Widens
);
trust_pair!(
    trust_external_id_changed_changes,
    json!([with_cond(
        trust(json!({"AWS": "203461409171"})),
        json!({"StringEquals": {"sts:ExternalId": "old"}})
    )]),
    json!([with_cond(
        trust(json!({"AWS": "203461409171"})),
        json!({"StringEquals": {"sts:ExternalId": "new"}})
    )]),
    Changes
);
trust_pair!(
    trust_session_tags_added_widens,
    json!([trust(
        json!({"AWS": "arn:aws:iam::000000000000:role/server"})
    )]),
    json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::000000000000:role/server"}, "Action": ["sts:AssumeRole", "sts:TagSession"]}]),
    Widens
);
trust_pair!(
    trust_principal_order_is_equivalent,
    json!([trust(json!({"AWS": ["111122223333", "444455556666"]}))]),
    json!([trust(json!({"AWS": ["444455556666", "111122223333"]}))]),
    Equivalent
);
trust_pair!(
    trust_deny_for_one_principal_narrows,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([trust(json!({"AWS": "111122223333"})), {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:role/intern"}, "Action": "sts:AssumeRole"}]),
    Narrows
);
trust_pair!(
    trust_not_principal_changes,
    json!([trust(json!({"AWS": "111122223333"}))]),
    json!([{"Effect": "Allow", "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:role/intern"}, "Action": "sts:AssumeRole"}]),
    // Everyone else gains; the intern may lose (whom NotPrincipal exempts is not modelled).
    Changes
);

#[test]
fn the_difference_names_what_is_gained() {
    let d = classify(
        &doc(json!([allow(json!("s3:Get*"), json!(B))])),
        &doc(json!([allow(json!("s3:*"), json!(B))])),
        db(),
    );
    assert_eq!(d.classification, Widens);
    assert_eq!(d.gained.len(), 1);
    let g = &d.gained[0];
    assert!(
        g.actions.iter().any(|a| a == "s3:DeleteObject"),
        "{:?}",
        g.actions
    );
    assert!(
        !g.actions.iter().any(|a| a.starts_with("s3:Get")),
        "{:?}",
        g.actions
    );
    assert_eq!(g.resource, B);
    let line = &d.lines()[0];
    assert!(
        line.starts_with("+ s3:") && line.contains("more") && line.ends_with(B),
        "{line}"
    );

    let d = classify(
        &doc(json!([allow(json!("s3:GetObject"), json!(B))])),
        &doc(json!([allow(
            json!(["s3:GetObject", "s3:DeleteObject"]),
            json!(B)
        )])),
        db(),
    );
    assert_eq!(d.lines(), vec![format!("+ s3:DeleteObject on {B}")]);

    // A whole service is named as one.
    let d = classify(
        &doc(json!([{"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}])),
        &doc(json!([allow(json!("*"), json!("*"))])),
        db(),
    );
    assert_eq!(d.lines(), vec!["+ iam:* on *"]);
    let d = classify(
        &doc(json!([
            allow(json!("s3:*"), json!(B)),
            deny(json!("s3:DeleteObject"), json!(B))
        ])),
        &doc(json!([allow(json!("s3:*"), json!(B))])),
        db(),
    );
    assert_eq!(
        d.lines(),
        vec![format!("+ s3:DeleteObject on {B} (no longer denied)")]
    );
}

#[test]
fn trust_changes_name_the_principals_and_conditions() {
    let d = classify_trust(
        &doc(json!([with_cond(
            trust(json!({"AWS": "203461409171"})),
            json!({"StringEquals": {"sts:ExternalId": "old"}})
        )])),
        &doc(json!([with_cond(
            trust(json!({"AWS": "203461409171"})),
            json!({"StringEquals": {"sts:ExternalId": "new"}})
        )])),
        db(),
        Some(OWN),
    );
    assert_eq!(
        d.lines(),
        vec![
            "+ arn:aws:iam::203461409171:root may sts:AssumeRole when StringEquals sts:ExternalId = new",
            "- arn:aws:iam::203461409171:root may sts:AssumeRole when StringEquals sts:ExternalId = old",
        ]
    );
}

/// The plan benchmark's share: 500 changed documents must classify in well under 100 ms.
#[test]
fn classifies_500_widening_changes() {
    let db = db();
    let docs: Vec<(Value, Value)> = (0..500)
        .map(|i| {
            let r = format!("arn:aws:s3:::bucket-{i}/*");
            (
                doc(json!([
                    allow(json!(["s3:GetObject", "s3:ListBucket"]), json!(r)),
                    with_cond(
                        allow(json!("sqs:SendMessage"), json!("*")),
                        json!({"StringEquals": {"aws:PrincipalTag/team": "a"}})
                    )
                ])),
                doc(json!([
                    allow(json!(["s3:Get*", "s3:ListBucket"]), json!(r)),
                    allow(json!("sqs:SendMessage"), json!("*"))
                ])),
            )
        })
        .collect();
    // Its speed is the benchmark's to measure (BENCHMARKS.md), never a test's: a timed
    // assertion fails on a loaded machine.
    for (o, n) in &docs {
        assert_eq!(classify(o, n, db).classification, Widens);
    }
}

// --- The evaluator ---

fn caller_role(name: &str) -> Caller {
    Caller::iam(CallerKind::Role, &format!("arn:aws:iam::{OWN}:role/{name}"))
}

fn pol<'a>(name: &str, kind: PolicyKind, d: &'a Value) -> Policy<'a> {
    Policy {
        source: PolicySource {
            kind,
            name: name.into(),
        },
        document: Some(d),
    }
}

fn run(
    caller: &Caller,
    action: &str,
    resource: &str,
    ctx: &Context,
    set: &PolicySet,
) -> Evaluation {
    let mut ctx = ctx.clone();
    caller.context_keys(&mut ctx);
    evaluate(
        &Request {
            caller,
            action,
            resource,
            context: &ctx,
        },
        set,
    )
}

fn identity_set<'a>(docs: &'a [Value]) -> PolicySet<'a> {
    PolicySet {
        identity: docs
            .iter()
            .enumerate()
            .map(|(i, d)| pol(if i == 0 { "p0" } else { "p1" }, PolicyKind::Identity, d))
            .collect(),
        identity_known: true,
        ..Default::default()
    }
}

const F: &str = "arn:aws:lambda:us-east-1:000000000000:function:f";

/// Found by tests/differential.rs: a star that ends an ARN segment may reach across the
/// colons after it (AWS's Resource element documentation, "Using wildcards in resource
/// ARNs"); a star inside a segment may not.
#[test]
fn a_star_ending_an_arn_segment_reaches_across_colons() {
    let c = caller_role("app");
    let e = |pattern: &str| {
        let docs = [doc(json!([allow(
            json!("lambda:GetFunction"),
            json!(pattern)
        )]))];
        run(
            &c,
            "lambda:GetFunction",
            F,
            &Context::new(),
            &identity_set(&docs),
        )
        .decision
    };
    assert_eq!(e("arn:aws:lambda:*:function:f"), Decision::Allowed);
    assert_eq!(e("arn:aws:lambda:us-*:function:*"), Decision::Allowed);
    assert_eq!(e("arn:aws:lambda:*:*:function:f"), Decision::Allowed);
    // Inside a segment the star stays there: `*1` is the region's end, not the account's.
    assert_eq!(
        e("arn:aws:lambda:*1:function:f"),
        Decision::ImplicitlyDenied
    );
    assert_eq!(
        e("arn:aws:lambda:us-east-1:1*:function:f"),
        Decision::ImplicitlyDenied
    );
    assert_eq!(e("arn:aws:lambda:*:function:g"), Decision::ImplicitlyDenied);
    // `?` is one character and never a colon.
    assert_eq!(
        e("arn:aws:lambda:us-east-1?000000000000:function:f"),
        Decision::ImplicitlyDenied
    );
}

#[test]
fn allow_and_implicit_deny() {
    let docs = [doc(json!([allow(
        json!("lambda:InvokeFunction"),
        json!(F)
    )]))];
    let c = caller_role("app");
    let e = run(
        &c,
        "lambda:invokefunction",
        F,
        &Context::new(),
        &identity_set(&docs),
    );
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.statements[0].policy.name, "p0");
    let e = run(
        &c,
        "lambda:InvokeFunction",
        &format!("{F}2"),
        &Context::new(),
        &identity_set(&docs),
    );
    assert_eq!(e.decision, Decision::ImplicitlyDenied);
    assert!(!e.notes.is_empty());
}

#[test]
fn explicit_deny_wins() {
    let docs = [
        doc(json!([allow(json!("lambda:*"), json!("*"))])),
        doc(
            json!([{"Sid": "NoInvoke", "Effect": "Deny", "Action": "lambda:Invoke*", "Resource": F}]),
        ),
    ];
    let e = run(
        &caller_role("app"),
        "lambda:InvokeFunction",
        F,
        &Context::new(),
        &identity_set(&docs),
    );
    assert_eq!(e.decision, Decision::ExplicitlyDenied);
    assert_eq!(e.statements[0].sid.as_deref(), Some("NoInvoke"));
    assert_eq!(e.statements[0].policy.name, "p1");
}

#[test]
fn boundaries_intersect() {
    let docs = [doc(json!([allow(json!("*"), json!("*"))]))];
    let b = doc(json!([allow(json!("s3:*"), json!("*"))]));
    let mut set = identity_set(&docs);
    set.boundary = Some(pol("boundary", PolicyKind::PermissionsBoundary, &b));
    let c = caller_role("app");
    assert_eq!(
        run(&c, "s3:GetObject", B, &Context::new(), &set).decision,
        Decision::Allowed
    );
    assert_eq!(
        run(&c, "iam:CreateUser", "*", &Context::new(), &set).decision,
        Decision::ImplicitlyDenied
    );
    // An unknown boundary document leaves an identity allow undecided.
    set.boundary = Some(Policy {
        source: PolicySource {
            kind: PolicyKind::PermissionsBoundary,
            name: "aws boundary".into(),
        },
        document: None,
    });
    assert!(matches!(
        run(&c, "s3:GetObject", B, &Context::new(), &set).decision,
        Decision::Unknown { .. }
    ));
}

#[test]
fn not_action_and_not_resource() {
    let docs = [doc(json!([
        {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::public/*"}
    ]))];
    let c = caller_role("app");
    let set = identity_set(&docs);
    assert_eq!(
        run(&c, "iam:PassRole", "*", &Context::new(), &set).decision,
        Decision::ImplicitlyDenied
    );
    assert_eq!(
        run(
            &c,
            "sqs:SendMessage",
            "arn:aws:sqs:us-east-1:000000000000:q",
            &Context::new(),
            &set
        )
        .decision,
        Decision::Allowed
    );
    assert_eq!(
        run(
            &c,
            "s3:GetObject",
            "arn:aws:s3:::public/a",
            &Context::new(),
            &set
        )
        .decision,
        Decision::Allowed
    );
    assert_eq!(
        run(
            &c,
            "s3:GetObject",
            "arn:aws:s3:::private/a",
            &Context::new(),
            &set
        )
        .decision,
        Decision::ExplicitlyDenied
    );
}

#[test]
fn variables_in_resources() {
    let docs = [doc(json!([allow(
        json!("s3:GetObject"),
        json!("arn:aws:s3:::home/${aws:username}/*")
    )]))];
    let u = Caller::iam(CallerKind::User, "arn:aws:iam::000000000000:user/alice");
    let set = identity_set(&docs);
    assert_eq!(
        run(
            &u,
            "s3:GetObject",
            "arn:aws:s3:::home/alice/x",
            &Context::new(),
            &set
        )
        .decision,
        Decision::Allowed
    );
    assert_eq!(
        run(
            &u,
            "s3:GetObject",
            "arn:aws:s3:::home/bob/x",
            &Context::new(),
            &set
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    // A role has no user name: the entry matches nothing.
    assert_eq!(
        run(
            &caller_role("alice"),
            "s3:GetObject",
            "arn:aws:s3:::home/alice/x",
            &Context::new(),
            &set
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    // Under the old language version the variable is literal text.
    let old = [
        json!({"Version": "2008-10-17", "Statement": [allow(json!("s3:GetObject"), json!("arn:aws:s3:::home/${aws:username}/*"))]}),
    ];
    assert_eq!(
        run(
            &u,
            "s3:GetObject",
            "arn:aws:s3:::home/alice/x",
            &Context::new(),
            &identity_set(&old)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
}

#[test]
fn principal_tags_and_if_exists() {
    let docs = [doc(json!([with_cond(
        allow(json!("lambda:InvokeFunction"), json!(F)),
        json!({"StringEquals": {"aws:PrincipalTag/user": "alice"}, "StringEqualsIfExists": {"aws:RequestTag/env": "dev"}})
    )]))];
    let c = caller_role("app");
    let set = identity_set(&docs);
    let mut ctx = Context::new();
    ctx.add("aws:PrincipalTag/user", "alice");
    assert_eq!(
        run(&c, "lambda:InvokeFunction", F, &ctx, &set).decision,
        Decision::Allowed
    );
    ctx.add("aws:RequestTag/env", "prod");
    assert_eq!(
        run(&c, "lambda:InvokeFunction", F, &ctx, &set).decision,
        Decision::ImplicitlyDenied
    );
    let mut bob = Context::new();
    bob.add("aws:PrincipalTag/user", "bob");
    assert_eq!(
        run(&c, "lambda:InvokeFunction", F, &bob, &set).decision,
        Decision::ImplicitlyDenied
    );
}

#[test]
fn for_all_values_on_an_empty_set_and_null() {
    let docs = [doc(json!([
        with_cond(
            allow(json!("iam:TagRole"), json!("*")),
            json!({"ForAllValues:StringEquals": {"aws:TagKeys": ["team"]}})
        ),
        with_cond(
            deny(json!("iam:TagRole"), json!("*")),
            json!({"Null": {"aws:RequestTag/owner": "false"}})
        )
    ]))];
    let c = caller_role("app");
    let set = identity_set(&docs);
    assert_eq!(
        run(&c, "iam:TagRole", "*", &Context::new(), &set).decision,
        Decision::Allowed,
        "no tag keys: vacuously true"
    );
    let mut ctx = Context::new();
    ctx.add("aws:RequestTag/owner", "x");
    ctx.add("aws:TagKeys", "owner");
    assert_eq!(
        run(&c, "iam:TagRole", "*", &ctx, &set).decision,
        Decision::ExplicitlyDenied
    );
}

#[test]
fn unknown_operator_and_unknown_key_give_unknown_never_a_guess() {
    let docs = [doc(json!([with_cond(
        allow(json!("s3:GetObject"), json!("*")),
        json!({"BinaryEquals": {"aws:SourceIp": "AAAA"}})
    )]))];
    let e = run(
        &caller_role("app"),
        "s3:GetObject",
        B,
        &Context::new(),
        &identity_set(&docs),
    );
    assert!(
        matches!(&e.decision, Decision::Unknown { reasons } if reasons[0].contains("BinaryEquals")),
        "{e:?}"
    );
    let docs = [doc(json!([with_cond(
        allow(json!("s3:GetObject"), json!("*")),
        json!({"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})
    )]))];
    let e = run(
        &caller_role("app"),
        "s3:GetObject",
        B,
        &Context::new(),
        &identity_set(&docs),
    );
    assert!(
        matches!(&e.decision, Decision::Unknown { reasons } if reasons[0].contains("aws:SourceIp")),
        "{e:?}"
    );
    let mut ctx = Context::new();
    ctx.add("aws:SourceIp", "10.1.1.1");
    assert_eq!(
        run(
            &caller_role("app"),
            "s3:GetObject",
            B,
            &ctx,
            &identity_set(&docs)
        )
        .decision,
        Decision::Allowed
    );
    // An undecidable Deny does not matter when nothing allows.
    let docs = [doc(json!([with_cond(
        deny(json!("s3:*"), json!("*")),
        json!({"Frobnicate": {"a:b": "c"}})
    )]))];
    assert_eq!(
        run(
            &caller_role("app"),
            "s3:GetObject",
            B,
            &Context::new(),
            &identity_set(&docs)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    // ... but makes an allow undecided.
    let docs = [doc(json!([
        allow(json!("s3:*"), json!("*")),
        with_cond(
            deny(json!("s3:*"), json!("*")),
            json!({"Frobnicate": {"a:b": "c"}})
        )
    ]))];
    assert!(matches!(
        run(
            &caller_role("app"),
            "s3:GetObject",
            B,
            &Context::new(),
            &identity_set(&docs)
        )
        .decision,
        Decision::Unknown { .. }
    ));
}

const TARGET: &str = "arn:aws:iam::000000000000:role/target";

fn assume_set<'a>(identity: &'a [Value], trust_doc: &'a Value) -> PolicySet<'a> {
    let mut set = identity_set(identity);
    set.resource = Some(pol(
        "role.target trust policy",
        PolicyKind::Trust,
        trust_doc,
    ));
    set.resource_account = Some(OWN.into());
    set
}

#[test]
fn same_account_trust_naming_the_caller_is_enough() {
    let t = doc(json!([trust(
        json!({"AWS": "arn:aws:iam::000000000000:user/ci"})
    )]));
    let user = Caller::iam(CallerKind::User, "arn:aws:iam::000000000000:user/ci");
    let none: [Value; 0] = [];
    assert_eq!(
        run(
            &user,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::Allowed
    );
    // Another user is not named.
    let other = Caller::iam(CallerKind::User, "arn:aws:iam::000000000000:user/other");
    let ids = [doc(json!([allow(json!("sts:AssumeRole"), json!("*"))]))];
    assert_eq!(
        run(
            &other,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &t)
        )
        .decision,
        Decision::ImplicitlyDenied,
        "AssumeRole always needs the trust policy"
    );
}

#[test]
fn trust_naming_the_account_needs_the_identity_policy() {
    let t = doc(json!([trust(json!({"AWS": OWN}))]));
    let c = caller_role("app");
    let none: [Value; 0] = [];
    assert_eq!(
        run(
            &c,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    let ids = [doc(json!([allow(json!("sts:AssumeRole"), json!(TARGET))]))];
    let e = run(
        &c,
        "sts:AssumeRole",
        TARGET,
        &Context::new(),
        &assume_set(&ids, &t),
    );
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(e.statements.len(), 2, "{e:?}");
}

#[test]
fn cross_account_trust_needs_both_sides() {
    let t = doc(json!([with_cond(
        trust(json!({"AWS": "arn:aws:iam::111122223333:role/deployer"})),
        json!({"StringEquals": {"sts:ExternalId": "x1"}})
    )]));
    let c = Caller::iam(CallerKind::Role, "arn:aws:iam::111122223333:role/deployer");
    let none: [Value; 0] = [];
    let mut ctx = Context::new();
    ctx.add("sts:ExternalId", "x1");
    assert_eq!(
        run(&c, "sts:AssumeRole", TARGET, &ctx, &assume_set(&none, &t)).decision,
        Decision::ImplicitlyDenied
    );
    let ids = [doc(json!([allow(json!("sts:AssumeRole"), json!("*"))]))];
    assert_eq!(
        run(&c, "sts:AssumeRole", TARGET, &ctx, &assume_set(&ids, &t)).decision,
        Decision::Allowed
    );
    // Without the ExternalId the trust does not allow.
    assert_eq!(
        run(
            &c,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &t)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    // Its policies unknown (outside the plan): the answer is unknown, not allowed.
    let mut set = assume_set(&none, &t);
    set.identity_known = false;
    assert!(matches!(
        run(&c, "sts:AssumeRole", TARGET, &ctx, &set).decision,
        Decision::Unknown { .. }
    ));
}

#[test]
fn services_are_decided_by_the_trust_alone() {
    let t = doc(json!([trust(json!({"Service": "lambda.amazonaws.com"}))]));
    let s = Caller {
        kind: CallerKind::Service,
        id: "lambda.amazonaws.com".into(),
        account: None,
        session_arn: None,
    };
    let none: [Value; 0] = [];
    assert_eq!(
        run(
            &s,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::Allowed
    );
    // A service's source account is not known unless given.
    let conditioned = doc(json!([with_cond(
        trust(json!({"Service": "lambda.amazonaws.com"})),
        json!({"StringEquals": {"aws:SourceAccount": OWN}})
    )]));
    assert!(matches!(
        run(
            &s,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &conditioned)
        )
        .decision,
        Decision::Unknown { .. }
    ));
    let mut ctx = Context::new();
    ctx.add("aws:SourceAccount", OWN);
    assert_eq!(
        run(
            &s,
            "sts:AssumeRole",
            TARGET,
            &ctx,
            &assume_set(&none, &conditioned)
        )
        .decision,
        Decision::Allowed
    );
    let ec2 = Caller {
        id: "ec2.amazonaws.com".into(),
        ..s
    };
    assert_eq!(
        run(
            &ec2,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
}

#[test]
fn arn_conditions_on_the_principal() {
    let t = doc(json!([with_cond(
        trust(json!({"AWS": OWN})),
        json!({"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::000000000000:role/ci-*"}})
    )]));
    let ids = [doc(json!([allow(json!("sts:AssumeRole"), json!("*"))]))];
    assert_eq!(
        run(
            &caller_role("ci-build"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &t)
        )
        .decision,
        Decision::Allowed
    );
    assert_eq!(
        run(
            &caller_role("app"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &t)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    let not = doc(json!([with_cond(
        trust(json!({"AWS": OWN})),
        json!({"ArnNotEquals": {"aws:PrincipalArn": "arn:aws:iam::000000000000:role/app"}})
    )]));
    assert_eq!(
        run(
            &caller_role("app"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &not)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    assert_eq!(
        run(
            &caller_role("ci"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &not)
        )
        .decision,
        Decision::Allowed
    );
}

#[test]
fn a_role_named_directly_is_still_limited_by_its_boundary() {
    let t = doc(json!([trust(
        json!({"AWS": "arn:aws:iam::000000000000:role/app"})
    )]));
    let none: [Value; 0] = [];
    let b = doc(json!([allow(json!("s3:*"), json!("*"))]));
    let mut set = assume_set(&none, &t);
    assert_eq!(
        run(
            &caller_role("app"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &set
        )
        .decision,
        Decision::Allowed
    );
    set.boundary = Some(pol("boundary", PolicyKind::PermissionsBoundary, &b));
    assert_eq!(
        run(
            &caller_role("app"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &set
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    // A user named directly is not.
    let tu = doc(json!([trust(
        json!({"AWS": "arn:aws:iam::000000000000:user/u"})
    )]));
    let mut set = assume_set(&none, &tu);
    set.boundary = Some(pol("boundary", PolicyKind::PermissionsBoundary, &b));
    let u = Caller::iam(CallerKind::User, "arn:aws:iam::000000000000:user/u");
    assert_eq!(
        run(&u, "sts:AssumeRole", TARGET, &Context::new(), &set).decision,
        Decision::Allowed
    );
}

#[test]
fn a_trust_naming_a_session_needs_the_session_name() {
    let t = doc(json!([trust(
        json!({"AWS": "arn:aws:sts::000000000000:assumed-role/app/alice"})
    )]));
    let none: [Value; 0] = [];
    let mut c = caller_role("app");
    assert!(matches!(
        run(
            &c,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::Unknown { .. }
    ));
    c.session_arn = Some("arn:aws:sts::000000000000:assumed-role/app/alice".into());
    assert_eq!(
        run(
            &c,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::Allowed
    );
    c.session_arn = Some("arn:aws:sts::000000000000:assumed-role/app/bob".into());
    assert_eq!(
        run(
            &c,
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
    assert_eq!(
        run(
            &caller_role("other"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&none, &t)
        )
        .decision,
        Decision::ImplicitlyDenied
    );
}

#[test]
fn a_trust_deny_wins_and_not_principal() {
    let t = doc(json!([
        trust(json!({"AWS": OWN})),
        {"Effect": "Deny", "NotPrincipal": {"AWS": "arn:aws:iam::000000000000:role/ok"}, "Action": "sts:AssumeRole"}
    ]));
    let ids = [doc(json!([allow(json!("sts:AssumeRole"), json!("*"))]))];
    assert_eq!(
        run(
            &caller_role("ok"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &t)
        )
        .decision,
        // Exempted only if the list also names the account and the session (AWS's
        // NotPrincipal): undecided rather than guessed.
        Decision::Unknown {
            reasons: vec!["a Deny may apply: role.target trust policy Statement[1] (Deny): NotPrincipal names the caller or its account; whether that exempts it depends on the other entries (account, session) and is not modelled".into()]
        }
    );
    assert_eq!(
        run(
            &caller_role("other"),
            "sts:AssumeRole",
            TARGET,
            &Context::new(),
            &assume_set(&ids, &t)
        )
        .decision,
        Decision::ExplicitlyDenied
    );
}

#[test]
fn cross_account_resources_outside_the_plan_are_unknown() {
    let docs = [doc(json!([allow(
        json!("lambda:InvokeFunction"),
        json!("*")
    )]))];
    let mut set = identity_set(&docs);
    set.resource_account = Some("999999999999".into());
    let e = run(
        &caller_role("app"),
        "lambda:InvokeFunction",
        "arn:aws:lambda:us-east-1:999999999999:function:f",
        &Context::new(),
        &set,
    );
    assert!(matches!(e.decision, Decision::Unknown { .. }));
}

// --- The plan: explain and who-can ---

fn plan(src: &str) -> crate::model::Desired {
    let spec = crate::spec::parse_str(std::path::Path::new("t.toml"), src).expect("parses");
    spec.build(&crate::model::test_accounts("us-east-1"))
        .expect("builds")
}

const CHAIN: &str = r#"
[stack]
name = "chain"

[user.ci]

[[user.ci.inline.assume.statement]]
action = "sts:AssumeRole"
resource = "${role.deployer.arn}"

[role.deployer]

[role.deployer.trust]
users = ["${user.ci.arn}"]

[[role.deployer.inline.assume.statement]]
action = "sts:AssumeRole"
resource = "${role.invoker.arn}"

[role.invoker]

[role.invoker.trust]
roles = ["deployer"]
accounts = ["111122223333"]
external_id = "abc"

[[role.invoker.inline.invoke.statement]]
action = "lambda:InvokeFunction"
resource = "arn:aws:lambda:us-east-1:000000000000:function:f"

[role.lonely]

[role.lonely.trust]
services = ["lambda.amazonaws.com"]
"#;

#[test]
fn explain_a_plan_principal() {
    let d = plan(CHAIN);
    let w = World::new(&d);
    let invoker = w.principal("role/invoker", None).unwrap();
    let e = w
        .explain(invoker, "lambda:InvokeFunction", F, &Context::new())
        .unwrap();
    assert_eq!(e.decision, Decision::Allowed);
    assert_eq!(
        e.statements[0].policy.name,
        "role.invoker inline policy invoke"
    );
    let lonely = w.principal("role/lonely", None).unwrap();
    assert_eq!(
        w.explain(lonely, "lambda:InvokeFunction", F, &Context::new())
            .unwrap()
            .decision,
        Decision::ImplicitlyDenied
    );
    let ci = w.principal("user/ci", None).unwrap();
    let deployer = w.resource("role/deployer", None).unwrap();
    assert_eq!(
        w.explain(ci, "sts:AssumeRole", &deployer, &Context::new())
            .unwrap()
            .decision,
        Decision::Allowed
    );
    let err = w.principal("role/invoekr", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no role named `invoekr` in the plan: did you mean `role/invoker`?"
    );
    assert!(matches!(
        w.principal("group/x", None),
        Err(AccessError::BadPrincipal(_))
    ));
    assert!(matches!(
        w.principal("role/x", Some("prod")),
        Err(AccessError::UnknownAccount { .. })
    ));
}

#[test]
fn who_can_follows_assume_role_chains() {
    let d = plan(CHAIN);
    let w = World::new(&d);
    let summary = |reach: &[Reach]| -> Vec<(String, bool, usize)> {
        reach
            .iter()
            .map(|r| (r.principal.clone(), r.certain, r.path.len()))
            .collect()
    };
    // The invoker's trust requires the ExternalId: without it nobody reaches the role.
    let reach = who_can(&w, "lambda:InvokeFunction", F, &Context::new());
    assert_eq!(summary(&reach), vec![("role.invoker".to_string(), true, 1)]);
    let mut ctx = Context::new();
    ctx.add("sts:ExternalId", "abc");
    let reach = who_can(&w, "lambda:InvokeFunction", F, &ctx);
    assert_eq!(
        summary(&reach),
        vec![
            ("role.invoker".to_string(), true, 1),
            ("role.deployer".to_string(), true, 2),
            ("user.ci".to_string(), true, 3),
            ("arn:aws:iam::111122223333:root".to_string(), false, 2),
        ],
        "{reach:#?}"
    );
    assert_eq!(
        reach[2]
            .path
            .iter()
            .map(|s| s.to.as_str())
            .collect::<Vec<_>>(),
        ["role.deployer", "role.invoker", F]
    );
    // The outside account's own policies decide its step: possible, not certain.
    assert!(
        reach[3]
            .reasons
            .iter()
            .any(|r| r.contains("not in the plan")),
        "{:?}",
        reach[3]
    );
}

#[test]
fn who_can_assume_a_role_lists_services() {
    let d = plan(CHAIN);
    let w = World::new(&d);
    let lonely = w.resource("role/lonely", None).unwrap();
    let reach = who_can(&w, "sts:AssumeRole", &lonely, &Context::new());
    assert_eq!(reach.len(), 1, "{reach:#?}");
    assert_eq!(reach[0].principal, "service lambda.amazonaws.com");
    assert!(reach[0].certain);
}

#[test]
fn odd_documents_never_panic() {
    let odd = [
        json!(null),
        json!("text"),
        json!({"Statement": "x"}),
        json!({"Statement": [1, null, "s"]}),
        json!({"Statement": {"Effect": "Allow", "Action": 3, "Resource": ["*", 4]}}),
        json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": []}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": "x"}}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*", "Condition": {"StringEquals": {"k": {"a": 1}}}}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "*", "NotAction": "s3:*", "Resource": "*"}]}),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "${", "Principal": 5}]}),
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "${aws:username, nodefault}"}]}),
        json!({"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*", 1], "Weird": "x"}, "Action": "sts:AssumeRole"}]}),
        json!({"Statement": [{"Effect": "Allow", "Action": "*".repeat(3000), "Resource": format!("{}a", "*?".repeat(3000))}]}),
    ];
    let c = caller_role("app");
    for a in &odd {
        for b in &odd {
            let _ = classify(a, b, db());
            let _ = classify_trust(a, b, db(), Some(OWN));
        }
        let set = PolicySet {
            identity: vec![pol("p", PolicyKind::Identity, a)],
            boundary: Some(pol("b", PolicyKind::PermissionsBoundary, a)),
            resource: Some(pol("t", PolicyKind::Trust, a)),
            identity_known: true,
            resource_account: None,
        };
        let _ = run(
            &c,
            "sts:AssumeRole",
            &"a*".repeat(2000),
            &Context::new(),
            &set,
        );
        let _ = run(&c, "s3:GetObject", "arn:aws:s3:::b", &Context::new(), &set);
    }
}

#[test]
fn a_users_groups_managed_policies_and_boundary_come_from_the_plan() {
    let d = plan(
        r#"
[stack]
name = "groups"

[policy.readers]
[[policy.readers.statement]]
action = "s3:Get*"
resource = "*"

[policy.fence]
[[policy.fence.statement]]
action = ["s3:*", "sqs:*"]
resource = "*"

[group.team]
managed_policies = ["${policy.readers.arn}"]

[[group.team.inline.send.statement]]
action = "sqs:SendMessage"
resource = "*"

[[group.team.inline.send.statement]]
action = "lambda:InvokeFunction"
resource = "*"

[user.alice]
groups = ["team"]
permissions_boundary = "${policy.fence.arn}"
tags = { team = "red" }

[[user.alice.inline.own.statement]]
action = "s3:PutObject"
resource = "arn:aws:s3:::home/${aws:username}/*"
condition = { StringEquals = { "aws:PrincipalTag/team" = "red" } }
"#,
    );
    let w = World::new(&d);
    let alice = w.principal("user/alice", None).unwrap();
    let ask =
        |action: &str, resource: &str| w.explain(alice, action, resource, &Context::new()).unwrap();
    let e = ask("s3:GetObject", B);
    assert_eq!(e.decision, Decision::Allowed);
    assert!(
        e.statements
            .iter()
            .any(|s| s.policy.name == "policy.readers"),
        "{e:?}"
    );
    assert!(
        e.statements
            .iter()
            .any(|s| s.policy.name == "permissions boundary policy.fence"),
        "{e:?}"
    );
    let e = ask("sqs:SendMessage", "arn:aws:sqs:us-east-1:000000000000:q");
    assert!(
        e.statements
            .iter()
            .any(|s| s.policy.name == "group.team inline policy send"),
        "{e:?}"
    );
    // The group allows it, the boundary does not.
    assert_eq!(
        ask("lambda:InvokeFunction", F).decision,
        Decision::ImplicitlyDenied
    );
    // Its own name and tags fill the variables and conditions.
    assert_eq!(
        ask("s3:PutObject", "arn:aws:s3:::home/alice/f").decision,
        Decision::Allowed
    );
    assert_eq!(
        ask("s3:PutObject", "arn:aws:s3:::home/bob/f").decision,
        Decision::ImplicitlyDenied
    );
    let mut blue = Context::new();
    blue.add("aws:PrincipalTag/team", "blue");
    assert_eq!(
        w.explain(alice, "s3:PutObject", "arn:aws:s3:::home/alice/f", &blue)
            .unwrap()
            .decision,
        Decision::ImplicitlyDenied
    );
}

/// Classification checked against the evaluator on generated pairs: whatever it calls
/// `Equivalent` or `Narrows` must allow nothing the old document did not, on every request
/// of a sample (and `Equivalent` or `Widens` must lose nothing).
#[test]
fn classification_agrees_with_the_evaluator_on_generated_pairs() {
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
            &xs[(self.next() % xs.len() as u64) as usize]
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }
    const ACTIONS: &[&str] = &[
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:Get*",
        "s3:*",
        "sqs:SendMessage",
        "*",
        "s3:List*",
        "S3:getobject",
    ];
    const RESOURCES: &[&str] = &[
        "*",
        "arn:aws:s3:::b/*",
        "arn:aws:s3:::b/x",
        "arn:aws:s3:::c/*",
        "arn:aws:sqs:us-east-1:000000000000:q",
        "arn:aws:s3:::*",
        "arn:aws:s3:::b*",
        "arn:*:s3:::c/*",
        "arn:aws:sqs:*:q",
        "arn:aws:s3:::b/${aws:PrincipalTag/t}",
    ];
    let conditions = [
        json!({"StringEquals": {"aws:PrincipalTag/t": "a"}}),
        json!({"StringEquals": {"aws:PrincipalTag/t": ["a", "b"]}}),
        json!({"Bool": {"aws:SecureTransport": "true"}}),
        json!({"StringNotEquals": {"aws:PrincipalTag/t": "c"}}),
        json!({"StringEqualsIfExists": {"aws:PrincipalTag/t": "a"}}),
        json!({"Null": {"aws:PrincipalTag/t": "true"}}),
        json!({"StringLike": {"aws:PrincipalTag/t": "?"}}),
        json!({"StringEquals": {"aws:PrincipalTag/t": "a"}, "Bool": {"aws:SecureTransport": "true"}}),
    ];
    // More pairs, another seed: IAMPLAN_GENERATED_PAIRS=5000 IAMPLAN_SEED=7 cargo test ...
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let pairs = env("IAMPLAN_GENERATED_PAIRS").unwrap_or(120);
    let mut rng = Rng(0x9e3779b97f4a7c15 ^ env("IAMPLAN_SEED").unwrap_or(0));
    let statement = |rng: &mut Rng| -> Value {
        let list = |rng: &mut Rng, from: &[&str]| -> Value {
            let n = 1 + rng.next() % 2;
            Value::Array((0..n).map(|_| json!(rng.pick(from))).collect())
        };
        let mut s = serde_json::Map::new();
        s.insert(
            "Effect".into(),
            json!(if rng.chance(80) { "Allow" } else { "Deny" }),
        );
        let a = if rng.chance(15) {
            "NotAction"
        } else {
            "Action"
        };
        s.insert(a.into(), list(rng, ACTIONS));
        let r = if rng.chance(15) {
            "NotResource"
        } else {
            "Resource"
        };
        s.insert(r.into(), list(rng, RESOURCES));
        if rng.chance(35) {
            s.insert("Condition".into(), rng.pick(&conditions).clone());
        }
        Value::Object(s)
    };
    let requests: Vec<(&str, &str)> = [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject",
        "s3:ListBucket",
        "sqs:SendMessage",
        "iam:PassRole",
    ]
    .iter()
    .flat_map(|a| {
        [
            "arn:aws:s3:::b/x",
            "arn:aws:s3:::b/a",
            "arn:aws:s3:::c/z",
            "arn:aws:sqs:us-east-1:000000000000:q",
        ]
        .map(|r| (*a, r))
    })
    .collect();
    let mut contexts = Vec::new();
    for t in [None, Some("a"), Some("b"), Some("c")] {
        for secure in ["true", "false"] {
            let mut c = Context::new().complete();
            if let Some(t) = t {
                c.add("aws:PrincipalTag/t", t);
            }
            c.add("aws:SecureTransport", secure);
            contexts.push(c);
        }
    }
    let caller = caller_role("app");
    let allowed = |d: &Value, action: &str, resource: &str, ctx: &Context| -> bool {
        let e = run(
            &caller,
            action,
            resource,
            ctx,
            &identity_set(std::slice::from_ref(d)),
        );
        assert!(
            !matches!(e.decision, Decision::Unknown { .. }),
            "{d} {action} {resource}: {e:?}"
        );
        e.decision.is_allowed()
    };
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..pairs {
        let old: Vec<Value> = (0..1 + rng.next() % 3)
            .map(|_| statement(&mut rng))
            .collect();
        let mut new = old.clone();
        match rng.next() % 4 {
            0 => new.push(statement(&mut rng)),
            1 if !new.is_empty() => {
                let i = (rng.next() % new.len() as u64) as usize;
                new.remove(i);
            }
            2 if !new.is_empty() => {
                let i = (rng.next() % new.len() as u64) as usize;
                new[i] = statement(&mut rng);
            }
            _ => new.reverse(),
        }
        let (old, new) = (doc(Value::Array(old)), doc(Value::Array(new)));
        let class = classify(&old, &new, db()).classification;
        *seen.entry(format!("{class}")).or_insert(0) += 1;
        for (action, resource) in &requests {
            for ctx in &contexts {
                let (o, n) = (
                    allowed(&old, action, resource, ctx),
                    allowed(&new, action, resource, ctx),
                );
                if n && !o {
                    assert!(
                        matches!(class, Widens | Changes),
                        "{class}: gained {action} {resource} {ctx:?}\nold {old}\nnew {new}"
                    );
                }
                if o && !n {
                    assert!(
                        matches!(class, Narrows | Changes),
                        "{class}: lost {action} {resource} {ctx:?}\nold {old}\nnew {new}"
                    );
                }
            }
        }
    }
    eprintln!("classifications of the generated pairs: {seen:?}");
    // Every answer occurs: the generator is not trivially one-sided.
    assert_eq!(seen.len(), 4, "{seen:?}");
}

/// The same check for trust policies: principals of the role's own account and of others,
/// services, conditions on the ExternalId, with and without the callers' identity policies.
#[test]
fn trust_classification_agrees_with_the_evaluator_on_generated_pairs() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let pairs = env("IAMPLAN_GENERATED_PAIRS").unwrap_or(120);
    let mut state = 0x2545f4914f6cdd1d ^ env("IAMPLAN_SEED").unwrap_or(0);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let principals = [
        json!({"AWS": "111122223333"}),
        json!({"AWS": "arn:aws:iam::111122223333:role/r"}),
        json!({"AWS": "arn:aws:iam::000000000000:root"}),
        json!({"AWS": "arn:aws:iam::000000000000:role/a"}),
        json!({"AWS": "arn:aws:iam::000000000000:user/u"}),
        json!("*"),
        json!({"Service": "lambda.amazonaws.com"}),
        json!({"AWS": ["111122223333", "arn:aws:iam::000000000000:role/a"]}),
    ];
    let actions = [
        json!("sts:AssumeRole"),
        json!(["sts:AssumeRole", "sts:TagSession"]),
        json!("sts:*"),
    ];
    let conditions = [
        json!({"StringEquals": {"sts:ExternalId": "a"}}),
        json!({"StringEquals": {"sts:ExternalId": ["a", "b"]}}),
    ];
    let statement = |next: &mut dyn FnMut() -> u64| -> Value {
        let deny = next() % 100 < 20;
        let mut s = json!({"Effect": if deny { "Deny" } else { "Allow" }, "Action": actions[(next() % 3) as usize].clone()});
        let p = principals[(next() % principals.len() as u64) as usize].clone();
        if deny && next() % 100 < 30 {
            s["NotPrincipal"] = p;
        } else {
            s["Principal"] = p;
        }
        if next() % 100 < 35 {
            s["Condition"] = conditions[(next() % 2) as usize].clone();
        }
        s
    };
    let iam = |kind, arn: &str| Caller::iam(kind, arn);
    let service = |id: &str| Caller {
        kind: CallerKind::Service,
        id: id.into(),
        account: None,
        session_arn: None,
    };
    let callers = [
        iam(CallerKind::Role, "arn:aws:iam::000000000000:role/a"),
        iam(CallerKind::Role, "arn:aws:iam::000000000000:role/b"),
        iam(CallerKind::User, "arn:aws:iam::000000000000:user/u"),
        iam(CallerKind::Role, "arn:aws:iam::111122223333:role/r"),
        iam(CallerKind::Role, "arn:aws:iam::111122223333:role/s"),
        iam(CallerKind::Role, "arn:aws:iam::444455556666:role/x"),
        service("lambda.amazonaws.com"),
        service("ec2.amazonaws.com"),
    ];
    let mut contexts = Vec::new();
    for x in [None, Some("a"), Some("b")] {
        let mut c = Context::new().complete();
        if let Some(x) = x {
            c.add("sts:ExternalId", x);
        }
        contexts.push(c);
    }
    let identities = [
        vec![doc(json!([allow(json!("sts:*"), json!("*"))]))],
        vec![],
    ];
    // NotPrincipal naming a role or user (or its account) is undecided: such requests are
    // left out of the comparison, and counted.
    let (mut undecided, mut compared) = (0, 0);
    let mut allowed =
        |t: &Value, caller: &Caller, action: &str, ctx: &Context, ids: &[Value]| -> Option<bool> {
            match run(caller, action, TARGET, ctx, &assume_set(ids, t)).decision {
                Decision::Unknown { .. } => {
                    undecided += 1;
                    None
                }
                d => {
                    compared += 1;
                    Some(d.is_allowed())
                }
            }
        };
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..pairs {
        let old: Vec<Value> = (0..1 + next() % 3).map(|_| statement(&mut next)).collect();
        let mut new = old.clone();
        match next() % 4 {
            0 => new.push(statement(&mut next)),
            1 if !new.is_empty() => {
                let i = (next() % new.len() as u64) as usize;
                new.remove(i);
            }
            2 if !new.is_empty() => {
                let i = (next() % new.len() as u64) as usize;
                new[i] = statement(&mut next);
            }
            _ => new.reverse(),
        }
        let (old, new) = (doc(Value::Array(old)), doc(Value::Array(new)));
        let class = classify_trust(&old, &new, db(), Some(OWN)).classification;
        *seen.entry(format!("{class}")).or_insert(0) += 1;
        for caller in &callers {
            for action in ["sts:AssumeRole", "sts:TagSession"] {
                for ctx in &contexts {
                    for ids in &identities {
                        let (Some(o), Some(n)) = (
                            allowed(&old, caller, action, ctx, ids),
                            allowed(&new, caller, action, ctx, ids),
                        ) else {
                            continue;
                        };
                        if n && !o {
                            assert!(
                                matches!(class, Widens | Changes),
                                "{class}: {caller:?} gained {action} {ctx:?}\nold {old}\nnew {new}"
                            );
                        }
                        if o && !n {
                            assert!(
                                matches!(class, Narrows | Changes),
                                "{class}: {caller:?} lost {action} {ctx:?}\nold {old}\nnew {new}"
                            );
                        }
                    }
                }
            }
        }
    }
    eprintln!(
        "classifications of the generated trust pairs: {seen:?}; requests compared {compared}, undecided {undecided}"
    );
    assert!(
        undecided * 4 < compared,
        "{undecided} undecided of {compared}"
    );
    assert_eq!(seen.len(), 4, "{seen:?}");
}
