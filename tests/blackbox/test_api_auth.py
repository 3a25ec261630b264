#!/usr/bin/env python3
"""Black-box tests of info, login/logout, tokens, users and groups (OpenPAI REST v2)."""
import time

import paitest as pt

srv = pt.start_server()
anon = srv.client()
admin = srv.client(srv.admin_token)

# ---- info ----------------------------------------------------------------------
st, b = anon.get("/api/v2/info")
pt.check(st == 200 and b["authnMethod"] == "basic" and b["name"] and b["version"]
         and b["launcherType"] in ("k8s", "yarn"), "info answers anonymously", b)

# ---- login -----------------------------------------------------------------------
st, b = anon.post("/api/v2/authn/basic/login", {"username": "admin", "password": pt.ADMIN_PASSWORD})
pt.check(st == 200 and b["user"] == "admin" and b["admin"] is True and b["token"],
         "login with JSON body", b)
st, b = anon.request("POST", "/api/v2/authn/basic/login",
                     raw="username=admin&password=" + pt.ADMIN_PASSWORD,
                     content_type="application/x-www-form-urlencoded")
pt.check(st == 200 and b["admin"] is True, "login with a form body", b)
pt.expect(anon.post("/api/v2/authn/basic/login", {"username": "admin", "password": "wrong-pw"}),
          400, "login with a wrong password", "IncorrectPasswordError")
pt.expect(anon.post("/api/v2/authn/basic/login", {"username": "nobody", "password": "whatever"}),
          400, "login of an unknown user answers as a wrong password", "IncorrectPasswordError")
pt.expect(anon.post("/api/v2/authn/basic/login", {"username": "admin"}),
          400, "login without password", "InvalidParametersError")
pt.expect(anon.post("/api/v2/authn/basic/login", {"username": 5, "password": "x"}),
          400, "login with a non-string username", "InvalidParametersError")
pt.expect(anon.post("/api/v2/authn/basic/login",
                    {"username": "admin", "password": pt.ADMIN_PASSWORD, "expiration": -5}),
          400, "login with a negative expiration", "InvalidParametersError")
pt.expect(anon.request("POST", "/api/v2/authn/basic/login", raw="{not json",
                       content_type="application/json"),
          400, "login with malformed JSON", "InvalidParametersError")

# ---- anonymous is refused --------------------------------------------------------
for path in ("/api/v2/users", "/api/v2/groups", "/api/v2/tokens", "/api/v2/storages"):
    pt.expect(anon.get(path), 401, "anonymous GET %s is 401" % path, "UnauthorizedUserError")
pt.expect(srv.client("garbage-token").get("/api/v2/groups"), 401, "a garbage token is 401",
          "UnauthorizedUserError")
pt.expect(srv.client("abc.def").get("/api/v2/groups"), 401, "an unknown token is 401",
          "UnauthorizedUserError")

# ---- users -------------------------------------------------------------------------
pt.expect(admin.post("/api/v2/users", {"username": "alice", "password": "alice-pw",
                                       "email": "a@x.org", "virtualCluster": ["vc1"]}),
          201, "admin creates a user")
pt.expect(admin.post("/api/v2/users", {"username": "alice", "password": "alice-pw"}),
          409, "creating an existing user", "ConflictUserError")
pt.expect(admin.post("/api/v2/users", {"username": "bob"}), 400, "create user without password",
          "InvalidParametersError")
pt.expect(admin.post("/api/v2/users", {"username": "bob", "password": "123"}), 400,
          "create user with a short password", "InvalidParametersError")
pt.expect(admin.post("/api/v2/users", {"username": "../etc", "password": "123456"}), 400,
          "path traversal in a user name", "InvalidParametersError")
pt.expect(admin.post("/api/v2/users", {"username": "bob", "password": "123456", "admin": "yes"}),
          400, "create user with a non-boolean admin", "InvalidParametersError")
pt.expect(admin.post("/api/v2/users", {"username": "bob", "password": "123456",
                                       "virtualCluster": "vc1"}),
          400, "create user with a non-list virtualCluster", "InvalidParametersError")
pt.expect(admin.request("POST", "/api/v2/users", raw="[1,2]", content_type="application/json"),
          400, "create user with a JSON array body", "InvalidParametersError")

alice_tok = srv.login("alice", "alice-pw")
alice = srv.client(alice_tok)
st, b = alice.get("/api/v2/users/alice")
pt.check(st == 200 and b["username"] == "alice" and b["admin"] is False and b["email"] == "a@x.org"
         and "vc1" in b["virtualCluster"] and "default" in b["virtualCluster"]
         and "passwordHash" not in b and isinstance(b["storageConfig"], list),
         "a user reads herself (UserInfo)", b)
pt.expect(alice.get("/api/v2/users/admin"), 403, "a user cannot read another user",
          "ForbiddenUserError")
pt.expect(admin.get("/api/v2/users/nobody"), 404, "reading an unknown user", "NoUserError")
pt.expect(alice.get("/api/v2/users"), 403, "a user cannot list users", "ForbiddenUserError")
st, b = admin.get("/api/v2/users")
pt.check(st == 200 and sorted(u["username"] for u in b) == ["admin", "alice"],
         "admin lists users", b)
pt.expect(alice.post("/api/v2/users", {"username": "eve", "password": "123456"}), 403,
          "a user cannot create users", "ForbiddenUserError")

# update by admin
pt.expect(admin.put("/api/v2/users", {"data": {"username": "alice", "email": "new@x.org"},
                                      "patch": True}), 201, "admin patches a user")
st, b = admin.get("/api/v2/users/alice")
pt.check(b["email"] == "new@x.org" and "vc1" in b["virtualCluster"],
         "patch changed only the email", b)
pt.expect(admin.put("/api/v2/users", {"data": {"username": "nobody", "email": "x"}, "patch": True}),
          404, "updating an unknown user", "NoUserError")
pt.expect(admin.put("/api/v2/users", {"patch": True}), 400, "update without data",
          "InvalidParametersError")
pt.expect(admin.put("/api/v2/users", {"data": {"username": "alice", "admin": True},
                                      "patch": True}), 201, "admin makes alice an admin")
st, b = alice.get("/api/v2/users")
pt.check(st == 200, "alice's existing token now has admin rights", b)
pt.expect(admin.put("/api/v2/users", {"data": {"username": "alice", "admin": False},
                                      "patch": True}), 201, "admin revokes alice's admin")
pt.expect(alice.get("/api/v2/users"), 403, "alice lost admin rights at once",
          "ForbiddenUserError")
pt.expect(admin.put("/api/v2/users", {"data": {"username": "admin", "admin": False},
                                      "patch": True}), 403, "the last admin cannot be demoted",
          "RemoveAdminError")
pt.expect(admin.delete("/api/v2/users/admin"), 403, "the last admin cannot be deleted",
          "RemoveAdminError")

# self update
pt.expect(alice.put("/api/v2/users/me", {"data": {"newPassword": "alice-pw2",
                                                  "oldPassword": "wrong"}, "patch": True}),
          403, "self password change with a wrong old password (OpenPAI: ForbiddenUserError)",
          "ForbiddenUserError")
pt.expect(alice.put("/api/v2/users/me", {"data": {"newPassword": "alice-pw2"}, "patch": True}),
          400, "self password change without the old password", "InvalidParametersError")
other_alice = srv.login("alice", "alice-pw")
pt.expect(alice.put("/api/v2/users/me", {"data": {"newPassword": "alice-pw2",
                                                  "oldPassword": "alice-pw"}, "patch": True}),
          201, "self password change")
pt.expect(srv.client(other_alice).get("/api/v2/groups"), 401,
          "a password change revokes the user's other login tokens", "UnauthorizedUserError")
pt.expect(alice.get("/api/v2/groups"), 200, "the token that changed the password still works")
pt.expect(anon.post("/api/v2/authn/basic/login", {"username": "alice", "password": "alice-pw"}),
          400, "the old password no longer logs in", "IncorrectPasswordError")
alice_tok = srv.login("alice", "alice-pw2")
alice = srv.client(alice_tok)

# ---- groups --------------------------------------------------------------------------
st, b = alice.get("/api/v2/groups")
names = sorted(g["groupname"] for g in b) if st == 200 else []
pt.check("admingroup" in names and "default" in names and "vc1" in names,
         "groups include the built-in and VC groups", b)
pt.expect(admin.post("/api/v2/groups", {"groupname": "team", "description": "a team",
                                        "extension": {"acls": {"virtualClusters": ["vc2"]}}}),
          201, "admin creates a group")
pt.expect(admin.post("/api/v2/groups", {"groupname": "team"}), 409, "creating an existing group",
          "ConflictGroupError")
pt.expect(admin.post("/api/v2/groups", {"groupname": "a/b"}), 400, "a group name with a slash",
          "InvalidParametersError")
pt.expect(admin.post("/api/v2/groups", {"groupname": "g2", "extension": {"acls": {"admin": 1}}}),
          400, "a non-boolean admin ACL", "InvalidParametersError")
pt.expect(alice.post("/api/v2/groups", {"groupname": "mine"}), 403, "a user cannot create groups",
          "ForbiddenUserError")
st, b = alice.get("/api/v2/groups/team")
pt.check(st == 200 and b["groupname"] == "team" and b["description"] == "a team"
         and b["extension"]["acls"]["virtualClusters"] == ["vc2"]
         and b["extension"]["acls"]["admin"] is False, "read a group", b)
pt.expect(alice.get("/api/v2/groups/nope"), 404, "reading an unknown group", "NoGroupError")
pt.expect(admin.put("/api/v2/groups", {"data": {"groupname": "team", "description": "renamed"},
                                       "patch": True}), 201, "admin updates a group")
st, b = alice.get("/api/v2/groups/team")
pt.check(b.get("description") == "renamed" and b["extension"]["acls"]["virtualClusters"] == ["vc2"],
         "a group patch keeps the other fields", b)
pt.expect(admin.put("/api/v2/groups", {"data": {"groupname": "nope"}}), 404,
          "updating an unknown group", "NoGroupError")

# membership
pt.expect(admin.put("/api/v2/users/alice/group", {"groupname": "team"}), 201,
          "admin adds a user to a group")
st, b = alice.get("/api/v2/users/alice")
pt.check("team" in b["grouplist"] and "vc2" in b["virtualCluster"],
         "group membership grants the group's VCs", b)
st, b = admin.get("/api/v2/groups/team/userlist")
pt.check(st == 200 and b == [{"username": "alice", "clusterAdmin": False}], "group userlist", b)
pt.expect(alice.get("/api/v2/groups/team/userlist"), 403,
          "a group's userlist is for admins (as OpenPAI)", "ForbiddenUserError")
pt.expect(admin.get("/api/v2/groups/nope/userlist"), 404, "userlist of an unknown group",
          "NoGroupError")
pt.expect(admin.put("/api/v2/users/alice/group", {"groupname": "nope"}), 404,
          "adding a user to an unknown group", "NoGroupError")
pt.expect(admin.put("/api/v2/users/nobody/group", {"groupname": "team"}), 404,
          "adding an unknown user to a group", "NoUserError")
pt.expect(admin.delete("/api/v2/users/alice/group", {"groupname": "team"}), 201,
          "admin removes a user from a group")
pt.expect(admin.delete("/api/v2/users/alice/group", {"groupname": "default"}), 403,
          "nobody leaves the default group", "ForbiddenUserError")
pt.expect(admin.put("/api/v2/users/alice/grouplist", {"grouplist": ["team", "vc1"]}), 201,
          "admin replaces a grouplist")
st, b = admin.get("/api/v2/users/alice")
pt.check(sorted(b["grouplist"]) == ["default", "team", "vc1"], "grouplist replaced (default kept)",
         b)
pt.expect(admin.put("/api/v2/users/alice/grouplist", {"grouplist": ["team", "nope"]}), 404,
          "grouplist with an unknown group", "NoGroupError")
pt.expect(admin.put("/api/v2/users/alice/grouplist", {"grouplist": "team"}), 400,
          "grouplist that is not a list", "InvalidParametersError")

pt.expect(admin.delete("/api/v2/groups/default"), 403, "built-in groups cannot be deleted",
          "ForbiddenUserError")
pt.expect(admin.delete("/api/v2/groups/nope"), 404, "deleting an unknown group", "NoGroupError")
pt.expect(admin.delete("/api/v2/groups/team"), 201, "admin deletes a group")
st, b = admin.get("/api/v2/users/alice")
pt.check("team" not in b["grouplist"], "deleting a group removes it from grouplists", b)

# ---- tokens ----------------------------------------------------------------------------
st, b = alice.post("/api/v2/tokens/application")
pt.check(st == 200 and b["application"] is True and b["token"], "create an application token", b)
app_tok = b["token"]
app = srv.client(app_tok)
st, b = alice.get("/api/v2/tokens")
pt.check(st == 200 and app_tok.split(".")[0] in b["tokens"] and alice_tok.split(".")[0] in b["tokens"]
         and all("." not in t for t in b["tokens"]), "list tokens (ids, no secrets)", b)
pt.expect(app.get("/api/v2/tokens"), 403, "an application token cannot list tokens",
          "ForbiddenUserError")
pt.expect(app.get("/api/v2/users/alice"), 403, "an application token cannot read users",
          "ForbiddenUserError")
pt.expect(app.post("/api/v2/tokens/application"), 403,
          "an application token cannot create tokens", "ForbiddenUserError")
pt.expect(srv.client(srv.admin_token).delete("/api/v2/tokens/" + app_tok.split(".")[0]), 200,
          "admin revokes another user's token")
pt.expect(app.get("/api/v2/info"), 200, "a revoked token still reads info (anonymous route)")
st, b = alice.post("/api/v2/tokens/application")
app2 = b["token"]
bob_tok = srv.create_user("bob")
pt.expect(srv.client(bob_tok).delete("/api/v2/tokens/" + app2.split(".")[0]), 403,
          "a user cannot revoke another user's token", "ForbiddenUserError")
pt.expect(alice.delete("/api/v2/tokens/" + app2), 200, "revoke a token given in full")
pt.expect(srv.client(app2).get("/api/v2/info"), 200, "info stays anonymous")
pt.expect(alice.delete("/api/v2/tokens/ffffffffffffffff"), 404, "revoking an unknown token",
          "NotFoundError")

short = srv.login("alice", "alice-pw2", expiration=1)
pt.expect(srv.client(short).get("/api/v2/groups"), 200, "a short-lived token works at first")
time.sleep(1.3)
pt.expect(srv.client(short).get("/api/v2/groups"), 401, "an expired token is refused",
          "UnauthorizedUserError")
long_tok = srv.login("alice", "alice-pw2", expiration=10 ** 9)
st, b = alice.get("/api/v2/tokens")
exp = [t["expireTime"] for t in b["detail"] if t["token"] == long_tok.split(".")[0]]
pt.check(exp and exp[0] <= (time.time() + 7 * 86400 + 60) * 1000,
         "user token lifetime is capped at token_ttl (7 days)", b)

# logout
t = srv.login("alice", "alice-pw2")
pt.expect(srv.client(t).delete("/api/v2/authn/basic/logout"), 200, "logout")
pt.expect(srv.client(t).get("/api/v2/groups"), 401, "a logged-out token is refused",
          "UnauthorizedUserError")
pt.expect(anon.delete("/api/v2/authn/basic/logout"), 401, "anonymous logout is 401",
          "UnauthorizedUserError")

# ---- delete user -------------------------------------------------------------------------
pt.expect(admin.delete("/api/v2/users/bob"), 200, "admin deletes a user")
pt.expect(srv.client(bob_tok).get("/api/v2/groups"), 401, "a deleted user's tokens are refused",
          "UnauthorizedUserError")
pt.expect(admin.delete("/api/v2/users/bob"), 404, "deleting an unknown user", "NoUserError")
pt.expect(admin.post("/api/v2/users", {"username": "bob", "password": "bob-pw-2"}), 201,
          "a deleted user's name can be taken again")
pt.expect(srv.client(bob_tok).get("/api/v2/groups"), 401,
          "the earlier user's tokens do not work for the new one", "UnauthorizedUserError")

# ---- OIDC and alerts: clear NotImplementedError -------------------------------------------
pt.expect(anon.get("/api/v2/authn/oidc/login"), 501, "OIDC login is NotImplementedError",
          "NotImplementedError")
pt.expect(anon.get("/api/v2/authn/oidc/logout"), 501, "OIDC logout is NotImplementedError",
          "NotImplementedError")
pt.expect(alice.get("/api/v2/alerts"), 501, "alerts are NotImplementedError",
          "NotImplementedError")

pt.done()
