#!/usr/bin/env python3
"""test_ssh.py - ssh into running tasks (OpenPAI's ssh runtime plugin, issue
16, docs/ssh.md) with the real OpenSSH client and server.

A real server and a root agent with the process runtime (tasks run as each
user's own uid).  alice keeps a public key in her profile
(extension.sshKeys) and runs a two-role job with the ssh plugin (jobssh:
true, a custom userssh key):
 - GET /api/v2/jobs/{job}/ssh: her running tasks with address, port and
   login name, the job's key pair (private key to the owner only), the host
   key; bob gets 403, an admin the info without the private key, a job
   without the plugin NoJobSshInfoError;
 - ssh with her profile key, her custom key and the job's key logs in as
   her task's uid (not root), in the task's environment (PAI_JOB_NAME) and
   working dir; bob's key and a wrong host key are refused;
 - jobssh: the master task reaches the worker as `ssh worker-0`;
 - `pai ssh JOB ROLE INDEX -- CMD` runs CMD in the task; `--print` shows
   the command; bob's `pai ssh` is refused;
 - a bad userssh value is refused at submission, naming the field;
 - when the job is stopped, its sshd is gone.
`pai exec` in the same tasks: the task's uid, environment, working dir and
cgroups; output bytes and exit code passed on; --timeout; bob refused.
Then a `pai up` cluster: `pai ssh` and the real client reach its task.
Then the podman runtime, on a server of its own, with an image that has
sshd (scripts/build-sshd-image.sh): alice logs in as the container's root,
which is not root on the node (uid_map), with the task's environment; bob's
key is refused; `pai ssh` runs a command.
"""

import json
import os
import subprocess
import time

import e2etest as e
import paitest as pt
from sshtest import have, keygen, ssh_run, start_agent

IMAGE = "localhost/pai-busybox:1"  # the process runtime runs commands on the node


def job_text(name, userkey, jobssh=True, extra_role=True, bad_key=False, image=None):
    lines = ["protocolVersion: 2", "name: %s" % name, "type: job",
             "prerequisites:", "  - {type: dockerimage, name: img, uri: %s}" % (image or IMAGE),
             "taskRoles:"]
    master_cmd = ("for i in $(seq 1 100); do ssh -o BatchMode=yes -o ConnectTimeout=5 "
                  "-F \"$PWD/.pai-ssh/.ssh/config\" worker-0 'echo JOBSSH:$PAI_CURRENT_TASK_ROLE_NAME' "
                  "&& break; sleep 0.3; done; sleep 600")
    roles = [("master", master_cmd)] + ([("worker", "sleep 600")] if extra_role else [])
    for r, cmd in roles:
        lines += ["  %s:" % r, "    instances: 1", "    dockerImage: img",
                  "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 128}",
                  "    commands:", "      - %s" % json.dumps(cmd)]
    key = "not-a-key" if bad_key else userkey
    lines += ["extras:", "  com.microsoft.pai.runtimeplugin:", "    - plugin: ssh",
              "      parameters:", "        jobssh: %s" % ("true" if jobssh else "false"),
              "        userssh: {type: custom, value: %s}" % json.dumps(key)]
    return "\n".join(lines) + "\n"


def cli(srv, token, *args, home=None):
    env = dict(os.environ, PAI_SERVER=srv.url, PAI_TOKEN=token, HOME=home or pt.tmpdir("pai-ssh-home-"))
    env.pop("PAI_CONFIG", None)
    return subprocess.run([pt.PAI_BIN] + list(args), capture_output=True, text=True, timeout=60,
                          env=env)


def main():
    if os.geteuid() != 0:
        pt.skip("ssh into tasks", "needs root (tasks run as per-user uids)")
        return
    for tool in ("ssh", "sshd", "ssh-keygen"):
        if not have(tool) and not os.path.exists("/usr/sbin/" + tool):
            pt.not_ok("%s is installed (scripts/deps.sh installs openssh)" % tool)
            return
    root = pt.tmpdir("pai-ssh-")
    os.chmod(root, 0o755)  # task uids pass through to their work dirs
    keys = pt.tmpdir("pai-ssh-keys-")
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    agent, work = start_agent(srv, root, "agent", "n1")
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the agent is ready", agent.log())

    atok = srv.create_user("alice", "alice-pw-1234")
    btok = srv.create_user("bob", "bob-pw-12345")
    alice, bob = srv.client(atok), srv.client(btok)
    prof_key, prof_pub = keygen(keys, "alice-profile")
    cust_key, cust_pub = keygen(keys, "alice-custom")
    bob_key, bob_pub = keygen(keys, "bob")
    st, b = alice.put("/api/v2/users/me", {"data": {"extension": {"sshKeys": [
        {"title": "laptop", "value": prof_pub, "time": 0}]}}})
    pt.check(st in (200, 201), "alice keeps a public key in her profile", b)

    # refusals at submission
    st, b = e.submit(alice, job_text("badkey", cust_pub, bad_key=True))
    pt.check(st == 400 and "userssh" in json.dumps(b), "a userssh value that is not a key is refused, "
             "naming the field", b)

    st, b = e.submit(alice, job_text("sshjob", cust_pub))
    pt.check(st == 202, "alice submits a job with the ssh plugin", b)
    d = e.wait_state(alice, "alice~sshjob", "RUNNING", timeout=60)
    pt.check(e.state(d) == "RUNNING", "the job runs", d)

    info = {}
    deadline = time.time() + 30
    while time.time() < deadline:
        st, info = alice.get("/api/v2/jobs/alice~sshjob/ssh")
        if st == 200 and len(info.get("containers", [])) == 2:
            break
        time.sleep(0.2)
    cs = {c["taskRoleName"]: c for c in info.get("containers", [])}
    pt.check(st == 200 and set(cs) == {"master", "worker"},
             "GET .../ssh lists both running tasks", info)
    pair = info.get("keyPair", {})
    pt.check(pair.get("privateKey", "").startswith("-----BEGIN OPENSSH PRIVATE KEY-----")
             and pair.get("publicKey", "").startswith("ssh-ed25519 "),
             "the owner gets the job's key pair", pair.keys())
    pt.check(all(c.get("sshUser") == "alice" and c.get("sshIp") == "127.0.0.1"
                 and isinstance(c.get("sshPort"), int) for c in cs.values()),
             "each task: address, port and login name", cs)
    st, b = bob.get("/api/v2/jobs/alice~sshjob/ssh")
    pt.check(st == 403, "bob may not read alice's ssh info", b)
    st, b = admin.get("/api/v2/jobs/alice~sshjob/ssh")
    pt.check(st == 200 and "privateKey" not in b.get("keyPair", {}) and b.get("containers"),
             "an admin gets the info but never the private key", b)
    st, b = e.submit(alice, e.job_yaml("plain", [e.role("t", "sleep 1")]))
    st, b = alice.get("/api/v2/jobs/alice~plain/ssh")
    pt.check(st == 404 and b.get("code") == "NoJobSshInfoError",
             "a job without the plugin: NoJobSshInfoError", b)

    known = os.path.join(keys, "known_hosts")
    with open(known, "w") as f:
        f.write("\n".join(info.get("knownHosts", [])) + "\n")
    m = cs.get("master", {})
    port = m.get("sshPort", 1)
    # sshd may still be starting right after RUNNING
    rc, out, err = 255, "", ""
    deadline = time.time() + 30
    while time.time() < deadline:
        rc, out, err = ssh_run(port, "alice", prof_key, known,
                               "id -u; echo JOB=$PAI_JOB_NAME; pwd; whoami")
        if rc == 0:
            break
        time.sleep(0.5)
    lines = out.split()
    pt.check(rc == 0 and len(lines) >= 4 and lines[0] != "0",
             "alice's profile key logs in, as her task's uid (not root)", (rc, out, err))
    pt.check("JOB=alice~sshjob" in out, "the session has the task's PAI_ environment", out)
    pt.check(len(lines) >= 4 and lines[2].startswith(work) and lines[3] == "alice",
             "the session starts in the task's working dir, named alice", out)
    rc, out, err = ssh_run(port, "alice", cust_key, known, "echo custom")
    pt.check(rc == 0 and out.strip() == "custom", "the job's userssh key logs in", (rc, out, err))
    jobkey = os.path.join(keys, "jobkey")
    with open(jobkey, "w") as f:
        f.write(pair.get("privateKey", ""))
    os.chmod(jobkey, 0o600)
    rc, out, err = ssh_run(port, "alice", jobkey, known, "echo jobkey")
    pt.check(rc == 0 and out.strip() == "jobkey", "the job's own key logs in", (rc, out, err))
    rc, out, err = ssh_run(port, "alice", bob_key, known, "echo in")
    pt.check(rc == 255 and "in" not in out.split(), "bob's key is refused", (rc, out, err))
    rc, out, err = ssh_run(port, "root", prof_key, known, "echo in")
    pt.check(rc == 255, "no login as root", (rc, out, err))
    bad_known = os.path.join(keys, "bad_known")
    _, other_pub = keygen(keys, "otherhost")
    with open(bad_known, "w") as f:
        f.write("[127.0.0.1]:%d %s\n" % (port, " ".join(other_pub.split()[:2])))
    rc, out, err = ssh_run(port, "alice", prof_key, bad_known, "echo in")
    pt.check(rc == 255 and "HOST IDENTIFICATION HAS CHANGED" in err,
             "the client refuses a task whose host key is not the job's", (rc, err[-300:]))

    # jobssh: master reached worker-0 by name
    text = ""
    deadline = time.time() + 40
    while time.time() < deadline and "JOBSSH:worker" not in text:
        r = cli(srv, atok, "logs", "alice~sshjob", "--role", "master")
        text = r.stdout
        time.sleep(0.5)
    pt.check("JOBSSH:worker" in text, "jobssh: the master task reaches `ssh worker-0`", text[-500:])

    # the CLI
    r = cli(srv, atok, "ssh", "alice~sshjob", "worker", "0", "--", "echo", "via-cli",
            "$PAI_CURRENT_TASK_ROLE_NAME")
    pt.check(r.returncode == 0 and r.stdout.strip() == "via-cli worker",
             "pai ssh JOB worker 0 -- CMD runs CMD in that task", r.stdout + r.stderr)
    r = cli(srv, atok, "ssh", "alice~sshjob", "--print")
    pt.check(r.returncode == 0 and r.stdout.startswith("ssh -p ") and "StrictHostKeyChecking=yes"
             in r.stdout and "alice@127.0.0.1" in r.stdout, "pai ssh --print shows the command",
             r.stdout + r.stderr)
    r = cli(srv, btok, "ssh", "alice~sshjob", "--", "true")
    pt.check(r.returncode == 1 and "not allowed" in r.stderr, "bob's pai ssh is refused",
             r.stdout + r.stderr)

    # pai exec: through the agent, no sshd involved
    r = cli(srv, atok, "exec", "alice~sshjob", "worker", "0", "--",
            "id -u; echo $PAI_CURRENT_TASK_ROLE_NAME; pwd; grep -c pai /proc/self/cgroup")
    words = r.stdout.split()
    pt.check(r.returncode == 0 and len(words) == 4 and words[0] == lines[0] and words[1] == "worker"
             and words[2].startswith(work) and int(words[3] or 0) > 0,
             "pai exec runs in the task: its uid, environment, working dir and cgroups",
             r.stdout + r.stderr)
    r = cli(srv, atok, "exec", "alice~sshjob", "worker", "0", "--", "echo out; echo err >&2; exit 7")
    pt.check(r.returncode == 7 and r.stdout == "out\nerr\n",
             "pai exec passes the output and exits with the command's code",
             (r.returncode, r.stdout, r.stderr))
    r = subprocess.run([pt.PAI_BIN, "exec", "alice~sshjob", "worker", "0", "--",
                        "printf '\\377\\000A'"], capture_output=True, timeout=60,
                       env=dict(os.environ, PAI_SERVER=srv.url, PAI_TOKEN=atok,
                                HOME=pt.tmpdir("pai-ssh-home-")))
    pt.check(r.returncode == 0 and r.stdout == b"\xff\x00A", "pai exec passes bytes unchanged",
             (r.returncode, r.stdout, r.stderr))
    r = cli(srv, atok, "exec", "alice~sshjob", "worker", "0", "--timeout", "1", "--", "sleep 30")
    pt.check(r.returncode == 124 and "timed out" in r.stdout, "pai exec --timeout kills the command",
             (r.returncode, r.stdout, r.stderr))
    r = cli(srv, btok, "exec", "alice~sshjob", "worker", "0", "--", "id")
    pt.check(r.returncode == 1 and "not allowed" in r.stderr, "bob may not exec in alice's task",
             r.stdout + r.stderr)
    st, b = bob.post("/api/v2/jobs/alice~sshjob/exec",
                     {"taskRoleName": "worker", "taskIndex": 0, "command": "id"})
    pt.check(st == 403, "POST .../exec as another user: 403", b)
    st, b = alice.post("/api/v2/jobs/alice~sshjob/exec",
                       {"taskRoleName": "worker", "taskIndex": 5, "command": "id"})
    pt.check(st == 404, "exec in a task that does not exist: 404", b)
    st, b = alice.post("/api/v2/jobs/alice~sshjob/exec",
                       {"taskRoleName": "worker", "taskIndex": 0, "command": "x" * 70000})
    pt.check(st == 400, "a command over 64 KiB: 400", b)
    st, b = alice.get("/api/v2/jobs/alice~sshjob/exec/0-0-0-%s-worker" % ("0" * 32))
    pt.check(st in (404,) , "an unknown exec id: 404", b)

    # stop: the sshd goes with the task
    st, b = alice.put("/api/v2/jobs/alice~sshjob/executionType", {"value": "STOP"})
    d = e.wait_state(alice, "alice~sshjob", "STOPPED", timeout=60)
    gone = False
    deadline = time.time() + 20
    while time.time() < deadline and not gone:
        r = subprocess.run(["pgrep", "-f", work + "/.*\\.pai-ssh/sshd_config"], capture_output=True,
                           text=True)
        gone = r.returncode != 0
        time.sleep(0.3)
    pt.check(e.state(d) == "STOPPED" and gone, "after STOP no sshd of the job is left",
             subprocess.run(["pgrep", "-af", "sshd"], capture_output=True, text=True).stdout)
    agent.stop()
    srv.stop()
    pai_up(keys, cust_key, cust_pub)
    podman(root, keys, prof_key, prof_pub, bob_key)


def pai_up(keys, key, pub):
    """On a `pai up` cluster, as its README's quick start makes it."""
    root = pt.tmpdir("pai-ssh-up-")
    os.chmod(root, 0o755)
    data = os.path.join(root, ".pai")
    port = pt.free_port()
    r = subprocess.run([pt.PAI_BIN, "up", "--data-dir", data, "--port", str(port), "--nodes", "1",
                        "--detach"], capture_output=True, text=True, timeout=120)
    if not pt.check(r.returncode == 0, "pai up starts", r.stdout + r.stderr):
        return
    try:
        url = "http://127.0.0.1:%d" % port
        pw = open(os.path.join(data, "admin.password")).read().strip()
        st, b = pt.Client(url).post("/api/v2/authn/basic/login",
                                    {"username": "admin", "password": pw})
        admin = pt.Client(url, b.get("token"))
        st, b = e.submit(admin, job_text("upssh", pub, extra_role=False))
        d = e.wait_state(admin, "admin~upssh", "RUNNING", timeout=60)
        srv = type("S", (), {"url": url})
        out, deadline = None, time.time() + 40
        while time.time() < deadline:
            out = cli(srv, admin.token, "ssh", "admin~upssh", "--", "id", "-un")
            if out.returncode == 0:
                break
            time.sleep(0.5)
        pt.check(e.state(d) == "RUNNING" and out.returncode == 0 and out.stdout.strip() == "admin",
                 "pai up: pai ssh reaches a task of the quick-start cluster as its user",
                 (e.state(d), out.stdout, out.stderr))
        known = os.path.join(keys, "up_known")
        st, info = admin.get("/api/v2/jobs/admin~upssh/ssh")
        with open(known, "w") as f:
            f.write("\n".join(info.get("knownHosts", [])) + "\n")
        c = (info.get("containers") or [{}])[0]
        rc, o, err = ssh_run(c.get("sshPort", 1), "admin", key, known, "echo $PAI_JOB_NAME")
        pt.check(rc == 0 and o.strip() == "admin~upssh",
                 "pai up: the real ssh client logs in with the job's userssh key", (rc, o, err))
    finally:
        # --stop-jobs: a plain `pai down` leaves running tasks to a later `pai up`
        subprocess.run([pt.PAI_BIN, "down", "--data-dir", data, "--stop-jobs"], capture_output=True,
                       timeout=120)


def podman(root, keys, prof_key, prof_pub, bob_key):
    """The same through the podman runtime, on a server of its own: an image
    with sshd (scripts/build-sshd-image.sh), the task root of its own user
    namespace."""
    if not have("podman"):
        pt.not_ok("podman is installed (scripts/deps.sh --podman)")
        return
    here = os.path.dirname(os.path.abspath(__file__))
    r = subprocess.run(["bash", os.path.join(here, "..", "..", "scripts", "build-sshd-image.sh"),
                        "podman"], capture_output=True, text=True, timeout=300)
    if not pt.check(r.returncode == 0, "the sshd test image builds", r.stdout + r.stderr):
        return
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    atok = srv.create_user("alice", "alice-pw-1234")
    alice = srv.client(atok)
    agent, work = start_agent(srv, root, "pagent", "p1", "--runtime", "podman")
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "the podman agent is ready", agent.log())
    st, b = e.submit(alice, job_text("podssh", prof_pub, extra_role=False,
                                     image="localhost/pai-sshd:1"))
    pt.check(st == 202, "alice submits a container job with the ssh plugin", b)
    d = e.wait_state(alice, "alice~podssh", "RUNNING", timeout=90)
    info, st = {}, 0
    deadline = time.time() + 60
    while time.time() < deadline:
        st, info = alice.get("/api/v2/jobs/alice~podssh/ssh")
        if st == 200 and info.get("containers"):
            break
        time.sleep(0.3)
    c = (info.get("containers") or [{}])[0]
    known = os.path.join(keys, "pod_known")
    with open(known, "w") as f:
        f.write("\n".join(info.get("knownHosts", [])) + "\n")
    rc, out, err = 255, "", ""
    deadline = time.time() + 60
    while time.time() < deadline:
        rc, out, err = ssh_run(c.get("sshPort", 1), "alice", prof_key, known,
                               "id -u; echo JOB=$PAI_JOB_NAME; cat /proc/self/uid_map")
        if rc == 0:
            break
        time.sleep(0.5)
    if rc != 0:
        names = subprocess.run(["podman", "ps", "--format", "{{.Names}}"], capture_output=True,
                               text=True).stdout.split()
        for n in names:
            err += subprocess.run(["podman", "exec", n, "sh", "-c",
                                   "cat /.pai-ssh/sshd.log /.pai-ssh/sshd_config; ls -la /.pai-ssh"],
                                  capture_output=True, text=True).stdout
    pt.check(rc == 0 and out.split()[:1] == ["0"] and "JOB=alice~podssh" in out,
             "podman: alice logs in to her container (its root, with the task's environment)",
             (e.state(d), rc, out, err[-3000:]))
    # root of the container is a user's uid on the node, never 0
    m = out.split()
    pt.check(len(m) >= 5 and m[2] == "0" and m[3] != "0",
             "podman: the session's root is not root on the node (uid_map)", out)
    rc, out, err = ssh_run(c.get("sshPort", 1), "alice", bob_key, known, "echo in")
    pt.check(rc == 255, "podman: bob's key is refused", (rc, out, err))
    r = cli(srv, atok, "ssh", "alice~podssh", "--", "echo", "pod-cli")
    pt.check(r.returncode == 0 and r.stdout.strip() == "pod-cli", "podman: pai ssh runs a command",
             r.stdout + r.stderr)
    r = cli(srv, atok, "exec", "alice~podssh", "master", "0", "--", "id -u; echo $PAI_JOB_NAME")
    pt.check(r.returncode == 0 and r.stdout.split() == ["0", "alice~podssh"],
             "podman: pai exec runs in the container (podman exec)", r.stdout + r.stderr)
    alice.put("/api/v2/jobs/alice~podssh/executionType", {"value": "STOP"})
    e.wait_state(alice, "alice~podssh", "STOPPED", timeout=60)
    agent.stop()


main()
pt.done()
