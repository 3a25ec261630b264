#!/usr/bin/env python3
"""test_agent_env5.py - version 5 of the agent protocol with real servers and
agents (docs/agent-protocol.md, "The environment as the job's placement"):
a task's env goes as its job's placement and the agent derives the PAI_*
variables.  The same two-role job with ports and GPUs runs on a fresh server
and node three times: a version 5 agent with a version 5 server, an agent
that asks for no newer answer (a version 4 agent, PAI_TEST_AGENT_ACCEPT=4)
and a version 5 agent with a server that answers at most version 4
(PAI_TEST_AGENTWIRE_MAX=4).  Every task's full env (`env`, its work dir
written as <WORK>, its ports as offsets from the run's lowest) is the same
in all three; the server answers a request
with "accept": 5 in version 5, and in version 4 without it or when capped."""

import os
import re

import e2etest as e
import paitest as pt

W = pt.tmpdir("pai-env5-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
ROLES = [e.role("ps", 'env > "%s/$MODE-$PAI_CURRENT_TASK_ROLE_NAME-$PAI_TASK_INDEX"' % W,
                gpu=1, ports={"ssh": 1, "http": 2}),
         e.role("worker", 'env > "%s/$MODE-$PAI_CURRENT_TASK_ROLE_NAME-$PAI_TASK_INDEX"' % W,
                instances=2, gpu=2, ports={"ssh": 1})]
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
    versions = (answer_version(srv, 5), answer_version(srv, None))
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


v5, ver5 = run("v5", {}, {})
v4a, ver4a = run("v4agent", {}, {"PAI_TEST_AGENT_ACCEPT": "4"})
v4s, ver4s = run("v4server", {"PAI_TEST_AGENTWIRE_MAX": "4"}, {})
pt.check(ver5 == (5, 4) and ver4a == (5, 4),
         "a server answers a request with accept 5 in version 5, one without in version 4",
         (ver5, ver4a))
pt.check(ver4s == (4, 4), "a server capped at version 4 answers accept 5 in version 4", ver4s)
for t in TASKS:
    names = [line.split("=", 1)[0] for line in v5[t]]
    pt.check(len(v5[t]) > 30 and "PAI_PORT_LIST_ps_0_http" in names and
             "PAI_HOST_IP_worker_1" in names and "CUDA_VISIBLE_DEVICES" in names,
             "%s: the task's env holds its peers' addresses, ports and its GPUs" % t,
             v5[t])
    pt.check(v4a[t] == v5[t], "%s: the same env from a version 4 agent (variables sent)" % t,
             sorted(set(v4a[t]) ^ set(v5[t])))
    pt.check(v4s[t] == v5[t], "%s: the same env from a version 4 server (variables sent)" % t,
             sorted(set(v4s[t]) ^ set(v5[t])))
pt.done()
