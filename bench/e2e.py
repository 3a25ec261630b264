#!/usr/bin/env python3
"""bench/e2e.py - short-job throughput end to end, with its own yardstick.

Starts a real `pai server` and NODES real `pai agent` processes (process
runtime, GPUS simulated GPUs each) on loopback, submits JOBS one-task jobs
(command `true`) from 4 client threads (bench/submit.c: 4 keep-alive
libcurl connections; CLIENT=python: Python's http.client, ~0.1 ms more CPU
per job on the same cores), and waits until every job is SUCCEEDED.
In the same run, before and after, it measures the machine's baseline for
the same work: JOBS bare `bash -c true` processes started PAR-way in
parallel (xargs -P; PAR defaults to NODES, the number of agents starting
tasks at once), with the environment a task gets (bench/yardstick.py: its
locale, not the caller's shell's). Prints the ratios first:
  - throughput ratio: pai end-to-end jobs/s / bare starts/s,
  - CPU ratio: pai host CPU per job / bare CPU per start, where pai's CPU
    is the server's and the agents' (their monitors and tasks included),
    read from a cgroup the bench puts the server and the agents in (cgroup
    v1 cpuacct.usage, or v2 cpu.stat usage_usec: bench/cputree.py; the kernel's own
    nanosecond count, for every process of the tree whenever it ran), and
    the bare CPU is getrusage(RUSAGE_CHILDREN) of the xargs run, exact too.
    Without such a cgroup (not root, no cpuacct) it falls back to
    utime+stime+cutime+cstime of /proc/PID/stat and says so: those count in
    clock ticks (10 ms), each cut down, so the per-agent monitors, which are
    born during the run, lose up to 40 ms each (0.3-0.6 ms per job with 64
    monitors and 2,000 jobs: the figures of this bench before 2026-12-06
    were that much too low); the agents' own share ("the agents
    themselves", without their monitors and tasks) is the sum of their
    threads' /proc/PID/task/*/schedstat runtime, exact too (clock ticks
    before 2026-12-06 02:30 UTC: up to 10 ms an agent, 0.08 ms per job);
then the absolute figures: store commits per job (the server's
pai_store_commits_total; and those made while the clients submit, with the
server's CPU then), scheduling passes per job and their mean time
(pai_scheduler_pass_seconds), submissions/s, end-to-end jobs/s (first
submission -> last SUCCEEDED), wait submit -> running p50/p95/p99, dispatch
(bound -> running) and queueing (submit -> bound) p50/p99, the bench
client's own CPU, the machine's CPU busy share and load average, the
machine's context switches per job (/proc/stat ctxt: every process's, from
the first submission to the end seen) and its rescheduling and
function-call IPIs and local timer interrupts per job (/proc/interrupts),
each against the same count per bare start (wake-ups and timers are what a
VM charges most for: docs/benchmarks.md, thirteenth round), and the
server's context switches per job (its threads', from /proc: each thread
hand-off is one or two).
The server runs as a user's would (pt.PRODUCTION_ENV: the production
default of every setting the tests change, so the scheduler's invariant
checker samples once a minute instead of running after every decision).
Knobs: NODES (16), GPUS (8), JOBS (2000), RUNTIME (process), PAI_BIN,
MIX (GPUs per job, cycled: "1" by default; "mix" is 1,1,1,1,2,2,2,4,4,8,
or any comma list), RATE (jobs/s to pace submissions at: a steady stream;
0, the default: a burst, as fast as the API takes them), PAR (bare-start
parallelism), BASELINE (1; 0 skips it), PAI_AGENT_BIN (the agents' binary,
when another build's: PAI_BIN's server, this agent); TEST_TMP puts the agents' work dirs
and the server's store elsewhere (e.g. /dev/shm); AGENT_TMP moves the
agents' work dirs only.
Run: make bench-e2e   (or python3 bench/e2e.py)"""

import atexit
import os
import resource
import subprocess
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
import e2etest as e  # noqa: E402
import paitest as pt  # noqa: E402
import yardstick  # noqa: E402
from cputree import CpuTree  # noqa: E402

NODES = int(os.environ.get("NODES", "16"))
GPUS = int(os.environ.get("GPUS", "8"))
JOBS = int(os.environ.get("JOBS", "2000"))
RUNTIME = os.environ.get("RUNTIME", "process")
# RATE > 0 paces submissions at RATE jobs/s in total (latency at a steady
# load, not a burst that saturates the cores); 0 submits as fast as possible.
RATE = float(os.environ.get("RATE", "0"))
MIX_SPEC = os.environ.get("MIX", "1")
MIX = [int(x) for x in ("1,1,1,1,2,2,2,4,4,8" if MIX_SPEC == "mix" else MIX_SPEC).split(",")]
PAR = int(os.environ.get("PAR", str(NODES)))
BASELINE = os.environ.get("BASELINE", "1") != "0"
# the load generator: bench/submit.c's binary (SUBMIT_BIN, or the build's),
# or CLIENT=python: 4 Python threads (http.client), the client before
# 2026-12-06 09:00 UTC, ~0.17 ms of CPU per job against C's ~0.05
SUBMIT_BIN = None if os.environ.get("CLIENT") == "python" else (
    os.environ.get("SUBMIT_BIN") or os.path.join(HERE, "..", "build", "bench", "submit"))
if SUBMIT_BIN and not os.access(SUBMIT_BIN, os.X_OK):
    SUBMIT_BIN = None
HZ = os.sysconf("SC_CLK_TCK")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else -1


def proc_cpu_s(pid, own=False):
    """utime+stime+cutime+cstime of pid in seconds (its reaped children too);
    own: utime+stime only."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:13 if own else 15]) / HZ
    except (OSError, IndexError, ValueError):
        return 0.0


def own_cpu_s(pid):
    """The CPU time of pid's own live threads, in seconds, exact: the sum
    of /proc/PID/task/*/schedstat's first field (the scheduler's runtime in
    ns); without it, utime+stime in clock ticks (proc_cpu_s).  The agents
    live the whole run, so their own figure needs no cgroup; ticks cut it
    by up to 10 ms an agent (0.08 ms per job with 16 agents and 2,000
    jobs), more than most changes to the agent move it."""
    try:
        total = 0
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        return total / 1e9
    except (OSError, IndexError, ValueError):
        return proc_cpu_s(pid, True)


def ctx_switches(pid):
    """{thread name: [voluntary, involuntary]} context switches of the live
    threads of pid (/proc/PID/task/*; the server's threads live as long as
    it, and name themselves: pai-write, pai-sched, ...; "pai" is the main
    thread, libmicrohttpd's pool and the unnamed others)."""
    out = {}
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/comm" % (pid, tid)) as f:
                name = f.read().strip()
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    k = line.split(":", 1)[0]
                    if k in ("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches"):
                        cs = out.setdefault(name, [0, 0])
                        cs[k.startswith("non")] += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return out


def children_of(pid):
    """The live children of pid (an agent's per-agent monitors)."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def node_cpu_s(pid):
    """An agent's CPU with its monitors' and their tasks': its own and its
    reaped children's, plus its live children's (the per-agent monitors
    live as long as the agent, so their CPU is not in its cutime yet)."""
    return proc_cpu_s(pid) + sum(proc_cpu_s(c) for c in children_of(pid))


def machine_busy():
    """(busy, total) jiffies of the whole machine (/proc/stat)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + (v[4] if len(v) > 4 else 0)
    return sum(v) - idle, sum(v)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


# The machine's own event counts: context switches (/proc/stat ctxt) and
# the interrupts a wake-up or a timer costs on a VM (/proc/interrupts:
# rescheduling and function-call IPIs, local timer; summed over CPUs).
EVENTS = ("ctxt", "RES", "CAL", "LOC")


def machine_events():
    """{event: count so far} of EVENTS; an event this kernel does not list is absent."""
    ev = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("ctxt "):
                ev["ctxt"] = int(line.split()[1])
    try:
        with open("/proc/interrupts") as f:
            ncpu = len(f.readline().split())
            for line in f:
                w = line.split()
                if w and w[0].rstrip(":") in EVENTS:
                    ev[w[0].rstrip(":")] = sum(int(x) for x in w[1:1 + ncpu] if x.isdigit())
    except OSError:
        pass
    return ev


def events_since(ev0, n):
    """Events per unit (n of them) since ev0."""
    ev1 = machine_events()
    return {k: (ev1[k] - ev0[k]) / n for k in ev0 if k in ev1}


def bare(n, par):
    """n bare `bash -c true` started par-way in parallel: (starts/s, CPU s per
    start, machine events per start)."""
    c0, t0, ev0 = children_cpu(), time.time(), machine_events()
    yardstick.run(n, par, stdout=subprocess.DEVNULL)
    wall, cpu = time.time() - t0, children_cpu() - c0
    return n / wall, cpu / n, events_since(ev0, n)


def agent_ports(c, names):
    """The agents' log ports (their /metrics), in the order of names, from
    /api/v2/metrics/targets; None when one is missing."""
    st, b = c.get("/api/v2/metrics/targets")
    by = {}
    for g in (b if st == 200 and isinstance(b, list) else []):
        for t in g.get("targets", []):
            by[g.get("labels", {}).get("node_name")] = int(t.rsplit(":", 1)[1])
    return [by[n] for n in names] if all(n in by for n in names) else None


def agent_syncs(ports):
    """(syncs, answer bytes) of the agents so far (pai_agent_syncs_total and
    pai_agent_sync_answer_bytes_total of /metrics; an older agent has no
    bytes: 0)."""
    syncs = nbytes = 0
    for port in ports:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                for line in r.read().decode().splitlines():
                    if line.startswith("pai_agent_syncs_total"):
                        syncs += float(line.split()[-1])
                    elif line.startswith("pai_agent_sync_answer_bytes_total"):
                        nbytes += float(line.split()[-1])
        except OSError:
            pass
    return syncs, nbytes


def server_counter(c, name):
    """A counter of the server's GET /metrics (-1 when absent)."""
    st, text = c.get("/metrics")
    for line in (text if st == 200 and isinstance(text, str) else "").splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return -1.0


def server_sample(c, name, labels):
    """One labelled sample of the server's GET /metrics (-1 when absent)."""
    st, text = c.get("/metrics")
    for line in (text if st == 200 and isinstance(text, str) else "").splitlines():
        if line.startswith("%s{%s} " % (name, labels)):
            return float(line.split()[-1])
    return -1.0


def sync_exits(c):
    """Agent syncs that reported exits, by the commit that stored them: their
    own (answered after it) and a later one (agent protocol 6), and the acks
    left for a later answer (all -1 on a server without them)."""
    return [server_sample(c, "pai_agent_sync_exits_total", 'commit="%s"' % k)
            for k in ("own", "later")] + [server_counter(c, "pai_agent_sync_acks_later_total")]


def machine():
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return "%d CPUs (%s)" % (os.cpu_count() or 0, model)


def main():
    base = []
    if BASELINE:
        base.append(bare(JOBS, PAR))
    srv = pt.start_server(extra_args=["--log-level", "warn"], env=pt.PRODUCTION_ENV)
    c = srv.client(srv.admin_token)
    if os.environ.get("AGENT_TMP"):  # the agents' work dirs only (not the store)
        os.environ["TEST_TMP"] = os.environ["AGENT_TMP"]
    # each agent binds a log port of its own choosing (no port picked here
    # and bound later, which another process could take in between on a
    # busy machine); the bench reads them back from the server's
    # Prometheus discovery of the agents
    agents = [e.agent(srv, "b%02d" % i, "--runtime", RUNTIME, "--gpus", str(GPUS),
                      "--log-level", "warn") for i in range(NODES)]
    ready = e.wait_nodes(c, NODES, 60)
    if len(ready) < NODES:
        missing = ["b%02d (%s)" % (i, "running" if a.proc.poll() is None else
                                   "exited %s" % a.proc.returncode)
                   for i, a in enumerate(agents) if "b%02d" % i not in ready]
        print("bench-e2e: agents did not register within 60 s: %s" % ", ".join(missing))
        return 1
    ports = agent_ports(c, ["b%02d" % i for i in range(NODES)])
    if ports is None:
        print("bench-e2e: /api/v2/metrics/targets did not list every agent")
        return 1
    errors = []
    pids = [srv.proc.pid] + [a.proc.pid for a in agents]
    names = ["b%02d" % i for i in range(NODES)]
    tree = CpuTree("pai-bench-e2e", ["server", "agents"])
    if tree.ok:
        atexit.register(tree.remove)  # after paitest's handlers stop what is in it
        tree.add("server", pids[0], children_of(pids[0]))
        for p in pids[1:]:
            tree.add("agents", p, children_of(p))

    def pai_cpu():
        """(server, agents with their monitors and tasks) CPU seconds so far."""
        if tree.ok:
            return tree.seconds("server"), tree.seconds("agents", names)
        return proc_cpu_s(pids[0]), sum(node_cpu_s(p) for p in pids[1:])

    # the bodies first: the client measured is the one that posts them
    yamls = [e.job_yaml("b%05d" % k, [e.role("main", "true", gpu=MIX[k % len(MIX)])])
             for k in range(JOBS)]
    syncs0 = agent_syncs(ports)
    commits0 = server_counter(c, "pai_store_commits_total")
    exits0 = sync_exits(c)
    passes0 = [server_counter(c, "pai_scheduler_pass_seconds_" + k) for k in ("count", "sum")]
    # pai's CPU from here: the metric reads above (~5 ms of the server's
    # and the agents' CPU) are the bench's, not the jobs'
    srv_cpu0, node_cpu0 = pai_cpu()
    srv_cs0 = ctx_switches(pids[0])
    agents_own0 = sum(own_cpu_s(p) for p in pids[1:])
    mons0 = {m: own_cpu_s(m) for p in pids[1:] for m in children_of(p)}
    self0 = resource.getrusage(resource.RUSAGE_SELF)
    busy0, load0 = machine_busy(), os.getloadavg()[0]
    ev0 = machine_events()
    t0 = time.time()

    kids0 = children_cpu()
    if SUBMIT_BIN:
        # the C load generator (bench/submit.c): 4 keep-alive libcurl
        # connections, one thread each, the same bodies and split
        r = subprocess.run([SUBMIT_BIN, "--url", srv.url, "--token", srv.admin_token,
                            "--threads", "4", "--rate", str(RATE)],
                           input=b"".join(y.encode() + b"\0" for y in yamls),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        bad = [line for line in r.stdout.decode().splitlines() if line.startswith("bad ")]
        nbad = int(bad[0].split()[1]) if bad else JOBS
        if nbad or r.returncode:
            errors.extend([(r.returncode, r.stderr.decode()[-2000:])] * max(nbad, 1))
    else:
        def submitter(lo, hi):
            cl = srv.client(srv.admin_token)
            for n, k in enumerate(range(lo, hi)):
                if RATE > 0:
                    delay = t0 + n * 4.0 / RATE - time.time()
                    if delay > 0:
                        time.sleep(delay)
                st, b = e.submit(cl, yamls[k])
                if st != 202:
                    errors.append((st, b))

        # daemon: a timeout or ^C ends the bench (paitest's exit handlers
        # stop the server and agents and remove their dirs) without waiting
        ths = [threading.Thread(target=submitter, args=(i * JOBS // 4, (i + 1) * JOBS // 4),
                                daemon=True) for i in range(4)]
        for th in ths:
            th.start()
        for th in ths:
            th.join()
    submit_cpu = children_cpu() - kids0
    t_sub = time.time() - t0
    # the submissions' phase alone (first submission -> last 202): the
    # commits and the server's CPU while every client waits for its 202
    sub_commits = server_counter(c, "pai_store_commits_total") - commits0
    sub_srv_cpu = pai_cpu()[0] - srv_cpu0
    loads = [os.getloadavg()[0]]
    final = "/api/v2/jobs?state=SUCCEEDED,FAILED,STOPPED&withTotalCount=true&limit="
    while True:
        # A count of the final jobs (one row), 4 times a second: listing
        # every job each time cost the server ~0.2 ms per job of the run.
        st, b = c.get(final + "1")
        ndone = (b or {}).get("totalCount", 0) if st == 200 and isinstance(b, dict) else 0
        if ndone >= JOBS:
            break
        if time.time() - t0 > 600:
            print("bench-e2e: timeout, %d of %d done" % (ndone, JOBS))
            return 1
        time.sleep(0.25)
        loads.append(os.getloadavg()[0])
    time.sleep(0.3)  # the agents reap their last monitors
    srv_cpu, node_cpu = pai_cpu()
    srv_cpu, node_cpu = srv_cpu - srv_cpu0, node_cpu - node_cpu0
    events = events_since(ev0, JOBS)
    cpu = srv_cpu + node_cpu
    syncs, answer_bytes = [a - b for a, b in zip(agent_syncs(ports), syncs0)]
    commits = server_counter(c, "pai_store_commits_total") - commits0
    exits = [a - b for a, b in zip(sync_exits(c), exits0)]
    passes = [server_counter(c, "pai_scheduler_pass_seconds_" + k) - passes0[i]
              for i, k in enumerate(("count", "sum"))]
    srv_cs1 = ctx_switches(pids[0])
    srv_cs_by = {k: [v[i] - srv_cs0.get(k, [0, 0])[i] for i in (0, 1)]
                 for k, v in srv_cs1.items()}
    srv_cs = [sum(v[i] for v in srv_cs_by.values()) for i in (0, 1)]
    agents_own = sum(own_cpu_s(p) for p in pids[1:]) - agents_own0
    # the per-agent monitors (born at their agent's first task, so schedstat
    # is their whole own CPU; tasks not included: they are reaped children)
    mons_own = sum(own_cpu_s(m) - mons0.get(m, 0.0) for p in pids[1:] for m in children_of(p))
    self1 = resource.getrusage(resource.RUSAGE_SELF)
    busy1 = machine_busy()
    client_cpu = (self1.ru_utime + self1.ru_stime) - (self0.ru_utime + self0.ru_stime) + submit_cpu
    st, b = c.get(final + "50000")
    done = (b or {}).get("data", []) if isinstance(b, dict) else []
    busy_share = (busy1[0] - busy0[0]) / max(1, busy1[1] - busy0[1])
    t_all = max(j.get("completedTime") or 0 for j in done) / 1000.0 - (
        min(j.get("submissionTime") or 1e18 for j in done) / 1000.0)
    if BASELINE:
        base.append(bare(JOBS, PAR))
    dispatch, queue, wait, ran, per_gpu = [], [], [], [], {}
    for k in range(JOBS):
        d = e.detail(c, "admin~b%05d" % k)
        ts = e.tasks(d, "main")
        if not ts or not ts[0].get("currentAttemptLaunchedTime"):
            continue
        t = ts[0]
        sub = d["jobStatus"]["submissionTime"]
        dispatch.append(t["currentAttemptLaunchedTime"] - t["currentAttemptCreatedTime"])
        queue.append(t["currentAttemptCreatedTime"] - sub)
        wait.append(t["currentAttemptLaunchedTime"] - sub)
        if t.get("currentAttemptCompletedTime"):
            ran.append(t["currentAttemptCompletedTime"] - t["currentAttemptLaunchedTime"])
            for g in t.get("containerGpus") or []:
                per_gpu.setdefault((t.get("containerNodeName"), g), []).append(
                    (t["currentAttemptCreatedTime"], t["currentAttemptCompletedTime"]))
    # a GPU's turnaround: its attempt's end stored -> the next attempt bound
    # to it (in a burst the queue is never empty, so all of it is a gap)
    turn = []
    for spans in per_gpu.values():
        spans.sort()
        turn += [b[0] - a[1] for a, b in zip(spans, spans[1:])]
    for a in agents:
        a.stop()
    srv.stop()
    if tree.ok:
        tree.remove()
    failed = len([j for j in done if j.get("state") != "SUCCEEDED"])
    rate = JOBS / t_all
    print("bench-e2e: %d nodes x %d GPUs, runtime %s, %d jobs, GPUs per job %s, %s (%d not "
          "SUCCEEDED, %d submit errors)" % (NODES, GPUS, RUNTIME, JOBS, MIX_SPEC,
                                            "steady %g jobs/s" % RATE if RATE > 0 else "burst",
                                            failed, len(errors)))
    print("  machine: %s; load average %.1f at the start, %.1f-%.1f during the run; CPU busy "
          "%.0f%% (all processes, shared machine)" % (machine(), load0, min(loads), max(loads),
                                                      100 * busy_share))
    if BASELINE:
        b_rate = sum(b_[0] for b_ in base) / len(base)
        b_cpu = sum(b_[1] for b_ in base) / len(base)
        print("  throughput ratio       %8.2f   (pai jobs/s / bare starts/s%s)"
              % (rate / b_rate, "; paced by RATE: not a capacity figure" if RATE > 0 else ""))
        print("  CPU ratio              %8.2f   (pai host CPU per job / bare CPU per start)"
              % (cpu / JOBS / b_cpu))
        print("  bare starts/s          %8.1f   (%d x `bash -c true`, %d-way: before %.1f, "
              "after %.1f)" % (b_rate, JOBS, PAR, base[0][0], base[-1][0]))
        print("  bare CPU per start ms  %8.2f   (before %.2f, after %.2f)"
              % (1000 * b_cpu, 1000 * base[0][1], 1000 * base[-1][1]))
    print("  end-to-end jobs/s      %8.1f   (first submission -> last SUCCEEDED: %.2f s)"
          % (rate, t_all))
    print("  pai CPU per job ms     %8.2f   (server %.2f + agents with their monitors and tasks "
          "%.2f; the bench client %.2f (%s); %s)"
          % (1000 * cpu / JOBS, 1000 * srv_cpu / JOBS, 1000 * node_cpu / JOBS,
             1000 * client_cpu / JOBS, ("C, bench/submit" if SUBMIT_BIN else "Python"),
             ("exact: %s cgroup" % ("v2" if tree.v2 else "cpuacct")) if tree.ok else
             "from /proc clock ticks, no cgroup: too low by up to 40 ms per monitor"))
    print("  node side per job ms   %8.2f   (the agents themselves %.2f: syncs, reports, "
          "bookkeeping; their monitors and tasks %.2f)"
          % (1000 * (cpu - srv_cpu) / JOBS, 1000 * agents_own / JOBS,
             1000 * (cpu - srv_cpu - agents_own) / JOBS))
    print("  monitors, tasks ms     %8.2f   (the monitors themselves %.2f, exact; the tasks "
          "%.2f)" % (1000 * (cpu - srv_cpu - agents_own) / JOBS, 1000 * mons_own / JOBS,
                     1000 * (cpu - srv_cpu - agents_own - mons_own) / JOBS))
    print("  agent syncs per job    %8.2f   (all %d agents together; answers %s bytes a sync)"
          % (syncs / JOBS, NODES, "%.0f" % (answer_bytes / syncs) if answer_bytes and syncs
             else "-"))
    if commits0 >= 0:
        print("  store commits per job  %8.2f   (pai_store_commits_total: one fsync each on "
              "SQLite)" % (commits / JOBS))
    if exits0[0] >= 0:
        print("  syncs with exits/job   %8.2f   (stored by their own commit %.2f, by a later "
              "one %.2f: agent protocol 6; acks left for a later answer %.2f)"
              % ((exits[0] + exits[1]) / JOBS, exits[0] / JOBS, exits[1] / JOBS,
                 exits[2] / JOBS))
    if commits0 >= 0:
        print("  submission phase       %8.2f   (store commits per job while the clients submit, "
              "%.2f s; the server's CPU then %.2f ms per job)"
              % (sub_commits / JOBS, t_sub, 1000 * sub_srv_cpu / JOBS))
    if passes0[0] >= 0 and passes[0] > 0:
        print("  scheduling passes/job  %8.2f   (pai_scheduler_pass_seconds: mean pass %.3f ms, "
              "%.3f ms of passes per job)" % (passes[0] / JOBS, 1000 * passes[1] / passes[0],
                                              1000 * passes[1] / JOBS))
    if "ctxt" in events:
        b_ev = {k: sum(b_[2].get(k, 0) for b_ in base) / len(base) for k in events} if BASELINE \
            else {}
        print("  machine switches/job   %8.2f   (every context switch of the machine, /proc/stat "
              "ctxt, first submission -> last end seen%s)"
              % (events["ctxt"], "; bare %.2f a start, %.1fx" % (
                  b_ev["ctxt"], events["ctxt"] / b_ev["ctxt"]) if b_ev.get("ctxt") else ""))
        irqs = [k for k in EVENTS[1:] if k in events]
        if irqs:
            print("  interrupts/job         %s   (/proc/interrupts: RES rescheduling IPIs, CAL "
                  "function-call IPIs, LOC local timer%s)"
                  % (" ".join("%s %.2f" % (k, events[k]) for k in irqs),
                     "; bare a start: " + " ".join("%s %.2f" % (k, b_ev[k]) for k in irqs)
                     if b_ev else ""))
    print("  server switches/job    %8.2f   (context switches of its threads: voluntary %.2f, "
          "i.e. thread hand-offs and waits; involuntary %.2f)"
          % (sum(srv_cs) / JOBS, srv_cs[0] / JOBS, srv_cs[1] / JOBS))
    print("    by thread            %s" % ", ".join(
        "%s %.2f" % (k, sum(v) / JOBS) for k, v in sorted(srv_cs_by.items(),
                                                          key=lambda kv: -sum(kv[1]))))
    print("  submissions/s          %8.1f" % (JOBS / t_sub))
    print("  wait ms p50/p95/p99    %5d / %d / %d   (submission -> running)"
          % (pct(wait, 0.5), pct(wait, 0.95), pct(wait, 0.99)))
    print("  dispatch ms p50/p99    %5d / %d   (task bound -> agent reports running)"
          % (pct(dispatch, 0.5), pct(dispatch, 0.99)))
    print("  queueing ms p50/p99    %5d / %d   (submission -> task bound)"
          % (pct(queue, 0.5), pct(queue, 0.99)))
    print("  ran ms p50/p99         %5d / %d   (agent reports running -> its end stored: the "
          "run, the monitor, the report's window, the sync)" % (pct(ran, 0.5), pct(ran, 0.99)))
    print("  GPU turnaround p50/p99 %5d / %d   (an end stored -> the next task bound to that "
          "GPU)" % (pct(turn, 0.5), pct(turn, 0.99)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
