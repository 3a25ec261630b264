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
import atexit
import ctypes
import json
import os
import shutil
import subprocess
import time

import e2etest as e
import paitest as pt

CLONE_NEWNET = 0x40000000
LOST_S = 3


def ip(*args):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)


if os.geteuid() != 0:
    pt.skip("several hosts in network namespaces", "needs root (ip netns)")
    pt.done()
if not shutil.which("ip"):
    pt.skip("several hosts in network namespaces", "the ip command (iproute2) is missing")
    pt.done()

tag = "pai%d" % (os.getpid() % 100000)
NS = {r: "%s-%s" % (tag, r) for r in ("sw", "srv", "a1", "a2", "cli")}
net = "10.77.%d" % (100 + os.getpid() % 100)
ADDR = {"srv": net + ".1", "a1": net + ".2", "a2": net + ".3", "cli": net + ".4"}
made = []
mine = []  # processes started in the namespaces
home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
libc = ctypes.CDLL(None, use_errno=True)


def enter(ns_path):
    fd = os.open(ns_path, os.O_RDONLY) if isinstance(ns_path, str) else ns_path
    if libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns %s" % ns_path)


@atexit.register
def _teardown():  # before paitest's own cleanup: stop what runs inside, then the namespaces
    try:
        enter(home_ns)
    except OSError:
        pass
    for p in mine:
        try:
            p.stop()
        except Exception:
            pass
    for n in reversed(made):
        ip("netns", "del", n)


r = ip("netns", "add", NS["sw"])
if r.returncode != 0:
    pt.skip("several hosts in network namespaces", "ip netns add failed: " + r.stderr.strip())
    pt.done()
made.append(NS["sw"])
ok = ip("-n", NS["sw"], "link", "add", "br0", "type", "bridge").returncode == 0
ok = ok and ip("-n", NS["sw"], "link", "set", "br0", "up").returncode == 0
for role in ("srv", "a1", "a2", "cli"):
    n = NS[role]
    ok = ok and ip("netns", "add", n).returncode == 0
    made.append(n)
    ok = ok and ip("-n", n, "link", "set", "lo", "up").returncode == 0
    # the pair is created inside the bridge's namespace, its peer moved into the host's
    ok = ok and ip("-n", NS["sw"], "link", "add", "p-" + role, "type", "veth", "peer", "name",
                   "eth0", "netns", n).returncode == 0
    ok = ok and ip("-n", NS["sw"], "link", "set", "p-" + role, "master", "br0").returncode == 0
    ok = ok and ip("-n", NS["sw"], "link", "set", "p-" + role, "up").returncode == 0
    ok = ok and ip("-n", n, "addr", "add", ADDR[role] + "/24", "dev", "eth0").returncode == 0
    ok = ok and ip("-n", n, "link", "set", "eth0", "up").returncode == 0
pt.check(ok, "five namespaces, a bridge and four veth pairs", made)
if not ok:
    pt.done()
routes = {role: ip("-n", NS[role], "route", "get", ADDR["srv"]).stdout for role in ("a1", "cli")}
pt.check(all("dev eth0" in v or "dev lo" in v for v in routes.values()),
         "inside the namespaces the server's address is reached through their own veth",
         routes)
host_route = ip("route", "get", ADDR["srv"]).stdout
pt.check(not any(("p-" + r) in host_route for r in ADDR), "nothing was added to the host's "
         "namespace (never sent from there)", host_route)

# ---- the server and two agents, each in its own namespace ---------------------------
W = pt.tmpdir("pai-netns-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
data = pt.tmpdir("pai-netns-srv-")
port = 9186
srv = pt.Proc(["ip", "netns", "exec", NS["srv"], pt.PAI_BIN, "server", "--listen",
               "%s:%d" % (ADDR["srv"], port), "--data-dir", data, "--admin-password",
               pt.ADMIN_PASSWORD, "--node-lost-timeout-s", str(LOST_S), "--pwhash-memlimit-kib",
               "8192", "--pwhash-opslimit", "1"], os.path.join(data, "server.log"))
srv.spawn()
mine.append(srv)
deadline = time.time() + 30
while time.time() < deadline and "listening on" not in srv.log():
    time.sleep(0.05)
pt.check("listening on" in srv.log(), "the server listens on its namespace's address",
         srv.log()[-1500:])
url = "http://%s:%d" % (ADDR["srv"], port)
with open(os.path.join(data, "agent.token")) as f:
    token = f.read().strip()
agents = {}
for role in ("a1", "a2"):
    d = pt.tmpdir("pai-netns-%s-" % role)
    p = pt.Proc(["ip", "netns", "exec", NS[role], pt.PAI_BIN, "agent", "--server", url,
                 "--token", token, "--name", role, "--address", ADDR[role], "--work-dir", d,
                 "--gpus", "2", "--cpus", "8", "--memory-mb", "16384", "--runtime", "process"],
                os.path.join(d, "agent.log"))
    p.spawn()
    mine.append(p)
    agents[role] = p

# The test itself is the client: it moves into the client's namespace.
enter("/run/netns/" + NS["cli"])
c = pt.Client(url, timeout=30)
st, b = c.post("/api/v2/authn/basic/login", {"username": pt.ADMIN_USER,
                                               "password": pt.ADMIN_PASSWORD})
pt.check(st == 200, "the client logs in from its own namespace", (st, b))
c = pt.Client(url, b.get("token") if st == 200 else None, timeout=30)
pt.check(sorted(e.wait_nodes(c, 2)) == ["a1", "a2"], "both agents register from their hosts")
st, nodes = c.get("/api/v2/cluster/nodes")
addrs = sorted(a["address"] for x in nodes.get("items", [])
               for a in x.get("status", {}).get("addresses", []) if a.get("type") == "InternalIP")
pt.check(addrs == sorted([ADDR["a1"], ADDR["a2"]]), "each node has its host's address", addrs)

# ---- a distributed job across both -------------------------------------------------
go = os.path.join(W, "go")
ps_cmd = ("echo $$ > %s/pid-ps-$$; P=${PAI_PORT_LIST_ps_0_http%%%%,*}; "
          "cd %s && exec python3 -m http.server $P --bind 0.0.0.0" % (W, W))
worker_cmd = ("echo $$ > %s/pid-worker-$$; P=${PAI_PORT_LIST_ps_0_http%%%%,*}; "
              "for i in $(seq 1 150); do curl -sf -m 2 -o /dev/null "
              "http://$PAI_HOST_IP_ps_0:$P/ && break; sleep 0.2; done; "
              "curl -sf -m 2 -o /dev/null http://$PAI_HOST_IP_ps_0:$P/ || exit 1; "
              "echo \"$PAI_HOST_IP_ps_0 from $PAI_CURRENT_CONTAINER_IP\" "
              "> %s/reached-$PAI_TASK_INDEX-$$; "
              "while [ ! -e %s ]; do sleep 0.2; done" % (W, W, go))
yaml = e.job_yaml("spread", [e.role("ps", ps_cmd, gpu=1, ports={"http": 1}),
                             e.role("worker", worker_cmd, instances=2, gpu=1,
                                    min_succeeded=2)], retry=2)
st, b = e.submit(c, yaml)
pt.check(st == 202, "a 3-GPU job (ps + 2 workers) is submitted", (st, b))
job = "admin~spread"
d = e.wait_state(c, job, "RUNNING", 60)
hosts = {t.get("containerIp") for r in ("ps", "worker") for t in e.tasks(d, r)}
pt.check(hosts == {ADDR["a1"], ADDR["a2"]}, "its tasks are placed on both hosts", hosts)


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
