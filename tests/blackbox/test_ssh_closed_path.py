#!/usr/bin/env python3
"""test_ssh_closed_path.py - the ssh runtime plugin (docs/ssh.md) when the
task's working dir cannot be reached by its path with the task's uid: an
agent whose --work-dir sits under a 0700 dir (the task's uid may not pass
it; the task still runs in its dir, which it owns).  The agent says so at
its start: the 0700 dir, named, and the fix (docs/agent.md).

The plugin keeps its files (host key, authorized_keys, the job's private
key) in the task's own dir, reached through /proc/<shell>/cwd: nothing is
written under /tmp (before, /tmp/.pai-ssh-PID, left there for good); the
sshd it starts takes a login with alice's key, in the task's dir and
environment; once the job is stopped no such dir of alice's is in /tmp.
"""

import glob
import json
import os
import time

import e2etest as e
import paitest as pt
from sshtest import have, keygen, ssh_run, start_agent


def tmp_dirs(uid, before=()):
    """/tmp/.pai-ssh-* dirs owned by uid, but those in before (an older
    run's, on a machine that ran the plugin before this change)."""
    out = []
    for p in glob.glob("/tmp/.pai-ssh-*"):
        try:
            if os.lstat(p).st_uid == uid and p not in before:
                out.append(p)
        except OSError:
            pass
    return sorted(out)


def main():
    if os.geteuid() != 0:
        pt.skip("ssh with a closed path", "needs root (tasks run as per-user uids)")
        return
    for tool in ("ssh", "ssh-keygen"):
        if not have(tool):
            pt.not_ok("%s is installed (scripts/deps.sh installs openssh)" % tool)
            return
    root = pt.tmpdir("pai-sshc-")  # 0700: task uids may not pass it
    os.chmod(root, 0o700)
    keys = pt.tmpdir("pai-sshc-keys-")
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    agent, work = start_agent(srv, root, "agent", "n1", mode=None)
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the agent is ready", agent.log())
    pt.check("%s (mode 0700) is closed to the task uids" % root in agent.log()
             and "chmod o+x %s" % root in agent.log(),
             "the agent warns at its start: the dir that closes its work dir's path, the fix",
             agent.log()[-1500:])

    atok = srv.create_user("alice", "alice-pw-1234")
    alice = srv.client(atok)
    key, pub = keygen(keys, "alice")
    st, b = alice.put("/api/v2/users/me", {"data": {"extension": {"sshKeys": [
        {"title": "laptop", "value": pub, "time": 0}]}}})
    pt.check(st in (200, 201), "alice keeps a public key in her profile", b)

    cmd = ("[ -w \"$PWD\" ] && echo PATH-OPEN || echo PATH-CLOSED; "
           "[ -d .pai-ssh ] && echo FILES-HERE; sleep 600")
    text = "\n".join([
        "protocolVersion: 2", "name: closed", "type: job",
        "prerequisites:", "  - {type: dockerimage, name: img, uri: localhost/pai-busybox:1}",
        "taskRoles:", "  main:", "    instances: 1", "    dockerImage: img",
        "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 128}",
        "    commands:", "      - %s" % json.dumps(cmd),
        "extras:", "  com.microsoft.pai.runtimeplugin:", "    - plugin: ssh",
        "      parameters: {jobssh: true}"]) + "\n"
    before = set(glob.glob("/tmp/.pai-ssh-*"))
    st, b = e.submit(alice, text)
    pt.check(st == 202, "alice submits a job with the ssh plugin", b)
    d = e.wait_state(alice, "alice~closed", "RUNNING", timeout=60)
    pt.check(e.state(d) == "RUNNING", "the job runs", d)

    info, st = {}, 0
    deadline = time.time() + 30
    while time.time() < deadline:
        st, info = alice.get("/api/v2/jobs/alice~closed/ssh")
        if st == 200 and info.get("containers"):
            break
        time.sleep(0.2)
    cs = info.get("containers") or [{}]
    port = cs[0].get("sshPort", 1)
    known = os.path.join(keys, "known_hosts")
    with open(known, "w") as f:
        f.write("\n".join(info.get("knownHosts", [])) + "\n")
    rc, out, err = 255, "", ""
    deadline = time.time() + 30
    while time.time() < deadline:
        rc, out, err = ssh_run(port, "alice", key, known, "id -u; echo JOB=$PAI_JOB_NAME; pwd -P")
        if rc == 0:
            break
        time.sleep(0.5)
    lines = out.split()
    pt.check(rc == 0 and len(lines) >= 3 and lines[0] != "0",
             "alice's key logs in, as her task's uid", (rc, out, err[-500:]))
    uid = int(lines[0]) if lines and lines[0].isdigit() else -1
    pt.check("JOB=alice~closed" in out, "the session has the task's PAI_ environment", out)
    pt.check(len(lines) >= 3 and lines[2].startswith(work) and lines[2].endswith("/cwd"),
             "the session starts in the task's working dir", out)
    pt.check(uid > 0 and tmp_dirs(uid, before) == [],
             "nothing of the plugin's is written under /tmp", tmp_dirs(uid, before))
    mine = glob.glob(os.path.join(work, "tasks", "*", "cwd", ".pai-ssh", ".ssh",
                                  "authorized_keys"))
    pt.check(len(mine) == 1 and os.stat(mine[0]).st_uid == uid,
             "its files are in the task's own dir, owned by its uid", mine)
    logs = ""
    deadline = time.time() + 20
    while time.time() < deadline and "FILES-HERE" not in logs:
        logs = "".join(open(p, errors="replace").read()
                       for p in glob.glob(os.path.join(work, "logs", "*closed*")))
        time.sleep(0.3)
    pt.check("PATH-CLOSED" in logs and "FILES-HERE" in logs,
             "the task's own commands: its path is closed to it, the files are in its dir",
             logs[-800:])

    st, b = alice.put("/api/v2/jobs/alice~closed/executionType", {"value": "STOP"})
    d = e.wait_state(alice, "alice~closed", ("STOPPED", "FAILED", "SUCCEEDED"), timeout=60)
    pt.check(e.state(d) == "STOPPED", "the job stops", d)
    pt.check(uid > 0 and tmp_dirs(uid, before) == [], "no dir of alice's left in /tmp",
             tmp_dirs(uid, before))
    agent.stop()
    srv.stop()


if __name__ == "__main__":
    main()
    pt.done()
