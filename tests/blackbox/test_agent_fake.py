#!/usr/bin/env python3
"""Black-box tests of `pai agent` against a tiny fake server (stdlib only):
registration, start, logs, exit report, ack, "never twice", stop, agent
restart with re-adoption, hollow nodes.  The fake is in agentfake.py.
"""
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agentfake import (FAILS, Fake, get_log, make_server, report, start_agent,  # noqa: E402
                       stop, task)


def main():
    fake = Fake()
    srv = make_server(fake)
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    work = tempfile.mkdtemp(prefix="pai-agent-fake-")
    # tasks run as their user's own uid (docs/security.md): they write
    # their marker files here, like any world-writable scratch dir
    os.chmod(work, 0o1777)
    procs = []
    try:
        run_tests(fake, url, work, procs)
    finally:
        for p in procs:
            stop(p)
        srv.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    return 1 if FAILS[0] else 0


def run_tests(fake, url, work, procs):
    a = start_agent(url, work, "n1")
    procs.append(a)
    ok = fake.wait(lambda: "n1" in fake.nodes and fake.nodes["n1"]["node"] is not None)
    node = fake.nodes.get("n1", {}).get("node") or {}
    report(ok and node.get("cpus", 0) > 0 and len(node.get("gpus", [])) == 2
           and node.get("log_url", "").startswith("http://127.0.0.1:")
           and len(node.get("topology", [])) == 2
           and node.get("health", {}).get("disk_free_mb", 0) > 0,
           "agent registers with resources, GPUs, topology, health and log url", node)

    count = os.path.join(work, "starts")
    aid = "alice~j1/0/r/0/0"
    fake.set_desired("n1", [task(aid, "echo start >> %s; echo \"out $MY_VAR $CUDA_VISIBLE_DEVICES\"; "
                                      "echo oops >&2; sleep 0.3; exit 3" % count, gpus=[1])])
    ok = fake.wait(lambda: aid in fake.exits)
    ex = fake.exits.get(aid, [{}])[0]
    report(ok and ex.get("exit_code") == 3 and ex.get("state") == "exited"
           and "oops" in ex.get("diagnostics", ""),
           "task runs and its exit code and stderr diagnostics are reported", ex)

    st, out = get_log(node, aid, "stdout")
    report(st == 200 and "out hello 1" in out, "stdout log is served with env and GPU list", (st, out))
    st, out = get_log(node, aid, "all")
    report(st == 200 and "oops" in out and "out hello" in out, "combined log has both streams")
    st, out = get_log(node, aid, "stdout", tail=4)
    report(st == 200 and out == "o 1\n", "log tail returns the last bytes", repr(out))
    st, _ = get_log(node, aid, "stdout", token="wrong")
    report(st == 401, "log endpoint requires the bearer token", st)
    st, _ = get_log(node, "nobody~x/0/r/0/0", "stdout")
    report(st == 404, "unknown attempt log is 404", st)

    # The server repeats the attempt in the desired set: it must not run again.
    fake.set_desired("n1", [task(aid, "echo start >> %s" % count)])
    time.sleep(1.0)
    starts = open(count).read().count("start") if os.path.exists(count) else 0
    report(starts == 1, "an attempt is never started twice", starts)
    fake.set_desired("n1", [])

    # Acked attempts are no longer reported.
    ok = fake.wait(lambda: fake.nodes["n1"]["last"] is not None and
                   all(t["attempt_id"] != aid for t in fake.nodes["n1"]["last"]))
    report(ok, "acked attempts are no longer reported")

    # Stop: dropping an attempt from the desired set kills it (TERM).
    sid = "alice~j2/0/r/0/0"
    fake.set_desired("n1", [task(sid, "sleep 30")])
    ok = fake.wait(lambda: any(t["attempt_id"] == sid and t["state"] == "running"
                               for t in (fake.nodes["n1"]["last"] or [])))
    report(ok, "a started attempt is reported running")
    fake.set_desired("n1", [])
    ok = fake.wait(lambda: sid in fake.exits)
    ex = fake.exits.get(sid, [{}])[0]
    report(ok and ex.get("exit_code") == 143, "an undesired attempt is stopped (SIGTERM)", ex)

    # The same with a trap, stopped the moment it is reported running (the
    # monitor may not be up yet: the stop waits for it, test_runtime_stop.c).
    tid = "alice~j2t/0/r/0/0"
    fake.set_desired("n1", [task(tid, "trap 'exit 143' TERM; sleep 30 & wait", kill_grace_ms=20000)])
    fake.wait(lambda: any(t["attempt_id"] == tid and t["state"] == "running"
                          for t in (fake.nodes["n1"]["last"] or [])))
    fake.set_desired("n1", [])
    ok = fake.wait(lambda: tid in fake.exits, timeout=30)
    ex = fake.exits.get(tid, [{}])[0]
    report(ok and ex.get("exit_code") == 143,
           "an attempt stopped as soon as it runs ends gracefully (TERM, 143)", ex)

    # Stop escalates to SIGKILL after the grace period.
    kid = "alice~j3/0/r/0/0"
    fake.set_desired("n1", [task(kid, "trap '' TERM; sleep 30 & wait; sleep 30", kill_grace_ms=300)])
    fake.wait(lambda: any(t["attempt_id"] == kid for t in (fake.nodes["n1"]["last"] or [])))
    time.sleep(0.3)
    fake.set_desired("n1", [])
    ok = fake.wait(lambda: kid in fake.exits)
    ex = fake.exits.get(kid, [{}])[0]
    report(ok and ex.get("exit_code") == 137, "stop escalates to SIGKILL after kill_grace_ms", ex)

    # Agent restart: the attempt keeps running and is re-adopted, not restarted.
    rid = "alice~j4/0/r/0/0"
    rcount = os.path.join(work, "rstarts")
    fake.set_desired("n1", [task(rid, "echo start >> %s; sleep 2; exit 7" % rcount)])
    fake.wait(lambda: any(t["attempt_id"] == rid and t["state"] == "running"
                          for t in (fake.nodes["n1"]["last"] or [])))
    stop(a)
    a2 = start_agent(url, work, "n1")
    procs.append(a2)
    ok = fake.wait(lambda: rid in fake.exits, timeout=30)
    ex = fake.exits.get(rid, [{}])[0]
    starts = open(rcount).read().count("start") if os.path.exists(rcount) else 0
    report(ok and ex.get("exit_code") == 7 and starts == 1,
           "a restarted agent re-adopts a running attempt and reports its real exit",
           (ex, starts, open(os.path.join(work, "agent-n1.log")).read()[-3000:]))
    fake.set_desired("n1", [])

    # Hollow nodes: one process, several nodes, nothing executed.
    h = start_agent(url, work, "h", "--hollow", "--nodes", "4")
    procs.append(h)
    ok = fake.wait(lambda: all("h-%d" % i in fake.nodes and fake.nodes["h-%d" % i]["node"]
                               for i in range(4)))
    report(ok and fake.nodes["h-3"]["node"].get("hollow") is True, "one process hosts 4 hollow nodes")
    hid = "alice~h1/0/r/0/0"
    marker = os.path.join(work, "hollow-ran")
    fake.set_desired("h-2", [task(hid, "touch %s; sleep 0.2; exit 4" % marker)])
    ok = fake.wait(lambda: hid in fake.exits)
    ex = fake.exits.get(hid, [{}])[0]
    report(ok and ex.get("exit_code") == 4 and not os.path.exists(marker),
           "a hollow attempt ends with the code its command asks for, without running", ex)
    report(all(len(v) == 1 for v in fake.exits.values()), "every attempt ended exactly once")
    report(fake.auth_failures == 0, "every sync carried the token")


if __name__ == "__main__":
    sys.exit(main())
