"""test_cli.py - every `pai` CLI command against a fake OpenPAI REST server.

The fake (fakepai.py) makes error answers exact (bad token, unknown job,
conflicts, forbidden); test_quickstart.py runs the same commands against
the real `pai up`.
"""
import json
import os
import stat
import sys

sys.path.insert(0, os.path.dirname(__file__))
from clitest import PAI as PAI_BIN, Tap, free_port, write  # noqa: E402
from fakepai import FakePai  # noqa: E402

COMMANDS = ["up", "down", "login", "logout", "submit", "jobs", "job", "logs", "ssh", "exec", "stop",
            "delete", "wait", "tag", "nodes", "vcs", "users", "groups", "token", "store", "template"]

HELLO = """protocolVersion: 2
name: hello
type: job
prerequisites:
  - {name: img, type: dockerimage, uri: "ubuntu:22.04"}
parameters:
  greeting: hi
  epochs: 1
taskRoles:
  worker:
    instances: 2
    dockerImage: img
    resourcePerInstance: {cpu: 1, memoryMB: 256, gpu: 1}
    commands:
      - echo <% $parameters.greeting %>
"""

NO_NAME = """protocolVersion: 2
type: job
prerequisites:
  - {name: img, type: dockerimage, uri: "ubuntu:22.04"}
taskRoles:
  worker:
    instances: 1
    dockerImage: img
    commands: [echo hi]
"""

BAD_FIELD = """protocolVersion: 2
name: badfield
type: job
prerequisites:
  - {name: img, type: dockerimage, uri: "ubuntu:22.04"}
taskRoles:
  worker:
    instances: many
    dockerImage: img
    commands: [echo hi]
"""

BAD_YAML = """protocolVersion: 2
name: broken
taskRoles:
  worker:
    commands: [echo hi
  other: x
"""


def test_help(t):
    for c in COMMANDS:
        r = t.pai(c, "--help")
        t.check("%s --help" % c, r.rc == 0 and ("usage: pai %s" % c) in r.out, r)
    doc = open(os.path.join(os.path.dirname(__file__), "..", "..", "docs", "cli.md")).read()
    for c in COMMANDS:
        r = t.pai(c, "--help")
        t.check("docs/cli.md has the current `pai %s --help`" % c, "```\n" + r.out + "```" in doc,
                "run: python3 tests/blackbox/gen_cli_doc.py (pai %s --help changed)" % c)
    r = t.pai("jobs", "--bogus")
    t.check("unknown option is a usage error", r.rc == 2 and "unknown option --bogus" in r.err, r)
    r = t.pai("job")
    t.check("missing argument is a usage error", r.rc == 2 and "missing argument" in r.err, r)
    r = t.pai("--version")
    t.check("--version prints the version", r.rc == 0 and r.out.startswith("pai v") and
            r.out.count("\n") == 1, r)


def test_login(t, srv):
    r = t.pai("jobs")
    t.check("not logged in is refused", r.rc == 2 and "pai login" in r.err, r)
    r = t.pai("login", srv.url, "--user", "admin", "--password", "wrong")
    t.check("login with a wrong password fails", r.rc == 1 and "IncorrectPasswordError" in r.err, r)
    r = t.pai("login", srv.url, "--user", "nobody", "--password", "x")
    t.check("login as an unknown user fails", r.rc == 1 and "IncorrectPasswordError" in r.err, r)
    r = t.pai("login", srv.url + "/", stdin="secret\n")
    t.check("login reads the password from stdin", r.rc == 0 and "logged in to %s as admin (admin)" % srv.url in r.out, r)
    cfg = t.env["PAI_CONFIG"]
    mode = stat.S_IMODE(os.stat(cfg).st_mode)
    t.check("config file is mode 0600", mode == 0o600, oct(mode))
    with open(cfg) as f:
        c = json.load(f)
    t.check("config file holds server, token and user",
            c.get("server") == srv.url and c.get("token", "").startswith("tok-") and c.get("user") == "admin", c)


def test_errors(t, srv):
    port = free_port()
    r = t.pai("jobs", env={"PAI_SERVER": "http://127.0.0.1:%d" % port})
    t.check("server down: clear message, exit 2", r.rc == 2 and "cannot reach the server" in r.err and "pai up" in r.err, r)
    r = t.pai("jobs", env={"PAI_TOKEN": "bogus"})
    t.check("bad token: UnauthorizedUserError and a hint", r.rc == 1 and "UnauthorizedUserError" in r.err and "pai login" in r.err, r)
    r = t.pai("job", "nosuchjob")
    t.check("unknown job: NoJobError, exit 1", r.rc == 1 and "NoJobError" in r.err and "admin~nosuchjob" in r.err, r)
    for cmd in (["stop", "nosuchjob"], ["delete", "nosuchjob"], ["wait", "nosuchjob"], ["logs", "nosuchjob"],
                ["tag", "nosuchjob", "x"]):
        r = t.pai(*cmd)
        t.check("%s of an unknown job fails" % cmd[0], r.rc != 0 and "NoJobError" in r.err, r)


def test_submit(t, srv):
    d = t.home
    n0 = len(srv.state.bodies)
    r = t.pai("submit", write(d, "noname.yaml", NO_NAME))
    t.check("missing field: file and field named", r.rc == 2 and "noname.yaml" in r.err and "name" in r.err, r)
    r = t.pai("submit", write(d, "badfield.yaml", BAD_FIELD))
    t.check("invalid file: file, line and field named",
            r.rc == 2 and "badfield.yaml:8:" in r.err and "taskRoles.worker.instances" in r.err, r)
    r = t.pai("submit", write(d, "bad.yaml", BAD_YAML))
    t.check("YAML syntax error: file and line named", r.rc == 2 and "bad.yaml:6:" in r.err and "YAML" in r.err, r)
    r = t.pai("submit", os.path.join(d, "missing.yaml"))
    t.check("missing file is refused", r.rc == 2 and "cannot read" in r.err, r)
    t.check("nothing was sent for invalid files", len(srv.state.bodies) == n0, srv.state.bodies)
    hello = write(d, "hello.yaml", HELLO)
    r = t.pai("submit", hello)
    t.check("submit prints the job name", r.rc == 0 and r.out.strip() == "submitted admin~hello", r)
    t.check("the file is sent as written", srv.state.bodies[-1] == HELLO, srv.state.bodies[-1:])
    r = t.pai("submit", hello)
    t.check("duplicate name: ConflictJobError", r.rc == 1 and "ConflictJobError" in r.err, r)
    r = t.pai("submit", hello, "--param", "greeting=bonjour", "--param", "epochs=3", "--name", "hello-fr", "--json")
    ok = r.rc == 0 and json.loads(r.out).get("job") == "admin~hello-fr"
    body = json.loads(srv.state.bodies[-1]) if ok else {}
    t.check("--param and --name rewrite the document",
            ok and body.get("name") == "hello-fr" and body["parameters"] == {"greeting": "bonjour", "epochs": 3}, r)
    t.check("--param keeps the rest of the job", body.get("taskRoles", {}).get("worker", {}).get("instances") == 2, body)
    r = t.pai("submit", hello, "--param", "nosuch=1", "--name", "x1")
    t.check("--param of an undeclared parameter is refused", r.rc == 2 and "parameters.nosuch" in r.err, r)
    r = t.pai("submit", hello, "--param", "novalue", "--name", "x2")
    t.check("--param without = is refused", r.rc == 2 and "KEY=VALUE" in r.err, r)
    r = t.pai("submit", hello, "--vc", "nosuchvc", "--name", "x3")
    t.check("unknown VC: NoVirtualClusterError", r.rc == 1 and "NoVirtualClusterError" in r.err, r)
    t.check("--vc sets defaults.virtualCluster", json.loads(srv.state.bodies[-1])["defaults"]["virtualCluster"] == "nosuchvc")


def test_job_views(t, srv):
    r = t.pai("job", "hello")
    t.check("job shows the waiting reason", r.rc == 0 and "WAITING" in r.out and "not enough free GPUs" in r.out, r)
    r = t.pai("jobs")
    lines = r.out.splitlines()
    t.check("jobs prints a header", r.rc == 0 and lines and lines[0].split()[:3] == ["NAME", "STATE", "VC"], r)
    t.check("jobs lists the job", any(l.split()[0] == "admin~hello" for l in lines[1:]), r)
    r = t.pai("jobs", "--json")
    t.check("jobs --json is JSON", r.rc == 0 and any(j["name"] == "hello" for j in json.loads(r.out)), r)
    r = t.pai("jobs", "--state", "FAILED")
    t.check("jobs --state filters", r.rc == 0 and len(r.out.splitlines()) == 1, r)
    r = t.pai("job", "admin~hello")
    t.check("job shows the task table", r.rc == 0 and "ROLE" in r.out and "node-1" in r.out and "worker" in r.out, r)
    r = t.pai("job", "hello", "--json")
    t.check("job --json is the JobDetail", r.rc == 0 and json.loads(r.out)["name"] == "hello", r)


def test_wait_logs(t, srv):
    r = t.pai("wait", "hello")
    t.check("wait: exit 0 on SUCCEEDED", r.rc == 0 and "admin~hello SUCCEEDED" in r.out, r)
    t.check("wait: plain progress lines off a terminal", "admin~hello:" in r.err and "\r" not in r.err, r)
    r = t.pai("wait", "hello", "--json", "--quiet")
    t.check("wait --json prints the final job detail", r.rc == 0 and json.loads(r.out)["jobStatus"]["state"] == "SUCCEEDED"
            and r.err == "", r)
    r = t.pai("logs", "hello")
    t.check("logs prints stdout", r.rc == 0 and r.out == "hello from admin~hello worker/0 (stdout)\n", r)
    r = t.pai("logs", "hello", "--index", "1", "--stderr")
    t.check("logs --index --stderr", r.rc == 0 and "worker/1 (stderr)" in r.out, r)
    r = t.pai("logs", "hello", "--role", "nosuch")
    t.check("logs of an unknown role fails", r.rc == 1 and "no task role 'nosuch'" in r.err, r)
    r = t.pai("logs", "hello", "--index", "7")
    t.check("logs of an unknown index fails", r.rc == 1 and "no task worker/7" in r.err, r)
    r = t.pai("logs", "hello", "--follow")
    t.check("logs --follow ends with the job", r.rc == 0 and "worker/0 (stdout)" in r.out, r)
    hello = os.path.join(t.home, "hello.yaml")
    t.pai("submit", hello, "--name", "will-fail")
    r = t.pai("wait", "will-fail")
    t.check("wait: exit 1 on FAILED with diagnostics", r.rc == 1 and "FAILED" in r.out and "exited with 1" in r.err, r)
    r = t.pai("job", "will-fail")
    t.check("job shows exit diagnostics", "exit 1 from fake" in r.out and "exit code" in r.out, r)
    t.pai("submit", hello, "--name", "runs-forever")
    r = t.pai("wait", "runs-forever", "--timeout", "1")
    t.check("wait --timeout: exit 124", r.rc == 124 and "still not finished" in r.err, r)
    r = t.pai("delete", "runs-forever")
    t.check("delete of a running job is refused", r.rc == 1 and "stop it first" in r.err, r)
    r = t.pai("stop", "runs-forever", "--json")
    t.check("stop --json", r.rc == 0 and json.loads(r.out) == {"job": "admin~runs-forever",
            "message": "execute job runs-forever successfully"}, r)
    r = t.pai("wait", "runs-forever")
    t.check("wait: exit 3 on STOPPED", r.rc == 3 and "STOPPED" in r.out, r)
    r = t.pai("delete", "runs-forever")
    t.check("delete a finished job", r.rc == 0 and "deleted admin~runs-forever" in r.out, r)
    r = t.pai("job", "runs-forever")
    t.check("a deleted job is gone", r.rc == 1 and "NoJobError" in r.err, r)
    r = t.pai("wait", "hello", "--timeout", "x")
    t.check("wait --timeout must be a number", r.rc == 2 and "--timeout" in r.err, r)


def run_on_tty(t, *args):
    """Run pai with stderr on a pseudo-terminal; returns (rc, stderr text)."""
    import pty
    import subprocess
    master, slave = pty.openpty()
    p = subprocess.Popen([PAI_BIN] + list(args), env=t.env, stdout=subprocess.DEVNULL, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return p.wait(), b"".join(chunks).decode(errors="replace")


def test_tty_progress(t, srv):
    hello = os.path.join(t.home, "hello.yaml")
    t.pai("submit", hello, "--name", "tty-job")
    rc, err = run_on_tty(t, "wait", "tty-job")
    t.check("wait on a terminal: one rewritten state line", rc == 0 and "\r" in err and "tty-job" in err
            and "\033[K" in err, repr(err))


def test_tags(t, srv):
    r = t.pai("tag", "hello", "keep")
    t.check("tag adds", r.rc == 0 and "added tag keep to admin~hello" in r.out, r)
    r = t.pai("job", "hello")
    t.check("job shows tags", '"keep"' in r.out, r)
    r = t.pai("jobs", "--json")
    t.check("tag visible in jobs --json", any("keep" in j["tags"] for j in json.loads(r.out)), r)
    r = t.pai("tag", "hello", "keep", "--remove")
    t.check("tag --remove", r.rc == 0 and "removed tag keep" in r.out, r)
    r = t.pai("tag", "hello", "json-tag", "--json")
    t.check("tag --json", r.rc == 0 and json.loads(r.out)["job"] == "admin~hello", r)
    r = t.pai("tag", "hello", "keep", "--remove")
    t.check("removing a missing tag fails", r.rc == 1 and "NoTagError" in r.err, r)


def test_cluster(t, srv):
    r = t.pai("nodes")
    rows = [l.split() for l in r.out.splitlines()]
    t.check("nodes header", r.rc == 0 and rows[0] == ["NODE", "STATE", "ADDRESS", "GPU_MODEL", "GPUS", "USED", "FREE"], r)
    t.check("nodes: GPUs used and free", ["node-1", "Ready", "127.0.0.1", "sim", "4", "2", "2"] in rows, r)
    r = t.pai("nodes", "--json")
    t.check("nodes --json", r.rc == 0 and len(json.loads(r.out)["items"]) == 2, r)
    r = t.pai("vcs")
    t.check("vcs", r.rc == 0 and r.out.splitlines()[1].split()[:2] == ["default", "100"], r)


def test_admin(t, srv):
    r = t.pai("users")
    t.check("users lists", r.rc == 0 and "admin" in r.out.splitlines()[1], r)
    r = t.pai("users", "create", "alice", "--password", "pw1", "--vc", "default")
    t.check("users create", r.rc == 0 and "created alice" in r.out, r)
    r = t.pai("users", "create", "alice", "--password", "pw1")
    t.check("users create twice: ConflictUserError", r.rc == 1 and "ConflictUserError" in r.err, r)
    r = t.pai("users", "show", "alice")
    t.check("users show", r.rc == 0 and json.loads(r.out)["virtualCluster"] == ["default"], r)
    r = t.pai("jobs", env={"PAI_TOKEN": ""})  # empty env var does not override
    t.check("empty PAI_TOKEN does not override", r.rc == 0, r)
    alice = dict(t.env)
    r = t.pai("login", srv.url, "--user", "alice", "--password", "pw1", env={"PAI_CONFIG": os.path.join(t.home, "alice.json")})
    t.check("alice logs in", r.rc == 0 and "as alice" in r.out and "(admin)" not in r.out, r)
    r = t.pai("users", env={"PAI_CONFIG": os.path.join(t.home, "alice.json")})
    t.check("users as non-admin: ForbiddenUserError", r.rc == 1 and "ForbiddenUserError" in r.err, r)
    r = t.pai("users", "delete", "alice")
    t.check("users delete", r.rc == 0 and "deleted alice" in r.out, r)
    r = t.pai("users", "delete", "alice")
    t.check("users delete unknown: NoUserError", r.rc == 1 and "NoUserError" in r.err, r)
    r = t.pai("users", "frobnicate", "x")
    t.check("users unknown action: usage", r.rc == 2, r)
    r = t.pai("groups", "create", "research", "--description", "the lab")
    t.check("groups create", r.rc == 0 and "created research" in r.out, r)
    r = t.pai("groups", "list")
    t.check("groups list", r.rc == 0 and any(l.startswith("research ") for l in r.out.splitlines()), r)
    r = t.pai("groups", "delete", "research")
    t.check("groups delete", r.rc == 0, r)
    del alice


def test_tokens(t, srv):
    r = t.pai("token", "create")
    tok = r.out.strip()
    t.check("token create", r.rc == 0 and tok.startswith("app-"), r)
    r = t.pai("token", "list")
    t.check("token list", r.rc == 0 and tok in r.out.split(), r)
    r = t.pai("jobs", env={"PAI_TOKEN": tok})
    t.check("the new token works", r.rc == 0, r)
    r = t.pai("token", "revoke", tok)
    t.check("token revoke", r.rc == 0, r)
    r = t.pai("jobs", env={"PAI_TOKEN": tok})
    t.check("a revoked token is refused", r.rc == 1 and "UnauthorizedUserError" in r.err, r)
    r = t.pai("token", "revoke")
    t.check("token revoke needs a token", r.rc == 2, r)


def test_logout(t, srv):
    r = t.pai("logout")
    t.check("logout", r.rc == 0 and "logged out of" in r.out, r)
    with open(t.env["PAI_CONFIG"]) as f:
        c = json.load(f)
    t.check("logout forgets the token, keeps the server", "token" not in c and c.get("server") == srv.url, c)
    r = t.pai("jobs")
    t.check("after logout commands ask for login", r.rc == 2 and "pai login" in r.err, r)


def main():
    t = Tap()
    srv = FakePai().start()
    try:
        test_help(t)
        test_login(t, srv)
        test_errors(t, srv)
        test_submit(t, srv)
        test_job_views(t, srv)
        test_wait_logs(t, srv)
        test_tty_progress(t, srv)
        test_tags(t, srv)
        test_cluster(t, srv)
        test_admin(t, srv)
        test_tokens(t, srv)
        test_logout(t, srv)
    finally:
        srv.stop()
    t.done()


if __name__ == "__main__":
    main()
