#!/usr/bin/env python3
"""test_rocm_examples.py - OpenPAI's ROCm marketplace examples
(tests/data/openpai-jobs/pai__marketplace-v2_rocm-*.yaml, verbatim from
microsoft/pai, MIT) run on a simulated AMD node (`--gpu-backend amd-sim`,
process runtime), with a real server and agent.

The adaptation, so that they run without the rocm/* images and without
the network: one command is put first in each task role, sourcing a shim
that defines git, pip, pip3, apt, python3 and /usr/bin/python3.6 as shell
functions; the "training" records its arguments and the task's AMD
environment.  Everything else is the file as OpenPAI users submit it:
parameters rendered into the commands, the dockerimage prerequisite, 1 GPU,
cpu, memory and shm.  Checked inside the task: HIP_VISIBLE_DEVICES,
ROCR_VISIBLE_DEVICES (the GPU's UUID), PAI_AMD_VISIBLE_DEVICES (its host
index), its render node and /dev/kfd."""

import os

import e2etest as e
import paitest as pt

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "openpai-jobs")
W = pt.tmpdir("pai-rocm-files-")
os.chmod(W, 0o1777)  # tasks run as their user's uid and write here
SHIM = os.path.join(W, "rocm-shim.sh")
with open(SHIM, "w") as f:
    f.write("""# stand-ins for the image's tools (no network, no ROCm userland here)
git() { echo "shim: git $*"; mkdir -p examples/mnist examples/tensorflow_examples/models/dcgan; }
pip() { echo "shim: pip $*"; }
pip3() { echo "shim: pip3 $*"; }
apt() { echo "shim: apt $*"; }
train() {
  out=%s/$PAI_JOB_NAME.out
  env | grep -E '^(HIP|ROCR|PAI_AMD|CUDA)_VISIBLE_DEVICES=' | sort > "$out"
  echo "args: $*" >> "$out"
  echo "kfd: $(ls /dev/kfd ${PAI_SIM_ROOT}/dev/kfd 2>/dev/null | head -1)" >> "$out"
  for g in $(echo $PAI_AMD_VISIBLE_DEVICES | tr , ' '); do
    ls ${PAI_SIM_ROOT}/dev/dri/renderD$((128 + g)) | sed 's/^/render: /' >> "$out"
  done
  echo "epoch 1 loss 0.42"
}
python3() { train "$@"; }
/usr/bin/python3.6() { train "$@"; }
""" % W)
os.chmod(SHIM, 0o644)

srv = pt.start_server()
c = srv.client(srv.admin_token)
ag = e.agent(srv, "amd-node", "--gpu-backend", "amd-sim", "--gpu-model", "MI50")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the simulated AMD node registers")
root = os.path.join(ag.work_dir, "amd-sim")


def adapted(path):
    with open(path) as f:
        text = f.read()
    pt.check(text.count("    commands:\n") == 1, "%s: one task role's commands" % path)
    return text.replace("    commands:\n",
                        "    commands:\n      - . %s; export PAI_SIM_ROOT=%s\n" % (SHIM, root))


cases = [
    ("pai__marketplace-v2_rocm-pytorch-mnist.yaml", "rocm_pytorch_mnist", "worker",
     "args: main.py --epochs 1 --lr 0.01 --batch-size 64"),
    ("pai__marketplace-v2_rocm-tensorflow2.yaml", "rocm_tensorflow2", "example",
     "args: examples/tensorflow_examples/models/dcgan/dcgan.py --epochs 10"),
]
for fname, job, role, args in cases:
    st, b = e.submit(c, adapted(os.path.join(DATA, fname)))
    pt.check(st == 202, "%s: accepted" % fname, (st, b))
    d = e.wait_state(c, "admin~" + job, ("SUCCEEDED", "FAILED"), 90)
    pt.check(e.state(d) == "SUCCEEDED", "%s: the job succeeds" % job, d.get("jobStatus"))
    ts = e.tasks(d, role)
    gpu = str(ts[0].get("containerGpus")) if ts else "?"
    pt.check(ts and ts[0].get("containerNodeName") == "amd-node" and gpu.isdigit(),
             "%s: its task ran on the AMD node with one GPU" % job, ts)
    try:
        with open(os.path.join(W, "admin~%s.out" % job)) as f:
            out = f.read()
    except OSError:
        out = ""
    env = dict(l.split("=", 1) for l in out.splitlines() if "=" in l and ":" not in l[:5])
    pt.check(args in out, "%s: parameters rendered into the training command" % job, out)
    pt.check(env.get("HIP_VISIBLE_DEVICES") == "0", "%s: HIP_VISIBLE_DEVICES=0" % job, out)
    pt.check(gpu.isdigit() and env.get("ROCR_VISIBLE_DEVICES") == "GPU-5a17c0de%08x" % int(gpu),
             "%s: ROCR_VISIBLE_DEVICES is its GPU's UUID" % job, out)
    pt.check(env.get("PAI_AMD_VISIBLE_DEVICES") == gpu,
             "%s: PAI_AMD_VISIBLE_DEVICES is its host index" % job, out)
    pt.check("kfd: " + root + "/dev/kfd" in out, "%s: /dev/kfd is there" % job, out)
    pt.check(gpu.isdigit() and "render: %s/dev/dri/renderD%d" % (root, 128 + int(gpu)) in out,
             "%s: its render node is there" % job, out)
    st, log = c.get("/api/v2/jobs/admin~%s/config" % job)
    pt.check(st == 200, "%s: its config reads back" % job, st)
ag.stop()
pt.done()
