"""bench/vs-slurm/systems.py - the two systems bench/vs-slurm/run.py drives:
Slurm (Debian's slurmctld + NODES `slurmd -N nNN`, multiple-slurmd mode, fake
GPUs through gres.conf) and pai (`pai server` + NODES `pai agent`), each
started under a directory of its own, its whole process tree in a cpuacct
cgroup of its own, and stopped by the pids it started.

Both offer the same calls: submit(name, kind, gpus, stamp) through the
system's CLI (`sbatch`, `pai submit`), active() (jobs not finished),
records(names) (name -> (submit s, start s) from the system's own records:
Slurm's job completion log, pai's job details),
ctl_hwm() (the controller's VmHWM, KB), pids() and stop().

Job kinds: "short" (`true`, or a first-instruction stamp for the stream),
"dist" (two roles: 1 ps task with 1 GPU and DIST_WORKERS worker tasks with
4 GPUs, one gang across nodes: in Slurm a heterogeneous job whose batch
script runs `srun --het-group=0,1 true`, or with DIST_SLURM=nodes one job of
DIST_WORKERS+1 nodes x 4 GPUs running `srun true`), "small" (`sleep BF_SMALL_S`, the
GPU mix) and "gang" (BF_GANG nodes x all their GPUs, `sleep BF_GANG_S`; in
Slurm `srun` across the allocation)."""

import glob
import os
import re
import signal
import socket
import tempfile
import subprocess
import sys
import threading
import time

import e2etest as e
import paitest as pt

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from cputree import CpuTree  # noqa: E402  (bench/cputree.py)


def write_whole(path, text):
    """Write a job file under a temporary name and rename it into place:
    the client threads share the cache of job files, and two threads that
    both found it empty used to rewrite one file in place while a third
    submitted it (a truncated, empty job: one failure per run on both
    systems)."""
    tmp = "%s.%d.tmp" % (path, threading.get_ident())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


NODES = int(os.environ.get("NODES", "16"))
GPUS = int(os.environ.get("GPUS", "8"))
DIST_WORKERS = int(os.environ.get("DIST_WORKERS", "4"))
BF_GANG = int(os.environ.get("BF_GANG", str(max(1, NODES // 2))))
BF_SMALL_S = float(os.environ.get("BF_SMALL_S", "2"))
BF_GANG_S = float(os.environ.get("BF_GANG_S", "3"))
# Slurm's knobs (the defaults are the tuning described in run.py's docstring)
SLURM_SCHED = os.environ.get(
    "SLURM_SCHED", "batch_sched_delay=0,bf_interval=1,sched_min_interval=0,"
    "default_queue_depth=10000,bf_continue")
SLURM_PROCTRACK = os.environ.get("SLURM_PROCTRACK", "linuxproc")
SLURM_EPILOG = os.environ.get("SLURM_EPILOG", "")
# the 2-role job in Slurm: "het" (a heterogeneous job, 1 + DIST_WORKERS
# nodes; Slurm schedules these in its backfill passes only) or "nodes" (one
# -N DIST_WORKERS+1 job of 4 GPUs a node: the ps gets 3 GPUs too many, but the
# main scheduler starts it at once)
DIST_SLURM = os.environ.get("DIST_SLURM", "het")
SLURM_CG = "/sys/fs/cgroup/*/slurm_n[0-9][0-9]"


class Acct:
    """The CPU of one system's whole process tree (bench/cputree.py: a cgroup
    that the started processes, and all they fork, join; cpuacct on cgroup
    v1, cpu.stat on v2).  moved(): the dirs a system moves its tasks to, out
    of that tree, counted too where they are in the counting hierarchy (cpu
    and cpuacct mounted together, or v2): pai's `pai/<node>`, Slurm's
    proctrack/cgroup `slurm_nNN`."""

    def __init__(self, name, moved=lambda mnt: []):
        self.name, self.moved = name, moved
        self.tree = CpuTree("pai-vs-slurm", [name])
        if not self.tree.ok:
            raise RuntimeError("bench-vs-slurm needs root and a cgroup v1 cpuacct or v2 mount "
                               "to count CPU exactly")
        self.path = self.tree.dirs[name]

    def _extra(self):
        return self.moved(self.tree.mnt) if self.tree.moves else []

    def add(self, pid):
        self.tree.add(self.name, pid)

    def ns(self):
        return int(self.tree.seconds(self.name, extra=self._extra()) * 1e9)

    def user_sys(self):
        """(user, system) seconds of the tree."""
        return self.tree.user_sys(self.name, extra=self._extra())

    def procs(self):
        return self.tree.procs(self.name)

    def remove(self):
        """Removes the cgroup once the processes started in it are gone: what
        is left 10 s after the system's stop (descendants of what this bench
        started, by their pids in the cgroup) is killed, with a warning."""
        deadline = time.time() + 10
        while self.procs() and time.time() < deadline:
            time.sleep(0.2)
        left = self.procs()
        if left:
            print("bench-vs-slurm: %d processes left after the stop, killed: %s"
                  % (len(left), left[:10]), file=sys.stderr)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.5)
        self.tree.remove(wait=0)


def hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_range(n):
    """A first port of n consecutive free loopback ports, below the
    ephemeral range (32768+) so that outgoing connections do not take them.
    The search starts at a place of this process's own and wraps around the
    whole range (it used to stop at 32000: a pid ending in 999 left one
    place to try, and a run failed with its ports in TIME_WAIT)."""
    span = 32000 - n - 12000
    for k in range(0, span, 97):
        first = 12000 + (os.getpid() % 1000 * 20 + k) % span
        socks = []
        try:
            for p in range(first, first + n):
                so = socket.socket()
                socks.append(so)
                so.bind(("127.0.0.1", p))
            return first
        except OSError:
            continue
        finally:
            for so in socks:
                so.close()
    raise RuntimeError("no %d free consecutive ports" % n)


def parse_time(s):
    try:
        return time.mktime(time.strptime(s, "%Y-%m-%dT%H:%M:%S"))
    except ValueError:
        return None


class Slurm:
    name = "slurm"

    def __init__(self, base):
        self.dir = tempfile.mkdtemp(prefix="slurm-", dir=base)
        self.procs = []
        self.errors = []
        self.acct = Acct("slurm", lambda mnt: glob.glob(os.path.join(mnt, "slurm_n[0-9][0-9]")))
        self.scripts = {}
        try:
            self._conf()
            self._up()
        except BaseException:  # ^C or a timeout during the start too
            self.stop()
            raise

    def _conf(self):
        d = self.dir
        for sub in ("state", "spool", "log", "dev", "out"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chmod(os.path.join(d, "out"), 0o1777)
        for i in range(GPUS):
            p = os.path.join(d, "dev", "nvidia%d" % i)
            os.mknod(p, 0o666 | 0o020000, os.makedev(195, i))
        port = free_range(NODES + 1)
        nodes = "n[01-%02d]" % NODES
        self.jobcomp = os.path.join(d, "jobcomp.txt")
        epilog = "Epilog=%s\n" % SLURM_EPILOG if SLURM_EPILOG else ""
        task = "task/cgroup" if SLURM_PROCTRACK == "cgroup" else "task/none"
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
ProctrackType=proctrack/%s
TaskPlugin=%s
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
SchedulerType=sched/backfill
SchedulerParameters=%s
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=%s
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=2
MaxJobCount=100000
MessageTimeout=60
%sNodeName=%s NodeHostname=localhost NodeAddr=127.0.0.1 Port=%d-%d CPUs=%d RealMemory=65536 Gres=gpu:%d State=UNKNOWN
PartitionName=p Nodes=%s Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
""" % (port, d, d, d, d, d, d, SLURM_PROCTRACK, task, SLURM_SCHED, self.jobcomp, epilog,
       nodes, port + 1, port + NODES, GPUS * 2, GPUS, nodes)
        with open(os.path.join(d, "slurm.conf"), "w") as f:
            f.write(conf)
        with open(os.path.join(d, "gres.conf"), "w") as f:
            f.write("AutoDetect=off\nNodeName=%s Name=gpu File=%s/dev/nvidia[0-%d]\n"
                    % (nodes, d, GPUS - 1))
        if SLURM_PROCTRACK == "cgroup":
            self.cg_before = set(glob.glob(SLURM_CG))
            with open(os.path.join(d, "cgroup.conf"), "w") as f:
                f.write("CgroupPlugin=cgroup/v1\nConstrainDevices=no\n")
        self.env = dict(os.environ, SLURM_CONF=os.path.join(d, "slurm.conf"))

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

    def script(self, kind, stamp):
        key = (kind, bool(stamp))
        if key not in self.scripts:
            body = {"short": "true",
                    "dist": "srun true" if DIST_SLURM == "nodes" else "srun --het-group=0,1 true",
                    "small": "sleep %g" % BF_SMALL_S,
                    "gang": "srun sleep %g" % BF_GANG_S}[kind]
            if stamp:
                body = "echo $EPOCHREALTIME > %s/$SLURM_JOB_NAME" % stamp
            p = os.path.join(self.dir, "job-%s-%d.sh" % key)
            write_whole(p, "#!/bin/bash\n%s\n" % body)
            self.scripts[key] = p
        return self.scripts[key]

    def submit(self, name, kind, gpus, stamp=None):
        argv = ["sbatch", "-Q", "--parsable", "-o", "/dev/null", "-J", name]
        if kind in ("short", "small"):
            argv += ["-n", "1", "--gres=gpu:%d" % gpus]
        elif kind == "dist" and DIST_SLURM == "nodes":
            argv += ["-N", str(DIST_WORKERS + 1), "--ntasks-per-node=1", "--gres=gpu:4"]
        elif kind == "dist":
            argv += ["-n", "1", "--gres=gpu:1", ":", "-N", str(DIST_WORKERS),
                     "--ntasks-per-node=1", "--gres=gpu:4"]
        else:
            argv += ["-N", str(BF_GANG), "--ntasks-per-node=1", "--gres=gpu:%d" % GPUS]
        if kind in ("small", "gang"):
            argv += ["-t", "1"]  # backfill needs limits; a minute is Slurm's shortest
        r = subprocess.run(argv + [self.script(kind, stamp)], env=self.env, capture_output=True,
                           text=True)
        if r.returncode != 0:
            self.errors.append((r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1])
        return r.returncode == 0

    def active(self):
        r = subprocess.run(["squeue", "-h", "-t", "PD,R,CG,CF,S", "-o", "%i"], env=self.env,
                           capture_output=True, text=True)
        return len(r.stdout.split()) if r.returncode == 0 else 1 << 30

    def records(self, names):
        """name -> (submit, start) in seconds (Slurm keeps whole seconds), from
        its job completion log (jobcomp/filetxt: SubmitTime, StartTime, the
        allocation); a het job's first component.  `sacct -c` reads the same
        file, but Slurm 22.05's shows the start in its Submit column."""
        names = set(names)
        out = {}
        try:
            with open(self.jobcomp) as fh:
                for line in fh:
                    kv = dict(re.findall(r"(\w+)=(\S*)", line))
                    n = kv.get("Name", "")
                    if n in names:
                        sub, st = parse_time(kv.get("SubmitTime", "")), parse_time(
                            kv.get("StartTime", ""))
                        if sub is not None and st is not None:
                            out[n] = (sub, min(st, out.get(n, (0, st))[1]))
        except OSError:
            pass
        return out

    def ctl_hwm(self):
        return hwm_kb(self.ctld.pid)

    def pids(self):
        return {"controller": [self.ctld.pid],
                "node daemons": [p.pid for p in self.procs if p is not self.ctld]}

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
        # proctrack/cgroup's slurm_nNN trees, made by these node daemons
        for top in set(glob.glob(SLURM_CG)) - getattr(self, "cg_before", set(glob.glob(SLURM_CG))):
            for d, _, _ in os.walk(top, topdown=False):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


class Pai:
    name = "pai"

    def __init__(self, base):
        self.dir = tempfile.mkdtemp(prefix="pai-", dir=base)
        os.makedirs(os.path.join(self.dir, "out"), exist_ok=True)
        os.chmod(self.dir, 0o755)
        os.chmod(os.path.join(self.dir, "out"), 0o1777)
        self.acct = Acct("pai", lambda mnt: [os.path.join(mnt, "pai", "n%02d" % (i + 1))
                                             for i in range(NODES)])
        self.agents = []
        self.errors = []
        self.submitted = 0
        self.lock = threading.Lock()
        os.environ["TEST_TMP"] = self.dir
        self.srv = None
        try:
            self.srv = pt.start_server(extra_args=["--log-level", "warn"], env=pt.PRODUCTION_ENV)
            self.acct.add(self.srv.proc.pid)
            self._up()
        except BaseException:  # ^C or a timeout during the start too
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

    @staticmethod
    def roles(kind, gpus, stamp):
        if kind == "dist":
            return [e.role("ps", "true", gpu=1),
                    e.role("worker", "true", instances=DIST_WORKERS, gpu=4)]
        if kind == "gang":
            return [e.role("worker", "sleep %g" % BF_GANG_S, instances=BF_GANG, gpu=GPUS)]
        cmd = "sleep %g" % BF_SMALL_S if kind == "small" else "true"
        if stamp:
            cmd = "echo $EPOCHREALTIME > %s/$PAI_JOB_NAME" % stamp
        return [e.role("main", cmd, gpu=gpus)]

    def job_file(self, kind, gpus, stamp):
        key = (kind, gpus, stamp)
        if key not in self.files:
            p = os.path.join(self.dir, "job-%s-%d-%d.yaml" % (kind, gpus, bool(stamp)))
            write_whole(p, e.job_yaml("j", self.roles(kind, gpus, stamp)))
            self.files[key] = p
        return self.files[key]

    def _count(self):
        with self.lock:
            self.submitted += 1

    def submit(self, name, kind, gpus, stamp=None):
        r = subprocess.run([pt.PAI_BIN, "submit", self.job_file(kind, gpus, stamp),
                            "--name", name], env=self.env, capture_output=True, text=True)
        if r.returncode == 0:
            self._count()
        else:
            self.errors.append((r.stderr.strip().splitlines() or ["exit %d" % r.returncode])[-1])
        return r.returncode == 0

    def submit_rest(self, name, kind, gpus, stamp=None):
        """The REST API, as the CLI and the portal call it, from a kept connection."""
        cl = getattr(self.local, "c", None)
        if cl is None:
            cl = self.local.c = self.srv.client(self.srv.admin_token)
        st, b = e.submit(cl, e.job_yaml(name, self.roles(kind, gpus, stamp)))
        if st == 202:
            self._count()
        else:
            self.errors.append("HTTP %s %s" % (st, str(b)[:120]))
        return st == 202

    def active(self):
        st, b = self.c.get("/api/v2/jobs?state=SUCCEEDED,FAILED,STOPPED"
                           "&withTotalCount=true&limit=1")
        if st != 200 or not isinstance(b, dict):
            return 1 << 30
        return self.submitted - b.get("totalCount", 0)

    def records(self, names):
        """name -> (submit, start) in seconds from each job's detail: the
        submission time and the last task's launch (the whole gang running)."""
        out = {}
        for n in names:
            d = e.detail(self.c, "admin~" + n)
            sub = d.get("jobStatus", {}).get("submissionTime")
            starts = [t.get("currentAttemptLaunchedTime") for r in d.get("taskRoles", {})
                      for t in e.tasks(d, r)]
            if sub and starts and all(starts):
                out[n] = (sub / 1000.0, max(starts) / 1000.0)
        return out

    def ctl_hwm(self):
        return hwm_kb(self.srv.proc.pid)

    def pids(self):
        return {"controller": [self.srv.proc.pid],
                "node daemons": [a.proc.pid for a in self.agents]}

    def stop(self):
        for a in self.agents:
            a.stop()
        if self.srv:
            self.srv.stop()
        self.acct.remove()
