#!/usr/bin/env python3
"""Real-AWS conditions between iamplan and an emulator, for the benchmark.

  proxy.py UPSTREAM_URL [--latency-ms 60] [--jitter-ms 15] [--no-throttle] [--bucket-scale 1]

Prints the port it listens on (127.0.0.1), then serves until killed. Every request is
forwarded to UPSTREAM_URL after a round-trip delay (latency +- jitter, uniform), and is
first charged to a token bucket keyed by (account, API action): the account is the access
key ID of the request's SigV4 credential scope (one bucket set per account, as AWS
throttles per account), the action is the IAM/STS `Action` parameter. An empty bucket
answers IAM's `400 Throttling: Rate exceeded` (after the same delay) without forwarding.

The bucket sizes are a model, not AWS's numbers: AWS says only that IAM and STS throttle
with token buckets "refilled every second", one or more per API, "whose sizes depend on
the API" (AWS Support, quoted in hashicorp/terraform-provider-aws#44853), and publishes
none. Reports of throttling in tools that call IAM in parallel (Terraform's provider,
cloud-nuke, steampipe, prowler, mantil) show it appearing at some tens of calls per second
per API, earlier for the account-wide reads. BUCKETS below encodes that: a burst then a
steady refill, per API. The benchmark reports the model it ran with.

GET /_realaws/stats answers {"requests": {...}, "throttled": {...}} by action;
POST /_realaws/reset zeroes the counters and refills every bucket.
"""
import argparse
import http.client
import http.server
import json
import random
import re
import threading
import time
import urllib.parse

# (burst, refill per second), by action; the first matching rule wins.
BUCKETS = [
    ("GetAccountAuthorizationDetails", (5, 2.0)),
    ("GenerateCredentialReport", (2, 0.5)),
    ("GetCredentialReport", (5, 2.0)),
    ("GetCallerIdentity", (50, 50.0)),
    ("AssumeRole", (50, 50.0)),
    (re.compile(r"^(Get|List)"), (40, 25.0)),
    (re.compile(r"."), (20, 15.0)),  # every mutating call
]

ERROR = (
    '<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>Sender</Type>'
    "<Code>Throttling</Code><Message>Rate exceeded</Message></Error>"
    "<RequestId>realaws-proxy</RequestId></ErrorResponse>"
)

args = argparse.ArgumentParser()
args.add_argument("upstream")
args.add_argument("--latency-ms", type=float, default=60.0)
args.add_argument("--jitter-ms", type=float, default=15.0)
args.add_argument("--no-throttle", action="store_true")
# Scales every bucket's burst and refill (tests use small buckets to meet throttling fast).
args.add_argument("--bucket-scale", type=float, default=1.0)
args = args.parse_args()
UPSTREAM = urllib.parse.urlsplit(args.upstream)

lock = threading.Lock()
buckets = {}  # (account, action) -> [tokens, last refill time]
requests, throttled = {}, {}


def model(action):
    for rule, size in BUCKETS:
        if (rule == action) if isinstance(rule, str) else rule.search(action):
            return size
    return BUCKETS[-1][1]


def take(account, action):
    """Whether a token was available (and takes it)."""
    burst, rate = model(action)
    burst, rate = max(1.0, burst * args.bucket_scale), rate * args.bucket_scale
    now = time.monotonic()
    with lock:
        requests[action] = requests.get(action, 0) + 1
        b = buckets.setdefault((account, action), [float(burst), now])
        b[0] = min(burst, b[0] + (now - b[1]) * rate)
        b[1] = now
        if args.no_throttle or b[0] >= 1.0:
            b[0] -= 1.0
            return True
        throttled[action] = throttled.get(action, 0) + 1
        return False


def half_round_trip():
    """Half of one round trip: the request's way to AWS, or the answer's way back."""
    d = args.latency_ms + random.uniform(-args.jitter_ms, args.jitter_ms)
    time.sleep(max(d, 0.0) / 2000.0)


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path.startswith("/_realaws/"):
            return self.control()
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        action = (params.get("Action") or query.get("Action") or ["?"])[0]
        if action == "?" and "/functions/" in self.path:
            action = "lambda:" + self.command
        auth = self.headers.get("Authorization") or ""
        m = re.search(r"Credential=([^/]+)/", auth)
        account = m.group(1) if m else "?"
        half_round_trip()
        if not take(account, action):
            half_round_trip()
            return self.send(400, [("Content-Type", "text/xml")], ERROR.encode())
        status, headers, data = self.forward(body)
        half_round_trip()
        self.send(status, headers, data)

    def control(self):
        if self.path == "/_realaws/reset" and self.command == "POST":
            with lock:
                buckets.clear()
                requests.clear()
                throttled.clear()
        with lock:
            data = json.dumps({"requests": requests, "throttled": throttled}).encode()
        self.send(200, [("Content-Type", "application/json")], data)

    def forward(self, body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=120)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.getheaders(), data

    def send(self, status, headers, data):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


server = Server(("127.0.0.1", 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
