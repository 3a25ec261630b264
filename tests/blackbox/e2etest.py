"""e2etest.py - helpers for the end-to-end tests: a real `pai server` and real
`pai agent` processes on loopback (paitest.py starts and stops them)."""

import json
import os
import shutil
import subprocess
import time

import paitest as pt

IMAGE = os.environ.get("PAI_TEST_IMAGE", "localhost/pai-busybox:1")


def role(name, command, instances=1, gpu=0, cpu=1, mem=256, ports=None, min_failed=1,
         min_succeeded=-1, image=True):
    return {"name": name, "command": command, "instances": instances, "gpu": gpu, "cpu": cpu,
            "mem": mem, "ports": ports or {}, "min_failed": min_failed,
            "min_succeeded": min_succeeded, "image": image}


def job_yaml(name, roles, retry=0, image_uri="localhost/pai-busybox:1", shm_mb=None):
    out = ["protocolVersion: 2", "name: %s" % name, "type: job", "jobRetryCount: %d" % retry,
           "prerequisites:", "  - type: dockerimage", "    name: img",
           "    uri: %s" % json.dumps(image_uri), "taskRoles:"]
    for r in roles:
        out += ["  %s:" % r["name"], "    instances: %d" % r["instances"],
                "    dockerImage: img",
                "    completion:",
                "      minFailedInstances: %d" % r["min_failed"],
                "      minSucceededInstances: %d" % r["min_succeeded"],
                "    resourcePerInstance:",
                "      gpu: %d" % r["gpu"], "      cpu: %d" % r["cpu"],
                "      memoryMB: %d" % r["mem"]]
        if r["ports"]:
            out.append("      ports:")
            out += ["        %s: %d" % (k, v) for k, v in r["ports"].items()]
        out += ["    commands:", "      - %s" % json.dumps(r["command"])]
    if shm_mb:
        out += ["extras:", "  com.microsoft.pai.runtimeplugin: []"]
    return "\n".join(out) + "\n"


def submit(client, text):
    return client.request("POST", "/api/v2/jobs", raw=text, content_type="text/yaml")


def detail(client, job):
    st, d = client.get("/api/v2/jobs/" + job)
    return d if st == 200 else {}


def wait_state(client, job, states, timeout=60):
    states = {states} if isinstance(states, str) else set(states)
    deadline = time.time() + timeout
    d = {}
    while time.time() < deadline:
        d = detail(client, job)
        if d.get("jobStatus", {}).get("state") in states:
            return d
        time.sleep(0.1)
    return d


def state(d):
    return d.get("jobStatus", {}).get("state")


def tasks(d, role_name):
    return d.get("taskRoles", {}).get(role_name, {}).get("taskStatuses", [])


def agent(srv, name, *args):
    """A real `pai agent` with its own work dir, 8 simulated GPUs.
    PAI_AGENT_BIN runs another build's agent (bench/e2e.py's pairs: the
    same server, only the agent differs)."""
    d = pt.tmpdir("pai-e2e-%s-" % name)
    argv = [os.environ.get("PAI_AGENT_BIN") or pt.PAI_BIN, "agent", "--server", srv.url, "--name", name, "--token",
            srv.agent_token or "", "--work-dir", d, "--gpus", "8", "--cpus", "32",
            "--memory-mb", "65536"] + list(args)
    p = pt.Proc(argv, os.path.join(d, "agent.log"))
    p.work_dir = d
    p.spawn()
    return p


def wait_nodes(client, n, timeout=30):
    """Wait until n nodes are Ready in /api/v2/cluster/nodes; returns their names."""
    deadline = time.time() + timeout
    ready = []
    while time.time() < deadline:
        st, b = client.get("/api/v2/cluster/nodes")
        if st == 200:
            ready = [x["metadata"]["name"] for x in b.get("items", [])
                     if any(cd.get("type") == "Ready" and cd.get("status") == "True"
                            for cd in x.get("status", {}).get("conditions", []))]
            if len(ready) >= n:
                return ready
        time.sleep(0.1)
    return ready


def node_info(client, name):
    """The node's item of /api/v2/cluster/nodes ({} when it is not listed)."""
    st, b = client.get("/api/v2/cluster/nodes")
    for x in (b or {}).get("items", []) if st == 200 else []:
        if x["metadata"]["name"] == name:
            return x
    return {}


def node_credential(client, name):
    """The node's credential state (status.nodeInfo.credential), None when none."""
    return node_info(client, name).get("status", {}).get("nodeInfo", {}).get("credential")


def wait_for(cond, timeout=20):
    """cond() until it is true or timeout seconds passed; returns its last value."""
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return cond()


def agent_sync(srv, token, node, known=0, version=2):
    """One agent sync (POST /api/v1/agent/sync, no wait, no task) as node (a
    dict) with token: (status, body)."""
    body = {"version": version, "node": node, "known_seq": known, "wait_ms": 0, "tasks": []}
    return pt.Client(srv.url, token).post("/api/v1/agent/sync", body)


def agent_api_ready(srv):
    """True when this server speaks the agent protocol; the end-to-end tests
    fail (not skip) when it does not: that is the regression they catch."""
    st, b = srv.client(srv.agent_token).post("/api/v1/agent/sync", {"version": 0})
    return st not in (404, 405, 501)


def task_stdout(client, task):
    """The stdout log of a task status (its containerLog's "stdout"), "" when none."""
    st, lg = client.get(task["containerLog"])
    locs = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])} if st == 200 else {}
    return str(client.get(locs["stdout"])[1]) if "stdout" in locs else ""


def big_log_job(client, nbytes, name="biglog"):
    """Runs the caller's (admin's) job name, whose one task writes nbytes of lines and
    "end-of-log" to stdout, and checks that it SUCCEEDED.  Returns its task's log
    locations ({name: uri}) and the stdout it must read as."""
    submit(client, job_yaml(name, [role(
        "main", "yes line-0123456789abcdef | head -c %d; echo; echo end-of-log" % nbytes)]))
    d = wait_state(client, "admin~" + name, ("SUCCEEDED", "FAILED", "STOPPED"), 60)
    pt.check(state(d) == "SUCCEEDED", "a job writes a %d MiB log" % (nbytes >> 20), state(d))
    ts = tasks(d, "main")
    st, lg = client.get(ts[0]["containerLog"]) if ts else (0, None)
    uris = {loc["name"]: loc["uri"] for loc in (lg or {}).get("locations", [])}
    want = (b"line-0123456789abcdef\n" * (nbytes // 22 + 1))[:nbytes] + b"\nend-of-log\n"
    return uris, want


def podman_ready(what):
    """For the podman tests: without root or podman the test is one skip
    (`what`) and ends here; else the local busybox image is built (a check)."""
    if os.geteuid() != 0 or not shutil.which("podman"):
        pt.skip(what, "needs root and podman (scripts/deps.sh --podman)")
        pt.done()
    script = os.path.join(pt.REPO, "scripts", "build-busybox-image.sh")
    rc = subprocess.call(["bash", script, "podman"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    pt.check(rc == 0, "the local busybox image is built")


def podman_containers(agent_proc):
    """Names of the running podman containers of this agent: those with a
    mount from under its work dir (each attempt's command file is bound from
    its state dir there), not those of other tests or agents on the host."""
    root = os.path.realpath(agent_proc.work_dir) + "/"
    ids = subprocess.run(["podman", "ps", "-q", "--filter", "name=pai-"], capture_output=True,
                         text=True).stdout.split()
    mine = []
    for cid in ids:  # one by one: a container may go in between
        r = subprocess.run(["podman", "inspect", "--format",
                            "{{.Name}}{{range .Mounts}} {{.Source}}{{end}}", cid],
                           capture_output=True, text=True)
        f = r.stdout.split()
        if r.returncode == 0 and f and any(os.path.realpath(m).startswith(root) for m in f[1:]):
            mine.append(f[0])
    return mine


def children(pid):
    """The pids of the children of pid's main thread (its
    /proc/PID/task/PID/children); [] when it is gone."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []
