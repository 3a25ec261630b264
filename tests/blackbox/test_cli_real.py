"""test_cli_real.py - every `pai` CLI command against a real `pai up`
(server + 1 agent, process runtime), including the error paths: server
down, bad token, unknown job, invalid file, forbidden, conflicts.
"""
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from clitest import Tap, free_port, write  # noqa: E402

JOB = """protocolVersion: 2
name: %(name)s
type: job
prerequisites:
  - {name: img, type: dockerimage, uri: "debian:12"}
taskRoles:
  worker:
    instances: 2
    dockerImage: img
    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 128}
    commands:
      - echo "out $PAI_TASK_INDEX"
      - echo "err $PAI_TASK_INDEX" >&2
      - %(tail)s
"""

INVALID = """protocolVersion: 2
name: invalid
type: job
prerequisites:
  - {name: img, type: dockerimage, uri: "debian:12"}
taskRoles:
  worker:
    instances: 1
    dockerImage: img
    resourcePerInstance: {gpu: lots}
    commands: [echo hi]
"""


def job_file(t, name, tail="echo done"):
    return write(t.home, name + ".yaml", JOB % {"name": name, "tail": tail})


def test_auth(t, url, data):
    pw = open(os.path.join(data, "admin.password")).read().strip()
    r = t.pai("jobs")
    t.check("real: not logged in", r.rc == 2 and "pai login" in r.err, r)
    r = t.pai("login", url, "--password", "wrong")
    t.check("real: wrong password", r.rc == 1 and "IncorrectPasswordError" in r.err, r)
    r = t.pai("login", url, "--user", "admin", stdin=pw + "\n")
    t.check("real: login", r.rc == 0 and "as admin (admin)" in r.out, r)
    r = t.pai("jobs", env={"PAI_TOKEN": "not-a-token"})
    t.check("real: bad token", r.rc == 1 and "UnauthorizedUserError" in r.err and "pai login" in r.err, r)
    r = t.pai("jobs", env={"PAI_SERVER": "http://127.0.0.1:%d" % free_port()})
    t.check("real: server down", r.rc == 2 and "cannot reach the server" in r.err, r)


def test_jobs(t):
    r = t.pai("submit", write(t.home, "invalid.yaml", INVALID))
    t.check("real: invalid file names file, line and field", r.rc == 2
            and "invalid.yaml:10:" in r.err and "resourcePerInstance.gpu" in r.err, r)
    r = t.pai("submit", job_file(t, "quick"), "--wait")
    t.check("real: submit --wait", r.rc == 0 and "submitted admin~quick" in r.out and "admin~quick SUCCEEDED" in r.out, r)
    r = t.pai("submit", job_file(t, "quick"))
    t.check("real: duplicate name", r.rc == 1 and "ConflictJobError" in r.err, r)
    r = t.pai("job", "quick")
    t.check("real: job shows tasks on the node", r.rc == 0 and "SUCCEEDED" in r.out
            and len([l for l in r.out.splitlines() if l.startswith("worker ")]) == 2, r)
    r = t.pai("job", "nosuch")
    t.check("real: unknown job", r.rc == 1 and "NoJobError" in r.err, r)
    r = t.pai("logs", "quick", "--index", "1")
    t.check("real: logs stdout", r.rc == 0 and r.out == "out 1\ndone\n", r)
    r = t.pai("logs", "quick", "--stderr")
    t.check("real: logs --stderr", r.rc == 0 and "err 0" in r.out and "out 0" not in r.out, r)
    r = t.pai("logs", "quick", "--all")
    t.check("real: logs --all", r.rc == 0 and "err 0" in r.out and "out 0" in r.out, r)
    r = t.pai("logs", "quick", "--role", "nosuch")
    t.check("real: logs unknown role", r.rc == 1 and "no task role" in r.err, r)
    r = t.pai("submit", job_file(t, "ticker", "for i in 1 2 3; do echo tick $i; sleep 0.5; done"))
    r = t.pai("logs", "ticker", "--follow")
    t.check("real: logs --follow to the end", r.rc == 0 and "tick 1" in r.out and "tick 3" in r.out, r)
    r = t.pai("submit", job_file(t, "failing", "exit 3"))
    r = t.pai("wait", "failing")
    t.check("real: wait exits 1 on FAILED", r.rc == 1 and "FAILED" in r.out, r)
    r = t.pai("job", "failing")
    t.check("real: job shows the exit code", "exit code" in r.out and "3" in r.out, r)
    r = t.pai("submit", job_file(t, "sleeper", "sleep 600"))
    r = t.pai("wait", "sleeper", "--timeout", "1")
    t.check("real: wait --timeout", r.rc == 124, r)
    r = t.pai("delete", "sleeper")
    t.check("real: delete of a running job is refused", r.rc == 1, r)
    r = t.pai("stop", "sleeper")
    t.check("real: stop", r.rc == 0, r)
    r = t.pai("wait", "sleeper", "--timeout", "60")
    t.check("real: wait exits 3 on STOPPED", r.rc == 3 and "STOPPED" in r.out, r)
    r = t.pai("delete", "sleeper")
    t.check("real: delete a finished job", r.rc == 0, r)
    r = t.pai("job", "sleeper")
    t.check("real: deleted job is gone", r.rc == 1 and "NoJobError" in r.err, r)
    r = t.pai("tag", "quick", "keep")
    t.check("real: tag", r.rc == 0, r)
    r = t.pai("jobs", "--tag", "keep")
    t.check("real: jobs --tag", r.rc == 0 and "admin~quick" in r.out and "admin~failing" not in r.out, r)
    r = t.pai("tag", "quick", "keep", "--remove")
    t.check("real: tag --remove", r.rc == 0, r)
    r = t.pai("jobs", "--state", "FAILED", "--json")
    t.check("real: jobs --state --json", r.rc == 0 and [j["name"] for j in json.loads(r.out)] == ["failing"], r)
    r = t.pai("jobs", "--mine")
    t.check("real: jobs --mine", r.rc == 0 and "admin~quick" in r.out, r)


def test_cluster(t):
    r = t.pai("nodes")
    t.check("real: nodes", r.rc == 0 and r.out.splitlines()[1].split()[:2] == ["node-1", "Ready"], r)
    r = t.pai("vcs")
    t.check("real: vcs", r.rc == 0 and r.out.splitlines()[1].split()[0] == "default", r)


def test_admin(t, url, data):
    r = t.pai("users", "create", "bob", "--password", "bob-pw-123", "--vc", "default")
    t.check("real: users create", r.rc == 0, r)
    r = t.pai("users", "create", "bob", "--password", "bob-pw-123")
    t.check("real: users create twice", r.rc == 1 and "ConflictUserError" in r.err, r)
    r = t.pai("users")
    t.check("real: users list", r.rc == 0 and any(l.split()[0] == "bob" for l in r.out.splitlines()[1:]), r)
    bob = {"PAI_CONFIG": os.path.join(t.home, "bob.json")}
    r = t.pai("login", url, "--user", "bob", "--password", "bob-pw-123", env=bob)
    t.check("real: bob logs in", r.rc == 0 and "(admin)" not in r.out, r)
    r = t.pai("users", env=bob)
    t.check("real: users as non-admin is forbidden", r.rc == 1 and "Forbidden" in r.err, r)
    r = t.pai("submit", job_file(t, "bobs"), "--wait", env=bob)
    t.check("real: bob runs a job", r.rc == 0 and "bob~bobs SUCCEEDED" in r.out, r)
    r = t.pai("stop", "admin~quick", env=bob)
    t.check("real: bob cannot stop admin's job", r.rc == 1, r)
    r = t.pai("groups", "create", "lab", "--description", "the lab")
    t.check("real: groups create", r.rc == 0, r)
    r = t.pai("groups")
    t.check("real: groups list", r.rc == 0 and any(l.split()[0] == "lab" for l in r.out.splitlines()[1:]), r)
    r = t.pai("groups", "delete", "lab")
    t.check("real: groups delete", r.rc == 0, r)
    r = t.pai("users", "delete", "bob")
    t.check("real: users delete", r.rc == 0, r)
    r = t.pai("users", "show", "bob")
    t.check("real: deleted user is gone", r.rc == 1 and "NoUserError" in r.err, r)


def test_tokens(t):
    r = t.pai("token", "create")
    tok = r.out.strip()
    t.check("real: token create", r.rc == 0 and len(tok) > 10, r)
    r = t.pai("jobs", env={"PAI_TOKEN": tok})
    t.check("real: application token works", r.rc == 0, r)
    r = t.pai("token", "list")
    t.check("real: token list", r.rc == 0 and len(r.out.split()) >= 2, r)
    r = t.pai("token", "revoke", tok)
    t.check("real: token revoke", r.rc == 0, r)
    r = t.pai("jobs", env={"PAI_TOKEN": tok})
    t.check("real: revoked token refused", r.rc == 1 and "UnauthorizedUserError" in r.err, r)
    r = t.pai("logout")
    t.check("real: logout", r.rc == 0, r)
    r = t.pai("jobs")
    t.check("real: after logout", r.rc == 2, r)


def running_marker(marker):
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return any(marker in l and "ps -eo" not in l for l in out.splitlines())


def test_down_stop_jobs(t, data, port):
    env = {"PAI_SERVER": "http://127.0.0.1:%d" % port, "PAI_CONFIG": os.path.join(t.home, "again.json")}
    pw = open(os.path.join(data, "admin.password")).read().strip()
    t.pai("login", env["PAI_SERVER"], "--password", pw, env=env)
    marker = "sleep 86%d" % (os.getpid() % 1000)
    t.pai("submit", job_file(t, "lingering", marker), env=env)
    for _ in range(100):
        if running_marker(marker):
            break
        time.sleep(0.1)
    t.check("real: a long task runs", running_marker(marker))
    r = t.pai("down", "--stop-jobs", "--data-dir", data, timeout=120)
    t.check("real: pai down --stop-jobs stops the job, then the cluster", r.rc == 0
            and "stopping admin~lingering" in r.out and "stopped the cluster" in r.out, r)
    t.check("real: no task process is left behind", not running_marker(marker))


def main():
    t = Tap()
    root = tempfile.mkdtemp(prefix="pai-cli-real-")
    t.cleanup.append(root)
    data = os.path.join(root, "data")
    port = free_port()
    url = "http://127.0.0.1:%d" % port
    r = t.pai("up", "--detach", "--nodes", "1", "--data-dir", data, "--port", str(port), timeout=180)
    try:
        if t.check("real: pai up --detach", r.rc == 0 and "pai is up" in r.out, r):
            test_auth(t, url, data)
            test_jobs(t)
            test_cluster(t)
            test_admin(t, url, data)
            test_tokens(t)
            test_down_stop_jobs(t, data, port)
    finally:
        d = t.pai("down", "--stop-jobs", "--data-dir", data, timeout=120)
        t.check("real: pai down (already down)", d.rc == 1 and "no cluster is running" in d.err, d)
    t.done()


if __name__ == "__main__":
    main()
