#!/usr/bin/env python3
"""An HTTP forward proxy for tests: takes requests in absolute form ("POST http://host/...")
as HTTP_PROXY clients send them, forwards them, and appends one line per request to a log
file so that a test can tell whether the proxy was used. Prints its port, serves until killed.

Usage: http_proxy.py LOG_FILE
"""
import http.client
import http.server
import sys
import urllib.parse

log = sys.argv[1]


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        target = urllib.parse.urlsplit(self.path)
        with open(log, "a") as f:
            f.write(f"{self.command} {target.netloc}\n")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=60)
        path = target.path + ("?" + target.query if target.query else "")
        conn.putrequest(self.command, path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
            if name.lower() != "proxy-connection":
                conn.putheader(name, value)
        conn.endheaders(body)
        resp = conn.getresponse()
        data = resp.read()
        self.send_response(resp.status, resp.reason)
        for name, value in resp.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        conn.close()

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
print(server.server_address[1], flush=True)
server.serve_forever()
