#!/usr/bin/env python3
"""bench/vs-slurm/run.py - pai against Slurm on this machine, in one run.

Starts Slurm from Debian (slurmctld and NODES slurmd in multiple-slurmd
mode: one `slurmd -N nNN` per node on its own loopback port, GPUS fake GPUs
each through gres.conf device files) and, alternating with it, a real
`pai server` with NODES `pai agent` processes of GPUS simulated GPUs.  Both
get the same workloads, submitted through their CLIs (`sbatch`, `pai
submit`) from the same client threads:
  - sequential CLI submissions (SEQ jobs, one client);
  - a burst of JOBS short jobs (`true`), GPUs per job cycling through the
    mix 1,1,1,1,2,2,2,4,4,8, from 4 clients: CLI submissions/s and
    end-to-end jobs/s (first submission -> nothing left queued or running);
  - the same burst again, pai's jobs through its REST API (what its CLI and
    portal call; Slurm's only client is its CLI, so it runs the CLI burst
    twice): end-to-end jobs/s without pai's CLI start-up in the way;
  - a stream of STREAM jobs at RATE jobs/s (same mix): wait p50/p95/p99 from
    the client's submission to the job's first instruction (each job writes
    $EPOCHREALTIME into a file).
For each it prints the host CPU per job (the system's whole process tree,
from a cpuacct cgroup it is started in: controller, node daemons, step
daemons and jobs), the controller's peak memory (VmHWM), then the ratios
pai / Slurm, and the bare-start yardstick of bench/e2e (JOBS `bash -c
true` 16-way) for both.

Tuning, the same spirit for both (short jobs, no accounting): Slurm with
auth/none and cred/none (no munge round trips), no accounting storage or
job completion logging, proctrack/linuxproc and task/none (no cgroups: pai
keeps its cgroups and limits, so this favours Slurm), select/cons_tres,
sched/backfill with batch_sched_delay=0, bf_interval=1, sched_min_interval=0
and a deep default_queue_depth, no prolog or epilog, MinJobAge=2; pai with
its defaults (process runtime, tasks isolated under their own uid, cgroups
with the job's limits).

Knobs: NODES (16), GPUS (8), JOBS (1000), SEQ (50), STREAM (300), RATE
(20), ROUNDS (1: how many times to alternate), PAI_BIN.  Needs root and
Slurm, which `make bench-vs-slurm` installs (scripts/deps.sh --slurm).  It starts everything
under a fresh directory and stops only the processes it started, then
removes the directory and its cgroups.
Run: make bench-vs-slurm   (or python3 bench/vs-slurm/run.py)"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "blackbox"))
import e2etest as e  # noqa: E402
import paitest as pt  # noqa: E402

NODES = int(os.environ.get("NODES", "16"))
GPUS = int(os.environ.get("GPUS", "8"))
JOBS = int(os.environ.get("JOBS", "1000"))
SEQ = int(os.environ.get("SEQ", "50"))
STREAM = int(os.environ.get("STREAM", "300"))
RATE = float(os.environ.get("RATE", "20"))
ROUNDS = int(os.environ.get("ROUNDS", "1"))
MIX = [1, 1, 1, 1, 2, 2, 2, 4, 4, 8]
CLIENTS = 4
CG = "/sys/fs/cgroup/cpuacct"


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else -1


class Acct:
    """A cpuacct cgroup that the started processes (and all they fork) join."""

    def __init__(self, name):
        self.path = os.path.join(CG, "pai-vs-slurm-%d" % os.getpid(), name)
        os.makedirs(self.path, exist_ok=True)

    def add(self, pid):
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def ns(self):
        with open(os.path.join(self.path, "cpuacct.usage")) as f:
            return int(f.read())

    def remove(self):
        for d in (self.path, os.path.dirname(self.path)):
            try:
                os.rmdir(d)
            except OSError:
                pass


def hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Slurm:
    name = "slurm"

    def __init__(self, base):
        self.dir = os.path.join(base, "slurm")
        self.procs = []
        self.acct = Acct("slurm")
        d = self.dir
        for sub in ("state", "spool", "log", "dev", "out"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, "out"), 0o1777)
        for i in range(GPUS):
            p = os.path.join(d, "dev", "nvidia%d" % i)
            os.mknod(p, 0o666 | 0o020000, os.makedev(195, i))
        port = 17000 + os.getpid() % 2000 * 20
        nodes = "n[01-%02d]" % NODES
        conf = """ClusterName=paibench
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=%d
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
StateSaveLocation=%s/state
SlurmdSpoolDir=%s/spool/%%n
SlurmctldPidFile=%s/slurmctld.pid
SlurmdPidFile=%s/slurmd.%%n.pid
SlurmctldLogFile=%s/log/slurmctld.log
SlurmdLogFile=%s/log/slurmd.%%n.log
SlurmctldDebug=error
SlurmdDebug=error
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,bf_interval=1,sched_min_interval=0,default_queue_depth=10000
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=2
MaxJobCount=100000
MessageTimeout=60
NodeName=%s NodeHostname=localhost NodeAddr=127.0.0.1 Port=%d-%d CPUs=%d RealMemory=65536 Gres=gpu:%d State=UNKNOWN
PartitionName=p Nodes=%s Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
""" % (port, d, d, d, d, d, d, nodes, port + 1, port + NODES, GPUS * 2, GPUS, nodes)
        with open(os.path.join(d, "slurm.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(d, "gres.conf"), "w") as f:
            f.write("AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/nvidia[0-%d]\n"
                    % (nodes, d, GPUS - 1))
        self.env = dict(os.environ, SLURM_CONF=os.path.join(d, "slurm.conf"))
        try:
            self._up()
        except Exception:
            self.stop()
            raise
        self.scripts = {}

    def _up(self):
        self.ctld = self._start(["slurmctld", "-D", "-i"])
        time.sleep(1)
        for i in range(NODES):
            self._start(["slurmd", "-D", "-N", "n%02d" % (i + 1)])
        deadline = time.time() + 60
        while time.time() < deadline:
            r = subprocess.run(["sinfo", "-h", "-o", "%D %t"], env=self.env,
                               capture_output=True, text=True)
            idle = sum(int(x.split()[0]) for x in r.stdout.splitlines()
                       if x.split()[1] == "idle")
            if idle >= NODES:
                break
            time.sleep(0.5)
        else:
            with open(os.path.join(self.dir, "log", "slurmctld.log")) as f:
                tail = f.read()[-2000:]
            raise RuntimeError("slurm nodes not idle: %s\n%s" % (r.stdout, tail))

    def _start(self, argv):
        p = subprocess.Popen(argv, env=self.env, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.dir, "log", argv[0] + ".err"), "a"))
        self.acct.add(p.pid)
        self.procs.append(p)
        return p

    def script(self, stamp):
        if stamp not in self.scripts:
            p = os.path.join(self.dir, "job-%d.sh" % bool(stamp))
            with open(p, "w") as f:
                f.write("#!/bin/bash\n")
                f.write("echo $EPOCHREALTIME > %s/$SLURM_JOB_NAME\n" % stamp if stamp else "true\n")
            self.scripts[stamp] = p
        return self.scripts[stamp]

    def submit(self, name, gpus, stamp=None):
        r = subprocess.run(["sbatch", "-Q", "--parsable", "-n", "1", "--gres=gpu:%d" % gpus,
                            "-o", "/dev/null", "-J", name, self.script(stamp)],
                           env=self.env, capture_output=True)
        return r.returncode == 0

    def active(self):
        r = subprocess.run(["squeue", "-h", "-t", "PD,R,CG,CF,S", "-o", "%i"], env=self.env,
                           capture_output=True, text=True)
        return len(r.stdout.split()) if r.returncode == 0 else 1 << 30

    def ctl_hwm(self):
        return hwm_kb(self.ctld.pid)

    def stop(self):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        self.acct.remove()


class Pai:
    name = "pai"

    def __init__(self, base):
        self.dir = os.path.join(base, "pai")
        os.makedirs(os.path.join(self.dir, "out"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "out"), 0o1777)
        self.acct = Acct("pai")
        self.agents = []
        os.environ["TEST_TMP"] = self.dir
        self.srv = pt.start_server(extra_args=["--log-level", "warn"])
        self.acct.add(self.srv.proc.pid)
        try:
            self._up()
        except Exception:
            self.stop()
            raise

    def _up(self):
        self.c = self.srv.client(self.srv.admin_token)
        self.agents = [e.agent(self.srv, "n%02d" % (i + 1), "--gpus", str(GPUS),
                               "--log-level", "warn") for i in range(NODES)]
        for a in self.agents:
            self.acct.add(a.proc.pid)
        if len(e.wait_nodes(self.c, NODES, 60)) < NODES:
            raise RuntimeError("pai agents did not register")
        self.env = dict(os.environ, PAI_SERVER=self.srv.url, PAI_TOKEN=self.srv.admin_token,
                        PAI_CONFIG=os.path.join(self.dir, "none.json"))
        self.files = {}
        self.local = threading.local()

    def job_file(self, gpus, stamp):
        key = (gpus, stamp)
        if key not in self.files:
            cmd = "echo $EPOCHREALTIME > %s/$PAI_JOB_NAME" % stamp if stamp else "true"
            p = os.path.join(self.dir, "job-%d-%d.yaml" % (gpus, bool(stamp)))
            with open(p, "w") as f:
                f.write(e.job_yaml("j", [e.role("main", cmd, gpu=gpus)]))
            self.files[key] = p
        return self.files[key]

    def submit(self, name, gpus, stamp=None):
        r = subprocess.run([pt.PAI_BIN, "submit", self.job_file(gpus, stamp), "--name", name],
                           env=self.env, capture_output=True)
        return r.returncode == 0

    def submit_rest(self, name, gpus):
        """The REST API, as the CLI and the portal call it, from a kept connection."""
        cl = getattr(self.local, "c", None)
        if cl is None:
            cl = self.local.c = self.srv.client(self.srv.admin_token)
        st, _ = e.submit(cl, e.job_yaml(name, [e.role("main", "true", gpu=gpus)]))
        return st == 202

    def active(self):
        st, b = self.c.get("/api/v2/jobs?limit=50000")
        if st != 200:
            return 1 << 30
        js = b if isinstance(b, list) else (b or {}).get("data", [])
        return len([j for j in js if j.get("state") not in ("SUCCEEDED", "FAILED", "STOPPED")])

    def ctl_hwm(self):
        return hwm_kb(self.srv.proc.pid)

    def stop(self):
        for a in self.agents:
            a.stop()
        self.srv.stop()
        self.acct.remove()


def drain(s, timeout=900):
    t0 = time.time()
    while s.active() > 0:
        if time.time() - t0 > timeout:
            raise RuntimeError("%s: jobs did not finish" % s.name)
        time.sleep(0.25)
    return time.time()


def sequential(s, tag):
    t0 = time.time()
    ok = sum(s.submit("%s-s%04d" % (tag, k), MIX[k % len(MIX)]) for k in range(SEQ))
    rate = SEQ / (time.time() - t0)
    drain(s)
    return {"seq_submit": rate, "seq_ok": ok}


def burst(s, tag, submit=None, prefix=""):
    submit = submit or s.submit
    fails = []
    cpu0 = s.acct.ns()
    t0 = time.time()

    def client(lo, hi):
        for k in range(lo, hi):
            if not submit("%s-b%05d" % (tag, k), MIX[k % len(MIX)]):
                fails.append(k)

    ths = [threading.Thread(target=client, args=(i * JOBS // CLIENTS, (i + 1) * JOBS // CLIENTS))
           for i in range(CLIENTS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    t_sub = time.time() - t0
    t_end = drain(s)
    cpu = (s.acct.ns() - cpu0) / 1e9
    return {prefix + "submit": JOBS / t_sub, prefix + "e2e": JOBS / (t_end - t0),
            prefix + "cpu_ms": 1000 * cpu / JOBS, prefix + "fails": len(fails)}


def stream(s, tag):
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
        s.submit(name, MIX[k % len(MIX)], out)
    drain(s)
    waits, seen = [], set()
    for f in os.listdir(out):
        name = f.split("~")[-1]
        try:
            with open(os.path.join(out, f)) as fh:
                started = float(fh.read().strip())
        except (OSError, ValueError):
            continue
        if name in subs:
            seen.add(name)
            waits.append(1000 * (started - subs[name]))
    return {"wait50": pct(waits, 0.5), "wait95": pct(waits, 0.95), "wait99": pct(waits, 0.99),
            "waited": len(waits), "missing": sorted(set(subs) - seen)[:3]}


def bare():
    r0, t0 = os.times(), time.time()
    subprocess.run("seq %d | xargs -P 16 -n 1 bash -c true" % JOBS, shell=True, check=True)
    r1, t1 = os.times(), time.time()
    return JOBS / (t1 - t0), 1000 * ((r1[2] + r1[3]) - (r0[2] + r0[3])) / JOBS


def run_system(cls, base, tag):
    s = cls(base)
    try:
        res = {}
        res.update(sequential(s, tag))
        res.update(burst(s, tag))
        # Slurm's only client is its CLI; pai's CLI and portal call its REST API
        res.update(burst(s, tag + "x", getattr(s, "submit_rest", s.submit), "api_"))
        res.update(stream(s, tag))
        res["ctl_mb"] = s.ctl_hwm() / 1024
        return res
    finally:
        s.stop()


def main():
    if os.geteuid() != 0 or not shutil.which("slurmctld"):
        print("bench-vs-slurm: needs root and Slurm (scripts/deps.sh --slurm)")
        return 2
    base = tempfile.mkdtemp(prefix="pai-vs-slurm-")
    os.chmod(base, 0o755)
    results = {"pai": [], "slurm": []}
    yard = []
    try:
        for r in range(ROUNDS):
            yard.append(bare())
            for cls in (Slurm, Pai) if r % 2 == 0 else (Pai, Slurm):
                results[cls.name].append(run_system(cls, base, "%s%d" % (cls.name, r)))
        yard.append(bare())
    finally:
        shutil.rmtree(base, ignore_errors=True)
    load = os.getloadavg()
    b_rate = sum(x for x, _ in yard) / len(yard)
    b_cpu = sum(c for _, c in yard) / len(yard)
    print("bench-vs-slurm: %d nodes x %d GPUs, GPU mix %s, %d rounds; %d CPUs, load average "
          "%.1f / %.1f / %.1f at the end (shared machine)"
          % (NODES, GPUS, ",".join(map(str, MIX)), ROUNDS, os.cpu_count(), *load))
    print("  yardstick: %d bare `bash -c true` 16-way: %.0f starts/s, %.2f ms CPU per start"
          % (JOBS, b_rate, b_cpu))
    rows = [("seq_submit", "CLI submissions/s, 1 client", "%.1f"),
            ("submit", "CLI submissions/s, %d clients" % CLIENTS, "%.1f"),
            ("e2e", "burst of %d: end-to-end jobs/s" % JOBS, "%.1f"),
            ("cpu_ms", "burst: host CPU per job, ms", "%.2f"),
            ("api_e2e", "burst via REST (pai) / CLI: jobs/s", "%.1f"),
            ("api_cpu_ms", "  host CPU per job, ms", "%.2f"),
            ("wait50", "stream at %g/s: wait p50 ms" % RATE, "%.0f"),
            ("wait95", "stream: wait p95 ms", "%.0f"),
            ("wait99", "stream: wait p99 ms", "%.0f"),
            ("ctl_mb", "controller peak memory, MB", "%.1f")]
    print("  %-36s %12s %12s %8s" % ("", "pai", "slurm", "pai/slurm"))
    for key, label, fmt in rows:
        p = [x[key] for x in results["pai"]]
        s = [x[key] for x in results["slurm"]]
        pv, sv = sum(p) / len(p), sum(s) / len(s)
        print("  %-36s %12s %12s %8.2f" % (label, " / ".join(fmt % v for v in p),
                                            " / ".join(fmt % v for v in s), pv / sv if sv else 0))
    for name in ("pai", "slurm"):
        x = results[name]
        print("  %s: burst (REST for pai) %.2f of the bare start rate, CPU %.2fx a bare start; "
              "%s submit failures, %s stream jobs timed of %d"
              % (name, sum(r["api_e2e"] for r in x) / len(x) / b_rate,
                 sum(r["api_cpu_ms"] for r in x) / len(x) / b_cpu,
                 "/".join(str(r["fails"] + r["api_fails"]) for r in x),
                 "/".join(str(r["waited"]) for r in x), STREAM))
        if any(r["missing"] for r in x):
            print("    stream jobs without a start stamp: %s" % [r["missing"] for r in x])
    return 0


if __name__ == "__main__":
    sys.exit(main())
