#!/usr/bin/env python3
"""bench/submit.c, bench/e2e's load generator: it posts every body it is
given (NUL-ended, split among its threads), counts what was not 202 and
shows why, and refuses bad arguments; and bench/e2e.py runs end to end
with it at a small size (every job SUCCEEDED, the C client named)."""
import os
import subprocess
import sys
import time

import paitest as pt
import e2etest as e

BUILD = os.path.join(pt.REPO, os.environ.get("PAI_BUILD", os.environ.get("BUILD", "build")))
SUBMIT = os.path.join(BUILD, "bench", "submit")
if not os.access(SUBMIT, os.X_OK):
    pt.skip("bench/submit", "no %s (make all builds it)" % SUBMIT)
    pt.done()

srv = pt.start_server()
c = srv.client(srv.admin_token)
bodies = [e.job_yaml("s%03d" % k, [e.role("main", "true", gpu=1)]) for k in range(10)]
feed = b"".join(y.encode() + b"\0" for y in bodies)

r = subprocess.run([SUBMIT, "--url", srv.url, "--token", srv.admin_token, "--threads", "3"],
                   input=feed, capture_output=True, timeout=60)
pt.check(r.returncode == 0 and r.stdout.decode().split() == ["ok", "10", "bad", "0"],
         "10 bodies from 3 threads: 10 accepted", (r.returncode, r.stdout, r.stderr))
st, b = c.get("/api/v2/jobs?limit=100")
names = sorted(j.get("name") for j in (b if isinstance(b, list) else b.get("data", [])))
pt.check(names == ["s%03d" % k for k in range(10)], "each body is one job, none twice", names)

# the same names again: each a 409 conflict, counted and shown
r = subprocess.run([SUBMIT, "--url", srv.url, "--token", srv.admin_token, "--threads", "2"],
                   input=feed[:len(bodies[0]) + 1], capture_output=True, timeout=60)
pt.check(r.returncode == 1 and r.stdout.decode().split() == ["ok", "0", "bad", "1"] and
         b"status 409" in r.stderr, "a refused body: counted bad, its answer shown",
         (r.returncode, r.stdout, r.stderr))

# a wrong token: every post refused
r = subprocess.run([SUBMIT, "--url", srv.url, "--token", "not-a-token"],
                   input=feed[:len(bodies[0]) + 1], capture_output=True, timeout=60)
pt.check(r.returncode == 1 and b"status 401" in r.stderr, "a wrong token: 401, shown",
         (r.returncode, r.stdout, r.stderr))

# paced: 8 bodies at 40/s from 2 threads take about 0.2 s, not 0
feed8 = b"".join(e.job_yaml("p%03d" % k, [e.role("main", "true")]).encode() + b"\0"
                 for k in range(8))
t0 = time.time()
r = subprocess.run([SUBMIT, "--url", srv.url, "--token", srv.admin_token, "--threads", "2",
                    "--rate", "40"], input=feed8, capture_output=True, timeout=60)
took = time.time() - t0
pt.check(r.returncode == 0 and took >= 0.14, "--rate paces the posts (3 intervals of 50 ms "
         "per thread)", (r.returncode, took, r.stderr))

for argv in ([SUBMIT], [SUBMIT, "--url", srv.url], [SUBMIT, "--url", srv.url, "--token", "t",
                                                     "--threads", "0"],
             [SUBMIT, "--url", srv.url, "--token", "t", "--rate", "x"],
             [SUBMIT, "--url", srv.url, "--token", "t", "--what", "1"]):
    r = subprocess.run(argv, input=b"", capture_output=True, timeout=30)
    pt.check(r.returncode == 2 and b"usage" in r.stderr, "bad arguments: usage, exit 2",
             (argv[1:], r.returncode, r.stderr))
srv.stop()

# bench/e2e.py at a small size, with this client
env = dict(os.environ, JOBS="40", NODES="2", GPUS="2", MIX="1,2", BASELINE="0",
           PAI_BIN=pt.PAI_BIN, SUBMIT_BIN=SUBMIT)
r = subprocess.run([sys.executable, os.path.join(pt.REPO, "bench", "e2e.py")], env=env,
                   capture_output=True, timeout=300)
out = r.stdout.decode()
pt.check(r.returncode == 0 and "(0 not SUCCEEDED, 0 submit errors)" in out and
         "(C, bench/submit)" in out and "machine switches/job" in out,
         "bench/e2e.py: 40 jobs through bench/submit, all SUCCEEDED, the machine's switches a job",
         (r.returncode, out[-1500:], r.stderr[-1500:]))
pt.done()
