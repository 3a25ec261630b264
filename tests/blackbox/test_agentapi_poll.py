"""test_agentapi_poll.py - the agent sync long-poll (src/server/agentapi.c,
docs/agent-protocol.md): a held poll is answered with the new desired set
when a task is bound to its node; a held poll superseded by a newer sync of
the same node (an agent abandons its poll to report a local change) is
answered without "tasks" and with seq = known_seq, so that a reader, if
any, changes nothing; the newer sync gets the full desired set."""

import threading
import time

import jobstest as jt
import paitest as pt

srv = pt.start_server()
c = srv.client(srv.admin_token)
a = jt.FakeAgent(srv, "lp1", gpus=2)
a.sync()


def held(known, wait_ms, out):
    cl = pt.Client(srv.url, srv.agent_token, timeout=60)
    body = {"version": 1, "node": a.node(), "known_seq": known, "wait_ms": wait_ms, "tasks": []}
    out.append(cl.post("/api/v1/agent/sync", body))


# 1. a held poll wakes with the bound task
known = a.known_seq
out = []
th = threading.Thread(target=held, args=(known, 4000, out))
th.start()
time.sleep(0.3)
st, b = jt.submit(c, jt.job_yaml("lp-a", [{"name": "main", "gpu": 1, "command": "sleep 60"}]))
th.join()
st2, r = out[0] if out else (0, {})
ids = [t.get("attempt_id", "") for t in (r or {}).get("tasks", [])]
pt.check(st == 202 and st2 == 200 and r["seq"] > known and any("lp-a" in i for i in ids),
         "held poll answers with the bound task", (st, st2, r))

# 2. a held poll superseded by a newer sync of the same node
a.sync()
ok, detail = False, None
for attempt in range(5):
    known = a.known_seq
    out = []
    th = threading.Thread(target=held, args=(known, 4000, out))
    th.start()
    time.sleep(0.3 * (attempt + 1))  # let it be held first; retried if it was not
    fresh = a.sync()
    th.join()
    st2, r = out[0] if out else (0, {})
    detail = (st2, r, fresh)
    if st2 == 200 and "tasks" not in r:
        ok = r.get("seq") == known and any("lp-a" in t["attempt_id"] for t in fresh["tasks"])
        break
pt.check(ok, "superseded poll answers without tasks, the newer sync with the desired set",
         detail)

# 3. the task is still desired (nothing was dropped by superseding)
r = a.sync()
pt.check(any("lp-a" in t["attempt_id"] for t in r["tasks"]),
         "desired set intact after superseding", r)
pt.done()
