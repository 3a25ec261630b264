"""test_http_pool_writes.py - a submission runs on the pool thread that read
it, not on a write worker, while a commit is a local fsync (SQLite) and on
at most half the pool's threads at once (src/server/http.c, pool_take;
server_pool_routes[] in modules.c): with --http-threads 4 a lone submission
is counted on="pool" in pai_http_write_requests_total, a stop (not a pool
route) on="worker"; with --http-threads 1 (half of it is none) every
submission runs on a write worker.  Submissions sent at once from several
clients are all answered 202 either way, the pool's count never more than
the submissions."""

import threading

import jobstest as jt
import paitest as pt


def ran_on(c):
    """{pool|worker: value} of pai_http_write_requests_total."""
    _, text = c.get("/metrics")
    out = {}
    for line in str(text).splitlines():
        if line.startswith("pai_http_write_requests_total{"):
            where = line.split('on="', 1)[1].split('"', 1)[0]
            out[where] = float(line.rsplit(" ", 1)[1])
    return out


def submit_many(srv, prefix, n):
    """n submissions at once, each from its own client; their statuses."""
    got = [None] * n

    def one(k):
        c = srv.client(srv.admin_token)
        got[k] = jt.submit(c, jt.job_yaml("%s-%d" % (prefix, k),
                                          [{"name": "main", "gpu": 1, "command": "true"}]))[0]

    ts = [threading.Thread(target=one, args=(k,)) for k in range(n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    return got


for threads, pool in ((4, True), (1, False)):
    srv = pt.start_server(extra_args=["--http-threads", str(threads)])
    c = srv.client(srv.admin_token)
    name = "--http-threads %d" % threads
    before = ran_on(c)
    st, body = jt.submit(c, jt.job_yaml("lone", [{"name": "main", "gpu": 1, "command": "true"}]))
    after = ran_on(c)
    where = "pool" if pool else "worker"
    other = "worker" if pool else "pool"
    pt.check(st == 202 and after.get(where, 0) == before.get(where, 0) + 1
             and after.get(other, 0) == before.get(other, 0),
             "%s: a lone submission runs on the %s" % (name, where), (st, body, before, after))
    st, body = c.put("/api/v2/jobs/admin~lone/executionType", {"value": "STOP"})
    stopped = ran_on(c)
    pt.check(st == 202 and stopped.get("worker", 0) == after.get("worker", 0) + 1
             and stopped.get("pool", 0) == after.get("pool", 0),
             "%s: a stop runs on a write worker" % name, (st, body, after, stopped))
    n = 8
    sts = submit_many(srv, "many", n)
    end = ran_on(c)
    ran = end.get("pool", 0) - stopped.get("pool", 0) + end.get("worker", 0) - stopped.get("worker", 0)
    pt.check(sts == [202] * n and ran == n and (pool or end.get("pool", 0) == 0),
             "%s: %d submissions at once are all answered 202, each run once (%s)"
             % (name, n, end), (sts, stopped, end))
    srv.stop()
pt.done()
