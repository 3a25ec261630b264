#!/usr/bin/env python3
"""bench/vs-slurm/perfsplit.py - where pai's host CPU goes in a `perf record
-a -g` profile that bench/vs-slurm/run.py took with PERF=FILE.

Reads FILE.pids (the server, the agents and their live children, the
per-agent monitors, when the profile started) and the fork events of the
profile (`perf script --show-task-events`), so each sample is classed by the
process it came from: server, agent, monitor (an agent's child: the
per-agent monitors, started on the first task), task (a process a monitor
started, and all its descendants), kernel thread (kworkers, RCU,
softirq threads: the whole machine's, not only pai's) or other (the rest of
the machine: the bench, other users). Prints each class's share of pai's
samples, kernel against user, and the top leaf symbols.
Usage: python3 bench/vs-slurm/perfsplit.py FILE [TOP]"""

import collections
import re
import subprocess
import sys

HEAD = re.compile(r"^\s*(.*?)\s+(\d+)/(\d+)\s*$")
FRAME = re.compile(r"^\s+([0-9a-f]+)\s+(.*?)\s+\((.*)\)\s*$")
FORK = re.compile(r"PERF_RECORD_FORK\((\d+):(\d+)\):\((\d+):(\d+)\)")
ROLES = {"controller": "server", "node daemons": "agent", "node daemons-child": "monitor"}
CHILD = {"server": "server", "agent": "monitor", "monitor": "task", "task": "task",
         "kthread": "kthread"}
PAI = ("server", "agent", "monitor", "task")


def entry(stack):
    """How a kernel sample's stack entered the kernel: the system call (the
    frame above do_syscall_64), a page fault, a new process's first return,
    or an interrupt / softirq."""
    for i, f in enumerate(stack):
        if f == "do_syscall_64":
            j = i - 1
            while j > 0 and stack[j] in ("x64_sys_call",):
                j -= 1
            name = stack[j] if j >= 0 else "?"
            for pre in ("__x64_sys_", "__do_sys_", "__se_sys_", "ksys_", "do_sys_"):
                if name.startswith(pre):
                    name = name[len(pre):]
            return "syscall " + name
        if f in ("asm_exc_page_fault", "exc_page_fault"):
            return "page fault"
        if f in ("ret_from_fork", "ret_from_fork_asm"):
            return "new process (ret_from_fork)"
    return "interrupt/other"


def main():
    data = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 15
    cls = {2: "kthread"}
    with open(data + ".pids") as f:
        for line in f:
            role, pid = line.rsplit(" ", 1)
            cls[int(pid)] = ROLES.get(role, role)
    roots = set(cls)
    out = subprocess.run(["perf", "script", "-i", data, "--show-task-events",
                          "-F", "comm,pid,tid,ip,sym,dso"],
                         capture_output=True, text=True, errors="replace").stdout
    n = collections.Counter()
    kern = collections.Counter()
    syms = collections.Counter()
    per = collections.defaultdict(collections.Counter)
    comms = collections.defaultdict(collections.Counter)
    dsos = collections.defaultdict(collections.Counter)
    entries = collections.defaultdict(collections.Counter)
    samples = []
    cur = None
    for line in out.splitlines():
        m = FORK.search(line)
        if m:
            child, parent = int(m.group(1)), int(m.group(3))
            if child != parent and child not in roots:
                p = cls.get(parent)
                if p in CHILD:
                    cls[child] = CHILD[p]
                elif child in cls:
                    del cls[child]  # a reused pid
            continue
        f = FRAME.match(line)
        if f and cur is not None:
            cur[2].append(f)
            continue
        h = HEAD.match(line)
        cur = None
        if h:
            # classed now: the process tree as it is at this sample
            cur = (h, cls.get(int(h.group(2)), "other"), [])
            samples.append(cur)
    for m, c, frames in samples:
        if not frames:
            continue
        comm, pid = m.group(1), int(m.group(2))
        sym, dso = frames[0].group(2), frames[0].group(3)
        if pid == 0:
            c = "idle"
        n[c] += 1
        k = "kernel" if "kernel" in dso or frames[0].group(1).startswith("ffffffff") else "user"
        kern[(c, k)] += 1
        comms[c][comm] += 1
        if c in PAI:
            s = sym if sym != "[unknown]" else "[%s]" % dso.rsplit("/", 1)[-1]
            syms[(s, k)] += 1
            per[c][s] += 1
            dsos[c]["kernel" if k == "kernel" else dso.rsplit("/", 1)[-1].split(".so")[0]] += 1
            if k == "kernel":
                entries[c][entry([f.group(2) for f in frames])] += 1
    total = sum(n.values())
    pai = sum(n[c] for c in PAI)
    print("perfsplit: %d samples, %d of them pai's (%.0f%%); kernel threads %d (%.0f%% of "
          "pai's count), other %d, idle %d" % (total, pai, 100.0 * pai / max(1, total),
                                               n["kthread"], 100.0 * n["kthread"] / max(1, pai),
                                               n["other"], n["idle"]))
    for c in PAI + ("kthread",):
        if n[c]:
            print("  %-8s %5.1f%% of pai's  kernel %4.1f%%  user %4.1f%%   comms: %s" % (
                c, 100.0 * n[c] / max(1, pai), 100.0 * kern[(c, "kernel")] / n[c],
                100.0 * kern[(c, "user")] / n[c],
                ", ".join("%s %d" % x for x in comms[c].most_common(4))))
    kp = sum(kern[(c, "kernel")] for c in PAI)
    print("  pai in the kernel: %.1f%%, in user space: %.1f%%"
          % (100.0 * kp / max(1, pai), 100.0 * (pai - kp) / max(1, pai)))
    print("  top leaf symbols of pai's samples (share of pai's):")
    for (s, k), v in syms.most_common(top):
        print("    %5.1f%%  %-6s %s" % (100.0 * v / max(1, pai), k, s))
    for c in PAI:
        if per[c]:
            print("  %s, by object: %s" % (c, ", ".join("%s %.1f%%" % (s, 100.0 * v / max(1, pai))
                                                        for s, v in dsos[c].most_common(6))))
            print("  %s, by symbol: %s" % (c, ", ".join("%s %.1f%%" % (s, 100.0 * v / max(1, pai))
                                                        for s, v in per[c].most_common(6))))
            print("  %s, kernel by entry: %s" % (c, ", ".join(
                "%s %.1f%%" % (s, 100.0 * v / max(1, pai)) for s, v in entries[c].most_common(8))))


if __name__ == "__main__":
    main()
