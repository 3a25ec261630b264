"""receivers.py - local receivers for notification tests: a minimal SMTP
server (EHLO/HELO, AUTH PLAIN when given credentials, MAIL, RCPT, DATA,
RSET, NOOP, QUIT; no TLS: STARTTLS is not offered)
and an HTTP server that records every POST.  Both listen on loopback, run
in daemon threads and keep what they received in a list (thread-safe
appends); stdlib only (socketserver, http.server), so they do not depend
on smtpd, which Python 3.12 removed."""

import base64
import email
import http.server
import socketserver
import threading
import time


class _SMTPHandler(socketserver.StreamRequestHandler):
    def _w(self, s):
        self.wfile.write((s + "\r\n").encode())

    def handle(self):
        self._w("220 receivers.py ESMTP")
        mail_from, rcpts = None, []
        authed = self.server.auth is None
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            up = cmd.upper()
            if up.startswith("EHLO"):
                self._w("250-receivers.py")
                if self.server.auth:
                    self._w("250-AUTH PLAIN")
                self._w("250 8BITMIME")
            elif up.startswith("AUTH PLAIN") and self.server.auth:
                arg = cmd[10:].strip()
                if not arg:
                    self._w("334 ")
                    arg = self.rfile.readline(4096).decode().strip()
                try:
                    parts = base64.b64decode(arg).split(b"\0")
                    who = (parts[1].decode(), parts[2].decode())
                except Exception:
                    who = None
                self.server.auths.append(who)
                authed = who == self.server.auth
                self._w("235 2.7.0 authenticated" if authed else "535 5.7.8 bad credentials")
            elif up.startswith("MAIL FROM:") and not authed:
                self._w("530 5.7.0 authentication required")
            elif up.startswith("HELO"):
                self._w("250 receivers.py")
            elif up.startswith("MAIL FROM:"):
                mail_from, rcpts = cmd[10:].strip(), []
                self._w("250 ok")
            elif up.startswith("RCPT TO:"):
                rcpts.append(cmd[8:].strip())
                self._w("250 ok")
            elif up == "DATA":
                self._w("354 end with <CRLF>.<CRLF>")
                data = []
                while True:
                    ln = self.rfile.readline(65536)
                    if not ln:
                        return
                    if ln in (b".\r\n", b".\n"):
                        break
                    if ln.startswith(b".."):
                        ln = ln[1:]
                    data.append(ln)
                raw = b"".join(data).decode("utf-8", "replace")
                self.server.got.append({"from": mail_from, "to": list(rcpts), "raw": raw,
                                        "msg": email.message_from_string(raw)})
                self._w("250 queued")
            elif up in ("RSET", "NOOP"):
                self._w("250 ok")
            elif up == "QUIT":
                self._w("221 bye")
                return
            else:
                self._w("502 not implemented")


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def smtp(port=0, auth=None):
    """Start an SMTP receiver; .port, .got (list of {from, to, raw, msg}).
    auth (user, password): offer AUTH PLAIN and require it; .auths lists
    the (user, password) pairs presented."""
    srv = _TCPServer(("127.0.0.1", port), _SMTPHandler)
    srv.got = []
    srv.auth = auth
    srv.auths = []
    srv.port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class _HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n)
        self.server.got.append({"path": self.path, "headers": dict(self.headers), "body": body})
        self.send_response(self.server.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *a):
        pass


class _HTTPServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def webhook(port=0, status=200):
    """Start an HTTP receiver answering every POST with status; .port, .got
    (list of {path, headers, body})."""
    srv = _HTTPServer(("127.0.0.1", port), _HookHandler)
    srv.got = []
    srv.status = status
    srv.port = srv.server_address[1]
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def wait_for(pred, timeout=20, step=0.1, tick=None):
    """Poll pred() (calling tick() before each try) until true or timeout;
    returns the last value of pred()."""
    deadline = time.time() + timeout
    v = None
    while time.time() < deadline:
        if tick:
            tick()
        v = pred()
        if v:
            return v
        time.sleep(step)
    return v
