#!/usr/bin/env python3
"""test_jobs_commands.py - large and unrenderable commands (issue 11,
"Commands"): a job whose rendered commands exceed the limit (PAI_MAX_COMMAND,
4 MiB) was stored with an empty command and ended SUCCEEDED without running
anything; registry credentials that failed to render were dropped; a
command over 128 KiB always failed with exit 126.  Now: a 1 MiB and a nearly
4 MiB rendered command run (a real agent, process runtime) and print what
they should; a job over the limit, in its commands or its dockerimage auth,
is refused at submit (400 InvalidProtocolError naming the role and the
limit) and never created."""

import json

import e2etest as e
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
