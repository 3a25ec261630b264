"""hatest.py - set-up shared by the high-availability tests on loopback
(test_ha_standby.py, test_ha_failover.py): a private PostgreSQL cluster
(scripts/pg-test-cluster.sh) and `pai server`s on it."""

import atexit
import glob
import os
import subprocess

import paitest as pt

PGCTL = os.path.join(pt.REPO, "scripts", "pg-test-cluster.sh")


def start_pg(what, prefix):
    """Without the `postgresql` package, skip the test (naming what) and
    end it.  Else start a private cluster in a fresh pt.tmpdir(prefix) on a
    free port, stopped at exit (before paitest's clean-up removes its
    directory: this handler is registered later), and return its URL (the
    servers' --store).  A cluster that does not start is a failed check
    that ends the test."""
    if not glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"):
        pt.skip(what, "PostgreSQL server not installed (scripts/deps.sh --postgres)")
        pt.done()
    pgdir = pt.tmpdir(prefix)
    pgport = pt.free_port()
    r = subprocess.run(["bash", PGCTL, "start", pgdir, str(pgport)], capture_output=True,
                       text=True, timeout=120)
    if r.returncode != 0:
        pt.not_ok("start a private PostgreSQL cluster", r.stderr)
        pt.done()
    atexit.register(lambda: subprocess.run(["bash", PGCTL, "stop", pgdir, str(pgport)],
                                           capture_output=True, timeout=60))
    return r.stdout.strip()


class HAServer(pt.Proc):
    """A `pai server` on store with the agent token token and leader_lease_s
    lease_s, on a port fixed at creation (its URL stays the same across
    restarts), its data dir a fresh pt.tmpdir(prefix); extra: more
    arguments."""

    def __init__(self, store, prefix, token, lease_s, extra=()):
        self.port = pt.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.data_dir = pt.tmpdir(prefix)
        argv = [pt.PAI_BIN, "server", "--listen", "127.0.0.1:%d" % self.port, "--data-dir",
                self.data_dir, "--store", store, "--admin-password", pt.ADMIN_PASSWORD,
                "--agent-token", token, "--pwhash-memlimit-kib", "8192", "--pwhash-opslimit", "1",
                "--leader-lease-s", str(lease_s)] + list(extra)
        super().__init__(argv, os.path.join(self.data_dir, "server.log"), dict(os.environ))

    def start(self):
        """Spawn it and wait until this run (not an earlier one) listens."""
        size = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.spawn()
        if pt._wait_for_line_after(self.log_path, size, "listening on", self.proc, 60) is None:
            raise RuntimeError("pai server did not start:\n" + self.log()[-3000:])
        return self

    def info(self):
        """Its /api/v2/info ({} when it does not answer 200)."""
        try:
            st, b = pt.Client(self.url, timeout=5).get("/api/v2/info")
            return b if st == 200 else {}
        except OSError:
            return {}
