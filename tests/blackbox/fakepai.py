"""fakepai.py - a tiny OpenPAI REST v2 server for CLI tests (stdlib only).

It answers the endpoints the `pai` CLI uses with the spec's shapes, keeps
jobs in memory and moves each job one state per GET of its detail:
WAITING -> RUNNING -> SUCCEEDED (FAILED when the job name contains "fail";
a job named "*forever*" stays RUNNING until stopped).  It lets the CLI
tests check error paths (bad token, unknown job, 500s) exactly, without
the real server; tests/blackbox/test_quickstart.py uses the real `pai up`.

    srv = FakePai(); srv.start(); ... srv.url ... srv.stop()
"""
import json
import re
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADMIN_TOKEN = "tok-admin"


def err(code, status, message):
    return status, {"code": code, "message": message}


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.tokens = {ADMIN_TOKEN: "admin"}
        self.users = {"admin": {"username": "admin", "admin": True, "password": "secret",
                                "virtualCluster": ["default"], "email": ""}}
        self.groups = {"default": {"groupname": "default", "description": "all users",
                                   "externalName": "default", "extension": {}}}
        self.jobs = {}
        self.bodies = []  # every job body received, for tests to inspect
        self.next_token = 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    # -- plumbing --
    def reply(self, status, obj, ctype="application/json"):
        data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def who(self):
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return None
        return self.server.state.tokens.get(auth[7:])

    def handle_any(self, method):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        q = dict(urllib.parse.parse_qsl(url.query))
        body = self.body()
        with st.lock:
            if path == "/api/v2/authn/basic/login" and method == "POST":
                status, obj = self.login(st, body)
            else:
                user = self.who()
                if user is None:
                    status, obj = err("UnauthorizedUserError", 401, "Guest is not allowed to do this operation.")
                else:
                    status, obj = self.route(st, method, path, q, body, user)
        if isinstance(obj, tuple):
            self.reply(status, obj[0], obj[1])
        else:
            self.reply(status, obj)

    do_GET = lambda self: self.handle_any("GET")
    do_POST = lambda self: self.handle_any("POST")
    do_PUT = lambda self: self.handle_any("PUT")
    do_DELETE = lambda self: self.handle_any("DELETE")

    # -- endpoints --
    def login(self, st, body):
        form = dict(urllib.parse.parse_qsl(body.decode()))
        u = st.users.get(form.get("username"))
        # as pai: an unknown name gets the wrong-password answer (no enumeration)
        if not u or u["password"] != form.get("password"):
            return err("IncorrectPasswordError", 400, "Password is incorrect.")
        tok = "tok-%d" % st.next_token
        st.next_token += 1
        st.tokens[tok] = u["username"]
        return 200, {"token": tok, "user": u["username"], "admin": u["admin"]}

    def route(self, st, method, path, q, body, user):
        m = re.fullmatch(r"/api/v2/jobs/([^/~]+)~([^/]+)(/.*)?", path)
        if m:
            return self.job_route(st, method, m.group(1) + "~" + m.group(2), m.group(3) or "", q, body)
        if path == "/api/v2/jobs" and method == "POST":
            return self.submit(st, body, user)
        if path == "/api/v2/jobs" and method == "GET":
            jobs = [self.summary(j) for j in st.jobs.values()]
            for k, f in (("username", "username"), ("state", "state"), ("vc", "virtualCluster")):
                if k in q:
                    jobs = [j for j in jobs if j[f] == q[k]]
            return 200, jobs
        if path == "/api/v2/authn/basic/logout" and method == "DELETE":
            tok = self.headers["Authorization"][7:]
            del st.tokens[tok]
            return 200, {"message": "Logout successfully"}
        if path == "/api/v2/tokens" and method == "GET":
            return 200, {"tokens": [t for t, u in st.tokens.items() if u == user]}
        if path == "/api/v2/tokens/application" and method == "POST":
            tok = "app-%d" % st.next_token
            st.next_token += 1
            st.tokens[tok] = user
            return 200, {"token": tok, "application": True}
        m = re.fullmatch(r"/api/v2/tokens/(.+)", path)
        if m and method == "DELETE":
            if st.tokens.get(m.group(1)) != user:
                return err("ForbiddenUserError", 403, "token not yours")
            del st.tokens[m.group(1)]
            return 200, {"message": "revoke successfully"}
        if path == "/api/v2/virtual-clusters":
            return 200, {"default": {"capacity": 100, "maxCapacity": 100, "usedCapacity": 25,
                                     "resourcesUsed": {"GPUs": 2}, "resourcesTotal": {"GPUs": 8},
                                     "status": "RUNNING"}}
        if path == "/api/v2/kubernetes/nodes":
            return 200, {"items": [self.node("node-1", "127.0.0.1", 4, 2), self.node("node-2", "127.0.0.1", 4, 4)]}
        return self.admin_route(st, method, path, body, user)

    def node(self, name, ip, cap, free):
        return {"metadata": {"name": name, "labels": {"pai.gpu/model": "sim"}},
                "status": {"capacity": {"nvidia.com/gpu": str(cap)}, "allocatable": {"nvidia.com/gpu": str(free)},
                           "conditions": [{"type": "Ready", "status": "True"}],
                           "addresses": [{"type": "InternalIP", "address": ip}]}}

    def admin_route(self, st, method, path, body, user):
        if not st.users[user]["admin"]:
            return err("ForbiddenUserError", 403, "Non-admin is not allowed to do this operation.")
        for base, coll, key, code in (("/api/v2/users", st.users, "username", "User"),
                                      ("/api/v2/groups", st.groups, "groupname", "Group")):
            if path == base and method == "GET":
                return 200, [dict(v, password=None) if "password" in v else v for v in coll.values()]
            if path == base and method == "POST":
                o = json.loads(body)
                if o[key] in coll:
                    return err("Conflict%sError" % code, 409, "%s %s already exists." % (code, o[key]))
                coll[o[key]] = o
                return 201, {"message": "%s is created successfully" % code.lower()}
            m = re.fullmatch(base + r"/([^/]+)", path)
            if m:
                if m.group(1) not in coll:
                    return err("No%sError" % code, 404, "%s %s is not found." % (code, m.group(1)))
                if method == "DELETE":
                    del coll[m.group(1)]
                    return 200, {"message": "removed"}
                return 200, coll[m.group(1)]
        return err("NoApiError", 404, "no such API: %s %s" % (method, path))

    def submit(self, st, body, user):
        text = body.decode()
        st.bodies.append(text)
        if text.lstrip().startswith("{"):
            doc = json.loads(text)
            name = doc.get("name")
            vc = (doc.get("defaults") or {}).get("virtualCluster", "default")
        else:
            m = re.search(r"^name:\s*(\S+)", text, re.M)
            name = m.group(1) if m else None
            m = re.search(r"^\s+virtualCluster:\s*(\S+)", text, re.M)
            vc = m.group(1) if m else "default"
        if not name:
            return err("InvalidProtocolError", 400, "job protocol has no name")
        if vc != "default":
            return err("NoVirtualClusterError", 400, "Virtual cluster %s is not found." % vc)
        full = "%s~%s" % (user, name)
        if full in st.jobs:
            return err("ConflictJobError", 409, "Job %s already exists." % full)
        st.jobs[full] = {"user": user, "name": name, "state": "WAITING", "tags": [], "vc": vc, "gets": 0}
        return 202, {"message": "update job %s successfully" % name}

    def summary(self, j):
        return {"name": j["name"], "username": j["user"], "state": j["state"], "subState": "",
                "executionType": "START", "retries": 0, "submissionTime": 1700000000000,
                "virtualCluster": j["vc"], "totalGpuNumber": 1, "totalTaskNumber": 2,
                "tags": j["tags"]}

    def advance(self, j):
        j["gets"] += 1
        if j["state"] == "WAITING" and j["gets"] >= 2:
            j["state"] = "RUNNING"
        elif j["state"] == "RUNNING" and j["gets"] >= 3 and "forever" not in j["name"]:
            j["state"] = "FAILED" if "fail" in j["name"] else "SUCCEEDED"

    def detail(self, j):
        final = j["state"] in ("SUCCEEDED", "FAILED", "STOPPED")
        code = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 130}.get(j["state"])
        tstate = "WAITING" if j["state"] == "WAITING" else j["state"]
        tasks = [{"taskIndex": i, "taskState": tstate, "attemptId": 0, "retries": 0,
                  "containerIp": "127.0.0.1", "containerNodeName": "node-%d" % (i + 1),
                  "containerGpus": [i], "containerExitCode": code,
                  "containerExitDiagnostics": "exit 1 from fake" if j["state"] == "FAILED" else None}
                 for i in range(2)] if j["state"] != "WAITING" else []
        st = {"username": j["user"], "state": j["state"], "subState": "", "executionType": "START",
              "retries": 0, "submissionTime": 1700000000000, "createdTime": 1700000000000,
              "launchedTime": 1700000001000 if j["state"] != "WAITING" else None,
              "completedTime": 1700000002000 if final else None, "attemptId": 0,
              "appExitCode": code, "virtualCluster": j["vc"],
              "appExitDiagnostics": "task worker/0 exited with 1" if j["state"] == "FAILED" else None}
        if j["state"] == "WAITING":
            st["waitingReason"] = "not enough free GPUs in VC default (needs 1, free 0)"
        return {"name": j["name"], "tags": j["tags"], "jobStatus": st,
                "taskRoles": {"worker": {"taskRoleStatus": {"name": "worker"}, "taskStatuses": tasks}}}

    def job_route(self, st, method, full, rest, q, body):
        j = st.jobs.get(full)
        if not j:
            return err("NoJobError", 404, "Job %s is not found." % full)
        if rest == "" and method == "GET":
            self.advance(j)
            return 200, self.detail(j)
        if rest == "" and method == "DELETE":
            if j["state"] not in ("SUCCEEDED", "FAILED", "STOPPED"):
                return err("InvalidParametersError", 400, "Job %s is not finished; stop it first." % full)
            del st.jobs[full]
            return 200, {"message": "deleted"}
        if rest == "/executionType" and method == "PUT":
            if json.loads(body).get("value") == "STOP":
                j["state"] = "STOPPED"
            return 202, {"message": "execute job %s successfully" % j["name"]}
        if rest == "/tag":
            tag = json.loads(body)["value"]
            if method == "PUT":
                j["tags"].append(tag)
                return 200, {"message": "Add tag"}
            if tag not in j["tags"]:
                return err("NoTagError", 404, "no tag %s" % tag)
            j["tags"].remove(tag)
            return 200, {"message": "Delete tag"}
        m = re.fullmatch(r"/attempts/0/taskRoles/([^/]+)/taskIndex/(\d+)/attempts/0/logs", rest)
        if m:
            if j["state"] == "WAITING":
                return err("NoTaskLogError", 404, "no log yet")
            base = "/fake-logs/%s/%s/%s" % (full, m.group(1), m.group(2))
            return 200, {"locations": [{"name": n, "uri": base + "/" + n} for n in ("stdout", "stderr", "all")]}
        return err("NoApiError", 404, "no such API")


def _logs_route(handler_get):
    def do_get(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        m = re.fullmatch(r"/fake-logs/([^/]+)/([^/]+)/(\d+)/(stdout|stderr|all)", path)
        if m and self.who():
            text = "hello from %s %s/%s (%s)\n" % (m.group(1), m.group(2), m.group(3), m.group(4))
            return self.reply(200, text.encode(), "text/plain")
        return handler_get(self)
    return do_get


Handler.do_GET = _logs_route(Handler.do_GET)


class FakePai:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.state = State()
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        self.thread = None

    @property
    def state(self):
        return self.httpd.state

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
