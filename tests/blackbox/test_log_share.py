#!/usr/bin/env python3
"""test_log_share.py - a job's owner shares its logs with chosen users and
groups (extras.logReaders, issue 11, docs/security.md "Logs"), with
log_read_access: owner (the default).

alice's job names bob and the group "team" (carol is a member) in
extras.logReaders: bob and carol read its logs and list their locations;
dave (in no such group) gets 403 ForbiddenUserError; sharing gives no
other right (bob cannot stop or delete it); a job that shares nothing
stays owner-only; a logReaders of the wrong shape is refused at
submission naming the field.
"""
import json

import e2etest as e
import paitest as pt

srv = pt.start_server()
admin = srv.client(srv.admin_token)
ag = e.agent(srv, "sh1")
pt.check(e.wait_nodes(admin, 1, timeout=30) == ["sh1"], "agent sh1 registered")

toks = {u: srv.create_user(u) for u in ("shalice", "shbob", "shcarol", "shdave")}
st, b = admin.post("/api/v2/groups", {"groupname": "team"})
pt.check(st == 201, "a group team", b)
st, b = admin.put("/api/v2/users/shcarol/group", {"groupname": "team"})
pt.check(st == 201, "carol joins team", b)
alice = srv.client(toks["shalice"])


def job(name, extras):
    return e.job_yaml(name, [e.role("main", "echo shared-output")]) + extras


st, b = e.submit(alice, job("shared", "extras:\n  logReaders: {users: [shbob], groups: [team]}\n"))
pt.check(st == 202, "alice shares her job's logs with bob and team", b)
st, b = e.submit(alice, job("private", ""))
pt.check(st == 202, "and keeps another job's logs to herself", b)
st, b = e.submit(alice, job("bad", "extras:\n  logReaders: {users: shbob, people: [x]}\n"))
pt.check(st == 400 and "extras.logReaders" in json.dumps(b),
         "a logReaders of the wrong shape is refused, naming the field", b)

locs = {}
for name in ("shared", "private"):
    d = e.wait_state(alice, "shalice~" + name, ("SUCCEEDED", "FAILED", "STOPPED"), 60)
    ts = e.tasks(d, "main")
    locs[name] = ts[0]["containerLog"] if ts else "/nowhere"
    pt.check(e.state(d) == "SUCCEEDED", "alice's job %s ran" % name, e.state(d))


def read(user, name):
    c = srv.client(toks[user])
    st, lg = c.get(locs[name])
    if st != 200:
        return st, lg
    uri = {x["name"]: x["uri"] for x in lg.get("locations", [])}.get("stdout", "/nowhere")
    return c.get(uri)


for user, why in (("shalice", "the owner"), ("shbob", "named in users"),
                  ("shcarol", "a member of a named group")):
    st, body = read(user, "shared")
    pt.check(st == 200 and "shared-output" in str(body), "%s (%s) reads the shared logs"
             % (user, why), (st, body))
st, body = read("shdave", "shared")
pt.check(st == 403 and body.get("code") == "ForbiddenUserError",
         "dave (neither named nor in a named group) gets 403", (st, body))
for user in ("shbob", "shcarol"):
    st, body = read(user, "private")
    pt.check(st == 403, "%s cannot read the job that shares nothing" % user, (st, body))
bob = srv.client(toks["shbob"])
st, b = bob.delete("/api/v2/jobs/shalice~shared")
pt.check(st == 403, "sharing the logs gives no other right (bob cannot delete the job)", b)
st, body = srv.client(srv.admin_token).get(locs["private"])
pt.check(st == 200, "admins still read every log", (st, body))

pt.done()
