#!/usr/bin/env python3
"""The permission matrix: every endpoint x (anonymous, user, other user, admin,
application token, revoked token, expired token).

Rows come from every tests/blackbox/perm_rows_*.py (ROWS, and an optional
setup(srv, ids) run first), so each module's owner adds its endpoints in its
own file.
"""
import glob
import importlib
import os
import sys

import paitest as pt

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# the login row fails admin's password once per role: more than the login
# throttle lets a name fail for free (test_accounts_hostile tests the throttle)
srv = pt.start_server(extra_args=["--login-fail-free-user", "100"] +
                      os.environ.get("PAI_PERM_SERVER_ARGS", "").split())
ids = pt.make_identities(srv)
for path in sorted(glob.glob(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                          "perm_rows_*.py"))):
    name = os.path.splitext(os.path.basename(path))[0]
    mod = importlib.import_module(name)
    if hasattr(mod, "setup"):
        mod.setup(srv, ids)
    pt.run_matrix(srv, ids, mod.ROWS, name_prefix=name[len("perm_rows_"):])
pt.done()
