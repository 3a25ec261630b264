"""test_jobs_lifecycle.py - the job lifecycle through the agent protocol:
a real `pai server` and fake agents (jobstest.FakeAgent, a protocol peer
driven by the test, so which task exits with which code is deterministic).

Covers: single task, gang placement of a two-role job with peers' env and
conflict-free ports, each completion-policy pattern (master-dominated,
all-workers, elastic), retries by exit-code class (permanent, transient,
counted), stop, node loss with retry elsewhere (stale task killed, never
duplicated), agent restart re-adoption, refuse at submit, waiting reason,
server restart with running jobs, VCs, nodes, pods, metrics."""

import re
import time

import jobstest as jt
import paitest as pt

LOST_S = 2
srv = pt.start_server(extra_args=["--node-lost-timeout-s", str(LOST_S)])
c = srv.client(srv.admin_token)
n1 = jt.FakeAgent(srv, "n1", gpus=4)
n1.sync()


def run_job(name, roles, retry=0, expect=True):
    st, b = jt.submit(c, jt.job_yaml(name, roles, retry=retry))
    pt.check(st == 202, "%s: submitted" % name, (st, b))
    if expect:
        n1.sync_for("admin~" + name, sum(r.get("instances", 1) for r in roles))
    else:
        jt.wait_state(c, "admin~" + name, "WAITING", timeout=5)
        n1.sync()
    return "admin~" + name


def detail(job):
    return c.get("/api/v2/jobs/" + job)[1]


# ---- single task ---------------------------------------------------------------
job = run_job("single", [{"name": "main", "gpu": 1}])
ids = n1.find(job)
pt.check(len(ids) == 1, "single: the agent is told to run one task", n1.desired)
t = n1.desired[ids[0]] if ids else {}
pt.check(t.get("command", "").find("sleep 1") >= 0 and t.get("gpus") == [0],
         "single: desired task has the command and a GPU", t)
n1.sync()  # reports running
d = detail(job)
pt.check(d["jobStatus"]["state"] == "RUNNING" and d["jobStatus"]["launchedTime"],
         "single: RUNNING with a launch time once the agent reports it", d["jobStatus"])
n1.exit(ids[0], 0)
resp = n1.sync()
pt.check(ids[0] in resp["ack"], "single: the exit is acked", resp)
d = detail(job)
pt.check(d["jobStatus"]["state"] == "SUCCEEDED" and d["jobStatus"]["appExitCode"] == 0,
         "single: SUCCEEDED with exit code 0", d["jobStatus"])
st, a = c.get("/api/v2/jobs/%s/job-attempts" % job)
pt.check(st == 200 and len(a) == 1 and a[0]["exitCode"] == 0, "single: one job attempt", a)
st, ts = c.get("/api/v2/jobs/%s/attempts/0/taskRoles/main/taskIndex/0/attempts" % job)
pt.check(st == 200 and ts["attempts"][0]["containerExitCode"] == 0, "single: task attempts", ts)
st, lg = c.get("/api/v2/jobs/%s/attempts/0/taskRoles/main/taskIndex/0/attempts/0/logs" % job)
pt.check(st == 200 and {l["name"] for l in lg["locations"]} == {"stdout", "stderr", "all"},
         "single: task log locations", lg)

# ---- two roles: gang, env, ports -----------------------------------------------------
job = run_job("dist", [{"name": "ps", "instances": 1},
                       {"name": "worker", "instances": 2, "gpu": 1}])
ids = n1.find(job)
pt.check(len(ids) == 3, "dist: all three tasks dispatched together (gang)", ids)
env = n1.desired[n1.find(job, "worker", 1)[0]]["env"] if len(ids) == 3 else {}
pt.check(env.get("PAI_TASK_ROLE_LIST") == "ps,worker" and
         env.get("PAI_TASK_ROLE_TASK_COUNT_worker") == "2" and
         env.get("PAI_HOST_IP_ps_0") == "127.0.0.1" and
         env.get("PAI_CURRENT_TASK_ROLE_NAME") == "worker" and
         env.get("PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX") == "1",
         "dist: env names roles, counts and peers", env)
ports = [p for a in ids for lst in n1.desired[a]["ports"].values() for p in lst]
pt.check(len(ports) == 6 and len(set(ports)) == 6, "dist: every task got its own ports", ports)
pt.check(env.get("PAI_PORT_LIST_ps_0_ssh") == str(n1.desired[n1.find(job, "ps")[0]]["ports"]
                                                   ["ssh"][0]) if ids else False,
         "dist: a worker sees the ps port", env)
gpus = sorted(g for a in ids for g in n1.desired[a]["gpus"])
pt.check(len(gpus) == 2 and len(set(gpus)) == 2, "dist: distinct GPUs per worker", gpus)
pt.check(env.get("CUDA_VISIBLE_DEVICES") in ("0", "1", "2", "3") and
         n1.desired[n1.find(job, "ps")[0]]["env"].get("NVIDIA_VISIBLE_DEVICES") == "none",
         "dist: visible devices per task, none for CPU tasks", env)
for a in ids:
    n1.exit(a, 0)
n1.settle()
pt.check(jt.state(c, job) == "SUCCEEDED", "dist: SUCCEEDED when every task succeeded")

# ---- completion policies -------------------------------------------------------------
job = run_job("master", [{"name": "master", "min_succeeded": 1},
                         {"name": "worker", "instances": 2}])
n1.exit(n1.find(job, "master")[0], 0)
n1.sync()
pt.check(n1.find(job, "worker") == [] or jt.state(c, job) == "RUNNING",
         "master-dominated: workers are told to stop")
n1.settle()
d = detail(job)
pt.check(d["jobStatus"]["state"] == "SUCCEEDED" and
         d["jobStatus"]["appExitTriggerTaskRoleName"] == "master",
         "master-dominated: SUCCEEDED, triggered by the master", d["jobStatus"])
ws = d["taskRoles"]["worker"]["taskStatuses"]
pt.check(all(w["taskState"] == "STOPPED" and w["containerExitCode"] == -220 for w in ws),
         "master-dominated: workers STOPPED with FrameworkAttemptCompletion", ws)

job = run_job("allw", [{"name": "worker", "instances": 3}])
n1.exit(n1.find(job, "worker", 1)[0], 220, diag="boom")
n1.settle()
d = detail(job)
pt.check(d["jobStatus"]["state"] == "FAILED" and d["jobStatus"]["appExitCode"] == 220 and
         d["jobStatus"]["appExitTriggerTaskIndex"] == 1,
         "all-workers: one failure fails the job, trigger recorded", d["jobStatus"])
pt.check(d["jobStatus"]["appExitSpec"]["phrase"] == "UserCommandExitWithError",
         "all-workers: exit spec from the table", d["jobStatus"].get("appExitSpec"))

job = run_job("elastic", [{"name": "worker", "instances": 3, "min_failed": -1}])
for i, code in enumerate((1, 1, 0)):
    n1.exit(n1.find(job, "worker", i)[0], code)
    n1.sync()
pt.check(jt.state(c, job) == "SUCCEEDED", "elastic: failures below no threshold; SUCCEEDED")

# ---- task retry without gang allocation -------------------------------------------------
st, b = jt.submit(c, jt.job_yaml("taskretry", [{"name": "main", "task_retry": 1}], retry=0,
                                 extras={"gangAllocation": False}))
job = "admin~taskretry"
first = n1.sync_for(job)
n1.exit(first[0], 1)
n1.sync()
again = n1.sync_for(job)
pt.check(len(again) == 1 and again[0].endswith("/0/main/0/1"),
         "taskRetryCount: the failed task restarts alone as task attempt 1", (first, again))
d = detail(job)
pt.check(d["jobStatus"]["state"] == "RUNNING" and d["jobStatus"]["attemptId"] == 0 and
         d["taskRoles"]["main"]["taskStatuses"][0]["retries"] == 1,
         "taskRetryCount: same job attempt, the task counts one retry", d["jobStatus"])
n1.exit(again[0], 0)
n1.settle()
pt.check(jt.state(c, job) == "SUCCEEDED", "taskRetryCount: SUCCEEDED after the task retry")
st, ts = c.get("/api/v2/jobs/%s/attempts/0/taskRoles/main/taskIndex/0/attempts" % job)
pt.check(st == 200 and [a["containerExitCode"] for a in ts["attempts"]] == [1, 0],
         "taskRetryCount: both task attempts kept with their exit codes", ts)

# ---- OOM ------------------------------------------------------------------------------------
job = run_job("oom", [{"name": "main"}], retry=2)
n1.exit(n1.find(job)[0], -1200, oom=True, diag="Killed: memory limit")
n1.settle()
d = detail(job)
pt.check(d["jobStatus"]["state"] == "FAILED" and d["jobStatus"]["appExitCode"] == -1200 and
         d["jobStatus"]["retries"] == 0,
         "OOM: -1200 (UserContainerDockerOOMKilled) fails without retry", d["jobStatus"])
pt.check("memory limit" in (d["taskRoles"]["main"]["taskStatuses"][0]
                            ["containerExitDiagnostics"] or ""),
         "OOM: the diagnostics are kept", d["taskRoles"])

# ---- retries by exit class -------------------------------------------------------------
job = run_job("perm", [{"name": "main"}], retry=3)
n1.exit(n1.find(job)[0], 220)
n1.settle()
d = detail(job)
pt.check(d["jobStatus"]["state"] == "FAILED" and d["jobStatus"]["retries"] == 0,
         "permanent exit (220): never retried", d["jobStatus"])

job = run_job("counted", [{"name": "main"}], retry=1)
n1.exit(n1.find(job)[0], 134)
n1.settle()
deadline = time.time() + 10
while time.time() < deadline and not n1.find(job):
    n1.sync()
    time.sleep(0.1)
d = detail(job)
pt.check(d["jobStatus"]["retries"] == 1 and d["jobStatus"]["attemptId"] == 1,
         "counted exit (134): retried as a new attempt", d["jobStatus"])
n1.exit(n1.find(job)[0], 134) if n1.find(job) else None
n1.settle()
d = detail(job)
pt.check(d["jobStatus"]["state"] == "FAILED" and d["jobStatus"]["retries"] == 1,
         "counted exit: FAILED once jobRetryCount is used up", d["jobStatus"])
st, a = c.get("/api/v2/jobs/%s/job-attempts" % job)
pt.check(st == 200 and len(a) == 2, "counted exit: both attempts kept", a)

job = run_job("transient", [{"name": "main"}], retry=0)
n1.exit(n1.find(job)[0], 137)
n1.settle()
deadline = time.time() + 10
while time.time() < deadline and not n1.find(job):
    n1.sync()
    time.sleep(0.1)
d = detail(job)
pt.check(d["jobStatus"]["retries"] == 1 and d["jobStatus"]["retryDetails"]["user"] == 0 and
         d["jobStatus"]["state"] in ("RUNNING", "WAITING"),
         "transient exit (137): retried without counting", d["jobStatus"])

# ---- stop ------------------------------------------------------------------------------
c.put("/api/v2/jobs/%s/executionType" % job, {"value": "STOP"})
pt.check(jt.state(c, job) in ("STOPPING", "STOPPED"), "stop: STOPPING until the task is gone")
n1.settle()
d = detail(job)
pt.check(d["jobStatus"]["state"] == "STOPPED" and not n1.find(job),
         "stop: STOPPED once the agent killed the task", d["jobStatus"])

# ---- refuse and wait ---------------------------------------------------------------------
st, b = jt.submit(c, jt.job_yaml("huge", [{"name": "main", "gpu": 64}]))
pt.check(st == 400, "a job that can never fit is refused at submit", (st, b))
st, b = c.get("/api/v2/jobs/admin~huge")
pt.expect((st, b), 404, "a refused job is not stored")
job = run_job("fill", [{"name": "main", "gpu": 4}])
job2 = run_job("queued", [{"name": "main", "gpu": 1}], expect=False)
d = detail(job2)
pt.check(d["jobStatus"]["state"] == "WAITING" and d["jobStatus"]["waitingReason"],
         "a job that does not fit now waits, with a reason", d["jobStatus"])
why = d["jobStatus"]["waitingReason"] or ""
pt.check("VC default:" in why and "role main: 0 of 1 task x 1" in why,
         "the waiting reason is the scheduler's precise one for this job", why)
st, ev = c.get("/api/v2/jobs/%s/events" % job2)
pt.check(st == 200 and ev["totalCount"] >= 1, "a waiting job has events", ev)
n1.exit(n1.find(job)[0], 0)
n1.settle()
n1.sync_for(job2)
pt.check(all("sleep 1" in n1.desired[a]["command"] for a in n1.find(job2)),
         "a job that waited gets its commands from the store when placed",
         [n1.desired[a]["command"] for a in n1.find(job2)])
pt.check(jt.state(c, job2) == "RUNNING" and len(n1.find(job2)) == 1,
         "the waiting job starts when the GPUs free up")

# ---- views -------------------------------------------------------------------------------
st, v = c.get("/api/v2/virtual-clusters")
pt.check(st == 200 and "default" in v and v["default"]["resourcesTotal"]["GPUs"] == 4,
         "VC list shows capacity from the scheduler", v)
st, v = c.get("/api/v2/virtual-clusters/default")
pt.check(st == 200 and v["resourcesUsed"]["GPUs"] == 1, "VC detail shows used GPUs", v)
st, v = c.get("/api/v2/virtual-clusters/nope")
pt.expect((st, v), 404, "unknown VC is NoVirtualClusterError", "NoVirtualClusterError")
st, v = c.put("/api/v2/virtual-clusters/newvc",
              {"virtualCells": [{"cellType": "X", "cellNumber": 1}]})
pt.check(st == 400 and "hived_config" in v.get("message", ""),
         "VC change without a HiveD config is refused with a reason", (st, v))
st, v = c.get("/api/v2/kubernetes/nodes")
pt.check(st == 200 and v["items"][0]["metadata"]["name"] == "n1", "k8s nodes: our nodes", v)
st, v = c.get("/api/v2/kubernetes/pods")
pt.check(st == 200 and len(v["items"]) == 1, "k8s pods: our running tasks", v)
st, v = c.get("/api/v2/cluster/sku-types")
pt.check(st == 200 and "A100" in v, "SKU types", v)
st, m = srv.client(None).get("/metrics")
pt.check(st == 200 and 'pai_jobs{state="SUCCEEDED",vc="default"}' in m and
         "pai_scheduler_decision_seconds_bucket" in m and 'pai_nodes{state="healthy"} 1' in m
         and re.search(r'^pai_scheduler_pass_seconds_count [1-9]', m, re.M)
         and "pai_vc_gpus_used" in m,
         "metrics: jobs by state and VC, nodes, GPUs, scheduler latency and pass time", m[-800:] if isinstance(m, str) else m)

# ---- agent protocol errors -----------------------------------------------------------------
st, b = n1.client.post("/api/v1/agent/sync", {"version": 99, "node": n1.node()})
pt.expect((st, b), 400, "an unknown agent protocol version is refused", "InvalidParametersError")
st, b = c.post("/api/v1/agent/sync", {"version": 1, "node": {}})
pt.expect((st, b), 400, "a sync without a node name is refused")
st, b = n1.client.post("/api/v1/agent/sync", {"version": 1, "node": n1.node(), "known_seq": -1})
pt.expect((st, b), 400, "a negative known_seq is refused")
st, b = n1.client.post("/api/v1/agent/sync", {"version": 1, "node": n1.node(), "tasks": "x"})
pt.expect((st, b), 400, "tasks that are not a list are refused")
st, b = n1.client.post("/api/v1/agent/sync",
                       {"version": 1, "node": n1.node(), "known_seq": n1.known_seq,
                        "tasks": [{"attempt_id": "nobody~x/0/r/0/0", "state": "exited",
                                   "exit_code": 1}, {"attempt_id": "garbage", "state": "exited"},
                                  {"state": "running"}, 7]})
pt.check(st == 200 and sorted(b["ack"]) == ["garbage", "nobody~x/0/r/0/0"],
         "reports about unknown attempts change nothing and their exits are acked", (st, b))
st, b = srv.client(None).post("/api/v1/agent/sync", {"version": 1, "node": n1.node()})
pt.expect((st, b), 401, "anonymous sync is 401")
tok = srv.create_user("plain")
st, b = srv.client(tok).post("/api/v1/agent/sync", {"version": 1, "node": n1.node()})
pt.expect((st, b), 403, "a user token may not sync")

# ---- agent restart: re-adoption ---------------------------------------------------------
running = n1.find(job2)
n1.boot_id = "restarted"
n1.known_seq = 0
n1.sync()
pt.check(n1.find(job2) == running and jt.state(c, job2) == "RUNNING",
         "agent restart: running task re-adopted, not restarted", n1.find(job2))

# ---- node loss: retry elsewhere, stale task killed ------------------------------------------
n2 = jt.FakeAgent(srv, "n2", gpus=4)
n2.sync()
bg = jt.Poller(n2)
bg.start()
old = n1.find(job2)
time.sleep(LOST_S + 1.0)  # n1 stops syncing
d = jt.wait_state(c, job2, "RUNNING", timeout=15)
deadline = time.time() + 15
while time.time() < deadline and not n2.find(job2):
    time.sleep(0.1)
pt.check(len(n2.find(job2)) == 1, "node loss: the task is retried on another node", d)
st, a = c.get("/api/v2/jobs/%s/job-attempts" % job2)
pt.check(st == 200 and any(x["exitCode"] == -1001 for x in a),
         "node loss: the lost attempt has exit code -1001 (PodNodeLost)", a)
d = detail(job2)
pt.check(d["jobStatus"]["retryDetails"]["user"] == 0, "node loss: the retry is not counted",
         d["jobStatus"])
n1.sync()  # the lost node comes back, still running the old attempt
pt.check(n1.find(job2) == [] and len(n2.find(job2)) == 1,
         "node back: its stale task is killed, never duplicated", (old, n1.running))
n1.settle()
st, v = c.get("/api/v2/kubernetes/pods")
pt.check(st == 200 and len(v["items"]) == 1, "node back: one copy of the task cluster-wide", v)

# ---- server restart with a running job ---------------------------------------------------------
bg.stop_flag = True
bg.join()
srv.kill9()
srv.start()
c = srv.client(srv.admin_token)
pt.check(jt.state(c, job2) == "RUNNING", "restart: a running job is still RUNNING")
n2.sync()
pt.check(len(n2.find(job2)) == 1, "restart: the agent keeps its task (same attempt)",
         n2.running)
pt.check(all("sleep 1" in n2.desired[a]["command"] for a in n2.find(job2)),
         "restart: the desired task still has its commands", n2.desired)
n2.exit(n2.find(job2)[0], 0)
n2.settle()
pt.check(jt.state(c, job2) == "SUCCEEDED", "restart: the job completes after the restart")

pt.done()
