#!/usr/bin/env python3
"""bench/portal.py - time to first render of the portal's job list with 10,000 jobs.

  python3 bench/portal.py [--jobs 10000] [--runs 5]      (or: make bench-portal)

1. starts a real `pai server` (fresh data dir, free loopback port) and one
   hollow agent with 8 simulated GPUs (tasks are accounted, not executed);
2. seeds N jobs through the REST API (8 keep-alive clients; each job is
   stopped right after it is submitted, so the store holds mostly finished
   jobs, as real clusters do; the last 16 stay waiting or running);
3. loads the portal's job list (#/jobs) in headless Chromium RUNS times and
   prints the time from navigation start to the first page of rows in the
   DOM (performance mark "pai-jobs-rendered"): the first load (cold cache)
   and the median of the others (files revalidated by ETag), for 20 and 100
   rows per page, and the /api/v2/jobs call's own duration.
Target: under 1,000 ms.  Needs chromium and tests/browser/node_modules
(scripts/deps.sh --browser).
"""
import argparse
import json
import os
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
import paitest  # noqa: E402

JOB = """protocolVersion: 2
name: {name}
type: job
prerequisites:
  - {{type: dockerimage, name: img, uri: ubuntu:22.04}}
taskRoles:
  worker:
    instances: 1
    dockerImage: img
    resourcePerInstance: {{cpu: 1, memoryMB: 256, gpu: 1}}
    commands: [sleep 600]
defaults: {{virtualCluster: default}}
"""


def seed(srv, total, clients=8, keep=16):
    errors = []
    nxt = [0]
    lock = threading.Lock()

    def worker():
        c = srv.client(srv.admin_token)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= total:
                return
            name = "bench_%05d" % i
            st, body = c.request("POST", "/api/v2/jobs", raw=JOB.format(name=name).encode(),
                                 content_type="text/yaml")
            if st != 202:
                errors.append((st, body))
                continue
            if i < total - keep:
                c.put("/api/v2/jobs/admin~%s/executionType" % name, {"value": "STOP"})

    t0 = time.time()
    ts = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]  # ^C ends all
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.time() - t0, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    srv = paitest.start_server()
    paitest.start_agent(srv, "bench-n1", ["--hollow", "--gpus", "8", "--runtime", "hollow"])
    time.sleep(1)
    took, errors = seed(srv, a.jobs)
    print("portal: seeded %d jobs in %.1f s (%d refused%s)" % (
        a.jobs, took, len(errors), ": %s" % (errors[0],) if errors else ""), flush=True)
    st, body = srv.client(srv.admin_token).get("/api/v2/jobs?withTotalCount=true&limit=1")
    print("portal: server lists %s jobs" % (body.get("totalCount") if isinstance(body, dict) else "?"))
    for size in (20, 100):
        env = dict(os.environ, PORTAL_URL=srv.url, TOKEN=srv.admin_token, USER_NAME=paitest.ADMIN_USER,
                   RUNS=str(a.runs), SIZE=str(size))
        out = subprocess.run(["node", os.path.join(HERE, "portal-render.mjs")], env=env,
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            print("portal: browser run failed:\n" + out.stderr[-2000:])
            return 1
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print("portal: job list, %3d rows of %s: first render cold %.0f ms, warm median %.0f ms, "
              "max %.0f ms; /api/v2/jobs %s ms" % (
                  size, r["summary"], r["cold_ms"], r["warm_median_ms"], r["max_ms"], r["api_ms"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
