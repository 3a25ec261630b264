#!/usr/bin/env python3
"""test_log_quota.py - one user cannot hold all of a node's log readers
(docs/security.md, "Logs"; log_reads_per_user, 16 by default): mallory
opens 16 reads of her job's 15 MiB log and stops reading; her 17th read is
answered 429 TooManyRequestsError with Retry-After at once, while alice's
read of her own log on the same node and an admin's read of mallory's work;
once mallory's reads end, hers work again (the quota is given back, also by
reads that never started streaming)."""

import time

import e2etest as e
import paitest as pt

LOG_BYTES = 15 << 20
CAP = 16


srv = pt.start_server()
admin = srv.client(srv.admin_token)
ag = e.agent(srv, "lq1")
pt.check(e.wait_nodes(admin, 1, timeout=30) == ["lq1"], "agent lq1 registered")


def log_uri(client, job):
    d = e.wait_state(client, job, ("SUCCEEDED", "FAILED", "STOPPED"), 60)
    ts = e.tasks(d, "main")
    st, lg = client.get(ts[0]["containerLog"]) if ts else (0, None)
    uris = {loc["name"]: loc["uri"] for loc in (lg or {}).get("locations", [])}
    return e.state(d), uris.get("stdout", "")


mallory_tok = srv.create_user("lqmallory")
alice_tok = srv.create_user("lqalice")
mallory, alice = srv.client(mallory_tok), srv.client(alice_tok)
e.submit(mallory, e.job_yaml("big", [e.role(
    "main", "yes line-0123456789abcdef | head -c %d; echo; echo end-of-log" % LOG_BYTES)]))
e.submit(alice, e.job_yaml("small", [e.role("main", "echo hello-from-alice")]))
st_m, m_uri = log_uri(mallory, "lqmallory~big")
st_a, a_uri = log_uri(alice, "lqalice~small")
pt.check(st_m == "SUCCEEDED" and st_a == "SUCCEEDED" and m_uri and a_uri,
         "mallory's job wrote a 15 MiB log, alice's a line", (st_m, st_a))

held = []
for _ in range(CAP):
    st, r, _ = pt.get_fresh(srv.port, m_uri, mallory_tok, read=False)
    first = r.read(65536) if st == 200 else b""
    held.append((st, len(first), r))
pt.check(all(st == 200 and n == 65536 for st, n, _ in held),
         "mallory opens %d reads of her log and stops reading" % CAP, [h[:2] for h in held])
t0 = time.time()
st, body, hdr = pt.get_fresh(srv.port, m_uri, mallory_tok)
took = time.time() - t0
txt = body.decode(errors="replace")
pt.check(st == 429 and '"TooManyRequestsError"' in txt and "log_reads_per_user" in txt,
         "her %dth read is answered 429 TooManyRequestsError" % (CAP + 1), (st, txt[:300]))
pt.check(hdr.get("Retry-After", "").isdigit() and took < 2,
         "at once, with Retry-After", (hdr, took))
st, body, _ = pt.get_fresh(srv.port, a_uri, alice_tok)
pt.check(st == 200 and b"hello-from-alice" in body,
         "alice still reads her log on the same node", (st, body[:200]))
st, body, _ = pt.get_fresh(srv.port, m_uri + "?tailMode=true", srv.admin_token)
pt.check(st == 200 and body.endswith(b"end-of-log\n"), "an admin (not bounded) reads mallory's log",
         (st, body[-40:]))

for _, _, r in held:
    r.close()
time.sleep(1)
results = []
for _ in range(CAP + 4):  # sequential: each gives its read back when it ends
    st, body, _ = pt.get_fresh(srv.port, m_uri + "?tailMode=true", mallory_tok)
    results.append(st)
pt.check(results == [200] * (CAP + 4),
         "once her reads ended, mallory reads again, as often as she likes one after another",
         results)
pt.done()
