#!/usr/bin/env python3
"""test_accounts_hostile.py - the accounts findings of issue 11 as regression
tests, tried as a hostile client would (docs/security.md "Accounts and TLS"):

  - application tokens may expire, are listed and revocable, and every token
    of a user dies when the password changes (by the user or an admin);
  - logins are throttled per user name and per client address (429
    TooManyRequestsError with Retry-After), without slowing other clients;
  - an unknown name and a wrong password get the same answer;
  - user names are unique regardless of case, and a user re-created under a
    deleted user's name cannot stop, tag or delete the deleted user's jobs
    (admins still can);
  - CORS is off unless origins are configured, and then only those get it.
"""
import http.client
import json
import os
import subprocess
import time

import jobstest as jt
import paitest as pt

LOGIN = "/api/v2/authn/basic/login"


class FromClient(pt.Client):
    """A client whose connections leave from another loopback address."""

    def __init__(self, url, source, token=None):
        super().__init__(url, token)
        self.source = source

    def _conn(self):
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout,
                                                   source_address=(self.source, 0))
        return self.conn


def login(c, user, pw, **extra):
    body = {"username": user, "password": pw}
    body.update(extra)
    return c.post(LOGIN, body)


# ---- tokens -----------------------------------------------------------------------
srv = pt.start_server(extra_args=["--login-fail-free-user", "100", "--login-fail-free-addr", "100"])
anon = srv.client()
admin = srv.client(srv.admin_token)
alice_tok = srv.create_user("alice", "alice-pw-1")
alice = srv.client(alice_tok)

st, b = alice.post("/api/v2/tokens/application", {"expiration": 2})
pt.check(st == 200 and b.get("application") is True, "an application token with an expiration", b)
short = srv.client(b.get("token") if isinstance(b, dict) else None)
st, lst = alice.get("/api/v2/tokens")
app_id = b["token"].split(".")[0]
row = [d for d in lst.get("detail", []) if d["token"] == app_id]
pt.check(row and row[0]["application"] and row[0]["expireTime"] > row[0]["createdTime"],
         "the application token is listed with its expiry", lst)
pt.expect(short.get("/api/v2/jobs"), 200, "the expiring application token works at first")
time.sleep(2.5)
pt.expect(short.get("/api/v2/jobs"), 401, "and is refused once expired", "UnauthorizedUserError")
for bad in (0, -5, "x", 3650 * 86400 + 1, True):
    pt.expect(alice.post("/api/v2/tokens/application", {"expiration": bad}), 400,
              "application token expiration %r is refused" % (bad,), "InvalidParametersError")
st, b = alice.post("/api/v2/tokens/application")
pt.check(st == 200, "an application token without a body never expires (OpenPAI)", b)
forever = srv.client(b["token"])
st, lst = alice.get("/api/v2/tokens")
pt.check(any(d["token"] == b["token"].split(".")[0] and d["expireTime"] == 0
             for d in lst["detail"]), "and is listed with expireTime 0", lst)
pt.expect(alice.delete("/api/v2/tokens/" + b["token"].split(".")[0]), 200,
          "the user revokes the application token")
pt.expect(forever.get("/api/v2/jobs"), 401, "a revoked application token is refused",
          "UnauthorizedUserError")

# the CLI: pai token create --expiration
r = subprocess.run([pt.PAI_BIN, "token", "create", "--expiration", "60", "--json"],
                   env=dict(os.environ, PAI_SERVER=srv.url, PAI_TOKEN=alice_tok,
                            PAI_CONFIG=os.path.join(pt.tmpdir(), "none.json")),
                   capture_output=True, text=True, timeout=30)
tok = json.loads(r.stdout).get("token", "") if r.returncode == 0 else ""
st, lst = alice.get("/api/v2/tokens")
exp = [d["expireTime"] - d["createdTime"] for d in lst.get("detail", [])
       if d["token"] == tok.split(".")[0]]
pt.check(exp == [60000], "pai token create --expiration 60 makes a token that expires in 60 s",
         (r, exp))

# a password change by the user: every other token goes, application ones too
app = srv.client(alice.post("/api/v2/tokens/application")[1]["token"])
other = srv.client(srv.login("alice", "alice-pw-1"))
pt.expect(alice.put("/api/v2/users/me", {"data": {"oldPassword": "alice-pw-1",
                                                  "newPassword": "alice-pw-2"}, "patch": True}),
          201, "alice changes her password")
pt.expect(app.get("/api/v2/jobs"), 401, "her application token is revoked by her password change",
          "UnauthorizedUserError")
pt.expect(other.get("/api/v2/tokens"), 401, "her other session is revoked", "UnauthorizedUserError")
pt.expect(alice.get("/api/v2/tokens"), 200, "the session that changed the password stays")
# by an admin: all of them
app = srv.client(alice.post("/api/v2/tokens/application")[1]["token"])
pt.expect(admin.put("/api/v2/users", {"data": {"username": "alice", "password": "alice-pw-3"},
                                      "patch": True}), 201, "an admin resets alice's password")
pt.expect(app.get("/api/v2/jobs"), 401, "her application token is revoked by the reset",
          "UnauthorizedUserError")
pt.expect(alice.get("/api/v2/tokens"), 401, "and her session too", "UnauthorizedUserError")
alice = srv.client(srv.login("alice", "alice-pw-3"))

# ---- one answer for an unknown name and a wrong password --------------------------
srv.create_user("bob", "bob-pw-123")
a = login(anon, "bob", "wrong-pw-1")
b = login(anon, "nobody-here", "wrong-pw-1")
pt.check(a == b == (400, {"code": "IncorrectPasswordError", "message": "Password is incorrect."}),
         "an unknown name and a wrong password get the same status, code and message", (a, b))


def timed(user):
    t0 = time.monotonic()
    login(anon, user, "wrong-pw-2")
    return time.monotonic() - t0


# the fastest of several tries: a busy machine only ever adds time, and a
# password hash (tens of ms) is far above the noise that remains
known = min(timed("bob") for _ in range(4))  # 1 + 4 failures: within the 5 free ones
unknown = min(timed("nobody-%d" % i) for i in range(4))
pt.check(unknown > known * 0.3, "an unknown name takes about as long as a wrong password "
         "(a password hash is checked either way)", "known %.4fs unknown %.4fs" % (known, unknown))

# ---- names unique regardless of case; a re-created user is someone else ------------
for n in ("ALICE", "Alice", "aLiCe"):
    pt.expect(admin.post("/api/v2/users", {"username": n, "password": "pw-123456"}), 409,
              "creating %s while alice exists is a conflict" % n, "ConflictUserError")
pt.expect(login(anon, "ALICE", "alice-pw-3"), 400,
          "login compares names exactly (ALICE is not alice)", "IncorrectPasswordError")
erin = srv.client(srv.create_user("erin", "erin-pw-12"))
pt.expect(jt.submit(erin, jt.job_yaml("old1")), 202, "erin submits a job")
pt.expect(jt.submit(erin, jt.job_yaml("old2")), 202, "and another")
pt.expect(admin.delete("/api/v2/users/erin"), 200, "an admin deletes erin")
time.sleep(0.01)
erin2 = srv.client(srv.create_user("erin", "erin-pw-34"))
pt.expect(erin2.get("/api/v2/jobs/erin~old1"), 200,
          "the old job stays readable, as every job is (OpenPAI)")
pt.expect(erin2.put("/api/v2/jobs/erin~old1/executionType", {"value": "STOP"}), 403,
          "the new erin cannot stop the deleted erin's job", "ForbiddenUserError")
pt.expect(erin2.put("/api/v2/jobs/erin~old1/tag", {"value": "mine"}), 403,
          "nor tag it", "ForbiddenUserError")
pt.expect(erin2.delete("/api/v2/jobs/erin~old1"), 403, "nor delete it", "ForbiddenUserError")
pt.expect(jt.submit(erin2, jt.job_yaml("new1")), 202, "the new erin submits her own job")
pt.expect(erin2.put("/api/v2/jobs/erin~new1/executionType", {"value": "STOP"}), 202,
          "and stops it")
pt.expect(jt.submit(erin2, jt.job_yaml("old1")), 409,
          "the deleted erin's job names stay taken", "ConflictJobError")
pt.expect(admin.put("/api/v2/jobs/erin~old2/executionType", {"value": "STOP"}), 202,
          "an admin still stops the deleted erin's job")
st, b = admin.get("/api/v2/jobs?username=erin")
names = sorted(j.get("name") for j in b) if isinstance(b, list) else b
pt.check(st == 200 and names == ["new1", "old1", "old2"],
         "an admin lists the jobs of both erins", names)
srv.extra_args += ["--cors-allow-origin", "https://portal.example, http://localhost:8080"]
srv.restart()
erin2 = srv.client(srv.login("erin", "erin-pw-34"))
pt.expect(erin2.delete("/api/v2/jobs/erin~old1"), 403,
          "after a restart the new erin still cannot delete the old job", "ForbiddenUserError")

# ---- CORS for configured origins only ----------------------------------------------
def cors(origin, method="GET", path="/api/v2/info"):
    c = srv.client()
    h = {"Origin": origin, "Access-Control-Request-Method": "POST"} if origin else {}
    st, _ = c.request(method, path, headers=h)
    return st, {k.lower(): v for k, v in c.last_headers.items()}


st, h = cors("https://portal.example", "OPTIONS", "/api/v2/users")
pt.check(st == 204 and h.get("access-control-allow-origin") == "https://portal.example"
         and h.get("vary") == "Origin" and "Authorization" in h.get("access-control-allow-headers", ""),
         "a listed origin gets a preflight naming it (Vary: Origin)", (st, h))
st, h = cors("http://localhost:8080")
pt.check(h.get("access-control-allow-origin") == "http://localhost:8080",
         "the second listed origin is allowed too", h)
st, h = cors("https://evil.example", "OPTIONS", "/api/v2/users")
pt.check(st == 405 and "access-control-allow-origin" not in h,
         "another origin gets no preflight and no CORS header", (st, h))
st, h = cors("https://evil.example")
pt.check(st == 200 and "access-control-allow-origin" not in h,
         "nor on an answer", h)
st, h = cors(None)
pt.check("access-control-allow-origin" not in h, "a request without Origin gets none", h)
srv.stop()

# ---- throttling -------------------------------------------------------------------
srv = pt.start_server(extra_args=["--login-fail-free-user", "3", "--login-fail-free-addr", "8",
                                  "--login-lock-s", "2", "--login-lock-max-s", "8"])
anon = srv.client()
srv.create_user("carol", "carol-pw-1")
srv.create_user("dave", "dave-pw-12")
for i in range(3):
    pt.expect(login(anon, "carol", "nope-%d" % i), 400, "wrong password %d of carol" % (i + 1),
              "IncorrectPasswordError")
pt.expect(login(anon, "carol", "nope-4"), 400, "the 4th wrong password is still answered",
          "IncorrectPasswordError")
st, b = login(anon, "carol", "carol-pw-1")
pt.check(st == 429 and b.get("code") == "TooManyRequestsError" and "try again in" in b["message"]
         and anon.last_headers.get("Retry-After") in ("1", "2"),
         "then carol's name is locked, even with the right password: 429 TooManyRequestsError "
         "with Retry-After", (st, b, anon.last_headers))
st, b = login(anon, "CAROL", "x-123456")
pt.check(st == 429, "the lock holds for the name in any case", (st, b))
pt.expect(login(anon, "dave", "dave-pw-12"), 200, "another user logs in meanwhile")
pt.expect(login(FromClient(srv.url, "127.0.0.2"), "dave", "dave-pw-12"), 200,
          "and from another address")
time.sleep(2.1)
pt.expect(login(anon, "carol", "carol-pw-1"), 200, "carol logs in once the lock has passed")
st, b = login(anon, "carol", "nope-5")
pt.check(st == 400, "a success forgets the name's failures", (st, b))

# an address spraying many names: locked after login_fail_free_addr failures
spray = FromClient(srv.url, "127.0.0.3")
codes = [login(spray, "user%d" % i, "guess-123")[0] for i in range(12)]
pt.check(codes[:7].count(400) == 7 and codes[-1] == 429,
         "an address that sprays many names is locked", codes)
pt.expect(login(spray, "dave", "dave-pw-12"), 429, "a locked address cannot log in either",
          "TooManyRequestsError")
pt.expect(login(FromClient(srv.url, "127.0.0.4"), "dave", "dave-pw-12"), 200,
          "while other addresses can")
# the rate a single address gets: found 52 wrong logins/s before the throttle
attacker = FromClient(srv.url, "127.0.0.5")
t0, tries = time.monotonic(), 0
while time.monotonic() - t0 < 3:
    login(attacker, "victim%d" % (tries % 3), "guess-%d" % tries)
    tries += 1
checked = srv.log().count("addr=127.0.0.5")
pt.check(checked <= 12, "one address gets at most a handful of password checks in 3 s "
         "(%d requests, %d checked)" % (tries, checked), checked)
st, text = srv.client(srv.admin_token).get("/metrics")
vals = {}
for line in (text if isinstance(text, str) else "").splitlines():
    if line.startswith("pai_login"):
        k, v = line.rsplit(" ", 1)
        vals[k] = float(v)
pt.check(vals.get("pai_logins_throttled_total", 0) >= tries - 12
         and vals.get("pai_logins_failed_total", 0) >= 20
         and 0 < vals.get('pai_login_throttle_keys{kind="addr"}', 0) <= 16384,
         "/metrics counts failed and throttled logins and the remembered keys", vals)
pt.done()
