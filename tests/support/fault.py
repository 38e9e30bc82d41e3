#!/usr/bin/env python3
"""A fault-injecting reverse proxy for the tests: put it between iamplan and an emulator.

  fault.py UPSTREAM_URL RULES_FILE LOG_FILE

Prints the port it listens on (127.0.0.1), then serves until killed. For each request it
reads RULES_FILE (JSON, re-read on every request so that a test can change the faults
between commands):

  {"seed": 1, "rules": [
     {"action": "CreateAccessKey", "fault": "drop_after", "times": 1},
     {"fault": "drop_before", "rate": 0.1},
     {"fault": "500_after", "rate": 0.1},
     {"fault": "throttle", "rate": 0.3}
  ]}

A rule applies to requests whose IAM/STS `Action` is `action` (any action when absent),
at most `times` times (unlimited when absent), each with probability `rate` (1 when
absent). The first rule that fires decides. Faults:

  drop_before  close the connection without forwarding (nothing happened upstream)
  drop_after   forward, then close the connection without answering (it happened, the
               answer is lost: the case that makes non-idempotent calls dangerous)
  500_before   answer HTTP 500 InternalFailure without forwarding
  500_after    forward, then answer HTTP 500 InternalFailure
  throttle     answer IAM's 400 Throttling without forwarding

Each fault is appended to LOG_FILE as "FAULT ACTION" so that a test can check that the
faults it asked for happened.
"""
import http.client
import http.server
import json
import random
import sys
import threading
import urllib.parse

UPSTREAM = urllib.parse.urlsplit(sys.argv[1])
RULES_FILE, LOG_FILE = sys.argv[2], sys.argv[3]
lock = threading.Lock()
fired = {}  # rule index -> times fired
rng = random.Random(1)
seeded = None

ERROR = """<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/"><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error><RequestId>fault-proxy</RequestId></ErrorResponse>"""


def decide(action):
    global seeded
    try:
        with open(RULES_FILE) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return None
    with lock:
        if seeded != config.get("seed", 1):
            seeded = config.get("seed", 1)
            rng.seed(seeded)
        for i, rule in enumerate(config.get("rules", [])):
            if rule.get("action") not in (None, action):
                continue
            if "times" in rule and fired.get(i, 0) >= rule["times"]:
                continue
            if rng.random() >= rule.get("rate", 1.0):
                continue
            fired[i] = fired.get(i, 0) + 1
            with open(LOG_FILE, "a") as log:
                log.write(f"{rule['fault']} {action}\n")
            return rule["fault"]
    return None


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_one(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        params = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        action = (params.get("Action") or query.get("Action") or ["?"])[0]
        fault = decide(action)
        if fault == "drop_before":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "throttle":
            return self.error(400, "Sender", "Throttling", "Rate exceeded")
        if fault == "500_before":
            return self.error(500, "Receiver", "InternalFailure", "injected before the write")
        status, reason, headers, data = self.forward(body)
        if fault == "drop_after":
            self.close_connection = True
            self.connection.close()
            return
        if fault == "500_after":
            return self.error(500, "Receiver", "InternalFailure", "injected after the write")
        self.send_response(status, reason)
        for name, value in headers:
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def forward(self, body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        conn.close()
        return resp.status, resp.reason, resp.getheaders(), data

    def error(self, status, kind, code, message):
        data = ERROR.format(kind=kind, code=code, message=message).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = handle_one

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
print(server.server_address[1], flush=True)
server.serve_forever()
