"""netnstest.py - "hosts" for the black-box tests: network namespaces, each
with its own address on one veth pair, joined by a bridge that lives in one
more namespace (test_netns_hosts.py, test_netns_ha.py).

The host's namespace is never touched: nothing is sent from it, nothing is
added to it.  At exit (before paitest's own clean-up: this module's handler
is registered later) the processes started in the namespaces are stopped,
then what the test added to on_teardown runs, then every namespace made is
deleted."""

import atexit
import ctypes
import os
import shutil
import subprocess
import time

import e2etest as e
import paitest as pt

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def ip(*args):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=30)


def require(what):
    """Skip the whole test (a TAP skip naming what) without root or ip(8)."""
    if os.geteuid() != 0:
        pt.skip(what, "needs root (ip netns)")
        pt.done()
    if not shutil.which("ip"):
        pt.skip(what, "the ip command (iproute2) is missing")
        pt.done()


def enter(ns_path):
    """Move this process (the test, as a client) into a namespace: a path
    (/run/netns/NAME) or an open descriptor."""
    fd = os.open(ns_path, os.O_RDONLY) if isinstance(ns_path, str) else ns_path
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        raise OSError(ctypes.get_errno(), "setns %s" % ns_path)


class Hosts:
    """Namespaces named "<tag>-<role>" (and "<tag>-sw", the bridge's), role
    i's address <net>.<i + 1>: .ns, .addr (dicts by role), .mine (processes
    started inside, stopped at exit), .on_teardown (callables run at exit,
    after those processes stopped and before the namespaces go)."""

    def __init__(self, tag, net, roles):
        self.roles = tuple(roles)
        self.ns = {r: "%s-%s" % (tag, r) for r in ("sw",) + self.roles}
        self.addr = {r: "%s.%d" % (net, i + 1) for i, r in enumerate(self.roles)}
        self.made = []
        self.mine = []
        self.on_teardown = []
        self.home_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
        atexit.register(self._teardown)

    def _teardown(self):
        try:
            enter(self.home_ns)
        except OSError:
            pass
        for p in self.mine:
            try:
                p.stop()
            except Exception:
                pass
        for fn in self.on_teardown:
            try:
                fn()
            except Exception:
                pass
        for n in reversed(self.made):
            ip("netns", "del", n)

    def build(self, what, name):
        """The bridge's namespace, then one namespace per role, its veth pair
        on the bridge and its address; a TAP check called name.  Skips the
        test (naming what) when namespaces cannot be made at all; ends it
        when a later step failed.  Every namespace made is deleted at exit."""
        sw = self.ns["sw"]
        r = ip("netns", "add", sw)
        if r.returncode != 0:
            pt.skip(what, "ip netns add failed: " + r.stderr.strip())
            pt.done()
        self.made.append(sw)
        ok = ip("-n", sw, "link", "add", "br0", "type", "bridge").returncode == 0
        ok = ok and ip("-n", sw, "link", "set", "br0", "up").returncode == 0
        for role in self.roles:
            n = self.ns[role]
            ok = ok and ip("netns", "add", n).returncode == 0
            self.made.append(n)
            ok = ok and ip("-n", n, "link", "set", "lo", "up").returncode == 0
            # the pair is created inside the bridge's namespace, its peer moved into the host's
            ok = ok and ip("-n", sw, "link", "add", "p-" + role, "type", "veth", "peer", "name",
                           "eth0", "netns", n).returncode == 0
            ok = ok and ip("-n", sw, "link", "set", "p-" + role, "master", "br0").returncode == 0
            ok = ok and ip("-n", sw, "link", "set", "p-" + role, "up").returncode == 0
            ok = ok and ip("-n", n, "addr", "add", self.addr[role] + "/24", "dev",
                           "eth0").returncode == 0
            ok = ok and ip("-n", n, "link", "set", "eth0", "up").returncode == 0
        pt.check(ok, name, self.made)
        if not ok:
            pt.done()

    def host_untouched(self, role):
        """A TAP check: the host's own route to role's address uses none of
        the veth pairs (nothing was added to the host's namespace)."""
        host_route = ip("route", "get", self.addr[role]).stdout
        pt.check(not any(("p-" + r) in host_route for r in self.roles),
                 "nothing was added to the host's namespace (never sent from there)", host_route)

    def spawn(self, role, argv, log_path):
        """Run argv inside role's namespace (ip netns exec); a started
        paitest.Proc, stopped at exit."""
        p = pt.Proc(["ip", "netns", "exec", self.ns[role]] + list(argv), log_path)
        p.spawn()
        self.mine.append(p)
        return p

    def enter(self, role):
        """The test itself moves into role's namespace (as the client)."""
        enter("/run/netns/" + self.ns[role])

    def server(self, role, args, data_dir, timeout=60):
        """`pai server` args on role's host, its log in data_dir; returned
        once it says it listens (or timeout seconds passed: the caller
        checks)."""
        p = self.spawn(role, [pt.PAI_BIN, "server"] + list(args),
                       os.path.join(data_dir, "server.log"))
        end = time.time() + timeout
        while time.time() < end and "listening on" not in p.log():
            time.sleep(0.05)
        return p

    def agent(self, role, servers, token, prefix):
        """`pai agent` named role on its host, 2 GPUs, 8 CPUs, 16 GiB, the
        process runtime, reporting to servers (a comma-separated URL list);
        its work dir is a fresh pt.tmpdir(prefix + role)."""
        d = pt.tmpdir("%s%s-" % (prefix, role))
        return self.spawn(role, [pt.PAI_BIN, "agent", "--server", servers, "--token", token,
                                 "--name", role, "--address", self.addr[role], "--work-dir", d,
                                 "--gpus", "2", "--cpus", "8", "--memory-mb", "16384",
                                 "--runtime", "process"], os.path.join(d, "agent.log"))


def spread_yaml(w, mark, go, wait_first):
    """The distributed job both tests run across two 2-GPU hosts: a ps task
    serving HTTP on its port and two workers that reach it over the bridge,
    3 GPUs, retry 2.  Each task writes its pid into w/<mark % role>; each
    worker writes "<ps address> from <its address>" into
    w/reached-<index>-<pid> once it reached the ps task, and waits for the
    file go: before reaching it (wait_first) or after."""
    wait = "while [ ! -e %s ]; do sleep 0.2; done" % go
    ps_cmd = ("echo $$ > %s/%s; P=${PAI_PORT_LIST_ps_0_http%%%%,*}; "
              "cd %s && exec python3 -m http.server $P --bind 0.0.0.0" % (w, mark % "ps", w))
    worker_cmd = ("echo $$ > %s/%s; %sP=${PAI_PORT_LIST_ps_0_http%%%%,*}; "
                  "for i in $(seq 1 150); do curl -sf -m 2 -o /dev/null "
                  "http://$PAI_HOST_IP_ps_0:$P/ && break; sleep 0.2; done; "
                  "curl -sf -m 2 -o /dev/null http://$PAI_HOST_IP_ps_0:$P/ || exit 1; "
                  "echo \"$PAI_HOST_IP_ps_0 from $PAI_CURRENT_CONTAINER_IP\" "
                  "> %s/reached-$PAI_TASK_INDEX-$$%s"
                  % (w, mark % "worker", wait + "; " if wait_first else "", w,
                     "" if wait_first else "; " + wait))
    return e.job_yaml("spread", [e.role("ps", ps_cmd, gpu=1, ports={"http": 1}),
                                 e.role("worker", worker_cmd, instances=2, gpu=1,
                                        min_succeeded=2)], retry=2)


def login(url):
    """The admin logs in at url: (status, answer, a client with its token,
    or without one when the login failed)."""
    st, b = pt.Client(url, timeout=30).post("/api/v2/authn/basic/login",
                                            {"username": pt.ADMIN_USER,
                                             "password": pt.ADMIN_PASSWORD})
    return st, b, pt.Client(url, b.get("token") if st == 200 else None, timeout=30)


def start_spread(c, yaml, addrs, submitted, placed):
    """Submit the spread job (spread_yaml) through c and wait until it runs:
    TAP checks called submitted (202) and placed (its tasks on the hosts
    whose addresses are addrs).  Returns its detail."""
    st, b = e.submit(c, yaml)
    pt.check(st == 202, submitted, (st, b))
    d = e.wait_state(c, "admin~spread", "RUNNING", 60)
    hosts = {t.get("containerIp") for r in ("ps", "worker") for t in e.tasks(d, r)}
    pt.check(hosts == set(addrs), placed, hosts)
    return d
