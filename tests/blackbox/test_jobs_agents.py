"""test_jobs_agents.py - jobs end to end with real `pai agent`s (process
runtime, simulated GPUs) on loopback: a single task and its logs through the
server, a two-role job whose worker reaches the ps through PAI_HOST_IP_* and
PAI_PORT_LIST_*, an exit code, and a stop."""

import time

import jobstest as jt
import paitest as pt

srv = pt.start_server(extra_args=["--node-lost-timeout-s", "10"])
c = srv.client(srv.admin_token)


def start_agent(name):
    d = pt.tmpdir("pai-agent-%s-" % name)
    argv = [pt.PAI_BIN, "agent", "--server", srv.url, "--name", name, "--token",
            srv.agent_token, "--runtime", "process", "--gpus", "2", "--wait-ms", "2000",
            "--cpus", "8", "--memory-mb", "8192", "--work-dir", d]
    p = pt.Proc(argv, d + "/agent.log")
    p.spawn()
    return p


agents = [start_agent("e2e%d" % i) for i in range(2)]


def wait_nodes(n, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, b = c.get("/api/v2/cluster/nodes")
        if st == 200 and sum(1 for x in b["items"]
                             if x["status"]["conditions"][0]["status"] == "True") >= n:
            return True
        time.sleep(0.1)
    return False


pt.check(wait_nodes(2), "two agents registered")


def run(name, roles, timeout=30, states=("SUCCEEDED", "FAILED", "STOPPED")):
    st, b = jt.submit(c, jt.job_yaml(name, roles))
    pt.check(st == 202, "%s: submitted" % name, (st, b))
    return jt.wait_state(c, "admin~" + name, states, timeout)


d = run("hello", [{"name": "main", "command": "echo hello-from-$PAI_TASK_ROLE_NAME"}])
pt.check(d and d["jobStatus"]["state"] == "SUCCEEDED", "hello: SUCCEEDED", d and d["jobStatus"])
base = "/api/v2/jobs/admin~hello/attempts/0/taskRoles/main/taskIndex/0/attempts/0/logs"
st, lg = c.get(base + "/stdout")
pt.check(st == 200 and isinstance(lg, str) and "hello-from-main" in lg,
         "hello: stdout through the server's log endpoint", (st, lg))
st, lg = c.get(base + "/all?tailMode=true")
pt.check(st == 200 and "hello-from-main" in str(lg), "hello: tail of all", (st, lg))

PS = ("python3 -c \"import os,socket; s=socket.socket(); "
      "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
      "s.bind(('0.0.0.0', int(os.environ['PAI_CONTAINER_HOST_http_PORT_LIST']))); s.listen(1); "
      "c,_=s.accept(); c.sendall(b'pong'); c.close()\"")
WORKER = ("python3 -c \"import os,socket,time\n"
          "for i in range(300):\n"
          "  try:\n"
          "    s=socket.create_connection((os.environ['PAI_HOST_IP_ps_0'], "
          "int(os.environ['PAI_PORT_LIST_ps_0_http']))); break\n"
          "  except OSError: time.sleep(0.05)\n"
          "assert s.recv(4)==b'pong'\"")
d = run("pingpong", [{"name": "ps", "command": PS}, {"name": "worker", "command": WORKER}])
pt.check(d and d["jobStatus"]["state"] == "SUCCEEDED",
         "two roles: the worker reached the ps through PAI_HOST_IP/PAI_PORT_LIST",
         d and (d["jobStatus"], d["taskRoles"]))

d = run("exit3", [{"name": "main", "command": "exit 3"}])
pt.check(d and d["jobStatus"]["state"] == "FAILED" and d["jobStatus"]["appExitCode"] == 3,
         "exit 3: FAILED with exit code 3", d and d["jobStatus"])

d = run("gpu", [{"name": "main", "gpu": 1,
                 "command": "test \"$CUDA_VISIBLE_DEVICES\" = 0 -o \"$CUDA_VISIBLE_DEVICES\" = 1"}])
pt.check(d and d["jobStatus"]["state"] == "SUCCEEDED", "gpu: the task sees its GPU",
         d and d["jobStatus"])

# The launch time is when the agent started the task (its started_ms), not
# when its report arrived (the agent holds a start ~30 ms to send it with a
# short task's end): the task's first instruction comes after it, and a
# short task whose start and end came in one report has one too.
for name, cmd in (("stamp", "echo $EPOCHREALTIME"), ("stamp2", "echo $EPOCHREALTIME; sleep 0.5")):
    d = run(name, [{"name": "main", "command": cmd}])
    st, lg = c.get("/api/v2/jobs/admin~%s/attempts/0/taskRoles/main/taskIndex/0/attempts/0"
                   "/logs/stdout" % name)
    ts = d and d["taskRoles"]["main"]["taskStatuses"][0]
    try:
        first_ms = float(str(lg).split()[0]) * 1000
    except (ValueError, IndexError):
        first_ms = None
    launched = ts and ts.get("launchedTime")
    pt.check(d and d["jobStatus"]["state"] == "SUCCEEDED" and first_ms and launched and
             first_ms - 5000 <= launched <= first_ms + 1 and
             d["jobStatus"]["appLaunchedTime"] == launched,
             "%s: launchedTime is the task's start, before its first instruction" % name,
             (launched, first_ms, ts))

st, b = jt.submit(c, jt.job_yaml("long", [{"name": "main", "command": "sleep 300"}]))
d = jt.wait_state(c, "admin~long", "RUNNING", 20)
deadline = time.time() + 20
while time.time() < deadline:
    d = c.get("/api/v2/jobs/admin~long")[1]
    if d["taskRoles"]["main"]["taskStatuses"][0]["taskState"] == "RUNNING":
        break
    time.sleep(0.1)
c.put("/api/v2/jobs/admin~long/executionType", {"value": "STOP"})
d = jt.wait_state(c, "admin~long", "STOPPED", 30)
pt.check(d and d["jobStatus"]["state"] == "STOPPED", "stop: a running task is killed, STOPPED",
         d and d["jobStatus"])

for a in agents:
    a.stop()
pt.done()
