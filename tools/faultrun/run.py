#!/usr/bin/env python3
"""The fault runs of docs/reliability.md: applies needed, keys left and secrets seen when
a stack of every kind is created, then every policy document changed, through the fault
proxy (tests/support/fault.py) at 10% dropped connections, 10% HTTP 500 and 30% throttling.

  tools/faultrun/run.py [--runs N] [--binary target/debug/iamplan]

Starts its own MiniStack (localstack/up --port 0) and proxy; each run is a stack of its
own, seeded with its number. Needs python3 with boto3 (to read keys past the proxy).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

import boto3

REPO = pathlib.Path(__file__).resolve().parents[2]
NOISE = [
    {"fault": "drop_before", "rate": 0.05},
    {"fault": "drop_after", "rate": 0.05263},
    {"fault": "500_before", "rate": 0.05556},
    {"fault": "500_after", "rate": 0.05882},
    {"fault": "throttle", "rate": 0.375},
]
USERS = 3


def stack(run, generation):
    text = f'[stack]\nname = "noisy{run}"\n'
    for i in range(USERS):
        n = f"{run}x{i}"
        text += f"""
[policy.p{n}]
[[policy.p{n}.statement]]
action = "lambda:InvokeFunction"
resource = "arn:${{partition}}:lambda:${{region}}:${{account_id}}:function:f{n}-{generation}"
[role.r{n}]
instance_profile = true
managed_policies = ["p{n}"]
[role.r{n}.trust]
services = ["ec2.amazonaws.com"]
[role.r{n}.inline.logs]
document = '{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"logs:PutLogEvents","Resource":"arn:aws:logs:*:*:log-group:g{generation}"}}]}}'
[group.g{n}]
managed_policies = ["p{n}"]
[user.u{n}]
groups = ["g{n}"]
[user.u{n}.access_keys]
sink = {{ type = "json", path = "secrets/u{n}.json" }}
"""
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--binary", default=str(REPO / "target/debug/iamplan"))
    args = ap.parse_args()
    up = subprocess.run([REPO / "localstack/up", "--flavor", "ministack", "--port", "0"],
                        capture_output=True, text=True, check=True)
    env = dict(os.environ)
    for line in up.stdout.splitlines():
        if line.startswith("export ") and "=" in line:
            k, v = line[len("export "):].split("=", 1)
            env[k] = v
    env.pop("AWS_PROFILE", None)
    env["NO_COLOR"] = "1"
    port = env["IAMPLAN_EMULATOR_PORT"]
    work = pathlib.Path(tempfile.mkdtemp())
    rules, log = work / "faults.json", work / "faults.log"
    rules.write_text(json.dumps({"rules": []}))
    proxy = subprocess.Popen([sys.executable, REPO / "tests/support/fault.py", env["AWS_ENDPOINT_URL"],
                              rules, log], stdout=subprocess.PIPE, text=True)
    proxied = dict(env, AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxy.stdout.readline().strip()}")
    iam = boto3.client("iam", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1",
                       aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    totals = {"unconverged": 0, "applies": [], "failed_plans": 0, "keys_left": 0, "secrets_seen": 0, "faults": 0}
    try:
        for run in range(1, args.runs + 1):
            d = work / f"run{run}"
            d.mkdir()
            plan = d / "plan.toml"
            output = ""
            row = []
            for generation in range(2):
                plan.write_text(stack(run, generation))
                rules.write_text(json.dumps({"seed": run * 10 + generation, "rules": NOISE}))
                applies, converged = 0, False
                while applies < 5 and not converged:
                    applies += 1
                    r = subprocess.run([args.binary, "apply", plan, "--auto-approve"], env=proxied,
                                       capture_output=True, text=True)
                    output += r.stdout + r.stderr
                    converged = r.returncode == 0
                    for line in r.stderr.splitlines() + r.stdout.splitlines():
                        if line.startswith(("error:", "  x ")):
                            print(f"  run {run}, apply {applies}: {line.strip()[:160]}", flush=True)
                totals["unconverged"] += not converged
                p = subprocess.run([args.binary, "plan", plan, "--detailed-exitcode"], env=proxied,
                                   capture_output=True, text=True)
                output += p.stdout + p.stderr
                totals["failed_plans"] += p.returncode != 0
                totals["applies"].append(applies)
                row.append(applies)
            left = 0
            for i in range(USERS):
                user = f"u{run}x{i}"
                sink_file = d / f"secrets/{user}.json"
                sink = json.loads(sink_file.read_text()) if sink_file.exists() else {}
                keys = iam.list_access_keys(UserName=user)["AccessKeyMetadata"]
                left += sum(1 for k in keys if k["AccessKeyId"] != sink.get("AccessKeyId"))
                if sink:
                    totals["secrets_seen"] += output.count(sink["SecretAccessKey"])
            totals["keys_left"] += left
            print(f"run {run}: applies needed {row[0]} (create), {row[1]} (change); keys besides the sink's: {left}",
                  flush=True)
        totals["faults"] = len(log.read_text().splitlines()) if log.exists() else 0
    finally:
        proxy.kill()
        subprocess.run([REPO / "localstack/down", "--port", port], capture_output=True)
    a = totals["applies"]
    print(f"{args.runs} runs, {len(a)} applies wanted: {sum(1 for x in a if x == 1)} needed one apply, "
          f"max {max(a)}; not done after 5 applies: {totals['unconverged']}; plans not empty after: {totals['failed_plans']}; keys besides the sinks': "
          f"{totals['keys_left']}; secrets seen on stdout/stderr: {totals['secrets_seen']}; "
          f"faults injected: {totals['faults']}")


if __name__ == "__main__":
    main()
