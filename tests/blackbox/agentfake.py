"""agentfake.py - a fake pai server speaking docs/agent-protocol.md, and
helpers to run `pai agent` against it (used by test_agent_fake.py and the
podman suite).  The fake holds a desired set per node, answers syncs
(long-poll), records every report and acks exited attempts.
"""
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sweep  # kills what a test left running, at exit

PAI = os.environ.get("PAI_BIN", os.path.join(os.path.dirname(__file__), "../../build/pai"))
TOKEN = "agent-secret"
FAILS = [0]


def report(ok, name, detail=""):
    print(("ok - " if ok else "not ok - ") + name, flush=True)
    if not ok:
        FAILS[0] += 1
        if detail:
            print("  " + str(detail)[:6000], flush=True)


class Fake:
    def __init__(self):
        self.cv = threading.Condition()
        self.nodes = {}      # name -> {"seq", "desired": {id: task}, "reports": [..], "node": {...}}
        self.exits = {}      # attempt id -> list of exit reports (each distinct sync that reported it)
        self.acked = set()
        self.auth_failures = 0

    def node(self, name):
        return self.nodes.setdefault(name, {"seq": 1, "desired": {}, "reports": 0, "node": None,
                                            "last": None})

    def set_desired(self, name, tasks):
        with self.cv:
            n = self.node(name)
            n["desired"] = {t["attempt_id"]: t for t in tasks}
            n["seq"] += 1
            self.cv.notify_all()

    def handle(self, body):
        name = body["node"]["name"]
        with self.cv:
            n = self.node(name)
            n["node"] = body["node"]
            n["reports"] += 1
            n["last"] = body["tasks"]
            new_exit = False
            ack = []
            for t in body["tasks"]:
                if t["state"] in ("exited", "failed_to_start"):
                    if t["attempt_id"] not in self.acked:
                        self.exits.setdefault(t["attempt_id"], []).append(t)
                        self.acked.add(t["attempt_id"])
                        new_exit = True
                    ack.append(t["attempt_id"])
                    n["desired"].pop(t["attempt_id"], None)
            if ack:
                n["seq"] += 1
            deadline = time.time() + min(body.get("wait_ms", 1000), 2000) / 1000.0
            while (n["seq"] <= body["known_seq"] and not new_exit and not ack
                   and time.time() < deadline):
                self.cv.wait(deadline - time.time())
            self.cv.notify_all()
            # answered in the agent's version; no credential is issued, so
            # the agent keeps presenting TOKEN (its join token)
            out = {"version": body["version"], "seq": n["seq"], "ack": ack,
                   "tasks": list(n["desired"].values()), "heartbeat_ms": 2000}
            if body["version"] >= 3:  # the whole set every time: never a delta
                out["epoch"] = "fake"
            return out

    def wait(self, pred, timeout=20):
        end = time.time() + timeout
        with self.cv:
            while not pred():
                left = end - time.time()
                if left <= 0:
                    return False
                self.cv.wait(min(left, 0.2))
        return True


def make_server(fake):
    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def handle(self):
            try:
                super().handle()
            except (ConnectionResetError, BrokenPipeError):
                pass  # the agent cancelled its long-poll: expected

        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            raw = self.rfile.read(n)
            if self.headers.get("Authorization") != "Bearer " + TOKEN:
                fake.auth_failures += 1
                out, code = b'{"code":"UnauthorizedUserError","message":"no"}', 401
            elif self.path != "/api/v1/agent/sync":
                out, code = b'{"code":"NoApiError","message":"no"}', 404
            else:
                body = json.loads(raw)
                # version 4: the fake never names a digest, so nodes come whole
                if body.get("version") not in (1, 2, 3, 4):
                    out, code = b'{"code":"InvalidParametersError","message":"v"}', 400
                else:
                    out, code = json.dumps(fake.handle(body)).encode(), 200
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            try:
                self.wfile.write(out)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the agent cancelled its long-poll: expected

    srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def task(aid, command, **kw):
    t = {"attempt_id": aid, "job": aid.split("/")[0], "user": "alice", "role": "r", "index": 0,
         "job_attempt": 0, "task_attempt": 0, "image": None, "command": command,
         "env": {"PAI_JOB_NAME": aid.split("/")[0], "MY_VAR": "hello"}, "gpus": [],
         "cpu": 1, "memory_mb": 256, "shm_mb": 64, "ports": {}, "kill_grace_ms": 1000}
    t.update(kw)
    return t


def start_agent(url, work, name, *extra):
    sweep.add_root(work)
    log = open(os.path.join(work, "agent-%s.log" % name), "ab")
    args = [PAI, "agent", "--server", url, "--token", TOKEN, "--name", name,
            "--work-dir", os.path.join(work, name), "--gpus", "2", "--wait-ms", "2000"] + list(extra)
    return subprocess.Popen(args, stdout=log, stderr=log)


def stop(p):
    if p and p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def get_log(node, aid, kind, tail=None, token=TOKEN):
    url = "%s/logs/%s/%s" % (node["log_url"], urllib.parse.quote(aid, safe=""), kind)
    if tail is not None:
        url += "?tail=%d" % tail
    req = urllib.request.Request(url, headers={"Authorization": "Bearer " + token})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:  # the agent is gone: the checks fail, the test goes on
        return 0, str(e)


