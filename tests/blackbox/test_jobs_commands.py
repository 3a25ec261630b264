#!/usr/bin/env python3
"""test_jobs_commands.py - large and unrenderable commands (issue 11,
"Commands"): a job whose rendered commands exceed the limit (PAI_MAX_COMMAND,
4 MiB) was stored with an empty command and ended SUCCEEDED without running
anything; registry credentials that failed to render were dropped; a
command over 128 KiB always failed with exit 126; two large commands placed
on one node made an answer over the agent's 8 MiB message limit, and that
node started nothing again.  Now: a 1 MiB and a nearly 4 MiB rendered
command run (a real agent, process runtime) and print what they should;
three 3 MiB commands on one node all run, and a hand-driven version 2 node
gets them in answers under the limit, without the commands of attempts it
reported; a job over the limit, in its commands or its dockerimage auth,
is refused at submit (400 InvalidProtocolError naming the role and the
limit) and never created."""

import json
import time

import e2etest as e
import jobstest as jt
import paitest as pt

LIMIT = 4 * 1024 * 1024
srv = pt.start_server()
c = srv.client(srv.admin_token)
agent = e.agent(srv, "cmd1")
pt.check(len(e.wait_nodes(c, 1)) == 1, "an agent registers")


def job(name, roles, params=None, auth=None):
    out = ["protocolVersion: 2", "name: %s" % name, "type: job"]
    if params:
        out.append("parameters:")
        out += ["  %s: %s" % (k, json.dumps(v)) for k, v in params.items()]
    out += ["prerequisites:", "  - type: dockerimage", "    name: img", "    uri: busybox"]
    if auth:
        out += ["    auth:"] + ["      %s: %s" % (k, json.dumps(v)) for k, v in auth.items()]
    out.append("taskRoles:")
    for rname, cmd in roles:
        out += ["  %s:" % rname, "    instances: 1", "    dockerImage: img",
                "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 256}",
                "    commands:", "      - %s" % json.dumps(cmd)]
    return "\n".join(out) + "\n"


def stdout_of(d):
    ts = e.tasks(d, "main")
    st, lg = c.get(ts[0]["containerLog"]) if ts else (0, None)
    uri = {l["name"]: l["uri"] for l in (lg or {}).get("locations", [])}.get("stdout")
    st, text = c.get(uri) if uri else (0, "")
    return text if isinstance(text, str) else json.dumps(text)


def run(name, yaml_text):
    st, b = e.submit(c, yaml_text)
    pt.check(st == 202, "%s: submitted" % name, (st, str(b)[:300]))
    return e.wait_state(c, "admin~" + name, ("SUCCEEDED", "FAILED", "STOPPED"), 90)


# ---- 1. large rendered commands run ---------------------------------------------------------
mib = "a" * (1 << 20)
d = run("cmd-1mib", job("cmd-1mib", [("main", "printf %s '<% $parameters.p %>' | wc -c")],
                        params={"p": mib}))
out = stdout_of(d)
pt.check(e.state(d) == "SUCCEEDED" and "1048576" in out,
         "a 1 MiB rendered command runs and prints its own size (1048576)",
         (e.state(d), out[:200]))

chunk = "b" * (64 * 1024)
refs = 62  # 62 x 64 KiB = 3.875 MiB rendered, from a 64 KiB document
d = run("cmd-4mib", job("cmd-4mib", [("main", "X='%s'; echo ${#X}" % ("<% $parameters.p %>" *
                                                                       refs))],
                        params={"p": chunk}))
out = stdout_of(d)
pt.check(e.state(d) == "SUCCEEDED" and str(refs * 64 * 1024) in out,
         "a %d KiB rendered command (just under the limit) runs" % (refs * 64),
         (e.state(d), out[:200]))

# three 3 MiB commands on one node: more than one agent message (8 MiB) holds
big = "<% $parameters.p %>" * 48  # 48 x 64 KiB = 3 MiB
d = run("cmd-3x3", job("cmd-3x3", [("main", "X='%s'; test ${#X} = %d" % (big, 48 * 65536))],
                       params={"p": chunk}).replace("instances: 1", "instances: 3"))
pt.check(e.state(d) == "SUCCEEDED" and len(e.tasks(d, "main")) == 3,
         "three tasks with 3 MiB commands on one node all run (their answers stay under the "
         "agent's 8 MiB message limit)", (e.state(d), [t.get("exitCode") for t in
                                                       e.tasks(d, "main")]))

# the same by hand (protocol version 2): commands of attempts the agent reported are not sent
# again, and new ones come in answers of at most half the message limit
srv2 = pt.start_server()
c2 = srv2.client(srv2.admin_token)
node = jt.FakeAgent(srv2, "hand", gpus=4).node()
st, b = pt.Client(srv2.url, srv2.agent_token).post(
    "/api/v1/agent/sync", {"version": 2, "node": node, "known_seq": 0, "wait_ms": 0, "tasks": []})
hand = pt.Client(srv2.url, (b or {}).get("credential"), timeout=60)
st, b = e.submit(c2, job("hand3", [("main", "X='%s'" % big)], params={"p": chunk})
                 .replace("gpu: 0", "gpu: 1").replace("instances: 1", "instances: 3"))
pt.check(st == 202, "a 3-task job of 3 MiB commands is submitted to a hand-driven node", (st, b))
known, have, sizes, resent, rounds = 0, {}, [], [], 0
while len(have) < 3 and rounds < 40:
    rounds += 1
    reports = [{"attempt_id": a, "state": "running", "pid": 1, "started_ms": 1} for a in have]
    st, b = hand.post("/api/v1/agent/sync", {"version": 2, "node": node, "known_seq": known,
                                             "wait_ms": 0, "tasks": reports})
    if st != 200:
        break
    sizes.append(len(json.dumps(b)))
    known = b["seq"]
    for t in b.get("tasks", []):
        if t["attempt_id"] in have:
            resent.append("command" in t)
        else:
            have[t["attempt_id"]] = t.get("command", "")
    time.sleep(0.05)
print("# hand-driven node: %d syncs, answers of %s bytes" % (rounds, sizes))
pt.check(resent and not any(resent),
         "attempts the agent reported come without their command", resent)
pt.check(len(have) == 3 and all(len(x) >= 48 * 65536 for x in have.values()),
         "every new attempt arrives with its whole command", (len(have), rounds))
pt.check(sizes and max(sizes) < 8 << 20 and max(sizes) < 5 << 20,
         "no answer passes the agent's message limit (largest %d bytes)" % max(sizes or [0]),
         sizes)

# ---- 2. over the limit: refused at submit ---------------------------------------------------
over = job("cmd-over", [("small", "echo ok"),
                        ("big", "echo %s" % ("<% $parameters.p %>" * 70))], params={"p": chunk})
st, b = e.submit(c, over)
msg = (b or {}).get("message", "") if isinstance(b, dict) else str(b)
pt.check(st == 400 and b.get("code") == "InvalidProtocolError" and "taskRoles.big" in msg
         and str(LIMIT) in msg and "4 MiB" in msg,
         "rendered commands over the limit are refused at submit, naming the role and the limit",
         (st, b))
st, d = c.get("/api/v2/jobs/admin~cmd-over")
pt.check(st == 404, "and the job does not exist (never run with an empty command)", (st, d))

st, b = e.submit(c, job("cmd-auth", [("main", "echo ok")], params={"p": chunk},
                        auth={"username": "u", "password": "<% $parameters.p %>" * 70,
                              "registryuri": "r.example"}))
msg = (b or {}).get("message", "") if isinstance(b, dict) else str(b)
pt.check(st == 400 and b.get("code") == "InvalidProtocolError" and "taskRoles.main" in msg
         and "auth.password" in msg and str(LIMIT) in msg,
         "registry credentials that cannot be rendered refuse the job (not dropped)", (st, b))
st, d = c.get("/api/v2/jobs/admin~cmd-auth")
pt.check(st == 404, "and that job does not exist either", (st, d))

# the same name, fixed, is accepted (nothing was reserved by the refusals)
d = run("cmd-over", job("cmd-over", [("small", "echo ok"), ("big", "echo fine")]))
pt.check(e.state(d) == "SUCCEEDED", "the refused name can be submitted again", e.state(d))
pt.done()
