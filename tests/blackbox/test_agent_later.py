"""test_agent_later.py - agent protocol version 6 over HTTP (docs/agent-protocol.md,
"Acks in a later answer"): a sync that asks for it ("accept": 6 with hold_acks) is
answered in version 6, and its exit is acked in an answer given once a commit holds it
(the timer's, within a few hundred ms, when nothing else commits), the job ended once;
and a server capped at version 5 answers it the old way (the ack in the answer to the
report)."""

import time

import jobstest as jt
import paitest as pt


def node(name):
    return {"name": name, "address": "127.0.0.1", "boot_id": "b-" + name, "cpus": 8,
            "memory_mb": 65536, "gpu_model": "sim", "hollow": False, "runtime": "process",
            "gpus": [{"index": 0, "uuid": "GPU-0", "model": "sim", "memory_mb": 16384,
                      "healthy": True}]}


class Agent6:
    """A node that speaks version 4 requests with "accept": 6 and hold_acks, and
    presents its credential once issued."""

    def __init__(self, srv, name):
        self.srv, self.name, self.known, self.epoch = srv, name, 0, None
        self.client = pt.Client(srv.url, srv.agent_token, timeout=30)

    def sync(self, tasks=(), known=None):
        body = {"version": 4, "accept": 6, "node": node(self.name),
                "known_seq": self.known if known is None else known, "wait_ms": 0,
                "hold_acks": True, "tasks": list(tasks)}
        if self.epoch and known is None:
            body["epoch"] = self.epoch
        st, r = self.client.post("/api/v1/agent/sync", body)
        if st == 200 and isinstance(r, dict):
            if r.get("credential"):
                self.client = pt.Client(self.srv.url, r["credential"], timeout=30)
            if "tasks" in r:
                self.known, self.epoch = r["seq"], r.get("epoch")
        return st, r


def run_one(srv, c, a, name):
    """Submit name (1 GPU, `true`), report its start and exit until acked; returns
    (attempt id, the answer to the exit's first report, syncs until the ack, s)."""
    st, _ = jt.submit(c, jt.job_yaml(name, [{"name": "main", "gpu": 1, "command": "true"}]))
    assert st == 202, st
    aid = None
    for _ in range(100):
        st, r = a.sync()
        ids = [t["attempt_id"] for t in (r or {}).get("tasks", []) if name in t["attempt_id"]]
        if ids:
            aid = ids[0]
            break
        time.sleep(0.05)
    assert aid, "never placed"
    now = int(time.time() * 1000)
    report = {"attempt_id": aid, "state": "exited", "exit_code": 0, "started_ms": now - 5,
              "finished_ms": now}
    st, first = a.sync([report])
    t0, n, r = time.time(), 1, first
    while aid not in (r or {}).get("ack", []) and time.time() - t0 < 10:
        time.sleep(0.05)
        st, r = a.sync([report])
        n += 1
    return aid, first, n, time.time() - t0, aid in (r or {}).get("ack", [])


srv = pt.start_server()
c = srv.client(srv.admin_token)
a = Agent6(srv, "lt1")
a.sync()
st, r = a.sync()  # presents the credential issued by the first
pt.check(st == 200 and r.get("version") == 6, "a request with accept 6 is answered in version 6",
         (st, r))

# 1. the exit's ack: in a later answer, once committed; the job ended once
aid, first, n, took, acked = run_one(srv, c, a, "lt-a")
pt.check(acked and took < 5, "the exit is acked within the timer's bound", (n, took, first))
st, d = c.get("/api/v2/jobs/admin~lt-a")
js = (d or {}).get("jobStatus", {})
pt.check(js.get("state") == "SUCCEEDED" and js.get("retries") == 0 and js.get("appExitCode") == 0,
         "the job ended once: SUCCEEDED, no retry", js)
st, m = c.get("/metrics")
later = [ln for ln in (m if isinstance(m, str) else "").splitlines()
         if ln.startswith('pai_agent_sync_exits_total{commit="later"}')]
pt.check(later and float(later[0].split()[-1]) >= 1,
         "the sync that reported it led no commit (pai_agent_sync_exits_total later)", later)

srv.stop()

# 2. a server capped at version 5: the old way, the ack in the answer to the report
srv5 = pt.start_server(env={"PAI_TEST_AGENTWIRE_MAX": "5"})
c5 = srv5.client(srv5.admin_token)
a5 = Agent6(srv5, "lt5")
a5.sync()
st, r = a5.sync()
pt.check(st == 200 and r.get("version") == 5, "a version 5 server answers accept 6 in 5", (st, r))
aid, first, n, took, acked = run_one(srv5, c5, a5, "lt-b")
pt.check(aid in (first or {}).get("ack", []) and n == 1,
         "version 5: the exit is acked in the answer to its report", (n, first))
srv5.stop()
pt.done()
