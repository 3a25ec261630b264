#!/usr/bin/env python3
"""test_netns_ha.py - the leader's machine dies, on several "hosts": a
PostgreSQL, two `pai server`s, two agents and a client, each in a network
namespace of its own with its own address, joined by veth pairs to a bridge
in one more namespace (the host's namespace is never touched: nothing is
sent from it, nothing is added to it; every address used is one of the
namespaces', checked with `ip route get`).

A distributed job (a ps task and two workers, 3 GPUs over two 2-GPU nodes,
so it spans both agents) runs; the client talks to the standby only (it
forwards the submission and answers reads from its view).  Then the
leader is killed (SIGKILL): the standby takes over (time printed), the
agents find it and report their tasks, which it re-adopts: the job keeps
its one attempt, no task starts twice, the workers reach the ps task across
the bridge after the takeover, and the job succeeds.  Then the new leader is
cut off from both agents (blackhole routes both ways) while it still
reaches PostgreSQL: with leader_agents_silent_s it gives its lease up and
exits 75, the restarted first server leads, the agents report to it before
their nodes could be lost, and a running job keeps its attempt.  Last, that
leader's machine is cut off altogether (its link down): it stops (75)
before its lease ends, the standby takes over, the agents find it once
their held polls time out on the silent connection, and a running job
keeps its attempt.

Needs root, network namespaces (ip netns) and the `postgresql` package;
skipped with the reason otherwise.  Every namespace it creates is deleted,
and the PostgreSQL it starts stopped, at exit."""
import glob
import os
import subprocess
import time

import e2etest as e
import netnstest as nt
import paitest as pt

LEASE_S = 3
SILENT_S = 30  # leader_agents_silent_s (its least)
TOKEN = "netns-ha-agent-token-0123456789"
WHAT = "a leader lost among several hosts"

nt.require(WHAT)
if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
    pt.skip(WHAT, "PostgreSQL server not installed (scripts/deps.sh --postgres)")
    pt.done()

ROLES = ("db", "s1", "s2", "a1", "a2", "cli")
H = nt.Hosts("pha%d" % (os.getpid() % 100000), "10.78.%d" % (100 + os.getpid() % 100), ROLES)
NS, ADDR, ip = H.ns, H.addr, nt.ip
pgdir = pt.tmpdir("pai-netns-ha-pg-")
pgport = 5432
pg_started = False
PGSCRIPT = os.path.join(pt.REPO, "scripts", "pg-test-cluster.sh")


def stop_pg():  # after the servers stopped, before the namespaces go
    if pg_started:
        subprocess.run(["bash", PGSCRIPT, "stop", pgdir, str(pgport)], capture_output=True,
                       timeout=60)


H.on_teardown.append(stop_pg)
H.build(WHAT, "seven namespaces, a bridge and six veth pairs")
# every address used is reached through the namespace's own veth, never the host's
routes = {(a, b): ip("-n", NS[a], "route", "get", ADDR[b]).stdout
          for a in ("s1", "s2", "a1", "a2", "cli") for b in ("db", "s1", "s2", "a1", "a2")
          if a != b}
pt.check(all("dev eth0" in v for v in routes.values()),
         "inside the namespaces every peer's address goes out through their own veth",
         {k: v for k, v in routes.items() if "dev eth0" not in v})
H.host_untouched("s1")

# ---- PostgreSQL on its own host ------------------------------------------------------
r = subprocess.run(["ip", "netns", "exec", NS["db"], "env", "PG_TEST_LISTEN=" + ADDR["db"],
                    "bash", PGSCRIPT, "start", pgdir, str(pgport)], capture_output=True,
                   text=True, timeout=120)
pg_started = r.returncode == 0
pt.check(pg_started, "PostgreSQL listens on its host's address", r.stderr[-1500:])
if not pg_started:
    pt.done()
STORE = r.stdout.strip()

# ---- two servers, two agents ------------------------------------------------------------
URL = {s: "http://%s:9186" % ADDR[s] for s in ("s1", "s2")}


def server(s):
    d = pt.tmpdir("pai-netns-ha-%s-" % s)
    return H.server(s, ["--listen", "%s:9186" % ADDR[s], "--advertise-url", URL[s], "--data-dir",
                        d, "--store", STORE, "--admin-password", pt.ADMIN_PASSWORD,
                        "--agent-token", TOKEN, "--leader-lease-s", str(LEASE_S),
                        "--standby-refresh-s", "1", "--leader-agents-silent-s", str(SILENT_S),
                        "--node-lost-timeout-s", "60", "--pwhash-memlimit-kib", "8192",
                        "--pwhash-opslimit", "1"], d)


srv = {"s1": server("s1")}
pt.check("listening on" in srv["s1"].log() and "(standby)" not in srv["s1"].log(),
         "the first server leads", srv["s1"].log()[-1500:])
srv["s2"] = server("s2")
pt.check("listening on" in srv["s2"].log() and "(standby)" in srv["s2"].log(),
         "the second stands by", srv["s2"].log()[-1500:])
W = pt.tmpdir("pai-netns-ha-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
agents = {role: H.agent(role, "%s,%s" % (URL["s1"], URL["s2"]), TOKEN, "pai-netns-ha-")
          for role in ("a1", "a2")}

# The test itself is the client, in its own namespace; it talks to the standby only.
H.enter("cli")
st, b, c = nt.login(URL["s2"])
pt.check(st == 200, "the client logs in through the standby", (st, b))
st, info = c.get("/api/v2/info")
pt.check(st == 200 and info.get("role") == "standby" and info.get("leader") == URL["s1"],
         "the standby names the leader", info)
pt.check(sorted(e.wait_nodes(c, 2)) == ["a1", "a2"],
         "both agents register (the standby's view shows them)")

# ---- a distributed job across both agents -------------------------------------------
go = os.path.join(W, "go")
d = nt.start_spread(c, nt.spread_yaml(W, "start-%s-$PAI_TASK_INDEX-$$", go, True),
                    (ADDR["a1"], ADDR["a2"]),
                    "a 3-GPU job (ps + 2 workers) is submitted through the standby",
                    "its tasks are placed on both agents")
job = "admin~spread"


def starts():
    return sorted(f for f in os.listdir(W) if f.startswith("start-"))


def started(name):
    return [f for f in starts() if f.startswith("start-%s-" % name)]


def leads_after(url, t0, limit):
    """Seconds from t0 until the server at url says it leads (asked every
    50 ms until limit seconds after t0); None when it did not."""
    while time.time() - t0 < limit:
        try:
            st, info = pt.Client(url, timeout=5).get("/api/v2/info")
        except OSError:
            st, info = None, {}
        if st == 200 and info.get("role") == "leader":
            return time.time() - t0
        time.sleep(0.05)
    return None


def hold(name, go):
    """Submit the 1-GPU job name, whose task writes W/start-<name>-<pid> and
    runs until the file go exists, through c; wait until it runs and its
    task started.  (status, answer, detail, its start files)."""
    cmd = "echo $$ > %s/start-%s-$$; while [ ! -e %s ]; do sleep 0.2; done" % (W, name, go)
    st, b = e.submit(c, e.job_yaml(name, [e.role("main", cmd, gpu=1)]))
    d = e.wait_state(c, "admin~" + name, "RUNNING", 60)
    end = time.time() + 30
    while time.time() < end and not started(name):
        time.sleep(0.2)
    return st, b, d, started(name)


end = time.time() + 60
while time.time() < end and len(starts()) < 3:
    time.sleep(0.2)
before = starts()
pt.check(len(before) == 3, "its three tasks start", before)

# ---- the leader's machine dies --------------------------------------------------------
t0 = time.time()
srv["s1"].kill9()
took = leads_after(URL["s2"], t0, 4 * LEASE_S + 30)
print("# the standby took over %s s after the leader was killed (leader_lease_s %d)" %
      ("%.2f" % took if took is not None else "never", LEASE_S), flush=True)
pt.check(took is not None and took < 2 * LEASE_S + 5, "the standby takes over", took)


def synced(timeout=30):
    """Both agents have synced with the new leader: a restored node has no
    boot id until its agent reports (the view before knew none either)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            st, b = c.get("/api/v2/cluster/nodes")
        except OSError:
            st, b = None, {}
        boots = [x.get("status", {}).get("nodeInfo", {}).get("agentBootId")
                 for x in (b.get("items", []) if st == 200 else [])]
        if len(boots) == 2 and all(boots):
            return time.time()
        time.sleep(0.05)
    return None


t_sync = synced()
print("# both agents report to the new leader %s s after the kill" %
      ("%.2f" % (t_sync - t0) if t_sync else "never"), flush=True)
pt.check(t_sync is not None, "both agents find the new leader and report their tasks")
d = e.detail(c, job)
pt.check(e.state(d) == "RUNNING" and d.get("jobStatus", {}).get("retries", 0) == 0,
         "the job is still running, in its first attempt (re-adopted)", d.get("jobStatus"))
time.sleep(LEASE_S)  # the agents' reports reach the new leader; nothing may start again
st, att = c.get("/api/v2/jobs/%s/job-attempts" % job)
pt.check(st == 200 and len(att) == 1, "one job attempt only", att)
pt.check(starts() == before, "no task was started again", (before, starts()))
open(go, "w").close()
d = e.wait_state(c, job, ("SUCCEEDED", "FAILED"), 90)
print("# the job succeeded %.1f s after the kill" % (time.time() - t0), flush=True)
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"].get("retries", 0) == 0,
         "the job succeeds without a retry", d.get("jobStatus"))
got = sorted(open(os.path.join(W, f)).read().strip() for f in os.listdir(W)
             if f.startswith("reached-"))
pt.check(len(got) == 2, "both workers reached the ps task across the bridge after the takeover",
         got)
pt.check(starts() == before, "every task ran exactly once", starts())
st, att = c.get("/api/v2/jobs/%s/job-attempts" % job)
pt.check(st == 200 and len(att) == 1, "still one job attempt", att)

# ---- the new leader reaches PostgreSQL but not its agents ---------------------------
size = os.path.getsize(srv["s1"].log_path)
srv["s1"].spawn()  # the killed server comes back, as a standby
pt.check(pt._wait_for_line_after(srv["s1"].log_path, size, "(standby)", srv["s1"].proc, 60)
         is not None, "the killed server comes back as a standby")
go2 = os.path.join(W, "go2")
st, b, d, held = hold("hold", go2)
pt.check(st == 202, "a job is submitted to the leader", (st, b))
pt.check(e.state(d) == "RUNNING" and len(held) == 1, "it runs", (e.state(d), held))
t0 = time.time()
cut = [ip("-n", NS["s2"], "route", "add", "blackhole", ADDR[a] + "/32") for a in ("a1", "a2")]
cut += [ip("-n", NS[a], "route", "add", "blackhole", ADDR["s2"] + "/32") for a in ("a1", "a2")]
pt.check(all(x.returncode == 0 for x in cut),
         "the leader and both agents are cut off from each other (blackhole routes both ways); "
         "PostgreSQL, the client and the other server still reach it",
         [x.stderr for x in cut])
try:
    rc = srv["s2"].proc.wait(timeout=SILENT_S + 30)
except subprocess.TimeoutExpired:
    rc = None
quit_s = time.time() - t0
print("# the leader cut off from its agents gave its lease up %.2f s after the cut "
      "(leader_agents_silent_s %d)" % (quit_s, SILENT_S), flush=True)
pt.check(rc == 75 and "giving the lease up" in srv["s2"].log(),
         "the leader that reaches no agent gives its lease up and exits 75",
         (rc, quit_s, srv["s2"].log()[-3000:]))
c = pt.Client(URL["s1"], c.token, timeout=30)
took = leads_after(URL["s1"], t0, SILENT_S + 30)
pt.check(took is not None, "the other server, which reaches the agents, leads", took)
t_sync = synced()
print("# both agents report to it %s s after the cut (node_lost_timeout_s 60)" %
      ("%.2f" % (t_sync - t0) if t_sync else "never"), flush=True)
pt.check(t_sync is not None, "both agents find it and report their tasks",
         srv["s1"].log()[-3000:])
d = e.detail(c, "admin~hold")
pt.check(e.state(d) == "RUNNING" and d.get("jobStatus", {}).get("retries", 0) == 0,
         "the job still runs in its first attempt: no node was lost", d.get("jobStatus"))
open(go2, "w").close()
d = e.wait_state(c, "admin~hold", ("SUCCEEDED", "FAILED"), 60)
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"].get("retries", 0) == 0,
         "and succeeds without a retry", d.get("jobStatus"))
pt.check(started("hold") == held,
         "its task ran once", starts())

# ---- the leader's machine is cut off (from PostgreSQL too) ---------------------------
heal = [ip("-n", NS["s2"], "route", "del", "blackhole", ADDR[a] + "/32") for a in ("a1", "a2")]
heal += [ip("-n", NS[a], "route", "del", "blackhole", ADDR["s2"] + "/32") for a in ("a1", "a2")]
size = os.path.getsize(srv["s2"].log_path)
srv["s2"].spawn()  # healed, it comes back as a standby
pt.check(all(x.returncode == 0 for x in heal) and
         pt._wait_for_line_after(srv["s2"].log_path, size, "(standby)", srv["s2"].proc, 60)
         is not None, "healed, the other server comes back as a standby")
go3 = os.path.join(W, "go3")
st, b, d, held3 = hold("hold3", go3)
pt.check(st == 202 and len(held3) == 1, "a job runs", (st, b, held3))
t0 = time.time()
down = ip("-n", NS["s1"], "link", "set", "eth0", "down")
pt.check(down.returncode == 0, "the leader's machine is cut off (its link down)", down.stderr)
try:
    rc = srv["s1"].proc.wait(timeout=LEASE_S + 30)
except subprocess.TimeoutExpired:
    rc = None
print("# the cut-off leader stopped %.2f s after the cut (exit %s)" % (time.time() - t0, rc),
      flush=True)
pt.check(rc == 75, "it stops (fail-stop, 75) before its lease can end", rc)
c = pt.Client(URL["s2"], c.token, timeout=30)
took = leads_after(URL["s2"], t0, 4 * LEASE_S + 30)
print("# the standby took over %s s after the cut" % ("%.2f" % took if took else "never"),
      flush=True)
pt.check(took is not None and took < 2 * LEASE_S + 5, "the standby takes over", took)
t_sync = synced(60)
print("# both agents report to it %s s after the cut (their held polls time out on the "
      "silent connection)" % ("%.2f" % (t_sync - t0) if t_sync else "never"), flush=True)
pt.check(t_sync is not None and t_sync - t0 < 10,
         "both agents find it and report their tasks within 10 s of the cut (TCP keepalive "
         "1 s, user timeout 3 s)", t_sync - t0 if t_sync else None)
d = e.detail(c, "admin~hold3")
pt.check(e.state(d) == "RUNNING" and d.get("jobStatus", {}).get("retries", 0) == 0,
         "the job still runs in its first attempt", d.get("jobStatus"))
open(go3, "w").close()
d = e.wait_state(c, "admin~hold3", ("SUCCEEDED", "FAILED"), 60)
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"].get("retries", 0) == 0 and
         started("hold3") == held3,
         "and succeeds, its task run once", (d.get("jobStatus"), starts()))
pt.done()
