#!/usr/bin/env python3
"""test_job_events.py - job events are durable (src/engine/events.c): a
finished job's, a running job's and a retried job's events are the same
after `pai server` is killed (-9) and restarted; a job keeps its last
events_per_job; events past event_retention_days are pruned from the store
and no longer shown.  On SQLite by default; tests/suites/store_pg.sh runs it
again with PAI_STORE=postgres://... (the store is then checked with psql)."""
import os
import sqlite3
import subprocess
import time

import jobstest as jt
import paitest as pt

STORE = os.environ.get("PAI_STORE", "")
PG = STORE.startswith("postgres")
CAP = 4

srv = pt.start_server(extra_args=["--events-per-job", str(CAP)])
c = srv.client(srv.admin_token)
n1 = jt.FakeAgent(srv, "n1", gpus=4)
n1.sync()


def events(job):
    st, b = c.get("/api/v2/jobs/%s/events" % job)
    if st != 200:
        return ("error", st, b)
    return [(e["type"], e["reason"], e["message"], e["count"], e["firstTimestamp"])
            for e in b["data"]]


def store_sql(sql, args=()):
    """One value from the store's own tables (SQLite file or PostgreSQL)."""
    if PG:
        q = sql.replace("records", "pai_records")
        for a in args:
            q = q.replace("?", "'%s'" % a.replace("'", "''"), 1)
        r = subprocess.run(["psql", "-X", "-q", "-A", "-t", STORE, "-c", q],
                           capture_output=True, text=True, timeout=30)
        return r.stdout.strip() if r.returncode == 0 else "psql: " + r.stderr
    db = sqlite3.connect(os.path.join(srv.data_dir, "pai.db"), timeout=10)
    try:
        cur = db.execute(sql, args)
        db.commit()
        row = cur.fetchone()
        return str(row[0]) if row else ""
    finally:
        db.close()


def stored(job):
    return store_sql("SELECT count(*) FROM records WHERE kind = 'event' AND key LIKE ?",
                     (job + "/%",))


# a finished job, a running one and one retried past the cap
done = "admin~ev-done"
jt.submit(c, jt.job_yaml("ev-done", [{"name": "main", "gpu": 1}]))
a = n1.sync_for(done)
n1.sync()
n1.exit(a[0], 0)
n1.settle()
run = "admin~ev-run"
jt.submit(c, jt.job_yaml("ev-run", [{"name": "main", "gpu": 1}]))
n1.sync_for(run)
n1.sync()
flaky = "admin~ev-flaky"
jt.submit(c, jt.job_yaml("ev-flaky", [{"name": "main", "gpu": 1}], retry=3))
for k in range(4):
    ids = n1.sync_for(flaky)
    n1.sync()
    if ids:
        n1.exit(ids[0], 1)
    n1.settle()
jt.wait_state(c, flaky, "FAILED")
jt.wait_state(c, done, "SUCCEEDED")
time.sleep(0.5)  # the timer's flush of the last changes

before = {j: events(j) for j in (done, run, flaky)}
pt.check([e[1] for e in before[done]] == ["Completed", "Scheduled"],
         "a finished job's events, newest first", before[done])
pt.check([e[1] for e in before[run]] == ["Scheduled"], "a running job's events", before[run])
pt.check(len(before[flaky]) == CAP and before[flaky][0][1] == "Completed",
         "a job retried 3 times keeps its last %d events" % CAP, before[flaky])
pt.check(stored(flaky) == str(CAP), "the store holds the same %d" % CAP, stored(flaky))

srv.kill9()
srv.restart()
c = srv.client(srv.admin_token)
after = {j: events(j) for j in (done, run, flaky)}
for j in (done, run, flaky):
    pt.check(after[j] == before[j], "%s: the same events after kill -9 and a restart" % j,
             (before[j], after[j]))
# the restored running job's events go on: its exit adds Completed
n1.known_seq = 0
n1.sync()
ids = n1.find(run)
if ids:
    n1.exit(ids[0], 0)
n1.settle()
jt.wait_state(c, run, "SUCCEEDED")
time.sleep(0.5)
pt.check([e[1] for e in events(run)] == ["Completed", "Scheduled"],
         "a restored job's new event is added to its stored ones", events(run))

# retention: an event 40 days old (written into the store while the server
# is stopped) is shown without a retention, gone with event_retention_days 30
srv.stop()
old_ms = int(time.time() * 1000) - 40 * 86400 * 1000
store_sql("DELETE FROM records WHERE kind = 'event' AND key = ?", (done + "/0000000000",))
store_sql("INSERT INTO records (kind, key, seq, json) VALUES ('event', ?, %d, ?)" % old_ms,
          (done + "/0000000000",
           '{"uid":"%s","frameworkName":"%s","type":"Normal","reason":"Old","message":"old",'
           '"firstTimestamp":%d,"lastTimestamp":%d,"count":1,"sourceComponent":"pai-server"}'
           % (done, done, old_ms, old_ms)))
# (the key of its first event: that one is replaced by the old one)
srv.start()
c = srv.client(srv.admin_token)
pt.check([e[1] for e in events(done)] == ["Completed", "Old"],
         "an old event is shown while no retention is set", events(done))
srv.stop()
srv.extra_args += ["--event-retention-days", "30"]
srv.start()
c = srv.client(srv.admin_token)
pt.check([e[1] for e in events(done)] == ["Completed"],
         "with event_retention_days 30 the 40-day-old event is not shown", events(done))
deadline = time.time() + 10
while time.time() < deadline and stored(done) != "1":
    time.sleep(0.1)
pt.check(stored(done) == "1", "the timer pruned it from the store (the recent one stays)",
         stored(done))
pt.check("pruned 1 job events" in srv.log(), "the pruning is logged", srv.log()[-1500:])
pt.done()
