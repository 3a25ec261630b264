#!/usr/bin/env python3
"""bench/cputree.py: the benches' exact CPU count finds the hierarchy to
count in on each cgroup layout, removes only a killed bench's leftovers,
and counts a tree's CPU (where this machine lets it make a cgroup)."""
import os
import subprocess
import sys
import tempfile
import time

import paitest as pt

sys.path.insert(0, os.path.join(pt.REPO, "bench"))
import cputree  # noqa: E402

V1_APART = """cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,nosuid,nodev,noexec,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
"""
V1_TOGETHER = """tmpfs /sys/fs/cgroup tmpfs ro,nosuid,nodev,noexec,mode=755 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate 0 0
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
"""
V2 = """proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
"""
NONE = """cgroup2 /sys/fs/cgroup/unified cgroup2 rw 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0
"""

pt.check(cputree.counting_mount(V1_APART) == ("/sys/fs/cgroup/cpuacct", False, False),
         "v1 with cpuacct alone: counted there, pai's tasks stay in the tree",
         cputree.counting_mount(V1_APART))
pt.check(cputree.counting_mount(V1_TOGETHER) == ("/sys/fs/cgroup/cpu,cpuacct", False, True),
         "v1 with cpu and cpuacct together: pai moves its tasks out (their dirs are added)",
         cputree.counting_mount(V1_TOGETHER))
pt.check(cputree.counting_mount(V2) == ("/sys/fs/cgroup", True, True),
         "pure v2: cpu.stat, pai moves its tasks out", cputree.counting_mount(V2))
pt.check(cputree.counting_mount(NONE) == (None, False, False),
         "no cpuacct and a hybrid unified mount only: nothing to count in (the /proc fallback)",
         cputree.counting_mount(NONE))

# Leftovers of a bench killed with SIGKILL: only dead pids' trees go.
with tempfile.TemporaryDirectory() as mnt:
    dead = subprocess.Popen(["true"])
    dead.wait()
    mine = "pai-bench-e2e-%d" % os.getpid()
    for d in ("pai-bench-e2e-%d/server" % dead.pid, mine + "/server", "pai-bench-e2e-x/a",
              "other-%d/a" % dead.pid):
        os.makedirs(os.path.join(mnt, d))
    busy = os.path.join(mnt, "pai-bench-e2e-%d" % (dead.pid + 1), "agents")
    os.makedirs(busy)
    # an rmdir that fails, as on a cgroup still in use (its pid alive or not)
    with open(os.path.join(busy, "f"), "w"):
        pass
    gone = cputree.remove_stale(mnt, "pai-bench-e2e")
    left = sorted(os.listdir(mnt))
    pt.check(gone == ["pai-bench-e2e-%d" % dead.pid], "a dead bench's tree is removed", (gone, left))
    pt.check(mine in left and "pai-bench-e2e-x" in left and "other-%d" % dead.pid in left,
             "a live bench's tree and other names are kept", left)
    pt.check(os.path.isdir(busy), "a dir that cannot be removed (in use) stays", left)

# A real tree, where a cgroup can be made.
tree = cputree.CpuTree("pai-test-cputree", ["t"])
if not tree.ok:
    pt.skip("a busy child's CPU is counted by its cgroup",
            "needs root and a cgroup v1 cpuacct or v2 mount")
else:
    try:
        p = subprocess.Popen([sys.executable, "-c",
                              "import sys,time\nsys.stdin.read(1)\nt=time.process_time()\n"
                              "while time.process_time()-t<0.3: pass\n"],
                             stdin=subprocess.PIPE)
        tree.add("t", p.pid)
        s0 = tree.seconds("t")
        p.stdin.write(b"x")
        p.stdin.close()
        p.wait(30)
        used = tree.seconds("t") - s0
        u, s = tree.user_sys("t")
        pt.check(0.28 <= used <= 2.0, "a busy child's CPU is counted by its cgroup (%.3f s)" % used,
                 used)
        pt.check(u + s > 0, "user and system time are read (%.2f + %.2f s)" % (u, s), (u, s))
        pt.check(tree.how() in ("cpuacct cgroup", "cgroup v2 cpu.stat"), "it says how it counts",
                 tree.how())
    finally:
        tree.remove(wait=5)
    time.sleep(0.1)
    pt.check(not os.path.exists(os.path.join(tree.mnt, "pai-test-cputree-%d" % os.getpid())),
             "its dirs are removed at the end")
pt.done()
