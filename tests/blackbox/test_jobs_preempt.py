"""test_jobs_preempt.py - priorities through the lifecycle: a prod job that
does not fit preempts a running test-priority job of the same VC; the victim's
attempt ends with -1003 (PodPreemptedForCriticalPod, transient: retried, not
counted) once its agent has killed the tasks, the prod job starts on the freed
GPUs, and the victim runs again when they free up."""

import jobstest as jt
import paitest as pt

srv = pt.start_server()
c = srv.client(srv.admin_token)
n1 = jt.FakeAgent(srv, "p1", gpus=4)
n1.sync()

st, b = jt.submit(c, jt.job_yaml("low", [{"name": "main", "gpu": 4}], prio="test"))
pt.check(st == 202, "low-priority job submitted", (st, b))
low = n1.sync_for("admin~low")
pt.check(len(low) == 1, "low-priority job runs on all 4 GPUs", n1.desired)
n1.sync()

st, b = jt.submit(c, jt.job_yaml("high", [{"name": "main", "gpu": 4}], prio="prod"))
pt.check(st == 202, "prod job submitted", (st, b))
d = jt.wait_state(c, "admin~low", ("WAITING", "STOPPING"), timeout=5)
n1.sync()
pt.check(n1.find("admin~low") == [], "the victim's task is told to stop", n1.running)
n1.settle()
d = jt.wait_state(c, "admin~high", "RUNNING", timeout=10)
pt.check(d and d["jobStatus"]["state"] == "RUNNING", "the prod job runs once the victim is gone",
         d and d["jobStatus"])
n1.sync_for("admin~high")
pt.check(len(n1.find("admin~high")) == 1, "the prod job is dispatched to the node", n1.desired)
st, a = c.get("/api/v2/jobs/admin~low/job-attempts")
pt.check(st == 200 and a and a[-1]["exitCode"] == -1003,
         "the victim's attempt ended with -1003 (preempted)", a)
d = c.get("/api/v2/jobs/admin~low")[1]
pt.check(d["jobStatus"]["state"] == "WAITING" and d["jobStatus"]["retryDetails"]["user"] == 0,
         "the victim waits for a new attempt, the retry not counted", d["jobStatus"])
n1.exit(n1.find("admin~high")[0], 0)
n1.settle()
d = jt.wait_state(c, "admin~low", "RUNNING", timeout=20)
pt.check(d and d["jobStatus"]["state"] == "RUNNING" and d["jobStatus"]["attemptId"] == 1,
         "the victim runs again (attempt 1) when the GPUs free up", d and d["jobStatus"])
pt.done()
