#!/usr/bin/env python3
"""test_alloc_conf.py - the pai binary sets its allocator's options
(src/main.c, malloc_conf): linked with jemalloc (the build folder's
alloc-jemalloc.stamp) each thread keeps sizes up to 64 KiB in its cache
(opt.tcache_max 65536, as jemalloc's own stats print it at exit); built with
glibc's allocator (ALLOC=glibc, sanitizers) there is no jemalloc to print
them."""

import os
import subprocess

import paitest as pt

build = os.path.dirname(pt.PAI_BIN)
jemalloc = os.path.exists(os.path.join(build, "alloc-jemalloc.stamp"))
glibc = os.path.exists(os.path.join(build, "alloc-glibc.stamp"))
pt.check(jemalloc != glibc, "the build folder says which allocator pai has",
         "jemalloc %s, glibc %s" % (jemalloc, glibc))
env = dict(os.environ, MALLOC_CONF="stats_print:true")
p = subprocess.run([pt.PAI_BIN, "--help"], env=env, capture_output=True, text=True, timeout=30)
opts = [l.strip() for l in p.stderr.splitlines() + p.stdout.splitlines() if "opt.tcache_max" in l]
if jemalloc:
    pt.check(opts == ["opt.tcache_max: 65536"], "jemalloc keeps up to 64 KiB per thread", opts)
else:
    pt.check(opts == [], "no jemalloc options printed with glibc's allocator", opts)
pt.done()
