#!/usr/bin/env python3
"""A TLS front for tests: terminates HTTPS on 127.0.0.1 with a certificate from a test CA
(as a TLS-inspecting corporate proxy does) and forwards each request, unchanged, to the
emulator over plain HTTP. Prints the port it listens on, then serves until killed.

Usage: tls_front.py CERT KEY UPSTREAM_URL
"""
import http.client
import http.server
import ssl
import sys
import urllib.parse

cert, key, upstream = sys.argv[1], sys.argv[2], urllib.parse.urlsplit(sys.argv[3])


class Forward(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def forward(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        # Headers as received (Host included: the request was signed with it).
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for name, value in self.headers.items():
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
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
