#!/usr/bin/env python3
"""test_hollow_scale.py - scale: >= 200 hollow nodes (a few `pai agent
--hollow --nodes K` processes) and 5,000 short jobs through a real `pai
server`.  Every job must reach a final state, and none twice: each attempt
is started and ends exactly once on exactly one node (the agents' logs say
so) and no job is retried.

Knobs (environment): HOLLOW_NODES (200), HOLLOW_JOBS (5000), HOLLOW_PROCS (4)."""

import collections
import os
import re
import threading
import time

import e2etest as e
import paitest as pt

NODES = int(os.environ.get("HOLLOW_NODES", "200"))
JOBS = int(os.environ.get("HOLLOW_JOBS", "5000"))
PROCS = max(1, int(os.environ.get("HOLLOW_PROCS", "4")))
FINAL = ("SUCCEEDED", "FAILED", "STOPPED")

srv = pt.start_server(extra_args=["--node-lost-timeout-s", "60"])
c = srv.client(srv.admin_token)
if not e.agent_api_ready(srv):
    pt.not_ok("the server speaks the agent protocol (POST /api/v1/agent/sync)")
    pt.done()
agents = []
per = (NODES + PROCS - 1) // PROCS
for i in range(PROCS):
    agents.append(e.agent(srv, "h%d" % i, "--hollow", "--nodes", str(per), "--log-level", "info"))
ready = e.wait_nodes(c, per * PROCS, timeout=120)
pt.check(len(ready) >= NODES, "%d hollow nodes registered from %d processes" % (NODES, PROCS),
         len(ready))

# Short jobs: 1 GPU each; some exit 0 after a short sleep, a few fail.
def job_text(k):
    cmd = "sleep 0.2; exit %d" % (3 if k % 50 == 0 else 0)
    return e.job_yaml("s%05d" % k, [e.role("main", cmd, gpu=1)])


errors = []
t0 = time.time()


def submitter(lo, hi):
    cl = srv.client(srv.admin_token)
    for k in range(lo, hi):
        st, b = e.submit(cl, job_text(k))
        if st != 202:
            errors.append((k, st, b))


threads = []
step = (JOBS + 3) // 4
for lo in range(0, JOBS, step):
    th = threading.Thread(target=submitter, args=(lo, min(JOBS, lo + step)))
    th.start()
    threads.append(th)
for th in threads:
    th.join()
t_sub = time.time() - t0
pt.check(not errors, "%d jobs submitted (%.1f s)" % (JOBS, t_sub), errors[:5])


def list_jobs():
    st, b = c.get("/api/v2/jobs?limit=50000")
    if st != 200:
        return []
    return b if isinstance(b, list) else b.get("data", [])


deadline = time.time() + float(os.environ.get("HOLLOW_TIMEOUT", "600"))
jobs = []
while time.time() < deadline:
    jobs = [j for j in list_jobs() if j.get("name", "").startswith("s")]
    if len(jobs) >= JOBS and all(j.get("state") in FINAL for j in jobs):
        break
    time.sleep(1.0)
t_all = time.time() - t0
states = collections.Counter(j.get("state") for j in jobs)
pt.check(len(jobs) == JOBS and sum(states[s] for s in FINAL) == JOBS,
         "every job reached a final state (%.1f s, %.0f jobs/s)" % (t_all, JOBS / t_all), states)
want_failed = len([k for k in range(JOBS) if k % 50 == 0])
pt.check(states["FAILED"] == want_failed and states["SUCCEEDED"] == JOBS - want_failed,
         "exit codes decided the final states", states)
pt.check(all(j.get("retries", 0) == 0 for j in jobs), "no job was retried",
         [j for j in jobs if j.get("retries", 0)][:3])

for a in agents:
    a.stop()
started = collections.Counter()
exited = collections.Counter()
pat_s = re.compile(r"task=(\S+) started")
pat_e = re.compile(r"task=(\S+) exited")
for a in agents:
    for line in a.log().splitlines():
        m = pat_s.search(line)
        if m:
            started[m.group(1)] += 1
        m = pat_e.search(line)
        if m:
            exited[m.group(1)] += 1
dups = [k for k, v in started.items() if v != 1] + [k for k, v in exited.items() if v != 1]
pt.check(len(started) == JOBS and not dups and set(started) == set(exited),
         "every attempt was started once and ended once, on one node",
         (len(started), len(exited), dups[:5]))
pt.done()
