"""test_http_poll_deadline.py - a held agent poll is answered within its
wait counted from the request's arrival, not from when a write worker got
to it (hold in src/server/http.c): the agent's timeout runs from its send
(wait + 15 s), and a sync that waited in a loaded server's queue and was
then held a whole wait more timed out and came back on a new connection.
The test hook PAI_TEST_AGENT_SYNC_STALL_MS stalls each batch of syncs on its
worker, as a long queue does."""

import time

import jobstest as jt
import paitest as pt

STALL_MS = 1500
WAIT_MS = 2500

srv = pt.start_server(env={"PAI_TEST_AGENT_SYNC_STALL_MS": str(STALL_MS)})
a = jt.FakeAgent(srv, "pd-0", gpus=1)
a.sync()  # registered; its next sync has nothing new: a long-poll

t0 = time.time()
r = a.sync(wait_ms=WAIT_MS)
took = time.time() - t0
pt.check(r["seq"] == a.known_seq and took >= (WAIT_MS - 200) / 1000.0,
         "a poll with nothing new is held (%.2f s)" % took, (r, took))
pt.check(took < (WAIT_MS + STALL_MS - 500) / 1000.0,
         "and answered %d ms after it arrived, though a worker got to it only %d ms after "
         "(%.2f s, not %.2f s)" % (WAIT_MS, STALL_MS, took, (WAIT_MS + STALL_MS) / 1000.0),
         took)

# a poll that waited longer than its whole wait is answered at once
t0 = time.time()
r = a.sync(wait_ms=1000)
took = time.time() - t0
pt.check(r["seq"] == a.known_seq and took < (STALL_MS + 700) / 1000.0,
         "a poll that waited in the queue past its wait is answered as soon as it is run "
         "(%.2f s)" % took, took)
pt.done()
