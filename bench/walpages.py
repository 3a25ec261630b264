#!/usr/bin/env python3
"""bench/walpages.py - what a SQLite store's commits write, page by page.

Reads DIR/pai.db-wal as the writer left it (bench/storereplay --keep 1
leaves one), splits its valid frames (those with the header's salts, from
its start) into commits, and names each frame's page by the b-tree that
owns it now (SQLite's dbstat, on a copy of the files): the table's leaves,
its interior pages, the (kind, key) index's, the scan index's, overflow
pages.  Prints frames a commit, in all and by b-tree and page type.

Run: python3 bench/walpages.py DIR"""

import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def commits(wal):
    with open(wal, "rb") as f:
        hdr = f.read(32)
        magic, _, page = struct.unpack(">III", hdr[:12])
        if magic & ~1 != 0x377F0682:
            sys.exit("walpages: %s: not a WAL" % wal)
        salts = hdr[16:24]
        out, cur = [], []
        while True:
            fh = f.read(24)
            if len(fh) < 24:
                break
            pgno, size = struct.unpack(">II", fh[:8])
            if pgno == 0 or fh[8:16] != salts:
                break
            f.seek(page, 1)
            cur.append(pgno)
            if size:  # a commit's last frame holds the database's size
                out.append(cur)
                cur = []
        return out


def owners(d):
    tmp = tempfile.mkdtemp(prefix="walpages.")
    try:
        for name in ("pai.db", "pai.db-wal"):
            shutil.copy(os.path.join(d, name), tmp)
        db = sqlite3.connect(os.path.join(tmp, "pai.db"))
        return {p: (n, t) for n, p, t in db.execute("SELECT name, pageno, pagetype FROM dbstat")}
    finally:
        shutil.rmtree(tmp)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: bench/walpages.py DIR   (a store left by bench/storereplay --keep 1)")
    d = sys.argv[1]
    for name in ("pai.db", "pai.db-wal"):
        if not os.path.isfile(os.path.join(d, name)):
            sys.exit("walpages: %s: no %s (bench/storereplay --keep 1 leaves one)" % (d, name))
    cs = commits(os.path.join(d, "pai.db-wal"))
    own = owners(d)
    by = collections.Counter()
    for c in cs:
        for p in c:
            by[own.get(p, ("?", "?"))] += 1
    n = len(cs)
    frames = sum(len(c) for c in cs)
    print("%d commits, %.1f frames a commit (%d frames)" % (n, frames / max(n, 1), frames))
    for (name, kind), k in by.most_common():
        print("  %-16s %-9s %5.2f a commit" % (name, kind, k / max(n, 1)))


if __name__ == "__main__":
    main()
