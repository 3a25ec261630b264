"""clitest.py - helpers for the CLI black-box tests (stdlib only).

    t = Tap(); r = t.pai(env, "jobs"); t.check("name", cond, detail)
"""
import os
import shutil
import socket
import subprocess
import sys
import tempfile

import sweep  # kills what a test left running, at exit

PAI = os.environ.get("PAI_BIN") or os.path.join(os.path.dirname(__file__), "..", "..", "build", "pai")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


class Result:
    def __init__(self, rc, out, err):
        self.rc, self.out, self.err = rc, out, err

    def __repr__(self):
        return "rc=%d\n--- stdout\n%s--- stderr\n%s" % (self.rc, self.out, self.err)


class Tap:
    def __init__(self):
        self.failed = 0
        self.passed = 0
        self.skipped = 0
        self.home = tempfile.mkdtemp(prefix="pai-cli-test-")
        sweep.add_root(self.home)
        self.env = dict(os.environ)
        for k in ("PAI_SERVER", "PAI_TOKEN", "PAI_USER", "PAI_PASSWORD", "XDG_CONFIG_HOME"):
            self.env.pop(k, None)
        self.env["HOME"] = self.home
        self.env["PAI_CONFIG"] = os.path.join(self.home, "config.json")
        self.cleanup = [self.home]  # removed by done() when every check passed

    def pai(self, *args, env=None, stdin=None, timeout=120, cwd=None):
        e = dict(self.env)
        e.update(env or {})
        p = subprocess.run([PAI] + list(args), env=e, input=stdin, capture_output=True,
                           text=True, timeout=timeout, cwd=cwd or REPO)
        return Result(p.returncode, p.stdout, p.stderr)

    def check(self, name, cond, detail=""):
        if cond:
            self.passed += 1
            print("ok - %s" % name)
        else:
            self.failed += 1
            print("not ok - %s" % name)
            for line in str(detail).splitlines()[:40]:
                print("  " + line)
        sys.stdout.flush()
        return cond

    def skip(self, name, reason):
        """A check that did not run: a TAP skip, which tests/run.sh counts apart."""
        self.skipped += 1
        print("ok - %s # SKIP %s" % (name, reason), flush=True)

    def done(self):
        print("# %d passed, %d failed, %d skipped" % (self.passed, self.failed, self.skipped))
        if not self.failed:
            for d in self.cleanup:
                shutil.rmtree(d, ignore_errors=True)
        sys.exit(1 if self.failed else 0)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def write(dirpath, name, text):
    p = os.path.join(dirpath, name)
    with open(p, "w") as f:
        f.write(text)
    return p
