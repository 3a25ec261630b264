"""test_jobs_vcs_concurrent.py - VC changes while jobs are submitted, bound
and finished (docs/architecture.md, "Locking").

A VC change reads and writes the store outside the engine lock and rebuilds
the scheduler twice (a check, then the swap); a bind reads the job's commands
back from the store in the flush, outside the lock.  The server runs with its
lock checks on (assert(): the default build), so a store call under the
engine lock aborts it; under TSan (.ci/run) every data race fails the run.
The test then checks what the interleaving must not break: every change is
answered, every job runs once and succeeds, no GPU is given twice on a node,
and the config the store keeps is the one the server used (kill -9)."""

import os
import threading
import time

import jobstest as jt
import paitest as pt

NODES = ("h1", "h2", "h3", "h4")
CONFIG = """
physicalCluster:
  cellTypes:
    A100-NODE:
      childCellType: A100
      childCellNumber: 4
      isNodeLevel: true
  physicalCells:
%s
virtualClusters:
  default:
    virtualCells:
    - cellType: A100-NODE
      cellNumber: 2
  vc1:
    virtualCells:
    - cellType: A100-NODE
      cellNumber: 1
""" % "\n".join("  - cellType: A100-NODE\n    cellAddress: %s" % n for n in NODES)
JOBS = 40
RUN_S = 0.15  # how long a fake task runs before it exits 0

d = pt.tmpdir("pai-vcsc-")
cfg = os.path.join(d, "hived.yaml")
with open(cfg, "w") as f:
    f.write(CONFIG)
srv = pt.start_server(extra_args=["--hived-config", cfg])
c = srv.client(srv.admin_token)
stop = threading.Event()
problems = []  # (what, detail) seen by the background threads


def agent_loop(agent):
    """Sync, run each desired task for RUN_S, then report it exited 0; note a
    GPU given to two live tasks at once."""
    started = {}
    while not stop.is_set():
        try:
            agent.sync()
        except Exception as e:  # the server is gone: the checks below say so
            problems.append(("sync " + agent.name, str(e)))
            return
        now = time.time()
        gpus = [g for t in agent.running.values() for g in t["gpus"]]
        if len(gpus) != len(set(gpus)):
            problems.append(("gpu given twice on " + agent.name, sorted(gpus)))
        for a in list(agent.running):
            started.setdefault(a, now)
            if now - started[a] > RUN_S:
                agent.exit(a, 0)
        time.sleep(0.02)


cells = lambda n: {"virtualCells": [{"cellType": "A100-NODE", "cellNumber": n}]}
changes = []  # (request, status, body)


def vc_loop():
    """Create, resize and delete vc2 on the spare cell, and rewrite vc1 as it
    is (a rebuild that restores vc1's running jobs), until told to stop."""
    vc = srv.client(srv.admin_token)
    steps = [("PUT", "vc2", cells(1)), ("PUT", "vc2", cells(0)), ("PUT", "vc1", cells(1)),
             ("PUT", "vc2", cells(1)), ("DELETE", "vc2", None)]
    i = 0
    while not stop.is_set():
        method, name, body = steps[i % len(steps)]
        path = "/api/v2/virtual-clusters/" + name
        st, b = vc.put(path, body) if method == "PUT" else vc.delete(path)
        changes.append(("%s %s %s" % (method, name, body), st, b))
        i += 1
        time.sleep(0.01)


agents = [jt.FakeAgent(srv, n, gpus=4) for n in NODES]
for a in agents:
    a.sync()
threads = [threading.Thread(target=agent_loop, args=(a,), daemon=True) for a in agents]
threads.append(threading.Thread(target=vc_loop, daemon=True))
for t in threads:
    t.start()

names = []
for i in range(JOBS):
    vcname = "vc1" if i % 3 == 0 else "default"
    st, b = jt.submit(c, jt.job_yaml("cj%d" % i, [{"name": "main", "gpu": 1}], vc=vcname))
    if st != 202:
        problems.append(("submit cj%d" % i, (st, b)))
    names.append("admin~cj%d" % i)

deadline = time.time() + 120
states = {}
while time.time() < deadline:
    states = {n: jt.state(c, n) for n in names}
    if all(s in ("SUCCEEDED", "FAILED", "STOPPED") for s in states.values()):
        break
    time.sleep(0.2)
stop.set()
for t in threads:
    t.join(30)

pt.check(srv.alive(), "the server survived VC changes during binds (lock checks on)",
         srv.log()[-3000:])
bad = [x for x in changes if x[1] not in (200, 201)]
pt.check(len(changes) >= 5 and not bad,
         "every VC change while jobs bind and finish is accepted (%d changes)" % len(changes),
         bad[:5])
pt.check(all(s == "SUCCEEDED" for s in states.values()),
         "every job submitted meanwhile runs and succeeds",
         {n: s for n, s in states.items() if s != "SUCCEEDED"})
pt.check(not problems, "no GPU given twice, every sync and submission answered", problems[:5])
retried = []
for n in names:
    st, det = c.get("/api/v2/jobs/" + n)
    if st != 200 or det["jobStatus"].get("retries", 0) != 0:
        retried.append((n, st))
pt.check(not retried, "each job ran once (no attempt lost between two schedulers)", retried[:5])

st, before = c.get("/api/v2/virtual-clusters")
srv.kill9()
srv.start()
c = srv.client(srv.admin_token)
st2, after = c.get("/api/v2/virtual-clusters")
shape = lambda v: {k: x["resourcesGuaranteed"]["GPUs"] for k, x in v.items()}
pt.check(st == 200 and st2 == 200 and shape(before) == shape(after),
         "the stored config is the one the server ran with (kill -9, restart)",
         (shape(before), shape(after) if st2 == 200 else after))
pt.done()
