#!/usr/bin/env python3
"""test_jobs_mounts_podman.py - a storage mount end to end: a hostPath
storage in the server config, a job naming it in extras.storages, a real
`pai agent --runtime podman` (local busybox image, no registry): the
container reads a file from the host directory at the job's mountPath, and
a read-only storage refuses a write.  Passes with a notice without root or
podman."""

import os

import e2etest as e
import paitest as pt

IMAGE = e.IMAGE
e.podman_ready("podman job mounts")

d = pt.tmpdir("pai-mounts-")
host = os.path.join(d, "share")
os.makedirs(host)
os.chmod(host, 0o1777)  # writable by the tasks' uids, as an admin sets a storage up (docs/security.md)
with open(os.path.join(host, "hello.txt"), "w") as f:
    f.write("hello-from-storage\n")
cfg = os.path.join(d, "server.yaml")
with open(cfg, "w") as f:
    f.write("storages:\n"
            "  - {name: share, type: hostPath, data: {hostPath: %s}}\n"
            "  - {name: ro, type: hostPath, data: {hostPath: %s, readOnly: true}}\n"
            % (host, host))
srv = pt.start_server(extra_args=["--config", cfg])
c = srv.client(srv.admin_token)
a = e.agent(srv, "pm1", "--runtime", "podman")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the podman agent registers")


def run(name, cmd, storages):
    text = e.job_yaml(name, [e.role("main", cmd, mem=64)], image_uri=IMAGE)
    text += "extras: {storages: %s}\n" % storages
    st, b = e.submit(c, text)
    pt.check(st == 202, "%s: submitted" % name, (st, b))
    return e.wait_state(c, "admin~" + name, ("SUCCEEDED", "FAILED"), 120)


dd = run("mnt", "grep -q hello-from-storage /data/s/hello.txt && echo w > /data/s/out.txt",
         "[{name: share, mountPath: /data/s}]")
pt.check(e.state(dd) == "SUCCEEDED", "podman: the container reads the storage's file",
         dd.get("jobStatus"))
pt.check(os.path.exists(os.path.join(host, "out.txt")),
         "podman: a write lands in the host directory")
dd = run("mntro", "grep -q hello-from-storage /ro/hello.txt && ! echo x > /ro/x.txt",
         "[{name: ro, mountPath: /ro}]")
pt.check(e.state(dd) == "SUCCEEDED" and not os.path.exists(os.path.join(host, "x.txt")),
         "podman: a read-only storage refuses a write", dd.get("jobStatus"))
a.stop()
pt.done()
