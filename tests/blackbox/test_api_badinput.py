#!/usr/bin/env python3
"""Bad input: malformed JSON, wrong types, oversize bodies, unknown paths and
methods, path traversal in names.  Each gets the right OpenPAI error, and the
store is left as it was (checked again after a restart)."""
import socket

import paitest as pt

srv = pt.start_server()
admin = srv.client(srv.admin_token)
pt.expect(admin.post("/api/v2/users", {"username": "carol", "password": "carol-pw"}), 201,
          "setup: a user")


def snapshot():
    st, users = admin.get("/api/v2/users")
    st2, groups = admin.get("/api/v2/groups")
    return (sorted((u["username"], tuple(sorted(u["grouplist"])), u["email"]) for u in users),
            sorted(g["groupname"] for g in groups))


before = snapshot()

# ---- malformed and mistyped JSON on every body-taking endpoint ----------------------
BODY_ENDPOINTS = [("POST", "/api/v2/users"), ("PUT", "/api/v2/users"), ("PUT", "/api/v2/users/me"),
                  ("PUT", "/api/v2/users/carol/group"), ("DELETE", "/api/v2/users/carol/group"),
                  ("PUT", "/api/v2/users/carol/grouplist"), ("POST", "/api/v2/groups"),
                  ("PUT", "/api/v2/groups"), ("POST", "/api/v2/authn/basic/login")]
for method, path in BODY_ENDPOINTS:
    for label, raw in (("malformed JSON", '{"username": '), ("a JSON string", '"x"'),
                       ("an empty body", ""), ("a duplicate key", '{"a":1,"a":2}'),
                       ("a deeply nested body", "[" * 5000 + "]" * 5000)):
        pt.expect(admin.request(method, path, raw=raw, content_type="application/json"), 400,
                  "%s %s with %s" % (method, path, label), "InvalidParametersError")

WRONG_TYPES = [
    ("POST", "/api/v2/users", {"username": ["x"], "password": "123456"}),
    ("POST", "/api/v2/users", {"username": "dave", "password": 123456}),
    ("POST", "/api/v2/users", {"username": "dave", "password": "123456", "email": 7}),
    ("POST", "/api/v2/users", {"username": "dave", "password": "123456", "extension": "x"}),
    ("POST", "/api/v2/users", {"username": "dave", "password": "123456", "virtualCluster": [1]}),
    ("PUT", "/api/v2/users", {"data": "carol"}),
    ("PUT", "/api/v2/users", {"data": {"username": "carol"}, "patch": "yes"}),
    ("PUT", "/api/v2/users/me", {"data": {"email": False}}),
    ("PUT", "/api/v2/users/carol/group", {"groupname": None}),
    ("PUT", "/api/v2/users/carol/grouplist", {"grouplist": [None]}),
    ("POST", "/api/v2/groups", {"groupname": "g", "description": 5}),
    ("POST", "/api/v2/groups", {"groupname": "g", "extension": {"acls": {"virtualClusters": "x"}}}),
    ("POST", "/api/v2/groups", {"groupname": "g", "extension": {"acls": []}}),
    ("PUT", "/api/v2/groups", {"data": {"groupname": 1}}),
    ("POST", "/api/v2/authn/basic/login", {"username": "carol", "password": "carol-pw",
                                           "expiration": "soon"}),
]
for method, path, body in WRONG_TYPES:
    pt.expect(admin.request(method, path, body), 400, "%s %s with wrong type %s" %
              (method, path, list(body.items())[-1]), "InvalidParametersError")

# ---- names -----------------------------------------------------------------------------
for bad in ("../etc", "a/b", ".hidden", "x" * 300, "", "a b", "caf\u00e9", "me", "a~b"):
    pt.expect(admin.post("/api/v2/users", {"username": bad, "password": "123456"}), 400,
              "user name %r refused" % bad[:20], "InvalidParametersError")
    pt.expect(admin.post("/api/v2/groups", {"groupname": bad}), 400,
              "group name %r refused" % bad[:20], "InvalidParametersError")
for path in ("/api/v2/users/..%2F..%2Fetc%2Fpasswd", "/api/v2/users/../../etc/passwd",
             "/api/v2/groups/%2e%2e", "/api/v2/users/carol%00admin"):
    st, b = admin.get(path)
    pt.check(st in (400, 404) and isinstance(b, dict) and "code" in b,
             "traversal path %s answered with an error" % path, (st, b))

# ---- unknown paths and methods ----------------------------------------------------------
pt.expect(admin.get("/api/v2/nothing"), 404, "unknown path", "NoApiError")
pt.expect(admin.get("/api/v3/info"), 404, "unknown API version", "NoApiError")
pt.expect(admin.get("/" + "a/" * 3000), 404, "a very deep path", "NoApiError")
pt.expect(admin.request("PATCH", "/api/v2/users"), 405, "wrong method on a known path",
          "MethodNotAllowedError")
pt.expect(admin.request("POST", "/api/v2/info"), 405, "POST on info", "MethodNotAllowedError")
pt.expect(admin.get("/api/v2/users/carol/"), 200, "a trailing slash is accepted")

# ---- CORS: off by default (test_accounts_hostile tests configured origins) ------------------
st, b = srv.client().request("OPTIONS", "/api/v2/users", headers={
    "Origin": "http://portal.example", "Access-Control-Request-Method": "POST"})
pt.check(st == 405, "without cors_allow_origin a preflight is refused", (st, b))
c = srv.client()
c.get("/api/v2/info", headers={"Origin": "http://portal.example"})
pt.check("access-control-allow-origin" not in {k.lower() for k in c.last_headers},
         "without cors_allow_origin answers carry no Access-Control-Allow-Origin", c.last_headers)
pt.expect(srv.client().request("OPTIONS", "/api/v2/nothing"), 404, "preflight of an unknown path",
          "NoApiError")

# ---- oversize bodies -------------------------------------------------------------------------
def raw_post(path, total, chunked):
    """POST total bytes (chunked or with Content-Length); the status line's code."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    framing = "Transfer-Encoding: chunked" if chunked else "Content-Length: %d" % total
    s.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
               "Content-Type: application/json\r\n%s\r\n\r\n"
               % (path, srv.admin_token, framing)).encode())
    chunk = b"x" * 65536
    sent = 0
    try:
        while sent < total:
            s.sendall((b"%x\r\n" % len(chunk) + chunk + b"\r\n") if chunked else chunk)
            sent += len(chunk)
        if chunked:
            s.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server may answer 413 and close before reading it all
    data = b""
    try:
        while b"\r\n\r\n" not in data:
            d = s.recv(4096)
            if not d:
                break
            data += d
    except OSError:
        pass
    s.close()
    return data.split(b" ", 2)[1].decode() if data.startswith(b"HTTP/") else data[:80]


pt.check(raw_post("/api/v2/users", 5 * 1024 * 1024, False) == "413",
         "an oversize body (Content-Length) is 413")
pt.check(raw_post("/api/v2/users", 6 * 1024 * 1024, True) == "413",
         "an oversize chunked body is 413")
pt.check(raw_post("/api/v2/authn/basic/login", 4 * 1024 * 1024 + 1, False) == "413",
         "one byte over the limit is 413")
pt.expect(admin.get("/api/v2/info"), 200, "the server still answers after oversize bodies")

# ---- headers ------------------------------------------------------------------------------------
for h in ("Basic YWRtaW46eA==", "Bearer", "Bearer " + "a" * 5000, "bearer x.y"):
    st, b = srv.client().request("GET", "/api/v2/groups", headers={"Authorization": h})
    pt.check(st == 401 and b.get("code") == "UnauthorizedUserError",
             "Authorization %r is 401" % h[:24], (st, b))

# ---- the store is intact ------------------------------------------------------------------------
pt.check(snapshot() == before, "bad input left users and groups unchanged", (before, snapshot()))
srv.kill9()
srv.restart()
admin = srv.client(srv.admin_token)
pt.check(snapshot() == before, "and so does a restart after it", (before, snapshot()))
pt.done()
