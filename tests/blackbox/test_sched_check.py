#!/usr/bin/env python3
"""test_sched_check.py - the scheduler's invariant checker in a real server.

The test hook PAI_TEST_SCHED_CORRUPT=1 makes the first job bound leave the
scheduler's bookkeeping wrong on purpose (sched_test_corrupt_next_bind()).
With `sched_check: true` the check after that bind decision reports it: the
server log names the decision and the job, and
pai_scheduler_invariant_violations_total counts it.  With the default
(sampled) check the same error is found by the check after the pass, whose
log line names what the pass decided.  A server without the hook reports
nothing."""

import re
import time

import jobstest as jt
import paitest as pt


def metric(srv, name):
    st, text = srv.client().get("/metrics")
    m = re.search(r"^%s (\S+)$" % re.escape(name), text if st == 200 else "", re.M)
    return float(m.group(1)) if m else None


def run(label, args, env, expect):
    srv = pt.start_server(extra_args=args, env=env, expect_violations=expect is not None)
    c = srv.client(srv.admin_token)
    agent = jt.FakeAgent(srv, "n1", gpus=4)
    agent.sync()
    pt.check(metric(srv, "pai_scheduler_invariant_violations_total") == 0,
             "%s: no violation before any job" % label)
    time.sleep(1.2)  # past the sampled check at the first pass
    st, b = jt.submit(c, jt.job_yaml("one", [{"name": "main", "gpu": 2}]))
    pt.check(st == 202, "%s: a 2-GPU job accepted" % label, (st, b))
    d = jt.wait_state(c, "admin~one", "RUNNING", timeout=20)
    pt.check(d and d["jobStatus"]["state"] == "RUNNING", "%s: the job runs" % label, d)
    deadline = time.time() + 10
    v = metric(srv, "pai_scheduler_invariant_violations_total")
    while expect and not v and time.time() < deadline:
        time.sleep(0.1)
        v = metric(srv, "pai_scheduler_invariant_violations_total")
    log = srv.log()
    lines = [l for l in log.splitlines() if "scheduler invariant violated" in l]
    if expect:
        pt.check(v and v >= 1, "%s: the violation is counted in the metric" % label, v)
        pt.check(any(expect in l and "guaranteed jobs use 2 GPUs, the VC says 3" in l
                     for l in lines),
                 "%s: the log names what preceded it and what is wrong" % label, lines[:4])
    else:
        pt.check(v == 0 and not lines, "%s: nothing reported" % label, (v, lines[:4]))
    srv.stop()


run("sched_check true", ["--sched-check", "true"], {"PAI_TEST_SCHED_CORRUPT": "1"},
    "after a bind decision of job=admin~one")
run("sampled", ["--sched-check", "sample", "--sched-check-interval-s", "1"], {"PAI_TEST_SCHED_CORRUPT": "1"}, "decided: bind admin~one")
run("no hook", ["--sched-check", "true"], {}, None)
pt.done()
