#!/usr/bin/env python3
"""test_node_identity.py - node identity (docs/security.md, "Node identity";
docs/agent-protocol.md): a real `pai agent` registers with the join token and
keeps the credential the server issues; one node's credential cannot sync as
another node, and neither can the join token once a node holds a credential
(issue 11: a stolen agent token posed as another node and received another
user's command with its secret filled in); the server sends a node only its
own tasks; rotation and revocation (REST and `pai nodes`); restarts of the
server and of the agent keep working."""

import os
import re
import stat
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import e2etest as e
import jobstest as jt
import paitest as pt

SECRET = "s3cr3t-ni-7f1e"
srv = pt.start_server(extra_args=["--node-lost-timeout-s", "30"])
c = srv.client(srv.admin_token)
join = srv.agent_token


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""


def sync(token, name, version=2, known=0):
    node = {"name": name, "address": "127.0.0.1", "cpus": 4, "memory_mb": 4096, "gpus": []}
    return e.agent_sync(srv, token, node, known, version)


def secret_job(name, command):
    return ("protocolVersion: 2\nname: %s\ntype: job\nsecrets:\n  key: %s\n"
            "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
            "taskRoles:\n  main:\n    instances: 1\n    dockerImage: img\n"
            "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 256}\n"
            "    commands:\n      - %s\n" % (name, SECRET, command))


def run_job(name, command="echo ok-<% $secrets.key %> | wc -c"):
    st, b = e.submit(c, secret_job(name, command))
    pt.check(st == 202, "%s: submitted" % name, (st, b))
    d = e.wait_state(c, "admin~" + name, ("SUCCEEDED", "FAILED", "STOPPED"), 60)
    return e.state(d)


def log_count(text):
    return srv.log().count(text)


def direct_read(token):
    """Status of a read of the agent's last started attempt at its log server."""
    port = re.findall(r"logs=http://127\.0\.0\.1:(\d+)", agent.log())[-1]
    aid = re.findall(r"task=(\S+) started", agent.log())[-1]
    req = urllib.request.Request("http://127.0.0.1:%s/logs/%s/stdout" % (
        port, urllib.parse.quote(aid, safe="")), headers={"Authorization": "Bearer " + token})
    try:
        return urllib.request.urlopen(req, timeout=10).status
    except urllib.error.HTTPError as ex:
        return ex.code


def server_read(job):
    """Status of a read of job's log through the server (it presents the log key)."""
    ts = e.tasks(e.detail(c, "admin~" + job), "main")
    st, lg = c.get(ts[0]["containerLog"]) if ts else (0, None)
    uri = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])}.get("stdout")
    return c.get(uri)[0] if uri else 0


# ---- 1. registration: the join token, then the node's own credential ----------------------
agent = e.agent(srv, "ni-a", "--gpus", "1")
cred_path = os.path.join(agent.work_dir, "node.credential")
pt.check(e.wait_for(lambda: e.node_credential(c, "ni-a") == "active"),
         "a real agent registers with the join token and syncs with its credential",
         e.node_info(c, "ni-a"))
cred_a = read(cred_path)
mode = stat.S_IMODE(os.stat(cred_path).st_mode) if cred_a else None
pt.check(cred_a.startswith("pn1.") and len(cred_a) == 68 and mode == 0o600,
         "the credential is kept in the node's work dir, mode 0600", (cred_a[:6], oct(mode or 0)))
pt.check(cred_a not in read(os.path.join(srv.data_dir, "pai.db")) if cred_a else False,
         "the server stores no credential in clear (only its SHA-256)")
pt.check(log_count("node=ni-a registered: credential issued") == 1,
         "the server logs the registration once")

# a second node, driven by hand (version 2): the answer carries its credential
st, b = sync(join, "ni-b")
cred_b = (b or {}).get("credential", "")
pt.check(st == 200 and cred_b.startswith("pn1.") and b.get("version") == 2,
         "registering with the join token answers with a credential (wire version 2)", (st, b))
st, b = sync(cred_b, "ni-b", known=b.get("seq", 0))
pt.check(st == 200 and "credential" not in b and e.node_credential(c, "ni-b") == "active",
         "the node syncs with its credential, which becomes active", (st, b))

# ---- 2. a job with a secret runs on ni-a; nobody else receives it ------------------------
st, b = e.submit(c, secret_job("ni-held", "sleep 30; echo <% $secrets.key %>"))
pt.check(st == 202, "a job with a secret is submitted", (st, b))
on_a = e.wait_for(lambda: any(t.get("taskState") == "RUNNING" for t in
                            e.tasks(e.detail(c, "admin~ni-held"), "main")), 30)
pt.check(on_a, "it runs on ni-a (the only node with a GPU)")
st, b = sync(cred_b, "ni-b")
pt.check(st == 200 and SECRET not in str(b) and b.get("tasks") == [],
         "a node receives only the tasks placed on it", (st, b))
refused_before = log_count("node=ni-a sync refused")
st, b = sync(cred_b, "ni-a")
pt.check(st == 403 and SECRET not in str(b) and (b or {}).get("code") == "ForbiddenUserError",
         "node ni-b's credential cannot sync as ni-a (403, no tasks)", (st, b))
st, b = sync(join, "ni-a")
pt.check(st == 403 and SECRET not in str(b) and "pai nodes revoke ni-a" in str(b),
         "a stolen join token cannot take over a node holding a credential (403)", (st, b))
st, b = sync(join, "ni-a", version=1)
pt.check(st == 403 and SECRET not in str(b), "nor with the version 1 protocol", (st, b))
st, b = sync("pn1." + "0" * 64, "ni-a")
pt.check(st == 403 and SECRET not in str(b), "a made-up credential is refused (403)", (st, b))
pt.check(log_count("node=ni-a sync refused") >= refused_before + 4,
         "each refused sync is logged with the node it claimed")
tok = srv.create_user("ni-user")
st, b = srv.client(tok).post("/api/v1/agent/sync", {"version": 2, "node": {"name": "ni-a"}})
pt.check(st == 403 and SECRET not in str(b), "a user token cannot sync at all", (st, b))
c.put("/api/v2/jobs/admin~ni-held/executionType", {"value": "STOP"})
e.wait_state(c, "admin~ni-held", ("STOPPED", "FAILED", "SUCCEEDED"), 30)
pt.check(run_job("ni-1") == "SUCCEEDED", "the node's own jobs run")
logkey_path = os.path.join(agent.work_dir, "node.logkey")
pt.check(read(logkey_path).startswith("pl1.") and
         stat.S_IMODE(os.stat(logkey_path).st_mode) == 0o600,
         "the agent keeps the log key the server sent (0600)")
pt.check(direct_read(join) == 401,
         "the join token cannot read a registered node's task logs at its log server")
pt.check(direct_read(read(logkey_path)) == 200, "the node's log key can")
pt.check(server_read("ni-1") == 200, "logs read through the server (it presents the log key)")

# ---- 3. restarts --------------------------------------------------------------------------
srv.restart()
c = srv.client(srv.admin_token)
pt.check(e.wait_for(lambda: e.node_credential(c, "ni-a") == "active", 30),
         "after a server restart the credential is still the node's", e.node_info(c, "ni-a"))
pt.check(run_job("ni-2") == "SUCCEEDED", "and the agent keeps running jobs")
st, b = sync(join, "ni-a")
pt.check(st == 403, "after a server restart the join token is still refused for ni-a", (st, b))
st, b = sync(join, "ni-b")
pt.check(st == 403, "and for ni-b, whose credential was used once before the restart "
         "(its first use is stored)", (st, b))
agent.stop()
agent.spawn()
pt.check(e.wait_for(lambda: "syncs with its credential" in agent.log()),
         "a restarted agent reads its credential from its work dir")
pt.check(run_job("ni-3") == "SUCCEEDED", "and runs jobs again")
pt.check(server_read("ni-3") == 200, "and its logs read through the server")
pt.check(read(cred_path) == cred_a and log_count("node=ni-a registered") == 1,
         "without registering again (same credential)", log_count("node=ni-a registered"))

# ---- 4. rotation (CLI) ---------------------------------------------------------------------
env = dict(os.environ, PAI_SERVER=srv.url, PAI_TOKEN=srv.admin_token,
           HOME=pt.tmpdir("pai-ni-home-"))
r = subprocess.run([pt.PAI_BIN, "nodes", "rotate", "ni-a"], env=env, capture_output=True,
                   text=True)
pt.check(r.returncode == 0 and "next sync" in r.stdout, "pai nodes rotate ni-a", (r.stdout,
                                                                                 r.stderr))
new_a = e.wait_for(lambda: read(cred_path) != cred_a
                   and e.node_credential(c, "ni-a") == "active" and read(cred_path))
pt.check(new_a and new_a.startswith("pn1."),
         "the agent gets a new credential at its next sync and uses it", e.node_info(c, "ni-a"))
st, b = sync(cred_a, "ni-a")
pt.check(st == 403, "the rotated-out credential is refused", (st, b))
srv.restart()
c = srv.client(srv.admin_token)
env["PAI_TOKEN"] = srv.admin_token
st, b = sync(cred_a, "ni-a")
pt.check(st == 403, "after a server restart the rotated-out credential is still refused "
         "(the completed rotation is stored)", (st, b))
pt.check(run_job("ni-4") == "SUCCEEDED", "jobs run with the new credential")
pt.check(server_read("ni-4") == 200 and direct_read(join) == 401,
         "logs read through the server after a rotation (a new log key)")
r = subprocess.run([pt.PAI_BIN, "nodes", "rotate", "ni-none"], env=env, capture_output=True,
                   text=True)
pt.check(r.returncode != 0 and "no such node" in r.stderr, "rotating an unknown node fails",
         (r.returncode, r.stderr))
st, b = srv.client(tok).post("/api/v2/cluster/nodes/ni-a/credential/rotate")
pt.check(st == 403, "a user cannot rotate a node's credential", (st, b))

# ---- 5. revocation -------------------------------------------------------------------------
st, b = c.delete("/api/v2/cluster/nodes/ni-b/credential")
pt.check(st == 200 and e.node_credential(c, "ni-b") == "revoked", "an admin revokes ni-b (REST)",
         (st, b))
st, b = sync(cred_b, "ni-b")
pt.check(st == 403, "the revoked credential is refused at once", (st, b))
st, b = sync(join, "ni-b")
pt.check(st == 200 and (b or {}).get("credential", "").startswith("pn1.") and
         b["credential"] != cred_b, "a revoked name registers again with the join token", (st, b))
r = subprocess.run([pt.PAI_BIN, "nodes", "revoke", "ni-a"], env=env, capture_output=True,
                   text=True)
pt.check(r.returncode == 0 and "revoked" in r.stdout, "pai nodes revoke ni-a", (r.stdout,
                                                                               r.stderr))
st, b = sync(new_a, "ni-a")
pt.check(st == 403, "ni-a's credential is refused after the revocation", (st, b))
again = e.wait_for(lambda: read(cred_path) not in ("", new_a)
                   and e.node_credential(c, "ni-a") == "active" and read(cred_path))
pt.check(again and "its credential was refused" in agent.log(),
         "the agent, refused, registers again with its join token", agent.log()[-600:])
pt.check(run_job("ni-5") == "SUCCEEDED", "and runs jobs again")
pt.check(server_read("ni-5") == 200, "and its logs read through the server")
st, b = c.delete("/api/v2/cluster/nodes/ni-none/credential")
pt.expect((st, b), 404, "revoking an unknown node is 404")

# ---- 6. version 1 agents (join token only) keep working while the node has no credential ---
fake = jt.FakeAgent(srv, "ni-v1", gpus=0)
fake.sync()
fake.sync()
pt.check(e.node_credential(c, "ni-v1") == "none", "a version 1 agent syncs with the join token, no "
         "credential issued", e.node_info(c, "ni-v1"))
pt.done()
