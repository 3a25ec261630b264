#!/usr/bin/env python3
"""docs/configuration.md lists every option of `pai server` (no drift)."""
import os
import subprocess

import paitest as pt

r = subprocess.run([pt.PAI_BIN, "server", "--help-markdown"], capture_output=True, text=True,
                   timeout=30)
pt.check(r.returncode == 0 and r.stdout.startswith("| option"), "server --help-markdown", r.stderr)
with open(os.path.join(pt.REPO, "docs", "configuration.md")) as f:
    doc = f.read()
for line in r.stdout.splitlines()[2:]:
    name = line.split("|")[1].strip()
    pt.check(line in doc, "docs/configuration.md documents %s as the table says" % name, line)
pt.done()
