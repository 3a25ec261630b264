#!/usr/bin/env python3
"""test_ssh_killed.py - the ssh runtime plugin (docs/ssh.md) in a task that
cannot write its own working dir, killed outright (kill -9 of its shell: no
EXIT trap runs), on a root agent of the process runtime.

Such a task keeps the plugin's files (the job's host key, authorized_keys,
its private key) in /tmp/.pai-ssh-<its shell's pid>, which its shell's trap
removes; killed outright, the task's monitor removes it (src/runtime/
sshtmp.c).  Before, it stayed in /tmp for good.  The monitor's removal
never follows what another uid may have put at that name: a link to a
root's dir, a link to a dir of the task's own uid, and a root's dir there
are all left as they are, and what they hold.

A working dir the task cannot write: each of the agent's pooled dirs
(<work>/tasks/<slot>/cwd) is made alice's (uid and gid, 0700: the monitor
then has nothing to change) and immutable (chattr +i), so the preamble
finds neither the dir nor /proc/PID/cwd writable and takes /tmp.  The
agent's work dir's path is open (0711), so the agent warns of no closed
dir on it (docs/agent.md).
"""

import glob
import json
import os
import re
import shutil
import signal
import subprocess

import e2etest as e
import paitest as pt
from sshtest import have, start_agent

INSTANCES = 4  # 0: the task's own dir; 1-3: something else put at its name


def logs_of(work, job):
    return "".join(open(p, errors="replace").read()
                   for p in glob.glob(os.path.join(work, "logs", "*%s*.stdout" % job)))


def chattr(flag, paths):
    return all(subprocess.run(["chattr", flag, p], capture_output=True).returncode == 0
               for p in paths)


def alice_ids(alice, work):
    """alice's task uid and gid, from a job of hers without the plugin."""
    st, b = e.submit(alice, e.job_yaml("ids", [e.role("main", 'echo "IDS=$(id -u):$(id -g)"')]))
    d = e.wait_state(alice, "alice~ids", ("SUCCEEDED", "FAILED", "STOPPED"), timeout=60)
    pt.check(st == 202 and e.state(d) == "SUCCEEDED", "a first job of alice's runs", (st, b, d))
    m = e.wait_for(lambda: re.search(r"IDS=(\d+):(\d+)", logs_of(work, "ids")))
    return (int(m.group(1)), int(m.group(2))) if m else (-1, -1)


def closed_cwds(work, uid, gid):
    """Every pooled working dir made alice's and immutable; the dirs."""
    cwds = [p for p in glob.glob(os.path.join(work, "tasks", "*", "cwd")) if not os.listdir(p)]
    for p in cwds:
        os.chown(p, uid, gid)
        os.chmod(p, 0o700)
    ok = chattr("+i", cwds)
    pt.check(ok and len(cwds) >= INSTANCES, "the agent's pooled working dirs are closed to writes",
             cwds)
    return cwds


def job_text():
    cmd = 'echo "PID=$$ IDX=$PAI_TASK_INDEX"; sleep 600'
    return "\n".join([
        "protocolVersion: 2", "name: killed", "type: job",
        "prerequisites:", "  - {type: dockerimage, name: img, uri: localhost/pai-busybox:1}",
        "taskRoles:", "  main:", "    instances: %d" % INSTANCES, "    dockerImage: img",
        "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 128}",
        "    commands:", "      - %s" % json.dumps(cmd),
        "extras:", "  com.microsoft.pai.runtimeplugin:", "    - plugin: ssh",
        "      parameters: {jobssh: true}"]) + "\n"


def plant(idx, d, root, uid, gid, cleanup):
    """What another uid might have put at d, the task's dir moved away
    first (root does it here): (the thing, a canary file it must keep)."""
    moved = d + ".moved"
    os.rename(d, moved)
    cleanup.append(moved)
    if idx == 3:  # a root's dir at the name itself
        victim = d
        os.mkdir(victim, 0o700)
    else:
        victim = os.path.join(root, "victim-%d" % idx)
        os.mkdir(victim, 0o755)
        if idx == 2:  # a dir the task's uid could empty, were the link followed
            os.chown(victim, uid, gid)
        os.symlink(victim, d)
    cleanup.append(d)
    canary = os.path.join(victim, "canary")
    open(canary, "w").write("keep\n")
    if idx == 2:
        os.chown(canary, uid, gid)
    return canary


def main():
    if os.geteuid() != 0:
        pt.skip("ssh in a task killed outright", "needs root (tasks run as per-user uids)")
        return
    if not have("sshd") and not os.path.exists("/usr/sbin/sshd"):
        pt.not_ok("sshd is installed (scripts/deps.sh installs openssh)")
        return
    root = pt.tmpdir("pai-sshk-")
    os.chmod(root, 0o711)
    probe = os.path.join(root, "probe")
    os.mkdir(probe)
    if not chattr("+i", [probe]):
        pt.skip("ssh in a task killed outright", "chattr +i does not work in %s" % root)
        return
    chattr("-i", [probe])
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    agent, work = start_agent(srv, root, "agent", "n1")
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the agent is ready", agent.log())
    pt.check("closed to the task uids" not in agent.log(),
             "an agent whose work dir's path is open to the task uids warns of nothing",
             agent.log()[-1500:])
    alice = srv.client(srv.create_user("alice", "alice-pw-1234"))
    uid, gid = alice_ids(alice, work)
    cwds, cleanup = [], []
    try:
        cwds = closed_cwds(work, uid, gid)
        run(alice, work, root, uid, gid, cleanup)
    finally:
        chattr("-i", cwds)
        for p in cleanup:
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p, ignore_errors=True)
            elif os.path.lexists(p):
                os.unlink(p)
    agent.stop()
    srv.stop()


def shells(work):
    """Each task index's shells so far (its attempts'), from the job's logs."""
    out = {}
    for p, i in re.findall(r"PID=(\d+) IDX=(\d+)", logs_of(work, "killed")):
        out.setdefault(int(i), set()).add(int(p))
    return out


def run(alice, work, root, uid, gid, cleanup):
    st, b = e.submit(alice, job_text())
    pt.check(st == 202, "alice submits a job with the ssh plugin", b)
    d = e.wait_state(alice, "alice~killed", "RUNNING", timeout=60)
    pt.check(e.state(d) == "RUNNING", "the job runs", d)
    first = e.wait_for(lambda: len(shells(work)) == INSTANCES and shells(work), timeout=30) or {}
    pt.check(len(first) == INSTANCES, "its %d tasks' shells are known" % INSTANCES, first)
    pids = {i: min(ps) for i, ps in first.items()}
    dirs = {i: "/tmp/.pai-ssh-%d" % p for i, p in pids.items()}
    mine = [dd for dd in dirs.values()
            if os.path.isdir(dd) and not os.path.islink(dd) and os.lstat(dd).st_uid == uid]
    pt.check(uid > 0 and len(mine) == INSTANCES,
             "a task that cannot write its dir keeps the plugin's files in /tmp, as its uid",
             (dirs, logs_of(work, "killed")[-800:]))
    pt.check(os.path.exists(os.path.join(dirs.get(0, "/nonexistent"), ".ssh", "authorized_keys")),
             "the job's keys are there", dirs.get(0))
    canaries = {i: plant(i, dirs[i], root, uid, gid, cleanup) for i in range(1, INSTANCES)
                if i in dirs}
    for p in pids.values():
        os.kill(p, signal.SIGKILL)
    # a task killed by SIGKILL is retried (OpenPAI's exit 137, ALWAYS_RETRY):
    # its next attempt starts once the monitor has told the end, after the
    # removal
    again = e.wait_for(lambda: all(len(shells(work).get(i, ())) > 1 for i in pids), timeout=60)
    pt.check(again, "the tasks killed outright end (and are retried)", shells(work))
    pt.check(0 in dirs and not os.path.lexists(dirs[0]),
             "the plugin's dir of a task killed outright is gone from /tmp", dirs.get(0))
    pt.check(1 in canaries and os.path.islink(dirs[1]) and os.path.exists(canaries[1]),
             "a link at the name to a root's dir is not followed: it and its file stay",
             canaries.get(1))
    pt.check(2 in canaries and os.path.islink(dirs[2]) and os.path.exists(canaries[2]),
             "a link at the name to a dir of the task's own uid is not followed either",
             canaries.get(2))
    pt.check(3 in canaries and os.path.isdir(dirs[3]) and os.path.exists(canaries[3]),
             "a root's dir at the name is left as it is", canaries.get(3))
    st, b = alice.put("/api/v2/jobs/alice~killed/executionType", {"value": "STOP"})
    d = e.wait_state(alice, "alice~killed", ("STOPPED", "FAILED", "SUCCEEDED"), timeout=60)
    pt.check(e.state(d) == "STOPPED", "the job stops", (st, b, e.state(d)))
    names = {"/tmp/.pai-ssh-%d" % p for ps in shells(work).values() for p in ps}
    left = sorted(p for p in names - set(dirs.values())
                  if os.path.lexists(p) and os.lstat(p).st_uid == uid)
    pt.check(left == [], "no dir of the job's later attempts is left in /tmp either", left)


if __name__ == "__main__":
    main()
    pt.done()
