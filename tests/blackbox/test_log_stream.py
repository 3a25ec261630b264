#!/usr/bin/env python3
"""test_log_stream.py - task logs read through the server stream in constant
memory (issue 11, "Logs").

A real `pai server` and agent on loopback; a job writes a 15 MiB log.  Then:
  - the whole log and its tail read through the server, byte for byte;
  - who may read (docs/security.md, "Logs"): the owner, their application
    token and admins; another user gets 403 ForbiddenUserError on every log
    endpoint; after a restart with log_read_access all (OpenPAI's rule),
    anyone reads;
  - 32 clients read it at once: the server's and the agent's extra memory
    (VmHWM after - VmRSS before, /proc/<pid>/status) stays under 64 MiB each
    (it was +785..900 MiB for the server when each read was buffered whole);
  - 32 slow clients (each reads 64 KiB, then waits) hold the server's memory
    down too: the transfer from the agent pauses, nothing piles up;
  - clients that stop reading are cut off by the connection timeout and
    their connections are busy no more (a streaming answer is busy while it
    streams, never evicted as idle);
  - a node whose log server has all its readers answers 503 UnavailableError
    "busy" with Retry-After (not "unreachable"); once they are gone, reads work;
  - an agent killed in the middle of a read cuts the body short (the chunked
    answer never ends), never a silently complete-looking log.
Under a sanitizer build the memory figures are printed, not checked (its
allocator keeps freed memory).
"""

import http.client
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse

import e2etest as e
import paitest as pt

LOG_BYTES = 15 << 20
READERS = 32
BOUND_KIB = 64 * 1024
SANITIZED = "san" in os.path.basename(os.path.dirname(pt.PAI_BIN))


def check_memory(what, pid, before_kib, field="VmHWM"):
    grew = pt.proc_status(pid, field) - before_kib
    print("# %s: +%d KiB (%s after - VmRSS before)" % (what, grew, field), flush=True)
    name = "%s stays under 64 MiB" % what
    if SANITIZED:
        pt.ok(name + ": measured only (sanitizer build: its allocator keeps freed memory)")
    else:
        pt.check(grew < BOUND_KIB, name, "+%d KiB" % grew)


srv = pt.start_server()
admin = srv.client(srv.admin_token)
ag = e.agent(srv, "ls1")
pt.check(e.wait_nodes(admin, 1, timeout=30) == ["ls1"], "agent ls1 registered")

uris, want = e.big_log_job(admin, LOG_BYTES)
log_uri = uris.get("stdout", "")
m_port = re.search(r"logs=http://127\.0\.0\.1:(\d+)", ag.log())
m_id = re.search(r"task=(\S+) started", ag.log())
pt.check(log_uri and m_port and m_id, "the log's location and the agent's log port are known",
         (uris, ag.log()[-1000:]))
log_port, attempt_id = int(m_port.group(1)), m_id.group(1)
# the key the server presents to the node's log server (the join token is refused there)
with open(os.path.join(ag.work_dir, "node.logkey")) as f:
    log_key = f.read().strip()

# ---- one read, whole and tail ----------------------------------------------------------
st, body, hdr = pt.get_fresh(srv.port, log_uri, srv.admin_token)
pt.check(st == 200 and body == want, "the whole 15 MiB log reads through the server, byte for byte",
         (st, len(body), body[-40:]))
pt.check(hdr.get("Transfer-Encoding") == "chunked" and hdr.get("Content-Type") == "text/plain",
         "it is streamed (chunked text/plain)", hdr)
st, body, _ = pt.get_fresh(srv.port, log_uri + "?tailMode=true", srv.admin_token)
pt.check(st == 200 and body == want[-65536:], "tailMode=true reads its last 64 KiB",
         (st, len(body), body[-40:]))
st, body, _ = pt.get_fresh(srv.port, log_uri.replace("/stdout", "/stderr"), srv.admin_token)
pt.check(st == 200 and body == b"", "an empty log reads as an empty body", (st, body[:200]))

# ---- who may read: the owner and admins (log_read_access: owner, the default) -----------
alice_tok = srv.create_user("lsalice")
bob_tok = srv.create_user("lsbob")
alice = srv.client(alice_tok)
st, b = alice.post("/api/v2/tokens/application")
alice_app = b.get("token", "") if st == 200 else ""
e.submit(alice, e.job_yaml("small", [e.role("main", "echo hello-from-alice")]))
d = e.wait_state(alice, "lsalice~small", ("SUCCEEDED", "FAILED", "STOPPED"), 60)
ts = e.tasks(d, "main")
small_loc = ts[0]["containerLog"] if ts else "/nowhere"
small_uri = small_loc + "/stdout"
pt.check(e.state(d) == "SUCCEEDED" and ts, "alice's job ran", e.state(d))


def read_as(token, path):
    st, body, _ = pt.get_fresh(srv.port, path, token)
    return st, body.decode(errors="replace")[:300]


for who, tok in (("alice (the owner)", alice_tok), ("alice's application token", alice_app),
                 ("an admin", srv.admin_token)):
    st, body = read_as(tok, small_uri)
    pt.check(st == 200 and body == "hello-from-alice\n", "%s reads alice's log" % who, (st, body))
    st, body = read_as(tok, small_loc)
    pt.check(st == 200 and "locations" in body, "%s lists alice's log locations" % who, (st, body))
denied = "User lsbob is not allowed to read the logs of job lsalice~small."
for what, path in (("her log", small_uri), ("its tail", small_uri + "?tailMode=true"),
                   ("its locations", small_loc), ("her stderr", small_loc + "/stderr")):
    st, body = read_as(bob_tok, path)
    pt.check(st == 403 and '"ForbiddenUserError"' in body and denied in body,
             "another user reading %s gets 403 ForbiddenUserError" % what, (st, body))
st, body = read_as(bob_tok, small_uri.replace("lsalice~small", "lsalice~nosuch"))
pt.check(st == 404 and '"NoJobError"' in body, "a job that does not exist is 404, not 403",
         (st, body))
st, body = read_as(alice_tok, log_uri)
pt.check(st == 403, "alice cannot read the admin's log either", (st, body))

# log_read_access: all (OpenPAI's rule): anyone reads
srv.extra_args += ["--log-read-access", "all", "--connection-timeout-s", "10"]
srv.restart()
pt.check(e.wait_nodes(srv.client(srv.admin_token), 1, timeout=30) == ["ls1"],
         "the agent is back after the server's restart")
st, body = read_as(bob_tok, small_uri)
pt.check(st == 200 and body == "hello-from-alice\n",
         "with log_read_access all another user reads alice's log", (st, body))
st, body = read_as(bob_tok, small_loc)
pt.check(st == 200, "and lists its locations", (st, body))
r = subprocess.run([pt.PAI_BIN, "server", "--log-read-access", "everyone", "--data-dir",
                    pt.tmpdir()], capture_output=True, text=True, timeout=30)
pt.check(r.returncode != 0 and "log_read_access" in r.stderr and "owner, all" in r.stderr,
         "log_read_access takes only owner or all", (r.returncode, r.stderr[-300:]))

# ---- 32 readers at once ----------------------------------------------------------------
srv_before, ag_before = pt.proc_status(srv.proc.pid, "VmRSS"), pt.proc_status(ag.proc.pid, "VmRSS")
results, lock = [], threading.Lock()


def reader():
    try:
        r = pt.get_fresh(srv.port, log_uri, srv.admin_token, timeout=120)
        res = r[0] if r[1] == want else "short %d" % len(r[1])
    except Exception as ex:  # noqa: BLE001
        res = type(ex).__name__
    with lock:
        results.append(res)


t0 = time.time()
threads = [threading.Thread(target=reader) for _ in range(READERS)]
for t in threads:
    t.start()
for t in threads:
    t.join(180)
print("# %d concurrent 15 MiB reads in %.1f s" % (READERS, time.time() - t0), flush=True)
pt.check(results == [200] * READERS, "%d clients read the whole log at once" % READERS, results)
check_memory("the server's extra memory for %d readers" % READERS, srv.proc.pid, srv_before)
check_memory("the agent's extra memory for %d readers" % READERS, ag.proc.pid, ag_before)

# ---- 32 slow readers: the transfer pauses, nothing piles up in the server ------------
srv_before = pt.proc_status(srv.proc.pid, "VmRSS")
slow = []
t0 = time.time()
for _ in range(READERS):
    st, r, _ = pt.get_fresh(srv.port, log_uri, srv.admin_token, read=False)
    first = r.read(65536) if st == 200 else b""
    slow.append((st, len(first), r))
print("# %d slow readers started in %.1f s" % (READERS, time.time() - t0), flush=True)
time.sleep(3)  # the buffered reply would have been read whole by now
check_memory("the server's extra memory for %d slow readers" % READERS, srv.proc.pid, srv_before,
             "VmRSS")
# The rest of every reader at once.  Read one after another (as it was), the
# last ones sat idle while the others drained, past connection_timeout_s (10 s,
# set above) under load or a sanitizer, and the server cut them off as readers
# that stopped reading, which is what it must do (the next check): the test,
# not the server, was wrong.
rest = [None] * READERS


def drain(i, resp):
    try:
        rest[i] = len(resp.read())
    except (http.client.HTTPException, OSError) as ex:
        rest[i] = "%s after %d bytes" % (type(ex).__name__, len(getattr(ex, "partial", b"")))


t0 = time.time()
drains = [threading.Thread(target=drain, args=(i, r)) for i, (_, _, r) in enumerate(slow)]
for t in drains:
    t.start()
for t in drains:
    t.join(180)
print("# their rest read in %.1f s" % (time.time() - t0), flush=True)
pt.check(all(st == 200 and n == 65536 for st, n, _ in slow) and
         all(n == len(want) - 65536 for n in rest),
         "the slow readers get the whole log in the end", ([s[:2] for s in slow], rest))

# ---- readers that stop reading are cut off: nothing stays busy ------------------------
def busy_conns():
    st, body = srv.client(srv.admin_token).get("/metrics")
    m = re.search(r'pai_http_connections\{state="busy"\} (\S+)', body if st == 200 else "")
    return float(m.group(1)) if m else None


# The steady count: a request in flight when sampled (the agent's sync
# answered at that moment) only adds to it, so the least of a few samples.
# One sample once caught such a request (3, then 10 with the 8, then 2).
base_samples = []
for _ in range(5):
    base_samples.append(busy_conns())
    time.sleep(0.2)
base = min((b for b in base_samples if b is not None), default=None)
stalled = []
for _ in range(8):
    st, r, _ = pt.get_fresh(srv.port, log_uri, srv.admin_token, read=False)
    r.read(65536)
    stalled.append(r)
during = busy_conns()
t0 = time.time()
# The count that ends the wait is the one checked.  Sampled once more after
# it, another request in flight at that moment (the agent's next sync, this
# test's own reads) could be counted: a CI run under ASan at load saw 2, 10,
# 3 with the wait ended early by a 2 (the test took 18 s, not 40).
after = busy_conns()
while time.time() - t0 < 40 and after != base:
    time.sleep(1)
    after = busy_conns()
print("# 8 stalled readers: %s busy connections before, %s with them, %s after %.0f s" % (
    base, during, after, time.time() - t0), flush=True)
pt.check(during is not None and base is not None and during >= base + 8 and after == base,
         "readers that stop reading are cut off (connection_timeout_s 10) and their "
         "connections are no longer busy", (base, during, after))
for r in stalled:
    r.close()

# ---- a busy node: 503 "busy" with Retry-After -----------------------------------------
held = []
for _ in range(64):  # the agent's LOGSRV_MAX_READERS, none of which reads
    sk = socket.create_connection(("127.0.0.1", log_port), timeout=5)
    sk.sendall(("GET /logs/%s/stdout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                % (urllib.parse.quote(attempt_id, safe=""), log_key)).encode())
    held.append(sk)
time.sleep(0.5)
st, body, hdr = pt.get_fresh(srv.port, log_uri, srv.admin_token)
txt = body.decode(errors="replace")
pt.check(st == 503 and '"UnavailableError"' in txt and "busy" in txt and "unreachable" not in txt,
         "a node with all its log readers taken answers 503 busy, not unreachable", (st, txt[:300]))
pt.check(hdr.get("Retry-After", "").isdigit(), "the busy answer has Retry-After", hdr)
for sk in held:
    sk.close()
time.sleep(0.5)
st, body, _ = pt.get_fresh(srv.port, log_uri, srv.admin_token)
pt.check(st == 200 and body == want, "log reads work again once the readers are gone",
         (st, len(body)))

# ---- the agent dies mid-read: the body is cut, not ended ------------------------------
st, r, _ = pt.get_fresh(srv.port, log_uri, srv.admin_token, read=False)
first = r.read(65536) if st == 200 else b""
ag.kill9()
try:
    rest = r.read()
    cut = "complete: %d bytes" % (len(first) + len(rest))
except http.client.IncompleteRead as ex:
    cut = "IncompleteRead"
    rest = ex.partial
except (ConnectionError, OSError) as ex:
    cut = type(ex).__name__
    rest = b""
pt.check(st == 200 and cut in ("IncompleteRead", "ConnectionResetError") and
         len(first) + len(rest) < len(want),
         "a read cut by the agent's death ends short, not as a complete log", (st, cut))
st, body, _ = pt.get_fresh(srv.port, log_uri, srv.admin_token)
txt = body.decode(errors="replace")
pt.check(st == 503 and "unreachable" in txt, "with the agent gone a read answers 503 unreachable",
         (st, txt[:300]))

pt.done()
