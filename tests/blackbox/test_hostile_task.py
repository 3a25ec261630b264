#!/usr/bin/env python3
"""test_hostile_task.py - a normal user's task tries to reach what is not
its own (issue 11, docs/security.md), with real processes.

1. process runtime, on a `pai up` cluster (its default layout and modes):
   bob runs a job holding a secret; alice's job then tries to read the admin
   password, the agent token, the store, the agent's state, bob's working
   dir, command (his fd 3) and logs, the server's and bob's environment, bob's
   secret on any command line, and to signal the agent, the server, bob's
   task and its monitor.  Every one must fail (signals with EPERM); alice's
   own working dir ($HOME by path too), secret, env and GPU must work, and
   files one command writes are there for the next.  From outside (the
   test runs as root): both tasks' processes have non-root uids, different
   per user, and the data dir's modes are the documented ones.
2. podman runtime (a TAP skip without root or podman): root in the
   container is not root on the host: the container's processes have a
   non-root host uid, and the job's secret is on no command line.
3. the opt-in: `pai up --tasks-as-root` says so in its banner, keeps its
   data dir 0700, and its tasks run as root; an agent given `--token T`
   on its command line blanks it there.
4. `pai up` started by a user other than root (nobody): it cannot change
   uid, so its banner says tasks run as that user, and they do.
"""

import json
import os
import re
import shutil
import subprocess
import time
import uuid

import e2etest as e
import paitest as pt

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = os.environ.get("PAI_TEST_IMAGE", "localhost/pai-busybox:1")


def job_text(name, commands, secret=None, gpu=0, image="localhost/pai-busybox:1"):
    out = ["protocolVersion: 2", "name: %s" % name, "type: job",
           "prerequisites:", "  - type: dockerimage", "    name: img",
           "    uri: %s" % json.dumps(image)]
    if secret:
        out += ["secrets:", "  key: %s" % json.dumps(secret)]
    out += ["taskRoles:", "  main:", "    instances: 1", "    dockerImage: img",
            "    resourcePerInstance: {gpu: %d, cpu: 1, memoryMB: 128}" % gpu, "    commands:"]
    out += ["      - %s" % json.dumps(c) for c in commands]
    return "\n".join(out) + "\n"


def add_user(client, name):
    pw = "pw-%s-123456" % name
    st, b = client.post("/api/v2/users", {"username": name, "password": pw, "admin": False})
    if st != 201:
        raise RuntimeError("create user %s: %s %s" % (name, st, b))
    st, b = pt.Client(client_url(client)).post("/api/v2/authn/basic/login",
                                                {"username": name, "password": pw})
    return pt.Client(client_url(client), b["token"])


def client_url(client):
    return "http://%s:%d" % (client.host, client.port)


def stdout_of(client, d):
    ts = e.tasks(d, "main")
    if not ts:
        return ""
    st, lg = client.get(ts[0]["containerLog"])
    locs = {x["name"]: x["uri"] for x in (lg or {}).get("locations", [])} if st == 200 else {}
    return str(client.get(locs["stdout"])[1]) if "stdout" in locs else ""


def proc_uids(pid):
    """Real, effective, saved and fs uid of pid (None when gone)."""
    try:
        for line in open("/proc/%d/status" % pid):
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    except OSError:
        return None
    return None


def container_pids(needle):
    """Processes in a user namespace other than ours whose environment holds
    needle (bytes): a container's, not its engine's (which has the task's
    environment too, to forward it)."""
    out = []
    mine = os.readlink("/proc/self/ns/user")
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open("/proc/%s/environ" % p, "rb") as f:
                if needle in f.read() and os.readlink("/proc/%s/ns/user" % p) != mine:
                    out.append(int(p))
        except OSError:
            pass
    return out


def children_of(ppid):
    out = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = open("/proc/%s/stat" % p).read()
            if int(stat.rsplit(")", 1)[1].split()[1]) == ppid:
                out[int(p)] = open("/proc/%s/cmdline" % p, "rb").read().split(b"\0")
        except (OSError, ValueError, IndexError):
            pass
    return out


def wait_file(path, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path) and os.path.getsize(path) > 0:
            return True
        time.sleep(0.1)
    return False


def attempt_dir(tasks, attempt_id, timeout=30):
    """The dir of an attempt: a slot of the agent's tasks dir (tasks/<n>,
    docs/agent.md "State on disk"), found by its record's "id" line."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        for name in os.listdir(tasks):
            try:
                with open(os.path.join(tasks, name, "monitor")) as f:
                    if f.readline() == "id %s\n" % attempt_id:
                        return os.path.join(tasks, name)
            except OSError:
                pass
        time.sleep(0.1)
    return os.path.join(tasks, "none")


def task_pid(state, timeout=30):
    """The task's pid from its monitor's record (<state>/monitor: a line
    "task PID" once it runs); 0 if none came."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(os.path.join(state, "monitor")) as f:
                for line in f.read().splitlines(True):
                    if line.startswith("task ") and line.endswith("\n"):
                        return int(line.split()[1])
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    return 0


def stop_job(client, job):
    client.put("/api/v2/jobs/%s/executionType" % job, {"value": "STOP"})


# ---- 1. the process runtime, on pai up ------------------------------------------------

HOSTILE = r"""
probe() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "P:$n:ok"; else echo "P:$n:denied"; fi; }
sig() { r=$(kill -0 "$2" 2>&1) && echo "P:$1:ok" || echo "P:$1:denied:$r"; }
echo "UID:$(id -u)"
probe admin_password cat {data}/admin.password
probe agent_token cat {data}/agent.token
probe pai_db head -c 16 {data}/pai.db
probe server_log cat {data}/logs/server.log
probe list_data_dir ls {data}
probe list_agent_dir ls {agent}
probe uid_map cat {data}/agents/task-uids
probe list_agent_tasks ls {agent}/tasks
probe other_state cat {bstate}/monitor
probe other_command cat /proc/{bpid}/fd/3
probe list_other_cwd ls {bstate}/cwd
probe other_file cat {bstate}/cwd/private.txt
probe list_other_logs ls {agent}/logs
probe other_log cat {blogs}.stdout
probe other_log_all cat {blogs}.all
probe server_environ cat /proc/{server}/environ
probe agent_environ cat /proc/{agentpid}/environ
probe other_environ cat /proc/{bpid}/environ
printf '%s%s' {bsecret1} {bsecret2} > pattern
probe secret_on_a_command_line sh -c 'cat /proc/[0-9]*/cmdline | tr "\0" " " | grep -q -f pattern'
rm -f pattern
sig kill_agent {agentpid}
sig kill_server {server}
sig kill_other_task {bpid}
sig kill_other_monitor {bmon}
"""

OWN = [
    "k='<% $secrets.key %>'",
    "echo \"P:own_secret:$( [ \"$k\" = {asecret} ] && echo ok || echo wrong)\"",
    "echo persisted > across.txt",
    "echo \"P:own_files:$(cat across.txt)\"",
    "cd \"$HOME\" && echo mine > home.txt && echo \"P:own_home:$(cat \"$HOME/home.txt\")\"",
    "echo \"P:own_env:$PAI_USER_NAME:$USER:$LOGNAME\"",
    "echo \"P:own_shell:$SHELL\"",
    "echo \"P:own_gpu:$CUDA_VISIBLE_DEVICES\"",
]


def probes(text):
    return {m.group(1): m.group(2) for m in re.finditer(r"^P:([a-z_]+):(.*)$", text, re.M)}


def mode(path):
    try:
        return oct(os.stat(path).st_mode & 0o7777)
    except OSError as ex:
        return str(ex)


def process_runtime():
    root = pt.tmpdir("pai-hostile-")
    os.chmod(root, 0o755)  # like a checkout: other users may pass through
    data = os.path.join(root, ".pai")
    port = pt.free_port()
    r = subprocess.run([pt.PAI_BIN, "up", "--data-dir", data, "--port", str(port), "--nodes", "2",
                        "--detach"], capture_output=True, text=True, timeout=120)
    if not pt.check(r.returncode == 0, "pai up starts", r.stdout + r.stderr):
        return
    try:
        run_process_checks(data, port, r.stdout)
    finally:
        subprocess.run([pt.PAI_BIN, "down", "--data-dir", data], capture_output=True, timeout=120)


def run_process_checks(data, port, banner):
    pt.check("tasks:   one unprivileged uid per pai user" in banner,
             "pai up's banner says tasks run as one uid per user, never root", banner)
    url = "http://127.0.0.1:%d" % port
    pw = open(os.path.join(data, "admin.password")).read().strip()
    st, b = pt.Client(url).post("/api/v2/authn/basic/login", {"username": "admin", "password": pw})
    admin = pt.Client(url, b["token"])
    alice, bob = add_user(admin, "alice"), add_user(admin, "bob")

    bsecret, asecret = "bob-" + uuid.uuid4().hex, "alice-" + uuid.uuid4().hex
    st, b = e.submit(bob, job_text("victim", ["k='<% $secrets.key %>'",
                                              "echo bob-private > private.txt",
                                              "echo bob-log-line",  # his log files exist
                                              "echo \"bob $k\" > /dev/null", "sleep 120",
                                              "echo bye"],  # no exec of the last one
                                   secret=bsecret))
    d = e.wait_state(bob, "bob~victim", "RUNNING", 60)
    ts = e.tasks(d, "main")
    node = ts[0]["containerNodeName"] if ts else "node-1"
    agent_dir = os.path.join(data, "agents", node)
    bstate = attempt_dir(os.path.join(agent_dir, "tasks"), "bob~victim/0/main/0/0")
    blogs = os.path.join(agent_dir, "logs", "bob~victim+0+main+0+0")
    try:
        bpid = task_pid(bstate)
        ready = bpid > 0 and wait_file(os.path.join(bstate, "cwd", "private.txt"))
        pt.check(ready, "bob's task runs and wrote its private file", d.get("jobStatus"))
        pt.check(wait_file(blogs + ".stdout") and not os.path.exists(blogs),
                 "bob's log is a file of the agent's logs dir, no dir of its own", blogs)
        bmon = int([ln for ln in open(os.path.join(bstate, "monitor")).read().splitlines()
                    if ln.startswith("mon ")][0].split()[1])
        up_pid = int(open(os.path.join(data, "pai-up.pid")).read())
        kids = children_of(up_pid)
        server = [p for p, argv in kids.items() if b"server" in argv[1:2]]
        agents = {argv[argv.index(b"--name") + 1].decode(): p for p, argv in kids.items()
                  if b"agent" in argv[1:2] and b"--name" in argv}
        pt.check(len(server) == 1 and node in agents, "the server and the agents are found",
                 (kids, node))
        server_pid = server[0] if server else 1
        agent_pid = agents.get(node, 1)

        script = HOSTILE
        for k, v in {"data": data, "agent": agent_dir, "bstate": bstate, "blogs": blogs,
                     "server": server_pid, "agentpid": agent_pid, "bpid": bpid, "bmon": bmon,
                     # in two halves: the whole secret on this job's own
                     # command lines would be found by the probe itself
                     "bsecret1": bsecret[:8], "bsecret2": bsecret[8:]}.items():
            script = script.replace("{%s}" % k, str(v))
        own = [c.replace("{asecret}", asecret) for c in OWN]
        cmds = [x for x in script.strip().split("\n")] + own
        st, b = e.submit(alice, job_text("hostile", cmds, secret=asecret, gpu=1))
        pt.check(st == 202, "alice submits her job", (st, b))
        d = e.wait_state(alice, "alice~hostile", ("SUCCEEDED", "FAILED"), 90)
        out = stdout_of(alice, d)
        pt.check(e.state(d) == "SUCCEEDED", "alice's job runs to the end", (d.get("jobStatus"), out))
        p = probes(out)
        m = re.search(r"^UID:(\d+)$", out, re.M)
        auid = int(m.group(1)) if m else 0
        pt.check(auid != 0, "alice's task is not root (id -u)", out)
        for name in ["admin_password", "agent_token", "pai_db", "server_log", "list_data_dir",
                     "list_agent_dir", "uid_map", "list_agent_tasks", "other_state",
                     "other_command", "list_other_cwd", "other_file", "list_other_logs",
                     "other_log", "other_log_all", "server_environ", "agent_environ",
                     "other_environ", "secret_on_a_command_line"]:
            pt.check(p.get(name) == "denied", "alice's task cannot: %s" % name.replace("_", " "),
                     out)
        for name in ["kill_agent", "kill_server", "kill_other_task", "kill_other_monitor"]:
            v = p.get(name, "")
            pt.check(v.startswith("denied") and "not permitted" in v,
                     "alice's task cannot signal: %s (EPERM)" % name[5:].replace("_", " "), out)
        pt.check(p.get("own_secret") == "ok", "alice's own secret reaches her command", out)
        pt.check(p.get("own_files") == "persisted", "a file one command writes is there for the next",
                 out)
        pt.check(p.get("own_home") == "mine", "her working dir is hers, also by its path ($HOME)",
                 out)
        pt.check(p.get("own_env") == "alice:alice:alice", "PAI_USER_NAME, USER and LOGNAME name her",
                 out)
        pt.check(p.get("own_shell") in ("/bin/bash", "/bin/sh"),
                 "SHELL names the shell that runs her command (no passwd lookup for her uid)", out)
        pt.check(re.match(r"^\d+$", p.get("own_gpu", "")) is not None,
                 "her GPU is still hers (CUDA_VISIBLE_DEVICES)", out)

        buids = proc_uids(bpid) or [0]
        pt.check(0 not in buids and auid not in buids,
                 "bob's task runs as a non-root uid of its own (seen from the host)", (buids, auid))
        pt.check(bsecret not in open("/proc/%d/cmdline" % bpid).read(),
                 "bob's secret is not on his task's command line", bpid)
        st_cwd = os.stat(os.path.join(bstate, "cwd"))
        pt.check(st_cwd.st_uid == buids[0] and st_cwd.st_mode & 0o777 == 0o700,
                 "bob's working dir is his alone (0700)", (oct(st_cwd.st_mode), st_cwd.st_uid))
        on_disk = []
        for top, _, files in os.walk(os.path.join(data, "agents")):
            for f in files:
                try:
                    if bsecret.encode() in open(os.path.join(top, f), "rb").read():
                        on_disk.append(os.path.join(top, f))
                except OSError:
                    pass
        pt.check(not on_disk, "bob's command (with his secret) is in no file of the agents",
                 on_disk)
        modes = {n: mode(os.path.join(data, n)) for n in
                 ["", "admin.password", "agent.token", "pai.db", "logs", "agents",
                  "agents/task-uids", "agents/%s" % node, "agents/%s/logs" % node,
                  "agents/%s/tasks" % node]}
        want = {"": "0o711", "admin.password": "0o600", "agent.token": "0o600", "pai.db": "0o600",
                "logs": "0o700", "agents": "0o711", "agents/task-uids": "0o600",
                "agents/%s" % node: "0o711", "agents/%s/logs" % node: "0o700",
                "agents/%s/tasks" % node: "0o711"}
        # the attempt dirs are slots of tasks/, free ones too (no pool dir of its own):
        # each passable only, its working dir 0700 (a free slot's the agent's)
        tasks = os.path.join(data, "agents", node, "tasks")
        for name in os.listdir(tasks):
            modes["agents/%s/tasks/%s" % (node, name)] = mode(os.path.join(tasks, name))
            want["agents/%s/tasks/%s" % (node, name)] = "0o711"
            c = os.path.join(tasks, name, "cwd")
            if os.path.isdir(c) and os.path.realpath(c) != os.path.realpath(
                    os.path.join(bstate, "cwd")) and os.stat(c).st_uid == os.geteuid():
                modes["agents/%s/tasks/%s/cwd" % (node, name)] = mode(c)
                want["agents/%s/tasks/%s/cwd" % (node, name)] = "0o700"
        modes["pool"] = os.path.exists(os.path.join(data, "agents", node, "pool"))
        want["pool"] = False
        # the agents' own map serves only tasks without the server's offset (task_uid):
        # absent while none ran, 0600 when there
        if not os.path.exists(os.path.join(data, "agents/task-uids")):
            modes["agents/task-uids"] = "0o600"
        pt.check(modes == want, "pai up's data dir: passable, everything in it private", modes)
    finally:
        stop_job(bob, "bob~victim")
        e.wait_state(bob, "bob~victim", ("STOPPED", "FAILED", "SUCCEEDED"), 30)


# ---- 2. podman ------------------------------------------------------------------------

def podman_runtime():
    name = "podman: root in the container is not root on the host"
    if os.geteuid() != 0 or not shutil.which("podman"):
        pt.skip(name, "needs root and podman (scripts/deps.sh --podman)")
        return
    rc = subprocess.call(["bash", os.path.join(HERE, "..", "..", "scripts",
                                               "build-busybox-image.sh"), "podman"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pt.check(rc == 0, "podman: the local busybox image is built")
    srv = pt.start_server()
    admin = srv.client(srv.admin_token)
    e.agent(srv, "hp1", "--runtime", "podman")
    pt.check(len(e.wait_nodes(admin, 1)) == 1, "podman: the agent registers")
    carol = srv.client(srv.create_user("carol"))
    job = "podiso" + uuid.uuid4().hex[:8]
    secret = "carol-" + uuid.uuid4().hex
    st, b = e.submit(carol, job_text(job, ["k='<% $secrets.key %>'",
                                           "echo \"CUID:$(id -u)\"",
                                           "[ \"$k\" = %s ] && echo SECRET-OK" % secret,
                                           "sleep 60"], secret=secret, image=IMAGE))
    full = "carol~" + job
    d = e.wait_state(carol, full, "RUNNING", 120)
    try:
        pids = []
        deadline = time.time() + 60
        while time.time() < deadline and not pids:
            pids = container_pids(full.encode())
            time.sleep(0.2)
        uids = {p: proc_uids(p) for p in pids}
        # the container's processes (its sh wrapper, the command's shell, sleep),
        # in a user namespace of their own
        inside = {p: u for p, u in uids.items() if u}
        pt.check(inside and all(0 not in u for u in inside.values()),
                 name + " (host uids of its processes)", (uids, d.get("jobStatus")))
        cmdlines = ""
        for p in os.listdir("/proc"):
            if p.isdigit():
                try:
                    cmdlines += open("/proc/%s/cmdline" % p, "rb").read().decode(errors="replace")
                except OSError:
                    pass
        pt.check(secret not in cmdlines, "podman: the job's secret is on no command line")
        deadline = time.time() + 30
        out = ""
        while time.time() < deadline and "SECRET-OK" not in out:
            out = stdout_of(carol, e.detail(carol, full))
            time.sleep(0.5)
        pt.check("SECRET-OK" in out and re.search(r"^CUID:\d+$", out, re.M),
                 "podman: the job's own secret reaches its command", out)
    finally:
        stop_job(carol, full)
        e.wait_state(carol, full, ("STOPPED", "FAILED", "SUCCEEDED"), 60)


# ---- 3. the root opt-in ------------------------------------------------------------------

def root_opt_in():
    root = pt.tmpdir("pai-asroot-")
    data = os.path.join(root, ".pai")
    port = pt.free_port()
    r = subprocess.run([pt.PAI_BIN, "up", "--data-dir", data, "--port", str(port), "--nodes", "1",
                        "--tasks-as-root", "--detach"], capture_output=True, text=True, timeout=120)
    if not pt.check(r.returncode == 0, "pai up --tasks-as-root starts", r.stdout + r.stderr):
        return
    try:
        pt.check("tasks:   RUN AS ROOT (--tasks-as-root)" in r.stdout,
                 "--tasks-as-root: the banner says tasks run as root", r.stdout)
        pt.check(mode(data) == "0o700", "--tasks-as-root: the data dir stays 0700", mode(data))
        url = "http://127.0.0.1:%d" % port
        pw = open(os.path.join(data, "admin.password")).read().strip()
        st, b = pt.Client(url).post("/api/v2/authn/basic/login",
                                    {"username": "admin", "password": pw})
        admin = pt.Client(url, b["token"])
        st, b = e.submit(admin, job_text("asroot", ["echo \"UID:$(id -u)\""]))
        d = e.wait_state(admin, "admin~asroot", ("SUCCEEDED", "FAILED"), 60)
        out = stdout_of(admin, d)
        pt.check(e.state(d) == "SUCCEEDED" and "UID:0" in out,
                 "--tasks-as-root: the task runs as root, as asked", (d.get("jobStatus"), out))
        # an extra agent given its token on the command line
        token = open(os.path.join(data, "agent.token")).read().strip()
        work = pt.tmpdir("pai-asroot-agent-")
        a = pt.Proc([pt.PAI_BIN, "agent", "--server", url, "--name", "extra", "--token", token,
                     "--work-dir", os.path.join(work, "w"), "--gpus", "0"],
                    os.path.join(work, "agent.log"))
        a.spawn()
        deadline = time.time() + 20
        while time.time() < deadline and "agent: 1 node" not in a.log():
            time.sleep(0.1)
        cmdline = open("/proc/%d/cmdline" % a.proc.pid, "rb").read().decode(errors="replace")
        pt.check("--token" in cmdline and token not in cmdline,
                 "an agent blanks the token given on its command line", cmdline)
        a.stop()
    finally:
        subprocess.run([pt.PAI_BIN, "down", "--data-dir", data], capture_output=True, timeout=120)


# ---- 4. pai up without root -----------------------------------------------------------

def not_root():
    name = "pai up as nobody: tasks run as nobody and the banner says so"
    if not shutil.which("setpriv"):
        pt.skip(name, "needs setpriv (util-linux)")
        return
    root = pt.tmpdir("pai-nonroot-")
    os.chmod(root, 0o755)
    os.chown(root, 65534, 65534)
    data = os.path.join(root, ".pai")
    port = pt.free_port()
    # nobody may not reach the build tree (a clone under /root, or in a 0700
    # temp dir): run a copy of the binary from the 0755 dir
    pai = os.path.join(root, "pai")
    shutil.copy2(pt.PAI_BIN, pai)
    os.chmod(pai, 0o755)
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "env",
                 "HOME=" + root, pai]
    r = subprocess.run(as_nobody + ["up", "--data-dir", data, "--port", str(port), "--nodes",
                                    "1", "--detach"], capture_output=True, text=True, timeout=120,
                       cwd=root)
    if not pt.check(r.returncode == 0, "pai up as nobody starts", r.stdout + r.stderr):
        return
    try:
        pt.check("tasks:   run as uid 65534, like the agents" in r.stdout,
                 "pai up as nobody: the banner says tasks run as its user", r.stdout)
        url = "http://127.0.0.1:%d" % port
        pw = open(os.path.join(data, "admin.password")).read().strip()
        st, b = pt.Client(url).post("/api/v2/authn/basic/login",
                                    {"username": "admin", "password": pw})
        admin = pt.Client(url, b["token"])
        st, b = e.submit(admin, job_text("asnobody", ["echo \"UID:$(id -u)\""]))
        d = e.wait_state(admin, "admin~asnobody", ("SUCCEEDED", "FAILED"), 60)
        out = stdout_of(admin, d)
        pt.check(e.state(d) == "SUCCEEDED" and "UID:65534" in out,
                 "pai up as nobody: its tasks run as nobody", (d.get("jobStatus"), out))
    finally:
        subprocess.run(as_nobody + ["down", "--data-dir", data], capture_output=True, timeout=120,
                       cwd=root)


if os.geteuid() != 0:
    pt.skip("hostile tasks", "needs root: an agent that is not root cannot change uid")
    pt.done()
process_runtime()
podman_runtime()
root_opt_in()
not_root()
pt.done()
