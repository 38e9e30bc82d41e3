#!/usr/bin/env python3
"""Forwards HTTP for tests, in one of two roles:

  forward.py front CERT KEY UPSTREAM_URL
      a TLS front: terminates HTTPS on 127.0.0.1 with a certificate from a test CA (as a
      TLS-inspecting corporate proxy does) and forwards each request to UPSTREAM_URL.
  forward.py proxy LOG_FILE
      an HTTP forward proxy: takes requests in absolute form ("POST http://host/...") as
      HTTP_PROXY clients send them, and appends one line per request to LOG_FILE.

Requests are forwarded unchanged (the Host header included: requests are signed with it).
Prints the port it listens on, then serves until killed.
"""
import http.client
import http.server
import ssl
import sys
import urllib.parse

mode = sys.argv[1]


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def target(self):
        if mode == "front":
            up = urllib.parse.urlsplit(sys.argv[4])
            return up.hostname, up.port, self.path
        target = urllib.parse.urlsplit(self.path)
        with open(sys.argv[2], "a") as log:
            log.write(f"{self.command} {target.netloc}\n")
        path = target.path + ("?" + target.query if target.query else "")
        return target.hostname, target.port or 80, path

    def forward(self):
        host, port, path = self.target()
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(host, port, timeout=60)
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
if mode == "front":
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(sys.argv[2], sys.argv[3])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
