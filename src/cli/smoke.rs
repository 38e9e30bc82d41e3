//! `iamplan smoke`: run the plan's smoke checks and print what happened, and why.

use super::{Common, EXIT_ERROR, EXIT_OK, Session};
use crate::plan::Style;
use crate::smoke::{CheckResult, LiveFacts, Prediction, SmokeCheck, predict, run_checks};
use anyhow::{Result, bail};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Default)]
pub struct SmokeArgs {
    pub files: Vec<PathBuf>,
    pub common: Common,
    pub json: bool,
    pub show_request: bool,
}

pub async fn run(args: SmokeArgs) -> Result<i32> {
    let wants = super::Wants {
        smoke: true,
        ..super::Wants::default()
    };
    let planned = super::make_plan(&args.files, &args.common, wants).await?;
    let changes = planned.plan.changes().count();
    if changes > 0 {
        eprintln!(
            "warning: live IAM differs from the plan ({changes} resource(s) to change; run `iamplan apply` first): the checks run against what is live"
        );
    }
    let checks = planned.smoke.unwrap_or_default();
    let facts = live_facts(&planned.session, &planned.live);
    let opts = Outputs {
        json: args.json,
        show_request: args.show_request,
    };
    let run = RunFor {
        live: Some(&facts),
        desired: Some(&planned.desired),
    };
    run_for(checks, &planned.session, &args.common, opts, run).await
}

/// What `run_for` may know beyond the checks: the live roles (to name a missing one) and
/// the desired state (to predict each check).
#[derive(Clone, Copy, Default)]
pub struct RunFor<'a> {
    pub live: Option<&'a LiveFacts>,
    pub desired: Option<&'a crate::model::Desired>,
}

/// How `run_for` prints.
#[derive(Debug, Clone, Copy, Default)]
pub struct Outputs {
    pub json: bool,
    pub show_request: bool,
}

/// The roles each account has live, for checks that name one that does not exist.
pub fn live_facts(session: &Session, live: &crate::model::Live) -> LiveFacts {
    let mut facts = LiveFacts::default();
    for (alias, account) in &session.accounts {
        let arns = live
            .resources
            .iter()
            .filter(|(a, _)| a.account == *alias && a.kind == crate::model::Kind::Role)
            .map(|(_, l)| l.arn.clone())
            .collect();
        facts.roles.insert(account.ctx.account_id.clone(), arns);
    }
    facts
}

/// Runs the checks of already loaded plan files (also used by `apply --smoke`).
pub async fn run_for(
    checks: Vec<SmokeCheck>,
    session: &Session,
    common: &Common,
    out: Outputs,
    run: RunFor<'_>,
) -> Result<i32> {
    let Outputs { json, show_request } = out;
    if checks.is_empty() {
        bail!(
            "the plan files declare no smoke checks: add [smoke.NAME] tables (see README, \"Smoke checks\")"
        );
    }
    let base: BTreeMap<String, aws_config::SdkConfig> = session
        .accounts
        .iter()
        .map(|(k, a)| (k.clone(), a.config.clone()))
        .collect();
    // Predicted before any check runs, from the plan alone.
    let predictions: Vec<Prediction> = match run.desired {
        Some(desired) => {
            let world = crate::access::World::new(desired);
            checks
                .iter()
                .map(|c| {
                    let start = session
                        .accounts
                        .get(&c.account)
                        .map_or("", |a| a.caller.as_str());
                    predict(&world, c, start)
                })
                .collect()
        }
        None => Vec::new(),
    };
    let results = run_checks(
        &checks,
        &base,
        &common.target,
        show_request,
        run.live,
        &predictions,
    )
    .await;
    if json {
        outln!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        out!("{}", render(&results, Style::detect()));
    }
    Ok(if results.iter().all(|r| r.passed) {
        EXIT_OK
    } else {
        EXIT_ERROR
    })
}

pub fn render(results: &[CheckResult], st: Style) -> String {
    let mut out = String::new();
    // Each column as wide as its widest cell or its heading.
    let width = |cell: fn(&CheckResult) -> &str, heading: &str| {
        results
            .iter()
            .map(|r| cell(r).len())
            .fold(heading.len(), usize::max)
    };
    let w_name = width(|r| &r.name, "CHECK");
    let w_exp = width(|r| &r.expected, "EXPECTED");
    let w_out = width(|r| &r.outcome, "RESULT");
    // The prediction column only when checks were predicted (not for a saved plan's apply).
    let predicted: Vec<String> = results
        .iter()
        .map(|r| {
            r.prediction
                .as_ref()
                .map(|p| p.describe())
                .unwrap_or_default()
        })
        .collect();
    let show_predicted = results.iter().any(|r| r.prediction.is_some());
    let w_pred = predicted
        .iter()
        .map(String::len)
        .fold("PREDICTED".len(), usize::max);
    let pred_cell = |p: &str| {
        if show_predicted {
            format!("{p:w_pred$}  ")
        } else {
            String::new()
        }
    };
    let _ = writeln!(
        out,
        "  {:w_name$}  {:w_exp$}  {}{:w_out$}  TIME",
        "CHECK",
        "EXPECTED",
        pred_cell("PREDICTED"),
        "RESULT"
    );
    for (r, p) in results.iter().zip(&predicted) {
        let mark = if r.passed {
            st.green("ok")
        } else {
            st.red("FAIL")
        };
        let usable = r
            .usable_after_seconds
            .map(|s| format!(" (usable after {s:.1}s)"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:w_name$}  {:w_exp$}  {}{:w_out$}  {:.2}s{usable}  {mark}",
            r.name,
            r.expected,
            pred_cell(p),
            r.outcome,
            r.seconds
        );
        if let Some(d) = &r.diagnosis {
            let _ = writeln!(
                out,
                "      {} {d}",
                if r.passed { "why:" } else { "what broke:" }
            );
        }
        if let Some(f) = &r.finding {
            let _ = writeln!(out, "      {} {f}", st.yellow("finding:"));
        }
        // An unknown with no deciding call is a caller outside the plan (from_profile):
        // nothing to act on per check, so the summary says it once.
        if let Some(pr) = r
            .prediction
            .as_ref()
            .filter(|p| p.outcome == crate::smoke::Predicted::Unknown && p.call.is_some())
        {
            let call = pr
                .call
                .as_ref()
                .map(|c| format!(" at {c}"))
                .unwrap_or_default();
            let why = pr.reasons.first().map(String::as_str).unwrap_or("");
            let _ = writeln!(out, "      predicted unknown{call}: {why}");
        }
        if let Some(req) = &r.request {
            for l in req.lines() {
                let _ = writeln!(out, "      | {l}");
            }
        }
    }
    let passed = results.iter().filter(|r| r.passed).count();
    let findings = results.iter().filter(|r| r.finding.is_some()).count();
    let findings = if findings > 0 {
        format!(", {findings} finding(s): AWS disagrees with the plan's policies")
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "\nSmoke: {passed} passed, {} failed{findings}",
        results.len() - passed
    );
    let outside = results
        .iter()
        .filter_map(|r| r.prediction.as_ref())
        .filter(|p| p.outcome == crate::smoke::Predicted::Unknown && p.call.is_none())
        .count();
    if outside > 0 {
        let _ = writeln!(
            out,
            "{outside} check(s) not predicted: they run as a principal outside the plan (from_profile), whose policies the plan does not hold"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(name: &str, passed: bool, diagnosis: Option<&str>) -> CheckResult {
        CheckResult {
            name: name.into(),
            expected: "deny (external_id)".into(),
            outcome: if passed {
                "denied (external_id)".into()
            } else {
                "allowed".into()
            },
            passed,
            seconds: 0.05,
            usable_after_seconds: None,
            diagnosis: diagnosis.map(str::to_string),
            request: None,
            prediction: None,
            finding: None,
        }
    }

    #[test]
    fn table_lists_each_check_and_a_closing_count() {
        let text = render(
            &[
                result("wrong-id", true, Some("ExternalId \"x\" is not the one")),
                result("open", false, Some("expected a denial")),
            ],
            Style { color: false },
        );
        assert!(
            text.contains("wrong-id  deny (external_id)  denied (external_id)  0.05s  ok"),
            "{text}"
        );
        assert!(text.contains("what broke: expected a denial"), "{text}");
        assert!(
            text.trim_end().ends_with("Smoke: 1 passed, 1 failed"),
            "{text}"
        );
    }

    #[test]
    fn predictions_get_a_column_and_disagreements_a_finding() {
        use crate::smoke::{Predicted, Prediction};
        let mut denied = result("sink", false, Some("AccessDenied"));
        denied.expected = "allow".into();
        denied.outcome = "denied (invoke_permission)".into();
        denied.prediction = Some(Prediction {
            outcome: Predicted::Allow,
            call: None,
            reasons: vec![],
        });
        denied.finding = crate::smoke::finding(denied.prediction.as_ref().unwrap(), Some(false));
        let mut unknown = result("partner", true, None);
        unknown.prediction = Some(Prediction {
            outcome: Predicted::Unknown,
            call: Some("AssumeRole arn:aws:iam::1:role/r".into()),
            reasons: vec!["profile p's principal is outside the plan".into()],
        });
        let outside = |name: &str| {
            let mut r = result(name, true, None);
            r.prediction = Some(Prediction {
                outcome: Predicted::Unknown,
                call: None,
                reasons: vec![format!(
                    "profile {name}'s principal and its policies are outside the plan"
                )],
            });
            r
        };
        let (a, b) = (outside("tooling"), outside("ably"));
        let text = render(&[denied, unknown, a, b], Style { color: false });
        // Callers outside the plan: said once, in the summary, not on every check.
        assert_eq!(text.matches("predicted unknown").count(), 1, "{text}");
        assert!(!text.contains("profile tooling's"), "{text}");
        assert!(
            text.contains(
                "2 check(s) not predicted: they run as a principal outside the plan (from_profile)"
            ),
            "{text}"
        );
        assert!(
            text.contains("EXPECTED            PREDICTED  RESULT"),
            "{text}"
        );
        assert!(
            text.contains("finding: predicted allow, AWS denied: a sign of drift, an SCP or a resource policy outside the plan"),
            "{text}"
        );
        assert!(
            text.contains("predicted unknown at AssumeRole arn:aws:iam::1:role/r: profile p's principal is outside the plan"),
            "{text}"
        );
        assert!(text.contains("1 finding(s)"), "{text}");
    }
}
