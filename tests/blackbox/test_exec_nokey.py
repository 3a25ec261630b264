#!/usr/bin/env python3
"""test_exec_nokey.py - `pai exec` (POST/GET .../exec, src/server/jobs_exec.c)
into a task on a node that has no log key (a version 1 agent: it syncs with
the join token and is issued no credential; docs/security.md, "Task logs").

The server presents the agent token to such a node instead, read by the one
reader the leader and standbys use (auth_agent_token_read): here the token
the server generated into <data_dir>/agent.token, which an earlier exec
did not send (an empty bearer).  A server that has no agent token at all
(none configured, the file gone) answers a clear error and asks the node
nothing.

A real `pai server`, a fake version 1 agent (jobstest.FakeAgent) whose
log_url points at an exec endpoint written here, which records the bearer
and answers as an agent's log server does (agent/exec.c).
"""

import base64
import json
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import e2etest as e
import jobstest as jt
import paitest as pt

AGENT_ID = "0123456789abcdef0123456789abcdef"
SEEN = []  # (method, path, Authorization)


class ExecServer(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def answer(self, obj):
        body = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(n)
        SEEN.append(("POST", self.path, self.headers.get("Authorization", "")))
        self.answer({"id": AGENT_ID})

    def do_GET(self):
        SEEN.append(("GET", self.path, self.headers.get("Authorization", "")))
        self.answer({"data": base64.b64encode(b"hello-from-v1\n").decode(), "offset": 14,
                     "done": True, "exitCode": 3})


execsrv = ThreadingHTTPServer(("127.0.0.1", 0), ExecServer)
threading.Thread(target=execsrv.serve_forever, daemon=True).start()


def cli(*args):
    env = dict(os.environ, PAI_SERVER=srv.url, PAI_TOKEN=srv.admin_token,
               HOME=pt.tmpdir("pai-exec-home-"))
    env.pop("PAI_CONFIG", None)
    return subprocess.run([pt.PAI_BIN] + list(args), capture_output=True, text=True, timeout=60,
                          env=env)


srv = pt.start_server()
admin = srv.client(srv.admin_token)
pt.check(bool(srv.agent_token), "the server generated its agent token into the data dir",
         srv.agent_token)
fake = jt.FakeAgent(srv, "v1node")
fake.log_url = "http://127.0.0.1:%d" % execsrv.server_address[1]
fake.sync()
st, b = jt.submit(admin, jt.job_yaml("ex"))
pt.check(st == 202, "a job submitted", (st, b))
pt.check(len(fake.sync_for("admin~ex")) == 1, "its task runs on the version 1 node")
fake.sync()
pt.check(e.node_credential(admin, "v1node") == "none",
         "the node holds no credential, so no log key", e.node_info(admin, "v1node"))
BEARER = "Bearer " + (srv.agent_token or "")

# 1. the REST route: the node is asked with the agent token
st, b = admin.post("/api/v2/jobs/admin~ex/exec",
                   {"taskRoleName": "main", "taskIndex": 0, "command": "id"})
pt.check(st == 202 and b.get("id") == "0-0-0-%s-main" % AGENT_ID,
         "POST .../exec to a node without a log key: 202 and the exec id", (st, b))
pt.check(len(SEEN) == 1 and SEEN[0][0] == "POST" and SEEN[0][1].startswith("/exec/"),
         "the node was asked once (POST /exec/{attempt id})", SEEN)
pt.check(SEEN and SEEN[0][2] == BEARER,
         "with the agent token read from <data_dir>/agent.token as its bearer", SEEN)
del SEEN[:]
st, b = admin.get("/api/v2/jobs/admin~ex/exec/0-0-0-%s-main?offset=0" % AGENT_ID)
pt.check(st == 200 and b.get("done") is True and b.get("exitCode") == 3,
         "GET .../exec/{id}: the node's answer passed on", (st, b))
pt.check(SEEN == [("GET", "/exec/%s?offset=0" % AGENT_ID, BEARER)],
         "the read asks the same node with the same bearer", SEEN)

# 2. the CLI end to end
del SEEN[:]
r = cli("exec", "admin~ex", "main", "0", "--", "echo hi")
pt.check(r.returncode == 3 and r.stdout == "hello-from-v1\n",
         "pai exec prints the node's output and exits with its code", (r.returncode, r.stdout,
                                                                       r.stderr))
pt.check(len(SEEN) == 2 and all(s[2] == BEARER for s in SEEN),
         "(both of its calls carried the agent token)", SEEN)

# 3. no agent token at all: a clear error, the node not asked
os.unlink(os.path.join(srv.data_dir, "agent.token"))
del SEEN[:]
st, b = admin.post("/api/v2/jobs/admin~ex/exec",
                   {"taskRoleName": "main", "taskIndex": 0, "command": "id"})
msg = b.get("message", "") if isinstance(b, dict) else str(b)
pt.check(st == 500 and b.get("code") == "BadConfigurationError" and "no log key" in msg and
         "agent token" in msg, "no agent token: 500 BadConfigurationError naming the missing "
         "log key and agent token", (st, b))
pt.check(SEEN == [], "and the node is not asked with an empty bearer", SEEN)
r = cli("exec", "admin~ex", "main", "0", "--", "echo hi")
pt.check(r.returncode != 0 and "no log key" in r.stderr,
         "pai exec says so and fails", (r.returncode, r.stdout, r.stderr))
st, b = admin.get("/api/v2/jobs/admin~ex/exec/0-0-0-%s-main?offset=0" % AGENT_ID)
pt.check(st == 500 and SEEN == [], "a read too: 500, the node not asked", (st, b, SEEN))

execsrv.shutdown()
pt.done()
