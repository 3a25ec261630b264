"""test_history.py - the server's in-memory metrics history
(GET /api/v2/cluster/metrics-history, GET /api/v2/jobs/{job}/metrics-history):
a real `pai server` sampling every second into a ring of 6 points and a fake
agent (jobstest.FakeAgent) whose GPUs report a utilization.  A GPU job's use
shows in the cluster, VC, node and job series; the ring stays bounded; the
window and point limits apply; anonymous callers get 401, unknown jobs 404."""

import time

import jobstest as jt
import paitest as pt

POINTS = 6
srv = pt.start_server(extra_args=["--metrics-history-interval-s", "1",
                                  "--metrics-history-points", str(POINTS)])
c = srv.client(srv.admin_token)


class UtilAgent(jt.FakeAgent):
    def node(self):
        n = super().node()
        for g in n["gpus"]:
            g["utilization"] = 37
        return n


agent = UtilAgent(srv, "h1", gpus=4)
agent.sync()
poller = jt.Poller(agent)
poller.start()

st, b = jt.submit(c, jt.job_yaml("hist", [{"name": "main", "gpu": 2, "command": "sleep 600"}]))
pt.check(st == 202, "a 2-GPU job is submitted", (st, b))
d = jt.wait_state(c, "admin~hist", "RUNNING", timeout=20)
pt.check(d and d["jobStatus"]["state"] == "RUNNING", "the job runs", d and d["jobStatus"])


def last(values):
    vals = [v for v in values if v is not None]
    return vals[-1] if vals else None


def poll(path, pred, timeout=20):
    """GET path until pred(body) holds; returns the last (status, body)."""
    deadline = time.time() + timeout
    while True:
        st, body = c.get(path)
        if (st == 200 and pred(body)) or time.time() > deadline:
            return st, body
        time.sleep(0.2)


CLUSTER = "/api/v2/cluster/metrics-history"
st, h = poll(CLUSTER, lambda h: last(h["cluster"]["gpusUsed"]) == 2)
pt.check(st == 200 and last(h["cluster"]["gpusUsed"]) == 2
         and last(h["cluster"]["gpusTotal"]) == 4,
         "cluster series: 2 of 4 GPUs used", (st, h))
ts = h.get("timestamps", []) if st == 200 else []
pt.check(ts and all(t > 10**12 for t in ts) and ts == sorted(ts)
         and len(ts) == len(h["cluster"]["gpusUsed"]),
         "timestamps are wall-clock ms, ascending, one per value", ts)
pt.check(h.get("intervalSeconds") == 1 and h.get("capacity") == POINTS,
         "the answer states the interval and the ring capacity", h)
node = h.get("nodes", {}).get("h1", {})
pt.check(last(node.get("usedGpus", [])) == 2 and last(node.get("utilization", [])) == 37,
         "node series: used GPUs and the utilization the agent reports", node)
vc = h.get("virtualClusters", {}).get("default", {})
pt.check(last(vc.get("usedGpus", [])) == 2 and last(vc.get("guaranteedGpus", [])) == 4,
         "VC series: used and guaranteed GPUs", vc)

JOB = "/api/v2/jobs/admin~hist/metrics-history"
st, j = poll(JOB, lambda j: last(j["gpus"]) == 2)
pt.check(st == 200 and j.get("job") == "admin~hist" and last(j["gpus"]) == 2
         and len(j["timestamps"]) == len(j["gpus"]),
         "job series: its 2 allocated GPUs", (st, j))
pt.check(st == 200 and last(j.get("utilization", [])) == 37,
         "job series: the utilization the agent reports for the job's GPUs", j)

# The ring keeps POINTS samples whatever runs: wait for more samples than that.
st, h = poll(CLUSTER, lambda h: len(h["timestamps"]) >= POINTS, timeout=30)
first = h["timestamps"][0] if st == 200 and h["timestamps"] else 0
st, h = poll(CLUSTER, lambda h: h["timestamps"] and h["timestamps"][0] > first + 1500,
             timeout=30)
pt.check(st == 200 and len(h["timestamps"]) == POINTS and h["timestamps"][0] > first
         and len(h["cluster"]["gpusUsed"]) == POINTS,
         "the ring is bounded: old samples leave, %d stay" % POINTS, h)
st, m = c.get("/metrics")
pt.check(st == 200 and "pai_metrics_history_series 4" in str(m),
         "/metrics counts the history's series (cluster, VC, node, job)",
         [x for x in str(m).splitlines() if "history" in x])

st, h = c.get(CLUSTER + "?maxPoints=2")
pt.check(st == 200 and len(h["timestamps"]) == 2 and len(h["cluster"]["gpusUsed"]) == 2
         and h["cluster"]["gpusUsed"][-1] == 2,
         "maxPoints folds the window into at most that many points", h)
st, h = c.get(CLUSTER + "?minutes=1")
pt.check(st == 200 and 1 <= len(h["timestamps"]) <= POINTS, "minutes=1 answers the window",
         (st, h))
st, b = c.get(CLUSTER + "?minutes=abc")
pt.check(st == 400, "minutes must be a number: 400", (st, b))

# Stop the job: the cluster returns to 0 used, the job keeps its series.
st, b = c.put("/api/v2/jobs/admin~hist/executionType", {"value": "STOP"})
pt.check(st in (200, 202), "the job is stopped", (st, b))
jt.wait_state(c, "admin~hist", "STOPPED", timeout=20)
st, h = poll(CLUSTER, lambda h: last(h["cluster"]["gpusUsed"]) == 0)
pt.check(st == 200 and last(h["cluster"]["gpusUsed"]) == 0, "after the stop 0 GPUs are used",
         (st, h))
st, j = c.get(JOB)
pt.check(st == 200 and 2 in j["gpus"], "a stopped job's history stays readable", (st, j))

anon = srv.client(None)
st, b = anon.get(CLUSTER)
pt.check(st == 401, "anonymous: cluster history refused 401", (st, b))
st, b = anon.get(JOB)
pt.check(st == 401, "anonymous: job history refused 401", (st, b))
st, b = c.get("/api/v2/jobs/admin~nosuchjob/metrics-history")
pt.check(st == 404 and isinstance(b, dict) and b.get("code") == "NoJobError",
         "unknown job: 404 NoJobError", (st, b))

poller.stop_flag = True
poller.join(5)
pt.done()
