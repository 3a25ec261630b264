#!/usr/bin/env python3
"""kill -9 the server right after acknowledgments: every acknowledged user,
group, membership and token is there after a restart; revoked tokens stay
revoked."""
import threading

import paitest as pt

srv = pt.start_server()
admin = srv.client(srv.admin_token)
pt.expect(admin.post("/api/v2/groups", {"groupname": "team", "description": "t"}), 201,
          "create a group")
pt.expect(admin.post("/api/v2/users", {"username": "ann", "password": "ann-pw-1",
                                       "virtualCluster": ["vcx"]}), 201, "create a user")
pt.expect(admin.put("/api/v2/users/ann/group", {"groupname": "team"}), 201, "add to group")
ann_tok = srv.login("ann", "ann-pw-1")
st, b = srv.client(ann_tok).post("/api/v2/tokens/application")
app_tok = b["token"]
gone = srv.login("ann", "ann-pw-1")
pt.expect(srv.client(gone).delete("/api/v2/authn/basic/logout"), 200, "log one token out")

# 16 concurrent writers, then kill -9 immediately
acked = []
lock = threading.Lock()


def writer(i):
    c = srv.client(srv.admin_token)
    for k in range(5):
        name = "w%d-%d" % (i, k)
        st, _ = c.post("/api/v2/users", {"username": name, "password": "pw-123456"})
        if st == 201:
            with lock:
                acked.append(name)


ts = [threading.Thread(target=writer, args=(i,)) for i in range(16)]
for t in ts:
    t.start()
for t in ts:
    t.join()
srv.kill9()
pt.check(len(acked) == 80, "80 concurrent user creations acknowledged", len(acked))

srv.restart()
admin = srv.client(srv.admin_token)
st, users = admin.get("/api/v2/users")
have = {u["username"] for u in users}
pt.check(set(acked) <= have, "every acknowledged user survived kill -9",
         sorted(set(acked) - have))
st, b = srv.client(ann_tok).get("/api/v2/users/ann")
pt.check(st == 200 and "team" in b["grouplist"] and "vcx" in b["virtualCluster"],
         "the login token and group membership survived", b)
pt.expect(srv.client(app_tok).get("/api/v2/info"), 200, "info works with the app token")
st, b = admin.get("/api/v2/groups/team")
pt.check(st == 200 and b["description"] == "t", "the group survived", b)
pt.expect(srv.client(gone).get("/api/v2/groups"), 401, "a revoked token stays revoked",
          "UnauthorizedUserError")
pt.check(srv.login("ann", "ann-pw-1") is not None, "the password survived")

# a clean SIGTERM stop exits 0
rc = srv.stop()
pt.check(rc == 0, "SIGTERM stops the server with status 0", rc)
pt.done()
