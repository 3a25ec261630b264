#!/usr/bin/env python3
"""test_templates.py - job templates (/api/v2/templates, docs/api.md
"Templates") against a real `pai server`:

  - the permission matrix: owner, group member, other user, admin and
    anonymous x private / group / public templates x read, search, submit,
    edit, delete (and featured, admins only);
  - search: keyword over title, description and tags, tag filter, sort by
    use count or recency, the tag counts;
  - use counts: each job submitted from a template counts, a refused one
    does not;
  - submit with parameters: the job's config has the submitter's values and
    records the template (extras.template); undeclared parameters, bad
    values and names are refused;
  - no secrets: a secrets section or a written-out registry password is
    refused, or stripped with a warning;
  - everything survives a restart of the server (the store);
  - --template-examples publishes the examples once, public and featured.
"""
import os
import threading
import uuid

import paitest as pt

srv = pt.start_server()
admin = srv.client(srv.admin_token)
OWNER, MEMBER, OTHER, GROUP = "tplowner", "tplmember", "tplother", "tplteam"
tok = {"owner": srv.create_user(OWNER), "member": srv.create_user(MEMBER),
       "other": srv.create_user(OTHER), "admin": srv.admin_token, "anonymous": None}
pt.expect(admin.post("/api/v2/groups", {"groupname": GROUP, "description": "a team",
                                        "externalName": GROUP, "extension": {}}),
          201, "a group for sharing")
pt.expect(admin.put("/api/v2/users/%s/group" % MEMBER, {"groupname": GROUP}), 201,
          "the member joins the group")
c = {role: srv.client(t) for role, t in tok.items()}
owner = c["owner"]
ROLES = ("owner", "member", "other", "admin", "anonymous")
WORD = "zq" + uuid.uuid4().hex[:6]  # a search word only these templates have


def protocol(name, extra=""):
    return ("protocolVersion: 2\nname: " + name + "\ntype: job\n"
            "parameters:\n  lr: 0.1\n  epochs: 3\n"
            "prerequisites:\n  - {type: dockerimage, name: img, uri: 'busybox:1'}\n"
            "taskRoles:\n  main:\n    instances: 1\n    dockerImage: img\n"
            "    resourcePerInstance: {cpu: 1, memoryMB: 128, gpu: 0}\n"
            "    commands:\n      - echo lr=<% $parameters.lr %> epochs=<% $parameters.epochs %>\n"
            + extra)


def publish(client, name, vis, **kw):
    body = dict({"name": name, "title": "Train %s" % name, "protocol": protocol(name),
                 "description": "%s trains a model" % WORD, "tags": ["vision", vis],
                 "visibility": vis}, **kw)
    if vis == "groups":
        body.setdefault("groups", [GROUP])
    return client.post("/api/v2/templates", body)


VIS = ("private", "groups", "public")
ID = {}
for vis in VIS:
    st, b = publish(owner, "t" + vis, vis)
    pt.check(st == 201 and b.get("id") == "%s~t%s" % (OWNER, vis),
             "owner publishes a %s template" % vis, (st, b))
    ID[vis] = "%s~t%s" % (OWNER, vis)

# ---- the permission matrix -------------------------------------------------------------
SEES = {"owner": set(VIS), "admin": set(VIS), "member": {"groups", "public"},
        "other": {"public"}, "anonymous": set()}
CHANGES = {"owner", "admin"}


def want_read(role, vis):
    return 401 if role == "anonymous" else 200 if vis in SEES[role] else 404


def want_change(role, vis, ok):
    if role == "anonymous":
        return 401
    if vis not in SEES[role]:
        return 404
    return ok if role in CHANGES else 403


n = 0
for role in ROLES:
    st, b = c[role].get("/api/v2/templates?keyword=%s&limit=1000" % WORD)
    found = {i["id"] for i in b.get("items", [])} if st == 200 else set()
    pt.check(st == (401 if role == "anonymous" else 200) and
             found == {ID[v] for v in SEES[role]},
             "matrix: %s searches and finds %s" % (role, sorted(SEES[role]) or "nothing"),
             (st, found))
    for vis in VIS:
        tid = ID[vis]
        st, b = c[role].get("/api/v2/templates/" + tid)
        pt.check(st == want_read(role, vis), "matrix: %s reads a %s template -> %d"
                 % (role, vis, want_read(role, vis)), (st, b))
        n += 1
        want = 202 if want_read(role, vis) == 200 else want_read(role, vis)
        st, b = c[role].post("/api/v2/templates/%s/submit" % tid, {"name": "mx%d" % n})
        pt.check(st == want, "matrix: %s submits from a %s template -> %d" % (role, vis, want),
                 (st, b))
        want = want_change(role, vis, 200)
        st, b = c[role].put("/api/v2/templates/" + tid, {"description": "%s by %s" % (WORD, role)})
        pt.check(st == want, "matrix: %s edits a %s template -> %d" % (role, vis, want), (st, b))
        # delete: a fresh copy each time
        name = "del%s%s" % (role, vis)
        pt.expect(publish(owner, name, vis), 201, "publish %s for the delete row" % name)
        st, b = c[role].delete("/api/v2/templates/%s~%s" % (OWNER, name))
        pt.check(st == want, "matrix: %s deletes a %s template -> %d" % (role, vis, want), (st, b))
        if want != 200:
            pt.expect(owner.delete("/api/v2/templates/%s~%s" % (OWNER, name)), 200,
                      "the owner deletes %s" % name)
        want = {"owner": 403, "member": 403, "other": 403, "anonymous": 401}.get(
            role, 200 if vis == "public" else 400)
        st, b = c[role].put("/api/v2/templates/%s/featured" % tid, {"value": True})
        pt.check(st == want, "matrix: %s features a %s template -> %d" % (role, vis, want),
                 (st, b))

st, b = c["other"].get("/api/v2/templates/%s" % ID["private"])
pt.check(st == 404 and b.get("code") == "NoTemplateError",
         "a template one may not see is answered NoTemplateError", b)
st, b = c["member"].put("/api/v2/templates/" + ID["groups"], {"title": "x"})
pt.check(st == 403 and b.get("code") == "ForbiddenUserError",
         "a group member may not edit: ForbiddenUserError", b)
st, b = srv.client(tok["owner"]).get("/api/v2/templates/" + ID["public"])
pt.check(st == 200 and b.get("canEdit") is True and "epochs" in b.get("protocol", ""),
         "the detail has the protocol and canEdit for the owner", b)
st, b = c["other"].get("/api/v2/templates/" + ID["public"])
pt.check(st == 200 and b.get("canEdit") is False, "canEdit is false for another user", b)

# ---- featured --------------------------------------------------------------------------
st, b = owner.get("/api/v2/templates?featured=true&keyword=" + WORD)
pt.check(st == 200 and [i["id"] for i in b["items"]] == [ID["public"]],
         "featured=true lists the featured public template", b)
pt.expect(owner.put("/api/v2/templates/" + ID["public"], {"visibility": "private"}), 200,
          "the owner makes the featured template private")
st, b = admin.get("/api/v2/templates/" + ID["public"])
pt.check(st == 200 and b["featured"] is False, "a template that is not public is not featured", b)
pt.expect(owner.put("/api/v2/templates/" + ID["public"], {"visibility": "public"}), 200,
          "and public again")
pt.expect(admin.put("/api/v2/templates/%s/featured" % ID["public"], {"value": True}), 200,
          "an admin features it again")
pt.expect(admin.put("/api/v2/templates/%s/featured" % ID["public"], {"value": "yes"}), 400,
          "featured wants a boolean")

# ---- sharing rules -------------------------------------------------------------------
pt.expect(owner.put("/api/v2/templates/" + ID["private"], {"visibility": "groups",
                                                           "groups": ["nosuchgroup"]}),
          400, "sharing with an unknown group is refused")
pt.expect(owner.put("/api/v2/templates/" + ID["private"], {"visibility": "groups", "groups": []}),
          400, "sharing with no group is refused")
pt.expect(owner.put("/api/v2/templates/" + ID["private"], {"visibility": "everyone"}), 400,
          "an unknown visibility is refused")
pt.expect(owner.put("/api/v2/templates/" + ID["private"], {"name": "renamed"}), 400,
          "a template's name cannot change")

# ---- submit with parameters --------------------------------------------------------
st, b = c["other"].post("/api/v2/templates/%s/submit" % ID["public"],
                        {"name": "from-tpl", "parameters": {"lr": "0.003", "epochs": 7}})
pt.check(st == 202 and b.get("job") == OTHER + "~from-tpl" and b.get("template") == ID["public"],
         "another user submits from a public template with parameters", (st, b))
st, cfg = c["other"].request("GET", "/api/v2/jobs/%s~from-tpl/config" % OTHER)
text = cfg if isinstance(cfg, str) else str(cfg)
pt.check(st == 200 and "0.003" in text and "epochs: 7" in text, "the job has the submitter's "
         "parameters", text)
pt.check("template:" in text and ID["public"] in text,
         "the job records the template it came from (extras.template)", text)
for body, why in (({"parameters": {"nope": 1}}, "an undeclared parameter"),
                  ({"parameters": {"lr": [1, 2]}}, "a list as a parameter value"),
                  ({"parameters": "lr=1"}, "parameters that are not an object"),
                  ({"name": "bad/name"}, "a bad job name")):
    st, b = owner.post("/api/v2/templates/%s/submit" % ID["public"], body)
    pt.check(st == 400 and b.get("code") == "InvalidParametersError", "submit refuses " + why,
             (st, b))
st, b = c["other"].post("/api/v2/templates/%s/submit" % ID["public"], {"name": "from-tpl"})
pt.check(st == 409 and b.get("code") == "ConflictJobError", "a job name taken is 409", (st, b))
st, b = owner.post("/api/v2/templates/%s/submit" % ID["public"],
                   {"name": "vc-x", "virtualCluster": "nosuchvc"})
pt.check(st in (400, 403, 404), "a VC the submitter may not use is refused", (st, b))

# ---- use counts and sorting --------------------------------------------------------
st, b = owner.get("/api/v2/templates/" + ID["public"])
uses_public = b.get("useCount")
# public: 5 matrix submits (everyone but anonymous) + from-tpl
pt.check(uses_public == 5, "the use count counts accepted submissions only (5)", b)
st, b = owner.get("/api/v2/templates/" + ID["groups"])
pt.check(b.get("useCount") == 3, "a group template used by owner, member and admin: 3", b)
st, b = owner.get("/api/v2/templates?sort=uses&keyword=" + WORD)
pt.check(st == 200 and [i["id"] for i in b["items"]] == [ID["public"], ID["groups"], ID["private"]],
         "sort=uses puts the most used first", [(i["id"], i["useCount"]) for i in b.get("items", [])])
pt.expect(owner.put("/api/v2/templates/" + ID["private"], {"title": "Train private (new)"}), 200,
          "edit the private template")
st, b = owner.get("/api/v2/templates?sort=recent&keyword=" + WORD)
pt.check(st == 200 and b["items"][0]["id"] == ID["private"],
         "sort=recent puts the last changed first", [i["id"] for i in b.get("items", [])])
pt.expect(owner.get("/api/v2/templates?sort=size"), 400, "an unknown sort is refused")

# ---- concurrent submissions: every one counts --------------------------------------
before = owner.get("/api/v2/templates/" + ID["public"])[1].get("useCount")
answers = []


def burst(k):
    cl = srv.client(tok["other" if k % 2 else "member"])
    answers.append(cl.post("/api/v2/templates/%s/submit" % ID["public"], {"name": "burst%d" % k})[0])


threads = [threading.Thread(target=burst, args=(k,)) for k in range(16)]
for th in threads:
    th.start()
for th in threads:
    th.join()
st, b = owner.get("/api/v2/templates/" + ID["public"])
pt.check(answers.count(202) == 16 and b.get("useCount") == before + 16,
         "16 concurrent submissions from one template: 16 jobs, the use count up by 16",
         (answers, before, b.get("useCount")))
uses_public = b.get("useCount")

# ---- search --------------------------------------------------------------------------
pt.expect(owner.put("/api/v2/templates/" + ID["groups"], {"tags": "NLP, Transformers ,nlp"}),
          200, "tags as one comma-separated string")
st, b = owner.get("/api/v2/templates/" + ID["groups"])
pt.check(b.get("tags") == ["nlp", "transformers"], "tags are trimmed, lowercased, unique",
         b.get("tags"))
st, b = owner.get("/api/v2/templates?tag=nlp")
pt.check(st == 200 and [i["id"] for i in b["items"]] == [ID["groups"]], "filter by tag", b)
st, b = owner.get("/api/v2/templates?keyword=%s+transformers" % WORD)
pt.check(st == 200 and [i["id"] for i in b["items"]] == [ID["groups"]],
         "every word of the keyword must match (title, description or tags)", b)
st, b = owner.get("/api/v2/templates?keyword=TRAIN%20PRIVATE")
pt.check(st == 200 and ID["private"] in [i["id"] for i in b["items"]],
         "the keyword matches titles case-insensitively", b)
st, b = owner.get("/api/v2/templates?keyword=" + WORD)
pt.check(st == 200 and b.get("tags", {}).get("vision") == 2 and b.get("totalCount") == 3,
         "the answer counts the tags of what it found", b.get("tags"))
st, b = owner.get("/api/v2/templates?keyword=%s&limit=1&offset=1&sort=title" % WORD)
pt.check(st == 200 and b["totalCount"] == 3 and len(b["items"]) == 1 and b["offset"] == 1,
         "offset and limit page the answer", b)
pt.expect(owner.get("/api/v2/templates?tag=bad%20tag!"), 400, "a bad tag is refused")
pt.expect(owner.get("/api/v2/templates?limit=0"), 400, "limit 0 is refused")

# ---- publishing rules ----------------------------------------------------------------
SECRETS = "secrets:\n  token: s3cr3t-value\n"
st, b = owner.post("/api/v2/templates", {"title": "s", "protocol": protocol("withsecret", SECRETS)})
pt.check(st == 400 and "secrets" in b.get("message", "") and "stripSecrets" in b["message"],
         "a secrets section is refused, saying how to strip it", (st, b))
st, b = owner.post("/api/v2/templates", {"title": "s", "stripSecrets": True,
                                         "protocol": protocol("withsecret", SECRETS)})
pt.check(st == 201 and any("secrets" in w for w in b.get("warnings", [])),
         "stripSecrets publishes without them and says so", (st, b))
st, b = owner.get("/api/v2/templates/%s~withsecret" % OWNER)
pt.check(st == 200 and "s3cr3t" not in b.get("protocol", "") and "secrets" not in b["protocol"],
         "the stored protocol has no secret", b.get("protocol"))
AUTH = protocol("withauth").replace("uri: 'busybox:1'}",
                                    "uri: 'busybox:1', auth: {username: u, password: hunter2}}")
st, b = owner.post("/api/v2/templates", {"protocol": AUTH})
pt.check(st == 400 and "password" in b.get("message", ""),
         "a written-out registry password is refused", (st, b))
REF = AUTH.replace("hunter2", "'<% $secrets.pw %>'")
pt.expect(owner.post("/api/v2/templates", {"protocol": REF}), 201,
          "a password that refers to a secret is no secret")
st, b = owner.post("/api/v2/templates", {"protocol": "protocolVersion: 2\nname: x\n"})
pt.check(st == 400 and b.get("code") == "InvalidProtocolError" and b.get("errors"),
         "an invalid job is refused as a submission is, with its problems", (st, b))
pt.expect(owner.post("/api/v2/templates", {"title": "no protocol"}), 400, "protocol is required")
pt.expect(owner.post("/api/v2/templates", {"protocol": protocol("big") + "#" * 300000}), 413,
          "a protocol over 256 KiB is refused")
st, b = publish(owner, "tpublic", "public")
pt.check(st == 409 and b.get("code") == "ConflictTemplateError", "the same name twice is 409",
         (st, b))
pt.expect(publish(c["other"], "tpublic", "public"), 201,
          "another user may use the same name (ids are owner~name)")
pt.expect(owner.post("/api/v2/templates", {"protocol": protocol("t2"), "title": "x" * 201}), 400,
          "a title over 200 characters is refused")
pt.expect(owner.post("/api/v2/templates", {"protocol": protocol("t3"), "tags": ["a"] * 3 +
                                           ["t%d" % i for i in range(20)]}),
          400, "more than 16 tags are refused")
pt.expect(owner.post("/api/v2/templates", {"protocol": protocol("t4"), "visibility": "groups"}),
          400, "visibility groups without groups is refused")
st, b = owner.post("/api/v2/templates", {"protocol": protocol("t5").replace(
    "type: job\n", "type: job\ndescription: from the protocol\n")})
st2, b2 = owner.get("/api/v2/templates/%s~t5" % OWNER)
pt.check(st == 201 and b2.get("visibility") == "private" and b2.get("title") == "t5" and
         b2.get("image") == "busybox:1" and b2.get("jobName") == "t5" and
         b2.get("parameters") == {"lr": 0.1, "epochs": 3} and
         b2.get("description") == "from the protocol",
         "defaults: private, the name as title, the image, parameters and description from the "
         "protocol", b2)
pt.expect(owner.request("POST", "/api/v2/templates", raw="{", content_type="application/json"),
          400, "a body that is not JSON is refused")

# ---- restart: the store keeps everything ------------------------------------------
srv.restart()
owner = srv.client(tok["owner"])
st, b = owner.get("/api/v2/templates/" + ID["public"])
pt.check(st == 200 and b.get("useCount") == uses_public and b.get("featured") is True and
         "epochs" in b.get("protocol", ""),
         "after a restart the template, its use count and featured mark are kept", b)
st, b = srv.client(tok["member"]).get("/api/v2/templates/" + ID["groups"])
pt.check(st == 200 and b.get("tags") == ["nlp", "transformers"], "and its sharing and tags", b)

# ---- the examples, published once ------------------------------------------------------
# (with PAI_STORE set, tests/suites/store_pg.sh, the second server shares the
# first one's database: the first is stopped and the examples told apart by
# their tag)
srv.stop()
EXAMPLES = os.path.join(pt.REPO, "examples")
ex = pt.start_server(extra_args=["--template-examples", EXAMPLES])
ea = ex.client(ex.admin_token)
FEATURED = "/api/v2/templates?featured=true&tag=example&owner=admin"
st, b = ea.get(FEATURED + "&sort=title")
ids = [i["id"] for i in b.get("items", [])] if st == 200 else []
want = ["admin~" + n for n in ("cpu-job", "distributed", "hello-world", "podman-busybox",
                               "sim-train", "sweep")]
pt.check(sorted(ids) == sorted(want), "--template-examples publishes the job examples, "
         "public and featured (not secrets.yaml, not the cluster config)", ids)
hello = next((i for i in b.get("items", []) if i["id"] == "admin~hello-world"), {})
pt.check("smallest useful job" in hello.get("description", "") and "pai submit" not in
         hello.get("description", "") and "example" in hello.get("tags", []),
         "an example's description is its leading comment", hello)
newbie = ex.client(ex.create_user("newbie"))
st, b = newbie.get(FEATURED)
pt.check(st == 200 and b.get("totalCount") == len(want), "a new user sees the featured examples",
         b.get("totalCount"))
st, b = newbie.post("/api/v2/templates/admin~hello-world/submit", {"parameters": {"greeting": "hey"}})
pt.check(st == 202 and b.get("job") == "newbie~hello-world", "a new user submits an example", b)
pt.expect(ea.delete("/api/v2/templates/admin~sweep"), 200, "an admin deletes an example")
ex.restart()
st, b = ex.client(ex.admin_token).get(FEATURED)
pt.check(st == 200 and b.get("totalCount") == len(want) - 1,
         "the examples are published once: a deleted one does not come back", b.get("totalCount"))
pt.done()
