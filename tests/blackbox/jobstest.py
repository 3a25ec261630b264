"""jobstest.py - helpers for the job black-box tests: job documents and a fake
agent that speaks the agent protocol (docs/agent-protocol.md) from Python.

A FakeAgent is a valid protocol peer: it registers a node, receives its
desired set, and reports task attempts running or exited exactly as `pai
agent` would, under the test's control.  That makes lifecycle tests
deterministic (which task exits, with which code, when)."""

import json
import threading
import time
import uuid

import paitest as pt


def job_yaml(name, roles=None, retry=0, vc="default", extras=None, prio=None):
    """roles: list of dicts {name, instances, gpu, cpu, mem, min_failed,
    min_succeeded, task_retry, command}."""
    roles = roles or [{"name": "main"}]
    out = ["protocolVersion: 2", "name: %s" % name, "type: job",
           "jobRetryCount: %d" % retry,
           "prerequisites:", "  - type: dockerimage", "    name: img",
           "    uri: busybox", "taskRoles:"]
    for r in roles:
        out += ["  %s:" % r["name"],
                "    instances: %d" % r.get("instances", 1),
                "    dockerImage: img",
                "    taskRetryCount: %d" % r.get("task_retry", 0),
                "    completion:",
                "      minFailedInstances: %d" % r.get("min_failed", 1),
                "      minSucceededInstances: %d" % r.get("min_succeeded", -1),
                "    resourcePerInstance:",
                "      gpu: %d" % r.get("gpu", 0),
                "      cpu: %d" % r.get("cpu", 1),
                "      memoryMB: %d" % r.get("mem", 256),
                "    commands:",
                "      - %s" % json.dumps(r.get("command", "sleep 1"))]
    out += ["defaults:", "  virtualCluster: %s" % vc]
    ex = dict(extras or {})
    if prio:
        ex.setdefault("hivedScheduler", {})["jobPriorityClass"] = prio
    if ex:
        out.append("extras: " + json.dumps(ex))
    return "\n".join(out) + "\n"


def submit(client, yaml_text):
    return client.request("POST", "/api/v2/jobs", raw=yaml_text, content_type="text/yaml")


class FakeAgent:
    """One node.  sync() sends one report and returns the desired set.
    log_url: what its node says its log server is (nothing listens on the
    default; a test that serves its logs or exec sets its own)."""

    log_url = "http://127.0.0.1:9"

    def __init__(self, srv, name, gpus=8, cpus=64, memory_mb=256000, address="127.0.0.1",
                 token=None):
        self.srv, self.name = srv, name
        self.client = pt.Client(srv.url, token or srv.agent_token, timeout=60)
        self.gpus, self.cpus, self.memory_mb, self.address = gpus, cpus, memory_mb, address
        self.boot_id = uuid.uuid4().hex
        self.known_seq = 0
        self.running = {}   # attempt_id -> task dict
        self.pending = []   # reports to send (exited)
        self.desired = {}
        self.last = None

    def node(self):
        return {"name": self.name, "address": self.address, "boot_id": self.boot_id,
                "cpus": self.cpus, "memory_mb": self.memory_mb, "gpu_model": "A100",
                "hollow": True, "runtime": "fake",
                "gpus": [{"index": i, "uuid": "GPU-%s-%d" % (self.name, i), "model": "A100",
                          "memory_mb": 81920, "healthy": True} for i in range(self.gpus)],
                "log_url": self.log_url}

    def sync(self, wait_ms=0):
        tasks = [{"attempt_id": a, "state": "running", "pid": 1, "started_ms": 1}
                 for a in self.running] + list(self.pending)
        body = {"version": 1, "node": self.node(), "known_seq": self.known_seq,
                "wait_ms": wait_ms, "tasks": tasks}
        st, resp = self.client.post("/api/v1/agent/sync", body)
        if st != 200:
            raise RuntimeError("sync %s: %s %s" % (self.name, st, resp))
        self.last = resp
        self.known_seq = resp["seq"]
        acked = set(resp.get("ack", []))
        self.pending = [p for p in self.pending if p["attempt_id"] not in acked]
        self.desired = {t["attempt_id"]: t for t in resp["tasks"]}
        # reconcile: start desired, stop the rest (reported exited 143)
        for a, t in self.desired.items():
            if a not in self.running and not any(p["attempt_id"] == a for p in self.pending):
                self.running[a] = t
        for a in list(self.running):
            if a not in self.desired:
                del self.running[a]
                self.pending.append({"attempt_id": a, "state": "exited", "exit_code": 143,
                                     "signal": 15})
        return resp

    def sync_for(self, job, n=1, timeout=10):
        """Sync until n tasks of job are desired here (scheduling passes run
        on the server's scheduler thread, after the submission's 202)."""
        deadline = time.time() + timeout
        while True:
            self.sync()
            if len(self.find(job)) >= n or time.time() > deadline:
                return self.find(job)
            time.sleep(0.02)

    def settle(self, rounds=4):
        """Sync until nothing changes (stops and acks are exchanged)."""
        for _ in range(rounds):
            self.sync()
            if not self.pending:
                break

    def exit(self, attempt_id, code, diag=None, oom=False):
        self.running.pop(attempt_id, None)
        self.pending.append({"attempt_id": attempt_id, "state": "exited", "exit_code": code,
                             "oom": oom, "diagnostics": diag or ""})

    def find(self, job, role=None, index=None):
        """The running attempt ids of a job (optionally one role/index)."""
        out = []
        for a, t in self.running.items():
            if t["job"] != job:
                continue
            if role is not None and t["role"] != role:
                continue
            if index is not None and t["index"] != index:
                continue
            out.append(a)
        return sorted(out)


def wait_state(client, job, states, timeout=20):
    """Poll the job detail until its state is in states; returns the detail."""
    states = {states} if isinstance(states, str) else set(states)
    deadline = time.time() + timeout
    d = None
    while time.time() < deadline:
        st, d = client.get("/api/v2/jobs/" + job)
        if st == 200 and d["jobStatus"]["state"] in states:
            return d
        time.sleep(0.05)
    return d


def state(client, job):
    st, d = client.get("/api/v2/jobs/" + job)
    return d["jobStatus"]["state"] if st == 200 else None


class Poller(threading.Thread):
    """Keeps a FakeAgent syncing in the background (for node-loss tests the
    test stops it)."""

    def __init__(self, agent, period=0.1):
        super().__init__(daemon=True)
        self.agent, self.period, self.stop_flag = agent, period, False

    def run(self):
        while not self.stop_flag:
            try:
                self.agent.sync()
            except Exception:
                pass
            time.sleep(self.period)
