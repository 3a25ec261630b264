#!/usr/bin/env bash
# tests/suites/sched.sh - every scheduler scenario in tests/sched/*.yaml
# through `pai sim --scenario` (one "ok"/"not ok" line each; the scheduler's
# invariant checker runs after every decision and any violation fails the
# scenario), and the 3,000-job Philly slice (tests/data/philly-3000.csv)
# through all three policies with `--check`.
set -u
cd "$(dirname "$0")/../.."
PAI=${PAI_BIN:-build/pai}
fail=0
for f in tests/sched/*.yaml; do
  "$PAI" sim --scenario "$f" || fail=1
done
trace=tests/data/philly-3000.csv
for p in pai fifo-quota first-fit; do
  out=$("$PAI" sim --trace "$trace" --limit 3000 --policy "$p" --check --json 2>&1)
  if echo "$out" | python3 -c '
import json,sys
d=json.load(sys.stdin)
o=d["overall"]
assert o["jobs"]==3000, o
assert o["unfinished"]==0, o
assert d["violations"]==0, d.get("first_violation")
assert 0 < d["scheduler"]["gpu_utilization"] <= 1.0, d["scheduler"]
# utilization as `pai usage` counts it: GPU-hours held per VC add up to the
# whole, preempted runs count as held and lost, and the whole over the
# cluster is the scheduler'"'"'s utilization
held = sum(v["gpu_hours_held"] for v in d["vcs"].values())
assert o["gpu_hours_held"] > 0 and abs(held - o["gpu_hours_held"]) <= 1e-6 * held + 1e-9, (held, o)
assert all(0 <= v["gpu_hours_lost_to_preemption"] <= v["gpu_hours_held"] for v in d["vcs"].values())
assert abs(o["utilization_of_guarantee"] - d["scheduler"]["gpu_utilization"]) < 1e-9, o
assert all(v["utilization_of_guarantee"] >= 0 for v in d["vcs"].values())
'; then echo "ok - philly slice policy $p (and its GPU-hours held per VC)"; else echo "not ok - philly slice policy $p"; echo "$out" | head -20; fail=1; fi
done
exit $fail
