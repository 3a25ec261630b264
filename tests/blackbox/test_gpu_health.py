#!/usr/bin/env python3
"""test_gpu_health.py - a GPU going bad, end to end with a real server and a
real agent (simulated GPUs): a fault injected through the agent's fault file
(<work-dir>/gpu-faults, "INDEX ecc") makes the agent report the GPU
unhealthy; the server marks the node's cell bad in the scheduler (HiveD: a
cell with a bad cell inside is bad), so a new job waits while the running
one keeps running; the node view (pai.badGpus, `pai nodes` BadGPU), the
agent's pai_agent_gpu_healthy and the server's pai_node_gpu_bad show it;
when the fault clears the GPU is healthy again and the waiting job runs
(docs/operations.md, "A GPU goes bad")."""

import os
import subprocess
import time
import urllib.request

import e2etest as e
import paitest as pt

srv = pt.start_server()
c = srv.client(srv.admin_token)
ag = e.agent(srv, "h1", "--gpus", "2")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the agent registers")


def node_pai():
    st, b = c.get("/api/v2/cluster/nodes")
    items = b.get("items", []) if st == 200 else []
    return items[0].get("pai", {}) if items else {}


def wait_for(pred, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.2)
    return pred()


def server_metrics():
    st, text = srv.client().get("/metrics")
    return text if isinstance(text, str) else ""


def agent_metrics():
    st, groups = c.get("/api/v2/metrics/targets")
    if st != 200 or not groups:
        return ""
    with urllib.request.urlopen("http://%s/metrics" % groups[0]["targets"][0], timeout=10) as r:
        return r.read().decode()


st, _ = e.submit(c, e.job_yaml("busy", [e.role("main", "sleep 600", gpu=1)]))
d = e.wait_state(c, "admin~busy", "RUNNING", 30)
pt.check(e.state(d) == "RUNNING", "a 1-GPU job runs on the node", d.get("jobStatus"))
gpu_busy = d["taskRoles"]["main"]["taskStatuses"][0]["containerGpus"] if d else None
free_gpu = 1 if str(gpu_busy) == "0" else 0  # containerGpus: the indices, "0"
faults = os.path.join(ag.work_dir, "gpu-faults")
with open(faults, "w") as f:
    f.write("%d ecc\n" % free_gpu)
ok = wait_for(lambda: node_pai().get("badGpus") == [free_gpu])
pt.check(ok and node_pai().get("schedulable") is False,
         "an injected ECC fault: the node view lists the bad GPU, not schedulable", node_pai())
pt.check('pai_node_gpu_bad{node="h1",minor_number="%d"} 1' % free_gpu in server_metrics(),
         "server metrics: pai_node_gpu_bad for the GPU")
am = agent_metrics()
pt.check('pai_agent_gpu_healthy{minor_number="%d"} 0' % free_gpu in am,
         "agent metrics: pai_agent_gpu_healthy 0 for the GPU",
         [l for l in am.splitlines() if "healthy" in l])
home = pt.tmpdir("pai-home-")
env = dict(os.environ, HOME=home, PAI_CONFIG=os.path.join(home, "config.json"),
           PAI_SERVER=srv.url, PAI_TOKEN=srv.admin_token)
out = subprocess.run([pt.PAI_BIN, "nodes"], env=env, capture_output=True, text=True, timeout=30)
pt.check("BadGPU" in out.stdout, "pai nodes shows the node as BadGPU", out.stdout + out.stderr)

st, _ = e.submit(c, e.job_yaml("next", [e.role("main", "echo next", gpu=1)]))
time.sleep(2)
d2 = e.detail(c, "admin~next")
pt.check(e.state(d2) == "WAITING", "a new 1-GPU job waits though a GPU is free (its cell is bad)",
         d2.get("jobStatus"))
pt.check(e.state(e.detail(c, "admin~busy")) == "RUNNING",
         "the running job keeps running (HiveD leaves a bad cell's pods)")

os.unlink(faults)
ok = wait_for(lambda: node_pai().get("badGpus") == [])
pt.check(ok and node_pai().get("schedulable") is True, "fault cleared: the GPU is healthy again",
         node_pai())
d2 = e.wait_state(c, "admin~next", "SUCCEEDED", 40)
pt.check(e.state(d2) == "SUCCEEDED", "the waiting job then runs", d2.get("jobStatus"))
pt.check('pai_node_gpu_bad{' not in server_metrics(), "no pai_node_gpu_bad series once healthy")
ag.stop()
pt.done()
