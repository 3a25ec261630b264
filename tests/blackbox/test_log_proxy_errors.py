#!/usr/bin/env python3
"""test_log_proxy_errors.py - what the server answers when a node's log
server misbehaves (src/server/logproxy.c).

A real `pai server`, a fake agent (jobstest.FakeAgent) whose node's log_url
points at a log server written here, which answers each read as the test
says: 503 with Retry-After (busy), 404, 500, 401 (the server's key refused,
and with no secret for the node at all: no Authorization header sent), a
connection closed before any
answer (once, or always), a 200 cut in the middle, or a node whose log_url
names a file:// URL.  Errors before the first byte are OpenPAI-style
{code, message} replies; a failure after it cuts the body short.
"""

import http.client
import os
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jobstest as jt
import paitest as pt

MODE = {"mode": "ok", "closed": 0}
SEEN = []


class LogServer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        SEEN.append((self.path, self.headers.get("Authorization")))
        mode = MODE["mode"]
        if mode == "close" or (mode == "close_once" and MODE["closed"] == 0):
            MODE["closed"] += 1
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        if mode == "busy":
            self.send(503, b'{"code":"UnavailableError","message":"too many"}',
                      [("Retry-After", "7"), ("Content-Type", "application/json")])
        elif mode == "notfound":
            self.send(404, b'{"code":"NoTaskLogError","message":"no such task log"}')
        elif mode == "unauth":
            self.send(401, b'{"code":"UnauthorizedUserError","message":"bearer token required"}',
                      [("Content-Type", "application/json")])
        elif mode == "err500":
            self.send(500, b"boom")
        elif mode == "cut":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(4):
                self.wfile.write(b"%x\r\n%s\r\n" % (65536, b"x" * 65536))
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self.send(200, b"hello-from-the-fake-node\n", [("Content-Type", "text/plain")])


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the resets the cases provoke


logsrv = QuietServer(("127.0.0.1", 0), LogServer)
threading.Thread(target=logsrv.serve_forever, daemon=True).start()
LOG_URL = "http://127.0.0.1:%d" % logsrv.server_address[1]


srv = pt.start_server()
admin = srv.client(srv.admin_token)
fake = jt.FakeAgent(srv, "fk1")
fake.log_url = LOG_URL
fake.sync()
st, b = jt.submit(admin, jt.job_yaml("lp"))
pt.check(st == 202, "a job submitted", (st, b))
pt.check(len(fake.sync_for("admin~lp")) == 1, "its task runs on the fake node")
fake.sync()
URI = "/api/v2/jobs/admin~lp/attempts/0/taskRoles/main/taskIndex/0/attempts/0/logs/stdout"


def read(path=URI):
    """(status, body text, headers, how the body ended)."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("GET", path, headers={"Authorization": "Bearer " + srv.admin_token})
    r = c.getresponse()
    try:
        body, end = r.read(), "complete"
    except http.client.IncompleteRead as ex:
        body, end = ex.partial, "cut"
    c.close()
    return r.status, body.decode(errors="replace")[:300], dict(r.getheaders()), end


def case(mode, name, want_status, want_code=None, want_text=None, path=URI):
    MODE.update(mode=mode, closed=0)
    del SEEN[:]
    st, body, hdr, end = read(path)
    ok = st == want_status and (want_code is None or '"%s"' % want_code in body) and \
        (want_text is None or want_text in body)
    pt.check(ok, name, (st, body, end))
    return st, body, hdr, end


st, body, hdr, end = case("ok", "a log reads through the server from the node's log server",
                          200, want_text="hello-from-the-fake-node")
pt.check(SEEN and SEEN[0][0].endswith("/stdout") and
         SEEN[0][1] == "Bearer " + (srv.agent_token or ""),
         "the server asks for /logs/{attempt id}/stdout with the agent token", SEEN)
case("ok", "tailMode=true asks the node for the last 64 KiB", 200, path=URI + "?tailMode=true")
pt.check(SEEN and SEEN[0][0].endswith("/stdout?tail=65536"), "(?tail=65536)", SEEN)
st, body, hdr, _ = case("busy", "a busy node: 503 UnavailableError saying busy", 503,
                        "UnavailableError", "busy")
pt.check("unreachable" not in body and hdr.get("Retry-After") == "7",
         "the busy answer carries the node's Retry-After, not 'unreachable'", (body, hdr))
case("notfound", "a node without the log: 404 NoTaskLogError", 404, "NoTaskLogError",
     "Log of task is not found.")
case("err500", "a node answering 500: 503 naming the node's status", 503, "UnavailableError",
     "answered HTTP 500")
case("close_once", "a node that closes once before answering is asked again", 200,
     want_text="hello-from-the-fake-node")
pt.check(MODE["closed"] == 1 and len(SEEN) == 2, "(one retry)", (MODE, SEEN))
case("close", "a node that always closes: 503 unreachable", 503, "UnavailableError",
     "unreachable")
pt.check(len(SEEN) == 2, "(tried twice, no more)", SEEN)
st, body, hdr, end = case("cut", "a node that dies mid-log: the answer begins 200", 200)
pt.check(end == "cut" and len(body) > 0, "and its body is cut short (chunked, no end)",
         (end, hdr))

# a node that refuses the server's key: a clear configuration error, not "HTTP 401"
case("unauth", "a node refusing the server's key: 500 BadConfigurationError saying so", 500,
     "BadConfigurationError", "refused this server's key (HTTP 401)")
# a server with no secret for the node (no log key, no agent token): no
# Authorization header at all, never "Bearer " with nothing after it
TOK = os.path.join(srv.data_dir, "agent.token")
os.rename(TOK, TOK + ".away")
case("ok", "without a secret for the node the log is still asked for", 200,
     want_text="hello-from-the-fake-node")
pt.check(len(SEEN) == 1 and SEEN[0][1] is None,
         "and the request carries no Authorization header", SEEN)
case("unauth", "the node refusing it: 500 BadConfigurationError naming the missing token", 500,
     "BadConfigurationError", "no agent token to present")
os.rename(TOK + ".away", TOK)

# a node whose log_url is not http(s): never read as a file by the server
fake.log_url = "file:///etc/passwd#"
fake.sync()
MODE.update(mode="ok")
st, body, hdr, end = read()
print("# file:// log_url: %s %s" % (st, body), flush=True)
pt.check(st == 503 and "root:" not in body, "a file:// log_url is refused, not read", (st, body))

st, body, _, _ = read(URI.replace("/stdout", "/nosuch"))
pt.check(st == 404 and "NoTaskLogError" in body, "an unknown log kind: 404", (st, body))
logsrv.shutdown()
pt.done()
