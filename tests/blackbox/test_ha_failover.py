#!/usr/bin/env python3
"""test_ha_failover.py - high availability with real processes: three `pai
server`s on one real PostgreSQL (a private cluster, scripts/pg-test-cluster.sh),
three agents with simulated GPUs given all three URLs, a stream of
submissions while jobs run; the leader is killed with SIGKILL several times
(and started again, as a standby).  Checks:

  - exactly one server leads; standbys answer /api/v2/info with the leader,
    forward users' writes to it and refuse the agents' sync with 421
    NotLeaderError naming it (test_ha_standby.py tests what standbys serve);
  - a standby takes over within leader_lease_s + a little (printed: the
    takeover time of each kill, and the time until a new job runs);
  - every acknowledged job reaches SUCCEEDED exactly once: one attempt, no
    retry, and its task appended exactly one line to a shared file;
  - the CLI, given the three URLs (PAI_SERVER), finds the leader;
  - a leader frozen (SIGSTOP) past its lease is replaced, and exits (75)
    as soon as it runs again.

Needs the `postgresql` package (scripts/deps.sh --postgres); without it the
test is a TAP skip."""

import http.client
import json
import os
import signal
import subprocess
import threading
import time

import e2etest as e
import hatest as ha
import paitest as pt

LEASE_S = 3
KILLS = 3
TOKEN = "ha-agent-token-0123456789"
PW = pt.ADMIN_PASSWORD

STORE = ha.start_pg("high availability failover", "pai-ha-pg-")


def new_server(i):
    return ha.HAServer(STORE, "pai-ha-srv%d-" % i, TOKEN, LEASE_S)


servers = [new_server(i).start() for i in range(3)]
URLS = [s.url for s in servers]


def leader_of(timeout=30):
    """The server that says it leads, once exactly one does."""
    end = time.time() + timeout
    while time.time() < end:
        leads = [s for s in servers if s.alive() and s.info().get("role") == "leader"]
        if len(leads) == 1:
            return leads[0]
        time.sleep(0.05)
    return None


lead = leader_of()
pt.check(lead is not None, "exactly one of three servers leads")
if lead is None:
    pt.done()
st, b = pt.Client(lead.url).post("/api/v2/authn/basic/login",
                                 {"username": pt.ADMIN_USER, "password": PW})
TOK = b.get("token") if st == 200 else None
pt.check(TOK is not None, "admin logs in at the leader", (st, b))
standby = next(s for s in servers if s is not lead)
i = standby.info()
pt.check(i.get("role") == "standby" and i.get("leader") == lead.url,
         "a standby's /api/v2/info names the leader", i)
st, b = pt.Client(standby.url, TOK).request("POST", "/api/v1/agent/sync", raw="{}",
                                            content_type="application/json")
pt.check(st == 421 and isinstance(b, dict) and b.get("code") == "NotLeaderError" and
         b.get("leader") == lead.url,
         "a standby answers the agents' sync with 421 naming the leader (agents follow)",
         (st, b))
st, b = pt.Client(standby.url, TOK).request("POST", "/api/v2/jobs", raw="x",
                                            content_type="text/yaml")
pt.check(st == 400 and isinstance(b, dict) and b.get("code") == "InvalidProtocolError",
         "a standby forwards a user's write to the leader, whose answer comes back", (st, b))
st, m1 = pt.Client(lead.url).get("/metrics")
st2, m0 = pt.Client(standby.url).get("/metrics")
pt.check("\npai_server_leader 1" in str(m1) and "\npai_server_leader 0" in str(m0),
         "/metrics: pai_server_leader is 1 on the leader, 0 on a standby",
         (st, str(m1)[:300], st2, str(m0)[:300]))
ren = [ln for ln in str(m1).splitlines() if ln.startswith("pai_leader_renewal_seconds")]
inf = [ln.split()[1] for ln in ren if ln.startswith('pai_leader_renewal_seconds_bucket{le="+Inf"} ')]
cnt = [ln.split()[1] for ln in ren if ln.startswith("pai_leader_renewal_seconds_count ")]
pt.check(len(inf) == 1 and inf == cnt and
         any(ln.startswith("pai_leader_renewal_seconds_sum ") for ln in ren),
         "/metrics: the leader's renewals as a histogram (its +Inf bucket equals its count, a sum)",
         ren)

# ---- agents --------------------------------------------------------------------------

W = pt.tmpdir("pai-ha-runs-")
os.chmod(W, 0o1777)  # tasks run as their user's uid (docs/security.md) and write here
RUNS = os.path.join(W, "runs.log")
agents = []
for n in range(3):
    d = pt.tmpdir("pai-ha-agent%d-" % n)
    # the list in one --server, or --server once per URL (the last agent)
    srv = ["--server", ",".join(URLS)] if n < 2 else sum((["--server", u] for u in URLS), [])
    p = pt.Proc([pt.PAI_BIN, "agent"] + srv + ["--name", "ha%d" % n, "--token", TOKEN,
                                               "--work-dir", d, "--gpus", "4", "--cpus", "16",
                                               "--memory-mb", "32768"],
                os.path.join(d, "agent.log"))
    p.spawn()
    agents.append(p)


def once(url, method, path, raw=None, content_type=None, timeout=10):
    """One HTTP request, never retried (pt.Client retries once on a broken
    connection, which would send a submission twice)."""
    u = url.split("//", 1)[1]
    conn = http.client.HTTPConnection(u.split(":")[0], int(u.split(":")[1]), timeout=timeout)
    h = {"Authorization": "Bearer " + TOK}
    if raw is not None:
        h["Content-Type"] = content_type
    try:
        conn.request(method, path, body=raw.encode() if raw is not None else None, headers=h)
        r = conn.getresponse()
        text = r.read()
    finally:
        conn.close()
    try:
        return r.status, json.loads(text) if text else None
    except ValueError:
        return r.status, text.decode(errors="replace")


class HA:
    """A REST client over the three servers that follows the leader."""

    def __init__(self):
        self.url = lead.url

    def request(self, method, path, timeout=30, **kw):
        end = time.time() + timeout
        while True:
            try:
                st, b = once(self.url, method, path, **kw)
                if st not in (421, 503):
                    return st, b
                if st == 421 and isinstance(b, dict) and b.get("leader"):
                    self.url = b["leader"]
                    continue
            except ConnectionRefusedError:
                pass  # never sent: try another server
            except OSError:
                if method != "GET":
                    return None, "connection failed"  # may or may not have been done
            if time.time() > end:
                return None, "no leader"
            self.url = URLS[(URLS.index(self.url) + 1) % 3] if self.url in URLS else URLS[0]
            time.sleep(0.1)


ha = HA()
end = time.time() + 30
while time.time() < end:
    st, b = ha.request("GET", "/api/v2/cluster/nodes")
    if st == 200 and len(b.get("items", [])) >= 3:
        break
    time.sleep(0.2)


def logs():
    return "\n".join("--- %s\n%s" % (x.url, x.log()[-1500:]) for x in servers)


pt.check(st == 200 and len(b.get("items", [])) >= 3, "three agents register",
         "%s %s\n%s" % (st, b, logs()))


def job(name, secs):
    cmd = 'echo "$PAI_JOB_NAME" >> %s; sleep %s' % (RUNS, secs)
    return e.job_yaml(name, [e.role("main", cmd, gpu=1)])


acked, unknown, refused = [], [], []
stop = threading.Event()


def submitter():
    c = HA()
    n = 0
    while not stop.is_set():
        name = "s%03d" % n
        n += 1
        st, b = c.request("POST", "/api/v2/jobs", raw=job(name, 1 + n % 4),
                          content_type="text/yaml", timeout=20)
        if st == 202:
            acked.append("admin~" + name)
        elif st is None or (st == 502 and isinstance(b, dict) and
                            b.get("code") == "LeaderNoAnswerError"):
            # the connection broke, or a standby forwarded it to a leader
            # killed before it answered: it may or may not have been done
            unknown.append("admin~" + name)
        else:
            refused.append((name, st, b))
        time.sleep(0.25)


th = threading.Thread(target=submitter)
th.start()
time.sleep(4)

# ---- kill the leader, several times --------------------------------------------------

takeovers, runs_again = [], []
for k in range(KILLS):
    lead = leader_of(10)
    if lead is None:
        pt.not_ok("a leader before kill %d" % (k + 1))
        break
    t0 = time.time()
    lead.kill9()
    new = None
    c = pt.Client
    while time.time() - t0 < 4 * LEASE_S + 20:
        for s in servers:
            if s is lead or s.info().get("role") != "leader":
                continue
            try:
                st, _ = c(s.url, TOK, timeout=5).get("/api/v2/jobs?limit=1")
            except OSError:
                st = None
            if st == 200:
                new = s
                break
        if new:
            break
        time.sleep(0.05)
    dt = time.time() - t0
    takeovers.append(dt)
    print("# kill %d: takeover by %s in %.2f s (leader_lease_s %d)" %
          (k + 1, new.url if new else "nobody", dt, LEASE_S), flush=True)
    pt.check(new is not None and dt < 2 * LEASE_S + 5,
             "kill %d: a standby takes over in %.1f s" % (k + 1, dt))
    # a job submitted now runs: the agents found the new leader
    probe = "probe%d" % k
    st, b = ha.request("POST", "/api/v2/jobs", raw=job(probe, 1), content_type="text/yaml")
    if st == 202:
        acked.append("admin~" + probe)
    t1 = time.time()
    running = False
    while time.time() - t1 < 30 and not running:
        st, d = ha.request("GET", "/api/v2/jobs/admin~" + probe)
        ts = e.tasks(d, "main") if st == 200 else []
        running = bool(ts) and ts[0].get("taskState") in ("RUNNING", "SUCCEEDED")
        time.sleep(0.1)
    runs_again.append(time.time() - t0)
    print("# kill %d: a new job runs %.2f s after the kill" % (k + 1, time.time() - t0),
          flush=True)
    pt.check(running, "kill %d: a job submitted after the takeover runs" % (k + 1))
    if k == KILLS - 1:
        # the CLI, given every URL, dead one first, finds the leader
        env = dict(os.environ, PAI_SERVER=",".join([lead.url] + [s.url for s in servers
                                                                   if s is not lead]),
                   PAI_TOKEN=TOK, PAI_USER="admin", PAI_CONFIG=os.path.join(W, "cli.json"))
        yml = os.path.join(W, "cli.yaml")
        with open(yml, "w") as f:
            f.write(job("viacli", 1))
        r = subprocess.run([pt.PAI_BIN, "submit", yml], env=env, capture_output=True,
                           text=True, timeout=60)
        pt.check(r.returncode == 0, "the CLI submits with the dead leader first in PAI_SERVER",
                 r.stdout + r.stderr)
        if r.returncode == 0:
            acked.append("admin~viacli")
        r = subprocess.run([pt.PAI_BIN, "jobs"], env=env, capture_output=True, text=True,
                           timeout=60)
        pt.check(r.returncode == 0 and "viacli" in r.stdout, "and lists jobs (pai jobs)",
                 r.stdout + r.stderr)
    lead.start()  # comes back as a standby
    i = lead.info()
    pt.check(i.get("role") == "standby", "kill %d: the old leader restarts as a standby" % (k + 1),
             i)
    time.sleep(3)

# ---- a frozen leader (SIGSTOP past its lease) stops when it wakes ----------------------

lead = leader_of(10)
if lead is not None:
    lead.proc.send_signal(signal.SIGSTOP)
    t0 = time.time()
    new = None
    while time.time() - t0 < 4 * LEASE_S + 10 and new is None:
        new = next((s for s in servers if s is not lead and s.info().get("role") == "leader"),
                   None)
        time.sleep(0.05)
    pt.check(new is not None, "a frozen leader is replaced (%.1f s)" % (time.time() - t0))
    lead.proc.send_signal(signal.SIGCONT)
    try:
        rc = lead.proc.wait(5)
    except subprocess.TimeoutExpired:
        rc = None
    pt.check(rc == 75, "the frozen leader, resumed, finds its lease lapsed and exits (75)",
             "exit %s\n%s" % (rc, lead.log()[-1500:]))
    pt.check("not renewed in time" in lead.log() or "taken over" in lead.log(),
             "and says why in its log", lead.log()[-1500:])
    lead.start()

stop.set()
th.join()

# ---- every acknowledged job ran exactly once ------------------------------------------

print("# %d acknowledged, %d unknown (connection lost in flight), %d refused" %
      (len(acked), len(unknown), len(refused)), flush=True)
pt.check(not refused, "no submission was refused", refused[:5])
final = {}
end = time.time() + 120
pending = list(acked)
while pending and time.time() < end:
    st, d = ha.request("GET", "/api/v2/jobs/" + pending[0])
    s = e.state(d) if st == 200 else None
    if s in ("SUCCEEDED", "FAILED", "STOPPED"):
        final[pending.pop(0)] = d
    else:
        time.sleep(0.2)
pt.check(not pending, "every acknowledged job reaches a final state", pending[:10])
bad = [(j, e.state(d), d.get("jobStatus", {}).get("retries")) for j, d in final.items()
       if e.state(d) != "SUCCEEDED" or d.get("jobStatus", {}).get("retries") != 0]
pt.check(not bad, "all %d SUCCEEDED with no retry" % len(final), bad[:10])
many = []
for j in final:
    st, att = ha.request("GET", "/api/v2/jobs/%s/job-attempts" % j)
    if st != 200 or len(att) != 1:
        many.append((j, st, len(att) if isinstance(att, list) else att))
pt.check(not many, "each has exactly one attempt", many[:10])
with open(RUNS) as f:
    lines = [x.strip() for x in f if x.strip()]
counts = {}
for x in lines:
    counts[x] = counts.get(x, 0) + 1
twice = {j: n for j, n in counts.items() if n > 1}
missing = [j for j in final if counts.get(j, 0) != 1]
pt.check(not twice and not missing, "every task ran exactly once (one line each in the file)",
         "twice: %s missing: %s" % (list(twice.items())[:10], missing[:10]))
# a submission whose answer was lost ran at most once, if it was stored at all
lost_twice = [j for j in unknown if counts.get(j, 0) > 1]
pt.check(not lost_twice, "an unacknowledged submission never ran twice", lost_twice)
print("# takeover times: %s s; new job running after: %s s" %
      (", ".join("%.2f" % t for t in takeovers), ", ".join("%.2f" % t for t in runs_again)),
      flush=True)
for p in agents:
    p.stop()
for s in servers:
    if s.alive():
        rc = s.stop()
        pt.check(rc == 0, "server %s stops cleanly" % s.url, "exit %s\n%s" % (rc, s.log()[-2000:]))
pt.done()
