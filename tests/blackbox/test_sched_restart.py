#!/usr/bin/env python3
"""test_sched_restart.py - a server restart (kill -9) restores the
scheduler's recorded cell bindings exactly.

VC default owns one rack-level cell and one node-level cell; a 4-GPU job
binds the rack cell (its node n1 and n2 show the VC).  The job record keeps
the task's cell; after kill -9 and a restart the same rack is the VC's again
(n2 still shows it, the other rack does not), so the next job of the VC
lands on n2, as it would have without the restart.  (Rebuilt from where the
job runs, the restore would have taken the VC's node-level cell for n1 and
left the rack unbound.)"""

import os

import jobstest as jt
import paitest as pt

CONFIG = """
physicalCluster:
  cellTypes:
    A100-NODE: {childCellType: A100, childCellNumber: 4, isNodeLevel: true}
    RACK: {childCellType: A100-NODE, childCellNumber: 2}
  physicalCells:
  - {cellType: RACK, cellChildren: [{cellAddress: n1}, {cellAddress: n2}]}
  - {cellType: RACK, cellChildren: [{cellAddress: n3}, {cellAddress: n4}]}
virtualClusters:
  default:
    virtualCells:
    - {cellType: RACK, cellNumber: 1}
    - {cellType: RACK.A100-NODE, cellNumber: 1}
"""

d = pt.tmpdir("pai-sched-restart-")
cfg = os.path.join(d, "hived.yaml")
with open(cfg, "w") as f:
    f.write(CONFIG)
srv = pt.start_server(extra_args=["--hived-config", cfg, "--sched-check", "true"])
names = ("n1", "n2", "n3", "n4")
agents = [jt.FakeAgent(srv, n, gpus=4) for n in names]
for a in agents:
    a.sync()


def vcs(c):
    st, b = c.get("/api/v2/cluster/nodes")
    if st != 200:
        return None
    return {n["metadata"]["name"]: n["metadata"]["labels"].get("pai/vc", "") for n in b["items"]}


def placed(c, job):
    st, b = c.get("/api/v2/jobs/" + job)
    if st != 200:
        return None
    return [t.get("containerNodeName") for r in b["taskRoles"].values()
            for t in r["taskStatuses"]]


c = srv.client(srv.admin_token)
st, b = jt.submit(c, jt.job_yaml("x", [{"name": "main", "gpu": 4}]))
pt.check(st == 202, "a 4-GPU job accepted", (st, b))
dx = jt.wait_state(c, "admin~x", "RUNNING", timeout=20)
pt.check(dx and dx["jobStatus"]["state"] == "RUNNING", "it runs", dx)
before = vcs(c)
pt.check(before == {"n1": "default", "n2": "default", "n3": "", "n4": ""},
         "it bound the VC's rack cell: n1 and n2 are the VC's", before)

srv.kill9()
srv.restart()
c = srv.client(srv.admin_token)
for a in agents:
    a.client = pt.Client(srv.url, srv.agent_token, timeout=60)
    a.sync()
dx = jt.wait_state(c, "admin~x", "RUNNING", timeout=20)
pt.check(dx and dx["jobStatus"]["state"] == "RUNNING", "the job still runs after kill -9", dx)
after = vcs(c)
pt.check(after == before, "the same rack cell is the VC's after the restart", (before, after))
st, b = jt.submit(c, jt.job_yaml("y", [{"name": "main", "gpu": 4}]))
pt.check(st == 202, "a second 4-GPU job accepted", (st, b))
dy = jt.wait_state(c, "admin~y", "RUNNING", timeout=20)
pt.check(placed(c, "admin~y") == ["n2"], "it runs on n2, in the rack the VC had",
         placed(c, "admin~y"))
st, text = srv.client().get("/metrics")
pt.check("\npai_scheduler_invariant_violations_total 0\n" in text,
         "the checker found nothing (sched_check: true)")
pt.done()
