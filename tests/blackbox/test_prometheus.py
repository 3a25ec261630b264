#!/usr/bin/env python3
"""test_prometheus.py - a real Prometheus (Debian's, scripts/deps.sh
--prometheus) with the shipped configuration (deploy/prometheus/) against a
`pai up` cluster, on loopback.

Prometheus finds the agents through the server's service discovery
(GET /api/v2/metrics/targets, with an admin's application token), scrapes
them and the server, and evaluates the shipped rules.  A job declaring a
simulated load (PAI_SIM_GPU_UTIL=80) must come back from
/api/v1/query as task_gpu_percent with OpenPAI's labels, `up` must be 1
for every agent and for the server, and the shipped PaiJobGpuIdle rule
(its window shortened from 30 minutes to seconds) must fire for a job that
holds a GPU without using it, and only for that one; the server, started
with prometheus_url, returns that alert from GET /api/v2/alerts to admins
and to the job's owner, not to another user.  Then a third agent whose
NVML (the fake driver, tests/unit/fake_nvml.c) loses GPU 1 must fire the
shipped GpuLost and NodeGpuCountChanged rules for that node only.

Only the copies of the configuration in a temporary folder are changed:
the server's address, the token file, shorter intervals and "for" times."""

import atexit
import json
import os
import re
import shutil
import time
import urllib.parse
import urllib.request

import paitest as pt

PROM = shutil.which("prometheus")
if not PROM:
    pt.skip("prometheus answers queries about a pai up cluster",
            "prometheus is not installed (scripts/deps.sh --prometheus)")
    pt.done()

D = pt.tmpdir("pai-prom-")
os.chmod(D, 0o755)
data = os.path.join(D, "pai")
port = pt.free_port()
prom_port = pt.free_port()
PROM_URL = "http://127.0.0.1:%d" % prom_port
# the server reads its options from PAI_* too: GET /api/v2/alerts asks this Prometheus
env = dict(os.environ, PAI_PROMETHEUS_URL=PROM_URL)
up = pt.Proc([pt.PAI_BIN, "up", "--data-dir", data, "--port", str(port), "--nodes", "2",
              "--gpus", "4"], os.path.join(D, "up.log"), env)
up.spawn()
deadline = time.time() + 90
while time.time() < deadline and "pai is up" not in up.log() and up.alive():
    time.sleep(0.2)
if "pai is up" not in up.log():
    pt.not_ok("pai up starts", up.log()[-3000:])
    pt.done()
srv_url = "http://127.0.0.1:%d" % port
with open(os.path.join(data, "admin.password")) as f:
    pw = f.read().strip()
st, b = pt.Client(srv_url).post("/api/v2/authn/basic/login", {"username": "admin", "password": pw})
c = pt.Client(srv_url, b.get("token") if st == 200 else None)
st, b = c.post("/api/v2/tokens/application")
pt.check(st == 200 and b.get("token"), "an admin's application token for Prometheus", (st, b))
with open(os.path.join(D, "pai.token"), "w") as f:
    f.write(b.get("token", "") if isinstance(b, dict) else "")

# ---- the jobs ------------------------------------------------------------------------


def job(name, command, instances, gpu):
    return "\n".join([
        "protocolVersion: 2", "name: %s" % name, "type: job",
        "prerequisites:", "  - {type: dockerimage, name: img, uri: busybox}",
        "taskRoles:", "  worker:", "    instances: %d" % instances, "    dockerImage: img",
        "    resourcePerInstance: {gpu: %d, cpu: 1, memoryMB: 128}" % gpu,
        "    commands:", "      - %s" % json.dumps(command)]) + "\n"


def user(name):
    st, b = c.post("/api/v2/users", {"username": name, "password": "pw-%s-123" % name,
                                     "admin": False, "virtualCluster": ["default"]})
    pt.check(st == 201, "user %s created" % name, (st, b))
    st, b = pt.Client(srv_url).post("/api/v2/authn/basic/login",
                                    {"username": name, "password": "pw-%s-123" % name})
    return pt.Client(srv_url, b.get("token") if st == 200 else None)


carol, dave = user("carol"), user("dave")
# (full job name, client that submits it, command, instances)
JOBS = (("admin~busy", c, "export PAI_SIM_GPU_UTIL=80; sleep 600", 2),
        ("carol~idle", carol, "sleep 600", 1))


def stop_jobs():
    """Stop the jobs before pai up: a stopped agent leaves its tasks running."""
    for name, _, _, _ in JOBS:
        c.put("/api/v2/jobs/%s/executionType" % name, {"value": "STOP"})
    deadline = time.time() + 60
    while time.time() < deadline:
        states = [c.get("/api/v2/jobs/" + n)[1].get("jobStatus", {}).get("state")
                  for n, _, _, _ in JOBS]
        if all(s in ("STOPPED", "FAILED", "SUCCEEDED", None) for s in states):
            return
        time.sleep(0.3)


atexit.register(stop_jobs)  # runs before paitest's cleanup stops pai up
for name, who, cmd, n in JOBS:
    st, b = who.request("POST", "/api/v2/jobs", raw=job(name.split("~")[1], cmd, n, 1),
                        content_type="text/yaml")
    pt.check(st == 202, "job %s submitted" % name, (st, b))

# ---- Prometheus with the shipped configuration --------------------------------------
REPO_DEPLOY = os.path.join(pt.REPO, "deploy", "prometheus")
with open(os.path.join(REPO_DEPLOY, "prometheus.yml")) as f:
    cfg = f.read()
pt.check(cfg.count("127.0.0.1:9186") == 2 and "credentials_file: pai.token" in cfg,
         "the shipped prometheus.yml names the server twice and reads pai.token", cfg)
cfg = (cfg.replace("127.0.0.1:9186", "127.0.0.1:%d" % port)
       .replace("scrape_interval: 15s", "scrape_interval: 1s")
       .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
       .replace("refresh_interval: 30s", "refresh_interval: 2s"))
with open(os.path.join(D, "prometheus.yml"), "w") as f:
    f.write(cfg)
with open(os.path.join(REPO_DEPLOY, "rules.yml")) as f:
    rules = f.read()
idle_expr = "avg_over_time(task_gpu_percent[30m])) < 10\n        for: 5m"
pt.check(idle_expr in rules, "the shipped rules have PaiJobGpuIdle over 30 minutes", rules)
# the test's copy: the idle window in seconds, every rule's "for" 1 s
rules = rules.replace(idle_expr, "avg_over_time(task_gpu_percent[15s])) < 10\n        for: 2s")
with open(os.path.join(D, "rules.yml"), "w") as f:
    f.write(re.sub(r"for: \d+m\b", "for: 1s", rules))

prom = pt.Proc([PROM, "--config.file=" + os.path.join(D, "prometheus.yml"),
                "--storage.tsdb.path=" + os.path.join(D, "tsdb"),
                "--web.listen-address=127.0.0.1:%d" % prom_port, "--log.level=warn"],
               os.path.join(D, "prometheus.log"))
prom.spawn()


def query(q):
    url = PROM_URL + "/api/v1/query?" + urllib.parse.urlencode({"query": q})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
    except OSError:
        return None
    return body["data"]["result"] if body.get("status") == "success" else None


def poll(q, pred, timeout=60):
    deadline = time.time() + timeout
    res = None
    while time.time() < deadline:
        res = query(q)
        if res is not None and pred(res):
            return res
        time.sleep(0.5)
    return res


ready = poll("up", lambda r: True, timeout=30)
pt.check(ready is not None, "Prometheus starts on loopback with the shipped configuration",
         prom.log()[-3000:])

st, nodes = c.get("/api/v2/cluster/nodes")
names = sorted(n["metadata"]["name"] for n in nodes.get("items", [])) if st == 200 else []
up_agents = poll('up{job="pai-agents"}',
                 lambda r: sorted(s["metric"].get("node_name", "") for s in r) == names
                 and all(s["value"][1] == "1" for s in r))
pt.check(names and up_agents and sorted(s["metric"].get("node_name") for s in up_agents) == names
         and all(s["value"][1] == "1" for s in up_agents),
         "up is 1 for every agent, found through the server's service discovery", (names, up_agents))
up_srv = poll('up{job="pai-server"}', lambda r: len(r) == 1 and r[0]["value"][1] == "1")
pt.check(up_srv and up_srv[0]["value"][1] == "1", "up is 1 for the server", up_srv)

busy = poll('task_gpu_percent{job_name="admin~busy"}',
            lambda r: len(r) == 2 and all(float(s["value"][1]) > 0 for s in r))
want = {"username": "admin", "job_name": "admin~busy", "role_name": "worker",
        "virtual_cluster": "default", "job": "pai-agents"}
pt.check(busy and len(busy) == 2 and all(all(s["metric"].get(k) == v for k, v in want.items())
                                         for s in busy),
         "task_gpu_percent of the busy job's tasks, with OpenPAI's labels", busy)
pt.check(busy and sorted(s["metric"].get("task_index") for s in busy) == ["0", "1"]
         and all(re.match(r"^\d$", s["metric"].get("minor_number", "")) for s in busy)
         and all(s["metric"].get("node_name") in names for s in busy),
         "task_gpu_percent: task_index, minor_number and the target's node_name", busy)
pt.check(busy and all(74 <= float(s["value"][1]) <= 86 for s in busy),
         "task_gpu_percent: the declared 80% load", busy)
cluster = poll("sum(configured_gpu_count)", lambda r: r and r[0]["value"][1] == "8")
pt.check(cluster and cluster[0]["value"][1] == "8", "configured_gpu_count sums to the cluster's 8 GPUs",
         cluster)

firing = poll('ALERTS{alertname="PaiJobGpuIdle",alertstate="firing"}',
              lambda r: any(s["metric"].get("job_name") == "carol~idle" for s in r), timeout=90)
jobs_firing = sorted(s["metric"].get("job_name") for s in firing or [])
pt.check(jobs_firing == ["carol~idle"],
         "the shipped PaiJobGpuIdle rule fires for the job holding an idle GPU, not the busy one",
         firing)

# ---- GET /api/v2/alerts: the same alert, through pai ---------------------------------


def idle_alerts(client):
    st, b = client.get("/api/v2/alerts")
    if st != 200 or not isinstance(b, list):
        return st, b, []
    return st, b, [a for a in b if a.get("labels", {}).get("alertname") == "PaiJobGpuIdle"]


st, b, mine = idle_alerts(c)
pt.check(st == 200 and [a["labels"].get("job_name") for a in mine] == ["carol~idle"]
         and all(a.get("state") == "firing" for a in b),
         "GET /api/v2/alerts (admin): the firing PaiJobGpuIdle of carol's job", (st, b))
st, b, mine = idle_alerts(carol)
pt.check(st == 200 and [a["labels"].get("job_name") for a in mine] == ["carol~idle"]
         and all(a["labels"].get("username") == "carol" for a in b),
         "GET /api/v2/alerts (carol): her job's alert, and only her jobs' alerts", (st, b))
st, b, mine = idle_alerts(dave)
pt.check(st == 200 and b == [], "GET /api/v2/alerts (dave): none of another user's alerts", (st, b))
st, _ = pt.Client(srv_url).get("/api/v2/alerts")
pt.check(st == 401, "GET /api/v2/alerts without a token: 401", st)

# ---- a GPU lost: the fake NVML driver loses GPU 1 of a third node -------------------
fake = os.path.join(pt.REPO, os.environ.get("PAI_BUILD", "build"), "tests", "libfakenvml.so")
with open(os.path.join(data, "agent.token")) as f:
    join = f.read().strip()
gpu_node = pt.Proc([pt.PAI_BIN, "agent", "--server", srv_url, "--name", "fake-gpu",
                    "--gpu-backend", "nvml", "--work-dir", os.path.join(D, "fake-gpu")],
                   os.path.join(D, "fake-gpu.log"),
                   dict(os.environ, PAI_NVML_LIB=fake, FAKE_NVML_LOST="1", PAI_AGENT_TOKEN=join))
gpu_node.spawn()
lost = poll('ALERTS{alertname="GpuLost",alertstate="firing"}',
            lambda r: any(s["metric"].get("node_name") == "fake-gpu" for s in r), timeout=60)
pt.check(lost and [(s["metric"].get("node_name"), s["metric"].get("minor_number")) for s in lost]
         == [("fake-gpu", "1")],
         "the shipped GpuLost rule fires for the lost GPU (fake NVML), and only for it", lost)
changed = poll('ALERTS{alertname="NodeGpuCountChanged",alertstate="firing"}',
               lambda r: any(s["metric"].get("node_name") == "fake-gpu" for s in r), timeout=30)
pt.check(changed and [s["metric"].get("node_name") for s in changed] == ["fake-gpu"],
         "the shipped NodeGpuCountChanged rule fires for that node: 1 of 2 GPUs answers", changed)
util = query('gpu_utilization{node_name="fake-gpu"}') or []
pt.check([(s["metric"].get("minor_number"), s["value"][1]) for s in util] == [("0", "40")],
         "the node's GPU 0 reports NVML's 40% (the fake driver's), GPU 1 no series", util)
gpu_node.stop()

prom.stop()
stop_jobs()
up.stop(timeout=60)
pt.done()
