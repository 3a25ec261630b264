"""bench/yardstick.py - the bare-start yardstick that bench/e2e.py and
bench/vs-slurm/run.py measure in the same run: N `bash -c true` started
P-way by xargs.

It runs with the environment a pai task of the process runtime gets, not
with whatever the caller's shell has: a one-task bench-e2e job's, as
`env | sort` printed it in such a job on 2026-12-07 (src/agent/attempt.c's
build_env: PATH, HOME, LANG=C.UTF-8, USER, LOGNAME, SHELL, the GPU lists;
src/wire/agentwire_env.c: the PAI_* variables), with HOME at /tmp. A bash
start's cost follows its environment: 2,000 starts 16-way, 2026-12-07 on
the 2-vCPU AMD EPYC VM (ms of CPU a start, means of 4-6 ABBA rounds):
1.02 without LANG, 1.22 with LANG=C.UTF-8 (glibc maps the 12 LC_* files of
/usr/lib/locale/C.utf8 when the machine has no locale-archive), 1.24 with
PATH, HOME, LANG and SHELL alone, 1.27 with this environment, 1.31 with
the lead's shell's (37 variables, a PATH of 12 directories that xargs
walks for `bash`). So a yardstick that inherits the caller's shell
measures the shell, not the work a task does.
"""

import shutil
import subprocess

TASK_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "USER": "admin",
    "LOGNAME": "admin",
    "SHELL": shutil.which("bash") or "/bin/bash",
    "CUDA_VISIBLE_DEVICES": "0",
    "NVIDIA_VISIBLE_DEVICES": "0",
    "PAI_CONTAINER_HOST_IP": "127.0.0.1",
    "PAI_CONTAINER_HOST_PORT": "20658",
    "PAI_CONTAINER_HOST_PORT_LIST": "ssh:20658;http:20659",
    "PAI_CONTAINER_HOST_http_PORT_LIST": "20659",
    "PAI_CONTAINER_HOST_ssh_PORT_LIST": "20658",
    "PAI_CONTAINER_SSH_PORT": "20658",
    "PAI_CURRENT_CONTAINER_IP": "127.0.0.1",
    "PAI_CURRENT_CONTAINER_PORT": "20658",
    "PAI_CURRENT_TASK_ROLE_CURRENT_TASK_INDEX": "0",
    "PAI_CURRENT_TASK_ROLE_NAME": "main",
    "PAI_GPU_COUNT": "1",
    "PAI_HOST_IP_main_0": "127.0.0.1",
    "PAI_JOB_NAME": "admin~b00001",
    "PAI_JOB_VC_NAME": "default",
    "PAI_PORT_LIST_main_0_http": "20659",
    "PAI_PORT_LIST_main_0_ssh": "20658",
    "PAI_RESOURCE_main": "1,1,256,512",
    "PAI_TASK_INDEX": "0",
    "PAI_TASK_ROLE_COUNT": "1",
    "PAI_TASK_ROLE_INDEX": "0",
    "PAI_TASK_ROLE_LIST": "main",
    "PAI_TASK_ROLE_NAME": "main",
    "PAI_TASK_ROLE_TASK_COUNT_main": "1",
    "PAI_TASK_ROLE_main_HOST_LIST": "127.0.0.1:20658",
    "PAI_USER_NAME": "admin",
}


def run(n, par, **kw):
    """Start n bare `bash -c true`, par-way in parallel, with TASK_ENV."""
    subprocess.run("seq %d | xargs -P %d -n 1 bash -c true" % (n, par), shell=True,
                   env=dict(TASK_ENV), check=True, **kw)
