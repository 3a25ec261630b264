#!/usr/bin/env python3
"""bench/vs-slurm/run.py - pai against Slurm on this machine, in one run.

Starts Slurm from Debian (slurmctld and NODES slurmd in multiple-slurmd
mode: one `slurmd -N nNN` per node on its own loopback port, GPUS fake GPUs
each through gres.conf device files) and a real `pai server` with NODES `pai
agent` processes of GPUS simulated GPUs, one after the other, alternating
(pai, Slurm, pai, Slurm: ROUNDS rounds, a fresh start each time), with a
bare-start yardstick (JOBS `bash -c true`, NODES-way, xargs, with a task's
environment: bench/yardstick.py) before each and at the end. Both get the
same workloads through their CLIs (`sbatch`, `pai submit`), GPUs per job
cycling through the mix 1,1,1,1,2,2,2,4,4,8:
  - seq: SEQ CLI submissions from one client (submissions/s);
  - burst: JOBS short jobs (`true`) from CLIENTS clients: CLI submissions/s,
    end-to-end jobs/s (first submission -> nothing left queued or running),
    host CPU per job, wait p50/p95 from each system's own records;
  - burst again, pai's jobs through its REST API (what its CLI and portal
    call; Slurm's only client is its CLI, so it runs the CLI burst again);
  - stream: STREAM jobs at RATE jobs/s, each writing $EPOCHREALTIME first:
    wait p50/p95 from the client's submission to the job's first
    instruction (ms), and from the systems' records;
  - dist: DIST two-role jobs (1 ps task of 1 GPU + DIST_WORKERS worker tasks
    of 4 GPUs, one gang across nodes; Slurm: a heterogeneous job running
    `srun --het-group=0,1 true`) from CLIENTS clients: jobs/s, CPU per job;
  - backfill: a backlog of BF_SMALL jobs (`sleep 2`, the mix, 1-minute limit
    for Slurm) with BF_LARGE gangs of BF_GANG whole nodes (`sleep 3`) spread
    among them, submitted in order from one client: makespan, GPU
    utilisation, wait p50/p95 of the small jobs and p50/max of the gangs.
Wait from the records: Slurm's Submit and Start of `sacct -c` (its job
completion log; Slurm keeps whole seconds, and Start is the allocation),
pai's job detail (submissionTime; the last task's currentAttemptLaunchedTime,
the whole gang reported running: later than an allocation).

Host CPU per job: each system's whole process tree (controller, node
daemons, step daemons or monitors, jobs) from a cpuacct cgroup it is started
in; beside it the kernel threads' CPU over the same phase (kworkers removing
cgroups, RCU, softirqs: whole machine, so other users' work counts too) and
the CLI's (the bench's reaped children). The controller's peak memory is
its VmHWM. Ratios: pai / Slurm, and each against the bare yardstick of the
same round (end-to-end jobs/s over bare starts/s; CPU per job over CPU per
bare start).

Tuning, the same spirit for both (short jobs, no accounting database):
Slurm with auth/none and cred/none (no munge round trip per message), no
accounting storage (jobcomp/filetxt only, for sacct -c), proctrack/linuxproc
and task/none (no cgroups, where pai keeps its cgroups and limits: this
favours Slurm; SLURM_PROCTRACK=cgroup for proctrack/cgroup + task/cgroup),
select/cons_tres, sched/backfill with batch_sched_delay=0 (start batch jobs
at once), bf_interval=1 (backfill every second, the minimum),
sched_min_interval=0 (a scheduling pass on every event), bf_continue and
default_queue_depth=10000 (consider the whole queue), no prolog or epilog
(SLURM_EPILOG=/bin/true to try one), MinJobAge=2 (forget finished jobs
fast). pai with its defaults (process runtime, tasks under their own uid,
cgroups with the job's limits).

Knobs: NODES (16), GPUS (8), JOBS (1000), SEQ (50), STREAM (300), RATE (20),
DIST (100), DIST_WORKERS (4), BF_SMALL (200), BF_LARGE (4), BF_GANG
(NODES/2), ROUNDS (2), CLIENTS (4), SYSTEMS ("pai,slurm"), WORKLOADS
("seq,burst,api,stream,dist,backfill"), PERF (a path:
`perf record -a -g` over pai's first REST burst, with a .pids file naming
the server, agents and monitors), SLURM_SCHED, SLURM_PROCTRACK,
SLURM_EPILOG, DIST_SLURM (het), PAI_BIN. Needs root and Slurm (`make
bench-vs-slurm` installs it: scripts/deps.sh --slurm). It starts everything
under a fresh directory, stops only the processes it started (by pid), then removes the directory
and its cgroups.
Run: make bench-vs-slurm   (or python3 bench/vs-slurm/run.py)"""

import collections
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "blackbox"))
sys.path.insert(0, HERE)
import sweep  # noqa: E402
sys.path.insert(0, os.path.join(HERE, ".."))
import yardstick  # noqa: E402
from systems import (BF_GANG, BF_GANG_S, BF_SMALL_S, DIST_SLURM, DIST_WORKERS, GPUS,  # noqa: E402
                     NODES, SLURM_EPILOG, SLURM_PROCTRACK, SLURM_SCHED, Pai, Slurm)

JOBS = int(os.environ.get("JOBS", "1000"))
SEQ = int(os.environ.get("SEQ", "50"))
STREAM = int(os.environ.get("STREAM", "300"))
RATE = float(os.environ.get("RATE", "20"))
DIST = int(os.environ.get("DIST", "100"))
BF_SMALL = int(os.environ.get("BF_SMALL", "200"))
BF_LARGE = int(os.environ.get("BF_LARGE", "4"))
ROUNDS = int(os.environ.get("ROUNDS", "2"))
CLIENTS = int(os.environ.get("CLIENTS", "4"))
SYSTEMS = os.environ.get("SYSTEMS", "pai,slurm").split(",")
PERF = os.environ.get("PERF", "")
WORKLOADS = os.environ.get("WORKLOADS", "seq,burst,api,stream,dist,backfill").split(",")
MIX = [1, 1, 1, 1, 2, 2, 2, 4, 4, 8]
HZ = os.sysconf("SC_CLK_TCK")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def kthreads():
    """pid -> CPU seconds so far of each kernel thread (child of kthreadd)."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                v = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if v[1] == "2" or d == "2":
            out[d] = (int(v[11]) + int(v[12])) / HZ
    return out


def kthreads_delta(k0):
    """Kernel threads' CPU since the snapshot k0, of those still alive at the
    end (a kworker that exited meanwhile takes its time with it: a lower
    bound)."""
    return sum(max(0.0, v - k0.get(p, 0.0)) for p, v in kthreads().items())


def client_s():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class Meter:
    """The CPU of a phase: the system's tree, the kernel threads, the CLI."""

    def __init__(self, s):
        self.s = s
        self.k0 = kthreads()
        self.v0 = (s.acct.ns() / 1e9, 0.0, client_s(), time.time(), *s.acct.user_sys())

    def done(self, jobs, prefix, res):
        v1 = (self.s.acct.ns() / 1e9, kthreads_delta(self.k0), client_s(), time.time(),
              *self.s.acct.user_sys())
        d = [b - a for a, b in zip(self.v0, v1)]
        res[prefix + "cpu_ms"] = 1000 * d[0] / jobs
        res[prefix + "kcpu_ms"] = 1000 * d[1] / jobs
        res[prefix + "cli_ms"] = 1000 * d[2] / jobs
        res[prefix + "e2e"] = jobs / d[3]
        res[prefix + "sys"] = 100 * d[5] / max(1e-9, d[4] + d[5])


def drain(s, timeout=900):
    t0 = time.time()
    while s.active() > 0:
        if time.time() - t0 > timeout:
            raise RuntimeError("%s: jobs did not finish" % s.name)
        time.sleep(0.25)
    return time.time()


def waits(s, names, prefix, res, p2=0.95):
    rec = s.records(names)
    w = [1000 * (st - sub) for sub, st in rec.values()]
    res[prefix + "w50"] = pct(w, 0.5)
    res[prefix + "w95"] = pct(w, p2)
    res[prefix + "recs"] = len(rec)
    return rec


def parallel(submit, names, specs):
    """Submit names[k] with specs[k] = (kind, gpus) from CLIENTS threads."""
    fails = []

    def client(lo, hi):
        for k in range(lo, hi):
            if not submit(names[k], *specs[k]):
                fails.append(k)

    n = len(names)
    ths = [threading.Thread(target=client, args=(i * n // CLIENTS, (i + 1) * n // CLIENTS),
                            daemon=True)
           for i in range(CLIENTS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return fails


def sequential(s, tag, res):
    t0 = time.time()
    ok = sum(s.submit("%s-s%04d" % (tag, k), "short", MIX[k % len(MIX)]) for k in range(SEQ))
    res["seq_submit"] = SEQ / (time.time() - t0)
    res["fails"] += SEQ - ok
    drain(s)


def burst(s, tag, res, submit=None, prefix="", perf=None):
    names = ["%s-%sb%05d" % (tag, prefix, k) for k in range(JOBS)]
    specs = [("short", MIX[k % len(MIX)]) for k in range(JOBS)]
    prof = perf_start(s, perf) if perf else None
    m = Meter(s)
    t0 = time.time()
    fails = parallel(submit or s.submit, names, specs)
    res[prefix + "submit"] = JOBS / (time.time() - t0)
    drain(s)
    m.done(JOBS, prefix, res)
    if prof:
        perf_stop(prof)
    res["fails"] += len(fails)
    waits(s, names, prefix, res)


def stream(s, tag, res):
    out = os.path.join(s.dir, "out", tag)
    os.makedirs(out, exist_ok=True)
    os.chmod(out, 0o1777)
    subs = {}
    t0 = time.time()
    for k in range(STREAM):
        delay = t0 + k / RATE - time.time()
        if delay > 0:
            time.sleep(delay)
        name = "%s-r%05d" % (tag, k)
        subs[name] = time.time()
        if not s.submit(name, "short", MIX[k % len(MIX)], out):
            res["fails"] += 1
    drain(s)
    w = []
    for f in os.listdir(out):
        name = f.split("~")[-1]
        try:
            with open(os.path.join(out, f)) as fh:
                started = float(fh.read().strip())
        except (OSError, ValueError):
            continue
        if name in subs:
            w.append(1000 * (started - subs[name]))
    res["sw50"], res["sw95"], res["stamped"] = pct(w, 0.5), pct(w, 0.95), len(w)
    waits(s, list(subs), "s_r", res)


def dist(s, tag, res):
    names = ["%s-d%04d" % (tag, k) for k in range(DIST)]
    m = Meter(s)
    t0 = time.time()
    res["fails"] += len(parallel(s.submit, names, [("dist", 0)] * DIST))
    res["d_submit"] = DIST / (time.time() - t0)
    drain(s)
    m.done(DIST, "d_", res)
    waits(s, names, "d_", res)


def backfill(s, tag, res):
    every = max(1, (BF_SMALL + BF_LARGE) // max(1, BF_LARGE))
    names, kinds, gsec = [], [], 0.0
    small_left, large_left = BF_SMALL, BF_LARGE
    k = 0
    while small_left or large_left:
        if large_left and (k % every == every // 2 or not small_left):
            kinds.append(("gang", GPUS))
            large_left -= 1
            gsec += BF_GANG * GPUS * BF_GANG_S
        else:
            g = MIX[small_left % len(MIX)]
            kinds.append(("small", g))
            small_left -= 1
            gsec += g * BF_SMALL_S
        names.append("%s-f%04d" % (tag, k))
        k += 1
    t0 = time.time()
    for n, (kind, g) in zip(names, kinds):
        if not s.submit(n, kind, g):
            res["fails"] += 1
    t_end = drain(s)
    res["bf_makespan"] = t_end - t0
    res["bf_util"] = gsec / ((t_end - t0) * NODES * GPUS)
    small = [n for n, (kind, _) in zip(names, kinds) if kind == "small"]
    gangs = [n for n, (kind, _) in zip(names, kinds) if kind == "gang"]
    waits(s, small, "bf_", res)
    waits(s, gangs, "bfg_", res, 1.0)


def perf_start(s, path):
    p = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "499", "-o", path],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1)
    with open(path + ".pids", "w") as f:
        for role, pids in s.pids().items():
            for pid in pids:
                f.write("%s %d\n" % (role, pid))
                for c in children(pid):
                    f.write("%s-child %d\n" % (role, c))
    return p


def perf_stop(p):
    p.send_signal(signal.SIGINT)
    p.wait(60)


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def bare():
    c0, t0 = client_s(), time.time()
    yardstick.run(JOBS, NODES)
    return JOBS / (time.time() - t0), 1000 * (client_s() - c0) / JOBS


def run_system(cls, base, tag, perf):
    s = cls(base)
    res = {"fails": 0, "load0": os.getloadavg()[0]}
    try:
        if "seq" in WORKLOADS:
            sequential(s, tag, res)
        if "burst" in WORKLOADS:
            burst(s, tag, res)
        if "api" in WORKLOADS:
            # Slurm's only client is its CLI; pai's CLI and portal call its REST API
            burst(s, tag, res, getattr(s, "submit_rest", s.submit), "api_", perf)
        if "stream" in WORKLOADS:
            stream(s, tag, res)
        if "dist" in WORKLOADS:
            dist(s, tag, res)
        if "backfill" in WORKLOADS:
            backfill(s, tag, res)
        res["ctl_mb"] = s.ctl_hwm() / 1024
        if s.errors:
            res["errors"] = collections.Counter(s.errors).most_common(3)
        res["load1"] = os.getloadavg()[0]
        return res
    finally:
        s.stop()


ROWS = [("seq_submit", "CLI submissions/s, 1 client", "%.0f"),
        ("submit", "CLI submissions/s, CLIENTS clients", "%.0f"),
        ("e2e", "burst via CLI: end-to-end jobs/s", "%.0f"),
        ("cpu_ms", "  host CPU per job, ms (tree)", "%.1f"),
        ("sys", "  of it in the kernel, %", "%.0f"),
        ("kcpu_ms", "  kernel threads per job, ms", "%.2f"),
        ("cli_ms", "  CLI per job, ms", "%.1f"),
        ("w50", "  wait p50 ms (records)", "%.0f"),
        ("w95", "  wait p95 ms (records)", "%.0f"),
        ("api_e2e", "burst, REST (pai) / CLI: jobs/s", "%.0f"),
        ("api_cpu_ms", "  host CPU per job, ms (tree)", "%.1f"),
        ("api_sys", "  of it in the kernel, %", "%.0f"),
        ("api_kcpu_ms", "  kernel threads per job, ms", "%.2f"),
        ("api_w50", "  wait p50 ms (records)", "%.0f"),
        ("api_w95", "  wait p95 ms (records)", "%.0f"),
        ("sw50", "stream: wait p50 ms (1st instr.)", "%.0f"),
        ("sw95", "stream: wait p95 ms (1st instr.)", "%.0f"),
        ("s_rw50", "stream: wait p50 ms (records)", "%.0f"),
        ("s_rw95", "stream: wait p95 ms (records)", "%.0f"),
        ("d_e2e", "2-role gang: end-to-end jobs/s", "%.1f"),
        ("d_cpu_ms", "  host CPU per job, ms", "%.1f"),
        ("d_w50", "  wait p50 ms (records)", "%.0f"),
        ("d_w95", "  wait p95 ms (records)", "%.0f"),
        ("bf_makespan", "backfill backlog: makespan s", "%.1f"),
        ("bf_util", "  GPU utilisation", "%.2f"),
        ("bf_w50", "  small jobs wait p50 ms", "%.0f"),
        ("bf_w95", "  small jobs wait p95 ms", "%.0f"),
        ("bfg_w50", "  gangs wait p50 ms", "%.0f"),
        ("bfg_w95", "  gangs wait max ms", "%.0f"),
        ("ctl_mb", "controller peak memory, MB", "%.1f")]


def mean(v):
    v = [x for x in v if x == x]
    return sum(v) / len(v) if v else float("nan")


def report(results, yard, loads):
    print("bench-vs-slurm: %d nodes x %d GPUs, GPU mix %s, %d rounds (%s); %d CPUs; load "
          "average (1 min) %.1f-%.1f over the run (shared machine)"
          % (NODES, GPUS, ",".join(map(str, MIX)), ROUNDS, " ".join(SYSTEMS * ROUNDS),
             os.cpu_count(), min(loads), max(loads)))
    print("  Slurm: SchedulerParameters=%s ProctrackType=proctrack/%s Epilog=%s; 2-role job as %s"
          % (SLURM_SCHED, SLURM_PROCTRACK, SLURM_EPILOG or "none",
             "one -N job" if DIST_SLURM == "nodes" else "a heterogeneous job"))
    print("  sizes: burst %d, seq %d, stream %d at %g/s, 2-role %d (1 ps + %d workers x 4 GPUs),"
          " backlog %d small + %d gangs of %d nodes, %d clients"
          % (JOBS, SEQ, STREAM, RATE, DIST, DIST_WORKERS, BF_SMALL, BF_LARGE, BF_GANG, CLIENTS))
    print("  yardstick, %d bare `bash -c true` %d-way: %s starts/s, %s ms CPU per start"
          % (JOBS, NODES, " / ".join("%.0f" % r for r, _ in yard),
             " / ".join("%.2f" % c for _, c in yard)))
    print("  %-36s %17s %17s %9s" % ("", "pai", "slurm", "pai/slurm"))
    for key, label, fmt in ROWS:
        label = label.replace("CLIENTS", str(CLIENTS))
        cells, means = [], []
        if all(key not in x for xs in results.values() for x in xs):
            continue  # a workload not run (WORKLOADS)
        for name in ("pai", "slurm"):
            v = [x.get(key, float("nan")) for x in results.get(name, [])]
            cells.append(" / ".join(fmt % x for x in v) or "-")
            means.append(mean(v))
        ratio = means[0] / means[1] if means[1] and means[1] == means[1] else float("nan")
        print("  %-36s %17s %17s %9.2f" % (label, cells[0], cells[1], ratio))
    for name, x in results.items():
        for r in x:
            if r.get("errors"):
                print("  %s: submission errors (most frequent): %s" % (name, r["errors"]))
        if not all("e2e" in r and "api_e2e" in r for r in x):
            continue
        ratios = ["%.2f / %.2fx" % (r["e2e"] / r["bare_rate"], r["cpu_ms"] / r["bare_cpu"])
                  for r in x]
        aratios = ["%.2f / %.2fx" % (r["api_e2e"] / r["bare_rate"], r["api_cpu_ms"] / r["bare_cpu"])
                   for r in x]
        print("  %s against the bare yardstick of its round (throughput ratio / CPU ratio):"
              " CLI burst %s; REST burst %s" % (name, ", ".join(ratios), ", ".join(aratios)))
        print("    %s: %s submit failures, %s of %d stream jobs stamped, load %s"
              % (name, "/".join(str(r["fails"]) for r in x),
                 "/".join(str(r.get("stamped", 0)) for r in x), STREAM,
                 ", ".join("%.1f-%.1f" % (r["load0"], r["load1"]) for r in x)))
    if "pai" in results and "slurm" in results and "e2e" in results["pai"][0] \
            and "api_e2e" in results["pai"][0] and "sw50" in results["pai"][0]:
        p, s = results["pai"], results["slurm"]
        best = max(mean([r["e2e"] for r in p]), mean([r["api_e2e"] for r in p]))
        print("  targets: burst end-to-end pai/slurm %.2f (CLI), %.2f (pai REST) [>= 6]; "
              "stream wait p50 pai %.0f ms vs slurm %.0f ms [lower]"
              % (mean([r["e2e"] for r in p]) / mean([r["e2e"] for r in s]),
                 best / mean([r["api_e2e"] for r in s]),
                 mean([r["sw50"] for r in p]), mean([r["sw50"] for r in s])))


def interrupted(*_):
    sweep.hold_signals()  # the clean-up (finally blocks, exit handlers) runs to its end
    raise KeyboardInterrupt


def main():
    if os.geteuid() != 0 or not shutil.which("slurmctld"):
        print("bench-vs-slurm: needs root and Slurm (scripts/deps.sh --slurm)")
        return 2
    for s in sweep.EXIT_SIGNALS:  # a timeout, ^C, a closed terminal: the same clean-up
        signal.signal(s, interrupted)
    base = tempfile.mkdtemp(prefix="pai-vs-slurm-")
    os.chmod(base, 0o755)
    results = {n: [] for n in SYSTEMS}
    classes = {"pai": Pai, "slurm": Slurm}
    yard, loads = [], [os.getloadavg()[0]]
    perf = PERF
    try:
        for r in range(ROUNDS):
            for name in SYSTEMS:
                yard.append(bare())
                res = run_system(classes[name], base, "%s%d" % (name, r),
                                 perf if name == "pai" else None)
                if name == "pai":
                    perf = None
                res["yard"] = len(yard) - 1
                results[name].append(res)
                loads += [res["load0"], res["load1"]]
                print("  ... %s round %d: %s" % (name, r, json.dumps(res)), flush=True)
        yard.append(bare())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    for x in results.values():
        for res in x:
            i = res["yard"]
            res["bare_rate"] = (yard[i][0] + yard[i + 1][0]) / 2
            res["bare_cpu"] = (yard[i][1] + yard[i + 1][1]) / 2
    loads.append(os.getloadavg()[0])
    report(results, yard, loads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
