#!/usr/bin/env python3
"""test_notify.py - notifications to a job's owner (docs/operations.md,
"Notifications"): a real `pai server` e-mails a local SMTP receiver and
POSTs to local webhook receivers (receivers.py), driven by a fake agent
whose GPUs report 0% utilization.

- a failed job asking for e-mail and a webhook on `failed`: one e-mail to
  the owner's profile address with the facts, one signed webhook POST;
- a job without extras.notify follows the owner's settings (PUT
  /api/v2/users/me {notification}) and e-mails `succeeded`;
- a job waiting longer than notify_waiting_s and a job holding idle GPUs
  (gpuIdle) each notify once, however long they stay so;
- a job with jobRetryCount 1 whose first attempt fails tells its owner of
  the retry once (state WAITING, retries 1), then of the final state;
- a webhook receiver down, then up: the notification is retried (counted
  in pai_notify_failures_total) and delivered once;
- a hostile user cannot point a webhook at a host off the allow-list (the
  metadata address, another port of loopback, a non-HTTP scheme), in a job
  or in their settings;
- a full queue drops and counts (pai_notify_dropped_total{reason="queue_full"});
- SMTP login with the password read from smtp_password_file (shown nowhere),
  and smtp_starttls: 1 never sends over a plain connection.
"""

import hashlib
import hmac
import json
import os
import re
import subprocess
import time

import jobstest as jt
import paitest as pt
import receivers as rx

SECRET = "whsec-test-0123456789"


class IdleAgent(jt.FakeAgent):
    """A fake node whose GPUs all report 0% utilization."""

    def node(self):
        n = super().node()
        for g in n["gpus"]:
            g["utilization"] = 0
        return n


mail = rx.smtp()
hook = rx.webhook()
late_port = pt.free_port()  # the receiver that starts late
d = pt.tmpdir("pai-notify-")
secret_file = os.path.join(d, "hook.secret")
with open(secret_file, "w") as f:
    f.write(SECRET + "\n")
os.chmod(secret_file, 0o600)

srv = pt.start_server(extra_args=[
    "--smtp-host", "127.0.0.1", "--smtp-port", str(mail.port), "--smtp-from", "pai@cluster.test",
    "--notify-webhook-hosts", "127.0.0.1:%d, 127.0.0.1:%d" % (hook.port, late_port),
    "--notify-webhook-secret-file", secret_file, "--notify-waiting-s", "2",
    "--idle-gpu-seconds", "2", "--idle-gpu-util-pct", "10", "--notify-retry-ms", "300",
    "--notify-attempts", "50", "--notify-portal-url", "http://portal.test:9186"])
admin = srv.client(srv.admin_token)
st, b = admin.post("/api/v2/users", {"username": "nora", "password": "nora-pw-123",
                                     "email": "nora@example.com"})
pt.check(st == 201, "user nora with an e-mail address", (st, b))
nora = srv.client(srv.login("nora", "nora-pw-123"))
agent = IdleAgent(srv, "n1", gpus=2)
agent.sync()
HOOK = "http://127.0.0.1:%d/hook" % hook.port


def run_to_exit(job, code, diag=None):
    ids = agent.sync_for(job)
    pt.check(len(ids) == 1, "%s is placed on the fake node" % job, ids)
    for a in ids:
        agent.exit(a, code, diag)
    agent.settle()


def mails_for(job, event):
    return [m for m in mail.got if m["msg"]["X-PAI-Job"] == job
            and m["msg"]["X-PAI-Event"] == event]


def hooks_for(srv_hook, job, event):
    out = []
    for h in srv_hook.got:
        try:
            body = json.loads(h["body"])
        except ValueError:
            continue
        if body.get("job") == job and body.get("event") == event:
            out.append((h, body))
    return out


def metric(name, labels=""):
    st, text = srv.client().get("/metrics")
    m = re.search(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), text or "", re.M)
    return float(m.group(1)) if m else None


# ---- a failed job: e-mail and a signed webhook ------------------------------------------
st, b = jt.submit(nora, jt.job_yaml("fails", [{"name": "main", "command": "exit 3"}], extras={
    "notify": {"email": True, "webhook": HOOK, "on": ["failed"]}}))
pt.check(st == 202, "a job asking for failed notifications is accepted", (st, b))
run_to_exit("nora~fails", 3, "the model diverged")
pt.check(jt.wait_state(nora, "nora~fails", "FAILED").get("jobStatus", {}).get("state") == "FAILED",
         "the job fails")
got = rx.wait_for(lambda: mails_for("nora~fails", "failed"))
m = got[0] if got else None
pt.check(m is not None and m["to"] == ["<nora@example.com>"] and m["from"] == "<pai@cluster.test>",
         "failed: one e-mail to the owner's profile address", m and (m["from"], m["to"]))
if m:
    body = m["msg"].get_payload()
    pt.check(m["msg"]["Subject"] == "[pai] job nora~fails failed"
             and m["msg"]["From"] == "pai@cluster.test" and m["msg"]["To"] == "nora@example.com",
             "failed: the e-mail's headers", m["raw"][:600])
    pt.check("Exit code:       3" in body and "State:           FAILED" in body
             and "http://portal.test:9186/#/job/nora~fails" in body,
             "failed: the body gives the exit code, the state and the job's page", body)
got = rx.wait_for(lambda: hooks_for(hook, "nora~fails", "failed"))
h, hb = got[0] if got else ({}, {})
pt.check(bool(got) and h["path"] == "/hook" and hb.get("exitCode") == 3 and hb.get("user") == "nora"
         and hb.get("state") == "FAILED" and hb.get("virtualCluster") == "default",
         "failed: one webhook POST with the event as JSON", hb)
if got:
    hdr = {k.lower(): v for k, v in h["headers"].items()}
    want = "sha256=" + hmac.new(SECRET.encode(), h["body"], hashlib.sha256).hexdigest()
    pt.check(hdr.get("x-pai-signature-256") == want,
             "failed: the webhook is signed (HMAC-SHA256 of the body with the secret)",
             (hdr.get("x-pai-signature-256"), want))
    pt.check(hdr.get("content-type") == "application/json" and hdr.get("x-pai-event") == "failed",
             "failed: the webhook's content type and event header", hdr)

# ---- the owner's settings ---------------------------------------------------------------
st, b = nora.put("/api/v2/users/me", {"data": {"notification": {"email": True,
                                                                 "on": ["succeeded"]}},
                                      "patch": True})
pt.check(st == 201, "nora sets her notification settings", (st, b))
st, b = nora.get("/api/v2/users/nora")
pt.check(st == 200 and b.get("notification") == {"email": True, "on": ["succeeded"]}
         and b.get("email") == "nora@example.com",
         "the settings are in the user's profile, the e-mail address kept", b)
st, b = jt.submit(nora, jt.job_yaml("works", [{"name": "main", "command": "true"}]))
pt.check(st == 202, "a job without extras.notify is accepted", (st, b))
run_to_exit("nora~works", 0)
got = rx.wait_for(lambda: mails_for("nora~works", "succeeded"))
pt.check(len(got or []) == 1 and got[0]["msg"]["Subject"] == "[pai] job nora~works succeeded",
         "succeeded: e-mailed as the owner's settings ask", [g["raw"][:300] for g in got or []])
pt.check(not hooks_for(hook, "nora~works", "succeeded"), "succeeded: no webhook (none asked)")

# ---- waiting too long and idle GPUs: once each -------------------------------------------
st, b = jt.submit(nora, jt.job_yaml("idle", [{"name": "main", "gpu": 1, "command": "sleep 600"}],
                                    extras={"notify": {"email": False, "webhook": HOOK,
                                                       "on": ["idle"]}}))
pt.check(st == 202, "an idle-GPU job is accepted", (st, b))
pt.check(len(agent.sync_for("nora~idle")) == 1, "the idle job runs")
st, b = jt.submit(nora, jt.job_yaml("big", [{"name": "main", "gpu": 2, "command": "true"}],
                                    extras={"notify": {"webhook": HOOK, "on": ["waiting"]}}))
pt.check(st == 202, "a job that must wait is accepted", (st, b))
t0 = time.time()
rx.wait_for(lambda: hooks_for(hook, "nora~idle", "idle") and hooks_for(hook, "nora~big", "waiting"),
            timeout=30, step=0.5, tick=agent.sync)
print("# idle and waiting notices after %.1f s" % (time.time() - t0), flush=True)
for _ in range(8):  # 4 s more: neither may come again
    agent.sync()
    time.sleep(0.5)
idle = hooks_for(hook, "nora~idle", "idle")
pt.check(len(idle) == 1 and idle[0][1].get("since", 0) > 0 and idle[0][1]["state"] == "RUNNING",
         "idle: one webhook while the job holds idle GPUs", [x[1] for x in idle])
waiting = hooks_for(hook, "nora~big", "waiting")
pt.check(len(waiting) == 1 and waiting[0][1]["state"] == "WAITING"
         and "waiting for resources" in waiting[0][1].get("message", ""),
         "waiting: one webhook with the reason it waits", [x[1] for x in waiting])
pt.check(len(mails_for("nora~big", "waiting")) == 1, "waiting: one e-mail (email defaults to true)")
pt.check(not mails_for("nora~idle", "idle"), "idle: no e-mail (email: false)")
st, lst = nora.get("/api/v2/jobs")
flags = {j["name"]: j.get("gpuIdle") for j in lst} if st == 200 else {}
pt.check(flags.get("idle") is True, "the idle job is flagged gpuIdle", flags)
admin.put("/api/v2/jobs/nora~idle/executionType", {"value": "STOP"})
agent.settle()

# ---- receiver down, then up: retried, delivered once ------------------------------------
LATE = "http://127.0.0.1:%d/late" % late_port
st, b = jt.submit(nora, jt.job_yaml("late", [{"name": "main", "command": "true"}],
                                    extras={"notify": {"email": False, "webhook": LATE,
                                                       "on": ["succeeded"]}}))
pt.check(st == 202, "a job with its webhook receiver down is accepted", (st, b))
run_to_exit("nora~late", 0)
pt.check(jt.wait_state(nora, "nora~late", "SUCCEEDED")["jobStatus"]["state"] == "SUCCEEDED",
         "the job ends while its receiver is down (the engine does not wait for it)")
fails = rx.wait_for(lambda: (metric("pai_notify_failures_total", '{channel="webhook"}') or 0) >= 2,
                    timeout=15)
pt.check(fails, "the failed tries are counted (pai_notify_failures_total)",
         metric("pai_notify_failures_total", '{channel="webhook"}'))
pt.check((metric("pai_notify_queue_length") or 0) >= 1, "the notification waits in the queue")
late = rx.webhook(late_port)
got = rx.wait_for(lambda: hooks_for(late, "nora~late", "succeeded"), timeout=15)
time.sleep(1)
pt.check(len(hooks_for(late, "nora~late", "succeeded")) == 1,
         "the receiver, once up, gets the notification once", len(late.got))
pt.check(rx.wait_for(lambda: metric("pai_notify_queue_length") == 0, timeout=5),
         "the queue is empty again", metric("pai_notify_queue_length"))

# ---- a retried job: the retry once, then the final state --------------------------------
st, b = jt.submit(nora, jt.job_yaml("retry", [{"name": "main", "command": "exit 134"}], retry=1,
                                    extras={"notify": {"webhook": HOOK,
                                                       "on": ["retried", "failed"]}}))
pt.check(st == 202, "a job with jobRetryCount 1 asking for retried and failed is accepted", (st, b))
run_to_exit("nora~retry", 134, "first attempt crashed")
got = rx.wait_for(lambda: hooks_for(hook, "nora~retry", "retried"), tick=agent.sync)
rb = got[0][1] if got else {}
pt.check(rb.get("state") == "WAITING" and rb.get("retries") == 1
         and rb.get("message") == "first attempt crashed",
         "retried: a webhook when the first attempt ends and the job waits for the next", rb)
pt.check(rx.wait_for(lambda: mails_for("nora~retry", "retried"), timeout=10),
         "retried: an e-mail too (email defaults to true)")
run_to_exit("nora~retry", 134, "second attempt crashed")
pt.check(jt.wait_state(nora, "nora~retry", "FAILED").get("jobStatus", {}).get("retries") == 1,
         "the second attempt fails the job (jobRetryCount used up)")
got = rx.wait_for(lambda: hooks_for(hook, "nora~retry", "failed"))
time.sleep(1)
final = hooks_for(hook, "nora~retry", "failed")
pt.check(len(final) == 1 and final[0][1].get("retries") == 1
         and final[0][1].get("state") == "FAILED" and final[0][1].get("exitCode") == 134,
         "failed: one webhook for the final state, after the retry", [x[1] for x in final])
retried = hooks_for(hook, "nora~retry", "retried")
pt.check(len(retried) == 1 and len(mails_for("nora~retry", "retried")) == 1,
         "retried: told once only (one retry, one webhook, one e-mail)", [x[1] for x in retried])
pt.check(bool(retried and final)
         and hook.got.index(retried[0][0]) < hook.got.index(final[0][0]),
         "the retry is told before the final state")

# ---- a hostile user ---------------------------------------------------------------------
mallory = srv.client(srv.create_user("mallory"))
for i, (url, why) in enumerate((("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
                 ("http://127.0.0.1:%d/api/v2/users" % srv.port, "the server's own port"),
                 ("http://10.0.0.1/", "a private address off the list"),
                 ("gopher://127.0.0.1:%d/" % hook.port, "a non-HTTP scheme"),
                 ("http://127.0.0.1:%d@169.254.169.254/" % hook.port, "a user-info trick"))):
    st, b = jt.submit(mallory, jt.job_yaml("h%d" % i,
                                           [{"name": "main"}],
                                           extras={"notify": {"webhook": url}}))
    pt.check(st == 400 and b.get("code") == "InvalidProtocolError"
             and "extras.notify.webhook" in b.get("message", ""),
             "a job's webhook to %s is refused" % why, (st, b))
    st, b = mallory.put("/api/v2/users/me", {"data": {"notification": {"webhook": url}},
                                            "patch": True})
    pt.check(st == 400, "settings with a webhook to %s are refused" % why, (st, b))
st, b = mallory.put("/api/v2/users/me", {"data": {"notification": {"on": ["exploded"]}},
                                        "patch": True})
pt.check(st == 400, "settings with an unknown event are refused", (st, b))
st, b = jt.submit(mallory, jt.job_yaml("ok", [{"name": "main"}],
                                       extras={"notify": {"webhook": HOOK}}))
pt.check(st == 202, "a webhook to an allowed host is accepted", (st, b))

# ---- the CLI: pai notify ----------------------------------------------------------------
home = pt.tmpdir("pai-notify-home-")
env = dict(os.environ, HOME=home, PAI_CONFIG=os.path.join(home, "config.json"))


def cli(*args):
    return subprocess.run([pt.PAI_BIN] + list(args), capture_output=True, text=True, env=env,
                          timeout=30)


r = cli("login", srv.url, "--user", "nora", "--password", "nora-pw-123")
pt.check(r.returncode == 0, "pai login as nora", r.stderr)
r = cli("notify", "--on", "failed,idle", "--webhook", HOOK)
pt.check(r.returncode == 0 and "webhook:  " + HOOK in r.stdout
         and "events:   failed,idle" in r.stdout and "(to nora@example.com)" in r.stdout,
         "pai notify --on --webhook sets and prints the settings", (r.stdout, r.stderr))
st, b = nora.get("/api/v2/users/nora")
pt.check(b.get("notification") == {"email": True, "webhook": HOOK, "on": ["failed", "idle"]},
         "pai notify: the settings are stored", b.get("notification"))
r = cli("notify", "--webhook", "http://169.254.169.254/")
pt.check(r.returncode == 1 and "allow-list" in r.stderr,
         "pai notify: a webhook off the allow-list is refused", (r.returncode, r.stderr))
r = cli("notify", "--json")
pt.check(r.returncode == 0 and json.loads(r.stdout).get("webhook") == HOOK,
         "pai notify --json prints the settings", r.stdout)
r = cli("notify", "--off")
st, b = nora.get("/api/v2/users/nora")
pt.check(r.returncode == 0 and "no notification settings" in r.stdout
         and "notification" not in b, "pai notify --off removes them", (r.stdout, b))

# ---- a full queue drops and counts ------------------------------------------------------
dead = pt.free_port()
srv2 = pt.start_server(extra_args=["--notify-webhook-hosts", "127.0.0.1:%d" % dead,
                                   "--notify-queue-max", "1", "--notify-retry-ms", "600000"])
a2 = jt.FakeAgent(srv2, "n1")
a2.sync()
c2 = srv2.client(srv2.admin_token)
for i in range(3):
    st, b = jt.submit(c2, jt.job_yaml("q%d" % i, [{"name": "main"}], extras={
        "notify": {"email": False, "webhook": "http://127.0.0.1:%d/" % dead,
                   "on": ["succeeded"]}}))
    for a in a2.sync_for("admin~q%d" % i):
        a2.exit(a, 0)
    a2.settle()
    jt.wait_state(c2, "admin~q%d" % i, "SUCCEEDED")
st, text = srv2.client().get("/metrics")
m = re.search(r'^pai_notify_dropped_total\{reason="queue_full"\} (\S+)$', text, re.M)
q = re.search(r"^pai_notify_queue_length (\S+)$", text, re.M)
pt.check(m and float(m.group(1)) == 2 and q and float(q.group(1)) == 1,
         "queue of 1: one notification waits, two are dropped and counted",
         [ln for ln in text.splitlines() if ln.startswith("pai_notify")])
pt.check(srv2.stop() == 0, "the server with a full queue stops cleanly")


# ---- SMTP login (password from a file) and STARTTLS required ----------------------------
def server_with_user(mail_srv, extra, user):
    s = pt.start_server(extra_args=["--smtp-host", "127.0.0.1", "--smtp-port", str(mail_srv.port),
                                    "--notify-retry-ms", "100", "--notify-attempts", "3"] + extra)
    st, b = s.client(s.admin_token).post("/api/v2/users", {
        "username": user, "password": "pw-123456", "email": user + "@example.com"})
    pt.check(st == 201, "user %s" % user, (st, b))
    ag = jt.FakeAgent(s, "n1")
    ag.sync()
    c = s.client(s.login(user, "pw-123456"))
    st, b = jt.submit(c, jt.job_yaml("done", [{"name": "main"}],
                                     extras={"notify": {"on": ["succeeded"]}}))
    for a in ag.sync_for(user + "~done"):
        ag.exit(a, 0)
    ag.settle()
    jt.wait_state(c, user + "~done", "SUCCEEDED")
    return s


PASSWORD = "s3cret-smtp-pw"
pw_file = os.path.join(d, "smtp.pw")
with open(pw_file, "w") as f:
    f.write(PASSWORD + "\n")
os.chmod(pw_file, 0o600)
mail2 = rx.smtp(auth=("pai-sender", PASSWORD))
srv3 = server_with_user(mail2, ["--smtp-username", "pai-sender", "--smtp-password-file", pw_file],
                        "olga")
got = rx.wait_for(lambda: [m for m in mail2.got if m["msg"]["X-PAI-Job"] == "olga~done"])
pt.check(len(got or []) == 1 and mail2.auths == [("pai-sender", PASSWORD)],
         "SMTP login: the e-mail is sent after AUTH PLAIN with the password from the file",
         (mail2.auths, len(got or [])))
shown = []
for path in ("/metrics", "/api/v2/info", "/api/v2/users/olga"):
    st, b = srv3.client(srv3.admin_token).get(path)
    if PASSWORD in (b if isinstance(b, str) else json.dumps(b)):
        shown.append(path)
pt.check(not shown and PASSWORD not in srv3.log(), "the SMTP password is shown nowhere", shown)
pt.check(srv3.stop() == 0, "the SMTP-login server stops cleanly")
mail3 = rx.smtp()
srv4 = server_with_user(mail3, ["--smtp-starttls", "1"], "tess")
tls_fail = rx.wait_for(lambda: re.search(r'^pai_notify_failures_total\{channel="email"\} [1-9]',
                                         srv4.client().get("/metrics")[1], re.M), timeout=15)
time.sleep(0.5)
pt.check(tls_fail and not mail3.got,
         "smtp_starttls: 1 against a server without STARTTLS: nothing sent, the try fails",
         [m["raw"][:200] for m in mail3.got])
pt.done()
