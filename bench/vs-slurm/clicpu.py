#!/usr/bin/env python3
"""bench/vs-slurm/clicpu.py - CPU per CLI call: `pai submit` against Slurm's
`sbatch`, with their floors, in one run.

Starts pai (`pai server` + NODES agents) and Slurm (slurmctld + NODES slurmd)
as bench/vs-slurm/run.py does (systems.py), then runs, alternating in CALLS
rounds: `/bin/true` (the process floor), `pai --version` (pai's floor: exec,
dynamic loading, exit), `pai submit FILE --name N` (a one-task `true` job
of 1 GPU), `sbatch --version` (Slurm's floor) and `sbatch ...` (the same
job). Each call's CPU (user + system) is the reaped child's rusage (wait4),
so the servers' work is not counted; printed as the median and p90 over
the calls, in ms. Knobs: CALLS (40), NODES (2), GPUS (8), SYSTEMS
("pai,slurm"), PAI_BIN, PAI_BIN_BEFORE (another pai binary, say main's
before a change: its --version and submit run in the same rounds). Needs root and Slurm (scripts/deps.sh --slurm).
Run: PAI_BIN=build/pai python3 bench/vs-slurm/clicpu.py"""
import os
import shutil
import subprocess
import sys
import tempfile

os.environ.setdefault("NODES", "2")
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "blackbox"))
sys.path.insert(0, HERE)
import systems  # noqa: E402
import paitest as pt  # noqa: E402

CALLS = int(os.environ.get("CALLS", "40"))
SYSTEMS = os.environ.get("SYSTEMS", "pai,slurm").split(",")


def cpu_ms(argv, env):
    """One call's CPU (user + system, ms) from its rusage; fails loudly."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = p.stderr.read()
    _, status, ru = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        raise RuntimeError("%s: exit %d: %s" % (argv[:2], p.returncode, err.decode()[-300:]))
    return (ru.ru_utime + ru.ru_stime) * 1000.0


def stats(v):
    v = sorted(v)
    return v[len(v) // 2], v[min(len(v) - 1, int(len(v) * 0.9))]


def main():
    base = tempfile.mkdtemp(prefix="clicpu-")
    os.chmod(base, 0o755)
    started = []
    try:
        calls = {"/bin/true": (["/bin/true"], None)}
        if "pai" in SYSTEMS:
            p = systems.Pai(base)
            started.append(p)
            f = p.job_file("short", 1, None)
            calls["pai --version"] = ([pt.PAI_BIN, "--version"], p.env)
            calls["pai submit"] = (lambda i, f=f: [pt.PAI_BIN, "submit", f, "--name",
                                                   "c%d" % i], p.env)
            before = os.environ.get("PAI_BIN_BEFORE")
            if before:
                calls["before --version"] = ([before, "--version"], p.env)
                calls["before submit"] = (lambda i, f=f, b=before: [b, "submit", f, "--name",
                                                                    "b%d" % i], p.env)
        if "slurm" in SYSTEMS:
            s = systems.Slurm(base)
            started.append(s)
            sh = s.script("short", None)
            calls["sbatch --version"] = (["sbatch", "--version"], s.env)
            calls["sbatch"] = (lambda i, sh=sh: ["sbatch", "-Q", "--parsable", "-o", "/dev/null",
                                                 "-J", "c%d" % i, "-n", "1", "--gres=gpu:1",
                                                 sh], s.env)
        res = {k: [] for k in calls}
        for i in range(CALLS):
            for k, (argv, env) in calls.items():
                res[k].append(cpu_ms(argv(i) if callable(argv) else argv, env))
        print("CPU per call (user+system, ms; %d calls each, alternating; load %.1f):"
              % (CALLS, os.getloadavg()[0]))
        for k, v in res.items():
            print("  %-18s p50 %6.2f  p90 %6.2f" % ((k,) + stats(v)))
    finally:
        for s in reversed(started):
            s.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
