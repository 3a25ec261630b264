#!/usr/bin/env bash
# tests/suites/protocol.sh - the job protocol against real and hand-made files.
#
#  1. every OpenPAI job in tests/data/openpai-jobs validates and renders
#     (the one template file with {{placeholders}} is truly invalid: its exact
#     errors are asserted);
#  2. every negative fixture tests/protocol/bad/NAME.yaml fails validation
#     with exactly the lines in tests/protocol/bad/NAME.err (the file name in
#     each line is written as FILE);
#  3. generated cases too big to check in (10 MB document, alias bomb, deep
#     nesting) are rejected with a bounded, clear error.
set -u
cd "$(dirname "$0")/../.."
ROOT=$PWD
PAI=${PAI_BIN:-$ROOT/build/pai}
JOBS=$ROOT/tests/data/openpai-jobs
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

ok() { echo "ok - $1"; }
notok() { echo "not ok - $1"; shift; for l in "$@"; do echo "  $l"; done; }

# The one file that is a template, not a job: `name: {{jobname}}` is a YAML map.
INVALID_JOB=pai__contrib_api-stress-test_roles_locust_config_files_job.yml
INVALID_ERR="FILE:2:7: name: expected a string, got map
FILE:37:19: defaults.virtualCluster: expected a string, got map"

# 1. the real corpus
if [ ! -d "$JOBS" ]; then
  notok "openpai-jobs corpus present" "missing $JOBS"
else
  n=0
  for f in "$JOBS"/*.y*ml; do
    name=$(basename "$f")
    n=$((n + 1))
    if [ "$name" = "$INVALID_JOB" ]; then
      got=$("$PAI" job validate -q "$f" 2>&1 >/dev/null); rc=$?
      got=${got//$f/FILE}
      if [ $rc -eq 1 ] && [ "$got" = "$INVALID_ERR" ]; then ok "corpus $name rejected with exact errors"
      else notok "corpus $name rejected with exact errors" "rc=$rc" "$got"; fi
      continue
    fi
    if out=$("$PAI" job validate "$f" 2>&1) && [ "$out" = "$f: ${out#*: }" ] &&
       [ "$(wc -l <<<"$out")" -eq 1 ]; then ok "corpus $name validates without warnings"
    else notok "corpus $name validates without warnings" "$out"; fi
    if out=$("$PAI" job render "$f" 2>&1) && out=$(sed -n '/^# task /,$p' <<<"$out") &&
       grep -q '^# task ' <<<"$out" &&
       ! grep -q '<% *\$\(parameters\|data\|script\|output\)' <<<"$out"; then
      ok "corpus $name renders with every reference resolved"
    else
      notok "corpus $name renders with every reference resolved" "$(grep -m3 '<%' <<<"$out")"
    fi
    # round trip: the rendered YAML is a job that renders to the same JSON
    "$PAI" job render "$f" 2>/dev/null | sed '1d;/^# task /,$d' >"$TMP/rt.yaml"
    a=$("$PAI" job render "$f" --json 2>&1); b=$("$PAI" job render "$TMP/rt.yaml" --json 2>&1)
    if [ -s "$TMP/rt.yaml" ] && [ "$a" = "$b" ]; then ok "corpus $name YAML round trip"
    else notok "corpus $name YAML round trip" "$(diff <(echo "$a") <(echo "$b") | head -5)"; fi
  done
  [ "$n" -ge 33 ] && ok "corpus has all $n files" || notok "corpus has all files" "only $n"
fi

# 2. negative fixtures
for f in tests/protocol/bad/*.yaml; do
  [ -f "$f" ] || continue
  name=$(basename "$f" .yaml)
  want=$(cat "${f%.yaml}.err")
  got=$("$PAI" job validate -q "$f" 2>&1 >/dev/null); rc=$?
  got=${got//$f/FILE}
  if [ $rc -eq 1 ] && [ "$got" = "$want" ]; then ok "bad/$name rejected with exact error"
  else notok "bad/$name rejected with exact error" "rc=$rc" "want: $want" "got:  $got"; fi
done

# 3. generated hostile inputs
head -c $((10 * 1024 * 1024)) /dev/zero | tr '\0' 'a' >"$TMP/big.yaml"
got=$("$PAI" job validate "$TMP/big.yaml" 2>&1); rc=$?
want="$TMP/big.yaml: the document is 10485760 bytes; the limit is 4194304 bytes"
[ $rc -eq 1 ] && [ "$got" = "$want" ] && ok "10 MB document rejected with a bounded error" ||
  notok "10 MB document rejected with a bounded error" "rc=$rc" "$got"

{
  echo 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'
  for i in $(seq 1 9); do
    p=$((i - 1)); echo "a$i: &a$i [*a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p]"
  done
} >"$TMP/bomb.yaml"
got=$("$PAI" job validate "$TMP/bomb.yaml" 2>&1); rc=$?
want="$TMP/bomb.yaml:6:10: document too large: more than 200000 YAML nodes (after alias expansion)"
[ $rc -eq 1 ] && [ "$got" = "$want" ] && ok "alias bomb rejected without expansion" ||
  notok "alias bomb rejected without expansion" "rc=$rc" "$got"

{ printf 'protocolVersion: 2\nname: deep\nparameters:\n  p: '; for i in $(seq 1 100); do printf '['; done
  for i in $(seq 1 100); do printf ']'; done; echo; } >"$TMP/deep.yaml"
got=$("$PAI" job validate "$TMP/deep.yaml" 2>&1); rc=$?
want="$TMP/deep.yaml:4:68: document nested too deeply (more than 64 levels)"
[ $rc -eq 1 ] && [ "$got" = "$want" ] && ok "deep nesting rejected" ||
  notok "deep nesting rejected" "rc=$rc" "$got"

# lint: unresolvable references are warnings, not errors
cat >"$TMP/lint.yaml" <<'YAML'
protocolVersion: 2
name: lint
type: job
parameters: {model: x}
prerequisites: [{name: i, type: dockerimage, uri: u}]
taskRoles:
  w:
    dockerImage: i
    resourcePerInstance: {}
    commands:
      - run <% $parameters.modle %> <% $parameters.model %> <% $foo %>
YAML
got=$("$PAI" job validate -q "$TMP/lint.yaml" 2>&1); rc=$?
want="$TMP/lint.yaml:11:9: taskRoles.w.commands[0]: warning: reference <% \$parameters.modle %> does not resolve and is left as written"
[ $rc -eq 0 ] && [ "$got" = "$want" ] && ok "unresolved reference is a warning" ||
  notok "unresolved reference is a warning" "rc=$rc" "$got"

# render --role/--index on a multi-role job
f=$JOBS/pai__marketplace-v2_tensorflow-cifar10.yaml
if [ -f "$f" ]; then
  out=$("$PAI" job render "$f" --role psserver --index 0 2>&1 | sed -n '/^# task /,$p')
  if grep -q '^# task psserver/0' <<<"$out" && ! grep -q '^# task worker' <<<"$out" &&
     [ "$(grep -c 'git clone' <<<"$out")" -eq 1 ]; then ok "render --role picks one role, deployment once"
  else notok "render --role picks one role, deployment once" "$out"; fi
  "$PAI" job render "$f" --role nosuch >/dev/null 2>&1 && notok "render unknown role fails" || ok "render unknown role fails"
else
  notok "render --role picks one role, deployment once" "missing $f"
fi
