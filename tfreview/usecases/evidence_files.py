"""The two texts every evidence pack carries (tfreview/usecases/evidence.py writes them): `README.txt`, what the pack
holds and how to check it, and `verify.sh`, the POSIX script that checks it with stock tools only (ssh-keygen and
sha256sum or shasum). Kept apart from the exporter: they are the pack's, read by auditors without tfreview."""
from __future__ import annotations

README = """tfreview evidence pack
=====================

Check it on any machine with OpenSSH's ssh-keygen and sha256sum (or shasum):

    sh verify.sh

It verifies every signature (NAME.sig over the exact bytes of NAME.stmt) against the allowed_signers of the policy
version the statement names, for the principal the statement names, and every file against MANIFEST.sha256. It
prints one line per failure and a summary; exit 0 when everything holds, 1 otherwise.

index.csv / index.json   every decision of the period: plan, app, env, version, who, when, what, verified
statements/PLAN/         the plan record and each approval/rejection, as signed (.stmt) with its signature (.sig)
policy/VERSION/          each policy version as stored, its allowed_signers, its admins' signatures
audit/                   the audit entries of the period, the seals that anchor them (and the bytes each seal
                         names), what `tfreview audit verify` said at export (verify.txt, FAILURES.txt)
reports/                 the release reports of the period (HTML, Markdown, JSON)

Trust: check that policy/000001's admins and keys are the ones you expect (compare with tfreview.toml's pin or
with the people themselves); every later version is signed by admins of the version before it.
"""

VERIFY_SH = r"""#!/bin/sh
# Verifies a tfreview evidence pack with stock tools only: ssh-keygen and sha256sum (or shasum -a 256).
# Prints one line per failure, then a summary. Exit 0: every signature and every file holds; 1: some do not;
# 2: a tool is missing. VERIFY_JOBS signatures are checked at a time (default: the CPU count from getconf when
# there is one, at least 2).
set -u
case "$0" in */*) cd "${0%/*}" || exit 2 ;; esac
if command -v sha256sum >/dev/null 2>&1; then SUM="sha256sum"
elif command -v shasum >/dev/null 2>&1; then SUM="shasum -a 256"
else echo "verify.sh: needs sha256sum or shasum" >&2; exit 2; fi
command -v ssh-keygen >/dev/null 2>&1 || { echo "verify.sh: needs ssh-keygen (OpenSSH 8.1 or later)" >&2; exit 2; }
JOBS=${VERIFY_JOBS:-}
if [ -z "$JOBS" ]; then  # one ssh-keygen process per signature (~10 ms of CPU each): use every CPU
  JOBS=2
  if command -v getconf >/dev/null 2>&1; then
    cpus=$(getconf _NPROCESSORS_ONLN 2>/dev/null) || cpus=""
    case "$cpus" in ''|*[!0-9]*) ;; *) [ "$cpus" -gt "$JOBS" ] && JOBS=$cpus ;; esac
  fi
fi
case "$JOBS" in ''|*[!0-9]*|0) echo "verify.sh: VERIFY_JOBS must be a positive number" >&2; exit 2 ;; esac
[ -f MANIFEST.sha256 ] && [ -f signatures.tsv ] || { echo "verify.sh: run it inside an evidence pack" >&2; exit 2; }

# One signature: the principal and the policy version come from the signed bytes themselves; the field that
# names the principal, from where the statement sits in the pack. Status 0 when it holds; else one FAIL line.
check_one() {  # $1: path without .stmt/.sig
  case "$1" in
    statements/*/plan) fld=planner ;;
    statements/*/approve-*|statements/*/reject-*) fld=approver ;;
    policy/*/signatures/*) fld=signer ;;
    audit/seals/*) fld=sealer ;;
    audit/entries/*) fld=actor ;;
    *) echo "FAIL signature $1: not a statement an evidence pack holds"; return 1 ;;
  esac
  body=""
  IFS= read -r body < "$1.stmt" || [ -n "$body" ] || { echo "FAIL signature $1: cannot read $1.stmt"; return 1; }
  case "$body" in *"\"$fld\":\""*) ;; *) echo "FAIL signature $1: the statement names no $fld"; return 1 ;; esac
  who=${body#*\"$fld\":\"}; who=${who%%\"*}
  case "$body" in *'"policy_version":'*) ;; *) echo "FAIL signature $1: the statement names no policy version"; return 1 ;; esac
  pv=${body#*\"policy_version\":}; pv=${pv%%[,\}]*}
  case "$pv" in ''|*[!0-9]*) echo "FAIL signature $1: bad policy version"; return 1 ;; esac
  [ "$pv" -eq 0 ] && pv=1  # policy version 1 is signed by its own admins
  padded="000000$pv"; padded=${padded#"${padded%??????}"}  # six digits, without a subshell per signature
  allowed="policy/$padded/allowed_signers"
  [ -f "$allowed" ] || { echo "FAIL signature $1: policy version $pv is not in the pack"; return 1; }
  ssh-keygen -Y verify -f "$allowed" -I "$who" -n tfreview -s "$1.sig" < "$1.stmt" >/dev/null 2>&1 && return 0
  echo "FAIL signature $1: not a valid signature by $who under policy version $pv"
  return 1
}

shard() {  # $1: this job's number (0 to JOBS - 1): checks every JOBS-th statement, folder after folder (the shell
  n=0; ok=0  # lists each folder: nothing read byte by byte; no list of every statement held: each fork stays cheap)
  for dir in statements/*/ policy/*/signatures/ audit/seals/ audit/entries/; do
    for stmt in "$dir"*.stmt; do
      n=$((n + 1))
      [ $((n % JOBS)) -eq "$1" ] || continue
      case "$stmt" in *'*'*) [ -e "$stmt" ] || continue ;; esac  # a pattern that matched nothing
      check_one "${stmt%.stmt}" && ok=$((ok + 1))
    done
  done
  echo "PASSED $ok"
}

# Every file against the manifest: sha256sum's whole output read at once (a loop of `read` would make one system
# call per byte), then one line per failure.
files() {
  out=$($SUM -c MANIFEST.sha256 2>/dev/null)
  set -f; IFS='
'
  ok=0
  for line in $out; do
    case "$line" in *": OK") ok=$((ok + 1)) ;; *) echo "FAIL file ${line}" ;; esac
  done
  echo "PASSED $ok"
}

# Seals: the entries they name must be the bytes beside them.
seals() {
  ok=0
  for stmt in audit/seals/*.stmt; do
    case "$stmt" in *'*'*) [ -e "$stmt" ] || continue ;; esac
    path=${stmt%.stmt}
    body=""; IFS= read -r body < "$stmt" || [ -n "$body" ]
    want=${body#*\"entries_sha256\":\"}; want=${want%%\"*}
    got=$($SUM < "$path.entries" 2>/dev/null); got=${got%% *}
    if [ "$want" = "$got" ]; then ok=$((ok + 1)); else echo "FAIL seal $path: the entries beside it are not the ones it signed"; fi
  done
  echo "PASSED $ok"
}

# The signature jobs run beside the file and seal checks.
{
  files &
  seals &
  j=0
  while [ "$j" -lt "$JOBS" ]; do shard "$j" & j=$((j + 1)); done
  wait
} | {
  ok=0; bad=0
  while IFS= read -r line; do
    case "$line" in "PASSED "*) ok=$((ok + ${line#PASSED })) ;; *) bad=$((bad + 1)); echo "$line" ;; esac
  done
  if [ "$bad" -eq 0 ]; then
    echo "evidence pack verified: $ok checks passed (every signature and every file)"
    exit 0
  fi
  echo "evidence pack NOT verified: $bad failure(s), $ok checks passed"
  exit 1
}
"""
