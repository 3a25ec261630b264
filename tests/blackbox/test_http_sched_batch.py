"""test_http_sched_batch.py - in a server run with PAI_SCHED=normal (which
keeps the daemon's default SCHED_BATCH off: docs/operations.md, "CPU
policy"), with --http-sched-batch 1 the HTTP layer's
threads run under SCHED_BATCH (src/server/http.c, batch_begin):
libmicrohttpd's pool (MHD-worker), the write and offload workers and the
waiter thread; the engine's scheduler and timer threads and the main thread
keep the default policy; by default (http_sched_batch 0) none is
SCHED_BATCH.  The policy of each
thread is read from /proc/PID/task/TID/sched ("policy": 0 SCHED_OTHER, 3
SCHED_BATCH).  A server under either policy answers a request."""

import glob

import paitest as pt

HTTP_THREADS = {"MHD-worker", "pai-write", "pai-offload", "pai-waiters"}
OTHERS = {"pai", "pai-sched", "pai-timer"}


def policies(pid):
    """{thread name: set of policies} of pid's threads."""
    out = {}
    for t in glob.glob("/proc/%d/task/*" % pid):
        try:
            with open(t + "/comm") as f:
                comm = f.read().strip()
            with open(t + "/sched") as f:
                pol = [ln.split()[-1] for ln in f if ln.startswith("policy")]
        except OSError:
            continue  # a thread that ended meanwhile
        if pol:
            out.setdefault(comm, set()).add(int(pol[0]))
    return out


def answers(srv):
    st, _ = srv.client(srv.admin_token).get("/api/v2/jobs")
    return st == 200


for flag, want in (([], 0), (["--http-sched-batch", "1"], 3)):
    srv = pt.start_server(extra_args=flag, env={"PAI_SCHED": "normal"})
    got = policies(srv.proc.pid)
    http = {k: v for k, v in got.items() if k in HTTP_THREADS}
    rest = {k: v for k, v in got.items() if k in OTHERS}
    name = "default" if not flag else " ".join(flag)
    pt.check(set(http) == HTTP_THREADS and all(v == {want} for v in http.values()),
             "%s: the HTTP layer's threads run under policy %d" % (name, want), got)
    pt.check(rest and all(v == {0} for v in rest.values()),
             "%s: the engine's and the main thread keep the default policy" % name, got)
    pt.check(answers(srv), "%s: the server answers" % name)
    srv.stop()

# By default the whole daemon runs SCHED_BATCH, every thread of it.
srv = pt.start_server()
got = policies(srv.proc.pid)
pt.check(got and all(v == {3} for v in got.values()),
         "default: every thread of the server runs under policy 3", got)
pt.check(answers(srv), "default: the server answers")
srv.stop()
pt.done()
