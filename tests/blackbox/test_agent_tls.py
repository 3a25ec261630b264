#!/usr/bin/env python3
"""test_agent_tls.py - the agent's task-log server over HTTPS (docs/security.md,
"TLS set-up"): an agent given --tls-cert/--tls-key (signed by a CA made here)
serves logs over https only; the server, given that CA as agent_ca_file,
reads them through the API byte for byte; a plain-HTTP request to the log
server gets no log; a server without the CA refuses the unverified
certificate (503, never an unverified read); a key that does not match the
certificate, or a missing key, stops the agent at start-up."""

import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import e2etest as e
import paitest as pt

if not shutil.which("openssl"):
    pt.skip("agent TLS", "openssl is missing (scripts/deps.sh installs it)")
    pt.done()

d = pt.tmpdir("pai-agent-tls-")


CA = pt.make_ca(d, "pai test agents CA")
CERT, KEY = pt.issue_cert(d, "agent", "IP:127.0.0.1")
pt.openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=other", "-keyout",
           "other.key", "-out", "other.csr")

srv = pt.start_server(extra_args=["--agent-ca-file", CA])
c = srv.client(srv.admin_token)
ag = e.agent(srv, "at1", "--tls-cert", CERT, "--tls-key", KEY)
pt.check(e.wait_nodes(c, 1, timeout=30) == ["at1"], "an agent with --tls-cert registers")
m = re.search(r"logs=(\S+)", ag.log())
pt.check(m and m.group(1).startswith("https://127.0.0.1:"),
         "its log server's URL is https://", ag.log()[-400:])

st, b = e.submit(c, e.job_yaml("tls-log", [e.role("main", "echo hello-over-tls; seq 1 20000")]))
dd = e.wait_state(c, "admin~tls-log", ("SUCCEEDED", "FAILED", "STOPPED"), 60)
pt.check(e.state(dd) == "SUCCEEDED", "a job runs on it", e.state(dd))
ts = e.tasks(dd, "main")
st, lg = c.get(ts[0]["containerLog"]) if ts else (0, None)
uri = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])}.get("stdout", "")
req = urllib.request.Request(srv.url + uri, headers={"Authorization": "Bearer " +
                                                    srv.admin_token})
want = "hello-over-tls\n" + "".join("%d\n" % i for i in range(1, 20001))
try:
    r = urllib.request.urlopen(req, timeout=30)
    st, text = r.status, r.read().decode()
except urllib.error.HTTPError as ex:
    st, text = ex.code, ex.read().decode(errors="replace")
pt.check(st == 200 and text == want,
         "the server reads the log over https (verified with agent_ca_file), byte for byte",
         (st, text[:200]))

port = int(m.group(1).rsplit(":", 1)[1]) if m else 0
try:
    r = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5)
    plain = "answered %d" % r.status
except Exception as ex:  # noqa: BLE001
    plain = type(ex).__name__
pt.check(not plain.startswith("answered"), "plain HTTP to the log server gets nothing", plain)

# a server that does not know the agents' CA refuses the certificate
srv.stop()
srv.extra_args = [a for a in srv.extra_args if a not in ("--agent-ca-file", CA)]
srv.start()
c = srv.client(srv.admin_token)
pt.check(e.wait_nodes(c, 1, timeout=30) == ["at1"], "after a restart without the CA the agent "
         "syncs again")
req = urllib.request.Request(srv.url + uri, headers={"Authorization": "Bearer " +
                                                    srv.admin_token})
try:
    r = urllib.request.urlopen(req, timeout=30)
    st, text = r.status, r.read().decode()
except urllib.error.HTTPError as ex:
    st, text = ex.code, ex.read().decode(errors="replace")
pt.check(st == 503 and "hello-over-tls" not in text,
         "a server without agent_ca_file refuses the agent's certificate (503, no log)",
         (st, text[:300]))

# bad TLS options stop the agent at start-up
for args, why in ((["--tls-cert", CERT], "a --tls-cert without --tls-key"),
                  (["--tls-cert", CERT, "--tls-key", os.path.join(d, "other.key")],
                   "a key that does not match the certificate")):
    r = subprocess.run([pt.PAI_BIN, "agent", "--server", srv.url, "--token", srv.agent_token,
                        "--name", "at-bad", "--work-dir", pt.tmpdir("pai-at-bad-"),
                        "--gpus", "0"] + args, capture_output=True, text=True, timeout=30)
    pt.check(r.returncode != 0 and ("tls" in r.stderr.lower()),
             "%s stops the agent with a message" % why, (r.returncode, r.stderr[-300:]))
pt.done()
