#!/usr/bin/env python3
"""test_accel_devices.py - accelerators beyond NVIDIA on simulated nodes,
with a real server and real agents (process runtime):

- an AMD node (`--gpu-backend amd-sim`: the agent writes a fake KFD/DRM
  sysfs tree and discovers it like a real one) reports its GPUs with their
  SKU; a job asking for that SKU lands there and its task sees
  HIP_VISIBLE_DEVICES, ROCR_VISIBLE_DEVICES (the GPUs' UUIDs),
  PAI_AMD_VISIBLE_DEVICES (host indices, OpenPAI's) and its render node and
  /dev/kfd; where the host has a v1 devices cgroup, the other GPU's render
  node is fenced off the task (EPERM) while its own is not;
- a generic device class (`--device-class`, FPGAs found by a path glob)
  is its own SKU: a job asking for it gets FPGA_VISIBLE_DEVICES and its
  device node, and a job asking for the AMD SKU never lands there;
- an injected fault on the AMD node makes the GPU unhealthy for the
  server (docs/operations.md)."""

import os
import stat
import time

import e2etest as e
import paitest as pt

W = pt.tmpdir("pai-accel-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
FPGA = pt.tmpdir("pai-accel-fpga-")
os.makedirs(os.path.join(FPGA, "dev"))
os.chmod(FPGA, 0o755)
can_mknod = os.geteuid() == 0
for i in range(3):
    p = os.path.join(FPGA, "dev", "fpga%d" % i)
    if can_mknod:  # major 120: local/experimental use, no driver answers it
        os.mknod(p, 0o666 | stat.S_IFCHR, os.makedev(120, 200 + i))
    else:
        open(p, "w").close()
ctl = os.path.join(FPGA, "dev", "fpgactl")
open(ctl, "w").close()
os.chmod(ctl, 0o666)

srv = pt.start_server()
c = srv.client(srv.admin_token)
amd = e.agent(srv, "amd1", "--gpu-backend", "amd-sim", "--gpu-model", "MI250X")
# e.agent gives --gpus 8: eight simulated AMD GPUs
fpga = e.agent(srv, "fpga1", "--device-class",
               "name=fpga,sku=U250,paths=%s/dev/fpga[0-9]*,env=FPGA_VISIBLE_DEVICES,shared=%s"
               % (FPGA, ctl))
pt.check(len(e.wait_nodes(c, 2)) == 2, "the AMD node and the FPGA node register")
st, b = c.get("/api/v2/cluster/nodes")
skus = {n["metadata"]["name"]: (n["metadata"]["labels"].get("pai/sku"),
                                n["status"]["capacity"].get("nvidia.com/gpu"))
        for n in b.get("items", [])} if st == 200 else {}
pt.check(skus.get("amd1") == ("MI250X", 8) and skus.get("fpga1") == ("U250", 3),
         "each node reports its devices with their SKU", skus)
backends = {n["metadata"]["name"]: n.get("pai", {}).get("gpuBackend")
            for n in b.get("items", [])} if st == 200 else {}
pt.check(backends == {"amd1": "amd-sim", "fpga1": "class"},
         "the node view says which discovery found them (pai.gpuBackend)", backends)


def sku_job(name, sku, command, gpu=1):
    y = e.job_yaml(name, [e.role("main", command, gpu=gpu)])
    return y + ("extras:\n  hivedScheduler:\n    taskRoles:\n      main:\n"
                "        skuType: %s\n" % sku)


def run(name, sku, command, gpu=1):
    st, b = e.submit(c, sku_job(name, sku, command, gpu))
    pt.check(st == 202, "%s: submitted" % name, (st, b))
    d = e.wait_state(c, "admin~" + name, ("SUCCEEDED", "FAILED"), 60)
    return d


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


# ---- AMD ---------------------------------------------------------------------------
root = os.path.join(amd.work_dir, "amd-sim")
out = os.path.join(W, "amd.env")
cmd = ("env | grep -E '^(HIP|ROCR|PAI_AMD|CUDA)_VISIBLE_DEVICES=' | sort > %s; "
       "ls %s/dev/kfd %s/dev/dri >> %s; "
       "for n in 128 129 130 131 132 133 134 135; do "
       "  r=$( { : < %s/dev/dri/renderD$n; } 2>&1 ); "
       "  case \"$r\" in *permitted*) echo denied $n;; *) echo open $n;; esac; "
       "done >> %s; true") % (out, root, root, out, root, out)
d = run("amd-env", "MI250X", cmd, gpu=2)
pt.check(e.state(d) == "SUCCEEDED", "amd: the job ran", d.get("jobStatus"))
ts = e.tasks(d, "main")
node = ts[0].get("containerNodeName") if ts else None
gpus = [int(x) for x in str(ts[0].get("containerGpus")).split(",")] if ts else []
pt.check(node == "amd1" and len(gpus) == 2, "amd: placed on the AMD node with 2 GPUs", ts)
text = read(out)
env = dict(l.split("=", 1) for l in text.splitlines() if "=" in l)
host = ",".join(str(g) for g in gpus)
uuids = ",".join("GPU-5a17c0de%08x" % g for g in gpus)
pt.check(env.get("PAI_AMD_VISIBLE_DEVICES") == host,
         "amd: PAI_AMD_VISIBLE_DEVICES is the host indices (OpenPAI's)", text)
pt.check(env.get("ROCR_VISIBLE_DEVICES") == uuids,
         "amd: ROCR_VISIBLE_DEVICES names the GPUs by UUID", text)
pt.check(env.get("HIP_VISIBLE_DEVICES") == "0,1",
         "amd: HIP_VISIBLE_DEVICES counts the GPUs ROCr shows (0,1)", text)
pt.check("renderD128" in text and "kfd" in text, "amd: the render nodes and /dev/kfd exist", text)
fenced = os.path.exists("/sys/fs/cgroup/devices/devices.deny")
if fenced and can_mknod:
    others = [n for n in range(128, 136) if n - 128 not in gpus]
    pt.check(all(("denied %d" % n) in text for n in others) and
             not any(("denied %d" % (128 + g)) in text for g in gpus),
             "amd: the node's other render nodes are fenced off the task (v1 devices cgroup), "
             "its own are not", text)
else:
    pt.skip("amd: other render nodes fenced off", "no v1 devices cgroup or not root")

# ---- FPGA (a generic device class) ----------------------------------------------------
out = os.path.join(W, "fpga.env")
cmd = ("echo FPGA_VISIBLE_DEVICES=$FPGA_VISIBLE_DEVICES > %s; "
       "echo CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES >> %s; "
       "test -n \"$HIP_VISIBLE_DEVICES\" && echo HIP set >> %s; true") % (out, out, out)
d = run("fpga-env", "U250", cmd)
ts = e.tasks(d, "main")
pt.check(e.state(d) == "SUCCEEDED" and ts and ts[0].get("containerNodeName") == "fpga1",
         "fpga: a job asking for the U250 SKU runs on the FPGA node", (d.get("jobStatus"), ts))
text = read(out)
g = str(ts[0].get("containerGpus")) if ts else "?"
pt.check("FPGA_VISIBLE_DEVICES=%s\n" % g in text and "HIP set" not in text,
         "fpga: FPGA_VISIBLE_DEVICES names its device (and no AMD variables)", text)
st, b = e.submit(c, sku_job("fpga-too-many", "U250", "true", gpu=4))
pt.check(st == 400, "fpga: 4 devices of a 3-device SKU is refused", (st, b))
# an AMD job does not land on the FPGA node even when the AMD GPUs are all taken
st, _ = e.submit(c, sku_job("amd-hog", "MI250X", "sleep 600", gpu=8))
e.wait_state(c, "admin~amd-hog", "RUNNING", 30)
st, _ = e.submit(c, sku_job("amd-wait", "MI250X", "true"))
time.sleep(1.5)
pt.check(e.state(e.detail(c, "admin~amd-wait")) == "WAITING",
         "amd: with the AMD GPUs taken an AMD job waits (never placed on the FPGA node)")
c.put("/api/v2/jobs/admin~amd-hog/executionType", {"value": "STOP"})
d = e.wait_state(c, "admin~amd-wait", "SUCCEEDED", 60)
pt.check(e.state(d) == "SUCCEEDED", "amd: it runs once the GPUs are free", d.get("jobStatus"))

# ---- a fault on the AMD node ------------------------------------------------------------
with open(os.path.join(amd.work_dir, "gpu-faults"), "w") as f:
    f.write("3 lost\n")


def bad():
    st, b = c.get("/api/v2/cluster/nodes")
    for n in b.get("items", []) if st == 200 else []:
        if n["metadata"]["name"] == "amd1":
            return n.get("pai", {}).get("badGpus")
    return None


end = time.time() + 30
while time.time() < end and bad() != [3]:
    time.sleep(0.2)
pt.check(bad() == [3], "amd: an injected fault makes GPU 3 bad on the server", bad())
amd.stop()
fpga.stop()
pt.done()
