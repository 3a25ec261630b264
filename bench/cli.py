"""bench/cli.py - what a user of the CLI waits for, on this machine.

    python3 bench/cli.py [--jobs N]      (make bench-cli)

Prints: `pai up --detach` time to ready on an empty and on an existing data
directory, `pai down` time, submit+wait latency of a one-task job (median
and max over N), `pai jobs` and `pai job` latency with N jobs in the store.
Uses a private data dir and a free port; stops everything it starts.
"""
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAI = os.environ.get("PAI_BIN") or os.path.join(REPO, "build", "pai")
N = int(sys.argv[sys.argv.index("--jobs") + 1]) if "--jobs" in sys.argv else 20


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def timed(env, *args):
    t0 = time.monotonic()
    p = subprocess.run([PAI] + list(args), env=env, capture_output=True, text=True, cwd=REPO)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit("bench/cli.py: pai %s failed: %s%s" % (" ".join(args), p.stdout, p.stderr))
    return dt


def on_signal(signum, frame):
    """A timeout, ^C or a closed terminal: exit through main's finally (pai
    down, the directory removed), which no further signal cuts short."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)
    sys.exit(128 + signum)


def main():
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    root = tempfile.mkdtemp(prefix="pai-bench-cli-")
    data = os.path.join(root, "data")
    port = free_port()
    env = dict(os.environ, PAI_CONFIG=os.path.join(root, "cli.json"))
    for k in ("PAI_SERVER", "PAI_TOKEN", "PAI_USER"):
        env.pop(k, None)
    up_cold = timed(env, "up", "--detach", "--data-dir", data, "--port", str(port))
    try:
        pw = open(os.path.join(data, "admin.password")).read().strip()
        timed(env, "login", "http://127.0.0.1:%d" % port, "--password", pw)
        lat = []
        for i in range(N):
            t0 = time.monotonic()
            timed(env, "submit", "examples/hello-world.yaml", "--name", "bench-%d" % i)
            timed(env, "wait", "bench-%d" % i, "--quiet")
            lat.append(time.monotonic() - t0)
        jobs = [timed(env, "jobs") for _ in range(10)]
        job = [timed(env, "job", "bench-0") for _ in range(10)]
        down = timed(env, "down", "--data-dir", data)
        up_warm = timed(env, "up", "--detach", "--data-dir", data, "--port", str(port))
    finally:
        subprocess.run([PAI, "down", "--data-dir", data], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)
    print("pai up --detach, empty data dir (2 nodes x 4 GPUs): %.2f s" % up_cold)
    print("pai up --detach, restart with %d jobs in the store: %.2f s" % (N, up_warm))
    print("pai down: %.2f s" % down)
    print("submit + wait of a 1-task job (n=%d): median %.3f s, max %.3f s" % (N, statistics.median(lat), max(lat)))
    print("pai jobs with %d jobs: median %.1f ms" % (N, 1000 * statistics.median(jobs)))
    print("pai job NAME: median %.1f ms" % (1000 * statistics.median(job)))


if __name__ == "__main__":
    main()
