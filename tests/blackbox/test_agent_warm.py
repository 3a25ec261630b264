#!/usr/bin/env python3
"""test_agent_warm.py - a warm start (docs/agent.md, "A warm start"): a root
agent of the process runtime makes, before it takes any attempt, what its
node's first attempts would otherwise each make: its monitor, forked at
the start, holds an idle cgroup a GPU under pai/<node> (memory and cpu
dirs), and the journal of acked attempts is there.  The first attempts
run in those cgroups (none more is made), and the monitor removes them
when the agent stops and it has nothing left to run.
"""

import glob
import os
import time

import e2etest as e
import paitest as pt

NODE = "warm1"
GPUS = 8


def pooled(ctrl):
    return sorted(os.path.basename(p) for p in
                  glob.glob("/sys/fs/cgroup/%s/pai/%s/pool.*" % (ctrl, NODE)))


def main():
    if os.geteuid() != 0 or not os.access("/sys/fs/cgroup/memory/cgroup.procs", os.W_OK) \
            or os.path.exists("/sys/fs/cgroup/cgroup.controllers"):
        pt.skip("a warm start of the process runtime", "needs root and cgroup v1")
        return
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    agent = e.agent(srv, NODE)
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the agent is ready", agent.log())
    work = agent.work_dir
    pt.check(os.path.isfile(os.path.join(work, "acked-attempts")),
             "the journal of acked attempts is there before the first ack",
             sorted(os.listdir(work)))
    mons = e.children(agent.proc.pid)
    pt.check(len(mons) == 1, "the agent's monitor runs before its first attempt", mons)
    e.wait_for(lambda: len(pooled("memory")) >= GPUS, timeout=10)
    warm = pooled("memory")
    pt.check(len(warm) == GPUS and all(n.startswith("pool.%d." % mons[0]) for n in warm if mons),
             "the monitor made an idle cgroup a GPU (memory)", warm)
    pt.check(pooled("cpu") == warm, "and its cpu dir", pooled("cpu"))

    jobs = ["w%d" % i for i in range(3)]
    for j in jobs:
        st, b = e.submit(admin, e.job_yaml(j, [e.role("main", "grep ':memory:' /proc/self/cgroup",
                                                      gpu=1)]))
        pt.check(st == 202, "job %s is submitted" % j, b)
    states = [e.state(e.wait_state(admin, "admin~" + j, ("SUCCEEDED", "FAILED", "STOPPED"),
                                   timeout=60)) for j in jobs]
    pt.check(states == ["SUCCEEDED"] * len(jobs), "the first jobs succeed", states)
    ran = ""
    for p in glob.glob(os.path.join(work, "logs", "*.stdout")):
        ran += open(p, errors="replace").read()
    pt.check(ran.count(":memory:/pai/%s/pool.%d." % (NODE, mons[0] if mons else 0)) == len(jobs),
             "each ran in one of the warm cgroups", ran)
    pt.check(pooled("memory") == warm, "and none more was made", pooled("memory"))

    agent.stop()
    e.wait_for(lambda: not pooled("memory") and not pooled("cpu"), timeout=10)
    pt.check(pooled("memory") == [] and pooled("cpu") == [],
             "the monitor removes them once the agent has stopped", pooled("memory"))
    deadline = time.time() + 10
    while mons and time.time() < deadline and os.path.exists("/proc/%d" % mons[0]):
        time.sleep(0.05)
    pt.check(not mons or not os.path.exists("/proc/%d/stat" % mons[0]) or
             open("/proc/%d/stat" % mons[0]).read().split()[2] == "Z",
             "and exits", mons)


if __name__ == "__main__":
    main()
    pt.done()
