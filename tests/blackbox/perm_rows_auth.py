"""Permission-matrix rows for the platform endpoints (info, auth, users,
groups, tokens, storages, metrics).  test_api_perm.py loads every
perm_rows_*.py file; each defines ROWS and may define setup(srv, ids).

A row: (method, path, body, expected).  path may use {user} and {other}
(the matrix users' names); body may be a function of ids (called once per
role, e.g. to make unique names).  expected maps a role of paitest.ROLES
(or "*" for the rest) to a status or a set of statuses; a role mapped to
None is skipped.
"""
import itertools

_n = itertools.count()

NO_TOKEN = {"anonymous": 401, "revoked": 401, "expired": 401}
SESSION_OK = dict(NO_TOKEN, app=403)  # then add user/other/admin
ADMIN_ONLY = dict(NO_TOKEN, app=403, user=403, other=403)


def uniq(prefix):
    return lambda ids: {"username": "%s%d" % (prefix, next(_n)),
                                           "password": "pw-123456"}


def group_uniq(ids):
    return {"groupname": "pmg%d" % next(_n)}


ROWS = [
    ("GET", "/api/v2/info", None, {"*": 200}),
    ("GET", "/metrics", None, {"*": 200}),
    ("GET", "/api/v2/metrics/targets", None, dict(NO_TOKEN, app=403, user=403, other=403,
                                                  admin=200)),
    ("POST", "/api/v2/authn/basic/login", {"username": "admin", "password": "bad-pw"}, {"*": 400}),
    ("GET", "/api/v2/authn/oidc/login", None, {"*": 501}),
    ("DELETE", "/api/v2/authn/basic/logout", None, dict(NO_TOKEN, app=403, **{"*": None})),
    ("GET", "/api/v2/tokens", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("POST", "/api/v2/tokens/application", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("DELETE", "/api/v2/tokens/ffffffffffffffff", None,
     dict(SESSION_OK, user=404, other=404, admin=404)),
    ("GET", "/api/v2/users", None, dict(ADMIN_ONLY, admin=200)),
    ("POST", "/api/v2/users", uniq("pmu"), dict(ADMIN_ONLY, admin=201)),
    ("PUT", "/api/v2/users", {"data": {"username": "{other}", "email": "o@x.org"}, "patch": True},
     dict(ADMIN_ONLY, admin=201)),
    ("PUT", "/api/v2/users/me", {"data": {"email": "me@x.org"}, "patch": True},
     dict(SESSION_OK, user=201, other=201, admin=201)),
    ("GET", "/api/v2/users/{user}", None, dict(SESSION_OK, user=200, other=403, admin=200)),
    ("DELETE", "/api/v2/users/ghost", None, dict(ADMIN_ONLY, admin=404)),
    ("PUT", "/api/v2/users/{other}/group", {"groupname": "default"}, dict(ADMIN_ONLY, admin=201)),
    ("DELETE", "/api/v2/users/{other}/group", {"groupname": "ghost"}, dict(ADMIN_ONLY, admin=404)),
    ("PUT", "/api/v2/users/{other}/grouplist", {"grouplist": ["default"]},
     dict(ADMIN_ONLY, admin=201)),
    ("GET", "/api/v2/groups", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("POST", "/api/v2/groups", group_uniq, dict(ADMIN_ONLY, admin=201)),
    ("PUT", "/api/v2/groups", {"data": {"groupname": "default", "description": "all"},
                               "patch": True}, dict(ADMIN_ONLY, admin=201)),
    ("GET", "/api/v2/groups/default", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("DELETE", "/api/v2/groups/ghost", None, dict(ADMIN_ONLY, admin=404)),
    ("GET", "/api/v2/groups/default/userlist", None, dict(ADMIN_ONLY, admin=200)),
    ("GET", "/api/v2/storages", None, dict(SESSION_OK, user=200, other=200, admin=200)),
    ("GET", "/api/v2/storages/ghost", None, dict(SESSION_OK, user=404, other=404, admin=404)),
    # no prometheus_url here: 501 for every token (test_prometheus.py covers 200)
    ("GET", "/api/v2/alerts", None, dict(NO_TOKEN, app=501, user=501, other=501, admin=501)),
]
