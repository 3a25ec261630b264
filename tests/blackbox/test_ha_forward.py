#!/usr/bin/env python3
"""test_ha_forward.py - what a standby's forwards carry (docs/architecture.md,
"What a standby serves"): two `pai server`s on one real PostgreSQL
(scripts/pg-test-cluster.sh) and one real agent.

  - a large answer (a 15 MiB task log, the most one log read returns)
    forwarded by the standby equals the leader's answer byte for byte, and
    streams: slow clients reading it through the standby hold the standby's
    memory down (the answer was buffered whole before, twice);
  - the leader's per-address bound on idle connections
    (max_idle_connections_per_ip) counts a request a standby forwards
    against the client the standby vouches for (X-Pai-Client-Addr with its
    HMAC proof), not against the standby: one client behind a standby
    cannot exhaust another's share; a client that is no standby and sends
    the header itself counts against its own address;
  - the leader killed in the middle of a forwarded answer cuts the client's
    answer short (the chunked body never ends), never a complete-looking one;
  - servers with TLS (a self-signed certificate made here with openssl): a
    standby verifies the leader against peer_ca_file; without it nothing is
    sent (503 NoLeaderError naming the TLS error), with it the forward works.

Needs the `postgresql` package (scripts/deps.sh --postgres); without it the
test is a TAP skip."""

import hashlib
import hmac
import http.client
import json
import os
import re
import socket
import subprocess
import time

import e2etest as e
import hatest
import paitest as pt

LEASE_S = 3
TOKEN = "ha-fwd-agent-token-0123456789"
PW = pt.ADMIN_PASSWORD
IDLE_PER_IP = 8  # the leader's max_idle_connections_per_ip
LOG_BYTES = 15 << 20
SLOW = 4
SANITIZED = "san" in os.path.basename(os.path.dirname(pt.PAI_BIN))

STORE = hatest.start_pg("standby forwards", "pai-hafw-pg-")


def server(i, extra=(), scheme="http"):
    """An HA server (hatest.HAServer) reached at scheme://."""
    srv = hatest.HAServer(STORE, "pai-hafw-srv%d-" % i, TOKEN, LEASE_S,
                          ["--standby-refresh-s", "1"] + list(extra))
    srv.url = srv.url.replace("http://", scheme + "://", 1)
    return srv


def wait_role(srv, role, timeout=30):
    end = time.time() + timeout
    while time.time() < end and srv.info().get("role") != role:
        time.sleep(0.1)
    return srv.info().get("role") == role


lead = server(0, ["--max-idle-connections-per-ip", str(IDLE_PER_IP)]).start()
pt.check(wait_role(lead, "leader"), "the first server leads", lead.info())
sb = server(1).start()
pt.check(wait_role(sb, "standby"), "the second stands by", sb.info())
TOK = pt.Client(lead.url).post("/api/v2/authn/basic/login",
                               {"username": pt.ADMIN_USER, "password": PW})[1].get("token")
admin = pt.Client(lead.url, TOK)

agdir = pt.tmpdir("pai-hafw-ag-")
ag = pt.Proc([pt.PAI_BIN, "agent", "--server", "%s,%s" % (lead.url, sb.url), "--name", "fw1",
              "--token", TOKEN, "--work-dir", agdir, "--gpus", "8", "--cpus", "32",
              "--memory-mb", "65536"], os.path.join(agdir, "agent.log"))
ag.spawn()
pt.check(e.wait_nodes(admin, 1, timeout=30) == ["fw1"], "agent fw1 registered")

# ---- a large answer through the standby -----------------------------------------------
uris, want = e.big_log_job(admin, LOG_BYTES)
LOG = uris.get("stdout", "/nowhere")

st0, body0, _ = pt.get_fresh(lead.url, LOG, TOK)
t0 = time.time()
st, body, hdr = pt.get_fresh(sb.url, LOG, TOK)
took = time.time() - t0
print("# the 15 MiB log through the standby: %.2f s" % took, flush=True)
pt.check(st0 == 200 and body0 == want, "the leader answers the whole log", (st0, len(body0)))
pt.check(st == 200 and body == body0,
         "through the standby the whole log equals the leader's answer, byte for byte",
         (st, len(body), body[-40:]))
pt.check(hdr.get("Transfer-Encoding") == "chunked" and hdr.get("Content-Type") == "text/plain",
         "it is streamed (chunked), with the leader's Content-Type", hdr)
st, b = pt.Client(sb.url, TOK).get("/api/v2/templates")
pt.check(st == 200 and isinstance(b, dict) and "items" in b,
         "a small forwarded answer still comes whole (JSON)",
         (st, str(b)[:200]))

# slow clients: each reads 64 KiB, then waits; the standby holds only a block each
before = pt.proc_status(sb.proc.pid, "VmRSS")
slow = []
for _ in range(SLOW):
    st, r, _ = pt.get_fresh(sb.url, LOG, TOK, read=False)
    slow.append((st, r, r.read(65536) if st == 200 else b""))
time.sleep(2)  # a buffered answer would have been read whole by now
grew = pt.proc_status(sb.proc.pid, "VmRSS") - before
print("# %d slow readers through the standby: its VmRSS +%d KiB" % (SLOW, grew), flush=True)
name = "%d slow readers hold the standby's memory down (under 16 MiB, not %d x 15 MiB)" % (
    SLOW, SLOW)
if SANITIZED:
    pt.ok(name + ": measured only (sanitizer build: its allocator keeps freed memory)")
else:
    pt.check(grew < 16 * 1024, name, "+%d KiB" % grew)
got = [(st, first + r.read()) for st, r, first in slow]
pt.check(all(st == 200 and b == want for st, b in got),
         "and each reads the whole log once it takes it", [(st, len(b)) for st, b in got])

# ---- the leader's per-address connection bound counts a standby's clients --------------
# The test plays a standby itself (it reads the cluster's forwarding secret from the store,
# as only servers can) to hold idle connections at the leader for two clients: POSTs that
# stop in their body after the headers (read by the leader: idle, not talking).
FWD_PATH = "/api/v2/jobs"


def forward_secret():
    r = subprocess.run(["psql", "-X", "-q", "-A", "-t", STORE, "-c",
                        "SELECT json FROM pai_records WHERE kind = 'server_secrets' "
                        "AND key = 'forward'"], capture_output=True, text=True, timeout=30)
    out = r.stdout.strip()
    return bytes.fromhex(json.loads(out)["key"]) if r.returncode == 0 and out else None


def proof(secret, addr):
    t = int(time.time())
    msg = "\n".join(["pai-fwd-v1", addr, "POST", FWD_PATH, str(t)]).encode()
    return "%d.%s" % (t, hmac.new(secret, msg, hashlib.sha256).hexdigest())


def stalled(src, client, proof_value):
    sk = socket.create_connection(("127.0.0.1", lead.port), timeout=5, source_address=(src, 0))
    sk.sendall(("POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: text/yaml\r\n"
                "Content-Length: 1000\r\nX-Pai-Client-Addr: %s\r\n"
                "X-Pai-Client-Addr-Proof: %s\r\n\r\nname: x\n"
                % (FWD_PATH, client, proof_value)).encode())
    time.sleep(0.05)  # read by the leader before the next one comes
    return sk


def evicted(socks):
    """Which of socks the leader closed (end-of-file or an answer)."""
    time.sleep(0.3)
    out = []
    for i, sk in enumerate(socks):
        sk.settimeout(0.02)
        try:
            sk.recv(1)
            out.append(i)
        except socket.timeout:
            pass
        except OSError:
            out.append(i)
    return out


secret = forward_secret()
pt.check(secret is not None, "the cluster's forwarding secret is in the store")
X, Y = "10.9.0.1", "10.9.0.2"
xs = [stalled("127.0.0.7", X, proof(secret, X)) for _ in range(IDLE_PER_IP)]
ys = [stalled("127.0.0.7", Y, proof(secret, Y)) for _ in range(IDLE_PER_IP)]
gone = evicted(xs + ys)
pt.check(gone == [], "a standby holding %d idle connections at the leader for each of two clients "
         "keeps them all: each client has its own bound (%d), the standby's address none of "
         "theirs" % (IDLE_PER_IP, IDLE_PER_IP), gone)
xs.append(stalled("127.0.0.7", X, proof(secret, X)))
gone = evicted(xs + ys)
pt.check(gone == [0], "one more for the first client evicts that client's own oldest, none of "
         "the other's", gone)
forged = "%d.%s" % (int(time.time()), "ab" * 32)
fs = [stalled("127.0.0.8", Y, forged) for _ in range(IDLE_PER_IP + 1)]
gone = evicted(ys + fs)
pt.check(gone == [IDLE_PER_IP], "a client that is no standby naming another's address (no valid "
         "proof) counts against its own: its own oldest is evicted, the named client keeps its "
         "connections", gone)
for sk in xs + ys + fs:
    sk.close()

# ---- the leader dies in the middle of a forwarded answer ------------------------------
st, r, _ = pt.get_fresh(sb.url, LOG, TOK, read=False)
first = r.read(65536) if st == 200 else b""
lead.kill9()
try:
    rest = r.read()
    cut = "complete: %d bytes" % (len(first) + len(rest))
except http.client.IncompleteRead as ex:
    cut, rest = "IncompleteRead", ex.partial
except (ConnectionError, OSError) as ex:
    cut, rest = type(ex).__name__, b""
pt.check(st == 200 and cut in ("IncompleteRead", "ConnectionResetError") and
         len(first) + len(rest) < len(want),
         "the leader killed mid-answer: the client's answer is cut short, not complete-looking",
         (st, cut, len(first) + len(rest)))
pt.check(re.search(r"standby: GET \S+ the leader's answer was cut", sb.log()) is not None,
         "the standby logs the cut answer",
         sb.log()[-1500:])
pt.check(wait_role(sb, "leader", 4 * LEASE_S + 20), "the standby takes over", sb.info())
ag.stop()
rc = sb.stop()
pt.check(rc == 0, "the server that took over stops cleanly (under ASan: no leak, no error)",
         (rc, sb.log()[-2000:]))

# ---- TLS between the servers: peer_ca_file ----------------------------------------------
tlsdir = pt.tmpdir("pai-hafw-tls-")
pt.openssl(tlsdir, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
           "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", "peer.key",
           "-out", "peer.pem")
os.chmod(os.path.join(tlsdir, "peer.key"), 0o600)
CERT, KEY = os.path.join(tlsdir, "peer.pem"), os.path.join(tlsdir, "peer.key")
pt.TLS_CA = CERT  # the test's own client trusts it
TLS = ["--tls-cert", CERT, "--tls-key", KEY]
t0 = server(2, TLS, "https").start()
pt.check(wait_role(t0, "leader", 4 * LEASE_S + 20), "a TLS server leads", t0.info())
t1 = server(3, TLS, "https").start()
pt.check(wait_role(t1, "standby"), "a TLS server without peer_ca_file stands by", t1.info())
LOGIN_BODY = {"username": pt.ADMIN_USER, "password": PW}
st, b = pt.Client(t1.url).post("/api/v2/authn/basic/login", LOGIN_BODY)
pt.check(st == 503 and isinstance(b, dict) and b.get("code") == "NoLeaderError" and
         re.search(r"SSL|certificate", b.get("message", "")) is not None,
         "without peer_ca_file the standby cannot verify the leader's self-signed certificate: "
         "nothing is sent (503 NoLeaderError naming the TLS error)", (st, b))
rc = t1.stop()
pt.check(rc == 0, "the standby that could not verify the leader stops cleanly",
         (rc, t1.log()[-2000:]))
t1 = server(4, TLS + ["--peer-ca-file", CERT], "https").start()
pt.check(wait_role(t1, "standby"), "a TLS server with peer_ca_file stands by", t1.info())
st, b = pt.Client(t1.url).post("/api/v2/authn/basic/login", LOGIN_BODY)
tok = b.get("token") if st == 200 and isinstance(b, dict) else None
pt.check(tok is not None, "with peer_ca_file a login through it reaches the leader over https",
         (st, b))
st, b = pt.Client(t1.url, tok).get("/api/v2/templates")
pt.check(st == 200 and isinstance(b, dict) and "items" in b,
         "and a forwarded read comes back over https", (st, str(b)[:200]))
for srv in (t1, t0):
    rc = srv.stop()
    pt.check(rc == 0, "%s stops cleanly" % srv.url, (rc, srv.log()[-2000:]))
pt.done()
