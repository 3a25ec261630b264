"""test_up.py - `pai up` / `pai down` refusals and their advice.

Each refusal must say what is wrong and how to fix it, and start nothing.
The full start/stop/restart cycle is in test_quickstart.py.
"""
import os
import socket
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from clitest import Tap, free_port, write  # noqa: E402


def main():
    t = Tap()
    d = tempfile.mkdtemp(prefix="pai-up-test-")
    t.cleanup.append(d)

    # A port that is taken.
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    r = t.pai("up", "--data-dir", os.path.join(d, "a"), "--port", str(port))
    t.check("port taken: refused with advice", r.rc == 1 and "port %d" % port in r.err
            and "already in use" in r.err and "--port" in r.err, r)
    t.check("port taken: no pidfile left", not os.path.exists(os.path.join(d, "a", "pai-up.pid")))
    s.close()

    # A data directory that cannot be created (its parent is a file).
    f = write(d, "afile", "x")
    r = t.pai("up", "--data-dir", os.path.join(f, "sub"), "--port", str(free_port()))
    t.check("data dir not writable: refused with advice", r.rc == 2 and "not writable" in r.err
            and "--data-dir" in r.err, r)

    # A missing dependency: podman not on PATH.
    r = t.pai("up", "--runtime", "podman", "--data-dir", os.path.join(d, "b"), "--port", str(free_port()),
              env={"PATH": os.path.join(d, "empty-path")})
    t.check("podman missing: refused with the install command", r.rc == 2 and "needs podman" in r.err
            and "scripts/deps.sh --podman" in r.err, r)
    r = t.pai("up", "--runtime", "docker", "--data-dir", os.path.join(d, "b"))
    t.check("unknown runtime refused", r.rc == 2 and "process, podman or hollow" in r.err, r)
    r = t.pai("up", "--nodes", "0")
    t.check("--nodes 0 refused", r.rc == 2 and "--nodes" in r.err, r)

    # A pidfile naming a live process that is not `pai up` (the pid was
    # reused after a crash): pai down must not signal it.
    c = os.path.join(d, "c")
    os.makedirs(c)
    write(c, "pai-up.pid", "%d\n" % os.getpid())
    r = t.pai("down", "--data-dir", c)
    t.check("a reused pid in the pidfile is not pai up: nothing is signalled", r.rc == 1
            and "no cluster is running" in r.err, r)

    # HiveD config: a broken one is refused with file and line.
    bad = write(d, "bad-hived.yaml", "physicalCluster:\n  cellTypes: {}\n")
    r = t.pai("up", "--hived-config", bad, "--data-dir", os.path.join(d, "e"), "--port", str(free_port()))
    t.check("bad hived config refused", r.rc == 2 and "bad-hived.yaml" in r.err and "physicalCells" in r.err, r)
    nonode = write(d, "noaddr.yaml", "physicalCluster:\n  cellTypes:\n    N: {childCellType: G, childCellNumber: 2, isNodeLevel: true}\n"
                   "  physicalCells:\n    - cellType: N\n")
    r = t.pai("up", "--hived-config", nonode, "--data-dir", os.path.join(d, "e"), "--port", str(free_port()))
    t.check("hived node without address refused at its line", r.rc == 2 and "noaddr.yaml:5:" in r.err
            and "cellAddress" in r.err, r)

    # pai down with nothing running.
    r = t.pai("down", "--data-dir", os.path.join(d, "nothing"))
    t.check("down with nothing running", r.rc == 1 and "no cluster is running" in r.err, r)
    stale = os.path.join(d, "stale")
    os.makedirs(stale)
    write(stale, "pai-up.pid", "999999999\n")
    r = t.pai("down", "--data-dir", stale)
    t.check("down with a stale pidfile", r.rc == 1 and "no cluster is running" in r.err, r)
    t.done()


if __name__ == "__main__":
    main()
