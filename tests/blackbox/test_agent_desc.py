"""test_agent_desc.py - version 4 of the agent protocol with a real agent
(docs/agent-protocol.md, "The node's description once"): the agent sends
its node's description whole until the server names its digest, and then
the digest alone ("same"); the server counts each form
(pai_agent_sync_node_total{form}).  After a server restart (the digest is
kept in memory only) the agent's next "same" names nothing the server holds
("unknown", answered at once), it sends the description whole again, and
short jobs still run through it."""

import http.client
import time

import e2etest as e
import paitest as pt


def job(name):
    return ("protocolVersion: 2\nname: %s\ntype: job\nprerequisites:\n"
            "  - {type: dockerimage, name: img, uri: busybox}\ntaskRoles:\n  main:\n"
            "    instances: 1\n    dockerImage: img\n"
            "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 256}\n"
            "    commands:\n      - echo ok\n" % name)


def forms(srv):
    """{form: count} of pai_agent_sync_node_total."""
    h = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    h.request("GET", "/metrics")
    text = h.getresponse().read().decode()
    h.close()
    out = {}
    for line in text.splitlines():
        if line.startswith("pai_agent_sync_node_total{"):
            out[line.split('form="', 1)[1].split('"', 1)[0]] = float(line.rsplit(" ", 1)[1])
    return out


def wait_forms(srv, cond, timeout=30):
    deadline = time.time() + timeout
    got = forms(srv)
    while not cond(got) and time.time() < deadline:
        time.sleep(0.1)
        got = forms(srv)
    return got


def run_jobs(srv, c, prefix, n):
    names = ["%s%d" % (prefix, i) for i in range(n)]
    for name in names:
        st, r = e.submit(c, job(name))
        if st != 202:
            pt.not_ok("%s submitted" % name, (st, r))
    return [e.state(e.wait_state(c, "admin~" + name, ("SUCCEEDED", "FAILED", "STOPPED"), 60))
            for name in names]


srv = pt.start_server()
c = srv.client(srv.admin_token)
agent = e.agent(srv, "desc4")
pt.check(len(e.wait_nodes(c, 1)) == 1, "the agent registers")
states = run_jobs(srv, c, "a", 6)
pt.check(states == ["SUCCEEDED"] * 6, "6 short jobs succeed", states)
got = wait_forms(srv, lambda f: f.get("same", 0) >= 3)
pt.check(got.get("whole", 0) >= 1 and got.get("same", 0) >= 3 and
         got.get("same", 0) > got.get("whole", 0),
         "the description goes whole first, then its digest alone in most syncs", got)
pt.check(got.get("unknown", 0) == 0, "no sync names a digest the server does not hold", got)

srv.restart()
c = srv.client(srv.admin_token)
got = wait_forms(srv, lambda f: f.get("whole", 0) >= 1 and f.get("same", 0) >= 1)
pt.check(got.get("unknown", 0) >= 1 and got.get("whole", 0) >= 1,
         "after a restart its digest names nothing held, and it sends the description whole",
         got)
states = run_jobs(srv, c, "b", 4)
pt.check(states == ["SUCCEEDED"] * 4, "after the restart, 4 short jobs succeed", states)
got = wait_forms(srv, lambda f: f.get("same", 0) >= 1)
pt.check(got.get("same", 0) >= 1, "and it names its digest alone again", got)
pt.done()
