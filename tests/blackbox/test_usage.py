#!/usr/bin/env python3
"""test_usage.py - GPU-hours held versus used (GET /api/v2/usage, `pai
usage`) and the idle-GPU flag, with a real `pai server` and `pai agent`
(simulated GPUs) on loopback (docs/monitoring.md, "Utilization").

Two jobs hold one GPU each, one declaring PAI_SIM_GPU_UTIL=80, the other 0:
their used/held ratios come out near 0.8 and 0 (with a wide tolerance: the
first sync interval of an attempt counts as held, not yet as used, and no
timing is asserted); the idle one is flagged gpuIdle in the job list and
detail once idle_gpu_seconds (here 2) has passed, the busy one never; a
user sees only their own jobs; bad parameters answer 400; the CLI prints
the same rows as a table and as CSV."""

import csv
import io
import os
import subprocess
import time

import e2etest as e
import paitest as pt

srv = pt.start_server(extra_args=["--idle-gpu-seconds", "2", "--idle-gpu-util-pct", "10"])
c = srv.client(srv.admin_token)
agent = e.agent(srv, "u1")
pt.check(len(e.wait_nodes(c, 1)) >= 1, "the agent registers")

JOBS = {"busy": 80, "idle": 0}
for name, util in JOBS.items():
    st, b = e.submit(c, e.job_yaml(name, [e.role("worker", "export PAI_SIM_GPU_UTIL=%d; sleep 300"
                                                  % util, gpu=1, mem=128)]))
    pt.check(st == 202, "job %s (PAI_SIM_GPU_UTIL=%d) is submitted" % (name, util), (st, b))
for name in JOBS:
    d = e.wait_state(c, "admin~" + name, "RUNNING", timeout=30)
    pt.check(e.state(d) == "RUNNING", "job %s runs" % name, d.get("jobStatus"))


def rows(client, by, **q):
    qs = "&".join("%s=%s" % kv for kv in dict(q, groupBy=by).items())
    st, b = client.get("/api/v2/usage?" + qs)
    return st, b


def job_rows():
    st, b = rows(c, "job")
    return {r["job"]: r for r in b.get("rows", [])} if st == 200 else {}


# Wait until both have used-GPU figures from a few syncs (5 s apart).
deadline = time.time() + 90
jr = {}
while time.time() < deadline:
    jr = job_rows()
    busy = jr.get("admin~busy", {})
    if (busy.get("utilization") or 0) >= 0.55 and busy.get("heldGpuHours", 0) * 3600 >= 20:
        break
    time.sleep(1)
busy, idle = jr.get("admin~busy", {}), jr.get("admin~idle", {})
print("# used/held: busy %s, idle %s (held %s and %s GPU-hours)"
      % (busy.get("utilization"), idle.get("utilization"), busy.get("heldGpuHours"),
         idle.get("heldGpuHours")), flush=True)
pt.check(busy.get("heldGpuHours", 0) > 0 and idle.get("heldGpuHours", 0) > 0,
         "usage by job: both jobs hold GPU-hours", jr)
pt.check(0.55 <= (busy.get("utilization") or 0) <= 0.9,
         "usage by job: the 80% job's used/held is ~0.8", busy)
pt.check(idle.get("utilization") is not None and idle["utilization"] <= 0.05,
         "usage by job: the idle job's used/held is ~0", idle)
pt.check(busy.get("user") == "admin" and busy.get("vc") == "default"
         and busy.get("state") == "RUNNING", "usage by job: user, vc and state", busy)

st, b = rows(c, "vc")
vc = {r["vc"]: r for r in b.get("rows", [])} if st == 200 else {}
pt.check(st == 200 and "default" in vc and vc["default"]["heldGpuHours"] > 0
         and b["total"]["heldGpuHours"] >= vc["default"]["heldGpuHours"] - 1e-3,
         "usage by vc: the default VC and the total", b)
st, b = rows(c, "user")
pt.check(st == 200 and [r["user"] for r in b["rows"]] == ["admin"], "usage by user", b)
now_ms = int(time.time() * 1000)
st, b = rows(c, "job", **{"from": now_ms + 3600000, "to": now_ms + 7200000})
pt.check(st == 200 and b["rows"] == [], "a period in the future holds nothing", b)
st, b = rows(c, "job", **{"from": "2000-01-01", "to": "2000-01-02T00:00:00Z"})
pt.check(st == 200 and b["rows"] == [] and b["from"] == 946684800000,
         "ISO-8601 dates are accepted (UTC)", b)
for bad in ({"groupBy": "node"}, {"from": "yesterday"}, {"from": "2000", "to": "1000"}):
    st, b = c.get("/api/v2/usage?" + "&".join("%s=%s" % kv for kv in bad.items()))
    pt.check(st == 400, "usage: %s answers 400" % bad, (st, b))
user = srv.client(srv.create_user("usage-user"))
st, b = rows(user, "job")
pt.check(st == 200 and b["rows"] == [], "a user sees only their own jobs (none)", b)
st, _ = srv.client().get("/api/v2/usage")
pt.check(st == 401, "usage: anonymous is refused", st)

# ---- the idle flag -------------------------------------------------------------
deadline = time.time() + 30
flag = {}
while time.time() < deadline:
    st, lst = c.get("/api/v2/jobs")
    flag = {j["name"]: j.get("gpuIdle", False) for j in lst} if st == 200 else {}
    if flag.get("idle"):
        break
    time.sleep(0.5)
pt.check(flag.get("idle") is True and flag.get("busy") is False,
         "job list: the idle job is flagged gpuIdle, the busy one not", flag)
d = e.detail(c, "admin~idle")
pt.check(d.get("gpuIdle") is True and d.get("gpuIdleSince", 0) > 0,
         "job detail: gpuIdle with gpuIdleSince", {k: d.get(k) for k in ("gpuIdle", "gpuIdleSince")})
pt.check("gpuIdle" not in e.detail(c, "admin~busy"), "job detail: the busy job is not flagged")

# ---- the CLI -------------------------------------------------------------------
home = pt.tmpdir("pai-usage-home-")
env = dict(os.environ, HOME=home, PAI_CONFIG=os.path.join(home, "config.json"), PAI_SERVER=srv.url,
           PAI_TOKEN=srv.admin_token)


def cli(*args):
    return subprocess.run([pt.PAI_BIN] + list(args), capture_output=True, text=True, env=env,
                          timeout=30)


r = cli("usage", "--by", "job")
pt.check(r.returncode == 0 and "HELD_GPU_HOURS" in r.stdout and "admin~busy" in r.stdout
         and "idle" in r.stdout and "(total)" in r.stdout, "pai usage --by job: a table", r)
r = cli("usage", "--by", "job", "--from", "1h", "--csv")
rd = list(csv.reader(io.StringIO(r.stdout))) if r.returncode == 0 else []
pt.check(rd and rd[0][:4] == ["JOB", "HELD_GPU_HOURS", "USED_GPU_HOURS", "UTILIZATION"]
         and sorted(x[0] for x in rd[1:]) == ["admin~busy", "admin~idle"],
         "pai usage --csv: a header and one line per job", r)
r = cli("usage", "--by", "node")
pt.check(r.returncode != 0, "pai usage --by node is refused", r)

for name in JOBS:
    c.put("/api/v2/jobs/admin~%s/executionType" % name, {"value": "STOP"})
for name in JOBS:
    e.wait_state(c, "admin~" + name, "STOPPED", timeout=30)
# Finished jobs still count.
jr = job_rows()
pt.check(jr.get("admin~busy", {}).get("state") == "STOPPED"
         and jr["admin~busy"]["usedGpuHours"] > 0, "a stopped job still counts", jr)
agent.stop()
pt.done()
