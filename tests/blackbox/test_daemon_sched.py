#!/usr/bin/env python3
"""test_daemon_sched.py - the CPU policy of pai's daemons (docs/operations.md,
"CPU policy"): `pai server` and `pai agent`, every thread of theirs and the
agent's monitor run SCHED_BATCH; a task (and what `pai exec` runs) gets the
ordinary SCHED_OTHER, whatever the agent's; with PAI_SCHED=normal in its
environment a daemon keeps SCHED_OTHER.  The same for the timer slack: the
daemons and the monitor at 1 ms (or PAI_TIMER_SLACK_US), a task at the
slack the agent was started with; PAI_TIMER_SLACK_US=0 keeps the inherited
one, and a value that is not a number in range is said in the log and
changes nothing.
"""

import glob
import os
import re

import e2etest as e
import paitest as pt

SCHED_OTHER, SCHED_BATCH = 0, 3
OWN_SLACK = int(open("/proc/self/timerslack_ns").read())  # what the daemons inherit


def slack(pid):
    """A process's timer slack in ns (its main thread's); None when gone."""
    try:
        with open("/proc/%d/timerslack_ns" % pid) as f:
            return int(f.read())
    except OSError:
        return None


def ready(admin, name):
    """Whether node name is Ready, waiting up to 30 s."""
    return e.wait_for(lambda: name in e.wait_nodes(admin, 1, timeout=1), timeout=30)


def plain_agent(srv, name, **env):
    a = pt.Proc([pt.PAI_BIN, "agent", "--server", srv.url, "--name", name, "--token",
                 srv.agent_token or "", "--work-dir", pt.tmpdir("pai-%s-" % name), "--gpus", "1"],
                os.path.join(pt.tmpdir("pai-%s-log-" % name), "agent.log"),
                env=dict(os.environ, **env))
    a.spawn()
    return a


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
    pt.check(slack(srv.proc.pid) == 1000000, "the server's timer slack is 1 ms",
             slack(srv.proc.pid))
    agent = e.agent(srv, "sched1")
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the agent is ready", agent.log())
    pt.check(thread_policies(agent.proc.pid) == [SCHED_BATCH],
             "every thread of the agent runs SCHED_BATCH", thread_policies(agent.proc.pid))
    pt.check(slack(agent.proc.pid) == 1000000, "the agent's timer slack is 1 ms",
             slack(agent.proc.pid))
    st, b = e.submit(admin, e.job_yaml("pol", [e.role(
        "main", "echo POLICY=$(cut -d')' -f2 /proc/self/stat | awk '{print $39}')"
                " SLACK=$(cat /proc/self/timerslack_ns); sleep 30")]))
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
    pt.check(all(slack(m) == 1000000 for m in mons), "with a timer slack of 1 ms",
             [(m, slack(m)) for m in mons])
    tasks = [c for m in mons for c in e.children(m)]
    pt.check(tasks and all(policy(t) == SCHED_OTHER for t in tasks),
             "the task's process runs SCHED_OTHER",
             [(t, policy(t), open("/proc/%d/cmdline" % t).read()) for t in tasks])
    pt.check(re.search(r"POLICY=0\b", out), "as the task sees it", out)
    tasks_slack = [slack(t) for t in tasks]
    pt.check(tasks_slack and all(v == OWN_SLACK for v in tasks_slack),
             "the task's timer slack is the one the agent was started with (%d ns)" % OWN_SLACK,
             tasks_slack)
    pt.check(re.search(r"SLACK=%d\b" % OWN_SLACK, out), "as the task sees it", out)
    st, b = admin.put("/api/v2/jobs/admin~pol/executionType", {"value": "STOP"})
    e.wait_state(admin, "admin~pol", ("STOPPED", "FAILED", "SUCCEEDED"), timeout=60)

    plain = plain_agent(srv, "sched2", PAI_SCHED="normal")
    pt.check(ready(admin, "sched2"), "an agent with PAI_SCHED=normal is ready",
             plain.log())
    pt.check(thread_policies(plain.proc.pid) == [SCHED_OTHER],
             "and keeps SCHED_OTHER", thread_policies(plain.proc.pid))
    pt.check(slack(plain.proc.pid) == 1000000, "its timer slack is still 1 ms (a knob of its own)",
             slack(plain.proc.pid))
    plain.stop()

    slow = plain_agent(srv, "sched3", PAI_TIMER_SLACK_US="5000")
    pt.check(ready(admin, "sched3"), "an agent with PAI_TIMER_SLACK_US=5000 is ready",
             slow.log())
    pt.check(slack(slow.proc.pid) == 5000000, "its timer slack is 5 ms", slack(slow.proc.pid))
    slow.stop()
    for name, val in (("sched4", "0"), ("sched5", "fast"), ("sched6", "1000001"),
                      ("sched7", "-1")):
        a = plain_agent(srv, name, PAI_TIMER_SLACK_US=val)
        pt.check(ready(admin, name),
                 "an agent with PAI_TIMER_SLACK_US=%s is ready" % val, a.log())
        pt.check(slack(a.proc.pid) == OWN_SLACK,
                 "PAI_TIMER_SLACK_US=%s: the slack inherited (%d ns)" % (val, OWN_SLACK),
                 slack(a.proc.pid))
        said = "PAI_TIMER_SLACK_US is not a number" in a.log()
        pt.check(said == (val != "0"), "PAI_TIMER_SLACK_US=%s: %s in its log" % (
            val, "a warning" if val != "0" else "no warning"), a.log())
        a.stop()
    agent.stop()


if __name__ == "__main__":
    main()
    pt.done()
