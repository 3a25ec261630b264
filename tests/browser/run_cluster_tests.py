#!/usr/bin/env python3
"""run_cluster_tests.py - starts a real cluster and runs the portal's browser tests on it.

The cluster is `pai server` plus two `pai agent`s with simulated GPUs and the
process runtime, on free loopback ports in temporary directories (through
tests/blackbox/paitest.py, which stops everything it started at exit).  Then
it runs tests/browser/portal.test.mjs in headless Chromium with the portal's
URL and the admin login, passing its "ok"/"not ok" lines through.

  python3 tests/browser/run_cluster_tests.py OUT_DIR
"""
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "blackbox"))
import paitest  # noqa: E402

GPUS_PER_NODE = 4
NODES = ("portal-n1", "portal-n2")


def prerequisites():
    """The problems that keep the browser from running, as strings."""
    probs = []
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        probs.append("%s is missing (scripts/deps.sh --browser installs it)" % chromium)
    if not shutil.which("node"):
        probs.append("node is missing (scripts/deps.sh --browser installs it)")
    if not os.path.isdir(os.path.join(HERE, "node_modules", "playwright-core")):
        probs.append("tests/browser/node_modules is missing (scripts/deps.sh --browser runs npm ci)")
    return probs


def wait_nodes(srv, count, timeout=60):
    c = srv.client(srv.admin_token)
    deadline = time.time() + timeout
    while time.time() < deadline:
        st, body = c.get("/api/v2/cluster/nodes")
        items = body.get("items", []) if st == 200 and isinstance(body, dict) else []
        ready = [n for n in items
                 if any(x.get("type") == "Ready" and x.get("status") == "True"
                        for x in n.get("status", {}).get("conditions", []))]
        if len(ready) >= count:
            return True
        time.sleep(0.2)
    return False


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(paitest.tmpdir("pai-portal-"), "shots")
    probs = prerequisites()
    if probs:
        for p in probs:
            paitest.not_ok("browser prerequisites: " + p)
        return 1
    srv = paitest.start_server()
    for name in NODES:
        paitest.start_agent(srv, name, ["--runtime", "process", "--gpus", str(GPUS_PER_NODE),
                                        "--gpu-model", "SimGPU", "--cpus", "8", "--memory-mb", "16384"])
    if not wait_nodes(srv, len(NODES)):
        paitest.not_ok("cluster of %d agents came up" % len(NODES), srv.log()[-2000:])
        return 1
    env = dict(os.environ, PORTAL_URL=srv.url, ADMIN_USER=paitest.ADMIN_USER,
               ADMIN_PASSWORD=srv.admin_password, OUT=out)
    print("# portal at %s, screenshots in %s" % (srv.url, out), flush=True)
    rc = subprocess.call(["node", os.path.join(HERE, "portal.test.mjs")], env=env,
                         timeout=int(os.environ.get("PORTAL_TEST_TIMEOUT", "600")))
    if rc != 0:
        print("# server log tail:\n" + "\n".join("#   " + l for l in srv.log()[-3000:].splitlines()))
    return rc


if __name__ == "__main__":
    sys.exit(main())
