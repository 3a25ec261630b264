#!/usr/bin/env python3
"""test_agent_v7.py - version 7 of the agent protocol with real servers and
agents (docs/agent-protocol.md, "Compact task entries (version 7)"): a
task entry leaves out what the agent derives (its names and numbers from
its attempt id, its user from its job, its GPUs, resources and ports from
its jobenv, the default kill grace).  The same two-role job with ports and
GPUs runs on a fresh server and node three times: a version 7 agent with a
version 7 server, an agent that asks for no newer answer than 6
(PAI_TEST_AGENT_ACCEPT=6) and a version 7 agent with a server that answers
at most version 6 (PAI_TEST_AGENTWIRE_MAX=6).  Every task's full env (`env`,
its work dir written as <WORK>, its ports as offsets from the run's lowest)
and the cgroup limits it runs under are the same in all three; the server
answers a request with "accept": 7 in version 7, with "accept": 6 in 6, and
in 6 when capped."""

import os
import re

import e2etest as e
import paitest as pt

W = pt.tmpdir("pai-v7-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
# the env, then the memory limit of the task's cgroup (from its memory_mb)
CMD = ('F="%s/$MODE-$PAI_CURRENT_TASK_ROLE_NAME-$PAI_TASK_INDEX"; env > "$F"; '
       'M=$(grep -m1 ":memory:" /proc/self/cgroup | cut -d: -f3); '
       'echo "ZLIMIT=$(cat /sys/fs/cgroup/memory$M/memory.limit_in_bytes 2>/dev/null)" >> "$F"'
       % W)
ROLES = [e.role("ps", CMD, gpu=1, mem=320, ports={"ssh": 1, "http": 2}),
         e.role("worker", CMD, instances=2, gpu=2, mem=448, ports={"ssh": 1})]
TASKS = ["ps-0", "worker-0", "worker-1"]


def answer_version(srv, accept):
    """The version of the server's answer to a version 4 sync of a new node
    (with "accept" when given)."""
    node = {"name": "probe-%s" % accept, "address": "127.0.0.1", "cpus": 1, "memory_mb": 1,
            "gpus": []}
    body = {"version": 4, "node": node, "known_seq": 0, "wait_ms": 0, "tasks": []}
    if accept:
        body["accept"] = accept
    st, b = pt.Client(srv.url, srv.agent_token).post("/api/v1/agent/sync", body)
    return b.get("version") if st == 200 and isinstance(b, dict) else (st, b)


def run(mode, server_env, agent_env):
    srv = pt.start_server(env=server_env)
    c = srv.client(srv.admin_token)
    agent = pt.start_agent(srv, "envnode", ["--gpus", "8", "--cpus", "32", "--memory-mb", "65536"],
                           env=agent_env)
    pt.check(len(e.wait_nodes(c, 1)) == 1, "%s: the agent registers" % mode)
    # the mode names the task's file: set by its command (not in its env)
    roles = [dict(r, command="MODE=%s; %s" % (mode, r["command"])) for r in ROLES]
    st, b = e.submit(c, e.job_yaml("envjob", roles))
    pt.check(st == 202, "%s: submitted" % mode, (st, b))
    d = e.wait_state(c, "admin~envjob", ("SUCCEEDED", "FAILED", "STOPPED"), 60)
    pt.check(e.state(d) == "SUCCEEDED", "%s: the job succeeds" % mode, e.state(d))
    versions = (answer_version(srv, 7), answer_version(srv, 6))
    envs = {}
    for t in TASKS:
        try:
            with open(os.path.join(W, "%s-%s" % (mode, t))) as f:
                text = f.read()
        except FileNotFoundError:
            text = ""
        envs[t] = sorted(line for line in text.replace(agent.work_dir, "<WORK>").splitlines()
                         if not line.startswith(("MODE=", "_=", "SHLVL=", "PWD=", "OLDPWD=")))
    agent.stop()
    srv.stop()
    return ports_as_offsets(envs), versions


def ports_as_offsets(envs):
    """Each run's ports come from a range of its own: a port is written as
    its offset from the run's lowest (P+k), so the runs compare exactly."""
    def is_port(line):
        name = line.split("=", 1)[0]
        return "PORT" in name or name.endswith("_HOST_LIST")
    nums = [int(n) for lines in envs.values() for line in lines if is_port(line)
            for n in re.findall(r":?(\d{4,5})\b", line.split("=", 1)[1])]
    base = min(nums) if nums else 0
    def norm(line):
        if not is_port(line):
            return line
        name, value = line.split("=", 1)
        return name + "=" + re.sub(r"\b\d{4,5}\b", lambda m: "P+%d" % (int(m.group()) - base),
                                   value)
    return {t: sorted(norm(line) for line in lines) for t, lines in envs.items()}


v7, ver7 = run("v7", {}, {})
v6a, ver6a = run("v6agent", {}, {"PAI_TEST_AGENT_ACCEPT": "6"})
v6s, ver6s = run("v6server", {"PAI_TEST_AGENTWIRE_MAX": "6"}, {})
pt.check(ver7 == (7, 6) and ver6a == (7, 6),
         "a server answers a request with accept 7 in version 7, one with accept 6 in 6",
         (ver7, ver6a))
pt.check(ver6s == (6, 6), "a server capped at version 6 answers accept 7 in version 6", ver6s)
for t in TASKS:
    names = [line.split("=", 1)[0] for line in v7[t]]
    pt.check(len(v7[t]) > 30 and "PAI_PORT_LIST_ps_0_http" in names and
             "PAI_HOST_IP_worker_1" in names and "CUDA_VISIBLE_DEVICES" in names and
             "PAI_JOB_NAME" in names and "PAI_USER_NAME" in names,
             "%s: the task's env holds its job, user, peers' addresses, ports and its GPUs" % t,
             v7[t])
    limit = [line for line in v7[t] if line.startswith("ZLIMIT=")]
    pt.check(limit in (["ZLIMIT=%d" % ((320 if t == "ps-0" else 448) << 20)], ["ZLIMIT="]),
             "%s: the task's memory limit is its role's (where the cgroup is readable)" % t,
             limit)
    pt.check(v6a[t] == v7[t], "%s: the same env from a version 6 agent (entries whole)" % t,
             sorted(set(v6a[t]) ^ set(v7[t])))
    pt.check(v6s[t] == v7[t], "%s: the same env from a version 6 server (entries whole)" % t,
             sorted(set(v6s[t]) ^ set(v7[t])))
pt.done()
