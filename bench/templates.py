#!/usr/bin/env python3
"""bench/templates.py - the job templates at the server's bound (10,000).

  python3 bench/templates.py [--templates 10000] [--runs 20]

1. starts a real `pai server` (fresh data dir, free loopback port, SQLite);
2. publishes N templates through the REST API as the admin (8 keep-alive
   clients; about 1 KB of protocol each; a third public, a third shared with
   a group, a third private; 3 tags each out of 40);
3. times, as the median and the worst of RUNS calls (and the server's CPU
   time per call, from /proc, which a loaded machine does not inflate): the first page of the
   list (100, sorted by uses) for the admin and for a user who sees the
   public and group templates, a keyword search, a tag filter, a template's
   detail (its protocol read from the store), and a submission from a
   template (the merge and the job's submission, with no agent);
4. prints the server's resident memory after seeding and the time a
   restart takes to load the templates back.
"""
import argparse
import os
import statistics
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
import paitest  # noqa: E402

PROTO = """protocolVersion: 2
name: {name}
type: job
description: template {name} for the benchmark of the template registry
parameters:
  lr: 0.01
  epochs: 10
  model: resnet50
prerequisites:
  - {{type: dockerimage, name: img, uri: 'pytorch/pytorch:2.1.0-cuda12.1'}}
taskRoles:
  worker:
    instances: 2
    dockerImage: img
    resourcePerInstance: {{cpu: 1, memoryMB: 256, gpu: 0}}
    commands:
      - python train.py --lr <% $parameters.lr %> --epochs <% $parameters.epochs %>
      - echo model <% $parameters.model %> done on $PAI_TASK_ROLE_NAME $PAI_TASK_INDEX
"""
TAGS = ["tag%02d" % i for i in range(40)]


def cpu_ms(pid):
    """The process's user + system CPU time in ms (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(fn, runs, pid):
    """Median and worst wall time of runs calls, and the server's CPU per call
    (which the load of a shared machine does not inflate as it does the wall time)."""
    out = []
    c0 = cpu_ms(pid)
    for _ in range(runs):
        t0 = time.perf_counter()
        st, _ = fn()
        out.append((time.perf_counter() - t0) * 1000)
        if st not in (200, 202):
            raise RuntimeError("status %s" % st)
    return statistics.median(out), max(out), (cpu_ms(pid) - c0) / runs


def rss_mb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--templates", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    srv = paitest.start_server()
    admin = srv.client(srv.admin_token)
    st, _ = admin.post("/api/v2/groups", {"groupname": "team", "description": "",
                                          "externalName": "team", "extension": {}})
    user = srv.client(srv.create_user("benchuser"))
    admin.put("/api/v2/users/benchuser/group", {"groupname": "team"})

    n, lock, errors = [0], threading.Lock(), []

    def worker():
        c = srv.client(srv.admin_token)
        while True:
            with lock:
                i = n[0]
                n[0] += 1
            if i >= a.templates:
                return
            vis = ("public", "groups", "private")[i % 3]
            body = {"name": "t%05d" % i, "title": "Template %d" % i, "protocol": PROTO.format(name="t%05d" % i),
                    "description": "benchmark template number %d, %s" % (i, "vision" if i % 7 == 0 else "nlp"),
                    "tags": [TAGS[i % 40], TAGS[(i * 7) % 40], TAGS[(i * 13) % 40]], "visibility": vis}
            if vis == "groups":
                body["groups"] = ["team"]
            st, b = c.post("/api/v2/templates", body)
            if st != 201:
                errors.append((st, b))

    t0 = time.time()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(8)]  # ^C ends all
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seed_s = time.time() - t0
    if errors:
        raise RuntimeError("publish failed: %s" % errors[:3])
    print("published %d templates in %.1f s (%.0f/s)" % (a.templates, seed_s, a.templates / seed_s))
    print("server RSS after publishing: %.1f MiB" % rss_mb(srv.proc.pid))
    rows = [
        ("list, first 100 by uses, admin (all)", lambda: admin.get("/api/v2/templates?limit=100")),
        ("list, first 100 by uses, user (public + group)", lambda: user.get("/api/v2/templates?limit=100")),
        ("keyword search 'vision', user", lambda: user.get("/api/v2/templates?keyword=vision&limit=100")),
        ("tag filter tag07, user", lambda: user.get("/api/v2/templates?tag=tag07&limit=100")),
        ("detail (protocol from the store)", lambda: user.get("/api/v2/templates/admin~t00003")),
    ]
    pid = srv.proc.pid
    for name, fn in rows:
        med, worst, cpu = timed(fn, a.runs, pid)
        print("%-50s median %7.1f ms  max %7.1f ms  server CPU %6.1f ms" % (name, med, worst, cpu))
    k = [0]

    def submit():
        k[0] += 1
        return user.post("/api/v2/templates/admin~t00000/submit",
                         {"name": "bench%d" % k[0], "parameters": {"lr": "0.1"}})
    med, worst, cpu = timed(submit, a.runs, pid)
    print("%-50s median %7.1f ms  max %7.1f ms  server CPU %6.1f ms"
          % ("submit from a template (no agent)", med, worst, cpu))
    t0 = time.time()
    srv.restart()
    print("restart with %d templates until the API answers: %.2f s" % (a.templates, time.time() - t0))
    paitest._cleanup()


if __name__ == "__main__":
    main()
