#!/usr/bin/env python3
"""bench/scale.py - a big hollow cluster and a submission storm, per store.

For each store backend asked (--stores sqlite,postgres) it starts a real
`pai server` (SQLite in its data dir; PostgreSQL in a private throw-away
cluster, scripts/pg-test-cluster.sh, as tests/suites/store_pg.sh does),
then:

  1. baseline, same server, same run: a bare keep-alive GET /api/v2/info
     loop for --baseline-s seconds (requests/s, p50/p99), idle server;
  2. --nodes hollow nodes x 8 GPUs from --procs `pai agent --hollow
     --nodes K` processes (each node holds one long-poll); time to Ready;
  3. the storm: --jobs jobs (1 GPU, `sleep --job-s`) from --clients
     concurrent clients (threads, one keep-alive connection each), while a
     prober GETs a just-acknowledged job's detail in a loop: the detail GET
     p50/p99 during the storm, and, for sampled jobs, the time from the 202
     until the job shows RUNNING (scheduler pass + the agent's sync round
     trip: the agents' sync latency as users see it);
     With --lister N a third client, in its own process, lists the jobs
     (GET /api/v2/jobs?limit=N, newest first, as the portal does) in a
     loop during the storm: the list's p50/p99 and, against a run without
     it, what a list costs the submissions and the detail GETs;
  4. afterwards: every acknowledged job listed (none lost), refusals by
     status and reason, the scheduler's decision time (/metrics,
     pai_scheduler_decision_seconds) and pass time (pai_scheduler_pass_seconds,
     the storm's passes), the server's threads and VmRSS
     (/proc/PID/status, sampled through the run: max).

Ratios against the baseline are printed first.  The load generator is
Python on the same machine as server and agents: on a small machine it is
part of what is measured (see docs/benchmarks.md, "Scale").

  python3 bench/scale.py                       # 2,000 nodes x 8, 20,000 jobs, 50 clients
  python3 bench/scale.py --nodes 10000 --procs 10 --jobs 100000   # the issue's size
  make bench-scale ARGS="--stores sqlite --jobs 5000"
"""

import argparse
import atexit
import collections
import http.client
import json
import multiprocessing
import os
import queue
import resource
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, os.path.join(ROOT, "tests", "blackbox"))
import e2etest as e  # noqa: E402
import paitest as pt  # noqa: E402


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


def proc_status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def ms(x):
    return x * 1000.0


class Conn:
    """One keep-alive connection; reconnects once on a dropped connection."""

    def __init__(self, port, token):
        self.port, self.token, self.h = port, token, None

    def do(self, method, path, body=None, ctype=None):
        for attempt in (0, 1):
            try:
                if self.h is None:
                    self.h = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                hdr = {"Authorization": "Bearer " + self.token}
                if ctype:
                    hdr["Content-Type"] = ctype
                self.h.request(method, path, body=body, headers=hdr)
                r = self.h.getresponse()
                data = r.read()
                return r.status, data
            except (OSError, http.client.HTTPException) as ex:
                self.h.close()
                self.h = None
                if attempt:
                    return -1, str(ex).encode()
        return -1, b""


def job_text(k, job_s):
    return ("protocolVersion: 2\nname: s%06d\ntype: job\nprerequisites:\n"
            "  - {type: dockerimage, name: img, uri: busybox}\ntaskRoles:\n"
            "  main:\n    instances: 1\n    dockerImage: img\n"
            "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 1024}\n"
            "    commands: [\"sleep %d\"]\n" % (k, job_s))


class Sampler(threading.Thread):
    """The server's threads and VmRSS every 0.5 s until stopped."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.threads, self.rss, self.stop_ev = pid, [], [], threading.Event()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                st = proc_status(self.pid)
                self.threads.append(int(st["Threads"]))
                self.rss.append(int(st["VmRSS"].split()[0]))
            except (OSError, KeyError, ValueError):
                pass
            self.stop_ev.wait(0.5)


class PendingSampler(threading.Thread):
    """pai_http_write_pending (per class, or "all" from a server without
    classes) from /metrics every second until stopped."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.samples, self.stop_ev = port, collections.defaultdict(list), \
            threading.Event()

    def run(self):
        while not self.stop_ev.wait(1.0):
            try:
                text = metrics(self.port)
            except (OSError, http.client.HTTPException):
                continue
            for line in text.splitlines():
                if line.startswith("pai_http_write_pending"):
                    cls = line.split('class="', 1)[1].split('"', 1)[0] if "class=" in line \
                        else "all"
                    self.samples[cls].append(float(line.rsplit(" ", 1)[1]))

    def summary(self):
        return "; ".join("%s max %.0f mean %.0f" % (c, max(v), sum(v) / len(v))
                         for c, v in sorted(self.samples.items()) if v) or "no samples"


def counter(text, name):
    """A counter's value in a /metrics text, or None when absent."""
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def loadavg():
    try:
        return " ".join(open("/proc/loadavg").read().split()[:3])
    except OSError:
        return "?"


def metrics(port):
    """GET /metrics on a connection of its own, tried again twice when the
    server closed it unanswered (at max_connections a new connection may
    evict, or be evicted, before its request is read)."""
    for attempt in range(3):
        h = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            h.request("GET", "/metrics")
            return h.getresponse().read().decode()
        except (http.client.RemoteDisconnected, ConnectionError):
            if attempt == 2:
                raise
            time.sleep(0.5)
        finally:
            h.close()


def histogram(text, name, labels=""):
    """(count, sum, [(le, cumulative)]) of a Prometheus histogram, the samples
    whose labels contain `labels` summed."""
    count = total = 0.0
    buckets = collections.OrderedDict()
    for line in text.splitlines():
        if labels and labels not in line:
            continue
        if line.startswith(name + "_count"):
            count += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_sum"):
            total += float(line.rsplit(" ", 1)[1])
        elif line.startswith(name + "_bucket"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            le = float("inf") if le == "+Inf" else float(le)
            buckets[le] = buckets.get(le, 0.0) + float(line.rsplit(" ", 1)[1])
    return count, total, sorted(buckets.items())


def hist_delta(after, before):
    """A histogram's growth between two scrapes: (count, sum, buckets)."""
    b0 = dict(before[2])
    return (after[0] - before[0], after[1] - before[1],
            [(le, c - b0.get(le, 0.0)) for le, c in after[2]])


def route_hist(text, method, route):
    return histogram(text, "pai_api_request_duration_seconds",
                     'method="%s",route="%s"' % (method, route))


def hist_pct(buckets, count, p):
    for le, c in buckets:
        if c >= count * p:
            return le
    return float("inf")


def baseline(port, token, seconds):
    c = Conn(port, token)
    lat, t_end = [], time.time() + seconds
    while time.time() < t_end:
        t = time.time()
        st, _ = c.do("GET", "/api/v2/info")
        if st == 200:
            lat.append(time.time() - t)
    return len(lat) / seconds, lat


def start_pg():
    if not subprocess.run("ls /usr/lib/postgresql/*/bin/pg_ctl", shell=True,
                          capture_output=True).returncode == 0:
        return None, None
    d = tempfile.mkdtemp(prefix="pai-bench-pg-")
    port = pt.free_port()
    done = []

    def stop():
        if done:
            return
        done.append(1)
        subprocess.run(["bash", os.path.join(ROOT, "scripts/pg-test-cluster.sh"), "stop", d,
                        str(port)], capture_output=True)
        subprocess.run(["rm", "-rf", d])
    # run()'s finally stops the server, then this; at exit too (once), for
    # a signal that comes before run() has it (sweep.py turns SIGTERM and
    # SIGHUP into an exit, ^C is one): registered before the cluster starts
    atexit.register(stop)
    r = subprocess.run(["bash", os.path.join(ROOT, "scripts/pg-test-cluster.sh"), "start", d,
                        str(port)], capture_output=True, text=True)
    if r.returncode != 0:
        print("bench/scale: PostgreSQL did not start: " + r.stderr.strip())
        stop()
        return None, None
    return r.stdout.strip().splitlines()[-1], stop


def prober_main(port, token, inbox, outbox, stop):
    """GET the detail of just-acknowledged jobs in a loop until stop; sends
    back (detail GET latencies, 202 -> no longer WAITING latencies)."""
    cn = Conn(port, token)
    watching, get_lat, dispatch, latest = {}, [], [], None
    while not stop.is_set():
        try:
            while True:
                latest = inbox.get_nowait()
        except queue.Empty:
            pass
        if latest is None:
            time.sleep(0.01)
            continue
        name, t_ack = latest
        if len(watching) < 20 and name not in watching:
            watching[name] = t_ack
        for job, ta in list(watching.items()) + [(name, t_ack)]:
            t = time.time()
            st, body = cn.do("GET", "/api/v2/jobs/admin~" + job)
            if st == 200:
                get_lat.append(time.time() - t)
                if job in watching:
                    try:
                        state = json.loads(body)["jobStatus"]["state"]
                    except (ValueError, KeyError):
                        state = None
                    if state != "WAITING":
                        dispatch.append(time.time() - ta)
                        del watching[job]
            if stop.is_set():
                break
        time.sleep(0.02)
    outbox.put((get_lat, dispatch))


def lister_main(port, token, limit, outbox, stop):
    """List the jobs (limit per call, newest first) in a loop until stop;
    sends back the list GET latencies."""
    cn, lat = Conn(port, token), []
    while not stop.is_set():
        t = time.time()
        st, _ = cn.do("GET", "/api/v2/jobs?limit=%d" % limit)
        if st == 200:
            lat.append(time.time() - t)
        stop.wait(0.1)
    outbox.put(lat)


def run(store, a):
    tag = "[%s]" % store
    env = dict(pt.PRODUCTION_ENV)  # the server as a user's runs
    stop_pg = None
    if store == "postgres":
        url, stop_pg = start_pg()
        if not url:
            print("%s skipped: PostgreSQL server not installed (scripts/deps.sh --postgres)" % tag)
            return
        env["PAI_STORE"] = url
    # Task ports are pooled per address (per host, as on a real install:
    # 8 GPUs' tasks share a few dozen ports).  Here one agent process's
    # nodes share its loopback address: a pool of up to 45,000 ports (the
    # most above the default base) holds 1,000 nodes' 8 tasks with their
    # ports (a job gets 2-3: ssh and the defaults).
    per_addr = 8 * 3 * ((a.nodes + a.procs - 1) // a.procs)
    ports = ["--task-port-count", str(min(45000, per_addr))] if per_addr > 12000 else []
    srv = pt.start_server(extra_args=ports + ["--log-level", "warn", "--max-connections",
                                      str(a.nodes + a.clients + 512),
                                      "--max-idle-connections-per-ip", "0",
                                      "--node-lost-timeout-s", "600"] + a.server_args, env=env)
    pid = srv.proc.pid
    idle = proc_status(pid)
    samp = Sampler(pid)
    samp.start()
    try:
        _run(srv, pid, idle, samp, tag, a)
    finally:
        samp.stop_ev.set()
        srv.stop()
        if stop_pg:
            stop_pg()


def _run(srv, pid, idle, samp, tag, a):
    out = []

    def say(line):
        out.append(line)
        print("%s %s" % (tag, line))
        sys.stdout.flush()

    base_rps, base_lat = baseline(srv.port, srv.admin_token, a.baseline_s)
    say("baseline GET /api/v2/info (1 keep-alive client, idle server): %.0f req/s, "
        "p50 %.2f ms p99 %.2f ms" % (base_rps, ms(pct(base_lat, .5)), ms(pct(base_lat, .99))))
    per = (a.nodes + a.procs - 1) // a.procs
    t0 = time.time()
    # Each agent process registers its nodes under its own loopback address
    # (127.0.1.N): the server pools task ports per address, as a real install
    # has one address per host; all on 127.0.0.1 ran the pool out past
    # ~12,000 placed tasks.
    agents = [e.agent(srv, "sc%02d" % i, "--hollow", "--nodes", str(per), "--log-level", "warn",
                      "--address", "127.0.%d.%d" % (1 + i // 250, 1 + i % 250))
              for i in range(a.procs)]
    c = srv.client(srv.admin_token)
    ready, deadline = [], time.time() + a.ready_timeout
    while len(ready) < per * a.procs and time.time() < deadline:
        try:
            ready = e.wait_nodes(c, per * a.procs, timeout=max(1, deadline - time.time()))
        except OSError:
            c = srv.client(srv.admin_token)
    ready_s = time.time() - t0
    say("%d of %d hollow nodes x 8 GPUs Ready in %.1f s (%d agent processes)"
        % (len(ready), per * a.procs, ready_s, a.procs))
    st_ready = proc_status(pid)

    # the storm
    acked, refused, lock = [], collections.Counter(), threading.Lock()
    sub_lat = []
    next_k = [0]

    def client():
        cn = Conn(srv.port, srv.admin_token)
        mine, lat = [], []
        while True:
            with lock:
                k = next_k[0]
                next_k[0] += 1
            if k >= a.jobs:
                break
            t = time.time()
            st, body = cn.do("POST", "/api/v2/jobs", job_text(k, a.job_s), "text/yaml")
            lat.append(time.time() - t)
            if st == 202:
                mine.append("s%06d" % k)
                if k % 8 == 0:  # enough for the prober
                    to_prober.put(("s%06d" % k, time.time()))
            else:
                try:
                    why = json.loads(body).get("message", "")[:80]
                except ValueError:
                    why = body[:80].decode(errors="replace")
                with lock:
                    refused[(st, why)] += 1
        with lock:
            acked.extend(mine)
            sub_lat.extend(lat)

    # The prober runs in its own process: in this one, 50 client threads
    # share the GIL, and its timings would include their turns.
    to_prober, from_prober = multiprocessing.Queue(), multiprocessing.Queue()
    stop_prober = multiprocessing.Event()
    pr = multiprocessing.Process(target=prober_main, daemon=True,
                                 args=(srv.port, srv.admin_token, to_prober, from_prober,
                                       stop_prober))
    lister, from_lister = None, multiprocessing.Queue()
    if a.lister:
        lister = multiprocessing.Process(target=lister_main, daemon=True,
                                         args=(srv.port, srv.admin_token, a.lister, from_lister,
                                               stop_prober))
    m_before = metrics(srv.port)

    th = [threading.Thread(target=client, daemon=True) for _ in range(a.clients)]  # ^C ends all
    pend = PendingSampler(srv.port)
    la0 = loadavg()
    ts = time.time()
    pend.start()
    pr.start()
    if lister:
        lister.start()
    for t in th:
        t.start()
    last = ts
    for t in th:
        while t.is_alive():
            t.join(1)
            if time.time() - last >= 15:  # progress, for long runs
                last = time.time()
                print("%s ... %d of %d jobs sent in %.0f s" % (tag, min(next_k[0], a.jobs),
                                                               a.jobs, last - ts))
                sys.stdout.flush()
    storm_s = time.time() - ts
    pend.stop_ev.set()
    stop_prober.set()
    get_lat, dispatch = from_prober.get(timeout=60)
    pr.join(30)
    list_lat = from_lister.get(timeout=120) if lister else []
    if lister:
        lister.join(30)
    st_storm = proc_status(pid)
    mtext = metrics(srv.port)

    # none lost: every acknowledged job listed afterwards
    # Pages of 5,000 (a 50,000 page rendered under the engine lock once ran
    # past the client's timeout; it no longer is, joblist.c), each tried
    # three times: a listing that fails is reported, not counted as lost.
    listed, offset, cn, list_err = set(), 0, Conn(srv.port, srv.admin_token), None
    while True:
        for _ in range(3):
            st, body = cn.do("GET", "/api/v2/jobs?order=submissionTime,ASC&limit=5000&offset=%d"
                             % offset)
            if st == 200:
                break
            time.sleep(1)
        if st != 200:
            list_err = "listing failed at offset %d: %s %s" % (offset, st, body[:80])
            break
        items = json.loads(body)
        listed.update(j["name"] for j in items)
        if len(items) < 5000:
            break
        offset += 5000
    lost = set(acked) - listed

    sub_rate = len(acked) / storm_s
    gp50, gp99 = pct(get_lat, .5), pct(get_lat, .99)
    say("RATIOS: storm detail GET p99 / baseline info GET p99 = %.1fx; submissions/s / "
        "baseline GETs/s = %.2f" % (gp99 / max(1e-9, pct(base_lat, .99)), sub_rate / base_rps))
    say("submissions: %d acknowledged of %d in %.1f s from %d clients = %.0f jobs/s "
        "(POST p50 %.1f ms p99 %.1f ms)" % (len(acked), a.jobs, storm_s, a.clients, sub_rate,
                                             ms(pct(sub_lat, .5)), ms(pct(sub_lat, .99))))
    say("refused: %d%s" % (sum(refused.values()), "".join(
        "; %d x %s %s" % (n, s, w) for (s, w), n in refused.most_common(5))))
    if list_err:
        say("lost: unknown, " + list_err)
    else:
        say("lost: %d of %d acknowledged jobs missing from the listing (%d listed)"
            % (len(lost), len(acked), len(listed)))
    say("job-detail GET during the storm: p50 %.1f ms p99 %.1f ms max %.1f ms (%d GETs; "
        "target p99 < 50 ms)" % (ms(gp50), ms(gp99), ms(max(get_lat or [0])), len(get_lat)))
    if a.lister:
        say("job list GET (limit=%d) during the storm: p50 %.1f ms p99 %.1f ms max %.1f ms "
            "(%d lists)" % (a.lister, ms(pct(list_lat, .5)), ms(pct(list_lat, .99)),
                            ms(max(list_lat or [0])), len(list_lat)))
    routes = [("GET", "/api/v2/jobs/{job}", "job-detail GET"),
              ("POST", "/api/v2/jobs", "submission POST")]
    for meth, route, what in routes + ([("GET", "/api/v2/jobs", "job list GET")]
                                       if a.lister else []):
        n, tot, b = hist_delta(route_hist(mtext, meth, route), route_hist(m_before, meth, route))
        say("%s inside the server (pai_api_request_duration_seconds, from the request read to "
            "the answer): %d, mean %.2f ms, p99 <= %s ms, p99.9 <= %s ms (histogram buckets)"
            % (what, n, ms(tot / n) if n else float("nan"),
               "%g" % ms(hist_pct(b, n, .99)) if n else "-",
               "%g" % ms(hist_pct(b, n, .999)) if n else "-"))
    say("write workers' queues during the storm (pai_http_write_pending, sampled 1/s): %s"
        % pend.summary())
    b0, b1 = (counter(m_before, "pai_agent_sync_batches_total"),
              counter(mtext, "pai_agent_sync_batches_total"))
    o0, o1 = (counter(m_before, "pai_agent_sync_batched_total"),
              counter(mtext, "pai_agent_sync_batched_total"))
    if None not in (b0, b1, o0, o1) and b1 > b0:
        say("agent syncs' sections under the engine lock during the storm: %d in %d batches "
            "(mean %.2f per batch)" % (o1 - o0, b1 - b0, (o1 - o0) / (b1 - b0)))
    else:
        say("agent syncs' batches: not counted by this server")
    ev = [counter(t, n) or 0 for t in (m_before, mtext)
          for n in ("pai_http_connections_evicted_total", "pai_http_connections_refused_total")]
    fails = sum(ag.log().count(" sync failed: ") for ag in agents)  # rate-limited lines
    say("agents' connections during the storm: %d evicted, %d refused (max_connections); "
        "agents' 'sync failed' log lines (each node logs its first 3, then every 20th): %d"
        % (ev[2] - ev[0], ev[3] - ev[1], fails))
    say("202 -> no longer WAITING (scheduler + agent sync), sampled jobs: p50 %.0f ms p99 %.0f "
        "ms (%d jobs)" % (ms(pct(dispatch, .5)), ms(pct(dispatch, .99)), len(dispatch)))
    n, tot, b = histogram(mtext, "pai_scheduler_decision_seconds")
    say("scheduler decisions (pai_scheduler_decision_seconds, one job placed or queued): %d, "
        "mean %.1f us, p99 <= %s ms (histogram bucket)"
        % (n, tot / n * 1e6 if n else float("nan"), "%g" % ms(hist_pct(b, n, .99)) if n else "-"))
    pn, ptot, pb = hist_delta(histogram(mtext, "pai_scheduler_pass_seconds"),
                              histogram(m_before, "pai_scheduler_pass_seconds"))
    if pn:
        say("scheduling passes during the storm (pai_scheduler_pass_seconds, every waiting job "
            "looked at once): %d, mean %.2f ms, p99 <= %g ms (histogram bucket)"
            % (pn, ptot / pn * 1e3, ms(hist_pct(pb, pn, .99))))
    else:
        say("scheduling passes: not timed by this server")
    samp.stop_ev.set()
    samp.join(2)
    say("server threads: idle %s, nodes Ready %s, after the storm %s, max %d; VmRSS: idle %s, "
        "Ready %s, after %s, max %.0f MiB (target < 2 GiB)"
        % (idle["Threads"], st_ready["Threads"], st_storm["Threads"], max(samp.threads or [0]),
           idle["VmRSS"], st_ready["VmRSS"], st_storm["VmRSS"], max(samp.rss or [0]) / 1024))
    say("machine: %d CPUs, load average %s at the storm's start, %s at its end"
        % (os.cpu_count(), la0, loadavg()))
    for ag in agents:
        ag.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stores", default="sqlite,postgres", help="sqlite,postgres (default both)")
    p.add_argument("--nodes", type=int, default=2000, help="hollow nodes, 8 GPUs each (2000)")
    p.add_argument("--procs", type=int, default=4, help="agent processes (4)")
    p.add_argument("--jobs", type=int, default=20000, help="jobs to submit (20000)")
    p.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    p.add_argument("--job-s", type=int, default=600, help="each job's `sleep` (600 s)")
    p.add_argument("--baseline-s", type=float, default=5, help="baseline loop seconds (5)")
    p.add_argument("--ready-timeout", type=float, default=900, help="nodes Ready within (900 s)")
    p.add_argument("--server-args", default="", help="more `pai server` options")
    p.add_argument("--lister", type=int, default=0, metavar="N",
                   help="list N jobs in a loop during the storm (0: no lister)")
    a = p.parse_args()
    a.server_args = a.server_args.split()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    for store in [s.strip() for s in a.stores.split(",") if s.strip()]:
        run(store, a)


if __name__ == "__main__":
    main()
