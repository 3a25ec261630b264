#!/usr/bin/env python3
"""test_sqlite_single.py - SQLite serves one server: a second `pai server` on
the same SQLite file is refused with a clear message (it would run jobs
twice: there is no leader election on SQLite), and a server killed with -9
does not keep the file locked."""
import subprocess

import paitest as pt

srv = pt.start_server()
r = subprocess.run([pt.PAI_BIN, "server", "--listen", "127.0.0.1:0", "--data-dir", srv.data_dir,
                    "--admin-password", pt.ADMIN_PASSWORD], capture_output=True, text=True,
                   timeout=30)
pt.check(r.returncode != 0 and "in use by another pai server" in r.stderr and
         "PostgreSQL" in r.stderr, "a second server on the same SQLite file is refused",
         (r.returncode, r.stderr[-500:]))
st, b = srv.client(srv.admin_token).get("/api/v2/info")
pt.check(st == 200 and b.get("role") == "leader", "the first one still serves, and leads", b)
srv.kill9()
srv.restart()
st, b = srv.client(srv.admin_token).get("/api/v2/info")
pt.check(st == 200, "after kill -9 a server starts again on the file", b)
pt.done()
