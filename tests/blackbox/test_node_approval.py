#!/usr/bin/env python3
"""test_node_approval.py - node_approval: manual (docs/security.md, "Node
identity"): the join token alone no longer lets a new node name in.  A hostile
agent holding the join token registers a name: it is listed as waiting for
approval, gets no credential, no task and no secret, even with free GPUs and a
job waiting; only an admin approves it (REST or `pai nodes approve`), then it
gets its credential and tasks; a revoked name waits again; the waiting state
survives a server restart."""

import os
import subprocess
import time

import e2etest as e
import paitest as pt

SECRET = "s3cr3t-na-91c4"
srv = pt.start_server(extra_args=["--node-approval", "manual"])
c = srv.client(srv.admin_token)
join = srv.agent_token


def sync(token, name, known=0):
    node = {"name": name, "address": "127.0.0.1", "cpus": 8, "memory_mb": 16384,
            "gpu_model": "A100", "log_url": "http://127.0.0.1:9",
            "gpus": [{"index": 0, "uuid": "GPU-%s-0" % name, "model": "A100",
                      "memory_mb": 81920, "healthy": True}]}
    return e.agent_sync(srv, token, node, known)


def pai(*args, token=None):
    env = dict(os.environ, PAI_SERVER=srv.url, PAI_TOKEN=token or srv.admin_token,
               HOME=pt.tmpdir("pai-na-home-"))
    return subprocess.run([pt.PAI_BIN] + list(args), env=env, capture_output=True, text=True)


job = ("protocolVersion: 2\nname: na-job\ntype: job\nsecrets:\n  key: %s\n"
       "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
       "taskRoles:\n  main:\n    instances: 1\n    dockerImage: img\n"
       "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 256}\n"
       "    commands:\n      - echo ok-<%% $secrets.key %%> | wc -c\n" % SECRET)
st, b = e.submit(c, job)
pt.check(st == 202, "a job with a secret waits for a GPU", (st, b))

# ---- 1. a hostile agent with the join token: held ------------------------------------------
seen, got = [], False
known = 0
for _ in range(10):
    st, b = sync(join, "na-evil", known)
    seen.append(st)
    got = got or "credential" in (b or {}) or bool((b or {}).get("tasks")) or SECRET in str(b)
    known = (b or {}).get("seq", known)
    time.sleep(0.1)
pt.check(seen == [200] * 10 and not got,
         "a new name registering with the join token syncs but gets no credential, no task and "
         "no secret while a job waits for its free GPU", (seen, b))
pt.check(e.node_credential(c, "na-evil") == "awaiting-approval" and
         e.node_info(c, "na-evil")["pai"]["schedulable"] is False,
         "the node list shows it waiting for approval, not schedulable", e.node_info(c, "na-evil"))
pt.check(e.state(e.detail(c, "admin~na-job")) == "WAITING", "the job still waits")
pt.check("node=na-evil registered with the join token: waiting for an administrator's approval"
         in srv.log(), "the server logs the waiting node with the command that approves it")
r = pai("nodes", "pending")
pt.check(r.returncode == 0 and "na-evil" in r.stdout and "AwaitingApproval" in r.stdout,
         "pai nodes pending lists it", (r.stdout, r.stderr))

# ---- 2. approval is an admin's --------------------------------------------------------------
user = srv.create_user("na-user")
for who, tok in (("a user", user), ("the join token", join)):
    st, b = srv.client(tok).post("/api/v2/cluster/nodes/na-evil/approve")
    pt.check(st in (401, 403), "%s cannot approve a node" % who, (st, b))
r = pai("nodes", "approve", "na-evil", token=user)
pt.check(r.returncode != 0, "nor with pai nodes approve", (r.returncode, r.stdout))
pt.check(e.node_credential(c, "na-evil") == "awaiting-approval", "the node still waits")
st, b = c.post("/api/v2/cluster/nodes/na-none/approve")
pt.expect((st, b), 404, "approving an unknown node is 404")

# ---- 3. the waiting state is stored ---------------------------------------------------------
srv.restart()
c = srv.client(srv.admin_token)
st, b = sync(join, "na-evil")
pt.check(st == 200 and "credential" not in b and not b.get("tasks") and
         e.node_credential(c, "na-evil") == "awaiting-approval",
         "after a server restart the node still waits (no credential, no task)", (st, b))

# ---- 4. a real agent waits, then runs the job once approved (CLI) ---------------------------
agent = e.agent(srv, "na-real", "--gpus", "1")
cred_path = os.path.join(agent.work_dir, "node.credential")
pt.check(e.wait_for(lambda: e.node_credential(c, "na-real") == "awaiting-approval"),
         "a real agent's new name waits for approval", e.node_info(c, "na-real"))
time.sleep(1)
pt.check(not os.path.exists(cred_path) and
         e.state(e.detail(c, "admin~na-job")) == "WAITING",
         "it holds no credential and the job still waits")
r = pai("nodes", "approve", "na-real")
pt.check(r.returncode == 0 and "approved" in r.stdout, "pai nodes approve na-real",
         (r.stdout, r.stderr))
pt.check(e.wait_for(lambda: e.node_credential(c, "na-real") == "active"),
         "the agent gets its credential at its next sync and uses it", e.node_info(c, "na-real"))
d = e.wait_state(c, "admin~na-job", ("SUCCEEDED", "FAILED", "STOPPED"), 60)
pt.check(e.state(d) == "SUCCEEDED", "the waiting job runs on the approved node", e.state(d))
r = pai("nodes", "approve", "na-real")
pt.check(r.returncode != 0 and "not waiting" in r.stderr, "approving it again fails",
         (r.returncode, r.stderr))

# ---- 5. REST approval of the hostile name, then revocation: it waits again -----------------
st, b = c.post("/api/v2/cluster/nodes/na-evil/approve")
pt.check(st == 200, "an admin approves na-evil (REST)", (st, b))
st, b = sync(join, "na-evil")
cred = (b or {}).get("credential", "")
pt.check(st == 200 and cred.startswith("pn1."), "then the join token registers it: a credential",
         (st, b))
st, b = c.delete("/api/v2/cluster/nodes/na-evil/credential")
pt.check(st == 200, "an admin revokes na-evil", (st, b))
st, b = sync(join, "na-evil")
pt.check(st == 200 and "credential" not in b
         and e.node_credential(c, "na-evil") == "awaiting-approval",
         "a revoked name registering again waits for approval", (st, b))
st, b = sync(cred, "na-evil")
pt.check(st == 403, "and its revoked credential is refused", (st, b))
pt.done()
