"""test_jobs_vcs.py - virtual clusters from a HiveD config, and changing them
at run time: create, resize, delete; a change that would break a running
job's guarantee is refused with a reason; a VC with unfinished jobs cannot be
deleted; the change survives kill -9."""

import os

import jobstest as jt
import paitest as pt

CONFIG = """
physicalCluster:
  cellTypes:
    A100-NODE:
      childCellType: A100
      childCellNumber: 4
      isNodeLevel: true
  physicalCells:
  - cellType: A100-NODE
    cellAddress: h1
  - cellType: A100-NODE
    cellAddress: h2
virtualClusters:
  default:
    virtualCells:
    - cellType: A100-NODE
      cellNumber: 1
  vc1:
    virtualCells:
    - cellType: A100-NODE
      cellNumber: 1
"""

d = pt.tmpdir("pai-vcs-")
cfg = os.path.join(d, "hived.yaml")
with open(cfg, "w") as f:
    f.write(CONFIG)
srv = pt.start_server(extra_args=["--hived-config", cfg])
c = srv.client(srv.admin_token)
agents = [jt.FakeAgent(srv, n, gpus=4) for n in ("h1", "h2")]
for a in agents:
    a.sync()

st, v = c.get("/api/v2/virtual-clusters")
pt.check(st == 200 and set(v) == {"default", "vc1"} and
         v["vc1"]["resourcesGuaranteed"]["GPUs"] == 4,
         "VCs and their guarantees come from the HiveD config", v)

cells = lambda n: {"virtualCells": [{"cellType": "A100-NODE", "cellNumber": n}]}
st, b = c.put("/api/v2/virtual-clusters/vc2", cells(1))
pt.check(st == 400 and b.get("message"), "a VC beyond the physical cells is refused with a reason",
         (st, b))

st, b = jt.submit(c, jt.job_yaml("inv1", [{"name": "main", "gpu": 4}], vc="vc1"))
pt.check(st == 202, "a job in vc1", (st, b))
d = jt.wait_state(c, "admin~inv1", "RUNNING", timeout=10)
for a in agents:
    a.sync()
pt.check(d["jobStatus"]["state"] == "RUNNING", "the vc1 job runs", d["jobStatus"])
st, b = c.put("/api/v2/virtual-clusters/vc1", cells(0))
pt.check(st == 400 and "admin~inv1" in b.get("message", ""),
         "shrinking a VC under a running job is refused, naming the job", (st, b))
st, b = c.delete("/api/v2/virtual-clusters/vc1")
pt.expect((st, b), 403, "deleting a VC with unfinished jobs is refused", "RemoveRunningVcError")

st, b = c.put("/api/v2/virtual-clusters/default", cells(0))
pt.check(st == 200, "resize: default shrinks to nothing (no jobs there)", (st, b))
st, b = c.put("/api/v2/virtual-clusters/vc2", cells(1))
pt.check(st == 201, "create: vc2 takes the freed cell", (st, b))
st, v = c.get("/api/v2/virtual-clusters")
pt.check(st == 200 and v.get("vc2", {}).get("resourcesGuaranteed", {}).get("GPUs") == 4 and
         v["default"]["resourcesGuaranteed"]["GPUs"] == 0,
         "the VC list shows the change", v)
pt.check(jt.state(c, "admin~inv1") == "RUNNING", "the running job kept running through changes")
st, b = jt.submit(c, jt.job_yaml("inv2", [{"name": "main", "gpu": 4}], vc="vc2"))
d = jt.wait_state(c, "admin~inv2", "RUNNING", timeout=10)
for a in agents:
    a.sync()
pt.check(st == 202 and d["jobStatus"]["state"] == "RUNNING", "a job runs in the new VC",
         (st, b, d["jobStatus"]))

user = srv.client(srv.create_user("vcuser"))
st, b = user.put("/api/v2/virtual-clusters/vc3", cells(0))
pt.expect((st, b), 403, "only admins change VCs")
st, b = c.put("/api/v2/virtual-clusters/vc3", {"vcCapacity": 10})
pt.expect((st, b), 400, "a change without virtualCells is 400", "InvalidParametersError")

for a in agents:
    for t in list(a.running):
        a.exit(t, 0)
    a.settle()
st, b = c.delete("/api/v2/virtual-clusters/vc1")
pt.check(st == 200, "delete: vc1 once its jobs finished", (st, b))
st, b = c.get("/api/v2/virtual-clusters/vc1")
pt.expect((st, b), 404, "a deleted VC is gone", "NoVirtualClusterError")
st, b = c.delete("/api/v2/virtual-clusters/nosuch")
pt.expect((st, b), 404, "deleting an unknown VC is NoVirtualClusterError")

srv.kill9()
srv.start()
c = srv.client(srv.admin_token)
st, v = c.get("/api/v2/virtual-clusters")
pt.check(st == 200 and "vc2" in v and "vc1" not in v, "VC changes survive kill -9", v)
pt.done()
