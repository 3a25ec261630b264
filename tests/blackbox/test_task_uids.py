#!/usr/bin/env python3
"""test_task_uids.py - task identities across nodes (docs/security.md, "Task
identities"): the server gives each user a task uid offset once (stored with
the user, never reused) and sends it with each task, so agents with separate
work dirs and maps run a user's tasks under the same uid (lo + offset), even
when one agent's own map would have chosen another; a deleted and re-created
user gets a new uid, not the old one's.  Needs root (the agent changes uid)."""

import os
import time

import e2etest as e
import paitest as pt

LO = 300000
RANGE = "%d-%d" % (LO, LO + 9)

if os.geteuid() != 0:
    pt.skip("tasks run as one uid per user", "needs root (the agent changes uid)")
    pt.done()

srv = pt.start_server()
c = srv.client(srv.admin_token)
out = pt.tmpdir("pai-tu-out-")
os.chmod(out, 0o1777)


def add_user(name):
    pw = "pw-%s-123456" % name
    st, b = c.post("/api/v2/users", {"username": name, "password": pw, "admin": False})
    pt.check(st == 201, "user %s created" % name, (st, b))
    st, b = pt.Client(srv.url).post("/api/v2/authn/basic/login",
                                    {"username": name, "password": pw})
    return pt.Client(srv.url, (b or {}).get("token"))


def task_uid(name):
    st, b = c.get("/api/v2/users/" + name)
    return (b or {}).get("taskUid") if st == 200 else None


def run(client, user, name, instances=2):
    text = ("protocolVersion: 2\nname: %s\ntype: job\n"
            "prerequisites:\n  - {type: dockerimage, name: img, uri: busybox}\n"
            "taskRoles:\n  main:\n    instances: %d\n    dockerImage: img\n"
            "    resourcePerInstance: {gpu: 1, cpu: 1, memoryMB: 128}\n"
            "    commands:\n      - id -u > %s/%s.$PAI_TASK_INDEX\n"
            % (name, instances, out, name))
    st, b = e.submit(client, text)
    pt.check(st == 202, "%s submitted" % name, (st, b))
    d = e.wait_state(client, "%s~%s" % (user, name), ("SUCCEEDED", "FAILED", "STOPPED"), 60)
    nodes = sorted(t.get("nodeName") or t.get("containerNodeName") or ""
                   for t in e.tasks(d, "main"))
    uids = []
    for i in range(instances):
        try:
            with open(os.path.join(out, "%s.%d" % (name, i))) as f:
                uids.append(int(f.read().strip()))
        except (OSError, ValueError):
            uids.append(None)
    return e.state(d), nodes, uids


# agent b's own map already gives the uid the server's offset names to someone else: with the
# map alone, b would run the user's tasks under another uid than a
alice = add_user("tu-alice")
off = task_uid("tu-alice")
pt.check(isinstance(off, int) and off >= 1, "the server gave tu-alice a task uid offset "
         "(GET /api/v2/users/NAME taskUid)", off)
seeded = os.path.join(pt.tmpdir("pai-tu-map-"), "task-uids")
with open(seeded, "w") as f:
    f.write("%d tu-someone-else\n" % (LO + (off or 0)))
os.chmod(seeded, 0o600)
a = e.agent(srv, "tu-a", "--gpus", "1", "--task-uid-range", RANGE)
b = e.agent(srv, "tu-b", "--gpus", "1", "--task-uid-range", RANGE, "--task-uid-map", seeded)
e.wait_nodes(c, 2)

st, nodes, uids = run(alice, "tu-alice", "tu-1")
pt.check(st == "SUCCEEDED" and len(set(n for n in nodes if n)) == 2,
         "a two-task job runs one task on each agent", (st, nodes))
pt.check(uids[0] is not None and uids == [LO + off] * 2,
         "both agents (separate work dirs, separate maps) run tu-alice's tasks as lo + offset",
         (uids, LO + (off or 0)))

bob = add_user("tu-bob")
boff = task_uid("tu-bob")
pt.check(boff is not None and boff != off, "another user gets another offset", (off, boff))
st, nodes, buids = run(bob, "tu-bob", "tu-2")
pt.check(st == "SUCCEEDED" and buids == [LO + boff] * 2 and LO + off not in buids,
         "and runs under its own uid on both agents", buids)

# deleted and re-created: a new offset, a new uid
st, r = c.delete("/api/v2/users/tu-alice")
pt.check(st == 200, "tu-alice deleted", (st, r))
alice2 = add_user("tu-alice")
off2 = task_uid("tu-alice")
pt.check(off2 is not None and off2 not in (off, boff),
         "a re-created user gets a new offset, never the deleted one's", (off, boff, off2))
st, nodes, uids2 = run(alice2, "tu-alice", "tu-3")
pt.check(st == "SUCCEEDED" and uids2 == [LO + off2] * 2 and LO + off not in uids2,
         "and its tasks do not run as the deleted user's uid", (uids, uids2))

srv.restart()
c = srv.client(srv.admin_token)
pt.check(task_uid("tu-bob") == boff, "offsets are kept across a server restart")
add_user("tu-carol")
pt.check(task_uid("tu-carol") not in (off, boff, off2),
         "and the counter too (no offset given twice after a restart)", task_uid("tu-carol"))
time.sleep(0.1)
pt.done()
