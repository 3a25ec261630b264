"""test_http_write_classes.py - the write workers keep agent syncs and users'
requests in separate queues (src/server/offload.h, write_class in
src/server/http.c): with a storm of agent syncs queued (each, or each batch
of them, stalled 1.5 s on its write worker by the test hook
PAI_TEST_AGENT_SYNC_STALL_MS, as thousands of syncs waiting for the engine
lock are), a submission and a stop are still
answered within one stall, not after the storm (one FIFO: ~15 s here);
/metrics shows the queues apart (pai_http_write_pending{class=...}); and
every queued sync is answered in the end."""

import http.client
import threading
import time

import jobstest as jt
import paitest as pt

STALL_MS = 1500
SYNCS = 40

srv = pt.start_server(extra_args=["--http-write-threads", "4"],
                      env={"PAI_TEST_AGENT_SYNC_STALL_MS": str(STALL_MS)})
c = srv.client(srv.admin_token)
first = jt.FakeAgent(srv, "wq-0", gpus=2)
first.sync()  # one node, so the job fits (this sync stalls too, alone)


def labelled(family, label):
    """{label value: value} of a metric family's samples."""
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h.request("GET", "/metrics")
    text = h.getresponse().read().decode()
    h.close()
    out = {}
    for line in text.splitlines():
        if line.startswith(family + "{"):
            cls = line.split(label + '="', 1)[1].split('"', 1)[0]
            out[cls] = float(line.rsplit(" ", 1)[1])
    return out


def pending():
    """{class: value} of pai_http_write_pending."""
    return labelled("pai_http_write_pending", "class")


results = []


def agent_sync(k):
    try:
        jt.FakeAgent(srv, "wq-%d" % k, gpus=1).sync()
        results.append(True)
    except Exception as ex:  # noqa: BLE001 - counted below
        results.append(ex)


storm = [threading.Thread(target=agent_sync, args=(k,)) for k in range(1, SYNCS + 1)]
for t in storm:
    t.start()
deadline = time.time() + 10
seen = {}
while time.time() < deadline:  # the syncs queued (3 of the 4 workers run them at most)
    seen = pending()
    if seen.get("agent", 0) >= SYNCS - 2:
        break
    time.sleep(0.05)
pt.check(seen.get("agent", 0) >= SYNCS - 2 and "user" in seen,
         "pai_http_write_pending counts the agent syncs queued apart from the users' requests",
         seen)

t0 = time.time()
st, body = jt.submit(c, jt.job_yaml("wq-job", [{"name": "main", "gpu": 1, "command": "sleep 60"}]))
took = time.time() - t0
left = pending().get("agent", 0)
pt.check(st == 202 and took < STALL_MS / 1000.0 and left >= SYNCS / 2,
         "a submission is answered within one stalled sync while %d syncs wait (%.2f s, %d "
         "syncs still queued)" % (SYNCS, took, left), (st, body, took, left))
t0 = time.time()
st, body = c.put("/api/v2/jobs/admin~wq-job/executionType", {"value": "STOP"})
took = time.time() - t0
left = pending().get("agent", 0)
pt.check(st == 202 and took < STALL_MS / 1000.0 and left >= SYNCS / 2,
         "a stop is answered within one stalled sync while %d syncs wait (%.2f s, %d syncs "
         "still queued)" % (SYNCS, took, left), (st, body, took, left))

for t in storm:
    t.join(120)
pt.check(len(results) == SYNCS and all(r is True for r in results),
         "every queued agent sync is answered (%d of %d)"
         % (sum(1 for r in results if r is True), SYNCS), [r for r in results if r is not True][:3])
deadline = time.time() + 10  # a worker counts its request until it is back from it
while pending() != {"user": 0, "agent": 0} and time.time() < deadline:
    time.sleep(0.05)
pt.check(pending() == {"user": 0, "agent": 0}, "both queues drained", pending())
pt.done()
