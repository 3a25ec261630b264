#!/usr/bin/env python3
"""test_log_stream.py - task logs read through the server stream in constant
memory (issue 11, "Logs").

A real `pai server` and agent on loopback; a job writes a 15 MiB log.  Then:
  - the whole log and its tail read through the server, byte for byte;
  - 32 clients read it at once: the server's and the agent's extra memory
    (VmHWM after - VmRSS before, /proc/<pid>/status) stays under 64 MiB each
    (it was +785..900 MiB for the server when each read was buffered whole);
  - 32 slow clients (each reads 64 KiB, then waits) hold the server's memory
    down too: the transfer from the agent pauses, nothing piles up;
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
import threading
import time
import urllib.parse

import e2etest as e
import paitest as pt

LOG_BYTES = 15 << 20
READERS = 32
BOUND_KIB = 64 * 1024
SANITIZED = "san" in os.path.basename(os.path.dirname(pt.PAI_BIN))


def rss_kib(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def get(port, path, token, read=True, timeout=60):
    """(status, body bytes or the response, headers) of one GET on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request("GET", path, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    if not read:
        return r.status, r, dict(r.getheaders())
    body = r.read()
    c.close()
    return r.status, body, dict(r.getheaders())


def check_memory(what, pid, before_kib, field="VmHWM"):
    grew = rss_kib(pid, field) - before_kib
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

st, b = e.submit(admin, e.job_yaml("biglog", [e.role(
    "main", "yes line-0123456789abcdef | head -c %d; echo; echo end-of-log" % LOG_BYTES)]))
d = e.wait_state(admin, "admin~biglog", ("SUCCEEDED", "FAILED", "STOPPED"), 60)
pt.check(e.state(d) == "SUCCEEDED", "a job writes a 15 MiB log", e.state(d))
ts = e.tasks(d, "main")
st, lg = admin.get(ts[0]["containerLog"]) if ts else (0, None)
uris = {loc["name"]: loc["uri"] for loc in (lg or {}).get("locations", [])}
log_uri = uris.get("stdout", "")
m_port = re.search(r"logs=http://127\.0\.0\.1:(\d+)", ag.log())
m_id = re.search(r"task=(\S+) started", ag.log())
pt.check(log_uri and m_port and m_id, "the log's location and the agent's log port are known",
         (lg, ag.log()[-1000:]))
log_port, attempt_id = int(m_port.group(1)), m_id.group(1)

# ---- one read, whole and tail ----------------------------------------------------------
st, body, hdr = get(srv.port, log_uri, srv.admin_token)
want = (b"line-0123456789abcdef\n" * (LOG_BYTES // 22 + 1))[:LOG_BYTES] + b"\nend-of-log\n"
pt.check(st == 200 and body == want, "the whole 15 MiB log reads through the server, byte for byte",
         (st, len(body), body[-40:]))
pt.check(hdr.get("Transfer-Encoding") == "chunked" and hdr.get("Content-Type") == "text/plain",
         "it is streamed (chunked text/plain)", hdr)
st, body, _ = get(srv.port, log_uri + "?tailMode=true", srv.admin_token)
pt.check(st == 200 and body == want[-65536:], "tailMode=true reads its last 64 KiB",
         (st, len(body), body[-40:]))
st, body, _ = get(srv.port, log_uri.replace("/stdout", "/stderr"), srv.admin_token)
pt.check(st == 200 and body == b"", "an empty log reads as an empty body", (st, body[:200]))

# ---- 32 readers at once ----------------------------------------------------------------
srv_before, ag_before = rss_kib(srv.proc.pid), rss_kib(ag.proc.pid)
results, lock = [], threading.Lock()


def reader():
    try:
        r = get(srv.port, log_uri, srv.admin_token, timeout=120)
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
srv_before = rss_kib(srv.proc.pid)
slow = []
for _ in range(READERS):
    st, r, _ = get(srv.port, log_uri, srv.admin_token, read=False)
    first = r.read(65536) if st == 200 else b""
    slow.append((st, len(first), r))
time.sleep(3)  # the buffered reply would have been read whole by now
check_memory("the server's extra memory for %d slow readers" % READERS, srv.proc.pid, srv_before,
             "VmRSS")
rest = [len(r.read()) for _, _, r in slow]
pt.check(all(st == 200 and n == 65536 for st, n, _ in slow) and
         all(n == len(want) - 65536 for n in rest),
         "the slow readers get the whole log in the end", ([s[:2] for s in slow], rest))

# ---- a busy node: 503 "busy" with Retry-After -----------------------------------------
held = []
for _ in range(64):  # the agent's LOGSRV_MAX_READERS, none of which reads
    sk = socket.create_connection(("127.0.0.1", log_port), timeout=5)
    sk.sendall(("GET /logs/%s/stdout HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
                % (urllib.parse.quote(attempt_id, safe=""), srv.agent_token)).encode())
    held.append(sk)
time.sleep(0.5)
st, body, hdr = get(srv.port, log_uri, srv.admin_token)
txt = body.decode(errors="replace")
pt.check(st == 503 and '"UnavailableError"' in txt and "busy" in txt and "unreachable" not in txt,
         "a node with all its log readers taken answers 503 busy, not unreachable", (st, txt[:300]))
pt.check(hdr.get("Retry-After", "").isdigit(), "the busy answer has Retry-After", hdr)
for sk in held:
    sk.close()
time.sleep(0.5)
st, body, _ = get(srv.port, log_uri, srv.admin_token)
pt.check(st == 200 and body == want, "log reads work again once the readers are gone",
         (st, len(body)))

# ---- the agent dies mid-read: the body is cut, not ended ------------------------------
st, r, _ = get(srv.port, log_uri, srv.admin_token, read=False)
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
st, body, _ = get(srv.port, log_uri, srv.admin_token)
txt = body.decode(errors="replace")
pt.check(st == 503 and "unreachable" in txt, "with the agent gone a read answers 503 unreachable",
         (st, txt[:300]))

pt.done()
