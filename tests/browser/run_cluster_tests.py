#!/usr/bin/env python3
"""run_cluster_tests.py - starts a real cluster and runs the portal's browser tests on it.

The cluster is `pai up --detach` on a free port with a temporary data
directory (stopped with `pai down` at exit): two nodes with 4 simulated
GPUs, 8 CPUs and 16 GiB each, the process runtime and the scheduler config
`pai up` generates (VC default owning both nodes).  The URL and the admin
login are read from the files `pai up` leaves in its data directory.
With PORTAL_CLUSTER=server it is `pai server` with its own HiveD config (VC
default owning one node) plus two `pai agent`s instead (through
tests/blackbox/paitest.py, which stops everything it started at exit).
With PORTAL_CLUSTER=standby it is the same on two `pai server`s sharing a
private PostgreSQL (scripts/pg-test-cluster.sh), and the portal is opened on
the standby: every page through a server that answers reads from its view
of the store and forwards the rest to the leader (docs/architecture.md,
"What a standby serves").
Then it runs tests/browser/portal.test.mjs, then templates.test.mjs (the
template pages), in headless Chromium with the portal's URL and the admin
login, passing their "ok"/"not ok" lines through.

  python3 tests/browser/run_cluster_tests.py OUT_DIR
"""
import atexit
import os
import re
import shutil
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "blackbox"))
import paitest  # noqa: E402

GPUS_PER_NODE = 4
NODES = ("portal-n1", "portal-n2")
# The scheduler config (HiveD's format): two 4-GPU nodes; the VC "default"
# owns one, the other is free so that the test can create a VC on it.
HIVED_CONFIG = """
physicalCluster:
  cellTypes:
    SIM-GPU-NODE:
      childCellType: SIM-GPU
      childCellNumber: %d
      isNodeLevel: true
  physicalCells:
%s
virtualClusters:
  default:
    virtualCells:
    - cellType: SIM-GPU-NODE
      cellNumber: 1
""" % (GPUS_PER_NODE, "\n".join("  - cellType: SIM-GPU-NODE\n    cellAddress: %s" % n for n in NODES))


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


def read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def pai_up(data_dir):
    """`pai up --detach` on a free port; returns (url, user, password) or raises."""
    port = paitest.free_port()
    out = subprocess.run([paitest.PAI_BIN, "up", "--data-dir", data_dir, "--port", str(port),
                          "--nodes", str(len(NODES)), "--gpus", str(GPUS_PER_NODE), "--detach"],
                         capture_output=True, text=True, timeout=120)
    atexit.register(lambda: subprocess.run([paitest.PAI_BIN, "down", "--data-dir", data_dir],
                                           capture_output=True, timeout=120))
    url = read(os.path.join(data_dir, "pai-up.url"))
    password = read(os.path.join(data_dir, "admin.password"))
    login = re.search(r"login:\s+(\S+) / ", out.stdout)
    if out.returncode != 0 or not url or not password or not login:
        raise RuntimeError("pai up failed (status %d):\n%s%s" % (out.returncode, out.stdout, out.stderr))
    return url, login.group(1), password


class ClusterView:
    """Enough of paitest.Server for wait_nodes over a `pai up` cluster."""

    def __init__(self, url, user, password, data_dir):
        self.url = url
        self.data_dir = data_dir
        self.admin_password = password
        st, body = paitest.Client(url).post("/api/v2/authn/basic/login",
                                            {"username": user, "password": password})
        self.admin_token = body.get("token") if st == 200 and isinstance(body, dict) else None

    def client(self, token=None):
        return paitest.Client(self.url, token)

    def log(self):
        return read(os.path.join(self.data_dir, "logs", "server.log"))


def start_cluster():
    """(server-like object, admin user, cell type of a node) of a fresh cluster."""
    mode = os.environ.get("PORTAL_CLUSTER", "up")
    if mode == "up":
        data_dir = paitest.tmpdir("pai-portal-up-")
        url, user, password = pai_up(data_dir)
        # pai up's generated config names a node's cell type <model>-<gpus>-NODE
        return ClusterView(url, user, password, data_dir), user, "sim-gpu-%d-NODE" % GPUS_PER_NODE
    if mode not in ("server", "standby"):
        raise RuntimeError("PORTAL_CLUSTER must be up (the default), server or standby, not %r"
                           % mode)
    cfg = os.path.join(paitest.tmpdir("pai-portal-cfg-"), "hived.yaml")
    with open(cfg, "w") as f:
        f.write(HIVED_CONFIG)
    if mode == "standby":
        return start_standby(cfg), paitest.ADMIN_USER, "SIM-GPU-NODE"
    srv = paitest.start_server(extra_args=["--hived-config", cfg])
    for name in NODES:
        paitest.start_agent(srv, name, ["--runtime", "process", "--gpus", str(GPUS_PER_NODE),
                                        "--gpu-model", "SIM-GPU", "--cpus", "8", "--memory-mb", "16384"])
    return srv, paitest.ADMIN_USER, "SIM-GPU-NODE"


class Standby(paitest.Proc):
    """The second of two servers on one PostgreSQL: it stands by."""

    def __init__(self, argv, data_dir):
        super().__init__(argv, os.path.join(data_dir, "server.log"))
        self.data_dir = data_dir
        self.admin_password = paitest.ADMIN_PASSWORD
        self.admin_token = None
        self.url = None

    def client(self, token=None):
        return paitest.Client(self.url, token)


def start_standby(cfg):
    """PostgreSQL, a leader, a standby and two agents given both URLs; the
    standby (its URL, a login made through it) is what the portal gets."""
    pgdir, pgport = paitest.tmpdir("pai-portal-pg-"), paitest.free_port()
    script = os.path.join(HERE, "..", "..", "scripts", "pg-test-cluster.sh")
    r = subprocess.run(["bash", script, "start", pgdir, str(pgport)], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        raise RuntimeError("a private PostgreSQL did not start: " + r.stderr)
    atexit.register(lambda: subprocess.run(["bash", script, "stop", pgdir, str(pgport)],
                                           capture_output=True, timeout=60))
    token = "portal-standby-agent-token-0123456789"
    common = ["--hived-config", cfg, "--store", r.stdout.strip(), "--agent-token", token,
              "--standby-refresh-s", "1"]
    # the featured templates templates.test.mjs expects, as `pai up` publishes them
    examples = os.path.join(HERE, "..", "..", "examples")
    lead = paitest.start_server(extra_args=common + ["--template-examples", examples])
    port = paitest.free_port()
    d = paitest.tmpdir("pai-portal-standby-")
    sb = Standby([paitest.PAI_BIN, "server", "--listen", "127.0.0.1:%d" % port, "--data-dir", d,
                  "--admin-password", paitest.ADMIN_PASSWORD, "--pwhash-memlimit-kib", "8192",
                  "--pwhash-opslimit", "1"] + common, d)
    sb.spawn()
    if paitest._wait_for_line_after(sb.log_path, 0, "(standby)", sb.proc, 60) is None:
        raise RuntimeError("the second server did not stand by:\n" + sb.log()[-3000:])
    sb.url = "http://127.0.0.1:%d" % port
    st, b = paitest.Client(sb.url).post("/api/v2/authn/basic/login",
                                        {"username": paitest.ADMIN_USER,
                                         "password": paitest.ADMIN_PASSWORD})
    if st != 200:
        raise RuntimeError("login through the standby failed: %s %s" % (st, b))
    sb.admin_token = b["token"]
    both = type("Both", (), {"url": "%s,%s" % (lead.url, sb.url), "agent_token": token})()
    for name in NODES:
        paitest.start_agent(both, name, ["--runtime", "process", "--gpus", str(GPUS_PER_NODE),
                                         "--gpu-model", "SIM-GPU", "--cpus", "8", "--memory-mb",
                                         "16384"])
    return sb


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
    if probs:  # a tier that did not run: skipped (tests/run.sh fails unless PAI_ALLOW_SKIP=1)
        paitest.skip("the portal in headless Chromium", "; ".join(probs))
        return 0
    try:
        srv, admin, cell_type = start_cluster()
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        paitest.not_ok("a cluster started for the portal tests", str(e)[-3000:])
        return 1
    if not wait_nodes(srv, len(NODES)):
        paitest.not_ok("cluster of %d agents came up" % len(NODES), srv.log()[-2000:])
        return 1
    env = dict(os.environ, PORTAL_URL=srv.url, ADMIN_USER=admin,
               ADMIN_PASSWORD=srv.admin_password, OUT=out, CELL_TYPE=cell_type,
               NODES=str(len(NODES)))
    print("# portal at %s, screenshots in %s" % (srv.url, out), flush=True)
    rc = 0
    # through a standby the same steps are named apart (tests/suites/portal.sh runs both)
    tag = "through a standby: " if os.environ.get("PORTAL_CLUSTER") == "standby" else ""
    for script in ("portal.test.mjs", "templates.test.mjs"):
        p = subprocess.Popen(["node", os.path.join(HERE, script)], env=env,
                             stdout=subprocess.PIPE, text=True)
        kill = threading.Timer(int(os.environ.get("PORTAL_TEST_TIMEOUT", "600")), p.kill)
        kill.start()
        for line in p.stdout:
            for head in ("ok - ", "not ok - "):
                if tag and line.startswith(head):
                    line = head + tag + line[len(head):]
                    break
            print(line, end="", flush=True)
        rc |= p.wait()
        kill.cancel()
    if rc != 0:
        print("# server log tail:\n" + "\n".join("#   " + l for l in srv.log()[-3000:].splitlines()))
    return rc


if __name__ == "__main__":
    sys.exit(main())
