"""test_quickstart_examples.py - the docs/quickstart.md examples that need
another `pai up`: two virtual clusters from a HiveD config, and a container
job with a locally built image under the podman runtime.

Both run on a real `pai up --detach` (private data dir, free port) and are
stopped with `pai down`.
"""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(__file__))
from clitest import REPO, Tap, free_port  # noqa: E402


def up(t, data, port, *extra):
    r = t.pai("up", "--detach", "--data-dir", data, "--port", str(port), *extra, timeout=180)
    env = {"PAI_SERVER": "http://127.0.0.1:%d" % port, "PAI_CONFIG": os.path.join(data, "cli.json")}
    if r.rc == 0:
        pw = open(os.path.join(data, "admin.password")).read().strip()
        t.pai("login", env["PAI_SERVER"], "--password", pw, env=env)
    return r, env


def multi_vc(t, root):
    data = os.path.join(root, "vc")
    port = free_port()
    r, env = up(t, data, port, "--hived-config", os.path.join(REPO, "examples", "cluster-multi-vc.yaml"))
    try:
        t.check("pai up --hived-config: 3 nodes, 12 GPUs from the file", r.rc == 0
                and "server + 3 nodes, 12 GPUs" in r.out, r)
        r = t.pai("nodes", env=env)
        names = sorted(l.split()[0] for l in r.out.splitlines()[1:])
        t.check("the file's nodes registered", names == ["node-1", "node-2", "node-3"], r)
        r = t.pai("vcs", env=env)
        rows = {l.split()[0]: l.split() for l in r.out.splitlines()[1:]}
        t.check("two VCs: default and research", set(rows) == {"default", "research"}, r)
        r = t.pai("submit", "examples/hello-world.yaml", "--vc", "research", "--name", "hello-research", env=env)
        t.check("submit --vc research", r.rc == 0 and "submitted admin~hello-research" in r.out, r)
        r = t.pai("wait", "hello-research", "--timeout", "180", env=env, timeout=240)
        t.check("the job in research succeeds", r.rc == 0 and "SUCCEEDED" in r.out, r)
        r = t.pai("jobs", "--vc", "research", env=env)
        t.check("jobs --vc research lists it", r.rc == 0 and "admin~hello-research" in r.out
                and "research" in r.out, r)
        r = t.pai("submit", "examples/hello-world.yaml", "--vc", "nosuch", "--name", "hello-nosuch", env=env)
        t.check("submit to an unknown VC is refused", r.rc == 1 and "NoVirtualClusterError" in r.err, r)
    finally:
        d = t.pai("down", "--data-dir", data, timeout=120)
        t.check("pai down (multi-VC)", d.rc == 0, d)


def podman(t, root):
    if not shutil.which("podman") or not shutil.which("busybox"):
        t.skip("the podman example", "podman or busybox-static not installed (scripts/deps.sh --podman)")
        return
    b = subprocess.run(["bash", os.path.join(REPO, "examples", "build-busybox-image.sh")],
                       capture_output=True, text=True, timeout=300)
    t.check("examples/build-busybox-image.sh builds the image", b.returncode == 0
            and "localhost/pai-busybox:1" in b.stdout, b.stdout + b.stderr)
    data = os.path.join(root, "podman")
    port = free_port()
    r, env = up(t, data, port, "--runtime", "podman", "--nodes", "1")
    try:
        t.check("pai up --runtime podman", r.rc == 0 and "(podman runtime)" in r.out, r)
        r = t.pai("submit", "examples/podman-busybox.yaml", env=env)
        t.check("submit the podman example", r.rc == 0, r)
        r = t.pai("wait", "podman-busybox", "--timeout", "240", env=env, timeout=300)
        t.check("the container job succeeds", r.rc == 0 and "SUCCEEDED" in r.out,
                "%r\n%s" % (r, t.pai("job", "podman-busybox", env=env).out))
        r = t.pai("logs", "podman-busybox", env=env)
        t.check("its log comes from the busybox image", "running the locally built busybox image" in r.out
                and "hello from a container: Linux, task box/0" in r.out, r)
    finally:
        d = t.pai("down", "--data-dir", data, timeout=120)
        t.check("pai down (podman)", d.rc == 0, d)


def main():
    t = Tap()
    root = tempfile.mkdtemp(prefix="pai-examples-")
    t.cleanup.append(root)
    multi_vc(t, root)
    podman(t, root)
    t.done()


if __name__ == "__main__":
    main()
