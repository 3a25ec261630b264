"""test_jobs_mounts.py - what the server sends the agent for a task's image:
the dockerimage prerequisite's registry auth with `<% $secrets.x %>`
resolved (from the job's secrets, as the rendered command gets them), only
in the desired state served to the agent token; the job config API still
masks the secret.  Storages (extras.storages, or the user's defaults) are
resolved at submit into the task's mounts from the storage's data.hostPath;
a storage that does not exist, that the user may not use, or that has no
hostPath is refused."""

import json
import os

import jobstest as jt
import paitest as pt

SECRET = "s3cr3t-registry-pw"
d = pt.tmpdir()
cfg = os.path.join(d, "server.yaml")
with open(cfg, "w") as f:
    f.write("""
storages:
  - name: home
    type: hostPath
    default: true
    data: {hostPath: /srv/pai/home}
  - name: team
    type: nfs
    groups: [team]
    data: {hostPath: /mnt/nfs/team, readOnly: true}
  - name: remote
    type: nfs
    default: true
    data: {server: 10.0.0.1, path: /data}
""")
srv = pt.start_server(extra_args=["--config", cfg])
c = srv.client(srv.admin_token)
n1 = jt.FakeAgent(srv, "n1", gpus=2)
n1.sync()

YAML = "\n".join([
    "protocolVersion: 2", "name: authjob", "type: job",
    "secrets:", "  regpw: %s" % SECRET, "  reguser: bob",
    "prerequisites:", "  - type: dockerimage", "    name: img",
    "    uri: registry.example/team/img:1",
    "    auth:", "      username: <% $secrets.reguser %>",
    "      password: <% $secrets.regpw %>",
    "      registryuri: registry.example",
    "taskRoles:", "  main:", "    instances: 1", "    dockerImage: img",
    "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 256}",
    "    commands:", "      - echo pw-is-<% $secrets.regpw %>", ""])

st, b = jt.submit(c, YAML)
pt.check(st == 202, "auth job submitted", (st, b))
ids = n1.sync_for("admin~authjob", 1)
pt.check(len(ids) == 1, "auth job placed on the fake agent", ids)
task = n1.running.get(ids[0]) if ids else None
img = (task or {}).get("image") or {}
pt.check(img.get("uri") == "registry.example/team/img:1", "desired image uri", img)
auth = img.get("auth") or {}
pt.check(auth.get("password") == SECRET, "desired auth password: secret resolved", auth)
pt.check(auth.get("username") == "bob", "desired auth username: secret resolved", auth)
pt.check(auth.get("registryuri") == "registry.example", "desired auth registryuri", auth)
pt.check(SECRET in (task or {}).get("command", ""), "rendered command has the secret too",
         task and task.get("command"))

st, cfg = c.get("/api/v2/jobs/admin~authjob/config")
pt.check(st == 200 and SECRET not in str(cfg), "job config API masks the secret", (st, cfg))
st, d = c.get("/api/v2/jobs/admin~authjob")
pt.check(st == 200 and SECRET not in str(d), "job detail does not show the secret", st)

# The desired state is only for the agent token (or an admin, PERM_AGENT).
u = srv.client(srv.create_user("alice"))
body = {"version": 1, "node": n1.node(), "known_seq": 0, "wait_ms": 0, "tasks": []}
st, r = u.post("/api/v1/agent/sync", body)
pt.check(st in (401, 403) and SECRET not in str(r), "agent sync refused to a user token", st)
st, cfg = u.get("/api/v2/jobs/admin~authjob/config")
pt.check(SECRET not in str(cfg), "another user never sees the secret", st)

# The auth survives a server restart (held in the store's jobcmd record).
srv.restart()
n1.client = pt.Client(srv.url, srv.agent_token, timeout=60)
n1.running.clear()
n1.sync()
t2 = n1.desired.get(ids[0]) if ids else None
a2 = ((t2 or {}).get("image") or {}).get("auth") or {}
pt.check(a2.get("password") == SECRET, "auth after a server restart", a2)

# A job without auth sends no auth.
st, b = jt.submit(c, jt.job_yaml("noauth"))
pt.check(st == 202, "plain job submitted", (st, b))
ids = n1.sync_for("admin~noauth", 1)
t3 = n1.running.get(ids[0]) if ids else {}
pt.check(t3 and "auth" not in (t3.get("image") or {}), "no auth without one", t3)

# Storages.  No extras.storages: the user's default storages with a hostPath.
pt.check(t3 and t3.get("mounts") == [{"source": "/srv/pai/home", "target": "/mnt/home",
                                      "readonly": False}],
         "default storages mounted at /mnt/<name>", t3 and t3.get("mounts"))
ex = {"storages": [{"name": "team", "mountPath": "/data/team"}, {"name": "home"}]}
st, b = jt.submit(c, jt.job_yaml("named", extras=ex))
pt.check(st == 202, "job naming storages submitted", (st, b))
ids = n1.sync_for("admin~named", 1)
t4 = n1.running.get(ids[0]) if ids else {}
pt.check(t4 and t4.get("mounts") == [
    {"source": "/mnt/nfs/team", "target": "/data/team", "readonly": True},
    {"source": "/srv/pai/home", "target": "/mnt/home", "readonly": False}],
    "named storages become the task's mounts", t4 and t4.get("mounts"))
st, b = jt.submit(c, jt.job_yaml("nostore", extras={"storages": []}))
ids = n1.sync_for("admin~nostore", 1)
t5 = n1.running.get(ids[0]) if ids else {}
pt.check(st == 202 and t5 and not t5.get("mounts"), "storages: [] mounts nothing", t5)

ut = srv.create_user("carol")
uc = srv.client(ut)
st, b = jt.submit(uc, jt.job_yaml("notmine", extras={"storages": [{"name": "team"}]}))
pt.check(st == 403 and "team" in json.dumps(b), "a storage the user may not use: 403", (st, b))
st, b = jt.submit(uc, jt.job_yaml("nosuch", extras={"storages": [{"name": "ghost"}]}))
pt.check(st == 404 and b.get("code") == "NoStorageError" and "ghost" in json.dumps(b),
         "a storage that does not exist: 404 NoStorageError (as OpenPAI)", (st, b))
st, b = jt.submit(c, jt.job_yaml("remote", extras={"storages": [{"name": "remote"}]}))
pt.check(st == 400 and "hostPath" in json.dumps(b), "a storage without hostPath: 400", (st, b))
ex = {"storages": [{"name": "home", "mountPath": "/a:/b"}]}
st, b = jt.submit(c, jt.job_yaml("badpath", extras=ex))
pt.check(st == 400, "a mountPath the engines cannot carry: 400", (st, b))
st, b = jt.submit(uc, jt.job_yaml("usermine"))
ids = n1.sync_for("carol~usermine", 1)
t6 = n1.running.get(ids[0]) if ids else {}
pt.check(st == 202 and t6 and [m["source"] for m in t6.get("mounts", [])] == ["/srv/pai/home"],
         "a plain user gets only their default storages", t6)

pt.done()
