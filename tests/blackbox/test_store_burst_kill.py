#!/usr/bin/env python3
"""test_store_burst_kill.py - the SQLite store under a burst of submissions:
8 clients submit jobs as fast as the server takes them, past the WAL's
first checkpoint and restart (src/store/sqlite.c: every 4,000 frames), and
the server is killed with -9 while they do. After a restart every job a
202 acknowledged is there; during the burst the WAL file stayed within its
bound (4,000 frames and what one commit adds)."""
import os
import threading
import time

import jobstest as jt
import paitest as pt

FRAME = 24 + 4096
srv = pt.start_server()
agent = jt.FakeAgent(srv, "n1", gpus=8)
agent.sync()
poll = jt.Poller(agent)
poll.start()

acked, lock, stop = [], threading.Lock(), threading.Event()
wal = os.path.join(srv.data_dir, "pai.db-wal")
most = [0]


def writer(i):
    cl = srv.client(srv.admin_token)
    k = 0
    while not stop.is_set():
        name = "k%d-%d" % (i, k)
        k += 1
        try:
            st, _ = jt.submit(cl, jt.job_yaml(name))
        except Exception:  # the server is gone
            return
        if st == 202:
            with lock:
                acked.append("admin~" + name)


def watch():
    while not stop.is_set():
        try:
            most[0] = max(most[0], os.path.getsize(wal))
        except OSError:
            pass
        time.sleep(0.005)


threads = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(8)]
threads.append(threading.Thread(target=watch, daemon=True))
for t in threads:
    t.start()
# ~5-12 WAL frames a job: 1,500 jobs fill the WAL past 4,000 frames
deadline = time.time() + 180
while len(acked) < 1500 and time.time() < deadline:
    time.sleep(0.02)
srv.kill9()  # the clients are still submitting
stop.set()
poll.stop_flag = True
for t in threads:
    t.join(30)
print("# acknowledged %d, the WAL at most %d frames" % (len(acked), most[0] // FRAME))
pt.check(len(acked) >= 1500, "the burst acknowledged 1,500 jobs before the kill", len(acked))
pt.check(most[0] > 3000 * FRAME, "the burst filled the WAL towards a checkpoint",
         most[0] // FRAME)
pt.check(most[0] <= 4500 * FRAME + 32, "the WAL stayed within 4,000 frames and one commit's",
         most[0] // FRAME)

srv.restart()
c = srv.client(srv.admin_token)
missing = [n for n in acked if c.get("/api/v2/jobs/" + n)[0] != 200]
pt.check(not missing, "every acknowledged job is there after kill -9 mid-burst",
         (len(missing), missing[:5]))
st, b = c.get("/api/v2/jobs?withTotalCount=true&limit=1")
pt.check(st == 200 and b.get("totalCount", 0) >= len(acked),
         "the job list counts every acknowledged job", (st, b.get("totalCount"), len(acked)))
pt.done()
