#!/usr/bin/env python3
"""test_up_accel.py - `pai up --amd-nodes N --fpga-nodes M`: besides the
simulated NVIDIA nodes, AMD nodes (a fake sysfs tree, `--gpu-backend
amd-sim`) and FPGA nodes (a generic device class over files in the node's
work dir), each its own SKU in the scheduler config `pai up` generates
(a cell type per SKU, VC default owning them all); a job asking for each
SKU with skuType runs on that kind of node and sees its variables."""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from clitest import Tap, free_port  # noqa: E402
from test_up_vcs import Cluster, api  # noqa: E402

JOB = """protocolVersion: 2
name: %s
type: job
prerequisites:
  - {type: dockerimage, name: img, uri: busybox}
taskRoles:
  main:
    instances: 1
    dockerImage: img
    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 256}
    commands:
      - env | grep -E 'VISIBLE_DEVICES=' | sort
extras:
  hivedScheduler:
    taskRoles:
      main: {skuType: %s}
"""


def submit(c, name, sku):
    req_body = (JOB % (name, sku)).encode()
    import urllib.request
    req = urllib.request.Request(c.url + "/api/v2/jobs", data=req_body, method="POST")
    req.add_header("Content-Type", "text/yaml")
    req.add_header("Authorization", "Bearer " + c.token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def wait_done(c, job, timeout=60):
    end = time.time() + timeout
    d = {}
    while time.time() < end:
        st, d = c.get("/api/v2/jobs/admin~" + job)
        if st == 200 and d["jobStatus"]["state"] in ("SUCCEEDED", "FAILED"):
            return d
        time.sleep(0.2)
    return d


def stdout_of(c, d):
    ts = d.get("taskRoles", {}).get("main", {}).get("taskStatuses", [])
    if not ts:
        return ""
    st, lg = c.get(ts[0]["containerLog"])
    locs = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])} if st == 200 else {}
    if "stdout" not in locs:
        return ""
    import urllib.request
    req = urllib.request.Request(c.url + locs["stdout"] if locs["stdout"].startswith("/")
                                 else locs["stdout"])
    req.add_header("Authorization", "Bearer " + c.token)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.read().decode()


def main():
    t = Tap()
    d = tempfile.mkdtemp(prefix="pai-up-accel-")
    t.cleanup.append(d)
    c = Cluster(t, os.path.join(d, "data"), free_port())
    try:
        run(t, c)
    finally:
        c.down()
    t.done()


def run(t, c):
    r = t.pai("up", "--data-dir", c.dir, "--port", str(c.port), "--detach", "--nodes", "1",
              "--gpus", "2", "--amd-nodes", "1", "--fpga-nodes", "1", timeout=120)
    if not t.check("pai up starts with AMD and FPGA nodes", r.rc == 0, r):
        return
    with open(os.path.join(c.dir, "admin.password")) as f:
        pw = f.read().strip()
    st, body = api(c.url, "POST", "/api/v2/authn/basic/login",
                   {"username": "admin", "password": pw})
    c.token = body.get("token") if st == 200 else None
    with open(os.path.join(c.dir, "scheduler.yaml")) as f:
        text = f.read()
    t.check("the generated config has a cell type per SKU and VC default owns them",
            all(s in text for s in ('"MI250X-2-NODE"', '"sim-fpga-2-NODE"', '"sim-gpu-2-NODE"',
                                    'cellAddress: "amd-node-1"', 'cellAddress: "fpga-node-1"'))
            and text.count("cellNumber: 1") == 3, text)
    end = time.time() + 30
    skus = {}
    while time.time() < end and len(skus) < 3:
        st, b = c.get("/api/v2/cluster/nodes")
        skus = {n["metadata"]["name"]: n["metadata"]["labels"].get("pai/sku")
                for n in b.get("items", [])} if st == 200 else {}
        time.sleep(0.2)
    t.check("the nodes report their SKUs",
            skus == {"node-1": "sim-gpu", "amd-node-1": "MI250X", "fpga-node-1": "sim-fpga"}, skus)
    st, vcs = c.get("/api/v2/virtual-clusters")
    t.check("VC default guarantees all 6 devices",
            st == 200 and vcs.get("default", {}).get("resourcesGuaranteed", {}).get("GPUs") == 6,
            vcs)
    for job, sku, node, var in (("on-amd", "MI250X", "amd-node-1", "ROCR_VISIBLE_DEVICES=GPU-"),
                                ("on-fpga", "sim-fpga", "fpga-node-1", "FPGA_VISIBLE_DEVICES="),
                                ("on-gpu", "sim-gpu", "node-1", "CUDA_VISIBLE_DEVICES=")):
        t.check("%s: submitted" % job, submit(c, job, sku) == 202)
        d = wait_done(c, job)
        ts = d.get("taskRoles", {}).get("main", {}).get("taskStatuses", [])
        t.check("%s: runs on %s" % (job, node),
                d.get("jobStatus", {}).get("state") == "SUCCEEDED" and ts
                and ts[0].get("containerNodeName") == node, json.dumps(d)[:2000])
        out = stdout_of(c, d)
        t.check("%s: the task sees %s" % (job, var), var in out, out)
    t.check("the FPGA job sees no AMD variables",
            "HIP_VISIBLE_DEVICES" not in stdout_of(c, wait_done(c, "on-fpga")))


if __name__ == "__main__":
    main()
