#!/usr/bin/env python3
"""test_daemon_sched.py - the CPU policy of pai's daemons (docs/operations.md,
"CPU policy"): `pai server` and `pai agent`, every thread of theirs and the
agent's monitor run SCHED_BATCH; a task (and what `pai exec` runs) gets the
ordinary SCHED_OTHER, whatever the agent's; with PAI_SCHED=normal in its
environment a daemon keeps SCHED_OTHER.
"""

import glob
import os
import re

import e2etest as e
import paitest as pt

SCHED_OTHER, SCHED_BATCH = 0, 3


def policy(pid, tid=None):
    """The policy of a thread (field 41 of /proc/PID/task/TID/stat); None when gone."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid or pid)) as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rindex(")") + 2:].split()[38])


def thread_policies(pid):
    return sorted({policy(pid, int(t)) for t in os.listdir("/proc/%d/task" % pid)} - {None})


def main():
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    pt.check(thread_policies(srv.proc.pid) == [SCHED_BATCH],
             "every thread of the server runs SCHED_BATCH", thread_policies(srv.proc.pid))
    agent = e.agent(srv, "sched1")
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the agent is ready", agent.log())
    pt.check(thread_policies(agent.proc.pid) == [SCHED_BATCH],
             "every thread of the agent runs SCHED_BATCH", thread_policies(agent.proc.pid))
    st, b = e.submit(admin, e.job_yaml("pol", [e.role(
        "main", "echo POLICY=$(cut -d')' -f2 /proc/self/stat | awk '{print $39}'); sleep 30")]))
    pt.check(st == 202, "a job is submitted", b)
    d = e.wait_state(admin, "admin~pol", ("RUNNING", "SUCCEEDED", "FAILED"), timeout=60)
    pt.check(e.state(d) == "RUNNING", "it runs", d)
    def logs():
        return "".join(open(p, errors="replace").read()
                       for p in glob.glob(os.path.join(agent.work_dir, "logs", "*.stdout")))
    e.wait_for(lambda: "POLICY=" in logs(), timeout=30)
    out = logs()
    mons = e.children(agent.proc.pid)
    pt.check(mons and all(policy(m) == SCHED_BATCH for m in mons),
             "the agent's monitor runs SCHED_BATCH", [(m, policy(m)) for m in mons])
    tasks = [c for m in mons for c in e.children(m)]
    pt.check(tasks and all(policy(t) == SCHED_OTHER for t in tasks),
             "the task's process runs SCHED_OTHER",
             [(t, policy(t), open("/proc/%d/cmdline" % t).read()) for t in tasks])
    pt.check(re.search(r"POLICY=0\b", out), "as the task sees it", out)
    st, b = admin.put("/api/v2/jobs/admin~pol/executionType", {"value": "STOP"})
    e.wait_state(admin, "admin~pol", ("STOPPED", "FAILED", "SUCCEEDED"), timeout=60)

    env = dict(os.environ, PAI_SCHED="normal")
    plain = pt.Proc([pt.PAI_BIN, "agent", "--server", srv.url, "--name", "sched2", "--token",
                     srv.agent_token or "", "--work-dir", pt.tmpdir("pai-sched2-"), "--gpus", "1"],
                    os.path.join(pt.tmpdir("pai-sched2-log-"), "agent.log"), env=env)
    plain.spawn()
    pt.check(len(e.wait_nodes(admin, 2)) == 2, "an agent with PAI_SCHED=normal is ready",
             plain.log())
    pt.check(thread_policies(plain.proc.pid) == [SCHED_OTHER],
             "and keeps SCHED_OTHER", thread_policies(plain.proc.pid))
    plain.stop()
    agent.stop()


if __name__ == "__main__":
    main()
    pt.done()
