"""paitest.py - shared helpers for pai's black-box tests (Python 3 stdlib only).

    import paitest as pt
    srv = pt.start_server()                 # private data dir, free loopback port
    c = srv.client(srv.admin_token)
    st, body = c.get("/api/v2/users")
    pt.check(st == 200, "admin lists users", body)
    srv.kill9(); srv.restart()              # same port, same data dir
    pt.done()                               # prints the summary, exits 1 on failure

Every process started here is stopped at exit (atexit), whatever happens,
and then what the test left running (a stopped agent's monitor and tasks,
which outlive it by design) is killed by sweep.py and reported.
Servers run the scheduler's invariant checker after every decision
(PAI_SCHED_CHECK=true unless the test's env says otherwise) and done()
fails the test when a server's log reports a violation (Server(...,
expect_violations=True) for the test that injects one).
Reporting: each check prints `ok - name` or `not ok - name` (+ indented
detail lines), a check that cannot run `ok - name # SKIP reason` (pt.skip),
which tests/run.sh counts.
"""

import atexit
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.parse

import sweep

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAI_BIN = os.environ.get("PAI_BIN") or os.path.join(REPO, os.environ.get("PAI_BUILD", "build"), "pai")
ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-pw-123"
# CA file that Clients of https:// servers verify the certificate with (test_tls.py)
TLS_CA = None

# ---- reporting ---------------------------------------------------------------

_passed = 0
_failed = 0
_skipped = 0


def ok(name):
    global _passed
    _passed += 1
    print("ok - %s" % name, flush=True)


def not_ok(name, detail=None):
    global _failed
    _failed += 1
    print("not ok - %s" % name, flush=True)
    if detail is not None:
        for line in str(detail).splitlines()[:20]:
            print("  " + line, flush=True)


def skip(name, reason):
    """A check that did not run (something it needs is missing): a TAP skip,
    which tests/run.sh counts apart from passes."""
    global _skipped
    _skipped += 1
    print("ok - %s # SKIP %s" % (name, reason), flush=True)


def check(cond, name, detail=None):
    """ok/not ok by cond; detail (anything) is printed on failure. Returns cond."""
    if cond:
        ok(name)
    else:
        not_ok(name, detail)
    return bool(cond)


def expect(resp, status, name, code=None):
    """Check a (status, body) pair: the status and, for errors, the OpenPAI code."""
    st, body = resp
    good = st == status
    if good and code is not None:
        good = isinstance(body, dict) and body.get("code") == code
    return check(good, name, "got %s %s, expected %s %s" % (st, body, status, code or ""))


def failures():
    return _failed


def done():
    """Stop every server still running (each must exit with status 0: under
    ASan a leak or error makes it fail), print the summary and exit (status 1
    when anything failed)."""
    for p in list(_procs):
        if isinstance(p, Server) and p.alive():
            rc = p.stop()
            check(rc == 0, "pai server on port %d stopped cleanly" % p.port,
                  "exit status %s; log tail:\n%s" % (rc, p.log()[-3000:]))
    for p in _servers:
        if not p.expect_violations:
            bad = [l for l in p.log().splitlines() if "scheduler invariant violated" in l]
            check(not bad, "pai server on port %d: the scheduler's invariant checker found "
                  "nothing" % p.port, "\n".join(bad[:5]))
    print("# %d passed, %d failed, %d skipped" % (_passed, _failed, _skipped), flush=True)
    # the exit handlers do the rest: a test's own first (registered after
    # this module's: a PostgreSQL cluster's stop, which needs its directory),
    # then _cleanup, then sweep.py's
    sys.exit(1 if _failed else 0)


# ---- processes -----------------------------------------------------------------

_procs = []
_servers = []  # every Server made, stopped or not (done() reads their logs)
_tmpdirs = []


def _cleanup():
    sweep.hold_signals()  # a ^C now would leave processes and directories behind
    for p in list(_procs):
        try:
            p.stop()
        except Exception:
            pass
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tmpdirs.clear()


atexit.register(_cleanup)


def free_port():
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tmpdir(prefix="pai-test-"):
    """A temporary directory removed at exit."""
    d = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("TEST_TMP"))
    _tmpdirs.append(d)
    sweep.add_root(d)
    return d


def get_fresh(where, path, token, read=True, timeout=60):
    """(status, body bytes, headers) of one GET on a connection of its own, read to its
    end (a streamed log); with read=False the response comes unread in place of the body.
    where: a port on 127.0.0.1, or a base URL (scheme://host:port; spoken plain HTTP)."""
    host, port = "127.0.0.1", where
    if isinstance(where, str):
        host, port = where.split("//", 1)[1].split("/", 1)[0].rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=timeout)
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    if not read:
        return r.status, r, dict(r.getheaders())
    body = r.read()
    c.close()
    return r.status, body, dict(r.getheaders())


def proc_status(pid, field):
    """The number after "field:" in /proc/PID/status (kB for VmRSS, VmHWM), 0 when absent."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0




class Proc:
    """A child process with its log file; stopped at exit."""

    def __init__(self, argv, log_path, env=None):
        self.argv = argv
        self.log_path = log_path
        self.env = env
        self.proc = None

    def spawn(self):
        logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv, stdout=logf, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=self.env)
        logf.close()
        if self not in _procs:
            _procs.append(self)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after timeout. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        if self in _procs:
            _procs.remove(self)
        return rc

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


class Server(Proc):
    """A running `pai server`: .url, .port, .data_dir, .admin_token, .agent_token."""

    def __init__(self, data_dir=None, extra_args=(), admin_password=ADMIN_PASSWORD, env=None,
                 expect_violations=False):
        self.data_dir = data_dir or tmpdir("pai-srv-")
        # the scheduler's invariant checker after every decision (sched_check:
        # true) unless the test says otherwise; done() fails on any violation
        self.expect_violations = expect_violations
        _servers.append(self)
        self.extra_args = list(extra_args)
        self.admin_password = admin_password
        self.port = 0
        self.url = None
        self.admin_token = None
        self.agent_token = None
        e = dict(os.environ)
        e.setdefault("PAI_SCHED_CHECK", "true")
        e.update(env or {})
        super().__init__(None, os.path.join(self.data_dir, "server.log"), e)

    def start(self, timeout=60):
        self.argv = [PAI_BIN, "server", "--listen", "127.0.0.1:%d" % self.port,
                     "--data-dir", self.data_dir, "--admin-password", self.admin_password,
                     "--pwhash-memlimit-kib", "8192", "--pwhash-opslimit", "1"] + self.extra_args
        start_size = os.path.getsize(self.log_path) if os.path.exists(self.log_path) else 0
        self.spawn()
        line = _wait_for_line_after(self.log_path, start_size, "listening on http", self.proc,
                                    timeout)
        if line is None:
            raise RuntimeError("pai server did not start:\n" + self.log()[-3000:])
        self.url = line.strip().split("listening on ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])
        tok_path = os.path.join(self.data_dir, "agent.token")
        if os.path.exists(tok_path):
            with open(tok_path) as f:
                self.agent_token = f.read().strip()
        self.admin_token = self.login(ADMIN_USER, self.admin_password)
        return self

    def restart(self, timeout=60):
        """Stop (if running) and start again on the same port and data dir."""
        if self.alive():
            self.stop()
        return self.start(timeout)

    def client(self, token=None):
        return Client(self.url, token)

    def login(self, username, password, expiration=None):
        body = {"username": username, "password": password}
        if expiration is not None:
            body["expiration"] = expiration
        st, b = self.client().post("/api/v2/authn/basic/login", body)
        if st != 200:
            raise RuntimeError("login %s failed: %s %s" % (username, st, b))
        return b["token"]

    def create_user(self, username, password="user-pw-123", admin=False, vcs=None):
        """Create a user as admin and return a login token for it."""
        body = {"username": username, "password": password, "admin": admin}
        if vcs is not None:
            body["virtualCluster"] = vcs
        st, b = self.client(self.admin_token).post("/api/v2/users", body)
        if st != 201:
            raise RuntimeError("create user %s failed: %s %s" % (username, st, b))
        return self.login(username, password)


def _wait_for_line_after(path, offset, needle, proc, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with open(path, "r", errors="replace") as f:
                f.seek(offset)
                for line in f:
                    if needle in line:
                        return line
        except FileNotFoundError:
            pass
        if proc.poll() is not None:
            return None
        time.sleep(0.02)
    return None


# The server as a user's runs: what the benchmarks start (bench/e2e.py,
# bench/vs-slurm, bench/scale.py).  Every setting the tests change from the
# production default is set back to it: the invariant checker samples
# (sched_check: sample, a full check at most once per
# sched_check_interval_s, 60 s) instead of checking after every decision.
PRODUCTION_ENV = {"PAI_SCHED_CHECK": "sample"}


def start_server(data_dir=None, extra_args=(), **kw):
    """Start `pai server` on a free loopback port; returns a Server (stopped at exit)."""
    return Server(data_dir, extra_args, **kw).start()


def start_agent(server, name, args=(), env=None):
    """Start `pai agent` against server with the agent token; returns a Proc.

    Passes --server URL --token TOKEN --name NAME --work-dir DIR (a private
    temporary directory, also .work_dir) plus args (e.g. ["--gpus", "2"])."""
    e = dict(os.environ)
    e.update(env or {})
    d = tmpdir("pai-agent-%s-" % name)
    argv = [PAI_BIN, "agent", "--server", server.url, "--token", server.agent_token or "",
            "--name", name, "--work-dir", os.path.join(d, "work")] + list(args)
    p = Proc(argv, os.path.join(d, "agent.log"), e)
    p.work_dir = d
    p.spawn()
    return p


# ---- TLS ---------------------------------------------------------------------------

def openssl(d, *args):
    """Run `openssl args` in directory d; raises with its stderr on failure."""
    r = subprocess.run(("openssl",) + args, capture_output=True, text=True, timeout=60, cwd=d)
    if r.returncode != 0:
        raise RuntimeError("openssl %s: %s" % (args, r.stderr))


def make_ca(d, cn):
    """A test CA in d (ca.key, ca.pem); returns ca.pem's path."""
    openssl(d, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
            "/CN=" + cn, "-keyout", "ca.key", "-out", "ca.pem")
    return os.path.join(d, "ca.pem")


def issue_cert(d, name, san):
    """name.key (0600) and name.pem for CN 127.0.0.1 and subjectAltName san
    ("IP:127.0.0.1,DNS:localhost"), signed by d's CA (make_ca); returns
    (pem, key) paths."""
    openssl(d, "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
            name + ".key", "-out", name + ".csr")
    with open(os.path.join(d, "san.ext"), "w") as f:
        f.write("subjectAltName=%s\n" % san)
    openssl(d, "x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "2", "-extfile", "san.ext", "-out", name + ".pem")
    os.chmod(os.path.join(d, name + ".key"), 0o600)
    return os.path.join(d, name + ".pem"), os.path.join(d, name + ".key")


# ---- REST client -----------------------------------------------------------------

class Client:
    """A small keep-alive JSON client.  Every call returns (status, body) where
    body is the parsed JSON, or the text when it is not JSON."""

    def __init__(self, url, token=None, timeout=60):
        u = urllib.parse.urlparse(url)
        self.host, self.port = u.hostname, u.port
        self.https = u.scheme == "https"
        self.token = token
        self.timeout = timeout
        self.conn = None

    def _conn(self):
        if self.conn is None and self.https:
            ctx = ssl.create_default_context(cafile=TLS_CA)
            self.conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                    context=ctx)
        if self.conn is None:
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self.conn

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, body=None, token=..., raw=None, content_type=None,
                headers=None):
        """body: JSON-encoded; raw: bytes/str sent as is (with content_type)."""
        h = dict(headers or {})
        tok = self.token if token is ... else token
        if tok:
            h["Authorization"] = "Bearer " + tok
        data = None
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
            h["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = content_type or "application/json"
        for attempt in range(2):
            try:
                c = self._conn()
                c.request(method, path, body=data, headers=h)
                r = c.getresponse()
                text = r.read()
                if r.getheader("Connection", "").lower() == "close":
                    self.close()
                break
            except (http.client.HTTPException, ConnectionError, OSError):
                self.close()
                if attempt == 1:
                    raise
        try:
            parsed = json.loads(text) if text else None
        except ValueError:
            parsed = text.decode(errors="replace")
        self.last_headers = dict(r.getheaders())
        return r.status, parsed

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path, body=None, **kw):
        return self.request("DELETE", path, body, **kw)


# ---- permission matrix -------------------------------------------------------------

ROLES = ("anonymous", "user", "other", "admin", "app", "revoked", "expired")


def make_identities(srv, prefix="pm"):
    """Tokens for every role of the permission matrix:
      anonymous (None), user, other (a second plain user), admin,
      app (user's application token), revoked (a revoked user token),
      expired (a user token past its expiry).
    Also returns the user names under "_user" and "_other"."""
    user, other = prefix + "user", prefix + "other"
    ids = {"anonymous": None, "admin": srv.admin_token, "_user": user, "_other": other}
    ids["user"] = srv.create_user(user)
    ids["other"] = srv.create_user(other)
    c = srv.client(ids["user"])
    st, b = c.post("/api/v2/tokens/application")
    if st != 200:
        raise RuntimeError("app token: %s %s" % (st, b))
    ids["app"] = b["token"]
    rev = srv.login(user, "user-pw-123")
    st, b = srv.client(rev).delete("/api/v2/authn/basic/logout")
    if st != 200:
        raise RuntimeError("logout: %s %s" % (st, b))
    ids["revoked"] = rev
    ids["expired"] = srv.login(user, "user-pw-123", expiration=1)
    time.sleep(1.2)
    return ids


def _subst(v, ids):
    if isinstance(v, str):
        return v.replace("{user}", ids["_user"]).replace("{other}", ids["_other"])
    if isinstance(v, dict):
        return {k: _subst(x, ids) for k, x in v.items()}
    if isinstance(v, list):
        return [_subst(x, ids) for x in v]
    return v


def run_matrix(srv, ids, rows, name_prefix="perm"):
    """rows: (method, path, body, {role: expected_status or set}) with a "*"
    role as the default.  path and body strings may use {user}/{other} for
    the user names; body may be a function of ids (called once per role).
    Prints one ok/not ok per (row, role)."""
    for method, path, body, expected in rows:
        p = path.replace("{user}", ids["_user"]).replace("{other}", ids["_other"])
        for role in ROLES:
            want = expected.get(role, expected.get("*"))
            if want is None:
                continue
            want = want if isinstance(want, (set, frozenset, tuple, list)) else {want}
            b = _subst(body(ids) if callable(body) else body, ids)
            st, resp = srv.client(ids[role]).request(method, p, b)
            check(st in want, "%s: %s %s as %s -> %s" % (name_prefix, method, path, role,
                                                         "/".join(map(str, sorted(want)))),
                  "got %s %s" % (st, resp))
