#!/usr/bin/env python3
"""test_http_evict_race.py - a request the server has read is answered,
never reset by the eviction of its connection (issue 15).

A full server (max_connections 4) evicts its oldest idle keep-alive
connection for each new one.  Before the fix a connection whose answer was
queued but not yet sent counted as idle: a new connection could evict it
(shutdown of both sides) and its client saw the connection reset after the
server had run the request (a submission stored, its retry answered 409).
  1. Deterministic: the oldest connection asks for a 1 MiB answer (a job's
     config) with a tiny receive buffer, so the answer is still being sent;
     a new connection arrives; the answer must then arrive whole.
  2. ROUNDS rounds race a POST on the oldest connection against a new
     connection that evicts it: each POST must end answered (202, or 503
     with Retry-After: the request was not run) or unanswered and NOT
     stored (its retry is not 409).

Knobs (environment): EVICT_ROUNDS (300), EVICT_SECONDS (20, a cap).
"""

import http.client
import os
import random
import socket
import threading
import time

import paitest as pt

ROUNDS = int(os.environ.get("EVICT_ROUNDS", "300"))
SECONDS = float(os.environ.get("EVICT_SECONDS", "20"))
CAP = 4

JOB = ("protocolVersion: 2\nname: %s\ntype: job\nprerequisites:\n"
       "  - {type: dockerimage, name: img, uri: busybox}\ntaskRoles:\n"
       "  main:\n    instances: 1\n    dockerImage: img\n"
       "    resourcePerInstance: {gpu: 0, cpu: 1, memoryMB: 64}\n"
       "    commands: [\"true\"]\n")

srv = pt.start_server(extra_args=["--max-connections", str(CAP),
                                  "--max-idle-connections-per-ip", "0"])
HDR = {"Authorization": "Bearer " + srv.admin_token, "Content-Type": "text/yaml"}


def conn():
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    h.request("GET", "/api/v2/info")
    h.getresponse().read()
    return h


def post(h, name, body=None):
    """(status, Retry-After) or (None, error text) when no answer came."""
    try:
        h.request("POST", "/api/v2/jobs", body=body or JOB % name, headers=HDR)
        r = h.getresponse()
        r.read()
        return r.status, r.getheader("Retry-After")
    except (OSError, http.client.HTTPException) as ex:
        return None, repr(ex)


def big_answer_survives_a_new_connection():
    cmds = "".join("      - echo %s\n" % ("x" * 200) for _ in range(18500))
    job = (JOB % "big").replace("    commands: [\"true\"]\n", "    commands:\n" + cmds)
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    st, _ = post(h, "big", job)
    h.close()
    pt.check(st == 202, "a job with a 4 MiB spec is accepted", st)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(10)
    s.connect(("127.0.0.1", srv.port))  # the oldest connection
    others = [conn() for _ in range(CAP - 1)]  # idle, newer
    s.sendall(("GET /api/v2/jobs/admin~big/config HTTP/1.1\r\nHost: x\r\nAuthorization: "
               "Bearer %s\r\n\r\n" % srv.admin_token).encode())
    time.sleep(0.5)  # the answer is queued; most of it waits for the reader
    e = socket.create_connection(("127.0.0.1", srv.port), timeout=10)  # evicts the oldest idle
    e.sendall(b"GET /api/v2/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    e.recv(1)
    e.close()
    s.settimeout(60)  # a 4 MiB answer through a 4 KiB window: slow on a loaded machine
    got, err = b"", None
    try:
        while True:
            head, _, body = got.partition(b"\r\n\r\n")
            m = [ln for ln in head.split(b"\r\n") if ln.lower().startswith(b"content-length:")]
            if m and len(body) >= int(m[0].split(b":")[1]):
                break
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError as ex:
        err = repr(ex)
    s.close()
    for h in others:
        h.close()
    head, _, body = got.partition(b"\r\n\r\n")
    pt.check(head.startswith(b"HTTP/1.1 200") and len(body) > 3500000 and err is None,
             "an answer being sent is not cut by a new connection's admission",
             "%d bytes of body, %s, %r" % (len(body), err, head[:60]))


def evictor(go):
    go.wait()
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s.sendall(b"GET /api/v2/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        s.recv(1)
        s.close()
    except OSError:
        pass


big_answer_survives_a_new_connection()

counts = {"answered": 0, "refused_503": 0, "no_answer_not_stored": 0,
          "no_answer_but_stored": 0, "other": 0}
bad = []
t_end = time.time() + SECONDS
rounds = 0
for i in range(ROUNDS):
    if time.time() > t_end:
        break
    rounds += 1
    try:
        hs = [conn() for _ in range(CAP)]  # the oldest is hs[0]
    except OSError as ex:
        bad.append("round %d: cannot connect: %r" % (i, ex))
        break
    name = "ev%05d" % i
    go = threading.Event()
    t = threading.Thread(target=evictor, args=(go,))
    t.start()
    go.set()
    time.sleep(random.uniform(0, 0.0005))
    st, extra = post(hs[0], name)
    t.join()
    for h in hs:
        h.close()
    if st == 202:
        counts["answered"] += 1
    elif st == 503 and extra:
        counts["refused_503"] += 1
    elif st is None:
        h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
        st2, _ = post(h, name)
        h.close()
        if st2 == 409:
            counts["no_answer_but_stored"] += 1
            bad.append("%s: no answer (%s), yet stored (retry 409)" % (name, extra))
        else:
            counts["no_answer_not_stored"] += 1
    else:
        counts["other"] += 1
        bad.append("%s: answered %s (%s)" % (name, st, extra))

print("# %d rounds: %s" % (rounds, ", ".join("%s %d" % kv for kv in counts.items())))
pt.check(rounds >= 50, "enough rounds ran (%d)" % rounds)
pt.check(not bad, "every racing POST answered 202 or 503 + Retry-After, or neither answered "
         "nor stored", "; ".join(bad[:5]))
pt.done()
