#!/usr/bin/env python3
"""test_agent_metrics.py - the agents' GET /metrics and the server's
Prometheus service discovery (GET /api/v2/metrics/targets), with real
`pai server` and `pai agent` processes (simulated GPUs) on loopback.

Covers: the targets list (admin only, one group per agent, node_name
label); an agent's exposition without a token (OpenPAI job-exporter names,
HELP/TYPE, configured_gpu_count, gpu_utilization per GPU); a job that
declares PAI_SIM_GPU_UTIL=80 shows task_gpu_percent ~80 for each GPU each
of its tasks holds, with username, job_name, role_name, task_index,
virtual_cluster and minor_number labels, plus task_cpu_percent and
task_mem_usage_byte; the agents report utilization in their sync, so the
server's metrics history shows the GPUs used, not only held
(docs/monitoring.md)."""

import json
import os
import re
import time
import urllib.request

import e2etest as e
import paitest as pt

srv = pt.start_server(extra_args=["--metrics-history-interval-s", "1"])
c = srv.client(srv.admin_token)
agents = [e.agent(srv, "m1"), e.agent(srv, "m2")]
pt.check(len(e.wait_nodes(c, 2)) >= 2, "two agents register as healthy nodes")

# ---- service discovery ------------------------------------------------------------
TARGETS = "/api/v2/metrics/targets"
st, groups = c.get(TARGETS)
pt.check(st == 200 and isinstance(groups, list) and len(groups) == 2,
         "targets: one group per agent", (st, groups))
names = sorted(g.get("labels", {}).get("node_name", "") for g in groups) if st == 200 else []
pt.check(names == ["m1", "m2"], "targets: each group is labelled with its node_name", groups)
ok_shape = st == 200 and all(len(g.get("targets", [])) == 1
                             and re.match(r"^127\.0\.0\.1:\d+$", g["targets"][0])
                             for g in groups)
pt.check(ok_shape, "targets: host:port of the agent's listener, http_sd shaped", groups)
st, _ = srv.client().get(TARGETS)
pt.check(st == 401, "targets: anonymous is refused (401)", st)
user_tok = srv.create_user("mon-user")
st, _ = srv.client(user_tok).get(TARGETS)
pt.check(st == 403, "targets: a non-admin user is refused (403)", st)
st, b = c.post("/api/v2/tokens/application")
app = b.get("token") if st == 200 and isinstance(b, dict) else None
st, g2 = srv.client(app).get(TARGETS)
pt.check(app and st == 200 and g2 == groups,
         "targets: an admin's application token (the one to give Prometheus) is accepted", (st, g2))

by_node = {g["labels"]["node_name"]: g["targets"][0] for g in groups} if ok_shape else {}


def scrape(node):
    with urllib.request.urlopen("http://%s/metrics" % by_node[node], timeout=10) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def series(text, name):
    """[(labels dict, value)] of one metric in an exposition."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^%s(\{(.*)\})? (\S+)$" % re.escape(name), line)
        if m:
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((labels, float(m.group(3))))
    return out


if by_node:
    st, ctype, text = scrape("m1")
    pt.check(st == 200 and ctype.startswith("text/plain") and "version=0.0.4" in ctype,
             "agent /metrics: 200 without a token, Prometheus text 0.0.4", (st, ctype))
    pt.check("# HELP task_gpu_percent how much percent of gpu core this task used" in text
             and "# TYPE task_gpu_percent gauge" in text,
             "agent /metrics: OpenPAI's HELP and TYPE lines", text[:2000])
    pt.check(series(text, "configured_gpu_count") == [({}, 8.0)],
             "agent /metrics: configured_gpu_count 8", series(text, "configured_gpu_count"))
    gu = series(text, "gpu_utilization")
    pt.check(len(gu) == 8 and all(l.get("vender") == "nvidia" and "minor_number" in l for l, _ in gu),
             "agent /metrics: gpu_utilization for each of the 8 GPUs (minor_number, vender)", gu)
    pt.check(len(series(text, "nvidiasmi_ecc_error_count")) == 16
             and len(series(text, "nvidiasmi_temperature")) == 8,
             "agent /metrics: ECC (single, double) and temperature per GPU", text[:3000])

# ---- the shipped rules and dashboards name metrics that exist ------------------
if by_node:
    _, _, text = scrape("m1")
    st, srv_text = srv.client().get("/metrics")
    families = set(re.findall(r"^# HELP (\S+)", text + "\n" + str(srv_text), re.M))
    labels = {"username", "job_name", "role_name", "task_index", "virtual_cluster",
              "minor_number", "node_name", "vender", "type", "vc", "sku", "state", "use"}
    exprs = []
    deploy = os.path.join(pt.REPO, "deploy")
    with open(os.path.join(deploy, "prometheus", "rules.yml")) as f:
        exprs += re.findall(r"^\s*expr: (.*)$", f.read(), re.M)
    for name in sorted(os.listdir(os.path.join(deploy, "grafana"))):
        with open(os.path.join(deploy, "grafana", name)) as f:
            dash = json.load(f)
        exprs += [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
        exprs += [v["definition"] for v in dash["templating"]["list"] if v.get("definition")]
    names = {m for e in exprs for m in re.findall(r"\b((?:task|gpu|nvidiasmi|configured|pai)_\w+)", e)}
    unknown = sorted(n for n in names - families - labels)
    pt.check(len(exprs) > 20 and names and not unknown,
             "deploy/: every metric the rules and dashboards use is exported", unknown)

# ---- a job with simulated load ----------------------------------------------------
JOB = "simload"
st, b = e.submit(c, e.job_yaml(JOB, [e.role("worker", "export PAI_SIM_GPU_UTIL=80; sleep 120",
                                            instances=2, gpu=2, mem=128)]))
pt.check(st == 202, "a 2-task job declaring PAI_SIM_GPU_UTIL=80 is submitted", (st, b))
d = e.wait_state(c, "admin~" + JOB, "RUNNING", timeout=30)
pt.check(e.state(d) == "RUNNING", "the job runs", d.get("jobStatus"))


def job_series(name, ok=lambda v: True, timeout=30):
    """The job's series of `name` over both agents, once every task shows
    with values ok() holds for (samples are taken every 5 s)."""
    deadline = time.time() + timeout
    found = []
    while time.time() < deadline:
        found = []
        for node in by_node:
            _, _, text = scrape(node)
            found += [(l, v) for l, v in series(text, name) if l.get("job_name") == "admin~" + JOB]
        if len({l.get("task_index") for l, _ in found}) == 2 and all(ok(v) for _, v in found):
            return found
        time.sleep(0.5)
    return found


if by_node:
    tg = job_series("task_gpu_percent", lambda v: v > 0)
    want = {"username": "admin", "job_name": "admin~" + JOB, "role_name": "worker",
            "virtual_cluster": "default"}
    pt.check(len(tg) == 4 and all(all(l.get(k) == v for k, v in want.items()) for l, _ in tg),
             "task_gpu_percent: one series per GPU of each task, with OpenPAI's labels", tg)
    pt.check(sorted(l.get("task_index") for l, _ in tg) == ["0", "0", "1", "1"]
             and all(re.match(r"^\d$", l.get("minor_number", "")) for l, _ in tg),
             "task_gpu_percent: task_index and minor_number labels", tg)
    pt.check(tg and all(74 <= v <= 86 for _, v in tg),
             "task_gpu_percent: the declared 80% load (+-5 wave)", tg)
    cpu = job_series("task_cpu_percent")
    mem = job_series("task_mem_usage_byte")
    pt.check(len(cpu) == 2 and all(v >= 0 for _, v in cpu), "task_cpu_percent per task", cpu)
    pt.check(len(mem) == 2 and all(v > 0 for _, v in mem), "task_mem_usage_byte per task", mem)

# ---- utilization reaches the server ---------------------------------------------
deadline = time.time() + 30
util = {}
while time.time() < deadline:
    st, h = c.get("/api/v2/cluster/metrics-history")
    if st == 200:
        util = {n: [v for v in s.get("utilization", []) if v is not None]
                for n, s in h.get("nodes", {}).items()}
        if sum(u[-1] for u in util.values() if u) >= 15:
            break
    time.sleep(0.5)
# 4 of 16 GPUs at ~80%: the nodes' means add up to ~40
pt.check(sum(u[-1] for u in util.values() if u) >= 15,
         "the agents report utilization in their sync: the history shows GPUs used", util)

deadline = time.time() + 30
ju = []
while time.time() < deadline:
    st, h = c.get("/api/v2/jobs/admin~%s/metrics-history" % JOB)
    ju = [v for v in (h.get("utilization", []) if st == 200 else []) if v is not None]
    if ju and 70 <= ju[-1] <= 90:
        break
    time.sleep(0.5)
pt.check(ju and 70 <= ju[-1] <= 90,
         "the job's history shows its GPUs ~80% used (the mean over the GPUs it holds)", ju)

# a stopped agent leaves its tasks running: stop the job first
c.put("/api/v2/jobs/admin~%s/executionType" % JOB, {"value": "STOP"})
d = e.wait_state(c, "admin~" + JOB, "STOPPED", timeout=30)
pt.check(e.state(d) == "STOPPED", "the job stops", d.get("jobStatus"))
for a in agents:
    a.stop()
pt.done()
