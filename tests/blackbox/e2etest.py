"""e2etest.py - helpers for the end-to-end tests: a real `pai server` and real
`pai agent` processes on loopback (paitest.py starts and stops them)."""

import json
import os
import time

import paitest as pt


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
    """A real `pai agent` with its own work dir, 8 simulated GPUs."""
    d = pt.tmpdir("pai-e2e-%s-" % name)
    argv = [pt.PAI_BIN, "agent", "--server", srv.url, "--name", name, "--token",
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


def agent_api_ready(srv):
    """True when this server speaks the agent protocol; the end-to-end tests
    fail (not skip) when it does not: that is the regression they catch."""
    st, b = srv.client(srv.agent_token).post("/api/v1/agent/sync", {"version": 0})
    return st not in (404, 405, 501)
