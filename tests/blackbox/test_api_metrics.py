#!/usr/bin/env python3
"""GET /metrics: valid Prometheus text; API requests counted by route and
status, with a latency histogram whose buckets are cumulative."""
import re

import paitest as pt

srv = pt.start_server()
admin = srv.client(srv.admin_token)
for _ in range(3):
    admin.get("/api/v2/users/admin")
admin.get("/api/v2/users/nobody")
srv.client().get("/api/v2/nothing")
st, text = srv.client().get("/metrics")
pt.check(st == 200 and isinstance(text, str), "metrics answer anonymously with text", (st, text))
c = srv.client()
c.get("/metrics")
pt.check(c.last_headers.get("Content-Type", "").startswith("text/plain"),
         "metrics content type is text/plain", c.last_headers)

sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? '
                    r'(-?[0-9.eE+-]+|NaN|\+Inf|-Inf)$')
bad = [l for l in text.splitlines() if l and not l.startswith("#") and not sample.match(l)]
pt.check(not bad, "every sample line is valid exposition format", bad[:5])
typed = set(re.findall(r"^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$", text, re.M))
pt.check(("pai_api_requests_total", "counter") in typed and
         ("pai_api_request_duration_seconds", "histogram") in typed, "families are typed", typed)


def value(name, labels):
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else None


pt.check(value("pai_api_requests_total", 'method="GET",route="/api/v2/users/{user}",status="200"')
         == 3, "requests counted by route pattern and status", text[:2000])
pt.check(value("pai_api_requests_total", 'method="GET",route="/api/v2/users/{user}",status="404"')
         == 1, "errors counted under their status")
pt.check(value("pai_api_requests_total", 'method="any",route="unmatched",status="404"') == 1,
         "unknown paths counted as unmatched")
buckets = [float(v) for v in re.findall(
    r'^pai_api_request_duration_seconds_bucket\{method="GET",route="/api/v2/users/\{user\}",'
    r'le="[^"]+"\} (\S+)$', text, re.M)]
count = value("pai_api_request_duration_seconds_count",
              'method="GET",route="/api/v2/users/{user}"')
pt.check(buckets and buckets == sorted(buckets) and buckets[-1] == count == 4,
         "histogram buckets are cumulative and end at the count", (buckets, count))
pt.done()
