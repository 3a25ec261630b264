"""Permission-matrix rows for the job templates (loaded by test_api_perm.py;
docs/api.md "Templates"): any token lists, publishes and reads what it may
see; a private template is its owner's (and the admins'), others get 404;
the owner and admins change it; whoever sees it submits from it; only an
admin's login token marks it featured.  test_templates.py has the finer
matrix (group members, every visibility, delete)."""
import itertools

from perm_rows_jobs import ADMIN_ONLY, ANY_TOKEN, NO_TOKEN

_n = itertools.count()


def protocol(name):
    return ("protocolVersion: 2\nname: %s\ntype: job\nparameters: {p: 1}\n"
            "prerequisites: [{type: dockerimage, name: img, uri: busybox}]\n"
            "taskRoles:\n  main:\n    dockerImage: img\n"
            "    resourcePerInstance: {cpu: 1, memoryMB: 128, gpu: 0}\n"
            "    commands: [sleep 1]\n" % name)


def uniq_template(ids):
    return {"protocol": protocol("pmt%d" % next(_n)), "visibility": "public"}


def uniq_submit(ids):
    return {"name": "pmtjob%d" % next(_n), "parameters": {"p": 2}}


def setup(srv, ids):
    u = srv.client(ids["user"])
    for name, vis in (("pmtpub", "public"), ("pmtpriv", "private")):
        st, b = u.post("/api/v2/templates", {"protocol": protocol(name), "visibility": vis})
        if st != 201:
            raise RuntimeError("perm setup: publish %s: %s %s" % (name, st, b))


PUB = "/api/v2/templates/{user}~pmtpub"
PRIV = "/api/v2/templates/{user}~pmtpriv"
ROWS = [
    ("GET", "/api/v2/templates", None, dict(ANY_TOKEN, **{"*": 200})),
    ("POST", "/api/v2/templates", uniq_template, dict(NO_TOKEN, **{"*": 201})),
    ("GET", PUB, None, dict(ANY_TOKEN, **{"*": 200})),
    ("GET", PRIV, None, dict(ANY_TOKEN, other=404, **{"*": 200})),
    ("PUT", PUB, {"description": "d"}, dict(ANY_TOKEN, other=403, **{"*": 200})),
    ("PUT", PRIV, {"description": "d"}, dict(ANY_TOKEN, other=404, **{"*": 200})),
    ("POST", PUB + "/submit", uniq_submit, dict(NO_TOKEN, **{"*": 202})),
    ("POST", PRIV + "/submit", uniq_submit, dict(NO_TOKEN, other=404, **{"*": 202})),
    ("PUT", PUB + "/featured", {"value": True}, dict(ADMIN_ONLY, admin=200)),
    ("DELETE", "/api/v2/templates/{user}~nosuch", None, dict(ANY_TOKEN, **{"*": 404})),
]
