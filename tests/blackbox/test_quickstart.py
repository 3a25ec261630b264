"""test_quickstart.py - the README's quick start, line by line, on a real `pai up`.

Terminal 1 of the README (`make run` = build + `pai up`) is a `pai up` on a
private data directory and a free port; terminal 2 is every line of the
README block marked `<!-- quickstart -->`, run with bash, with only the port
(9186) and the data directory (.pai) replaced.  Each step's output is
checked.  Then: a second `pai up` on the same directory is refused, `pai down`
stops everything, a restart keeps the jobs, and SIGINT (Ctrl-C) stops it too.
"""
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from clitest import PAI, REPO, Tap, free_port  # noqa: E402

# What each README line must print (regex on stdout), by its first words.
EXPECT = [
    (r"^pai login ", r"logged in to http://127\.0\.0\.1:\d+ as admin \(admin\)"),
    (r"^pai nodes", r"(?m)^node-1\s+Ready\s.*\s4\s+\d+\s+\d+$"),
    (r"^pai submit examples/(\S+)\.yaml --param .* --name (\S+)", r"submitted admin~{2}"),
    (r"^pai submit examples/(\S+)\.yaml$", r"submitted admin~{1}"),
    (r"^pai wait (\S+)", r"admin~{1} SUCCEEDED"),
    (r"^pai logs hello-world", r"hello from worker 0"),
    (r"^pai logs cpu-job", r"primes below 5000: 669"),
    (r"^pai logs distributed --role worker --index 1", r"worker got: ack hello from worker 1"),
    (r"^pai logs sweep-1", r"trained with lr=0\.01"),
    (r"^pai logs secrets", r"the secret arrived \(12 characters\)"),
    (r"^pai jobs", r"(?m)^admin~distributed\s+SUCCEEDED"),
]


def readme_lines():
    text = open(os.path.join(REPO, "README.md")).read()
    block = text.split("<!-- quickstart")[1].split("```sh\n", 1)[1].split("```", 1)[0]
    return [l for l in block.splitlines() if l.strip() and not l.startswith("#")]


def expected(line):
    for pat, out in EXPECT:
        m = re.match(pat, line)
        if m:
            return out.replace("{1}", m.group(1) if m.groups() else "").replace(
                "{2}", m.group(2) if len(m.groups()) > 1 else "")
    return None


class Up:
    def __init__(self, t, data, port, *extra):
        self.t, self.data, self.port = t, data, port
        self.log = open(os.path.join(os.path.dirname(data), "up-%d.out" % time.time_ns()), "w+")
        self.p = subprocess.Popen([PAI, "up", "--data-dir", data, "--port", str(port)] + list(extra),
                                  stdout=self.log, stderr=subprocess.STDOUT, env=t.env, cwd=REPO)

    def wait_banner(self, timeout=90):
        end = time.time() + timeout
        while time.time() < end:
            self.log.seek(0)
            out = self.log.read()
            if "pai is up" in out and "stop:" in out:
                return out
            if self.p.poll() is not None:
                return out
            time.sleep(0.2)
        self.log.seek(0)
        return self.log.read()

    def output(self):
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
            try:
                self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()


def run_readme(t, data, port):
    env = dict(t.env)
    env["PATH"] = os.path.dirname(os.path.abspath(PAI)) + ":" + env["PATH"]
    for line in readme_lines():
        if line.startswith("export PATH="):
            continue  # the same PATH change is made above
        cmd = line.replace("9186", str(port)).replace(".pai/", data + "/")
        try:
            p = subprocess.run(["bash", "-c", cmd], env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
        except subprocess.TimeoutExpired as e:
            t.check("README: %s" % line, False, "timed out after 240 s\n--- stdout\n%s--- stderr\n%s"
                    % (e.stdout, e.stderr))
            continue
        want = expected(line)
        good = p.returncode == 0 and (want is None or re.search(want, p.stdout))
        t.check("README: %s" % line, good, "rc=%d want=%s\n--- stdout\n%s--- stderr\n%s"
                % (p.returncode, want, p.stdout, p.stderr))


def check_secret_hidden(t, port):
    """examples/secrets.yaml: the value reaches the task, never the API."""
    tok = json.load(open(t.env["PAI_CONFIG"]))["token"]
    req = urllib.request.Request("http://127.0.0.1:%d/api/v2/jobs/admin~secrets/config" % port,
                                 headers={"Authorization": "Bearer " + tok})
    with urllib.request.urlopen(req, timeout=10) as resp:
        config = resp.read().decode()
    detail = t.pai("job", "secrets", "--json").out
    t.check("the secret value is in neither the job config nor the job detail",
            "api_key" in config and "s3cr3t-value" not in config and "s3cr3t-value" not in detail, config)


def main():
    t = Tap()
    root = tempfile.mkdtemp(prefix="pai-quickstart-")
    t.cleanup.append(root)
    data = os.path.join(root, "data")
    port = free_port()
    up = Up(t, data, port)
    try:
        out = up.wait_banner()
        t.check("pai up prints portal, API and login",
                "portal:  http://127.0.0.1:%d/" % port in out and "/api/v2" in out and "login:   admin / " in out, out)
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=10) as resp:
                page = resp.read().decode(errors="replace")
            t.check("the printed portal URL serves the portal", resp.status == 200 and "<html" in page.lower(),
                    page[:300])
        except OSError as e:
            t.check("the printed portal URL serves the portal", False, e)
        pw = open(os.path.join(data, "admin.password")).read().strip()
        t.check("the printed password is the stored one", ("admin / %s" % pw) in out, out)
        t.pai("login", "http://127.0.0.1:%d" % port, "--password", pw)
        # a server without the jobs API (NoApiError) is the regression this catches: it fails
        probe = t.pai("jobs", env={"PAI_SERVER": "http://127.0.0.1:%d" % port})
        t.check("the server answers the jobs API", probe.rc == 0 and "NoApiError" not in probe.err, probe)
        run_readme(t, data, port)
        check_secret_hidden(t, port)
        r = t.pai("up", "--data-dir", data, "--port", str(free_port()))
        t.check("a second pai up on the same data dir is refused", r.rc == 1 and "already running" in r.err, r)
        long_job = os.path.join(root, "across.yaml")
        with open(os.path.join(REPO, "examples", "hello-world.yaml")) as f:
            text = f.read().replace("name: hello-world", "name: across-restart")
        with open(long_job, "w") as f:
            f.write(text.replace("      - 'echo \"GPUs", "      - sleep 6\n      - 'echo \"GPUs"))
        r = t.pai("submit", long_job)
        t.check("submit a job that outlives a restart", r.rc == 0, r)
        waiter = subprocess.Popen([PAI, "wait", "across-restart"], env=t.env, cwd=REPO,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1)
        r = t.pai("down", "--data-dir", data)
        t.check("pai down stops the cluster", r.rc == 0 and "stopped" in r.out, r)
        up.p.wait(60)
        t.check("pai up exits after pai down", up.p.returncode == 0, up.output())
        t.check("the pidfile is removed", not os.path.exists(os.path.join(data, "pai-up.pid")))
        r = t.pai("jobs", env={"PAI_SERVER": "http://127.0.0.1:%d" % port})
        t.check("the server is gone after pai down", r.rc == 2 and "cannot reach" in r.err, r)

        up = Up(t, data, port)
        out = up.wait_banner()
        t.check("pai up restarts on the same data dir", "pai is up" in out, out)
        try:
            wout, werr = waiter.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            waiter.kill()
            wout, werr = waiter.communicate()
        t.check("pai wait rides out the restart; the re-adopted task finishes",
                waiter.returncode == 0 and "admin~across-restart SUCCEEDED" in wout,
                "rc=%s\n%s\n%s" % (waiter.returncode, wout, werr))
        r = t.pai("jobs", "--json", env={"PAI_SERVER": "http://127.0.0.1:%d" % port})
        t.check("a restart keeps the jobs (and the login)", r.rc == 0 and '"hello-world"' in r.out, r)
        up.p.send_signal(signal.SIGINT)
        up.p.wait(60)
        t.check("Ctrl-C (SIGINT) stops pai up cleanly", up.p.returncode == 0 and "pai up: stopped" in up.output(),
                up.output())
        r = t.pai("jobs", env={"PAI_SERVER": "http://127.0.0.1:%d" % port})
        t.check("the server is gone after Ctrl-C", r.rc == 2, r)
    finally:
        up.stop()
    t.done()


if __name__ == "__main__":
    main()
