#!/usr/bin/env python3
"""mockserver.py - an in-memory stand-in for `pai server`, for portal work.

Serves web/ from disk (edit and reload, no rebuild) plus the subset of the
REST API v2 the portal calls, with made-up nodes and jobs that move from
WAITING to RUNNING to SUCCEEDED over a few seconds.  Used by bench/portal to
seed 10,000 jobs without scheduling them, and by developers; the browser
tests themselves run against a real cluster (tests/suites/portal.sh).

  python3 tests/browser/mockserver.py [--port N] [--jobs N]
Prints "listening on http://127.0.0.1:PORT" once ready.
"""
import argparse
import json
import os
import re
import secrets
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    import yaml  # python3-yaml, when present
except ImportError:  # pragma: no cover
    yaml = None

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "web")
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml"}
LOCK = threading.Lock()
STATE = {
    "users": {"admin": {"username": "admin", "password": "admin-pass", "admin": True, "email": "",
                        "virtualCluster": ["default"], "grouplist": ["admingroup"], "extension": {}}},
    "groups": {"admingroup": {"groupname": "admingroup", "description": "admins", "externalName": "admingroup",
                              "extension": {"acls": {"admin": True, "virtualClusters": ["default"]}}}},
    "tokens": {},  # token -> (user, application)
    "vcs": {"default": 8},
    "jobs": {},  # "user~name" -> job
}
NODES = [{"name": f"node{i}", "ip": f"127.0.0.{i + 1}", "gpuModel": "SimGPU-80G", "gpuTotal": 4}
         for i in range(4)]


def now_ms():
    return int(time.time() * 1000)


def job_state(j):
    if j["stopped"]:
        return "STOPPED"
    age = now_ms() - j["submissionTime"]
    if j.get("seeded"):
        return j["seeded"]
    if age < 1500:
        return "WAITING"
    if age < j["runMs"]:
        return "RUNNING"
    return "SUCCEEDED"


def summary(j):
    st = job_state(j)
    done = st in ("SUCCEEDED", "STOPPED", "FAILED")
    return {"name": j["name"], "username": j["username"], "state": st, "subState": st,
            "executionType": "STOP" if j["stopped"] else "START", "tags": j["tags"], "retries": 0,
            "submissionTime": j["submissionTime"], "createdTime": j["submissionTime"],
            "launchedTime": None if st == "WAITING" else j["submissionTime"] + 1500,
            "completedTime": (j.get("stoppedAt") or j["submissionTime"] + j["runMs"]) if done else None,
            "appExitCode": 0 if st == "SUCCEEDED" else (-210 if st == "STOPPED" else None),
            "virtualCluster": j["vc"], "totalGpuNumber": j["gpus"], "totalTaskNumber": j["tasks"],
            "totalTaskRoleNumber": len(j["roles"])}


def detail(j):
    s = summary(j)
    roles = {}
    n = 0
    for role, inst in j["roles"].items():
        ts = []
        for i in range(inst):
            ts.append({"taskIndex": i, "taskState": s["state"], "attemptId": 0, "retries": 0,
                       "containerIp": NODES[n % 4]["ip"], "containerNodeName": NODES[n % 4]["name"],
                       "containerPorts": {"ssh": 20000 + n}, "containerGpus": "0",
                       "containerExitCode": s["appExitCode"],
                       "launchedTime": s["launchedTime"], "completedTime": s["completedTime"]})
            n += 1
        roles[role] = {"taskRoleStatus": {"name": role}, "taskStatuses": ts}
    js = dict(s)
    js.update({"attemptId": 0, "appExitSpec": {"code": 0, "phrase": "Succeeded", "reason": "", "solution": []}
               if s["appExitCode"] == 0 else None})
    return {"name": j["name"], "tags": j["tags"], "jobStatus": js, "taskRoles": roles}


def parse_job(text):
    if yaml:
        doc = yaml.safe_load(text)
    else:
        m = re.search(r"^name:\s*(\S+)", text, re.M)
        doc = {"name": m.group(1) if m else "", "taskRoles": {"taskrole": {"instances": 1}}}
    roles = {k: int(v.get("instances", 1)) for k, v in (doc.get("taskRoles") or {}).items()}
    gpus = sum(int((v.get("resourcePerInstance") or {}).get("gpu", 0)) * int(v.get("instances", 1))
               for v in (doc.get("taskRoles") or {}).values())
    return doc, roles, gpus


def seed(count):
    t = now_ms() - count * 1000
    states = ["SUCCEEDED", "FAILED", "STOPPED", "RUNNING", "WAITING"]
    for i in range(count):
        name = f"seed_{i:05d}"
        STATE["jobs"][f"admin~{name}"] = {
            "name": name, "username": "admin", "vc": "default", "tags": [], "stopped": False,
            "submissionTime": t + i * 1000, "runMs": 60000, "roles": {"worker": 1}, "gpus": 1, "tasks": 1,
            "config": f"protocolVersion: 2\nname: {name}\n", "seeded": states[i % 5]}



def mock_history(p):
    """A made-up hour of the server's metrics history (docs/api.md), 15 s apart."""
    t1 = now_ms()
    ts = [t1 - 15000 * k for k in range(240, -1, -1)]
    wave = [(k // 20) % 3 for k in range(len(ts))]
    total = 4 * len(NODES)
    if p != "/api/v2/cluster/metrics-history":
        return {"intervalSeconds": 15, "capacity": 5760, "job": p.split("/")[4], "timestamps": ts,
                "gpus": [1 + w for w in wave], "utilization": [40 + 10 * w for w in wave]}
    return {"intervalSeconds": 15, "capacity": 5760, "timestamps": ts,
            "cluster": {"gpusTotal": [total] * len(ts), "gpusUsed": [2 * w for w in wave]},
            "virtualClusters": {"default": {"usedGpus": [2 * w for w in wave], "guaranteedGpus": [total] * len(ts)}},
            "nodes": {n["name"]: {"usedGpus": wave, "utilization": [30 + 10 * w for w in wave]} for n in NODES}}

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, ctype="application/json"):
        data = body if isinstance(body, bytes) else (
            json.dumps(body).encode() if ctype == "application/json" else body.encode())
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def err(self, status, code, msg):
        self.reply(status, {"code": code, "message": msg})

    def body(self):
        return self._body

    def who(self):
        auth = self.headers.get("Authorization", "")
        tok = auth[7:] if auth.startswith("Bearer ") else ""
        user = STATE["tokens"].get(tok)
        return (user[0], STATE["users"].get(user[0], {}).get("admin", False), tok) if user else (None, False, tok)

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_PUT(self):
        self.route("PUT")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        url = urllib.parse.urlsplit(self.path)
        path, q = url.path, dict(urllib.parse.parse_qsl(url.query))
        n = int(self.headers.get("Content-Length") or 0)
        self._body = self.rfile.read(n).decode() if n else ""
        if method == "GET" and (path == "/" or path.startswith("/portal/")):
            return self.static(path)
        if path == "/api/v2/authn/basic/login" and method == "POST":
            f = dict(urllib.parse.parse_qsl(self.body()))
            u = STATE["users"].get(f.get("username", ""))
            if not u or u["password"] != f.get("password"):
                return self.err(400, "IncorrectPasswordError", "incorrect username or password")
            tok = secrets.token_hex(16)
            STATE["tokens"][tok] = (u["username"], False)
            return self.reply(200, {"token": tok, "user": u["username"], "admin": u["admin"]})
        user, admin, tok = self.who()
        if not user:
            return self.err(401, "UnauthorizedUserError", "authentication required")
        with LOCK:
            return self.api(method, path, q, user, admin, tok)

    def static(self, path):
        rel = "index.html" if path == "/" else path[len("/portal/"):]
        full = os.path.normpath(os.path.join(ROOT, rel))
        if not full.startswith(os.path.normpath(ROOT)) or not os.path.isfile(full):
            return self.err(404, "NotFoundError", "no such file")
        with open(full, "rb") as fh:
            self.reply(200, fh.read(), TYPES.get(os.path.splitext(full)[1], "application/octet-stream"))

    def admin_only(self, admin):
        if not admin:
            self.err(403, "ForbiddenUserError", "admin only")
            return True
        return False

    def api(self, method, path, q, user, admin, tok):
        p = path.rstrip("/")
        if p == "/api/v2/authn/basic/logout":
            STATE["tokens"].pop(tok, None)
            return self.reply(200, {"message": "Logout successfully"})
        if p == "/metrics":
            lines = [f'pai_cluster_gpus{{use="total"}} {4 * len(NODES)}', f'pai_cluster_gpus{{use="used"}} {sum(j["gpus"] for j in STATE["jobs"].values() if not j.get("seeded") and job_state(j) == "RUNNING")}']
            lines += [f'nvidiasmi_utilization_gpu{{instance="{n["name"]}",minor_number="0"}} {30 + 10 * i + (time.time() % 20):.1f}'
                     for i, n in enumerate(NODES)]
            for j in STATE["jobs"].values():
                if not j.get("seeded") and job_state(j) == "RUNNING":
                    lines.append(f'task_gpu_percent{{job_name="{j["username"]}~{j["name"]}",minor_number="0"}} {50 + time.time() % 30:.1f}')
            return self.reply(200, "\n".join(lines) + "\n", "text/plain; version=0.0.4")
        if p == "/api/v2/tokens":
            return self.reply(200, {"tokens": [t for t, (u, _) in STATE["tokens"].items() if u == user]})
        if p == "/api/v2/tokens/application" and method == "POST":
            t = secrets.token_hex(16)
            STATE["tokens"][t] = (user, True)
            return self.reply(200, {"token": t, "application": True})
        m = re.fullmatch(r"/api/v2/tokens/(.+)", p)
        if m and method == "DELETE":
            STATE["tokens"].pop(urllib.parse.unquote(m.group(1)), None)
            return self.reply(200, {"message": "revoke successfully"})
        if p.startswith("/api/v2/users") or p.startswith("/api/v2/groups"):
            return self.users_api(method, p, user, admin)
        if p.startswith("/api/v2/virtual-clusters"):
            return self.vcs_api(method, p, admin)
        if p == "/api/v2/cluster/nodes":
            used = sum(summary(j)["totalGpuNumber"] for j in STATE["jobs"].values()
                       if not j.get("seeded") and job_state(j) == "RUNNING")
            items = []
            for n in NODES:  # Kubernetes' NodeList shape, as pai answers (docs/api.md)
                u = min(n["gpuTotal"], used)
                used -= u
                items.append({"metadata": {"name": n["name"], "labels": {"pai/sku": n["gpuModel"], "pai/vc": "default"}},
                              "status": {"addresses": [{"type": "InternalIP", "address": n["ip"]}],
                                         "capacity": {"cpu": 8, "memory": "16384Mi", "nvidia.com/gpu": n["gpuTotal"]},
                                         "conditions": [{"type": "Ready", "status": "True"}]},
                              "pai": {"usedGpus": u}})
            return self.reply(200, {"kind": "NodeList", "apiVersion": "v1", "items": items})
        if p == "/api/v2/cluster/metrics-history" or p.endswith("/metrics-history"):
            return self.reply(200, mock_history(p))
        if p.startswith("/api/v2/mock-logs/"):
            stream = p.rsplit("/", 1)[1]
            lines = [f"{stream} line {i}: training step {i}" for i in range(int(time.time()) % 50 + 20)]
            return self.reply(200, "\n".join(lines) + "\n", "text/plain; charset=utf-8")
        if p.startswith("/api/v2/jobs"):
            return self.jobs_api(method, p, q, user, admin)
        return self.err(404, "NoApiError", "no such API")

    def users_api(self, method, p, user, admin):
        users, groups = STATE["users"], STATE["groups"]
        pub = lambda u: {k: v for k, v in u.items() if k != "password"}  # noqa: E731
        if p == "/api/v2/users" and method == "GET":
            return self.reply(200, [pub(u) for u in users.values()])
        if p == "/api/v2/users" and method == "POST":
            if self.admin_only(admin):
                return
            b = json.loads(self.body())
            if b["username"] in users:
                return self.err(409, "ConflictUserError", "user exists")
            users[b["username"]] = {"username": b["username"], "password": b["password"], "admin": bool(b.get("admin")),
                                    "email": b.get("email", ""), "virtualCluster": b.get("virtualCluster", []),
                                    "grouplist": [], "extension": {}}
            return self.reply(201, {"message": "User is created successfully"})
        if p == "/api/v2/users" and method == "PUT":
            if self.admin_only(admin):
                return
            d = json.loads(self.body())["data"]
            users[d["username"]].update({k: v for k, v in d.items() if k != "username"})
            return self.reply(201, {"message": "updated"})
        if p == "/api/v2/users/me" and method == "PUT":
            d = json.loads(self.body())["data"]
            if d.get("newPassword"):
                if d.get("oldPassword") != users[user]["password"]:
                    return self.err(400, "IncorrectPasswordError", "wrong password")
                users[user]["password"] = d["newPassword"]
            return self.reply(201, {"message": "updated"})
        m = re.fullmatch(r"/api/v2/users/([^/]+)(/grouplist)?", p)
        if m:
            name = urllib.parse.unquote(m.group(1))
            if name not in users:
                return self.err(404, "NoUserError", "no such user")
            if m.group(2) and method == "PUT":
                if self.admin_only(admin):
                    return
                users[name]["grouplist"] = json.loads(self.body())["grouplist"]
                return self.reply(201, {"message": "ok"})
            if method == "GET":
                return self.reply(200, pub(users[name]))
            if method == "DELETE":
                if self.admin_only(admin):
                    return
                del users[name]
                return self.reply(200, {"message": "user is removed successfully"})
        if p == "/api/v2/groups" and method == "GET":
            return self.reply(200, list(groups.values()))
        if p == "/api/v2/groups" and method in ("POST", "PUT"):
            if self.admin_only(admin):
                return
            b = json.loads(self.body())
            b = b.get("data", b)
            groups[b["groupname"]] = dict(groups.get(b["groupname"], {}), **b)
            return self.reply(201, {"message": "ok"})
        m = re.fullmatch(r"/api/v2/groups/([^/]+)", p)
        if m and method == "DELETE":
            if self.admin_only(admin):
                return
            groups.pop(urllib.parse.unquote(m.group(1)), None)
            return self.reply(200, {"message": "ok"})
        return self.err(404, "NoApiError", "no such API")

    def vcs_api(self, method, p, admin):
        vcs = STATE["vcs"]
        total = sum(n["gpuTotal"] for n in NODES)
        if p == "/api/v2/virtual-clusters" and method == "GET":
            out = {}
            for name, g in vcs.items():
                used = sum(j["gpus"] for j in STATE["jobs"].values()
                           if j["vc"] == name and not j.get("seeded") and job_state(j) == "RUNNING")
                out[name] = {"capacity": 100.0 * g / total, "usedCapacity": 100.0 * used / total, "maxCapacity": 100,
                             "resourcesUsed": {"GPUs": used}, "resourcesGuaranteed": {"GPUs": g},
                             "resourcesTotal": {"GPUs": g}}
            return self.reply(200, out)
        m = re.fullmatch(r"/api/v2/virtual-clusters/([^/]+)", p)
        if m and method in ("PUT", "DELETE"):
            if self.admin_only(admin):
                return
            name = urllib.parse.unquote(m.group(1))
            if method == "PUT":  # {"virtualCells": [{"cellType", "cellNumber"}]}, 4 GPUs a cell
                cells = json.loads(self.body()).get("virtualCells") or [{}]
                vcs[name] = 4 * int(cells[0].get("cellNumber", 0))
            else:
                vcs.pop(name, None)
            return self.reply(200, {"message": "ok"})
        return self.err(404, "NoApiError", "no such API")

    def jobs_api(self, method, p, q, user, admin):
        jobs = STATE["jobs"]
        if p == "/api/v2/jobs" and method == "POST":
            doc, roles, gpus = parse_job(self.body())
            key = f"{user}~{doc['name']}"
            if key in jobs:
                return self.err(409, "ConflictJobError", "job exists")
            jobs[key] = {"name": doc["name"], "username": user, "vc": (doc.get("defaults") or {}).get("virtualCluster", "default"),
                         "tags": [], "stopped": False, "submissionTime": now_ms(),
                         "runMs": 600000 if "sleep 600" in self.body() else 20000, "roles": roles,
                         "gpus": gpus, "tasks": sum(roles.values()), "config": yaml.safe_dump(doc) if yaml else ""}
            return self.reply(202, {"message": f"update job {doc['name']} successfully"})
        if p == "/api/v2/jobs" and method == "GET":
            return self.list_jobs(q)
        m = re.fullmatch(r"/api/v2/jobs/([^/~]+)~([^/]+)(/.*)?", p)
        if not m:
            return self.err(404, "NoApiError", "no such API")
        key = f"{urllib.parse.unquote(m.group(1))}~{urllib.parse.unquote(m.group(2))}"
        rest = m.group(3) or ""
        j = jobs.get(key)
        if not j:
            return self.err(404, "NoJobError", "no such job")
        if rest == "" and method == "GET":
            return self.reply(200, detail(j))
        if rest == "" and method == "DELETE":
            del jobs[key]
            return self.reply(200, {"message": "deleted"})
        if rest == "/config":
            return self.reply(200, j["config"], "text/yaml")
        if rest == "/executionType" and method == "PUT":
            if job_state(j) in ("WAITING", "RUNNING"):
                j["stopped"] = True
                j["stoppedAt"] = now_ms()
            return self.reply(202, {"message": "ok"})
        if rest == "/tag":
            v = json.loads(self.body())["value"]
            if method == "PUT" and v not in j["tags"]:
                j["tags"].append(v)
            elif method == "DELETE" and v in j["tags"]:
                j["tags"].remove(v)
            return self.reply(200, {"message": "ok"})
        if rest == "/events":
            return self.reply(200, {"totalCount": 0, "data": []})
        if rest == "/job-attempts":
            s = summary(j)
            return self.reply(200, [{"attemptIndex": 0, "attemptState": s["state"], "appCreatedTime": s["createdTime"],
                                     "appCompletedTime": s["completedTime"], "appExitCode": s["appExitCode"]}])
        lm = re.fullmatch(r"/attempts/\d+/taskRoles/([^/]+)/taskIndex/(\d+)/attempts/(\d+)/logs", rest)
        if lm:
            base = f"/api/v2/mock-logs/{key}/{lm.group(1)}/{lm.group(2)}"
            return self.reply(200, {"locations": [{"name": "stdout", "uri": base + "/stdout"},
                                                  {"name": "stderr", "uri": base + "/stderr"}]})
        return self.err(404, "NoApiError", "no such API")

    def list_jobs(self, q):
        js = [summary(j) for j in STATE["jobs"].values()]
        for k, f in (("username", "username"), ("vc", "virtualCluster"), ("state", "state")):
            if q.get(k):
                js = [x for x in js if x[f] == q[k]]
        if q.get("keyword"):
            kw = q["keyword"]
            js = [x for x in js if kw in x["name"] or kw in x["username"] or kw in x["virtualCluster"]]
        if q.get("tagsContain"):
            tags = set(q["tagsContain"].split(","))
            js = [x for x in js if tags & set(x["tags"])]
        field, _, direction = q.get("order", "submissionTime,DESC").partition(",")
        keymap = {"jobName": "name", "vc": "virtualCluster", "completionTime": "completedTime"}
        fk = keymap.get(field, field)
        js.sort(key=lambda x: (x.get(fk) is None, x.get(fk) or 0) if fk not in ("name", "username", "virtualCluster", "state")
                else x[fk], reverse=direction == "DESC")
        off, lim = int(float(q.get("offset", 0))), int(float(q.get("limit", 5000)))
        page = js[off:off + lim]
        return self.reply(200, {"totalCount": len(js), "data": page} if q.get("withTotalCount") == "true" else page)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=0, help="seed this many finished jobs")
    a = ap.parse_args()
    seed(a.jobs)
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), Handler)
    print(f"listening on http://127.0.0.1:{srv.server_address[1]}", flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
