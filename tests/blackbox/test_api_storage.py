#!/usr/bin/env python3
"""Storages from the config file, listed per the caller's groups."""
import os

import paitest as pt

d = pt.tmpdir()
cfg = os.path.join(d, "server.yaml")
with open(cfg, "w") as f:
    f.write("""
storages:
  - name: shared
    type: nfs
    default: true
    volumeName: shared-vol
    data: {server: 10.0.0.1, path: /data}
  - name: teamdata
    type: samba
    groups: [team]
    data: {address: //fs/team}
  - name: secret
    type: nfs
    share: false
    data: {server: 10.0.0.2, path: /secret}
""")
srv = pt.start_server(extra_args=["--config", cfg])
admin = srv.client(srv.admin_token)
user = srv.client(srv.create_user("sam"))


def names(c, q=""):
    st, b = c.get("/api/v2/storages" + q)
    return sorted(s["name"] for s in b["storages"]) if st == 200 else (st, b)


pt.check(names(user) == ["shared"], "a plain user sees the default storage only", names(user))
pt.check(names(admin) == ["secret", "shared", "teamdata"], "admins see every storage",
         names(admin))
st, b = user.get("/api/v2/storages/shared")
pt.check(st == 200 and b == {"name": "shared", "share": True, "volumeName": "shared-vol",
                             "default": True, "type": "nfs",
                             "data": {"server": "10.0.0.1", "path": "/data"}},
         "storage detail", b)
pt.expect(user.get("/api/v2/storages/secret"), 403, "a storage the user may not use",
          "ForbiddenUserError")
pt.expect(user.get("/api/v2/storages/nope"), 404, "an unknown storage", "NoStorageError")
pt.expect(admin.post("/api/v2/groups", {"groupname": "team"}), 201, "setup: group team")
pt.expect(admin.put("/api/v2/users/sam/group", {"groupname": "team"}), 201, "setup: join team")
pt.check(names(user) == ["shared", "teamdata"], "a storage's config groups grant it",
         names(user))
pt.expect(admin.post("/api/v2/groups", {"groupname": "spies", "extension": {
    "acls": {"storageConfigs": ["secret"]}}}), 201, "setup: group with a storage ACL")
pt.expect(admin.put("/api/v2/users/sam/group", {"groupname": "spies"}), 201, "setup: join spies")
pt.check(names(user) == ["secret", "shared", "teamdata"], "a group's storageConfigs ACL grants it",
         names(user))
pt.check(names(user, "?default=true") == ["shared"], "?default=true lists default storages only",
         names(user, "?default=true"))
st, b = user.get("/api/v2/storages/secret")
pt.check(st == 200 and b["share"] is False and b["type"] == "nfs", "granted storage detail", b)
st, b = user.get("/api/v2/users/sam")
pt.check(sorted(b["storageConfig"]) == ["secret", "shared", "teamdata"],
         "UserInfo.storageConfig lists the storages", b)

# a bad config file is refused with a message naming the place
bad = os.path.join(d, "bad.yaml")
with open(bad, "w") as f:
    f.write("port: 80\nnot_an_option: 1\n")
import subprocess  # noqa: E402
r = subprocess.run([pt.PAI_BIN, "server", "--config", bad, "--data-dir", d], capture_output=True,
                   text=True, timeout=30)
pt.check(r.returncode == 2 and "not_an_option" in r.stderr and "bad.yaml:2" in r.stderr,
         "an unknown config option is refused with file:line", r.stderr)
r = subprocess.run([pt.PAI_BIN, "server", "--token-ttl", "abc"], capture_output=True, text=True,
                   timeout=30)
pt.check(r.returncode == 2 and "token_ttl" in r.stderr, "a non-integer flag is refused", r.stderr)
r = subprocess.run([pt.PAI_BIN, "server", "--help"], capture_output=True, text=True, timeout=30)
pt.check(r.returncode == 0 and "--token-ttl" in r.stdout and "--data-dir" in r.stdout,
         "server --help lists the options", r.stdout[:300])
r = subprocess.run([pt.PAI_BIN, "server", "--listen", "127.0.0.1:%d" % srv.port, "--data-dir",
                    pt.tmpdir()], capture_output=True, text=True, timeout=30)
pt.check(r.returncode == 1 and "cannot listen" in r.stderr, "a port in use is refused clearly",
         r.stderr)
r = subprocess.run([pt.PAI_BIN, "server", "--port", "0", "--data-dir", "/proc/pai-no"],
                   capture_output=True, text=True, timeout=30)
pt.check(r.returncode == 1 and "data_dir" in r.stderr, "an unusable data_dir is refused clearly",
         r.stderr)
# an unusable store URL stops start-up with a message (whether the PostgreSQL
# backend is built or not: "not built yet" or "cannot connect")
r = subprocess.run([pt.PAI_BIN, "server", "--port", "0", "--data-dir", pt.tmpdir(), "--store",
                    "postgresql://127.0.0.1:1/pai?connect_timeout=2"], capture_output=True,
                   text=True, timeout=30)
pt.check(r.returncode == 1 and "postgres" in r.stderr.lower(),
         "an unusable postgres store URL is refused clearly", r.stderr)
pt.done()
