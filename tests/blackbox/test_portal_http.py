#!/usr/bin/env python3
"""test_portal_http.py - the server serves the embedded portal: content
types, ETag revalidation (304), security headers, 404s and no escape from
the embedded file set."""
import http.client

import paitest as pt


def get(srv, path, headers=None):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, body


def main():
    srv = pt.start_server()
    st, h, body = get(srv, "/")
    pt.check(st == 200 and h.get("content-type", "").startswith("text/html"), "GET / is the portal's HTML",
             (st, h.get("content-type")))
    pt.check(b'src="/portal/app.js"' in body, "index.html loads /portal/app.js")
    pt.check("default-src 'self'" in h.get("content-security-policy", ""), "HTML has a same-origin CSP")
    pt.check(h.get("x-content-type-options") == "nosniff", "nosniff header")
    etag = h.get("etag", "")
    pt.check(etag.startswith('"') and etag.endswith('"') and len(etag) == 18, "strong ETag on /", etag)
    pt.check(h.get("cache-control") == "no-cache", "files are revalidated (no-cache)", h.get("cache-control"))

    st, h, body = get(srv, "/", {"If-None-Match": etag})
    pt.check(st == 304 and body == b"", "matching If-None-Match answers 304 with no body", (st, len(body)))
    st, _, _ = get(srv, "/", {"If-None-Match": '"0000000000000000"'})
    pt.check(st == 200, "a stale ETag gets the file again", st)

    for path, ctype in (("/portal/app.js", "text/javascript"), ("/portal/app.css", "text/css"),
                        ("/portal/js/pages/jobs.js", "text/javascript"),
                        ("/portal/vendor/js-yaml.min.js", "text/javascript"),
                        ("/portal/favicon.svg", "image/svg+xml")):
        st, h, body = get(srv, path)
        pt.check(st == 200 and h.get("content-type", "").startswith(ctype) and len(body) > 0,
                 "GET %s is %s" % (path, ctype), (st, h.get("content-type")))
    for path in ("/portal/index.html", "/portal/"):
        st, h, _ = get(srv, path)
        pt.check(st == 200 and "content-security-policy" in h, "GET %s is index.html" % path, st)

    for path in ("/portal/nope.js", "/portal/../src/portal/portal.c",
                 "/portal/%2e%2e/%2e%2e/etc/passwd", "/portal/js", "/portal//etc/passwd"):
        st, h, body = get(srv, path)
        pt.check(st == 404 and b"NotFoundError" in body, "GET %s is a 404" % path, (st, body[:120]))
    st, _, _ = get(srv, "/api/v2/info")
    pt.check(st == 200, "the API still answers beside the portal", st)
    pt.done()


if __name__ == "__main__":
    main()
