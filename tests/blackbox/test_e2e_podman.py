#!/usr/bin/env python3
"""test_e2e_podman.py - a podman task end to end: a real `pai server`, a real
`pai agent --runtime podman`, the local busybox image (built by
scripts/build-busybox-image.sh; no registry).  Checks the job's env inside
the container, the memory limit (an allocation past memoryMB is OOM-killed,
-1200), host networking (the task's port is reachable from the host), and
shm from the job.  Passes with a notice without root or podman."""

import time
import urllib.request

import e2etest as e
import paitest as pt

IMAGE = e.IMAGE
e.podman_ready("podman end to end")
srv = pt.start_server()
c = srv.client(srv.admin_token)
if not e.agent_api_ready(srv):
    pt.not_ok("the server speaks the agent protocol (POST /api/v1/agent/sync)")
    pt.done()
a = e.agent(srv, "p1", "--runtime", "podman")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the podman agent registers")

cmd = ('echo "job=$PAI_JOB_NAME role=$PAI_CURRENT_TASK_ROLE_NAME idx=$PAI_TASK_INDEX '
       'gpus=$NVIDIA_VISIBLE_DEVICES"; exit 0')
st, b = e.submit(c, e.job_yaml("pod", [e.role("main", cmd, mem=64, gpu=1)], image_uri=IMAGE))
d = e.wait_state(c, "admin~pod", ("SUCCEEDED", "FAILED"), 120)
pt.check(e.state(d) == "SUCCEEDED", "podman: the job SUCCEEDED", d.get("jobStatus"))
ts = e.tasks(d, "main")
out = e.task_stdout(c, ts[0]) if ts else ""
pt.check("job=admin~pod role=main idx=0 gpus=" in out and "gpus=none" not in out,
         "podman: the container sees the job's PAI_* env and its GPU", out)

st, b = e.submit(c, e.job_yaml("podoom", [e.role(
    "main", "dd if=/dev/zero of=/dev/null bs=200M count=1; exit $?", mem=48)], image_uri=IMAGE))
d = e.wait_state(c, "admin~podoom", ("SUCCEEDED", "FAILED"), 120)
ts = e.tasks(d, "main")
pt.check(e.state(d) == "FAILED" and ts and ts[0].get("containerExitCode") == -1200,
         "podman: past memoryMB the container is OOM-killed and reported -1200", ts)

cmd = "exec httpd -f -p $PAI_PORT_LIST_main_0_http -h /etc"
st, b = e.submit(c, e.job_yaml("podnet", [e.role("main", cmd, ports={"http": 1})],
                               image_uri=IMAGE))
d = e.wait_state(c, "admin~podnet", "RUNNING", 120)
ts = e.tasks(d, "main")
port = (ts[0].get("containerPorts") or {}).get("http") if ts else None
body = ""
for _ in range(100):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%s/passwd" % port, timeout=2) as r:
            body = r.read().decode()
            break
    except Exception:
        time.sleep(0.1)
pt.check("root:x:0:0" in body, "podman: host networking, the task's port is reachable", port)
# the agent's metrics read the container's cgroup (under the attempt's --cgroup-parent)
st, groups = c.get("/api/v2/metrics/targets")
limit = None
for _ in range(30 if st == 200 and groups else 0):
    with urllib.request.urlopen("http://%s/metrics" % groups[0]["targets"][0], timeout=5) as r:
        text = r.read().decode()
    lines = [l for l in text.splitlines()
             if l.startswith("task_mem_limit_byte{") and 'job_name="admin~podnet"' in l]
    if lines:
        limit = float(lines[0].rsplit(" ", 1)[1])
        break
    time.sleep(0.5)
pt.check(limit == 256 * 1024 * 1024,
         "podman: task_mem_limit_byte is the container's memoryMB (its cgroup, docs/monitoring.md)",
         limit)
c.put("/api/v2/jobs/admin~podnet/executionType", {"value": "STOP"})
d = e.wait_state(c, "admin~podnet", "STOPPED", 60)
pt.check(e.state(d) == "STOPPED", "podman: the job is stopped", d.get("jobStatus"))
left = e.podman_containers(a)
pt.check(not left, "podman: no container of this agent is left behind", left)
a.stop()
pt.done()
