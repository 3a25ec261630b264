#!/usr/bin/env python3
"""test_e2e_agent.py - the job lifecycle end to end: a real `pai server` and
real `pai agent` processes (process runtime) on loopback.

Covers: a single-task job (env, GPUs, logs through the server, full and in
tail mode over a 300 KB stdout); a two-role job whose tasks talk through
PAI_HOST_IP_* / PAI_PORT_LIST_*; completion policies (master-dominated,
all-workers, elastic); retries by exit-code class (permanent, transient,
counted); stop; OOM; agent restart with re-adoption.  Node loss is in
test_e2e_nodeloss.py, podman in test_e2e_podman.py."""

import os
import signal
import time

import e2etest as e
import paitest as pt

W = pt.tmpdir("pai-e2e-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid (docs/security.md) and write here
LOST_S = 30  # no node loss here (see test_e2e_nodeloss.py), even on a loaded CI
srv = pt.start_server(extra_args=["--node-lost-timeout-s", str(LOST_S)])
c = srv.client(srv.admin_token)
if not e.agent_api_ready(srv):
    pt.not_ok("the server speaks the agent protocol (POST /api/v1/agent/sync)")
    pt.done()
n1 = e.agent(srv, "e1")
n2 = e.agent(srv, "e2")
pt.check(len(e.wait_nodes(c, 2)) >= 2, "two agents register as healthy nodes")


def run(name, roles, states=("SUCCEEDED", "FAILED", "STOPPED"), retry=0, timeout=60):
    st, b = e.submit(c, e.job_yaml(name, roles, retry=retry))
    pt.check(st == 202, "%s: submitted" % name, (st, b))
    return e.wait_state(c, "admin~" + name, states, timeout)


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


# ---- single task -----------------------------------------------------------------
d = run("single", [e.role("main", 'echo "hello $PAI_JOB_NAME gpus=$CUDA_VISIBLE_DEVICES"; '
                            'echo to-stderr >&2', gpu=2)])
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"]["appExitCode"] == 0,
         "single: SUCCEEDED with exit code 0", d.get("jobStatus"))
ts = e.tasks(d, "main")
pt.check(len(ts) == 1 and ts[0].get("containerNodeName") in ("e1", "e2"),
         "single: the task ran on an agent", ts)
st, lg = c.get(ts[0]["containerLog"]) if ts else (0, {})
locs = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])} if st == 200 else {}
out = ""
if "stdout" in locs:
    st2, out = c.get(locs["stdout"])
    out = out if isinstance(out, str) else str(out)
pt.check("hello admin~single gpus=" in out and len(out.split("gpus=")[1].split(",")) == 2,
         "single: stdout through the server's log endpoint, with the env and 2 GPUs",
         (lg, out))

# ---- log tail through the server: the last 64 KiB of a 300 KB stdout ------------------
d = run("biglog", [e.role("main", "for i in $(seq 1 30000); do echo line-$i-0123; done")])
ts = e.tasks(d, "biglog") or e.tasks(d, "main")
full = tail = ""
if ts:
    st, lg = c.get(ts[0]["containerLog"] + "?tailMode=true")
    locs = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])} if st == 200 else {}
    if "stdout" in locs:
        tail = str(c.get(locs["stdout"])[1])
    st, lg = c.get(ts[0]["containerLog"])
    locs = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])} if st == 200 else {}
    if "stdout" in locs:
        full = str(c.get(locs["stdout"])[1])
pt.check(full.startswith("line-1-0123\n") and full.endswith("line-30000-0123\n") and
         len(full) > 300000, "logs: the full stdout through the server", len(full))
pt.check(tail.endswith("line-30000-0123\n") and 0 < len(tail) <= 65536,
         "logs: tail mode through the server returns the last bytes", len(tail))

# ---- a silent task: no log dir on the node, its logs read as empty -----------------------
d = run("silent", [e.role("main", "true")])
ts = e.tasks(d, "silent") or e.tasks(d, "main")
got = None
if ts:
    st, lg = c.get(ts[0]["containerLog"])
    locs = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])} if st == 200 else {}
    if "stdout" in locs:
        st, body = c.get(locs["stdout"])
        got = (st, body)
pt.check(got is not None and got[0] == 200 and not got[1],
         "logs: a silent task's stdout reads as empty (its log dir is never made)", got)

# ---- two roles talking through PAI_HOST_IP_* / PAI_PORT_LIST_* -------------------
server_cmd = ("exec python3 -m http.server $PAI_PORT_LIST_server_0_http "
              "--bind $PAI_HOST_IP_server_0")
worker_cmd = ("for i in $(seq 1 150); do "
              "curl -sf http://$PAI_HOST_IP_server_0:$PAI_PORT_LIST_server_0_http/ >/dev/null "
              "&& echo reached && exit 0; sleep 0.1; done; exit 1")
d = run("dist", [e.role("server", server_cmd, ports={"http": 1}),
                 e.role("worker", worker_cmd, instances=2, min_succeeded=2)])
pt.check(e.state(d) == "SUCCEEDED", "dist: workers reached the server through its env address"
         " and port; the job SUCCEEDED", d.get("jobStatus"))
srv_tasks = e.tasks(d, "server")
pt.check(srv_tasks and srv_tasks[0].get("taskState") in ("STOPPED", "FAILED", "SUCCEEDED")
         and srv_tasks[0].get("containerExitCode") in (143, 137, -220, -210, 0),
         "dist: the server task was stopped when the job completed", srv_tasks)

# ---- completion policies -----------------------------------------------------------
t0 = time.time()
d = run("master", [e.role("master", "sleep 0.5; exit 0", min_succeeded=1),
                   e.role("worker", "sleep 60", instances=2)])
pt.check(e.state(d) == "SUCCEEDED" and time.time() - t0 < 30,
         "master-dominated: the master's success ends the job, workers stopped",
         d.get("jobStatus"))
d = run("allw", [e.role("worker", "exit 0", instances=3)])
pt.check(e.state(d) == "SUCCEEDED", "all-workers: every worker succeeded -> SUCCEEDED",
         d.get("jobStatus"))
d = run("allwf", [e.role("worker", '[ "$PAI_TASK_INDEX" = 1 ] && exit 3; sleep 30',
                         instances=3)])
pt.check(e.state(d) == "FAILED" and d["jobStatus"].get("appExitTriggerTaskIndex") == 1,
         "all-workers: one failed worker fails the job (trigger task recorded)",
         d.get("jobStatus"))
d = run("elastic", [e.role("worker", '[ "$PAI_TASK_INDEX" = 0 ] && exit 3; exit 0',
                           instances=3, min_failed=-1)])
pt.check(e.state(d) == "SUCCEEDED", "elastic: failures ignored (minFailedInstances -1)",
         d.get("jobStatus"))

# ---- retries by exit-code class ------------------------------------------------------
d = run("perm", [e.role("main", "exit 220")], retry=2)
pt.check(e.state(d) == "FAILED" and d["jobStatus"]["retries"] == 0,
         "retry: a permanent exit code (220) is never retried", d.get("jobStatus"))
mark = os.path.join(W, "transient")
d = run("trans", [e.role("main", "[ -f %s ] && exit 0; touch %s; exit 250" % (mark, mark))])
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"]["retries"] >= 1,
         "retry: a transient exit code (250) is retried even with jobRetryCount 0",
         d.get("jobStatus"))
d = run("counted", [e.role("main", "exit 1")], retry=1)
pt.check(e.state(d) == "FAILED" and d["jobStatus"]["retries"] == 1,
         "retry: an ordinary failure is retried up to jobRetryCount", d.get("jobStatus"))

# ---- stop -------------------------------------------------------------------------------
pidf = os.path.join(W, "stop.pid")
st, b = e.submit(c, e.job_yaml("stopme", [e.role("main", "echo $$ > %s; exec sleep 120" % pidf)]))
d = e.wait_state(c, "admin~stopme", "RUNNING", 30)
pid = read_pid(pidf)
pt.check(e.state(d) == "RUNNING" and alive(pid), "stop: the job runs", d.get("jobStatus"))
st, b = c.put("/api/v2/jobs/admin~stopme/executionType", {"value": "STOP"})
d = e.wait_state(c, "admin~stopme", "STOPPED", 30)
pt.check(e.state(d) == "STOPPED" and wait_gone(pid), "stop: STOPPED and the process is gone",
         (st, b, d.get("jobStatus")))

# ---- OOM --------------------------------------------------------------------------------
if os.geteuid() == 0:
    d = run("oom", [e.role("main", "python3 -c 'x = bytearray(400 * 1024 * 1024)'", mem=64)])
    ts = e.tasks(d, "oom") or e.tasks(d, "main")
    pt.check(e.state(d) == "FAILED" and ts and ts[0].get("containerExitCode") == -1200,
             "oom: over its memoryMB the task is OOM-killed and reported -1200", ts)
else:
    pt.skip("oom: over its memoryMB the task is OOM-killed and reported -1200",
            "needs root for cgroups")

# ---- agent restart: re-adoption ------------------------------------------------------------
starts = os.path.join(W, "restart.starts")
st, b = e.submit(c, e.job_yaml("readopt", [e.role("main", "echo x >> %s; sleep 3; exit 0" %
                                                  starts)]))
d = e.wait_state(c, "admin~readopt", "RUNNING", 30)
node = e.tasks(d, "main")[0]["containerNodeName"] if e.tasks(d, "main") else "e1"
victim = n1 if node == "e1" else n2
victim.stop()
victim.spawn()
d = e.wait_state(c, "admin~readopt", ("SUCCEEDED", "FAILED"), 30)
nstarts = open(starts).read().count("x") if os.path.exists(starts) else 0
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"]["retries"] == 0 and nstarts == 1,
         "restart: the restarted agent re-adopts the running task (one run, no retry)",
         (d.get("jobStatus"), nstarts))

for p in (n1, n2):
    p.stop()
pt.done()
