"""test_agent_sync_batches.py - agent syncs queued at one moment are run by
one write worker as one batch (offload_run_batch_in in src/server/offload.c,
route_work_batch in src/server/http.c, engine_agent_sync_batch in
src/engine/agentsync.c): with a storm of syncs queued behind stalled
workers (the test hook PAI_TEST_AGENT_SYNC_STALL_MS), the engine runs them
in batches of several (pai_agent_sync_batched_total over
pai_agent_sync_batches_total), every good sync is answered as alone (new
nodes registered and stored, an exit acked once stored), and a refused or
unreadable sync in the same storm fails alone (403, 400)."""

import http.client
import json
import threading
import time

import jobstest as jt
import paitest as pt

STALL_MS = 100
GOOD = 20

srv = pt.start_server(extra_args=["--http-write-threads", "2"],
                      env={"PAI_TEST_AGENT_SYNC_STALL_MS": str(STALL_MS)})
c = srv.client(srv.admin_token)


def metric(name):
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h.request("GET", "/metrics")
    text = h.getresponse().read().decode()
    h.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def raw_sync(token, body):
    """(status, parsed body) of one sync sent as given (body: bytes)."""
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)
    h.request("POST", "/api/v1/agent/sync", body,
              {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    r = h.getresponse()
    data = r.read()
    h.close()
    try:
        return r.status, json.loads(data)
    except ValueError:
        return r.status, data


# a node holding a credential (version 2): the join token may not sync as it
st, b = raw_sync(srv.agent_token, json.dumps(
    {"version": 2, "node": {"name": "sb-held", "address": "127.0.0.1", "cpus": 4,
                            "memory_mb": 4096, "gpus": []}, "known_seq": 0, "wait_ms": 0,
     "tasks": []}).encode())
cred = str((b or {}).get("credential", ""))
st2, b2 = raw_sync(cred, json.dumps(
    {"version": 2, "node": {"name": "sb-held", "address": "127.0.0.1", "cpus": 4,
                            "memory_mb": 4096, "gpus": []}, "known_seq": b.get("seq", 0),
     "wait_ms": 0, "tasks": []}).encode())
pt.check(st == 200 and cred.startswith("pn1.") and st2 == 200,
         "a node registers, gets its credential and syncs with it", (st, b, st2, b2))

# a node running a job whose task exits in the storm (its ack needs a commit)
runner = jt.FakeAgent(srv, "sb-run", gpus=1)
runner.sync()
st, _ = jt.submit(c, jt.job_yaml("sb-job", [{"name": "main", "gpu": 1, "command": "true"}]))
pt.check(st == 202, "a job is submitted", st)
found = runner.sync_for("admin~sb-job")
pt.check(len(found) == 1, "its task is sent to its node", runner.desired)
aid = found[0] if found else ""
runner.sync()  # reported running
runner.exit(aid, 0)

batches0 = metric("pai_agent_sync_batches_total")
batched0 = metric("pai_agent_sync_batched_total")
results = {}


def run(key, fn):
    try:
        results[key] = fn()
    except Exception as ex:  # noqa: BLE001 - reported below
        results[key] = ex


def good(k):
    a = jt.FakeAgent(srv, "sb-%d" % k, gpus=1)
    r = a.sync()
    return ("ok", r["seq"])


def exit_report():
    r = runner.sync()
    return ("ok", aid in r.get("ack", []))


def refused():
    return raw_sync(srv.agent_token, json.dumps(
        {"version": 1, "node": {"name": "sb-held", "address": "127.0.0.1", "cpus": 4,
                                "memory_mb": 4096, "gpus": []}, "known_seq": 0, "wait_ms": 0,
         "tasks": []}).encode())[0]


def unreadable():
    return raw_sync(srv.agent_token, b"{not json")[0]


# first two syncs stall both workers; the rest queue meanwhile and are taken
# as batches (the queue's syncs, in order, up to 64 a batch)
threads = [threading.Thread(target=run, args=("good%d" % k, lambda k=k: good(k)))
           for k in range(GOOD)]
threads.insert(GOOD // 2, threading.Thread(target=run, args=("exit", exit_report)))
threads.insert(3, threading.Thread(target=run, args=("refused", refused)))
threads.insert(7, threading.Thread(target=run, args=("unreadable", unreadable)))
for t in threads:
    t.start()
    time.sleep(0.005)
for t in threads:
    t.join(120)

bad = {k: v for k, v in results.items() if k.startswith("good") and
       not (isinstance(v, tuple) and v[0] == "ok" and v[1] > 0)}
pt.check(len([k for k in results if k.startswith("good")]) == GOOD and not bad,
         "every good sync in the storm is answered (%d)" % GOOD, bad)
pt.check(results.get("exit") == ("ok", True),
         "an exit reported in the storm is acked (after its commit)", results.get("exit"))
pt.check(results.get("refused") == 403,
         "the join token syncing as a node with a credential is refused alone (403)",
         results.get("refused"))
pt.check(results.get("unreadable") == 400, "an unreadable sync fails alone (400)",
         results.get("unreadable"))


def listed():
    st, b = c.get("/api/v2/cluster/nodes")
    return {x["metadata"]["name"] for x in (b or {}).get("items", [])} if st == 200 else set()


pt.check(all("sb-%d" % k in listed() for k in range(GOOD)),
         "every node registered in the storm is listed", sorted(listed()))
batches = metric("pai_agent_sync_batches_total") - batches0
batched = metric("pai_agent_sync_batched_total") - batched0
pt.check(batched >= GOOD and batches > 0 and batched / batches >= 2,
         "the storm's syncs ran in batches: %d sections in %d batches" % (batched, batches),
         (batched, batches))
d = jt.wait_state(c, "admin~sb-job", ("SUCCEEDED", "FAILED"), 30)
pt.check(d and d["jobStatus"]["state"] == "SUCCEEDED", "the job whose exit was acked succeeded",
         d and d["jobStatus"])

# a restart reads every registration back: each was stored before its answer
srv.restart()
pt.check(all("sb-%d" % k in listed() for k in range(GOOD)),
         "after a restart every node of the storm is still there", sorted(listed()))
pt.done()
