#!/usr/bin/env python3
"""test_up_vcs.py - the scheduler config `pai up` generates, and node sizes.

Without --hived-config, `pai up` writes a HiveD-format config describing
exactly the cluster it starts (VC default owning every node), so that an
admin can create, resize and delete VCs; such a change survives a restart
of the same shape, and a changed shape regenerates the config (said so)
and resets the VCs.  With --gpus 0 there is no config and VC changes are
refused.  Nodes report --cpus-per-node / --memory-mb-per-node.
"""
import json
import os
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from clitest import Tap, free_port  # noqa: E402


def api(url, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"null")
        except ValueError:
            return e.code, None
    except OSError as e:
        return 0, str(e)


class Cluster:
    def __init__(self, t, data_dir, port):
        self.t, self.dir, self.port = t, data_dir, port
        self.url = "http://127.0.0.1:%d" % port
        self.up_out = None

    def up(self, *args):
        r = self.t.pai("up", "--data-dir", self.dir, "--port", str(self.port), "--detach",
                       "--runtime", "hollow", *args, timeout=120)
        self.up_out = r
        if r.rc != 0:
            return r
        with open(os.path.join(self.dir, "admin.password")) as f:
            pw = f.read().strip()
        st, body = api(self.url, "POST", "/api/v2/authn/basic/login",
                       {"username": "admin", "password": pw})
        self.token = body.get("token") if st == 200 else None
        return r

    def down(self):
        return self.t.pai("down", "--data-dir", self.dir, timeout=120)

    def get(self, path):
        return api(self.url, "GET", path, token=self.token)

    def put_vc(self, vc, cell_type, n):
        return api(self.url, "PUT", "/api/v2/virtual-clusters/" + vc,
                   {"virtualCells": [{"cellType": cell_type, "cellNumber": n}]}, self.token)

    def vc_gpus(self):
        st, body = self.get("/api/v2/virtual-clusters")
        if st != 200:
            return {}
        return {k: v.get("resourcesGuaranteed", {}).get("GPUs") for k, v in body.items()}


def main():
    t = Tap()
    d = tempfile.mkdtemp(prefix="pai-up-vcs-")
    t.cleanup.append(d)
    c = Cluster(t, os.path.join(d, "data"), free_port())
    try:
        run(t, c)
    finally:
        c.down()
    t.done()


def run(t, c):
    r = c.up("--nodes", "2", "--gpus", "2", "--cpus-per-node", "6", "--memory-mb-per-node", "4096")
    cfg = os.path.join(c.dir, "scheduler.yaml")
    if not t.check("pai up starts and generates scheduler.yaml", r.rc == 0 and os.path.isfile(cfg)
                   and cfg in r.out, r):
        return
    with open(cfg) as f:
        text = f.read()
    t.check("the config names both nodes and VC default owning them",
            'cellAddress: "node-1"' in text and 'cellAddress: "node-2"' in text
            and "cellNumber: 2" in text and '"sim-gpu-2-NODE"' in text, text)
    st, body = c.get("/api/v2/kubernetes/nodes")
    caps = [n["status"]["capacity"] for n in body.get("items", [])] if st == 200 else []
    t.check("nodes report --cpus-per-node and --memory-mb-per-node",
            len(caps) == 2 and all(x.get("cpu") == 6 and x.get("memory") == "4096Mi" for x in caps),
            caps)
    t.check("VC default owns all 4 GPUs", c.vc_gpus() == {"default": 4}, c.vc_gpus())
    st, body = c.put_vc("default", "sim-gpu-2-NODE", 1)
    t.check("admin shrinks default to one node", st == 200, body)
    st, body = c.put_vc("team", "sim-gpu-2-NODE", 1)
    t.check("admin creates VC team on the freed node", st in (200, 201), body)
    st, body = c.put_vc("more", "sim-gpu-2-NODE", 1)
    t.check("a VC asking more than is free is refused", st == 400, body)
    c.down()

    r = c.up("--nodes", "2", "--gpus", "2")
    t.check("restart with the same shape keeps the VC change",
            r.rc == 0 and "changed" not in r.out and c.vc_gpus() == {"default": 2, "team": 2},
            "%r\n%r" % (r, c.vc_gpus()))
    st, body = api(c.url, "DELETE", "/api/v2/virtual-clusters/team", token=c.token)
    t.check("admin deletes VC team", st == 200, body)
    c.down()

    r = c.up("--nodes", "3", "--gpus", "2")
    t.check("a changed --nodes regenerates the config and says so",
            r.rc == 0 and "the cluster changed" in r.out and "3 node(s) x 2" in r.out, r)
    t.check("after a shape change VC default owns all 6 GPUs", c.vc_gpus() == {"default": 6},
            c.vc_gpus())
    c.down()

    r = c.up("--nodes", "2", "--gpus", "0")
    t.check("--gpus 0: no config, said so", r.rc == 0 and "config:  none" in r.out, r)
    st, body = c.put_vc("team", "sim-gpu-2-NODE", 1)
    t.check("--gpus 0: VC changes are refused with the reason", st == 400
            and "hived" in json.dumps(body).lower(), body)
    c.down()


if __name__ == "__main__":
    main()
