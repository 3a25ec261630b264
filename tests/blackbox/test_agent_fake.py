#!/usr/bin/env python3
"""Black-box tests of `pai agent` against a tiny fake server (stdlib only).

The fake speaks docs/agent-protocol.md: it holds a desired set per node,
answers syncs (long-poll), records every report and acks exited attempts.
This tests the agent alone: registration, start, logs, exit report, ack,
"never twice", stop, agent restart with re-adoption, hollow nodes.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PAI = os.environ.get("PAI_BIN", os.path.join(os.path.dirname(__file__), "../../build/pai"))
TOKEN = "agent-secret"
FAILS = 0


def report(ok, name, detail=""):
    global FAILS
    print(("ok - " if ok else "not ok - ") + name, flush=True)
    if not ok:
        FAILS += 1
        if detail:
            print("  " + str(detail)[:2000], flush=True)


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
            return {"version": 1, "seq": n["seq"], "ack": ack,
                    "tasks": list(n["desired"].values()), "heartbeat_ms": 2000}

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
                if body.get("version") != 1:
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


def main():
    fake = Fake()
    srv = make_server(fake)
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    work = tempfile.mkdtemp(prefix="pai-agent-fake-")
    procs = []
    try:
        run_tests(fake, url, work, procs)
    finally:
        for p in procs:
            stop(p)
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if FAILS else 0


def run_tests(fake, url, work, procs):
    a = start_agent(url, work, "n1")
    procs.append(a)
    ok = fake.wait(lambda: "n1" in fake.nodes and fake.nodes["n1"]["node"] is not None)
    node = fake.nodes.get("n1", {}).get("node") or {}
    report(ok and node.get("cpus", 0) > 0 and len(node.get("gpus", [])) == 2
           and node.get("log_url", "").startswith("http://127.0.0.1:")
           and len(node.get("topology", [])) == 2,
           "agent registers with resources, GPUs, topology and log url", node)

    count = os.path.join(work, "starts")
    aid = "alice~j1/0/r/0/0"
    fake.set_desired("n1", [task(aid, "echo start >> %s; echo \"out $MY_VAR $CUDA_VISIBLE_DEVICES\"; "
                                      "echo oops >&2; sleep 0.3; exit 3" % count, gpus=[1])])
    ok = fake.wait(lambda: aid in fake.exits)
    ex = fake.exits.get(aid, [{}])[0]
    report(ok and ex.get("exit_code") == 3 and ex.get("state") == "exited"
           and "oops" in ex.get("diagnostics", ""),
           "task runs and its exit code and stderr diagnostics are reported", ex)

    st, out = get_log(node, aid, "stdout")
    report(st == 200 and "out hello 1" in out, "stdout log is served with env and GPU list", (st, out))
    st, out = get_log(node, aid, "all")
    report(st == 200 and "oops" in out and "out hello" in out, "combined log has both streams")
    st, out = get_log(node, aid, "stdout", tail=4)
    report(st == 200 and out == "o 1\n", "log tail returns the last bytes", repr(out))
    st, _ = get_log(node, aid, "stdout", token="wrong")
    report(st == 401, "log endpoint requires the bearer token", st)
    st, _ = get_log(node, "nobody~x/0/r/0/0", "stdout")
    report(st == 404, "unknown attempt log is 404", st)

    # The server repeats the attempt in the desired set: it must not run again.
    fake.set_desired("n1", [task(aid, "echo start >> %s" % count)])
    time.sleep(1.0)
    starts = open(count).read().count("start") if os.path.exists(count) else 0
    report(starts == 1, "an attempt is never started twice", starts)
    fake.set_desired("n1", [])

    # Acked attempts are no longer reported.
    ok = fake.wait(lambda: fake.nodes["n1"]["last"] is not None and
                   all(t["attempt_id"] != aid for t in fake.nodes["n1"]["last"]))
    report(ok, "acked attempts are no longer reported")

    # Stop: dropping an attempt from the desired set kills it (TERM).
    sid = "alice~j2/0/r/0/0"
    fake.set_desired("n1", [task(sid, "sleep 30")])
    ok = fake.wait(lambda: any(t["attempt_id"] == sid and t["state"] == "running"
                               for t in (fake.nodes["n1"]["last"] or [])))
    report(ok, "a started attempt is reported running")
    fake.set_desired("n1", [])
    ok = fake.wait(lambda: sid in fake.exits)
    ex = fake.exits.get(sid, [{}])[0]
    report(ok and ex.get("exit_code") == 143, "an undesired attempt is stopped (SIGTERM)", ex)

    # Stop escalates to SIGKILL after the grace period.
    kid = "alice~j3/0/r/0/0"
    fake.set_desired("n1", [task(kid, "trap '' TERM; sleep 30 & wait; sleep 30", kill_grace_ms=300)])
    fake.wait(lambda: any(t["attempt_id"] == kid for t in (fake.nodes["n1"]["last"] or [])))
    time.sleep(0.3)
    fake.set_desired("n1", [])
    ok = fake.wait(lambda: kid in fake.exits)
    ex = fake.exits.get(kid, [{}])[0]
    report(ok and ex.get("exit_code") == 137, "stop escalates to SIGKILL after kill_grace_ms", ex)

    # Agent restart: the attempt keeps running and is re-adopted, not restarted.
    rid = "alice~j4/0/r/0/0"
    rcount = os.path.join(work, "rstarts")
    fake.set_desired("n1", [task(rid, "echo start >> %s; sleep 2; exit 7" % rcount)])
    fake.wait(lambda: any(t["attempt_id"] == rid and t["state"] == "running"
                          for t in (fake.nodes["n1"]["last"] or [])))
    stop(a)
    a2 = start_agent(url, work, "n1")
    procs.append(a2)
    ok = fake.wait(lambda: rid in fake.exits, timeout=30)
    ex = fake.exits.get(rid, [{}])[0]
    starts = open(rcount).read().count("start") if os.path.exists(rcount) else 0
    report(ok and ex.get("exit_code") == 7 and starts == 1,
           "a restarted agent re-adopts a running attempt and reports its real exit", (ex, starts))
    fake.set_desired("n1", [])

    # Hollow nodes: one process, several nodes, nothing executed.
    h = start_agent(url, work, "h", "--hollow", "--nodes", "4")
    procs.append(h)
    ok = fake.wait(lambda: all("h-%d" % i in fake.nodes and fake.nodes["h-%d" % i]["node"]
                               for i in range(4)))
    report(ok and fake.nodes["h-3"]["node"].get("hollow") is True, "one process hosts 4 hollow nodes")
    hid = "alice~h1/0/r/0/0"
    marker = os.path.join(work, "hollow-ran")
    fake.set_desired("h-2", [task(hid, "touch %s; sleep 0.2; exit 4" % marker)])
    ok = fake.wait(lambda: hid in fake.exits)
    ex = fake.exits.get(hid, [{}])[0]
    report(ok and ex.get("exit_code") == 4 and not os.path.exists(marker),
           "a hollow attempt ends with the code its command asks for, without running", ex)
    report(all(len(v) == 1 for v in fake.exits.values()), "every attempt ended exactly once")
    report(fake.auth_failures == 0, "every sync carried the token")


if __name__ == "__main__":
    sys.exit(main())
