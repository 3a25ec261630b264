"""Permission-matrix rows for the jobs and cluster endpoints (loaded by
test_api_perm.py).  OpenPAI's rules: any token lists and reads jobs and
submits its own; only the owner or an admin stops, tags or deletes (and, by
default, reads task logs: log_read_access owner); VCs and
cluster views need a login token (application tokens only do job
operations); Kubernetes-equivalent views are admin-only; the agent protocol
takes the agent token or an admin's login token.

A job body is sent as JSON, which is also valid YAML (the protocol parser
reads either)."""
import itertools

_n = itertools.count()

NO_TOKEN = {"anonymous": 401, "revoked": 401, "expired": 401}
ANY_TOKEN = dict(NO_TOKEN)
SESSION_OK = dict(NO_TOKEN, app=403)
ADMIN_ONLY = dict(NO_TOKEN, app=403, user=403, other=403)


def job(name):
    return {"protocolVersion": 2, "name": name, "type": "job",
            "prerequisites": [{"type": "dockerimage", "name": "img", "uri": "busybox"}],
            "taskRoles": {"main": {"instances": 1, "dockerImage": "img",
                                   "resourcePerInstance": {"cpu": 1, "memoryMB": 128, "gpu": 0},
                                   "commands": ["sleep 1"]}}}


def uniq_job(ids):
    return job("pmj%d" % next(_n))


def setup(srv, ids):
    u, o = srv.client(ids["user"]), srv.client(ids["other"])
    for c, name in ((u, "pmjob"), (u, "pmstop"), (o, "pmdel")):
        st, b = c.post("/api/v2/jobs", job(name))
        if st != 202:
            raise RuntimeError("perm setup: submit %s: %s %s" % (name, st, b))
    st, b = o.put("/api/v2/jobs/%s~pmdel/executionType" % ids["_other"], {"value": "STOP"})
    if st != 202:
        raise RuntimeError("perm setup: stop: %s %s" % (st, b))


J = "/api/v2/jobs/{user}~pmjob"
ROWS = [
    ("POST", "/api/v2/jobs", uniq_job, dict(NO_TOKEN, user=202, other=202, admin=202, app=202)),
    ("GET", "/api/v2/jobs", None, dict(ANY_TOKEN, **{"*": 200})),
    ("GET", J, None, dict(ANY_TOKEN, **{"*": 200})),
    ("GET", J + "/config", None, dict(ANY_TOKEN, **{"*": 200})),
    ("GET", J + "/events", None, dict(ANY_TOKEN, **{"*": 200})),
    ("GET", J + "/job-attempts", None, dict(ANY_TOKEN, **{"*": 200})),
    ("GET", J + "/attempts/0/taskRoles/main/taskIndex/0/attempts", None,
     dict(ANY_TOKEN, **{"*": 404})),
    # task logs: the owner and admins (log_read_access: owner, the default); the
    # job has not run, so they get 404 NoTaskLogError, the other user 403 first
    ("GET", J + "/attempts/0/taskRoles/main/taskIndex/0/attempts/0/logs", None,
     dict(NO_TOKEN, user=404, other=403, admin=404, app=404)),
    ("GET", J + "/attempts/0/taskRoles/main/taskIndex/0/attempts/0/logs/stdout", None,
     dict(NO_TOKEN, user=404, other=403, admin=404, app=404)),
    ("GET", J + "/attempts/0/taskRoles/main/taskIndex/0/attempts/0/logs/all?tailMode=true", None,
     dict(NO_TOKEN, user=404, other=403, admin=404, app=404)),
    ("GET", "/api/v2/jobs/{user}~nosuchjob", None, dict(ANY_TOKEN, **{"*": 404})),
    ("PUT", J + "/tag", {"value": "pm"}, dict(NO_TOKEN, user=200, other=403, admin=200, app=200)),
    ("DELETE", J + "/tag", {"value": "pm"},
     dict(NO_TOKEN, user={200, 404}, other=403, admin={200, 404}, app={200, 404})),
    ("PUT", "/api/v2/jobs/{user}~pmstop/executionType", {"value": "STOP"},
     dict(NO_TOKEN, user=202, other=403, admin=202, app=202)),
    ("DELETE", "/api/v2/jobs/{user}~pmjob", None,
     dict(NO_TOKEN, user=400, other=403, admin=400, app=400)),
    ("DELETE", "/api/v2/jobs/{other}~pmdel", None,
     dict(NO_TOKEN, user=403, other=200, admin=404, app={403, 404})),
    ("GET", "/api/v2/virtual-clusters", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("GET", "/api/v2/virtual-clusters/default", None,
     dict(SESSION_OK, user={200, 404}, other={200, 404}, admin={200, 404})),
    # the matrix server has no HiveD config: an admin's change is refused (400)
    ("PUT", "/api/v2/virtual-clusters/pmvc",
     {"virtualCells": [{"cellType": "X", "cellNumber": 1}]}, dict(ADMIN_ONLY, admin=400)),
    ("DELETE", "/api/v2/virtual-clusters/pmvc", None, dict(ADMIN_ONLY, admin=400)),
    ("GET", "/api/v2/cluster/sku-types", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("GET", "/api/v2/virtual-clusters/default/sku-types", None,
     dict(SESSION_OK, user={200, 404}, other={200, 404}, admin={200, 404})),
    ("GET", "/api/v2/cluster/nodes", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("DELETE", "/api/v2/cluster/nodes/pm-none/credential", None, dict(ADMIN_ONLY, admin=404)),
    ("POST", "/api/v2/cluster/nodes/pm-none/credential/rotate", None,
     dict(ADMIN_ONLY, admin=404)),
    ("POST", "/api/v2/cluster/nodes/pm-none/approve", None, dict(ADMIN_ONLY, admin=404)),
    ("GET", "/api/v2/kubernetes/nodes", None, dict(ADMIN_ONLY, admin=200)),
    ("GET", "/api/v2/kubernetes/pods", None, dict(ADMIN_ONLY, admin=200)),
    ("GET", "/api/v2/usage", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("POST", "/api/v1/agent/sync", {"version": 1, "node": {"name": "pm-node"}, "wait_ms": 0},
     dict(NO_TOKEN, user=403, other=403, admin=200, app=403)),
]
