"""sweep.py - kills, at a black-box test's teardown, the processes it left behind.

A stopped `pai agent` leaves its monitor (src/runtime/mond.c, a fork of
the agent: `pai agent ...` with ppid 1) and the running tasks (`/bin/bash
/proc/self/fd/3` and their children) alive by design, for a later agent to
re-adopt; so does `pai down` without --stop-jobs.  A test that does not
stop its jobs first would leave them on the machine.

Importing this module (paitest, clitest and agentfake do) marks the test:
PAI_TEST_SWEEP=<token unique to this test process> goes into os.environ,
so every process the test starts, and every fork of those (a monitor),
carries it.  At exit sweep() kills, by pid, only:
  1. processes whose environment holds this test's token;
  2. their descendants (the tasks: a task gets its own environment);
  3. processes whose working directory lies under one of this test's own
     directories (paitest.tmpdir, add_root): a task's child orphaned before.
Never this process or its ancestors, and never podman's own helpers
(conmon, the rootless pause process...: shared with other podman users;
containers are the tests' own business).  Tasks go first (SIGKILL), so a
monitor reaps them, writes their exit and leaves by itself; what is still
there after that is killed too.  Each kill is reported as a TAP comment
("# sweep: ..."), which tests/run.sh does not count.
A SIGTERM (tests/run.sh's timeout, a bench's) or a SIGHUP (a closed
terminal) ends the test through its exit handlers too, and from then on
SIGINT, SIGTERM and SIGHUP are ignored, so that a second signal (another
^C, a timeout's signal to the whole process group) cannot cut the
clean-up short: paitest's stops each process within 15 s, SIGKILL still
ends everything.  It runs last of the exit handlers (this module is imported before any
test registers one): after paitest's clean-up and a test's own (a
PostgreSQL cluster's stop), so it kills only what nothing else stopped.
"""

import atexit
import os
import signal
import sys
import time
import uuid

ENV = "PAI_TEST_SWEEP"
TOKEN = "%d-%s" % (os.getpid(), uuid.uuid4().hex[:16])
os.environ[ENV] = TOKEN
_MARK = ("%s=%s" % (ENV, TOKEN)).encode()
_roots = []
# podman's helpers: conmon, the rootless user namespace's pause process, networking
_SPARE = {"podman", "conmon", "catatonit", "slirp4netns", "pasta", "pasta.avx2", "rootlessport",
          "rootlessport-child", "aardvark-dns", "netavark", "crun", "runc", "crun-wasm"}


def add_root(path):
    """A directory of this test's own: processes working under it are swept."""
    p = os.path.realpath(path)
    if p not in _roots and p != "/":
        _roots.append(p)


def _read(pid, name):
    try:
        with open("/proc/%d/%s" % (pid, name), "rb") as f:
            return f.read()
    except OSError:
        return None


def _stat(pid):
    """(ppid, starttime) from /proc/PID/stat, or None when it is gone (or a zombie)."""
    s = _read(pid, "stat")
    if not s:
        return None
    f = s[s.rfind(b")") + 2:].split()  # after "pid (comm) ": state ppid ...
    return None if f[0] in (b"Z", b"X") else (int(f[1]), int(f[19]))


def _cwd(pid):
    try:
        return os.readlink("/proc/%d/cwd" % pid).removesuffix(" (deleted)")
    except OSError:
        return None


def _under_root(path):
    return path is not None and any(path == r or path.startswith(r + "/") for r in _roots)


def _spared(pid):
    try:
        exe = os.path.basename(os.readlink("/proc/%d/exe" % pid).removesuffix(" (deleted)"))
    except OSError:
        exe = ""
    comm = (_read(pid, "comm") or b"").decode(errors="replace").strip()
    return exe in _SPARE or comm in _SPARE


def _scan():
    """{pid: (ppid, starttime, marked)} of this test's leftovers."""
    me = os.getpid()
    keep = set()  # this process and its ancestors
    p = me
    while p > 1 and p not in keep:
        keep.add(p)
        st = _stat(p)
        p = st[0] if st else 0
    procs = {}
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in keep:
            st = _stat(int(name))
            if st:
                procs[int(name)] = st
    found = {}
    for pid, (ppid, start) in procs.items():
        if _spared(pid):
            continue
        env = _read(pid, "environ") or b""
        if _MARK in env.split(b"\0"):
            found[pid] = (ppid, start, True)
        elif _under_root(_cwd(pid)):
            found[pid] = (ppid, start, False)
    grew = True
    while grew:  # descendants of what was found (not through podman's helpers)
        grew = False
        for pid, (ppid, start) in procs.items():
            if pid not in found and (ppid in found or ppid == me) and not _spared(pid):
                found[pid] = (ppid, start, False)
                grew = True
    return found


def _cmdline(pid):
    c = (_read(pid, "cmdline") or b"").replace(b"\0", b" ").decode(errors="replace").strip()
    return c[:160]


def _kill(pid, start):
    """SIGKILL pid if it is still the process scanned (same start time);
    through a pidfd, so a pid reused in between is never hit."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        st = _stat(pid)
        if not st or st[1] != start:
            return False
        signal.pidfd_send_signal(fd, signal.SIGKILL)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def _report(pid, ppid, cwd, cmd):
    print("# sweep: killed leftover pid %d (ppid %d, cwd %s): %s" % (pid, ppid, cwd, cmd),
          flush=True)


def _kill_set(found, pred):
    n = 0
    for pid, (ppid, start, marked) in sorted(found.items()):
        if pred(marked):
            cwd, cmd = _cwd(pid), _cmdline(pid)
            if _kill(pid, start):
                _report(pid, ppid, cwd, cmd)
                n += 1
    return n


def _wait_gone(pids, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and any(_stat(p) for p in pids):
        time.sleep(0.05)


def sweep():
    """Kill this test's leftover processes (see the module comment); returns
    how many were killed."""
    killed = 0
    for _ in range(5):
        found = _scan()
        if not found:
            break
        # the tasks first: their monitors reap them and leave by themselves
        killed += _kill_set(found, lambda marked: not marked)
        _wait_gone(list(found), 2.0)
        killed += _kill_set(_scan(), lambda marked: True)
        _wait_gone(list(found), 2.0)
    if killed:
        print("# sweep: %d leftover process(es) of this test killed" % killed, file=sys.stdout,
              flush=True)
    return killed


EXIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def hold_signals():
    """Ignore SIGINT, SIGTERM and SIGHUP from now on: the process is on its
    way out and its clean-up must run to its end."""
    for s in EXIT_SIGNALS:
        signal.signal(s, signal.SIG_IGN)


def _on_term(signum, frame):
    hold_signals()
    sys.exit(128 + signum)  # so that the exit handlers run: tests/run.sh's timeout sends SIGTERM


atexit.register(sweep)
for _s in (signal.SIGTERM, signal.SIGHUP):
    if signal.getsignal(_s) == signal.SIG_DFL:
        signal.signal(_s, _on_term)
