#!/usr/bin/env python3
"""test_store_migrate.py - `pai store migrate` moves an installation from
SQLite to another store: a server on SQLite with users, a group, tokens,
jobs (finished, running, waiting) and their events is stopped, its store
copied, and a server on the new store serves the same logins, tokens, jobs
and events, and its agent goes on with the running job.  A non-empty target
is refused without --force; bad and unreachable stores are clear errors.

The target is PAI_STORE when it names PostgreSQL (tests/suites/store_pg.sh
gives each test a fresh database), else another SQLite file."""
import os
import subprocess
import time

import jobstest as jt
import paitest as pt

STORE = os.environ.get("PAI_STORE", "")
d = pt.tmpdir("pai-migrate-")
target = STORE if STORE.startswith("postgres") else "sqlite:" + os.path.join(d, "new.db")
source = "sqlite:" + os.path.join(d, "pai.db")


def migrate(*args):
    r = subprocess.run([pt.PAI_BIN, "store", "migrate"] + list(args), capture_output=True,
                       text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


# ---- an installation on SQLite ---------------------------------------------------
srv = pt.start_server(data_dir=d, extra_args=["--store", source])
admin = srv.client(srv.admin_token)
pt.expect(admin.post("/api/v2/groups", {"groupname": "team", "description": "t"}), 201, "a group")
ann = srv.create_user("ann", "ann-pw-123", vcs=["default"])
pt.expect(admin.put("/api/v2/users/ann/group", {"groupname": "team"}), 201, "ann joins team")
st, b = srv.client(ann).post("/api/v2/tokens/application")
app_tok = b.get("token") if st == 200 else None
pt.check(app_tok is not None, "an application token", (st, b))
n1 = jt.FakeAgent(srv, "n1", gpus=2)
n1.sync()
c = srv.client(ann)
jt.submit(c, jt.job_yaml("done", [{"name": "main", "gpu": 1}]))
ids = n1.sync_for("ann~done")
n1.sync()
n1.exit(ids[0], 0)
n1.settle()
jt.submit(c, jt.job_yaml("run", [{"name": "main", "gpu": 1}]))
run_ids = n1.sync_for("ann~run")
n1.sync()
jt.submit(c, jt.job_yaml("wait", [{"name": "main", "gpu": 2}]))  # one GPU is taken
jt.wait_state(c, "ann~done", "SUCCEEDED")
jt.wait_state(c, "ann~run", "RUNNING")
jt.wait_state(c, "ann~wait", "WAITING")
for k in range(30):  # more jobs than one batch of --batch 7
    jt.submit(c, jt.job_yaml("w%d" % k, [{"name": "main", "gpu": 2}]))
time.sleep(0.5)


def snapshot(cl):
    st, jobs = cl.get("/api/v2/jobs?username=ann")
    out = {"jobs": sorted((j["name"], j["state"]) for j in jobs) if st == 200 else (st, jobs)}
    for j in ("done", "run"):
        st, ev = cl.get("/api/v2/jobs/ann~%s/events" % j)
        out[j] = [(e["reason"], e["firstTimestamp"]) for e in ev["data"]] if st == 200 else st
    return out


before = snapshot(c)
pt.check(len(before["jobs"]) == 33, "33 jobs before the move", before["jobs"])
srv.stop()

# ---- errors -------------------------------------------------------------------------
rc, out = migrate("--from", "sqlite:" + os.path.join(d, "nope.db"), "--to", target)
pt.check(rc == 2 and "does not exist" in out, "a missing source is refused, not created", out)
pt.check(not os.path.exists(os.path.join(d, "nope.db")), "and no file was created")
rc, out = migrate("--from", source, "--to", "postgres://u:secret-pw@127.0.0.1:1/db")
pt.check(rc == 2 and "cannot open the target store" in out and "secret-pw" not in out,
         "an unreachable target is a clear error without its password", out)
rc, out = migrate("--from", source, "--to", "mysql://x")
pt.check(rc == 2 and "unknown URL scheme" in out, "an unknown scheme is refused", out)
rc, out = migrate("--from", source)
pt.check(rc == 2 and "usage" in out, "--to is required", out)

# ---- the move -----------------------------------------------------------------------
rc, out = migrate("--from", source, "--to", target, "--batch", "7")
pt.check(rc == 0 and "migrated" in out, "pai store migrate copies the store", out)
for kind in ("user", "group", "token", "job", "jobcfg", "jobcmd", "event", "node"):
    pt.check(any(l.split()[:1] == [kind] and "DIFFERENT" not in l for l in out.splitlines()),
             "the counts of %s records agree" % kind, out)
rc, out = migrate("--from", source, "--to", target)
pt.check(rc == 2 and "already holds" in out and "--force" in out,
         "a target that holds records is refused without --force", out)
rc, out = migrate("--from", source, "--to", target, "--force")
pt.check(rc == 0 and "deleted the" in out and "migrated" in out,
         "--force deletes the target's records and copies again", out)

# ---- a server on the new store ------------------------------------------------------
srv.extra_args = ["--store", target]
srv.start()
pt.check(srv.login("ann", "ann-pw-123") is not None, "ann's password works on the new store")
pt.expect(srv.client(ann).get("/api/v2/users/ann"), 200, "ann's login token still works")
st, b = srv.client(app_tok).get("/api/v2/jobs?username=ann")
pt.check(st == 200 and len(b) == 33, "the application token still works", (st, len(b)))
st, b = srv.client(srv.admin_token).get("/api/v2/groups/team")
pt.check(st == 200 and b.get("description") == "t", "the group moved", b)
c = srv.client(ann)
after = snapshot(c)
pt.check(after == before, "the same jobs, states and events on the new store", (before, after))
# the agent goes on: its running task is still desired; its exit finishes the job
n1.known_seq = 0
n1.sync()
pt.check(n1.find("ann~run") == run_ids, "the running job's task is still desired on its node",
         (run_ids, n1.desired))
n1.exit(run_ids[0], 0)
n1.settle()
pt.check(jt.wait_state(c, "ann~run", "SUCCEEDED")["jobStatus"]["state"] == "SUCCEEDED",
         "the running job finishes on the new store")
ids = n1.sync_for("ann~wait")
pt.check(len(ids) == 1, "the waiting job is placed once a GPU is free", n1.desired)
pt.done()
