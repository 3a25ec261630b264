#!/usr/bin/env python3
"""test_netns_hosts.py - pai on several "hosts": a server, two agents and a
client, each in a network namespace of its own with its own address, joined
by veth pairs to a bridge that lives in a fifth namespace (the host's
namespace is never touched: nothing is sent from it, nothing is added to
it).  A distributed job (a ps task and two workers, 3 GPUs over two
2-GPU nodes, so it spans both) runs with its workers reaching the ps task
across the bridge; then one agent is cut off (its link set down inside its
namespace): the server marks its node lost, the attempt fails with -1001
and the job waits for GPUs; the link comes back: the stale tasks on the
healed node are killed, the job runs again across both nodes and succeeds.

Needs root and network namespaces (ip netns); skipped with the reason
otherwise.  Every namespace it creates is deleted at exit."""
import json
import os
import time

import e2etest as e
import netnstest as nt
import paitest as pt

LOST_S = 3
WHAT = "several hosts in network namespaces"

nt.require(WHAT)
H = nt.Hosts("pai%d" % (os.getpid() % 100000), "10.77.%d" % (100 + os.getpid() % 100),
             ("srv", "a1", "a2", "cli"))
NS, ADDR, ip = H.ns, H.addr, nt.ip
H.build(WHAT, "five namespaces, a bridge and four veth pairs")
routes = {role: ip("-n", NS[role], "route", "get", ADDR["srv"]).stdout for role in ("a1", "cli")}
pt.check(all("dev eth0" in v or "dev lo" in v for v in routes.values()),
         "inside the namespaces the server's address is reached through their own veth",
         routes)
H.host_untouched("srv")

# ---- the server and two agents, each in its own namespace ---------------------------
W = pt.tmpdir("pai-netns-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
data = pt.tmpdir("pai-netns-srv-")
port = 9186
srv = H.server("srv", ["--listen", "%s:%d" % (ADDR["srv"], port), "--data-dir", data,
                      "--admin-password", pt.ADMIN_PASSWORD, "--node-lost-timeout-s", str(LOST_S),
                      "--pwhash-memlimit-kib", "8192", "--pwhash-opslimit", "1"], data, 30)
pt.check("listening on" in srv.log(), "the server listens on its namespace's address",
         srv.log()[-1500:])
url = "http://%s:%d" % (ADDR["srv"], port)
with open(os.path.join(data, "agent.token")) as f:
    token = f.read().strip()
agents = {role: H.agent(role, url, token, "pai-netns-") for role in ("a1", "a2")}

# The test itself is the client: it moves into the client's namespace.
H.enter("cli")
st, b, c = nt.login(url)
pt.check(st == 200, "the client logs in from its own namespace", (st, b))
pt.check(sorted(e.wait_nodes(c, 2)) == ["a1", "a2"], "both agents register from their hosts")
st, nodes = c.get("/api/v2/cluster/nodes")
addrs = sorted(a["address"] for x in nodes.get("items", [])
               for a in x.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP")
pt.check(addrs == sorted([ADDR["a1"], ADDR["a2"]]), "each node has its host's address", addrs)

# ---- a distributed job across both -------------------------------------------------
go = os.path.join(W, "go")
yaml = nt.spread_yaml(W, "pid-%s-$$", go, False)
d = nt.start_spread(c, yaml, (ADDR["a1"], ADDR["a2"]),
                    "a 3-GPU job (ps + 2 workers) is submitted", "its tasks are placed on both hosts")
job = "admin~spread"


def reached(n, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        got = [f for f in os.listdir(W) if f.startswith("reached-")]
        if len(got) >= n:
            return got
        time.sleep(0.2)
    return [f for f in os.listdir(W) if f.startswith("reached-")]


got = reached(2)
texts = sorted(open(os.path.join(W, f)).read().strip() for f in got)
pt.check(len(got) == 2, "both workers reached the ps task over the bridge", texts)
ps_host = e.tasks(d, "ps")[0].get("containerIp") if e.tasks(d, "ps") else None
froms = [t.split(" from ", 1)[-1] for t in texts]
print("# workers reached the ps task: %s" % "; ".join(texts))
pt.check(set(froms) <= {ADDR["a1"], ADDR["a2"]} and any(f != ps_host for f in froms),
         "one of them from the other host", (ps_host, texts))

# ---- partition a2, then heal it ------------------------------------------------------
for f in got:
    os.unlink(os.path.join(W, f))
t0 = time.time()
cut = ip("-n", NS["a2"], "link", "set", "eth0", "down")
pt.check(cut.returncode == 0, "a2 is cut off (its link down inside its namespace)", cut.stderr)
end = time.time() + 30
att = []
while time.time() < end:
    st, att = c.get("/api/v2/jobs/%s/job-attempts" % job)
    if st == 200 and any(a.get("exitCode") == -1001 for a in att):
        break
    time.sleep(0.2)
print("# node loss noticed %.1f s after the cut (node_lost_timeout_s %d)" % (time.time() - t0,
                                                                             LOST_S))
pt.check(any(a.get("exitCode") == -1001 for a in att),
         "the server marks a2 lost and the attempt ends with -1001", att)
d = e.wait_state(c, job, "WAITING", 20)
pt.check(e.state(d) == "WAITING", "the job waits: one host's 2 GPUs cannot hold it",
         d.get("jobStatus"))
t0 = time.time()
heal = ip("-n", NS["a2"], "link", "set", "eth0", "up")
pt.check(heal.returncode == 0, "a2's link comes back", heal.stderr)
d = e.wait_state(c, job, "RUNNING", 90)
print("# the job runs again %.1f s after the heal" % (time.time() - t0))
hosts = {t.get("containerIp") for r in ("ps", "worker") for t in e.tasks(d, r)}
pt.check(e.state(d) == "RUNNING" and hosts == {ADDR["a1"], ADDR["a2"]},
         "after the heal the job runs again on both hosts", (e.state(d), hosts))
pt.check(len(reached(2)) == 2, "its workers reach the new ps task")
open(go, "w").close()
d = e.wait_state(c, job, ("SUCCEEDED", "FAILED"), 60)
pt.check(e.state(d) == "SUCCEEDED" and d["jobStatus"].get("retries", 0) >= 1,
         "the job succeeds after its platform retry", d.get("jobStatus"))


def alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


pids = [int(open(os.path.join(W, f)).read()) for f in os.listdir(W) if f.startswith("pid-")]
end = time.time() + 30
while time.time() < end and any(alive(p) for p in pids):
    time.sleep(0.2)
pt.check(len(pids) >= 6 and not any(alive(p) for p in pids),
         "every task of both attempts is gone, the stale ones on the healed host too",
         [(p, alive(p)) for p in pids])
st, nodes = c.get("/api/v2/cluster/nodes")
pt.check(sorted(e.wait_nodes(c, 2)) == ["a1", "a2"], "both nodes are ready again",
         json.dumps(nodes)[:500])
pt.done()
