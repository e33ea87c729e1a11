#!/usr/bin/env bash
# How fast the CLI answers: wall time of `cohort ps`, `checkpoints`, `nodes` and `logs JOB`,
# each run as a user runs it (a new process, JVM start-up included), embedded (no daemon)
# and against the coordinator of an emulated cluster of 2 nodes.
#
#   scripts/bench-cli.sh [RUNS] [COHORT]     (after ./cohort setup; as root)
#
# RUNS (default 9) runs of each command after one warm-up; prints the median and the
# min–max in seconds. COHORT (default this checkout's ./cohort) is the CLI to time, so that
# another checkout's can be timed against the same state. The state: a private Cohort home
# (under /var/tmp) with one finished job and one job stopped by a checkpoint; the cluster
# uses the prefix cohortcli and the subnet 198.18.93, and is removed at the end. Take the
# IT lock first on a shared machine (flock /tmp/cohort-it.lock scripts/bench-cli.sh).
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
runs=${1:-9}
timed=${2:-$repo/cohort}
cohort="$repo/cohort"
export COHORT_HOME
COHORT_HOME=$(mktemp -d /var/tmp/cohort-bench-cli.XXXXXX)
cleanup() {
  "$cohort" cluster down >/dev/null 2>&1 || true
  rm -rf "$COHORT_HOME"
}
trap cleanup EXIT
cd "$COHORT_HOME"

# Median and range of RUNS wall times (seconds) of one command.
bench() { # label, command...
  local label=$1 t0 t1; shift
  "$@" >/dev/null 2>&1 || { echo "bench-cli: '$*' failed" >&2; exit 1; }
  for _ in $(seq "$runs"); do
    t0=$(date +%s%N)
    "$@" >/dev/null 2>&1
    t1=$(date +%s%N)
    echo $(((t1 - t0) / 1000000))
  done | sort -n | awk -v label="$label" '{a[NR] = $1 / 1000}
    END {printf "%-26s %6.3f s  (%.3f–%.3f)\n", label, a[int((NR + 1) / 2)], a[1], a[NR]}'
}

# One finished job and one stopped by a checkpoint, then every command.
state_and_bench() { # mode, run options...
  local mode=$1 done stopped; shift
  done=$("$cohort" run --detach "$@" -- sh -c 'echo hello')
  "$cohort" wait "$done" >/dev/null
  stopped=$("$cohort" run --detach "$@" -- sh -c 'echo start; exec sleep 600')
  until "$cohort" logs "$stopped" | grep -q start; do sleep 0.2; done
  "$cohort" checkpoint --stop "$stopped" >/dev/null
  bench "$mode: ps" "$timed" ps
  bench "$mode: checkpoints" "$timed" checkpoints
  bench "$mode: nodes" "$timed" nodes
  bench "$mode: logs $done" "$timed" logs "$done"
}

echo "cohort: $timed; $runs runs each, after one warm-up; $(nproc) cores, $(uptime | sed 's/.*load/load/')"
state_and_bench embedded
"$cohort" cluster up --nodes 2 --prefix cohortcli --subnet 198.18.93 >/dev/null
state_and_bench cluster --nodes n1
