"""test_jobs_api.py - the job REST API against a real `pai server`: submit,
list with every filter, detail, config (secrets masked), tags, stop, delete,
errors, permissions, and restart durability (kill -9).

Jobs here never need a node: they wait in the queue (no agent registers),
so this test exercises the API and the store, not the lifecycle
(test_jobs_lifecycle.py does that with fake agents)."""

import json

import jobstest as jt
import paitest as pt

srv = pt.start_server()
admin = srv.client(srv.admin_token)
alice_tok = srv.create_user("alice")
bob_tok = srv.create_user("bob")
alice, bob = srv.client(alice_tok), srv.client(bob_tok)

# ---- submit ------------------------------------------------------------------
st, b = jt.submit(alice, jt.job_yaml("a1"))
pt.check(st == 202 and "alice~a1" in b.get("message", ""), "submit answers 202", (st, b))
st, b = jt.submit(alice, jt.job_yaml("a1"))
pt.expect((st, b), 409, "duplicate name is refused with ConflictJobError", "ConflictJobError")
st, b = jt.submit(bob, jt.job_yaml("a1"))
pt.check(st == 202, "another user may use the same job name", (st, b))
for i in range(2, 6):
    jt.submit(alice, jt.job_yaml("a%d" % i, prio="prod" if i % 2 else None))
st, b = jt.submit(alice, "protocolVersion: 2\nname: bad\ntaskRoles: 3\n")
pt.check(st == 400 and b.get("code") == "InvalidProtocolError" and len(b.get("errors", [])) >= 2,
         "invalid protocol lists every problem", (st, b))
st, b = jt.submit(alice, "{{{ not yaml")
pt.expect((st, b), 400, "malformed YAML is InvalidProtocolError", "InvalidProtocolError")
st, b = jt.submit(alice, jt.job_yaml("x", [{"name": "main", "instances": 0}]))
pt.expect((st, b), 400, "zero instances is refused", "InvalidProtocolError")
st, b = jt.submit(alice, jt.job_yaml("novc", vc="nosuchvc"))
pt.check(st in (400, 403, 404), "a VC the user may not use is refused", (st, b))
st, b = srv.client(None).request("POST", "/api/v2/jobs", raw=jt.job_yaml("anon"),
                                 content_type="text/yaml")
pt.expect((st, b), 401, "anonymous submit is 401")

# ---- list and filters ---------------------------------------------------------
st, b = admin.get("/api/v2/jobs")
pt.check(st == 200 and len(b) == 6, "list returns every job", (st, b))
pt.check(st == 200 and b[0]["name"] == "a5", "default order is submissionTime DESC",
         [j["name"] for j in b] if st == 200 else b)
st, b = admin.get("/api/v2/jobs?username=bob")
pt.check(st == 200 and [j["username"] for j in b] == ["bob"], "filter by username", b)
st, b = admin.get("/api/v2/jobs?username=alice&offset=1&limit=2")
pt.check(st == 200 and [j["name"] for j in b] == ["a4", "a3"], "offset and limit", b)
st, b = admin.get("/api/v2/jobs?withTotalCount=true&limit=1")
pt.check(st == 200 and b.get("totalCount") == 6 and len(b.get("data", [])) == 1,
         "withTotalCount wraps the list", b)
st, b = admin.get("/api/v2/jobs?state=WAITING")
pt.check(st == 200 and len(b) == 6, "filter by state", b)
st, b = admin.get("/api/v2/jobs?state=RUNNING")
pt.check(st == 200 and len(b) == 0, "filter by another state", b)
st, b = admin.get("/api/v2/jobs?vc=default")
pt.check(st == 200 and len(b) == 6, "filter by vc", b)
st, b = admin.get("/api/v2/jobs?keyword=a3")
pt.check(st == 200 and [j["name"] for j in b] == ["a3"], "filter by keyword", b)
st, b = admin.get("/api/v2/jobs?jobPriority=prod")
pt.check(st == 200 and sorted(j["name"] for j in b) == ["a3", "a5"], "filter by jobPriority", b)
st, b = admin.get("/api/v2/jobs?order=jobName,ASC&username=alice")
pt.check(st == 200 and [j["name"] for j in b] == ["a1", "a2", "a3", "a4", "a5"],
         "order by jobName ASC", b)
st, b = admin.get("/api/v2/jobs?order=bogus,ASC")
pt.expect((st, b), 400, "unknown order field is 400", "InvalidParametersError")
st, b = admin.get("/api/v2/jobs?limit=-1")
pt.expect((st, b), 400, "negative limit is 400")

# ---- detail, config, events -----------------------------------------------------
st, b = alice.get("/api/v2/jobs/alice~a1")
pt.check(st == 200 and b["jobStatus"]["state"] == "WAITING" and "main" in b["taskRoles"],
         "detail shows state and task roles", b)
pt.check(st == 200 and "waitingReason" in b["jobStatus"], "detail has a waiting reason field", b)
st, b = bob.get("/api/v2/jobs/alice~a1")
pt.check(st == 200, "any user may read another's job", st)
st, b = alice.get("/api/v2/jobs/alice~nope")
pt.expect((st, b), 404, "unknown job is NoJobError", "NoJobError")
st, b = alice.get("/api/v2/jobs/nouser")
pt.expect((st, b), 404, "a name without ~ is NoJobError", "NoJobError")
sec = jt.job_yaml("sec").replace("taskRoles:", "secrets:\n  pw: hunter2\ntaskRoles:")
sec = sec.replace('"sleep 1"', '"echo <% $secrets.pw %>"')
st, b = jt.submit(alice, sec)
pt.check(st == 202, "a job with secrets is accepted", (st, b))
st, b = alice.get("/api/v2/jobs/alice~sec/config")
pt.check(st == 200 and isinstance(b, str) and "hunter2" not in b and "name: sec" in b,
         "config is YAML with secrets masked", b)
st, b = alice.get("/api/v2/jobs/alice~a1/events")
pt.check(st == 200 and "totalCount" in b, "events answer with a totalCount", b)
st, b = alice.get("/api/v2/jobs/alice~a1/events?type=Bogus")
pt.expect((st, b), 400, "events of an unknown type is 400")
st, b = alice.get("/api/v2/jobs/alice~a1/job-attempts")
pt.check(st == 200 and b == [], "a job that never ran has no attempts", b)

# ---- tags -----------------------------------------------------------------------
st, b = alice.put("/api/v2/jobs/alice~a1/tag", {"value": "keep"})
pt.check(st == 200, "owner adds a tag", (st, b))
st, b = bob.put("/api/v2/jobs/alice~a1/tag", {"value": "evil"})
pt.expect((st, b), 403, "another user may not tag", "ForbiddenUserError")
st, b = admin.put("/api/v2/jobs/alice~a2/tag", {"value": "admintag"})
pt.check(st == 200, "admin tags anyone's job", (st, b))
st, b = alice.put("/api/v2/jobs/alice~a1/tag", {})
pt.expect((st, b), 400, "a tag without value is 400")
st, b = admin.get("/api/v2/jobs?tagsContain=keep,admintag")
pt.check(st == 200 and sorted(j["name"] for j in b) == ["a1", "a2"], "filter tagsContain", b)
st, b = admin.get("/api/v2/jobs?tagsNotContain=keep&username=alice")
pt.check(st == 200 and "a1" not in [j["name"] for j in b] and len(b) == 5,
         "filter tagsNotContain", b)
st, b = alice.delete("/api/v2/jobs/alice~a1/tag", {"value": "missing"})
pt.expect((st, b), 404, "deleting a missing tag is NoTagError", "NoTagError")

# ---- stop and delete --------------------------------------------------------------
st, b = bob.put("/api/v2/jobs/alice~a3/executionType", {"value": "STOP"})
pt.expect((st, b), 403, "another user may not stop a job")
st, b = alice.put("/api/v2/jobs/alice~a3/executionType", {"value": "PAUSE"})
pt.expect((st, b), 400, "executionType must be START or STOP", "InvalidParametersError")
st, b = alice.delete("/api/v2/jobs/alice~a3")
pt.expect((st, b), 400, "a waiting job cannot be deleted")
st, b = alice.put("/api/v2/jobs/alice~a3/executionType", {"value": "STOP"})
pt.check(st == 202, "owner stops a waiting job", (st, b))
pt.check(jt.state(alice, "alice~a3") == "STOPPED", "a stopped waiting job is STOPPED")
st, b = alice.get("/api/v2/jobs/alice~a3")
pt.check(b["jobStatus"]["executionType"] == "STOP", "executionType is STOP after a stop", b)
st, b = bob.delete("/api/v2/jobs/alice~a3")
pt.expect((st, b), 403, "another user may not delete")
st, b = alice.delete("/api/v2/jobs/alice~a3")
pt.check(st == 200, "owner deletes a finished job", (st, b))
st, b = alice.get("/api/v2/jobs/alice~a3")
pt.expect((st, b), 404, "a deleted job is gone")
admin.put("/api/v2/jobs/alice~a4/executionType", {"value": "STOP"})
st, b = alice.put("/api/v2/jobs/alice~a4/tag", {"value": "after-stop"})
pt.check(st == 200, "a finished job can still be tagged", (st, b))

# ---- application tokens: job operations only ----------------------------------------
st, b = alice.post("/api/v2/tokens/application")
app = srv.client(b["token"]) if st == 200 else alice
st, b = jt.submit(app, jt.job_yaml("viaapp"))
pt.check(st == 202, "an application token may submit", (st, b))
st, b = app.get("/api/v2/virtual-clusters")
pt.check(st in (401, 403), "an application token may not list VCs", (st, b))

# ---- bad input leaves the store intact ------------------------------------------------
st, before = admin.get("/api/v2/jobs?withTotalCount=true&limit=1")
big = jt.job_yaml("big").replace("sleep 1", "x" * (5 * 1024 * 1024))
try:
    st, b = jt.submit(pt.Client(srv.url, alice_tok), big)
except OSError:  # the server answers 413 and closes before reading it all
    st, b = 413, "closed early"
pt.check(st == 413 and alice.get("/api/v2/jobs/alice~big")[0] == 404,
         "an oversize job document is 413 and not stored", (st, str(b)[:200]))
bomb = "protocolVersion: 2\nname: bomb\na: &a [x, x, x, x, x, x, x, x, x]\n"
for k in "bcdefghij":
    prev = chr(ord(k) - 1)
    bomb += "%s: &%s [*%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s, *%s]\n" % ((k, k) + (prev,) * 9)
st, b = jt.submit(alice, bomb)
pt.check(st in (400, 413), "a YAML alias bomb is refused", (st, str(b)[:200]))
st, b = jt.submit(alice, jt.job_yaml("a1").replace("name: a1", "name: ../../etc"))
pt.expect((st, b), 400, "a job name with a path is refused", "InvalidProtocolError")
st, b = alice.get("/api/v2/jobs/..%2F..%2Fetc%2Fpasswd")
pt.expect((st, b), 404, "path traversal in a job path is NoJobError")
st, b = alice.get("/api/v2/jobs/alice~a1%2F..")
pt.expect((st, b), 404, "an encoded slash in a job name is NoJobError")
st, b = alice.put("/api/v2/jobs/alice~a1/tag", {"value": 123})
pt.expect((st, b), 400, "a tag of the wrong type is 400")
st, b = alice.request("PUT", "/api/v2/jobs/alice~a1/executionType", raw="{not json",
                      content_type="application/json")
pt.expect((st, b), 400, "malformed JSON is 400")
st, b = alice.get("/api/v2/jobs/alice~a1/attempts/x")
pt.expect((st, b), 400, "a non-numeric attempt is 400")
st, b = alice.get("/api/v2/jobs/alice~a1/attempts/0/taskRoles/main/taskIndex/99/attempts")
pt.check(st == 404, "an unknown task is 404", (st, b))
st, b = alice.get("/api/v2/jobs?offset=abc")
pt.expect((st, b), 400, "a non-numeric offset is 400")
st, after = admin.get("/api/v2/jobs?withTotalCount=true&limit=1")
pt.check(before["totalCount"] == after["totalCount"], "bad input left the job store unchanged",
         (before["totalCount"], after["totalCount"]))

# ---- restart: kill -9, every acknowledged job and tag is back ------------------------
names = []
for i in range(20):
    st, b = jt.submit(bob, jt.job_yaml("r%d" % i))
    if st == 202:
        names.append("bob~r%d" % i)
bob.put("/api/v2/jobs/bob~r0/tag", {"value": "durable"})
srv.kill9()
srv.start()
admin = srv.client(srv.admin_token)
st, b = admin.get("/api/v2/jobs?username=bob&limit=1000")
got = {"bob~" + j["name"] for j in b} if st == 200 else set()
pt.check(set(names) <= got and len(names) == 20, "every acknowledged job survives kill -9",
         sorted(set(names) - got))
st, b = admin.get("/api/v2/jobs/bob~r0")
pt.check(st == 200 and "durable" in b.get("tags", []), "tags survive kill -9", b)
st, b = admin.get("/api/v2/jobs/alice~a4")
pt.check(st == 200 and b["jobStatus"]["state"] == "STOPPED" and "after-stop" in b["tags"],
         "finished job state and its later tag survive", b)
st, b = admin.get("/api/v2/jobs/alice~a3")
pt.expect((st, b), 404, "a deleted job stays deleted after restart")
st, b = jt.submit(alice, jt.job_yaml("a1"))
pt.check(st in (401, 409), "names stay unique after restart", (st, b))

pt.done()
