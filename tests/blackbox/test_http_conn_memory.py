#!/usr/bin/env python3
"""A connection's memory in libmicrohttpd (http_connection_memory_kib, 32
KiB by default, libmicrohttpd's own; it zeroes the whole of it at every
request, src/server/http.c): what it must still hold and what it bounds,
at the default and at 16 KiB (half the zeroing, half the header room).

  - a request with a 3 KB Cookie header (a browser's cookies for the host)
    and ~6.5 KB of headers in all, or with one 7 KB header line, is
    answered as any other, again and again on one kept connection (the
    memory is reset between requests);
    measured limits at 16: ~7.8 KB for one line, ~10 KB in all, a Cookie
    header ~4.6 KB (libmicrohttpd keeps a parsed copy); ~16, ~20 and ~9 KB
    at 32, the default: an 8 KB Cookie header is answered there, 431 at 16;
  - headers past it are refused (431) and nothing is run;
  - a body far larger than the memory (read in parts: a 600 KB job spec)
    is taken whole, and a 4 KiB path is still routed (HTTP_MAX_PATH);
  - a queued request whose client has gone is not run (client_gone): with
    the agent syncs' worker stalled (PAI_TEST_AGENT_SYNC_STALL_MS) past
    HTTP_GONE_AFTER_US, a node's first sync whose client closed at once
    registers nothing, while the same sync from a client that waits does."""
import http.client
import json
import socket
import time

import e2etest as e
import paitest as pt

srv = pt.start_server()
c = srv.client(srv.admin_token)


def get_with_headers(conn, path, extra, token=None):
    hdrs = {"Authorization": "Bearer " + (token or srv2.admin_token)}
    hdrs.update(extra)
    conn.request("GET", path, headers=hdrs)
    r = conn.getresponse()
    return r.status, r.read()


# srv2: 16 KiB a connection; its agent syncs stall (the client_gone checks below)
STALL_MS = 1500  # past HTTP_GONE_AFTER_US (500 ms)
srv2 = pt.start_server(extra_args=["--http-write-threads", "2",
                                   "--http-connection-memory-kib", "16"],
                       env={"PAI_TEST_AGENT_SYNC_STALL_MS": str(STALL_MS)})
c2 = srv2.client(srv2.admin_token)

# ---- large headers on one kept connection, at 16 KiB ----------------------------------
conn = http.client.HTTPConnection("127.0.0.1", srv2.port, timeout=30)
cookie = "; ".join("c%02d=%s" % (i, "v" * 110) for i in range(27))  # ~3.1 KB
more = {"X-Extra-%d" % i: "w" * 100 for i in range(30)}  # ~3.5 KB more
more["Cookie"] = cookie
statuses = [get_with_headers(conn, "/api/v2/jobs?limit=1", more)[0] for _ in range(5)]
pt.check(statuses == [200] * 5 and len(cookie) > 3000,
         "a request with a 3 KB Cookie header and ~6.5 KB of headers is answered, five times on "
         "one connection", (statuses, len(cookie)))
statuses = [get_with_headers(conn, "/api/v2/jobs?limit=1", {"X-Long": "l" * 7000})[0]
            for _ in range(3)]
pt.check(statuses == [200] * 3, "a request with a 7 KB header line is answered, three times",
         statuses)
st, _ = get_with_headers(conn, "/api/v2/jobs?limit=1", {})
pt.check(st == 200, "and a small one after them on the same connection", st)
conn.close()

# ---- headers past the connection's memory -----------------------------------------------
s = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
big = "; ".join("c%03d=%s" % (i, "v" * 110) for i in range(300))  # ~35 KB
s.sendall(("GET /api/v2/jobs?limit=1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Cookie: %s\r\n\r\n" % (srv.admin_token, big)).encode())
data = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        data += d
except OSError:
    pass
s.close()
pt.check(data.startswith(b"HTTP/1.1 431"), "headers past the connection's memory: 431",
         data[:200])

# ---- a body far larger than the connection's memory ---------------------------------------
pad = "\n".join("# %s" % ("x" * 100) for _ in range(6000))  # ~620 KB of YAML comments
spec = e.job_yaml("bigspec", [e.role("main", "true")]) + "\n" + pad + "\n"
st, b = e.submit(c, spec)
pt.check(st == 202 and len(spec) > 600000, "a 600 KB job spec is read whole and accepted",
         (st, b, len(spec)))
pt.expect(c.get("/api/v2/jobs/admin~bigspec"), 200, "and the job is there")
st, b = c.get("/api/v2/jobs/" + "a" * 4000)
pt.check(st == 404, "a 4 KiB path is routed (an unknown job)", (st, b))

# ---- a queued request whose client has gone ------------------------------------------------


def sync_body(name):
    return json.dumps({"version": 2, "node": {"name": name, "address": "127.0.0.1", "cpus": 4,
                                              "memory_mb": 4096, "gpus": []},
                       "known_seq": 0, "wait_ms": 0, "tasks": []}).encode()


big_cookie = "; ".join("c%02d=%s" % (i, "v" * 110) for i in range(70))  # ~8.1 KB
for server, want, what in ((srv, 200, "the default, 32 KiB: an 8 KB Cookie header is answered"),
                           (srv2, 431, "http_connection_memory_kib 16: an 8 KB Cookie header "
                                       "is refused (431)")):
    h = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        h.request("GET", "/api/v2/jobs?limit=1",
                  headers={"Authorization": "Bearer " + server.admin_token, "Cookie": big_cookie})
        r = h.getresponse()
        r.read()
        status = r.status
    except (OSError, http.client.HTTPException) as ex:  # closed after the 431
        status = repr(ex)
    h.close()
    pt.check(status == want, what, status)


def listed():
    st, b = c2.get("/api/v2/cluster/nodes")
    return {x["metadata"]["name"] for x in (b or {}).get("items", [])} if st == 200 else set()


body = sync_body("gone-1")
s = socket.create_connection(("127.0.0.1", srv2.port), timeout=30)
s.sendall(("POST /api/v1/agent/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
           % (srv2.agent_token, len(body))).encode() + body)
s.close()  # gone before its worker takes it
h = http.client.HTTPConnection("127.0.0.1", srv2.port, timeout=60)
t0 = time.time()
h.request("POST", "/api/v1/agent/sync", sync_body("stay-1"),
          {"Authorization": "Bearer " + srv2.agent_token, "Content-Type": "application/json"})
r = h.getresponse()
r.read()
h.close()
pt.check(r.status == 200 and time.time() - t0 >= STALL_MS / 1000.0 * 0.9,
         "a sync whose client waits is run after the stall", (r.status, time.time() - t0))
time.sleep(STALL_MS / 1000.0 + 0.5)
names = listed()
pt.check("stay-1" in names and "gone-1" not in names,
         "a sync whose client closed while it was queued is not run", sorted(names))
pt.done()
