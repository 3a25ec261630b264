#!/usr/bin/env python3
"""test_ha_standby.py - what a standby serves (docs/architecture.md, "What a
standby serves"): two `pai server`s on one real PostgreSQL
(scripts/pg-test-cluster.sh), everything asked of the standby, browser-free,
as the portal asks it:

  - the portal's files and a login through the standby (the login is
    forwarded to the leader; the token it made works on the standby at once,
    read from the store on its first use);
  - reads (jobs, job detail, config, events, users, groups, VCs, nodes, ...)
    answered by the standby from its view of the store; a job submitted
    through the standby (forwarded) shows there at once (read your writes);
    one submitted at the leader within standby_refresh_s plus one rebuild
    (measured and printed), or at once with X-Pai-Read: leader;
  - a revoked token and a deleted user stop working on the standby within
    the same bound (measured and printed);
  - an idle store is not rebuilt; a change only to records the view does not
    hold (an event written in psql) is read from the store's change feed and
    the view kept; a pruned change window makes the standby rebuild whole;
  - forwarding keeps the leader's answer (status, code) and never loops;
    the agents' sync is refused with 421 naming the leader;
  - with the leader killed, the standby still answers reads from its view,
    refuses writes with 503 (nothing sent), and takes over.

Needs the `postgresql` package (scripts/deps.sh --postgres); without it the
test is a TAP skip."""

import http.client
import json
import subprocess
import time

import e2etest as e
import hatest as ha
import paitest as pt

LEASE_S = 3
REFRESH_S = 1
BOUND = REFRESH_S + 3  # refresh + one rebuild (a few ms here) + slack for a loaded machine
TOKEN = "ha-agent-token-0123456789"
PW = pt.ADMIN_PASSWORD

STORE = ha.start_pg("standby reads and forwarding", "pai-hasb-pg-")


def new_server(i):
    return ha.HAServer(STORE, "pai-hasb-srv%d-" % i, TOKEN, LEASE_S,
                       ("--standby-refresh-s", str(REFRESH_S)))


first = new_server(0).start()
end = time.time() + 30
while time.time() < end and first.info().get("role") != "leader":
    time.sleep(0.1)
second = new_server(1).start()
servers = [first, second]
lead = next((s for s in servers if s.info().get("role") == "leader"), None)
pt.check(lead is first, "the first server leads", [s.info() for s in servers])
if lead is None:
    pt.done()
sb = second
pt.check(sb.info().get("role") == "standby", "the second stands by", sb.info())


def once(url, method, path, token=None, raw=None, content_type=None, body=None, headers=None,
         timeout=15, src=None):
    """One request, never retried (a write must not be sent twice); src: the
    client's own loopback address (127.0.0.N), for per-address limits."""
    u = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(u.split(":")[0], int(u.split(":")[1]), timeout=timeout,
                                      source_address=(src, 0) if src else None)
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    data = None
    if body is not None:
        data, h["Content-Type"] = json.dumps(body).encode(), "application/json"
    elif raw is not None:
        data, h["Content-Type"] = raw.encode(), content_type
    try:
        conn.request(method, path, body=data, headers=h)
        resp = conn.getresponse()
        text = resp.read()
        ctype = resp.getheader("Content-Type") or ""
    finally:
        conn.close()
    try:
        return resp.status, (json.loads(text) if text and "json" in ctype else text.decode())
    except ValueError:
        return resp.status, text.decode(errors="replace")


def wait_view():
    """Until the standby has built its first view (reads come from it)."""
    end = time.time() + 30
    while time.time() < end:
        st, m = once(sb.url, "GET", "/metrics")
        for line in str(m).splitlines():
            if line.startswith("pai_standby_view_age_seconds ") and float(line.split()[1]) >= 0:
                return True
        time.sleep(0.1)
    return False


pt.check(wait_view(), "the standby builds its view of the store (pai_standby_view_age_seconds)")

# ---- the portal through the standby -------------------------------------------------

st, b = once(sb.url, "GET", "/")
pt.check(st == 200 and "<html" in str(b).lower(), "the standby serves the portal's page",
         (st, str(b)[:200]))
st, b = once(sb.url, "POST", "/api/v2/authn/basic/login",
             body={"username": pt.ADMIN_USER, "password": PW})
TOK = b.get("token") if st == 200 and isinstance(b, dict) else None
pt.check(TOK is not None, "a login through the standby (forwarded to the leader)", (st, b))
st, b = once(sb.url, "POST", "/api/v2/authn/basic/login",
             body={"username": pt.ADMIN_USER, "password": "wrong-password"})
pt.check(st == 400 and b.get("code") == "IncorrectPasswordError",
         "a wrong password through the standby: the leader's answer comes back", (st, b))
t0 = time.time()
st, b = once(sb.url, "GET", "/api/v2/jobs", token=TOK)
pt.check(st == 200 and b == [],
         "the token made by the leader works on the standby at once (read from the store)",
         (st, b, "%.3f s" % (time.time() - t0)))
st, b = once(sb.url, "GET", "/api/v2/jobs", token="0123456789abcdef.0000")
pt.check(st == 401, "an unknown token is refused by the standby", (st, b))

# ---- writes through the standby, reads from its view --------------------------------

YAML = e.job_yaml("sb1", [e.role("main", "sleep 1", gpu=1)])
st, b = once(sb.url, "POST", "/api/v2/jobs", token=TOK, raw=YAML, content_type="text/yaml")
pt.check(st == 202, "a job submitted through the standby is accepted (forwarded)", (st, b))
st, b = once(lead.url, "GET", "/api/v2/jobs/admin~sb1", token=TOK)
pt.check(st == 200, "the leader has it at once", (st, b))
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~sb1", token=TOK)
pt.check(st == 200 and b.get("name") == "sb1",
         "the standby's next read shows it at once (read your writes: forwarded until the "
         "view is newer than the write)", (st, b))

# a job submitted at the leader: the standby's view shows it after a refresh
time.sleep(REFRESH_S + 0.5)  # the view is newer than the write it forwarded
t_submit = time.time()
st, b = once(lead.url, "POST", "/api/v2/jobs", token=TOK,
             raw=e.job_yaml("sb0", [e.role("main", "sleep 1", gpu=1)]), content_type="text/yaml")
pt.check(st == 202, "a job submitted at the leader", (st, b))
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~sb0", token=TOK,
             headers={"X-Pai-Read": "leader"})
pt.check(st == 200 and b.get("name") == "sb0",
         "a read with X-Pai-Read: leader through the standby is the leader's (fresh)",
         (st, b))
seen = None
while time.time() - t_submit < 30:
    # as the portal asks (a browser's fetch sends Cache-Control: no-cache)
    st, b = once(sb.url, "GET", "/api/v2/jobs", token=TOK, headers={"Cache-Control": "no-cache"})
    if st == 200 and any(j.get("name") == "sb0" for j in b):
        seen = time.time() - t_submit
        break
    time.sleep(0.02)
print("# a job submitted at the leader shows in the standby's list after %s s "
      "(standby_refresh_s %d)" % ("%.2f" % seen if seen is not None else "never", REFRESH_S),
      flush=True)
pt.check(seen is not None and seen < BOUND,
         "the standby's list shows it within refresh + one rebuild", seen)
for path in ["/api/v2/jobs/admin~sb1", "/api/v2/jobs/admin~sb1/config",
             "/api/v2/jobs/admin~sb1/events", "/api/v2/jobs/admin~sb1/job-attempts",
             "/api/v2/users", "/api/v2/users/admin", "/api/v2/groups",
             "/api/v2/virtual-clusters", "/api/v2/cluster/nodes", "/api/v2/cluster/sku-types",
             "/api/v2/tokens", "/api/v2/storages", "/api/v2/usage"]:
    st, b = once(sb.url, "GET", path, token=TOK)
    st2, b2 = once(lead.url, "GET", path, token=TOK)
    pt.check(st == 200 and st2 == 200, "the standby answers GET %s from its view" % path,
             (st, str(b)[:300], st2))
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~sb1", token=TOK)
pt.check(st == 200 and b.get("name") == "sb1" and b.get("jobStatus", {}).get("state") ==
         "WAITING", "the job's detail on the standby: waiting (no node yet)", (st, b))
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~nope", token=TOK)
pt.check(st == 404 and b.get("code") == "NoJobError", "an unknown job: 404 from the view",
         (st, b))
st, b = once(sb.url, "GET", "/api/v2/templates", token=TOK)
pt.check(st == 200, "a read the view does not hold (templates) is forwarded", (st, str(b)[:200]))
st, b = once(sb.url, "DELETE", "/api/v2/jobs/admin~nope", token=TOK)
pt.check(st == 404 and b.get("code") == "NoJobError",
         "an error of a forwarded write comes back as the leader said it", (st, b))
st, b = once(sb.url, "POST", "/api/v2/jobs", token=TOK, raw=YAML, content_type="text/yaml",
             headers={"X-Pai-Forwarded-By": "http://elsewhere"})
pt.check(st == 421 and b.get("leader") == lead.url,
         "a request already forwarded is not forwarded again (421 naming the leader)", (st, b))
st, b = once(sb.url, "POST", "/api/v1/agent/sync", token=TOKEN, body={})
pt.check(st == 421 and b.get("leader") == lead.url,
         "the agents' sync is not forwarded: 421 naming the leader", (st, b))

# ---- revocation reaches the standby ------------------------------------------------

st, b = once(lead.url, "POST", "/api/v2/users", token=TOK,
             body={"username": "carol", "password": "carol-pw-123", "admin": False})
pt.check(st == 201, "a user made at the leader", (st, b))
st, b = once(sb.url, "POST", "/api/v2/authn/basic/login",
             body={"username": "carol", "password": "carol-pw-123"})
CT = b.get("token") if st == 200 and isinstance(b, dict) else None
pt.check(CT is not None, "she logs in through the standby", (st, b))
st, b = once(sb.url, "POST", "/api/v2/authn/basic/login",
             body={"username": "carol", "password": "carol-pw-123"})
CT2 = b.get("token") if st == 200 and isinstance(b, dict) else None
st, b = once(sb.url, "GET", "/api/v2/jobs", token=CT)
pt.check(st == 200, "her token works on the standby", (st, b))
st, b = once(sb.url, "GET", "/api/v2/jobs", token=CT2)
time.sleep(REFRESH_S + 0.5)  # both tokens now in the standby's view itself


def refused_within(token, what):
    t0 = time.time()
    while time.time() - t0 < 30:
        st, b = once(sb.url, "GET", "/api/v2/jobs", token=token)
        if st == 401:
            return time.time() - t0
        time.sleep(0.02)
    return None


st, b = once(lead.url, "DELETE", "/api/v2/tokens/" + CT, token=CT)
pt.check(st == 200, "she revokes her token at the leader", (st, b))
dt = refused_within(CT, "revoked")
print("# a revoked token is refused by the standby after %s s" %
      ("%.2f" % dt if dt is not None else "never"), flush=True)
pt.check(dt is not None and dt < BOUND, "a revoked token stops working on the standby within "
         "refresh + one rebuild", dt)
time.sleep(REFRESH_S + 0.5)  # the view is newer than the logins it forwarded
st, b = once(lead.url, "DELETE", "/api/v2/users/carol", token=TOK)
pt.check(st == 200, "the admin deletes her at the leader", (st, b))
dt = refused_within(CT2, "deleted")
print("# a deleted user's token is refused by the standby after %s s" %
      ("%.2f" % dt if dt is not None else "never"), flush=True)
pt.check(dt is not None and dt < BOUND,
         "a deleted user's token stops working on the standby within the same bound", dt)

pt.check("fenced" not in sb.log() and "write refused" not in sb.log(),
         "the standby never tried to write to the store (its views are read-only)",
         [x for x in sb.log().splitlines() if "fence" in x][:5])

# ---- an idle store is not rebuilt ----------------------------------------------------


def view_counts():
    st, m = once(sb.url, "GET", "/metrics")
    out = {}
    for line in str(m).splitlines():
        if line.startswith("pai_standby_view_builds_total{result=\"ok\"}"):
            out["builds"] = float(line.split()[1])
        elif line.startswith("pai_standby_view_checks_unchanged_total "):
            out["unchanged"] = float(line.split()[1])
        elif line.startswith("pai_standby_view_age_seconds "):
            out["age"] = float(line.split()[1])
        elif line.startswith("pai_standby_view_checks_outside_total "):
            out["outside"] = float(line.split()[1])
        elif line.startswith("pai_standby_view_changes_pruned_total "):
            out["pruned"] = float(line.split()[1])
    return out


time.sleep(REFRESH_S + 1)  # the last change's rebuild is done
c0 = view_counts()
time.sleep(4 * REFRESH_S + 0.5)
c1 = view_counts()
pt.check(c1.get("builds") == c0.get("builds") and
         c1.get("unchanged", 0) >= c0.get("unchanged", 0) + 3 and
         0 <= c1.get("age", -1) <= 2 * REFRESH_S + 1,
         "nothing changed: the standby checks the store's generation and does not rebuild, "
         "and its view stays fresh", (c0, c1))
st, b = once(lead.url, "POST", "/api/v2/jobs", token=TOK,
             raw=e.job_yaml("sbidle", [e.role("main", "true")]), content_type="text/yaml")
seen = None
t0 = time.time()
while time.time() - t0 < BOUND + 2:
    st2, b2 = once(sb.url, "GET", "/api/v2/jobs/admin~sbidle", token=TOK)
    if st2 == 200:
        seen = time.time() - t0
        break
    time.sleep(0.05)
c2 = view_counts()
pt.check(st == 202 and seen is not None and seen < BOUND and
         c2.get("builds", 0) > c1.get("builds", 0),
         "a change at the leader moves the generation: the standby rebuilds and shows it",
         (st, seen, c1, c2))

# ---- changes outside the view; a pruned change window ---------------------------------


def psql(sql):
    """Run sql on the store as a hand fix would (psql, not pai)."""
    r = subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", STORE, "-c", sql],
                       capture_output=True, text=True, timeout=30)
    return r.returncode == 0 or r.stderr


time.sleep(REFRESH_S + 1)
c0 = view_counts()
ok = psql("INSERT INTO pai_records (kind, key, seq, json) VALUES"
          " ('event', 'nobody~none/0000000001', 0, '{}')")
time.sleep(2 * REFRESH_S + 1)
c1 = view_counts()
pt.check(ok is True and c1.get("builds") == c0.get("builds") and
         c1.get("outside", 0) >= c0.get("outside", 0) + 1 and
         0 <= c1.get("age", -1) <= 2 * REFRESH_S + 1,
         "a change only to records the view does not hold (an event, read from the store when "
         "asked): the standby reads what changed and keeps its view (no rebuild)", (ok, c0, c1))
# the deletion's tombstone pruned in its own transaction: the standby's point is older
ok = psql("BEGIN; DELETE FROM pai_records WHERE kind = 'event' AND key = 'nobody~none/0000000001';"
          " SELECT pai_changes_prune('-1 hour'); COMMIT")
seen = False
t0 = time.time()
while time.time() - t0 < BOUND + 2 and not seen:
    time.sleep(0.2)
    c2 = view_counts()
    seen = c2.get("pruned", 0) >= c1.get("pruned", 0) + 1 and c2.get("builds", 0) > c1["builds"]
pt.check(ok is True and seen and "no longer all kept" in sb.log(),
         "a standby whose change window was pruned rebuilds its view whole", (ok, c1, c2))
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~sbidle", token=TOK)
pt.check(st == 200 and b.get("name") == "sbidle", "and serves it", (st, b))

# ---- logins through a standby count against the client's address ---------------------
# login_fail_free_addr is 20: a client that fails more often waits (429).
LOGIN = "/api/v2/authn/basic/login"


def flood(url, src, n, headers=None):
    """n failed logins (each under a name of its own: only the address adds
    up) from src; the statuses."""
    return [once(url, "POST", LOGIN, body={"username": "nobody%d" % i, "password": "bad"},
                 src=src, headers=headers)[0] for i in range(n)]


codes = flood(sb.url, "127.0.0.2", 26)
pt.check(429 in codes and codes.count(400) >= 20,
         "a client flooding failed logins through the standby is throttled (429)", codes)
st, b = once(sb.url, "POST", LOGIN, body={"username": "admin", "password": PW}, src="127.0.0.3")
pt.check(st == 200 and b.get("token"),
         "another client's login through the same standby is not (the leader counts each "
         "client's own address, vouched for by the standby)", (st, b))
forged = {"X-Pai-Client-Addr": "127.0.0.5",
          "X-Pai-Client-Addr-Proof": "%d.%s" % (int(time.time()), "ab" * 32)}
codes = flood(lead.url, "127.0.0.4", 26, headers=forged)
st, b = once(lead.url, "POST", LOGIN, body={"username": "admin", "password": PW},
             src="127.0.0.4", headers=dict(forged, **{"X-Pai-Client-Addr": "127.0.0.6"}))
st5, b5 = once(lead.url, "POST", LOGIN, body={"username": "admin", "password": PW},
               src="127.0.0.5")
pt.check(429 in codes and st == 429 and st5 == 200,
         "a client that forges the address header itself gets no effect: its own address is "
         "throttled, the one it named is not", (codes, st, st5))
st, b = once(sb.url, "POST", LOGIN, body={"username": "admin", "password": PW},
             src="127.0.0.4", headers=forged)
pt.check(st == 429, "nor through the standby (it sends the address it saw, not the client's "
         "header)", (st, b))

# ---- the leader dies -----------------------------------------------------------------

st, b = once(sb.url, "PUT", "/api/v2/jobs/admin~sb1/tag", token=TOK, body={"value": "x"})
pt.check(st == 200, "a write through the standby (tag a job) is forwarded", (st, b))
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~sb1", token=TOK)
pt.check(st == 200 and "x" in b.get("tags", []),
         "and the standby's next read shows it (read your writes)", (st, b))
time.sleep(REFRESH_S + 0.5)  # a view newer than that write: reads no longer forwarded
lead.kill9()
t0 = time.time()
st, b = once(sb.url, "GET", "/api/v2/jobs/admin~sb1", token=TOK)
pt.check(st == 200 and b.get("name") == "sb1",
         "with the leader dead, the standby still answers reads from its view", (st, b))
st, b = once(sb.url, "POST", "/api/v2/jobs", token=TOK,
             raw=e.job_yaml("sb2", [e.role("main", "true")]), content_type="text/yaml")
pt.check(st in (503, 421) and isinstance(b, dict) and
         b.get("code") in ("NoLeaderError", "NotLeaderError"),
         "and answers a write 503 NoLeaderError (nothing sent) until it leads", (st, b))
end = time.time() + 4 * LEASE_S + 20
while time.time() < end and sb.info().get("role") != "leader":
    time.sleep(0.05)
took = time.time() - t0
print("# the standby took over %.2f s after the leader was killed" % took, flush=True)
pt.check(sb.info().get("role") == "leader", "the standby takes over", sb.info())
st, b = once(sb.url, "POST", "/api/v2/jobs", token=TOK,
             raw=e.job_yaml("sb2", [e.role("main", "true")]), content_type="text/yaml")
pt.check(st == 202, "now it takes writes itself", (st, b))
st, b = once(sb.url, "GET", "/api/v2/jobs", token=TOK)
names = sorted(j.get("name") for j in b) if st == 200 else b
pt.check(names == ["sb0", "sb1", "sb2", "sbidle"], "and lists every job: none lost, none twice",
         names)
st, m = once(sb.url, "GET", "/metrics")
pt.check("\npai_standby_view_age_seconds -1" in str(m),
         "once leading, it keeps no view (pai_standby_view_age_seconds -1)",
         [x for x in str(m).splitlines() if "standby_view" in x])
pt.done()
