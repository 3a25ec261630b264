#!/usr/bin/env python3
"""test_e2e_nodeloss.py - node loss end to end with real agents: the agent
running a job's task dies (SIGKILL; its task keeps running, as on a machine
cut off the network), the server marks the node lost after
node_lost_timeout_s, fails the attempt with -1001 and retries it on another
node; when the agent comes back, its stale task is killed, never
duplicated."""

import os
import time

import e2etest as e
import paitest as pt

W = pt.tmpdir("pai-e2e-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid (docs/security.md) and write here
LOST_S = 3
srv = pt.start_server(extra_args=["--node-lost-timeout-s", str(LOST_S)])
c = srv.client(srv.admin_token)
if not e.agent_api_ready(srv):
    pt.not_ok("the server speaks the agent protocol (POST /api/v1/agent/sync)")
    pt.done()


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, ValueError):
        return False


def read_pid(path, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with open(path) as f:
                return int(f.read().strip())
        except (FileNotFoundError, ValueError):
            time.sleep(0.05)
    return -1


def wait_gone(pid, timeout=20):
    end = time.time() + timeout
    while time.time() < end and alive(pid):
        time.sleep(0.05)
    return not alive(pid)


victim = e.agent(srv, "l1")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the first agent registers")
mark = os.path.join(W, "lost.mark")
pidf = os.path.join(W, "lost.pid")
cmd = "[ -f %s ] && exit 0; touch %s; echo $$ > %s; exec sleep 120" % (mark, mark, pidf)
st, b = e.submit(c, e.job_yaml("lost", [e.role("main", cmd)], retry=1))
d = e.wait_state(c, "admin~lost", "RUNNING", 30)
pid = read_pid(pidf)
pt.check(e.state(d) == "RUNNING" and alive(pid), "the job runs on the first node",
         d.get("jobStatus"))
spare = e.agent(srv, "l2")
pt.check(len(e.wait_nodes(c, 2)) == 2, "a second agent registers")
victim.kill9()
d = e.wait_state(c, "admin~lost", ("SUCCEEDED", "FAILED"), 60)
ts = e.tasks(d, "main")
pt.check(e.state(d) == "SUCCEEDED" and ts and ts[0].get("containerNodeName") == "l2",
         "the lost node's task is retried on the other node", (d.get("jobStatus"), ts))
st, att = c.get("/api/v2/jobs/admin~lost/job-attempts")
pt.check(st == 200 and any(a.get("exitCode") == -1001 for a in att),
         "the lost attempt ended with -1001 (PodNodeLost)", att)
pt.check(alive(pid), "the old task still runs on the unreachable node", pid)
victim.spawn()
pt.check(wait_gone(pid, 30), "when the agent comes back its stale task is killed", pid)
d = e.detail(c, "admin~lost")
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"]["retries"] == 1,
         "the job stays SUCCEEDED with one retry (never duplicated)", d.get("jobStatus"))
victim.stop()
spare.stop()
pt.done()
