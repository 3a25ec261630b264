"""receivers.py - local receivers for notification tests: a minimal SMTP
server (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT; no TLS, no auth)
and an HTTP server that records every POST.  Both listen on loopback, run
in daemon threads and keep what they received in a list (thread-safe
appends); stdlib only (socketserver, http.server), so they do not depend
on smtpd, which Python 3.12 removed."""

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
        while True:
            line = self.rfile.readline(4096)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").strip()
            up = cmd.upper()
            if up.startswith("EHLO"):
                self._w("250-receivers.py")
                self._w("250 8BITMIME")
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


def smtp(port=0):
    """Start an SMTP receiver; .port, .got (list of {from, to, raw, msg})."""
    srv = _TCPServer(("127.0.0.1", port), _SMTPHandler)
    srv.got = []
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
