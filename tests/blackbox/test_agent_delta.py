#!/usr/bin/env python3
"""test_agent_delta.py - version 3 of the agent protocol against a real
server (docs/agent-protocol.md, "Deltas"), driven by hand over HTTP: the
first answer is the whole set with the server's epoch; then each answer
carries what entered the node's set since the agent's known_seq (with its
command) and what left it; a base of another epoch, none, or one below
what the server kept gets the whole set, at once; a restarted server has
another epoch.  A version 2 node of the same server gets the whole set in
every answer, without the version 3 keys.  A real agent (version 3) runs a
stream of short jobs to the end."""

import re
import time

import e2etest as e
import jobstest as jt
import paitest as pt

srv = pt.start_server()
c = srv.client(srv.admin_token)


def job(name, gpus=1, cmd="sleep 600"):
    return ("protocolVersion: 2\nname: %s\ntype: job\nprerequisites:\n"
            "  - {type: dockerimage, name: img, uri: busybox}\ntaskRoles:\n  main:\n"
            "    instances: 1\n    dockerImage: img\n"
            "    resourcePerInstance: {gpu: %d, cpu: 1, memoryMB: 256}\n"
            "    commands:\n      - %s\n" % (name, gpus, cmd))


class Hand:
    """A node driven by hand: the set it keeps, applied as src/agent does."""

    def __init__(self, server, name, version, gpus=4):
        self.node = jt.FakeAgent(server, name, gpus=gpus).node()
        self.version, self.url = version, server.url
        self.client = pt.Client(server.url, server.agent_token, timeout=60)
        self.known, self.epoch, self.kept, self.running, self.last = 0, None, {}, set(), None

    def post(self, known, epoch, reports=None, wait_ms=0):
        body = {"version": self.version, "node": self.node, "known_seq": known,
                "wait_ms": wait_ms, "tasks": reports if reports is not None else
                [{"attempt_id": a, "state": "running", "pid": 1, "started_ms": 1}
                 for a in sorted(self.running)]}
        if epoch:
            body["epoch"] = epoch
        st, b = self.client.post("/api/v1/agent/sync", body)
        if st == 200 and b.get("credential"):
            self.client = pt.Client(self.url, b["credential"], timeout=60)
        return st, b

    def sync(self, reports=None, wait_ms=0):
        st, b = self.post(self.known, self.epoch, reports, wait_ms)
        if st != 200:
            raise RuntimeError("sync %s: %s %s" % (self.node["name"], st, b))
        self.last = b
        if "tasks" in b:
            if "base_seq" in b:
                if b["base_seq"] != self.known or b.get("epoch") != self.epoch:
                    raise RuntimeError("a delta against another base: %s" % b)
                for a in b.get("removed", []):
                    self.kept.pop(a, None)
            else:
                self.kept = {}
            for t in b["tasks"]:
                self.kept[t["attempt_id"]] = t
            self.epoch = b.get("epoch")
        self.known = b["seq"]
        self.running = {a for a in self.running if a in self.kept} | set(self.kept)
        return b


def wait_kept(h, pred, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        b = h.sync()
        if pred(b):
            return b
        time.sleep(0.05)
    pt.not_ok(what, h.last)
    return h.last


# ---- version 3 by hand ----------------------------------------------------------------------
h = Hand(srv, "v3a", 3)
b = h.sync()
pt.check("base_seq" not in b and b.get("tasks") == [] and
         re.fullmatch(r"[0-9a-f]{16}", b.get("epoch") or ""),
         "v3: the first answer is the whole (empty) set with the server's 16-hex-digit epoch", b)
first_epoch = h.epoch
for n in ("d1", "d2"):
    st, r = e.submit(c, job(n))
    pt.check(st == 202, "v3: %s submitted" % n, (st, r))
b = wait_kept(h, lambda b: len(h.kept) == 2, "v3: both attempts arrive")
ids = sorted(h.kept)
pt.check(len(ids) == 2, "v3: the two attempts entered the kept set", ids)
pt.check(all("command" in h.kept[a] for a in ids),
         "v3: an attempt that enters comes with its command", list(h.kept))
b = h.sync()
pt.check(b.get("base_seq") is not None and b["tasks"] == [] and b["removed"] == [],
         "v3: nothing changed: a delta with no task and nothing removed", b)
st, r = c.put("/api/v2/jobs/admin~d1/executionType", {"value": "STOP"})
pt.check(st in (200, 202), "v3: d1 stopped", (st, r))
d1 = [a for a in ids if "d1" in a][0]
b = wait_kept(h, lambda b: d1 in b.get("removed", []),
              "v3: the stopped attempt is in a delta's removed list")
pt.check(d1 not in h.kept and len(h.kept) == 1 and "tasks" in b and b["tasks"] == [],
         "v3: the delta removes it and carries nothing else", b)
h.running.discard(d1)
b = h.sync(reports=[{"attempt_id": d1, "state": "exited", "exit_code": 143, "started_ms": 1,
                     "finished_ms": 2}] +
           [{"attempt_id": a, "state": "running", "pid": 1, "started_ms": 1} for a in h.running])
pt.check(d1 in b.get("ack", []), "v3: its exit is acked", b)
# another epoch, at the node's seq: the whole set, at once (a delta would be held)
t0 = time.time()
st, b = h.post(h.known, "0123456789abcdef", wait_ms=3000)
pt.check(st == 200 and "base_seq" not in b and len(b.get("tasks", [])) == 1
         and time.time() - t0 < 2,
         "v3: another epoch's seq gets the whole set at once", (st, b, time.time() - t0))
st, b = h.post(h.known, None)
pt.check(st == 200 and "base_seq" not in b and len(b.get("tasks", [])) == 1,
         "v3: no epoch (a restarted agent) gets the whole set", (st, b))
t0 = time.time()
st, b = h.post(h.known, h.epoch, wait_ms=1000)
pt.check(st == 200 and b.get("base_seq") == h.known and b["tasks"] == [] and
         time.time() - t0 >= 0.8,
         "v3: its own epoch and seq: held while nothing changes, then an empty delta",
         (st, b, time.time() - t0))
st, b = h.post(1, h.epoch)
pt.check(st == 200 and "base_seq" not in b and len(b.get("tasks", [])) == 1,
         "v3: a seq older than the server kept gets the whole set", (st, b))
# a restarted server: another epoch, the whole set (its restored attempt)
srv.restart()
b = h.sync()
pt.check("base_seq" not in b and b.get("epoch") != first_epoch and len(h.kept) == 1,
         "v3: after a server restart: another epoch and the whole set", b)
b = h.sync()
pt.check(b.get("base_seq") is not None, "v3: and deltas again from there", b)

# ---- version 2 on the same server -----------------------------------------------------------
h2 = Hand(srv, "v2a", 2)
h2.sync()
st, r = e.submit(c, job("d3", gpus=4))
pt.check(st == 202, "v2: d3 submitted (4 GPUs: only v2a has them free)", (st, r))
b = wait_kept(h2, lambda b: len(h2.kept) == 1, "v2: its attempt arrives")
answers = [h2.sync() for _ in range(3)]
pt.check(all(len(x.get("tasks", [])) == 1 and not ({"epoch", "base_seq", "removed"} & set(x))
             for x in answers),
         "v2: every answer has the whole set and none of version 3's keys", answers)

# ---- a real agent (version 3) runs a stream of short jobs -----------------------------------
srv2 = pt.start_server()
c2 = srv2.client(srv2.admin_token)
agent = e.agent(srv2, "real3")
pt.check(len(e.wait_nodes(c2, 1)) == 1, "real: the agent registers")
names = ["s%d" % i for i in range(12)]
for n in names:
    st, r = e.submit(c2, job(n, cmd="echo ok"))
    if st != 202:
        pt.not_ok("real: %s submitted" % n, (st, r))
states = [e.state(e.wait_state(c2, "admin~" + n, ("SUCCEEDED", "FAILED", "STOPPED"), 60))
          for n in names]
pt.check(states == ["SUCCEEDED"] * len(names),
         "real: 12 short jobs all succeed through a version 3 agent", states)
pt.done()
