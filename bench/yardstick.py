"""bench/yardstick.py - the bare-start yardstick that bench/e2e.py and
bench/vs-slurm/run.py measure in the same run: N `bash -c true` started
P-way by xargs.

It runs with the environment a pai task of the process runtime gets (the
base of src/agent/attempt.c's build_env: PATH, HOME, LANG=C.UTF-8, SHELL),
not with whatever the caller's shell has: a bash start's cost follows its
locale far more than anything else in its environment (2,000 starts
16-way, 2026-12-07 on the 2-vCPU AMD EPYC VM: 1.02 ms of CPU a start
without LANG, 1.22 ms with LANG=C.UTF-8, 1.10 ms with LC_CTYPE=C.UTF-8
alone; glibc maps the 12 LC_* files of /usr/lib/locale/C.utf8 when the
machine has no locale-archive). A yardstick that inherited a shell without
LANG would be ~0.2 ms cheaper a start than the same `true` run as a pai
task, and one that inherited another locale would be dearer: either way
the ratios would measure the caller's shell, not pai. The job's PAI_*
variables are left out: 30 of them moved a start by less than the noise.
"""

import shutil
import subprocess

TASK_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "SHELL": shutil.which("bash") or "/bin/bash",
}


def run(n, par, **kw):
    """Start n bare `bash -c true`, par-way in parallel, with TASK_ENV."""
    subprocess.run("seq %d | xargs -P %d -n 1 bash -c true" % (n, par), shell=True,
                   env=dict(TASK_ENV), check=True, **kw)
