#!/usr/bin/env python3
"""test_tls.py - native TLS (docs/security.md "Accounts and TLS"): a server
with tls_cert/tls_key from a CA made here with openssl, reached with curl,
the CLI (pai login --ca-file, PAI_CA_FILE) and an agent (--ca-file) that
runs a job over the agent protocol on https://; clients without the CA, and
plain HTTP, are refused.
"""
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import jobstest as jt  # noqa: E402
import paitest as pt  # noqa: E402
from clitest import Tap  # noqa: E402

if not shutil.which("openssl") or not shutil.which("curl"):
    pt.skip("TLS", "openssl or curl is missing (scripts/deps.sh installs them)")
    pt.done()

d = pt.tmpdir("pai-tls-")


# a CA, and the server's certificate signed by it for 127.0.0.1 and localhost
CA = pt.make_ca(d, "pai test CA")
pt.issue_cert(d, "server", "IP:127.0.0.1,DNS:localhost")



def refused(args, needle, name):
    r = subprocess.run([pt.PAI_BIN, "server", "--listen", "127.0.0.1:0", "--data-dir",
                        pt.tmpdir("pai-tls-bad-"), "--admin-password", pt.ADMIN_PASSWORD,
                        "--pwhash-memlimit-kib", "8192", "--pwhash-opslimit", "1"] + args,
                       capture_output=True, text=True, timeout=30)
    pt.check(r.returncode != 0 and needle in r.stderr, name, r.stderr[-500:])


refused(["--tls-cert", os.path.join(d, "server.pem")], "TLS needs both tls_cert and tls_key",
        "a certificate without its key is refused at start")
refused(["--tls-cert", os.path.join(d, "san.ext"), "--tls-key", os.path.join(d, "server.key")],
        "cannot read a PEM file", "a file that is not PEM is refused at start")
refused(["--tls-cert", os.path.join(d, "ca.pem"), "--tls-key", os.path.join(d, "server.key")],
        "tls_key does not match tls_cert", "a key that does not match the certificate is refused at start")

pt.TLS_CA = CA
srv = pt.start_server(extra_args=["--tls-cert", os.path.join(d, "server.pem"),
                                  "--tls-key", os.path.join(d, "server.key")])
pt.check(srv.url.startswith("https://127.0.0.1:"), "the server says it listens on https://",
         srv.url)
plain = "http://" + srv.url[len("https://"):]


def curl(*args):
    return subprocess.run(["curl", "-sS", "--max-time", "10"] + list(args), capture_output=True,
                          text=True, timeout=30)


r = curl("--cacert", CA, srv.url + "/api/v2/info")
pt.check(r.returncode == 0 and '"authnMethod":"basic"' in r.stdout,
         "curl --cacert reaches the API over TLS", r)
r = curl("--cacert", CA, "-d", "username=admin&password=" + pt.ADMIN_PASSWORD,
         srv.url + "/api/v2/authn/basic/login")
pt.check(r.returncode == 0 and '"token"' in r.stdout, "curl logs in over TLS", r)
r = curl(srv.url + "/api/v2/info")
pt.check(r.returncode == 60, "curl without the CA refuses the certificate (exit 60)", r)
r = curl(plain + "/api/v2/info")
pt.check(r.returncode != 0 and "authnMethod" not in r.stdout,
         "plain HTTP to the TLS port gets no answer", r)
r = curl("--cacert", CA, "-o", "/dev/null", "-w", "%{http_code}", srv.url + "/")
pt.check(r.stdout == "200", "the portal is served over TLS", r)

# ---- an agent over TLS runs a job the CLI submitted --------------------------------
t = Tap()
job = os.path.join(d, "hello.yaml")
with open(job, "w") as f:
    f.write(jt.job_yaml("hello", [{"name": "main", "command": "echo hello over tls"}]))
r = t.pai("login", srv.url, "--user", "admin", "--password", pt.ADMIN_PASSWORD, "--ca-file", CA)
pt.check(r.rc == 0 and "logged in to %s as admin" % srv.url in r.out,
         "pai login --ca-file logs in to the https:// server", r)
agent = pt.start_agent(srv, "tls1", ["--ca-file", CA])
deadline = time.time() + 20
admin = srv.client(srv.admin_token)
while time.time() < deadline:
    st, nodes = admin.get("/api/v2/cluster/nodes")
    if st == 200 and "tls1" in str(nodes):
        break
    time.sleep(0.2)
r = t.pai("submit", job, "--wait", timeout=120)
pt.check(r.rc == 0 and "admin~hello SUCCEEDED" in r.out,
         "the CLI (CA kept from login) submits a job that the agent over TLS runs", r)
r = t.pai("logs", "hello")
pt.check(r.rc == 0 and "hello over tls" in r.out, "pai logs reads its log over TLS", r)
r = t.pai("jobs", env={"PAI_CONFIG": os.path.join(d, "none.json"), "PAI_SERVER": srv.url,
                       "PAI_TOKEN": srv.admin_token})
pt.check(r.rc != 0 and "certificate" in r.err.lower(),
         "the CLI without the CA refuses the certificate", r)
r = t.pai("jobs", env={"PAI_CONFIG": os.path.join(d, "none.json"), "PAI_SERVER": srv.url,
                       "PAI_TOKEN": srv.admin_token, "PAI_CA_FILE": CA})
pt.check(r.rc == 0 and "hello" in r.out, "PAI_CA_FILE gives the CLI the CA", r)

# an agent without the CA cannot sync
stranger = pt.start_agent(srv, "tls2")
time.sleep(3)
st, nodes = admin.get("/api/v2/cluster/nodes")
pt.check(st == 200 and "tls2" not in str(nodes) and "certificate" in stranger.log().lower(),
         "an agent without the CA refuses the server's certificate and never registers",
         stranger.log()[-600:])
stranger.stop()
agent.stop()
shutil.rmtree(t.home, ignore_errors=True)
pt.done()
