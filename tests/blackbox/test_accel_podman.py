#!/usr/bin/env python3
"""test_accel_podman.py - a podman task on a simulated AMD node
(`--gpu-backend amd-sim`, whose render nodes and /dev/kfd are character
devices of the experimental major 120): the container gets exactly its own
render node and /dev/kfd (--device), and HIP_VISIBLE_DEVICES=0,
ROCR_VISIBLE_DEVICES=<its GPU's UUID>, PAI_AMD_VISIBLE_DEVICES=<host
index>.  Skipped without root or podman."""

import e2etest as e
import paitest as pt

IMAGE = e.IMAGE
e.podman_ready("AMD devices in a podman task")
srv = pt.start_server()
c = srv.client(srv.admin_token)
a = e.agent(srv, "pa1", "--runtime", "podman", "--gpu-backend", "amd-sim")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the podman AMD agent registers")

cmd = ("ls /dev/dri; ls /dev/kfd; env | grep -E '^(HIP|ROCR|PAI_AMD)_VISIBLE_DEVICES=' | sort")
st, b = e.submit(c, e.job_yaml("podamd", [e.role("main", cmd, mem=64, gpu=1)], image_uri=IMAGE))
d = e.wait_state(c, "admin~podamd", ("SUCCEEDED", "FAILED"), 120)
pt.check(e.state(d) == "SUCCEEDED", "podman: the AMD job SUCCEEDED", d.get("jobStatus"))
ts = e.tasks(d, "main")
out = e.task_stdout(c, ts[0]) if ts else ""
gpu = str(ts[0].get("containerGpus")) if ts else "?"
lines = out.split()
renders = [w for w in lines if w.startswith("renderD")]
pt.check(gpu.isdigit() and renders == ["renderD%d" % (128 + int(gpu))],
         "podman: the container has exactly its own render node", out)
pt.check("/dev/kfd" in lines, "podman: the container has /dev/kfd", out)
pt.check("HIP_VISIBLE_DEVICES=0" in lines, "podman: HIP_VISIBLE_DEVICES=0", out)
pt.check(gpu.isdigit() and "ROCR_VISIBLE_DEVICES=GPU-5a17c0de%08x" % int(gpu) in lines,
         "podman: ROCR_VISIBLE_DEVICES is its GPU's UUID", out)
pt.check("PAI_AMD_VISIBLE_DEVICES=%s" % gpu in lines, "podman: PAI_AMD_VISIBLE_DEVICES", out)
a.stop()
pt.done()
