#!/usr/bin/env python3
"""test_api_errors.py - the REST API's error replies against every error
example of OpenPAI's REST API spec (tests/data/reference/openpai-rest-api-v2.yaml).

The spec is read here (no PyYAML: `walk` below follows a block-style YAML
document key by key, which is all this spec uses).  It yields:
  - USES: each (method, path, status >= 400) of `paths` with its response,
    a $ref to components/responses or inline examples;
  - COMPONENTS: each components/responses entry with its examples
    ({code, message}).
Every use and every component must have a row below, or the test fails: a
new example in the spec (or a parser slip) cannot pass unnoticed.  A row
triggers the case against a real server and compares the status, the code
and the message, whose {placeholders} are filled with the case's names.

Rows that answer something else than the spec's example say why, with the
source of the answer (OpenPAI's rest-server, where its server and its spec
disagree); rows pai cannot produce say why (NA).  Both are listed in
docs/api.md "Errors".
"""
import os
import re

import jobstest as jt
import paitest as pt

SPEC = os.path.join(pt.REPO, "tests", "data", "reference", "openpai-rest-api-v2.yaml")


# ---- the spec ----------------------------------------------------------------

def _scalar(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "\"'":
        return v[1:-1]
    return v


def walk(text):
    """Yield (key path, scalar) for each `key: value` line of a block-style
    YAML document; block scalars (| and >) are skipped, a `- ` item counts
    as one more level of indentation."""
    stack, block = [], None
    for raw in text.split("\n"):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        ind = len(raw) - len(raw.lstrip(" "))
        if block is not None:
            if ind > block:
                continue
            block = None
        line = raw.strip()
        if line.startswith("- "):
            ind, line = ind + 2, line[2:]
        m = re.match(r"^(\"[^\"]*\"|'[^']*'|[^:]+?):(?:\s+(.*))?$", line)
        if not m:
            continue
        key, val = _scalar(m.group(1)), m.group(2)
        while stack and stack[-1][0] >= ind:
            stack.pop()
        stack.append((ind, key))
        if val is not None and val.strip() in ("|", ">", "|-", ">-"):
            block = ind
        elif val is not None and val.strip():
            yield tuple(k for _, k in stack), _scalar(val)


def read_spec(path):
    uses, components = {}, {}
    with open(path) as f:
        text = f.read()
    for kp, v in walk(text):
        if kp[:2] == ("components", "responses") and len(kp) == 9 and kp[7] == "value":
            components.setdefault(kp[2], {}).setdefault(kp[6], {})[kp[8]] = v
        if kp[0] != "paths" or len(kp) < 6 or kp[3] != "responses" or not kp[4][:1] in "45":
            continue
        use = (kp[2].upper(), kp[1], int(kp[4]))
        if kp[5] == "$ref":
            uses[use] = ("ref", v.rsplit("/", 1)[1])
        elif len(kp) == 11 and kp[9] == "value":
            uses.setdefault(use, ("inline", {}))[1].setdefault(kp[8], {})[kp[10]] = v
    return uses, components


USES, COMPONENTS = read_spec(SPEC)
pt.check(len(USES) >= 90 and len(COMPONENTS) >= 18,
         "the spec's error examples are read (%d uses, %d components)"
         % (len(USES), len(COMPONENTS)), (len(USES), sorted(COMPONENTS)))

# ---- a server with VCs, storages, users, a job ------------------------------

d = pt.tmpdir("pai-errors-")
hived = os.path.join(d, "hived.yaml")
with open(hived, "w") as f:
    f.write("""
physicalCluster:
  cellTypes:
    GPU-NODE: {childCellType: GPU, childCellNumber: 4, isNodeLevel: true}
  physicalCells:
  - {cellType: GPU-NODE, cellAddress: n1}
  - {cellType: GPU-NODE, cellAddress: n2}
virtualClusters:
  default:
    virtualCells: [{cellType: GPU-NODE, cellNumber: 1}]
  vc1:
    virtualCells: [{cellType: GPU-NODE, cellNumber: 1}]
""")
config = os.path.join(d, "server.yaml")
with open(config, "w") as f:
    f.write("""
storages:
  - name: shared
    type: nfs
    default: true
    data: {server: 10.0.0.1, path: /data}
  - name: secret
    type: nfs
    data: {server: 10.0.0.2, path: /secret}
""")
srv = pt.start_server(extra_args=["--config", config, "--hived-config", hived])
anon = srv.client(None)
admin = srv.client(srv.admin_token)
alice = srv.client(srv.create_user("alice"))
st, b = alice.post("/api/v2/tokens/application")
app = srv.client(b.get("token") if st == 200 else None)
pt.check(st == 200, "an application token for alice", (st, b))
st, b = jt.submit(alice, jt.job_yaml("j1"))
pt.check(st == 202, "alice's job j1 is submitted", (st, b))
st, b = admin.post("/api/v2/groups", {"groupname": "team"})
pt.check(st == 201, "group team is created", (st, b))

JOB = "/api/v2/jobs/alice~j1"
TASK = JOB + "/attempts/0/taskRoles/nope/taskIndex/0/attempts"
NAMES = {"user": "alice", "group": "team", "vc": "default", "storage": "shared", "job": "j1",
         "token": "ffffffffffffffff", "jobAttemptId": "0", "attemptIndex": "0",
         "taskRoleName": "main", "taskIndex": "0", "taskAttemptId": "0"}


def fill(path, **names):
    """The spec's path with its {placeholders} filled (default: NAMES)."""
    return re.sub(r"\{(\w+)\}", lambda m: names.get(m.group(1), NAMES[m.group(1)]), path)


def call(client, method, path, body=None):
    return client.request(method, path, body)


# ---- the rows ---------------------------------------------------------------
#
# A row of CASES (by spec use) or COMPONENT_CASES (by component name):
#   run:     () -> (status, body), the case the example describes
#   example: which example of the component (default: the only one)
#   subst:   the placeholders of its message
#   expect:  (status, code, message) answered instead of the example's, with
#   why:     the reason and its source
#   na:      why pai cannot produce the case (nothing is run)

NA_UNKNOWN = ("an internal failure (the store unavailable, out of memory...): not triggerable "
              "from outside; pai answers UnknownError with the failure as the message")
NON_ADMIN = "ForbiddenUserError"
APPS = "ForbiddenTokenError"
OPENPAI_PARAMS = ("OpenPAI answers its validator's own message (rest-server "
                  "middlewares/parameter.js passes Joi's err.message), not this fixed text; "
                  "pai's message names the parameter")

CASES = {
    ("DELETE", "/api/v2/tokens/{token}", 403): dict(
        example=APPS, run=lambda: app.delete("/api/v2/tokens/ffffffffffffffff")),
    ("DELETE", "/api/v2/authn/basic/logout", 403): dict(
        example=APPS, run=lambda: app.delete("/api/v2/authn/basic/logout")),
    ("POST", "/api/v2/authn/basic/login", 404): dict(
        run=lambda: anon.post("/api/v2/authn/basic/login",
                              {"username": "ghost", "password": "whatever1"}),
        expect=(400, "IncorrectPasswordError", "Password is incorrect."),
        why="an unknown name is answered as a wrong password, so that replies do not tell "
            "which names exist (OpenPAI's NoUserError does; docs/api.md, docs/security.md)"),
    ("POST", "/api/v2/users", 403): dict(
        example=NON_ADMIN,
        run=lambda: alice.post("/api/v2/users", {"username": "x1", "password": "pw-123456"})),
    ("POST", "/api/v2/users", 409): dict(
        run=lambda: admin.post("/api/v2/users", {"username": "alice", "password": "pw-123456"}),
        subst={"user": "alice"}),
    ("PUT", "/api/v2/users", 403): dict(
        example=NON_ADMIN,
        run=lambda: alice.put("/api/v2/users", {"data": {"username": "alice"}, "patch": True})),
    ("PUT", "/api/v2/users", 404): dict(
        run=lambda: admin.put("/api/v2/users", {"data": {"username": "ghost"}, "patch": True}),
        subst={"user": "ghost"}),
    ("PUT", "/api/v2/users/me", 403): dict(
        example=APPS,
        run=lambda: app.put("/api/v2/users/me", {"data": {"email": "a@b.c"}, "patch": True})),
    ("PUT", "/api/v2/users/me", 404): dict(
        na="a token never outlives its user (deleting a user revokes its tokens), so "
           "/users/me always finds its caller"),
    ("GET", "/api/v2/users/{user}", 404): dict(
        run=lambda: admin.get("/api/v2/users/ghost"), subst={"user": "ghost"}),
    ("DELETE", "/api/v2/users/{user}", 403): dict(
        example=NON_ADMIN, run=lambda: alice.delete("/api/v2/users/alice")),
    ("DELETE", "/api/v2/users/{user}", 404): dict(
        run=lambda: admin.delete("/api/v2/users/ghost"), subst={"user": "ghost"}),
    ("PUT", "/api/v2/users/{user}/group/", 403): dict(
        example=NON_ADMIN,
        run=lambda: alice.put("/api/v2/users/alice/group/", {"groupname": "team"})),
    ("PUT", "/api/v2/users/{user}/group/", 404): dict(
        run=lambda: admin.put("/api/v2/users/ghost/group/", {"groupname": "team"}),
        subst={"user": "ghost"}),
    ("DELETE", "/api/v2/users/{user}/group/", 403): dict(
        example=NON_ADMIN,
        run=lambda: alice.delete("/api/v2/users/alice/group/", {"groupname": "team"})),
    ("DELETE", "/api/v2/users/{user}/group/", 404): dict(
        run=lambda: admin.delete("/api/v2/users/ghost/group/", {"groupname": "team"}),
        subst={"user": "ghost"}),
    ("PUT", "/api/v2/users/{user}/grouplist/", 403): dict(
        example=NON_ADMIN,
        run=lambda: alice.put("/api/v2/users/alice/grouplist/", {"grouplist": ["team"]})),
    ("PUT", "/api/v2/users/{user}/grouplist/", 404): dict(
        run=lambda: admin.put("/api/v2/users/ghost/grouplist/", {"grouplist": ["team"]}),
        subst={"user": "ghost"}),
    ("POST", "/api/v2/groups", 403): dict(
        example=NON_ADMIN, run=lambda: alice.post("/api/v2/groups", {"groupname": "g2"})),
    ("PUT", "/api/v2/groups", 403): dict(
        example=NON_ADMIN,
        run=lambda: alice.put("/api/v2/groups", {"data": {"groupname": "team"}, "patch": True})),
    ("PUT", "/api/v2/groups", 404): dict(
        run=lambda: admin.put("/api/v2/groups", {"data": {"groupname": "ghost"}, "patch": True}),
        subst={"groupname": "ghost"}),
    ("GET", "/api/v2/groups/{group}", 404): dict(
        run=lambda: admin.get("/api/v2/groups/ghost"), subst={"groupname": "ghost"}),
    ("DELETE", "/api/v2/groups/{group}", 403): dict(
        example=NON_ADMIN, run=lambda: alice.delete("/api/v2/groups/team")),
    ("GET", "/api/v2/groups/{group}/userlist", 403): dict(
        example=NON_ADMIN, run=lambda: alice.get("/api/v2/groups/team/userlist")),
    ("GET", "/api/v2/virtual-clusters/{vc}", 404): dict(
        run=lambda: alice.get("/api/v2/virtual-clusters/ghost"), subst={"vc": "ghost"}),
    ("GET", "/api/v2/storages/{storage}", 403): dict(
        run=lambda: alice.get("/api/v2/storages/secret"),
        subst={"user": "alice", "storage": "secret"}),
    ("GET", "/api/v2/storages/{storage}", 404): dict(
        run=lambda: alice.get("/api/v2/storages/ghost"), subst={"storage": "ghost"}),
    ("POST", "/api/v2/jobs", 400): dict(
        run=lambda: jt.submit(alice, jt.job_yaml("j2", vc="ghost")), subst={"vc": "ghost"}),
    ("POST", "/api/v2/jobs", 403): dict(
        run=lambda: jt.submit(alice, jt.job_yaml("j3", vc="vc1")),
        expect=(403, "ForbiddenUserError", "User alice is not allowed to do operation in vc1"),
        why="the case is a VC the user may not use; OpenPAI's server answers this text "
            "(rest-server models/v2/job/k8s.js), neither of the spec's two examples"),
    ("POST", "/api/v2/jobs", 409): dict(
        run=lambda: jt.submit(alice, jt.job_yaml("j1")), subst={"job": "alice~j1"}),
    ("GET", "/api/v2/jobs/{user}~{job}", 404): dict(
        run=lambda: alice.get("/api/v2/jobs/alice~ghost"), subst={"job": "alice~ghost"}),
    ("GET", "/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}", 404): dict(
        run=lambda: alice.get("/api/v2/jobs/alice~ghost/attempts/0"),
        subst={"job": "alice~ghost"}),
    ("PUT", "/api/v2/jobs/{user}~{job}/executionType", 400): dict(
        run=lambda: alice.put(JOB + "/executionType", {"value": "PAUSE"}),
        expect=(400, "InvalidParametersError", "value must be START or STOP"),
        why=OPENPAI_PARAMS),
    ("PUT", "/api/v2/jobs/{user}~{job}/executionType", 404): dict(
        run=lambda: alice.put("/api/v2/jobs/alice~ghost/executionType", {"value": "STOP"}),
        subst={"job": "alice~ghost"}),
    ("PUT", "/api/v2/jobs/{user}~{job}/tag", 400): dict(
        run=lambda: alice.put(JOB + "/tag", {"value": ""}),
        expect=(400, "InvalidParametersError", "value must be a tag of 1 to 255 characters"),
        why=OPENPAI_PARAMS),
    ("PUT", "/api/v2/jobs/{user}~{job}/tag", 404): dict(
        run=lambda: alice.put("/api/v2/jobs/alice~ghost/tag", {"value": "t"}),
        subst={"job": "alice~ghost"}),
    ("DELETE", "/api/v2/jobs/{user}~{job}/tag", 400): dict(
        run=lambda: alice.delete(JOB + "/tag", {"value": ""}),
        expect=(400, "InvalidParametersError", "value must be a tag of 1 to 255 characters"),
        why=OPENPAI_PARAMS),
    ("GET", "/api/v2/jobs/{user}~{job}/events", 404): dict(
        run=lambda: alice.get("/api/v2/jobs/alice~ghost/events"), subst={"job": "alice~ghost"}),
    ("GET", "/api/v2/jobs/{user}~{job}/job-attempts", 404): dict(
        run=lambda: alice.get("/api/v2/jobs/alice~ghost/job-attempts"),
        subst={"job": "alice~ghost"}),
    ("GET", "/api/v2/jobs/{user}~{job}/job-attempts/{attemptIndex}", 404): dict(
        run=lambda: alice.get("/api/v2/jobs/alice~ghost/job-attempts/0"),
        subst={"job": "alice~ghost"}),
    ("GET", "/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/"
            "taskIndex/{taskIndex}/attempts", 404): dict(
        run=lambda: alice.get(TASK), subst={"task": "nope/0"}),
    ("GET", "/api/v2/jobs/{user}~{job}/attempts/{jobAttemptId}/taskRoles/{taskRoleName}/"
            "taskIndex/{taskIndex}/attempts/{taskAttemptId}/logs", 404): dict(
        run=lambda: alice.get(TASK + "/0/logs")),
    ("GET", "/api/v2/kubernetes/nodes", 403): dict(
        example=NON_ADMIN, run=lambda: alice.get("/api/v2/kubernetes/nodes")),
    ("GET", "/api/v2/kubernetes/pods", 403): dict(
        example=NON_ADMIN, run=lambda: alice.get("/api/v2/kubernetes/pods")),
}

# Components no use above reaches with its own example.
COMPONENT_CASES = {
    "IncorrectPasswordError": dict(
        run=lambda: anon.post("/api/v2/authn/basic/login",
                              {"username": "alice", "password": "wrong-pw"})),
    "NoTagError": dict(
        run=lambda: alice.delete(JOB + "/tag", {"value": "ghost"}),
        expect=(404, "NoTagError", "Tag ghost is not found for job alice~j1."),
        why="the spec's example has a space before the period; OpenPAI's server does not "
            "(rest-server models/v2/job/k8s.js)"),
    "NoJobConfigError": dict(
        na="a job's config is committed with the job, in one store batch: a job without "
           "its config does not exist"),
    "NoJobSshInfoError": dict(run=lambda: alice.get(JOB + "/ssh"), subst={"job": "alice~j1"}),
    "ForbiddenKeyError": dict(na="pai has no extension-key endpoints (PUT .../extension/*)"),
}

# Messages of OpenPAI's server for cases its spec has no example of.
EXTRA = [
    ("a token that is not valid", lambda: srv.client("not-a-token").get("/api/v2/jobs"),
     (401, "UnauthorizedUserError", "Your token is invalid.")),
    ("an unknown API", lambda: anon.get("/api/v2/nothing"),
     (404, "NoApiError", "API /api/v2/nothing is not found.")),
    ("another user's job is not alice's to stop",
     lambda: srv.client(srv.create_user("bob")).put(JOB + "/executionType", {"value": "STOP"}),
     (403, "ForbiddenUserError", "User bob is not allowed to execute job alice~j1.")),
    ("another user's token", lambda: alice.delete("/api/v2/tokens/" + admin_token_id()),
     (403, "ForbiddenUserError", "User alice is not allowed to do this operation.")),
    ("users/me naming another user",
     lambda: alice.put("/api/v2/users/me", {"data": {"username": "admin"}, "patch": True}),
     (403, "ForbiddenUserError", "Can't update other user's data")),
    ("a wrong old password",
     lambda: alice.put("/api/v2/users/me", {"data": {"newPassword": "new-pw-123",
                                                     "oldPassword": "wrong-pw"}, "patch": True}),
     (403, "ForbiddenUserError", "Pls input the correct password.")),
    ("the last admin", lambda: admin.delete("/api/v2/users/admin"),
     (403, "RemoveAdminError", "Admin admin is not allowed to remove.")),
    ("a list limit over the maximum", lambda: alice.get("/api/v2/jobs?limit=50001"),
     (400, "InvalidParametersError", "Limit exceeds max number 50000.")),
    ("an attempt the job does not have", lambda: alice.get(JOB + "/attempts/7"),
     (404, "NoJobError", "JobAttemptId 7 is not found in alice~j1.")),
    ("a job-attempt the job does not have", lambda: alice.get(JOB + "/job-attempts/7"),
     (404, "NoJobError", "Job attempt not found in job alice~j1 with jobAttemptIndex 7")),
]


def admin_token_id():
    st, b = admin.get("/api/v2/tokens")
    return b["tokens"][0] if st == 200 and b.get("tokens") else "none"



# ---- the run ----------------------------------------------------------------

def expected_of(examples, row):
    if "expect" in row:
        return row["expect"]
    name = row.get("example") or next(iter(examples))
    ex = examples[name]
    msg = re.sub(r"\{(\w+)\}", lambda m: row.get("subst", {}).get(m.group(1), m.group(0)),
                 ex["message"])
    return ex["code"], msg


def compare(label, got, status, code, message):
    st, body = got
    body = body if isinstance(body, dict) else {}
    pt.check((st, body.get("code"), body.get("message")) == (status, code, message), label,
             "got %s %s, expected %s %s %r" % (st, body, status, code, message))


for key in sorted(set(CASES) - set(USES)):
    pt.not_ok("%s %s %d: a row for no example of the spec" % key)

checked = set()
for (method, path, status), (kind, ref) in sorted(USES.items()):
    label = "%s %s %d" % (method, path, status)
    examples = COMPONENTS.get(ref, {}) if kind == "ref" else ref
    code = next(iter(examples.values()), {}).get("code")
    row = CASES.get((method, path, status))
    if row is None and code == "UnknownError":
        row = dict(na=NA_UNKNOWN)
    if row is None and status == 401:  # every 401 is a request without a token
        row = dict(run=lambda m=method, p=path: call(anon, m, fill(p)))
    if row is None:
        pt.not_ok(label + " " + str(code) + ": no row in test_api_errors.py")
        continue
    if kind == "ref":
        checked.add(ref)
    if "na" in row:
        # accounted for but not a check: neither a pass nor a skip
        print("# n/a - %s %s: not applicable in pai: %s" % (label, code, row["na"]))
        continue
    exp = expected_of(examples, row)
    if "expect" in row:
        status, exp = exp[0], exp[1:]
    compare("%s %s: %s" % (label, exp[0], exp[1]) + (" (pai: %s)" % row["why"] if "why" in row
                                                      else ""),
            row["run"](), status, exp[0], exp[1])

STATUS = {"IncorrectPasswordError": 400, "NoTagError": 404, "NoJobConfigError": 404,
          "NoJobSshInfoError": 404}
for name, examples in sorted(COMPONENTS.items()):
    if name in checked:
        continue
    row = COMPONENT_CASES.get(name)
    if row is None:
        pt.not_ok("components/responses/%s: no row in test_api_errors.py" % name)
        continue
    if "na" in row:
        print("# n/a - components/responses/%s: not applicable in pai: %s" % (name, row["na"]))
        continue
    exp = row.get("expect") or (STATUS[name],) + expected_of(examples, row)
    compare("components/responses/%s: %s" % (name, exp[2]), row["run"](), *exp)

for label, run, exp in EXTRA:
    compare("%s: %s %s" % (label, exp[1], exp[2]), run(), *exp)

pt.done()
