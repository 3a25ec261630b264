"""sshtest.py - what the ssh tests share (test_ssh.py,
test_ssh_closed_path.py): the OpenSSH client's command line, a key pair, a
login that runs one command, and a root `pai agent` of the process runtime
(or another, by its extra arguments) with a work dir of its own."""

import os
import subprocess

import paitest as pt

SSH = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "IdentitiesOnly=yes"]


def have(tool):
    return subprocess.run(["sh", "-c", "command -v %s" % tool], capture_output=True).returncode == 0


def keygen(d, name):
    """An ed25519 key pair in d: (private key's path, public key's text)."""
    p = os.path.join(d, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", p], check=True)
    return p, open(p + ".pub").read().strip()


def ssh_run(port, user, key, known, cmd, host="127.0.0.1"):
    """cmd through the real client, the host key checked: (rc, stdout, stderr)."""
    argv = SSH + ["-p", str(port), "-i", key, "-o", "UserKnownHostsFile=%s" % known,
                  "-o", "StrictHostKeyChecking=yes", "%s@%s" % (user, host), cmd]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    return r.returncode, r.stdout, r.stderr


def start_agent(srv, root, dirname, name, *extra, mode=0o755):
    """A root agent named name, its work dir root/dirname (mode: None leaves
    it as made) and its log root/dirname.log: (the process, the work dir)."""
    work = os.path.join(root, dirname)
    os.makedirs(work)
    if mode is not None:
        os.chmod(work, mode)
    agent = pt.Proc([pt.PAI_BIN, "agent", "--server", srv.url, "--token", srv.agent_token,
                     "--name", name, "--work-dir", work, "--gpus", "2", "--cpus", "8",
                     "--memory-mb", "8192", "--address", "127.0.0.1"] + list(extra),
                    os.path.join(root, dirname + ".log"))
    agent.spawn()
    return agent, work
