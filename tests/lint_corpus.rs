//! The lint corpus (`tests/lint-corpus/cases/*.json`): policies with known problems, each
//! with the codes it must raise and no others, and clean controls that must raise none.
//! No emulator: lint is offline.

use iamplan::lint::{self, Code};
use std::collections::BTreeSet;

#[test]
fn every_corpus_case_raises_exactly_its_codes() {
    let dir = std::path::Path::new("tests/lint-corpus/cases");
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .expect("the lint corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "{} cases", cases.len());
    // The placeholder account the offline check gives the default account.
    let own = BTreeSet::from(["000000000000".to_string()]);
    let db = lint::db::load();
    let mut failures = Vec::new();
    for case in &cases {
        // As a plan file would: iamplan's own variables resolved for the default account.
        let text = std::fs::read_to_string(case)
            .unwrap()
            .replace("${partition}", "aws")
            .replace("${account_id}", "000000000000");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let trust = v["kind"] == "trust";
        let problems = iamplan::policy::check(&v["policy"], trust);
        assert!(
            problems
                .iter()
                .all(|p| p.severity != iamplan::policy::Severity::Error),
            "{}: the policy itself is invalid: {problems:?}",
            case.display()
        );
        let expected: BTreeSet<Code> = v["expect"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| Code::parse(c.as_str().unwrap()).expect("a known code"))
            .collect();
        let found: BTreeSet<Code> = lint::check_document(&v["policy"], trust, &own, &db)
            .into_iter()
            .map(|(c, _, _)| c)
            .collect();
        if found != expected {
            failures.push(format!(
                "{}: expected {expected:?}, found {found:?}",
                case.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
