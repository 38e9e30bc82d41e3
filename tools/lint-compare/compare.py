#!/usr/bin/env python3
"""Compare `iamplan lint` with parliament (duo-labs) on tests/lint-corpus/cases.

Usage (Python 3.11, from the venv that has parliament installed):

    /tmp/lintvenv/bin/python tools/lint-compare/compare.py \
        [--iamplan target/debug/iamplan] [--out FILE.md] [--cases DIR] [--only TEXT] \
        [--parliament-trust-resource]

Each case file is {"kind": "identity"|"trust", "policy": {...}, "expect": [CODE...], "note": "..."}.
Without --iamplan (or when that file does not exist) only parliament's column is filled in.
The markdown report goes to --out, or to standard output.
"""

import argparse
import glob
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter

import parliament
from parliament import analyze_policy_string, override_config

# iamplan's finding codes and their severities (stable).
IAMPLAN_CODES = {
    "UNKNOWN_SERVICE": "error",
    "UNKNOWN_ACTION": "error",
    "UNSUPPORTED_RESOURCE": "warning",
    "UNKNOWN_CONDITION_KEY": "warning",
    "TRUST_WITHOUT_EXTERNAL_ID": "security_warning",
    "TRUST_ANY_PRINCIPAL": "security_warning",
    "PASS_ROLE_ALL_RESOURCES": "security_warning",
    "ALL_ACTIONS_ALL_RESOURCES": "security_warning",
    "ALLOW_NOT_ACTION": "security_warning",
    "ALLOW_NOT_RESOURCE": "security_warning",
    "REDUNDANT_ACTION": "suggestion",
}

# parliament issue (parliament/config.yaml, community_auditors/config_override.yaml)
# -> iamplan code. Only issues that mean the same thing are mapped.
PARLIAMENT_TO_IAMPLAN = {
    "UNKNOWN_PREFIX": "UNKNOWN_SERVICE",                  # service prefix not in its IAM data
    "UNKNOWN_ACTION": "UNKNOWN_ACTION",                   # action (or wildcard) matches nothing
    "RESOURCE_MISMATCH": "UNSUPPORTED_RESOURCE",          # no Resource matches an action's resource types
    "UNKNOWN_CONDITION_FOR_ACTION": "UNKNOWN_CONDITION_KEY",  # key not documented for the action
    "NOTRESOURCE_WITH_ALLOW": "ALLOW_NOT_RESOURCE",       # community auditor advanced_policy_elements
}
# Deliberately not mapped (reported as "other"):
#   RESOURCE_STAR / RESOURCE_EFFECTIVELY_STAR - Resource * where the actions could be scoped;
#       fires for any scopable action, not only for Action * / service:* (ALL_ACTIONS_ALL_RESOURCES).
#   PRIVILEGE_ESCALATION - combinations of actions (iam:PassRole + lambda:CreateFunction, ...);
#       not about PassRole on Resource * (PASS_ROLE_ALL_RESOURCES).
#   PERMISSIONS_MANAGEMENT_ACTIONS, CREDENTIALS_EXPOSURE, SENSITIVE_ACCESS - access-level lists.
#   NOTPRINCIPAL_WITH_ALLOW, UNKNOWN_PRINCIPAL, UNKNOWN_FEDERATION_SOURCE - principal checks.
#   MALFORMED, INVALID_ARN, MISMATCHED_TYPE*, ... - syntax and type checks iamplan has no code for.
# parliament has no counterpart for TRUST_WITHOUT_EXTERNAL_ID, TRUST_ANY_PRINCIPAL,
# PASS_ROLE_ALL_RESOURCES, ALL_ACTIONS_ALL_RESOURCES, ALLOW_NOT_ACTION, REDUNDANT_ACTION.
PARLIAMENT_COUNTERPART = set(PARLIAMENT_TO_IAMPLAN.values())

TOOLS = ("parliament", "iamplan")


class Outcome:
    """What one tool said about one case."""

    def __init__(self, expect):
        self.expect = set(expect)
        self.found = set()          # iamplan codes (mapped, for parliament)
        self.other = Counter()      # parliament issues with no iamplan code; unknown iamplan codes
        self.failure = None         # text, when the tool failed on this case
        self.notes = []             # e.g. severity differences

    @property
    def hits(self):
        return self.expect & self.found

    @property
    def misses(self):
        return self.expect - self.found

    @property
    def extra(self):
        return self.found - self.expect


def load_cases(directory, only):
    cases = []
    for path in sorted(glob.glob(os.path.join(directory, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        if only and only not in name:
            continue
        with open(path) as f:
            case = json.load(f)
        if case.get("kind") not in ("identity", "trust"):
            raise SystemExit(f"{path}: kind must be identity or trust")
        unknown = set(case.get("expect", [])) - set(IAMPLAN_CODES)
        if unknown:
            raise SystemExit(f"{path}: unknown codes in expect: {sorted(unknown)}")
        case["name"] = name
        cases.append(case)
    return cases


def statements(policy):
    st = policy.get("Statement", [])
    return st if isinstance(st, list) else [st]


def run_parliament(case, trust_resource):
    out = Outcome(case["expect"])
    policy = case["policy"]
    if case["kind"] == "trust" and trust_resource:
        # parliament has no trust-policy mode: a statement without Resource is MALFORMED and
        # nothing else of it is checked. Optionally give it a Resource so that its action and
        # condition checks run.
        policy = json.loads(json.dumps(policy))
        for st in statements(policy):
            if "Resource" not in st and "NotResource" not in st:
                st["Resource"] = "arn:aws:iam::*:role/*"
    try:
        result = analyze_policy_string(
            json.dumps(policy, indent=2),
            filepath=case["name"],
            ignore_private_auditors=True,
            include_community_auditors=True,
        )
        issues = [f.issue for f in result.findings]
    except Exception as e:  # noqa: BLE001 - any crash is a tool failure for this case
        out.failure = f"{type(e).__name__}: {e}"
        return out
    for issue in issues:
        code = PARLIAMENT_TO_IAMPLAN.get(issue)
        if code:
            out.found.add(code)
        else:
            out.other[issue] += 1
    return out


def plan_text(case):
    doc = json.dumps(case["policy"], indent=2)
    if "'''" in doc:
        raise ValueError("the policy contains ''' and cannot go in a TOML literal string")
    table = "[policy.case]" if case["kind"] == "identity" else "[role.case.trust]"
    return f'[stack]\nname = "lint-corpus"\n\n{table}\ndocument = \'\'\'\n{doc}\n\'\'\'\n'


def run_iamplan(case, binary, timeout):
    out = Outcome(case["expect"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with tempfile.TemporaryDirectory(prefix="lint-corpus-") as d:
        try:
            text = plan_text(case)
        except ValueError as e:
            out.failure = str(e)
            return out
        with open(os.path.join(d, "main.toml"), "w") as f:
            f.write(text)
        try:
            p = subprocess.run([binary, "lint", d, "--json"], capture_output=True, text=True,
                               env=env, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            out.failure = f"timed out after {timeout} s"
            return out
        except OSError as e:
            out.failure = f"could not run: {e}"
            return out
    if p.returncode not in (0, 1):
        err = (p.stderr.strip() or p.stdout.strip()).splitlines()
        out.failure = f"exit status {p.returncode}: {err[0] if err else '(no output)'}"
        return out
    try:
        data = json.loads(p.stdout)
        findings = data["findings"]
        if not isinstance(findings, list):
            raise TypeError("findings is not a list")
        if data.get("format_version") != "1":
            out.notes.append(f"format_version {data.get('format_version')!r}, expected \"1\"")
        for f in findings:
            code = f["code"]
            if code in IAMPLAN_CODES:
                out.found.add(code)
                sev = f.get("severity")
                if sev != IAMPLAN_CODES[code]:
                    out.notes.append(f"{code} has severity {sev!r}, expected {IAMPLAN_CODES[code]!r}")
            else:
                out.other[code] += 1
    except (ValueError, KeyError, TypeError) as e:
        head = p.stdout.strip().splitlines()
        out.failure = f"unparsable output ({e}): {head[0][:120] if head else '(empty)'}"
        return out
    return out


def fmt_codes(codes):
    return ", ".join(f"`{c}`" for c in sorted(codes)) if codes else "-"


def fmt_other(counter):
    return ", ".join(f"`{k}`" + (f" x{v}" if v > 1 else "") for k, v in sorted(counter.items()))


def report(cases, results, ran, meta):
    lines = []
    add = lines.append
    add("# iamplan lint vs parliament: lint corpus comparison")
    add("")
    add(f"- cases: {len(cases)} ({sum(c['kind'] == 'identity' for c in cases)} identity, "
        f"{sum(c['kind'] == 'trust' for c in cases)} trust; "
        f"{sum(not c['expect'] for c in cases)} clean controls)")
    add(f"- parliament {meta['parliament_version']} (community auditors on, private auditors off; "
        + ("trust statements given `Resource: arn:aws:iam::*:role/*`" if meta["trust_resource"]
           else "trust policies passed as they are: parliament requires a Resource, so it reports "
                "them MALFORMED and checks nothing more in them")
        + ")")
    add(f"- iamplan: {meta['iamplan']}")
    add("")
    add("Hits are expected codes a tool reported; misses are expected codes it did not; false "
        "positives are iamplan codes it reported that the case does not expect (each code counts "
        "once per case). parliament's issues are mapped to iamplan codes by the table in "
        "compare.py; its other issues are listed as \"other\". A tool that fails on a case "
        "misses all that case's codes.")
    add("")

    # Per-code table.
    add("## Per code")
    add("")
    head = "| code | severity | expected | parliament hits | parliament FP |"
    sep = "| --- | --- | ---: | ---: | ---: |"
    if ran["iamplan"]:
        head += " iamplan hits | iamplan FP |"
        sep += " ---: | ---: |"
    add(head)
    add(sep)
    for code, sev in IAMPLAN_CODES.items():
        expected = sum(code in c["expect"] for c in cases)
        row = f"| `{code}` | {sev} | {expected} |"
        for tool in TOOLS:
            if not ran[tool]:
                continue
            hits = sum(code in results[c["name"]][tool].hits for c in cases)
            fp = sum(code in results[c["name"]][tool].extra for c in cases)
            if tool == "parliament" and code not in PARLIAMENT_COUNTERPART:
                row += f" {hits} (no check) | {fp} |"
            else:
                row += f" {hits} | {fp} |"
        add(row)
    add("")

    # Totals.
    add("## Totals")
    add("")
    total_expected = sum(len(c["expect"]) for c in cases)
    clean = [c for c in cases if not c["expect"]]
    add("| tool | cases | failures | hits | misses | false positives | recall | precision "
        "| clean controls with no code |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    totals = {}
    for tool in TOOLS:
        if not ran[tool]:
            add(f"| {tool} | not run | | | | | | | |")
            continue
        outs = [results[c["name"]][tool] for c in cases]
        hits = sum(len(o.hits) for o in outs)
        misses = sum(len(o.misses) for o in outs)
        extra = sum(len(o.extra) for o in outs)
        failures = sum(o.failure is not None for o in outs)
        silent = sum(not results[c["name"]][tool].found and results[c["name"]][tool].failure is None
                     for c in clean)
        recall = f"{hits / total_expected:.0%}" if total_expected else "-"
        precision = f"{hits / (hits + extra):.0%}" if hits + extra else "-"
        totals[tool] = dict(hits=hits, misses=misses, extra=extra, failures=failures)
        add(f"| {tool} | {len(cases)} | {failures} | {hits} | {misses} | {extra} | {recall} | "
            f"{precision} | {silent}/{len(clean)} |")
    add("")
    counterpart_expected = sum(len(set(c["expect"]) & PARLIAMENT_COUNTERPART) for c in cases)
    p_hits = totals.get("parliament", {}).get("hits", 0)
    add(f"parliament has a check for {len(PARLIAMENT_COUNTERPART)} of the {len(IAMPLAN_CODES)} "
        f"codes ({', '.join(sorted(PARLIAMENT_COUNTERPART))}); on those it found "
        f"{p_hits} of {counterpart_expected} expected.")
    add("")

    # Per-case differences.
    add("## Per-case differences")
    add("")
    any_diff = False
    for c in cases:
        res = results[c["name"]]
        parts = []
        for tool in TOOLS:
            if not ran[tool]:
                continue
            o = res[tool]
            bits = []
            if o.failure:
                bits.append(f"FAILED: {o.failure}")
            if o.misses:
                bits.append(f"missed {fmt_codes(o.misses)}")
            if o.extra:
                bits.append(f"false positive {fmt_codes(o.extra)}")
            if o.other and tool == "iamplan":
                bits.append(f"codes not in the known list {fmt_other(o.other)}")
            if o.notes:
                bits.append("; ".join(o.notes))
            if bits:
                parts.append(f"  - {tool}: " + "; ".join(bits)
                             + (f" (other: {fmt_other(o.other)})"
                                if o.other and tool == "parliament" else ""))
        if parts:
            any_diff = True
            add(f"- `{c['name']}` ({c['kind']}), expected {fmt_codes(c['expect'])}: {c['note']}")
            lines.extend(parts)
    if not any_diff:
        add("None: every tool that ran reported exactly the expected codes.")
    add("")

    # parliament's unmapped issues.
    if ran["parliament"]:
        other = Counter()
        where = {}
        for c in cases:
            for issue in results[c["name"]]["parliament"].other:
                other[issue] += 1
                where.setdefault(issue, []).append(c["name"].split("-", 1)[0])
        add("## parliament issues with no iamplan code (\"other\")")
        add("")
        if other:
            add("| issue | cases | which |")
            add("| --- | ---: | --- |")
            for issue, n in other.most_common():
                add(f"| `{issue}` | {n} | {' '.join(where[issue])} |")
        else:
            add("None.")
        add("")
    if ran["iamplan"]:
        other = Counter()
        for c in cases:
            other.update(results[c["name"]]["iamplan"].other)
        if other:
            add("## iamplan codes not in the known list")
            add("")
            add(fmt_other(other))
            add("")
    return "\n".join(lines)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description="Compare iamplan lint with parliament on the lint corpus.")
    ap.add_argument("--iamplan", help="path of the iamplan binary (e.g. target/debug/iamplan)")
    ap.add_argument("--out", help="write the markdown report here instead of standard output")
    ap.add_argument("--cases", default=os.path.normpath(
        os.path.join(here, "..", "..", "tests", "lint-corpus", "cases")),
        help="directory of case files (default: tests/lint-corpus/cases)")
    ap.add_argument("--only", help="run only the cases whose file name contains this text")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per iamplan run (120)")
    ap.add_argument("--parliament-trust-resource", action="store_true",
                    help="give trust statements a Resource for parliament, which otherwise "
                         "rejects them as MALFORMED")
    args = ap.parse_args()

    cases = load_cases(args.cases, args.only)
    if not cases:
        raise SystemExit(f"no cases in {args.cases}")

    # Like parliament's CLI with --include-community-auditors: load their finding types.
    override_config(os.path.join(os.path.dirname(parliament.__file__),
                                 "community_auditors", "config_override.yaml"))

    iamplan = None
    if args.iamplan:
        if os.path.isfile(args.iamplan) and os.access(args.iamplan, os.X_OK):
            iamplan = os.path.abspath(args.iamplan)
        else:
            print(f"compare.py: {args.iamplan} is not an executable file; "
                  "reporting parliament only", file=sys.stderr)
    ran = {"parliament": True, "iamplan": iamplan is not None}

    results = {}
    for case in cases:
        results[case["name"]] = {
            "parliament": run_parliament(case, args.parliament_trust_resource),
            "iamplan": run_iamplan(case, iamplan, args.timeout) if iamplan else None,
        }

    try:
        version = importlib.metadata.version("parliament")
    except importlib.metadata.PackageNotFoundError:
        version = getattr(parliament, "__version__", "?")
    meta = {
        "parliament_version": version,
        "trust_resource": args.parliament_trust_resource,
        "iamplan": iamplan if iamplan else "not run (give --iamplan PATH to an existing binary)",
    }
    text = report(cases, results, ran, meta)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
