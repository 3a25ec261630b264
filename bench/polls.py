#!/usr/bin/env python3
"""bench/polls.py - what held agent long-polls cost the server.

Starts a real `pai server` (max_connections raised to fit, the per-address
idle bound off: every agent is on 127.0.0.1) and PROCS hollow
`pai agent --nodes K` processes on loopback, NODES nodes in all, each
holding one long-poll on the server (one connection each; the HTTP layer
holds a poll as a suspended connection, no thread).  Once every node is
Ready it samples, for SECONDS: the server's threads and resident memory
(/proc), its CPU share, and the latency of GET /api/v2/info from a fresh
connection RATE times a second.  Prints one line per figure
(docs/benchmarks.md, "Held agent polls").

NODES may list several sizes ("5000,10000"): one server per size.  With
BASELINE_BIN (a `pai` built from another commit, e.g. before the thread
pool) each size runs first on that server, then on PAI_BIN's, the agents
being PAI_BIN's in both, so the two are compared on the same machine in the
same run.

Knobs: NODES (5000), PROCS (10), SECONDS (20), RATE (5), PAI_BIN,
BASELINE_BIN, SERVER_ARGS (more options for this build's server).  Run: make bench-polls   (or python3 bench/polls.py)"""

import http.client
import os
import resource
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "blackbox"))
import e2etest as e  # noqa: E402
import paitest as pt  # noqa: E402

SIZES = [int(x) for x in os.environ.get("NODES", "5000").split(",") if x.strip()]
PROCS = max(1, int(os.environ.get("PROCS", "10")))
SECONDS = float(os.environ.get("SECONDS", "20"))
RATE = max(0.2, float(os.environ.get("RATE", "5")))
BASELINE_BIN = os.environ.get("BASELINE_BIN", "")
SERVER_ARGS = os.environ.get("SERVER_ARGS", "").split()  # this build's server only


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else -1


def run(label, server_bin, nodes):
    """One server (server_bin) with nodes held polls; prints its figures."""
    agent_bin = pt.PAI_BIN
    pt.PAI_BIN = server_bin
    try:
        srv = pt.start_server(extra_args=["--log-level", "warn", "--max-connections",
                                          str(nodes + 512), "--max-idle-connections-per-ip", "0",
                                          "--node-lost-timeout-s", "120"]
                               + (SERVER_ARGS if server_bin == agent_bin else []))
    finally:
        pt.PAI_BIN = agent_bin
    pid = srv.proc.pid
    base = proc_status(pid)
    c = srv.client(srv.admin_token)
    per = (nodes + PROCS - 1) // PROCS
    t0 = time.time()
    agents = [e.agent(srv, "p%02d" % i, "--hollow", "--nodes", str(per), "--log-level", "warn")
              for i in range(PROCS)]
    ready, deadline = [], time.time() + 600
    while len(ready) < per * PROCS and time.time() < deadline:
        try:  # a server too busy to answer within the client's timeout is asked again
            ready = e.wait_nodes(c, per * PROCS, timeout=max(1, deadline - time.time()))
        except OSError:
            c = srv.client(srv.admin_token)
    if os.environ.get("STACKS"):  # where the server's threads are (gdb), once Ready
        os.system("gdb -p %d -batch -ex 'thread apply all bt 12' > %s 2>&1"
                  % (pid, os.environ["STACKS"]))
    print("[%s, %d nodes] nodes ready: %d of %d in %.1f s" % (
        label, nodes, len(ready), per * PROCS, time.time() - t0))
    c.close()
    lat, threads, rss, failed = [], [], [], 0
    cpu0, w0 = cpu_s(pid), time.time()
    while time.time() < w0 + SECONDS:
        tick = time.time()
        st = proc_status(pid)
        if "VmRSS" not in st or not srv.alive():
            print("[%s, %d nodes] the server EXITED (status %s) with the polls held" % (
                label, nodes, srv.proc.poll()))
            break
        threads.append(int(st["Threads"]))
        rss.append(int(st["VmRSS"].split()[0]))
        t = time.time()
        try:
            h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
            h.request("GET", "/api/v2/info")
            h.getresponse().read()
            h.close()
            lat.append(time.time() - t)
        except OSError:
            failed += 1  # no answer within 10 s (or refused)
        time.sleep(max(0.0, 1.0 / RATE - (time.time() - tick)))
    if not threads:
        for a in agents:
            a.stop()
        return
    cpu = (cpu_s(pid) - cpu0) / (time.time() - w0)
    tag = "[%s, %d nodes]" % (label, nodes)
    print("%s server before agents: %s threads, VmRSS %s" % (tag, base["Threads"], base["VmRSS"]))
    print("%s server with %d held polls: threads p50 %d max %d, VmRSS p50 %d KiB max %d KiB "
          "(%.1f KiB per poll over the idle server)" % (
              tag, len(ready), pct(threads, 0.5), max(threads), pct(rss, 0.5), max(rss),
              (pct(rss, 0.5) - int(base["VmRSS"].split()[0])) / max(1, len(ready))))
    print("%s server CPU: %.2f cores (syncs return at least every heartbeat, 5 s)" % (tag, cpu))
    print("%s GET /api/v2/info meanwhile: p50 %.1f ms p99 %.1f ms max %.1f ms (%d answered, "
          "%d not within 10 s)" % (tag, pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000,
                                   max(lat or [0]) * 1000, len(lat), failed))
    sys.stdout.flush()
    for a in agents:
        a.stop()
    srv.stop()


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for nodes in SIZES:
        if BASELINE_BIN:
            run("baseline", BASELINE_BIN, nodes)
        run("this build", pt.PAI_BIN, nodes)


if __name__ == "__main__":
    main()
