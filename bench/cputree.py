"""bench/cputree.py - the exact CPU of process trees, for the benches.

A cgroup per tree that the started processes join, and all they fork after:
cgroup v1 `cpuacct` (mounted alone or together with `cpu`), else a pure
cgroup v2 system (`/sys/fs/cgroup` is the unified mount).  The kernel counts
every nanosecond a process of the tree runs (cpuacct.usage, cpu.stat's
usage_usec), where /proc's clock ticks round each process's figure down by
up to 10 ms, which is a lot for processes born during a run.

pai moves a task into cgroups of its own in the hierarchies it limits
(src/runtime/cgroup.c: v1 memory and cpu, or v2's), under
`<mount>/pai/<node>`.  Where the counting hierarchy is one of those (cpu and
cpuacct mounted together, or v2), a task leaves the tree: `seconds()` and
`user_sys()` then add the nodes' `pai/<node>` dirs (pass their names).
Slurm's proctrack/linuxproc leaves its tasks where slurmstepd is.

A bench that was killed (SIGKILL) leaves its empty dirs behind: a new tree
removes those whose pid is gone (`<tag>-<pid>`), and only those.
"""

import os
import time


def counting_mount(mounts_text):
    """(mount point, v2, moves) of the hierarchy to count in, from the text
    of /proc/mounts, or (None, False, False).  moves: pai's task cgroups are
    in the same hierarchy (cpu with cpuacct, or v2)."""
    v2 = None
    for line in mounts_text.splitlines():
        f = line.split()
        if len(f) < 4:
            continue
        mnt, fs, opts = f[1], f[2], f[3].split(",")
        if fs == "cgroup" and "cpuacct" in opts:
            return mnt, False, "cpu" in opts
        if fs == "cgroup2" and mnt == "/sys/fs/cgroup":
            v2 = mnt
    return (v2, True, True) if v2 else (None, False, False)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(mnt, tag):
    """Remove <mnt>/<tag>-<pid> trees whose pid is gone (a bench killed with
    SIGKILL); an rmdir of a cgroup that still has processes fails, so a tree
    in use is never taken away.  Returns the names removed."""
    gone = []
    try:
        names = os.listdir(mnt)
    except OSError:
        return gone
    for n in names:
        if not n.startswith(tag + "-") or not n[len(tag) + 1:].isdigit():
            continue
        if pid_alive(int(n[len(tag) + 1:])):
            continue
        top = os.path.join(mnt, n)
        for d, _, _ in os.walk(top, topdown=False):
            try:
                os.rmdir(d)
            except OSError:
                pass
        if not os.path.exists(top):
            gone.append(n)
    return gone


class CpuTree:
    """One cgroup per name under <mount>/<tag>-<our pid>.  ok is False when
    none can be made (not root, no cpuacct and no v2): the caller falls back
    to /proc and says so."""

    def __init__(self, tag, names, mounts="/proc/mounts"):
        self.dirs = {}
        self.ok = False
        try:
            with open(mounts) as f:
                self.mnt, self.v2, self.moves = counting_mount(f.read())
        except OSError:
            self.mnt, self.v2, self.moves = None, False, False
        if not self.mnt or os.geteuid() != 0:
            return
        self.stale = remove_stale(self.mnt, tag)
        top = os.path.join(self.mnt, "%s-%d" % (tag, os.getpid()))
        try:
            for n in names:
                self.dirs[n] = os.path.join(top, n)
                os.makedirs(self.dirs[n], exist_ok=True)
            self.ok = True
        except OSError:
            self.remove(wait=0)

    def how(self):
        return "cgroup v2 cpu.stat" if self.v2 else "cpuacct cgroup"

    def add(self, name, pid, children=()):
        """pid (all its threads) and the given pids into the tree."""
        for q in [pid] + list(children):
            with open(os.path.join(self.dirs[name], "cgroup.procs"), "w") as f:
                f.write(str(q))

    def _stat(self, d):
        """(usage, user, system) seconds of one cgroup dir; zeros when it is
        not there (a node's pai dir before its first task)."""
        try:
            if self.v2:
                v = {}
                with open(os.path.join(d, "cpu.stat")) as f:
                    for line in f:
                        k, n = line.split()[:2]
                        v[k] = int(n) / 1e6
                return v.get("usage_usec", 0.0), v.get("user_usec", 0.0), v.get("system_usec", 0.0)
            with open(os.path.join(d, "cpuacct.usage")) as f:
                usage = int(f.read()) / 1e9
            v = {}
            with open(os.path.join(d, "cpuacct.stat")) as f:
                for line in f:
                    k, n = line.split()[:2]
                    v[k] = int(n) / os.sysconf("SC_CLK_TCK")
            return usage, v.get("user", 0.0), v.get("system", 0.0)
        except (OSError, ValueError):
            return 0.0, 0.0, 0.0

    def _dirs(self, name, nodes, extra):
        ds = [self.dirs[name]]
        if self.moves:
            ds += [os.path.join(self.mnt, "pai", n) for n in nodes] + list(extra)
        return ds

    def seconds(self, name, nodes=(), extra=()):
        """CPU seconds of the tree so far, with, where tasks are moved out of
        it, the nodes' pai dirs and the extra dirs (absolute paths)."""
        return sum(self._stat(d)[0] for d in self._dirs(name, nodes, extra))

    def user_sys(self, name, nodes=(), extra=()):
        """(user, system) seconds of the tree so far (v1: in clock ticks)."""
        s = [self._stat(d) for d in self._dirs(name, nodes, extra)]
        return sum(x[1] for x in s), sum(x[2] for x in s)

    def procs(self, name):
        try:
            with open(os.path.join(self.dirs[name], "cgroup.procs")) as f:
                return [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            return []

    def remove(self, wait=5.0):
        """Removes the dirs once what was in them is gone (waits up to wait s
        for each), then the top dir if nothing else is left in it (another
        tree of the same bench may still be)."""
        for d in self.dirs.values():
            deadline = time.time() + wait
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if time.time() >= deadline:
                        break
                    time.sleep(0.1)
        for d in [os.path.dirname(d) for d in self.dirs.values()][:1]:
            try:
                os.rmdir(d)
            except OSError:
                pass
