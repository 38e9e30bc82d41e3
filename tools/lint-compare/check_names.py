#!/usr/bin/env python3
"""Sanity check of tests/lint-corpus/cases: every action and condition key is real
(per the AWS Service Authorization Reference data bundled in parliament), except in the
cases whose `expect` says it is not; and each case's shape fits its kind.

Usage: /tmp/lintvenv/bin/python tools/lint-compare/check_names.py [--cases DIR]
Exit status 1 if a case has a problem.
"""

import argparse
import glob
import json
import os
import re
import sys

from parliament import UnknownActionException, UnknownPrefixException, expand_action
from parliament.statement import get_global_key_type, get_privilege_info, is_condition_key_match

CODES = {
    "UNKNOWN_SERVICE", "UNKNOWN_ACTION", "UNSUPPORTED_RESOURCE", "UNKNOWN_CONDITION_KEY",
    "TRUST_WITHOUT_EXTERNAL_ID", "TRUST_ANY_PRINCIPAL", "PASS_ROLE_ALL_RESOURCES",
    "ALL_ACTIONS_ALL_RESOURCES", "ALLOW_NOT_ACTION", "ALLOW_NOT_RESOURCE", "REDUNDANT_ACTION",
}
# OIDC identity-provider keys (<provider host>:aud, :sub, :amr, ...) are valid for
# sts:AssumeRoleWithWebIdentity whatever the provider, though the reference lists only a few.
OIDC_KEY = re.compile(r"^[a-z0-9.-]+\.[a-z]{2,}(/[^:]*)?:(aud|sub|amr|oaud|azp|email|id|app_id|user_id)$")


def as_list(v):
    return v if isinstance(v, list) else [v]


def check_case(path):
    problems = []
    c = json.load(open(path))
    name = os.path.basename(path)
    for field in ("kind", "policy", "expect", "note"):
        if field not in c:
            problems.append(f"missing field {field}")
    if problems:
        return problems
    if c["kind"] not in ("identity", "trust"):
        problems.append(f"kind {c['kind']!r}")
    unknown_codes = set(c["expect"]) - CODES
    if unknown_codes:
        problems.append(f"unknown codes {sorted(unknown_codes)}")
    if len(set(c["expect"])) != len(c["expect"]):
        problems.append("duplicate codes in expect")
    pol = c["policy"]
    if pol.get("Version") != "2012-10-17":
        problems.append("Version is not 2012-10-17")
    expect = set(c["expect"])
    bad_prefix = bad_action = bad_key = 0
    for st in as_list(pol.get("Statement", [])):
        has_principal = "Principal" in st or "NotPrincipal" in st
        has_resource = "Resource" in st or "NotResource" in st
        if c["kind"] == "identity" and has_principal:
            problems.append("identity policy statement with a Principal")
        if c["kind"] == "trust" and (has_resource or not has_principal):
            problems.append("trust statement needs a Principal and no Resource")
        actions = as_list(st.get("Action", st.get("NotAction", [])))
        expanded = []
        for a in actions:
            if a in ("*", "*:*"):
                continue
            try:
                expanded.extend(expand_action(a))
            except UnknownPrefixException:
                bad_prefix += 1
                if "UNKNOWN_SERVICE" not in expect:
                    problems.append(f"unknown service in {a}")
            except UnknownActionException:
                bad_action += 1
                if "UNKNOWN_ACTION" not in expect:
                    problems.append(f"unknown action {a}")
        if c["kind"] == "trust":
            for a in actions:
                if a.lower() not in ("sts:assumerole", "sts:tagsession",
                                     "sts:assumerolewithwebidentity", "sts:assumerolewithsaml",
                                     "sts:setsourceidentity") and "UNKNOWN_ACTION" not in expect:
                    problems.append(f"trust action {a}")
        for op, block in st.get("Condition", {}).items():
            for key in block:
                if get_global_key_type(key):
                    continue
                if (OIDC_KEY.match(key) and any(x["action"] == "AssumeRoleWithWebIdentity"
                                                 for x in expanded)):
                    continue
                known_for = []
                for x in expanded:
                    info = get_privilege_info(x["service"], x["action"])
                    if any(is_condition_key_match(k, key)
                           for rt in info["resource_types"] for k in rt["condition_keys"]):
                        known_for.append(x["action"])
                if not known_for:
                    bad_key += 1
                    if "UNKNOWN_CONDITION_KEY" not in expect:
                        problems.append(f"condition key {key} is defined for none of {actions}")
    if "UNKNOWN_SERVICE" in expect and not bad_prefix:
        problems.append("expects UNKNOWN_SERVICE but every prefix is known")
    if "UNKNOWN_ACTION" in expect and not bad_action:
        problems.append("expects UNKNOWN_ACTION but every action is known")
    if "UNKNOWN_CONDITION_KEY" in expect and not bad_key:
        problems.append("expects UNKNOWN_CONDITION_KEY but every key is known")
    return [f"{name}: {p}" for p in problems]


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default=os.path.join(here, "..", "..", "tests", "lint-corpus", "cases"))
    args = ap.parse_args()
    paths = sorted(glob.glob(os.path.join(args.cases, "*.json")))
    problems = []
    for p in paths:
        problems.extend(check_case(p))
    for p in problems:
        print(p)
    print(f"{len(paths)} cases checked, {len(problems)} problems")
    return 1 if problems or not paths else 0


if __name__ == "__main__":
    sys.exit(main())
