#!/usr/bin/env python3
"""bench/e2e.py - short-job throughput end to end and dispatch latency.

Starts a real `pai server` and NODES real `pai agent` processes (process
runtime, GPUS simulated GPUs each) on loopback, submits JOBS one-task jobs
(1 GPU, command `true`) from 4 client threads as fast as the API takes
them, and waits until every job is SUCCEEDED.  Prints:
  - submissions/s (API),
  - end-to-end jobs/s (first submission -> last SUCCEEDED),
  - dispatch latency p50/p99: task attempt created (bound to a node by the
    scheduler) -> running (the agent's report), from the task timestamps,
  - queueing p50/p99: job submitted -> task bound (the server's share).
Knobs: NODES (16), GPUS (8), JOBS (2000), RUNTIME (process), PAI_BIN,
RATE (jobs/s to pace submissions at; 0, the default: as fast as possible);
TEST_TMP puts the agents' work dirs and the server's store elsewhere (e.g.
/dev/shm: each short task creates ~10 inodes on the agent side, which on a
busy journal-less ext4 costs more CPU than the server's whole share);
AGENT_TMP moves the agents' work dirs only.
Run: make bench-e2e   (or python3 bench/e2e.py)"""

import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
import e2etest as e  # noqa: E402
import paitest as pt  # noqa: E402

NODES = int(os.environ.get("NODES", "16"))
GPUS = int(os.environ.get("GPUS", "8"))
JOBS = int(os.environ.get("JOBS", "2000"))
RUNTIME = os.environ.get("RUNTIME", "process")
# RATE > 0 paces submissions at RATE jobs/s in total (latency at a steady
# load, not a burst that saturates the cores); 0 submits as fast as possible.
RATE = float(os.environ.get("RATE", "0"))


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else -1


def main():
    srv = pt.start_server(extra_args=["--log-level", "warn"])
    c = srv.client(srv.admin_token)
    if os.environ.get("AGENT_TMP"):  # the agents' work dirs only (not the store)
        os.environ["TEST_TMP"] = os.environ["AGENT_TMP"]
    agents = [e.agent(srv, "b%02d" % i, "--runtime", RUNTIME, "--gpus", str(GPUS),
                      "--log-level", "warn") for i in range(NODES)]
    if len(e.wait_nodes(c, NODES, 60)) < NODES:
        print("bench-e2e: agents did not register")
        return 1
    errors = []
    t0 = time.time()

    def submitter(lo, hi):
        cl = srv.client(srv.admin_token)
        for n, k in enumerate(range(lo, hi)):
            if RATE > 0:
                delay = t0 + n * 4.0 / RATE - time.time()
                if delay > 0:
                    time.sleep(delay)
            st, b = e.submit(cl, e.job_yaml("b%05d" % k, [e.role("main", "true", gpu=1)]))
            if st != 202:
                errors.append((st, b))

    ths = [threading.Thread(target=submitter, args=(i * JOBS // 4, (i + 1) * JOBS // 4))
           for i in range(4)]
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    t_sub = time.time() - t0
    last = 0
    while True:
        st, b = c.get("/api/v2/jobs?limit=50000")
        js = b if isinstance(b, list) else (b or {}).get("data", [])
        done = [j for j in js if j.get("state") in ("SUCCEEDED", "FAILED", "STOPPED")]
        if len(done) >= JOBS:
            break
        if time.time() - t0 > 600:
            print("bench-e2e: timeout, %d of %d done" % (len(done), JOBS))
            return 1
        # Each poll lists every job (server CPU the jobs compete for): 4/s.
        time.sleep(0.25)
    t_all = max(j.get("completedTime") or 0 for j in done) / 1000.0 - (
        min(j.get("submissionTime") or 1e18 for j in done) / 1000.0)
    dispatch, queue = [], []
    for k in range(JOBS):
        d = e.detail(c, "admin~b%05d" % k)
        ts = e.tasks(d, "main")
        if not ts or not ts[0].get("currentAttemptLaunchedTime"):
            continue
        t = ts[0]
        dispatch.append(t["currentAttemptLaunchedTime"] - t["currentAttemptCreatedTime"])
        queue.append(t["currentAttemptCreatedTime"] - d["jobStatus"]["submissionTime"])
    failed = len([j for j in done if j.get("state") != "SUCCEEDED"])
    print("bench-e2e: %d nodes x %d GPUs, runtime %s, %d jobs (%d not SUCCEEDED, %d submit "
          "errors)" % (NODES, GPUS, RUNTIME, JOBS, failed, len(errors)))
    print("  submissions/s          %8.1f" % (JOBS / t_sub))
    print("  end-to-end jobs/s      %8.1f   (first submission -> last SUCCEEDED: %.2f s)"
          % (JOBS / t_all, t_all))
    print("  dispatch ms p50/p99    %5d / %d   (task bound -> agent reports running)"
          % (pct(dispatch, 0.5), pct(dispatch, 0.99)))
    print("  queueing ms p50/p99    %5d / %d   (submission -> task bound)"
          % (pct(queue, 0.5), pct(queue, 0.99)))
    for a in agents:
        a.stop()
    srv.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
