#!/usr/bin/env python3
"""test_templates_cli.py - `pai template ...` against a real `pai server`
(started with the repository's examples as templates, as `pai up` starts it)
and one `pai agent` (process runtime, simulated GPUs): list the featured
examples, search, show, submit one with --param and read the parameter in
the task's log, publish a file for a group, share it, the secrets rule,
publish from a job, edit, feature (admins only), delete, usage errors.
"""
import json
import os
import subprocess

import e2etest as e
import paitest as pt

srv = pt.start_server(extra_args=["--template-examples", os.path.join(pt.REPO, "examples")])
admin = srv.client(srv.admin_token)
agent = e.agent(srv, "tplcli1")
pt.check(len(e.wait_nodes(admin, 1)) >= 1, "the agent registers")
tok = {u: srv.create_user(u) for u in ("alice", "bob", "carol")}
tok["admin"] = srv.admin_token
pt.expect(admin.post("/api/v2/groups", {"groupname": "team", "description": "",
                                        "externalName": "team", "extension": {}}), 201, "group")
pt.expect(admin.put("/api/v2/users/bob/group", {"groupname": "team"}), 201, "bob joins team")
home = pt.tmpdir(prefix="pai-tplcli-")  # removed at exit


def pai(user, *args):
    env = dict(os.environ, HOME=home, PAI_CONFIG=os.path.join(home, "none.json"),
               PAI_SERVER=srv.url, PAI_TOKEN=tok[user], PAI_USER=user)
    p = subprocess.run([pt.PAI_BIN, "template"] + list(args), env=env, capture_output=True,
                       text=True, timeout=120, cwd=pt.REPO)
    return p.returncode, p.stdout, p.stderr


def write(name, text):
    path = os.path.join(home, name)
    with open(path, "w") as f:
        f.write(text)
    return path


rc, out, err = pai("alice", "list", "--featured")
pt.check(rc == 0 and "admin~hello-world" in out and "admin~sweep" in out and "ID" in out,
         "list --featured shows the examples as a table", out + err)
rc, out, err = pai("alice", "search", "parameter", "sweep")
pt.check(rc == 0 and "admin~sweep" in out and "admin~hello-world" not in out,
         "search: every word must match", out + err)
rc, out, err = pai("alice", "list", "--tag", "example", "--json")
pt.check(rc == 0 and json.loads(out)["totalCount"] == 6, "list --tag --json", out + err)
rc, out, err = pai("alice", "show", "admin~sweep", "--yaml")
pt.check(rc == 0 and out.startswith("#") and "parameters:" in out, "show --yaml prints the "
         "protocol as written", out + err)
rc, out, err = pai("alice", "show", "admin~hello-world")
pt.check(rc == 0 and "featured:    yes" in out and "visibility:  public" in out,
         "show prints the fields, then the protocol", out + err)

rc, out, err = pai("alice", "submit", "admin~hello-world", "--param", "greeting=bonjour",
                   "--name", "hello-fr", "--wait")
pt.check(rc == 0 and "submitted alice~hello-fr (from template admin~hello-world)" in out,
         "submit --param --name --wait", out + err)
logs = subprocess.run([pt.PAI_BIN, "logs", "hello-fr"], capture_output=True, text=True,
                      timeout=60, env=dict(os.environ, HOME=home, PAI_SERVER=srv.url,
                                           PAI_TOKEN=tok["alice"], PAI_USER="alice",
                                           PAI_CONFIG=os.path.join(home, "none.json")))
pt.check("bonjour from worker 0" in logs.stdout, "the task got the submitter's parameter",
         logs.stdout + logs.stderr)
rc, out, err = pai("alice", "submit", "admin~hello-world", "--param", "colour=red")
pt.check(rc == 1 and "parameters.colour" in err, "an undeclared parameter is refused", out + err)
rc, out, err = pai("alice", "show", "admin~hello-world", "--json")
pt.check(rc == 0 and json.loads(out)["useCount"] == 1, "the use count went up once", out)

JOB = open(os.path.join(pt.REPO, "examples", "cpu-job.yaml")).read()
mine = write("mine.yaml", JOB.replace("name: cpu-job", "name: primes"))
rc, out, err = pai("alice", "publish", mine, "--title", "Primes", "--tags", "cpu,Math",
                   "--group", "team")
pt.check(rc == 0 and "publish template alice~primes successfully" in out, "publish FILE for a "
         "group", out + err)
rc, out, err = pai("bob", "show", "alice~primes")
pt.check(rc == 0 and "visibility:  groups team" in out and "tags:        cpu,math" in out,
         "a member of the group sees it", out + err)
rc, out, err = pai("carol", "show", "alice~primes")
pt.check(rc == 1 and ("NoTemplateError" in err + out or "not found" in err),
         "another user does not", out + err)
rc, out, err = pai("bob", "share", "alice~primes", "--public")
pt.check(rc == 1, "a member may not share it", out + err)
rc, out, err = pai("alice", "share", "primes", "--public")
pt.check(rc == 0, "the owner makes it public", out + err)
rc, out, err = pai("carol", "search", "primes")
pt.check(rc == 0 and "alice~primes" in out, "now everyone finds it", out + err)
rc, out, err = pai("alice", "edit", "primes", "--description", "counts primes", "--image", "x:1")
rc2, out2, _ = pai("alice", "show", "primes", "--json")
pt.check(rc == 0 and json.loads(out2)["description"] == "counts primes" and
         json.loads(out2)["image"] == "x:1", "edit changes the description and image", out + err)
rc, out, err = pai("alice", "edit", "primes", "--file", write("bad.yaml", "name: [\n"))
pt.check(rc == 2, "edit --file checks the file locally first", out + err)

secret = write("secret.yaml", open(os.path.join(pt.REPO, "examples", "secrets.yaml")).read())
rc, out, err = pai("alice", "publish", secret)
pt.check(rc == 1 and "secrets section" in err and "--strip-secrets" in err,
         "a file with secrets is refused, saying how to go on", out + err)
rc, out, err = pai("alice", "publish", secret, "--strip-secrets")
pt.check(rc == 0 and "warning: removed the secrets section" in err, "--strip-secrets "
         "publishes without them and warns", out + err)
rc, out, err = pai("alice", "publish", "--from-job", "hello-fr", "--name", "fromjob",
                   "--public")
rc2, out2, _ = pai("carol", "show", "alice~fromjob", "--yaml")
pt.check(rc == 0 and "bonjour" in out2, "publish --from-job takes the job's config", out + err)

rc, out, err = pai("alice", "feature", "alice~primes")
pt.check(rc == 1, "a user may not feature a template", out + err)
rc, out, err = pai("admin", "feature", "alice~primes")
rc2, out2, _ = pai("carol", "list", "--featured")
pt.check(rc == 0 and "alice~primes" in out2, "an admin features it", out + err)
rc, out, err = pai("admin", "unfeature", "alice~primes")
pt.check(rc == 0, "and unfeatures it", out + err)
rc, out, err = pai("alice", "list", "--mine", "--sort", "title")
pt.check(rc == 0 and "alice~primes" in out and "admin~" not in out, "list --mine", out + err)
rc, out, err = pai("carol", "delete", "alice~primes")
pt.check(rc == 1, "another user may not delete it", out + err)
rc, out, err = pai("alice", "delete", "primes")
rc2, _, _ = pai("alice", "show", "primes")
pt.check(rc == 0 and rc2 == 1, "the owner deletes it", out + err)

for args, why in ((["frob"], "an unknown action"), (["share", "x"], "share without a visibility"),
                  (["publish"], "publish without a file"), (["show"], "show without an id"),
                  (["share", "x", "--public", "--private"], "two visibilities"),
                  (["submit", "x", "--param", "novalue"], "a --param without =")):
    rc, out, err = pai("alice", *args)
    pt.check(rc == 2, "usage error: %s" % why, out + err)
agent.stop()
pt.done()
